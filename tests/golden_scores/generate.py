"""Golden score files: fixed inputs for every golden container, and the x86-64 output bytes.

For each container in ``tests/golden/`` that has a scoring payload (FRST or MLP_), this writes

* ``NAME.input.f32``: float32 rows, little-endian, row-major, ``n_inputs`` per row: NaN, ±inf,
  ±0, the float32 extremes and subnormals; every split threshold of the FRST section exactly
  and its two float32 neighbours (all columns at once, then one column at a time); then
  seeded random rows mixing all of those;
* ``NAME.expected.f64``: the float64 scores of those rows, little-endian, as computed here
  (x86-64, ``pyastore._core``, one batch call);
* ``manifest.json``: per container its store key, row/input/output counts and the SHA-256
  of both files.

``tests/cross/test_cross.py`` and ``cross/build.sh`` score every input with
``golden_scores.c`` built for x86-64, aarch64, armv7 and s390x (under qemu) and require the
same bytes: the float bits, not a tolerance. Containers with the same store key (the signed
and unsigned copy of one model) are scored once.

Besides the golden containers, four seeded "stress" forests are written here
(``stress_*.astore``, unsigned): many trees over thresholds from a small pool, so the inputs
hit thresholds often and the scores take thousands of distinct values -- binary with the
logistic link, 5 classes with softmax (both go through the core's own ``exp``, so that no
architecture's C library can round differently), a random-forest-style mean of 3-wide leaf
vectors, and a binary forest whose splits on two columns are categorical (sets of codes
0..79 in CATS, read in place on little-endian hosts and decoded on s390x). Categorical
splits add each code of their set and the codes next to it to the rows. They are generated
from a seed, not trained.

Regenerate after a deliberate change of a golden container or of scoring::

    python tests/golden_scores/generate.py            # rewrite the files
    python tests/golden_scores/generate.py --rebuild-stress   # also rewrite stress_*.astore
    python tests/golden_scores/generate.py --check    # exit 1 if they are out of date
    pytest tests/cross --update-goldens               # the same from pytest

No randomness without a seed: the rows of a container depend only on its name and payload.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import struct
import sys
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN_DIR = ROOT / "tests" / "golden"

FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
FLOAT32_TINY = struct.unpack("<f", b"\x00\x00\x80\x00")[0]  # smallest normal
FLOAT32_SUBNORMAL = struct.unpack("<f", b"\x01\x00\x00\x00")[0]
NAN = math.nan
INF = math.inf
SPECIALS = (0.0, -0.0, NAN, INF, -INF, 1.0, -1.0, 0.5, FLOAT32_MAX, -FLOAT32_MAX,
            FLOAT32_TINY, -FLOAT32_SUBNORMAL, 1e30, -1e30, 1e-30, 3.0, -7.25, 100.0)
RANDOM_ROWS = 200
MAX_SINGLE_THRESHOLD_ROWS = 300
FORMAT_VERSION = 1


def load_core(backend: str = "pybind"):
    if backend == "cffi":
        from pyastore import _cffi_core as core
    else:
        from pyastore import _core as core
    return core


def to_float32(value: float) -> float:
    """``value`` rounded to binary32 the way C's ``(float)`` cast does (overflow to ±inf)."""
    return array("f", [value])[0]


def next_float32(value: float, direction: float) -> float:
    """The binary32 neighbour of a finite binary32 ``value`` towards ``direction``."""
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    if value == 0.0:
        bits = 0x00000001 if direction > 0 else 0x80000001
    elif (value > 0.0) == (direction > value):
        bits += 1
    else:
        bits -= 1
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def forest_thresholds(section: bytes, cats: bytes | None = None) -> dict[int, list[float]]:
    """Split thresholds of a FRST section by model column (docs/FORMAT.md, astore_format.h);
    a categorical split adds every code of its set (CATS) and the codes next to them."""
    n_nodes, = struct.unpack_from("<I", section, 24)
    nodes_offset, = struct.unpack_from("<I", section, 36)
    by_feature: dict[int, set[float]] = {}
    for i in range(n_nodes):
        split, slot, _child = struct.unpack_from("<III", section, nodes_offset + 12 * i)
        values = by_feature.setdefault(split & 0x0FFFFFFF, set())
        if split & 0x80000000 and cats is not None:
            first, n_words = struct.unpack_from("<II", cats, 64 + 8 * slot)
            words_at, = struct.unpack_from("<I", cats, 12)
            words = struct.unpack_from(f"<{n_words}I", cats, words_at + 4 * first)
            codes = [32 * w + b for w in range(n_words) for b in range(32) if words[w] >> b & 1]
            values.update(float(c + d) for c in codes for d in (-1, 0, 1))
        else:
            values.add(struct.unpack("<f", struct.pack("<I", slot))[0])
    return {feature: sorted(values) for feature, values in by_feature.items()}


def raw_thresholds(container, model_thresholds: dict[int, list[float]]) -> dict[int, list[float]]:
    """Thresholds on model columns, carried back to raw input columns through XFRM if any.

    An inverted scaling is not exact in float32, so with a scaling the raw values land next
    to the threshold rather than on it; the seeded rows still cover both sides.
    """
    xfrm = container.section("XFRM")
    if xfrm is None:
        return model_thresholds
    n_columns, columns_offset = struct.unpack_from("<II", xfrm, 4)
    raw: dict[int, set[float]] = {}
    for column in range(n_columns):
        source, op, _impute, a, b = struct.unpack_from("<IIddd", xfrm, columns_offset + 32 * column)
        for t in model_thresholds.get(column, []):
            scale = op & 0xFF
            if scale == 1:
                value = t * b + a
            elif scale == 2:
                value = (t - b) / a if a != 0 else t
            else:
                value = t
            raw.setdefault(source, set()).add(to_float32(value))
    return {source: sorted(v for v in values if not math.isnan(v))
            for source, values in raw.items()}


def make_rows(name: str, n_inputs: int, thresholds: dict[int, list[float]]) -> list[list[float]]:
    """The fixed input rows of one container (deterministic in name, inputs and thresholds)."""
    seed = int.from_bytes(hashlib.sha256(f"golden-scores/{name}".encode()).digest()[:8], "little")
    rng = random.Random(seed)
    columns = range(n_inputs)
    near = {c: [x for t in thresholds.get(c, [])
                for x in (t, next_float32(t, -INF), next_float32(t, INF))] for c in columns}

    def typical(column: int) -> float:
        choice = rng.random()
        if choice < 0.08:
            return NAN
        if choice < 0.12:
            return rng.choice((INF, -INF))
        if choice < 0.40 and near[column]:
            return rng.choice(near[column])
        if choice < 0.48:
            return rng.choice(SPECIALS)
        if choice < 0.55:
            return rng.uniform(-1e4, 1e4)
        scale = max((abs(t) for t in thresholds.get(column, []) if math.isfinite(t)), default=4.0)
        return rng.uniform(-1.5 * scale - 1.0, 1.5 * scale + 1.0)

    rows = [[s] * n_inputs for s in SPECIALS]
    rows += [[SPECIALS[(r + 3 * c) % len(SPECIALS)] for c in columns] for r in range(len(SPECIALS))]
    # every threshold and both its neighbours, on all columns at once
    packed = max((len(values) for values in near.values()), default=0)
    rows += [[near[c][i % len(near[c])] if near[c] else typical(c) for c in columns]
             for i in range(packed)]
    # one column on (or next to) a threshold, the others typical
    single = [(c, value) for c in columns for value in near[c]]
    if len(single) > MAX_SINGLE_THRESHOLD_ROWS:
        single = rng.sample(single, MAX_SINGLE_THRESHOLD_ROWS)
    for column, value in single:
        row = [typical(c) for c in columns]
        row[column] = value
        rows.append(row)
    rows += [[typical(c) for c in columns] for _ in range(RANDOM_ROWS)]
    return [[to_float32(v) for v in row] for row in rows]


def little_endian(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


STRESS_CREATED = "2026-01-01T00:00:00Z"
STRESS_PLANS = {
    # name: (outputs, leaf_width, trees, aggregation, post_transform, task)
    "stress_binary_logistic": (1, 1, 48, "sum", "logistic", "binary"),
    "stress_multiclass_softmax": (5, 1, 60, "sum", "softmax", "multiclass"),
    "stress_forest_mean": (3, 3, 24, "mean", "identity", "multiclass"),
    "stress_categorical": (1, 1, 40, "sum", "logistic", "binary"),
}
CATEGORICAL_STRESS = {"stress_categorical": 2}  # its first 2 columns are category codes
CATEGORY_CODES = 80  # codes 0..79: sets span three 32-bit words
THRESHOLD_POOL = (-2.5, -1.0, -0.375, 0.0, 0.1, 0.5, 1.0, 1.5, 3.25, 10.0, 1e-3, -1e4)


def random_tree(rng: random.Random, n_features: int, leaf_width: int, max_depth: int,
                categorical_columns: int = 0):
    """A random tree in the IR's preorder node tuples (pyastore/ir.py); splits on the first
    ``categorical_columns`` columns are categorical, each over a random set of codes."""
    from pyastore.ir import Tree

    feature, threshold, left, right, default_left, value = [], [], [], [], [], []
    categories: list[tuple[int, ...]] = []

    def grow(depth: int) -> int:
        index = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        default_left.append(False)
        value.append(())
        categories.append(())
        if depth < max_depth and (depth < 2 or rng.random() < 0.7):
            feature[index] = rng.randrange(n_features)
            if feature[index] < categorical_columns:
                size = rng.randrange(1, CATEGORY_CODES // 2)
                categories[index] = tuple(sorted(rng.sample(range(CATEGORY_CODES), size)))
            else:
                threshold[index] = to_float32(rng.choice(THRESHOLD_POOL) if rng.random() < 0.7
                                              else rng.uniform(-5.0, 5.0))
            default_left[index] = rng.random() < 0.5
            left[index] = grow(depth + 1)
            right[index] = grow(depth + 1)
        else:
            value[index] = tuple(to_float32(rng.uniform(-1.5, 1.5)) for _ in range(leaf_width))
        return index

    grow(0)
    return Tree(tuple(feature), tuple(threshold), tuple(left), tuple(right),
                tuple(default_left), tuple(value),
                tuple(categories) if any(categories) else ())


def stress_specs() -> dict:
    """The seeded stress forests, by name (see the module docstring)."""
    from pyastore.ir import Algorithm, Forest, ModelSpec, Output, ScoreRules, Variable

    specs = {}
    n_features = 6
    for name, (n_outputs, leaf_width, n_trees, aggregation, post, task) in STRESS_PLANS.items():
        rng = random.Random(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
        trees = tuple(random_tree(rng, n_features, leaf_width, 7, CATEGORICAL_STRESS.get(name, 0))
                      for _ in range(n_trees))
        forest = Forest(n_features=n_features, n_outputs=n_outputs, leaf_width=leaf_width,
                        trees=trees,
                        tree_output=tuple(t % n_outputs if leaf_width == 1 else 0
                                          for t in range(n_trees)),
                        aggregation=aggregation,
                        base_score=tuple(to_float32(rng.uniform(-0.5, 0.5))
                                         for _ in range(n_outputs)),
                        post_transform=post)
        specs[name] = ModelSpec(
            name=name, description="seeded random forest for the cross-architecture check",
            algorithm=Algorithm("gradient_boosted_trees" if aggregation == "sum" else
                                "random_forest", "seeded-random", "1", "Forest"),
            inputs=tuple(Variable(f"x{i}") for i in range(n_features)),
            outputs=tuple(Output(f"y{k}", "probability" if post != "identity" else "score")
                          for k in range(n_outputs)),
            rules=ScoreRules(task, class_labels=tuple(range(max(n_outputs, 2)))),
            forest=forest,
        )
    return specs


def stress_containers(rebuild: bool = False, folder: Path = HERE) -> dict[str, bytes]:
    """The stress containers by file name: the committed ones, unless ``rebuild`` (or one is
    missing). Kept as committed so that a later change of the writer (META encoding, format
    minor) does not make the golden scores stale: their scores are what is pinned."""
    from pyastore import format as fmt

    files = {}
    for name, spec in stress_specs().items():
        path = folder / f"{name}.astore"
        files[path.name] = (path.read_bytes() if not rebuild and path.is_file()
                            else fmt.write(spec, None, created=STRESS_CREATED))
    return files


def golden_containers() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.astore"))


def build_all(backend: str = "pybind",
              rebuild_stress: bool = False) -> tuple[dict[str, bytes], dict]:
    """Every golden score file's bytes by file name, and the manifest."""
    core = load_core(backend)
    files: dict[str, bytes] = stress_containers(rebuild_stress)
    manifest: dict[str, dict] = {}
    seen_keys: set[str] = set()
    sources = [(p, p.read_bytes()) for p in golden_containers()]
    sources += [(HERE / n, data) for n, data in sorted(files.items())]
    for path, data in sources:
        container = core.Container(data)
        frst, mlp = container.section("FRST"), container.section("MLP_")
        if (frst is None and mlp is None) or container.store_key in seen_keys:
            continue
        seen_keys.add(container.store_key)
        model = core.Model(container)
        thresholds = (raw_thresholds(container, forest_thresholds(frst, container.section("CATS")))
                      if frst else {})
        rows = make_rows(path.stem, model.n_inputs, thresholds)
        x = array("f", [v for row in rows for v in row])
        out = array("d", bytes(8 * len(rows) * model.n_outputs))
        model.score_into(x, out, 1)
        name = path.stem
        files[f"{name}.input.f32"] = little_endian(x)
        files[f"{name}.expected.f64"] = little_endian(out)
        manifest[name] = {
            "container": path.relative_to(ROOT).as_posix(),
            "store_key": container.store_key,
            "payload": "FRST" if frst is not None else "MLP_",
            "n_rows": len(rows),
            "n_inputs": model.n_inputs,
            "n_outputs": model.n_outputs,
            "nan_outputs": sum(1 for v in out if v != v),
            "input_sha256": hashlib.sha256(files[f"{name}.input.f32"]).hexdigest(),
            "expected_sha256": hashlib.sha256(files[f"{name}.expected.f64"]).hexdigest(),
        }
    return files, {"version": FORMAT_VERSION, "generator": "tests/golden_scores/generate.py",
                   "golden": manifest}


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def stale_files(files: dict[str, bytes], manifest: dict, folder: Path = HERE) -> list[str]:
    """Names of the golden score files that differ from (or are missing in) ``folder``."""
    wanted = dict(files, **{"manifest.json": manifest_text(manifest).encode()})
    stale = [n for n, data in wanted.items()
             if not (folder / n).is_file() or (folder / n).read_bytes() != data]
    extra = [p.name for p in folder.iterdir()
             if p.name.endswith((".f32", ".f64", ".astore")) and p.name not in wanted]
    return sorted(stale + extra)


def write_all(folder: Path = HERE, backend: str = "pybind",
              rebuild_stress: bool = False) -> list[str]:
    """Rewrite the golden score files; returns the names that changed."""
    files, manifest = build_all(backend, rebuild_stress)
    changed = stale_files(files, manifest, folder)
    for path in folder.iterdir():
        if path.name.endswith((".f32", ".f64", ".astore")) and path.name not in files:
            path.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "manifest.json").write_text(manifest_text(manifest))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("--backend", choices=("pybind", "cffi"), default="pybind")
    parser.add_argument("--rebuild-stress", action="store_true",
                        help="write the stress containers anew with pyastore.format")
    args = parser.parse_args(argv)
    if args.check:
        files, manifest = build_all(args.backend, args.rebuild_stress)
        stale = stale_files(files, manifest)
        for name in stale:
            print(f"stale: tests/golden_scores/{name}")
        return 1 if stale else 0
    for name in write_all(backend=args.backend, rebuild_stress=args.rebuild_stress):
        print(f"wrote tests/golden_scores/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
