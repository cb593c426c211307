"""Ingest an XGBoost tree model into the pyastore tree IR.

Source of truth: the model's own JSON document, ``booster.save_raw(raw_format="json")``
(schema: xgboost ``doc/model.schema``). What is read, and how it maps to ``pyastore.ir``:

* ``learner.objective.name`` picks the task and the post-transform. Supported:
  ``binary:logistic`` (binary, logistic), ``binary:logitraw`` (binary, identity: the output is
  the margin), ``reg:logistic`` (regression, logistic), ``reg:squarederror``,
  ``reg:absoluteerror``, ``reg:pseudohubererror`` (regression, identity), ``multi:softprob``
  and ``multi:softmax`` (multiclass, softmax: both export class probabilities). Objectives with
  another link (``count:poisson``, ``reg:gamma``, ``reg:tweedie``: exp), ranking, survival and
  multi-target models are refused.
* ``learner.gradient_booster.name``: ``gbtree``, or ``dart`` whose per-tree ``weight_drop`` is
  folded into the leaves (xgboost multiplies each float32 leaf by its float32 weight; the
  product is rounded to float32 exactly as xgboost rounds it). ``gblinear`` is refused.
* trees: ``split_indices`` -> ``feature``, ``split_conditions`` -> ``threshold`` (float32;
  xgboost's rule is already ``x < threshold`` -> left, NaN -> ``default_left``),
  ``left_children``/``right_children`` -> children, a node with ``left_children == -1`` is a
  leaf whose value is its ``split_conditions`` entry (already scaled by the learning rate, and
  by ``1/num_parallel_tree`` for boosted random forests). Nodes unreachable from the root
  (pruned, ``num_deleted``) are dropped and the rest renumbered in ascending id order, so node
  ids equal xgboost's (``pred_leaf``) whenever nothing was deleted. Vector-leaf trees
  (``multi_strategy="multi_output_tree"``) are refused.
* categorical splits (``split_type == 1``): node ``categories_nodes[k]`` holds the codes
  ``categories[categories_segments[k]:][:categories_sizes[k]]``, which xgboost sends
  **right**; every other value (a code not listed, a negative, ``+-inf``, ``2**24`` and above)
  goes left, NaN to ``default_left``. The IR sends its set left, so the node becomes an IR
  categorical split with those codes, its children swapped and its default side flipped:
  exact on integer codes, NaN, negatives and ``+-inf``. xgboost truncates a fraction to a
  code (``2.5`` is code 2), the IR sends it to the not-listed side: categorical inputs are
  given codes.
* categorical features: a model fitted on pandas ``category`` columns records their
  categories (``Booster.get_categories``, xgboost >= 3.1, where a category's code is its
  position); each such column becomes a categorical input with that vocabulary (integers
  become their decimal text), so the device maps a text to xgboost's code, unless the caller
  gives ``categorical=``. xgboost refuses a category it did not see in training; the
  container scores it as missing.
* ``tree_info`` -> ``tree_output`` (the class a tree votes for); ``iteration_indptr`` gives
  the trees of each boosting round, used to honour ``iteration_range`` and early stopping's
  ``best_iteration`` (``learner.attributes``): by default the export keeps rounds
  ``[0, best_iteration + 1)`` when it is set, like the scikit-learn wrapper's ``predict``
  (note: a raw ``Booster.predict`` uses every round unless given ``iteration_range``).
* ``learner_model_param.base_score``: a scalar (xgboost < 3) or one value per output
  (``"[v0,v1,...]"``, xgboost >= 3). It is stored in the objective's prediction space, so it
  becomes a margin through the objective's inverse link, in float32 as xgboost computes it:
  ``logit`` for the logistic objectives (``-log(1/p - 1)``; xgboost uses the platform's
  ``logf``, the export a correctly rounded logarithm, so the two may differ by one float32
  ulp), identity for the others (including the multiclass objectives, whose xgboost >= 3 base
  scores are already margins). The result is the ``Forest.base_score``.

xgboost sums tree outputs in float32 whereas the IR accumulates in float64: the two differ by
float32 rounding only (about ``n_trees * 2**-24`` relative to the largest partial sum).

Guard: after conversion the exporter scores a few probe rows (all NaN, zeros, threshold
values, and for categorical splits every listed code and the values around them:
``trainer.export.categorical_splits``) with both the IR and
``booster.predict(output_margin=True)`` and refuses the model if they disagree beyond float32
rounding, so an xgboost version that changed a convention (e.g.
the base-score space) cannot slip through silently.

A scikit-learn wrapper whose ``missing`` is not NaN is refused (the IR treats only NaN as
missing). A raw ``Booster`` does not record the ``missing`` value its DMatrix used: callers
must feed NaN for missing values.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import MAX_CATEGORY_CODE, Algorithm, Forest, ModelSpec, Tree
from trainer.export import (
    ExportOptions,
    float32,
    make_spec,
    require_exact_class,
    with_categorical_inputs,
)
from trainer.export.categorical_splits import categorical_probe_rows, recorded_vocabulary
from trainer.export.tree_assembly import forest_raw_scores

_NUMERIC_SPLIT, _CATEGORICAL_SPLIT = 0, 1  # a tree's ``split_type`` values

SUPPORTED_CLASSES = ("Booster", "XGBClassifier", "XGBRegressor", "XGBRFClassifier",
                     "XGBRFRegressor")

# objective -> (task, post_transform, how base_score becomes a margin)
OBJECTIVES = {
    "binary:logistic": ("binary", "logistic", "logit"),
    "binary:logitraw": ("binary", "identity", "identity"),
    "reg:logistic": ("regression", "logistic", "logit"),
    "reg:squarederror": ("regression", "identity", "identity"),
    "reg:absoluteerror": ("regression", "identity", "identity"),
    "reg:pseudohubererror": ("regression", "identity", "identity"),
    "multi:softprob": ("multiclass", "softmax", "identity"),
    "multi:softmax": ("multiclass", "softmax", "identity"),
}


def export(model: Any, options: ExportOptions, *,
           iteration_range: tuple[int, int] | None = None) -> ModelSpec:
    """Convert a fitted xgboost model to a ``ModelSpec`` (see the module docstring)."""
    import xgboost

    class_name = require_exact_class(model, "xgboost", SUPPORTED_CLASSES)
    booster, wrapper = _booster_of(model, class_name)
    document = json.loads(bytes(booster.save_raw(raw_format="json")))
    learner = document["learner"]
    objective = learner["objective"]["name"]
    if objective not in OBJECTIVES:
        raise UnsupportedModelError(
            f"xgboost objective {objective!r} is not supported (supported: "
            f"{', '.join(OBJECTIVES)})")
    task, post_transform, base_link = OBJECTIVES[objective]

    model_param = learner["learner_model_param"]
    n_features = int(model_param["num_feature"])
    num_class = int(model_param.get("num_class", "0"))
    num_target = int(model_param.get("num_target", "1"))
    if num_target > 1:
        raise UnsupportedModelError(f"multi-target xgboost models (num_target={num_target}) "
                                    f"are not supported")
    n_outputs = num_class if task == "multiclass" else 1
    if task == "multiclass" and num_class < 2:
        raise UnsupportedModelError(f"objective {objective!r} with num_class={num_class}")
    if task != "multiclass" and num_class > 1:
        raise UnsupportedModelError(f"objective {objective!r} with num_class={num_class}")

    feature_names = list(learner.get("feature_names") or booster.feature_names or [])

    trees_json, weights, tree_info = _selected_trees(learner, iteration_range)
    trees = tuple(_convert_tree(tree, n_features, feature_names, weight)
                  for tree, weight in zip(trees_json, weights))
    for output in tree_info:
        if not 0 <= output < n_outputs:
            raise UnsupportedModelError(f"tree_info {output} out of range for {n_outputs} "
                                        f"outputs")
    forest = Forest(
        n_features=n_features,
        n_outputs=n_outputs,
        leaf_width=1,
        trees=trees,
        tree_output=tuple(tree_info),
        aggregation="sum",
        base_score=_base_margin(model_param["base_score"], n_outputs, base_link),
        post_transform=post_transform,
    )
    _check_against_booster(xgboost, booster, forest, _round_range(learner, iteration_range))

    if task == "regression":
        labels: tuple = ()
    elif wrapper is not None and hasattr(wrapper, "classes_"):
        labels = tuple(wrapper.classes_)
    else:
        labels = tuple(range(2 if task == "binary" else num_class))
    if task != "regression" and len(labels) != (2 if task == "binary" else num_class):
        raise UnsupportedModelError(f"{len(labels)} class labels for objective {objective!r}")

    family = "random_forest" if class_name.startswith("XGBRF") else "gradient_boosted_trees"
    algorithm = Algorithm(family=family, library="xgboost",
                          library_version=str(xgboost.__version__), estimator=class_name)
    params = wrapper.get_params() if wrapper is not None else _booster_params(booster)
    spec = make_spec(forest=forest, task=task, class_labels=labels, algorithm=algorithm,
                     model_feature_names=feature_names or None, missing="as_missing",
                     options=options, training_params=params,
                     margin_output=(objective == "binary:logitraw"))
    return with_categorical_inputs(spec, {
        spec.inputs[feature].name: vocabulary
        for feature, vocabulary in _recorded_vocabularies(booster, feature_names).items()})


def _recorded_vocabularies(booster, feature_names: list) -> dict[int, Any]:
    """Feature index -> the vocabulary of each pandas ``category`` column the booster was
    fitted on (``Booster.get_categories``, xgboost >= 3.1; module docstring). Empty for a
    model fitted on codes, or an xgboost that records no categories."""
    if not hasattr(booster, "get_categories") or booster.get_categories().empty():
        return {}
    recorded = booster.get_categories(export_to_arrow=True).to_arrow() or []
    found = {}
    for feature, (name, categories) in enumerate(recorded):
        if categories is not None:
            found[feature] = recorded_vocabulary(f"feature {name!r}", categories.to_pylist())
    return found


def _booster_of(model: Any, class_name: str):
    if class_name == "Booster":
        return model, None
    try:
        booster = model.get_booster()
    except Exception as error:  # xgboost raises sklearn's NotFittedError or its own
        raise UnsupportedModelError(f"{class_name} is not fitted: {error}") from error
    missing = getattr(model, "missing", math.nan)
    try:
        missing_is_nan = missing is None or math.isnan(float(missing))
    except (TypeError, ValueError):
        missing_is_nan = False
    if not missing_is_nan:
        raise UnsupportedModelError(
            f"{class_name} has missing={missing!r}: only NaN can mean 'missing' in a container")
    return booster, model


def _round_range(learner: dict, iteration_range) -> tuple[int, int]:
    """The boosting rounds ``[begin, end)`` to export (see the module docstring)."""
    n_rounds = len(_iteration_indptr(learner)) - 1
    if iteration_range is None:
        best = (learner.get("attributes") or {}).get("best_iteration")
        if best is not None:
            return 0, min(int(best) + 1, n_rounds)
        return 0, n_rounds
    try:
        begin, end = (int(v) for v in iteration_range)
    except (TypeError, ValueError) as error:
        raise UsageError(f"iteration_range must be (begin, end), got {iteration_range!r}"
                         ) from error
    if end == 0:
        end = n_rounds
    if not 0 <= begin < end <= n_rounds:
        raise UsageError(f"iteration_range {iteration_range!r} is outside the model's "
                         f"{n_rounds} rounds")
    return begin, end


def _gbtree_model(learner: dict) -> tuple[dict, list | None]:
    booster = learner["gradient_booster"]
    name = booster.get("name")
    if name == "gbtree":
        return booster["model"], None
    if name == "dart":
        return booster["gbtree"]["model"], list(booster["weight_drop"])
    if name == "gblinear":
        raise UnsupportedModelError("booster 'gblinear' is a linear model, not a tree ensemble: "
                                    "not supported")
    raise UnsupportedModelError(f"xgboost booster {name!r} is not supported")


def _iteration_indptr(learner: dict) -> list[int]:
    model, _ = _gbtree_model(learner)
    indptr = model.get("iteration_indptr")
    n_trees = len(model["trees"])
    if indptr is None:  # models saved before xgboost 2 have one fixed layout per round
        param = learner["learner_model_param"]
        per_round = max(1, int(param.get("num_class", "0"))) * int(
            model["gbtree_model_param"].get("num_parallel_tree", "1"))
        if n_trees % per_round:
            raise UnsupportedModelError(f"{n_trees} trees do not split into rounds of "
                                        f"{per_round}")
        indptr = list(range(0, n_trees + 1, per_round))
    indptr = [int(v) for v in indptr]
    if indptr[0] != 0 or indptr[-1] != n_trees or sorted(indptr) != indptr:
        raise UnsupportedModelError("inconsistent iteration_indptr in the xgboost model")
    return indptr


def _selected_trees(learner: dict, iteration_range):
    model, weights = _gbtree_model(learner)
    trees = model["trees"]
    tree_info = [int(v) for v in model["tree_info"]]
    if len(tree_info) != len(trees) or (weights is not None and len(weights) != len(trees)):
        raise UnsupportedModelError("tree_info / weight_drop do not match the number of trees")
    indptr = _iteration_indptr(learner)
    begin, end = _round_range(learner, iteration_range)
    if indptr[end] == indptr[begin]:
        raise UnsupportedModelError("the xgboost model has no trees in the exported rounds")
    selected = range(indptr[begin], indptr[end])
    chosen_weights = [1.0 if weights is None else float32(float(weights[t])) for t in selected]
    return [trees[t] for t in selected], chosen_weights, [tree_info[t] for t in selected]


def _convert_tree(tree: dict, n_features: int, feature_names: list, weight: float) -> Tree:
    param = tree.get("tree_param", {})
    if int(param.get("size_leaf_vector", "1") or 1) > 1 or "leaf_weights" in tree:
        raise UnsupportedModelError(
            "vector-leaf trees (multi_strategy='multi_output_tree') are not supported")
    left = [int(v) for v in tree["left_children"]]
    right = [int(v) for v in tree["right_children"]]
    split_index = [int(v) for v in tree["split_indices"]]
    condition = [float(v) for v in tree["split_conditions"]]
    default_left = [bool(v) for v in tree["default_left"]]
    split_type = [int(v) for v in tree.get("split_type") or [0] * len(left)]
    n_nodes = len(left)
    if not n_nodes or any(len(a) != n_nodes for a in
                          (right, split_index, condition, default_left, split_type)):
        raise UnsupportedModelError(f"malformed xgboost tree {tree.get('id')}")
    node_codes = _node_categories(tree, split_type, left)

    order = _reachable(left, right, tree.get("id"))
    new_id = {old: new for new, old in enumerate(order)}
    features, thresholds, lefts, rights, defaults, values = [], [], [], [], [], []
    categories: list[tuple[int, ...]] = []
    for old in order:
        categories.append(())
        if left[old] == -1:
            leaf = float32(condition[old])
            if weight != 1.0:
                leaf = float32(float32(weight) * leaf)
            if not math.isfinite(leaf):
                raise UnsupportedModelError(f"tree {tree.get('id')} node {old}: leaf value "
                                            f"{leaf} is not finite")
            features.append(-1)
            thresholds.append(0.0)
            lefts.append(-1)
            rights.append(-1)
            defaults.append(False)
            values.append((leaf,))
            continue
        feature = split_index[old]
        if not 0 <= feature < n_features:
            raise UnsupportedModelError(f"tree {tree.get('id')} splits on feature {feature}, "
                                        f"the model has {n_features}")
        features.append(feature)
        values.append(())
        if split_type[old] == _CATEGORICAL_SPLIT:
            # xgboost sends the node's set right, the IR sends it left: swap the children
            thresholds.append(0.0)
            lefts.append(new_id[right[old]])
            rights.append(new_id[left[old]])
            defaults.append(not default_left[old])
            categories[-1] = node_codes[old]
            continue
        if split_type[old] != _NUMERIC_SPLIT:
            name = feature_names[feature] if feature < len(feature_names) else f"x{feature}"
            raise UnsupportedModelError(f"tree {tree.get('id')} node {old}: split type "
                                        f"{split_type[old]} on feature {name!r} is unknown")
        threshold = float32(condition[old])
        if math.isnan(threshold):
            threshold = -math.inf  # x < NaN is never true: neither is x < -inf
        thresholds.append(threshold)
        lefts.append(new_id[left[old]])
        rights.append(new_id[right[old]])
        defaults.append(default_left[old])
    return Tree(feature=tuple(features), threshold=tuple(thresholds), left=tuple(lefts),
                right=tuple(rights), default_left=tuple(defaults), value=tuple(values),
                categories=tuple(categories) if any(categories) else ())


def _node_categories(tree: dict, split_type: list[int], left: list[int]
                     ) -> dict[int, tuple[int, ...]]:
    """Node id -> the sorted codes of each categorical split (the set xgboost sends right):
    ``categories[categories_segments[k]:][:categories_sizes[k]]`` for node
    ``categories_nodes[k]``."""
    where = f"xgboost tree {tree.get('id')}"
    codes = [int(v) for v in tree.get("categories") or []]
    nodes = [int(v) for v in tree.get("categories_nodes") or []]
    segments = [int(v) for v in tree.get("categories_segments") or []]
    sizes = [int(v) for v in tree.get("categories_sizes") or []]
    if not len(nodes) == len(segments) == len(sizes):
        raise UnsupportedModelError(f"{where}: categories_nodes, categories_segments and "
                                    f"categories_sizes differ in length")
    found: dict[int, tuple[int, ...]] = {}
    for node, start, size in zip(nodes, segments, sizes):
        if not 0 <= node < len(split_type) or split_type[node] != _CATEGORICAL_SPLIT \
                or left[node] == -1 or node in found:
            raise UnsupportedModelError(f"{where}: categories for node {node}, which is not "
                                        f"a categorical split (or is listed twice)")
        if size < 1 or start < 0 or start + size > len(codes):
            raise UnsupportedModelError(f"{where} node {node}: category segment [{start}, "
                                        f"{start + size}) is empty or outside the "
                                        f"{len(codes)} stored codes")
        node_set = tuple(sorted(set(codes[start:start + size])))
        if len(node_set) != size or node_set[0] < 0 or node_set[-1] >= MAX_CATEGORY_CODE:
            raise UnsupportedModelError(f"{where} node {node}: category codes "
                                        f"{node_set[:8]}... are not distinct codes in "
                                        f"[0, 2**24)")
        found[node] = node_set
    for node, kind in enumerate(split_type):
        if kind == _CATEGORICAL_SPLIT and left[node] != -1 and node not in found:
            raise UnsupportedModelError(f"{where}: categorical split node {node} has no "
                                        f"categories")
    return found


def _reachable(left: list[int], right: list[int], tree_id) -> list[int]:
    """Node ids reachable from the root, ascending; refuses cycles and shared children."""
    n_nodes = len(left)
    seen = [False] * n_nodes
    stack = [0]
    while stack:
        node = stack.pop()
        if not 0 <= node < n_nodes or seen[node]:
            raise UnsupportedModelError(f"malformed xgboost tree {tree_id}: node {node} out of "
                                        f"range or reached twice")
        seen[node] = True
        if left[node] != -1:
            stack.append(left[node])
            stack.append(right[node])
    return [i for i in range(n_nodes) if seen[i]]


def _base_margin(text: str, n_outputs: int, link: str) -> tuple[float, ...]:
    import numpy as np

    values = [float(v) for v in str(text).strip().strip("[]").split(",") if v.strip()]
    if len(values) == 1 and n_outputs > 1:
        values = values * n_outputs
    if len(values) != n_outputs:
        raise UnsupportedModelError(f"base_score {text!r} has {len(values)} values for "
                                    f"{n_outputs} outputs")
    margins = []
    for value in values:
        value32 = np.float32(value)
        if link == "logit":
            if not 0.0 < value32 < 1.0:
                raise UnsupportedModelError(f"base_score {value} is not a probability")
            one = np.float32(1.0)
            # xgboost: -logf(1.0f / p - 1.0f). The platform's logf is not correctly rounded;
            # a correctly rounded log keeps the export platform-independent, within one
            # float32 ulp of xgboost's margin.
            value32 = np.float32(-math.log(float(np.float32(one / value32 - one))))
        if not np.isfinite(value32):
            raise UnsupportedModelError(f"base_score {text!r} is not finite")
        margins.append(float(value32))
    return tuple(margins)


def _probe_rows(forest: Forest):
    import numpy as np

    n = forest.n_features
    rows = [np.full(n, np.nan), np.zeros(n), np.ones(n), -np.ones(n)]
    for tree in forest.trees[:8]:
        if tree.feature[0] >= 0:
            row = np.zeros(n)
            row[tree.feature[0]] = tree.threshold[0]
            rows.append(row)
    rows += [np.asarray(row) for row in categorical_probe_rows(forest, np.zeros(n))]
    return np.asarray(rows, dtype=np.float32)


def _check_against_booster(xgboost, booster, forest: Forest, rounds: tuple[int, int]) -> None:
    import numpy as np

    rows = _probe_rows(forest)
    matrix = xgboost.DMatrix(rows, missing=np.nan, feature_names=booster.feature_names,
                             feature_types=booster.feature_types, enable_categorical=True)
    expected = np.asarray(booster.predict(matrix, output_margin=True, iteration_range=rounds),
                          dtype=np.float64).reshape(len(rows), forest.n_outputs)
    tolerance_per_unit = (len(forest.trees) + 2) * 2.0 ** -23
    for r, row in enumerate(rows):
        raw, magnitude = forest_raw_scores(forest, row)
        scale = sum(magnitude)
        for k in range(forest.n_outputs):
            if abs(raw[k] - expected[r, k]) > tolerance_per_unit * (1.0 + scale):
                raise UnsupportedModelError(
                    f"the exported trees do not reproduce xgboost {xgboost.__version__}'s own "
                    f"margin on a probe row (output {k}: IR {raw[k]!r}, xgboost "
                    f"{float(expected[r, k])!r}): refusing to export")


def _booster_params(booster) -> dict[str, Any]:
    """Hyper-parameters of a raw Booster, from its configuration (values are strings)."""
    config = json.loads(booster.save_config())["learner"]
    params: dict[str, Any] = {}
    params.update(config.get("learner_train_param", {}))
    params.update({k: v for k, v in config.get("learner_model_param", {}).items()})
    gradient_booster = config.get("gradient_booster", {})
    tree_part = gradient_booster.get("gbtree", gradient_booster)
    params.update(tree_part.get("gbtree_model_param", {}))
    params.update(tree_part.get("gbtree_train_param", {}))
    params.update(tree_part.get("tree_train_param", {}))
    params.update(gradient_booster.get("dart_train_param", {}))
    for value in config.get("objective", {}).values():
        if isinstance(value, dict):
            params.update(value)
    params["num_boosted_rounds"] = booster.num_boosted_rounds()
    return params
