"""Streaming batch scoring for ``pyastore score``: CSV, NDJSON and Parquet in and out.

Inputs are read in chunks of ``chunk_rows`` rows, scored, and written before the next chunk is
read, so memory stays bounded whatever the input size. NDJSON is scored line by line and each
output line is flushed at once (for pipes and streams). Columns are matched to the model's
inputs **by name** (any order; extra columns are ignored unless kept with ``keep``).

Bad cells: an empty cell, ``nan``/``NaN``/``NA``/``null`` mean missing (NaN); anything else
that is not a number, and a missing value in an input that refuses missing values, is an
``InputError`` naming the row and the column, unless ``on_error`` is ``skip`` (the row is left
out of the output) or ``null`` (its outputs are left empty); either way every such row is
reported, never silently dropped. Rows are numbered from 1: the first data row of a CSV (the
header is not counted), the first line of an NDJSON input, the first row of a Parquet file.

Everything here goes through the public :class:`pyastore.Model` API: cells become floats by
:func:`pyastore.model.cell_value`, rows are scored by :meth:`Model.score_into` (which applies
the input policy), refused rows are found by :meth:`Model.invalid_rows`, and labels come from
:meth:`Model.decide`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pyastore.errors import InputError, UsageError
from pyastore.files import atomic_output, open_text, write_atomic
from pyastore.model import Model, cell_value

FORMATS = ("csv", "ndjson", "parquet")
ON_ERROR = ("fail", "skip", "null")

# A row as the readers hand it over: (row number from 1, input cells in model order or None
# when the reader could not split the row, kept cells, the reader's error or None).
ReaderRow = tuple[int, "list[Any] | None", "list[Any]", "str | None"]


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
        if self.handle is None:
            return
        try:
            source = self.handle.buffer if hasattr(self.handle, "buffer") else self.handle
            done = source.tell()
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

    def __init__(self, model: Model, *, keep: list[str] | None = None, on_error: str = "fail",
                 n_threads: int = 1, with_label: bool = False):
        if on_error not in ON_ERROR:
            raise UsageError(f"--on-error must be fail, skip or null, not {on_error!r}")
        if with_label and not model.decides:
            raise UsageError(f"--label: this model's task is {model.task!r}, which has no "
                             "labels to decide")
        self.model = model
        self.keep = list(keep or [])
        self.on_error = on_error
        self.n_threads = n_threads
        self.with_label = with_label
        self.report = ScoreReport()
        self.output_columns = (self.keep + list(model.output_names)
                               + (["label"] if with_label else []))

    def check_columns(self, columns: list[str], where: str) -> list[int]:
        """Indices of the model inputs in ``columns``; errors name what is missing."""
        positions: dict[str, int] = {}
        for i, name in enumerate(columns):
            positions.setdefault(name, i)
        missing = [name for name in self.model.input_names if name not in positions]
        if missing:
            raise InputError(f"{where}: input column(s) missing: {', '.join(missing)} "
                             f"(the model needs {', '.join(self.model.input_names)})")
        absent_keep = [name for name in self.keep if name not in positions]
        if absent_keep:
            raise InputError(f"{where}: --keep column(s) not in the input: "
                             f"{', '.join(absent_keep)}")
        return [positions[name] for name in self.model.input_names]

    def _parse(self, rows: list[ReaderRow]) -> tuple[array[float], list[int],
                                                     dict[int, str]]:
        """Cells into one float32 buffer. Returns the buffer, the chunk position of each of
        its rows, and the chunk positions of rows that could not be parsed, with why."""
        flat: array[float] = array("f")
        parsed: list[int] = []
        bad: dict[int, str] = {}
        names = self.model.input_names
        for position, (row_number, cells, _, reader_error) in enumerate(rows):
            if reader_error is not None or cells is None:
                bad[position] = reader_error or f"row {row_number}: unreadable"
                continue
            mark = len(flat)
            for c, cell in enumerate(cells):
                try:
                    flat.append(cell_value(cell))
                except (TypeError, ValueError):
                    del flat[mark:]
                    bad[position] = (
                        f"row {row_number}, column {names[c]!r}: {cell!r} is not a number"
                    )
                    break
            else:
                parsed.append(position)
        return flat, parsed, bad

    def score_chunk(self, rows: list[ReaderRow]) -> list[list[Any]]:
        """Score one chunk into output rows (kept cells, outputs, the label with --label).

        A bad row -- a cell that is not a number, a missing value an input refuses, a reader
        error, or (with --label) a NaN output, which has no decision -- stops
        the run with on_error=fail (the first bad row's InputError), is left out with skip,
        and is written with empty outputs with null; skipped and null rows are reported."""
        self.report.rows_in += len(rows)
        flat, parsed, bad = self._parse(rows)
        refused = list(self.model.invalid_rows(flat))
        if refused:
            for index, reason in refused:
                position = parsed[index]
                bad[position] = f"row {rows[position][0]}, {reason}"
            keep_rows = [i for i in range(len(parsed)) if parsed[i] not in bad]
            n_in = len(self.model.input_names)
            valid: array[float] = array("f")
            for i in keep_rows:
                valid.extend(flat[i * n_in:(i + 1) * n_in])
            flat, parsed = valid, [parsed[i] for i in keep_rows]
        n_out = len(self.model.output_names)
        out: array[float] = array("d", bytes(8 * n_out * len(parsed)))
        if parsed:
            self.model.score_into(flat, out, n_threads=self.n_threads)
        scored: dict[int, list[Any]] = {}
        for i, position in enumerate(parsed):
            outputs: list[Any] = out[i * n_out:(i + 1) * n_out].tolist()
            if self.with_label:
                try:
                    outputs.append(self.model.decide(outputs))
                except InputError as exc:
                    bad[position] = f"row {rows[position][0]}: {exc.message}"
                    continue
            scored[position] = outputs
        if bad:
            first = min(bad)
            if self.on_error == "fail":
                raise InputError(bad[first], row=rows[first][0] - 1)
            for position in sorted(bad):
                self.report.bad_rows.append((rows[position][0], bad[position]))
        width = len(self.output_columns) - len(self.keep)
        results: list[list[Any]] = []
        for position, row in enumerate(rows):
            if position in scored:
                results.append(row[2] + scored[position])
            elif self.on_error == "null":
                results.append(row[2] + [None] * width)
        return results


# ---- readers: yield chunks of ReaderRow ---------------------------------------------------


def read_csv(handle: IO[str], scorer: BatchScorer, chunk_rows: int, where: str
             ) -> Iterator[list[ReaderRow]]:
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
    chunk: list[ReaderRow] = []
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


def read_ndjson(handle: IO[str], scorer: BatchScorer, where: str) -> Iterator[list[ReaderRow]]:
    """One chunk per line, so each output line can be flushed as soon as its input arrives."""
    for row_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        event: Any = None
        try:
            event = json.loads(line)
            message = None if isinstance(event, dict) else (
                f"{where}: line {row_number}: expected a JSON object")
        except json.JSONDecodeError as exc:
            message = f"{where}: line {row_number}: not JSON ({exc.msg})"
        if message is None:
            missing = [
                name for name in list(scorer.model.input_names) + scorer.keep if name not in event
            ]
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


def read_parquet(path: str, scorer: BatchScorer, chunk_rows: int, where: str
             ) -> Iterator[list[ReaderRow]]:
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
        chunk: list[ReaderRow] = []
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
            record = {
                c: (None if isinstance(v, float) and v != v else v)
                for c, v in zip(self.columns, row)
            }
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
        self.writer: Any = None  # a pyarrow.parquet.ParquetWriter once the schema is known

    def write(self, rows: list[list[Any]], flush: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [row[i] for row in rows] for i, c in enumerate(self.columns)})
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(
            table.cast(self.writer.schema) if table.schema != self.writer.schema else table
        )

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            schema = pa.schema([(c, pa.float64()) for c in self.columns])
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.close()


def resolve_formats(input_path: str, output_path: str, input_format: str | None,
                    output_format: str | None) -> tuple[str, str]:
    """The input and output formats: as given, else from the file extensions (stdin is CSV;
    stdout takes the input's format, CSV for a Parquet input)."""
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
    return input_format, output_format


def _reader(input_format: str, input_path: str, handle: IO[str] | None, scorer: BatchScorer,
            chunk_rows: int, where: str) -> Iterator[list[ReaderRow]]:
    if input_format == "parquet":
        return read_parquet(input_path, scorer, chunk_rows, where)
    assert handle is not None
    if input_format == "ndjson":
        return read_ndjson(handle, scorer, where)
    return read_csv(handle, scorer, chunk_rows, where)


def _writer(output_format: str, handle: IO[str] | None, path: str | None,
            columns: list[str]) -> CsvWriter | NdjsonWriter | ParquetWriter:
    if output_format == "parquet":
        assert path is not None
        return ParquetWriter(path, columns)
    assert handle is not None
    if output_format == "ndjson":
        return NdjsonWriter(handle, columns)
    return CsvWriter(handle, columns)


def _stream(scorer: BatchScorer, chunks: Iterator[list[ReaderRow]],
            writer: CsvWriter | NdjsonWriter | ParquetWriter, flush: bool,
            progress: _Progress) -> None:
    for chunk in chunks:
        rows = scorer.score_chunk(chunk)
        writer.write(rows, flush=flush)
        scorer.report.rows_out += len(rows)
        progress.update(scorer.report.rows_in)
    progress.close()
    writer.close()


def run(model: Model, input_path: str, output_path: str, *, input_format: str | None = None,
        output_format: str | None = None, keep: list[str] | None = None, on_error: str = "fail",
        n_threads: int = 1, chunk_rows: int = 65536, with_label: bool = False,
        stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> ScoreReport:
    """Score ``input_path`` (``-`` for stdin) into ``output_path`` (``-`` for stdout).

    A file output is written whole or not at all (``pyastore.files.atomic_output``): on a
    fatal error no partial file is left behind. On stdout, rows already written stay
    written; the caller reports how many.
    """
    input_format, output_format = resolve_formats(input_path, output_path, input_format,
                                                  output_format)
    if chunk_rows < 1:
        raise UsageError("--chunk-rows must be at least 1")
    scorer = BatchScorer(model, keep=keep, on_error=on_error, n_threads=n_threads,
                         with_label=with_label)
    where = "<stdin>" if input_path == "-" else input_path
    in_handle: IO[str] | None = None
    total_bytes = None
    if input_format != "parquet":
        if input_path == "-":
            in_handle = stdin or sys.stdin
        else:
            in_handle = open_text(input_path)
            total_bytes = os.fstat(in_handle.fileno()).st_size
    try:
        chunks = _reader(input_format, input_path, in_handle, scorer, chunk_rows, where)
        progress = _Progress(in_handle, total_bytes)
        flush = input_format == "ndjson"
        if output_path == "-":
            writer = _writer(output_format, stdout or sys.stdout, None, scorer.output_columns)
            _stream(scorer, chunks, writer, flush, progress)
        else:
            with atomic_output(output_path, open_file=output_format != "parquet") as (
                    temporary, handle):
                writer = _writer(output_format, handle, temporary, scorer.output_columns)
                _stream(scorer, chunks, writer, flush, progress)
    finally:
        if in_handle is not None and input_path != "-":
            in_handle.close()
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
        write_atomic(errors_path, buffer.getvalue().encode("utf-8"))
        stream.write(
            f"pyastore: {len(report.bad_rows)} row(s) with bad input, listed in {errors_path}\n"
        )
        return
    for row, message in report.bad_rows:
        stream.write(f"pyastore: bad row {row}: {message}\n")
