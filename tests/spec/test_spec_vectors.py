"""The C core against the spec-derived vectors (vectors.json, made by generate_vectors.py from
naive.py, a second implementation written from docs/FORMAT.md's words).

* the committed table is what the naive implementation gives (``--update-goldens`` rewrites
  it);
* MLP_: sigmoid and tanh of every exp32 input through a one-unit network (weight 1, bias
  0), softmax rows through an identity-weight layer, and whole networks of every activation
  (dot products in input order, each product and sum rounded to float32, no FMA): the
  core's float32 outputs are the table's bits. The float32 exp is not exposed alone; its
  table is what sigmoid, tanh and softmax are computed from;
* FRST: logistic and softmax of every float64 input (as base scores of single-leaf trees,
  so the raw score is exactly the input), forests with mean and sum aggregation, trees
  feeding different outputs and vector leaves: float64 outputs, bit for bit;
* XFRM: every transform operation, through the one-unit identity network.

A NaN output is compared as NaN (the spec leaves its sign and payload open).
"""

from __future__ import annotations

import array
import json
import math
import struct

import generate_vectors as gen
import pytest

from pyastore import _core
from pyastore import format as fmt
from pyastore.ir import (
    Algorithm,
    ModelSpec,
    Output,
    ScoreRules,
    Transforms,
    Variable,
)

TABLE = json.loads(gen.VECTORS.read_text())


def test_the_table_is_what_the_naive_implementation_gives(update_goldens):
    fresh = gen.render()
    if update_goldens:
        gen.VECTORS.write_text(fresh)
    assert gen.VECTORS.read_text() == fresh, \
        "tests/spec/vectors.json is stale: pytest tests/spec --update-goldens"


def open_model(*, forest=None, mlp=None, transforms=None, n_inputs=None):
    n_in = n_inputs or (forest.n_features if forest else len(mlp.layers[0].weights[0]))
    n_out = forest.n_outputs if forest else len(mlp.layers[-1].bias)
    spec = ModelSpec(name="spec vector", algorithm=Algorithm("test", "spec", "1"),
                     inputs=tuple(Variable(f"x{i}") for i in range(n_in)),
                     outputs=tuple(Output(f"y{k}", "score") for k in range(n_out)),
                     rules=ScoreRules("regression"), forest=forest, mlp=mlp,
                     transforms=transforms)
    data = fmt.write(spec, None, created="2026-01-01T00:00:00Z")
    return _core.Model(_core.Container(data))


def score(model, rows: list[list[float]], n_out: int) -> list[list[float]]:
    x = array.array("f", [v for row in rows for v in row])
    out = array.array("d", [0.0] * (len(rows) * n_out))
    model.score_into(x, out)
    return [list(out[i * n_out:(i + 1) * n_out]) for i in range(len(rows))]


def same(expected: float, got: float, width: int) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    pack = ">f" if width == 32 else ">d"
    return struct.pack(pack, expected) == struct.pack(pack, got)


def assert_rows(expected_rows, got_rows, width: int, what: str):
    bad = [(i, e, g) for i, (e, g) in enumerate(zip(expected_rows, got_rows))
           if len(e) != len(g) or not all(same(a, b, width) for a, b in zip(e, g))]
    assert not bad, f"{what}: {len(bad)} rows differ, first {bad[:3]}"


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_mlp_activations_of_every_exp_input(activation):
    mlp = gen.identity_network()
    mlp = type(mlp)((type(mlp.layers[0])(weights=((1.0,),), bias=(0.0,),
                                          activation=activation),))
    pairs = TABLE[f"{activation}32"]
    rows = [[gen.from32(x)] for x, _ in pairs]
    expected = [[gen.from32(y)] for _, y in pairs]
    assert_rows(expected, score(open_model(mlp=mlp), rows, 1), 32, activation)


def test_mlp_softmax_rows():
    from pyastore.ir import Dense, Mlp

    for inputs, outputs in TABLE["softmax32"]:
        n = len(inputs)
        identity = tuple(tuple(1.0 if i == j else 0.0 for i in range(n)) for j in range(n))
        mlp = Mlp((Dense(weights=identity, bias=(0.0,) * n, activation="softmax"),))
        got = score(open_model(mlp=mlp), [[gen.from32(v) for v in inputs]], n)
        assert_rows([[gen.from32(v) for v in outputs]], got, 32, f"softmax {inputs}")


@pytest.mark.parametrize("name", sorted(gen.networks()))
def test_mlp_networks(name):
    mlp = gen.networks()[name]
    cases = TABLE["networks"][name]
    rows = [[gen.from32(v) for v in row] for row, _ in cases]
    expected = [[gen.from32(v) for v in out] for _, out in cases]
    got = score(open_model(mlp=mlp), rows, len(mlp.layers[-1].bias))
    assert_rows(expected, got, 32, name)


@pytest.mark.parametrize("post_transform", ["logistic", "identity"])
def test_forest_post_transform_of_every_input(post_transform):
    pairs = TABLE["logistic64"]
    raw = [gen.from64(x) for x, _ in pairs]
    finite = [i for i, v in enumerate(raw) if not math.isnan(v)]
    forest = gen.outputs_forest([raw[i] for i in finite], post_transform)
    got = score(open_model(forest=forest), [[0.0]], len(finite))[0]
    if post_transform == "identity":  # the raw score is the input, +0 for -0
        expected = [raw[i] + 0.0 for i in finite]
    else:
        expected = [gen.from64(pairs[i][1]) for i in finite]
    assert_rows([expected], [got], 64, post_transform)


def test_forest_softmax_rows():
    for inputs, outputs in TABLE["softmax64"]:
        forest = gen.outputs_forest([gen.from64(v) for v in inputs], "softmax")
        got = score(open_model(forest=forest), [[0.0]], len(inputs))
        assert_rows([[gen.from64(v) for v in outputs]], got, 64, f"softmax {inputs}")


@pytest.mark.parametrize("name", sorted(gen.forests()))
def test_forests(name):
    forest = gen.forests()[name]
    cases = TABLE["forests"][name]
    rows = [[gen.from32(v) for v in row] for row, _ in cases]
    expected = [[gen.from64(v) for v in out] for _, out in cases]
    assert_rows(expected, score(open_model(forest=forest), rows, forest.n_outputs), 64, name)


@pytest.mark.parametrize("name", sorted(gen.transforms()))
def test_transforms(name):
    column = gen.transforms()[name]
    cases = TABLE["transforms"][name]
    model = open_model(mlp=gen.identity_network(), transforms=Transforms(1, (column,)),
                       n_inputs=1)
    rows = [[gen.from32(x)] for x, _ in cases]
    expected = [[gen.from32(y) + 0.0] for _, y in cases]  # 0 + 1 * v: -0 becomes +0
    assert_rows(expected, score(model, rows, 1), 32, name)


def test_the_exp_tables_cover_the_edges():
    """The rounding ties of n, both clamps, subnormal results and overflow are in the table."""
    exp32 = {gen.from32(x): gen.from32(y) for x, y in TABLE["exp32"] if x[:3] != "7fc"}
    assert len(gen.exp32_ties()) > 200
    assert exp32[89.0] == math.inf or exp32[89.0] > 3e38
    assert exp32[-104.0] == exp32[-110.0]
    assert any(0 < y < 1.17549435e-38 for y in exp32.values())  # subnormal results
    exp64 = {gen.from64(x): gen.from64(y) for x, y in TABLE["exp64"] if x[:3] != "7ff"}
    assert 0 < exp64[-744.44] < 2.3e-308 and exp64[-746.0] == 0.0  # subnormal, then 0
    assert exp64[710.0] == math.inf and len(gen.exp64_ties()) > 20
