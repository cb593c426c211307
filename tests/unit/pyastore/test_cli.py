"""The CLI end to end: describe, verify, keygen, help, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import CORPUS_DIR, GOLDEN_DIR


def run(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "PYASTORE_TRUSTED_KEYS"}
    env.setdefault("PYASTORE_CONFIG_DIR", "/nonexistent-pyastore-config")
    env.update(env_extra or {})
    result = subprocess.run([sys.executable, "-m", "pyastore", *args], capture_output=True,
                            text=True, env=env, cwd=cwd)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_help_lists_commands_examples_and_exit_codes():
    result = run("--help")
    assert result.returncode == 0
    for word in ("describe", "verify", "keygen", "exit codes", "example", "PYASTORE_TRUSTED_KEYS"):
        assert word in result.stdout


@pytest.mark.parametrize("command", ["describe", "verify", "keygen"])
def test_every_subcommand_help_has_an_example(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert re.search(r"examples?:", result.stdout) and f"pyastore {command}" in result.stdout


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("verify").returncode == 2


def test_describe_text(golden_path, golden_pub):
    result = run("describe", str(golden_path), "--trust", str(golden_pub))
    assert result.returncode == 0
    out = result.stdout
    key = json.loads((GOLDEN_DIR / "manifest.json").read_text())["tiny_forest"]["store_key"]
    assert f"sha256:{key}" in out
    assert "valid, signer trusted" in out
    for text in (
        "golden-tiny-forest",
        "amount",
        "velocity",
        "age_days",
        "P_fraud",
        "logistic",
        "training_data_sha256",
        "max_depth",
        "META",
        "FRST",
        "SIGN",
        "2026-01-01T00:00:00Z",
    ):
        assert text in out, text


def test_describe_untrusted_and_unsigned_are_shown_not_refused(golden_path):
    result = run("describe", str(golden_path))
    assert result.returncode == 0 and "NOT trusted" in result.stdout
    result = run("describe", str(GOLDEN_DIR / "tiny_forest_unsigned.astore"))
    assert result.returncode == 0 and "UNSIGNED" in result.stdout


def test_describe_json_is_stable(golden_path, golden_pub):
    first = run("describe", str(golden_path), "--json", "--trust", str(golden_pub)).stdout
    second = run("describe", str(golden_path), "--json", "--trust", str(golden_pub)).stdout
    assert first == second
    info = json.loads(first)
    assert set(info) == {"file", "store_key", "format_version", "size_bytes", "signature",
                         "sections", "meta", "scorer", "inputs"}
    assert info["inputs"][0] == {"name": "amount", "type": "float", "missing": "as_missing"}
    # how this machine's C core walks the trees (the one machine-dependent entry)
    assert info["scorer"]["tree_walk"].startswith("quickscorer-")
    assert info["scorer"]["derived_bytes"] > 0
    assert info["signature"]["status"] == "trusted"
    assert [s["type"] for s in info["sections"]] == ["META", "FRST", "SIGN"]
    assert [v["name"] for v in info["meta"]["inputs"]] == ["amount", "velocity", "age_days"]


def test_describe_refuses_a_damaged_file(tmp_path, golden_path):
    data = bytearray(golden_path.read_bytes())
    data[300] ^= 4
    damaged = tmp_path / "damaged.astore"
    damaged.write_bytes(bytes(data))
    result = run("describe", str(damaged))
    assert result.returncode == 4
    assert "store key mismatch" in result.stderr and "damaged.astore" in result.stderr


def test_verify_ok_and_failures(golden_path, golden_pub):
    ok = run("verify", str(golden_path), "--trust", str(golden_pub))
    assert ok.returncode == 0 and ok.stdout.startswith("OK ")
    untrusted = run("verify", str(golden_path))
    assert untrusted.returncode == 4 and untrusted.stdout.startswith("FAILED ")
    assert "not a trusted key" in untrusted.stdout
    unsigned = run(
        "verify", str(GOLDEN_DIR / "tiny_forest_unsigned.astore"), "--trust", str(golden_pub)
    )
    assert unsigned.returncode == 4 and "unsigned" in unsigned.stdout


def test_verify_allowances_warn_on_stderr(golden_path):
    result = run("verify", str(golden_path), "--allow-untrusted")
    assert result.returncode == 0
    assert "warning" in result.stderr and "NOT trusted" in result.stderr
    result = run("verify", str(GOLDEN_DIR / "tiny_forest_unsigned.astore"), "--allow-unsigned")
    assert result.returncode == 0 and "UNSIGNED" in result.stderr


def test_trust_from_environment_and_config_dir(tmp_path, golden_path, golden_pub):
    assert (
        run(
            "verify", str(golden_path), env_extra={"PYASTORE_TRUSTED_KEYS": str(golden_pub)}
        ).returncode
        == 0
    )
    hex_key = golden_pub.read_text().split(":")[1].strip()
    assert (
        run("verify", str(golden_path), env_extra={"PYASTORE_TRUSTED_KEYS": hex_key}).returncode
        == 0
    )
    trusted = tmp_path / "cfg" / "trusted"
    trusted.mkdir(parents=True)
    shutil.copy(golden_pub, trusted / "golden.pub")
    assert (
        run(
            "verify", str(golden_path), env_extra={"PYASTORE_CONFIG_DIR": str(tmp_path / "cfg")}
        ).returncode
        == 0
    )
    bad = run("verify", str(golden_path), env_extra={"PYASTORE_TRUSTED_KEYS": "not-a-key"})
    assert bad.returncode == 2 and "not-a-key" in bad.stdout


def test_bad_trust_file_is_a_usage_error(tmp_path, golden_path):
    secret = tmp_path / "x.key"
    secret.write_text("ed25519-secret:" + "00" * 32 + "\n")
    result = run("verify", str(golden_path), "--trust", str(secret))
    assert result.returncode == 2 and "expected a public key" in result.stdout


@pytest.mark.parametrize("target, code, words", [
    ("missing.astore", 2, "no such file"),
    (".", 2, "is a directory"),
])
def test_unreadable_targets(tmp_path, target, code, words):
    result = run("describe", target, cwd=tmp_path)
    assert result.returncode == code and words in result.stderr


def test_permission_denied(tmp_path, monkeypatch, capsys):
    """Simulated (tests may run as root, who reads any file): os.open() raising EACCES."""
    from pyastore.cli import main

    path = tmp_path / "secret.astore"
    path.write_bytes(b"x")
    real_open = os.open

    def deny(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    assert main(["describe", str(path)]) == 2
    assert "permission denied" in capsys.readouterr().err


def test_empty_file_and_corpus_samples(tmp_path):
    (tmp_path / "empty.astore").write_bytes(b"")
    result = run("describe", str(tmp_path / "empty.astore"))
    assert result.returncode == 3 and "file is empty" in result.stderr
    result = run("describe", str(CORPUS_DIR / "major_version_2.astore"))
    assert result.returncode == 3 and "format version 2.0 is not supported" in result.stderr


def test_keygen(tmp_path):
    result = run("keygen", str(tmp_path / "pub1"))
    assert result.returncode == 0 and "public key:" in result.stdout
    assert (tmp_path / "pub1.key").stat().st_mode & 0o777 == 0o600
    again = run("keygen", str(tmp_path / "pub1"))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    nodir = run("keygen", str(tmp_path / "no" / "such" / "dir" / "k"))
    assert nodir.returncode == 2 and "no such directory" in nodir.stderr
