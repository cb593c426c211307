"""The log side of the gate: tx records, the transaction id index, group-commit batches."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from chain import checkpoint as checkpoints
from chain import merkle
from chain.errors import DuplicateRecordError, LogCorruptionError
from chain.log import Log, TxDraft
from chain.proof import ProofBundle
from chain.records import Record
from gate_testlib import (
    key_files,  # noqa: F401 (a fixture)
    ledger,  # noqa: F401 (a fixture)
    seeded_key,
)
from pyastore.errors import UsageError

GATE = seeded_key("gate operator")
WHEN = "2026-01-01T00:00:00Z"


def draft(number: int, tx_id: str | None = None) -> TxDraft:
    digest = hashlib.sha256(f"transaction {number}".encode()).hexdigest()
    return TxDraft(f"tx-{number}" if tx_id is None else tx_id, "sha256:" + digest,
                   '{"decision":"admitted"}', "")


def test_batches_chain_and_build_the_tree_exactly_as_single_appends(tmp_path, ledger):
    with Log.open(ledger) as log:
        log.append_model(hashlib.sha256(b"m").hexdigest(), "model", "", GATE, time=WHEN)
        sizes = [1, 2, 3, 7, 16, 1, 33]  # crosses every subtree boundary up to 64
        first = 0
        for size in sizes:
            outcomes = log.append_tx_batch([draft(first + i) for i in range(size)], GATE,
                                           time=WHEN)
            assert all(o.record is not None and o.duplicate_of is None for o in outcomes)
            first += size
        records = list(log.records())
        report = log.verify()
        assert report.size == 1 + first and report.transactions == first
        assert report.unknown_kind_indices == ()
    # The same records appended one by one through the single-append path.
    single = tmp_path / "single.log"
    with Log.init(single, tmp_path / "log.key", origin="example.com/gate") as other:
        for record in records:
            other.storage.append(lambda context, record=record: record)
        assert other.verify().size == len(records)
        assert other.root() == merkle.MemoryTree([r.record_hash() for r in records]).root()
    a, b = sqlite3.connect(ledger), sqlite3.connect(single)
    query = "SELECT level, idx, hash FROM nodes ORDER BY level, idx"
    assert a.execute(query).fetchall() == b.execute(query).fetchall()
    query = "SELECT idx, body, leaf_hash FROM records ORDER BY idx"
    assert a.execute(query).fetchall() == b.execute(query).fetchall()
    query = "SELECT id, idx FROM tx_ids ORDER BY id"
    assert a.execute(query).fetchall() == b.execute(query).fetchall()
    for record, previous in zip(records[1:], records):
        assert record.prev_hash == previous.record_hash().hex()


def test_one_commit_per_batch(ledger):
    with Log.open(ledger) as log:
        statements: list[str] = []
        log.storage._db.set_trace_callback(statements.append)
        log.append_tx_batch([draft(i) for i in range(100)], GATE)
        assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
        assert log.size == 100


def test_duplicate_ids_refused_across_and_within_batches(ledger):
    with Log.open(ledger) as log:
        first = log.append_tx_batch([draft(0), draft(1)], GATE)
        again = log.append_tx_batch([draft(5, "tx-1"), draft(2), draft(6, "tx-2")], GATE)
        assert [o.duplicate_of for o in again] == [first[1].record.index, None, 2]
        assert again[0].record is None and again[2].record is None
        assert log.size == 3
        assert log.tx("tx-2").index == 2 and log.tx("nope") is None
        with pytest.raises(DuplicateRecordError, match="already decided at log index 1"):
            log.storage.append(lambda context: Record(
                index=context.index, kind="tx", subject=draft(9).subject, name="tx-1",
                description="", time=WHEN, submitter="0" * 64, prev_hash=context.prev_hash,
                reason="", signature="",
            ).signed(GATE))
        assert log.size == 3
        assert log.verify().transactions == 3


def test_transactions_without_an_id_are_deduplicated_by_subject(ledger):
    with Log.open(ledger) as log:
        outcomes = log.append_tx_batch([draft(0, ""), draft(0, ""), draft(1, "")], GATE)
        assert [o.duplicate_of for o in outcomes] == [None, 0, None]
        assert log.append_tx_batch([draft(1, "")], GATE)[0].duplicate_of == 1
        assert log.size == 2 and log.verify().transactions == 2


def test_a_failing_batch_writes_nothing(ledger):
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(0)], GATE)
        with pytest.raises(UsageError, match="longer than 256"):
            log.append_tx_batch([draft(1), draft(2, "x" * 300)], GATE)
        assert log.size == 1 and log.tx("tx-1") is None
        assert log.verify().size == 1


def test_tx_records_only_through_the_batch_append(ledger):
    with Log.open(ledger) as log, pytest.raises(UsageError, match="append_tx_batch"):
        log.append_record("tx", draft(0).subject, GATE, name="tx-0")


def test_a_tx_record_is_provable(ledger, key_files):
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(i) for i in range(11)], GATE)
        record = log.tx("tx-7")
        bundle = ProofBundle.from_bytes(log.prove_index(record.index).to_bytes())
    signed = checkpoints.verify(bundle.checkpoint, seeded_key("gate log key").public_key)
    assert Record.decode(bundle.record.leaf) == record
    merkle.verify_inclusion(record.index, signed.size, merkle.leaf_hash(bundle.record.leaf),
                            bundle.record.inclusion_proof, signed.root_hash)


def test_verify_catches_a_tampered_id_index(ledger):
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(i) for i in range(4)], GATE)
    db = sqlite3.connect(ledger)
    db.execute("UPDATE tx_ids SET idx = 0 WHERE id = 'tx-2'")
    db.commit()
    with Log.open(ledger) as log, pytest.raises(LogCorruptionError, match="second decision"):
        log.verify()
    db.execute("DELETE FROM tx_ids WHERE id = 'tx-2'")
    db.commit()
    with Log.open(ledger) as log, pytest.raises(LogCorruptionError, match="missing from"):
        log.verify()
    db.execute("INSERT INTO tx_ids (id, idx) VALUES ('tx-2', 2), ('ghost', 3)")
    db.commit()
    with Log.open(ledger) as log, pytest.raises(LogCorruptionError, match="index has 5"):
        log.verify()


def test_a_log_from_before_the_index_gets_it_on_a_writable_open(ledger):
    db = sqlite3.connect(ledger)
    db.execute("DROP TABLE tx_ids")
    db.commit()
    db.close()
    with Log.open(ledger, readonly=True) as log:
        assert log.tx("tx-0") is None and log.verify().size == 0
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(0)], GATE)
        assert log.tx("tx-0").index == 0
        assert log.verify().transactions == 1


def test_with_signature_is_signed_without_a_second_check():
    unsigned = Record(index=0, kind="tx", subject=draft(0).subject, name="tx-0",
                      description="", time=WHEN, submitter=GATE.public_key.hex(),
                      prev_hash="0" * 64, reason="", signature="")
    fast = unsigned.with_signature(GATE.sign(unsigned.signing_message()).hex())
    assert fast == unsigned.signed(GATE) and fast.signature_valid()
    assert Record.decode(fast.encode()) == fast
    with pytest.raises(Exception, match="128 lowercase hex"):
        unsigned.with_signature("AB" * 64)


def test_sign_chain_gives_the_records_of_signed_single_records():
    drafts = [(draft(i).subject, f"tx-{i}" if i % 3 else "", f'{{"n":{i}}}', "r" * i)
              for i in range(7)]
    chained = Record.sign_chain("tx", drafts, index=5, prev_hash="ab" * 32, time=WHEN,
                                signing_key=GATE)
    prev_hash = "ab" * 32
    for position, (record, (subject, name, description, reason)) in enumerate(
            zip(chained, drafts)):
        expected = Record(index=5 + position, kind="tx", subject=subject, name=name,
                          description=description, time=WHEN, submitter="0" * 64,
                          prev_hash=prev_hash, reason=reason, signature="").signed(GATE)
        assert record == expected
        assert record.encode() == expected.encode() and record.signature_valid()
        assert record.record_hash() == merkle.leaf_hash(expected.encode())
        assert Record.decode(record.encode()) == record
        prev_hash = expected.record_hash().hex()
    with pytest.raises(Exception, match="neither a store key"):
        Record.sign_chain("tx", [("sha256:xyz", "a", "", "")], index=0,
                          prev_hash="0" * 64, time=WHEN, signing_key=GATE)
    with pytest.raises(Exception, match="not UTC ISO-8601"):
        Record.sign_chain("tx", drafts, index=0, prev_hash="0" * 64, time="yesterday",
                          signing_key=GATE)


def test_the_subject_index_leaves_out_tx_records(ledger):
    # Transaction digests are random keys: indexing them would cost about one index page per
    # decision. Decisions are found by id, or by subject for those without an id.
    store_key = hashlib.sha256(b"m").hexdigest()
    with Log.open(ledger) as log:
        log.append_model(store_key, "model", "", GATE, time=WHEN)
        log.append_tx_batch([draft(0), draft(1, "")], GATE, time=WHEN)
        assert [s.kind for s in log.storage.find_by_subject(store_key)] == ["model"]
        assert log.storage.find_by_subject(draft(0).subject) == []
        assert log.storage.tx_subject_index(draft(1).subject) == 2
        assert log.storage.tx_subject_index(draft(0).subject) is None  # it has an id
    db = sqlite3.connect(ledger)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'records_subject'").fetchone()
    assert sql.endswith("WHERE kind <> 'tx'")
    plan = " ".join(str(row) for row in db.execute(
        "EXPLAIN QUERY PLAN SELECT idx FROM records WHERE subject = ? AND kind <> 'tx'",
        (store_key,)))
    assert "records_subject" in plan


def test_verify_catches_a_tampered_subject_index(ledger):
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(0, ""), draft(1, ""), draft(2)], GATE)
    db = sqlite3.connect(ledger)
    db.execute("UPDATE tx_subjects SET idx = 0 WHERE idx = 1")
    db.commit()
    with Log.open(ledger) as log, pytest.raises(LogCorruptionError, match="second decision"):
        log.verify()
    db.execute("DELETE FROM tx_subjects WHERE idx = 0")
    db.commit()
    with Log.open(ledger) as log, pytest.raises(LogCorruptionError, match="missing from"):
        log.verify()


def test_a_log_with_the_full_subject_index_is_converted_on_a_writable_open(ledger):
    # A log written before tx_subjects: every record in the subject index, no tx_subjects.
    with Log.open(ledger) as log:
        log.append_tx_batch([draft(0, ""), draft(1), draft(2, "")], GATE)
    db = sqlite3.connect(ledger)
    db.execute("DROP TABLE tx_subjects")
    db.execute("DROP INDEX records_subject")
    db.execute("CREATE INDEX records_subject ON records (subject)")
    db.commit()
    with Log.open(ledger, readonly=True) as log:  # read-only: found through the old index
        assert log.storage.tx_subject_index(draft(2).subject) == 2
        assert log.verify().transactions == 3
    with Log.open(ledger) as log:
        outcomes = log.append_tx_batch([draft(2, ""), draft(0, ""), draft(3, "")], GATE)
        assert [o.duplicate_of for o in outcomes] == [2, 0, None]
        assert log.verify().transactions == 4
    assert sorted(db.execute("SELECT idx FROM tx_subjects")) == [(0,), (2,), (3,)]
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'records_subject'").fetchone()
    assert sql.endswith("WHERE kind <> 'tx'")


def test_the_gate_spells_records_and_answers_as_json_does(ledger):
    # The gate builds the common description and answer lines from their constant parts; they
    # must be byte for byte what TxDecision.encode() and json.dumps() write.
    import io
    import json
    import math

    import pyastore
    from gate_testlib import GOLDEN_MODEL, GOLDEN_PUB
    from pyastore.gate import Gate, TxDecision
    from pyastore.stream import Line

    model = pyastore.load(GOLDEN_MODEL, trusted_keys=[GOLDEN_PUB])
    out = io.StringIO()
    with Log.open(ledger) as log:
        gate = Gate(model, log, GATE, out, cutoff=0.25)
        for score in (0.1, 1e-300, 0.30000000000000004, 5e-324, 0.0, -0.0, 1.0, None,
                      math.nan, 123456789.125):
            for decision in ("admitted", "rejected"):
                expected = TxDecision(decision, None if score is None or score != score
                                      else score, 0.25, model.store_key).encode()
                assert gate._description(decision, score) == expected
        ids = ["tx-1", 'quote " and \\ back', "é ☃ \u2028", "\x00\x1f"]
        lines = [Line(n + 1, json.dumps({"id": tx_id, "amount": 0.0, "velocity": -100.0,
                                         "age_days": -100.0}).encode(), 0)
                 for n, tx_id in enumerate(ids)]
        transactions = gate.process(lines)
        gate.answer(transactions)
    answers = out.getvalue().split("\n")[:-1]
    assert len(answers) == len(ids)
    for text, tx_id, transaction in zip(answers, ids, transactions):
        assert transaction.decision == "admitted"
        value = json.loads(text)
        assert value["id"] == tx_id and value["score"] == transaction.score
        assert text == json.dumps(value, ensure_ascii=False, allow_nan=False)
