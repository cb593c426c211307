"""pytest-benchmark suite: what categorical set-membership splits cost the C core.

``pytest bench/test_bench_categorical.py --benchmark-only``. One XGBoost model shape (100
trees, depth 6) fitted on the same rows twice -- ten numeric columns and two categorical code
columns (60 and 8 categories) -- once splitting on the codes as numbers (``codes``: the
format's numeric splits, which take the vectorised walks) and once with XGBoost's own
categorical splits (``native``: the format's set-membership splits, walked node by node);
both scored through a signed container, a 100,000-row float32 batch on one thread and one
event from a list. The ratio of the medians is the price of native splits; XGBoost's own
``inplace_predict`` of the native model, one thread, is the engine a user would otherwise
run. ``ASTORE_TREE_WALK=nodes-scalar`` shows the walk of CPUs without AVX2.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
xgboost = pytest.importorskip("xgboost")

ROWS = 100_000
N_NUMERIC = 10
CATEGORIES = (60, 8)


def _rows(n_rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, N_NUMERIC + len(CATEGORIES))).astype(np.float32)
    for k, n_categories in enumerate(CATEGORIES):
        x[:, N_NUMERIC + k] = rng.integers(0, n_categories, n_rows)
    x[rng.random(x.shape) < 0.02] = np.nan
    return x


@pytest.fixture(scope="module")
def containers():
    """By splits kind: the loaded container, and the batch it scores."""
    import pyastore
    from pyastore import format as fmt
    from pyastore.keys import SigningKey
    from trainer.export import export_model

    x = _rows(20_000, 1)
    hot = np.isin(x[:, N_NUMERIC], np.arange(0, 60, 7)) ^ np.isin(x[:, N_NUMERIC + 1], (2, 5))
    y = (hot ^ (np.nan_to_num(x[:, 0]) > 0.8)).astype(int)
    key = SigningKey(bytes(range(32)))
    types = ["q"] * N_NUMERIC + ["c"] * len(CATEGORIES)
    out = {}
    for kind, extra in (("codes", {}), ("native", {"enable_categorical": True,
                                                   "feature_types": types,
                                                   "max_cat_to_onehot": 1})):
        model = xgboost.XGBClassifier(n_estimators=100, max_depth=6, tree_method="hist",
                                      n_jobs=1, random_state=0, **extra).fit(x, y)
        spec = export_model(model)
        sets = sum(1 for tree in spec.forest.trees for codes in tree.categories if codes)
        assert (sets > 0) == (kind == "native")
        data = fmt.write(spec, key, created="2026-01-01T00:00:00Z")
        out[kind] = (pyastore.load(data, trusted_keys=[key.public_key],
                                   use_default_trust=False), sets, model.get_booster())
    return out, _rows(ROWS, 2)


@pytest.mark.parametrize("kind", ["codes", "native"])
def test_batch_100k_rows_one_thread(benchmark, containers, kind):
    by_kind, batch = containers
    model, sets, _ = by_kind[kind]
    benchmark.extra_info.update(rows=ROWS, categorical_splits=sets, walk=model.tree_walk)
    scores = benchmark(model.score, batch, n_threads=1)
    assert scores.shape[0] == ROWS


@pytest.mark.parametrize("kind", ["codes", "native"])
def test_one_event_from_a_list(benchmark, containers, kind):
    by_kind, batch = containers
    model, _, _ = by_kind[kind]
    row = batch[0].tolist()
    score = benchmark(model.score_one, row)
    assert 0.0 <= score[-1] <= 1.0


def test_batch_100k_rows_xgboost_native(benchmark, containers):
    by_kind, batch = containers
    model, _, booster = by_kind["native"]
    booster.set_param({"nthread": 1})
    benchmark.extra_info["rows"] = ROWS
    scores = benchmark(booster.inplace_predict, batch)
    np.testing.assert_allclose(scores, model.score(batch, n_threads=1)[:, -1], atol=1e-6)
