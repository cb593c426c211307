"""Shared fixtures and the one regeneration flag, ``--update-goldens``: with it, every test that
compares with a generated artefact rewrites the artefact first -- the golden containers
(tests/golden/), the golden score files of the cross-architecture check (tests/golden_scores/),
the negative corpus (tests/corpus/negative/) and the pinned bits of the golden network.

The tests are laid out by tier, then by package:

* ``unit/`` -- each package's behaviour: ``pyastore``, ``chain``, ``trainer``, and the
  capabilities built on them (``federated``, ``vertical``, ``gate``, ``spark``, ``postgres``),
  ``bench`` (the quick benchmark run);
* ``golden/`` -- containers and scores pinned byte for byte (``golden_scores/`` holds the
  inputs and expected bits the cross tier replays);
* ``corpus/`` -- the generated negative corpus, walked in Python and in C under ASan/UBSan;
* ``differential/`` -- exports compared with the libraries that trained the models;
* ``cross/`` -- the same bits on aarch64, armv7 and s390x under qemu, and the cffi backend;
* ``spec/`` -- vectors from a second, naive implementation of docs/FORMAT.md;
* ``fuzz/`` -- coverage-guided fuzzing of every parser, and the crashes it found.

Helper modules are imported by bare name (this file puts their folders on ``sys.path``):
``golden_models``, ``reference_forest``, ``postgres.pg_testlib``; a test folder's own helper
(``chain_testlib``...) sits beside its tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / "tests" / "golden"
CORPUS_DIR = ROOT / "tests" / "corpus" / "negative"
sys.path.insert(0, str(GOLDEN_DIR))
sys.path.insert(0, str(ROOT / "tests" / "differential"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT / "tests"))


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite every generated test artefact (golden containers and scores, "
                          "the negative corpus, pinned bits) before comparing with it")


@pytest.fixture(scope="session")
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


@pytest.fixture(scope="session")
def golden_pub() -> Path:
    return GOLDEN_DIR / "golden_test_key.pub"


@pytest.fixture(scope="session")
def golden_path() -> Path:
    return GOLDEN_DIR / "tiny_forest.astore"


@pytest.fixture()
def isolated_trust(monkeypatch, tmp_path):
    """No trusted keys from the environment or the user's config directory."""
    monkeypatch.delenv("PYASTORE_TRUSTED_KEYS", raising=False)
    monkeypatch.setenv("PYASTORE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path
