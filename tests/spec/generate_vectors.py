"""The spec-derived test vectors: inputs for every arithmetic step docs/FORMAT.md defines and
the exact bits the naive second implementation (naive.py) gives for them.

    python tests/spec/generate_vectors.py      # rewrites tests/spec/vectors.json
    pytest tests/spec --update-goldens         # the same, from the test

Floats are written as the hex of their IEEE-754 bits (8 digits for float32, 16 for float64).
The inputs are the edge cases of each definition (NaN, ±inf, ±0, the clamps of exp, ties of
its rounding of n, the 1/8 switch of tanh, results in the subnormal range, overflow) and
seeded random values; ``models()`` builds the containers through which tests/spec checks the
C core against the table.
"""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

import naive  # tests/spec/naive.py: beside this file, on sys.path as a script or a test

from pyastore.ir import ColumnTransform, Dense, Forest, Mlp, Tree

HERE = Path(__file__).resolve().parent

VECTORS = HERE / "vectors.json"
NAN, INF = math.nan, math.inf


def bits32(value: float) -> str:
    return struct.pack(">f", value).hex()


def bits64(value: float) -> str:
    return struct.pack(">d", value).hex()


def from32(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def from64(text: str) -> float:
    return struct.unpack(">d", bytes.fromhex(text))[0]


def next32(value: float, steps: int) -> float:
    """The float32 ``steps`` ulps above (below, when negative) a finite float32 ``value``."""
    (as_int,) = struct.unpack("<i", struct.pack("<f", value))
    key = as_int if as_int >= 0 else -(as_int & 0x7FFFFFFF)
    key += steps
    as_int = key if key >= 0 else (-key) | -0x80000000
    return struct.unpack("<f", struct.pack("<i", as_int))[0]


def exp32_ties() -> list[float]:
    """float32 x whose float32 product x * log2(e) is exactly k + 1/2: where the rounding
    of n (ties to even) decides."""
    found = []
    for k in range(-150, 128):
        guess = naive.f32((k + 0.5) / naive.LOG2_E_32)
        for step in range(-3, 4):
            x = next32(guess, step)
            if naive.f32(x * naive.LOG2_E_32) == k + 0.5 and -104 <= x <= 89:
                found.append(x)
                break
    return found


def exp64_ties() -> list[float]:
    found = []
    for k in range(-1074, 1024, 37):
        guess = (k + 0.5) / naive.LOG2_E_64
        for step in range(-3, 4):
            x = guess
            for _ in range(abs(step)):
                x = math.nextafter(x, math.copysign(INF, step))
            if x * naive.LOG2_E_64 == k + 0.5:
                found.append(x)
                break
    return found


SPECIAL32 = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-8, -1e-8, 1e-45, -1e-45,
             88.72283, 88.72284, 88.7229, 89.0, 89.5, 100.0, -87.33654, -87.3366, -103.27893,
             -103.97208, -103.9721, -104.0, -110.0, 3.4028235e38, -3.4028235e38,
             0.125, next32(0.125, -1), next32(0.125, 1), -0.125, next32(-0.125, 1),
             0.1, 0.01, 9.0, 9.1, 10.0, -9.0, 44.36142, -44.36142]
SPECIAL64 = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, -1e-300, 5e-324,
             709.782712893384, math.nextafter(709.782712893384, INF), 709.0, 710.0,
             -708.3964185322641, -708.4, -744.44, -745.1332191019412,
             math.nextafter(-745.1332191019412, -INF), -746.0, 36.7, -36.7, 1e-17, 40.0]


def inputs32() -> list[float]:
    rng = random.Random(2026)
    values = SPECIAL32 + exp32_ties()
    values += [naive.f32(rng.uniform(-110.0, 95.0)) for _ in range(150)]
    values += [rng.uniform(-1.0, 1.0) * 2.0 ** rng.randint(-30, 3) for _ in range(100)]
    return [naive.f32(x) for x in values]


def inputs64() -> list[float]:
    rng = random.Random(2064)
    values = SPECIAL64 + exp64_ties()
    values += [rng.uniform(-750.0, 712.0) for _ in range(150)]
    values += [rng.uniform(-1.0, 1.0) * 2.0 ** rng.randint(-40, 5) for _ in range(100)]
    return values


def softmax_rows() -> list[list[float]]:
    rng = random.Random(5040)
    rows = [[0.0, 0.0], [1.0, 1.0, 1.0], [-1000.0, 0.0], [89.0, -104.0, 0.0],
            [1e-30, -1e-30, 0.0, 1.0], [50.0, 49.0, 48.0, -50.0, 3.0]]
    rows += [[rng.uniform(-30.0, 30.0) for _ in range(rng.randint(2, 6))] for _ in range(40)]
    return rows


# ---- the models the core scores the vectors with ---------------------------------------

def leaf_tree(value: float) -> Tree:
    return Tree(feature=(-1,), threshold=(0.0,), left=(-1,), right=(-1,),
                default_left=(False,), value=((value,),))


def outputs_forest(raw: list[float], post_transform: str) -> Forest:
    """One single-leaf tree (value 0) per output and base_score = raw: the raw scores are
    exactly ``raw`` (0 + 0 = +0, then + base), the outputs post_transform(raw)."""
    n = len(raw)
    return Forest(n_features=1, n_outputs=n, leaf_width=1,
                  trees=tuple(leaf_tree(0.0) for _ in range(n)), tree_output=tuple(range(n)),
                  aggregation="sum", base_score=tuple(raw), post_transform=post_transform)


def random_tree(rng: random.Random, n_features: int, width: int, depth: int,
                categorical: tuple[int, ...] = ()) -> Tree:
    """A random tree; a split on a feature in ``categorical`` is, half of the time, a
    categorical split whose set holds 1 to 12 codes below 70 (sets ending in either half of a
    word and in the second word)."""
    feature, threshold, left, right, default_left, value = [], [], [], [], [], []
    categories: list[tuple[int, ...]] = []

    def node(level: int) -> int:
        i = len(feature)
        for column in (feature, threshold, left, right, default_left, value, categories):
            column.append(None)
        categories[i] = ()
        if level == depth or rng.random() < 0.2:
            feature[i], threshold[i], left[i], right[i], default_left[i] = -1, 0.0, -1, -1, False
            value[i] = tuple(naive.f32(rng.uniform(-3.0, 3.0)) for _ in range(width))
            return i
        feature[i] = rng.randrange(n_features)
        if feature[i] in categorical and rng.random() < 0.5:
            threshold[i] = 0.0
            categories[i] = tuple(sorted(rng.sample(range(70), rng.randint(1, 12))))
        else:
            threshold[i] = naive.f32(rng.uniform(-2.0, 2.0))
        default_left[i] = rng.random() < 0.5
        value[i] = ()
        left[i] = node(level + 1)
        right[i] = node(level + 1)
        return i

    node(0)
    return Tree(tuple(feature), tuple(threshold), tuple(left), tuple(right),
                tuple(default_left), tuple(value),
                categories=tuple(categories) if any(categories) else ())


def forests() -> dict[str, Forest]:
    """Mean and sum aggregation, trees feeding different outputs, vector leaves, categorical
    splits (features 0 and 1)."""
    rng = random.Random(1)
    out = {}
    for name, n_out, width, outputs, aggregation, post in [
        ("mean_trees_per_output", 3, 1, (0, 0, 1, 2, 2, 2, 0), "mean", "identity"),
        ("mean_vector_leaves_softmax", 3, 3, (0,) * 6, "mean", "softmax"),
        ("sum_logistic", 1, 1, (0,) * 9, "sum", "logistic"),
        ("sum_vector_leaves", 4, 4, (0,) * 5, "sum", "identity"),
    ]:
        trees = tuple(random_tree(rng, 3, width, 4) for _ in outputs)
        base = tuple(rng.uniform(-1.0, 1.0) for _ in range(n_out))
        out[name] = Forest(n_features=3, n_outputs=n_out, leaf_width=width, trees=trees,
                           tree_output=outputs, aggregation=aggregation, base_score=base,
                           post_transform=post)
    rng = random.Random(3)
    trees = tuple(random_tree(rng, 3, 1, 5, categorical=(0, 1)) for _ in range(12))
    out["sum_categorical_logistic"] = Forest(
        n_features=3, n_outputs=1, leaf_width=1, trees=trees, tree_output=(0,) * 12,
        aggregation="sum", base_score=(rng.uniform(-1.0, 1.0),), post_transform="logistic")
    return out


def forest_rows(forest: Forest) -> list[list[float]]:
    """Rows of random float32 values with NaN and edge values; for a forest with categorical
    splits also rows of codes 0..71 and the values no set holds (negatives, fractions, -0,
    +-inf, integers past every set)."""
    rng = random.Random(2)
    rows = [[0.0, 0.0, 0.0], [NAN, NAN, NAN], [INF, -INF, 0.0], [-0.0, 0.0, -0.0],
            [0.5, -1.25, 2.0]]
    rows += [[naive.f32(rng.uniform(-2.5, 2.5)) if rng.random() > 0.1 else NAN
              for _ in range(3)] for _ in range(60)]
    if any(tree.categories for tree in forest.trees):
        rows += [[-1.0, -0.0, 1.0], [2.5, 31.5, -0.5], [-INF, INF, NAN], [31.0, 32.0, 0.0],
                 [63.0, 64.0, 1.5], [69.0, 70.0, -2.0], [1e9, 16777216.0, 0.25],
                 [-0.0, -0.0, -0.0]]
        rows += [[float(rng.randrange(-2, 72)) if rng.random() > 0.1 else NAN,
                  float(rng.randrange(-2, 72)) if rng.random() > 0.1 else NAN,
                  naive.f32(rng.uniform(-2.5, 2.5))] for _ in range(120)]
    return rows


def networks() -> dict[str, Mlp]:
    """A network of each activation, weights random float32, sums in input order."""
    rng = random.Random(3)

    def dense(n_in: int, n_out: int, activation: str, alpha: float = 0.0) -> Dense:
        return Dense(weights=tuple(tuple(naive.f32(rng.uniform(-2, 2)) for _ in range(n_in))
                                   for _ in range(n_out)),
                     bias=tuple(naive.f32(rng.uniform(-1, 1)) for _ in range(n_out)),
                     activation=activation, alpha=alpha)

    return {
        "tanh_sigmoid": Mlp((dense(4, 6, "tanh"), dense(6, 2, "sigmoid"))),
        "relu_leaky_softmax": Mlp((dense(4, 9, "relu"), dense(9, 5, "leaky_relu", 0.125),
                                   dense(5, 3, "softmax"))),
        "identity_wide": Mlp((dense(4, 40, "identity"), dense(40, 1, "identity"))),
    }


def network_rows() -> list[list[float]]:
    rng = random.Random(4)
    rows = [[0.0] * 4, [1.0, -1.0, 2.0, -2.0], [30.0, -30.0, 60.0, 0.5]]
    return rows + [[naive.f32(rng.uniform(-4, 4)) for _ in range(4)] for _ in range(60)]


def mlp64(mlp: Mlp, row: list[float]) -> list[float]:
    x = list(row)
    for layer in mlp.layers:
        x = naive.activate32(layer.activation, naive.dense32(layer.weights, layer.bias, x),
                             layer.alpha)
    return x


def transforms() -> dict[str, ColumnTransform]:
    return {
        "none": ColumnTransform(source=0),
        "impute": ColumnTransform(source=0, impute=0.1),
        "standardize": ColumnTransform(source=0, scaling="standardize", a=0.3, b=1.7),
        "standardize_impute": ColumnTransform(source=0, impute=-2.5, scaling="standardize",
                                              a=-1e-3, b=3e-7),
        "affine": ColumnTransform(source=0, scaling="affine", a=1.0 / 3.0, b=0.1),
        "affine_overflow": ColumnTransform(source=0, scaling="affine", a=1e30, b=0.0),
    }


def transform_inputs() -> list[float]:
    rng = random.Random(5)
    values = SPECIAL32[:13] + [rng.uniform(-1e3, 1e3) for _ in range(50)] + \
        [rng.uniform(-1, 1) * 1e-20 for _ in range(10)]
    return [naive.f32(x) for x in values]


def identity_network() -> Mlp:
    """One unit, weight 1, bias 0: z = 0 + 1 * x is x (and -0 becomes +0)."""
    return Mlp((Dense(weights=((1.0,),), bias=(0.0,), activation="identity"),))


# ---- the table -----------------------------------------------------------------------

def vectors() -> dict[str, object]:
    xs32, xs64 = inputs32(), inputs64()
    table: dict[str, object] = {
        "exp32": [[bits32(x), bits32(naive.exp32(x))] for x in xs32],
        "sigmoid32": [[bits32(x), bits32(naive.sigmoid32(x))] for x in xs32],
        "tanh32": [[bits32(x), bits32(naive.tanh32(x))] for x in xs32],
        "softmax32": [[[bits32(naive.f32(v)) for v in row],
                       [bits32(v) for v in naive.softmax32([naive.f32(v) for v in row])]]
                      for row in softmax_rows()],
        "exp64": [[bits64(x), bits64(naive.exp64(x))] for x in xs64],
        "logistic64": [[bits64(x), bits64(naive.logistic64(x))] for x in xs64],
        "softmax64": [[[bits64(v) for v in row], [bits64(v) for v in naive.softmax64(row)]]
                      for row in softmax_rows()],
        "forests": {name: [[[bits32(v) for v in row],
                            [bits64(v) for v in naive.forest64(forest, row)]]
                           for row in forest_rows(forest)]
                    for name, forest in forests().items()},
        "networks": {name: [[[bits32(v) for v in row], [bits32(v) for v in mlp64(mlp, row)]]
                            for row in network_rows()]
                     for name, mlp in networks().items()},
        "transforms": {name: [[bits32(x), bits32(naive.transform64(column, x))]
                              for x in transform_inputs()]
                       for name, column in transforms().items()},
    }
    return table


def render() -> str:
    return json.dumps(vectors(), indent=0, sort_keys=True) + "\n"


if __name__ == "__main__":
    VECTORS.write_text(render())
    print(f"wrote {VECTORS}")
