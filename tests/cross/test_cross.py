"""Cross-architecture builds and the determinism check: the same container and input give the
same float64 bits on x86-64, aarch64 and armv7 (and on s390x, a big-endian host where the C
core decodes the arrays instead of using them in place).

Each target is built and run by ``cross/build.sh`` (qemu-user for the foreign ones), once per
session, into a temporary ``CROSS_OUT``. By default this is the CI subset (a few minutes):

* x86_64, s390x: gcc and clang builds, ``make check``'s score_example runs, golden scores;
* aarch64, armv7: the same plus ``make check``'s C corpus test under qemu (gcc), and the
  wheel, built by setup.py for the target and checked by the target's CPython under qemu.

``PYASTORE_CROSS=full`` runs everything (the corpus test with clang too, every wheel);
``PYASTORE_CROSS_TARGETS=aarch64,armv7`` picks targets. A target whose cross toolchain or
qemu is not installed is skipped with the apt-get line that installs it.

Regenerate the golden score files with ``pytest tests/cross --update-goldens`` (or
``python tests/golden_scores/generate.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_SCORES = ROOT / "tests" / "golden_scores"


def _load_generator():
    """tests/golden_scores/generate.py under its own name (tests/corpus has a generate.py)."""
    spec = importlib.util.spec_from_file_location("golden_scores_generate",
                                                  GOLDEN_SCORES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()

FULL = os.environ.get("PYASTORE_CROSS") == "full"
ALL_TARGETS = ("x86_64", "aarch64", "armv7", "s390x")
TARGETS = tuple(t for t in os.environ.get("PYASTORE_CROSS_TARGETS", ",".join(ALL_TARGETS))
                .split(",") if t)
DEVICE_TARGETS = ("aarch64", "armv7")
TOOLS = {
    "x86_64": (("gcc", "clang"), "gcc clang"),
    "aarch64": (("aarch64-linux-gnu-gcc", "qemu-aarch64"),
                "gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user"),
    "armv7": (("arm-linux-gnueabihf-gcc", "qemu-arm"),
              "gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf qemu-user"),
    "s390x": (("s390x-linux-gnu-gcc", "qemu-s390x"), "gcc-s390x-linux-gnu qemu-user"),
}
COMPILERS = ("gcc", "clang")

# Scores are compared bit for bit: the core computes exp() itself (csrc/astore_math.h, mlp.c)
# because libm's exp() rounds differently with and without FMA.


def _build_options(target: str) -> list[str]:
    if FULL:
        return []
    options = ["--quick"]
    if target in DEVICE_TARGETS:
        options.append("--wheel")
    else:
        options.append("--no-corpus")
    return options


class Build:
    """One run of cross/build.sh: its RESULT lines and its output folder."""

    def __init__(self, target: str, out: Path, returncode: int, log: str):
        self.target, self.out, self.returncode, self.log = target, out / target, returncode, log
        self.results: dict[str, tuple[bool, str]] = {}
        self.sizes: list[str] = re.findall(r"^SIZE .*$", log, re.M)
        for check, verdict, detail in re.findall(r"^RESULT (\S+) (ok|FAIL) ?(.*)$", log, re.M):
            self.results[check] = (verdict == "ok", detail)

    def result(self, check: str) -> tuple[bool, str]:
        if check not in self.results:
            pytest.fail(f"cross/build.sh {self.target} reported no {check!r} check:\n"
                        + self.log[-3000:])
        return self.results[check]


_builds: dict[str, Build] = {}


@pytest.fixture(scope="session")
def cross_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cross-out")


def build(target: str, cross_out: Path) -> Build:
    if target not in TARGETS:
        pytest.skip(f"{target} not in PYASTORE_CROSS_TARGETS")
    tools, packages = TOOLS[target]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"cross toolchain for {target} absent ({', '.join(missing)}): "
                    f"apt-get install -y --no-install-recommends {packages}")
    if target not in _builds:
        env = dict(os.environ, CROSS_OUT=str(cross_out), PYTHON=sys.executable)
        result = subprocess.run(["bash", str(ROOT / "cross" / "build.sh"), target,
                                 *_build_options(target)],
                                capture_output=True, text=True, env=env, timeout=1800)
        _builds[target] = Build(target, cross_out, result.returncode,
                                result.stdout + result.stderr)
        print(f"\ncross/build.sh {target}: " + " | ".join(_builds[target].sizes))
    return _builds[target]


def golden_names() -> list[str]:
    import json

    return sorted(json.loads((GOLDEN_SCORES / "manifest.json").read_text())["golden"])


def _ulp_distance(a: float, b: float) -> int:
    ia, ib = (struct.unpack("<q", struct.pack("<d", v))[0] for v in (a, b))
    ia, ib = (i if i >= 0 else -(1 << 63) - i for i in (ia, ib))  # monotonic in the value
    return abs(ia - ib)


# ---- the golden score files are what the x86-64 build computes today -----------------------

def test_golden_score_files_are_current(update_goldens):
    """The committed inputs and expected bytes match a fresh generation on this host; with
    ``--update-goldens`` they are rewritten first."""
    if update_goldens:
        generate.write_all()
    files, manifest = generate.build_all()
    stale = [n for n in generate.stale_files(files, manifest) if n != "manifest.json"]
    assert not stale, ("golden score files out of date (python tests/golden_scores/generate.py "
                       f"or pytest tests/cross --update-goldens): {stale}")


def test_golden_inputs_cover_special_values():
    import array
    import json
    import math

    manifest = json.loads((GOLDEN_SCORES / "manifest.json").read_text())["golden"]
    assert manifest, "no golden container has a scoring payload"
    for name in manifest:
        values = array.array("f", (GOLDEN_SCORES / f"{name}.input.f32").read_bytes())
        assert any(math.isnan(v) for v in values), name
        assert math.inf in values and -math.inf in values, name
        assert len(values) // manifest[name]["n_inputs"] > 64, "more than one row block"
        container = generate.load_core().Container(
            (ROOT / manifest[name]["container"]).read_bytes())
        frst = container.section("FRST")
        if frst is not None and "XFRM" not in {s[0] for s in container.sections()}:
            thresholds = {t for ts in generate.forest_thresholds(
                frst, container.section("CATS")).values() for t in ts}
            assert thresholds <= set(values), f"{name}: every split threshold appears exactly"


# ---- per target: builds, C tests, golden bits, wheel --------------------------------------

@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("target", ALL_TARGETS)
def test_c_core_builds_warning_free(target, compiler, cross_out):
    """-std=c99 -Wall -Wextra -Werror -pedantic with the target's baseline ISA."""
    result = build(target, cross_out)
    if compiler == "clang" and shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    ok, detail = result.result(f"build-{compiler}")
    assert ok, f"{target} {compiler}: {detail}\n" + result.log[-4000:]


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_make_check_programs_run(target, cross_out):
    """``make check``'s programs, run under qemu: the META reader and corpus tests where they
    are in the subset, and score_example on every golden of the recipe."""
    result = build(target, cross_out)
    examples = {k: v for k, v in result.results.items()
                if k.startswith("score_example.") and k.endswith("-gcc")}
    assert examples, result.log[-3000:]
    for check, (ok, detail) in examples.items():
        assert ok, f"{target} {check}: {detail}"
    for program in ("test_meta", "test_corpus"):
        if f"{program}-gcc" in result.results:
            ok, detail = result.result(f"{program}-gcc")
            assert ok, f"{target} {program}: {detail}\n" + result.log[-3000:]
    if "test_corpus-gcc" in result.results:
        assert "test_meta-gcc" in result.results, "make check's test_meta did not run"


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("name", golden_names())
@pytest.mark.parametrize("target", ALL_TARGETS)
def test_golden_scores_bit_identical(target, name, compiler, cross_out):
    """golden_scores.c on the target gives exactly the x86-64 bytes (float bits, no tolerance);
    it also checks, on the target, that row-by-row and two-thread scores equal the batch."""
    result = build(target, cross_out)
    if compiler == "clang" and shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    ok, detail = result.result(f"golden-{name}-{compiler}")
    got_path = result.out / "results" / compiler / f"{name}.f64"
    expected = (GOLDEN_SCORES / f"{name}.expected.f64").read_bytes()
    if not got_path.exists():
        pytest.fail(f"{target} {compiler} {name}: {detail}")
    got = got_path.read_bytes()
    if got == expected:
        assert ok
        return
    assert len(got) == len(expected), f"{target}: {len(got)} bytes, expected {len(expected)}"
    n = len(got) // 8
    a, b = struct.unpack(f"<{n}d", got), struct.unpack(f"<{n}d", expected)
    differing = [(i, x, y) for i, (x, y) in enumerate(zip(a, b))
                 if struct.pack("<d", x) != struct.pack("<d", y)]
    worst = max(_ulp_distance(x, y) for _, x, y in differing)
    report = "\n".join(f"  value {i}: {x!r} on {target}, {y!r} expected"
                       for i, x, y in differing[:10])
    pytest.fail(f"{target} {compiler} {name}: {len(differing)} of {n} values differ "
                f"(up to {worst} ulp)\n{report}")


@pytest.mark.parametrize("target", ["x86_64", *DEVICE_TARGETS])
def test_wheel_for_target(target, cross_out):
    """setup.py's wheel for the target, imported and used by the target's CPython (Debian 12's
    3.11, as on Raspberry Pi OS) under qemu: both backends give the golden bytes and the same
    errors on the negative corpus; pyastore.load verifies a signature and scores."""
    if not FULL and target not in DEVICE_TARGETS:
        pytest.skip("the x86-64 wheel is built in the full run (PYASTORE_CROSS=full)")
    result = build(target, cross_out)
    wheel_checks = {k: v for k, v in result.results.items() if k.startswith("wheel")}
    if "wheel" in wheel_checks and "pybind11" in wheel_checks["wheel"][1]:
        pytest.skip(f"{sys.executable} has no pybind11/setuptools to run setup.py "
                    "(pip install pybind11 setuptools)")
    assert wheel_checks, result.log[-3000:]
    failures = {k: d for k, (ok, d) in wheel_checks.items() if not ok}
    assert not failures, f"{target}: {failures}\n" + result.log[-3000:]
    assert "wheel-golden-tiny_forest-pybind" in wheel_checks
