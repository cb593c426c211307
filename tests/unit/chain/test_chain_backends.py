"""The storage backends against each other: the same bytes on SQLite and PostgreSQL for the
same appends, and, on both, the same refusals of tampered rows, one linear history from eight
concurrent writer processes, and writers killed at random leaving no partial record. A real
PostgreSQL server (tests/unit/postgres/pg_testlib.py), no mocks."""

from __future__ import annotations

import random
import signal
import sqlite3
import time

import pytest

from chain import merkle
from chain.errors import LogCorruptionError
from chain.log import Log, TxDraft
from chain.storage_pg import PostgresStorage
from chain_testlib import (
    backend,  # noqa: F401 (a fixture)
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    seeded_key,
    start_worker,
    store_key,
    submitter,  # noqa: F401 (a fixture)
    wait_ready,
)
from postgres.pg_testlib import fresh_log_url, pg_server  # noqa: F401 (a fixture)

WHEN = "2025-01-01T00:00:00Z"


def _same_history(log: Log, submitter) -> None:
    """A fixed sequence of every kind of append, times pinned."""
    for number in range(11):
        log.append_model(store_key(number), f"model {number}", "weekly", submitter, time=WHEN)
    log.revoke(store_key(3), "leaked", submitter, time=WHEN)
    log.append_record("receipt", store_key(100), submitter, name="r1", time=WHEN)
    log.append_tx_batch([TxDraft(f"tx-{n}", "sha256:" + store_key(200 + n), "approve", "")
                         for n in range(5)], submitter, time=WHEN)
    log.checkpoint()
    log.append_model(store_key(50), "late", "", submitter, time=WHEN)


def _stored_nodes(log: Log) -> dict[tuple[int, int], bytes]:
    size = log.size
    nodes = {}
    for level in range(1, size.bit_length()):
        for index in range(size >> level):
            value = log.storage.stored_node(level, index)
            assert value is not None
            nodes[(level, index)] = value
    return nodes


def test_same_appends_give_identical_bytes(tmp_path, pg_server, key_files, submitter):
    logs = [Log.init(tmp_path / "same.log", key_files["log.key"], origin="example.com/same"),
            Log.init(fresh_log_url(pg_server), key_files["log.key"], origin="example.com/same")]
    try:
        for log in logs:
            _same_history(log, submitter)
        sqlite_log, pg_log = logs
        assert isinstance(pg_log.storage, PostgresStorage)
        assert pg_log.size == sqlite_log.size == 19
        assert [s.body for s in pg_log.storage.iterate()] == \
            [s.body for s in sqlite_log.storage.iterate()]
        assert [s.leaf_hash for s in pg_log.storage.iterate()] == \
            [s.leaf_hash for s in sqlite_log.storage.iterate()]
        assert _stored_nodes(pg_log) == _stored_nodes(sqlite_log)
        assert [(c.size, c.root, c.note) for c in pg_log.storage.checkpoints()] == \
            [(c.size, c.root, c.note) for c in sqlite_log.storage.checkpoints()]
        assert pg_log.prove(store_key(7)).to_bytes() == sqlite_log.prove(store_key(7)).to_bytes()
        assert pg_log.prove(store_key(3)).to_bytes() == sqlite_log.prove(store_key(3)).to_bytes()
        assert pg_log.consistency(5, 19) == sqlite_log.consistency(5, 19)
        assert pg_log.verify() == sqlite_log.verify()
        assert pg_log.storage.tx_index("tx-2") == sqlite_log.storage.tx_index("tx-2") == 15
        # the stored tree agrees with the RFC 9162 reference over the same leaves
        leaves = [s.leaf_hash for s in pg_log.storage.iterate()]
        reference = merkle.MemoryTree(leaves)
        for size in range(1, len(leaves) + 1):
            assert pg_log.root(size) == reference.root(size)
            for index in range(size):
                assert pg_log.inclusion_proof(index, size) == \
                    merkle.inclusion_proof(reference, index, size)
            assert pg_log.consistency(1, size) == merkle.consistency_proof(reference, 1, size)
    finally:
        for log in logs:
            log.close()


def test_duplicate_transaction_id_refused_on_both(new_log, submitter, backend):
    _, log = new_log()
    first = log.append_tx_batch([TxDraft("tx-1", "sha256:" + store_key(1), "approve", "")],
                                submitter)
    again = log.append_tx_batch([TxDraft("tx-1", "sha256:" + store_key(2), "approve", ""),
                                 TxDraft("tx-2", "sha256:" + store_key(3), "deny", "")],
                                submitter)
    assert first[0].record is not None and again[0].duplicate_of == first[0].record.index
    assert again[1].record is not None and log.size == 2 and log.verify().transactions == 2


def test_transactions_without_an_id_deduplicated_by_subject_on_both(new_log, submitter,
                                                                      backend):
    path, log = new_log(records=1)
    unnamed = [TxDraft("", "sha256:" + store_key(n), "deny", "malformed") for n in (1, 2, 1)]
    outcomes = log.append_tx_batch(unnamed, submitter)
    assert [o.duplicate_of for o in outcomes] == [None, None, 1]
    assert log.append_tx_batch(unnamed[1:2], submitter)[0].duplicate_of == 2
    assert log.storage.tx_subject_index("sha256:" + store_key(2)) == 2
    # the subject index is about models (and other kinds), not tx decisions
    assert log.storage.find_by_subject("sha256:" + store_key(1)) == []
    assert [s.kind for s in log.storage.find_by_subject(store_key(0))] == ["model"]
    assert log.size == 3 and log.verify().transactions == 2
    # A log from before tx_subjects (full subject index) is converted on a writable open.
    _sql(path, "DROP TABLE tx_subjects")
    _sql(path, "DROP INDEX records_subject")
    _sql(path, "CREATE INDEX records_subject ON records (subject)")
    with Log.open(path, readonly=True) as old:
        assert old.storage.tx_subject_index("sha256:" + store_key(2)) == 2
        assert old.verify().transactions == 2
    with Log.open(path) as reopened:
        assert reopened.storage.tx_subject_index("sha256:" + store_key(1)) == 1
        assert reopened.append_tx_batch(unnamed[:1], submitter)[0].duplicate_of == 1
        assert reopened.verify().transactions == 2


# ---- tampering with stored rows: verify names the index, on both backends ---------------


def _sql(path, statement: str, *params) -> None:
    """Run one statement on the log's database behind the log's back."""
    if isinstance(path, str):
        import psycopg

        with psycopg.connect(path, autocommit=True) as db:
            db.execute(statement.replace("?", "%s"), params or None)
    else:
        db = sqlite3.connect(path)
        with db:
            db.execute(statement, params)
        db.close()


def _body(path, index: int) -> bytes:
    with Log.open(path) as log:
        return log.storage.get(index).body


TAMPERING = [
    ("changed body", lambda path: _sql(path, "UPDATE records SET body = ? WHERE idx = 4",
                                       _body(path, 4).replace(b"model 4", b"model X")),
     4, "record 4: stored leaf hash"),
    ("changed subject", lambda path: _sql(path, "UPDATE records SET subject = ? WHERE idx = 7",
                                          store_key(99)),
     7, "record 7: row columns"),
    ("deleted row", lambda path: _sql(path, "DELETE FROM records WHERE idx = 5"),
     5, "record 5 is missing"),
    ("tree node", lambda path: _sql(path, "UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1",
                                    b"\x01" * 32),
     7, r"tree node \(level 2, records 4..7\)"),
    ("truncated", lambda path: (_sql(path, "DELETE FROM records WHERE idx >= 10"),
                                _sql(path, "DELETE FROM nodes WHERE ((idx + 1) << level) > 10")),
     10, "holds only 10: records 10..11 were removed"),
]


@pytest.mark.parametrize("tamper, index, message", [t[1:] for t in TAMPERING],
                         ids=[t[0] for t in TAMPERING])
def test_tampered_rows_caught_by_chain_verify(new_log, backend, tamper, index, message, capsys):
    from pyastore.cli import main

    path, log = new_log(records=12)
    log.checkpoint()
    log.close()
    assert main(["chain", "verify", str(path)]) == 0
    tamper(path)
    with Log.open(path) as reopened:
        with pytest.raises(LogCorruptionError, match=message) as caught:
            reopened.verify()
    assert caught.value.index == index
    capsys.readouterr()
    assert main(["chain", "verify", str(path)]) == 7
    assert message.split(" ")[0].replace("\\", "") in capsys.readouterr().err


# ---- writers in separate processes -----------------------------------------------------


def test_eight_processes_make_one_linear_history(new_log, backend):
    path, log = new_log("eight.log")
    log.close()
    started = time.monotonic()
    workers = [start_worker(path, f"writer{n}", n * 1000, 250, wait=True) for n in range(8)]
    for worker in workers:
        wait_ready(worker)
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert out.strip().split("\n")[-1] == "done 250 0"
    elapsed = time.monotonic() - started
    with Log.open(path) as reopened:
        report = reopened.verify()
        assert report.size == 2000 and report.models == 2000
        assert reopened.storage.row_count() == 2000
        records = list(reopened.records())
    assert [r.index for r in records] == list(range(2000))
    for n in range(8):
        submitter_hex = seeded_key(f"writer{n}").public_key.hex()
        mine = [r.subject for r in records if r.submitter == submitter_hex]
        assert mine == [store_key(n * 1000 + i) for i in range(250)]
    switches = sum(a.submitter != b.submitter for a, b in zip(records, records[1:]))
    assert switches >= 10, "the writers did not actually overlap"
    print(f"{backend}: 8 x 250 durable appends from 8 processes in {elapsed:.1f} s")


def test_sigkill_of_a_writer_never_leaves_a_partial_record(new_log, backend):
    path, log = new_log("crash.log")
    log.close()
    rng = random.Random(4321)
    sizes = []
    for kill in range(20):
        worker = start_worker(path, "crasher", kill * 100000, 0)
        wait_ready(worker)
        time.sleep(rng.uniform(0.005, 0.06))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        with Log.open(path) as reopened:
            size = reopened.size
            assert reopened.storage.row_count() == size  # no gap, no partial row
            if kill % 5 == 4:
                assert reopened.verify().size == size
            elif size:
                last = reopened.record(size - 1)
                assert last.record_hash() == reopened.storage.get(size - 1).leaf_hash
        sizes.append(size)
    assert sizes == sorted(sizes) and sizes[-1] > 0
    with Log.open(path) as reopened:  # and the log takes appends again
        reopened.append_model(store_key(10**9), "after", "", seeded_key("after"))
        assert reopened.verify().size == sizes[-1] + 1
