"""``pyastore gate`` end to end: decisions, records, answers, duplicates, malformed lines."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

from gate_testlib import (
    AT_CUTOFF,
    GOLDEN_MODEL,
    REPO_ROOT,
    answers,
    child_env,
    expected_score,
    gate_argv,
    key_files,  # noqa: F401 (a fixture)
    ledger,  # noqa: F401 (a fixture)
    ledger_transactions,
    run_gate,
    transaction_line,
    verify_ledger,
    write_transactions,
)


def _check_answers_are_the_ledger(replies, ledger) -> None:
    """Every non-duplicate answer is the ledger's tx record at its index, and back."""
    records = {r["index"]: r for r in ledger_transactions(ledger)}
    fresh = [a for a in replies if not a.get("duplicate")]
    assert len(fresh) == len(records)
    for reply in fresh:
        record = records[reply["index"]]
        assert record["id"] == (reply["id"] or "")
        assert record["decision"] == reply["decision"]
        assert record["score"] == reply["score"]


def test_every_decision_recorded_then_answered(ledger, tmp_path):
    source = write_transactions(tmp_path / "tx.ndjson", 200)
    result = run_gate(ledger, "--max-batch", "64", source=source)
    assert result.returncode == 0, result.stderr
    replies = answers(result.stdout)
    assert [r["id"] for r in replies] == [f"tx-{n}" for n in range(200)]
    for number, reply in enumerate(replies):
        assert reply["score"] == expected_score(number)
        assert reply["decision"] == ("rejected" if number % 4 == 0 else "admitted")
        assert reply["line"] == number + 1
        if reply["decision"] == "rejected":
            assert reply["reason"] == f"score {expected_score(number)!r} > cutoff 0.5"
    _check_answers_are_the_ledger(replies, ledger)
    records = ledger_transactions(ledger)
    lines = source.read_bytes().splitlines()
    for record in records:
        number = int(record["id"].split("-")[1])
        assert record["subject"] == "sha256:" + hashlib.sha256(lines[number]).hexdigest()
        assert record["cutoff"] == 0.5 and record["model"] == _store_key()
    report = verify_ledger(ledger)
    assert report.transactions == 200 and report.size == 200
    assert "read 200: admitted 150, rejected 50 (0 malformed, 0 duplicate) in 4 batch(es)" \
        in result.stderr


def _store_key() -> str:
    manifest = json.loads((REPO_ROOT / "tests" / "golden" / "manifest.json").read_text())
    return manifest["tiny_forest"]["store_key"]


def test_cutoff_boundary_and_override(ledger):
    at_cutoff = json.dumps({"id": "edge", "amount": AT_CUTOFF[0], "velocity": AT_CUTOFF[1],
                            "age_days": AT_CUTOFF[2]}) + "\n"
    result = run_gate(ledger, input_text=at_cutoff)
    assert answers(result.stdout)[0]["decision"] == "admitted"  # p <= cutoff is admitted
    assert answers(result.stdout)[0]["score"] == 0.5
    result = run_gate(ledger, "--cutoff", "0.3", input_text=transaction_line(1))
    reply = answers(result.stdout)[0]
    assert reply["decision"] == "rejected" and reply["reason"].endswith("> cutoff 0.3")
    assert ledger_transactions(ledger)[-1]["cutoff"] == 0.3
    result = run_gate(ledger, "--cutoff", "nan", input_text=transaction_line(2))
    assert result.returncode == 2 and "finite" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicates_refused_within_a_batch_and_across_runs(ledger, tmp_path):
    text = transaction_line(1) + transaction_line(2) + transaction_line(1)
    first = answers(run_gate(ledger, input_text=text).stdout)
    assert [r.get("duplicate", False) for r in first] == [False, False, True]
    assert first[2]["index"] == first[0]["index"] and first[2]["decision"] == "rejected"
    assert "already decided at ledger index 0" in first[2]["reason"]
    second = run_gate(ledger, input_text=transaction_line(2) + transaction_line(3))
    replies = answers(second.stdout)
    assert replies[0]["duplicate"] and replies[0]["index"] == first[1]["index"]
    assert not replies[1].get("duplicate") and replies[1]["index"] == 2
    assert "read 2: admitted 1, rejected 1 (0 malformed, 1 duplicate)" in second.stderr
    assert verify_ledger(ledger).transactions == 3


def test_malformed_lines_rejected_with_a_reason_and_the_stream_goes_on(ledger, tmp_path):
    lines = [
        transaction_line(1).rstrip("\n"),
        "this is not json",
        "[1, 2, 3]",
        json.dumps({"amount": 1, "velocity": 1, "age_days": 1}),
        json.dumps({"id": True, "amount": 1, "velocity": 1, "age_days": 1}),
        json.dumps({"id": "m5", "velocity": 1, "age_days": 1}),
        json.dumps({"id": "m6", "amount": "lots", "velocity": 1, "age_days": 1}),
        json.dumps({"id": "x" * 300, "amount": 1, "velocity": 1, "age_days": 1}),
        '{"id": "m8", "amount": 1, "velocity": 1, "age_days": 1',
        "",  # blank lines are not transactions
        transaction_line(2).rstrip("\n"),
        json.dumps({"id": 7, "amount": None, "velocity": "NA", "age_days": ""}),
    ]
    source = tmp_path / "mixed.ndjson"
    source.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")
    rejected = tmp_path / "rejected.ndjson"
    result = run_gate(ledger, "--rejected", str(rejected), source=source)
    assert result.returncode == 0, result.stderr
    replies = answers(result.stdout)
    reasons = [r.get("reason", "") for r in replies]
    assert [r["decision"] for r in replies] == (
        ["admitted"] + ["rejected"] * 8 + ["admitted", "admitted", "rejected"])
    expected = ["", "malformed: not JSON", "malformed: not a JSON object",
                "malformed: no id field 'id'", "malformed: the id field 'id' must be a string",
                "malformed: missing field(s): amount",
                "malformed: field 'amount': 'lots' is not a number",
                "malformed: the id is longer than 256", "malformed: not JSON", "", "",
                "malformed: not UTF-8"]
    for reason, start in zip(reasons, expected):
        assert reason.startswith(start), (reason, start)
    assert replies[10]["id"] == "7"  # an integer id; missing values scored as missing
    assert [r["line"] for r in replies] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]
    records = ledger_transactions(ledger)
    assert len(records) == 12
    assert sum(r["reason"].startswith("malformed:") for r in records) == 9
    assert all(r["score"] is None for r in records if r["reason"].startswith("malformed:"))
    kept = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [k["line"] for k in kept] == [2, 3, 4, 5, 6, 7, 8, 9, 13]
    assert kept[0]["transaction"] == "this is not json"
    assert "(9 malformed, 0 duplicate)" in result.stderr
    # Run again: the same lines are duplicates, by id or (no id) by their bytes.
    again = answers(run_gate(ledger, source=source).stdout)
    assert all(r.get("duplicate") for r in again)
    assert verify_ledger(ledger).transactions == 12


def test_csv_input(ledger, tmp_path):
    source = tmp_path / "tx.csv"
    source.write_text("amount,id,velocity,age_days\r\n1,c1,5,-100\r\n1,c2,-100,1\r\n"
                      "1,c3,-100\r\nabc,c4,1,1\r\n")
    result = run_gate(ledger, source=source)
    assert result.returncode == 0, result.stderr
    replies = answers(result.stdout)
    assert [(r["id"], r["decision"]) for r in replies] == [
        ("c1", "rejected"), ("c2", "admitted"), (None, "rejected"), ("c4", "rejected")]
    assert replies[2]["reason"] == "malformed: 3 fields, the header has 4"
    record = ledger_transactions(ledger)[1]
    canonical = b"amount,id,velocity,age_days\n1,c2,-100,1"
    assert record["subject"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,velocity\n1,2\n")
    result = run_gate(ledger, source=bad)
    assert result.returncode == 5 and "lacks column(s) id, age_days" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_quiet_stream_is_answered_within_the_delay(ledger):
    process = subprocess.Popen(gate_argv(ledger, "--max-batch", "512", "--max-delay-ms", "5"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        for number in range(3):
            process.stdin.write(transaction_line(number))
            process.stdin.flush()
            reply = json.loads(process.stdout.readline())  # blocks until answered
            assert reply["id"] == f"tx-{number}"
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0
    assert "in 3 batch(es)" in process.stderr.read()


def test_bad_invocations_are_clear_errors(ledger, tmp_path, key_files):
    cases = [
        (["--max-batch", "0"], 2, "--max-batch must be at least 1"),
        (["--require-anchored"], 2, "--require-anchored needs --log-key"),
        (["--require-anchored", "--log-key", str(key_files["log.pub"])], 7, "no proof bundle"),

    ]
    for extra, code, message in cases:
        result = run_gate(ledger, *extra)
        assert result.returncode == code and message in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr
    result = run_gate(ledger, source=tmp_path / "absent.ndjson")
    assert result.returncode == 2 and "cannot read" in result.stderr
    not_a_log = tmp_path / "not.log"
    not_a_log.write_text("hello")
    for path, code, message in [(not_a_log, 7, "not a pyastore log"),
                                (tmp_path, 2, "is a directory"),
                                (tmp_path / "none.log", 2, "no such log file")]:
        result = run_gate(path, input_text=transaction_line(1))
        assert result.returncode == code and message in result.stderr, result.stderr
    closed_stdin = subprocess.run(gate_argv(ledger), capture_output=True, text=True,
                                  env=child_env(), preexec_fn=lambda: os.close(0))
    assert closed_stdin.returncode == 2 and "standard input is closed" in closed_stdin.stderr
    multiclass = REPO_ROOT / "tests" / "golden" / "tiny_mlp.astore"
    result = run_gate(ledger, input_text="", model=multiclass)
    assert result.returncode == 2 and "needs a binary model" in result.stderr
    assert GOLDEN_MODEL.exists()


def test_prove_and_verify_one_decision(ledger, tmp_path, key_files):
    run_gate(ledger, input_text="".join(transaction_line(n) for n in range(9)))
    proof = tmp_path / "tx-4.proof"
    cli = [*gate_argv(ledger)[:3]]

    def pyastore(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, env=child_env())

    assert pyastore("tx", "prove", str(ledger), "tx-4", "-o", str(proof)).returncode == 0
    line = tmp_path / "tx-4.line"
    line.write_text(transaction_line(4))
    ok = pyastore("tx", "verify", str(proof), "--log-key", str(key_files["log.pub"]), "--id",
                  "tx-4", "--model", str(GOLDEN_MODEL), "--transaction", str(line))
    assert ok.returncode == 0 and "'tx-4' was rejected at ledger index 4" in ok.stdout
    failures = [
        (["--id", "tx-5"], "not 'tx-5'"),
        (["--store-key", "0" * 64], "not " + "0" * 64),
        (["--admitted"], "not admitted"),
    ]
    for extra, message in failures:
        result = pyastore("tx", "verify", str(proof), "--log-key", str(key_files["log.pub"]),
                          *extra)
        assert result.returncode == 7 and message in result.stderr, result.stderr
    line.write_text(transaction_line(5))
    result = pyastore("tx", "verify", str(proof), "--log-key", str(key_files["log.pub"]),
                      "--transaction", str(line))
    assert result.returncode == 7 and "hash to" in result.stderr
    result = pyastore("tx", "verify", str(proof), "--log-key", str(key_files["gate.pub"]))
    assert result.returncode == 7
    bundle = json.loads(proof.read_text())
    bundle["record"]["index"] = 3
    proof.write_text(json.dumps(bundle))
    result = pyastore("tx", "verify", str(proof), "--log-key", str(key_files["log.pub"]))
    assert result.returncode == 7 and "claims index 3" in result.stderr
    missing = pyastore("tx", "prove", str(ledger), "tx-99", "-o", str(proof))
    assert missing.returncode == 7 and "not in the ledger" in missing.stderr
    # The whole ledger still verifies with the chain command.
    chain = pyastore("chain", "verify", str(ledger))
    assert chain.returncode == 0 and "verifies: 9 record(s)" in chain.stdout


def test_the_signer_process_and_inline_signing_give_the_same_answers_and_records(tmp_path,
                                                                                key_files):
    from chain.log import Log

    lines = [transaction_line(n) for n in range(1500)]
    lines[700:700] = [transaction_line(3), "not json\n", json.dumps({"amount": 1}) + "\n",
                      transaction_line(699)]  # duplicates of earlier batches, malformed lines
    lines += [transaction_line(1499), "not json\n"]  # a duplicate of the batch in flight
    source = tmp_path / "tx.ndjson"
    source.write_text("".join(lines))
    results = {}
    for signer in ("process", "inline"):
        ledger = tmp_path / f"{signer}.log"
        Log.init(ledger, key_files["log.key"], origin="example.com/gate").close()
        result = run_gate(ledger, "--max-batch", "32", "--signer", signer, source=source)
        assert result.returncode == 0, result.stderr
        results[signer] = (result.stdout, ledger)
    assert results["process"][0] == results["inline"][0]
    replies = answers(results["process"][0])
    assert len(replies) == len(lines)
    # tx-3, tx-699, tx-1499 and the second "not json" (the same bytes, no id)
    assert sum(bool(r.get("duplicate")) for r in replies) == 4
    records = {}
    for signer, (_, ledger) in results.items():
        with Log.open(ledger, readonly=True) as log:
            records[signer] = [(r.index, r.kind, r.subject, r.name, r.description, r.reason,
                                r.submitter) for r in log.records()]
            assert log.verify().transactions == len(lines) - 4
    assert records["process"] == records["inline"]
    _check_answers_are_the_ledger(replies, results["process"][1])
