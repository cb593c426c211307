"""The writer: determinism, layout invariants, META round trip, refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import golden_models
import pyastore
from pyastore import format as fmt
from pyastore.errors import FormatError, UnsupportedModelError, UsageError
from pyastore.ir import Forest, Tree


def test_writer_is_deterministic():
    spec = golden_models.tiny_forest_spec()
    key = golden_models.golden_key()
    first = fmt.write(spec, key, created="2026-01-01T00:00:00Z")
    second = fmt.write(golden_models.tiny_forest_spec(), key, created="2026-01-01T00:00:00Z")
    assert first == second


def test_source_date_epoch_sets_creation_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    data = fmt.write(golden_models.tiny_forest_spec(), None)
    assert data == golden_models.build("tiny_forest_unsigned")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        fmt.write(golden_models.tiny_forest_spec(), None)


def test_layout_invariants():
    data = golden_models.build("tiny_forest")
    assert data[:8] == fmt.MAGIC
    major, minor, header_size, file_size, count, table = struct.unpack_from("<HHIQII", data, 8)
    assert (major, minor, header_size, file_size, table) == (1, 0, 64, len(data), 64)
    entries = [struct.unpack_from("<4sIQQQ", data, 64 + 32 * i) for i in range(count)]
    assert [e[0] for e in entries] == [b"META", b"FRST", b"SIGN"]
    for _kind, flags, offset, _length, reserved in entries:
        assert offset % 64 == 0 and flags == 1 and reserved == 0
    sign_offset = entries[-1][2]
    assert sign_offset + 136 == len(data)
    key = hashlib.sha256(data[:sign_offset]).digest()
    assert data[sign_offset + 8:sign_offset + 40] == key


def test_signed_message_matches_c_core(golden_path, golden_pub):
    model = pyastore.load(golden_path, trusted_keys=[golden_pub])
    assert model._container.signed_message == fmt.signed_message(model.store_key)
    assert fmt.signed_message("ab" * 32) == (
        b"pyastore container signature v1\nformat: 1.0\nstore-key: sha256:" + b"ab" * 32 + b"\n")


def test_meta_is_canonical_msgpack_with_sorted_keys():
    meta = fmt.encode_meta({"b": 1, "a": {"z": 1.5, "y": [1, 2]}})
    assert meta == msgpack.packb({"a": {"y": [1, 2], "z": 1.5}, "b": 1}, use_single_float=False)


def test_meta_rejects_values_it_cannot_store():
    with pytest.raises(UsageError, match=r"meta\.params\.f"):
        fmt.encode_meta({"params": {"f": object()}})
    with pytest.raises(UsageError, match="not a string"):
        fmt.encode_meta({1: "x"})


def test_numpy_scalars_in_metadata_become_plain_values():
    np = pytest.importorskip("numpy")
    meta = msgpack.unpackb(
        fmt.encode_meta({"n": np.int64(3), "x": np.float32(0.5), "b": np.bool_(True)})
    )
    assert meta == {"b": True, "n": 3, "x": 0.5}


def _with_forest(**changes):
    spec = golden_models.tiny_forest_spec()
    return dataclasses.replace(spec, forest=dataclasses.replace(spec.forest, **changes))


@pytest.mark.parametrize("changes, message", [
    ({"post_transform": "tanh"}, "post-transform"),
    ({"leaf_width": 2}, "leaf width"),
    ({"tree_output": (0,)}, "tree_output"),
    ({"base_score": (0.0, 1.0)}, "base_score"),
    ({"n_features": 2}, "input variables"),
])
def test_writer_refuses_inconsistent_forests(changes, message):
    with pytest.raises(UnsupportedModelError, match=message):
        fmt.write(_with_forest(**changes), None, created="2026-01-01T00:00:00Z")


def test_writer_refuses_two_inputs_of_one_name():
    spec = golden_models.tiny_forest_spec()
    inputs = list(spec.inputs)
    inputs[2] = dataclasses.replace(inputs[2], name=inputs[0].name)
    with pytest.raises(FormatError) as caught:
        fmt.write(dataclasses.replace(spec, inputs=tuple(inputs)), None,
                  created="2026-01-01T00:00:00Z")
    assert caught.value.message.startswith(
        "inputs[0] and inputs[2] are both named 'amount': input names must be unique")


def _tree(**changes):
    base = dict(feature=(0, -1, -1), threshold=(0.5, 0.0, 0.0), left=(1, -1, -1), right=(2, -1, -1),
                default_left=(True, False, False), value=((), (1.0,), (2.0,)))
    base.update(changes)
    return Tree(**base)


@pytest.mark.parametrize("tree, message", [
    (_tree(threshold=(0.1, 0.0, 0.0)), "not exactly a float32"),
    (_tree(left=(2, -1, -1)), "reached twice"),
    (_tree(right=(7, -1, -1)), "out of range"),
    (_tree(feature=(5, -1, -1)), "feature 5"),
    (_tree(value=((), (1.0, 2.0), (2.0,))), "leaf width"),
    (_tree(feature=(0, -1, -1, -1), threshold=(0.5, 0, 0, 0), left=(1, -1, -1, -1),
           right=(2, -1, -1, -1), default_left=(1, 0, 0, 0), value=((), (1.0,), (2.0,), (3.0,))),
     "unreachable"),
])
def test_writer_refuses_malformed_trees(tree, message):
    with pytest.raises(UnsupportedModelError, match=message):
        fmt.encode_forest(
            Forest(n_features=3, n_outputs=1, leaf_width=1, trees=(tree,), tree_output=(0,))
        )


def test_single_leaf_tree_scores_its_leaf(isolated_trust):
    stump = Tree(
        feature=(-1,),
        threshold=(0.0,),
        left=(-1,),
        right=(-1,),
        default_left=(False,),
        value=((4.0,),),
    )
    spec = _with_forest(
        trees=(stump,), tree_output=(0,), post_transform="identity", base_score=(1.0,)
    )
    model = pyastore.load(
        fmt.write(spec, None, created="2026-01-01T00:00:00Z"), allow_unsigned=True
    )
    assert model.score_one([1.0, 2.0, 3.0]) == [5.0]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def random_trees(draw, n_features=3, depth=4):
    """A random full binary tree in IR form, node ids in random order."""
    nodes = []

    def grow(level):
        index = len(nodes)
        nodes.append(None)
        if level >= depth or draw(st.booleans()) and level > 0:
            nodes[index] = (-1, 0.0, -1, -1, False, (draw(finite32),))
        else:
            feature = draw(st.integers(0, n_features - 1))
            threshold = draw(finite32)
            default_left = draw(st.booleans())
            left = grow(level + 1)
            right = grow(level + 1)
            nodes[index] = (feature, threshold, left, right, default_left, ())
        return index

    grow(0)
    permutation = draw(st.permutations(range(len(nodes))))
    permutation = (
        [0] + [p for p in permutation if p != 0] if permutation[0] != 0 else list(permutation)
    )
    new_id = {old: new for new, old in enumerate(permutation)}
    ordered = [None] * len(nodes)
    for old, (f, t, left, right, d, v) in enumerate(nodes):
        ordered[new_id[old]] = (f, t, new_id.get(left, -1), new_id.get(right, -1), d, v)
    columns = list(zip(*ordered))
    return Tree(feature=columns[0], threshold=columns[1], left=columns[2], right=columns[3],
                default_left=columns[4], value=columns[5])


@settings(max_examples=60, deadline=None)
@given(trees=st.lists(random_trees(), min_size=1, max_size=4),
       rows=st.lists(st.lists(st.one_of(finite32, st.just(float("nan")), st.just(float("inf")),
                                        st.just(float("-inf"))), min_size=3, max_size=3),
                     min_size=1, max_size=150))
def test_c_core_matches_reference_evaluator_on_random_trees(trees, rows):
    """Property: whatever the tree shapes and node order, the C core walks them like the IR says
    (blocks of 64 rows take the SIMD path where the CPU has one, the rest the scalar path)."""
    from reference_forest import score_forest

    np = pytest.importorskip("numpy")
    forest = Forest(n_features=3, n_outputs=1, leaf_width=1, trees=tuple(trees),
                    tree_output=(0,) * len(trees), base_score=(0.0,), post_transform="identity")
    spec = dataclasses.replace(golden_models.tiny_forest_spec(), forest=forest)
    model = pyastore.load(
        fmt.write(spec, None, created="2026-01-01T00:00:00Z"),
        allow_unsigned=True,
        use_default_trust=False,
    )
    x = np.array(rows, dtype=np.float32)
    expected = score_forest(forest, x)
    got = model.score(x)
    assert np.array_equal(got, expected) or np.allclose(got, expected, rtol=1e-12, atol=0)
    one_by_one = np.array([model.score_one(row) for row in x.tolist()])
    assert np.array_equal(got, one_by_one)  # batch (block) path == single-row path, bit for bit


def _stress_specs():
    import importlib.util

    from conftest import ROOT

    path = ROOT / "tests" / "golden_scores" / "generate.py"
    spec = importlib.util.spec_from_file_location("golden_scores_generate_for_format", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.stress_specs()


def test_stored_trees_decode_back_to_the_same_bytes():
    """decode_tree's round-trip law on the golden forest and the seeded stress forests
    (scalar and vector leaves, up to depth 7): laying the decoded trees out again gives the
    FRST body byte for byte."""
    import dataclasses

    specs = {"tiny_forest": golden_models.tiny_forest_spec(), **_stress_specs()}
    numeric = {name: spec for name, spec in specs.items()
               if not any(tree.categories for tree in spec.forest.trees)}
    assert len(numeric) > 1
    for name, spec in numeric.items():
        body = fmt.encode_forest(spec.forest)
        stored = fmt.stored_trees(body)
        assert len(stored) == len(spec.forest.trees), name
        decoded = tuple(fmt.decode_tree(tree) for tree in stored)
        assert fmt.encode_forest(dataclasses.replace(spec.forest, trees=decoded)) == body, name


def test_decode_tree_refuses_categorical_splits():
    """A categorical node's threshold slot is a set index whose codes live in CATS, not in
    the tree's bytes: decode_tree names the node rather than return a wrong numeric split."""
    forest = golden_models.tiny_categorical_spec().forest
    stored = fmt.stored_trees(fmt.encode_forest(forest))
    categorical = [t for t, tree in enumerate(forest.trees) if tree.categories]
    assert categorical
    with pytest.raises(pyastore.FormatError, match="is categorical"):
        fmt.decode_tree(stored[categorical[0]])


def test_stored_trees_refuse_what_lies_outside_the_body():
    body = bytearray(fmt.encode_forest(golden_models.tiny_forest_spec().forest))
    with pytest.raises(pyastore.FormatError, match="shorter than its header"):
        fmt.stored_trees(bytes(body[:40]))
    struct.pack_into("<I", body, 0, 1000)  # a thousand trees announced
    with pytest.raises(pyastore.FormatError, match="outside the section"):
        fmt.stored_trees(bytes(body))
