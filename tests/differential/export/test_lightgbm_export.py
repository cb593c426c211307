"""Differential tests: the IR exported from LightGBM scores exactly like LightGBM.

Every comparison scores float32 rows with the reference evaluator
(``tests/differential/reference_forest.py``) on the exported ``Forest`` and with LightGBM
itself, and checks

* probabilities within 1e-6 absolute of ``predict_proba`` / ``predict``; raw scores and
  regression values within the float32 rounding bound of the stored leaves
  (``leaf_rounding_bound``: LightGBM's leaves are float64, the container's float32);
* identical leaves, twice: the IR's leaf (through the exporter's leaf labels, LightGBM's
  ``leaf_index``) and the C core's own leaf, read back from a container whose outputs are the
  leaf labels (``reference_forest.container_leaf_labels``; pyastore has no leaf-index API),
  both equal to ``pred_leaf``;
* the C core, through a signed container, equal to the reference evaluator.

Rows hold NaN, +-inf, many exact zeros, values in and around LightGBM's zero band
``[-1e-35f, 1e-35f]`` and, for every split threshold of the dump, the float32 values nearest
to it and their neighbours. ``test_crafted_nodes_match_lightgbm`` goes further: it rewrites a
trained model's text so that its nodes take every missing type, default side and a threshold
from a list of awkward values (band edges, zero, subnormals, +-1e300), loads it into LightGBM
and compares on the cartesian product of awkward values.
"""

from __future__ import annotations

import json
import re

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyastore.errors import UnsupportedModelError, UsageError
from reference_forest import (  # noqa: F401 - one_native_thread is an autouse fixture
    MERCHANT_NAMES,
    assert_recorded_vocabularies,
    category_rows,
    container_leaf_labels,
    container_scores,
    one_native_thread,
    pandas_category_frame,
    score_forest,
    shared_categorical_data,
    shared_training_data,
    signed_container,
    validate_forest,
)
from trainer.export import ExportOptions, export_model, lightgbm_trees

N_FEATURES = 5
PROBABILITY_TOLERANCE = 1e-6
ZERO_BAND = np.float32(1e-35)  # LightGBM's kZeroThreshold
OPTIONS = ExportOptions(feature_names=None, name=None, description="", training_params=None,
                        provenance=None, cutoff=0.5)


def training_data(seed: int, task: str, n_rows: int = 2000, zero_fraction: float = 0.15,
                  **options):
    """The shared rows (float32, NaN) with exact zeros and zero-band values mixed in."""
    X, y = shared_training_data(seed, task, n_rows, dtype=np.float32, **options)
    rng = np.random.default_rng(seed + 1000)
    X[rng.random(X.shape) < zero_fraction] = 0.0
    X[rng.random(X.shape) < 0.01] = np.float32(5e-36)
    X[rng.random(X.shape) < 0.01] = -ZERO_BAND
    return X, y


def dump_thresholds(booster) -> list[tuple[int, float]]:
    """(feature, threshold) of every numeric split in the LightGBM dump (categorical ones,
    ``"=="``, list codes)."""
    found = []
    stack = [info["tree_structure"] for info in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                found.append((int(node["split_feature"]), float(node["threshold"])))
            stack += [node["left_child"], node["right_child"]]
    return found


def threshold_values(threshold: float) -> list[np.float32]:
    """The float32 values nearest to a float64 threshold, and one float32 step either side."""
    with np.errstate(over="ignore"):
        nearest = np.float32(threshold)
    values = {nearest}
    with np.errstate(over="ignore"):
        steps = (nearest, np.nextafter(nearest, np.float32(np.inf)),
                 np.nextafter(nearest, np.float32(-np.inf)))
    for value in steps:
        with np.errstate(over="ignore"):
            values |= {value, np.nextafter(value, np.float32(np.inf)),
                       np.nextafter(value, np.float32(-np.inf))}
    return [v for v in values if np.isfinite(v)]


def band_values() -> list[np.float32]:
    """Zero, the zero band's edges and their neighbours, values inside the band."""
    values = [np.float32(0.0), np.float32(-0.0), np.float32(5e-36), np.float32(-5e-36),
              np.float32(1e-45), np.float32(-1e-45)]
    for edge in (ZERO_BAND, -ZERO_BAND):
        values += [edge, np.nextafter(edge, np.float32(np.inf)),
                   np.nextafter(edge, np.float32(-np.inf))]
    return values


def scoring_rows(seed: int, n_rows: int, booster, n_features: int = N_FEATURES) -> np.ndarray:
    """Random rows (wider than the training range) with NaN, +-inf, zeros and zero-band
    values, then for every dump threshold rows holding its nearest float32 values."""
    rng = np.random.default_rng(seed)
    X = (1.5 * rng.normal(size=(n_rows, n_features))).astype(np.float32)
    if n_features > 3:
        X[:, 3] = rng.integers(-1, 11, n_rows)
    X[rng.random(X.shape) < 0.15] = 0.0
    band = np.asarray(band_values(), dtype=np.float32)
    special = rng.random(X.shape) < 0.03
    X[special] = rng.choice(band, size=int(special.sum()))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.01] = np.inf
    X[rng.random(X.shape) < 0.01] = -np.inf
    rows = []
    for count, (feature, threshold) in enumerate(dump_thresholds(booster)):
        for value in threshold_values(threshold):
            row = X[count % n_rows].copy()
            row[feature] = value
            rows.append(row)
    return np.vstack([X] + ([np.stack(rows)] if rows else [])).astype(np.float32)


def leaf_rounding_bound(forest, leaves: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Per row and output, a bound on |IR raw score - LightGBM raw score|.

    Each stored leaf is ``float32(v - m)`` for LightGBM's float64 ``v`` and the tree's midpoint
    ``m`` (exact in float64): an error of at most ``2**-24 * |stored leaf|`` per tree (1 %
    margin); on top, both sums are float64 (``n_trees * 2**-52`` of the magnitudes).
    """
    n_rows = leaves.shape[0]
    magnitude = np.zeros((n_rows, forest.n_outputs))
    for t, tree in enumerate(forest.trees):
        values = np.array([abs(v[0]) if v else 0.0 for v in tree.value])
        magnitude[:, forest.tree_output[t]] += values[leaves[:, t]]
    float64_noise = len(forest.trees) * 2.0 ** -52 * (
        magnitude + np.abs(np.asarray(forest.base_score)) + np.abs(raw))
    return 1.01 * 2.0 ** -24 * magnitude + float64_noise


def library_outputs(model, booster, spec, X: np.ndarray) -> np.ndarray:
    if model is not None and spec.rules.task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1, 1)
    if model is not None:
        outputs = np.asarray(model.predict_proba(X), dtype=np.float64)
        return outputs[:, 1:] if spec.rules.task == "binary" else outputs
    return np.asarray(booster.predict(X), dtype=np.float64).reshape(X.shape[0], -1)


def assert_parity(spec, labels, booster, X: np.ndarray, *, model=None, sigmoid: float = 1.0,
                  container: bool = False) -> dict:
    """IR vs LightGBM on X (module docstring); with ``container`` the C core as well.
    Returns the measured worst differences."""
    validate_forest(spec.forest)
    forest = spec.forest
    ours, leaves, raw = score_forest(forest, X, return_leaves=True, return_raw=True)
    dump = booster.dump_model()
    if dump["average_output"]:  # raw_score=True is the sum; predict divides it
        sigmoid = sigmoid / (len(dump["tree_info"]) // dump["num_tree_per_iteration"])
    library_raw = sigmoid * np.asarray(booster.predict(X, raw_score=True),
                                       dtype=np.float64).reshape(X.shape[0], -1)
    bound = leaf_rounding_bound(forest, leaves, raw)
    raw_error = np.abs(raw - library_raw)
    measured = {"raw_abs": float(raw_error.max()),
                "raw_over_bound": float(np.max(raw_error / bound))}
    assert measured["raw_over_bound"] <= 1.0, measured
    expected = library_outputs(model, booster, spec, X)
    output_error = np.abs(ours - expected)
    if forest.post_transform == "identity":
        assert np.all(output_error <= bound), measured
        measured["value_abs"] = float(output_error.max())
    else:
        measured["probability_abs"] = float(output_error.max())
        assert measured["probability_abs"] <= PROBABILITY_TOLERANCE, measured

    library_leaves = np.asarray(booster.predict(X, pred_leaf=True), dtype=np.int64).reshape(
        X.shape[0], -1)
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
    return lightgbm_trees.export_traced(model, OPTIONS)


MAIN_MODELS = {
    "binary": lambda **extra: lgb.LGBMClassifier(n_estimators=40, num_leaves=15,
                                                 n_jobs=1, verbose=-1, **extra),
    "multiclass": lambda **extra: lgb.LGBMClassifier(n_estimators=20, num_leaves=15,
                                                     n_jobs=1, verbose=-1, **extra),
    "regression": lambda **extra: lgb.LGBMRegressor(n_estimators=60, num_leaves=15,
                                                    n_jobs=1, verbose=-1, **extra),
}


# each task and each missing mode once on 100k rows, the other pairs on 10k
FULL_SIZE = {("binary", "nan"), ("multiclass", "zero_as_missing"),
             ("regression", "use_missing_false")}


@pytest.mark.parametrize("missing", ["nan", "zero_as_missing", "use_missing_false"])
@pytest.mark.parametrize("task", sorted(MAIN_MODELS))
def test_parity(task, missing):
    """Each task with each missing mode; one pair per task and mode on 100k rows."""
    extra = {"nan": {}, "zero_as_missing": {"zero_as_missing": True},
             "use_missing_false": {"use_missing": False}}[missing]
    X, y = training_data(1, task, zero_fraction=0.3 if missing == "zero_as_missing" else 0.15)
    model = MAIN_MODELS[task](**extra).fit(X, y)
    booster = model.booster_
    kinds = {node.get("missing_type") for node in _split_nodes(booster)}
    assert kinds == {"nan": {"NaN"}, "zero_as_missing": {"Zero"},
                     "use_missing_false": {"None"}}[missing]
    spec, labels = traced(model)
    n_rows = 100_000 if (task, missing) in FULL_SIZE else 10_000
    rows = scoring_rows(3, n_rows, booster)
    assert rows.shape[0] > n_rows
    assert_parity(spec, labels, booster, rows, model=model, container=True)
    if missing == "zero_as_missing":  # some nodes needed the exact rewrite (copied subtrees)
        assert any(tree.n_nodes > 2 * info["num_leaves"] - 1 for tree, info in
                   zip(spec.forest.trees, booster.dump_model()["tree_info"]))


def _split_nodes(booster):
    stack = [info["tree_structure"] for info in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            yield node
            stack += [node["left_child"], node["right_child"]]


AWKWARD_THRESHOLDS = [float(ZERO_BAND), -float(ZERO_BAND), 0.0, 5e-36, -5e-36, 1e-40, -1e-40,
                      float(np.nextafter(ZERO_BAND, np.float32(1))), 1.5, -1.5, 0.1, -0.1,
                      1e300, -1e300, 3.4028234663852886e38, 1e-300]
AWKWARD_VALUES = sorted({float(v) for t in AWKWARD_THRESHOLDS
                         for v in threshold_values(t)} | {float(v) for v in band_values()}
                        | {np.inf, -np.inf, 2.0, -2.0, 1e30, -1e30})


def _crafted_booster(seed: int, n_features: int) -> lgb.Booster:
    """A trained model whose nodes were rewritten: random features, thresholds from
    ``AWKWARD_THRESHOLDS``, every missing type and default side."""
    rng = np.random.default_rng(seed)
    X = rng.random((300, n_features))
    booster = lgb.train({"objective": "regression", "num_leaves": 6, "min_data_in_leaf": 1,
                         "min_data_in_bin": 1, "learning_rate": 1.0, "verbose": -1,
                         "num_threads": 1, "seed": seed},
                        lgb.Dataset(X, rng.normal(size=300)), num_boost_round=40)
    text = booster.model_to_string()
    text = re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)

    def rewrite(block: str) -> str:
        found = re.search(r"^split_feature=(.*)$", block, re.M)
        if found is None:  # a one-leaf tree
            return block
        n_splits = len(found.group(1).split())
        features = rng.integers(0, n_features, n_splits)
        thresholds = rng.choice(AWKWARD_THRESHOLDS, n_splits)
        # decision_type bits: 1 categorical, 2 default left, (4, 8) missing type None/Zero/NaN
        types = rng.integers(0, 3, n_splits) << 2 | rng.integers(0, 2, n_splits) << 1
        block = re.sub(r"^split_feature=.*$", "split_feature=" + " ".join(map(str, features)),
                       block, flags=re.M)
        block = re.sub(r"^threshold=.*$", "threshold=" + " ".join(repr(float(t)) for t in
                                                                 thresholds), block, flags=re.M)
        return re.sub(r"^decision_type=.*$", "decision_type=" + " ".join(map(str, types)),
                      block, flags=re.M)

    text = re.sub(r"Tree=\d+\n.*?\n\n", lambda m: rewrite(m.group(0)), text, flags=re.S)
    return lgb.Booster(model_str=text)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crafted_nodes_match_lightgbm(seed):
    n_features = 2
    booster = _crafted_booster(seed, n_features)
    dump = booster.dump_model()
    missing_kinds = {(n["missing_type"], n["default_left"]) for n in _split_nodes(booster)}
    assert len(missing_kinds) == 6  # every missing type with both default sides
    assert {n["threshold"] for n in _split_nodes(booster)} >= {float(ZERO_BAND), 0.0}
    spec, labels = traced(booster)
    grid = np.asarray(AWKWARD_VALUES + [np.nan], dtype=np.float32)
    rows = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, n_features)
    assert_parity(spec, labels, booster, rows, container=True)
    # every tree of the original model is kept, each leaf reachable through some copy
    assert len(spec.forest.trees) == len(dump["tree_info"])


def test_zero_rewrite_is_minimal_for_plain_nodes():
    """A NaN- or None-type node, or a Zero-type node whose default agrees with the band,
    stays one IR node; only a disagreeing Zero node is rewritten."""
    regions = lightgbm_trees._node_regions
    for missing in ("None", "NaN"):
        for threshold in (1.5, -1.5, 0.0, float(ZERO_BAND), -float(ZERO_BAND), 5e-36):
            for default_left in (False, True):
                labels = [label for _, _, label in regions(threshold, missing, default_left)[0]]
                assert _changes(labels) <= 1, (missing, threshold, default_left)
    assert _changes([r[2] for r in regions(1.5, "Zero", True)[0]]) == 1
    assert _changes([r[2] for r in regions(-1.5, "Zero", False)[0]]) == 1
    assert _changes([r[2] for r in regions(1.5, "Zero", False)[0]]) == 3
    assert _changes([r[2] for r in regions(-1.5, "Zero", True)[0]]) == 3


def _changes(labels) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:]))


@pytest.mark.parametrize("objective,estimator", [
    ("binary", "classifier"), ("multiclass", "classifier"), ("multiclassova", "classifier"),
    ("cross_entropy", "classifier"), ("cross_entropy", "regressor"),
    ("regression", "regressor"), ("regression_l1", "regressor"), ("huber", "regressor"),
    ("fair", "regressor"), ("quantile", "regressor"), ("mape", "regressor")])
def test_objectives(objective, estimator):
    task = ("multiclass" if objective.startswith("multiclass") else
            "binary" if objective in ("binary", "cross_entropy") else "regression")
    X, y = training_data(7, task, n_rows=1500)
    if objective == "cross_entropy" and estimator == "regressor":
        y = np.clip(y * 0.8 + 0.1, 0.0, 1.0)  # a probability target
    cls = lgb.LGBMClassifier if estimator == "classifier" else lgb.LGBMRegressor
    model = cls(objective=objective, n_estimators=15, num_leaves=7, n_jobs=1,
                verbose=-1).fit(X, y)
    spec, labels = traced(model)
    rows = scoring_rows(8, 5000, model.booster_)
    assert_parity(spec, labels, model.booster_, rows, model=model)
    expected_task = "regression" if estimator == "regressor" else task
    assert spec.rules.task == expected_task
    if objective == "multiclassova":
        assert spec.forest.post_transform == "logistic"


def test_sigmoid_parameter_is_folded_into_leaves():
    X, y = training_data(9, "binary", n_rows=1500)
    for objective in ("binary", "multiclassova"):
        target = y if objective == "binary" else training_data(9, "multiclass", 1500)[1]
        model = lgb.LGBMClassifier(objective=objective, sigmoid=0.6, n_estimators=15,
                                   num_leaves=7, n_jobs=1, verbose=-1).fit(X, target)
        assert "sigmoid:0.6" in model.booster_.dump_model()["objective"]
        spec, labels = traced(model)
        assert_parity(spec, labels, model.booster_, scoring_rows(10, 5000, model.booster_),
                      model=model, sigmoid=0.6)


@pytest.mark.parametrize("boosting,task", [("dart", "binary"), ("goss", "regression"),
                                           ("rf", "binary"), ("rf", "multiclass"),
                                           ("rf", "regression")])
def test_boosting_types(boosting, task):
    X, y = training_data(11, task, n_rows=1500)
    extra = {"bagging_fraction": 0.7, "bagging_freq": 1} if boosting == "rf" else {}
    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    model = cls(boosting_type=boosting, n_estimators=12, num_leaves=7, n_jobs=1, verbose=-1,
                random_state=0, **extra).fit(X, y)
    spec, labels = traced(model)
    if boosting == "rf":
        assert spec.algorithm.family == "random_forest"
    assert_parity(spec, labels, model.booster_, scoring_rows(12, 5000, model.booster_),
                  model=model)


def test_early_stopping_exports_the_best_iteration():
    X, y = training_data(13, "binary")
    X_val, y_val = training_data(14, "binary", n_rows=500)
    train = lgb.Dataset(X, y)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "learning_rate": 0.3,
                         "verbose": -1, "num_threads": 1}, train, num_boost_round=300,
                        valid_sets=[lgb.Dataset(X_val, y_val, reference=train)],
                        callbacks=[lgb.early_stopping(3, verbose=False)],
                        keep_training_booster=True)
    assert 0 < booster.best_iteration < booster.current_iteration()
    spec, labels = traced(booster)
    assert len(spec.forest.trees) == booster.best_iteration  # what predict uses by default
    assert_parity(spec, labels, booster, scoring_rows(15, 3000, booster))


def test_leaf_rounding_of_a_large_initial_score():
    """Regression on a large target: LightGBM's first tree carries the mean (boost_from_average);
    centring each tree's leaves keeps the float32 rounding at the scale of the leaves' spread."""
    X, y = training_data(16, "regression", n_rows=1500)
    model = lgb.LGBMRegressor(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1).fit(
        X, 1e6 + 1000.0 * y)
    spec, labels = traced(model)
    assert spec.forest.base_score[0] == pytest.approx(1e6, rel=1e-2)
    measured = assert_parity(spec, labels, model.booster_,
                             scoring_rows(17, 3000, model.booster_), model=model)
    assert measured["value_abs"] < 1e-3  # float32 leaves of 1e6 alone would err by ~0.03


def test_booster_names_labels_and_metadata():
    pandas = pytest.importorskip("pandas")
    X, y = training_data(18, "multiclass", n_rows=1000)
    frame = pandas.DataFrame(X, columns=["amount", "age", "hour", "count", "ratio"])
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "num_leaves": 7,
                         "verbose": -1, "num_threads": 1}, lgb.Dataset(frame, y),
                        num_boost_round=4)
    spec = export_model(booster, name="fraud-v1", training_params={"note": "extra"})
    assert [v.name for v in spec.inputs] == ["amount", "age", "hour", "count", "ratio"]
    assert all(v.missing == "as_missing" for v in spec.inputs)
    assert [o.name for o in spec.outputs] == ["P_0", "P_1", "P_2"]
    assert spec.rules.task == "multiclass" and spec.rules.class_labels == (0, 1, 2)
    assert spec.algorithm.library == "lightgbm" and spec.algorithm.estimator == "Booster"
    assert spec.algorithm.library_version == lgb.__version__
    assert spec.training_params["objective"] == "multiclass"
    assert spec.training_params["note"] == "extra"
    json.dumps(spec.training_params, allow_nan=False)

    unnamed = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, n_jobs=1, verbose=-1).fit(
        X, np.where(y > 0, "fraud", "ok"))
    spec = export_model(unnamed, cutoff=0.7)
    assert [v.name for v in spec.inputs] == [f"x{i}" for i in range(N_FEATURES)]
    assert spec.rules.class_labels == ("fraud", "ok") and spec.rules.cutoff == 0.7
    assert [o.name for o in spec.outputs] == ["P_ok"]
    assert spec.training_params["n_estimators"] == 3
    with pytest.raises(UsageError, match="encoder_layers"):
        export_model(unnamed, encoder_layers=1)
    with pytest.raises(UsageError, match="iteration_range"):
        export_model(unnamed, iteration_range=(0, 1))


@pytest.mark.parametrize("objective,words", [
    ("poisson", "exp"), ("gamma", "exp"), ("tweedie", "exp"),
    ("cross_entropy_lambda", "log"), ("lambdarank", "ranking")])
def test_refuses_other_links(objective, words):
    X, y = training_data(21, "regression", n_rows=600, nan_fraction=0.0)
    params = {"objective": objective, "num_leaves": 4, "verbose": -1, "num_threads": 1}
    target = np.abs(y) + 0.1
    dataset = lgb.Dataset(X, target)
    if objective == "cross_entropy_lambda":
        dataset = lgb.Dataset(X, np.clip(target / target.max(), 0, 1))
    if objective == "lambdarank":
        dataset = lgb.Dataset(X, (y > np.median(y)).astype(int), group=[100] * 6)
    booster = lgb.train(params, dataset, num_boost_round=2)
    with pytest.raises(UnsupportedModelError, match=f"{objective}.*{words}"):
        export_model(booster)


def test_refuses_linear_trees_custom_objectives_and_others():
    X, y = training_data(22, "regression", n_rows=600, nan_fraction=0.0)
    linear = lgb.LGBMRegressor(n_estimators=2, linear_tree=True, n_jobs=1, verbose=-1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="linear"):
        export_model(linear)
    squared = lgb.LGBMRegressor(n_estimators=2, reg_sqrt=True, n_jobs=1, verbose=-1).fit(
        X, np.abs(y))
    with pytest.raises(UnsupportedModelError, match="reg_sqrt"):
        export_model(squared)

    def l2(labels, predictions):
        return predictions - labels, np.ones_like(predictions)

    custom = lgb.LGBMRegressor(objective=l2, n_estimators=2, n_jobs=1, verbose=-1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="custom"):
        export_model(custom)
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(lgb.LGBMClassifier())
    ranker = lgb.LGBMRanker(n_estimators=2, n_jobs=1, verbose=-1).fit(
        X, (y > np.median(y)).astype(int), group=[100] * 6)
    with pytest.raises(UnsupportedModelError, match="LGBMRanker"):
        export_model(ranker)


def test_pipeline_with_a_scaler_is_refused():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = training_data(23, "binary", n_rows=600)
    pipeline = make_pipeline(StandardScaler(), lgb.LGBMClassifier(
        n_estimators=2, num_leaves=4, n_jobs=1, verbose=-1)).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="float64"):
        export_model(pipeline)


def test_deep_zero_missing_trees_stay_small():
    """The exact rewrite copies subtrees; measured on deep zero-as-missing trees, the growth
    stays a small factor (the copies are pruned to the values that reach them)."""
    X, y = training_data(24, "binary", n_rows=3000, zero_fraction=0.4)
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=63, min_child_samples=5,
                               zero_as_missing=True, n_jobs=1, verbose=-1).fit(X, y)
    spec, labels = traced(model)
    library_leaves = sum(info["num_leaves"] for info in model.booster_.dump_model()["tree_info"])
    exported_leaves = sum(tree.n_nodes + 1 for tree in spec.forest.trees) // 2
    assert exported_leaves < 8 * library_leaves, (exported_leaves, library_leaves)
    assert_parity(spec, labels, model.booster_, scoring_rows(25, 3000, model.booster_),
                  model=model)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(objective=st.sampled_from(["binary", "multiclass", "regression", "multiclassova"]),
       missing=st.sampled_from(["nan", "zero_as_missing", "use_missing_false"]),
       num_leaves=st.integers(2, 24), rounds=st.integers(1, 8), n_features=st.integers(1, 6),
       nan_fraction=st.sampled_from([0.0, 0.05, 0.4]),
       zero_fraction=st.sampled_from([0.0, 0.2, 0.6]), seed=st.integers(0, 2**16))
def test_random_models_match_lightgbm(objective, missing, num_leaves, rounds, n_features,
                                      nan_fraction, zero_fraction, seed):
    task = "multiclass" if objective.startswith("multiclass") else (
        "binary" if objective == "binary" else "regression")
    X, y = training_data(seed, task, n_rows=400, n_features=n_features,
                         nan_fraction=nan_fraction, zero_fraction=zero_fraction)
    params = {"objective": objective, "num_leaves": num_leaves, "min_data_in_leaf": 3,
              "verbose": -1, "num_threads": 1, "seed": seed,
              "zero_as_missing": missing == "zero_as_missing",
              "use_missing": missing != "use_missing_false"}
    if task == "multiclass":
        params["num_class"] = 3
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=rounds)
    spec, labels = traced(booster)
    rows = scoring_rows(seed + 1, 400, booster, n_features=n_features)
    assert_parity(spec, labels, booster, rows)


# ---- categorical splits ---------------------------------------------------------------------

def categorical_rows(seed: int, n_rows: int, booster, forest) -> np.ndarray:
    """``scoring_rows`` whose categorical columns hold codes past the training range,
    negatives, NaN, +-inf and values of 2**24 and above, with the set rows (every listed code
    and its neighbours, ``category_rows``)."""
    rng = np.random.default_rng(seed)
    X = scoring_rows(seed, n_rows, booster)
    X[:, 3] = rng.integers(-3, 48, X.shape[0])
    X[:, 4] = rng.integers(-2, 9, X.shape[0])
    special = rng.random((X.shape[0], 2)) < 0.05
    X[:, 3:][special] = rng.choice(np.float32([np.nan, np.inf, -np.inf, 2 ** 24, 2 ** 31,
                                               1e30, -2 ** 31]), size=int(special.sum()))
    return np.vstack([X, category_rows(forest, X[:1000])]).astype(np.float32)


CATEGORICAL_MODELS = {
    "binary": lambda: lgb.LGBMClassifier(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1,
                                         min_data_per_group=10, cat_smooth=1.0),
    "multiclass": lambda: lgb.LGBMClassifier(n_estimators=15, num_leaves=15, n_jobs=1,
                                             verbose=-1, zero_as_missing=True),
    "regression": lambda: lgb.LGBMRegressor(n_estimators=30, num_leaves=15, n_jobs=1,
                                            verbose=-1, max_cat_to_onehot=8),
}


@pytest.mark.parametrize("task", sorted(CATEGORICAL_MODELS))
def test_categorical_splits_match_lightgbm(task):
    """Many-code splits (binary, multiclass with zero as missing on the numeric columns) and
    one-vs-rest splits (regression's 6-code column); binary on 100k rows, the others 10k."""
    X, y = shared_categorical_data(6, task, zero_fraction=0.1)
    model = CATEGORICAL_MODELS[task]().fit(X, y, categorical_feature=[3, 4])
    spec, labels = traced(model)
    sets = [codes for tree in spec.forest.trees for codes in tree.categories if codes]
    assert sets and any(len(codes) > 1 for codes in sets)
    rows = categorical_rows(7, 100_000 if task == "binary" else 10_000, model.booster_,
                            spec.forest)
    assert_parity(spec, labels, model.booster_, rows, model=model, container=True)


def test_pandas_categories_become_the_vocabulary():
    """A model fitted on pandas category columns exports categorical inputs whose vocabulary
    is LightGBM's recorded ``pandas_categorical``: the container scores texts, missing and
    unseen ones included, exactly as LightGBM scores the DataFrame."""
    pandas = pytest.importorskip("pandas")
    frame, y = pandas_category_frame(23, 3000)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1,
                               min_data_per_group=10, cat_smooth=1.0).fit(frame, y)
    spec = export_model(model)
    assert_recorded_vocabularies(spec)
    container = signed_container(spec)
    test = frame.sample(400, random_state=1).reset_index(drop=True)
    texts = test["merchant"].astype(object).tolist()
    texts[:40] = ["a shop never seen"] * 40
    texts[40:80] = [None] * 40
    # LightGBM recodes a DataFrame to the training categories: an unseen one becomes NaN
    test["merchant"] = pandas.Categorical([t if t in MERCHANT_NAMES else None for t in texts],
                                          categories=list(MERCHANT_NAMES))
    expected = model.predict_proba(test)[:, 1]
    records = [{"amount": a, "merchant": m if isinstance(m, str) else None, "area": str(r)}
               for a, m, r in zip(test["amount"], texts, test["area"].astype(int))]
    got = np.array([container.score_one(record)[0] for record in records])
    assert np.abs(got - expected).max() <= PROBABILITY_TOLERANCE
