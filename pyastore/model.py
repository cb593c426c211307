"""Loading a container and scoring with it: ``pyastore.load(...) -> Model``.

``load`` goes, in order: read the bytes; frame them and check the store key (C core);
check the signature and the signer's trust (refusing unsigned or untrusted containers unless
the caller allows it); decode META; only then open the scoring payload (C core). Each step
raises its own typed error (``pyastore.errors``).

Scoring accepts 2-D numpy arrays (any float dtype, C or Fortran order), pandas DataFrames
(columns matched by name, any order, extra columns ignored), lists of rows, and a dict for one
event. numpy is only imported when the input is a numpy array or DataFrame, so a device can
score lists without it.

Categorical inputs (META ``categorical``, ``pyastore.encoding``) take text cells, which become
the input's codes before scoring, by one function on every path (``Model.cell``); a numeric
2-D array, which cannot say which text it stands for, is refused for such a model (give
the codes to ``score_into``, or the texts as lists, dicts or a DataFrame).
"""

from __future__ import annotations

import math
import os
import warnings
from array import array

from pyastore import keys, trust
from pyastore.encoding import MISSING_TOKENS as MISSING_TOKENS  # re-exported, as before
from pyastore.encoding import TYPE as CATEGORICAL
from pyastore.encoding import Categorical, CategoryError
from pyastore.errors import (
    FormatError,
    InputError,
    InternalError,
    PyastoreError,
    SignatureError,
    UntrustedSignerError,
    UsageError,
)
from pyastore.errors import SecurityWarning as SecurityWarning  # re-exported: pyastore.model's API
from pyastore.files import read_bytes

# The compiled binding, or the cffi backend over a prebuilt libastore.so on devices that cannot
# build the extension (PYASTORE_BACKEND=cffi forces it, for tests).
if os.environ.get("PYASTORE_BACKEND") == "cffi":
    from pyastore import _cffi_core as _core
else:
    try:
        from pyastore import _core  # type: ignore[no-redef]
    except ImportError:
        from pyastore import _cffi_core as _core

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

MAX_CONTAINER_BYTES = 1 << 32
DECISION_TASKS = ("binary", "multiclass", "regression")
MAX_THREADS = 1024  # the C core uses at most 64 worker threads; more is surely a mistake


def read_container_bytes(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
) -> tuple[bytes, str]:
    """The bytes of a container given as a path or as bytes, and a name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # read_bytes says what is wrong with the path
    if size > MAX_CONTAINER_BYTES:
        raise FormatError(f"{path}: {size} bytes is larger than any container (4 GiB limit)")
    return read_bytes(path, what="container"), path


def _decode_meta(raw: bytes | None) -> dict[str, Any]:
    """META as a dict. The C core has already read it (``_core.Model``) and refused anything
    malformed or incomplete -- not msgpack, not a map, a required field missing or of the
    wrong type, inputs/outputs that disagree with the payload -- so this only decodes."""
    import msgpack

    meta = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    if not isinstance(meta, dict):
        raise InternalError("META passed the C core's checks but is not a map")
    return meta


def _json_safe(value: Any) -> Any:
    """META as JSON can carry it: bytes as ``"0x<hex>"``, msgpack extension values and other
    types as their text, map keys as text (a validly signed META may hold any of these)."""
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else str(_json_safe(k))): _json_safe(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _check_score_rules(meta: dict[str, Any], n_outputs: int) -> None:
    """The score rules a decision reads must have the types it needs: checked once, at load,
    so that :meth:`Model.decide` can trust them (the C core does not read them)."""
    rules = meta["score_rules"]
    cutoff = rules.get("cutoff", 0.5)
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or cutoff != cutoff:
        raise FormatError(f"META score_rules cutoff {cutoff!r} is not a number")
    labels = rules.get("class_labels", [])
    if not isinstance(labels, list) or not all(
            isinstance(label, (str, int, float, bool)) for label in labels):
        raise FormatError("META score_rules class_labels must be a list of numbers or strings")
    task = rules["task"]
    wanted = {"binary": 2, "multiclass": n_outputs}.get(task)
    if labels and wanted is not None and len(labels) != wanted:
        raise FormatError(f"META score_rules has {len(labels)} class labels; a {task} model "
                          f"with {n_outputs} output(s) needs {wanted}")


def cell_value(value: Any) -> float:
    """One input cell as a float: numbers as they are, ``None`` and the missing-value words
    (``MISSING_TOKENS``: empty, ``nan``, ``NA``, ``null``...) as NaN, other text parsed as a
    number. Raises ``ValueError`` for anything else (the caller names the row and column)."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        if text in MISSING_TOKENS:
            return math.nan
        # float() also takes "1_000" and non-ASCII digits: a number in a data file is ASCII
        if "_" in text or not text.isascii():
            raise ValueError(value)
        return float(text)  # raises ValueError for non-numbers; accepts inf, 1e3, -0.5
    if isinstance(value, (int, float)):  # bool is an int
        try:
            return float(value)
        except OverflowError:  # an integer beyond float64 (JSON numbers of 309+ digits)
            raise ValueError(value) from None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return cell_value(item())
    raise ValueError(value)


def _categorical_inputs(meta: dict[str, Any]) -> tuple[Categorical | None, ...]:
    """Each input's vocabulary and rules, None for a numeric input. The C core has accepted
    every ``missing`` policy; the categorical ones must agree with their ``type`` and carry
    a valid ``categorical`` map (docs/FORMAT.md, "Categorical inputs")."""
    found: list[Categorical | None] = []
    for i, entry in enumerate(meta["inputs"]):
        marks = (entry.get("type") == CATEGORICAL, entry.get("missing") == CATEGORICAL,
                 "categorical" in entry)
        if not any(marks):
            found.append(None)
            continue
        where = f"META inputs[{i}] ({entry.get('name')!r})"
        if not all(marks):
            raise FormatError(f"{where}: a categorical input has type and missing "
                              "'categorical' and a 'categorical' map; this one has only some")
        found.append(Categorical.from_meta(entry["categorical"], f"{where} categorical"))
    return tuple(found)


def not_a_number(row: int, column: str, value: Any) -> InputError:
    """The error for a cell that is not a number; ``row`` is 0-based, messages count from 1."""
    return InputError(f"row {row + 1}, column {column!r}: {value!r} is not a number",
                      row=row)


class Model:
    """A loaded, verified container ready to score. Immutable and safe to share across threads.

    Attributes: ``store_key`` (64 lowercase hex), ``signer`` (hex public key or None),
    ``signature_status`` (``trusted``, ``untrusted`` or ``unsigned``), ``meta`` (the META
    dict), ``input_names``, ``accepts_missing`` (per input: whether NaN may be scored),
    ``output_names``, ``task``, ``format_version``.

    Every way of scoring ends in :meth:`score_into`, the one low-level entry: a float32 buffer
    of whole rows in, float64 outputs out, the input policy (inputs that refuse missing
    values) applied once, by the C core. :meth:`score` converts numpy arrays, DataFrames,
    lists and dicts into that buffer; :meth:`score_one` is its one-row form without the
    buffer. :meth:`decide` is the one decision rule (``predict``, ``pyastore score --label``).

    Rows in error messages are numbered from 1 (the first row given is "row 1"); the
    ``InputError.row`` attribute is the 0-based index.
    """

    def __init__(self, container: Any, signature_status: str, source: str):
        self._container = container
        # The C core reads META first: the inputs (names, missing-value policy) and outputs,
        # refusing a META that is malformed or disagrees with the payload.
        self._core = _core.Model(container)
        self.meta = _decode_meta(container.section("META"))
        self.signature_status = signature_status
        self.source = source
        self.store_key: str = container.store_key
        major, minor = container.format_version
        self.format_version: tuple[int, int] = (major, minor)
        self.signer: str | None = (
            container.public_key.hex() if container.signature_algorithm else None
        )
        self.input_names: tuple[str, ...] = tuple(self._core.input_names)
        self.accepts_missing: tuple[bool, ...] = tuple(self._core.accepts_missing)
        self.output_names: tuple[str, ...] = tuple(v["name"] for v in self.meta["outputs"])
        self.task: str = self.meta["score_rules"]["task"]
        _check_score_rules(self.meta, len(self.output_names))
        self.categorical: tuple[Categorical | None, ...] = _categorical_inputs(self.meta)
        self._n_in = len(self.input_names)
        self._n_out = len(self.output_names)
        self._any_categorical = any(c is not None for c in self.categorical)

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def tree_walk(self) -> str | None:
        """How the C core walks this model's trees on this CPU, chosen at load: ``nodes`` or
        ``quickscorer`` (bit vectors, trees of at most 64 leaves), then ``-scalar``,
        ``-avx2`` or ``-avx512``. Every walk gives the same bits. None for an MLP."""
        return self._core.tree_walk

    @property
    def tree_walk_bytes(self) -> int:
        """Memory the tree walk derived from the container at load (0 for an MLP)."""
        return int(self._core.walk_bytes)

    @property
    def container_bytes(self) -> bytes:
        return bytes(self._container.data)

    def sections(self) -> list[tuple[str, int, int, int]]:
        """``(type, flags, offset, length)`` of every section, in file order."""
        return [tuple(s) for s in self._container.sections()]

    def describe(self) -> dict[str, Any]:
        """Everything about the container as a JSON-ready dict (``pyastore describe --json``).
        ``inputs`` lists each input's name, type and missing policy, and for a categorical
        input its number of categories and its ``on_missing`` and ``unseen`` rules."""
        inputs = []
        for name, entry, categorical in zip(self.input_names, self.meta["inputs"],
                                            self.categorical):
            described = {"name": name, "type": _json_safe(entry.get("type", "")),
                         "missing": _json_safe(entry.get("missing"))}
            if categorical is not None:
                described.update(categories=len(categorical.categories),
                                 on_missing=categorical.missing, unseen=categorical.unseen)
            inputs.append(described)
        return {
            "inputs": inputs,
            "file": self.source,
            "store_key": self.store_key,
            "format_version": f"{self.format_version[0]}.{self.format_version[1]}",
            "size_bytes": len(self._container.data),
            "signature": {
                "algorithm": "ed25519" if self.signer else "none",
                "signer": self.signer,
                "status": self.signature_status,
            },
            "sections": [
                {"type": t, "critical": bool(flags & 1), "offset": offset, "length": length}
                for t, flags, offset, length in self.sections()
            ],
            "meta": _json_safe(self.meta),
            "scorer": {"tree_walk": self.tree_walk, "derived_bytes": self.tree_walk_bytes},
        }

    # ---- the one scoring entry ----------------------------------------------------------

    def score_into(self, x: Any, out: Any, *, n_threads: int = 1) -> int:
        """Score whole rows from a buffer into a buffer; returns the number of rows.

        ``x``: a C-contiguous float32 buffer (``array('f')``, a numpy float32 array, a
        memoryview...) of ``n_rows * len(input_names)`` values, row-major, NaN = missing.
        ``out``: a writable C-contiguous float64 buffer of at least ``n_rows *
        len(output_names)`` values. A NaN in an input that does not accept missing values
        raises :class:`InputError` naming the row and the column, and nothing is scored. The
        GIL is released while the C core works; ``n_threads`` > 1 uses worker threads
        (results do not depend on it).
        """
        if type(n_threads) is not int or not 1 <= n_threads <= MAX_THREADS:
            raise UsageError(f"n_threads must be a whole number from 1 to {MAX_THREADS}, "
                             f"not {n_threads!r}")
        try:
            self._core.score_into(x, out, n_threads)
        except InputError as exc:
            raise _numbered(exc) from None
        return len(memoryview(x).cast("B")) // (4 * self._n_in) if self._n_in else 0

    def invalid_rows(self, x: Any) -> Iterator[tuple[int, str]]:
        """``(row index, reason)`` for every row of ``x`` (a buffer as for :meth:`score_into`)
        that :meth:`score_into` would refuse, in order; the reason names the column."""
        start = 0
        while True:
            try:
                self._core.check_rows(x, start)
                return
            except InputError as exc:
                if exc.row is None:
                    raise
                yield exc.row, exc.message
                start = exc.row + 1

    def score_one(self, row: Sequence[Any] | dict[str, Any]) -> list[float]:
        """Score one event (values in input order, or a dict by input name): the fast path.
        Values are numbers or None (missing); a categorical input's value is its text."""
        if isinstance(row, dict):
            row = self._row_from_mapping(row)
        if self._any_categorical:
            if len(row) != self._n_in:
                raise InputError(f"the event has {len(row)} values, the model takes "
                                 f"{self._n_in}")
            return self._core.score_one(self.row_values(row, 0, numbered=False))
        try:
            return self._core.score_one(row)  # a new list: both backends build one per call
        except InputError as exc:
            if exc.column is None:
                raise
            error = exc
        # A cell the binding could not take as a number: text cells ("1.5", "NA") are read as
        # everywhere else (cell_value); anything still not a number keeps the binding's error.
        try:
            converted = [cell_value(value) for value in row]
        except (TypeError, ValueError):
            raise error from None
        return self._core.score_one(converted)

    # ---- input conversions --------------------------------------------------------------

    def _row_from_mapping(self, event: dict[str, Any]) -> list[Any]:
        missing = [name for name in self.input_names if name not in event]
        if missing:
            raise InputError(f"the event lacks input(s): {', '.join(missing)}")
        return [event[name] for name in self.input_names]

    def score(self, data: Any, *, n_threads: int = 1) -> Any:
        """Score many rows. Returns a float64 array (numpy/DataFrame input), a list of lists
        (list input) or, for a dict (one event), a dict of output name -> value."""
        if isinstance(data, dict):
            return dict(zip(self.output_names, self.score_one(data)))
        module = type(data).__module__.split(".")[0]
        if module == "pandas":
            return self._score_dataframe(data, n_threads)
        if module == "numpy":
            return self._score_array(data, n_threads)
        return self._score_rows(data, n_threads)

    def cell(self, column: int, value: Any) -> float:
        """One cell of input ``column`` as the float the payload reads: a numeric input's
        number (:func:`cell_value`), a categorical input's code (``Categorical.code``).
        Raises ``ValueError`` (a ``CategoryError`` for a categorical input) when refused."""
        categorical = self.categorical[column]
        if categorical is None:
            return cell_value(value)
        return categorical.code(value)

    def cell_error(self, row: int, column: int, value: Any, error: Exception,
                   *, numbered: bool = True) -> InputError:
        """The InputError for a cell :meth:`cell` refused (``row`` 0-based; the message
        counts from 1, or names no row with ``numbered=False``)."""
        where = (f"row {row + 1}, column {self.input_names[column]!r}" if numbered
                 else f"input {self.input_names[column]!r}")
        if isinstance(error, CategoryError):
            return InputError(f"{where}: {error}", row=row if numbered else None,
                              column=column)
        return InputError(f"{where}: {value!r} is not a number",
                          row=row if numbered else None, column=column)

    def row_values(self, row: Sequence[Any], index: int, *, numbered: bool = True
                   ) -> list[float]:
        """The floats of one row of cells in input order (:meth:`cell`)."""
        cell = self.cell
        values = []
        for c, value in enumerate(row):
            try:
                values.append(cell(c, value))
            except (TypeError, ValueError) as exc:
                raise self.cell_error(index, c, value, exc, numbered=numbered) from None
        return values

    def rows_to_buffer(self, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> array[float]:
        """Rows (sequences in input order or dicts by input name; cells as :meth:`cell`
        reads them) as the float32 buffer :meth:`score_into` takes."""
        n_in = self._n_in
        flat: array[float] = array("f")
        for r, row in enumerate(rows):
            if isinstance(row, dict):
                row = self._row_from_mapping(row)
            if len(row) != n_in:
                raise InputError(f"row {r + 1} has {len(row)} values, the model takes {n_in}",
                                 row=r)
            if self._any_categorical:
                flat.extend(self.row_values(row, r))
                continue
            for c, value in enumerate(row):
                try:
                    flat.append(cell_value(value))
                except (TypeError, ValueError):
                    raise not_a_number(r, self.input_names[c], value) from None
        return flat

    def _score_rows(self, rows: Iterable[Sequence[Any]], n_threads: int) -> list[list[float]]:
        flat = self.rows_to_buffer(rows)
        n_out = self._n_out
        count = len(flat) // self._n_in if self._n_in else 0
        out = array("d", bytes(8 * n_out * count))
        if count:
            self.score_into(flat, out, n_threads=n_threads)
        return [out[i * n_out:(i + 1) * n_out].tolist() for i in range(count)]

    def _score_array(self, data: Any, n_threads: int) -> Any:
        import numpy as np

        if data.ndim == 1 and data.shape[0] == self._n_in:
            data = data.reshape(1, -1)
        if data.ndim != 2:
            raise InputError(f"expected a 2-D array of rows, got {data.ndim} dimensions")
        if data.shape[1] != self._n_in:
            raise InputError(f"rows have {data.shape[1]} columns, the model takes "
                             f"{self._n_in} ({', '.join(self.input_names)})")
        if self._any_categorical and data.dtype.kind == "O":
            out = np.empty((data.shape[0], self._n_out), dtype=np.float64)
            flat = self.rows_to_buffer(data.tolist())
            if data.shape[0]:
                self.score_into(flat, out, n_threads=n_threads)
            return out
        if self._any_categorical:
            raise InputError(self._codes_needed())
        if data.dtype.kind not in "fiub":
            raise InputError(f"array of dtype {data.dtype} is not numeric")
        x = np.ascontiguousarray(data, dtype=np.float32)
        out = np.empty((x.shape[0], self._n_out), dtype=np.float64)
        if x.shape[0]:
            self.score_into(x, out, n_threads=n_threads)
        return out

    def _codes_needed(self) -> str:
        names = ", ".join(repr(n) for n, c in zip(self.input_names, self.categorical)
                          if c is not None)
        return (f"input(s) {names} are categorical: give rows with their texts as lists, "
                "dicts, an object array or a DataFrame (or the codes to score_into)")

    def _score_dataframe(self, frame: Any, n_threads: int) -> Any:
        import numpy as np

        columns = [str(c) for c in frame.columns]
        missing = [name for name in self.input_names if name not in columns]
        if missing:
            raise InputError(f"input column(s) missing: {', '.join(missing)}")
        x = np.empty((len(frame), self._n_in), dtype=np.float32)
        for c, name in enumerate(self.input_names):
            column = frame[name]
            if self.categorical[c] is not None:
                x[:, c] = self._category_column(c, column)
                continue
            try:
                x[:, c] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                for r, value in enumerate(column.tolist()):
                    try:
                        cell_value(value)
                    except (TypeError, ValueError):
                        raise not_a_number(r, name, value) from None
                raise InputError(f"column {name!r} is not numeric") from None
        if not self._any_categorical:
            return self._score_array(x, n_threads)
        out = np.empty((x.shape[0], self._n_out), dtype=np.float64)
        if x.shape[0]:
            self.score_into(x, out, n_threads=n_threads)
        return out

    def _category_column(self, c: int, column: Any) -> Any:
        """The codes of a DataFrame column for categorical input ``c``: a ``category``
        column's categories are looked up once, other columns value by value (each distinct
        value once); a refused cell is an InputError naming its row and the column."""
        import numpy as np

        categorical = self.categorical[c]
        assert categorical is not None
        if str(column.dtype) == "category":
            texts = list(column.cat.categories)
            table = categorical.lookup(texts + [None])
            positions = column.cat.codes.to_numpy()
            positions = np.where(positions < 0, len(texts), positions)
            if all(code is not None for code in table):
                return np.array(table, dtype=np.float64)[positions]
            values = [texts[p] if p < len(texts) else None for p in positions.tolist()]
        else:
            values = column.tolist()
        codes: dict[Any, float] = {}
        out = np.empty(len(values), dtype=np.float64)
        for r, value in enumerate(values):
            key = (type(value), value)  # 1 and True are equal keys, but not equal cells
            try:
                out[r] = codes[key]
            except (KeyError, TypeError):  # TypeError: an unhashable value
                try:
                    out[r] = categorical.code(value)
                except (TypeError, ValueError) as exc:
                    raise self.cell_error(r, c, value, exc) from None
                try:
                    codes[key] = out[r]
                except TypeError:
                    pass
        return out

    # ---- decisions ----------------------------------------------------------------------

    @property
    def decides(self) -> bool:
        """True when the outputs have a decision (a label): binary, multi-class, regression."""
        return self.task in DECISION_TASKS

    @property
    def cutoff(self) -> float | None:
        """The binary decision cutoff from META (0.5 when absent); None for other tasks."""
        return self._default_cutoff if self.task == "binary" else None

    @property
    def _default_cutoff(self) -> float:
        return float(self.meta["score_rules"].get("cutoff", 0.5))

    def decide(self, outputs: Sequence[float], *, cutoff: float | None = None) -> Any:
        """The label for one row's outputs: the one decision rule of pyastore.

        Binary: the positive label when the output is strictly greater than the cutoff
        (``cutoff`` or the container's), else the negative label -- so a score exactly at the
        cutoff is negative, as scikit-learn's and XGBoost's ``predict`` decide at 0.5.
        Multi-class: the label of the largest output (the first on ties). Regression: the
        value. An output that is NaN (an MLP given infinite inputs can compute inf - inf) has no
        decision: :class:`InputError`, never a silent default -- a fraud model must not say
        "not fraud" because it could not score. Infinite outputs decide like any other value.
        Other tasks (an embedding) have no decision at all: :class:`UsageError`.
        """
        if self.task not in DECISION_TASKS:
            raise UsageError(f"this model's task is {self.task!r}: its outputs are a "
                             "representation, not a decision (use score())")
        for value in outputs:
            if value != value:
                shown = ", ".join(repr(v) for v in outputs[:4])
                raise InputError(f"the outputs ({shown}) include NaN: no decision")
        if self.task == "binary":
            threshold = cutoff if cutoff is not None else self._default_cutoff
            negative, positive = self._binary_labels()
            return positive if outputs[0] > threshold else negative
        if self.task == "multiclass":
            best = max(range(len(outputs)), key=outputs.__getitem__)
            labels = self.meta["score_rules"].get("class_labels") or []
            return labels[best] if labels else best
        return outputs[0]

    def _binary_labels(self) -> tuple[Any, Any]:
        labels = self.meta["score_rules"].get("class_labels") or []
        return (labels[0], labels[1]) if len(labels) >= 2 else (0, 1)

    def predict(self, data: Any, *, n_threads: int = 1, cutoff: float | None = None
                ) -> list[Any]:
        """Labels for the rows of ``data`` (any input :meth:`score` takes), by :meth:`decide`."""
        if not self.decides:
            self.decide([])  # raises the UsageError that names the task
        scores = self.score(data, n_threads=n_threads)
        if isinstance(scores, dict):
            rows = [list(scores.values())]
        else:
            rows = scores.tolist() if hasattr(scores, "tolist") else scores
        labels = []
        for r, row in enumerate(rows):
            try:
                labels.append(self.decide(row, cutoff=cutoff))
            except InputError as exc:
                raise InputError(f"row {r + 1}: {exc.message}", row=r) from None
        return labels


def _numbered(exc: InputError) -> InputError:
    """The C core's error for one row, with the row named in the message (from 1)."""
    if exc.row is None:
        return exc
    return InputError(f"row {exc.row + 1}, {exc.message}", offset=exc.offset, row=exc.row,
                      column=exc.column)


def load(source: str | os.PathLike[str] | bytes, *, trusted_keys: Iterable[Any] | None = None,
         allow_untrusted: bool = False, allow_unsigned: bool = False,
         use_default_trust: bool = True) -> Model:
    """Load, verify and open a container.

    ``trusted_keys``: public keys to trust (raw bytes, hex, or ``.pub`` paths), added to
    ``PYASTORE_TRUSTED_KEYS`` and the config directory (``pyastore.trust``) unless
    ``use_default_trust=False``. An unsigned container raises ``SignatureError`` unless
    ``allow_unsigned``; a valid signature by an untrusted key raises ``UntrustedSignerError``
    unless ``allow_untrusted``. Either allowance emits a ``SecurityWarning``. An invalid
    signature is always refused.
    """
    data, name = read_container_bytes(source)
    try:
        container = _core.Container(data)
    except PyastoreError as exc:
        exc.message = f"{name}: {exc.message}"
        raise
    algorithm = container.signature_algorithm
    if algorithm == 0:
        if not allow_unsigned:
            raise SignatureError(f"{name}: the container is unsigned (store key "
                                 f"{container.store_key}); refusing it without --allow-unsigned")
        warnings.warn(f"{name}: loading an UNSIGNED container", SecurityWarning, stacklevel=2)
        status = "unsigned"
    else:
        public_key = container.public_key
        if not keys.verify(public_key, container.signed_message, container.signature):
            raise SignatureError(f"{name}: the Ed25519 signature does not verify for signer "
                                 f"{public_key.hex()}: the signature was altered or forged")
        if public_key in trust.resolve(trusted_keys, use_defaults=use_default_trust):
            status = "trusted"
        elif allow_untrusted:
            warnings.warn(f"{name}: signer {public_key.hex()} is NOT trusted", SecurityWarning,
                          stacklevel=2)
            status = "untrusted"
        else:
            raise UntrustedSignerError(
                f"{name}: signed by {public_key.hex()}, which is not a trusted key "
                "(add it with --trust FILE.pub, PYASTORE_TRUSTED_KEYS or the config directory)"
            )
    try:
        return Model(container, status, name)
    except PyastoreError as exc:
        if not exc.message.startswith(name):
            exc.message = f"{name}: {exc.message}"
        raise
