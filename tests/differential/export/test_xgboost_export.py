"""Differential tests: the IR exported from XGBoost scores exactly like XGBoost.

Every comparison runs the reference evaluator (``tests/differential/reference_forest.py``) on
the exported
``Forest`` and compares with xgboost's own prediction on the same float32 rows: probabilities
within 1e-6 absolute; margins and regression values within a rigorous bound on xgboost's own
float32 summation error (xgboost sums in float32, the IR in float64: see
``float32_summation_bound``); and identical leaf ids (``pred_leaf``). Rows include NaN,
+-inf (xgboost's ``inplace_predict`` accepts them; ``DMatrix`` does not, so leaf ids are
compared on the finite/NaN rows) and, for every split, a row exactly on its threshold and one
a float32 step below.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import ModelSpec
from reference_forest import (  # noqa: F401 - one_native_thread is an autouse fixture
    MERCHANT_NAMES,
    assert_container_matches,
    assert_recorded_vocabularies,
    category_rows,
    one_native_thread,
    pandas_category_frame,
    score_forest,
    shared_categorical_data,
    shared_training_data,
    signed_container,
    threshold_rows,
    validate_forest,
)
from trainer.export import export_model, xgboost_trees

N_FEATURES = 5
PROBABILITY_TOLERANCE = 1e-6


def training_data(seed: int, task: str, n_rows: int = 1500, **options):
    return shared_training_data(seed, task, n_rows, dtype=np.float32, **options)


def scoring_rows(seed: int, n_rows: int, forest, n_features: int = N_FEATURES,
                 infinities: bool = True) -> np.ndarray:
    """Random rows (wider than the training range) with NaN and +-inf, plus threshold rows."""
    rng = np.random.default_rng(seed)
    X = (1.5 * rng.normal(size=(n_rows, n_features))).astype(np.float32)
    if n_features > 3:
        X[:, 3] = rng.integers(-1, 11, n_rows)
    X[rng.random(X.shape) < 0.1] = np.nan
    if infinities:
        X[rng.random(X.shape) < 0.01] = np.inf
        X[rng.random(X.shape) < 0.01] = -np.inf
    return np.vstack([X, threshold_rows(forest, X[:1000])]).astype(np.float32)


def library_outputs(model, booster, spec: ModelSpec, X: np.ndarray, rounds=None):
    """xgboost's own margins and exported outputs for X.

    With the scikit-learn wrapper and its default rounds, the outputs come from
    ``predict_proba`` (positive column for binary) or ``predict``; otherwise from
    ``Booster.inplace_predict`` over the given rounds.
    """
    default = _default_rounds(booster)
    rounds = rounds or default
    margin = np.asarray(booster.inplace_predict(X, predict_type="margin", iteration_range=rounds),
                        dtype=np.float64).reshape(X.shape[0], -1)
    if model is not None and tuple(rounds) == default:
        if spec.rules.task == "regression":
            outputs = np.asarray(model.predict(X), dtype=np.float64).reshape(-1, 1)
        else:
            outputs = np.asarray(model.predict_proba(X), dtype=np.float64)
            if spec.rules.task == "binary":
                outputs = outputs[:, 1:]
        return margin, outputs
    outputs = booster.inplace_predict(X, iteration_range=rounds)
    return margin, np.asarray(outputs, dtype=np.float64).reshape(X.shape[0], -1)


def float32_summation_bound(forest, leaves: np.ndarray) -> np.ndarray:
    """Per row and output, a rigorous bound on xgboost's float32 summation error.

    xgboost starts from the base margin and adds each tree's float32 leaf in tree order, in
    float32. Recursive summation errs by at most ``u * sum(|partial sums|)`` (Higham, Accuracy
    and Stability of Numerical Algorithms, eq. 4.3; ``u = 2**-24``); a 1 % margin covers the
    second-order term and the partial sums being computed rather than exact. One float32 ulp
    of the base margin is added: for logistic objectives xgboost computes it with the
    platform's ``logf``, the exporter with a correctly rounded logarithm.
    """
    n_rows = leaves.shape[0]
    bound = np.zeros((n_rows, forest.n_outputs))
    for k in range(forest.n_outputs):
        running = np.full(n_rows, forest.base_score[k], dtype=np.float64)
        total = np.abs(running)
        for t, tree in enumerate(forest.trees):
            if forest.tree_output[t] != k:
                continue
            values = np.array([v[0] if v else 0.0 for v in tree.value])
            running = running + values[leaves[:, t]]
            total += np.abs(running)
        base_ulp = float(np.spacing(np.float32(abs(forest.base_score[k]))))
        bound[:, k] = 1.01 * 2.0 ** -24 * total + base_ulp
    return bound


def assert_parity(spec: ModelSpec, booster, X: np.ndarray, *, model=None, rounds=None,
                  check_leaves: bool = True) -> dict:
    """Compare IR and xgboost on X; returns the measured worst differences.

    Margins (and outputs equal to margins: regression values, ``binary:logitraw`` scores)
    must agree within the float32 summation bound; probabilities within 1e-6 absolute.
    """
    validate_forest(spec.forest)
    forest = spec.forest
    ours, leaves, raw = score_forest(forest, X, return_leaves=True, return_raw=True)
    ours32 = score_forest(forest, X, leaf_dtype=np.float32)
    np.testing.assert_array_equal(ours, ours32)  # xgboost leaves are float32 already
    margin, expected = library_outputs(model, booster, spec, X, rounds)
    bound = float32_summation_bound(forest, leaves)
    margin_error = np.abs(raw - margin)
    measured = {
        "margin_abs": float(margin_error.max()),
        "margin_rel": float(np.max(margin_error / np.maximum(1, np.abs(margin)))),
        "margin_over_bound": float(np.max(margin_error / bound)),
    }
    assert measured["margin_over_bound"] <= 1.0, measured
    output_error = np.abs(ours - expected)
    if forest.post_transform == "identity":
        assert np.all(output_error <= bound), measured
        measured["value_rel"] = float(np.max(output_error / np.maximum(1, np.abs(expected))))
    else:
        measured["probability_abs"] = float(output_error.max())
        assert measured["probability_abs"] <= PROBABILITY_TOLERANCE, measured
    if check_leaves:
        finite_or_nan = ~np.isinf(X).any(axis=1)
        matrix = xgb.DMatrix(X[finite_or_nan], missing=np.nan,
                             feature_names=booster.feature_names,
                             feature_types=booster.feature_types, enable_categorical=True)
        # pred_leaf only takes ranges starting at round 0: keep the trailing trees
        end = (rounds or _default_rounds(booster))[1]
        library_leaves = booster.predict(matrix, pred_leaf=True, iteration_range=(0, end))
        library_leaves = np.asarray(library_leaves).reshape(int(finite_or_nan.sum()), -1)
        library_leaves = library_leaves[:, library_leaves.shape[1] - len(forest.trees):]
        np.testing.assert_array_equal(leaves[finite_or_nan], library_leaves.astype(np.int64))
    return measured


def _default_rounds(booster) -> tuple[int, int]:
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)


MAIN_MODELS = {
    "binary": lambda: xgb.XGBClassifier(n_estimators=300, max_depth=5, learning_rate=0.3,
                                        early_stopping_rounds=5, n_jobs=1, random_state=0),
    "multiclass": lambda: xgb.XGBClassifier(n_estimators=25, max_depth=4, n_jobs=1,
                                            random_state=0),
    "regression": lambda: xgb.XGBRegressor(n_estimators=60, max_depth=5, n_jobs=1,
                                           random_state=0),
}


@pytest.mark.parametrize("task", sorted(MAIN_MODELS))
def test_parity_on_100k_rows(task):
    X, y = training_data(1, task)
    model = MAIN_MODELS[task]()
    if task == "binary":
        X_val, y_val = training_data(2, task, n_rows=500)
        model.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
        assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    else:
        model.fit(X, y)
    spec = export_model(model)
    rows = scoring_rows(3, 100_000, spec.forest)
    assert rows.shape[0] > 100_000
    assert_parity(spec, model.get_booster(), rows, model=model)
    assert_container_matches(spec, rows)  # the C core, through a signed container


def test_early_stopping_exports_best_iteration_and_override():
    X, y = training_data(4, "binary")
    X_val, y_val = training_data(5, "binary", n_rows=400)
    model = xgb.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.5,
                              early_stopping_rounds=3, n_jobs=1).fit(
        X, y, eval_set=[(X_val, y_val)], verbose=False)
    booster = model.get_booster()
    n_rounds = booster.num_boosted_rounds()
    assert model.best_iteration + 1 < n_rounds
    spec = export_model(model)
    assert len(spec.forest.trees) == model.best_iteration + 1
    rows = scoring_rows(6, 3000, spec.forest)
    assert_parity(spec, booster, rows, model=model)

    everything = export_model(model, iteration_range=(0, 0))
    assert len(everything.forest.trees) == n_rounds
    assert_parity(everything, booster, rows, rounds=(0, n_rounds))

    middle = export_model(model, iteration_range=(2, 5))
    assert len(middle.forest.trees) == 3
    assert_parity(middle, booster, rows, rounds=(2, 5))

    for bad in [(0, n_rounds + 1), (3, 3), (-1, 2), "all"]:
        with pytest.raises(UsageError):
            export_model(model, iteration_range=bad)


@pytest.mark.parametrize("objective", ["binary:logistic", "binary:logitraw", "reg:logistic",
                                       "reg:squarederror", "reg:absoluteerror",
                                       "reg:pseudohubererror", "multi:softprob",
                                       "multi:softmax"])
def test_objectives(objective):
    task = ("multiclass" if objective.startswith("multi") else
            "binary" if objective.startswith("binary") or objective == "reg:logistic"
            else "regression")
    X, y = training_data(7, task)
    estimator = xgb.XGBClassifier if task != "regression" and objective != "reg:logistic" \
        else xgb.XGBRegressor
    model = estimator(n_estimators=15, max_depth=3, objective=objective, n_jobs=1).fit(X, y)
    spec = export_model(model, cutoff=0.7)
    rows = scoring_rows(8, 5000, spec.forest)
    assert_parity(spec, model.get_booster(), rows, model=model)
    if objective == "binary:logitraw":
        assert spec.outputs[0].name == "score_1" and spec.outputs[0].type == "score"
        assert spec.rules.cutoff == pytest.approx(math.log(0.7 / 0.3))
        assert spec.forest.post_transform == "identity"
    elif task == "binary" and objective != "reg:logistic":
        assert spec.rules.cutoff == 0.7


@pytest.mark.parametrize("base_score", [None, 0.3, 0.9])
@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror",
                                       "multi:softprob"])
def test_base_score_forms(objective, base_score):
    task = {"binary:logistic": "binary", "reg:squarederror": "regression",
            "multi:softprob": "multiclass"}[objective]
    X, y = training_data(9, task)
    params = {"objective": objective, "max_depth": 3, "nthread": 1}
    if task == "multiclass":
        params["num_class"] = 3
    if base_score is not None:
        params["base_score"] = base_score
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=5)
    spec = export_model(booster)
    assert len(spec.forest.base_score) == spec.forest.n_outputs
    if base_score is not None and objective == "binary:logistic":
        assert spec.forest.base_score[0] == pytest.approx(math.log(base_score / (1 - base_score)),
                                                          rel=1e-6)
    elif base_score is not None:
        assert spec.forest.base_score == pytest.approx((base_score,) * spec.forest.n_outputs,
                                                       rel=1e-7)
    assert_parity(spec, booster, scoring_rows(10, 3000, spec.forest))


def test_base_score_text_forms():
    assert xgboost_trees._base_margin("5E-1", 1, "identity") == (0.5,)
    assert xgboost_trees._base_margin("[5E-1]", 1, "logit") == (0.0,)
    assert xgboost_trees._base_margin("2.5E-1", 3, "identity") == (0.25,) * 3
    assert xgboost_trees._base_margin("[1E-1,2E-1,-3E0]", 3, "identity") == pytest.approx(
        (0.1, 0.2, -3.0), rel=1e-7)
    with pytest.raises(UnsupportedModelError, match="base_score"):
        xgboost_trees._base_margin("[1E-1,2E-1]", 3, "identity")
    with pytest.raises(UnsupportedModelError, match="probability"):
        xgboost_trees._base_margin("1.5", 1, "logit")


def test_dart_weights_are_folded_into_leaves():
    X, y = training_data(11, "binary")
    model = xgb.XGBClassifier(booster="dart", n_estimators=25, max_depth=3, rate_drop=0.3,
                              skip_drop=0.0, n_jobs=1, random_state=0).fit(X, y)
    weights = json.loads(bytes(model.get_booster().save_raw(raw_format="json")))[
        "learner"]["gradient_booster"]["weight_drop"]
    assert min(weights) < 0.9  # dropout really rescaled trees
    spec = export_model(model)
    assert_parity(spec, model.get_booster(), scoring_rows(12, 5000, spec.forest), model=model)


@pytest.mark.parametrize("kind", ["rf_classifier", "rf_regressor", "parallel_multiclass"])
def test_parallel_trees(kind):
    if kind == "rf_classifier":
        X, y = training_data(13, "binary")
        model = xgb.XGBRFClassifier(n_estimators=12, max_depth=4, n_jobs=1, random_state=0)
    elif kind == "rf_regressor":
        X, y = training_data(13, "regression")
        model = xgb.XGBRFRegressor(n_estimators=12, max_depth=4, n_jobs=1, random_state=0)
    else:
        X, y = training_data(13, "multiclass")
        model = xgb.XGBClassifier(n_estimators=6, num_parallel_tree=3, max_depth=3,
                                  subsample=0.8, n_jobs=1, random_state=0)
    model.fit(X, y)
    spec = export_model(model)
    if kind.startswith("rf"):
        assert spec.algorithm.family == "random_forest"
        assert len(spec.forest.trees) == 12
    else:
        assert len(spec.forest.trees) == 6 * 3 * 3
    assert_parity(spec, model.get_booster(), scoring_rows(14, 5000, spec.forest), model=model)


def test_raw_booster_names_and_labels():
    pandas = pytest.importorskip("pandas")
    X, y = training_data(15, "multiclass")
    frame = pandas.DataFrame(X, columns=["amount", "age", "hour", "count", "ratio"])
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
                         "nthread": 1}, xgb.DMatrix(frame, label=y), num_boost_round=4)
    spec = export_model(booster, name="fraud-v1", description="test model",
                        provenance={"training_sha256": "ab" * 32},
                        training_params={"note": "extra", "eta": np.float32(0.3)})
    assert [v.name for v in spec.inputs] == ["amount", "age", "hour", "count", "ratio"]
    assert all(v.type == "float" and v.missing == "as_missing" for v in spec.inputs)
    assert [o.name for o in spec.outputs] == ["P_0", "P_1", "P_2"]
    assert spec.rules.task == "multiclass" and spec.rules.class_labels == (0, 1, 2)
    assert spec.name == "fraud-v1" and spec.description == "test model"
    assert spec.algorithm.library == "xgboost" and spec.algorithm.estimator == "Booster"
    assert spec.algorithm.library_version == xgb.__version__
    assert spec.training_params["objective"] == "multi:softprob"
    assert spec.training_params["note"] == "extra"
    assert isinstance(spec.training_params["eta"], float)
    assert spec.provenance == {"training_sha256": "ab" * 32}
    json.dumps(spec.training_params, allow_nan=False)
    assert_parity(spec, booster, scoring_rows(16, 3000, spec.forest))

    renamed = export_model(booster, feature_names=["a", "b", "c", "d", "e"])
    assert [v.name for v in renamed.inputs] == ["a", "b", "c", "d", "e"]
    with pytest.raises(UsageError, match="feature_names"):
        export_model(booster, feature_names=["a", "b"])
    with pytest.raises(UsageError, match="duplicate"):
        export_model(booster, feature_names=["a", "a", "c", "d", "e"])


def test_wrapper_metadata_is_json_safe():
    X, y = training_data(17, "binary")
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    spec = export_model(model)
    assert spec.name == "XGBClassifier"
    assert [v.name for v in spec.inputs] == [f"x{i}" for i in range(N_FEATURES)]
    assert [o.name for o in spec.outputs] == ["P_1"]
    assert spec.outputs[0].type == "probability"
    assert spec.rules.task == "binary" and spec.rules.class_labels == (0, 1)
    assert spec.rules.cutoff == 0.5
    assert spec.training_params["max_depth"] == 2
    assert spec.training_params["missing"] == "nan"
    json.dumps(spec.training_params, allow_nan=False)


def _reachable_sorted(tree_json) -> np.ndarray:
    left, right = tree_json["left_children"], tree_json["right_children"]
    seen, stack = set(), [0]
    while stack:
        node = stack.pop()
        seen.add(node)
        if left[node] != -1:
            stack += [left[node], right[node]]
    return np.array(sorted(seen))


def test_pruned_trees_with_deleted_nodes():
    X, y = training_data(18, "binary", nan_fraction=0.0)
    matrix = xgb.DMatrix(X, label=y)
    params = {"objective": "binary:logistic", "max_depth": 5, "nthread": 1}
    booster = xgb.train(params, matrix, num_boost_round=5)
    with pytest.warns(UserWarning):
        pruned = xgb.train({**params, "process_type": "update", "updater": "prune",
                            "gamma": 15.0}, matrix, num_boost_round=5, xgb_model=booster)
    trees = json.loads(bytes(pruned.save_raw(raw_format="json")))["learner"][
        "gradient_booster"]["model"]["trees"]
    assert sum(int(t["tree_param"]["num_deleted"]) for t in trees) > 0
    spec = export_model(pruned)
    for tree_json, tree in zip(trees, spec.forest.trees):
        assert tree.n_nodes == int(tree_json["tree_param"]["num_nodes"]) - int(
            tree_json["tree_param"]["num_deleted"])
    rows = scoring_rows(19, 3000, spec.forest)
    assert_parity(spec, pruned, rows, check_leaves=False)
    _, leaves = score_forest(spec.forest, rows, return_leaves=True)
    finite = ~np.isinf(rows).any(axis=1)
    library = pruned.predict(xgb.DMatrix(rows[finite]), pred_leaf=True).astype(np.int64)
    for t, tree_json in enumerate(trees):
        renumbered = np.searchsorted(_reachable_sorted(tree_json), library[:, t])
        np.testing.assert_array_equal(leaves[finite, t], renumbered)


OBJECTIVE_CHOICES = ["binary:logistic", "reg:logistic", "reg:squarederror", "multi:softprob",
                     "binary:logitraw"]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(objective=st.sampled_from(OBJECTIVE_CHOICES),
       booster_kind=st.sampled_from(["gbtree", "dart"]),
       max_depth=st.integers(1, 5), rounds=st.integers(1, 8),
       parallel=st.integers(1, 2), n_features=st.integers(1, 6),
       nan_fraction=st.sampled_from([0.0, 0.05, 0.4]), seed=st.integers(0, 2**16))
def test_random_models_match_xgboost(objective, booster_kind, max_depth, rounds, parallel,
                                     n_features, nan_fraction, seed):
    task = ("multiclass" if objective.startswith("multi") else
            "regression" if objective == "reg:squarederror" else "binary")
    X, y = training_data(seed, task, n_rows=300, n_features=n_features,
                         nan_fraction=nan_fraction)
    params = {"objective": objective, "booster": booster_kind, "max_depth": max_depth,
              "num_parallel_tree": parallel, "nthread": 1, "seed": seed,
              "subsample": 0.8 if parallel > 1 else 1.0}
    if task == "multiclass":
        params["num_class"] = 3
    if booster_kind == "dart":
        params.update(rate_drop=0.3, skip_drop=0.0)
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=rounds)
    spec = export_model(booster)
    rows = scoring_rows(seed + 1, 400, spec.forest, n_features=n_features)
    assert_parity(spec, booster, rows)


def test_refuses_gblinear():
    X, y = training_data(21, "binary", nan_fraction=0.0)
    model = xgb.XGBClassifier(booster="gblinear", n_estimators=3, n_jobs=1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="gblinear"):
        export_model(model)


def test_refuses_vector_leaf_trees():
    X, y = training_data(22, "multiclass")
    model = xgb.XGBClassifier(n_estimators=2, max_depth=2, tree_method="hist",
                              multi_strategy="multi_output_tree", n_jobs=1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="multi_output_tree"):
        export_model(model)


def test_refuses_unsupported_objectives_and_settings():
    X, y = training_data(23, "regression", nan_fraction=0.0)
    poisson = xgb.XGBRegressor(objective="count:poisson", n_estimators=2, n_jobs=1).fit(
        X, np.abs(y))
    with pytest.raises(UnsupportedModelError, match="count:poisson"):
        export_model(poisson)
    zero_missing = xgb.XGBRegressor(n_estimators=2, missing=0.0, n_jobs=1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="missing"):
        export_model(zero_missing)
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(xgb.XGBClassifier())
    ranker = xgb.XGBRanker(n_estimators=2, n_jobs=1).fit(X, (y > 2).astype(int),
                                                         qid=np.repeat(np.arange(15), 100))
    with pytest.raises(UnsupportedModelError, match="XGBRanker"):
        export_model(ranker)
    with pytest.raises(UnsupportedModelError, match="dict"):
        export_model({"not": "a model"})
    with pytest.raises(UsageError, match="cutoff"):
        export_model(zero_missing, cutoff=1.5)


def test_import_trainer_without_frameworks():
    code = ("import sys\n"
            "for name in ('xgboost', 'sklearn', 'torch'):\n"
            "    sys.modules[name] = None\n"
            "import trainer, trainer.export\n"
            "from trainer.export import export_model\n"
            "assert 'xgboost' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "try:\n"
            "    export_model(object())\n"
            "except Exception as error:\n"
            "    assert type(error).__name__ == 'UnsupportedModelError', error\n"
            "    print('ok')\n")
    import os

    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---- categorical splits ---------------------------------------------------------------------

CATEGORICAL_TYPES = ["q", "q", "q", "c", "c"]  # columns 3 (40 codes) and 4 (6 codes)


def categorical_rows(seed: int, n_rows: int, forest) -> np.ndarray:
    """Random rows whose categorical columns hold codes past the training range, negatives,
    NaN, +-inf and values of 2**24 and above, with the set rows (every listed code and its
    neighbours, ``category_rows``) and the numeric threshold rows."""
    rng = np.random.default_rng(seed)
    X = (1.5 * rng.normal(size=(n_rows, 5))).astype(np.float32)
    X[:, 3] = rng.integers(-3, 48, n_rows)
    X[:, 4] = rng.integers(-2, 9, n_rows)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.01] = np.inf
    X[rng.random(X.shape) < 0.01] = -np.inf
    far = rng.random((n_rows, 2)) < 0.01
    X[:, 3:][far] = rng.choice(np.float32([2 ** 24, 2 ** 24 + 2, 2 ** 31, 1e30, -2 ** 31]),
                               size=int(far.sum()))
    return np.vstack([X, category_rows(forest, X[:1000]),
                      threshold_rows(forest, X[:1000])]).astype(np.float32)


CATEGORICAL_MODELS = {
    "binary": lambda: xgb.XGBClassifier(n_estimators=40, max_depth=5, n_jobs=1, random_state=0,
                                        tree_method="hist", enable_categorical=True,
                                        feature_types=CATEGORICAL_TYPES, max_cat_to_onehot=1),
    "multiclass": lambda: xgb.XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1,
                                            random_state=0, tree_method="hist",
                                            enable_categorical=True,
                                            feature_types=CATEGORICAL_TYPES),
    "regression": lambda: xgb.XGBRegressor(n_estimators=30, max_depth=5, n_jobs=1,
                                           random_state=0, tree_method="hist",
                                           enable_categorical=True,
                                           feature_types=CATEGORICAL_TYPES, max_cat_to_onehot=8),
}


@pytest.mark.parametrize("task", sorted(CATEGORICAL_MODELS))
def test_categorical_splits_match_xgboost(task):
    """Partition splits (binary, regression: sets of several codes) and one-hot splits
    (regression's 6-code column); binary on 100k rows, the others on 10k."""
    X, y = shared_categorical_data(4, task)
    model = CATEGORICAL_MODELS[task]().fit(X, y)
    spec = export_model(model)
    sets = [codes for tree in spec.forest.trees for codes in tree.categories if codes]
    assert sets and any(len(codes) > 1 for codes in sets)
    assert {tree.feature[i] for tree in spec.forest.trees
            for i, codes in enumerate(tree.categories) if codes} <= {3, 4}
    rows = categorical_rows(5, 100_000 if task == "binary" else 10_000, spec.forest)
    assert_parity(spec, model.get_booster(), rows, model=model)
    assert_container_matches(spec, rows)


def test_pandas_categories_become_the_vocabulary():
    """A model fitted on pandas category columns exports categorical inputs with xgboost's
    recorded categories as their vocabulary: the container scores the texts (and a missing
    cell) exactly as xgboost scores the DataFrame; an unseen text, which xgboost refuses,
    scores as missing."""
    pandas = pytest.importorskip("pandas")
    frame, y = pandas_category_frame(22, 2000)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=4, enable_categorical=True,
                              tree_method="hist", n_jobs=1, max_cat_to_onehot=1).fit(frame, y)
    spec = export_model(model)
    assert_recorded_vocabularies(spec)
    container = signed_container(spec)
    test = frame.sample(400, random_state=1).reset_index(drop=True)
    expected = model.predict_proba(test)[:, 1]
    records = [{"amount": a, "merchant": m if isinstance(m, str) else None, "area": str(r)}
               for a, m, r in zip(test["amount"], test["merchant"].astype(object),
                                  test["area"].astype(int))]
    got = np.array([container.score_one(record)[0] for record in records])
    assert np.abs(got - expected).max() <= PROBABILITY_TOLERANCE
    missing = [dict(record, merchant=None) for record in records]
    unseen = [dict(record, merchant="a shop never seen") for record in records]
    got_missing = np.array([container.score_one(record)[0] for record in missing])
    np.testing.assert_array_equal([container.score_one(r)[0] for r in unseen], got_missing)
    missing_frame = test.assign(merchant=pandas.Categorical([None] * len(test),
                                                            categories=list(MERCHANT_NAMES)))
    expected_missing = model.predict_proba(missing_frame)[:, 1]
    assert np.abs(got_missing - expected_missing).max() <= PROBABILITY_TOLERANCE
