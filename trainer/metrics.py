"""Evaluation of fraud scores on the held-out test set, and seed-to-seed summaries.

Metrics (all on the untouched test rows):

* ``pr_auc``: average precision (area under the precision-recall curve);
* ``roc_auc``: area under the ROC curve;
* ``best_f1``: the best F1 over every cutoff;
* ``recall_at_1pct`` / ``recall_at_5pct``: the share of all test frauds among the 1% / 5% of
  test rows with the highest scores (what an analyst reviewing that many alerts catches).

Curves are restricted to the part that matters in operations: the top 0-10% of scores (or
false-positive rate), on a fixed grid so that seeds can be averaged.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("pr_auc", "roc_auc", "best_f1", "recall_at_1pct", "recall_at_5pct")
FLAG_GRID = np.linspace(0.0, 0.10, 101)  # fraction of test rows flagged


def recall_at(y: np.ndarray, scores: np.ndarray, fraction: float) -> float:
    k = max(1, int(math.ceil(fraction * len(y))))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(y[top].sum() / max(y.sum(), 1))


def evaluate(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    precision, recall, _ = precision_recall_curve(y, scores)
    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0
    )
    return {
        "pr_auc": float(average_precision_score(y, scores)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "best_f1": float(f1.max()),
        "recall_at_1pct": recall_at(y, scores, 0.01),
        "recall_at_5pct": recall_at(y, scores, 0.05),
    }


def curves(y: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """Curves on FLAG_GRID (fraction flagged 0..10%): recall, precision, F1, and the ROC
    true-positive rate on a false-positive grid 0..10%."""
    from sklearn.metrics import roc_curve

    y = np.asarray(y).astype(int)
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.cumsum(y[order])
    n, positives = len(y), max(int(y.sum()), 1)
    recall, precision = [], []
    for fraction in FLAG_GRID:
        k = int(round(fraction * n))
        caught = hits[k - 1] if k > 0 else 0
        recall.append(caught / positives)
        precision.append(caught / k if k > 0 else 1.0)
    recall_a, precision_a = np.array(recall), np.array(precision)
    f1 = np.where(
        recall_a + precision_a > 0,
        2 * recall_a * precision_a / np.maximum(recall_a + precision_a, 1e-300),
        0.0,
    )
    fpr, tpr, _ = roc_curve(y, scores)
    tpr_grid = np.interp(FLAG_GRID, fpr, tpr)
    return {"flagged": FLAG_GRID.tolist(), "recall": recall, "precision": precision,
            "f1": f1.tolist(), "fpr": FLAG_GRID.tolist(), "tpr": tpr_grid.tolist()}


def summarize(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "n": int(len(array))}


def noise_verdict(baseline: list[float], variant: list[float]) -> str:
    """Plain words on a paired difference over seeds: is it larger than the seed noise?

    The difference is called real when its mean is more than two standard errors of the
    paired differences away from zero (and there are at least 3 seeds); otherwise it is within
    the seed-to-seed noise.
    """
    differences = np.asarray(variant, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(differences) < 3:
        return "too few seeds to tell from noise"
    mean = differences.mean()
    standard_error = differences.std(ddof=1) / math.sqrt(len(differences))
    if standard_error == 0.0:
        return (
            "identical on every seed"
            if mean == 0
            else ("better" if mean > 0 else "worse") + " on every seed"
        )
    if abs(mean) > 2 * standard_error:
        return (
            "better" if mean > 0 else "worse"
        ) + f" by {mean:+.4f} (beyond 2 standard errors, {standard_error:.4f})"
    return f"within seed-to-seed noise ({mean:+.4f} +/- {standard_error:.4f})"
