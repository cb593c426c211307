"""Writing .astore containers: ModelSpec -> sections -> bytes (docs/FORMAT.md is the spec).

The passes, in order:

1. ``meta_dict``      -- the descriptive metadata (name, algorithm, inputs, outputs, score
                         rules, training parameters, provenance, creation time) as a plain dict;
2. ``encode_meta``    -- canonical msgpack of that dict (keys sorted, floats as float64), so
                         the same metadata always gives the same bytes;
3. the payload:
   ``encode_forest``  -- the FRST section: trees re-laid out in preorder with 12-byte nodes and
                         depth-first float32 leaves (the layout of csrc/astore_format.h), and
                         with categorical splits the CATS section of their category sets
                         (``encode_forest_sections``), or
   ``encode_mlp``     -- the MLP_ section: a layer table, then each layer's float32 weights
                         ([out][in]) and biases, every array 64-byte aligned;
   ``encode_transforms`` -- the XFRM section, when the model has feature transforms;
4. ``assemble``       -- header, section table, 64-byte aligned sections with zero padding,
                         then the store key (SHA-256 of everything so far) and SIGN. The
                         header's minor version is the lowest that defines every section
                         used: 1.0 without MLP_/XFRM/CATS (byte for byte what 1.0 writers
                         wrote).

Writing is deterministic: Ed25519 signatures are deterministic, and the creation time is an
input (``created=``, else ``SOURCE_DATE_EPOCH``, else the current UTC second).
Reading is done by the C core (``pyastore._core.Container``) and ``pyastore.model``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyastore.encoding import TYPE as CATEGORICAL
from pyastore.errors import FormatError, UnsupportedModelError, UsageError
from pyastore.ir import (
    ACTIVATIONS,
    AGGREGATIONS,
    MISSING_POLICIES,
    POST_TRANSFORMS,
    SCALINGS,
    TASKS,
    VARIABLE_TYPES,
    Forest,
    Mlp,
    ModelSpec,
    Transforms,
    Tree,
    Variable,
    is_float32,
)
from pyastore.keys import SigningKey

MAGIC = b"\x89AST\r\n\x1a\n"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0  # the minor of a container that uses only the sections of format 1.0
LATEST_MINOR = 2  # the newest minor this writer writes: 1.1 added MLP_ and XFRM, 1.2 CATS
# sections newer than 1.0 -> the minor that added them
SECTION_MINOR = {b"MLP_": 1, b"XFRM": 1, b"CATS": 2}
ALIGN = 64
HEADER_SIZE = 64
SECTION_ENTRY_SIZE = 32
SECTION_CRITICAL = 0x1
SIGNATURE_SECTION_LENGTH = 136
SIGNATURE_NONE = 0
SIGNATURE_ED25519 = 1

NODE_FEATURE_MASK = 0x0FFFFFFF
NODE_RIGHT_LEAF = 0x10000000
NODE_LEFT_LEAF = 0x20000000
NODE_DEFAULT_LEFT = 0x40000000
NODE_CATEGORICAL = 0x80000000  # the node's threshold slot holds a CATS set index
CATS_MAX_WORDS = 1 << 19  # 32-bit words of one category set: codes below 2**24

MLP_MAX_LAYERS = 256
MLP_MAX_WIDTH = 1024  # the widest layer the C core scores (csrc/astore_format.h)
XFRM_MAX_COLUMNS = 4096
XFRM_MAX_INPUTS = 1 << 20
XFRM_IMPUTE = 0x100

SIGNED_MESSAGE_TEMPLATE = (
    "pyastore container signature v1\nformat: {major}.{minor}\nstore-key: sha256:{key}\n"
)


def signed_message(
    store_key_hex: str, major: int = FORMAT_MAJOR, minor: int = FORMAT_MINOR
) -> bytes:
    """The exact bytes an Ed25519 container signature covers (docs/FORMAT.md, "Signature")."""
    return SIGNED_MESSAGE_TEMPLATE.format(major=major, minor=minor, key=store_key_hex).encode(
        "ascii"
    )


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


# ---- 1. metadata --------------------------------------------------------------------------


def format_time(moment: _dt.datetime) -> str:
    """UTC, to the second, ISO-8601 with a ``Z``: ``2026-11-22T02:21:23Z``."""
    if moment.tzinfo is None:
        raise UsageError("creation time must be timezone-aware")
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_creation_time() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            moment = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time") from None
    else:
        moment = _dt.datetime.now(_dt.timezone.utc)
    return format_time(moment)


def _payload_shape(spec: ModelSpec) -> tuple[str, int, int]:
    """``(kind, n_features, n_outputs)`` of the one payload of ``spec``."""
    if (spec.forest is None) == (spec.mlp is None):
        raise UnsupportedModelError("a model needs exactly one scoring payload (forest or mlp), "
                                    f"got {'both' if spec.forest is not None else 'none'}")
    if spec.forest is not None:
        return "forest", spec.forest.n_features, spec.forest.n_outputs
    assert spec.mlp is not None
    return "mlp", spec.mlp.n_features, spec.mlp.n_outputs


def _check_spec(spec: ModelSpec) -> None:
    kind, n_features, n_outputs = _payload_shape(spec)
    if spec.rules.task not in TASKS:
        raise UnsupportedModelError(f"unknown task {spec.rules.task!r}; expected one of {TASKS}")
    first_position: dict[str, int] = {}
    for position, variable in enumerate(spec.inputs):
        earlier = first_position.setdefault(variable.name, position)
        if earlier != position:
            raise FormatError(f"inputs[{earlier}] and inputs[{position}] are both named "
                              f"{variable.name!r}: input names must be unique (a row is "
                              "matched to the inputs by name)")
    for variable in spec.inputs:
        if variable.type not in VARIABLE_TYPES or variable.missing not in MISSING_POLICIES:
            raise UnsupportedModelError(
                f"input {variable.name!r}: type {variable.type!r} / missing policy "
                f"{variable.missing!r} not in {VARIABLE_TYPES} / {MISSING_POLICIES}"
            )
        categorical = (variable.type == CATEGORICAL, variable.missing == CATEGORICAL,
                       variable.categorical is not None)
        if any(categorical) and not all(categorical):
            raise UnsupportedModelError(
                f"input {variable.name!r}: a categorical input has type and missing policy "
                f"'categorical' and a vocabulary; got type {variable.type!r}, missing "
                f"{variable.missing!r}, vocabulary "
                f"{'given' if variable.categorical is not None else 'none'}")
    if spec.transforms is not None:
        if len(spec.inputs) != spec.transforms.n_inputs:
            raise UnsupportedModelError(
                f"{len(spec.inputs)} input variables but the transforms read "
                f"{spec.transforms.n_inputs}")
        if len(spec.transforms.columns) != n_features:
            raise UnsupportedModelError(
                f"the transforms make {len(spec.transforms.columns)} columns but the {kind} "
                f"reads {n_features}")
    elif len(spec.inputs) != n_features:
        raise UnsupportedModelError(
            f"{len(spec.inputs)} input variables but the {kind} reads {n_features}"
        )
    if len(spec.outputs) != n_outputs:
        raise UnsupportedModelError(
            f"{len(spec.outputs)} output variables but the {kind} has {n_outputs}"
        )


def meta_dict(spec: ModelSpec, created: str) -> dict[str, Any]:
    """The META section's content for ``spec`` (see docs/FORMAT.md, "META")."""
    forest = spec.forest
    rules: dict[str, Any] = {"task": spec.rules.task, "class_labels": list(spec.rules.class_labels)}
    if spec.rules.cutoff is not None:
        rules["cutoff"] = float(spec.rules.cutoff)
    payload: dict[str, Any] = {}
    if spec.mlp is not None:
        payload = {
            "kind": "mlp",
            "layers": [{"inputs": layer.n_in, "units": layer.n_out, "activation": layer.activation}
                       | ({"alpha": float(layer.alpha)} if layer.activation == "leaky_relu" else {})
                       for layer in spec.mlp.layers],
            "parameters": sum(layer.n_out * (layer.n_in + 1) for layer in spec.mlp.layers),
        }
    if forest is not None:
        rules["post_transform"] = forest.post_transform
        rules["aggregation"] = forest.aggregation
        rules["base_score"] = [float(v) for v in forest.base_score]
        payload = {
            "kind": "forest",
            "trees": len(forest.trees),
            "split_nodes": sum(sum(1 for f in t.feature if f >= 0) for t in forest.trees),
            "leaves": sum(sum(1 for f in t.feature if f < 0) for t in forest.trees),
        }
        categorical = sum(sum(1 for c in t.categories if c) for t in forest.trees)
        if categorical:
            payload["categorical_splits"] = categorical
    return {
        "name": spec.name,
        "description": spec.description,
        "created": created,
        "algorithm": {
            "family": spec.algorithm.family,
            "library": spec.algorithm.library,
            "library_version": spec.algorithm.library_version,
            "estimator": spec.algorithm.estimator,
        },
        "inputs": [_input_meta(v) for v in spec.inputs],
        "outputs": [{"name": o.name, "type": o.type, "meaning": o.meaning} for o in spec.outputs],
        "score_rules": rules,
        "payload": payload,
        "training_params": spec.training_params,
        "provenance": spec.provenance,
        "transforms": _transforms_meta(spec),
    }


def _input_meta(variable: Variable) -> dict[str, Any]:
    """One META ``inputs`` entry; a categorical input adds its ``categorical`` map (absent
    otherwise, so the META of every other input is what earlier writers wrote)."""
    entry: dict[str, Any] = {"name": variable.name, "type": variable.type,
                             "missing": variable.missing, "description": variable.description}
    if variable.categorical is not None:
        entry["categorical"] = variable.categorical.to_meta()
    return entry


def _transforms_meta(spec: ModelSpec) -> list[dict[str, Any]]:
    """META ``transforms``: one map per model column, for people (XFRM drives scoring)."""
    if spec.transforms is None:
        return []
    described = []
    for j, column in enumerate(spec.transforms.columns):
        entry: dict[str, Any] = {"column": j, "source": column.source,
                                 "input": spec.inputs[column.source].name
                                 if 0 <= column.source < len(spec.inputs) else None,
                                 "scaling": column.scaling}
        if column.impute is not None:
            entry["impute"] = float(column.impute)
        if column.scaling == "standardize":
            entry.update(center=float(column.a), scale=float(column.b))
        elif column.scaling == "affine":
            entry.update(multiply=float(column.a), add=float(column.b))
        described.append(entry)
    return described


# ---- 2. canonical msgpack ----------------------------------------------------------------


def _canonical(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=lambda k: str(k)):
            if not isinstance(key, str):
                raise UsageError(f"metadata key {key!r} at {where} is not a string")
            out[key] = _canonical(value[key], f"{where}.{key}")
        return out
    item = getattr(value, "item", None)  # numpy scalars: convert to the Python scalar
    if callable(item) and getattr(value, "shape", None) == ():
        return _canonical(item(), where)
    raise UsageError(f"metadata value at {where} has type {type(value).__name__}, "
                     "which the container cannot store (use str, int, float, bool, list, dict)")


def encode_meta(meta: dict[str, Any]) -> bytes:
    """Canonical msgpack: maps with sorted string keys, floats always float64."""
    import msgpack

    return bytes(msgpack.packb(_canonical(meta, "meta"), use_bin_type=True,
                               use_single_float=False))


# ---- 3. the forest section -----------------------------------------------------------------


def _category_codes(tree: Tree, t: int, i: int) -> tuple[int, ...]:
    """The codes of node ``i``'s categorical split (``pyastore.ir``), checked; ``()`` for a
    numeric split or a leaf."""
    codes = tree.category_set(i)
    if not codes:
        return ()
    if tree.feature[i] < 0:
        raise UnsupportedModelError(f"tree {t} node {i}: a leaf carries category codes")
    if (any(not isinstance(c, int) or isinstance(c, bool) for c in codes)
            or list(codes) != sorted(set(codes)) or codes[0] < 0
            or codes[-1] >= 32 * CATS_MAX_WORDS):
        raise UnsupportedModelError(f"tree {t} node {i}: category codes {codes[:8]} are not "
                                    "sorted distinct integers 0 <= k < 2**24")
    if float(tree.threshold[i]) != 0.0:
        raise UnsupportedModelError(f"tree {t} node {i}: a categorical split's threshold is "
                                    f"unused and must be 0.0, not {tree.threshold[i]!r}")
    return tuple(codes)


def _layout_tree(
    tree: Tree, t: int, forest: Forest, sets: list[tuple[int, ...]]
) -> tuple[list[tuple[int, int, int]], list[tuple[float, ...]]]:
    """Preorder split nodes (split word, threshold bits, child) and depth-first leaves of one
    tree; each categorical split's codes are appended to ``sets`` and its threshold slot holds
    their index there."""
    n = tree.n_nodes
    if n == 0:
        raise UnsupportedModelError(f"tree {t} has no nodes")
    for name in ("threshold", "left", "right", "default_left", "value"):
        if len(getattr(tree, name)) != n:
            raise UnsupportedModelError(
                f"tree {t}: {name} has {len(getattr(tree, name))} entries, feature has {n}"
            )
    if tree.categories and len(tree.categories) != n:
        raise UnsupportedModelError(
            f"tree {t}: categories has {len(tree.categories)} entries, feature has {n}")
    visited = [False] * n
    order: list[int] = []  # preorder of all nodes
    stack = [0]
    while stack:
        i = stack.pop()
        if not 0 <= i < n or visited[i]:
            raise UnsupportedModelError(f"tree {t}: node {i} is out of range or reached twice")
        visited[i] = True
        order.append(i)
        if tree.feature[i] >= 0:
            stack.append(tree.right[i])
            stack.append(tree.left[i])
    if not all(visited):
        raise UnsupportedModelError(f"tree {t}: node {visited.index(False)} is unreachable")
    split_index: dict[int, int] = {}
    leaf_index: dict[int, int] = {}
    for i in order:
        if tree.feature[i] >= 0:
            split_index[i] = len(split_index)
        else:
            leaf_index[i] = len(leaf_index)
    float_bits = struct.Struct("<f")
    nodes: list[tuple[int, int, int]] = []
    for i in order:
        feature = tree.feature[i]
        codes = _category_codes(tree, t, i)
        if feature < 0:
            continue
        if feature >= forest.n_features:
            raise UnsupportedModelError(
                f"tree {t} node {i}: feature {feature} >= {forest.n_features}"
            )
        threshold = float(tree.threshold[i])
        if not is_float32(threshold):
            raise UnsupportedModelError(
                f"tree {t} node {i}: threshold {threshold!r} is not exactly a float32"
            )
        left, right = tree.left[i], tree.right[i]
        left_leaf, right_leaf = tree.feature[left] < 0, tree.feature[right] < 0
        split = feature | (NODE_DEFAULT_LEFT if tree.default_left[i] else 0)
        if codes:
            split |= NODE_CATEGORICAL
            slot = len(sets)
            sets.append(codes)
        else:
            slot = int.from_bytes(float_bits.pack(threshold), "little")
        if left_leaf:
            split |= NODE_LEFT_LEAF
            child = leaf_index[left]
        elif right_leaf:
            child = leaf_index[right]
        else:
            child = split_index[right]
        if right_leaf:
            split |= NODE_RIGHT_LEAF
        nodes.append((split, slot, child))
    leaves = []
    for i in order:
        if tree.feature[i] < 0:
            value = tuple(float(v) for v in tree.value[i])
            if len(value) != forest.leaf_width:
                raise UnsupportedModelError(
                    f"tree {t} leaf {i}: {len(value)} values, leaf width is {forest.leaf_width}"
                )
            leaves.append(value)
    return nodes, leaves


def encode_forest_sections(forest: Forest) -> tuple[bytes, bytes | None]:
    """The FRST section body for ``forest`` (csrc/astore_format.h, docs/FORMAT.md) and, when
    it has categorical splits, the CATS body of their sets (else None)."""
    if forest.post_transform not in POST_TRANSFORMS or forest.aggregation not in AGGREGATIONS:
        raise UnsupportedModelError(
            f"post-transform {forest.post_transform!r} / aggregation {forest.aggregation!r} "
            f"not in {POST_TRANSFORMS} / {AGGREGATIONS}"
        )
    if forest.leaf_width not in (1, forest.n_outputs) or not forest.trees:
        raise UnsupportedModelError("a forest needs trees and a leaf width of 1 or n_outputs")
    if len(forest.tree_output) != len(forest.trees):
        raise UnsupportedModelError("tree_output must give one output index per tree")
    base = tuple(forest.base_score) or (0.0,) * forest.n_outputs
    if len(base) != forest.n_outputs:
        raise UnsupportedModelError(
            f"base_score has {len(base)} values for {forest.n_outputs} outputs"
        )
    tree_records = bytearray()
    node_bytes = bytearray()
    leaf_bytes = bytearray()
    sets: list[tuple[int, ...]] = []
    n_nodes = n_leaves = 0
    pack_node = struct.Struct("<III").pack
    for t, tree in enumerate(forest.trees):
        output = forest.tree_output[t] if forest.leaf_width == 1 else 0
        if not 0 <= output < forest.n_outputs:
            raise UnsupportedModelError(f"tree {t}: output index {output} out of range")
        nodes, leaves = _layout_tree(tree, t, forest, sets)
        tree_records += struct.pack("<6I", n_nodes, len(nodes), n_leaves, len(leaves), output, 0)
        for split, slot, child in nodes:
            node_bytes += pack_node(split, slot, child)
        for value in leaves:
            leaf_bytes += struct.pack(f"<{len(value)}f", *value)
        n_nodes += len(nodes)
        n_leaves += len(leaves)
    base_bytes = struct.pack(f"<{len(base)}d", *base)
    frst = _sections_arrays(
        lambda offsets: struct.pack(
            "<16I",
            len(forest.trees), forest.n_features, forest.n_outputs, forest.leaf_width,
            POST_TRANSFORMS.index(forest.post_transform), AGGREGATIONS.index(forest.aggregation),
            n_nodes, n_leaves, *offsets, 0, 0, 0, 0),
        (bytes(tree_records), bytes(node_bytes), bytes(leaf_bytes), base_bytes))
    return frst, (encode_category_sets(sets) if sets else None)


def encode_forest(forest: Forest) -> bytes:
    """The FRST section body for ``forest`` (its CATS body: ``encode_forest_sections``)."""
    return encode_forest_sections(forest)[0]


def encode_category_sets(sets: list[tuple[int, ...]]) -> bytes:
    """The CATS section body of the category sets of a forest's categorical splits, in node
    order (docs/FORMAT.md, "CATS"): a set is the bits of its codes in 32-bit words, as few
    words as hold its largest code."""
    table = bytearray()
    words: list[int] = []
    for codes in sets:
        bits = [0] * (codes[-1] // 32 + 1)
        for code in codes:
            bits[code // 32] |= 1 << (code % 32)
        table += struct.pack("<2I", len(words), len(bits))
        words += bits
    return _sections_arrays(
        lambda offsets: struct.pack("<5I44x", len(sets), len(words), *offsets, 0),
        (bytes(table), struct.pack(f"<{len(words)}I", *words)))


def _sections_arrays(header: Callable[[list[int]], bytes], blocks: tuple[bytes, ...]) -> bytes:
    """A 64-byte header (``header(offsets)``) then ``blocks``, each at the first multiple of
    64 after what precedes it, zero bytes between: the canonical layout of FRST and CATS."""
    offset = 64
    offsets = []
    for block in blocks:
        offsets.append(offset)
        offset = _align(offset + len(block))
    body = bytearray(header(offsets))
    for block, start in zip(blocks, offsets):
        body += b"\0" * (start - len(body))
        body += block
    return bytes(body)


# ---- 3b. the MLP and transform sections ----------------------------------------------------


def _float32_array(values: Iterable[float], what: str) -> bytes:
    values = [float(v) for v in values]
    try:
        packed = struct.pack(f"<{len(values)}f", *values)
    except OverflowError:
        raise UnsupportedModelError(f"{what}: a value is too large for float32") from None
    if any(not math.isfinite(v) for v in struct.unpack(f"<{len(values)}f", packed)):
        raise UnsupportedModelError(f"{what}: a value is NaN or infinite")
    return packed


def encode_mlp(mlp: Mlp) -> bytes:
    """The MLP_ section body for ``mlp`` (csrc/astore_format.h, docs/FORMAT.md).

    Weights and biases are rounded to float32; refuses layers that do not chain, unknown
    activations, non-finite values and networks wider or deeper than the C core scores.
    """
    layers = tuple(mlp.layers)
    if not layers:
        raise UnsupportedModelError("an MLP needs at least one layer")
    if len(layers) > MLP_MAX_LAYERS:
        raise UnsupportedModelError(
            f"an MLP has at most {MLP_MAX_LAYERS} layers, got {len(layers)}"
        )
    table = bytearray()
    arrays: list[tuple[int, bytes]] = []
    offset = _align(64 + 32 * len(layers))
    previous_out = None
    for k, layer in enumerate(layers):
        if layer.activation not in ACTIVATIONS:
            raise UnsupportedModelError(f"layer {k}: unknown activation {layer.activation!r}; "
                                        f"expected one of {ACTIVATIONS}")
        n_out = len(layer.weights)
        n_in = len(layer.weights[0]) if n_out else 0
        if n_out == 0 or n_in == 0 or any(len(row) != n_in for row in layer.weights):
            raise UnsupportedModelError(f"layer {k}: weights must be {n_out} non-empty rows of "
                                        f"equal length ([out][in])")
        if len(layer.bias) != n_out:
            raise UnsupportedModelError(f"layer {k}: {len(layer.bias)} biases for {n_out} units")
        if previous_out is not None and n_in != previous_out:
            raise UnsupportedModelError(f"layer {k} takes {n_in} inputs but layer {k - 1} "
                                        f"gives {previous_out}")
        if max(n_in, n_out) > MLP_MAX_WIDTH:
            raise UnsupportedModelError(f"layer {k} is {n_in} x {n_out}; layers of at most "
                                        f"{MLP_MAX_WIDTH} units are supported")
        alpha = float(layer.alpha)
        if layer.activation == "leaky_relu":
            if not math.isfinite(alpha):
                raise UnsupportedModelError(f"layer {k}: leaky relu slope {alpha!r} is not finite")
        elif alpha != 0.0:
            raise UnsupportedModelError(f"layer {k}: alpha is for leaky_relu only")
        else:
            alpha = 0.0
        weights = _float32_array((v for row in layer.weights for v in row), f"layer {k} weights")
        bias = _float32_array(layer.bias, f"layer {k} bias")
        weights_offset = offset
        bias_offset = _align(weights_offset + len(weights))
        offset = _align(bias_offset + len(bias))
        arrays += [(weights_offset, weights), (bias_offset, bias)]
        table += struct.pack("<3If4I", n_in, n_out, ACTIVATIONS.index(layer.activation),
                             alpha, weights_offset, bias_offset, 0, 0)
        previous_out = n_out
    n_features = len(layers[0].weights[0])
    header = struct.pack("<5I44x", len(layers), n_features, previous_out, 64, 0)
    body = bytearray(header) + table
    for start, block in arrays:
        body += b"\0" * (start - len(body))
        body += block
    return bytes(body)


def encode_transforms(transforms: Transforms) -> bytes:
    """The XFRM section body for ``transforms`` (csrc/astore_format.h, docs/FORMAT.md)."""
    columns = tuple(transforms.columns)
    n_inputs = int(transforms.n_inputs)
    if not 1 <= n_inputs <= XFRM_MAX_INPUTS or not columns:
        raise UnsupportedModelError(f"transforms need 1 to {XFRM_MAX_INPUTS} inputs and at "
                                    "least one column")
    if len(columns) > XFRM_MAX_COLUMNS:
        raise UnsupportedModelError(f"transforms make at most {XFRM_MAX_COLUMNS} columns, "
                                    f"got {len(columns)}")
    records = bytearray()
    for j, column in enumerate(columns):
        if not 0 <= column.source < n_inputs:
            raise UnsupportedModelError(f"transform column {j}: source {column.source} is not "
                                        f"one of the {n_inputs} inputs")
        if column.scaling not in SCALINGS:
            raise UnsupportedModelError(f"transform column {j}: unknown scaling "
                                        f"{column.scaling!r}; expected one of {SCALINGS}")
        op = SCALINGS.index(column.scaling)
        impute = 0.0
        if column.impute is not None:
            impute = float(column.impute)
            if not math.isfinite(impute):
                raise UnsupportedModelError(f"transform column {j}: imputation value "
                                            f"{impute!r} is not finite")
            op |= XFRM_IMPUTE
        a, b = float(column.a), float(column.b)
        if column.scaling == "none":
            if a != 0.0 or b != 0.0:
                raise UnsupportedModelError(f"transform column {j}: a and b must be 0 without "
                                            "scaling")
            a = b = 0.0
        elif not (math.isfinite(a) and math.isfinite(b)) or (
                column.scaling == "standardize" and b == 0.0):
            raise UnsupportedModelError(f"transform column {j}: {column.scaling} parameters "
                                        f"a={a!r}, b={b!r} are not finite or divide by zero")
        records += struct.pack("<2I3d", column.source, op, impute, a, b)
    header = struct.pack("<4I48x", n_inputs, len(columns), 64, 0)
    return header + bytes(records)


FOREST_NODE_BYTES = 12  # split word, threshold, child (docs/FORMAT.md, "FRST")
FOREST_TREE_RECORD_BYTES = 24


@dataclass(frozen=True)
class StoredTree:
    """One tree of a FRST body as stored: the output it adds to, its leaf width, and the bytes
    of its preorder split nodes and its depth-first leaves (what a tree digest covers)."""

    output: int
    leaf_width: int
    node_bytes: bytes
    leaf_bytes: bytes

    @property
    def n_nodes(self) -> int:
        return len(self.node_bytes) // FOREST_NODE_BYTES

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_bytes) // (4 * self.leaf_width)


def stored_trees(frst: bytes) -> list[StoredTree]:
    """The trees of a FRST section body, bounds-checked (``FormatError`` for any tree record,
    node or leaf outside the body). Reads only what a tree is made of: the C core remains the
    one place that validates a forest for scoring."""
    frst = bytes(frst)
    if len(frst) < 64:
        raise FormatError("FRST section is shorter than its header")
    header = struct.unpack_from("<16I", frst, 0)
    n_trees, leaf_width = header[0], header[3]
    trees_at, nodes_at, leaves_at = header[8], header[9], header[10]
    leaf_bytes = 4 * leaf_width
    trees = []
    for t in range(n_trees):
        at = trees_at + FOREST_TREE_RECORD_BYTES * t
        if at + FOREST_TREE_RECORD_BYTES > len(frst):
            raise FormatError(f"FRST tree record {t} lies outside the section")
        node_start, n_nodes, leaf_start, n_leaves, output, _ = struct.unpack_from("<6I", frst, at)
        first_node = nodes_at + FOREST_NODE_BYTES * node_start
        nodes = frst[first_node:first_node + FOREST_NODE_BYTES * n_nodes]
        leaves = frst[leaves_at + leaf_bytes * leaf_start:
                      leaves_at + leaf_bytes * (leaf_start + n_leaves)]
        if len(nodes) != FOREST_NODE_BYTES * n_nodes or len(leaves) != leaf_bytes * n_leaves:
            raise FormatError(f"FRST tree {t}: nodes or leaves lie outside the section")
        trees.append(StoredTree(output, leaf_width, nodes, leaves))
    return trees


def decode_tree(stored: StoredTree) -> Tree:
    """The IR tree of a stored one, nodes numbered in preorder; leaf values are the stored
    float32. Round-trip law: laying the decoded tree out again (``encode_forest``) gives the
    stored bytes. ``FormatError`` for a child index that points outside the tree, and for a
    categorical split (its set lies in CATS, outside the tree's bytes: trees decoded one by
    one, as federated trees are, are numeric)."""
    splits = [struct.unpack_from("<IfI", stored.node_bytes, FOREST_NODE_BYTES * i)
              for i in range(stored.n_nodes)]
    width = stored.leaf_width
    leaves = [struct.unpack_from(f"<{width}f", stored.leaf_bytes, 4 * width * i)
              for i in range(stored.n_leaves)]
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    default_left: list[bool] = []
    value: list[tuple[float, ...]] = []

    def new_node(leaf_value: tuple[float, ...] = ()) -> int:
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        default_left.append(False)
        value.append(leaf_value)
        return len(feature) - 1

    def leaf(index: int) -> int:
        if not 0 <= index < len(leaves):
            raise FormatError(f"FRST tree: leaf {index} does not exist")
        return new_node(tuple(float(v) for v in leaves[index]))

    def split(index: int) -> int:
        if not 0 <= index < len(splits):
            raise FormatError(f"FRST tree: split node {index} does not exist")
        word, cut, child = splits[index]
        if word & NODE_CATEGORICAL:
            raise FormatError(f"FRST tree: split node {index} is categorical (its set is in "
                              "CATS): decode_tree reads trees of numeric splits")
        node = new_node()
        feature[node] = word & NODE_FEATURE_MASK
        threshold[node] = float(cut)
        default_left[node] = bool(word & NODE_DEFAULT_LEFT)
        left_leaf, right_leaf = bool(word & NODE_LEFT_LEAF), bool(word & NODE_RIGHT_LEAF)
        # the left subtree's splits follow this one in preorder; ``child`` is the left leaf,
        # else the right leaf, else the right split (see _layout_tree)
        left[node] = leaf(child) if left_leaf else split(index + 1)
        if right_leaf:
            right[node] = leaf(child + 1 if left_leaf else child)
        else:
            right[node] = split(index + 1) if left_leaf else split(child)
        return node

    if splits:
        split(0)
    else:
        leaf(0)
    return Tree(feature=tuple(feature), threshold=tuple(threshold), left=tuple(left),
                right=tuple(right), default_left=tuple(default_left), value=tuple(value))


# ---- 4. assembly ---------------------------------------------------------------------------


def assemble(sections: Iterable[tuple[bytes, bytes, bool]], signing_key: SigningKey | None = None,
             minor: int | None = None) -> bytes:
    """Frame ``(type, body, critical)`` sections, then append SIGN (signed if a key is given).

    ``minor`` defaults to the lowest minor version that defines every section type used.
    """
    sections = list(sections)
    if minor is None:
        minor = max(
            [FORMAT_MINOR] + [SECTION_MINOR.get(kind, FORMAT_MINOR) for kind, _, _ in sections]
        )
    count = len(sections) + 1
    table_end = HEADER_SIZE + SECTION_ENTRY_SIZE * count
    offset = _align(table_end)
    entries = []
    for kind, body, critical in sections:
        if len(kind) != 4:
            raise UsageError(f"section type {kind!r} is not 4 bytes")
        entries.append((kind, SECTION_CRITICAL if critical else 0, offset, len(body)))
        offset = _align(offset + len(body))
    sign_offset = offset
    entries.append((b"SIGN", SECTION_CRITICAL, sign_offset, SIGNATURE_SECTION_LENGTH))
    file_size = sign_offset + SIGNATURE_SECTION_LENGTH
    out = bytearray(MAGIC)
    out += struct.pack(
        "<HHIQIII", FORMAT_MAJOR, minor, HEADER_SIZE, file_size, count, HEADER_SIZE, 0
    )
    out += b"\0" * (HEADER_SIZE - len(out))
    for kind, flags, start, length in entries:
        out += struct.pack("<4sIQQQ", kind, flags, start, length, 0)
    for (_, body, _), (_, _, start, _) in zip(sections, entries):
        out += b"\0" * (start - len(out))
        out += body
    out += b"\0" * (sign_offset - len(out))
    store_key = hashlib.sha256(out).digest()
    if signing_key is None:
        out += struct.pack("<II", SIGNATURE_NONE, 0) + store_key + b"\0" * 96
    else:
        signature = signing_key.sign(signed_message(store_key.hex(), FORMAT_MAJOR, minor))
        out += (
            struct.pack("<II", SIGNATURE_ED25519, 0)
            + store_key
            + signing_key.public_key
            + signature
        )
    return bytes(out)


def write(
    spec: ModelSpec,
    signing_key: SigningKey | None = None,
    *,
    created: str | _dt.datetime | None = None,
) -> bytes:
    """The container bytes for ``spec``, signed with ``signing_key`` (a ``keys.SigningKey``).

    ``signing_key=None`` writes an unsigned container, which loaders refuse unless told
    otherwise. The result is deterministic for a given spec, key and creation time.
    """
    _check_spec(spec)
    if created is None:
        created = default_creation_time()
    elif isinstance(created, _dt.datetime):
        created = format_time(created)
    meta = encode_meta(meta_dict(spec, created))
    sections = [(b"META", meta, True)]
    if spec.transforms is not None:
        sections.append((b"XFRM", encode_transforms(spec.transforms), True))
    if spec.forest is not None:
        frst, cats = encode_forest_sections(spec.forest)
        sections.append((b"FRST", frst, True))
        if cats is not None:
            sections.append((b"CATS", cats, True))
    else:
        assert spec.mlp is not None  # _check_spec: exactly one payload
        sections.append((b"MLP_", encode_mlp(spec.mlp), True))
    return assemble(sections, signing_key)


def write_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write container bytes whole or not at all (``pyastore.files.write_atomic``)."""
    from pyastore.files import write_atomic

    write_atomic(path, data)
