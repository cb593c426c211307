"""trainer.export.tree_assembly: float32 order keys, ``<=`` cuts, routing and pruning."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyastore.errors import UnsupportedModelError
from trainer.export.tree_assembly import (
    KEY_END,
    KEY_MAX,
    KEY_MIN,
    TreeAssembler,
    floor_float32,
    key_value,
    le_cut,
    order_key,
)

float32s = st.floats(width=32, allow_nan=False)


def as_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


@given(float32s, float32s)
def test_order_keys_sort_like_the_values(a, b):
    assert (order_key(a) < order_key(b)) == (a < b)
    assert (order_key(a) == order_key(b)) == (a == b)  # -0.0 and 0.0 share a key
    assert key_value(order_key(a)) == a


def test_key_range():
    assert order_key(-math.inf) == KEY_MIN and order_key(math.inf) == KEY_MAX
    assert KEY_END == KEY_MAX + 1
    assert order_key(-0.0) == order_key(0.0) == 0
    assert key_value(0) == 0.0 and math.copysign(1.0, key_value(0)) == 1.0
    with pytest.raises(ValueError):
        key_value(KEY_END)


@given(st.floats(allow_nan=False), float32s)
def test_le_cut_is_the_float64_comparison(threshold, x):
    assert (order_key(x) < le_cut(threshold)) == (x <= threshold)


@given(st.floats(allow_nan=False))
def test_floor_float32(value):
    floor = floor_float32(value)
    assert floor <= value
    if floor < math.inf:
        above = key_value(order_key(floor) + 1)
        assert above > value


def test_floor_float32_refuses_nan():
    with pytest.raises(UnsupportedModelError, match="NaN"):
        floor_float32(math.nan)


def _walk(tree, x: float) -> int:
    node = 0
    while tree.feature[node] >= 0:
        if math.isnan(x):
            node = tree.left[node] if tree.default_left[node] else tree.right[node]
        else:
            node = tree.left[node] if x < tree.threshold[node] else tree.right[node]
    return node


@pytest.mark.parametrize("labels,nan_label", [
    ("ab", "a"), ("ab", "b"), ("abab", "a"), ("abab", "b"), ("aba", "b"), ("aa", "b"),
    ("abcb", "c")])
def test_route_builds_exact_splits(labels, nan_label):
    """Regions with labels (cut at -1, 0, 1) become IR splits that send every value, NaN
    included, to its region's label; ``nan_label`` may belong to no region."""
    cuts = [KEY_MIN, order_key(-1.0), order_key(0.0), order_key(1.0)][:len(labels)] + [KEY_END]
    regions = [(cuts[i], cuts[i + 1], label) for i, label in enumerate(labels)]
    assembler = TreeAssembler("test")
    children = assembler.route(None, 0, regions, nan_label, {})
    for slot, label, _ in children:
        assembler.add_leaf(slot, [0.0], ord(label))
    tree, node_labels, _ = assembler.finish(center=False)
    values = [-math.inf, -2.0, -1.0, as_float32(-0.5), -0.0, 0.0, 0.5, 1.0, 2.0, math.inf]
    for x in values:
        expected = next(label for start, end, label in regions if start <= order_key(x) < end)
        assert chr(node_labels[_walk(tree, x)]) == expected, x
    assert chr(node_labels[_walk(tree, math.nan)]) == nan_label


def test_route_prunes_what_the_path_fixes():
    assembler = TreeAssembler("test")
    regions = [(KEY_MIN, order_key(1.0), "left"), (order_key(1.0), KEY_END, "right")]
    # the path allows only [2, 3) for feature 0 and no NaN: no node, the right child
    children = assembler.route(None, 0, regions, "left",
                               {0: (order_key(2.0), order_key(3.0), False)})
    assert [(slot, label) for slot, label, _ in children] == [(None, "right")]
    assert assembler.feature == []
    # with NaN possible (and going left) the split stays
    children = assembler.route(None, 0, regions, "left",
                               {0: (order_key(2.0), order_key(3.0), True)})
    assert len(assembler.feature) == 1 and [c[1] for c in children] == ["left", "right"]


def test_finish_centres_leaves_and_rounds_to_float32():
    assembler = TreeAssembler("test")
    node = assembler.add_split(None, 0, 0.5, True)
    assembler.add_leaf((node, True), [1e6 + 0.1], 0)
    assembler.add_leaf((node, False), [1e6 - 0.3], 1)
    tree, labels, offset = assembler.finish(center=True)
    assert offset == (pytest.approx(1e6 - 0.1),)
    assert tree.value[1][0] + offset[0] == pytest.approx(1e6 + 0.1, abs=1e-7)
    assert all(float(np.float32(v[0])) == v[0] for v in tree.value if v)
    assert labels == (-1, 0, 1)
    plain = TreeAssembler("test")
    plain.add_leaf(None, [0.1], 0)
    tree, _, offset = plain.finish(center=False)
    assert offset == (0.0,) and tree.value[0][0] == as_float32(0.1)
