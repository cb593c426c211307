"""Baseline generators of synthetic fraud rows.

* ``random_rows``: each feature drawn uniformly between the minimum and maximum of that
  feature over the real fraud rows (the paper's random-number baseline);
* ``smote_rows``: SMOTE (imbalanced-learn) interpolation between a fraud row and one of its
  ``k`` nearest fraud neighbours; only the new rows are returned.

Categorical columns (the codes of a vocabulary, ``trainer.categorical``) are never given a
value between two codes: the random baseline draws codes the real frauds hold, SMOTE becomes
SMOTE-NC, and ``nearest_codes`` moves a generator's real-valued output to valid codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_rows(fraud_rows: np.ndarray, n_rows: int, *, seed: int = 0,
                categorical: Sequence[int] = ()) -> np.ndarray:
    """Each feature uniform between the real frauds' minimum and maximum; a categorical
    column (its index in ``categorical``) takes one of the codes the real frauds hold, each
    equally likely, never a value between two codes."""
    fraud_rows = np.asarray(fraud_rows, dtype=np.float64)
    if len(fraud_rows) == 0:
        raise ValueError("the random baseline needs at least one real fraud row")
    rng = np.random.default_rng(seed)
    low, high = fraud_rows.min(axis=0), fraud_rows.max(axis=0)
    rows = rng.uniform(low, high, size=(n_rows, fraud_rows.shape[1]))
    for column in categorical:
        rows[:, column] = rng.choice(np.unique(fraud_rows[:, column]), size=n_rows)
    return rows


def smote_rows(x: np.ndarray, y: np.ndarray, n_rows: int, *, seed: int = 0,
               k_neighbors: int = 5, categorical: Sequence[int] = ()) -> np.ndarray:
    """``n_rows`` new minority (label 1) rows made by SMOTE from the training rows. With
    ``categorical`` column indices, SMOTE-NC (SMOTE-N when every column is categorical):
    a new row's category is the most common among the neighbours it was made from, so a
    categorical column only ever holds codes of real rows."""
    from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    n_fraud = int((y == 1).sum())
    if n_fraud < 2:
        raise ValueError("SMOTE needs at least two real fraud rows")
    if n_rows <= 0:
        return np.empty((0, x.shape[1]))
    options = dict(sampling_strategy={1: n_fraud + n_rows},
                   k_neighbors=min(k_neighbors, n_fraud - 1), random_state=seed)
    columns = sorted(set(categorical))
    if not columns:
        sampler = SMOTE(**options)
    elif len(columns) == x.shape[1]:
        sampler = SMOTEN(**options)
    else:
        sampler = SMOTENC(categorical_features=columns, **options)
    resampled_x, _ = sampler.fit_resample(x, y)
    return np.asarray(resampled_x, dtype=np.float64)[len(x):]


def nearest_codes(rows: np.ndarray, categorical: Sequence[int],
                  codes: Sequence[np.ndarray]) -> np.ndarray:
    """``rows`` with each categorical column (``categorical[i]``) moved to the nearest of its
    valid ``codes[i]``: for generators that make every column a real number (the CapsNet's
    decoder)."""
    rows = np.array(rows, dtype=np.float64)
    for column, valid in zip(categorical, codes):
        valid = np.sort(np.asarray(valid, dtype=np.float64))
        if len(valid) < 2:
            rows[:, column] = valid[0] if len(valid) else rows[:, column]
            continue
        right = np.clip(np.searchsorted(valid, rows[:, column]), 1, len(valid) - 1)
        left = right - 1
        closer_left = (np.abs(rows[:, column] - valid[left])
                       <= np.abs(valid[right] - rows[:, column]))
        rows[:, column] = np.where(closer_left, valid[left], valid[right])
    return rows
