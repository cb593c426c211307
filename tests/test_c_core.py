"""The C core's own test program (csrc/tests/test_corpus.c) under AddressSanitizer + UBSan,
and the pure-C example built against the public header only."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT


@pytest.mark.parametrize("variant", [[], ["CFLAGS=-DASTORE_NO_SIMD", "BUILD=build-nosimd"]],
                         ids=["default", "scalar-only"])
def test_c_corpus_under_sanitizers(variant):
    """The scalar-only build makes AddressSanitizer see every tree walk (it does not check
    the SIMD path's gathers, whose indices are the ones validated at load)."""
    result = subprocess.run(["make", "-s", "-C", str(ROOT / "csrc"), "check", "SANITIZE=1", *variant],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed, 0 failed" in result.stdout
    assert "ERROR: AddressSanitizer" not in result.stderr
    assert "runtime error" not in result.stderr


def test_c_example_scores_like_python(golden_path, golden_pub):
    import pyastore

    subprocess.run(["make", "-s", "-C", str(ROOT / "csrc"), "build/score_example"], check=True,
                   capture_output=True)
    rows = "0,0,0\n1,2,-1\n,3,0.25\n"
    result = subprocess.run([str(ROOT / "csrc" / "build" / "score_example"), str(golden_path)],
                            input=rows, capture_output=True, text=True, check=True)
    model = pyastore.load(golden_path, trusted_keys=[golden_pub])
    expected = [model.score_one(r)[0] for r in ([0, 0, 0], [1, 2, -1], [None, 3, 0.25])]
    assert [float(v) for v in result.stdout.split()] == expected
