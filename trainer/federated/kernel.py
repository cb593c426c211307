"""The tree kernel: common labelled subtrees weighted by a linear kernel on split thresholds.

For trees ``T`` and ``T'``::

    k(T, T') = sum over nodes v in T, v' in T' of  x(v) * x(v') * C(v, v')

* ``C(v, v')`` (Collins-Duffy convolution kernel) counts the labelled subtree *fragments*
  rooted at both ``v`` and ``v'``. A split node's label is its feature index; its
  *production* is ``(feature, label of left child, label of right child)``, where every leaf
  carries the one label ``leaf``. A fragment rooted at a split node holds that node and both
  of its children (the production), and each child that is a split is either a frontier or
  expanded into a fragment rooted there. Hence ``C(v, v') = 0`` when the productions differ,
  else ``C(v, v') = prod over the two children j of (1 + C(child_j(v), child_j(v')))``.
* **Leaves** are terminals: they take part in their parent's production (a split whose left
  child is a leaf differs from one whose left child splits), but have no production of their
  own, so ``C(leaf, .) = 0`` and they add no term (and carry no threshold).
* **Child order** is kept: the left child is always the ``x < threshold`` side, so two splits
  match child by child, left with left; swapping children is a different tree.
* ``x(v)`` is the split threshold of ``v`` in the **ranking agent's standardised units**
  ``(r - mean) / sd`` of that feature (``r`` the raw float32 threshold, ``mean``/``sd`` the
  ranking agent's own scaler): every candidate tree, whoever made it, is measured in one unit
  system, the one of the data the agent knows.
* Optional Collins-Duffy decay ``lam`` (0 < lam <= 1): ``C = lam * prod(...)`` damps large
  fragments; ``lam = 1`` (default) is the plain count.

``k`` is positive semidefinite: ``C`` is an inner product of fragment-count vectors,
``x(v) x(v')`` a linear kernel, their product (Schur) and its sum over node pairs are too.
``normalized=True`` gives ``k(T, T') / sqrt(k(T, T) k(T', T'))`` (0 where a self-kernel is 0,
e.g. a tree that is a single leaf); also PSD.

Computation: all node pairs with equal productions across the two tree lists are enumerated
at once (sorting by production), then ``C`` is filled level by level of pair height (a pair's
children are always lower), each level one vectorised step. Counts can grow doubly
exponentially with the depth of identical balanced subtrees; a Gram matrix that overflows
float64 is refused (``UnsupportedModelError``) with a hint to use ``lam < 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import Tree
from trainer.federated.trees import Scaler


@dataclass(frozen=True)
class KernelTree:
    """A tree as the kernel sees it: per node ``feature`` (-1 leaf), ``weight`` x(v) (0 at
    leaves), ``left``/``right`` children (-1 at leaves)."""

    feature: np.ndarray
    weight: np.ndarray
    left: np.ndarray
    right: np.ndarray


def kernel_tree(tree: Tree, scaler: Scaler | None = None) -> KernelTree:
    """The kernel's view of an IR tree; thresholds standardised by ``scaler`` when given."""
    feature = np.asarray(tree.feature, dtype=np.int64)
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    is_leaf = feature < 0
    weight = threshold.copy()
    if scaler is not None:
        index = np.where(is_leaf, 0, feature)
        weight = (threshold - np.asarray(scaler.mean)[index]) / np.asarray(scaler.sd)[index]
    weight = np.where(is_leaf, 0.0, weight)
    if not np.all(np.isfinite(weight)):
        raise UnsupportedModelError("a split threshold is not finite: the tree kernel needs "
                                    "finite thresholds")
    left = np.where(is_leaf, -1, np.asarray(tree.left, dtype=np.int64))
    right = np.where(is_leaf, -1, np.asarray(tree.right, dtype=np.int64))
    return KernelTree(feature, weight, left, right)


@dataclass(frozen=True)
class _Nodes:
    """All nodes of a list of trees, concatenated (children as global indices)."""

    tree: np.ndarray
    feature: np.ndarray
    weight: np.ndarray
    left: np.ndarray
    right: np.ndarray
    height: np.ndarray
    production: np.ndarray  # -1 at leaves


def _concatenate(trees: list[KernelTree], n_labels: int) -> _Nodes:
    parts = {name: [] for name in ("tree", "feature", "weight", "left", "right")}
    offset = 0
    for t, tree in enumerate(trees):
        n = len(tree.feature)
        parts["tree"].append(np.full(n, t, dtype=np.int64))
        parts["feature"].append(tree.feature)
        parts["weight"].append(tree.weight)
        parts["left"].append(np.where(tree.left >= 0, tree.left + offset, -1))
        parts["right"].append(np.where(tree.right >= 0, tree.right + offset, -1))
        offset += n
    if offset == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Nodes(empty, empty, np.zeros(0), empty, empty, empty, empty)
    tree_of = np.concatenate(parts["tree"])
    feature = np.concatenate(parts["feature"])
    weight = np.concatenate(parts["weight"]).astype(np.float64)
    left = np.concatenate(parts["left"])
    right = np.concatenate(parts["right"])
    is_split = feature >= 0
    # heights bottom-up: a node's height is 1 + the larger child height (leaves 0)
    height = np.zeros(offset, dtype=np.int64)
    changed = True
    while changed:
        child_height = np.where(is_split, np.maximum(height[np.maximum(left, 0)],
                                                     height[np.maximum(right, 0)]) + 1, 0)
        changed = bool(np.any(child_height != height))
        height = child_height
    label_left = np.where(is_split, feature[np.maximum(left, 0)] + 1, 0)
    label_right = np.where(is_split, feature[np.maximum(right, 0)] + 1, 0)
    base = n_labels + 1
    production = np.where(is_split, (feature * base + label_left) * base + label_right, -1)
    return _Nodes(tree_of, feature, weight, left, right, height, production)


def gram(trees_a: list[KernelTree], trees_b: list[KernelTree] | None = None, *,
         normalized: bool = False, lam: float = 1.0) -> np.ndarray:
    """The ``len(trees_a) x len(trees_b)`` kernel matrix (``trees_b`` defaults to ``trees_a``)."""
    if not 0.0 < lam <= 1.0:
        raise UsageError(f"the kernel decay must be in (0, 1], got {lam}")
    symmetric = trees_b is None
    if trees_b is None:
        trees_b = trees_a
    if normalized:
        raw = gram(trees_a, trees_b, lam=lam)
        diag_a = np.array([gram([t], lam=lam)[0, 0] for t in trees_a]) if not symmetric \
            else np.diag(raw).copy()
        diag_b = diag_a if symmetric else np.array([gram([t], lam=lam)[0, 0] for t in trees_b])
        scale = np.sqrt(np.outer(diag_a, diag_b))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(scale > 0, raw / np.where(scale > 0, scale, 1.0), 0.0)
        if symmetric:
            out = (out + out.T) / 2
            np.fill_diagonal(out, np.where(diag_a > 0, 1.0, 0.0))
        return out
    n_labels = 1 + max([int(t.feature.max(initial=-1)) for t in list(trees_a) + list(trees_b)],
                       default=0)
    a = _concatenate(list(trees_a), n_labels)
    b = a if symmetric else _concatenate(list(trees_b), n_labels)
    out = np.zeros((len(trees_a), len(trees_b)))
    split_a = np.flatnonzero(a.production >= 0)
    split_b = np.flatnonzero(b.production >= 0)
    if not len(split_a) or not len(split_b):
        return out
    # every (node of a, node of b) pair with the same production
    order_b = split_b[np.argsort(b.production[split_b], kind="stable")]
    sorted_production = b.production[order_b]
    lo = np.searchsorted(sorted_production, a.production[split_a], side="left")
    hi = np.searchsorted(sorted_production, a.production[split_a], side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return out
    pair_a = np.repeat(split_a, counts)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    pair_b = order_b[starts + np.arange(counts.sum())]
    n_b = len(b.feature)
    keys = pair_a * n_b + pair_b
    order = np.argsort(keys, kind="stable")
    pair_a, pair_b, keys = pair_a[order], pair_b[order], keys[order]
    level = np.maximum(a.height[pair_a], b.height[pair_b])
    counts_c = np.zeros(len(keys))

    def child_counts(child_a: np.ndarray, child_b: np.ndarray) -> np.ndarray:
        wanted = child_a * n_b + child_b
        found = np.zeros(len(wanted))
        both = (child_a >= 0) & (child_b >= 0)
        if both.any():
            position = np.searchsorted(keys, wanted[both])
            position = np.minimum(position, len(keys) - 1)
            hit = keys[position] == wanted[both]
            found[np.flatnonzero(both)[hit]] = counts_c[position[hit]]
        return found

    for height in range(1, int(level.max()) + 1):
        at = np.flatnonzero(level == height)
        if not len(at):
            continue
        ca, cb = pair_a[at], pair_b[at]
        with np.errstate(over="ignore"):
            counts_c[at] = lam * (1.0 + child_counts(a.left[ca], b.left[cb])) * (
                1.0 + child_counts(a.right[ca], b.right[cb]))
    with np.errstate(over="ignore", invalid="ignore"):
        contribution = a.weight[pair_a] * b.weight[pair_b] * counts_c
        flat = np.bincount(a.tree[pair_a] * len(trees_b) + b.tree[pair_b], weights=contribution,
                           minlength=len(trees_a) * len(trees_b))
    if not np.all(np.isfinite(flat)):
        raise UnsupportedModelError("the tree kernel overflowed float64 (very deep identical "
                                    "subtrees): use a decay lam < 1 or limit the tree depth")
    out[:] = flat.reshape(len(trees_a), len(trees_b))
    if symmetric:
        out = (out + out.T) / 2  # exact in exact arithmetic; removes summation-order noise
    return out
