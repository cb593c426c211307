"""Signed score receipts: which model produced which outputs from which input, provable later.

A receipt binds a scoring run -- the model's store key, the SHA-256 of the canonical input,
the SHA-256 of the outputs, the row count, the column map, the cutoff, the scorer version and
the time -- and a Merkle tree over the per-row (input, output) pairs, so that one row's
decision can be proven without revealing the others. ``pyastore score ... --receipt LOG``
appends it to a log as a ``receipt`` record (signed by the submitter, anchored in the log's
tree) and writes the proof bundle of that record as the receipt file. ``pyastore receipt
verify`` re-scores the input with the model and compares every digest (scoring is
deterministic, bit for bit, on every platform). Encodings: docs/GATE.md (Score receipts).

Passes: read rows (the readers of :mod:`pyastore.batch`, every row must be scoreable) ->
canonical float32 input rows -> :meth:`Model.score_into` -> canonical float64 output rows ->
hashes (input digest, output digest, row leaves into an RFC 9162 tree).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from dataclasses import dataclass

from pyastore.errors import InputError, LogError, UsageError
from pyastore.model import Model

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

RECEIPT_FORMAT = "pyastore-receipt-v1"
ROW_PROOF_FORMAT = "pyastore-receipt-row-v1"
NAN32 = struct.pack("<I", 0x7FC00000)
NAN64 = struct.pack("<Q", 0x7FF8000000000000)
CHUNK_ROWS = 4096


def canonical_inputs(values: array[float]) -> bytes:
    """float32 little-endian, every NaN written as ``0x7fc00000``."""
    raw = bytearray(struct.pack(f"<{len(values)}f", *values))
    for i, value in enumerate(values):
        if value != value:
            raw[4 * i:4 * i + 4] = NAN32
    return bytes(raw)


def canonical_outputs(values: array[float] | list[float]) -> bytes:
    """float64 little-endian, every NaN written as ``0x7ff8000000000000``."""
    raw = bytearray(struct.pack(f"<{len(values)}d", *values))
    for i, value in enumerate(values):
        if value != value:
            raw[8 * i:8 * i + 8] = NAN64
    return bytes(raw)


def row_leaf(index: int, input_row: bytes, output_row: bytes) -> bytes:
    """The Merkle leaf of one row: u64 LE row index (from 0), its input, its outputs."""
    return struct.pack("<Q", index) + input_row + output_row


@dataclass(frozen=True)
class Receipt:
    """The signed statement about one scoring run; ``encode`` gives its canonical JSON.

    Round-trip law: ``Receipt.parse(r.encode()) == r``.
    """

    model: str
    input_sha256: str
    output_sha256: str
    rows_root: str
    rows: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    cutoff: float | None
    scorer: str
    time: str

    def encode(self) -> str:
        value = {"format": RECEIPT_FORMAT, "model": self.model,
                 "input_sha256": self.input_sha256, "output_sha256": self.output_sha256,
                 "rows_root": self.rows_root, "rows": self.rows,
                 "columns": {"inputs": list(self.inputs), "outputs": list(self.outputs)},
                 "cutoff": self.cutoff, "scorer": self.scorer, "time": self.time}
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)

    @property
    def digest(self) -> str:
        """``sha256:`` + SHA-256 of the canonical JSON: the log record's subject."""
        return "sha256:" + hashlib.sha256(self.encode().encode("utf-8")).hexdigest()

    @classmethod
    def parse(cls, text: str) -> Receipt:
        try:
            value = json.loads(text)
            if value.get("format") != RECEIPT_FORMAT:
                raise ValueError(value.get("format"))
            columns = value["columns"]
            cutoff = value["cutoff"]
            receipt = cls(value["model"], value["input_sha256"], value["output_sha256"],
                          value["rows_root"], int(value["rows"]),
                          tuple(columns["inputs"]), tuple(columns["outputs"]),
                          None if cutoff is None else float(cutoff), value["scorer"],
                          value["time"])
        except (ValueError, TypeError, KeyError, AttributeError):
            raise LogError(f"not a {RECEIPT_FORMAT} receipt: {text[:80]!r}") from None
        if receipt.encode() != text:
            raise LogError("the receipt is not in its canonical form")
        return receipt


@dataclass(frozen=True)
class Scored:
    """What one pass over the input computes (the receipt's digests, the row leaf hashes)."""

    rows: int
    input_sha256: str
    output_sha256: str
    rows_root: str
    leaf_hashes: list[bytes] | None
    outputs: list[list[float]] | None
    captured: tuple[bytes, bytes] | None = None  # the canonical input and output of one row


def _chunks(model: Model, input_path: str, input_format: str | None
            ) -> Iterator[list[list[Any]]]:
    """The input's rows (cells in model input order), in chunks; a bad row is an error."""
    from pyastore import batch
    from pyastore.files import open_text

    if input_path == "-":
        raise UsageError("a receipt needs the input as a file (it is read again to check it)")
    input_format, _ = batch.resolve_formats(input_path, input_path + ".out", input_format,
                                            "csv")
    scorer = batch.BatchScorer(model)
    if input_format == "parquet":
        chunks = batch.read_parquet(input_path, scorer, CHUNK_ROWS, input_path)
        n_inputs = len(model.input_names)
        for chunk in chunks:
            if isinstance(chunk, batch.ParsedChunk):  # numeric columns, already float32
                yield chunk.flat.reshape(-1, n_inputs).tolist() if n_inputs else []
            else:
                yield [_cells(row) for row in chunk]
        return
    with open_text(input_path) as handle:
        readers = (batch.read_ndjson(handle, scorer, input_path) if input_format == "ndjson"
                   else batch.read_csv(handle, scorer, CHUNK_ROWS, input_path))
        pending: list[list[Any]] = []
        for chunk in readers:
            pending.extend(_cells(row) for row in chunk)
            if len(pending) >= CHUNK_ROWS:
                yield pending
                pending = []
        if pending:
            yield pending


def _cells(row: tuple[int, Any, Any, Any]) -> list[Any]:
    number, cells, _, error = row
    if error is not None or cells is None:
        raise InputError(error or f"row {number}: unreadable", row=number - 1)
    return list(cells)


def score_for_receipt(model: Model, input_path: str, input_format: str | None = None, *,
                      keep_leaves: bool = False, keep_outputs: bool = False,
                      capture_row: int | None = None) -> Scored:
    """Read and score the whole input, hashing as it goes (constant memory unless the row
    leaves or outputs are kept, for a row proof or a comparison; ``capture_row`` keeps the
    canonical bytes of that row, from 0)."""
    from chain import merkle

    inputs_hash, outputs_hash = hashlib.sha256(), hashlib.sha256()
    tree = merkle.RootAccumulator()
    leaves: list[bytes] | None = [] if keep_leaves else None
    kept: list[list[float]] | None = [] if keep_outputs else None
    n_in, n_out = len(model.input_names), len(model.output_names)
    count = 0
    captured: tuple[bytes, bytes] | None = None
    for chunk in _chunks(model, input_path, input_format):
        flat = model.rows_to_buffer(chunk)
        out: array[float] = array("d", bytes(8 * n_out * len(chunk)))
        model.score_into(flat, out)
        for i in range(len(chunk)):
            row_in = canonical_inputs(flat[i * n_in:(i + 1) * n_in])
            row_out = canonical_outputs(out[i * n_out:(i + 1) * n_out])
            inputs_hash.update(row_in)
            outputs_hash.update(row_out)
            leaf = merkle.leaf_hash(row_leaf(count, row_in, row_out))
            tree.push(leaf)
            if leaves is not None:
                leaves.append(leaf)
            if kept is not None:
                kept.append(out[i * n_out:(i + 1) * n_out].tolist())
            if count == capture_row:
                captured = (row_in, row_out)
            count += 1
    return Scored(count, inputs_hash.hexdigest(), outputs_hash.hexdigest(), tree.root().hex(),
                  leaves, kept, captured)


def make_receipt(model: Model, scored: Scored, *, cutoff: float | None, time: str) -> Receipt:
    from pyastore import __version__

    if cutoff is not None and not math.isfinite(cutoff):
        raise UsageError("the cutoff must be a finite number")
    return Receipt(model.store_key, scored.input_sha256, scored.output_sha256, scored.rows_root,
                   scored.rows, tuple(model.input_names), tuple(model.output_names),
                   model.cutoff if cutoff is None else cutoff, f"pyastore {__version__}", time)


# -- the log side ------------------------------------------------------------------------------


def append_receipt(log_path: str, receipt: Receipt, key_path: str | None) -> bytes:
    """Append ``receipt`` to the log as a ``receipt`` record; the proof bundle's bytes."""
    from chain.log import Log
    from chain.records import KIND_RECEIPT
    from pyastore import keys

    with Log.open(log_path) as log:
        submitter = keys.SigningKey.load(key_path) if key_path else log.signing_key()
        record = log.append_record(KIND_RECEIPT, receipt.digest, submitter,
                                   name=f"{receipt.rows} row(s)",
                                   description=receipt.encode(), time=receipt.time)
        return log.prove_index(record.index).to_bytes()


@dataclass(frozen=True)
class ReceiptEvidence:
    """A receipt whose bundle verified: the receipt, its record index, the submitter."""

    receipt: Receipt
    index: int
    submitter: str
    tree_size: int | None


def read_receipt(bundle_bytes: bytes, log_public_key: bytes | None) -> ReceiptEvidence:
    """The receipt in a proof bundle, with the record's signature checked and, when the log
    key is given, the checkpoint's signature and the record's inclusion proof."""
    from chain import checkpoint as checkpoints
    from chain import merkle
    from chain.errors import ProofError
    from chain.proof import ProofBundle
    from chain.records import KIND_RECEIPT, Record, RecordError

    bundle = ProofBundle.from_bytes(bundle_bytes)
    try:
        record = Record.decode(bundle.record.leaf)
    except RecordError as exc:
        raise ProofError(f"receipt: not a valid log record: {exc}") from None
    if record.kind != KIND_RECEIPT:
        raise ProofError(f"receipt: the record is a {record.kind!r} record, not a receipt")
    if not record.signature_valid():
        raise ProofError(f"receipt: the record's signature by {record.submitter} is invalid")
    receipt = Receipt.parse(record.description)
    if receipt.digest != record.subject:
        raise ProofError("receipt: the record's subject is not the receipt's digest",
                         expected=record.subject, computed=receipt.digest)
    size = None
    if log_public_key is not None:
        tree = checkpoints.verify(bundle.checkpoint, log_public_key).checkpoint
        if bundle.record.index != record.index or record.index >= tree.size:
            raise ProofError("receipt: the record's index is not in the checkpoint's tree")
        merkle.verify_inclusion(record.index, tree.size, merkle.leaf_hash(bundle.record.leaf),
                                bundle.record.inclusion_proof, tree.root_hash)
        size = tree.size
    return ReceiptEvidence(receipt, record.index, record.submitter, size)


def check_model(receipt: Receipt, model: Model) -> None:
    """The model first: re-scoring with another model would only report other digests."""
    if receipt.model != model.store_key:
        raise LogError(f"receipt does not match: model differs: the receipt says "
                       f"{receipt.model}, this container is {model.store_key}")


def check(receipt: Receipt, model: Model, scored: Scored) -> None:
    """Raise :class:`LogError` naming the first thing that differs from the receipt."""
    differences = [
        ("model", receipt.model, model.store_key),
        ("row count", receipt.rows, scored.rows),
        ("input columns", list(receipt.inputs), list(model.input_names)),
        ("input (SHA-256 of the canonical rows)", receipt.input_sha256, scored.input_sha256),
        ("outputs (SHA-256)", receipt.output_sha256, scored.output_sha256),
        ("row tree root", receipt.rows_root, scored.rows_root),
    ]
    for what, expected, computed in differences:
        if expected != computed:
            raise LogError(f"receipt does not match: {what} differs: the receipt says "
                           f"{expected}, recomputed {computed}")


def check_scores(model: Model, scored: Scored, scores_path: str) -> None:
    """Compare a scores file (``pyastore score`` output, CSV or NDJSON) with the recomputed
    outputs, naming the first row that differs."""
    from pyastore.files import open_text
    from pyastore.model import cell_value

    assert scored.outputs is not None
    names = model.output_names
    with open_text(scores_path) as handle:
        if scores_path.lower().endswith((".ndjson", ".jsonl", ".json")):
            rows: Iterator[dict[str, Any]] = (json.loads(line) for line in handle if line.strip())
        else:
            import csv

            rows = csv.DictReader(handle)
        count = 0
        for number, (row, expected) in enumerate(zip(rows, scored.outputs), start=1):
            count += 1
            try:
                claimed = [cell_value(row[name]) for name in names]
            except (KeyError, TypeError, ValueError):
                raise LogError(f"{scores_path}: row {number} lacks a readable output "
                               f"({', '.join(names)})") from None
            if canonical_outputs(claimed) != canonical_outputs(expected):
                raise LogError(f"{scores_path}: row {number}: outputs {claimed} differ from the "
                               f"model's {expected}")
        remaining = sum(1 for _ in rows)
    if count != scored.rows or remaining:
        raise LogError(f"{scores_path}: {count + remaining} row(s), the input has "
                       f"{scored.rows}")


# -- one row ---------------------------------------------------------------------------------


def prove_row(receipt_bytes: bytes, scored: Scored, row: int) -> bytes:
    """A row proof: the receipt bundle, the row's index, canonical input and output, and its
    audit path in the receipt's row tree (JSON bytes). ``scored`` must hold the leaf hashes
    and the captured row (``score_for_receipt(keep_leaves=True, capture_row=row)``)."""
    import base64

    from chain import merkle

    if not 0 <= row < scored.rows:
        raise UsageError(f"row {row + 1} is not in the input (1..{scored.rows})")
    assert scored.leaf_hashes is not None and scored.captured is not None
    tree = merkle.MemoryTree(scored.leaf_hashes)
    path = merkle.inclusion_proof(tree, row, scored.rows)
    row_in, row_out = scored.captured
    value = {"format": ROW_PROOF_FORMAT, "row": row,
             "input": base64.b64encode(row_in).decode(),
             "output": base64.b64encode(row_out).decode(),
             "inclusion_proof": [h.hex() for h in path],
             "receipt": base64.b64encode(receipt_bytes).decode()}
    return (json.dumps(value, indent=1) + "\n").encode()


@dataclass(frozen=True)
class RowEvidence:
    evidence: ReceiptEvidence
    row: int
    inputs: tuple[float, ...]
    outputs: tuple[float, ...]


def verify_row(proof_bytes: bytes, log_public_key: bytes | None) -> RowEvidence:
    """Check a row proof against the receipt it carries (see :func:`read_receipt`)."""
    import base64

    from chain import merkle
    from chain.errors import ProofError

    try:
        value = json.loads(proof_bytes)
        if value.get("format") != ROW_PROOF_FORMAT:
            raise ValueError(value.get("format"))
        row = int(value["row"])
        row_in = base64.b64decode(value["input"], validate=True)
        row_out = base64.b64decode(value["output"], validate=True)
        path = [bytes.fromhex(h) for h in value["inclusion_proof"]]
        bundle = base64.b64decode(value["receipt"], validate=True)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ProofError(f"not a {ROW_PROOF_FORMAT} row proof") from None
    evidence = read_receipt(bundle, log_public_key)
    receipt = evidence.receipt
    if len(row_in) != 4 * len(receipt.inputs) or len(row_out) != 8 * len(receipt.outputs):
        raise ProofError("row proof: the row's values do not fit the receipt's columns")
    if not 0 <= row < receipt.rows:
        raise ProofError(f"row proof: row {row + 1} is outside the receipt's {receipt.rows}")
    leaf = merkle.leaf_hash(row_leaf(row, row_in, row_out))
    merkle.verify_inclusion(row, receipt.rows, leaf, path, bytes.fromhex(receipt.rows_root))
    inputs = struct.unpack(f"<{len(receipt.inputs)}f", row_in)
    outputs = struct.unpack(f"<{len(receipt.outputs)}d", row_out)
    return RowEvidence(evidence, row, inputs, outputs)
