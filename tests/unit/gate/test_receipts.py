"""Signed score receipts: written by score --receipt, checked by receipt verify; every kind
of change (an input row, an output row, the model, the row count, the receipt itself) fails
naming what differs; one row proven without the others."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess

import pytest

from gate_testlib import (
    GOLDEN_MODEL,
    GOLDEN_PUB,
    PYTHON,
    REPO_ROOT,
    child_env,
    key_files,  # noqa: F401 (a fixture)
    ledger,  # noqa: F401 (a fixture)
    transaction,
    verify_ledger,
    write_transactions,
)

TRUST = ["--trust", str(GOLDEN_PUB)]
OTHER_MODEL = REPO_ROOT / "tests" / "golden_scores" / "stress_binary_logistic.astore"


def pyastore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "pyastore", *args], capture_output=True, text=True,
                          env=child_env(), timeout=120, cwd=REPO_ROOT)


@pytest.fixture
def scored(tmp_path, ledger):
    source = write_transactions(tmp_path / "tx.ndjson", 300)
    scores = tmp_path / "scores.ndjson"
    result = pyastore("score", str(GOLDEN_MODEL), str(source), "-o", str(scores), "--receipt",
                      str(ledger), *TRUST)
    assert result.returncode == 0, result.stderr
    return source, scores, tmp_path / "scores.ndjson.receipt"


def _verify(receipt, source, *extra, model=GOLDEN_MODEL):
    return pyastore("receipt", "verify", str(receipt), "--model", str(model), "--input",
                    str(source), *extra, *TRUST, "--allow-untrusted")


def test_receipt_verifies_and_its_hashes_follow_the_documented_encoding(scored, key_files,
                                                                        ledger):
    source, scores, receipt = scored
    ok = _verify(receipt, source, "--log-key", str(key_files["log.pub"]), "--scores",
                 str(scores))
    assert ok.returncode == 0 and ok.stdout.startswith("OK  receipt at log index 0"), ok.stderr
    bundle = json.loads(receipt.read_text())
    record = base64.b64decode(bundle["record"]["leaf"])
    import msgpack

    fields = msgpack.unpackb(record)
    assert fields[2] == "receipt"
    value = json.loads(fields[5])
    assert fields[3] == "sha256:" + hashlib.sha256(fields[5].encode()).hexdigest()
    names = ("amount", "velocity", "age_days")
    inputs = b"".join(struct.pack("<3f", *(transaction(n)[k] for k in names))
                      for n in range(300))
    outputs = b"".join(struct.pack("<d", json.loads(line)["P_fraud"])
                       for line in scores.read_text().splitlines())
    assert value["input_sha256"] == hashlib.sha256(inputs).hexdigest()
    assert value["output_sha256"] == hashlib.sha256(outputs).hexdigest()
    assert value["rows"] == 300 and value["columns"]["inputs"] == list(names)
    assert value["cutoff"] == 0.5 and value["format"] == "pyastore-receipt-v1"
    from chain import merkle

    leaves = [merkle.leaf_hash(struct.pack("<Q", n) + inputs[12 * n:12 * n + 12]
                               + outputs[8 * n:8 * n + 8]) for n in range(300)]
    assert value["rows_root"] == merkle.MemoryTree(leaves).root().hex()
    assert verify_ledger(ledger).size == 1


def test_every_change_fails_naming_what_differs(scored, tmp_path, key_files):
    source, scores, receipt = scored
    lines = source.read_text().splitlines(keepends=True)
    changed = tmp_path / "changed.ndjson"
    event = json.loads(lines[41])
    event["amount"] = 123.0
    changed.write_text("".join(lines[:41] + [json.dumps(event) + "\n"] + lines[42:]))
    result = _verify(receipt, changed)
    assert result.returncode == 7 and "input (SHA-256 of the canonical rows) differs" in \
        result.stderr
    longer = tmp_path / "longer.ndjson"
    longer.write_text("".join(lines) + lines[0])
    result = _verify(receipt, longer)
    assert result.returncode == 7 and "row count differs: the receipt says 300, recomputed 301" \
        in result.stderr
    result = _verify(receipt, source, model=OTHER_MODEL)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    score_lines = scores.read_text().splitlines(keepends=True)
    row = json.loads(score_lines[9])
    row["P_fraud"] = 0.01
    bad_scores = tmp_path / "bad-scores.ndjson"
    bad_scores.write_text("".join(score_lines[:9] + [json.dumps(row) + "\n"] + score_lines[10:]))
    result = _verify(receipt, source, "--scores", str(bad_scores))
    assert result.returncode == 7 and "row 10: outputs [0.01] differ" in result.stderr
    bundle = json.loads(receipt.read_text())
    record = bytearray(base64.b64decode(bundle["record"]["leaf"]))
    position = record.find(b'"rows":300')
    record[position:position + 10] = b'"rows":301'
    bundle["record"]["leaf"] = base64.b64encode(bytes(record)).decode()
    forged = tmp_path / "forged.receipt"
    forged.write_text(json.dumps(bundle))
    result = _verify(forged, source)
    assert result.returncode == 7 and "signature" in result.stderr, result.stderr
    result = _verify(receipt, source, "--log-key", str(key_files["gate.pub"]))
    assert result.returncode == 7


def test_a_different_model_is_named(tmp_path, ledger):
    other_input = tmp_path / "six.ndjson"
    other_input.write_text("".join(json.dumps({f"x{i}": float(n + i) for i in range(6)}) + "\n"
                                   for n in range(20)))
    result = pyastore("score", str(OTHER_MODEL), str(other_input), "-o",
                      str(tmp_path / "s.ndjson"), "--receipt", str(ledger), "--allow-unsigned",
                      "--allow-untrusted")
    assert result.returncode == 0, result.stderr
    result = _verify(tmp_path / "s.ndjson.receipt", other_input, model=GOLDEN_MODEL)
    assert result.returncode == 7 and "receipt does not match: model differs" in result.stderr


def test_one_row_proven_alone(scored, tmp_path, key_files):
    source, _, receipt = scored
    proof = tmp_path / "row.proof"
    made = pyastore("receipt", "prove-row", str(receipt), "--model", str(GOLDEN_MODEL),
                    "--input", str(source), "--row", "8", "-o", str(proof), *TRUST)
    assert made.returncode == 0, made.stderr
    value = json.loads(proof.read_text())
    assert len(value["inclusion_proof"]) == 9  # log2(300) hashes, no other row's values
    ok = pyastore("receipt", "verify-row", str(proof), "--log-key", str(key_files["log.pub"]))
    assert ok.returncode == 0
    assert "row 8 of 300" in ok.stdout and "P_fraud=0.320821300824607" in ok.stdout
    value["output"] = base64.b64encode(struct.pack("<d", 0.01)).decode()
    proof.write_text(json.dumps(value))
    bad = pyastore("receipt", "verify-row", str(proof))
    assert bad.returncode == 7 and "Traceback" not in bad.stderr
    result = pyastore("receipt", "prove-row", str(receipt), "--model", str(GOLDEN_MODEL),
                      "--input", str(source), "--row", "301", "-o", str(proof), *TRUST)
    assert result.returncode == 2 and "not in the input" in result.stderr


def test_receipt_refusals(tmp_path, ledger):
    source = write_transactions(tmp_path / "tx.ndjson", 3)
    cases = [
        (["-", "--receipt", str(ledger)], "INPUT as a file"),
        ([str(source), "--receipt", str(ledger)], "needs --receipt-out"),
        ([str(source), "--receipt", str(ledger), "--on-error", "skip", "-o",
          str(tmp_path / "o.csv")], "--on-error must be fail"),
        ([str(source), "--receipt", str(tmp_path / "none.log"), "-o", str(tmp_path / "o.csv")],
         "no such log"),
        ([str(source), "--receipt", str(ledger), "--stream"], "without --stream"),
    ]
    for extra, message in cases:
        result = pyastore("score", str(GOLDEN_MODEL), *extra, *TRUST)
        assert result.returncode == 2 and message in result.stderr, (extra, result.stderr)
