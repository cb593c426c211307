"""TxPipeline: tx batches signed in a helper process give exactly the records and outcomes
of Log.append_tx_batch, and fall back to it whenever its speculation does not hold (another
writer appended, or decided an id in flight). On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from chain.log import Log, TxDraft, TxOutcome
from chain.pipeline import TxPipeline
from chain.records import MAX_DESCRIPTION
from chain_testlib import (
    backend,  # noqa: F401 (a fixture)
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    seeded_key,
    store_key,
    submitter,  # noqa: F401 (a fixture)
)
from postgres.pg_testlib import pg_server  # noqa: F401 (a fixture)
from pyastore.errors import LogError, UsageError

pytestmark = pytest.mark.usefixtures("backend")

OTHER = seeded_key("another gate")


def tx(tx_id: str, number: int, description: str = '{"decision":"admitted"}') -> TxDraft:
    return TxDraft(tx_id, "sha256:" + store_key(1000 + number), description, "")


def when(number: int) -> str:
    return f"2026-01-01T00:00:{number:02d}Z"


# Every way a draft can be new or a duplicate: fresh ids, an id repeated in its batch, an id
# of a batch still in flight, an id already committed, id-less drafts (duplicates by subject:
# in the batch, across batches, but never of a draft with an id and the same subject), and
# batches with nothing new at all.
BATCHES = [
    [tx("tx-1", 1), tx("tx-2", 2), tx("tx-1", 3)],
    [tx("tx-2", 4), tx("tx-3", 5), tx("", 6), tx("", 6)],
    [tx("", 6), tx("", 7), tx("tx-4", 7)],
    [tx("tx-1", 8), tx("tx-3", 9)],
    [],
    [tx(f"tx-{n}", n) for n in range(5, 40)],
    [tx("tx-39", 1), tx("", 1), tx("tx-40", 40)],
]


def _summary(outcomes: list[TxOutcome]) -> list[tuple[object, ...]]:
    return [(o.draft, None if o.record is None else o.record.index, o.duplicate_of)
            for o in outcomes]


def _through_pipeline(log: Log, signer, batches, *, max_in_flight: int) -> list[list[TxOutcome]]:
    results = []
    with TxPipeline(log, signer, max_in_flight=max_in_flight) as pipeline:
        for number, batch in enumerate(batches):
            if pipeline.in_flight >= max_in_flight:
                results.append(pipeline.finish())
            pipeline.submit(batch, time=when(number))
        while pipeline.in_flight:
            results.append(pipeline.finish())
        assert pipeline.replayed == 0
    return results


@pytest.mark.parametrize("max_in_flight", [1, 2, 4])
def test_the_same_records_and_outcomes_as_append_tx_batch(new_log, submitter, max_in_flight):
    _, piped = new_log("piped.log", records=3)
    _, plain = new_log("plain.log", records=3)
    got = _through_pipeline(piped, submitter, BATCHES, max_in_flight=max_in_flight)
    expected = [plain.append_tx_batch(batch, submitter, time=when(number))
                for number, batch in enumerate(BATCHES)]
    assert [_summary(o) for o in got] == [_summary(o) for o in expected]
    assert [[o.record for o in batch] for batch in got] == \
        [[o.record for o in batch] for batch in expected]
    assert [r.encode() for r in piped.records()] == [r.encode() for r in plain.records()]
    assert piped.root() == plain.root()
    report = piped.verify()
    assert report.transactions == plain.verify().transactions == 43  # 40 ids, 3 id-less
    # the outcomes name real records: every recorded draft is in the log at its index
    for batch in got:
        for outcome in batch:
            if outcome.record is not None:
                assert piped.record(outcome.record.index) == outcome.record


def test_another_writer_in_between_is_caught_and_the_batches_replayed(new_log, submitter):
    path, log = new_log("shared.log", records=1)
    with TxPipeline(log, submitter, max_in_flight=3) as pipeline:
        pipeline.submit([tx("tx-1", 1), tx("tx-2", 2)], time=when(1))
        pipeline.submit([tx("tx-3", 3)], time=when(2))
        with Log.open(path) as other:  # a second process's handle on the same log
            other.append_tx_batch([tx("tx-9", 9)], OTHER, time=when(3))
        first = pipeline.finish()
        second = pipeline.finish()
        assert pipeline.replayed == 2
        # once the tip is known again, batches go through the signer again
        pipeline.submit([tx("tx-4", 4)], time=when(4))
        third = pipeline.finish()
        assert pipeline.replayed == 2
    assert _summary(first) == [(tx("tx-1", 1), 2, None), (tx("tx-2", 2), 3, None)]
    assert _summary(second) == [(tx("tx-3", 3), 4, None)]
    assert _summary(third) == [(tx("tx-4", 4), 5, None)]
    records = list(log.records())
    assert [(r.index, r.name) for r in records[1:]] == \
        [(1, "tx-9"), (2, "tx-1"), (3, "tx-2"), (4, "tx-3"), (5, "tx-4")]
    assert all(b.prev_hash == a.record_hash().hex() for a, b in zip(records, records[1:]))
    assert log.verify().transactions == 5


def test_an_id_another_writer_decided_in_flight_is_a_duplicate(new_log, submitter):
    path, log = new_log("race.log")
    with TxPipeline(log, submitter) as pipeline:
        pipeline.submit([tx("tx-5", 5), tx("tx-6", 6), tx("", 7)], time=when(1))
        with Log.open(path) as other:
            decided = other.append_tx_batch([tx("tx-6", 60)], OTHER, time=when(2))
        outcomes = pipeline.finish()
        assert pipeline.replayed == 1
    index = decided[0].record.index
    assert _summary(outcomes) == [(tx("tx-5", 5), index + 1, None), (tx("tx-6", 6), None, index),
                                  (tx("", 7), index + 2, None)]
    assert log.verify().transactions == 3


def test_a_stopped_signer_is_a_log_error_and_nothing_is_appended(new_log, submitter):
    _, log = new_log("stopped.log", records=2)
    with TxPipeline(log, submitter) as pipeline:
        pipeline.submit([tx("tx-1", 1)], time=when(1))
        pipeline._signer._process.kill()
        pipeline._signer._process.wait()
        with pytest.raises(LogError, match="the signing process stopped: it exited with code -9"):
            pipeline.finish()
    assert log.size == 2 and log.verify().transactions == 0
    with TxPipeline(log, submitter) as idle:  # stops with nothing in flight
        idle._signer._process.kill()
        idle._signer._process.wait()
        with pytest.raises(LogError, match="the signing process stopped"):
            idle.ready()


def test_a_draft_the_records_refuse_is_refused_as_append_tx_batch_refuses_it(new_log,
                                                                             submitter):
    _, log = new_log("refused.log")
    long = tx("tx-2", 2, "x" * (MAX_DESCRIPTION + 1))
    with pytest.raises(UsageError) as plain:
        log.append_tx_batch([tx("tx-1", 1), long], submitter, time=when(0))
    with TxPipeline(log, submitter) as pipeline:
        pipeline.submit([tx("tx-1", 1), long], time=when(1))
        pipeline.submit([tx("tx-3", 3)], time=when(2))  # chained on the refused batch
        with pytest.raises(UsageError) as piped:
            pipeline.finish()
        assert str(piped.value) == str(plain.value)
        assert _summary(pipeline.finish()) == [(tx("tx-3", 3), 0, None)]
        pipeline.submit([tx("tx-1", 1)], time=when(3))
        assert _summary(pipeline.finish()) == [(tx("tx-1", 1), 1, None)]
    assert log.verify().transactions == 2


def test_more_batches_than_allowed_in_flight_is_a_usage_error(new_log, submitter):
    _, log = new_log("full.log")
    with TxPipeline(log, submitter, max_in_flight=1) as pipeline:
        pipeline.submit([tx("tx-1", 1)], time=when(1))
        with pytest.raises(UsageError, match="1 batches are in flight already"):
            pipeline.submit([tx("tx-2", 2)], time=when(2))
        assert _summary(pipeline.finish()) == [(tx("tx-1", 1), 0, None)]
