"""Differential tests: the IR exported from scikit-learn scores exactly like scikit-learn.

The reference evaluator (``tests/differential/reference_forest.py``) scores the exported
``Forest`` on float32 rows and is compared with the estimator's own ``predict_proba`` / ``predict``:

* with the IR's float64 leaves the results agree to float64 rounding (1e-12);
* with leaves rounded to float32 (what the C core stores) probabilities stay within 1e-6
  absolute and regression values within ``2**-23`` times the sum of the magnitudes of the
  contributing leaves (the float32 rounding bound);
* every row reaches the same leaf, checked against ``tree_.apply`` (the routine
  ``predict`` uses) and the public ``apply``; for histogram gradient boosting, which has no
  ``apply``, against each predictor's own per-tree output.

Rows hold NaN where the estimator accepts it, ``+-inf`` where the code path accepts it
(``tree_.apply`` and histogram gradient boosting; the public ``predict`` of the other
estimators refuses infinity), and for every split a row exactly on the float32 image of its
threshold and one just above. Integer-valued features give thresholds such as ``4.5`` that
float32 represents exactly, so rows equal to a threshold really test ``<=``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import Forest, Tree, is_float32
from reference_forest import (  # noqa: F401 - one_native_thread is an autouse fixture
    assert_container_matches,
    one_native_thread,
    score_forest,
    shared_training_data,
    split_nodes,
    threshold_rows,
    tree_leaf_ids,
    validate_forest,
)
from trainer.export import export_model
from trainer.export.sklearn_trees import le_to_lt_float32

N_FEATURES = 5
PROBABILITY_TOLERANCE = 1e-6
FLOAT64_TOLERANCE = 1e-12


def training_data(seed: int, task: str, n_rows: int = 1200, **options):
    return shared_training_data(seed, task, n_rows, **options)


def accepts_nan(model) -> bool:
    return not type(model).__name__.startswith("GradientBoosting")


def scoring_rows(seed: int, n_rows: int, forest: Forest, *, nan: bool,
                 infinities: bool) -> np.ndarray:
    """Random float32 rows plus rows on every threshold (see the module docstring)."""
    rng = np.random.default_rng(seed)
    X = (1.5 * rng.normal(size=(n_rows, forest.n_features))).astype(np.float32)
    if forest.n_features > 3:
        X[:, 3] = rng.integers(-1, 11, n_rows)
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    if infinities:
        X[rng.random(X.shape) < 0.01] = np.inf
        X[rng.random(X.shape) < 0.01] = -np.inf
    return np.vstack([X, threshold_rows(forest, X[:1000])]).astype(np.float32)


def tree_estimators(model) -> list:
    """The fitted sub-trees in the IR's tree order (stage-major, then class)."""
    name = type(model).__name__
    if name.startswith(("DecisionTree", "ExtraTree")) and not name.startswith("ExtraTrees"):
        return [model]
    if name.startswith("GradientBoosting"):
        return list(np.asarray(model.estimators_).ravel())
    return list(model.estimators_)


def library_outputs(model, task: str, X: np.ndarray) -> np.ndarray:
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1, 1)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return proba[:, 1:] if task == "binary" else proba


def float32_leaf_bound(forest: Forest, leaves: np.ndarray) -> np.ndarray:
    """Bound on the effect of rounding every leaf to float32, per row (raw-score units)."""
    magnitude = np.zeros(leaves.shape[0])
    for t, tree in enumerate(forest.trees):
        values = np.array([max((abs(v) for v in leaf), default=0.0) for leaf in tree.value])
        magnitude += values[leaves[:, t]]
    if forest.aggregation == "mean":
        magnitude /= len(forest.trees)
    return 2.0 ** -23 * magnitude + 1e-12


def assert_parity(model, spec, X: np.ndarray) -> dict:
    """IR vs scikit-learn on float32 X (rows with infinities: leaf ids only, except HGB)."""
    forest = spec.forest
    validate_forest(forest)
    task = spec.rules.task
    hist = type(model).__name__.startswith("HistGradientBoosting")
    ours, leaves = score_forest(forest, X, return_leaves=True)
    ours32 = score_forest(forest, X, leaf_dtype=np.float32)
    public = ~np.isinf(X).any(axis=1) | hist
    expected = library_outputs(model, task, X[public])
    measured = {"float64_leaves": float(np.max(np.abs(ours[public] - expected))),
                "float32_leaves": float(np.max(np.abs(ours32[public] - expected)))}
    assert measured["float64_leaves"] <= FLOAT64_TOLERANCE * max(1.0, np.abs(expected).max()), \
        measured
    if task == "regression":
        bound = float32_leaf_bound(forest, leaves)[public]
        assert np.all(np.abs(ours32[public] - expected)[:, 0] <= bound), measured
        measured["float32_leaves_rel"] = float(np.max(
            np.abs(ours32[public] - expected)[:, 0] / np.maximum(1.0, np.abs(expected[:, 0]))))
    else:
        assert measured["float32_leaves"] <= PROBABILITY_TOLERANCE, measured

    if hist:
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        X64 = X.astype(np.float64)
        predictors = [p for iteration in model._predictors for p in iteration]
        for t, (tree, predictor) in enumerate(zip(forest.trees, predictors)):
            per_tree = predictor.predict(X64, known, f_idx_map, 1)
            values = np.array([leaf[0] if leaf else np.nan for leaf in tree.value])
            np.testing.assert_array_equal(values[leaves[:, t]], per_tree)
    else:
        estimators = tree_estimators(model)
        assert len(estimators) == len(forest.trees)
        library_leaves = np.column_stack([e.tree_.apply(X) for e in estimators])
        np.testing.assert_array_equal(leaves, library_leaves)
        finite = ~np.isinf(X).any(axis=1)
        if accepts_nan(model) or not np.isnan(X).any():
            public_leaves = np.asarray(model.apply(X[finite])).reshape(int(finite.sum()), -1)
            np.testing.assert_array_equal(leaves[finite], public_leaves)
    return measured


def fit(model, task: str, seed: int, **data_options):
    X, y = training_data(seed, task, nan_fraction=0.1 if accepts_nan(model) else 0.0,
                         **data_options)
    return model.fit(X, y)


# One model of every supported kind and task, small enough for a 100,000-row comparison.
MAIN_MODELS = {
    "decision_tree_binary": (lambda: DecisionTreeClassifier(max_depth=8, random_state=0),
                             "binary"),
    "random_forest_multiclass": (lambda: RandomForestClassifier(
        n_estimators=15, max_depth=8, random_state=0), "multiclass"),
    "extra_trees_binary": (lambda: ExtraTreesClassifier(
        n_estimators=15, max_depth=8, random_state=0), "binary"),
    "random_forest_regression": (lambda: RandomForestRegressor(
        n_estimators=15, max_depth=8, random_state=0), "regression"),
    "extra_trees_regression": (lambda: ExtraTreesRegressor(
        n_estimators=10, max_depth=8, random_state=0), "regression"),
    "gradient_boosting_binary": (lambda: GradientBoostingClassifier(
        n_estimators=40, max_depth=3, random_state=0), "binary"),
    "gradient_boosting_multiclass": (lambda: GradientBoostingClassifier(
        n_estimators=15, max_depth=3, random_state=0), "multiclass"),
    "gradient_boosting_regression": (lambda: GradientBoostingRegressor(
        n_estimators=40, max_depth=3, random_state=0), "regression"),
    "hist_gradient_boosting_binary": (lambda: HistGradientBoostingClassifier(
        max_iter=30, random_state=0), "binary"),
    "hist_gradient_boosting_multiclass": (lambda: HistGradientBoostingClassifier(
        max_iter=10, random_state=0), "multiclass"),
    "hist_gradient_boosting_regression": (lambda: HistGradientBoostingRegressor(
        max_iter=30, random_state=0), "regression"),
}


@pytest.mark.parametrize("kind", sorted(MAIN_MODELS))
def test_parity_on_100k_rows(kind):
    factory, task = MAIN_MODELS[kind]
    model = fit(factory(), task, seed=1)
    spec = export_model(model)
    assert spec.rules.task == task
    nan = accepts_nan(model)
    rows = scoring_rows(2, 100_000, spec.forest, nan=nan, infinities=True)
    assert rows.shape[0] > 100_000
    assert_parity(model, spec, rows)
    assert_container_matches(spec, rows)  # the C core, through a signed container


def test_rows_equal_to_thresholds_go_left():
    """Integer features give float32-exact thresholds (k + 0.5): rows equal to them go left."""
    model = fit(RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0),
                "binary", seed=3)
    spec = export_model(model)
    equal_rows, exact = [], 0
    base = np.zeros(N_FEATURES, dtype=np.float32)
    for estimator in model.estimators_:
        tree_ = estimator.tree_
        for node in np.flatnonzero(tree_.children_left != -1):
            threshold = tree_.threshold[node]
            if is_float32(float(threshold)):
                exact += 1
                row = base.copy()
                row[tree_.feature[node]] = threshold
                equal_rows.append(row)
    assert exact > 10
    rows = np.stack(equal_rows)
    assert_parity(model, spec, rows)


def test_threshold_conversion_matches_less_or_equal():
    rng = np.random.default_rng(4)
    float32_max = float(np.finfo(np.float32).max)
    thresholds = np.concatenate([
        rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, 200),
        rng.normal(size=50).astype(np.float32).astype(np.float64),
        (rng.integers(-100, 100, 50) + 0.5),
        [0.0, -0.0, 1e-45, -1e-45, 1e-40, float32_max, -float32_max, 1e39, -1e39,
         float32_max * (1 + 1e-12), np.inf, -np.inf],
    ])
    converted, swap = le_to_lt_float32(thresholds)
    assert converted.dtype == np.float32
    with np.errstate(over="ignore"):
        _check_threshold_conversion(thresholds, converted, swap)
    assert swap.tolist().count(True) == 1 and converted[swap][0] == -np.inf


def _check_threshold_conversion(thresholds, converted, swap):
    float32_max = float(np.finfo(np.float32).max)
    for t, t_prime, swapped in zip(thresholds, converted, swap):
        center = np.float32(t) if np.isfinite(np.float32(t)) else np.float32(np.sign(t) * 3e38)
        candidates = [np.float32(np.inf), np.float32(-np.inf), np.float32(float32_max),
                      np.float32(-float32_max), np.float32(0.0)]
        value = center
        for _ in range(4):
            value = np.nextafter(value, np.float32(-np.inf))
        for _ in range(9):
            candidates.append(value)
            value = np.nextafter(value, np.float32(np.inf))
        for x in candidates:
            goes_left = float(x) <= t
            ir_left = bool(x < t_prime)
            assert goes_left == (not ir_left if swapped else ir_left), (t, x, t_prime)


def test_binary_classifier_outputs_and_metadata():
    pandas = pytest.importorskip("pandas")
    X, y = training_data(5, "binary")
    frame = pandas.DataFrame(X, columns=["amount", "age", "hour", "count", "ratio"])
    labels = np.where(y == 1, "fraud", "legit")
    model = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(
        frame, labels)
    spec = export_model(model, cutoff=0.2, name="gate", training_params={"seed": 7})
    assert list(model.classes_) == ["fraud", "legit"]
    assert spec.rules.task == "binary"
    assert spec.rules.class_labels == ("fraud", "legit") and spec.rules.cutoff == 0.2
    assert [o.name for o in spec.outputs] == ["P_legit"]
    assert spec.outputs[0].type == "probability"
    assert spec.forest.leaf_width == 1 and spec.forest.aggregation == "mean"
    assert [v.name for v in spec.inputs] == ["amount", "age", "hour", "count", "ratio"]
    assert all(v.missing == "as_missing" for v in spec.inputs)
    assert spec.algorithm.library == "scikit-learn"
    assert spec.algorithm.family == "random_forest"
    assert spec.algorithm.estimator == "RandomForestClassifier" and spec.name == "gate"
    assert spec.training_params["n_estimators"] == 4 and spec.training_params["seed"] == 7
    json.dumps(spec.training_params, allow_nan=False)
    rows = scoring_rows(6, 2000, spec.forest, nan=True, infinities=False)
    ours = score_forest(spec.forest, rows)
    np.testing.assert_allclose(
        ours[:, 0], model.predict_proba(pandas.DataFrame(rows, columns=frame.columns))[:, 1],
        rtol=0, atol=1e-12)


def test_multiclass_and_regression_conventions():
    model = fit(ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=0),
                "multiclass", seed=7, n_classes=4)
    spec = export_model(model)
    assert [o.name for o in spec.outputs] == ["P_0", "P_1", "P_2", "P_3"]
    assert spec.rules.task == "multiclass" and spec.rules.class_labels == (0, 1, 2, 3)
    assert spec.rules.cutoff is None and spec.forest.leaf_width == 4
    regressor = fit(GradientBoostingRegressor(n_estimators=3, random_state=0), "regression",
                    seed=7)
    spec = export_model(regressor)
    assert [(o.name, o.type) for o in spec.outputs] == [("prediction", "value")]
    assert spec.rules.task == "regression" and spec.rules.class_labels == ()
    assert all(v.missing == "error" for v in spec.inputs)  # sklearn refuses NaN here
    assert [v.name for v in spec.inputs] == [f"x{i}" for i in range(N_FEATURES)]


@pytest.mark.parametrize("init", ["zero", DummyClassifier(strategy="most_frequent"),
                                  DummyClassifier(strategy="uniform"),
                                  DummyClassifier(strategy="prior")])
@pytest.mark.parametrize("task,loss", [("binary", "log_loss"), ("binary", "exponential"),
                                       ("multiclass", "log_loss")])
def test_gradient_boosting_classifier_init_and_losses(init, task, loss):
    model = fit(GradientBoostingClassifier(n_estimators=8, max_depth=2, loss=loss, init=init,
                                           learning_rate=0.3, random_state=0), task, seed=8)
    spec = export_model(model)
    assert_parity(model, spec, scoring_rows(9, 3000, spec.forest, nan=False, infinities=True))


@pytest.mark.parametrize("init", ["zero", DummyRegressor(strategy="median"),
                                  DummyRegressor(strategy="quantile", quantile=0.8),
                                  DummyRegressor(strategy="constant", constant=3.5)])
@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "quantile"])
def test_gradient_boosting_regressor_init_and_losses(init, loss):
    model = fit(GradientBoostingRegressor(n_estimators=8, max_depth=2, loss=loss, init=init,
                                          random_state=0), "regression", seed=10)
    spec = export_model(model)
    assert_parity(model, spec, scoring_rows(11, 2000, spec.forest, nan=False, infinities=True))


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "quantile"])
def test_hist_gradient_boosting_regression_losses(loss):
    options = {"quantile": 0.8} if loss == "quantile" else {}
    model = fit(HistGradientBoostingRegressor(max_iter=8, loss=loss, random_state=0, **options),
                "regression", seed=12)
    spec = export_model(model)
    assert_parity(model, spec, scoring_rows(13, 2000, spec.forest, nan=True, infinities=True))


def test_hist_gradient_boosting_nan_only_splits_are_exact():
    """NaN-only splits have threshold +inf: +inf must still go left, NaN right."""
    rng = np.random.default_rng(14)
    X = rng.normal(size=(2000, 2))
    missing = rng.random(2000) < 0.3
    X[missing, 0] = np.nan
    y = np.where(missing, 5.0, X[:, 1])
    model = HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(X, y)
    spec = export_model(model)
    infinite_thresholds = sum(
        1 for predictor in (p for it in model._predictors for p in it)
        for node in predictor.nodes if not node["is_leaf"] and np.isinf(node["num_threshold"]))
    assert infinite_thresholds > 0
    rows = np.array([[np.inf, 0.0], [np.nan, 0.0], [-np.inf, 0.0], [1e30, 0.0], [0.5, 1.0]],
                    dtype=np.float32)
    assert_parity(model, spec, rows)
    tree_model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    tree_spec = export_model(tree_model)
    assert np.isinf(tree_model.tree_.threshold).any()
    assert_parity(tree_model, tree_spec, rows)


@pytest.mark.parametrize("make_model", [
    lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    lambda: RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=5, max_depth=6, random_state=0),
    lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
], ids=["tree", "forest", "extra_trees", "hist_gradient_boosting"])
def test_models_fitted_without_nan_route_nan_like_sklearn(make_model):
    """Never having seen NaN, scikit-learn still routes it (to the larger child): so does the IR."""
    model = make_model()
    task = "regression" if type(model).__name__.endswith("Regressor") else "binary"
    X, y = training_data(18, task, nan_fraction=0.0)
    model.fit(X, y)
    spec = export_model(model)
    rows = scoring_rows(19, 5000, spec.forest, nan=True, infinities=False)
    rows[::3, first_split_feature(spec.forest)] = np.nan
    assert np.isnan(rows).any(axis=1).mean() > 0.3
    assert_parity(model, spec, rows)


def first_split_feature(forest: Forest) -> int:
    """The feature of the first split of the first tree: NaN there changes paths."""
    return next(feature for _, _, feature, _ in split_nodes(forest))


KINDS = {
    "DecisionTreeClassifier": lambda s, d: DecisionTreeClassifier(max_depth=d, random_state=s),
    "DecisionTreeRegressor": lambda s, d: DecisionTreeRegressor(max_depth=d, random_state=s),
    "ExtraTreeClassifier": lambda s, d: ExtraTreeClassifier(max_depth=d, random_state=s),
    "ExtraTreeRegressor": lambda s, d: ExtraTreeRegressor(max_depth=d, random_state=s),
    "RandomForestClassifier": lambda s, d: RandomForestClassifier(
        n_estimators=4, max_depth=d, random_state=s),
    "RandomForestRegressor": lambda s, d: RandomForestRegressor(
        n_estimators=4, max_depth=d, random_state=s),
    "ExtraTreesClassifier": lambda s, d: ExtraTreesClassifier(
        n_estimators=4, max_depth=d, random_state=s),
    "ExtraTreesRegressor": lambda s, d: ExtraTreesRegressor(
        n_estimators=4, max_depth=d, random_state=s),
    "GradientBoostingClassifier": lambda s, d: GradientBoostingClassifier(
        n_estimators=4, max_depth=d, random_state=s),
    "GradientBoostingRegressor": lambda s, d: GradientBoostingRegressor(
        n_estimators=4, max_depth=d, random_state=s),
    "HistGradientBoostingClassifier": lambda s, d: HistGradientBoostingClassifier(
        max_iter=4, max_depth=d, random_state=s),
    "HistGradientBoostingRegressor": lambda s, d: HistGradientBoostingRegressor(
        max_iter=4, max_depth=d, random_state=s),
}


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(KINDS)), multiclass=st.booleans(),
       max_depth=st.integers(1, 6), n_features=st.integers(1, 6),
       n_classes=st.integers(3, 4), seed=st.integers(0, 2**16))
def test_random_models_match_sklearn(kind, multiclass, max_depth, n_features, n_classes, seed):
    model = KINDS[kind](seed, max_depth)
    task = "regression" if kind.endswith("Regressor") else (
        "multiclass" if multiclass else "binary")
    model = fit(model, task, seed, n_rows=300, n_features=n_features, n_classes=n_classes)
    spec = export_model(model)
    rows = scoring_rows(seed + 1, 300, spec.forest, nan=accepts_nan(model), infinities=True)
    assert_parity(model, spec, rows)


def test_refuses_unsupported_estimators():
    X, y = training_data(15, "binary", nan_fraction=0.0)
    for model in (LogisticRegression().fit(X, y), IsolationForest(n_estimators=3).fit(X)):
        with pytest.raises(UnsupportedModelError, match=type(model).__name__):
            export_model(model)
    # pipelines of imputers and scalers are exported (tests/unit/pyastore); other steps are refused
    with pytest.raises(UnsupportedModelError, match="Normalizer"):
        export_model(make_pipeline(Normalizer(), DecisionTreeClassifier()).fit(X, y))

    class TunedForest(RandomForestClassifier):
        pass

    with pytest.raises(UnsupportedModelError, match="TunedForest"):
        export_model(TunedForest(n_estimators=2).fit(X, y))
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(RandomForestClassifier())
    with pytest.raises(UnsupportedModelError, match="single class"):
        export_model(DecisionTreeClassifier().fit(X, np.zeros(len(y))))
    with pytest.raises(UnsupportedModelError, match="multi-output"):
        export_model(RandomForestRegressor(n_estimators=2).fit(X, np.column_stack([y, y])))
    with pytest.raises(UsageError, match="iteration_range"):
        export_model(DecisionTreeClassifier().fit(X, y), iteration_range=(0, 1))


def test_refuses_inexact_gradient_boosting_parts():
    X, y = training_data(16, "binary", nan_fraction=0.0)
    with pytest.raises(UnsupportedModelError, match="LogisticRegression"):
        export_model(GradientBoostingClassifier(n_estimators=2, init=LogisticRegression())
                     .fit(X, y))
    with pytest.raises(UnsupportedModelError, match="stratified"):
        export_model(GradientBoostingClassifier(
            n_estimators=2, init=DummyClassifier(strategy="stratified")).fit(X, y))
    with pytest.raises(UnsupportedModelError, match="LinearRegression"):
        export_model(GradientBoostingRegressor(n_estimators=2, init=LinearRegression())
                     .fit(X, y))
    with pytest.raises(UnsupportedModelError, match="poisson"):
        export_model(HistGradientBoostingRegressor(max_iter=2, loss="poisson")
                     .fit(X, np.abs(X[:, 0])))


def test_refuses_hist_gradient_boosting_categorical_features():
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(17)
    frame = pandas.DataFrame({
        "amount": rng.normal(size=500),
        "merchant": pandas.Categorical(rng.choice(["a", "b", "c"], size=500)),
    })
    y = (frame["merchant"] == "b").astype(int) ^ (frame["amount"] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype"
                                           ).fit(frame, y)
    with pytest.raises(UnsupportedModelError, match="merchant"):
        export_model(model)


# --- the reference evaluator itself -------------------------------------------------------

def _stump(threshold=0.5, default_left=True):
    return Tree(feature=(0, -1, -1), threshold=(threshold, 0.0, 0.0), left=(1, -1, -1),
                right=(2, -1, -1), default_left=(default_left, False, False),
                value=((), (1.0,), (3.0,)))


def test_reference_evaluator_on_a_hand_built_forest():
    forest = Forest(n_features=2, n_outputs=2, leaf_width=1,
                    trees=(_stump(), _stump(default_left=False), _stump(threshold=-1.0)),
                    tree_output=(0, 0, 1), aggregation="sum", base_score=(0.5, -1.0),
                    post_transform="identity")
    validate_forest(forest)
    X = np.array([[0.0, 9], [0.5, 9], [np.nan, 9], [np.inf, 9], [-np.inf, 9]], np.float32)
    raw, leaves = score_forest(forest, X, return_leaves=True)
    np.testing.assert_array_equal(raw, [[2.5, 2.0], [6.5, 2.0], [4.5, 0.0], [6.5, 2.0],
                                        [2.5, 0.0]])
    np.testing.assert_array_equal(leaves[:, 0], [1, 2, 1, 2, 1])
    np.testing.assert_array_equal(tree_leaf_ids(forest.trees[1], X), [1, 2, 2, 2, 1])
    mean = Forest(n_features=2, n_outputs=1, leaf_width=1, trees=(_stump(), _stump(-1.0)),
                  tree_output=(0, 0), aggregation="mean", base_score=(1.0,),
                  post_transform="logistic")
    np.testing.assert_allclose(score_forest(mean, X[:1])[0, 0], 1 / (1 + np.exp(-3.0)))
    softmax = Forest(n_features=2, n_outputs=2, leaf_width=2,
                     trees=(Tree(feature=(-1,), threshold=(0.0,), left=(-1,), right=(-1,),
                                 default_left=(False,), value=((0.0, np.log(3.0)),)),),
                     tree_output=(0,), post_transform="softmax")
    np.testing.assert_allclose(score_forest(softmax, X[:1]), [[0.25, 0.75]])
    assert len(list(split_nodes(forest))) == 3


@pytest.mark.parametrize("broken,message", [
    (dict(right=(1, -1, -1)), "reached twice"),
    (dict(left=(0, -1, -1)), "reached twice"),
    (dict(right=(5, -1, -1)), "out of range"),
    (dict(threshold=(0.1, 0.0, 0.0)), "float32"),
    (dict(feature=(3, -1, -1)), "feature 3"),
    (dict(value=((), (1.0, 2.0), (3.0,))), "leaf_width"),
    (dict(feature=(-1, -1, -1), value=((1.0,), (1.0,), (3.0,))), "unreachable"),
])
def test_validate_forest_rejects_broken_trees(broken, message):
    fields = dict(feature=(0, -1, -1), threshold=(0.5, 0.0, 0.0), left=(1, -1, -1),
                  right=(2, -1, -1), default_left=(True, False, False),
                  value=((), (1.0,), (3.0,)))
    fields.update(broken)
    forest = Forest(n_features=2, n_outputs=1, leaf_width=1, trees=(Tree(**fields),),
                    tree_output=(0,))
    with pytest.raises(ValueError, match=message):
        validate_forest(forest)
