"""Every tree walk gives the same bits.

The C core picks, at load, how a forest's trees are walked -- node by node, or by bit vectors
(QuickScorer) when every tree has at most 64 leaves -- and the widest instruction set the CPU
has (scalar, AVX2, AVX-512). ``ASTORE_TREE_WALK`` forces a walk or caps the instruction set;
here each forest is scored under every setting, in fresh processes, and the outputs must be
identical byte for byte, equal to the reference evaluator, and the same for a batch and for
its rows one at a time.

The forests are built to hit the edges: thresholds at -inf, -0.0, 0.0 and +inf, rows whose
values are exactly the thresholds, their float32 neighbours, infinities, -0.0 and NaN; NaN
going either way; single-leaf trees; trees of exactly 64 leaves and of 65 (the bit-vector walk
no longer applies); more trees than one block of the bit-vector walk (256); more features than
one vector; several outputs (one tree per class, and vector leaves averaged); row counts around
the vector widths (1, 7, 8, 15, 16, 17, 63, 64, 65, 200).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import golden_models
import pyastore
from conftest import ROOT
from pyastore import format as fmt
from pyastore.cli import describe_text
from pyastore.ir import Forest, Tree
from reference_forest import score_forest

WALKS = ("", "nodes", "nodes-scalar", "nodes-avx2", "nodes-avx512", "quickscorer",
         "quickscorer-scalar", "quickscorer-avx2", "quickscorer-avx512")

SPECIAL = np.array([-np.inf, -0.0, 0.0, np.inf, 1.0, -1.0, 0.5], dtype=np.float32)

SCRIPT = """
import sys, warnings, numpy as np, pyastore
warnings.simplefilter("ignore")
model = pyastore.load(open(sys.argv[1], "rb").read(), allow_unsigned=True,
                      use_default_trust=False)
print(model.tree_walk)
for path in sys.argv[2:]:
    x = np.load(path)
    batch = model.score(x)
    ones = np.array([model.score_one(row) for row in x.tolist()])
    print(batch.tobytes().hex(), ones.tobytes().hex())
"""

ROW_COUNTS = (200, 65, 64, 63, 17, 16, 15, 8, 7, 1)
CODES = 70  # categorical splits' codes are below it
CATEGORY_EDGES = np.array([-1.0, -0.0, 0.5, 2.5, 31.5, 95.0, 96.0, 2.0 ** 24, 2.0 ** 31, 1e30,
                           -np.inf, np.inf, np.nan], dtype=np.float32)


def _random_tree(rng, n_features, n_leaves, leaf_width, thresholds, categorical=0):
    """A random binary tree with exactly n_leaves leaves, nodes numbered in creation order;
    a split on one of the first ``categorical`` features is, two times in three, a
    categorical split whose set holds 1 to 20 codes below CODES (one or three words)."""
    feature, threshold, left, right, default_left, value = [], [], [], [], [], []
    categories: list[tuple[int, ...]] = []

    def new_node():
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        default_left.append(False)
        value.append(())
        categories.append(())
        return len(feature) - 1

    def grow(node, leaves):
        if leaves == 1:
            value[node] = tuple(float(np.float32(v)) for v in rng.normal(size=leaf_width))
            return
        feature[node] = int(rng.integers(n_features))
        if feature[node] < categorical and rng.random() < 2 / 3:
            top = int(rng.choice([32, CODES]))
            codes = rng.choice(top, size=int(rng.integers(1, 21)), replace=False)
            categories[node] = tuple(sorted(int(c) for c in codes))
        else:
            threshold[node] = float(rng.choice(thresholds))
        default_left[node] = bool(rng.integers(2))
        n_left = int(rng.integers(1, leaves))
        left[node] = new_node()
        right[node] = new_node()
        grow(left[node], n_left)
        grow(right[node], leaves - n_left)

    grow(new_node(), n_leaves)
    return Tree(feature=tuple(feature), threshold=tuple(threshold), left=tuple(left),
                right=tuple(right), default_left=tuple(default_left), value=tuple(value),
                categories=tuple(categories) if any(categories) else ())


def _forest(seed, *, n_trees, n_features, leaves, n_outputs=1, vector_leaves=False,
            categorical=0):
    rng = np.random.default_rng(seed)
    thresholds = np.concatenate([SPECIAL, rng.normal(size=40).astype(np.float32)])
    leaf_width = n_outputs if vector_leaves else 1
    trees = tuple(_random_tree(rng, n_features, int(rng.choice(leaves)), leaf_width, thresholds,
                               categorical)
                  for _ in range(n_trees))
    forest = Forest(
        n_features=n_features, n_outputs=n_outputs, leaf_width=leaf_width, trees=trees,
        tree_output=tuple(0 if vector_leaves else t % n_outputs for t in range(n_trees)),
        aggregation="mean" if vector_leaves else "sum",
        base_score=tuple(float(v) for v in rng.normal(size=n_outputs)),
        post_transform="softmax" if n_outputs > 1 else "logistic")
    return forest, thresholds


def _rows(seed, n_rows, n_features, thresholds, categorical=0):
    """Values drawn from the thresholds, their float32 neighbours, NaN and normal noise; the
    first ``categorical`` features also take every code below CODES + 2 and the values a set
    never holds (CATEGORY_EDGES)."""
    rng = np.random.default_rng(seed + 1)
    near = np.concatenate([thresholds, np.nextafter(thresholds, np.float32(np.inf)),
                           np.nextafter(thresholds, np.float32(-np.inf)),
                           np.array([np.nan, -np.inf, np.inf, -0.0], dtype=np.float32)])
    x = rng.choice(near, size=(n_rows, n_features)).astype(np.float32)
    noise = rng.random((n_rows, n_features)) < 0.2
    x[noise] = rng.normal(size=int(noise.sum())).astype(np.float32)
    codes = np.concatenate([np.arange(CODES + 2, dtype=np.float32), CATEGORY_EDGES])
    for column in range(categorical):
        coded = rng.random(n_rows) < 0.7
        x[coded, column] = rng.choice(codes, size=int(coded.sum()))
    return x


def _spec(forest):
    base = golden_models.tiny_forest_spec()
    inputs = tuple(dataclasses.replace(base.inputs[0], name=f"x{j}")
                   for j in range(forest.n_features))
    outputs = tuple(dataclasses.replace(base.outputs[0], name=f"p{k}")
                    for k in range(forest.n_outputs))
    rules = (dataclasses.replace(base.rules, task="multiclass", class_labels=tuple(
        range(forest.n_outputs)), cutoff=None) if forest.n_outputs > 1 else base.rules)
    return dataclasses.replace(base, forest=forest, inputs=inputs, outputs=outputs, rules=rules)


CASES = {
    # name: (forest arguments, expected walk family with no override)
    "depth-6-like": (dict(n_trees=40, n_features=6, leaves=[1, 2, 17, 33, 63, 64]), "quickscorer"),
    "two-blocks": (dict(n_trees=300, n_features=5, leaves=[1, 3, 8, 64]), "quickscorer"),
    "wide-rows": (dict(n_trees=20, n_features=90, leaves=[16, 40]), "quickscorer"),
    "multiclass": (dict(n_trees=30, n_features=4, leaves=[5, 64], n_outputs=3), "quickscorer"),
    "vector-leaves": (dict(n_trees=25, n_features=4, leaves=[2, 50], n_outputs=3,
                           vector_leaves=True), "quickscorer"),
    "65-leaves": (dict(n_trees=20, n_features=4, leaves=[3, 65]), "deep"),
    "deep": (dict(n_trees=12, n_features=8, leaves=[200, 300]), "deep"),
    "deep-multiclass": (dict(n_trees=12, n_features=5, leaves=[70, 130], n_outputs=3), "deep"),
    "deep-vector-leaves": (dict(n_trees=9, n_features=5, leaves=[40, 90], n_outputs=2,
                                vector_leaves=True), "deep"),
    "categorical": (dict(n_trees=40, n_features=5, leaves=[1, 2, 9, 64, 100],
                         categorical=2), "nodes"),
    "categorical-multiclass": (dict(n_trees=30, n_features=4, leaves=[5, 40], n_outputs=3,
                                    categorical=1), "nodes"),
}
# Forests with a tree of more than 64 leaves: bit vectors for the top six levels then nodes
# where the CPU has the 64-row transposed walk (AVX-512 VBMI + GFNI), else nodes.
DEEP = ("quickscorer+nodes-", "nodes-")


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as handle:
            return any(line.startswith("flags") and flag in line.split() for line in handle)
    except OSError:
        return False


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_walk_gives_the_same_bits(case, tmp_path):
    arguments, family = CASES[case]
    seed = sorted(CASES).index(case) + 11
    forest, thresholds = _forest(seed, **arguments)
    spec = _spec(forest)
    container = tmp_path / "model.astore"
    container.write_bytes(fmt.write(spec, None, created="2026-01-01T00:00:00Z"))
    paths, inputs = [], []
    for n_rows in ROW_COUNTS:
        x = _rows(seed + n_rows, n_rows, forest.n_features, thresholds,
                  arguments.get("categorical", 0))
        inputs.append(x)
        paths.append(str(tmp_path / f"rows{n_rows}.npy"))
        np.save(paths[-1], x)
    results = {}
    for walk in WALKS:
        env = dict(os.environ, ASTORE_TREE_WALK=walk, PYTHONPATH=str(ROOT))
        run = subprocess.run([sys.executable, "-c", SCRIPT, str(container), *paths],
                             capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        name, *lines = run.stdout.splitlines()
        if walk == "" and arguments.get("categorical") and _cpu_has("avx2"):
            assert name == "nodes-avx2", name  # sets padded for the AVX2 walk
        if walk == "" and family == "deep":
            assert name.startswith(DEEP), name
        elif walk == "":
            assert name.startswith(family + "-"), name
        elif walk.startswith("nodes"):
            assert name.startswith("nodes-"), (walk, name)
        elif family == "deep":
            assert name.startswith(DEEP) and name.endswith(walk.partition("-")[2]), (walk, name)
        for x, line in zip(inputs, lines):
            batch, ones = line.split()
            assert batch == ones, f"{walk}: batch and single rows differ ({len(x)} rows)"
            expected = score_forest(forest, x, leaf_dtype=np.float32)
            got = np.frombuffer(bytes.fromhex(batch)).reshape(expected.shape)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0,
                                       err_msg=f"{walk}, {len(x)} rows")
            results[(walk, len(x))] = batch
    for walk in WALKS:
        for n_rows in ROW_COUNTS:
            assert results[(walk, n_rows)] == results[("nodes-scalar", n_rows)], \
                f"{walk} differs from nodes-scalar ({n_rows} rows)"


def test_the_walk_and_its_memory_are_reported(tmp_path):
    """``describe`` names the walk the model was given on this CPU and the bytes its derived
    structures take; an MLP has no walk."""
    forest, _ = _forest(3, n_trees=10, n_features=4, leaves=[8])
    model = pyastore.load(fmt.write(_spec(forest), None, created="2026-01-01T00:00:00Z"),
                          allow_unsigned=True, use_default_trust=False)
    assert model.tree_walk.startswith("quickscorer-")
    assert model.tree_walk_bytes > 16 * forest.n_features  # lists + entries for 70 nodes
    assert f"tree walk:     {model.tree_walk} (derived at load: " in describe_text(model.describe())
    assert model.describe()["scorer"] == {"tree_walk": model.tree_walk,
                                          "derived_bytes": model.tree_walk_bytes}
    mlp = pyastore.load(ROOT / "tests" / "golden" / "tiny_mlp.astore", allow_untrusted=True,
                        use_default_trust=False)
    assert mlp.tree_walk is None and mlp.tree_walk_bytes == 0


def test_an_unknown_override_is_ignored(tmp_path):
    """ASTORE_TREE_WALK is a diagnosis switch: a value it does not know changes nothing."""
    forest, _ = _forest(5, n_trees=6, n_features=3, leaves=[4])
    container = tmp_path / "model.astore"
    container.write_bytes(fmt.write(_spec(forest), None, created="2026-01-01T00:00:00Z"))
    code = ("import warnings, pyastore; warnings.simplefilter('ignore'); "
            f"print(pyastore.load({str(container)!r}, allow_unsigned=True, "
            "use_default_trust=False).tree_walk)")
    names = []
    for walk in ("", "bogus"):
        env = dict(os.environ, ASTORE_TREE_WALK=walk, PYTHONPATH=str(ROOT))
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120, check=True)
        names.append(run.stdout.strip())
    assert names[0] == names[1]
