"""Baseline generators of synthetic fraud rows.

* ``random_rows``: each feature drawn uniformly between the minimum and maximum of that
  feature over the real fraud rows (the paper's random-number baseline);
* ``smote_rows``: SMOTE (imbalanced-learn) interpolation between a fraud row and one of its
  ``k`` nearest fraud neighbours; only the new rows are returned.
"""

from __future__ import annotations

import numpy as np


def random_rows(fraud_rows: np.ndarray, n_rows: int, *, seed: int = 0) -> np.ndarray:
    fraud_rows = np.asarray(fraud_rows, dtype=np.float64)
    if len(fraud_rows) == 0:
        raise ValueError("the random baseline needs at least one real fraud row")
    rng = np.random.default_rng(seed)
    low, high = fraud_rows.min(axis=0), fraud_rows.max(axis=0)
    return rng.uniform(low, high, size=(n_rows, fraud_rows.shape[1]))


def smote_rows(x: np.ndarray, y: np.ndarray, n_rows: int, *, seed: int = 0,
               k_neighbors: int = 5) -> np.ndarray:
    """``n_rows`` new minority (label 1) rows made by SMOTE from the training rows."""
    from imblearn.over_sampling import SMOTE

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    n_fraud = int((y == 1).sum())
    if n_fraud < 2:
        raise ValueError("SMOTE needs at least two real fraud rows")
    if n_rows <= 0:
        return np.empty((0, x.shape[1]))
    sampler = SMOTE(
        sampling_strategy={1: n_fraud + n_rows},
        k_neighbors=min(k_neighbors, n_fraud - 1),
        random_state=seed,
    )
    resampled_x, _ = sampler.fit_resample(x, y)
    return resampled_x[len(x):]
