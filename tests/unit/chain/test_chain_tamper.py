"""Tampering with the SQLite file directly: ``Log.verify`` must refuse and name the index."""

from __future__ import annotations

import sqlite3

import pytest

from chain.errors import LogCorruptionError
from chain.log import Log
from chain.merkle import leaf_hash
from chain.records import Record
from chain_testlib import (
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    seeded_key,
    store_key,
    submitter,  # noqa: F401 (a fixture)
)

RECORDS = 12


@pytest.fixture
def log_path(new_log):
    path, log = new_log(records=RECORDS)
    log.checkpoint()
    log.close()
    return path


def _sql(path, *statements):
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            if isinstance(statement, tuple):
                db.execute(*statement)
            else:
                db.execute(statement)
    db.close()


def _body(path, index: int) -> bytes:
    db = sqlite3.connect(path)
    body = db.execute("SELECT body FROM records WHERE idx = ?", (index,)).fetchone()[0]
    db.close()
    return bytes(body)


def _verify_fails(path, index, message):
    with Log.open(path) as log:
        with pytest.raises(LogCorruptionError, match=message) as caught:
            log.verify()
    assert caught.value.index == index, str(caught.value)
    assert caught.value.exit_code == 7
    return caught.value


def test_untouched_log_verifies(log_path):
    with Log.open(log_path) as log:
        assert log.verify().size == RECORDS


def test_changed_body(log_path):
    body = _body(log_path, 4).replace(b"model 4", b"model X")
    _sql(log_path, ("UPDATE records SET body = ? WHERE idx = 4", (body,)))
    _verify_fails(log_path, 4, "record 4: stored leaf hash")


def test_changed_body_and_leaf_hash(log_path):
    body = _body(log_path, 4).replace(b"model 4", b"model X")
    _sql(log_path, ("UPDATE records SET body = ?, leaf_hash = ? WHERE idx = 4",
                    (body, leaf_hash(body))))
    _verify_fails(log_path, 4, "record 4: submitter signature is invalid")


def test_changed_subject_column(log_path):
    _sql(log_path, ("UPDATE records SET subject = ? WHERE idx = 7", (store_key(99),)))
    _verify_fails(log_path, 7, "record 7: row columns")


def test_deleted_row(log_path):
    _sql(log_path, "DELETE FROM records WHERE idx = 5")
    _verify_fails(log_path, 5, "record 5 is missing")


def test_deleted_last_rows_caught_by_stored_checkpoint(log_path):
    _sql(log_path, f"DELETE FROM records WHERE idx >= {RECORDS - 2}",
         f"DELETE FROM nodes WHERE ((idx + 1) << level) > {RECORDS - 2}")
    _verify_fails(log_path, RECORDS - 2, "holds only 10: records 10..11 were removed")


def test_reordered_rows(log_path):
    body3, body5 = _body(log_path, 3), _body(log_path, 5)
    _sql(
        log_path,
        ("UPDATE records SET body = ? WHERE idx = 3", (body5,)),
        ("UPDATE records SET body = ? WHERE idx = 5", (body3,)),
    )
    _verify_fails(log_path, 3, "record 3: the row holds the record for index 5")


def test_inserted_row_in_the_middle(log_path):
    """Shift rows 4.. up by one and insert a well-formed record signed by an attacker at 4."""
    with Log.open(log_path) as log:
        previous = log.record(3)
    forged = Record(
        index=4, kind="model", subject=store_key(500), name="evil", description="",
        time="2025-01-01T00:00:00Z", submitter="0" * 64, prev_hash=previous.record_hash().hex(),
        reason="", signature="",
    ).signed(seeded_key("attacker"))
    _sql(
        log_path,
        *[f"UPDATE records SET idx = {i + 1} WHERE idx = {i}" for i in range(RECORDS - 1, 3, -1)],
        (
            "INSERT INTO records (idx, kind, subject, body, leaf_hash) VALUES (4, ?, ?, ?, ?)",
            (forged.kind, forged.subject, forged.encode(), forged.record_hash()),
        ),
    )
    _verify_fails(log_path, 5, "record 5: the row holds the record for index 4")


def test_inserted_garbage_row_at_the_end(log_path):
    _sql(log_path, ("INSERT INTO records VALUES (?, 'model', ?, ?, ?)",
                    (RECORDS, store_key(1), b"\x93junk", b"\x00" * 32)))
    _verify_fails(log_path, RECORDS, f"record {RECORDS}: stored bytes are not a valid record")


def test_tampered_tree_node(log_path):
    _sql(log_path, ("UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1", (b"\x01" * 32,)))
    _verify_fails(log_path, 7, r"tree node \(level 2, records 4..7\)")


def test_tampered_stored_checkpoint(log_path):
    db = sqlite3.connect(log_path)
    note = db.execute("SELECT note FROM checkpoints").fetchone()[0]
    db.close()
    _sql(log_path, ("UPDATE checkpoints SET note = ?", (note.replace("\n12\n", "\n11\n"),)))
    _verify_fails(log_path, None, "stored checkpoint for size 12 does not verify")


def test_rewritten_history_caught_by_stored_checkpoint(log_path):
    """An attacker re-signs a consistent history from index 2 on: only the checkpoint the
    log signed earlier (or one a client holds) can reveal it."""
    attacker = seeded_key("attacker")
    with Log.open(log_path) as log:
        records = list(log.records())
    _sql(log_path, "DELETE FROM records WHERE idx >= 2",
         "DELETE FROM nodes WHERE ((idx + 1) << level) > 2")
    with Log.open(log_path) as log:  # appending rebuilds the derived node table too
        for record in records[2:]:
            log.append_model(store_key(1000 + record.index), record.name, "", attacker)
    _verify_fails(log_path, None, "history was rewritten")


def test_body_turned_into_text_by_sql(log_path):
    """SQL's replace() on a BLOB yields TEXT: the row must still be reported by index."""
    _sql(log_path, "UPDATE records SET body = replace(body, X'6d6f64656c2036', X'6d6f64656c2037') "
                   "WHERE idx = 6")
    _verify_fails(log_path, 6, "record 6: stored leaf hash")
