"""The federated tree: its id, fitting on standardised features, exact folding, evaluation.

A tree is created by one agent (its *creator*) in FIT and keeps the id ``(creator, counter)``
for life, the counter being kept by the creator. It is a regression tree on the 0/1 label,
grown as a random forest grows its trees: on a bootstrap sample of the creator's training rows,
with a random subset of ``max_features`` features tried at each split (scikit-learn's
``DecisionTreeRegressor``, fully grown unless ``max_depth`` is set).

Units. The creator fits on its *standardised* features ``z = float32((v - mean) / sd)``
(float64 arithmetic, then rounded: exactly what a container's XFRM ``standardize`` column
computes), with ``mean``/``sd`` from its own training rows. The scaler is then **folded exactly
into the thresholds**: for each split ``z < t`` the raw float32 threshold ``r`` is the smallest
float32 ``v`` with ``float32((v - mean) / sd) >= t``. As ``v -> float32((v - mean) / sd)`` is
non-decreasing, ``v < r`` holds for exactly the float32 values with ``z < t``, so the folded
tree routes every float32 row (NaN to the same default side) exactly as the fitted tree routes
its standardised row. Every container therefore reads raw features, and trees of different
creators (different scalers) can sit in one forest. The creator's mean and sd never leave it.

Tree digest: SHA-256 of the tree's bytes in a FRST section (``pyastore.cli_provenance``),
the same whether the tree is read from its one-tree container or from a final model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyastore.errors import InputError, UsageError
from pyastore.ir import Tree

_SIGN = np.uint32(0x80000000)


@dataclass(frozen=True, order=True)
class TreeId:
    """``(creator, counter)``: agent ``creator`` made it as its ``counter``-th tree (0-based).

    Text form ``"<creator>/<counter>"``; ``TreeId.parse(t.text) == t``.
    """

    creator: int
    counter: int

    @property
    def text(self) -> str:
        return f"{self.creator}/{self.counter}"

    @classmethod
    def parse(cls, text: str) -> TreeId:
        try:
            creator, counter = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise UsageError(f"{text!r} is not a tree id (creator/counter)") from None
        return cls(creator, counter)


@dataclass(frozen=True)
class FedTree:
    """A tree as agents hold it: its id, the IR tree in raw units, its one-tree container.

    ``store_key`` is the container's store key, ``digest`` the tree digest (module docstring),
    ``round`` the FIT round that made it.
    """

    tree_id: TreeId
    tree: Tree
    store_key: str
    container: bytes = field(repr=False)
    digest: str
    round: int


@dataclass(frozen=True)
class Scaler:
    """Per-feature ``mean`` and ``sd`` of one agent's training rows (``sd`` 1 when constant)."""

    mean: tuple[float, ...]
    sd: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        if len(x) == 0:
            raise InputError("cannot standardise an agent with no training rows")
        x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
        mean = np.nanmean(x64, axis=0)
        sd = np.nanstd(x64, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        return cls(tuple(mean.tolist()), tuple(sd.tolist()))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``float32((float32(v) - mean) / sd)`` per column, as a container's XFRM computes."""
        x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
        return ((x64 - np.asarray(self.mean)) / np.asarray(self.sd)).astype(np.float32)


# ---- exact folding of a scaler into float32 thresholds ----------------------------------------


def _ordered_keys(values: np.ndarray) -> np.ndarray:
    """float32 -> int64 keys whose order is the float order (-0.0 just below +0.0)."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    keys = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return keys.astype(np.int64)


def _from_keys(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64).astype(np.uint32)
    bits = np.where(keys & _SIGN, keys & ~_SIGN, ~keys)
    return bits.astype(np.uint32).view(np.float32)


def fold_thresholds(features: np.ndarray, z_thresholds: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Raw float32 thresholds ``r`` with ``v < r  <=>  standardised(v) < z_threshold``.

    ``features`` and ``z_thresholds`` (float32) are per split node; the search runs over the
    ordered float32 line from -inf to +inf (no NaN lies between), 33 halvings at most.
    """
    features = np.asarray(features, dtype=np.int64)
    targets = np.asarray(z_thresholds, dtype=np.float32)
    mean = np.asarray(scaler.mean, dtype=np.float64)[features]
    sd = np.asarray(scaler.sd, dtype=np.float64)[features]
    lo = np.full(len(targets), _ordered_keys(np.float32(-np.inf)), dtype=np.int64)
    hi = np.full(len(targets), _ordered_keys(np.float32(np.inf)), dtype=np.int64)
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        value = _from_keys(mid).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            standardised = ((value - mean) / sd).astype(np.float32)
        at_or_above = standardised >= targets
        hi = np.where(open_ & at_or_above, mid, hi)
        lo = np.where(open_ & ~at_or_above, mid + 1, lo)
    return _from_keys(lo)


# ---- fitting -------------------------------------------------------------------------------


def fit_tree(z: np.ndarray, y: np.ndarray, scaler: Scaler, rng: np.random.Generator, *,
             max_features: str | float | int | None = "sqrt",
             max_depth: int | None = None) -> Tree:
    """One regression tree on a bootstrap sample of standardised rows ``z``, in raw units."""
    from sklearn.tree import DecisionTreeRegressor

    from trainer.export.sklearn_trees import le_to_lt_float32

    n_rows = len(y)
    if n_rows == 0:
        raise InputError("cannot fit a tree on an agent with no training rows")
    rows = rng.integers(0, n_rows, n_rows)
    model = DecisionTreeRegressor(max_features=max_features, max_depth=max_depth,
                                  random_state=int(rng.integers(0, 2**31 - 1)))
    model.fit(z[rows], y[rows].astype(np.float64))
    structure = model.tree_
    left = structure.children_left.astype(np.int64)
    right = structure.children_right.astype(np.int64)
    is_leaf = left == -1
    feature = np.where(is_leaf, -1, structure.feature.astype(np.int64))
    z_thresholds, swap = le_to_lt_float32(np.where(is_leaf, 0.0, structure.threshold))
    if np.any(swap & ~is_leaf):  # only a +inf threshold swaps; finite data never makes one
        raise InputError("a split threshold is +inf: the training rows hold infinite values")
    raw = np.zeros(len(feature), dtype=np.float32)
    splits = np.flatnonzero(~is_leaf)
    if len(splits):
        raw[splits] = fold_thresholds(feature[splits], z_thresholds[splits], scaler)
    nan_left = getattr(structure, "missing_go_to_left", None)
    nan_left = np.zeros(len(feature), dtype=bool) if nan_left is None else nan_left.astype(bool)
    values = structure.value[:, 0, 0].astype(np.float64)
    return Tree(
        feature=tuple(feature.tolist()),
        threshold=tuple(np.where(is_leaf, 0.0, raw.astype(np.float64)).tolist()),
        left=tuple(left.tolist()),
        right=tuple(right.tolist()),
        default_left=tuple(bool(v) and not leaf for v, leaf in zip(nan_left, is_leaf)),
        value=tuple((float(v),) if leaf else () for v, leaf in zip(values, is_leaf)),
    )


# ---- evaluation ------------------------------------------------------------------------------


def predict_tree(tree: Tree, x: np.ndarray) -> np.ndarray:
    """The tree's leaf value for each float32 row of ``x`` (the IR rule: ``x < t`` left,
    NaN to the default side); leaf values rounded to float32 as a container stores them."""
    x = np.asarray(x, dtype=np.float32)
    feature = np.asarray(tree.feature, dtype=np.int64)
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    left = np.asarray(tree.left, dtype=np.int64)
    right = np.asarray(tree.right, dtype=np.int64)
    default_left = np.asarray(tree.default_left, dtype=bool)
    leaf_value = np.array([v[0] if v else 0.0 for v in tree.value], dtype=np.float32)
    node = np.zeros(len(x), dtype=np.int64)
    rows = np.arange(len(x))
    active = feature[node] >= 0
    while active.any():
        at = node[active]
        values = x[rows[active], feature[at]].astype(np.float64)
        go_left = np.where(np.isnan(values), default_left[at], values < threshold[at])
        node[active] = np.where(go_left, left[at], right[at])
        active = feature[node] >= 0
    return leaf_value[node].astype(np.float64)


def predict_matrix(trees: list[Tree], x: np.ndarray) -> np.ndarray:
    """``(len(trees), n_rows)`` matrix of every tree's output on every row."""
    if not trees:
        return np.zeros((0, len(x)))
    return np.vstack([predict_tree(tree, x) for tree in trees])


def ensemble_score(trees: list[Tree], x: np.ndarray) -> np.ndarray:
    """Phi(x): the mean of the tree outputs (0 for an empty ensemble)."""
    if not trees:
        return np.zeros(len(x))
    return predict_matrix(trees, x).mean(axis=0)
