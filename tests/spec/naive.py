"""A second, deliberately naive implementation of the arithmetic docs/FORMAT.md defines.

Written from the specification's words, not from the C core: every float32 operation is done
in Python's float64 and rounded to float32 (exact for +, -, * and /, whose float64 results
round to the correctly rounded float32), integers are Python integers, powers of two are
``2.0 ** k``. Nothing here is fast or clever; each function names the paragraph it follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def f32(value: float) -> float:
    """The float32 nearest ``value`` (ties to even; past the largest float32: ±inf)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def round_half_even(value: float) -> int:
    """``value`` rounded to the nearest integer, ties to the even one (Python's round)."""
    return round(value)


# ---- MLP_: "`exp` is the core's own float32 function" --------------------------------------

LOG2_E_32 = f32(math.log2(math.e))  # 0x1.715476p+0
LN2_HIGH_32 = 0.693145751953125  # 0x1.62e4p-1: ln 2 to 16 bits
LN2_LOW_32 = f32(math.log(2) - 0.693145751953125)  # 0x1.7f7d1cp-20
EXP_COEFFICIENTS_32 = [f32(1 / math.factorial(k)) for k in (7, 6, 5, 4, 3)]  # 1/5040 .. 1/6


def exp32(x: float) -> float:
    if math.isnan(x):
        return x
    xc = min(max(x, -104.0), 89.0)
    n = round_half_even(f32(xc * LOG2_E_32))
    r = f32(xc - f32(n * LN2_HIGH_32))
    r = f32(r - f32(n * LN2_LOW_32))
    p = EXP_COEFFICIENTS_32[0]  # from the inside out: 1/720 + r * (1/5040), ...
    for c in EXP_COEFFICIENTS_32[1:] + [0.5, 1.0, 1.0]:
        p = f32(f32(p * r) + c)
    half = math.floor(n / 2)
    return f32(f32(p * 2.0 ** half) * 2.0 ** (n - half))


TANH_C3, TANH_C5, TANH_C7 = f32(-1 / 3), f32(2 / 15), f32(-17 / 315)


def tanh32(z: float) -> float:
    a = abs(z)
    if a < 0.125:
        a2 = f32(a * a)
        q = f32(TANH_C5 + f32(a2 * TANH_C7))
        q = f32(TANH_C3 + f32(a2 * q))
        t = f32(a + f32(f32(a * a2) * q))
    else:
        t = f32(1.0 - f32(2.0 / f32(exp32(f32(a + a)) + 1.0)))
    return -t if z < 0 else t


def sigmoid32(z: float) -> float:
    return f32(1.0 / f32(1.0 + exp32(-z)))


def softmax32(z: Sequence[float]) -> list[float]:
    m = z[0]
    for value in z[1:]:
        m = value if value > m else m
    e = [exp32(f32(value - m)) for value in z]
    s = 0.0
    for value in e:
        s = f32(s + value)
    return [f32(value / s) for value in e]


def relu32(z: float) -> float:
    return 0.0 if z < 0 else z


def leaky_relu32(z: float, alpha: float) -> float:
    return f32(alpha * z) if z < 0 else z


def dense32(weights: Sequence[Sequence[float]], bias: Sequence[float],
            x: Sequence[float]) -> list[float]:
    """z_j = bias_j, then z = z + w_ji * x_i for i in order, each product and sum rounded."""
    out = []
    for j, row in enumerate(weights):
        z = bias[j]
        for w, value in zip(row, x):
            z = f32(z + f32(w * value))
        out.append(z)
    return out


def activate32(name: str, z: list[float], alpha: float = 0.0) -> list[float]:
    if name == "softmax":
        return softmax32(z)
    one = {"identity": lambda v: v, "relu": relu32, "tanh": tanh32, "sigmoid": sigmoid32,
           "leaky_relu": lambda v: leaky_relu32(v, alpha)}[name]
    return [one(v) for v in z]


# ---- FRST: the post-transform's float64 exp ----------------------------------------------

LOG2_E_64 = 1.4426950408889634
LN2_HIGH_64 = float.fromhex("0x1.62e42fee00000p-1")
LN2_LOW_64 = float.fromhex("0x1.a39ef35793c76p-33")


def exp64(x: float) -> float:
    if math.isnan(x):
        return x
    if x > 709.782712893384:
        return math.inf
    if x < -745.1332191019412:
        return 0.0
    n = round_half_even(x * LOG2_E_64)
    r = (x - n * LN2_HIGH_64) - n * LN2_LOW_64
    p = 1 / math.factorial(13)
    for k in range(12, 2, -1):
        p = p * r + 1 / math.factorial(k)
    p = p * r + 0.5
    p = p * r * r + r
    half = math.floor(n / 2)
    return (1.0 + p) * 2.0 ** half * 2.0 ** (n - half)


def logistic64(raw: float) -> float:
    return 1.0 / (1.0 + exp64(-raw))


def softmax64(raw: Sequence[float]) -> list[float]:
    m = raw[0]
    for value in raw[1:]:
        m = value if value > m else m
    e = [exp64(value - m) for value in raw]
    s = 0.0
    for value in e:
        s = s + value
    return [value / s for value in e]


def in_set(x: float, codes: Sequence[int]) -> bool:
    """A categorical split's rule for a non-NaN x: left when x is an integer k >= 0 (-0 is
    code 0) that is one of the set's codes; a fraction, a negative, +-inf or an integer not in
    the set goes right."""
    if math.isinf(x) or x < 0 or x != math.floor(x):
        return False
    return int(x) in codes


def walk(tree, row: Sequence[float]) -> int:
    """The leaf node a row reaches in a tree (pyastore.ir.Tree): left when x < threshold, or
    at a categorical split when x is in its set; NaN along the default branch."""
    i = 0
    while tree.feature[i] >= 0:
        x = row[tree.feature[i]]
        codes = tree.categories[i] if tree.categories else ()
        if math.isnan(x):
            go_left = tree.default_left[i]
        elif codes:
            go_left = in_set(x, codes)
        else:
            go_left = x < tree.threshold[i]
        i = tree.left[i] if go_left else tree.right[i]
    return i


def forest64(forest, row: Sequence[float]) -> list[float]:
    """Scoring one row (a pyastore.ir.Forest): leaf contributions, widened from float32,
    summed per output in float64 in tree order from +0; for the mean, the sum times
    float64(1 / n_trees); plus base; then the post-transform."""
    n_out, width = forest.n_outputs, forest.leaf_width
    raw = [0.0] * n_out
    for tree, output in zip(forest.trees, forest.tree_output):
        leaf = [f32(v) for v in tree.value[walk(tree, row)]]
        for k in range(n_out):
            if width == 1 and k == output:
                raw[k] = raw[k] + leaf[0]
            elif width > 1:
                raw[k] = raw[k] + leaf[k]
    if forest.aggregation == "mean":
        scale = 1.0 / len(forest.trees)
        raw = [value * scale for value in raw]
    base = forest.base_score or (0.0,) * n_out
    raw = [value + b for value, b in zip(raw, base)]
    if forest.post_transform == "logistic":
        return [logistic64(value) for value in raw]
    if forest.post_transform == "softmax":
        return softmax64(raw)
    return raw


# ---- XFRM ------------------------------------------------------------------------------

def transform64(column, x: float) -> float:
    """One model column (a pyastore.ir.ColumnTransform) of a raw float32 value, in float64,
    rounded to float32 at the end."""
    v = x
    if math.isnan(v) and column.impute is not None:
        v = column.impute
    if column.scaling == "standardize":
        v = (v - column.a) / column.b
    elif column.scaling == "affine":
        v = v * column.a + column.b
    return f32(v)
