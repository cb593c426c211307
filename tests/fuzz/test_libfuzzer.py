"""The libFuzzer harnesses of csrc/fuzz, for a short fixed time each, and their regressions.

Every harness (container, model, and one per section type: meta, frst, mlp, xfrm) is built
with clang under AddressSanitizer + UBSan (``make -C csrc fuzz``), seeded from the golden
files and the negative corpus (tests/fuzz/fuzz_seeds.py), given the dictionary of section tags,
magic and META keys, and run for ``ASTORE_FUZZ_SECONDS`` seconds (20 by default; the CI
budget for all six is two minutes). Any crash, leak, timeout, sanitizer report or broken
contract (csrc/fuzz/fuzz_common.h) fails the test, with the input libFuzzer saved.

Every input that once crashed a harness lives in tests/fuzz/regressions/<case>/ as
``<target>.input`` and is run again through that harness on every test run.

The long run (10 million executions per target) is scripts/fuzz_long.sh; its numbers are in
docs/FUZZING.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fuzz_seeds import ROOT, TARGETS, write_seeds

CSRC = ROOT / "csrc"
BUILD = CSRC / "build-fuzz"
DICTIONARY = CSRC / "fuzz" / "astore.dict"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
SECONDS = int(os.environ.get("ASTORE_FUZZ_SECONDS", "20"))
FAILURE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|"
                     r"contract broken|SUMMARY: ")


@pytest.fixture(scope="module")
def harnesses() -> Path:
    result = subprocess.run(["nice", "-n", "10", "make", "-s", "-C", str(CSRC), "fuzz"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        "the libFuzzer harnesses do not build (clang with its libFuzzer runtime, Debian's "
        "clang and libclang-rt-14-dev, is needed):\n" + result.stdout + result.stderr)
    return BUILD


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    counts = write_seeds(out)
    assert all(counts[target] > 0 for target in TARGETS), counts
    return out


def run_harness(binary: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nice", "-n", "10", str(binary), *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=SECONDS + 600)


@pytest.mark.parametrize("target", TARGETS)
def test_harness_finds_nothing(target, harnesses, seeds, tmp_path):
    work = tmp_path / "corpus"
    work.mkdir()
    result = run_harness(harnesses / f"fuzz_{target}", f"-dict={DICTIONARY}",
                         f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
                         "-detect_leaks=1", "-print_final_stats=1",
                         f"-artifact_prefix={tmp_path}/", str(work), str(seeds / target),
                         cwd=tmp_path)
    log = result.stdout + result.stderr
    artifacts = [p.name for p in tmp_path.iterdir() if p.is_file()]
    assert result.returncode == 0 and not FAILURE.search(log), \
        f"fuzz_{target} found a failure (inputs saved: {artifacts}):\n{log[-6000:]}"
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    assert executed and int(executed.group(1)) > 0, log[-2000:]
    print(f"fuzz_{target}: {executed.group(1)} executions in {SECONDS} s, no failure")


def test_every_saved_crash_input_runs_clean(harnesses, tmp_path):
    """Each crash the fuzzers ever found is kept as tests/fuzz/regressions/<case>/<target>.input
    and must now run clean under its harness. One test over the whole folder (not one per
    input), so that an empty folder is not a skipped test."""
    for folder in sorted(p for p in REGRESSIONS.iterdir() if p.is_dir()):
        assert list(folder.glob("*.input")) or list(folder.glob("test_*.py")), folder
    for path in sorted(REGRESSIONS.glob("*/*.input")):
        target = path.stem
        assert target in TARGETS, f"{path}: name it <target>.input, a target of {TARGETS}"
        result = run_harness(harnesses / f"fuzz_{target}", str(path), cwd=tmp_path)
        log = result.stdout + result.stderr
        assert result.returncode == 0 and not FAILURE.search(log), f"{path}:\n{log[-6000:]}"
    assert shutil.which("clang") is not None, "clang is needed for the harnesses"
