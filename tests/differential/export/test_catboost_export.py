"""Differential tests: the IR exported from CatBoost scores exactly like CatBoost.

Every comparison scores float32 rows with the reference evaluator
(``tests/differential/reference_forest.py``) on the exported ``Forest`` and with CatBoost
itself, and checks

* probabilities within 1e-6 absolute of ``predict_proba``; raw formula values and regression
  values within the float32 rounding bound of the stored leaves (``leaf_rounding_bound``:
  CatBoost's leaves are float64, the container's float32);
* identical leaves, twice: the IR's leaf (through the exporter's leaf labels, CatBoost's leaf
  index) and the C core's own leaf, read back from a container whose outputs are the leaf
  labels (``reference_forest.container_leaf_labels``; pyastore has no leaf-index API), both
  equal to ``calc_leaf_indexes``;
* the C core, through a signed container, equal to the reference evaluator.

Rows hold NaN, +-inf and, for every border of the model, the border itself and the float32
values either side of it (CatBoost's split is ``x > border`` in float32, so these are the rows
an off-by-one-ulp conversion would send the wrong way).
"""

from __future__ import annotations

import json

import catboost as cb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyastore.errors import UnsupportedModelError
from reference_forest import (  # noqa: F401 - one_native_thread is an autouse fixture
    container_leaf_labels,
    container_scores,
    one_native_thread,
    score_forest,
    shared_training_data,
    validate_forest,
)
from trainer.export import ExportOptions, catboost_trees, export_model

N_FEATURES = 5
PROBABILITY_TOLERANCE = 1e-6
OPTIONS = ExportOptions(feature_names=None, name=None, description="", training_params=None,
                        provenance=None, cutoff=0.5)
QUIET = {"verbose": False, "thread_count": 1, "allow_writing_files": False, "random_seed": 0}


def training_data(seed: int, task: str, n_rows: int = 2000, **options):
    return shared_training_data(seed, task, n_rows, dtype=np.float32, **options)


def model_borders(model) -> list[tuple[int, float]]:
    """(feature, border) of every split of the model, from its JSON export."""
    document = catboost_trees._json_document(model)
    flat = {f["feature_index"]: f["flat_feature_index"]
            for f in document["features_info"]["float_features"]}
    return [(flat[s["float_feature_index"]], float(s["border"]))
            for tree in document["oblivious_trees"] for s in tree["splits"]]


def scoring_rows(seed: int, n_rows: int, model, n_features: int = N_FEATURES) -> np.ndarray:
    """Random rows (wider than the training range) with NaN and +-inf, then for every border
    rows holding the border and its float32 neighbours."""
    rng = np.random.default_rng(seed)
    X = (1.5 * rng.normal(size=(n_rows, n_features))).astype(np.float32)
    if n_features > 3:
        X[:, 3] = rng.integers(-1, 11, n_rows)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.01] = np.inf
    X[rng.random(X.shape) < 0.01] = -np.inf
    rows = []
    for count, (feature, border) in enumerate(model_borders(model)):
        border32 = np.float32(border)
        assert float(border32) == border  # CatBoost's borders are float32
        with np.errstate(over="ignore"):  # nan_mode="Max" puts a border at the largest float32
            values = (border32, np.nextafter(border32, np.float32(np.inf)),
                      np.nextafter(border32, np.float32(-np.inf)))
        for value in values:
            row = X[count % n_rows].copy()
            row[feature] = value
            rows.append(row)
    return np.vstack([X] + ([np.stack(rows)] if rows else [])).astype(np.float32)


def leaf_rounding_bound(forest, leaves: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Per row and output, a bound on |IR raw - CatBoost raw|: each stored leaf value is
    ``float32(v - m)`` (CatBoost's float64 leaf ``v`` times the model's scale, ``m`` the
    tree's midpoint), off by at most ``2**-24`` of its magnitude (1 % margin); both sums are
    float64 (``n_trees * 2**-52`` of the magnitudes)."""
    magnitude = np.zeros((leaves.shape[0], forest.n_outputs))
    for t, tree in enumerate(forest.trees):
        values = np.array([[abs(v) for v in value] if value else [0.0] * forest.leaf_width
                           for value in tree.value])
        if forest.leaf_width == 1:
            magnitude[:, forest.tree_output[t]] += values[leaves[:, t], 0]
        else:
            magnitude += values[leaves[:, t]]
    float64_noise = len(forest.trees) * 2.0 ** -52 * (
        magnitude + np.abs(np.asarray(forest.base_score)) + np.abs(raw))
    return 1.01 * 2.0 ** -24 * magnitude + float64_noise


def library_outputs(model, spec, X: np.ndarray) -> np.ndarray:
    if spec.rules.task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1, 1)
    outputs = np.asarray(model.predict_proba(X), dtype=np.float64)
    return outputs[:, 1:] if spec.rules.task == "binary" else outputs


def assert_parity(spec, labels, model, X: np.ndarray, *, container: bool = False) -> dict:
    """IR vs CatBoost on X (module docstring); with ``container`` the C core as well.
    Returns the measured worst differences."""
    validate_forest(spec.forest)
    forest = spec.forest
    ours, leaves, raw = score_forest(forest, X, return_leaves=True, return_raw=True)
    library_raw = np.asarray(model.predict(X, prediction_type="RawFormulaVal"),
                             dtype=np.float64).reshape(X.shape[0], -1)
    bound = leaf_rounding_bound(forest, leaves, raw)
    raw_error = np.abs(raw - library_raw)
    measured = {"raw_abs": float(raw_error.max()),
                "raw_over_bound": float(np.max(raw_error / bound))}
    assert measured["raw_over_bound"] <= 1.0, measured
    expected = library_outputs(model, spec, X)
    output_error = np.abs(ours - expected)
    if forest.post_transform == "identity":
        assert np.all(output_error <= bound), measured
        measured["value_abs"] = float(output_error.max())
    else:
        measured["probability_abs"] = float(output_error.max())
        assert measured["probability_abs"] <= PROBABILITY_TOLERANCE, measured

    library_leaves = np.asarray(model.calc_leaf_indexes(X), dtype=np.int64)
    ir_leaves = np.column_stack([np.asarray(tree_labels)[leaves[:, t]]
                                 for t, tree_labels in enumerate(labels)])
    np.testing.assert_array_equal(ir_leaves, library_leaves)
    if container:  # the C core: the same leaves, and the reference's outputs (float64 noise)
        np.testing.assert_array_equal(container_leaf_labels(spec, labels, X), library_leaves)
        scores = container_scores(spec, X)
        np.testing.assert_allclose(scores, ours, rtol=1e-12, atol=1e-14)
        measured["container_vs_library"] = float(np.max(np.abs(scores - expected)))
    return measured


def traced(model):
    return catboost_trees.export_traced(model, OPTIONS)


@pytest.mark.parametrize("task,nan_mode", [("binary", "Min"), ("multiclass", "Max"),
                                           ("regression", "Forbidden")])
def test_parity_on_100k_rows(task, nan_mode):
    X, y = training_data(1, task, nan_fraction=0.0 if nan_mode == "Forbidden" else 0.1)
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    model = cls(iterations=40, depth=6, nan_mode=nan_mode, **QUIET).fit(X, y)
    spec, labels = traced(model)
    treatment = {"Min": "AsFalse", "Max": "AsTrue", "Forbidden": "AsIs"}[nan_mode]
    assert {f["nan_value_treatment"] for f in catboost_trees._json_document(model)[
        "features_info"]["float_features"]} == {treatment}
    rows = scoring_rows(3, 100_000, model)
    assert rows.shape[0] > 100_000
    assert_parity(spec, labels, model, rows, container=True)


@pytest.mark.parametrize("loss,estimator", [
    ("Logloss", "classifier"), ("CrossEntropy", "classifier"), ("MultiClass", "classifier"),
    ("MultiClassOneVsAll", "classifier"), ("RMSE", "regressor"), ("MAE", "regressor"),
    ("Quantile:alpha=0.3", "regressor"), ("Expectile:alpha=0.7", "regressor"),
    ("MAPE", "regressor"), ("Huber:delta=1.0", "regressor"), ("LogCosh", "regressor")])
def test_losses(loss, estimator):
    task = ("multiclass" if loss.startswith("MultiClass") else
            "binary" if estimator == "classifier" else "regression")
    X, y = training_data(7, task, n_rows=1500)
    cls = cb.CatBoostClassifier if estimator == "classifier" else cb.CatBoostRegressor
    model = cls(iterations=12, depth=4, loss_function=loss, **QUIET).fit(X, y)
    spec, labels = traced(model)
    assert spec.rules.task == task
    if loss == "MultiClassOneVsAll":
        assert spec.forest.post_transform == "logistic"
    assert_parity(spec, labels, model, scoring_rows(8, 5000, model))


def test_scale_and_bias_are_applied():
    X, y = training_data(9, "regression", n_rows=1500)
    model = cb.CatBoostRegressor(iterations=10, depth=4, **QUIET).fit(X, y)
    scale, bias = model.get_scale_and_bias()
    model.set_scale_and_bias(0.75, [bias + 3.0] if np.isscalar(bias) else [bias[0] + 3.0])
    spec, labels = traced(model)
    assert_parity(spec, labels, model, scoring_rows(10, 5000, model))


def test_repeated_features_prune_unreachable_leaves():
    """Deep trees on two features split each feature several times per tree: combinations no
    row can reach (a value above one border and below a lower one) are left out."""
    X, y = training_data(11, "regression", n_rows=3000, n_features=2)
    model = cb.CatBoostRegressor(iterations=8, depth=8, **QUIET).fit(X, y)
    spec, labels = traced(model)
    n_leaves = sum(sum(1 for f in tree.feature if f < 0) for tree in spec.forest.trees)
    assert n_leaves < len(spec.forest.trees) * 2 ** 8
    assert_parity(spec, labels, model, scoring_rows(12, 20_000, model, n_features=2),
                  container=True)


def test_names_labels_and_metadata():
    pandas = pytest.importorskip("pandas")
    X, y = training_data(13, "multiclass", n_rows=1000)
    frame = pandas.DataFrame(X, columns=["amount", "age", "hour", "count", "ratio"])
    labels = np.array(["low", "mid", "high"])[y]
    model = cb.CatBoostClassifier(iterations=4, depth=3, **QUIET).fit(frame, labels)
    spec = export_model(model, name="fraud-v1", training_params={"note": "extra"})
    assert [v.name for v in spec.inputs] == ["amount", "age", "hour", "count", "ratio"]
    assert all(v.missing == "as_missing" for v in spec.inputs)
    assert spec.rules.task == "multiclass"
    assert spec.rules.class_labels == tuple(model.classes_)
    assert [o.name for o in spec.outputs] == [f"P_{c}" for c in model.classes_]
    assert spec.algorithm.library == "catboost"
    assert spec.algorithm.estimator == "CatBoostClassifier"
    assert spec.algorithm.library_version == cb.__version__
    assert spec.training_params["depth"] == 3 and spec.training_params["note"] == "extra"
    json.dumps(spec.training_params, allow_nan=False)
    rows = scoring_rows(14, 2000, model)
    np.testing.assert_allclose(container_scores(spec, rows), model.predict_proba(
        pandas.DataFrame(rows, columns=frame.columns)), rtol=0, atol=PROBABILITY_TOLERANCE)

    unnamed = cb.CatBoostClassifier(iterations=3, depth=2, **QUIET).fit(X, y > 0)
    spec = export_model(unnamed, cutoff=0.7)
    assert [v.name for v in spec.inputs] == [f"x{i}" for i in range(N_FEATURES)]
    assert spec.rules.class_labels == (False, True) and spec.rules.cutoff == 0.7


def test_pipeline_with_a_scaler_scores_exactly():
    """CatBoost rounds its float64 input to float32, as the container's transforms do. (The
    pipeline is given float64 rows: on float32 rows scikit-learn's scaler computes in float32,
    rounding twice, which is not the arithmetic the container's transforms reproduce.)"""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = training_data(15, "binary", n_rows=1500, nan_fraction=0.0)
    pipeline = make_pipeline(StandardScaler(), cb.CatBoostClassifier(
        iterations=10, depth=4, **QUIET)).fit(X, y)
    spec = export_model(pipeline)
    rows = scoring_rows(16, 5000, pipeline[-1])
    rows[np.isinf(rows)] = np.nan  # the scaler refuses infinity
    rows = (rows * pipeline[0].scale_ + pipeline[0].mean_).astype(np.float32)
    np.testing.assert_allclose(container_scores(spec, rows),
                               pipeline.predict_proba(rows.astype(np.float64))[:, 1:], rtol=0,
                               atol=PROBABILITY_TOLERANCE)


def test_refuses_categorical_features():
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(20)
    frame = pandas.DataFrame({"amount": rng.normal(size=600),
                              "merchant": rng.choice(["a", "b", "c", "d"], size=600)})
    y = (frame["merchant"].isin(["a", "c"]) ^ (frame["amount"] > 0)).astype(int)
    model = cb.CatBoostClassifier(iterations=3, depth=2, cat_features=["merchant"],
                                  **QUIET).fit(frame, y)
    with pytest.raises(UnsupportedModelError, match="merchant.*categorical"):
        export_model(model)


def test_refuses_non_symmetric_and_deep_trees():
    X, y = training_data(21, "regression", n_rows=800)
    for policy in ("Depthwise", "Lossguide"):
        model = cb.CatBoostRegressor(iterations=2, depth=3, grow_policy=policy,
                                     **QUIET).fit(X, y)
        with pytest.raises(UnsupportedModelError, match="symmetric"):
            export_model(model)
    deep = cb.CatBoostRegressor(iterations=1, depth=catboost_trees.MAX_DEPTH + 1,
                                **QUIET).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=f"depth {catboost_trees.MAX_DEPTH + 1}"):
        export_model(deep)


@pytest.mark.parametrize("loss", ["Poisson", "Tweedie:variance_power=1.5",
                                  "RMSEWithUncertainty", "MultiRMSE"])
def test_refuses_other_losses(loss):
    X, y = training_data(22, "regression", n_rows=600, nan_fraction=0.0)
    target = np.abs(y) + 0.1
    if loss == "MultiRMSE":
        target = np.column_stack([target, -target])
    model = cb.CatBoostRegressor(iterations=2, depth=2, loss_function=loss,
                                 **QUIET).fit(X, target)
    with pytest.raises(UnsupportedModelError, match=loss.split(":")[0]):
        export_model(model)


def test_refuses_unfitted_and_other_classes():
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(cb.CatBoostClassifier())
    X, y = training_data(23, "regression", n_rows=600, nan_fraction=0.0)
    ranker = cb.CatBoostRanker(iterations=2, depth=2, **QUIET).fit(
        X, y, group_id=np.repeat(np.arange(6), 100))
    with pytest.raises(UnsupportedModelError, match="CatBoostRanker"):
        export_model(ranker)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(loss=st.sampled_from(["Logloss", "MultiClass", "RMSE", "MultiClassOneVsAll"]),
       nan_mode=st.sampled_from(["Min", "Max"]), depth=st.integers(1, 8),
       rounds=st.integers(1, 8), n_features=st.integers(1, 6),
       nan_fraction=st.sampled_from([0.0, 0.05, 0.4]), seed=st.integers(0, 2**16))
def test_random_models_match_catboost(loss, nan_mode, depth, rounds, n_features, nan_fraction,
                                      seed):
    task = "multiclass" if loss.startswith("MultiClass") else (
        "binary" if loss == "Logloss" else "regression")
    X, y = training_data(seed, task, n_rows=400, n_features=n_features,
                         nan_fraction=nan_fraction)
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    model = cls(iterations=rounds, depth=depth, loss_function=loss, nan_mode=nan_mode,
                **{**QUIET, "random_seed": seed}).fit(X, y)
    spec, labels = traced(model)
    assert_parity(spec, labels, model, scoring_rows(seed + 1, 400, model, n_features=n_features))


def test_import_trainer_without_lightgbm_or_catboost():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\n"
            "for name in ('lightgbm', 'catboost'):\n"
            "    sys.modules[name] = None\n"
            "import trainer, trainer.export, trainer.fraud, trainer.cli\n"
            "from trainer.export import export_model\n"
            "try:\n"
            "    export_model(object())\n"
            "except Exception as error:\n"
            "    assert 'LightGBM, CatBoost' in str(error), error\n"
            "    print('ok')\n")
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
