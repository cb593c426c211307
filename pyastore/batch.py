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

import contextlib
import csv
import io
import json
import os
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from pyastore.commandline import printable
from pyastore.encoding import Categorical
from pyastore.errors import InputError, UsageError
from pyastore.files import atomic_output, open_text
from pyastore.model import Model, cell_value

FORMATS = ("csv", "ndjson", "parquet")
MAX_LINE_CHARS = 16 << 20  # one CSV row or NDJSON event: a longer line is refused
CHUNK_CHARS = 32 << 20  # a CSV chunk also ends when its kept cells hold this many characters
ON_ERROR = ("fail", "skip", "null")

# A row as the readers hand it over: (row number from 1, input cells in model order or None
# when the reader could not split the row, kept cells, the reader's error or None).
ReaderRow = tuple[int, "list[Any] | None", "list[Any]", "str | None"]


@dataclass
class ParsedChunk:
    """Rows whose inputs a reader already made into one float32 numpy buffer (a numeric
    Parquet batch): ``flat`` holds ``n_rows * n_inputs`` values, ``kept`` one list of values
    per kept column, ``first_row`` the number of the first row (rows count from 1)."""

    first_row: int
    n_rows: int
    flat: Any
    kept: list[list[Any]]


@dataclass
class ScoreReport:
    """What a batch run did: rows read, rows written, and how many rows were bad (each is
    reported as it is found, to the errors file or stderr: never held in memory)."""

    rows_in: int = 0
    rows_out: int = 0
    bad_rows: int = 0


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
                 n_threads: int = 1, with_label: bool = False,
                 on_bad_row: Callable[[int, str], None] | None = None):
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
        self.on_bad_row = on_bad_row or (lambda row, message: None)
        produced = list(model.output_names) + (["label"] if with_label else [])
        clash = [name for name in self.keep if name in produced]
        if clash:
            raise UsageError(f"--keep {', '.join(clash)}: the output already has a column of "
                             "that name (the model's outputs and 'label')")
        if len(set(self.keep)) != len(self.keep):
            raise UsageError("--keep names a column twice")
        self.output_columns = self.keep + produced

    def output_types(self) -> dict[str, str]:
        """The type of every column the scorer makes (not the kept ones): the outputs are
        float64; the label is int64, float64 or text as the model's labels are."""
        types = {name: "float64" for name in self.model.output_names}
        if self.with_label:
            if self.model.task == "regression":
                types["label"] = "float64"
            else:
                labels = self.model.meta["score_rules"].get("class_labels") or [0]
                kinds = {type(label) for label in labels}
                types["label"] = ("int64" if kinds == {int} else
                                  "float64" if kinds <= {int, float} else "string")
        return types

    def check_columns(self, columns: list[str], where: str) -> list[int]:
        """Indices of the model inputs in ``columns``; errors name what is missing."""
        positions: dict[str, int] = {}
        used = set(self.model.input_names) | set(self.keep)
        for i, name in enumerate(columns):
            if name in positions and name in used:
                raise InputError(f"{where}: the input has two columns named {name!r} "
                                 f"(columns {positions[name] + 1} and {i + 1}); which one "
                                 "to use is ambiguous")
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
        model = self.model
        convert = model.cell if any(c is not None for c in model.categorical) else None
        for position, (row_number, cells, _, reader_error) in enumerate(rows):
            if reader_error is not None or cells is None:
                bad[position] = reader_error or f"row {row_number}: unreadable"
                continue
            mark = len(flat)
            for c, cell in enumerate(cells):
                try:
                    flat.append(cell_value(cell) if convert is None else convert(c, cell))
                except (TypeError, ValueError) as exc:
                    del flat[mark:]
                    bad[position] = model.cell_error(row_number - 1, c, cell, exc).message
                    break
            else:
                parsed.append(position)
        return flat, parsed, bad

    def _report(self, bad: dict[int, str], first_row: int) -> None:
        """Bad rows by chunk position: raise the first with on_error=fail, else report all."""
        if not bad:
            return
        if self.on_error == "fail":
            first = min(bad)
            raise InputError(bad[first], row=first_row + first - 1)
        for position in sorted(bad):
            self.report.bad_rows += 1
            self.on_bad_row(first_row + position, bad[position])

    def _score_parsed(self, chunk: ParsedChunk) -> list[list[Any]]:
        """score_chunk for a ParsedChunk: the same rules, with one numpy pass per chunk
        instead of one Python step per cell."""
        import numpy as np

        n, n_in = chunk.n_rows, len(self.model.input_names)
        self.report.rows_in += n
        bad = {index: f"row {chunk.first_row + index}, {reason}"
               for index, reason in self.model.invalid_rows(chunk.flat)}
        positions = [i for i in range(n) if i not in bad] if bad else list(range(n))
        x = chunk.flat if not bad else chunk.flat.reshape(n, n_in)[positions].reshape(-1)
        out = np.empty((len(positions), len(self.model.output_names)))
        if positions:
            self.model.score_into(np.ascontiguousarray(x), out, n_threads=self.n_threads)
        scored: list[list[Any]] = out.tolist()
        if self.with_label:
            for position, outputs in zip(positions, scored):
                try:
                    outputs.append(self.model.decide(outputs))
                except InputError as exc:
                    bad[position] = f"row {chunk.first_row + position}: {exc.message}"
        self._report(bad, chunk.first_row)
        kept_rows = [list(values) for values in zip(*chunk.kept)] if chunk.kept else None
        if not bad:
            return scored if kept_rows is None else [k + o for k, o in zip(kept_rows, scored)]
        by_position = dict(zip(positions, scored))
        width = len(self.output_columns) - len(self.keep)
        results: list[list[Any]] = []
        for position in range(n):
            kept = kept_rows[position] if kept_rows is not None else []
            if position not in bad:
                results.append(kept + by_position[position])
            elif self.on_error == "null":
                results.append(kept + [None] * width)
        return results

    def score_chunk(self, chunk: list[ReaderRow] | ParsedChunk) -> list[list[Any]]:
        """Score one chunk into output rows (kept cells, outputs, the label with --label).

        A bad row -- a cell that is not a number, a missing value an input refuses, a reader
        error, or (with --label) a NaN output, which has no decision -- stops
        the run with on_error=fail (the first bad row's InputError), is left out with skip,
        and is written with empty outputs with null; skipped and null rows are reported."""
        if isinstance(chunk, ParsedChunk):
            return self._score_parsed(chunk)
        rows = chunk
        flat, parsed, bad = self._parse(rows)
        self.report.rows_in += len(rows)
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
                self.report.bad_rows += 1
                self.on_bad_row(rows[position][0], bad[position])
        width = len(self.output_columns) - len(self.keep)
        results: list[list[Any]] = []
        for position, row in enumerate(rows):
            if position in scored:
                results.append(row[2] + scored[position])
            elif self.on_error == "null":
                results.append(row[2] + [None] * width)
        return results


# ---- readers: yield chunks of ReaderRow ---------------------------------------------------


def _lines(handle: IO[str], where: str) -> Iterator[str]:
    """The lines of ``handle``, never holding more than ``MAX_LINE_CHARS`` of one line: a
    longer line, or bytes that are not UTF-8, stop the run with an InputError naming the line."""
    line_number = 0
    while True:
        try:
            line = handle.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: line {line_number + 1} (or the text just after it) is "
                             f"not UTF-8: {exc.reason}") from None
        if not line:
            return
        line_number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise InputError(f"{where}: line {line_number} is longer than {MAX_LINE_CHARS:,} "
                             "characters")
        yield line


def read_csv(handle: IO[str], scorer: BatchScorer, chunk_rows: int, where: str
             ) -> Iterator[list[ReaderRow]]:
    """Chunks of at most ``chunk_rows`` rows whose kept cells hold at most ``CHUNK_CHARS``
    characters. Quotes are strict (an unterminated quote is an error, not a field that eats
    the rest of the file); a header naming a used column twice is refused."""
    reader = csv.reader(_lines(handle, where), strict=True)
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
    chunk_chars = 0
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
                kept = [record[p] for p in keep_positions]
                chunk.append((row_number, [record[p] for p in positions], kept, None))
            chunk_chars += sum(len(cell) for cell in kept)
            if len(chunk) >= chunk_rows or chunk_chars >= CHUNK_CHARS:
                yield chunk
                chunk = []
                chunk_chars = 0
    except csv.Error as exc:
        raise InputError(f"{where}: row {row_number + 1}: {exc}") from None
    if chunk:
        yield chunk


def _parse_event(line: str, row_number: int, where: str) -> tuple[Any, str | None]:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"{where}: line {row_number}: not JSON ({exc.msg})"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return None, f"{where}: line {row_number}: not usable JSON ({exc})"
    except RecursionError:
        return None, f"{where}: line {row_number}: JSON nested too deeply"
    if not isinstance(event, dict):
        return None, f"{where}: line {row_number}: expected a JSON object"
    return event, None


def _kept_text(value: Any) -> Any:
    """A kept NDJSON value as written out: text stays text; numbers and booleans stay as
    they are; other JSON (objects, arrays) becomes its JSON text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value)


def read_ndjson(handle: IO[str], scorer: BatchScorer, where: str) -> Iterator[list[ReaderRow]]:
    """One chunk per line, so each output line can be flushed as soon as its input arrives."""
    inputs = list(scorer.model.input_names)
    for row_number, line in enumerate(_lines(handle, where), start=1):
        if not line.strip():
            continue
        event, message = _parse_event(line, row_number, where)
        if message is None:
            missing = [name for name in inputs + scorer.keep if name not in event]
            if missing:
                message = f"{where}: line {row_number}: missing field(s): {', '.join(missing)}"
        if message is not None:
            if scorer.on_error == "fail":
                raise InputError(message)
            kept = [_kept_text(event.get(name)) if isinstance(event, dict) else None
                    for name in scorer.keep]
            yield [(row_number, None, kept, message)]
            continue
        yield [(row_number, [event[name] for name in inputs],
                [_kept_text(event[name]) for name in scorer.keep], None)]


def read_parquet(path: str, scorer: BatchScorer, chunk_rows: int, where: str
             ) -> Iterator[list[ReaderRow] | ParsedChunk]:
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
    batches = parquet.iter_batches(batch_size=chunk_rows, columns=wanted)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow: OSError, ArrowInvalid... for corrupt pages
            raise InputError(f"{where}: Parquet data after row {row_number} cannot be read "
                             f"({exc})") from None
        n = batch.num_rows
        kept_columns = [batch.column(name).to_pylist() for name in scorer.keep]
        first_row = row_number + 1
        row_number += n
        matrix = _numeric_matrix(batch, scorer.model)
        if matrix is not None:
            yield ParsedChunk(first_row, n, matrix, kept_columns)
            continue
        data = [batch.column(name).to_pylist() for name in scorer.model.input_names]
        yield [(first_row + i, [column[i] for column in data],
                [column[i] for column in kept_columns], None) for i in range(n)]


def _numeric_matrix(batch: Any, model: Model) -> Any:
    """The batch's input columns as one C-contiguous float32 buffer (rows x inputs, nulls as
    NaN) when every one is numeric (integer, floating, boolean, all-null) or, for a
    categorical input, text or a dictionary of texts whose every cell has a code, else None
    (the cells are then read one by one, so that a bad cell is named in its error). The
    values are rounded as the cell path rounds them: to float64, then once to float32."""
    names = model.input_names
    import numpy as np
    import pyarrow as pa

    columns = [batch.column(name) for name in names]
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
    categorical = model.categorical
    if not all(categorical[c] is not None or any(test(column.type) for test in numeric)
               for c, column in enumerate(columns)):
        return None
    matrix = np.empty((batch.num_rows, len(columns)), dtype=np.float32)
    for c, column in enumerate(columns):
        vocabulary = categorical[c]
        if vocabulary is not None:
            codes = _category_codes(column, vocabulary)
            if codes is None:
                return None
            matrix[:, c] = codes
            continue
        matrix[:, c] = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return matrix.reshape(-1)


def _category_codes(column: Any, categorical: Categorical) -> Any:
    """The codes of a Parquet text or dictionary column, each distinct text looked up once;
    None when a cell would be refused or the column is of another type (the cells are then
    read one by one, so that the refused cell is named)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def is_text(kind: Any) -> bool:
        return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))

    if pa.types.is_dictionary(column.type):
        encoded = column
    elif is_text(column.type):
        encoded = pc.dictionary_encode(column)
    else:
        return None
    if not is_text(encoded.dictionary.type):
        return None
    table = categorical.lookup(encoded.dictionary.to_pylist() + [None])
    if any(code is None for code in table):
        return None
    positions = encoded.indices.fill_null(len(table) - 1).to_numpy(zero_copy_only=False)
    return np.array(table, dtype=np.float64)[positions]


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
    """Parquet output. Column types: float64 for the model's outputs; the label's type from
    the model's labels; a kept column's type from its first chunk with a value (text when a
    chunk holds none yet). A later chunk whose kept values cannot take that type is an
    InputError naming the column, not a crash."""

    def __init__(self, path: str, columns: list[str], types: dict[str, str]):
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UsageError("Parquet needs pyarrow: pip install pyarrow") from None
        self.path = path
        self.columns = columns
        self.types = types  # column -> "float64" | "int64" | "string"; absent: inferred
        self.writer: Any = None  # a pyarrow.parquet.ParquetWriter once the schema is known

    def _arrays(self, rows: list[list[Any]]) -> list[Any]:
        import pyarrow as pa

        arrays = []
        for i, column in enumerate(self.columns):
            values = [row[i] for row in rows]
            if self.writer is not None:
                wanted = self.writer.schema.field(column).type
            elif column in self.types:
                wanted = getattr(pa, self.types[column])()
            else:
                wanted = None
            try:
                array = pa.array(values, type=wanted) if wanted is not None else pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                try:
                    array = pa.array(values).cast(wanted)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    raise InputError(f"kept column {column!r} changes type: its values no "
                                     f"longer fit the Parquet column's type {wanted}") from None
            if pa.types.is_null(array.type):
                array = array.cast(pa.string())
            arrays.append(array)
        return arrays

    def write(self, rows: list[list[Any]], flush: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        table = pa.Table.from_arrays(self._arrays(rows), names=self.columns)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            schema = pa.schema([(c, getattr(pa, self.types.get(c, "string"))())
                                for c in self.columns])
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
            chunk_rows: int, where: str) -> Iterator[list[ReaderRow] | ParsedChunk]:
    if input_format == "parquet":
        return read_parquet(input_path, scorer, chunk_rows, where)
    assert handle is not None
    if input_format == "ndjson":
        return read_ndjson(handle, scorer, where)
    return read_csv(handle, scorer, chunk_rows, where)


def _writer(output_format: str, handle: IO[str] | None, path: str | None,
            scorer: BatchScorer) -> CsvWriter | NdjsonWriter | ParquetWriter:
    columns = scorer.output_columns
    if output_format == "parquet":
        assert path is not None
        return ParquetWriter(path, columns, scorer.output_types())
    assert handle is not None
    if output_format == "ndjson":
        return NdjsonWriter(handle, columns)
    return CsvWriter(handle, columns)


def _stream(scorer: BatchScorer, chunks: Iterator[list[ReaderRow] | ParsedChunk],
            writer: CsvWriter | NdjsonWriter | ParquetWriter, flush: bool,
            progress: _Progress) -> None:
    for chunk in chunks:
        rows = scorer.score_chunk(chunk)
        writer.write(rows, flush=flush)
        scorer.report.rows_out += len(rows)
        progress.update(scorer.report.rows_in)
    progress.close()
    writer.close()


def _stdin() -> IO[str]:
    """Standard input as text the way files are read: UTF-8 with an optional BOM, newlines
    kept for csv; a closed stdin (``<&-``) is a usage error."""
    if sys.stdin is None:
        raise UsageError("standard input is closed: give an INPUT file")
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text-only stream (tests, embedding): use it as it is
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")


def run(model: Model, input_path: str, output_path: str, *, input_format: str | None = None,
        output_format: str | None = None, keep: list[str] | None = None, on_error: str = "fail",
        n_threads: int = 1, chunk_rows: int = 65536, with_label: bool = False,
        errors_path: str | None = None, errors_stream: IO[str] | None = None,
        stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> ScoreReport:
    """Score ``input_path`` (``-`` for stdin) into ``output_path`` (``-`` for stdout).

    A file output is written whole or not at all (``pyastore.files.atomic_output``): on a
    fatal error no partial file is left behind. On stdout, rows already written stay
    written; the caller reports how many. Bad rows (with ``on_error`` skip or null) are
    written as they are found to ``errors_path`` (CSV ``row,error``, itself whole or not at
    all) or else as lines to ``errors_stream`` (stderr).
    """
    input_format, output_format = resolve_formats(input_path, output_path, input_format,
                                                  output_format)
    if chunk_rows < 1:
        raise UsageError("--chunk-rows must be at least 1")
    where = "<stdin>" if input_path == "-" else input_path
    with contextlib.ExitStack() as stack:
        if errors_path:
            _, errors_handle = stack.enter_context(atomic_output(errors_path))
            assert errors_handle is not None
            errors_csv = csv.writer(errors_handle, lineterminator="\n")
            errors_csv.writerow(["row", "error"])

            def on_bad_row(row: int, message: str) -> None:
                errors_csv.writerow([row, message])
        else:
            stream = errors_stream or sys.stderr

            def on_bad_row(row: int, message: str) -> None:
                stream.write(f"pyastore: bad row {row}: {printable(message)}\n")
        scorer = BatchScorer(model, keep=keep, on_error=on_error, n_threads=n_threads,
                             with_label=with_label, on_bad_row=on_bad_row)
        in_handle: IO[str] | None = None
        total_bytes = None
        if input_format != "parquet":
            if input_path == "-":
                in_handle = stdin or _stdin()
            else:
                in_handle = stack.enter_context(open_text(input_path))
                total_bytes = os.fstat(in_handle.fileno()).st_size
        chunks = _reader(input_format, input_path, in_handle, scorer, chunk_rows, where)
        progress = _Progress(in_handle, total_bytes)
        flush = input_format == "ndjson"
        if output_path == "-":
            writer = _writer(output_format, stdout or sys.stdout, None, scorer)
            _stream(scorer, chunks, writer, flush, progress)
        else:
            with atomic_output(output_path, open_file=output_format != "parquet") as (
                    temporary, handle):
                writer = _writer(output_format, handle, temporary, scorer)
                _stream(scorer, chunks, writer, flush, progress)
    return scorer.report
