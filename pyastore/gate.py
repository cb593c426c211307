"""The transaction gate: every transaction is scored before it enters the ledger.

``pyastore gate`` reads transactions (NDJSON objects or CSV rows, one per line), scores them
with a verified container and records every decision in the ledger (a :mod:`chain` log)
before it answers. One micro-batch at a time goes through these passes:

1. **read** -- :class:`pyastore.stream.MicroBatcher` hands over up to ``max_batch`` lines,
   or fewer once ``max_delay_ms`` have passed since the first of them was read;
2. **parse** (:meth:`Gate.parse`) -- each line becomes a :class:`Transaction`: its id, its
   canonical bytes (the line as received; for CSV the header line, ``\\n``, the row) and the
   model's input cells, or the reason it is malformed (not JSON, no id, a missing field, a
   cell that is not a number, a line that is too long...);
3. **score** (:meth:`Gate.score`) -- the well-formed rows go into one float32 buffer;
   rows the model's input policy refuses (:meth:`Model.invalid_rows`) become malformed, the
   rest are scored by :meth:`Model.score_into`;
4. **decide** (:meth:`Gate.decide`) -- :meth:`Model.decide` with the cutoff: a score
   ``<= cutoff`` is **admitted**, a score ``> cutoff`` (or NaN) is **rejected**, a malformed
   transaction is rejected with its reason;
5. **append** -- one ``tx`` record per transaction, the whole batch in ONE durable commit
   (:meth:`chain.log.Log.append_tx_batch`); an id the ledger already holds is refused as a
   duplicate (rejected, nothing appended, the answer names the first decision's index);
6. **answer** (:meth:`Gate.answer`) -- one JSON line per transaction on the output,
   flushed, only now that its record is durable; rejected ones also go to ``--rejected``.

Memory stays constant on endless input: nothing outlives its batch but counters. The record
fields, the canonical bytes and the answer lines are specified in docs/GATE.md.

Faults: a ledger that cannot be written raises :class:`LogError` from the append pass, so
nothing of that batch is answered; a closed output stops the gate (every decision made is
durable; a resubmission is answered as a duplicate with its index).
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_text  # json.dumps(text, ensure_ascii=False)

from pyastore.encoding import CategoryError
from pyastore.errors import InputError, LogError, UsageError
from pyastore.model import Model

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from typing import IO, Any

    from chain.log import Log, TxDraft, TxOutcome
    from chain.pipeline import TxPipeline
    from pyastore.keys import SigningKey
    from pyastore.stream import Line, MicroBatcher

_NAN = math.nan
ADMITTED = "admitted"
REJECTED = "rejected"
INPUT_FORMATS = ("ndjson", "csv")
MAX_ID_CHARS = 256  # the log record's name limit


@dataclass(frozen=True)
class TxDecision:
    """A ``tx`` record's ``description``: the decision, the score, the cutoff and the model.

    Encoded as JSON with sorted keys and no blanks, the score as the shortest text that reads
    back as the same float64 (``null`` when there was no score: a malformed transaction).
    Round-trip law: ``TxDecision.parse(d.encode()) == d``.
    """

    decision: str
    score: float | None
    cutoff: float
    model: str

    def encode(self) -> str:
        return json.dumps({"cutoff": self.cutoff, "decision": self.decision,
                           "model": self.model, "score": self.score},
                          sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def parse(cls, text: str) -> TxDecision:
        try:
            value = json.loads(text)
            decision, score, cutoff, model = (value["decision"], value["score"],
                                              value["cutoff"], value["model"])
        except (ValueError, TypeError, KeyError):
            raise LogError(f"not a tx decision: {text[:80]!r}") from None
        if decision not in (ADMITTED, REJECTED) or not isinstance(model, str):
            raise LogError(f"not a tx decision: {text[:80]!r}")
        return cls(decision, None if score is None else float(score), float(cutoff), model)


class Transaction:
    """One line on its way through the passes (see the module docstring)."""

    __slots__ = ("line", "tx_id", "canonical", "cells", "reason", "score", "decision",
                 "rejection")

    def __init__(self, line: Line, tx_id: str, canonical: bytes | None,
                 cells: array[float] | None = None, reason: str | None = None) -> None:
        self.line = line
        self.tx_id = tx_id
        self.canonical = canonical  # None for an over-long line: only its digest was kept
        self.cells = cells  # the model's input cells, as float32
        self.reason = reason  # why it is malformed
        self.score: float | None = None
        self.decision = REJECTED
        self.rejection = ""  # the record's reason

    @property
    def subject(self) -> str:
        if self.canonical is None:
            assert self.line.digest is not None
            return "sha256:" + self.line.digest.hex()
        return "sha256:" + hashlib.sha256(self.canonical).hexdigest()


@dataclass
class GateReport:
    """Counts over a run: ``admitted + rejected == read`` (rejected counts the malformed and
    the duplicates too)."""

    read: int = 0
    admitted: int = 0
    rejected: int = 0
    malformed: int = 0
    duplicates: int = 0
    batches: int = 0
    last_index: int | None = None
    stopped_by: str | None = None
    partial_bytes: int = 0
    output_closed: bool = False
    unanswered: int = 0

    def summary(self) -> str:
        text = (f"read {self.read}: admitted {self.admitted}, rejected {self.rejected} "
                f"({self.malformed} malformed, {self.duplicates} duplicate) in "
                f"{self.batches} batch(es)")
        if self.stopped_by:
            text += f"; stopped by {self.stopped_by}"
        if self.partial_bytes:
            text += f" ({self.partial_bytes} byte(s) of an incomplete last line not decided)"
        return text


class OutputClosed(Exception):
    """The reader of the answers went away."""


@dataclass
class Gate:
    """The passes over one open model and ledger. ``out`` receives the answer lines,
    ``rejected_out`` (optional) the rejected ones with their input line."""

    model: Model
    log: Log
    submitter: SigningKey
    out: IO[str]
    cutoff: float | None = None
    id_field: str = "id"
    input_format: str = "ndjson"
    rejected_out: IO[str] | None = None
    report: GateReport = field(default_factory=GateReport)

    def __post_init__(self) -> None:
        if self.model.cutoff is None:
            raise UsageError(f"the gate needs a binary model (one score, a cutoff); this "
                             f"model's task is {self.model.task!r}")
        if self.cutoff is None:
            self.cutoff = self.model.cutoff
        if not math.isfinite(self.cutoff):
            raise UsageError(f"--cutoff must be a finite number, not {self.cutoff!r}")
        if self.input_format not in INPUT_FORMATS:
            raise UsageError(f"--input-format must be ndjson or csv, not {self.input_format!r}")
        self._negative = self.model.decide([-math.inf], cutoff=self.cutoff)
        self._all_numeric = all(c is None for c in self.model.categorical)
        # The constant parts of a tx record's description (TxDecision.encode, key order)
        self._description_head = json.dumps({"cutoff": self.cutoff}, separators=(",", ":"),
                                            allow_nan=False)[:-1]
        self._description_model = json.dumps(self.model.store_key)
        self._header: list[str] | None = None
        self._header_bytes = b""
        self._positions: list[int] = []
        self._id_position = -1
        self._outcomes: list[TxOutcome] = []  # of the batch being answered

    # -- the loop ----------------------------------------------------------------------------

    def run(self, batcher: MicroBatcher, *, pipelined: bool = True) -> GateReport:
        """Run the passes over every batch ``batcher`` yields; returns the report. Raises
        :class:`LogError` when the ledger cannot be written (nothing of the batches not yet
        durable is answered).

        ``pipelined`` (the default) signs each batch's records in a helper process
        (:class:`chain.pipeline.TxPipeline`) while the next batch is parsed and scored: the
        same records and answers as one batch at a time (``pipelined=False``), 1.3 to 1.5
        times the decisions per second on two cores (docs/PERFORMANCE.md)."""
        if not pipelined:
            return self._run_in_turn(batcher)
        from chain.pipeline import TxPipeline

        report = self.report
        waiting: deque[list[Transaction]] = deque()  # sent to the signer, in order
        current: list[Line] = []  # read, not yet sent
        try:
            with TxPipeline(self.log, self.submitter) as pipeline:
                batcher.ready_fd = pipeline.fileno()
                try:
                    for current in batcher.batches():
                        current = self._without_header(current) if current else current
                        if current:
                            transactions = self._prepared(current)
                            if transactions:
                                if pipeline.in_flight >= pipeline.max_in_flight:
                                    self._finish(pipeline, waiting)
                                pipeline.submit(self._drafts(transactions))
                                waiting.append(transactions)
                            current = []
                        while pipeline.ready():
                            self._finish(pipeline, waiting)
                    while waiting:
                        self._finish(pipeline, waiting)
                except OutputClosed:
                    # Nobody reads the answers: what is in flight is still made durable (as
                    # the batch whose answer failed is), so every decision made is recorded.
                    while waiting:
                        self._outcomes = pipeline.finish()
                        report.unanswered += len(waiting.popleft())
                    raise
                finally:
                    batcher.ready_fd = None
        except LogError as exc:
            lost = len(current) + sum(len(t) for t in waiting)
            report.unanswered += lost
            exc.message = (f"{exc.message} -- the gate stopped: {lost} transaction(s) read "
                           "were not decided or answered; every answer already written is "
                           "durable in the ledger")
            raise
        except OutputClosed:
            report.output_closed = True
        report.partial_bytes = batcher.partial_bytes
        return report

    def _without_header(self, lines: list[Line]) -> list[Line]:
        """The batch's transaction lines: the header line of CSV input is taken first."""
        if self.input_format == "csv" and self._header is None:
            self._read_header(lines[0])
            return lines[1:]
        return lines

    def _prepared(self, lines: list[Line]) -> list[Transaction]:
        """parse -> score -> decide for one batch."""
        transactions = [self.parse(line) for line in lines]
        self.score(transactions)
        for transaction in transactions:
            self.decide(transaction)
        return transactions

    def _finish(self, pipeline: TxPipeline, waiting: deque[list[Transaction]]) -> None:
        """Make the oldest batch in flight durable, then answer it."""
        self._outcomes = pipeline.finish()
        transactions = waiting.popleft()
        try:
            self.answer(transactions)
        except OutputClosed:
            self.report.unanswered += len(transactions)
            raise

    def _run_in_turn(self, batcher: MicroBatcher) -> GateReport:
        report = self.report
        for lines in batcher.batches():
            lines = self._without_header(lines)
            if not lines:
                continue
            try:
                transactions = self.process(lines)
            except LogError as exc:
                report.unanswered += len(lines)
                exc.message = (f"{exc.message} -- the gate stopped: {len(lines)} transaction(s) "
                               "of the last batch were not decided or answered; every answer "
                               "already written is durable in the ledger")
                raise
            try:
                self.answer(transactions)
            except OutputClosed:
                report.output_closed = True
                report.unanswered += len(transactions)
                break
        report.partial_bytes = batcher.partial_bytes
        return report

    def process(self, lines: list[Line]) -> list[Transaction]:
        """parse -> score -> decide -> append for one batch; durable when this returns."""
        transactions = self._prepared(lines)
        self.append(transactions)
        return transactions

    # -- parse -------------------------------------------------------------------------------

    def _read_header(self, line: Line) -> None:
        import csv

        where = f"line {line.number}"
        if line.overlong:
            raise InputError(f"{where}: the CSV header is longer than the line limit")
        try:
            header = next(csv.reader([line.data.decode("utf-8-sig")]))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            raise InputError(f"{where}: not a readable CSV header ({exc})") from None
        header = [name.strip() for name in header]
        positions: dict[str, int] = {}
        for i, name in enumerate(header):
            positions.setdefault(name, i)
        missing = [n for n in (self.id_field, *self.model.input_names) if n not in positions]
        if missing:
            raise InputError(f"{where}: the CSV header lacks column(s) {', '.join(missing)} "
                             f"(the gate needs {self.id_field!r} and "
                             f"{', '.join(self.model.input_names)})")
        self._header = header
        self._header_bytes = line.data
        self._positions = [positions[name] for name in self.model.input_names]
        self._id_position = positions[self.id_field]

    def parse(self, line: Line) -> Transaction:
        """The line as a :class:`Transaction`, malformed with a reason when it must be."""
        if line.overlong:
            return Transaction(line, "", None,
                               reason=f"the line is {line.overlong} bytes, over the line limit")
        canonical = (line.data if self.input_format == "ndjson"
                     else self._header_bytes + b"\n" + line.data)
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Transaction(line, "", canonical, reason=f"not UTF-8 (byte {exc.start})")
        if self.input_format == "ndjson":
            return self._parse_json(line, text, canonical)
        return self._parse_csv(line, text, canonical)

    def _id_of(self, value: Any) -> tuple[str, str | None]:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return "", f"the id field {self.id_field!r} must be a string or an integer"
        tx_id = str(value)
        if not tx_id.strip():
            return "", f"the id field {self.id_field!r} is empty"
        if len(tx_id) > MAX_ID_CHARS:
            return "", f"the id is longer than {MAX_ID_CHARS} characters"
        return tx_id, None

    def _parse_json(self, line: Line, text: str, canonical: bytes) -> Transaction:
        try:
            event = json.loads(text)
        except ValueError as exc:
            message = getattr(exc, "msg", str(exc))
            return Transaction(line, "", canonical, reason=f"not JSON ({message})")
        if not isinstance(event, dict):
            return Transaction(line, "", canonical, reason="not a JSON object")
        if self.id_field not in event:
            return Transaction(line, "", canonical, reason=f"no id field {self.id_field!r}")
        tx_id, problem = self._id_of(event[self.id_field])
        if problem is not None:
            return Transaction(line, "", canonical, reason=problem)
        names = self.model.input_names
        missing = [name for name in names if name not in event]
        if missing:
            return Transaction(line, tx_id, canonical,
                               reason=f"missing field(s): {', '.join(missing)}")
        return self._cells(line, tx_id, canonical, [event[name] for name in names])

    def _parse_csv(self, line: Line, text: str, canonical: bytes) -> Transaction:
        import csv

        assert self._header is not None
        try:
            row = next(csv.reader([text]))
        except (csv.Error, StopIteration) as exc:
            return Transaction(line, "", canonical, reason=f"not a CSV row ({exc})")
        if len(row) != len(self._header):
            return Transaction(line, "", canonical, reason=f"{len(row)} fields, the header has "
                                                           f"{len(self._header)}")
        tx_id, problem = self._id_of(row[self._id_position])
        if problem is not None:
            return Transaction(line, "", canonical, reason=problem)
        return self._cells(line, tx_id, canonical, [row[p] for p in self._positions])

    def _cells(self, line: Line, tx_id: str, canonical: bytes, values: list[Any]
               ) -> Transaction:
        if self._all_numeric:
            # The common case in one step: numbers (bool is an int) and nulls, as float32 the
            # way cell_value() and the batch's float32 buffer would make them. Anything else
            # (text, an integer beyond float64) goes cell by cell below.
            try:
                return Transaction(line, tx_id, canonical, cells=array(
                    "f", [_NAN if v is None else v for v in values]))
            except (TypeError, OverflowError):
                pass
        cells: list[float] = []
        cell = self.model.cell
        for c, (name, value) in enumerate(zip(self.model.input_names, values)):
            try:
                cells.append(cell(c, value))
            except CategoryError as exc:
                return Transaction(line, tx_id, canonical, reason=f"field {name!r}: {exc}")
            except (TypeError, ValueError):
                return Transaction(line, tx_id, canonical,
                                   reason=f"field {name!r}: {value!r} is not a number")
        return Transaction(line, tx_id, canonical, cells=array("f", cells))

    # -- score and decide --------------------------------------------------------------------

    def score(self, transactions: list[Transaction]) -> None:
        """Score every well-formed transaction of the batch in one call to the C core."""
        ready = [t for t in transactions if t.cells is not None]
        if not ready:
            return
        flat: array[float] = array("f")
        for transaction in ready:
            flat.extend(transaction.cells)  # type: ignore[arg-type]
        refused = list(self.model.invalid_rows(flat))
        if refused:
            for row, reason in refused:
                ready[row].reason = reason
                ready[row].cells = None
            ready = [t for t in ready if t.cells is not None]
            if not ready:
                return
            flat = array("f")
            for transaction in ready:
                flat.extend(transaction.cells)  # type: ignore[arg-type]
        n_out = len(self.model.output_names)
        out: array[float] = array("d", bytes(8 * n_out * len(ready)))
        self.model.score_into(flat, out)
        for transaction, score in zip(ready, out[::n_out]):
            transaction.score = score

    def decide(self, transaction: Transaction) -> None:
        """The decision and the record's reason, by :meth:`Model.decide` at the cutoff."""
        if transaction.reason is not None:
            transaction.decision = REJECTED
            transaction.rejection = f"malformed: {transaction.reason}"
            return
        score = transaction.score
        assert score is not None
        if score != score:
            transaction.decision = REJECTED
            transaction.rejection = "the score is NaN"
        elif self.model.decide([score], cutoff=self.cutoff) == self._negative:
            transaction.decision = ADMITTED
        else:
            transaction.decision = REJECTED
            transaction.rejection = f"score {score!r} > cutoff {self.cutoff!r}"

    # -- append and answer -------------------------------------------------------------------

    def append(self, transactions: list[Transaction]) -> None:
        """One ``tx`` record per new transaction, in one durable commit."""
        self._outcomes = self.log.append_tx_batch(self._drafts(transactions), self.submitter)

    def _drafts(self, transactions: list[Transaction]) -> list[TxDraft]:
        from chain.log import TxDraft

        drafts: list[TxDraft] = []
        for transaction in transactions:
            score = transaction.score if transaction.reason is None else None
            drafts.append(TxDraft(transaction.tx_id, transaction.subject,
                                  self._description(transaction.decision, score),
                                  transaction.rejection[:1024]))
        return drafts

    def _description(self, decision: str, score: float | None) -> str:
        """``TxDecision(decision, score, cutoff, model).encode()``, from its constant parts."""
        if score is None or score != score:
            score_text = "null"
        elif score - score == 0:  # finite: the shortest text reading back as the same float
            score_text = float.__repr__(score)
        else:  # infinite: TxDecision refuses it, as JSON has no infinity
            assert self.cutoff is not None
            return TxDecision(decision, score, self.cutoff, self.model.store_key).encode()
        return (f'{self._description_head},"decision":"{decision}",'
                f'"model":{self._description_model},"score":{score_text}}}')

    def answer(self, transactions: list[Transaction]) -> None:
        """Write the batch's answer lines (and rejected lines), flushed."""
        report = self.report
        lines: list[str] = []
        rejected_lines: list[str] = []
        for transaction, outcome in zip(transactions, self._outcomes):
            record = outcome.record
            score = transaction.score
            if (record is not None and transaction.decision == ADMITTED and transaction.tx_id
                    and score is not None and score - score == 0):
                # The common answer, as json.dumps(answer, ensure_ascii=False) spells it
                report.last_index = record.index
                report.read += 1
                report.admitted += 1
                lines.append(f'{{"id": {_json_text(transaction.tx_id)}, "line": '
                             f'{transaction.line.number}, "decision": "admitted", "index": '
                             f'{record.index}, "score": {float.__repr__(score)}}}\n')
                continue
            answer: dict[str, Any] = {"id": transaction.tx_id or None,
                                      "line": transaction.line.number}
            if outcome.record is not None:
                answer["decision"] = transaction.decision
                answer["index"] = outcome.record.index
                report.last_index = outcome.record.index
                if transaction.rejection:
                    answer["reason"] = transaction.rejection
                if transaction.reason is not None:
                    report.malformed += 1
            else:
                report.duplicates += 1
                answer["decision"] = REJECTED
                answer["index"] = outcome.duplicate_of
                answer["duplicate"] = True
                what = (f"transaction id {transaction.tx_id!r}" if transaction.tx_id
                        else "this line")
                answer["reason"] = (f"duplicate: {what} was already decided at ledger index "
                                    f"{outcome.duplicate_of}")
            score = transaction.score
            answer["score"] = None if score is None or score != score else score
            report.read += 1
            if answer["decision"] == ADMITTED:
                report.admitted += 1
            else:
                report.rejected += 1
            text = json.dumps(answer, ensure_ascii=False, allow_nan=False)
            lines.append(text + "\n")
            if answer["decision"] == REJECTED and self.rejected_out is not None:
                answer["transaction"] = (None if transaction.canonical is None else
                                         transaction.line.data.decode("utf-8", "replace"))
                rejected_lines.append(json.dumps(answer, ensure_ascii=False) + "\n")
        report.batches += 1
        if self.rejected_out is not None and rejected_lines:
            self.rejected_out.write("".join(rejected_lines))
            self.rejected_out.flush()
        try:
            self.out.write("".join(lines))
            self.out.flush()
        except BrokenPipeError:
            raise OutputClosed() from None
        except OSError as exc:
            if exc.errno in (32, 9):  # EPIPE, EBADF: nobody reads the answers any more
                raise OutputClosed() from None
            raise


# -- proofs of one decision (device side: no SQLite) ----------------------------------------


@dataclass(frozen=True)
class TxProof:
    """A verified proof that the ledger decided transaction ``tx_id`` at ``index``."""

    tx_id: str
    index: int
    subject: str
    decision: TxDecision
    reason: str
    tree_size: int
    origin: str

    def summary(self) -> str:
        score = "no score" if self.decision.score is None else f"score {self.decision.score!r}"
        return (f"transaction {self.tx_id!r} was {self.decision.decision} at ledger index "
                f"{self.index} of {self.origin} (tree size {self.tree_size}) by model "
                f"{self.decision.model}, {score}, cutoff {self.decision.cutoff!r}"
                + (f": {self.reason}" if self.reason else ""))


def verify_tx_bundle(bundle_bytes: bytes, trusted_log_public_key: bytes, *,
                     tx_id: str | None = None, store_key: str | None = None,
                     transaction: bytes | None = None) -> TxProof:
    """Check offline that a proof bundle shows a ``tx`` record in a checkpoint signed by the
    trusted log key; with ``tx_id``, ``store_key`` or ``transaction`` (the canonical bytes),
    also that the record is for that id, was decided by that model, is over those bytes.
    Raises :class:`chain.errors.ProofError` (a ``LogError``) naming what differs."""
    from chain import checkpoint as checkpoints
    from chain import merkle
    from chain.errors import ProofError
    from chain.proof import ProofBundle
    from chain.records import KIND_TX, Record, RecordError

    bundle = ProofBundle.from_bytes(bundle_bytes)
    tree = checkpoints.verify(bundle.checkpoint, trusted_log_public_key).checkpoint
    entry = bundle.record
    try:
        record = Record.decode(entry.leaf)
    except RecordError as exc:
        raise ProofError(f"proof bundle: the record is not a valid log record: {exc}") from None
    if record.kind != KIND_TX:
        raise ProofError(f"proof bundle's record is a {record.kind!r} record, not a tx decision",
                         expected=KIND_TX, computed=record.kind)
    if record.index != entry.index:
        raise ProofError(f"proof bundle claims index {entry.index} but the record says "
                         f"{record.index}", expected=record.index, computed=entry.index)
    if not record.signature_valid():
        raise ProofError(f"proof bundle: record {record.index} has an invalid signature")
    if entry.index >= tree.size:
        raise ProofError(f"proof bundle: index {entry.index} is outside the checkpoint's tree "
                         f"of size {tree.size}", expected=f"< {tree.size}", computed=entry.index)
    merkle.verify_inclusion(entry.index, tree.size, merkle.leaf_hash(entry.leaf),
                            entry.inclusion_proof, tree.root_hash)
    decision = TxDecision.parse(record.description)
    if tx_id is not None and record.name != tx_id:
        raise ProofError(f"proof bundle is for transaction id {record.name!r}, not {tx_id!r}",
                         expected=tx_id, computed=record.name)
    if store_key is not None and decision.model != store_key:
        raise ProofError(f"transaction {record.name!r} was decided by model {decision.model}, "
                         f"not {store_key}", expected=store_key, computed=decision.model)
    if transaction is not None:
        digest = "sha256:" + hashlib.sha256(transaction).hexdigest()
        if digest != record.subject:
            raise ProofError(f"the transaction's bytes hash to {digest}, the record holds "
                             f"{record.subject}", expected=record.subject, computed=digest)
    return TxProof(record.name, record.index, record.subject, decision, record.reason,
                   tree.size, tree.origin)
