"""Ingest a scikit-learn tree model into the pyastore tree IR.

Supported estimators (exact classes only; a subclass may change prediction):
``DecisionTreeClassifier/Regressor``, ``ExtraTreeClassifier/Regressor``,
``RandomForestClassifier/Regressor``, ``ExtraTreesClassifier/Regressor``,
``GradientBoostingClassifier/Regressor`` and ``HistGradientBoostingClassifier/Regressor``,
single-output only.

Split rule. scikit-learn sends a row left when ``x <= threshold`` with ``threshold`` a
float64 and ``x`` the float32 input (decision trees, forests, gradient boosting convert X to
float32) promoted to float64. For float32 ``x``, ``x <= t`` holds iff ``x <= floor32(t)``, the
largest float32 not above ``t``, iff ``x < t'`` with ``t' = next_float32_above(floor32(t))``:
that ``t'`` is the IR threshold, exact for every float32 input including ``+-inf``. The one
threshold with no such ``t'`` is ``t = +inf`` (scikit-learn's "only NaN goes right" splits):
every non-NaN value, ``+inf`` included, goes left; the IR node becomes ``x < -inf`` (never
true) with the two children swapped and the NaN direction negated.

Missing values. Trees route NaN with ``tree_.missing_go_to_left`` (set at fit time even when
no NaN was seen: then to the child with more samples), which becomes ``default_left``.
Gradient boosting scores with its own routine that has no NaN branch (``NaN <= t`` is false:
right); as scikit-learn refuses NaN input for it, its inputs are exported with
``missing="error"``. Every estimator that accepts NaN (its ``allow_nan`` tag) gets
``missing="as_missing"``.

Leaves and outputs.

* Classifier trees and forests: ``tree_.value`` holds the per-leaf class fractions (since
  scikit-learn 1.4; before, they are normalised here exactly as ``predict_proba`` did). A
  binary model keeps the positive-class fraction only (``leaf_width`` 1), a multiclass model
  the whole vector (``leaf_width`` = number of classes); forests average (``"mean"``), as
  ``predict_proba`` averages the trees' probabilities. Regressors: ``value[:, 0, 0]``, mean.
* Gradient boosting: ``raw = init + sum(learning_rate * leaf)``; the product
  ``learning_rate * leaf`` is computed in float64 exactly as scikit-learn does and stored as
  the leaf, one tree per class and stage (``tree_output`` = class). ``init`` must be
  ``"zero"`` or a ``DummyClassifier``/``DummyRegressor`` with a constant prediction (any
  strategy but ``"stratified"``): its raw prediction is the ``base_score``. Binary
  ``log_loss`` -> logistic, multiclass -> softmax, ``exponential`` -> logistic of twice the raw
  score (the factor 2 is folded into leaves and base score, an exact scaling); regression
  losses have the identity link.
* Histogram gradient boosting: each predictor node carries ``num_threshold`` (float64, the
  same ``<=`` rule), ``missing_go_to_left`` and ``is_categorical``; leaves already include the
  learning rate; ``_baseline_prediction`` is the ``base_score``. It compares in float64 on
  float64 input, so the export reproduces it exactly for float32-representable inputs (the
  only inputs a container receives). Categorical features and regression losses with a
  non-identity link (``poisson``, ``gamma``: exp) are refused.

Leaf values are stored as Python floats (float64); a consumer that stores them as float32
changes probabilities by at most about ``2**-24`` relative per leaf.
"""

from __future__ import annotations

import warnings
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import Algorithm, Forest, ModelSpec, Tree
from trainer.export import ExportOptions, make_spec, require_exact_class

SUPPORTED_CLASSES = (
    "DecisionTreeClassifier", "DecisionTreeRegressor",
    "ExtraTreeClassifier", "ExtraTreeRegressor",
    "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
)

_FAMILIES = {
    "DecisionTree": "decision_tree", "ExtraTree": "decision_tree",
    "RandomForest": "random_forest", "ExtraTrees": "extra_trees",
    "GradientBoosting": "gradient_boosted_trees",
    "HistGradientBoosting": "gradient_boosted_trees",
}

_CONSTANT_DUMMY_STRATEGIES = {
    "DummyClassifier": ("prior", "most_frequent", "uniform", "constant"),
    "DummyRegressor": ("mean", "median", "quantile", "constant"),
}


def export(model: Any, options: ExportOptions) -> ModelSpec:
    """Convert a fitted scikit-learn tree model to a ``ModelSpec`` (module docstring)."""
    import sklearn
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    class_name = require_exact_class(model, "sklearn", SUPPORTED_CLASSES)
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise UnsupportedModelError(f"{class_name} is not fitted") from error
    if class_name.startswith("HistGradientBoosting"):
        forest, task, labels = _hist_gradient_boosting(model, class_name)
    elif class_name.startswith("GradientBoosting"):
        forest, task, labels = _gradient_boosting(model, class_name)
    else:
        forest, task, labels = _tree_ensemble(model, class_name)
    family = next(f for prefix, f in sorted(_FAMILIES.items(), key=lambda kv: -len(kv[0]))
                  if class_name.startswith(prefix))
    algorithm = Algorithm(family=family, library="scikit-learn",
                          library_version=str(sklearn.__version__), estimator=class_name)
    names = getattr(model, "feature_names_in_", None)
    return make_spec(forest=forest, task=task, class_labels=labels, algorithm=algorithm,
                     model_feature_names=None if names is None else list(names),
                     missing="as_missing" if _accepts_nan(model) else "error",
                     options=options, training_params=model.get_params(deep=False))


def le_to_lt_float32(thresholds):
    """Turn ``x <= t`` (float64 ``t``, float32 ``x``) into the IR's ``x < t'`` (float32 ``t'``).

    Returns ``(t', swap)`` arrays; ``swap`` marks ``t == +inf`` nodes, whose ``t'`` is
    ``-inf`` and whose children and NaN direction the caller must swap (module docstring).
    """
    import numpy as np

    thresholds = np.asarray(thresholds, dtype=np.float64)
    if np.isnan(thresholds).any():
        raise UnsupportedModelError("a split threshold is NaN")
    with np.errstate(over="ignore"):
        floor32 = thresholds.astype(np.float32)
    above = floor32.astype(np.float64) > thresholds
    floor32[above] = np.nextafter(floor32[above], np.float32(-np.inf))
    with np.errstate(over="ignore"):  # the successor of the largest float32 is +inf
        converted = np.nextafter(floor32, np.float32(np.inf))
    swap = thresholds == np.inf
    converted[swap] = -np.inf
    return converted, swap


def tree_from_arrays(*, left, right, feature, threshold, nan_left, leaf_values) -> Tree:
    """An IR tree from scikit-learn-style node arrays (leaves: ``left == -1``).

    ``threshold`` holds the library's float64 ``<=`` thresholds, ``leaf_values`` one row of
    floats per node (read at leaves only).
    """
    import numpy as np

    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    feature = np.asarray(feature, dtype=np.int64)
    nan_left = np.asarray(nan_left, dtype=bool)
    is_leaf = left == -1
    split_thresholds, swap = le_to_lt_float32(np.where(is_leaf, 0.0, threshold))
    swap &= ~is_leaf
    new_left = np.where(is_leaf, -1, np.where(swap, right, left))
    new_right = np.where(is_leaf, -1, np.where(swap, left, right))
    new_default = np.where(is_leaf, False, nan_left ^ swap)
    leaf_values = np.asarray(leaf_values, dtype=np.float64)
    if not np.isfinite(leaf_values[is_leaf]).all():
        raise UnsupportedModelError("a leaf value is not finite")
    leaf_rows = leaf_values.tolist()
    leaf_flags = is_leaf.tolist()
    return Tree(
        feature=tuple(np.where(is_leaf, -1, feature).tolist()),
        threshold=tuple(np.where(is_leaf, 0.0, split_thresholds.astype(np.float64)).tolist()),
        left=tuple(new_left.tolist()),
        right=tuple(new_right.tolist()),
        default_left=tuple(bool(v) for v in new_default.tolist()),
        value=tuple(tuple(row) if leaf else () for row, leaf in zip(leaf_rows, leaf_flags)),
    )


def _sklearn_tree(tree_, leaf_values, *, nan_left=None) -> Tree:
    import numpy as np

    if nan_left is None:
        nan_left = getattr(tree_, "missing_go_to_left", None)
        if nan_left is None:  # scikit-learn < 1.3 has no NaN support: any direction will do
            nan_left = np.zeros(tree_.node_count, dtype=bool)
    else:
        nan_left = np.full(tree_.node_count, nan_left, dtype=bool)
    return tree_from_arrays(left=tree_.children_left, right=tree_.children_right,
                            feature=tree_.feature, threshold=tree_.threshold,
                            nan_left=nan_left, leaf_values=leaf_values)


def _classes_of(model: Any, class_name: str) -> list:
    classes = list(model.classes_)
    if len(classes) < 2:
        raise UnsupportedModelError(f"{class_name} was fitted on a single class: nothing to "
                                    f"score")
    return classes


def _tree_ensemble(model: Any, class_name: str):
    import numpy as np
    import sklearn

    if getattr(model, "n_outputs_", 1) != 1:
        raise UnsupportedModelError(f"multi-output {class_name} (n_outputs_="
                                    f"{model.n_outputs_}) is not supported")
    single = class_name in ("DecisionTreeClassifier", "DecisionTreeRegressor",
                            "ExtraTreeClassifier", "ExtraTreeRegressor")
    estimators = [model] if single else list(model.estimators_)
    n_features = int(model.n_features_in_)
    is_classifier = class_name.endswith("Classifier")
    normalise = _version_tuple(sklearn.__version__) < (1, 4)
    trees = []
    if is_classifier:
        classes = _classes_of(model, class_name)
        n_classes = len(classes)
        binary = n_classes == 2
        for estimator in estimators:
            fractions = np.asarray(estimator.tree_.value[:, 0, :n_classes], dtype=np.float64)
            if normalise:
                totals = fractions.sum(axis=1, keepdims=True)
                totals[totals == 0.0] = 1.0
                fractions = fractions / totals
            trees.append(_sklearn_tree(estimator.tree_, fractions[:, 1:2] if binary
                                       else fractions))
        n_outputs = 1 if binary else n_classes
        task, labels = ("binary" if binary else "multiclass"), classes
    else:
        for estimator in estimators:
            values = np.asarray(estimator.tree_.value[:, 0, 0:1], dtype=np.float64)
            trees.append(_sklearn_tree(estimator.tree_, values))
        n_outputs, task, labels = 1, "regression", []
    forest = Forest(n_features=n_features, n_outputs=n_outputs,
                    leaf_width=n_outputs, trees=tuple(trees),
                    tree_output=(0,) * len(trees),
                    aggregation="sum" if single else "mean",
                    base_score=(0.0,) * n_outputs, post_transform="identity")
    return forest, task, labels


def _gradient_boosting(model: Any, class_name: str):
    import numpy as np

    loss_name = type(model._loss).__name__
    is_classifier = class_name.endswith("Classifier")
    scale = 1.0
    if is_classifier:
        classes = _classes_of(model, class_name)
        if loss_name == "HalfBinomialLoss":
            task, post_transform = "binary", "logistic"
        elif loss_name == "ExponentialLoss":
            task, post_transform, scale = "binary", "logistic", 2.0
        elif loss_name == "HalfMultinomialLoss":
            task, post_transform = "multiclass", "softmax"
        else:
            raise UnsupportedModelError(f"{class_name} loss {model.loss!r} is not supported")
        labels = classes
    else:
        link = type(model._loss.link).__name__
        if link != "IdentityLink":
            raise UnsupportedModelError(f"{class_name} loss {model.loss!r} has link {link}: "
                                        f"not supported")
        task, post_transform, labels = "regression", "identity", []

    base = _gradient_boosting_base(model, class_name) * scale
    estimators = np.asarray(model.estimators_, dtype=object)
    n_stages, n_per_stage = estimators.shape
    n_outputs = n_per_stage
    if task == "multiclass" and n_outputs != len(labels):
        raise UnsupportedModelError(f"{n_outputs} trees per stage for {len(labels)} classes")
    if task != "multiclass" and n_outputs != 1:
        raise UnsupportedModelError(f"{n_outputs} trees per stage for a {task} model")
    learning_rate = float(model.learning_rate)
    trees, tree_output = [], []
    for stage in range(n_stages):
        for k in range(n_per_stage):
            tree_ = estimators[stage, k].tree_
            values = learning_rate * np.asarray(tree_.value[:, 0, 0:1], dtype=np.float64)
            trees.append(_sklearn_tree(tree_, values * scale, nan_left=False))
            tree_output.append(k)
    forest = Forest(n_features=int(model.n_features_in_), n_outputs=n_outputs, leaf_width=1,
                    trees=tuple(trees), tree_output=tuple(tree_output), aggregation="sum",
                    base_score=tuple(float(v) for v in base), post_transform=post_transform)
    return forest, task, labels


def _gradient_boosting_base(model: Any, class_name: str):
    """The init estimator's raw prediction, the same for every row (else refused)."""
    import numpy as np

    init = model.init_
    n_outputs = model.estimators_.shape[1]
    if isinstance(init, str):
        if init != "zero":
            raise UnsupportedModelError(f"{class_name} init {init!r} is not supported")
        return np.zeros(n_outputs)
    init_class = type(init)
    strategies = _CONSTANT_DUMMY_STRATEGIES.get(init_class.__name__)
    if not init_class.__module__.startswith("sklearn.") or strategies is None \
            or getattr(init, "strategy", None) not in strategies:
        raise UnsupportedModelError(
            f"{class_name} init estimator {init_class.__name__}"
            f"{'(strategy=' + repr(init.strategy) + ')' if hasattr(init, 'strategy') else ''}"
            f" cannot be exported: only 'zero' or a constant DummyClassifier/DummyRegressor")
    probe = np.zeros((2, int(model.n_features_in_)), dtype=np.float32)
    with warnings.catch_warnings():  # a model fitted on a DataFrame warns about the array
        warnings.simplefilter("ignore", UserWarning)
        raw = np.asarray(model._raw_predict_init(probe), dtype=np.float64)
    if raw.shape != (2, n_outputs) or not np.array_equal(raw[0], raw[1]) \
            or not np.isfinite(raw).all():
        raise UnsupportedModelError(f"{class_name} init prediction is not a finite constant")
    return raw[0]


def _hist_gradient_boosting(model: Any, class_name: str):
    import numpy as np

    categorical = getattr(model, "is_categorical_", None)
    if getattr(model, "_preprocessor", None) is not None or (
            categorical is not None and np.any(categorical)):
        names = getattr(model, "feature_names_in_", None)
        flagged = [] if categorical is None else np.flatnonzero(categorical).tolist()
        described = [str(names[i]) if names is not None else f"x{i}" for i in flagged]
        raise UnsupportedModelError(f"{class_name} has categorical features {described}: not "
                                    f"supported")
    link = type(model._loss.link).__name__
    n_per_iteration = int(model.n_trees_per_iteration_)
    if class_name.endswith("Classifier"):
        labels = _classes_of(model, class_name)
        if n_per_iteration == 1 and link == "LogitLink":
            task, post_transform = "binary", "logistic"
        elif n_per_iteration > 1 and link == "MultinomialLogit":
            task, post_transform = "multiclass", "softmax"
        else:
            raise UnsupportedModelError(f"{class_name} with link {link} is not supported")
    else:
        if link != "IdentityLink":
            raise UnsupportedModelError(f"{class_name} loss {model.loss!r} has link {link}: "
                                        f"not supported")
        task, post_transform, labels = "regression", "identity", []
    base = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    if base.shape != (n_per_iteration,):
        raise UnsupportedModelError(f"{class_name} baseline has shape {base.shape}")
    trees, tree_output = [], []
    for predictors in model._predictors:
        if len(predictors) != n_per_iteration:
            raise UnsupportedModelError(f"{class_name}: {len(predictors)} predictors in an "
                                        f"iteration, expected {n_per_iteration}")
        for k, predictor in enumerate(predictors):
            nodes = predictor.nodes
            is_leaf = nodes["is_leaf"].astype(bool)
            if np.any(nodes["is_categorical"][~is_leaf]):
                raise UnsupportedModelError(f"{class_name} has a categorical split: not "
                                            f"supported")
            trees.append(tree_from_arrays(
                left=np.where(is_leaf, -1, nodes["left"].astype(np.int64)),
                right=np.where(is_leaf, -1, nodes["right"].astype(np.int64)),
                feature=nodes["feature_idx"], threshold=nodes["num_threshold"],
                nan_left=nodes["missing_go_to_left"].astype(bool),
                leaf_values=nodes["value"].astype(np.float64).reshape(-1, 1)))
            tree_output.append(k)
    if not trees:
        raise UnsupportedModelError(f"{class_name} has no trees")
    forest = Forest(n_features=int(model.n_features_in_), n_outputs=n_per_iteration,
                    leaf_width=1, trees=tuple(trees), tree_output=tuple(tree_output),
                    aggregation="sum", base_score=tuple(base.tolist()),
                    post_transform=post_transform)
    return forest, task, labels


def _accepts_nan(model: Any) -> bool:
    try:
        from sklearn.utils import get_tags
    except ImportError:  # scikit-learn < 1.6
        return bool(model._get_tags().get("allow_nan", False))
    return bool(get_tags(model).input_tags.allow_nan)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
