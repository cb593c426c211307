"""The C core as the bindings see it, and its own test programs.

* csrc/tests (the META reader's and the corpus tests) under AddressSanitizer + UBSan, and the
  pure-C example built against the public header only;
* the status table: every astore_status, by its C name, gives one exception and exit code;
* the C API refuses what Python refuses: for every corpus file, opening the model through
  the binding and ``pyastore.load`` reach the same verdict (signature and trust aside);
* what META tells the C core: input names, missing-value policies, the row checks;
* the one build definition (csrc/libastore.mk), read by setup.py as make reads it.
"""

from __future__ import annotations

import array
import ast
import math
import os
import re
import subprocess
import warnings

import pytest

import pyastore
from conftest import CORPUS_DIR, ROOT
from pyastore import _core, errors

CSRC = ROOT / "csrc"


NO_SIMD = ["CFLAGS=-DASTORE_NO_SIMD", "BUILD=build-nosimd"]


@pytest.mark.parametrize("variant, walk", [([], ""), (NO_SIMD, ""), (NO_SIMD, "nodes")],
                         ids=["default", "scalar-only", "scalar-only-node-walk"])
def test_c_tests_under_sanitizers(variant, walk):
    """The scalar-only build makes AddressSanitizer see every tree walk (it does not check
    the SIMD paths' gathers, whose indices are the ones validated at load): the bit-vector
    walk that small trees get, and (ASTORE_TREE_WALK=nodes) the node walk."""
    env = dict(os.environ, ASTORE_TREE_WALK=walk)
    result = subprocess.run(["make", "-s", "-C", str(CSRC), "check", "SANITIZE=1", *variant],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    summaries = re.findall(r"^(\d+) passed, (\d+) failed$", result.stdout, re.M)
    assert len(summaries) == 2, result.stdout  # test_meta, test_corpus
    assert all(int(passed) > 1000 and failed == "0" for passed, failed in summaries)
    assert "ERROR: AddressSanitizer" not in result.stderr
    assert "runtime error" not in result.stderr


def test_c_example_scores_like_python(golden_path, golden_pub):
    subprocess.run(["make", "-s", "-C", str(CSRC), "build/score_example"], check=True,
                   capture_output=True)
    rows = "0,0,0\n1,2,-1\n,3,0.25\n"
    result = subprocess.run([str(CSRC / "build" / "score_example"), str(golden_path)],
                            input=rows, capture_output=True, text=True, check=True)
    model = pyastore.load(golden_path, trusted_keys=[golden_pub])
    expected = [model.score_one(r)[0] for r in ([0, 0, 0], [1, 2, -1], [None, 3, 0.25])]
    assert [float(v) for v in result.stdout.split()] == expected
    assert "inputs: amount (missing: as_missing) velocity (missing: as_missing) " \
           "age_days (missing: as_missing)" in result.stderr


def test_c_example_refuses_what_an_input_refuses():
    subprocess.run(["make", "-s", "-C", str(CSRC), "build/score_example"], check=True,
                   capture_output=True)
    result = subprocess.run([str(CSRC / "build" / "score_example"),
                             str(CORPUS_DIR / "input_refuses_missing.astore")],
                            input="0,0,0\n1,,-1\n2,2,2\n", capture_output=True, text=True)
    assert result.returncode == 5
    assert len(result.stdout.split()) == 1  # the first row only
    assert "line 2: ASTORE_ERR_INPUT: column 'velocity': missing value" in result.stderr


# ---- one status table, checked by name ---------------------------------------------------

EXPECTED_ERRORS = {  # status name -> (exception class name, CLI exit code)
    "ASTORE_ERR_ARGUMENT": ("InternalError", 1),
    "ASTORE_ERR_TRUNCATED": ("FormatError", 3),
    "ASTORE_ERR_FORMAT": ("FormatError", 3),
    "ASTORE_ERR_VERSION": ("UnsupportedVersionError", 3),
    "ASTORE_ERR_INTEGRITY": ("IntegrityError", 4),
    "ASTORE_ERR_UNSUPPORTED": ("UnsupportedModelError", 6),
    "ASTORE_ERR_NOMEM": ("OutOfMemoryError", 1),
    "ASTORE_ERR_INPUT": ("InputError", 5),
}


def header_statuses() -> dict[str, int]:
    header = re.sub(r"/\*.*?\*/", "", (CSRC / "astore.h").read_text(), flags=re.S)
    return {name: int(value) for name, value in
            re.findall(r"\b(ASTORE_(?:OK|ERR_[A-Z]+))\s*=\s*(\d+)", header)}


def test_status_names_come_from_the_c_table_by_value():
    """astore_status_name(value) is the enum's own identifier for that value."""
    statuses = header_statuses()
    assert len(statuses) == len(_core.STATUS_NAMES)
    for name, value in statuses.items():
        assert _core.STATUS_NAMES[value] == name


def test_every_status_has_its_exception_and_exit_code_by_name():
    assert set(header_statuses()) == {"ASTORE_OK", *EXPECTED_ERRORS}
    for name, (class_name, exit_code) in EXPECTED_ERRORS.items():
        exc = errors.error_from_status(name, "message", offset=12)
        assert type(exc).__name__ == class_name, name
        assert exc.exit_code == exit_code, name
        assert exc.offset == 12
    unknown = errors.error_from_status("ASTORE_ERR_FROM_THE_FUTURE", "m")
    assert type(unknown) is errors.InternalError


def test_the_bindings_hold_no_status_table_of_their_own():
    """Both backends name the status and let pyastore.errors pick the class (the cffi
    backend's behaviour is compared with this one's in tests/cross/test_cffi_backend.py)."""
    assert not hasattr(_core, "STATUS_ERRORS")
    for path in (CSRC / "bindings.cpp", ROOT / "pyastore" / "_cffi_core.py"):
        source = path.read_text()
        assert "error_from_status" in source, path
        assert not re.search(r"\"(FormatError|InputError|UnsupportedVersionError)\"", source), path


@pytest.mark.parametrize("case, status, error", [
    ("header_flags_unknown", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("unknown_critical_section", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("signature_algorithm_unknown", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("major_version_2", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("forest_flags_unknown", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("mlp_flags_unknown", "ASTORE_ERR_VERSION", errors.UnsupportedVersionError),
    ("mlp_unknown_activation", "ASTORE_ERR_UNSUPPORTED", errors.UnsupportedModelError),
    ("xfrm_unknown_scaling", "ASTORE_ERR_UNSUPPORTED", errors.UnsupportedModelError),
    ("forest_unknown_transform", "ASTORE_ERR_UNSUPPORTED", errors.UnsupportedModelError),
    ("no_payload", "ASTORE_ERR_UNSUPPORTED", errors.UnsupportedModelError),
])
def test_newer_format_and_unscorable_feature_are_distinct(case, status, error):
    data = (CORPUS_DIR / f"{case}.astore").read_bytes()
    with pytest.raises(errors.PyastoreError) as caught:
        _core.Model(_core.Container(data))
    assert type(caught.value) is error
    assert errors.STATUS_ERRORS[status] is error


# ---- the C API and Python reach the same verdict -----------------------------------------

def corpus_files():
    return sorted(p.name for p in CORPUS_DIR.glob("*.astore"))


def c_verdict(data: bytes):
    try:
        _core.Model(_core.Container(data))
    except errors.PyastoreError as exc:
        return type(exc)
    return None


@pytest.mark.parametrize("name", corpus_files())
def test_c_api_and_python_give_the_same_verdict(name, golden_pub, isolated_trust):
    """Python's load adds the signature and trust checks, which are its own by design: with
    unsigned and untrusted containers allowed, anything else it refuses the C API refuses
    with the same exception, and what it loads the C API opens."""
    path = CORPUS_DIR / name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pyastore.load(path, trusted_keys=[golden_pub], allow_unsigned=True,
                          allow_untrusted=True)
        python = None
    except errors.SignatureError:
        assert c_verdict(path.read_bytes()) is None, "C refuses a file Python refuses only " \
                                                     "for its signature"
        return
    except errors.PyastoreError as exc:
        python = type(exc)
    assert c_verdict(path.read_bytes()) is python


# ---- what META tells the C core ------------------------------------------------------------

@pytest.fixture(scope="module")
def refusing():
    """The golden forest whose second input, velocity, refuses missing values."""
    return _core.Model(_core.Container((CORPUS_DIR / "input_refuses_missing.astore").read_bytes()))


def test_input_names_and_policies_come_from_meta(golden_path, refusing):
    golden = _core.Model(_core.Container(golden_path.read_bytes()))
    assert golden.input_names == ("amount", "velocity", "age_days")
    assert golden.accepts_missing == (True, True, True)
    assert refusing.input_names == golden.input_names
    assert refusing.accepts_missing == (True, False, True)


def test_two_inputs_of_one_name_are_refused_naming_both():
    data = (CORPUS_DIR / "meta_input_names_repeat.astore").read_bytes()
    with pytest.raises(errors.FormatError) as caught:
        _core.Model(_core.Container(data))
    assert caught.value.message == ("META inputs[0] and inputs[2] are both named 'amount': "
                                    "input names must be unique")
    assert caught.value.offset is not None and 0 < caught.value.offset < len(data)


ROWS = [[0, 0, 0], [math.nan, 1, math.nan], [1, math.nan, 2], [math.nan, math.nan, 0]]


def flat(rows) -> array.array:
    return array.array("f", [v for row in rows for v in row])


def test_check_rows_reports_the_first_refused_row(refusing):
    assert refusing.check_rows(flat(ROWS[:2])) is None
    with pytest.raises(errors.InputError) as caught:
        refusing.check_rows(flat(ROWS))
    assert (caught.value.row, caught.value.column, caught.value.offset) == (2, 1, None)
    assert caught.value.message == ("column 'velocity': missing value, and this input does "
                                    "not accept missing values")
    with pytest.raises(errors.InputError) as caught:
        refusing.check_rows(flat(ROWS), start=3)
    assert caught.value.row == 3  # an index into x, not into the rows checked
    assert refusing.check_rows(flat(ROWS), start=4) is None
    with pytest.raises(ValueError):
        refusing.check_rows(flat(ROWS), start=5)
    with pytest.raises(errors.InputError):
        refusing.check_rows(array.array("f", [0.0] * 4))


def test_scoring_refuses_the_row_check_rows_refuses(refusing):
    out = array.array("d", [-1.0] * 4)
    with pytest.raises(errors.InputError) as caught:
        refusing.score_into(flat(ROWS), out)
    assert (caught.value.row, caught.value.column) == (2, 1)
    assert list(out) == [-1.0] * 4  # nothing scored
    with pytest.raises(errors.InputError) as caught:
        refusing.score_one([0.0, None, 0.0])
    assert (caught.value.row, caught.value.column) == (0, 1)
    assert refusing.score_one([None, 0.0, None])
    refusing.score_into(flat(ROWS[:2]), out)
    assert out[0] != -1.0 and out[1] != -1.0


# ---- one build definition -----------------------------------------------------------------

def setup_py_parser():
    """setup.py's read_build_definition, without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef)
                    and node.name == "read_build_definition")
    namespace = {"os": __import__("os"), "BUILD_DEFINITION": str(CSRC / "libastore.mk")}
    exec(compile(ast.Module(body=[function], type_ignores=[]), "setup.py", "exec"), namespace)
    return namespace["read_build_definition"]


def test_setup_py_reads_the_build_definition_as_make_does():
    definition = setup_py_parser()(str(CSRC / "libastore.mk"))
    assert {"ASTORE_SOURCES", "ASTORE_CFLAGS", "ASTORE_SANITIZE", "ASTORE_LIBS"} <= set(definition)
    for name, words in definition.items():
        printed = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(CSRC),
                                  f"print-{name}"], capture_output=True, text=True, check=True)
        assert printed.stdout.split() == words, name
    assert sorted(definition["ASTORE_SOURCES"]) == sorted(p.name for p in CSRC.glob("*.c"))
    for flag in ("-std=c99", "-pedantic", "-fno-fast-math", "-ffp-contract=off", "-Werror"):
        assert flag in definition["ASTORE_CFLAGS"]


def test_no_other_build_script_spells_the_c_flags():
    """setup.py, cross/build.sh and bench/contenders.py take libastore's flags from
    libastore.mk (the bench compiles other runtimes' generated C with their own flags)."""
    for path in (ROOT / "setup.py", ROOT / "cross" / "build.sh", ROOT / "bench" / "contenders.py"):
        code = [line for line in path.read_text().splitlines()
                if not line.lstrip().startswith("#")]
        spelled = [line for line in code
                   if any(flag in line for flag in ("-ffp-contract", "-D_POSIX_C_SOURCE",
                                                    "-fsanitize", "-pedantic"))]
        assert not spelled, (path, spelled)


def test_bench_fails_loudly_when_the_tree_does_not_build(tmp_path, monkeypatch):
    """bench/contenders.py builds the working tree's csrc/ or stops: no other revision."""
    import shutil

    from bench import contenders

    tree = tmp_path / "tree"
    shutil.copytree(CSRC, tree / "csrc", ignore=shutil.ignore_patterns("build*"))
    shutil.copytree(ROOT / "bench" / "c", tree / "bench" / "c")
    monkeypatch.setattr(contenders, "ROOT", tree)
    driver, how = contenders.build_c_driver(tmp_path / "ok")
    assert driver is not None and driver.exists() and how == "working tree csrc/"
    (tree / "csrc" / "meta.c").write_text("this is not C\n")
    with pytest.raises(contenders.CBuildError, match="does not build"):
        contenders.build_c_driver(tmp_path / "broken")
