"""Evaluation of fraud scores on the held-out test set, and seed-to-seed summaries.

Metrics (all on the untouched test rows):

* ``pr_auc``: average precision (area under the precision-recall curve);
* ``roc_auc``: area under the ROC curve;
* ``best_f1``: the best F1 over every cutoff;
* ``recall_at_1pct`` / ``recall_at_5pct``: the share of all test frauds among the 1% / 5% of
  test rows with the highest scores (what an analyst reviewing that many alerts catches).

Metrics that cannot discriminate. ``ceilings`` gives the largest value each metric can reach
on a set of labels, whatever the scores. Recall at k% flagged is capped when more than k% of
the rows are positive: k% of n rows are ``ceil(k% x n)`` alerts, so at most
``alerts / positives`` of the positives are caught (1% of 2,746 test rows is 28 alerts for
246 frauds: 0.1138 at best). A capped metric ranks models only by how close they come to the
cap, and once every model reaches it, it says nothing at all. The other metrics can reach 1;
a metric at its ceiling in every run (a perfect ROC-AUC everywhere, say) cannot tell the
runs apart either. The report and the command line say so next to the number.

Curves are restricted to the part that matters in operations: the top 0-10% of scores (or
false-positive rate), on a fixed grid so that seeds can be averaged.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("pr_auc", "roc_auc", "best_f1", "recall_at_1pct", "recall_at_5pct")
RECALL_AT = {"recall_at_1pct": 0.01, "recall_at_5pct": 0.05}  # metric -> fraction flagged
FLAG_GRID = np.linspace(0.0, 0.10, 101)  # fraction of test rows flagged


def flagged_rows(fraction: float, n_rows: int) -> int:
    """The alerts of ``fraction`` of ``n_rows`` rows: ceil(fraction x n_rows), at least 1 (the
    product rounded to 9 decimals first, so that 1% of 700 rows is 7, not 8)."""
    return max(1, int(math.ceil(round(fraction * n_rows, 9))))


def recall_at(y: np.ndarray, scores: np.ndarray, fraction: float) -> float:
    k = flagged_rows(fraction, len(y))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(y[top].sum() / max(y.sum(), 1))


def ceilings(y: np.ndarray) -> dict[str, float]:
    """The largest value each of METRICS can reach on the labels ``y``, whatever the scores:
    1 for all but recall at k% flagged, which is min(1, alerts / positives)."""
    y = np.asarray(y).astype(int)
    positives = max(int(y.sum()), 1)
    limits = {metric: 1.0 for metric in METRICS}
    for metric, fraction in RECALL_AT.items():
        limits[metric] = min(1.0, flagged_rows(fraction, len(y)) / positives)
    return limits


def cap_reason(metric: str, y: np.ndarray) -> str:
    """Why ``metric`` is capped below 1 on the labels ``y`` (plain words), or empty."""
    if metric not in RECALL_AT:
        return ""
    y = np.asarray(y).astype(int)
    n_rows, positives = len(y), int(y.sum())
    alerts = flagged_rows(RECALL_AT[metric], n_rows)
    if alerts >= positives:
        return ""
    percent = f"{100 * RECALL_AT[metric]:g}%"
    return (f"{percent} of the {n_rows:,} test rows is {alerts:,} alerts for {positives:,} "
            f"positives ({100 * positives / max(n_rows, 1):.2f}% of the rows), so no model "
            f"exceeds {alerts:,} / {positives:,} = {alerts / positives:.4f}; it discriminates "
            f"only when fewer than {percent} of the rows are positive")


def at_ceiling(value: float, ceiling: float) -> bool:
    return value >= ceiling - 1e-12


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
