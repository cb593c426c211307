"""The PostgreSQL backend's own failures: a connection lost in the middle of an append, an
unreachable server, a schema without a log; and every ``pyastore chain`` command and the
device's online check run against a ``postgresql://`` log. A real server (pg_testlib)."""

from __future__ import annotations

import hashlib

import pytest

from chain.log import Log
from chain.records import Record
from chain.storage_pg import display_url
from postgres.pg_testlib import fresh_log_url, pg_server  # noqa: F401 (a fixture)
from pyastore import keys
from pyastore.errors import LogError, UsageError

WHEN = "2025-01-01T00:00:00Z"


def store_key(number: int) -> str:
    return hashlib.sha256(f"model-{number}".encode()).hexdigest()


def seeded_key(label: str) -> keys.SigningKey:
    return keys.SigningKey(hashlib.sha256(label.encode()).digest())


@pytest.fixture
def submitter() -> keys.SigningKey:
    return seeded_key("submitter")


@pytest.fixture
def key_files(tmp_path) -> dict:
    files = {}
    for name, key in (("log", seeded_key("log key")), ("me", seeded_key("submitter"))):
        secret, public = tmp_path / f"{name}.key", tmp_path / f"{name}.pub"
        secret.write_text(keys.SECRET_PREFIX + key.seed.hex() + "\n")
        secret.chmod(0o600)
        public.write_text(keys.public_key_line(key.public_key) + "\n")
        files[f"{name}.key"], files[f"{name}.pub"] = secret, public
    return files


def _terminate_other_sessions(pg_server) -> int:
    rows = pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    return len(rows)


def test_lost_connection_mid_append_is_a_clear_error_and_no_half_record(
    pg_server, key_files, submitter
):
    url = fresh_log_url(pg_server)
    with Log.init(url, key_files["log.key"], origin="example.com/lost") as log:
        for number in range(5):
            log.append_model(store_key(number), f"model {number}", "", submitter)

        def build(context):
            assert _terminate_other_sessions(pg_server) >= 1  # this log's connection dies
            return Record(index=context.index, kind="model", subject=store_key(77),
                          name="lost", description="", time=WHEN, submitter="0" * 64,
                          prev_hash=context.prev_hash, reason="", signature="",
                          ).signed(submitter)

        with pytest.raises(LogError, match="connection to the log database was lost; "
                                           "nothing was appended") as caught:
            log.storage.append(build)
        assert caught.value.exit_code == 7
        assert "Traceback" not in str(caught.value)
        with pytest.raises(LogError, match="connection"):  # the dead connection stays an error
            log.append_model(store_key(78), "after", "", submitter)
    with Log.open(url) as reopened:
        assert reopened.size == 5 and reopened.storage.row_count() == 5
        assert reopened.verify().size == 5
        assert reopened.status(store_key(77)).published is None
        reopened.append_model(store_key(77), "retried", "", submitter)
        assert reopened.verify().size == 6


def test_unreachable_or_empty_database_is_a_clear_error(pg_server, key_files, tmp_path):
    with pytest.raises(LogError, match="cannot connect to the log database"):
        Log.open(f"postgresql:///postgres?host={tmp_path}&port=1&connect_timeout=2")
    with pytest.raises(LogError, match="not a pyastore log"):
        Log.open(fresh_log_url(pg_server))
    url = fresh_log_url(pg_server)
    Log.init(url, key_files["log.key"]).close()
    with pytest.raises(UsageError, match="already holds a log"):
        Log.init(url, key_files["log.key"])
    assert display_url("postgresql://ann:secret@db/ledger") == "postgresql://ann:***@db/ledger"


def test_cli_and_device_checks_on_a_postgresql_log(
    pg_server, key_files, golden_path, golden_pub, tmp_path, capsys
):
    """init, append, show, checkpoint, prove, verify; then pyastore verify / score with the
    online check against the same URL, and a revocation seen by the device."""
    from pyastore.cli import main

    url = fresh_log_url(pg_server)
    model = tmp_path / "fraud.astore"
    model.write_bytes(golden_path.read_bytes())
    proof = tmp_path / "fraud.astore.proof"
    assert main(["chain", "init", url, "--key", str(key_files["log.key"]),
                 "--origin", "example.com/pg"]) == 0
    assert main(["chain", "append", url, str(model), "--key", str(key_files["me.key"]),
                 "--trust", str(golden_pub)]) == 0
    assert main(["chain", "show", url]) == 0
    assert main(["chain", "checkpoint", url]) == 0
    assert main(["chain", "prove", url, str(model), "-o", str(proof)]) == 0
    assert main(["chain", "verify", url]) == 0
    anchor = ["--trust", str(golden_pub), "--log-key", str(key_files["log.pub"]), "--log", url]
    assert main(["verify", str(model), *anchor]) == 0
    assert "online check" in capsys.readouterr().out
    rows = tmp_path / "in.csv"
    rows.write_text("amount,velocity,age_days\n10,2,30\n")
    assert main(["score", str(model), str(rows), "-o", str(tmp_path / "out.csv"),
                 "--require-anchored", *anchor]) == 0
    assert main(["chain", "revoke", url, str(model), "--reason", "leaked",
                 "--key", str(key_files["me.key"])]) == 0
    capsys.readouterr()
    assert main(["verify", str(model), *anchor]) == 7
    assert "revoked" in capsys.readouterr().out
    assert main(["chain", "verify", url]) == 0
