"""Generator of the container corpus: broken containers and compatible oddities.

    python tests/corpus/generate.py        # rewrites tests/corpus/negative/ and manifest.tsv

Each case is a function returning bytes; ``manifest.tsv`` records what every reader must
make of it: the C core's status after ``astore_container_open`` and (when that succeeds)
``astore_model_open``, the Python exception ``pyastore.load`` raises with the golden test key
trusted (``OK`` when it loads), and the CLI exit code of ``pyastore verify``. The C test
(csrc/tests/test_corpus.c) and tests/corpus/test_corpus.py walk the folder and the manifest; a test
checks the committed files equal a fresh run of this generator.

Cases that must reach interpretation (bad trees, bad networks, bad transforms, bad META) are
re-framed and re-signed with the golden test key, so their store key and signature are valid
and only the content is bad. The MLP_ and XFRM cases start from the golden ``tiny_mlp``.
"""

# ruff: noqa: E501 -- CASES is a table, one case per line where it fits in 130 columns

from __future__ import annotations

import hashlib
import importlib.util
import struct
import sys
from pathlib import Path
from typing import Any

from pyastore import format as fmt
from pyastore.keys import SigningKey

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _golden_models() -> Any:
    """tests/golden/golden_models.py: the one already imported (by the tests), or loaded from
    its file when this runs as a script -- without putting test folders on sys.path."""
    if "golden_models" in sys.modules:
        return sys.modules["golden_models"]
    spec = importlib.util.spec_from_file_location("golden_models",
                                                  ROOT / "tests" / "golden" / "golden_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["golden_models"] = module
    spec.loader.exec_module(module)
    return module


golden_models = _golden_models()

OUT = HERE / "negative"
GOLDEN = golden_models.build("tiny_forest")
SIGN_LEN = fmt.SIGNATURE_SECTION_LENGTH
TABLE = 64  # offset of the section table


def sections_of(data: bytes) -> list[tuple[bytes, int, int, int]]:
    count = struct.unpack_from("<I", data, 24)[0]
    return [struct.unpack_from("<4sIQQ", data, TABLE + 32 * i) for i in range(count)]


def body(data: bytes, kind: bytes) -> bytes:
    for k, _, offset, length in sections_of(data):
        if k == kind:
            return data[offset:offset + length]
    raise KeyError(kind)


def patch(data: bytes, offset: int, fmt_: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt_, out, offset, *values)
    return bytes(out)


def rehash(data: bytes) -> bytes:
    """Recompute the store key of ``data`` (keeps it unsigned-consistent: zero signature)."""
    sign_offset = len(data) - SIGN_LEN
    key = hashlib.sha256(data[:sign_offset]).digest()
    return data[:sign_offset] + struct.pack("<II", 0, 0) + key + b"\0" * 96


def resign(sections: list[tuple[bytes, bytes, bool]], minor: int = fmt.FORMAT_MINOR) -> bytes:
    return fmt.assemble(sections, golden_models.golden_key(), minor=minor)


META = body(GOLDEN, b"META")
FRST = body(GOLDEN, b"FRST")
SIGN_OFFSET = len(GOLDEN) - SIGN_LEN
META_OFFSET = sections_of(GOLDEN)[0][2]
FRST_OFFSET = sections_of(GOLDEN)[1][2]


def forest_with(offset: int, fmt_: str, *values) -> bytes:
    return resign([(b"META", META, True), (b"FRST", patch(FRST, offset, fmt_, *values), True)])


def first_node_offset() -> int:
    return struct.unpack_from("<I", FRST, 36)[0]


MLP_GOLDEN = golden_models.build("tiny_mlp")
MLP_META = body(MLP_GOLDEN, b"META")
XFRM = body(MLP_GOLDEN, b"XFRM")
MLP = body(MLP_GOLDEN, b"MLP_")
MLP_LAYER = 64  # the layer table: 32 bytes per layer
XFRM_COLUMN = 64  # the column records: 32 bytes per column


def mlp_sections(xfrm: bytes = XFRM, mlp: bytes = MLP) -> list[tuple[bytes, bytes, bool]]:
    return [(b"META", MLP_META, True), (b"XFRM", xfrm, True), (b"MLP_", mlp, True)]


MLP_MINOR = fmt.SECTION_MINOR[b"MLP_"]  # 1.1: MLP_ and XFRM


def mlp_with(offset: int, fmt_: str, *values) -> bytes:
    return resign(mlp_sections(mlp=patch(MLP, offset, fmt_, *values)), minor=MLP_MINOR)


def xfrm_with(offset: int, fmt_: str, *values) -> bytes:
    return resign(mlp_sections(xfrm=patch(XFRM, offset, fmt_, *values)), minor=MLP_MINOR)


CAT_GOLDEN = golden_models.build("tiny_categorical")
CAT_META = body(CAT_GOLDEN, b"META")
CAT_FRST = body(CAT_GOLDEN, b"FRST")
CATS = body(CAT_GOLDEN, b"CATS")
CATS_MINOR = fmt.SECTION_MINOR[b"CATS"]  # 1.2


def categorical_sections(meta: bytes = CAT_META, frst: bytes = CAT_FRST,
                         cats: bytes = CATS) -> list[tuple[bytes, bytes, bool]]:
    return [(b"META", meta, True), (b"FRST", frst, True), (b"CATS", cats, True)]


def cats_with(offset: int, fmt_: str, *values) -> bytes:
    return resign(categorical_sections(cats=patch(CATS, offset, fmt_, *values)), minor=CATS_MINOR)


def categorical_node_with(index: int, field: int, fmt_: str, value) -> bytes:
    nodes = struct.unpack_from("<I", CAT_FRST, 36)[0]
    frst = patch(CAT_FRST, nodes + 12 * index + field, fmt_, value)
    return resign(categorical_sections(frst=frst), minor=CATS_MINOR)


def _node_word(index: int) -> int:
    return struct.unpack_from("<I", CAT_FRST, struct.unpack_from("<I", CAT_FRST, 36)[0] + 12 * index)[0]


def _cats_of_words(sets: list[list[int]]) -> bytes:
    """A CATS body holding ``sets`` as given (word lists), laid out canonically otherwise."""
    table = b"".join(struct.pack("<2I", sum(len(w) for w in sets[:k]), len(words))
                     for k, words in enumerate(sets))
    words = [w for words in sets for w in words]
    start = _align64(64 + len(table))
    return (struct.pack("<5I44x", len(sets), len(words), 64, start, 0) + table
            + bytes(start - 64 - len(table)) + struct.pack(f"<{len(words)}I", *words))


def layer_field(layer: int, field: int) -> int:
    return MLP_LAYER + 32 * layer + field


def first_weight_offset() -> int:
    return struct.unpack_from("<I", MLP, layer_field(0, 16))[0]


def _forest_reading_reordered_columns() -> bytes:
    """The golden forest behind an XFRM that permutes its three inputs: a valid 1.1 file."""
    records = b"".join(struct.pack("<2I3d", source, 0, 0.0, 0.0, 0.0) for source in (2, 0, 1))
    xfrm = struct.pack("<4I48x", 3, 3, 64, 0) + records
    return resign([(b"META", META, True), (b"XFRM", xfrm, True), (b"FRST", FRST, True)],
                  minor=MLP_MINOR)


def meta_with(meta_bytes: bytes) -> bytes:
    return resign([(b"META", meta_bytes, True), (b"FRST", FRST, True)])


def _meta_dict() -> dict:
    import msgpack

    return msgpack.unpackb(META, raw=False)


def _meta_without(key: str) -> bytes:
    meta = _meta_dict()
    del meta[key]
    return fmt.encode_meta(meta)


def _meta_fewer_inputs() -> bytes:
    meta = _meta_dict()
    meta["inputs"] = meta["inputs"][:2]
    return fmt.encode_meta(meta)


def _meta_changed(change) -> bytes:
    """META with ``change(meta)`` applied, re-encoded canonically."""
    meta = _meta_dict()
    change(meta)
    return fmt.encode_meta(meta)


def _meta_with_raw(key: str, raw: bytes) -> bytes:
    """META whose ``key`` holds the msgpack bytes ``raw`` (which encode_meta cannot write)."""
    marker = "\x00raw-value-marker\x00"
    encoded = fmt.encode_meta(_meta_dict() | {key: marker})
    packed_marker = bytes([0xA0 | len(marker)]) + marker.encode()
    assert encoded.count(packed_marker) == 1
    return encoded.replace(packed_marker, raw)


def _meta_with_integer_key() -> bytes:
    """A top-level entry whose key is an integer (msgpack allows it; META does not)."""
    encoded = fmt.encode_meta(_meta_dict())
    assert 0x80 <= encoded[0] < 0x8F  # a fixmap with room for one more entry
    return bytes([encoded[0] + 1]) + b"\x01\xc0" + encoded[1:]


def _set_input(index: int, **fields):
    def change(meta):
        meta["inputs"][index].update(fields)
        for key, value in fields.items():
            if value is None:
                del meta["inputs"][index][key]
    return change


def _align64(value: int) -> int:
    return -(-value // 64) * 64


def _assemble_with_extra_padding(sections: list[tuple[bytes, bytes, bool]], before: int,
                                 minor: int = fmt.FORMAT_MINOR) -> bytes:
    """fmt.assemble, signed with the golden key, but with 64 more zero bytes before section
    ``before`` (len(sections): before SIGN): only the padding is not minimal."""
    count = len(sections) + 1
    offset = _align64(64 + 32 * count)
    entries = []
    for i, (kind, data, critical) in enumerate(sections + [(b"SIGN", b"", True)]):
        offset += 64 if i == before else 0
        entries.append((kind, fmt.SECTION_CRITICAL if critical else 0, offset,
                        SIGN_LEN if kind == b"SIGN" else len(data)))
        offset = _align64(offset + len(data))
    sign_offset = entries[-1][2]
    out = bytearray(fmt.MAGIC + struct.pack("<HHIQIII", fmt.FORMAT_MAJOR, minor, 64,
                                            sign_offset + SIGN_LEN, count, 64, 0))
    out += b"\0" * (64 - len(out))
    for kind, flags, start, length in entries:
        out += struct.pack("<4sIQQQ", kind, flags, start, length, 0)
    for (_, data, _), (_, _, start, _) in zip(sections, entries):
        out += b"\0" * (start - len(out)) + data
    out += b"\0" * (sign_offset - len(out))
    key = hashlib.sha256(out).digest()
    signer = golden_models.golden_key()
    signature = signer.sign(fmt.signed_message(key.hex(), fmt.FORMAT_MAJOR, minor))
    return bytes(out) + struct.pack("<II", fmt.SIGNATURE_ED25519, 0) + key + \
        signer.public_key + signature


def _meta_keys_unsorted() -> bytes:
    import msgpack

    meta = _meta_dict()
    return bytes(msgpack.packb(dict(reversed(list(meta.items()))), use_bin_type=True))


def _meta_float32() -> bytes:
    import msgpack

    encoded = bytes(msgpack.packb(_meta_dict(), use_bin_type=True, use_single_float=True))
    assert b"\xca" in encoded and encoded != META
    return encoded


def _forest_gap_before_base() -> bytes:
    base = struct.unpack_from("<I", FRST, 44)[0]
    return patch(FRST[:base] + b"\0" * 64 + FRST[base:], 44, "<I", base + 64)


def _forest_node(index: int, field: int, fmt_: str, value) -> bytes:
    return forest_with(first_node_offset() + 12 * index + field, fmt_, value)


def _forest_leaves_permuted() -> bytes:
    """Tree 1's leaves 0, 1, 2 stored as 1, 2, 0: the same trees, leaves not depth-first."""
    nodes = first_node_offset()
    frst = patch(patch(FRST, nodes + 12 * 3 + 8, "<I", 0), nodes + 12 * 4 + 8, "<I", 1)
    return resign([(b"META", META, True), (b"FRST", frst, True)])


def _forest_shared_subtree() -> bytes:
    """Tree 1's root sends its right branch to node 2, also the left child of node 1."""
    frst = patch(FRST, first_node_offset() + 12 * 2, "<IfI", 1, 2.0, 2)
    return resign([(b"META", META, True), (b"FRST", frst, True)])


OTHER_KEY = SigningKey(hashlib.sha256(b"an untrusted test key").digest())

# name: (bytes, C container status, C model status, Python error, exit code)
CASES = {
    "empty": (b"", "TRUNCATED", "-", "FormatError", 3),
    "magic_only": (GOLDEN[:8], "TRUNCATED", "-", "FormatError", 3),
    "header_only": (GOLDEN[:64], "TRUNCATED", "-", "FormatError", 3),
    "truncated_in_table": (GOLDEN[:100], "TRUNCATED", "-", "FormatError", 3),
    "truncated_in_meta": (GOLDEN[:META_OFFSET + 10], "TRUNCATED", "-", "FormatError", 3),
    "truncated_last_byte": (GOLDEN[:-1], "TRUNCATED", "-", "FormatError", 3),
    "trailing_garbage": (GOLDEN + b"\0", "FORMAT", "-", "FormatError", 3),
    "bad_magic": (b"\x89ASX" + GOLDEN[4:], "FORMAT", "-", "FormatError", 3),
    "text_file": (b"name,amount\n" + b"x,1\n" * 40, "FORMAT", "-", "FormatError", 3),
    "crlf_mangled_magic": (GOLDEN.replace(b"\r\n", b"\n", 1), "FORMAT", "-", "FormatError", 3),
    "major_version_2": (patch(GOLDEN, 8, "<H", 2), "VERSION", "-", "UnsupportedVersionError", 3),
    "header_size_wrong": (patch(GOLDEN, 12, "<I", 128), "FORMAT", "-", "FormatError", 3),
    "header_flags_unknown": (patch(GOLDEN, 32, "<I", 1), "VERSION", "-", "UnsupportedVersionError", 3),
    "header_reserved_nonzero": (patch(GOLDEN, 40, "<B", 7), "FORMAT", "-", "FormatError", 3),
    "section_count_zero": (patch(GOLDEN, 24, "<I", 0), "FORMAT", "-", "FormatError", 3),
    "section_count_huge": (patch(GOLDEN, 24, "<I", 0xFFFFFFFF), "FORMAT", "-", "FormatError", 3),
    "section_offset_past_end": (patch(GOLDEN, TABLE + 32 + 8, "<Q", 1 << 40), "TRUNCATED", "-", "FormatError", 3),
    "section_length_huge": (patch(GOLDEN, TABLE + 32 + 16, "<Q", (1 << 63) + 1), "TRUNCATED", "-", "FormatError", 3),
    "section_misaligned": (patch(GOLDEN, TABLE + 32 + 8, "<Q", FRST_OFFSET + 4), "FORMAT", "-", "FormatError", 3),
    "sections_overlap": (patch(GOLDEN, TABLE + 32 + 8, "<Q", META_OFFSET), "FORMAT", "-", "FormatError", 3),
    "sections_swapped": (
        patch(patch(GOLDEN, TABLE, "<4s", b"FRST"), TABLE + 32, "<4s", b"META"),
        "INTEGRITY", "-", "IntegrityError", 4),
    "duplicate_section": (patch(GOLDEN, TABLE + 32, "<4s", b"META"), "FORMAT", "-", "FormatError", 3),
    "sign_not_last": (patch(patch(GOLDEN, TABLE + 32, "<4s", b"SIGN"), TABLE + 64, "<4s", b"FRST"),
                      "FORMAT", "-", "FormatError", 3),
    "section_type_binary": (patch(GOLDEN, TABLE + 32, "<4s", b"\x00\x01\x02\x03"), "FORMAT", "-", "FormatError", 3),
    "section_flags_unknown": (patch(GOLDEN, TABLE + 4, "<I", 0x81), "FORMAT", "-", "FormatError", 3),
    "padding_not_zero": (patch(GOLDEN, META_OFFSET + len(META), "<B", 1), "FORMAT", "-", "FormatError", 3),
    "unknown_critical_section": (
        resign([(b"META", META, True), (b"FRST", FRST, True), (b"ZZZZ", b"future", True)]),
        "VERSION", "-", "UnsupportedVersionError", 3),
    "newer_minor_unknown_optional_section": (
        resign([(b"META", META, True), (b"NOTE", b"skipped by 1.0 readers", False),
                (b"FRST", FRST, True)], minor=7),
        "OK", "OK", "OK", 0),
    "meta_byte_flipped": (patch(GOLDEN, META_OFFSET + 5, "<B", GOLDEN[META_OFFSET + 5] ^ 0x10),
                          "INTEGRITY", "-", "IntegrityError", 4),
    "forest_byte_flipped": (patch(GOLDEN, FRST_OFFSET + 70, "<B", GOLDEN[FRST_OFFSET + 70] ^ 1),
                            "INTEGRITY", "-", "IntegrityError", 4),
    "recorded_key_altered": (patch(GOLDEN, SIGN_OFFSET + 8, "<B", GOLDEN[SIGN_OFFSET + 8] ^ 0x80),
                             "INTEGRITY", "-", "IntegrityError", 4),
    "sign_too_short": (patch(GOLDEN, TABLE + 64 + 16, "<Q", SIGN_LEN - 8), "FORMAT", "-", "FormatError", 3),
    "signature_algorithm_unknown": (patch(GOLDEN, SIGN_OFFSET, "<I", 9), "VERSION", "-", "UnsupportedVersionError", 3),
    "unsigned_with_public_key": (patch(GOLDEN, SIGN_OFFSET, "<I", 0), "FORMAT", "-", "FormatError", 3),
    "unsigned": (rehash(GOLDEN), "OK", "OK", "SignatureError", 4),
    "signature_tampered": (patch(GOLDEN, len(GOLDEN) - 1, "<B", GOLDEN[-1] ^ 1), "OK", "OK", "SignatureError", 4),
    "signer_key_swapped": (GOLDEN[:SIGN_OFFSET + 40] + OTHER_KEY.public_key + GOLDEN[SIGN_OFFSET + 72:],
                           "OK", "OK", "SignatureError", 4),
    "untrusted_signer": (fmt.assemble([(b"META", META, True), (b"FRST", FRST, True)], OTHER_KEY),
                         "OK", "OK", "UntrustedSignerError", 4),
    "forest_child_out_of_range": (forest_with(first_node_offset() + 8, "<I", 1000), "OK", "FORMAT", "FormatError", 3),
    "forest_child_backwards": (forest_with(first_node_offset(), "<I", fmt.NODE_DEFAULT_LEFT), "OK", "FORMAT", "FormatError", 3),
    "forest_feature_out_of_range": (forest_with(first_node_offset(), "<I", 3), "OK", "FORMAT", "FormatError", 3),
    "forest_nan_threshold": (forest_with(first_node_offset() + 4, "<f", float("nan")), "OK", "FORMAT", "FormatError", 3),
    "forest_node_count_huge": (forest_with(24, "<I", 0x7FFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "forest_tree_count_huge": (forest_with(0, "<I", 0xFFFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "forest_unknown_transform": (forest_with(16, "<I", 9), "OK", "UNSUPPORTED", "UnsupportedModelError", 6),
    "forest_flags_unknown": (forest_with(48, "<I", 4), "OK", "VERSION", "UnsupportedVersionError", 3),
    "forest_leaf_width_bad": (forest_with(12, "<I", 5), "OK", "FORMAT", "FormatError", 3),
    "forest_array_outside": (forest_with(40, "<I", 1 << 20), "OK", "FORMAT", "FormatError", 3),
    "forest_truncated_header": (resign([(b"META", META, True), (b"FRST", FRST[:40], True)]), "OK", "FORMAT", "FormatError", 3),
    "no_payload": (resign([(b"META", META, True)]), "OK", "UNSUPPORTED", "UnsupportedModelError", 6),
    "meta_not_msgpack": (meta_with(b"\xc1\xc1\xc1 not msgpack"), "OK", "FORMAT", "FormatError", 3),
    "meta_not_a_map": (meta_with(fmt.encode_meta({"x": 1})[1:]), "OK", "FORMAT", "FormatError", 3),
    "meta_a_list": (meta_with(fmt.encode_meta({"x": [_meta_dict()]})[3:]), "OK", "FORMAT", "FormatError", 3),
    "meta_without_inputs": (meta_with(_meta_without("inputs")), "OK", "FORMAT", "FormatError", 3),
    "meta_without_created": (meta_with(_meta_without("created")), "OK", "FORMAT", "FormatError", 3),
    "meta_inputs_disagree": (meta_with(_meta_fewer_inputs()), "OK", "FORMAT", "FormatError", 3),
    "meta_outputs_disagree": (meta_with(_meta_changed(lambda m: m["outputs"].append(m["outputs"][0]))),
                              "OK", "FORMAT", "FormatError", 3),
    "meta_input_not_a_map": (meta_with(_meta_changed(lambda m: m["inputs"].__setitem__(1, "velocity"))),
                             "OK", "FORMAT", "FormatError", 3),
    "meta_input_name_not_a_string": (meta_with(_meta_changed(_set_input(0, name=7))),
                                     "OK", "FORMAT", "FormatError", 3),
    "meta_input_without_missing_policy": (meta_with(_meta_changed(_set_input(2, missing=None))),
                                          "OK", "FORMAT", "FormatError", 3),
    "meta_missing_policy_unknown": (meta_with(_meta_changed(_set_input(0, missing="sometimes"))),
                                    "OK", "FORMAT", "FormatError", 3),
    "meta_input_names_repeat": (meta_with(_meta_changed(_set_input(2, name="amount"))),
                                "OK", "FORMAT", "FormatError", 3),
    "meta_rules_without_task": (meta_with(_meta_changed(lambda m: m["score_rules"].pop("task"))),
                                "OK", "FORMAT", "FormatError", 3),
    "meta_trailing_bytes": (meta_with(META + b"\xc0"), "OK", "FORMAT", "FormatError", 3),
    "meta_string_not_utf8": (meta_with(_meta_with_raw("description", b"\xa3\xed\xa0\x80")),
                             "OK", "FORMAT", "FormatError", 3),
    "meta_nested_too_deep": (meta_with(_meta_with_raw("training_params", b"\x91" * 1100 + b"\xc0")),
                             "OK", "FORMAT", "FormatError", 3),
    "meta_key_not_a_string": (meta_with(_meta_with_integer_key()), "OK", "FORMAT", "FormatError", 3),
    "meta_bad_timestamp": (meta_with(_meta_with_raw("provenance", b"\xd5\xff\x00\x00")),
                           "OK", "FORMAT", "FormatError", 3),
    "meta_reserved_extension_type": (meta_with(_meta_with_raw("provenance", b"\xd4\xfe\x00")),
                                     "OK", "FORMAT", "FormatError", 3),
    "meta_unknown_types_skipped": (
        meta_with(_meta_with_raw("provenance", b"\x83\xa1b\xc4\x02\x00\x01\xa1e\xd4\x07\x00"
                                               b"\xa1t\xd6\xff\x00\x00\x00\x00")),
        "OK", "OK", "OK", 0),
    "meta_deepest_nesting": (meta_with(_meta_with_raw("training_params", b"\x91" * 1023 + b"\xc0")),
                             "OK", "OK", "OK", 0),
    "input_refuses_missing": (meta_with(_meta_changed(_set_input(1, missing="error"))),
                              "OK", "OK", "OK", 0),
    "no_meta": (resign([(b"FRST", FRST, True)]), "OK", "FORMAT", "FormatError", 3),
    "mlp_layers_do_not_chain": (mlp_with(layer_field(1, 0), "<I", 5), "OK", "FORMAT", "FormatError", 3),
    "mlp_weights_past_end": (mlp_with(layer_field(0, 16), "<I", 1 << 20), "OK", "FORMAT", "FormatError", 3),
    "mlp_arrays_overlap": (mlp_with(layer_field(0, 20), "<I", first_weight_offset()), "OK", "FORMAT", "FormatError", 3),
    "mlp_unknown_activation": (mlp_with(layer_field(2, 8), "<I", 9), "OK", "UNSUPPORTED", "UnsupportedModelError", 6),
    "mlp_layer_count_huge": (mlp_with(0, "<I", 0xFFFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "mlp_too_wide": (resign(mlp_sections(mlp=patch(patch(MLP, 4, "<I", 2000), layer_field(0, 0), "<I", 2000)),
                            minor=MLP_MINOR), "OK", "UNSUPPORTED", "UnsupportedModelError", 6),
    "mlp_nan_weight": (mlp_with(first_weight_offset(), "<f", float("nan")), "OK", "FORMAT", "FormatError", 3),
    "mlp_alpha_on_relu": (mlp_with(layer_field(0, 12), "<f", 0.5), "OK", "FORMAT", "FormatError", 3),
    "mlp_outputs_disagree": (mlp_with(8, "<I", 2), "OK", "FORMAT", "FormatError", 3),
    "mlp_truncated_header": (resign(mlp_sections(mlp=MLP[:40]), minor=MLP_MINOR), "OK", "FORMAT", "FormatError", 3),
    "mlp_and_forest": (resign(mlp_sections() + [(b"FRST", FRST, True)], minor=MLP_MINOR),
                       "OK", "FORMAT", "FormatError", 3),
    "xfrm_source_out_of_range": (xfrm_with(XFRM_COLUMN, "<I", 3), "OK", "FORMAT", "FormatError", 3),
    "xfrm_unknown_scaling": (xfrm_with(XFRM_COLUMN + 4, "<I", 7), "OK", "UNSUPPORTED", "UnsupportedModelError", 6),
    "xfrm_flags_unknown": (xfrm_with(12, "<I", 1), "OK", "VERSION", "UnsupportedVersionError", 3),
    "mlp_flags_unknown": (mlp_with(16, "<I", 2), "OK", "VERSION", "UnsupportedVersionError", 3),
    "xfrm_zero_divisor": (xfrm_with(XFRM_COLUMN + 24, "<d", 0.0), "OK", "FORMAT", "FormatError", 3),
    "xfrm_nan_impute": (xfrm_with(XFRM_COLUMN + 32 + 8, "<d", float("nan")), "OK", "FORMAT", "FormatError", 3),
    "xfrm_columns_disagree": (xfrm_with(4, "<I", 2), "OK", "FORMAT", "FormatError", 3),
    "xfrm_without_payload": (resign(mlp_sections()[:2], minor=MLP_MINOR), "OK", "UNSUPPORTED",
                             "UnsupportedModelError", 6),
    "xfrm_reorders_forest_columns": (_forest_reading_reordered_columns(), "OK", "OK", "OK", 0),
    # one byte representation per model: each non-canonical form of a valid model, signed
    "noncanonical_padding_before_payload": (_assemble_with_extra_padding([(b"META", META, True), (b"FRST", FRST, True)], 1),
                                            "FORMAT", "-", "FormatError", 3),
    "noncanonical_padding_before_sign": (_assemble_with_extra_padding([(b"META", META, True), (b"FRST", FRST, True)], 2),
                                         "FORMAT", "-", "FormatError", 3),
    "noncanonical_minor_0_on_mlp": (resign(mlp_sections(), minor=0), "FORMAT", "-", "FormatError", 3),
    "noncanonical_minor_7_on_mlp": (resign(mlp_sections(), minor=7), "FORMAT", "-", "FormatError", 3),
    "noncanonical_minor_1_on_forest": (resign([(b"META", META, True), (b"FRST", FRST, True)], minor=1),
                                       "FORMAT", "-", "FormatError", 3),
    "noncanonical_unknown_section_in_minor_1": (
        resign([(b"META", META, True), (b"NOTE", b"not defined by 1.1", False), (b"FRST", FRST, True)], minor=1),
        "FORMAT", "-", "FormatError", 3),
    "noncanonical_meta_not_critical": (resign([(b"META", META, False), (b"FRST", FRST, True)]), "FORMAT", "-", "FormatError", 3),
    "noncanonical_payload_before_meta": (resign([(b"FRST", FRST, True), (b"META", META, True)]), "FORMAT", "-", "FormatError", 3),
    "noncanonical_xfrm_after_payload": (resign([mlp_sections()[0], mlp_sections()[2], mlp_sections()[1]], minor=1),
                                        "FORMAT", "-", "FormatError", 3),
    "section_type_with_space": (resign([(b"META", META, True), (b"NO E", b"x", False), (b"FRST", FRST, True)], minor=7),
                                "FORMAT", "-", "FormatError", 3),
    "section_type_lowercase": (resign([(b"META", META, True), (b"note", b"x", False), (b"FRST", FRST, True)], minor=7),
                               "FORMAT", "-", "FormatError", 3),
    "noncanonical_meta_keys_unsorted": (meta_with(_meta_keys_unsorted()), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_float32": (meta_with(_meta_float32()), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_key_twice": (meta_with(_meta_with_raw("provenance", b"\x82\xa1a\xc0\xa1a\xc0")),
                                    "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_binary_key": (meta_with(_meta_with_raw("provenance", b"\x81\xc4\x01a\xc0")),
                                     "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_integer_too_long": (meta_with(_meta_with_raw("provenance", b"\x81\xa4seed\xcd\x00\x07")),
                                           "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_signed_encoding": (meta_with(_meta_with_raw("provenance", b"\x81\xa4seed\xd0\x07")),
                                          "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_string_too_long": (meta_with(_meta_with_raw("description", b"\xd9\x03abc")),
                                          "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_array_too_long": (meta_with(_meta_with_raw("transforms", b"\xdc\x00\x00")),
                                         "OK", "FORMAT", "FormatError", 3),
    "noncanonical_meta_timestamp_too_long": (meta_with(_meta_with_raw("provenance", b"\xd7\xff" + bytes(7) + b"\x01")),
                                             "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_shared_leaf": (_forest_node(1, 8, "<I", 0), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_leaves_out_of_order": (_forest_leaves_permuted(), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_shared_subtree": (_forest_shared_subtree(),
                                           "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_trees_swapped": (
        resign([(b"META", META, True), (b"FRST", FRST[:64] + FRST[88:112] + FRST[64:88] + FRST[112:], True)]),
        "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_gap_before_base": (resign([(b"META", META, True), (b"FRST", _forest_gap_before_base(), True)]),
                                            "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_padding_not_zero": (forest_with(64 + 24 * 2 + 3, "<B", 1), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_forest_trailing_bytes": (resign([(b"META", META, True), (b"FRST", FRST + bytes(8), True)]),
                                           "OK", "FORMAT", "FormatError", 3),
    "noncanonical_mlp_layer_table_at_128": (mlp_with(12, "<I", 128), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_mlp_trailing_bytes": (resign(mlp_sections(mlp=MLP + bytes(64)), minor=MLP_MINOR),
                                        "OK", "FORMAT", "FormatError", 3),
    "noncanonical_mlp_weights_not_minimal": (mlp_with(layer_field(0, 16), "<I", first_weight_offset() + 64),
                                             "OK", "FORMAT", "FormatError", 3),
    "noncanonical_xfrm_trailing_bytes": (resign(mlp_sections(xfrm=XFRM + bytes(32)), minor=MLP_MINOR),
                                         "OK", "FORMAT", "FormatError", 3),
    # categorical splits (FRST nodes with CATEGORICAL set, their sets in CATS, format 1.2)
    "categorical_set_with_code_63": (cats_with(128 + 4, "<I", 0x80000000 | 0x8), "OK", "OK", "OK", 0),
    "categorical_split_without_cats": (resign(categorical_sections()[:2]), "OK", "FORMAT", "FormatError", 3),
    "cats_without_categorical_split": (resign([(b"META", META, True), (b"FRST", FRST, True), (b"CATS", CATS, True)],
                                              minor=CATS_MINOR), "OK", "FORMAT", "FormatError", 3),
    "cats_without_forest": (resign(mlp_sections() + [(b"CATS", CATS, True)], minor=CATS_MINOR), "OK", "FORMAT", "FormatError", 3),
    "cats_set_index_skips": (categorical_node_with(0, 4, "<I", 1), "OK", "FORMAT", "FormatError", 3),
    "cats_set_index_huge": (categorical_node_with(0, 4, "<I", 0xFFFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "cats_numeric_split_marked_categorical": (categorical_node_with(1, 0, "<I", _node_word(1) | fmt.NODE_CATEGORICAL),
                                              "OK", "FORMAT", "FormatError", 3),
    "cats_flags_unknown": (cats_with(16, "<I", 1), "OK", "VERSION", "UnsupportedVersionError", 3),
    "cats_reserved_nonzero": (cats_with(40, "<B", 1), "OK", "FORMAT", "FormatError", 3),
    "cats_set_count_huge": (cats_with(0, "<I", 0xFFFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "cats_word_count_huge": (cats_with(4, "<I", 0xFFFFFFFF), "OK", "FORMAT", "FormatError", 3),
    "cats_set_runs_past_words": (cats_with(64 + 16 + 4, "<I", 7), "OK", "FORMAT", "FormatError", 3),
    "cats_set_without_words": (resign(categorical_sections(cats=_cats_of_words([[0xA, 8], [], [0, 4]])), minor=CATS_MINOR),
                               "OK", "FORMAT", "FormatError", 3),
    "cats_set_too_long": (cats_with(64 + 4, "<I", (1 << 19) + 1), "OK", "FORMAT", "FormatError", 3),
    "cats_truncated_header": (resign(categorical_sections(cats=CATS[:40]), minor=CATS_MINOR), "OK", "FORMAT", "FormatError", 3),
    "cats_not_critical": (resign(categorical_sections()[:2] + [(b"CATS", CATS, False)], minor=CATS_MINOR),
                          "FORMAT", "-", "FormatError", 3),
    "noncanonical_cats_last_word_zero": (resign(categorical_sections(cats=_cats_of_words([[0xA, 8, 0], [5], [0, 4]])),
                                                minor=CATS_MINOR), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_cats_sets_overlap": (cats_with(64 + 8, "<I", 0), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_cats_words_not_minimal": (resign(categorical_sections(cats=patch(
        CATS[:64] + bytes(64) + CATS[64:], 12, "<I", 192)), minor=CATS_MINOR), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_cats_padding_not_zero": (cats_with(64 + 24 + 3, "<B", 1), "OK", "FORMAT", "FormatError", 3),
    "noncanonical_cats_trailing_bytes": (resign(categorical_sections(cats=CATS + bytes(4)), minor=CATS_MINOR),
                                         "OK", "FORMAT", "FormatError", 3),
    "noncanonical_cats_before_forest": (resign([(b"META", CAT_META, True), (b"CATS", CATS, True), (b"FRST", CAT_FRST, True)],
                                               minor=CATS_MINOR), "FORMAT", "-", "FormatError", 3),
    "noncanonical_minor_1_on_categorical": (resign(categorical_sections(), minor=1), "FORMAT", "-", "FormatError", 3),
}


def generate(folder: Path = OUT) -> dict[str, bytes]:
    """Write every case and the manifest into ``folder``; return name -> bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.astore"):
        stale.unlink()
    lines = ["# file\tc_container\tc_model\tpython_error\texit_code"]
    files = {}
    for name, (data, c_container, c_model, error, code) in CASES.items():
        (folder / f"{name}.astore").write_bytes(data)
        files[name] = data
        lines.append(f"{name}.astore\t{c_container}\t{c_model}\t{error}\t{code}")
    (folder / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return files


if __name__ == "__main__":
    generate()
    print(f"wrote {len(CASES)} cases to {OUT}")
