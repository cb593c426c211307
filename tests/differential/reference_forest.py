"""A plain numpy evaluator of the tree IR (``pyastore.ir.Forest``), the oracle of the tests.

It implements the scoring rules of the ``pyastore.ir`` module docstring literally and nothing
else, so differential tests can check two things separately: that an exporter's IR reproduces
the original library (IR vs xgboost / scikit-learn), and that the C core reproduces the IR
(C core vs this module).

* ``score_forest(forest, X)`` walks every tree for all rows at once, one tree level per step:
  a row at split node ``i`` goes left when ``X[row, feature[i]] < threshold[i]`` compared in
  float32, to the ``default_left[i]`` side when the value is NaN; ``+inf``/``-inf`` compare as
  ordinary floats. Leaf contributions are accumulated in float64 tree by tree, in tree order,
  then averaged (``"mean"``) or not (``"sum"``), ``base_score`` is added and
  ``post_transform`` applied.
  At a categorical split (``Tree.categories``) the row goes left when the value is one of
  the node's integer codes, right otherwise, and to the default side when NaN.
* ``leaf_dtype=np.float32`` rounds every leaf value to float32 first: that is what a consumer
  storing leaves as float32 (the C core) computes, and what parity must survive.
* ``return_leaves=True`` also returns the node id of the leaf each row reached in each tree,
  for comparison with the libraries' own leaf indices (``pred_leaf``, ``apply``).
* ``container_leaf_labels(spec, labels, X)`` reads back the leaf the C core itself reaches in
  every tree (pyastore has no leaf-index API): a container whose output ``t`` is tree ``t``
  with library leaf labels as leaf values.
* ``validate_forest(forest)`` checks the structural invariants every exporter must meet and
  raises ``ValueError`` naming the first violation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyastore.ir import AGGREGATIONS, POST_TRANSFORMS, Forest, Tree, is_float32


def validate_forest(forest: Forest) -> None:
    """Raise ``ValueError`` unless ``forest`` is a well-formed IR forest."""
    if forest.n_features < 0:
        raise ValueError(f"n_features is negative: {forest.n_features}")
    if forest.n_outputs < 1:
        raise ValueError(f"n_outputs must be >= 1, got {forest.n_outputs}")
    if forest.leaf_width not in (1, forest.n_outputs):
        raise ValueError(
            f"leaf_width {forest.leaf_width} is neither 1 nor n_outputs {forest.n_outputs}"
        )
    if forest.aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {forest.aggregation!r}")
    if forest.post_transform not in POST_TRANSFORMS:
        raise ValueError(f"unknown post_transform {forest.post_transform!r}")
    if len(forest.base_score) not in (0, forest.n_outputs):
        raise ValueError(
            f"base_score has {len(forest.base_score)} values, expected 0 or {forest.n_outputs}"
        )
    for k, value in enumerate(forest.base_score):
        if not math.isfinite(value):
            raise ValueError(f"base_score[{k}] is not finite: {value}")
    if len(forest.tree_output) != len(forest.trees):
        raise ValueError(
            f"tree_output has {len(forest.tree_output)} entries for {len(forest.trees)} trees"
        )
    for t, output in enumerate(forest.tree_output):
        if not 0 <= output < forest.n_outputs:
            raise ValueError(f"tree {t}: tree_output {output} out of range")
    if forest.aggregation == "mean" and not forest.trees:
        raise ValueError("aggregation 'mean' over zero trees")
    for t, tree in enumerate(forest.trees):
        _validate_tree(tree, forest, f"tree {t}")


def _validate_tree(tree: Tree, forest: Forest, where: str) -> None:
    n = tree.n_nodes
    if n < 1:
        raise ValueError(f"{where}: no nodes")
    for field_name in ("threshold", "left", "right", "default_left", "value"):
        if len(getattr(tree, field_name)) != n:
            raise ValueError(f"{where}: {field_name} has {len(getattr(tree, field_name))} "
                             f"entries for {n} nodes")
    if tree.categories and len(tree.categories) != n:
        raise ValueError(f"{where}: categories has {len(tree.categories)} entries for {n} nodes")
    for i in range(n):
        feature = tree.feature[i]
        codes = tree.category_set(i)
        if codes and (feature < 0 or tree.threshold[i] != 0.0 or list(codes) != sorted(set(codes))
                      or codes[0] < 0 or codes[-1] >= 1 << 24):
            raise ValueError(f"{where} node {i}: categorical split with codes {codes[:5]}... "
                             f"is not a split of sorted distinct codes below 2**24 with "
                             f"threshold 0.0")
        if not isinstance(tree.default_left[i], bool):
            raise ValueError(f"{where} node {i}: default_left is not a bool")
        if feature == -1:
            if len(tree.value[i]) != forest.leaf_width:
                raise ValueError(f"{where} node {i}: leaf has {len(tree.value[i])} values, "
                                 f"leaf_width is {forest.leaf_width}")
            for value in tree.value[i]:
                if not math.isfinite(value):
                    raise ValueError(f"{where} node {i}: leaf value {value} is not finite")
            continue
        if not 0 <= feature < forest.n_features:
            raise ValueError(f"{where} node {i}: feature {feature} out of range "
                             f"[0, {forest.n_features})")
        if not is_float32(tree.threshold[i]):
            raise ValueError(f"{where} node {i}: threshold {tree.threshold[i]!r} is not "
                             f"exactly a float32")
        if tree.value[i] != ():
            raise ValueError(f"{where} node {i}: split node carries a value")
        for child in (tree.left[i], tree.right[i]):
            if not 0 <= child < n:
                raise ValueError(f"{where} node {i}: child {child} out of range [0, {n})")
    seen = [False] * n
    stack = [0]
    while stack:
        node = stack.pop()
        if seen[node]:
            raise ValueError(f"{where}: node {node} is reached twice (shared child or cycle)")
        seen[node] = True
        if tree.feature[node] != -1:
            stack.append(tree.left[node])
            stack.append(tree.right[node])
    unreachable = [i for i in range(n) if not seen[i]]
    if unreachable:
        raise ValueError(f"{where}: nodes {unreachable[:10]} are unreachable from the root")


class _TreeArrays:
    """One tree as numpy arrays, ready for level-by-level traversal."""

    def __init__(self, tree: Tree, leaf_width: int, leaf_dtype):
        self.feature = np.asarray(tree.feature, dtype=np.int64)
        self.threshold = np.asarray(tree.threshold, dtype=np.float32)
        self.left = np.asarray(tree.left, dtype=np.int64)
        self.right = np.asarray(tree.right, dtype=np.int64)
        self.default_left = np.asarray(tree.default_left, dtype=bool)
        # categorical splits: node -> a boolean table over the codes below its largest + 1
        self.sets = {i: np.isin(np.arange(max(c) + 1), c)
                     for i, c in enumerate(tree.categories) if c}
        values = np.zeros((tree.n_nodes, leaf_width), dtype=np.float64)
        for i, leaf in enumerate(tree.value):
            if tree.feature[i] == -1:
                values[i] = np.asarray(leaf, dtype=np.float64).astype(leaf_dtype)
        self.values = values

    def leaf_ids(self, X: np.ndarray) -> np.ndarray:
        node = np.zeros(X.shape[0], dtype=np.int64)
        active = np.flatnonzero(self.feature[node] >= 0)
        while active.size:
            at = node[active]
            x = X[active, self.feature[at]]
            with np.errstate(invalid="ignore"):
                go_left = np.where(np.isnan(x), self.default_left[at], x < self.threshold[at])
                for i, table in self.sets.items():
                    here = (at == i) & ~np.isnan(x)
                    v = x[here]
                    code = np.where((v >= 0) & (v < table.size) & (v == np.floor(v)), v, -1)
                    inside = code >= 0
                    go = np.zeros(v.shape, dtype=bool)
                    go[inside] = table[code[inside].astype(np.int64)]
                    go_left[here] = go
            node[active] = np.where(go_left, self.left[at], self.right[at])
            active = active[self.feature[node[active]] >= 0]
        return node


def tree_leaf_ids(tree: Tree, X: np.ndarray) -> np.ndarray:
    """Node id of the leaf each row of float32 ``X`` reaches in ``tree``."""
    return _TreeArrays(tree, 1, np.float64).leaf_ids(_as_input(X, None))


def score_forest(forest: Forest, X: np.ndarray, *, leaf_dtype=np.float64,
                 return_leaves: bool = False, return_raw: bool = False):
    """Score float32 rows ``X`` (n_rows x n_features) with ``forest``.

    Returns float64 outputs of shape (n_rows, n_outputs); with ``return_leaves`` also the
    (n_rows, n_trees) leaf node ids; with ``return_raw`` also the raw scores before
    ``post_transform``. Extra results come in that order after the outputs.
    """
    X = _as_input(X, forest.n_features)
    n_rows = X.shape[0]
    accumulated = np.zeros((n_rows, forest.n_outputs), dtype=np.float64)
    leaves = np.zeros((n_rows, len(forest.trees)), dtype=np.int64)
    for t, tree in enumerate(forest.trees):
        arrays = _TreeArrays(tree, forest.leaf_width, leaf_dtype)
        leaf = arrays.leaf_ids(X)
        leaves[:, t] = leaf
        if forest.leaf_width == 1:
            accumulated[:, forest.tree_output[t]] += arrays.values[leaf, 0]
        else:
            accumulated += arrays.values[leaf]
    if forest.aggregation == "mean":
        accumulated /= len(forest.trees)
    base = np.zeros(forest.n_outputs) if not forest.base_score else np.asarray(
        forest.base_score, dtype=np.float64)
    raw = base + accumulated
    outputs = post_transform(forest.post_transform, raw)
    extra = []
    if return_leaves:
        extra.append(leaves)
    if return_raw:
        extra.append(raw)
    return (outputs, *extra) if extra else outputs


def post_transform(name: str, raw: np.ndarray) -> np.ndarray:
    """Apply an IR post-transform to float64 raw scores (n_rows x n_outputs)."""
    if name == "identity":
        return raw.copy()
    if name == "logistic":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-raw))
    if name == "softmax":
        shifted = raw - raw.max(axis=1, keepdims=True)
        exponentials = np.exp(shifted)
        return exponentials / exponentials.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown post_transform {name!r}")


def split_nodes(forest: Forest):
    """Yield ``(tree index, node id, feature, threshold)`` for every split node."""
    for t, tree in enumerate(forest.trees):
        for i, feature in enumerate(tree.feature):
            if feature >= 0:
                yield t, i, feature, tree.threshold[i]


def threshold_rows(forest: Forest, base_rows: np.ndarray, *, limit: int | None = None
                   ) -> np.ndarray:
    """Rows that sit exactly on the IR's split thresholds.

    For each split node (up to ``limit``), two copies of a base row: one with the split feature
    set to the threshold itself (the IR sends it right) and one with the float32 just below it
    (sent left). These are the rows where an off-by-one-ulp comparison would show.
    """
    rows = []
    base_rows = _as_input(base_rows, forest.n_features)
    numeric = [(feature, threshold) for t, i, feature, threshold in split_nodes(forest)
               if not forest.trees[t].category_set(i)]
    for count, (feature, threshold) in enumerate(numeric):
        if limit is not None and count >= limit:
            break
        threshold32 = np.float32(threshold)
        for value in (threshold32, np.nextafter(threshold32, np.float32(-np.inf))):
            if not np.isfinite(value):
                continue
            row = base_rows[count % base_rows.shape[0]].copy()
            row[feature] = value
            rows.append(row)
    if not rows:
        return np.zeros((0, forest.n_features), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def category_rows(forest: Forest, base_rows: np.ndarray) -> np.ndarray:
    """For every categorical split, copies of a base row whose split feature holds each code
    of its set and the codes just outside it (one below the smallest, one above the largest,
    and the gaps between): the rows where a set read off by one bit or one word would show.
    Numeric splits get none (``threshold_rows``); the values are whole numbers or -1."""
    rows = []
    base_rows = _as_input(base_rows, forest.n_features)
    count = 0
    for tree in forest.trees:
        for node, codes in enumerate(tree.categories):
            if not codes:
                continue
            values = set(codes) | {codes[0] - 1, codes[-1] + 1} | {c + 1 for c in codes}
            for value in sorted(values):
                row = base_rows[count % base_rows.shape[0]].copy()
                row[tree.feature[node]] = value
                rows.append(row)
                count += 1
    if not rows:
        return np.zeros((0, forest.n_features), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def _as_input(X: np.ndarray, n_features: int | None) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype != np.float32:
        raise TypeError(f"X must be float32, got {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} columns, the forest reads {n_features}")
    return X


def container_scores(spec, X: np.ndarray, *, n_threads: int = 1) -> np.ndarray:
    """Score ``X`` with the C core: write ``spec`` into a signed container, load it back
    (verifying it), and score. The differential tests put the C core itself in the loop."""
    import pyastore
    from pyastore import format as fmt
    from pyastore.keys import SigningKey

    key = SigningKey(bytes(range(32)))
    data = fmt.write(spec, key, created="2026-01-01T00:00:00Z")
    model = pyastore.load(data, trusted_keys=[key.public_key], use_default_trust=False)
    return model.score(np.asarray(X, dtype=np.float32), n_threads=n_threads)


def assert_container_matches(spec, X: np.ndarray) -> float:
    """The C core agrees with this module's float32-leaf evaluation (to float64 rounding of
    exp and summation) and with itself across thread counts; returns the worst difference."""
    expected = score_forest(spec.forest, X, leaf_dtype=np.float32)
    got = container_scores(spec, X)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got, container_scores(spec, X, n_threads=2))
    return float(np.max(np.abs(got - expected))) if got.size else 0.0


def leaf_label_spec(spec, labels):
    """A container spec that outputs, for every tree, the library leaf label a row reaches.

    ``labels[t][i]`` is the library's leaf index of IR node ``i`` of tree ``t`` (what the
    LightGBM and CatBoost exporters' ``export_traced`` return). Output ``t`` of the returned
    spec is tree ``t`` alone with each leaf's value replaced by its label (an exact float32 up
    to 2**24), so scoring it with the C core reads back which leaf the core itself reached.
    """
    import dataclasses

    from pyastore.ir import Forest, ModelSpec, Output, ScoreRules

    trees = []
    for tree, tree_labels in zip(spec.forest.trees, labels):
        if len(tree_labels) != tree.n_nodes:
            raise ValueError("one label per node is needed")
        trees.append(dataclasses.replace(tree, value=tuple(
            (float(label),) if feature < 0 else ()
            for feature, label in zip(tree.feature, tree_labels))))
    n_trees = len(trees)
    forest = Forest(n_features=spec.forest.n_features, n_outputs=n_trees, leaf_width=1,
                    trees=tuple(trees), tree_output=tuple(range(n_trees)), aggregation="sum",
                    base_score=(0.0,) * n_trees, post_transform="identity")
    outputs = tuple(Output(name=f"leaf_{t}", type="value", meaning=f"leaf of tree {t}")
                    for t in range(n_trees))
    return ModelSpec(name="leaf labels", algorithm=spec.algorithm, inputs=spec.inputs,
                     outputs=outputs, rules=ScoreRules(task="embedding"), forest=forest)


def container_leaf_labels(spec, labels, X: np.ndarray) -> np.ndarray:
    """(n_rows, n_trees) library leaf labels the C core reaches for ``X`` (``leaf_label_spec``)."""
    scores = container_scores(leaf_label_spec(spec, labels), X)
    leaves = scores.astype(np.int64)
    np.testing.assert_array_equal(leaves, scores)  # labels are whole numbers
    return leaves


def shared_training_data(seed: int, task: str, n_rows: int, n_classes: int = 3,
                         n_features: int = 5, nan_fraction: float = 0.1,
                         dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Training rows for the differential tests: normal features (column 3 integer-valued)
    with NaN, and a target of ``task`` (binary, multiclass, regression) that depends on
    several features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(dtype)
    if n_features > 3:
        X[:, 3] = rng.integers(0, 10, n_rows)
    filled = X.copy()
    X[rng.random(X.shape) < nan_fraction] = np.nan
    signal = filled[:, 0] + 0.5 * filled[:, 1 % n_features] * filled[:, -1] \
        + 0.2 * filled[:, 3 % n_features] + rng.normal(scale=0.5, size=n_rows)
    if task == "binary":
        y = (signal > 0.3).astype(int)
    elif task == "multiclass":
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
    else:
        y = 3.0 * signal + 2.0
    return X, y


@pytest.fixture(autouse=True)
def one_native_thread():
    """Native thread pools (OpenMP, BLAS) at one thread: same results, and predictable
    timing on a shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


HOT_MERCHANTS = (1, 3, 5, 8, 13, 21, 34, 35, 39)


def shared_categorical_data(seed: int, task: str, n_rows: int = 3000,
                            zero_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Training rows for the categorical differential tests: three normal columns (with
    ``zero_fraction`` exact zeros) and two categorical code columns, 40 and 6 categories,
    10 % NaN everywhere; the target (of ``task``) depends on which merchants and channels a
    row has, beyond any order of their codes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 5)).astype(np.float32)
    X[rng.random(X.shape) < zero_fraction] = 0.0
    X[:, 3] = rng.integers(0, 40, n_rows)
    X[:, 4] = rng.integers(0, 6, n_rows)
    X[rng.random(X.shape) < 0.1] = np.nan
    signal = (np.nan_to_num(X[:, 0]) + 1.5 * np.isin(X[:, 3], HOT_MERCHANTS)
              - np.isin(X[:, 4], (1, 4)) + 0.3 * rng.normal(size=n_rows))
    if task == "binary":
        return X, (signal > 0.6).astype(int)
    if task == "multiclass":
        return X, np.digitize(signal, [-0.3, 0.9])
    return X, signal


MERCHANT_NAMES = tuple(f"shop {k}" for k in range(30))


def pandas_category_frame(seed: int, n_rows: int):
    """A DataFrame of an ``amount`` and two pandas category columns -- ``merchant`` (30 texts,
    5 % missing) and ``area`` (three integers) -- and a 0/1 target depending on all three."""
    import pandas

    rng = np.random.default_rng(seed)
    merchants = list(MERCHANT_NAMES)
    frame = pandas.DataFrame({
        "amount": rng.normal(size=n_rows),
        "merchant": pandas.Categorical(rng.choice(merchants, size=n_rows),
                                       categories=merchants),
        "area": pandas.Categorical(rng.choice([415, 408, 510], size=n_rows)),
    })
    frame.loc[rng.random(n_rows) < 0.05, "merchant"] = None
    hot = frame["merchant"].isin(merchants[::4]).to_numpy()
    y = (hot ^ (frame["amount"] > 0.5).to_numpy() ^ (frame["area"] == 510).to_numpy())
    return frame, y.astype(int)


def assert_recorded_vocabularies(spec) -> None:
    """The inputs of a model fitted on ``pandas_category_frame``: the two category columns
    became categorical inputs whose vocabularies are the recorded categories (integers as
    their decimal text), and the forest holds categorical splits."""
    kinds = {v.name: (v.type, v.categorical.categories if v.categorical else None)
             for v in spec.inputs}
    assert kinds == {"amount": ("float", None), "merchant": ("categorical", MERCHANT_NAMES),
                     "area": ("categorical", ("408", "415", "510"))}
    assert any(codes for tree in spec.forest.trees for codes in tree.categories)


def signed_container(spec):
    """``spec`` written into a container signed by a test key, loaded back (verified)."""
    import pyastore
    from pyastore import format as fmt
    from pyastore.keys import SigningKey

    key = SigningKey(bytes(range(32)))
    return pyastore.load(fmt.write(spec, key, created="2026-01-01T00:00:00Z"),
                         trusted_keys=[key.public_key], use_default_trust=False)
