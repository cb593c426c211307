"""The cffi backend (pyastore/_cffi_core.py) against the pybind11 extension (pyastore._core):
the same API, the same float64 bits, the same errors (class, message, offset).

The backend loads a libastore.so built here from csrc/ with the Makefile (its C flags), as a
device would load the one cross/build.sh makes. The scoring suites
(tests/unit/pyastore/test_scoring_api.py, tests/golden/test_golden.py,
tests/corpus/test_corpus.py, tests/unit/pyastore/test_format.py) are also run whole with
pyastore.model switched to the cffi backend.
"""

from __future__ import annotations

import array
import gc
import importlib
import json
import math
import os
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
GOLDEN_DIR = ROOT / "tests" / "golden"
GOLDEN_SCORES = ROOT / "tests" / "golden_scores"
CORPUS_DIR = ROOT / "tests" / "corpus" / "negative"

pytest.importorskip("cffi")

# Switches pyastore.model to the cffi backend before anything else runs; the same effect as
# PYASTORE_BACKEND=cffi once pyastore/model.py reads it.
SWITCH_TO_CFFI = (
    "import sys, pytest, pyastore.model, pyastore._cffi_core as backend; "
    "pyastore.model._core = backend; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def libastore(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("libastore-host")
    subprocess.run(["make", "-s", "-C", str(CSRC), f"BUILD={build}", f"{build}/libastore.so"],
                   check=True, capture_output=True, text=True, timeout=600)
    return build / "libastore.so"


@pytest.fixture(scope="module")
def backends(libastore):
    """(pybind11 module, cffi module), the cffi one loaded from the library built here."""
    from pyastore import _core

    previous = os.environ.get("PYASTORE_LIBASTORE")
    os.environ["PYASTORE_LIBASTORE"] = str(libastore)
    try:
        sys.modules.pop("pyastore._cffi_core", None)
        cffi_core = importlib.import_module("pyastore._cffi_core")
    finally:
        if previous is None:
            os.environ.pop("PYASTORE_LIBASTORE", None)
        else:
            os.environ["PYASTORE_LIBASTORE"] = previous
    assert cffi_core.LIBRARY_PATH == str(libastore)
    return _core, cffi_core


def bits(values) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def containers() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.astore")) + sorted(GOLDEN_SCORES.glob("*.astore"))


def error_of(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - comparing what each backend raises
        return (type(exc).__name__, str(exc), getattr(exc, "offset", None),
                getattr(exc, "row", None), getattr(exc, "column", None))
    return None


# ---- the module surface ------------------------------------------------------------------

def test_constants_and_status_names(backends):
    """Both name every status as the C library does; neither holds a status table of its
    own (pyastore.errors.STATUS_ERRORS, keyed by name, is the one)."""
    pybind, cffi_core = backends
    assert cffi_core.STATUS_NAMES == pybind.STATUS_NAMES
    assert cffi_core.FORMAT_VERSION == pybind.FORMAT_VERSION
    assert cffi_core.LIBRARY_VERSION == pybind.LIBRARY_VERSION
    assert not hasattr(cffi_core, "STATUS_ERRORS") and not hasattr(pybind, "STATUS_ERRORS")
    from pyastore import errors

    assert set(cffi_core.STATUS_NAMES[1:]) == set(errors.STATUS_ERRORS)


def test_cdef_declares_every_function_of_the_header(backends):
    _, cffi_core = backends
    header = (CSRC / "astore.h").read_text()
    declared = set(re.findall(r"\b(astore_[a-z0-9_]+)\s*\(", re.sub(r"/\*.*?\*/", "", header,
                                                                     flags=re.S)))
    missing = sorted(name for name in declared if not hasattr(cffi_core.lib, name))
    assert not missing, f"pyastore/_cffi_core.py CDEF lacks {missing}"
    enum = dict(re.findall(r"(ASTORE_(?:OK|ERR_[A-Z]+))\s*=\s*(\d+)", header))
    assert {k: int(v) for k, v in enum.items()} == {
        k: getattr(cffi_core.lib, k) for k in enum}
    assert int(re.search(r"#define ASTORE_STATUS_COUNT (\d+)", header).group(1)) == \
        cffi_core.ASTORE_STATUS_COUNT


def test_cdef_struct_layout_matches_the_compiler(backends, tmp_path):
    """ABI mode trusts the CDEF's layout: compare sizes and offsets with the C compiler's."""
    _, cffi_core = backends
    ffi = cffi_core.ffi
    fields = {"astore_error": ("status", "offset", "row", "column", "message"),
              "astore_section_info": ("type", "flags", "offset", "length", "data"),
              "astore_input_info": ("name", "name_length", "missing_policy", "accepts_missing")}
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "astore.h"',
             "int main(void) {"]
    for struct_name, names in fields.items():
        lines.append(f'printf("{struct_name} %zu\\n", sizeof({struct_name}));')
        for field in names:
            lines.append(f'printf("{struct_name}.{field} %zu\\n", '
                         f'offsetof({struct_name}, {field}));')
    lines += ['printf("astore_status %zu\\n", sizeof(astore_status));',
              'printf("astore_missing_policy %zu\\n", sizeof(astore_missing_policy));',
              "return 0; }"]
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    subprocess.run(["cc", "-std=c99", f"-I{CSRC}", str(source), "-o", str(tmp_path / "layout")],
                   check=True, capture_output=True)
    compiled = dict(line.split() for line in subprocess.run(
        [str(tmp_path / "layout")], check=True, capture_output=True, text=True).stdout.splitlines())
    ours = {"astore_status": ffi.sizeof("astore_status"),
            "astore_missing_policy": ffi.sizeof("astore_missing_policy")}
    for struct_name, names in fields.items():
        ours[struct_name] = ffi.sizeof(struct_name)
        for field in names:
            ours[f"{struct_name}.{field}"] = ffi.offsetof(struct_name, field)
    assert {k: int(v) for k, v in compiled.items()} == ours


def test_missing_library_is_an_import_error(tmp_path):
    env = dict(os.environ, PYASTORE_LIBASTORE=str(tmp_path / "nowhere" / "libastore.so"))
    result = subprocess.run([sys.executable, "-c", "import pyastore._cffi_core"], env=env,
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "ImportError: pyastore._cffi_core cannot load libastore" in result.stderr
    assert "PYASTORE_LIBASTORE" in result.stderr


# ---- containers and scores -----------------------------------------------------------------

@pytest.mark.parametrize("path", containers(), ids=lambda p: p.name)
def test_container_properties_identical(backends, path):
    pybind, cffi_core = backends
    data = path.read_bytes()
    a, b = pybind.Container(data), cffi_core.Container(data)
    for name in ("store_key", "format_version", "signature_algorithm", "public_key",
                 "signature", "signed_message", "data"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.sections() == b.sections()
    for section_type in ["META", "FRST", "MLP_", "XFRM", "SIGN", "NONE", ""]:
        assert a.section(section_type) == b.section(section_type), section_type
    ma, mb = pybind.Model(a), cffi_core.Model(b)
    for name in ("n_inputs", "n_outputs", "input_names", "accepts_missing"):
        assert getattr(ma, name) == getattr(mb, name), name


@pytest.mark.parametrize("name", sorted(json.loads(
    (GOLDEN_SCORES / "manifest.json").read_text())["golden"]))
def test_golden_scores_bit_identical(backends, name):
    """Batch (array.array and numpy), two threads and one row at a time: the same bits through
    both backends, and the golden bytes."""
    pybind, cffi_core = backends
    entry = json.loads((GOLDEN_SCORES / "manifest.json").read_text())["golden"][name]
    data = (ROOT / entry["container"]).read_bytes()
    x = array.array("f", (GOLDEN_SCORES / f"{name}.input.f32").read_bytes())
    expected = (GOLDEN_SCORES / f"{name}.expected.f64").read_bytes()
    n_out = entry["n_outputs"]
    for core in (pybind, cffi_core):
        model = core.Model(core.Container(data))
        for n_threads in (1, 2):
            out = array.array("d", bytes(8 * entry["n_rows"] * n_out))
            model.score_into(x, out, n_threads)
            assert out.tobytes() == expected, (core.__name__, n_threads)
    models = [core.Model(core.Container(data)) for core in (pybind, cffi_core)]
    n_in = entry["n_inputs"]
    for r in range(0, entry["n_rows"], 7):
        row = list(x[r * n_in:(r + 1) * n_in])
        one, two = (bits(m.score_one(row)) for m in models)
        assert one == two == expected[8 * r * n_out:8 * (r + 1) * n_out], r


def test_numpy_buffers(backends):
    np = pytest.importorskip("numpy")
    pybind, cffi_core = backends
    data = (GOLDEN_DIR / "tiny_forest.astore").read_bytes()
    x = np.array([[0, 0, 0], [1, 2, -1], [np.nan, 3, 0.25]], dtype=np.float32)
    results = []
    for core in (pybind, cffi_core):
        out = np.empty((3, 1), dtype=np.float64)
        core.Model(core.Container(data)).score_into(x, out, 1)
        results.append(out.tobytes())
    assert results[0] == results[1]


def test_argument_errors_identical(backends):
    """Bad rows and buffers: the same exception class and message from both backends."""
    np = pytest.importorskip("numpy")
    pybind, cffi_core = backends
    data = (GOLDEN_DIR / "tiny_forest.astore").read_bytes()
    models = [core.Model(core.Container(data)) for core in (pybind, cffi_core)]

    class Weird:
        def __float__(self):
            raise RuntimeError("no")

    cases = [
        lambda m: m.score_one([1.0, 2.0]),
        lambda m: m.score_one([1.0, "2", 3.0]),
        lambda m: m.score_one([1.0, b"2", 3.0]),
        lambda m: m.score_one([1.0, Weird(), 3.0]),
        lambda m: m.score_one([1.0, 10 ** 400, 3.0]),
        lambda m: m.score_one(5),
        lambda m: m.score_into(np.zeros(4, np.float32), np.zeros(2)),
        lambda m: m.score_into(np.zeros(3, np.float64), np.zeros(1)),
        lambda m: m.score_into(np.zeros(3, np.float32), np.zeros(1, np.float32)),
        lambda m: m.score_into(np.zeros((3, 2), np.float32)[:, 0], np.zeros(1)),
        lambda m: m.score_into(np.zeros(3, np.float32), bytes(8)),
        lambda m: m.score_into(np.zeros(3, np.float32), np.zeros(0)),
    ]
    for i, case in enumerate(cases):
        pybind_error, cffi_error = (error_of(lambda case=case, m=m: case(m)) for m in models)
        assert pybind_error is not None, i
        assert pybind_error[0] == cffi_error[0], (i, pybind_error, cffi_error)
        if pybind_error[0] != "TypeError":  # pybind11's own signature texts are not mirrored
            assert pybind_error == cffi_error, i
    special = [1e300, -1e300, math.nan, True, 7, np.float32(0.5), None]
    for value in special:
        row = [value, 1.0, 2.0]
        assert bits(models[0].score_one(row)) == bits(models[1].score_one(row)), value


def test_negative_corpus_errors_identical(backends):
    """Every container of the negative corpus: the same class, message and offset."""
    pybind, cffi_core = backends
    names = [line.split("\t")[0] for line in (CORPUS_DIR / "manifest.tsv").read_text().splitlines()
             if line and not line.startswith("#")]
    assert len(names) > 20
    for name in names:
        data = (CORPUS_DIR / name).read_bytes()
        results = [error_of(lambda core=core, data=data: core.Model(core.Container(data)))
                   for core in (pybind, cffi_core)]
        assert results[0] == results[1], name


def test_missing_value_policy_identical(backends):
    """An input refusing missing values: the same InputError (message, row, column) from
    check_rows, score_into and score_one, and the same rows accepted."""
    pybind, cffi_core = backends
    data = (CORPUS_DIR / "input_refuses_missing.astore").read_bytes()
    models = [core.Model(core.Container(data)) for core in (pybind, cffi_core)]
    assert models[0].accepts_missing == models[1].accepts_missing == (True, False, True)
    nan = math.nan
    rows = array.array("f", [0, 0, 0, nan, 1, nan, 1, nan, 2, nan, nan, 0])
    cases = [
        lambda m: m.check_rows(rows),
        lambda m: m.check_rows(rows, start=3),
        lambda m: m.check_rows(rows, 3),
        lambda m: m.check_rows(rows, start=4),
        lambda m: m.check_rows(rows, start=5),
        lambda m: m.check_rows(rows, start=-1),
        lambda m: m.check_rows(array.array("f", [0.0] * 4)),
        lambda m: m.check_rows(array.array("d", [0.0] * 3)),
        lambda m: m.check_rows(rows[:6]),
        lambda m: m.score_into(rows, array.array("d", bytes(32))),
        lambda m: m.score_one([0.0, None, 0.0]),
        lambda m: m.score_one([0.0, nan, nan]),
    ]
    for i, case in enumerate(cases):
        pybind_error, cffi_error = (error_of(lambda case=case, m=m: case(m)) for m in models)
        assert (pybind_error is None) == (cffi_error is None), (i, pybind_error, cffi_error)
        if pybind_error is not None and pybind_error[0] != "TypeError":
            assert pybind_error == cffi_error, i
    assert error_of(lambda: models[0].check_rows(rows))[3:] == (2, 1)


def test_model_keeps_its_container_alive(backends):
    _, cffi_core = backends
    model = cffi_core.Model(cffi_core.Container((GOLDEN_DIR / "tiny_forest.astore").read_bytes()))
    gc.collect()
    assert len(model.score_one([1.0, 2.0, -1.0])) == 1


def test_threads_share_a_model(backends):
    _, cffi_core = backends
    model = cffi_core.Model(cffi_core.Container(
        (GOLDEN_SCORES / "stress_multiclass_softmax.astore").read_bytes()))
    x = array.array("f", (GOLDEN_SCORES / "stress_multiclass_softmax.input.f32").read_bytes())
    expected = (GOLDEN_SCORES / "stress_multiclass_softmax.expected.f64").read_bytes()
    outcomes = []

    def work():
        out = array.array("d", bytes(len(expected)))
        for _ in range(5):
            model.score_into(x, out, 1)
        outcomes.append(out.tobytes() == expected)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [True] * 4


# ---- the whole scoring suite through the cffi backend ------------------------------------

def test_scoring_suites_pass_with_the_cffi_backend(libastore):
    env = dict(os.environ, PYASTORE_LIBASTORE=str(libastore), PYASTORE_BACKEND="cffi")
    suites = ["tests/unit/pyastore/test_scoring_api.py", "tests/golden/test_golden.py",
              "tests/corpus/test_corpus.py", "tests/unit/pyastore/test_format.py"]
    result = subprocess.run([sys.executable, "-c", SWITCH_TO_CFFI, "-q", "-p", "no:cacheprovider",
                             *suites], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)
