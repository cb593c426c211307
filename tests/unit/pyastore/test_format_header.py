"""The Python writer's constants (pyastore/format.py, pyastore/ir.py) against the C core's
byte layout, csrc/astore_format.h: every ``#define`` of the header is either compared with
the writer's value here, or listed as a reader-only limit. A constant changed on one side
only fails this test."""

from __future__ import annotations

import ast
import re

from conftest import ROOT
from pyastore import format as fmt
from pyastore import ir

HEADER = ROOT / "csrc" / "astore_format.h"

# Defines the writer has no counterpart for: limits and masks only the reader applies.
READER_ONLY = {
    "ASTORE_MAX_SECTIONS",     # the reader's bound on the section table
    "ASTORE_XFRM_SCALE_MASK",  # how the reader splits the op word
}

# Defines of enumerations: prefix -> the writer's names, in value order.
ENUMERATIONS = {
    "ASTORE_POST_": ir.POST_TRANSFORMS,
    "ASTORE_AGGREGATE_": ir.AGGREGATIONS,
    "ASTORE_ACTIVATION_": ir.ACTIVATIONS,
    "ASTORE_XFRM_SCALE_": ir.SCALINGS,
}

# Defines whose Python name differs from the C name without its ASTORE_ prefix.
RENAMED = {
    "ASTORE_FORMAT_MINOR": "LATEST_MINOR",  # the newest minor; format.FORMAT_MINOR is 1.0's
}


def c_value(text: str):
    """A #define's value: an integer expression (u suffixes, shifts) or C string literals."""
    text = text.strip()
    if text.startswith('"'):
        return b"".join(ast.literal_eval("b" + literal)
                        for literal in re.findall(r'"(?:[^"\\]|\\.)*"', text))
    expression = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)[uU]\b", r"\1", text)
    if not re.fullmatch(r"[0-9A-Fa-fx()<< ]+", expression):
        raise ValueError(f"not a constant expression: {text!r}")
    return eval(expression, {"__builtins__": {}})  # digits, parentheses and shifts only


def header_defines() -> dict[str, object]:
    source = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    defines = {}
    for name, value in re.findall(r"^#define (ASTORE_[A-Z0-9_]+)[ \t]+(.+)$", source, re.M):
        if name == "ASTORE_STATIC_ASSERT":
            continue
        defines[name] = c_value(value)
    return defines


def static_sizes() -> dict[str, int]:
    return {struct: int(size) for struct, size in re.findall(
        r"ASTORE_STATIC_ASSERT\(sizeof\((astore_\w+)\) == (\d+),", HEADER.read_text())}


def test_every_define_matches_the_writer():
    defines = header_defines()
    assert len(defines) > 30
    unchecked = []
    for name, value in defines.items():
        if name in READER_ONLY:
            continue
        prefix = next((p for p in ENUMERATIONS if name.startswith(p)), None)
        if name.startswith("ASTORE_SECTION_") and isinstance(value, bytes):
            assert f'b"{value.decode()}"' in (ROOT / "pyastore" / "format.py").read_text(), name
        elif prefix is not None:
            names = ENUMERATIONS[prefix]
            assert names[value] == name[len(prefix):].lower(), name
        elif name == "ASTORE_MAGIC_LEN":
            assert value == len(fmt.MAGIC)
        else:
            python_name = RENAMED.get(name, name[len("ASTORE_"):])
            if not hasattr(fmt, python_name):
                unchecked.append(name)
                continue
            assert getattr(fmt, python_name) == value, name
    assert not unchecked, f"defines with no writer counterpart (add them or list them): {unchecked}"


def test_every_enumeration_is_complete():
    defines = header_defines()
    for prefix, names in ENUMERATIONS.items():
        values = sorted(v for k, v in defines.items()
                        if k.startswith(prefix) and k not in READER_ONLY)
        assert values == list(range(len(names))), prefix


def test_record_sizes_match_the_writer():
    sizes = static_sizes()
    assert sizes["astore_file_header"] == fmt.HEADER_SIZE
    assert sizes["astore_section_entry"] == fmt.SECTION_ENTRY_SIZE
    for struct in ("astore_forest_header", "astore_mlp_header", "astore_xfrm_header"):
        assert sizes[struct] == fmt.ALIGN  # section headers are one aligned block

