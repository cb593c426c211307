"""What the tree exporters share for categorical splits: probe rows and recorded vocabularies.

Probes. The exporters' guards score a few probe rows with the IR and with the library and refuse a
model on which they disagree. For categorical splits the rows that matter are the values
where a library's category rule and the IR's (``pyastore.ir.category_in_set``) could part
ways: every code a split lists (each must reach the same child as in the library), a code no
split lists, the code after the largest listed one (past the end of a library's bitset), NaN
(the default side), negative integers, and integers of ``2**24`` and above (outside every
library's valid range). Fractional values are left out on purpose: libraries truncate them
to a code, the IR does not (pyastore feeds categorical inputs integer codes or NaN only).

Vocabularies. A model fitted on pandas ``category`` columns records each column's categories
(the library's code is the position in that list); ``recorded_vocabulary`` makes it the
categorical input's vocabulary, so the device maps a text to the code the library used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyastore.encoding import Categorical
from pyastore.errors import FormatError, UnsupportedModelError
from pyastore.ir import MAX_CATEGORY_CODE, Forest

OUT_OF_RANGE_VALUES = (-1.0, -2.0, -float(2 ** 31), float(MAX_CATEGORY_CODE),
                       float(MAX_CATEGORY_CODE + 2), float(2 ** 31), float(2 ** 32), 1e30)


def categorical_probe_rows(forest: Forest, base_row: Sequence[float]) -> list[list[float]]:
    """``base_row`` with each feature a categorical split reads set, in turn, to every code
    its splits list, to the smallest code none lists, to the largest listed code plus one, to
    NaN and to ``OUT_OF_RANGE_VALUES`` (module docstring). Every value is exact in float32."""
    codes_by_feature: dict[int, set[int]] = {}
    for tree in forest.trees:
        for node, codes in enumerate(tree.categories):
            if codes:
                codes_by_feature.setdefault(tree.feature[node], set()).update(codes)
    rows = []
    for feature, codes in sorted(codes_by_feature.items()):
        unlisted = next(k for k in range(len(codes) + 1) if k not in codes)
        values = [*sorted(codes), unlisted, max(codes) + 1, math.nan, *OUT_OF_RANGE_VALUES]
        for value in values:
            row = [float(v) for v in base_row]
            row[feature] = float(value)
            rows.append(row)
    return rows


def recorded_vocabulary(where: str, categories: Sequence[object]) -> Categorical:
    """The vocabulary of a column a library recorded ``categories`` for (texts, or integers,
    which become their decimal text as a CSV cell holds them); refused, naming ``where``,
    when they are neither or are not a valid vocabulary (``pyastore.encoding.Categorical``).
    A missing cell scores as missing, an unseen text as missing."""
    texts = [c if isinstance(c, str) else str(c) if isinstance(c, int)
             and not isinstance(c, bool) else None for c in categories]
    if None in texts:
        raise UnsupportedModelError(f"{where}: its recorded categories {list(categories)[:5]}"
                                    f"... are not texts or integers")
    try:
        return Categorical(tuple(str(t) for t in texts))
    except FormatError as error:
        raise UnsupportedModelError(f"{where}: its recorded categories are not a vocabulary: "
                                    f"{error}") from error
