"""Training data: CSV loading with clear errors, and the bundled default data set.

``load_csv`` reads a header CSV of numeric columns (a UTF-8 BOM is tolerated), checks the
target column (present, numeric, no missing values, two classes 0/1), drops ID-like columns on
request, and returns the features, the labels and the SHA-256 of the file's bytes (recorded in
the container's provenance).

``bundled_fraud_data`` generates the default data set the README's first command trains on:
a fraud-like table, reproducible from its seed (same bytes on every machine with the same
NumPy), documented below so anyone can regenerate it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyastore.errors import InputError, UsageError
from pyastore.files import read_bytes

BUNDLED_SEED = 20261122
BUNDLED_ROWS = 6000
BUNDLED_FRAUD_RATE = 0.03
BUNDLED_FEATURES = 12


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float64, (n_rows, n_features)
    y: np.ndarray  # int64 0/1
    feature_names: tuple[str, ...]
    target: str
    source: str
    sha256: str

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


def load_csv(path: str | Path, target: str, drop: tuple[str, ...] = ()) -> Dataset:
    """Load a labelled CSV. Errors name the file, the column and (for bad cells) the row."""
    path = Path(path)
    data = read_bytes(path, what="CSV file")
    frame = _read_frame(data, str(path))
    frame.columns = [str(c).strip() for c in frame.columns]
    if target not in frame.columns:
        raise InputError(
            f"{path}: no target column {target!r} (columns: {', '.join(frame.columns)})"
        )
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise InputError(f"{path}: --drop names unknown column(s): {', '.join(unknown)}")
    if target in drop:
        raise UsageError(f"--drop cannot drop the target column {target!r}")
    frame = frame.drop(columns=list(drop))
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
    for column in frame.columns:
        if frame[column].dtype.kind not in "fiub":
            converted = frame[column].apply(_to_float)
            bad = converted.isna() & frame[column].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
                raise InputError(f"{path}: column {column!r}, data row {row}: "
                                 f"{frame[column].iloc[row - 1]!r} is not a number")
            frame[column] = converted
    if frame.shape[1] == 0:
        raise InputError(f"{path}: no feature columns besides the target")
    return Dataset(x=frame.to_numpy(dtype=np.float64), y=labels.to_numpy().astype(np.int64),
                   feature_names=tuple(frame.columns), target=target, source=str(path),
                   sha256=hashlib.sha256(data).hexdigest())


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
