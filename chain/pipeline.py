"""Group commit of ``tx`` batches with the signing done beside the caller: :class:`TxPipeline`.

:meth:`chain.log.Log.append_tx_batch` does everything of one batch in turn: look up the ids,
sign and chain the records (about 20 µs a signature, one after another), write them and
commit. A :class:`TxPipeline` gives the same records and the same answers, with the signatures
made by a :class:`chain.signer.SignerProcess` while the caller works on its next batch::

    with TxPipeline(log, submitter) as pipeline:
        pipeline.submit(drafts_1)            # looked up, sent to the signer: returns at once
        pipeline.submit(drafts_2)            # (parse the next batch meanwhile)
        outcomes_1 = pipeline.finish()       # signatures of batch 1 in, written, committed
        outcomes_2 = pipeline.finish()

``submit`` decides duplicates against the committed log, the batches still in flight and the
batch itself, numbers the new records from the expected tip and asks the signer to chain them
on. ``finish`` takes the oldest batch in flight and appends its signed records in one durable
commit (:meth:`chain.storage.Storage.append_batch`), after checking, inside the write lock,
that the log's tip is still the one they were chained on. When it is not -- another process
appended in between -- or when another process decided one of the ids meanwhile, nothing is
written from the speculation: that batch, and every batch in flight after it, is appended
through :meth:`Log.append_tx_batch` instead (signed here, duplicates decided inside the lock),
and the signer restarts from the new tip. Either way, a batch returned by ``finish`` is
durable and exactly as ``append_tx_batch`` would have made it for the same log state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.errors import DuplicateRecordError
from chain.log import Log, TxDraft, TxOutcome, utc_now
from chain.records import KIND_TX, Record, RecordError
from chain.signer import SignerProcess
from chain.storage import AppendContext
from pyastore import keys
from pyastore.errors import LogError, UsageError


class _Stale(Exception):
    """The speculation does not hold: append the batch the plain way."""


@dataclass
class _Batch:
    drafts: Sequence[TxDraft]
    time: str
    duplicate_of: list[int | None]
    fresh: list[TxDraft]
    first_index: int
    prev_hash: str | None  # the hash the first record chains onto, when known at submit
    requested: bool = True  # sent to the signer (not while stale batches are in flight)
    stale: bool = False
    ids: dict[str, int] = field(default_factory=dict)  # new ids -> their index
    subjects: dict[str, int] = field(default_factory=dict)  # new id-less subjects -> index


class TxPipeline:
    """See the module docstring. One pipeline per open :class:`Log`; not thread safe."""

    def __init__(self, log: Log, submitter: keys.SigningKey, *, max_in_flight: int = 4):
        self.log = log
        self.submitter = submitter
        self.max_in_flight = max_in_flight
        self._signer = SignerProcess(submitter)
        self._in_flight: deque[_Batch] = deque()
        self._chained = False  # the signer's chain ends where _next_index says
        self._next_index = 0  # the index of the next new record, after those in flight
        self._after = ""  # the record hash after the last batch finished
        self.replayed = 0  # batches appended the plain way (the speculation did not hold)

    def __enter__(self) -> TxPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._signer.close()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def fileno(self) -> int:
        """Readable when the signer has answered (``poll`` it beside the input)."""
        return self._signer.fileno()

    def ready(self) -> bool:
        """True when :meth:`finish` would not wait for the signer. Raises
        :class:`LogError` when the signer stopped while nothing was in flight."""
        if not self._in_flight:
            if self._signer.answer_waiting():  # end of its output: it stopped
                self._signer.answer()
                raise LogError("the signing process answered a request never made")
            return False
        return self._in_flight[0].stale or self._signer.answer_waiting()

    def submit(self, drafts: Sequence[TxDraft], *, time: str | None = None) -> None:
        """Decide the batch's duplicates and send its new records to the signer. At most
        ``max_in_flight`` batches may wait for :meth:`finish`."""
        if len(self._in_flight) >= self.max_in_flight:
            raise UsageError(f"{len(self._in_flight)} batches are in flight already")
        when = time or utc_now()
        storage = self.log.storage
        if any(batch.stale for batch in self._in_flight):
            # The speculation broke down: this batch waits for the plain path too, unsigned.
            self._in_flight.append(_Batch(drafts, when, [], [], 0, None, requested=False,
                                          stale=True))
            return
        start: tuple[int, str] | None = None
        if not self._in_flight or not self._chained:
            start = storage.tip()
            self._chained = True
            self._next_index = start[0]
        # Duplicates as append_tx_batch decides them: ids against ids, and a transaction
        # without an id against the id-less ones with the same subject.
        ids: dict[str, int] = {}
        subjects: dict[str, int] = {}
        for batch in self._in_flight:
            ids.update(batch.ids)
            subjects.update(batch.subjects)
        ids.update(storage.tx_indices([d.tx_id for d in drafts
                                       if d.tx_id and d.tx_id not in ids]))
        batch = _Batch(drafts, when, [], [], self._next_index,
                       None if start is None else start[1])
        index = self._next_index
        for draft in drafts:
            if draft.tx_id:
                first = ids.get(draft.tx_id)
            else:
                first = subjects.get(draft.subject)
                if first is None:
                    first = storage.tx_subject_index(draft.subject)
            batch.duplicate_of.append(first)
            if first is not None:
                continue
            batch.fresh.append(draft)
            if draft.tx_id:
                batch.ids[draft.tx_id] = ids[draft.tx_id] = index
            else:
                batch.subjects[draft.subject] = subjects[draft.subject] = index
            index += 1
        self._signer.request(KIND_TX, start, when,
                             [(d.subject, d.tx_id, d.description, d.reason)
                              for d in batch.fresh])
        self._next_index = index
        self._in_flight.append(batch)

    def finish(self) -> list[TxOutcome]:
        """Append the oldest batch in flight (one durable commit) and return its outcomes,
        in the order of its drafts."""
        batch = self._in_flight.popleft()
        signed: list[tuple[str, bytes, bytes]] = []
        if batch.requested:
            try:
                signed = self._signer.answer()
            except RecordError as exc:
                self._restart()
                raise UsageError(str(exc)) from None
        if batch.stale:
            return self._plain(batch)
        if batch.prev_hash is None:  # chained on the batch before, committed just now
            batch.prev_hash = self._after
        records = self._records(batch, signed)
        try:
            self.log.storage.append_batch(lambda context: self._check(context, batch, records))
        except (_Stale, DuplicateRecordError):
            # Another process appended, or decided one of the ids, since the batch was sent.
            return self._plain(batch)
        except BaseException:
            self._restart()
            raise
        self._after = records[-1].record_hash().hex() if records else batch.prev_hash
        made = iter(records)
        return [TxOutcome(draft, next(made) if first is None else None, first)
                for draft, first in zip(batch.drafts, batch.duplicate_of)]

    def _records(self, batch: _Batch, signed: list[tuple[str, bytes, bytes]]) -> list[Record]:
        if len(signed) != len(batch.fresh):
            raise UsageError(f"the signer signed {len(signed)} of {len(batch.fresh)} records")
        submitter = self._signer.public_key_hex
        records = []
        prev_hash = batch.prev_hash
        assert prev_hash is not None
        index = batch.first_index
        for draft, (signature, body, leaf) in zip(batch.fresh, signed):
            record = object.__new__(Record)
            record.__dict__.update(
                index=index, kind=KIND_TX, subject=draft.subject, name=draft.tx_id,
                description=draft.description, time=batch.time, submitter=submitter,
                prev_hash=prev_hash, reason=draft.reason, signature=signature, _body=body,
                _leaf=leaf)
            records.append(record)
            prev_hash = leaf.hex()
            index += 1
        return records

    @staticmethod
    def _check(context: AppendContext, batch: _Batch, records: list[Record]) -> list[Record]:
        """Inside the write lock: the tip must be the one the records were chained onto (and
        the signer must have chained them onto it: its first record says so)."""
        if context.index != batch.first_index or context.prev_hash != batch.prev_hash:
            raise _Stale()
        if records and Record.decode(records[0].encode()) != records[0]:
            raise _Stale()
        return records

    def _plain(self, batch: _Batch) -> list[TxOutcome]:
        """The batch through ``append_tx_batch``; the batches after it follow the same way,
        and the signer restarts from the tip."""
        self._restart()
        self.replayed += 1
        return self.log.append_tx_batch(batch.drafts, self.submitter, time=batch.time)

    def _restart(self) -> None:
        for later in self._in_flight:
            later.stale = True
        self._chained = False
