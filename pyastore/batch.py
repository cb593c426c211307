"""Streaming batch scoring for ``pyastore score``: CSV, NDJSON and Parquet in and out.

Inputs are read in chunks of ``chunk_rows`` rows, scored, and written before the next chunk is
read, so memory stays bounded whatever the input size. NDJSON is scored line by line and each
output line is flushed at once (for pipes and streams). Columns are matched to the model's
inputs **by name** (any order; extra columns are ignored unless kept with ``keep``).

Bad cells: an empty cell, ``nan``/``NaN``/``NA``/``null`` mean missing (NaN); anything else
that is not a number is an ``InputError`` naming the row (1-based data row) and the column,
unless ``on_error`` is ``skip`` (the row is left out of the output) or ``null`` (its outputs are
left empty); either way every such row is reported, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from array import array
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from pyastore.errors import InputError, UsageError

MISSING_TOKENS = {"", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"}
FORMATS = ("csv", "ndjson", "parquet")


@dataclass
class ScoreReport:
    """What a batch run did: rows read, written, and the rows that had bad cells."""

    rows_in: int = 0
    rows_out: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)


def guess_format(path: str | None) -> str:
    if path is None or path == "-":
        return "csv"
    lower = path.lower()
    if lower.endswith((".ndjson", ".jsonl", ".json")):
        return "ndjson"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def _parse_cell(text: str) -> float:
    text = text.strip()
    if text in MISSING_TOKENS:
        return math.nan
    return float(text)  # raises ValueError for non-numbers; accepts inf, 1e3, -0.5


def _cell_value(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _parse_cell(value)
    raise ValueError(value)


def _format_value(value: float) -> str:
    if value != value:
        return ""
    return repr(float(value))


class _Progress:
    """A one-line progress indicator on stderr, for files, when stderr is a terminal."""

    def __init__(self, handle: IO[Any] | None, total_bytes: int | None):
        self.enabled = bool(total_bytes and total_bytes > 8 << 20 and sys.stderr.isatty())
        self.handle = handle
        self.total = total_bytes or 0
        self.last = -1

    def update(self, rows: int) -> None:
        if not self.enabled:
            return
        try:
            done = self.handle.buffer.tell() if hasattr(self.handle, "buffer") else self.handle.tell()
        except (OSError, ValueError, AttributeError):
            return
        percent = int(100 * done / self.total)
        if percent != self.last:
            self.last = percent
            sys.stderr.write(f"\rpyastore: scoring {percent:3d}% ({rows} rows)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            sys.stderr.write("\n")


class BatchScorer:
    """Scores rows of named columns with a ``Model``; knows the output columns."""

    def __init__(self, model, *, keep: list[str] | None = None, on_error: str = "fail",
                 n_threads: int = 1, with_label: bool = False):
        if on_error not in ("fail", "skip", "null"):
            raise UsageError(f"--on-error must be fail, skip or null, not {on_error!r}")
        self.model = model
        self.keep = list(keep or [])
        self.on_error = on_error
        self.n_threads = n_threads
        self.with_label = with_label
        self.report = ScoreReport()
        labels = model.meta["score_rules"].get("class_labels") or []
        self.task = model.meta["score_rules"]["task"]
        self.labels = labels
        self.cutoff = model.meta["score_rules"].get("cutoff", 0.5)
        if with_label and self.task not in ("binary", "multiclass", "regression"):
            raise UsageError(f"--label: a {self.task} model has no labels to decide")
        self.output_columns = self.keep + list(model.output_names) + (["label"] if with_label else [])

    def check_columns(self, columns: list[str], where: str) -> list[int]:
        """Indices of the model inputs in ``columns``; errors name what is missing."""
        positions = {}
        for i, name in enumerate(columns):
            positions.setdefault(name, i)
        missing = [name for name in self.model.input_names if name not in positions]
        if missing:
            raise InputError(f"{where}: input column(s) missing: {', '.join(missing)} "
                             f"(the model needs {', '.join(self.model.input_names)})")
        absent_keep = [name for name in self.keep if name not in positions]
        if absent_keep:
            raise InputError(f"{where}: --keep column(s) not in the input: {', '.join(absent_keep)}")
        return [positions[name] for name in self.model.input_names]

    def _label(self, outputs: list[float]) -> Any:
        if self.task == "regression":
            return outputs[0]
        if self.task == "binary":
            negative, positive = (self.labels + [0, 1])[:2] if len(self.labels) < 2 else self.labels[:2]
            return positive if outputs[0] >= self.cutoff else negative
        best = max(range(len(outputs)), key=outputs.__getitem__)
        return self.labels[best] if self.labels else best

    def score_chunk(self, rows: list[tuple[int, list[Any] | None, list[Any], str | None]]
                    ) -> list[tuple[list[Any], list[float] | None]]:
        """``rows``: (row number, input cells in model order, kept cells, reader error). A
        reader error (bad line, wrong field count) marks a bad row whose cells are None.
        Returns (kept cells, outputs or None for a bad row kept with on_error=null)."""
        flat = array("f")
        good: list[int] = []
        results: list[tuple[list[Any], list[float] | None]] = []
        reject_missing = self.model._reject_missing
        for row_number, cells, kept, reader_error in rows:
            self.report.rows_in += 1
            try:
                if reader_error is not None:
                    raise InputError(reader_error)
                values = []
                for c, cell in enumerate(cells):
                    try:
                        value = _cell_value(cell)
                    except (TypeError, ValueError):
                        raise InputError(f"row {row_number}, column {self.model.input_names[c]!r}: "
                                         f"{cell!r} is not a number") from None
                    if value != value and reject_missing[c]:
                        raise InputError(f"row {row_number}, column {self.model.input_names[c]!r}: "
                                         "missing value, and this input does not accept missing values")
                    values.append(value)
            except InputError as exc:
                if self.on_error == "fail":
                    raise
                self.report.bad_rows.append((row_number, exc.message))
                if self.on_error == "null":
                    results.append((kept, None))
                continue
            flat.extend(values)
            good.append(len(results))
            results.append((kept, []))
        if good:
            n_out = len(self.model.output_names)
            out = array("d", bytes(8 * n_out * len(good)))
            self.model._core.score_into(flat, out, self.n_threads)
            for i, slot in enumerate(good):
                results[slot] = (results[slot][0], out[i * n_out:(i + 1) * n_out].tolist())
        return results

    def output_row(self, kept: list[Any], outputs: list[float] | None) -> list[Any]:
        if outputs is None:
            return kept + [None] * (len(self.output_columns) - len(kept))
        row = kept + outputs
        if self.with_label:
            row.append(self._label(outputs))
        return row


# ---- readers: yield lists of (row number, input cells, kept cells) ----------------------


def read_csv(handle: IO[str], scorer: BatchScorer, chunk_rows: int, where: str) -> Iterator[list]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{where}: the input is empty (no header line)") from None
    except csv.Error as exc:
        raise InputError(f"{where}: line 1: {exc}") from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = [name.strip() for name in header]
    positions = scorer.check_columns(header, where)
    keep_positions = [header.index(name) for name in scorer.keep]
    width = len(header)
    chunk = []
    row_number = 0
    try:
        for record in reader:
            row_number += 1
            if not record:
                continue
            if len(record) != width:
                message = f"{where}: row {row_number}: {len(record)} fields, the header has {width}"
                if scorer.on_error == "fail":
                    raise InputError(message)
                kept = [record[p] if p < len(record) else "" for p in keep_positions]
                chunk.append((row_number, None, kept, message))
            else:
                chunk.append((row_number, [record[p] for p in positions],
                              [record[p] for p in keep_positions], None))
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
    except csv.Error as exc:
        raise InputError(f"{where}: row {row_number + 1}: {exc}") from None
    if chunk:
        yield chunk


def read_ndjson(handle: IO[str], scorer: BatchScorer, where: str) -> Iterator[list]:
    """One chunk per line, so each output line can be flushed as soon as its input arrives."""
    for row_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        event = None
        try:
            event = json.loads(line)
            message = None if isinstance(event, dict) else (
                f"{where}: line {row_number}: expected a JSON object")
        except json.JSONDecodeError as exc:
            message = f"{where}: line {row_number}: not JSON ({exc.msg})"
        if message is None:
            missing = [name for name in list(scorer.model.input_names) + scorer.keep if name not in event]
            if missing:
                message = f"{where}: line {row_number}: missing field(s): {', '.join(missing)}"
        if message is not None:
            if scorer.on_error == "fail":
                raise InputError(message)
            kept = [event.get(name) if isinstance(event, dict) else None for name in scorer.keep]
            yield [(row_number, None, kept, message)]
            continue
        yield [(row_number, [event[name] for name in scorer.model.input_names],
                [event[name] for name in scorer.keep], None)]


def read_parquet(path: str, scorer: BatchScorer, chunk_rows: int, where: str) -> Iterator[list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("Parquet needs pyarrow: pip install pyarrow") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{where}: not a readable Parquet file ({exc})") from None
    columns = list(parquet.schema_arrow.names)
    scorer.check_columns(columns, where)
    wanted = list(dict.fromkeys(list(scorer.model.input_names) + scorer.keep))
    row_number = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
        data = batch.to_pydict()
        n = batch.num_rows
        chunk = []
        for i in range(n):
            row_number += 1
            chunk.append((row_number, [data[name][i] for name in scorer.model.input_names],
                          [data[name][i] for name in scorer.keep], None))
        yield chunk


# ---- writers -------------------------------------------------------------------------------


class CsvWriter:
    def __init__(self, handle: IO[str], columns: list[str]):
        self.handle = handle
        self.writer = csv.writer(handle, lineterminator="\n")
        self.writer.writerow(columns)

    def write(self, rows: list[list[Any]], flush: bool = False) -> None:
        self.writer.writerows(
            [[_format_value(v) if isinstance(v, float) else ("" if v is None else v) for v in row]
             for row in rows])
        if flush:
            self.handle.flush()

    def close(self) -> None:
        self.handle.flush()


class NdjsonWriter:
    def __init__(self, handle: IO[str], columns: list[str]):
        self.handle = handle
        self.columns = columns

    def write(self, rows: list[list[Any]], flush: bool = False) -> None:
        for row in rows:
            record = {c: (None if isinstance(v, float) and v != v else v) for c, v in zip(self.columns, row)}
            self.handle.write(json.dumps(record, allow_nan=True) + "\n")
        if flush:
            self.handle.flush()

    def close(self) -> None:
        self.handle.flush()


class ParquetWriter:
    def __init__(self, path: str, columns: list[str]):
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UsageError("Parquet needs pyarrow: pip install pyarrow") from None
        self.path = path
        self.columns = columns
        self.writer = None

    def write(self, rows: list[list[Any]], flush: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [row[i] for row in rows] for i, c in enumerate(self.columns)})
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.writer.schema) if table.schema != self.writer.schema else table)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            schema = pa.schema([(c, pa.float64()) for c in self.columns])
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.close()


def run(model, input_path: str, output_path: str, *, input_format: str | None = None,
        output_format: str | None = None, keep: list[str] | None = None, on_error: str = "fail",
        n_threads: int = 1, chunk_rows: int = 65536, with_label: bool = False,
        stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> ScoreReport:
    """Score ``input_path`` (``-`` for stdin) into ``output_path`` (``-`` for stdout).

    A file output is written to a temporary file and renamed when everything succeeded: on a
    fatal error no partial file is left behind. On stdout, rows already written stay written;
    the caller reports how many.
    """
    input_format = input_format or guess_format(input_path)
    if output_format is None:
        if output_path == "-":
            output_format = "csv" if input_format == "parquet" else input_format
        else:
            output_format = guess_format(output_path)
    for name, value in (("input", input_format), ("output", output_format)):
        if value not in FORMATS:
            raise UsageError(f"unknown {name} format {value!r}; choose from {', '.join(FORMATS)}")
    if output_format == "parquet" and output_path == "-":
        raise UsageError("Parquet output needs a file (-o FILE.parquet), not stdout")
    if input_format == "parquet" and input_path == "-":
        raise UsageError("Parquet input needs a file, not stdin")
    if chunk_rows < 1:
        raise UsageError("--chunk-rows must be at least 1")
    scorer = BatchScorer(model, keep=keep, on_error=on_error, n_threads=n_threads, with_label=with_label)
    where = "<stdin>" if input_path == "-" else input_path

    in_handle = None
    total_bytes = None
    if input_format != "parquet":
        if input_path == "-":
            in_handle = stdin or sys.stdin
        else:
            try:
                in_handle = open(input_path, encoding="utf-8-sig", newline="")
                total_bytes = os.fstat(in_handle.fileno()).st_size
            except FileNotFoundError:
                raise UsageError(f"{input_path}: no such file") from None
            except IsADirectoryError:
                raise UsageError(f"{input_path}: is a directory") from None
            except OSError as exc:
                raise UsageError(f"{input_path}: cannot read: {exc.strerror}") from None

    temporary = None
    out_handle = None
    try:
        if output_path == "-":
            out_handle = stdout or sys.stdout
            target = None
        else:
            folder = os.path.dirname(os.path.abspath(output_path))
            if not os.path.isdir(folder):
                raise UsageError(f"{output_path}: no such directory {folder}")
            temporary = os.path.join(folder, f".{os.path.basename(output_path)}.{os.getpid()}.tmp")
            target = temporary
            if output_format != "parquet":
                out_handle = open(temporary, "w", encoding="utf-8", newline="")
        if output_format == "csv":
            writer = CsvWriter(out_handle, scorer.output_columns)
        elif output_format == "ndjson":
            writer = NdjsonWriter(out_handle, scorer.output_columns)
        else:
            writer = ParquetWriter(target, scorer.output_columns)

        if input_format == "csv":
            chunks = read_csv(in_handle, scorer, chunk_rows, where)
        elif input_format == "ndjson":
            chunks = read_ndjson(in_handle, scorer, where)
        else:
            chunks = read_parquet(input_path, scorer, chunk_rows, where)
        streaming = input_format == "ndjson"
        progress = _Progress(in_handle, total_bytes)
        for chunk in chunks:
            rows = [scorer.output_row(kept, outputs) for kept, outputs in scorer.score_chunk(chunk)]
            writer.write(rows, flush=streaming)
            scorer.report.rows_out += len(rows)
            progress.update(scorer.report.rows_in)
        progress.close()
        writer.close()
        if out_handle is not None and temporary is not None:
            out_handle.close()
            out_handle = None
        if temporary is not None:
            os.replace(temporary, output_path)
            temporary = None
    finally:
        if in_handle is not None and input_path != "-":
            in_handle.close()
        if temporary is not None:
            if out_handle is not None:
                out_handle.close()
            try:
                os.unlink(temporary)
            except OSError:
                pass
    return scorer.report


def report_bad_rows(report: ScoreReport, errors_path: str | None, stream: IO[str]) -> None:
    """Write every bad row to ``errors_path`` (CSV: row, error) or to ``stream``."""
    if not report.bad_rows:
        return
    if errors_path:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["row", "error"])
        writer.writerows(report.bad_rows)
        with open(errors_path, "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
        stream.write(f"pyastore: {len(report.bad_rows)} row(s) with bad input, listed in {errors_path}\n")
        return
    for row, message in report.bad_rows:
        stream.write(f"pyastore: bad row {row}: {message}\n")
