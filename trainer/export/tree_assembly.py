"""Build IR trees from library splits that are not the IR's ``x < t``, exactly.

The IR's split (``pyastore.ir``) sends a float32 ``x`` left when ``x < threshold``, NaN to the
``default_left`` side. Some libraries decide otherwise: LightGBM treats values near zero as
zero and may send zero (and NaN) to a default side that disagrees with its comparison,
CatBoost's oblivious trees repeat one split for a whole tree level. This module turns any
per-node rule of the form "a set of float32 values goes left, NaN goes to a given side" into
IR split nodes, exactly, and prunes what a row can no longer reach.

Value order. Every non-NaN float32 ``x`` has an integer ``order_key(x)``, increasing with
``x`` (``-inf`` lowest, ``+inf`` highest, ``-0.0`` and ``+0.0`` one key, as they compare
equal). ``x < t`` is ``order_key(x) < order_key(t)``, so an IR threshold is a cut in key space
and a set of values is a union of key intervals ``[lo, hi)`` (``KEY_END`` is one past
``+inf``). ``le_cut(t)`` is the cut of the rule ``x <= t`` for a float64 ``t``: the key after
the largest float32 not above ``t`` -- the same conversion as
``trainer.export.sklearn_trees.le_to_lt_float32``.

Regions. A library node is described by ``regions``, the key intervals of all non-NaN values
in ascending order, each labelled with the child it sends them to, and ``nan_label``, the child
NaN goes to. ``TreeAssembler.route`` intersects them with what the path so far allows for that
feature (``Constraints``: a key interval and whether NaN can still arrive), merges neighbours
with the same label, and

* with one label left, adds no node: the row's child is known (pruning);
* otherwise adds IR split nodes that bisect the regions (one node for a plain split, up to
  three for four regions: the rewritten node's children then appear as several copies, each
  below a node that narrowed the feature's interval). NaN follows the side holding its label,
  preferring the side holding zero; when no region has NaN's label, a node with threshold
  ``-inf`` (never true: every value goes right) sends NaN alone left.

The caller converts each returned child with the constraints it came with, so every copy is
pruned for the values that can reach it. Copies are exact by construction: a row reaches a
copy only with values the copy was built for, and pruning drops only nodes whose outcome the
constraints fix. The format forbids shared subtrees, not copies.

Leaves. ``TreeAssembler.finish`` stores leaf values as float32 (what the container holds).
With ``center=True`` it first subtracts the tree's midpoint ``(min + max) / 2`` from every
leaf (per output for vector leaves) and returns the midpoint for the caller's base score: the
float32 rounding error of a leaf then scales with the tree's spread instead of its magnitude
(a tree that carries the model's initial score, like LightGBM's first tree, would otherwise
lose ``2**-24`` of that score to rounding).

``labels`` records, for each IR node, the library's own leaf index (``-1`` at splits), so a
test can check that every row reaches (a copy of) the leaf the library reached.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import MAX_CATEGORY_CODE, Tree, category_in_set

_SIGN = 0x80000000
KEY_MIN = -0x7F800000  # order_key(-inf)
KEY_MAX = 0x7F800000  # order_key(+inf)
KEY_END = KEY_MAX + 1
_FLOAT32_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]

# feature -> (lo key, hi key, NaN can arrive); a feature absent allows every value and NaN
Constraints = dict[int, tuple[int, int, bool]]


def order_key(value: float) -> int:
    """The order key of a float32 value (``value`` must be exactly a float32, not NaN)."""
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    return -(bits & ~_SIGN) if bits & _SIGN else bits


def key_value(key: int) -> float:
    """The float32 value of an order key in ``[KEY_MIN, KEY_MAX]`` (``0`` is ``+0.0``)."""
    if not KEY_MIN <= key <= KEY_MAX:
        raise ValueError(f"order key {key} is outside the float32 range")
    bits = key if key >= 0 else _SIGN | -key
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def floor_float32(value: float) -> float:
    """The largest float32 not above the float64 ``value`` (``-inf`` below every float32)."""
    if math.isnan(value):
        raise UnsupportedModelError("a split threshold is NaN")
    if value >= _FLOAT32_MAX:
        return _FLOAT32_MAX if value < math.inf else math.inf
    if value < -_FLOAT32_MAX:
        return -math.inf
    nearest = struct.unpack("<f", struct.pack("<f", value))[0]
    if nearest > value:
        return key_value(order_key(nearest) - 1)
    return nearest


def le_cut(threshold: float) -> int:
    """The key cut of ``x <= threshold``: ``x <= threshold`` iff ``order_key(x) < le_cut``."""
    return order_key(floor_float32(threshold)) + 1


class TreeAssembler:
    """Collects the nodes of one IR tree; the first node added is the root.

    A child slot is ``(parent, is_left)``, or ``None`` for the root. ``add_split`` and
    ``add_leaf`` fill a slot and return the new node's id.
    """

    def __init__(self, where: str):
        self.where = where
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.default_left: list[bool] = []
        self.value: list[tuple[float, ...]] = []
        self.categories: list[tuple[int, ...]] = []
        self.labels: list[int] = []

    def _add(self, slot, feature, threshold, default_left, value, label,
             categories: tuple[int, ...] = ()) -> int:
        node = len(self.feature)
        if slot is None:
            if node != 0:
                raise UnsupportedModelError(f"{self.where}: a second root")
        else:
            parent, is_left = slot
            (self.left if is_left else self.right)[parent] = node
        self.feature.append(feature)
        self.threshold.append(threshold)
        self.left.append(-1)
        self.right.append(-1)
        self.default_left.append(default_left)
        self.value.append(value)
        self.categories.append(categories)
        self.labels.append(label)
        return node

    def add_split(self, slot, feature: int, threshold: float, default_left: bool) -> int:
        return self._add(slot, feature, threshold, default_left, (), -1)

    def add_categorical_split(self, slot, feature: int, codes, default_left: bool) -> int:
        """A categorical split (``pyastore.ir``): the codes in ``codes`` go left, every other
        value right, NaN to the ``default_left`` side."""
        codes = tuple(sorted({int(c) for c in codes}))
        if not codes or codes[0] < 0 or codes[-1] >= MAX_CATEGORY_CODE:
            raise UnsupportedModelError(f"{self.where}: categorical split on feature {feature} "
                                        f"with codes {codes[:5]}... outside [0, 2**24)")
        return self._add(slot, feature, 0.0, default_left, (), -1, codes)

    def add_leaf(self, slot, values: Sequence[float], label: int) -> int:
        values = tuple(float(v) for v in values)
        if not all(math.isfinite(v) for v in values):
            raise UnsupportedModelError(f"{self.where}: leaf value {values} is not finite")
        return self._add(slot, -1, 0.0, False, values, label)

    def route(self, slot, feature: int, regions: Sequence[tuple[int, int, Any]], nan_label,
              constraints: Constraints) -> list[tuple[Any, Any, Constraints]]:
        """Add the IR splits of one library node (module docstring).

        ``regions``: ``(lo, hi, label)`` key intervals covering ``[KEY_MIN, KEY_END)`` in order;
        ``nan_label``: NaN's child. Returns ``(slot, label, constraints)`` for every child copy
        the caller must build, in the order the slots were made.
        """
        lo, hi, nan_possible = constraints.get(feature, (KEY_MIN, KEY_END, True))
        kept: list[list] = []
        for start, end, label in regions:
            start, end = max(start, lo), min(end, hi)
            if start >= end:
                continue
            if kept and kept[-1][2] == label and kept[-1][1] == start:
                kept[-1][1] = end
            else:
                kept.append([start, end, label])
        if not nan_possible:
            nan_label = None
        if not kept and nan_label is None:
            raise UnsupportedModelError(f"{self.where}: a node no value can reach")
        out: list[tuple[Any, Any, Constraints]] = []
        self._bisect(slot, feature, [tuple(r) for r in kept], nan_label, constraints, out)
        return out

    def _bisect(self, slot, feature, regions, nan_label, constraints, out) -> None:
        labels = {label for _, _, label in regions}
        if nan_label is not None and nan_label not in labels:
            if not regions:  # only NaN arrives here
                out.append((slot, nan_label, _narrowed(constraints, feature, 0, 0, True)))
                return
            # no value shares NaN's child: a never-true split sends NaN alone left
            node = self.add_split(slot, feature, -math.inf, True)
            out.append(((node, True), nan_label, _narrowed(constraints, feature, 0, 0, True)))
            self._bisect((node, False), feature, regions, None, constraints, out)
            return
        if len(labels) == 1:
            label = regions[0][2] if regions else nan_label
            lo = regions[0][0] if regions else 0
            hi = regions[-1][1] if regions else 0
            out.append((slot, label, _narrowed(constraints, feature, lo, hi,
                                              nan_label is not None)))
            return
        middle = len(regions) // 2
        below, above = regions[:middle], regions[middle:]
        nan_left = False
        if nan_label is not None:
            in_below = any(label == nan_label for _, _, label in below)
            in_above = any(label == nan_label for _, _, label in above)
            zero_below = below[0][0] <= 0 < below[-1][1]  # the value 0.0 lies in ``below``
            nan_left = in_below and (zero_below or not in_above)
        node = self.add_split(slot, feature, key_value(above[0][0]), nan_left)
        self._bisect((node, True), feature, below, nan_label if nan_left else None,
                     constraints, out)
        self._bisect((node, False), feature, above, None if nan_left else nan_label,
                     constraints, out)

    def finish(self, *, center: bool) -> tuple[Tree, tuple[int, ...], tuple[float, ...]]:
        """The IR tree (leaves rounded to float32), the library leaf index of every node, and
        the per-output offset subtracted from the leaves (zeros unless ``center``)."""
        from trainer.export import float32

        leaves = [v for f, v in zip(self.feature, self.value) if f < 0]
        width = len(leaves[0]) if leaves else 0
        if not leaves or any(len(v) != width for v in leaves):
            raise UnsupportedModelError(f"{self.where}: no leaves or leaves of unequal width")
        offset = [0.0] * width
        if center:
            for k in range(width):
                column = [v[k] for v in leaves]
                offset[k] = 0.5 * min(column) + 0.5 * max(column)
        value = tuple(tuple(float32(v[k] - offset[k]) for k in range(width)) if f < 0 else ()
                      for f, v in zip(self.feature, self.value))
        for node, (left, right) in enumerate(zip(self.left, self.right)):
            if self.feature[node] >= 0 and (left < 0 or right < 0):
                raise UnsupportedModelError(f"{self.where}: split node {node} lacks a child")
        categories = tuple(self.categories) if any(self.categories) else ()
        tree = Tree(feature=tuple(self.feature), threshold=tuple(self.threshold),
                    left=tuple(self.left), right=tuple(self.right),
                    default_left=tuple(self.default_left), value=value, categories=categories)
        return tree, tuple(self.labels), tuple(offset)


def _narrowed(constraints: Constraints, feature: int, lo: int, hi: int,
              nan_possible: bool) -> Constraints:
    narrowed = dict(constraints)
    narrowed[feature] = (lo, hi, nan_possible)
    return narrowed


def forest_raw_scores(forest, row) -> tuple[list[float], list[float]]:
    """Raw scores (before the post-transform, float64) of one float32 ``row`` under the IR's
    rules, and per output the sum of the magnitudes added: the exporters' probe guards.
    Forests that sum their trees only."""
    if forest.aggregation != "sum":
        raise ValueError("forest_raw_scores sums trees: aggregation must be 'sum'")
    raw = [float(v) for v in forest.base_score] or [0.0] * forest.n_outputs
    magnitude = [abs(v) for v in raw]
    for tree, output in zip(forest.trees, forest.tree_output):
        node = 0
        while tree.feature[node] >= 0:
            x = float(row[tree.feature[node]])
            codes = tree.category_set(node)
            if math.isnan(x):
                node = tree.left[node] if tree.default_left[node] else tree.right[node]
            elif codes:
                node = tree.left[node] if category_in_set(x, codes) else tree.right[node]
            else:
                node = tree.left[node] if x < tree.threshold[node] else tree.right[node]
        values = tree.value[node]
        targets = [output] if forest.leaf_width == 1 else range(forest.n_outputs)
        for k, value in zip(targets, values):
            raw[k] += value
            magnitude[k] += abs(value)
    return raw, magnitude
