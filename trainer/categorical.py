"""Categorical training columns: a vocabulary learned from the training rows, and codes.

A categorical column holds text (``trainer.data`` keeps its cells as the runtime reads them:
``pyastore.encoding.category_text`` of the raw cell, None for a missing cell). ``learn``
makes its ``pyastore.encoding.Categorical`` from the **training rows only** (the test rows'
categories are unknown to the model, as new ones are on a device); ``encode`` turns a column
into the float codes the trees are fitted on -- with ``Categorical.code``, the function the
device uses, so training and scoring cannot map a text differently.

The order of the vocabulary is the code (position in the list). Two orders:

* ``bytes`` (the default): categories sorted by their UTF-8 bytes (lexicographic ordinal
  codes): reproducible from the data alone, and it uses no label.
* ``target``: categories by their smoothed positive rate on the training rows,
  ``(positives + m * prior) / (rows + m)`` with ``m = SMOOTHING`` and ``prior`` the training
  rows' positive rate, ascending; ties by UTF-8 bytes. A tree's threshold on the code then
  separates low-rate from high-rate categories, the split a tree would look for; the
  smoothing keeps a category seen a few times near the prior rather than at an extreme.

Measured against each other, one-hot columns and XGBoost's own categorical splits in
docs/EXPERIMENTS.md ("Categorical columns"): the byte order was as good as one-hot and the
best exportable encoding on average; the target order lost on a 51-category column (the
order is fitted to the training labels, and the trees then overfit it).

A category seen in fewer than ``min_count`` training rows is left out of the vocabulary (it
scores as unseen); by default every category seen once is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyastore.encoding import Categorical

ORDERS = ("bytes", "target")
SMOOTHING = 10.0


def learn(values: Sequence[str | None] | np.ndarray, y: np.ndarray, order: str = "bytes", *,
          missing: str | int = "as_missing", unseen: str | int = "missing",
          min_count: int = 1) -> Categorical:
    """The vocabulary of ``values`` (texts, None for missing) with labels ``y`` (0/1)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    counts: dict[str, list[int]] = {}
    for value, label in zip(values, np.asarray(y).tolist()):
        if value is None:
            continue
        entry = counts.setdefault(value, [0, 0])
        entry[0] += 1
        entry[1] += int(label)
    kept = [text for text, (n, _) in counts.items() if n >= min_count]
    if order == "bytes":
        ordered = sorted(kept, key=lambda t: t.encode("utf-8"))
    else:
        prior = float(np.mean(y)) if len(y) else 0.0

        def rate(text: str) -> tuple[float, bytes]:
            n, positives = counts[text]
            return (positives + SMOOTHING * prior) / (n + SMOOTHING), text.encode("utf-8")

        ordered = sorted(kept, key=rate)
    return Categorical(tuple(ordered), missing=missing, unseen=unseen)


def encode(values: Sequence[str | None] | np.ndarray, categorical: Categorical) -> np.ndarray:
    """The float64 codes of ``values`` (NaN where the rules say missing); the distinct texts
    are looked up once."""
    values = list(values)
    table = {text: categorical.code(text) for text in dict.fromkeys(values)}
    return np.array([table[v] for v in values], dtype=np.float64)
