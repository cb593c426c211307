"""What each participant reads of the data, checked, and the split every party agrees on.

``read_header`` and ``check_partition`` run before anything is trained: the ID column and
the target must exist once, every claimed column must exist, no column may be claimed by two
parties (nor be the ID or the target). ``read_party`` loads one party's rows: the customer
IDs (as text), the labels (0/1) and the party's own columns (numbers, none missing: a network
has no notion of a missing value). Errors name the file, the column and, for a bad cell, the
data row (1-based, the header not counted).

``split``: every party must train on the same customers without telling each other which.
They hold the same customers, so each orders its rows by pseudonym (the keyed hash of the ID,
``trainer.vertical.ids``), shuffles that order with the run's seed and takes the first
``test_size`` share as test customers: the same split at every party, computed locally, and
not stratified (as in the published method).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyastore.errors import InputError, UsageError


@dataclass(frozen=True)
class PartyData:
    """One party's rows: ``ids[r]`` (text), ``labels[r]`` (0/1), ``x[r]`` its columns."""

    ids: tuple[str, ...]
    labels: np.ndarray  # int64
    x: np.ndarray  # float64, (rows, len(columns))
    columns: tuple[str, ...]


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError(f"{path}: the file is empty (no header)")
    header = [cell.strip() for cell in rows[0]]
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    return header, body


def read_header(path: str | Path) -> list[str]:
    path = Path(path)
    header, _ = _rows(path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(f"{path}: column(s) {', '.join(map(repr, duplicates))} appear more than "
                         "once in the header")
    return header


def check_partition(path: str | Path, header: Sequence[str], id_column: str, target: str,
                    parties: Mapping[str, Sequence[str]]) -> None:
    """Refuse a partition of the columns that cannot be trained (module docstring)."""
    for what, column in (("ID column", id_column), ("target column", target)):
        if column not in header:
            raise InputError(f"{path}: no {what} {column!r} (columns: {', '.join(header)})")
    if id_column == target:
        raise UsageError(f"the ID column and the target are the same column {target!r}")
    if not parties:
        raise UsageError("no parties: give at least one --party NAME=COL,COL,...")
    owner: dict[str, str] = {}
    for name, columns in parties.items():
        if not columns:
            raise UsageError(f"party {name!r} claims no columns")
        for column in columns:
            if column not in header:
                raise InputError(f"{path}: party {name!r} claims column {column!r}, which the "
                                 f"file does not have (columns: {', '.join(header)})")
            if column in (id_column, target):
                role = "ID" if column == id_column else "target"
                raise UsageError(f"party {name!r} claims column {column!r}, which is the "
                                 f"{role} column (every party holds the ID and the label)")
            if column in owner:
                raise UsageError(f"column {column!r} is claimed by two parties, {owner[column]!r} "
                                 f"and {name!r}: parties hold disjoint columns")
            owner[column] = name


def read_party(path: str | Path, id_column: str, target: str,
               columns: Sequence[str]) -> PartyData:
    """Load the ID, the label and ``columns`` of every row; errors name column and row."""
    path = Path(path)
    header = read_header(path)
    check_partition(path, header, id_column, target, {"this party": list(columns)})
    _, body = _rows(path)
    if not body:
        raise InputError(f"{path}: no data rows")
    at = {name: header.index(name) for name in header}
    ids: list[str] = []
    labels = np.empty(len(body), dtype=np.int64)
    x = np.empty((len(body), len(columns)), dtype=np.float64)
    first_row: dict[str, int] = {}
    for r, row in enumerate(body):
        line = r + 1
        if len(row) != len(header):
            raise InputError(f"{path}: data row {line} has {len(row)} cells, the header "
                             f"{len(header)}")
        customer = row[at[id_column]].strip()
        if not customer:
            raise InputError(f"{path}: ID column {id_column!r} is empty in data row {line}")
        if customer in first_row:
            raise InputError(f"{path}: ID {customer!r} in column {id_column!r} is duplicated "
                             f"(data rows {first_row[customer]} and {line}): IDs must be unique")
        first_row[customer] = line
        ids.append(customer)
        label = row[at[target]].strip()
        if label not in ("0", "1", "0.0", "1.0"):
            raise InputError(f"{path}: target column {target!r}, data row {line}: {label!r} is "
                             "not 0 or 1")
        labels[r] = int(float(label))
        for c, column in enumerate(columns):
            cell = row[at[column]].strip()
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f"{path}: column {column!r}, data row {line}: {cell!r} is not "
                                 "a number") from None
            if not math.isfinite(value):
                raise InputError(f"{path}: column {column!r}, data row {line}: {cell!r} is "
                                 "missing or not finite (the networks need every value)")
            x[r, c] = value
    if len(set(labels.tolist())) < 2:
        raise InputError(f"{path}: target column {target!r} must hold both classes 0 and 1")
    return PartyData(tuple(ids), labels, x, tuple(columns))


def split(pseudonyms: Sequence[bytes], seed: int, test_size: float) -> np.ndarray:
    """A boolean mask, True for the test rows (module docstring): the same customers at
    every party whatever the order of its rows."""
    if not 0.0 < test_size < 1.0:
        raise UsageError(f"the test share must lie strictly between 0 and 1, got {test_size}")
    order = sorted(range(len(pseudonyms)), key=lambda r: pseudonyms[r])
    shuffled = np.random.default_rng(seed).permutation(len(order))
    n_test = int(round(test_size * len(order)))
    test = np.zeros(len(order), dtype=bool)
    test[[order[i] for i in shuffled[:n_test]]] = True
    return test
