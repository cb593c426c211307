"""Columns that give the label away, found on the training rows before anything is fitted.

A leak is a column that predicts the label in this file for a reason a new transaction will
not share. Each feature column is checked alone (the target and the ``--drop`` columns are
already gone), on the training rows of the first split (``--seed``), in file order:

1. **It separates the label.** Its ROC-AUC against the label is >= 0.99 or <= 0.01: one
   threshold on this column alone puts nearly every positive row above (or below) nearly
   every negative one. Genuine fraud signals are not that clean -- the strongest column of
   the ULB credit-card data, V14, reaches 0.95 -- so a column this good is usually the label
   in another form, or something known only after the fact (a chargeback flag, a case
   number given to frauds).
2. **It follows the row order, and the row order follows the label.** The column is strictly
   increasing or strictly decreasing down the rows (a row number, an ID, the timestamp of a
   file sorted by time without ties) and its ROC-AUC is >= 0.9 or <= 0.1. Such a column says
   where a row sits in the file; that the position ranks the label this well means the rows
   were sorted or grouped with the label (frauds appended at the end, a file assembled class
   by class), and the model would learn the position -- which a new transaction does not
   have. The bar is lower than in rule 1 because a position is no property of the
   transaction at all; 0.9 stays well above what time drift gives in real data (the
   credit-card data's Time: 0.42, sorted by time with ties). A file sorted by a genuine
   feature also makes that feature monotone: the warning says so, and the user decides.

ROC-AUC is the Mann-Whitney statistic of the column's values (ties count one half, as in
``sklearn.metrics.roc_auc_score``), computed for every column at once from ranks. Missing
values (NaN) are ranked below every value and then above every value, and the AUC further
from 0.5 counts: a tree may send missing values either way, so a column whose missingness
alone marks the frauds is caught too. A warning is advice, not a refusal: it names the
column, the rule and the number, and the option that drops the column (``--drop NAME``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

SEPARATES = 0.99  # rule 1: ROC-AUC >= this, or <= 1 - this
ROW_ORDER = 0.9  # rule 2: ROC-AUC >= this, or <= 1 - this, for a strictly monotone column


@dataclass(frozen=True)
class Leak:
    """One suspicious column: ``rule`` is ``separates`` or ``row_order``; ``order`` is
    ``increasing``/``decreasing`` when the column is strictly monotone in row order, else
    empty; ``roc_auc`` is on ``rows`` training rows."""

    column: str
    rule: str
    roc_auc: float
    order: str
    rows: int

    @property
    def message(self) -> str:
        drop = f"--drop {shlex.quote(self.column)}"
        lowest = " (positives lowest)" if self.roc_auc < 0.5 else ""
        measured = f"ROC-AUC {self.roc_auc:.4f}{lowest} on the {self.rows:,} training rows"
        if self.rule == "separates":
            text = f"column {self.column!r} alone separates the label ({measured})"
            if self.order:
                return (f"{text} and is strictly {self.order} in row order: a row number or "
                        f"ID of a file sorted by the label; drop it ({drop})")
            return (f"{text}: a column that good is usually the label in another form or "
                    f"known only after the fact; if so, drop it ({drop})")
        return (f"column {self.column!r} is strictly {self.order} in row order and ranks the "
                f"label with {measured}: the rows are sorted or grouped with the label, and a "
                f"position in the file (a row number, an ID, a sorted timestamp) is nothing "
                f"a new transaction has; unless the file is sorted by this column as a genuine "
                f"feature, drop it ({drop})")

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rule": self.rule, "roc_auc": self.roc_auc,
                "order": self.order, "rows": self.rows, "message": self.message}


def column_roc_auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column of ``x`` (rows x columns) against the 0/1 labels ``y``, NaN-safe
    as the module docstring says; 0.5 for every column when ``y`` holds one class only."""
    from scipy.stats import rankdata

    x = np.asarray(x, dtype=np.float64)
    positive = np.asarray(y) == 1
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if x.ndim != 2 or n_positive == 0 or n_negative == 0:
        return np.full(x.shape[1] if x.ndim == 2 else 0, 0.5)
    missing = np.isnan(x)
    aucs = []
    for fill in (-np.inf, np.inf) if missing.any() else (0.0,):
        ranks = rankdata(np.where(missing, fill, x), axis=0)
        wins = ranks[positive].sum(axis=0) - n_positive * (n_positive + 1) / 2.0
        aucs.append(wins / (n_positive * n_negative))
    low, high = aucs if len(aucs) == 2 else aucs * 2
    return np.where(np.abs(low - 0.5) >= np.abs(high - 0.5), low, high)


def row_order(column: np.ndarray) -> str:
    """``increasing`` or ``decreasing`` when the column is strictly so down its rows (no
    missing value, at least 3 rows), else empty."""
    if len(column) < 3 or np.isnan(column).any():
        return ""
    steps = np.diff(column)
    if (steps > 0).all():
        return "increasing"
    if (steps < 0).all():
        return "decreasing"
    return ""


def find_leaks(x: np.ndarray, y: np.ndarray, names: tuple[str, ...] | list[str]) -> list[Leak]:
    """The leaks among the columns of ``x`` (training rows in file order), by column order."""
    x = np.asarray(x, dtype=np.float64)
    aucs = column_roc_auc(x, y)
    leaks = []
    for j, name in enumerate(names):
        auc = float(aucs[j])
        strength = max(auc, 1.0 - auc)
        order = row_order(x[:, j])
        if strength >= SEPARATES:
            leaks.append(Leak(name, "separates", auc, order, len(y)))
        elif order and strength >= ROW_ORDER:
            leaks.append(Leak(name, "row_order", auc, order, len(y)))
    return leaks


def check_training_rows(dataset, test_size: float, seed: int) -> list[Leak]:
    """``find_leaks`` on the training rows of the split ``trainer.fraud.split`` makes with
    ``test_size`` and ``seed`` (its row indices are sorted: file order is kept); a
    categorical column is checked through its codes (vocabulary of those rows)."""
    from trainer.fraud import split

    train_index, _ = split(dataset, test_size, seed)
    x = dataset.encoded(train_index)[0] if dataset.text else dataset.x
    return find_leaks(x[train_index], dataset.y[train_index], dataset.feature_names)
