"""Helpers and fixtures shared by the chain tests.

A uniquely named module rather than a ``conftest.py``: the test folders have no
``__init__.py``, so every ``conftest`` would share one module name. Test modules import the
fixtures they use from here explicitly.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyastore import keys

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).resolve().with_name("chain_worker.py")


def store_key(number: int) -> str:
    """A deterministic fake store key (64 lowercase hex)."""
    return hashlib.sha256(f"model-{number}".encode()).hexdigest()


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
    return env


PYTHON = sys.executable


def start_worker(path: object, label: str, first: int, count: int,
                 wait: bool = False) -> subprocess.Popen[str]:
    """chain_worker.py appending ``count`` records (0: until killed) as ``label``; with
    ``wait`` it blocks after "ready" until it reads a line on stdin."""
    argv = [PYTHON, str(WORKER), str(path), label, str(first), str(count)]
    return subprocess.Popen(
        argv + (["wait"] if wait else []),
        stdin=subprocess.PIPE if wait else subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=child_env(), cwd=WORKER.parent,
    )


def wait_ready(process: subprocess.Popen[str]) -> None:
    """Wait for the worker's "ready" line; a worker that failed to start is an error."""
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        raise AssertionError(f"worker did not start: {line!r} {process.stderr.read()}")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def log_key() -> keys.SigningKey:
    return seeded_key("log key")


@pytest.fixture
def submitter() -> keys.SigningKey:
    return seeded_key("submitter")


@pytest.fixture
def key_files(tmp_path, log_key, submitter) -> dict[str, Path]:
    log_secret, log_public = write_key_files(tmp_path, "log", log_key)
    me_secret, me_public = write_key_files(tmp_path, "me", submitter)
    return {"log.key": log_secret, "log.pub": log_public, "me.key": me_secret, "me.pub": me_public}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """The storage backend of the logs ``new_log`` makes. A test module runs on both by
    importing this fixture and marking ``pytestmark = pytest.mark.usefixtures("backend")``;
    without it, ``new_log`` makes SQLite logs."""
    return request.param


@pytest.fixture
def new_log(tmp_path, key_files, request):
    """A factory of fresh logs ``(path, Log)`` with the log key remembered by path; with the
    ``backend`` fixture in use, ``path`` is a ``postgresql://`` URL for the PostgreSQL runs."""
    from chain.log import Log

    opened = []
    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames \
        else "sqlite"

    def make(name: str = "test.log", records: int = 0, submitter_key=None):
        if backend == "postgresql":
            from postgres.pg_testlib import fresh_log_url

            path = fresh_log_url(request.getfixturevalue("pg_server"))
        else:
            path = tmp_path / name
        log = Log.init(path, key_files["log.key"], origin="example.com/test")
        opened.append(log)
        signer = submitter_key or seeded_key("submitter")
        for number in range(records):
            log.append_model(store_key(number), f"model {number}", "", signer,
                             time="2025-01-01T00:00:00Z")
        return path, log

    yield make
    for log in opened:
        try:
            log.close()
        except Exception:
            pass
