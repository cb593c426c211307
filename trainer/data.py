"""Training data: CSV loading with clear errors, and the bundled default data set.

``load_csv`` reads a header CSV (a UTF-8 BOM is tolerated), checks the target column (present,
numeric, no missing values, two classes 0/1), drops ID-like columns on request, and returns
the features, the labels and the SHA-256 of the file's bytes (recorded in the container's
provenance). With categorical columns on (``categorical=``), a column of text is kept as its
texts (``Dataset.text``), encoded only once the training rows are known
(``Dataset.encoded``, ``trainer.categorical``).

Column names. The reader keeps a header name as pandas parses it (the file's UTF-8 byte-order
marks dropped, CSV quotes undone: ``" a ""b"" "`` is `` a "b" ``) with its surrounding
whitespace removed (``str.strip``: spaces, tabs, no-break spaces); inside a name, spaces and
case are kept. An empty header cell is named ``Unnamed: <index>`` by pandas. Two header cells
that come out as one name are refused (pandas would rename the second ``name.1``). A name
given on the command line (``--target``, ``--drop``) is normalised the same way
(``column_name``), and when it is wholly in double quotes and not itself a header name, its
quotes are undone as the reader undoes them (``'"ID"'`` names ``ID``). ``find_column`` says
how names are compared and lists the nearest header names when one is not found.

``bundled_fraud_data`` generates the default data set the README's first command trains on:
a fraud-like table, reproducible from its seed (same bytes on every machine with the same
NumPy), documented below so anyone can regenerate it.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyastore.encoding import Categorical
from pyastore.errors import InputError, UsageError
from pyastore.files import read_bytes

BUNDLED_SEED = 20261122
BUNDLED_ROWS = 6000
BUNDLED_FRAUD_RATE = 0.03
BUNDLED_FEATURES = 12


@dataclass(frozen=True)
class Dataset:
    """Labelled rows. A categorical column's cells are in ``text`` (its index -> an object
    array of texts, None for missing); its column of ``x`` is NaN until ``encoded`` gives
    the codes of a vocabulary learned on chosen rows."""

    x: np.ndarray  # float64, (n_rows, n_features)
    y: np.ndarray  # int64 0/1
    feature_names: tuple[str, ...]
    target: str
    source: str
    sha256: str
    text: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(self.feature_names[i] for i in sorted(self.text))

    def encoded(self, rows: np.ndarray, order: str = "bytes"
                ) -> tuple[np.ndarray, dict[str, Categorical]]:
        """``x`` with every categorical column replaced by its codes, the vocabularies
        learned on ``rows`` only (``trainer.categorical``), and the vocabularies by name."""
        from trainer import categorical

        x = self.x.copy()
        vocabularies: dict[str, Categorical] = {}
        for column, values in sorted(self.text.items()):
            vocabulary = categorical.learn(values[rows], self.y[rows], order)
            x[:, column] = categorical.encode(values, vocabulary)
            vocabularies[self.feature_names[column]] = vocabulary
        return x, vocabularies

    def balance(self) -> str:
        n_fraud = int(self.y.sum())
        return (
            f"{len(self.y)} rows, {n_fraud} positive "
            f"({100.0 * n_fraud / max(len(self.y), 1):.2f}%), "
            f"{len(self.feature_names)} features"
        )


def _read_frame(data: bytes, source: str):
    import pandas as pd

    if not data.strip():
        raise InputError(f"{source}: the file is empty")
    try:
        return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{source}: not a readable CSV ({exc})") from None


MATCHING = "header names are compared with surrounding spaces removed"


def column_name(text: str) -> str:
    """A column name as the CSV reader keeps a header name: surrounding whitespace removed,
    and byte-order marks at its start (the reader drops the file's)."""
    return text.strip().lstrip("\ufeff").strip()


def _unquoted(name: str) -> str | None:
    """``name`` with its CSV quotes undone when it is wholly one quoted field, else None."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return None
    try:
        cells = next(csv.reader([name], strict=True))
    except csv.Error:
        return None
    return column_name(cells[0]) if len(cells) == 1 else None


def _near_matches(name: str, header: Sequence[str]) -> str:
    by_folded: dict[str, str] = {}
    for candidate in header:
        by_folded.setdefault(candidate.casefold(), candidate)
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.6)
    names = [repr(by_folded[c]) for c in close]
    if names:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"; did you mean {listed}?"
    shown = ", ".join(repr(c) for c in header[:20])
    more = f" and {len(header) - 20} more" if len(header) > 20 else ""
    return f"; the columns are {shown}{more}"


def find_column(header: Sequence[str], given: str, option: str, source: str = "") -> str:
    """The header name that ``given`` (the value of ``option``, e.g. ``--drop``) names, or a
    UsageError that says how names are compared and lists the near matches (``source``: the
    file, for the message)."""
    name = column_name(given)
    if name in header:
        return name
    unquoted = _unquoted(name)
    if unquoted is not None and unquoted in header:
        return unquoted
    where = f" in {source}" if source else ""
    raise UsageError(f"{option}: no column named {given!r}{where} ({MATCHING})"
                     f"{_near_matches(name, header)}")


def header_names(data: bytes, frame, source: str) -> list[str]:
    """The frame's column names as the module docstring says (pandas' own names for empty
    header cells); two cells of one name are an InputError naming both positions."""
    import pandas as pd

    raw = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", skipinitialspace=True,
                      header=None, nrows=1, dtype=str, keep_default_na=False)
    cells = [str(c) for c in raw.iloc[0]] if len(raw) else []
    if len(cells) != len(frame.columns):  # not expected; pandas' names are then the truth
        cells = [str(c) for c in frame.columns]
    names = [column_name(cell) or str(fallback) for cell, fallback in zip(cells, frame.columns)]
    first: dict[str, int] = {}
    for position, name in enumerate(names):
        earlier = first.setdefault(name, position)
        if earlier != position:
            raise InputError(f"{source}: header columns {earlier + 1} and {position + 1} are "
                             f"both named {name!r} ({MATCHING})")
    return names


def read_table(path: Path):
    """The CSV at ``path`` as a DataFrame whose columns are the header names (see the module
    docstring), and the file's bytes."""
    data = read_bytes(path, what="CSV file")
    frame = _read_frame(data, str(path))
    frame.columns = header_names(data, frame, str(path))
    return frame, data


def load_csv(path: str | Path, target: str, drop: Sequence[str] = (), *,
             categorical: Sequence[str] | None = None, numeric: Sequence[str] = ()) -> Dataset:
    """Load a labelled CSV. Errors name the file, the column and (for bad cells) the row;
    ``target``, ``drop``, ``categorical`` and ``numeric`` name header columns as
    ``find_column`` matches them.

    ``categorical=None`` (the default): every feature must be numeric, a text cell is an
    error. A sequence (even empty) turns on categorical columns: a column holding a cell
    that is not a number (nor missing) is categorical unless named in ``numeric`` (then the
    cell is the error it is without categories), and the columns named in ``categorical``
    are categorical whatever they hold (numbers are then their text: ``"94110"``). The texts
    of a categorical column are its raw cells as the runtime reads them (``text_cells``)."""
    path = Path(path)
    frame, data = read_table(path)
    header = list(frame.columns)
    target = find_column(header, target, "--target", str(path))
    drop = list(dict.fromkeys(find_column(header, name, "--drop", str(path)) for name in drop))
    if target in drop:
        raise UsageError(f"--drop cannot drop the target column {target!r}")
    forced = [] if categorical is None else list(dict.fromkeys(
        find_column(header, name, "--categorical", str(path)) for name in categorical))
    kept_numeric = list(dict.fromkeys(find_column(header, name, "--numeric", str(path))
                                      for name in numeric))
    both = sorted(set(forced) & set(kept_numeric))
    if both:
        raise UsageError(f"{', '.join(repr(b) for b in both)}: named by both --categorical "
                         "and --numeric")
    for option, names in (("--categorical", forced), ("--numeric", kept_numeric)):
        if target in names or set(names) & set(drop):
            raise UsageError(f"{option} names the target or a dropped column")
    frame = frame.drop(columns=drop)
    labels = frame.pop(target)
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0]) + 1
        raise InputError(f"{path}: target column {target!r} is missing a value in data row {row}")
    numeric = labels.apply(lambda v: isinstance(v, (int, float, np.integer, np.floating)))
    if not numeric.all():
        row = int(np.flatnonzero(~numeric.to_numpy())[0]) + 1
        raise InputError(f"{path}: target column {target!r} is not numeric "
                         f"(data row {row}: {labels.iloc[row - 1]!r})")
    values = set(np.unique(labels.to_numpy()))
    if not values <= {0, 1} or len(values) < 2:
        raise InputError(f"{path}: target column {target!r} must hold both classes 0 and 1, "
                         f"found {sorted(values)[:10]}")
    texts: dict[str, np.ndarray] = {}
    raw = None
    for column in frame.columns:
        if column in forced:
            if raw is None:
                raw = _raw_cells(data)
            texts[column] = text_cells(raw[header.index(column)])
            frame[column] = np.nan
            continue
        if frame[column].dtype.kind not in "fiub":
            converted = frame[column].apply(_to_float)
            bad = converted.isna() & frame[column].notna()
            if bad.any() and categorical is not None and column not in kept_numeric:
                if raw is None:
                    raw = _raw_cells(data)
                texts[column] = text_cells(raw[header.index(column)])
                frame[column] = np.nan
                continue
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
                raise InputError(f"{path}: column {column!r}, data row {row}: "
                                 f"{frame[column].iloc[row - 1]!r} is not a number")
            frame[column] = converted
    if frame.shape[1] == 0:
        raise InputError(f"{path}: no feature columns besides the target")
    names = tuple(frame.columns)
    return Dataset(x=frame.to_numpy(dtype=np.float64), y=labels.to_numpy().astype(np.int64),
                   feature_names=names, target=target, source=str(path),
                   sha256=hashlib.sha256(data).hexdigest(),
                   text={names.index(name): values for name, values in texts.items()})


def _raw_cells(data: bytes) -> list[list[str]]:
    """Every column's cells as text, exactly as the file holds them (CSV quotes undone),
    header left out: what a categorical column's categories are made of."""
    import pandas as pd

    raw = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, header=None,
                      skiprows=1, keep_default_na=False, na_filter=False)
    return [raw[c].tolist() for c in raw.columns]


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def bundled_fraud_csv() -> bytes:
    """The bundled default data set as CSV bytes (deterministic; see module docstring).

    6,000 card transactions, 3% fraud, 12 features: ``amount`` (log-normal; frauds larger),
    ``hour`` (0-23; frauds more often at night), ``merchant_risk`` (0-1), ``distance_km``
    (log-normal; frauds farther), ``txn_per_hour``, ``account_age_days``,
    ``foreign`` (0/1), ``card_present`` (0/1) and four PCA-like components ``v1..v4``
    (standard normal; shifted for frauds). About 4% of ``merchant_risk`` and
    ``distance_km`` cells are missing. Frauds overlap legitimate rows: the task is not trivial.
    Target column: ``fraud``.
    """
    rng = np.random.default_rng(BUNDLED_SEED)
    n = BUNDLED_ROWS
    fraud = (rng.random(n) < BUNDLED_FRAUD_RATE).astype(int)
    f = fraud.astype(bool)
    amount = np.exp(rng.normal(3.5, 1.0, n) + 0.9 * f)
    hour = np.where(f & (rng.random(n) < 0.55), rng.integers(0, 6, n), rng.integers(0, 24, n))
    merchant_risk = np.clip(rng.beta(2, 8, n) + 0.25 * f * rng.random(n), 0, 1)
    distance = np.exp(rng.normal(2.0, 1.2, n) + 1.1 * f)
    txn_per_hour = rng.poisson(1.5 + 2.5 * f)
    account_age = np.round(rng.exponential(900, n) * np.where(f, 0.35, 1.0))
    foreign = (rng.random(n) < 0.08 + 0.35 * f).astype(int)
    card_present = (rng.random(n) < 0.7 - 0.45 * f).astype(int)
    v = rng.normal(0, 1, (n, 4)) + f[:, None] * np.array([1.2, -0.8, 0.5, 0.0])
    merchant_risk[rng.random(n) < 0.04] = np.nan
    distance[rng.random(n) < 0.04] = np.nan
    columns = {
        "amount": np.round(amount, 2), "hour": hour, "merchant_risk": np.round(merchant_risk, 4),
        "distance_km": np.round(distance, 3), "txn_per_hour": txn_per_hour,
        "account_age_days": account_age.astype(int), "foreign": foreign,
        "card_present": card_present,
        **{f"v{i + 1}": np.round(v[:, i], 5) for i in range(4)},
        "fraud": fraud,
    }
    lines = [",".join(columns)]
    names = list(columns)
    for i in range(n):
        cells = []
        for name in names:
            value = columns[name][i]
            cells.append(
                ""
                if isinstance(value, float) and np.isnan(value)
                else repr(value.item())
                if hasattr(value, "item")
                else repr(value)
            )
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode("ascii")


def write_bundled(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bundled_fraud_csv())
    return path


def text_cells(cells: Sequence[str]) -> np.ndarray:
    """Raw CSV cells of a categorical column as the runtime reads them (an object array):
    ``pyastore.encoding.category_text`` of each cell, None for a missing cell (empty or a
    missing-value word after that)."""
    from pyastore.encoding import MISSING_TOKENS, category_text

    texts = [category_text(cell) for cell in cells]
    return np.array([None if text in MISSING_TOKENS else text for text in texts], dtype=object)
