"""Classification metrics of the vertical experiment: class 1 when P(class 1) > 0.5, the
containers' decision rule (a score exactly at the cutoff is negative).

``accuracy``; ``macro_precision`` / ``macro_recall`` / ``macro_f1`` (the unweighted mean over
the two classes, what the published table reports); ``precision_1`` / ``recall_1`` / ``f1_1``
for class 1 (the loans); and the confusion counts. A class that is never predicted has
precision 0 (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "precision_1",
           "recall_1", "f1_1")


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray,
                           cutoff: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) > cutoff).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=[0, 1], zero_division=0)
    (tn, fp), (fn, tp) = confusion_matrix(y, predicted, labels=[0, 1])
    return {"accuracy": float(accuracy_score(y, predicted)),
            "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()), "precision_1": float(precision[1]),
            "recall_1": float(recall[1]), "f1_1": float(f1[1]),
            "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
