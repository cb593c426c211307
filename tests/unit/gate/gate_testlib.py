"""Helpers and fixtures shared by the gate tests (imported by name, not a ``conftest.py``).

``ledger`` makes a fresh log whose key is remembered by path (the gate signs with it by
default); ``gate_argv`` is the command line of a real ``pyastore gate`` process on the golden
tiny forest (inputs ``amount``, ``velocity``, ``age_days``); ``transactions`` writes NDJSON
transactions with ids ``tx-0``, ``tx-1``...
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyastore import keys

REPO_ROOT = Path(__file__).resolve().parents[3]
GOLDEN_MODEL = REPO_ROOT / "tests" / "golden" / "tiny_forest.astore"
GOLDEN_PUB = REPO_ROOT / "tests" / "golden" / "golden_test_key.pub"
PYTHON = sys.executable


def seeded_key(label: str) -> keys.SigningKey:
    return keys.SigningKey(hashlib.sha256(label.encode()).digest())


def write_key_files(directory: Path, name: str, key: keys.SigningKey) -> tuple[Path, Path]:
    secret = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    secret.write_text(keys.SECRET_PREFIX + key.seed.hex() + "\n")
    secret.chmod(0o600)
    public.write_text(keys.public_key_line(key.public_key) + "\n")
    return secret, public


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYASTORE_TRUSTED_KEYS", None)
    env["PYASTORE_CONFIG_DIR"] = str(Path(env.get("TMPDIR", "/tmp")) / "pyastore-gate-tests")
    return env


# Inputs of the tiny forest and their scores: one in four transactions scores 0.924 (rejected
# at the container's cutoff 0.5), and (-100, -100, -100) scores exactly 0.5.
PATTERNS = (((1.0, 5.0, -100.0), 0.9241418199787566), ((1.0, -100.0, 1.0), 0.43782349911420193),
            ((0.0, -100.0, -100.0), 0.02931223075135632),
            ((-100.0, 5.0, -100.0), 0.320821300824607))
AT_CUTOFF = (-100.0, -100.0, -100.0)


def transaction(number: int) -> dict[str, object]:
    """A well-formed transaction ``tx-<number>``; see PATTERNS for its score."""
    amount, velocity, age_days = PATTERNS[number % 4][0]
    return {"id": f"tx-{number}", "amount": amount, "velocity": velocity,
            "age_days": age_days, "note": "extra fields are kept in the bytes"}


def expected_score(number: int) -> float:
    return PATTERNS[number % 4][1]


def transaction_line(number: int) -> str:
    return json.dumps(transaction(number)) + "\n"


def write_transactions(path: Path, count: int, first: int = 0) -> Path:
    with open(path, "w") as handle:
        for number in range(first, first + count):
            handle.write(transaction_line(number))
    return path


def gate_argv(ledger: Path, *extra: str, model: Path = GOLDEN_MODEL,
              source: Path | None = None) -> list[str]:
    """The command line; ``source`` (the INPUT file) goes right after MODEL (the parser also
    takes it after the options)."""
    where = [] if source is None else [str(source)]
    return [PYTHON, "-m", "pyastore", "gate", str(model), *where, "--ledger", str(ledger),
            "--trust", str(GOLDEN_PUB), *extra]


def run_gate(ledger: Path, *extra: str, input_text: str = "", timeout: float = 60,
             model: Path = GOLDEN_MODEL, source: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gate_argv(ledger, *extra, model=model, source=source),
                          input=input_text, capture_output=True, text=True, env=child_env(),
                          timeout=timeout, cwd=REPO_ROOT)


def answers(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def ledger_transactions(ledger: Path) -> list[dict[str, object]]:
    """Every ``tx`` record of the ledger as ``{index, id, subject, reason, **description}``."""
    from chain.log import Log

    out = []
    with Log.open(ledger, readonly=True) as log:
        for record in log.records():
            if record.kind == "tx":
                fields = json.loads(record.description)
                out.append({"index": record.index, "id": record.name,
                            "subject": record.subject, "reason": record.reason, **fields})
    return out


def verify_ledger(ledger: Path) -> object:
    from chain.log import Log

    with Log.open(ledger, readonly=True) as log:
        return log.verify()


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def key_files(tmp_path) -> dict[str, Path]:
    log_secret, log_public = write_key_files(tmp_path, "log", seeded_key("gate log key"))
    gate_secret, gate_public = write_key_files(tmp_path, "gate", seeded_key("gate operator"))
    return {"log.key": log_secret, "log.pub": log_public, "gate.key": gate_secret,
            "gate.pub": gate_public}


@pytest.fixture
def ledger(tmp_path, key_files) -> Path:
    """A fresh, empty ledger at ``tmp_path / 'ledger.log'`` (log key remembered)."""
    from chain.log import Log

    path = tmp_path / "ledger.log"
    Log.init(path, key_files["log.key"], origin="example.com/gate").close()
    return path


@pytest.fixture
def golden_model():
    import warnings

    import pyastore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyastore.load(GOLDEN_MODEL, trusted_keys=[GOLDEN_PUB])
