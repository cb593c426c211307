"""Shared fixtures and the one regeneration flag, ``--update-goldens``: with it, every test that
compares with a generated artefact rewrites the artefact first -- the golden containers
(tests/golden/), the golden score files of the cross-architecture check (tests/golden_scores/),
the negative corpus (tests/corpus/negative/) and the pinned bits of the golden network."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT / "tests" / "golden"
CORPUS_DIR = ROOT / "tests" / "corpus" / "negative"
sys.path.insert(0, str(GOLDEN_DIR))
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
