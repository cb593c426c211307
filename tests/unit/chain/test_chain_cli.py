"""``pyastore chain ...`` end to end, and bad input: typed errors, exit codes, no traceback.

``append`` needs ``pyastore.load``; these tests replace it with a fake that reads the file,
derives a store key from its bytes and refuses untrusted signers the way the real loader
is specified to, so they exercise exactly the interface the CLI relies on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import subprocess
from types import SimpleNamespace

import pytest

import pyastore
from chain.log import Log
from chain.proof import verify_bundle
from chain_testlib import (
    PYTHON,
    child_env,
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    store_key,
    submitter,  # noqa: F401 (a fixture)
)
from pyastore import cli as pyastore_cli
from pyastore import cli_chain
from pyastore.errors import (
    EXIT_LOG,
    EXIT_TRUST,
    EXIT_USAGE,
    KeyFileError,
    LogError,
    PyastoreError,
    UntrustedSignerError,
    UsageError,
)


@pytest.fixture
def fake_load(monkeypatch):
    calls = []

    def load(path, trusted_keys=(), allow_untrusted=False):
        data = open(path, "rb").read()
        calls.append((str(path), list(trusted_keys), allow_untrusted))
        if data.startswith(b"untrusted") and not allow_untrusted:
            raise UntrustedSignerError(f"{path}: signer is not trusted")
        return SimpleNamespace(store_key=hashlib.sha256(data).hexdigest(), name="fraud model")

    monkeypatch.setattr(pyastore, "load", load, raising=False)
    return calls


def cli(*argv) -> int:
    """Run like the main CLI: typed errors become the message and the exit code."""
    return pyastore_cli.main([str(a) for a in argv])


def test_parser_registers_every_command_with_examples(capsys):
    parser = argparse.ArgumentParser(prog="pyastore")
    cli_chain.add_parser(parser.add_subparsers(dest="command"))
    for command in ("init", "append", "revoke", "show", "checkpoint", "prove", "verify"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["chain", command, "--help"])
        assert exited.value.code == 0
        assert "example:" in capsys.readouterr().out
    args = parser.parse_args(["chain", "verify", "x.log"])
    assert args.command == "chain" and args.chain_command == "verify"


def test_session(tmp_path, key_files, fake_load, capsys, log_key, submitter):
    log = tmp_path / "models.log"
    model = tmp_path / "fraud.astore"
    model.write_bytes(b"pretend container bytes")
    key = hashlib.sha256(model.read_bytes()).hexdigest()

    origin = "example.com/m"
    assert cli("chain", "init", log, "--key", key_files["log.key"], "--origin", origin) == 0
    assert "verifier key:   example.com/m+" in capsys.readouterr().out

    assert cli("chain", "append", log, model, "--key", key_files["me.key"]) == 0
    assert f"appended record 0: model {key} (fraud model)" in capsys.readouterr().out
    assert fake_load[-1][1] == [submitter.public_key] and fake_load[-1][2] is False

    assert cli("chain", "append", log, model, "--key", key_files["me.key"]) == EXIT_LOG
    assert "already published in this log at index 0" in capsys.readouterr().err

    other = tmp_path / "other.astore"
    other.write_bytes(b"untrusted container")
    assert cli("chain", "append", log, other, "--key", key_files["me.key"]) == EXIT_TRUST
    assert "signer is not trusted" in capsys.readouterr().err
    assert cli("chain", "append", log, other, "--key", key_files["me.key"], "--allow-untrusted",
               "--name", "second", "--trust", key_files["log.pub"]) == 0
    assert fake_load[-1][1] == [submitter.public_key, log_key.public_key]
    capsys.readouterr()

    assert cli("chain", "checkpoint", log, "-o", tmp_path / "cp.txt") == 0
    out = capsys.readouterr().out
    assert out.startswith("example.com/m\n2\n") and (tmp_path / "cp.txt").read_text() == out

    proof = tmp_path / "fraud.proof"
    assert cli("chain", "prove", log, key, "-o", proof) == 0
    assert "wrote" in capsys.readouterr().out
    verdict = verify_bundle(proof.read_bytes(), key, log_key.public_key)
    assert verdict.record.name == "fraud model"

    assert cli("chain", "prove", log, model, "-o", tmp_path / "by-file.proof") == 0  # KEY as a file
    capsys.readouterr()

    me = key_files["me.key"]
    assert cli("chain", "revoke", log, key, "--reason", "retired", "--key", me) == 0
    assert "appended record 2: revoke" in capsys.readouterr().out

    assert cli("chain", "show", log) == 0
    table = capsys.readouterr().out
    assert "3 record(s)" in table and "revoke" in table and "retired" in table

    assert cli("chain", "show", log, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["size"] == 3 and shown["origin"] == "example.com/m"
    assert [r["kind"] for r in shown["records"]] == ["model", "model", "revoke"]
    assert shown["records"][1]["prev_hash"] == shown["records"][0]["record_hash"]

    assert cli("chain", "verify", log) == 0
    assert "verifies: 3 record(s) (2 model, 1 revoke)" in capsys.readouterr().out

    assert cli("chain", "prove", log, key, "-o", "-") == 0
    bundle = capsys.readouterr().out.encode()
    with pytest.raises(LogError, match="revoked"):
        verify_bundle(bundle, key, log_key.public_key)


def test_verify_names_the_bad_index(tmp_path, new_log, capsys):
    path, log = new_log(records=6)
    log.close()
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM records WHERE idx = 3")
    db.close()
    assert cli("chain", "verify", path) == EXIT_LOG
    assert "record 3 is missing" in capsys.readouterr().err


def test_bad_inputs_are_typed_errors(tmp_path, key_files, new_log):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(LogError, match="not an SQLite database"):
        Log.open(text)
    empty_db = tmp_path / "empty.sqlite"
    sqlite3.connect(empty_db).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(LogError, match="without the log's tables"):
        Log.open(empty_db)
    with pytest.raises(UsageError, match="no such log file"):
        Log.open(tmp_path / "missing.log")
    with pytest.raises(UsageError, match="directory"):
        Log.open(tmp_path)

    path, log = new_log(records=1)
    log.close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    db.close()
    with pytest.raises(LogError, match="version '2' is not supported"):
        Log.open(path)

    with pytest.raises(KeyFileError, match="public key, expected a secret key"):
        Log.init(tmp_path / "a.log", key_files["log.pub"])
    assert not (tmp_path / "a.log").exists()
    with pytest.raises(UsageError, match="already exists"):
        Log.init(path, key_files["log.key"])
    with pytest.raises(UsageError, match="origin"):
        Log.init(tmp_path / "b.log", key_files["log.key"], origin="has space")
    assert not (tmp_path / "b.log").exists()


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["verify", "{notes}"], EXIT_LOG, "not a pyastore log"),
        (["show", "{missing}"], EXIT_USAGE, "no such log file"),
        (["init", "{new}", "--key", "{pub}"], EXIT_USAGE, "expected a secret key"),
        (["revoke", "{log}", "00" * 32, "--reason", "x", "--key", "{pub}"], EXIT_USAGE,
         "expected a secret key"),
        (["prove", "{log}", "nothex", "-o", "{new}"], EXIT_USAGE, "not a store key"),
        (["prove", "{log}", "ab" * 32, "-o", "{new}"], EXIT_LOG, "not published"),
    ],
)
def test_cli_errors_in_a_subprocess(tmp_path, key_files, new_log, argv, code, message):
    path, log = new_log(records=1)
    log.close()
    (tmp_path / "notes.txt").write_text("not a log\n")
    names = {
        "{notes}": tmp_path / "notes.txt", "{missing}": tmp_path / "missing.log",
        "{new}": tmp_path / "new.out", "{pub}": key_files["log.pub"], "{log}": path,
    }
    argv = [str(names.get(a, a)) for a in argv]
    result = subprocess.run(
        [PYTHON, "-m", "pyastore", "chain", *argv],
        capture_output=True, text=True, env=child_env(), timeout=60,
    )
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("pyastore: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "new.out").exists()


def test_run_raises_typed_errors_for_the_main_cli(tmp_path):
    args = SimpleNamespace(chain_command="verify", log=str(tmp_path / "none.log"))
    with pytest.raises(PyastoreError) as caught:
        cli_chain.run(args)
    assert caught.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError):
        cli_chain.run(SimpleNamespace(chain_command=None))


def test_revoke_accepts_uppercase_store_key(tmp_path, new_log, key_files, capsys):
    path, log = new_log(records=2)
    log.close()
    assert cli("chain", "revoke", path, store_key(1).upper(), "--reason", "old",
               "--key", key_files["me.key"]) == 0
    assert "revoke " + store_key(1) in capsys.readouterr().out


def test_malformed_database_is_a_log_error(tmp_path, new_log, capsys):
    path, log = new_log(records=40)
    log.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data), page):  # keep page 1 (header, schema root)
        data[offset:offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    code = cli("chain", "verify", path)
    assert code == EXIT_LOG
    assert "pyastore: error:" in capsys.readouterr().err


def test_show_escapes_control_characters(tmp_path, new_log, submitter, capsys):
    path, log = new_log()
    log.append_model(store_key(1), "evil\x1b[2Jname\x9b", "", submitter)
    log.close()
    assert cli("chain", "show", path) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out and "evil\\x1b[2Jname\\x9b" in out
    assert cli("chain", "show", path, "--json") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out
    assert json.loads(out)["records"][0]["name"] == "evil\x1b[2Jname\x9b"


def test_a_log_on_a_read_only_file_system_can_be_verified(tmp_path, key_files, new_log):
    """The edge device's case: the log file on a read-only mount (a bind mount remounted
    read-only inside a private mount namespace, so nothing leaks out of the test)."""
    path, log = new_log(records=3)
    log.close()
    source, mounted = path.parent, tmp_path / "readonly"
    mounted.mkdir()
    script = (f'mount --bind "{source}" "{mounted}" && mount -o remount,ro,bind "{mounted}" && '
              f'"{PYTHON}" -m pyastore chain verify "{mounted / path.name}" && '
              f'"{PYTHON}" -m pyastore chain show "{mounted / path.name}" >/dev/null && '
              f'! touch "{mounted}/written"')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, env=child_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "verifies: 3 record(s)" in result.stdout


def test_flipped_bytes_in_the_log_file_give_an_error_never_a_crash(tmp_path, new_log, capsys):
    """SQLite may hand back undecodable text from a damaged file: that is a LogError too."""
    path, log = new_log(records=3)
    log.close()
    original = path.read_bytes()
    damaged = tmp_path / "damaged.log"
    for offset in range(0, len(original), 131):
        data = bytearray(original)
        data[offset] ^= 0xFF
        damaged.write_bytes(bytes(data))
        for command in ("verify", "show"):
            assert pyastore_cli.main(["chain", command, str(damaged)]) in (0, EXIT_LOG)
    capsys.readouterr()
