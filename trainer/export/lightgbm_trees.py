"""Ingest a LightGBM model into the pyastore tree IR.

Supported: ``lightgbm.Booster``, ``LGBMClassifier`` and ``LGBMRegressor`` (exact classes),
boosting types ``gbdt``, ``dart``, ``goss`` and ``rf``, numeric and categorical features.
Source of truth: ``booster.dump_model()`` (by default the trees up to ``best_iteration`` when
early stopping recorded one, as ``predict`` does).

Objectives (the dump's ``objective`` string) and what they become:

* ``binary`` -> binary, logistic of ``sigmoid * raw``; ``multiclass`` -> multiclass, softmax;
  ``multiclassova`` -> multiclass, logistic of ``sigmoid * raw`` per class (LightGBM's own
  one-vs-all probabilities, which need not sum to 1). A ``sigmoid`` other than 1 is folded into
  the leaves (each leaf times ``sigmoid``, before the float32 rounding below).
* ``cross_entropy`` -> logistic: a binary classifier for ``LGBMClassifier``, else a
  regression whose value is the probability.
* ``regression`` (L2), ``regression_l1``, ``huber``, ``fair``, ``quantile``, ``mape`` ->
  regression, identity.
* Refused: objectives with another link (``poisson``, ``gamma``, ``tweedie``: exp;
  ``cross_entropy_lambda``: log1p-exp; ``reg_sqrt``: a signed square), ranking
  (``lambdarank``, ``rank_xendcg``) and custom objectives (the link is unknown).

LightGBM stores no separate base score: the initial score (``boost_from_average``) is folded
into the first iteration's trees, and an ``init_score`` given at fit time is not part of the
model at all (``predict`` ignores it too). ``average_output`` models (``rf``) divide each
output's sum by the number of iterations before the link (``predict(raw_score=True)`` is the
undivided sum): the factor is folded into the leaves.

Split rule. LightGBM scores ``double`` values; a float32 input is widened exactly. Before the
trees, its predictor turns every value with ``|x| <= kZeroThreshold`` (``1e-35f``) into 0.0.
Then a numeric node (``decision_type "<="``) with ``missing_type``:

* ``None``: NaN becomes 0.0; left when ``x <= threshold``;
* ``Zero``: NaN becomes 0.0; 0.0 goes to the ``default_left`` side, others ``x <= threshold``;
* ``NaN``: NaN goes to the ``default_left`` side, others ``x <= threshold``.

For float32 ``x``, ``x <= threshold`` (float64) is ``x < next_float32_above(floor32(
threshold))`` (as in ``trainer.export.sklearn_trees``). With the zero band
``[-1e-35f, 1e-35f]`` taking one side as a whole, a ``None`` or ``NaN`` node is still one
half-line, so one IR node with a possibly moved threshold (a threshold inside the band moves
to its edge). A ``Zero`` node whose default side disagrees with the comparison for the band
(``threshold >= 1e-35f`` and default right, or ``threshold < -1e-35f`` and default left)
sends four alternating intervals to its two children: it becomes up to three IR nodes and its
subtrees are copied, each copy pruned to the values that reach it
(``trainer.export.tree_assembly``). NaN follows 0.0 for ``None``/``Zero`` nodes and
``default_left`` for ``NaN`` nodes. The conversion is exact for every float32 input, ``+-inf``
included.

A categorical node (``decision_type "=="``) lists in ``threshold`` the codes that go left
(``"1||5||30"``); LightGBM truncates the value to an ``int`` and sends a negative one, NaN
(x86-64 builds: the NaN-to-int conversion gives a negative number, whatever the node's
``missing_type``) and every code not listed right. That is an IR categorical split with those
codes and NaN going right (``pyastore.ir.category_in_set``), exact on what a categorical input
is given: integer codes, NaN, negatives and ``+-inf``. On a fraction LightGBM uses its integer
part (``2.5`` is code 2) and the IR sends it right: feed codes, as pyastore's categorical
inputs do.

Leaves. LightGBM's leaves are float64 and it sums them in float64, in tree order. The
container stores float32 leaves (summed in float64, in tree order): each tree's leaves are
first centred on the tree's midpoint ``(min + max) / 2``, which goes into the base score in
float64, then rounded to float32, so the difference from LightGBM is at most ``2**-24`` times
half of each tree's leaf range, summed over the trees a row visits (the differential tests
measure it). Node ``labels`` keep LightGBM's ``leaf_index`` for every IR leaf (several IR
leaves share one after a ``Zero`` rewrite), which the tests compare with ``pred_leaf``.

Refused, each with ``UnsupportedModelError`` naming it: linear trees (``linear_tree``), other
objectives as above, a decision type other than ``"<="`` and ``"=="``.

A model fitted on pandas ``category`` columns records their categories
(``pandas_categorical``); LightGBM's ``predict`` maps a DataFrame's categories to those codes.
The export makes each such column a categorical input whose vocabulary is that list (the
device then maps a text to the same code), unless the caller gives ``categorical=``; a list
that is not all distinct non-empty texts is refused.

Inputs are named after the model's feature names; LightGBM's automatic names for unnamed
columns (``Column_0``, ``Column_1``, ...) become ``x0``, ``x1``, ... like every unnamed model.
LightGBM itself replaces spaces in feature names by ``_`` (the model knows no other name):
``feature_names=`` restores the caller's.
Every input is ``missing="as_missing"``: LightGBM scores NaN.

Guard: after conversion the exporter scores probe rows (NaN, zeros, ``+-1e-35``, signs,
threshold values, and for categorical splits every listed code and the values around them:
``trainer.export.categorical_splits``) with the IR and with
``booster.predict(raw_score=True)`` and refuses the model if they disagree beyond the float32
rounding of the leaves.
"""

from __future__ import annotations

import math
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import MAX_CATEGORY_CODE, Algorithm, Forest, ModelSpec
from trainer.export import (
    ExportOptions,
    float32,
    make_spec,
    require_exact_class,
    with_categorical_inputs,
)
from trainer.export.categorical_splits import categorical_probe_rows, recorded_vocabulary
from trainer.export.tree_assembly import (
    KEY_END,
    KEY_MIN,
    TreeAssembler,
    forest_raw_scores,
    key_value,
    le_cut,
    order_key,
)

SUPPORTED_CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor")

ZERO_THRESHOLD = float32(1e-35)  # LightGBM's kZeroThreshold, the float 1e-35f
_ZERO_LO = order_key(-ZERO_THRESHOLD)
_ZERO_HI = order_key(ZERO_THRESHOLD) + 1

_REGRESSION_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
_SUPPORTED_OBJECTIVES = ("binary", "multiclass", "multiclassova", "cross_entropy",
                         *_REGRESSION_OBJECTIVES)
_REFUSED_OBJECTIVES = {
    "poisson": "its link is exp",
    "gamma": "its link is exp",
    "tweedie": "its link is exp",
    "cross_entropy_lambda": "its link is log(1 + exp)",
    "lambdarank": "it is a ranking objective",
    "rank_xendcg": "it is a ranking objective",
}


def export(model: Any, options: ExportOptions) -> ModelSpec:
    """Convert a fitted LightGBM model to a ``ModelSpec`` (see the module docstring)."""
    return export_traced(model, options)[0]


def export_traced(model: Any, options: ExportOptions
                  ) -> tuple[ModelSpec, tuple[tuple[int, ...], ...]]:
    """``export``, and per exported tree the LightGBM ``leaf_index`` of every IR node (-1 at
    split nodes): the differential tests compare it with ``pred_leaf``."""
    import lightgbm

    class_name = require_exact_class(model, "lightgbm", SUPPORTED_CLASSES)
    booster, wrapper = _booster_of(model, class_name)
    dump = booster.dump_model()
    n_features = int(dump["max_feature_idx"]) + 1
    feature_names = [str(n) for n in dump.get("feature_names") or []]
    vocabularies = _recorded_vocabularies(dump, feature_names)
    is_classifier = class_name == "LGBMClassifier"
    task, post_transform, sigmoid = _objective(dump.get("objective"), is_classifier)

    num_class = int(dump.get("num_class", 1))
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    n_outputs = num_class if task == "multiclass" else 1
    if per_iteration != n_outputs or (task != "multiclass" and num_class != 1):
        raise UnsupportedModelError(f"LightGBM objective {dump.get('objective')!r} with "
                                    f"num_class={num_class} and {per_iteration} trees per "
                                    f"iteration is not supported")
    tree_info = dump.get("tree_info") or []
    if not tree_info or len(tree_info) % per_iteration:
        raise UnsupportedModelError(f"the LightGBM model has {len(tree_info)} trees, not a "
                                    f"positive multiple of {per_iteration} per iteration")
    scale = sigmoid
    if dump.get("average_output"):
        scale = scale / (len(tree_info) // per_iteration)

    trees, labels, tree_output = [], [], []
    base = [0.0] * n_outputs
    for index, info in enumerate(tree_info):
        tree, tree_labels, offset = _convert_tree(info, index, n_features, feature_names,
                                                  scale)
        output = index % per_iteration
        base[output] += offset[0]
        trees.append(tree)
        labels.append(tree_labels)
        tree_output.append(output)
    forest = Forest(n_features=n_features, n_outputs=n_outputs, leaf_width=1,
                    trees=tuple(trees), tree_output=tuple(tree_output), aggregation="sum",
                    base_score=tuple(base), post_transform=post_transform)
    _check_against_booster(booster, forest, scale)

    if task == "regression":
        class_labels: tuple = ()
    elif wrapper is not None and hasattr(wrapper, "classes_"):
        class_labels = tuple(wrapper.classes_)
    else:
        class_labels = tuple(range(2 if task == "binary" else num_class))
    algorithm = Algorithm(family="random_forest" if dump.get("average_output")
                          else "gradient_boosted_trees", library="lightgbm",
                          library_version=str(lightgbm.__version__), estimator=class_name)
    params = wrapper.get_params() if wrapper is not None else dict(booster.params or {})
    spec = make_spec(forest=forest, task=task, class_labels=class_labels, algorithm=algorithm,
                     model_feature_names=_model_names(feature_names, n_features),
                     missing="as_missing", options=options, training_params=params)
    spec = with_categorical_inputs(spec, {spec.inputs[feature].name: vocabulary
                                          for feature, vocabulary in vocabularies.items()})
    return spec, tuple(labels)


def _booster_of(model: Any, class_name: str):
    if class_name == "Booster":
        return model, None
    try:
        booster = model.booster_
    except Exception as error:  # LGBMNotFittedError, a scikit-learn NotFittedError
        raise UnsupportedModelError(f"{class_name} is not fitted: {error}") from error
    return booster, model


def _objective(objective: str | None, is_classifier: bool) -> tuple[str, str, float]:
    """(task, post_transform, sigmoid factor) of a LightGBM objective string."""
    if not objective or objective.split()[0] in ("custom", "none"):
        raise UnsupportedModelError(
            f"LightGBM objective {objective!r}: a custom objective's link is unknown, so its "
            f"scores cannot be exported")
    name, *tokens = objective.split()
    parameters = dict(token.split(":", 1) for token in tokens if ":" in token)
    flags = [token for token in tokens if ":" not in token]
    if name in _REFUSED_OBJECTIVES:
        raise UnsupportedModelError(f"LightGBM objective {name!r} is not supported: "
                                    f"{_REFUSED_OBJECTIVES[name]}")
    if name not in _SUPPORTED_OBJECTIVES:
        raise UnsupportedModelError(f"LightGBM objective {name!r} is not supported "
                                    f"(supported: {', '.join(_SUPPORTED_OBJECTIVES)})")
    if "sqrt" in flags:
        raise UnsupportedModelError(f"LightGBM objective {objective!r} (reg_sqrt) is not "
                                    f"supported: its predictions are squared scores")
    try:
        sigmoid = float(parameters.get("sigmoid", "1"))
    except ValueError as error:
        raise UnsupportedModelError(f"LightGBM objective {objective!r}: bad sigmoid") from error
    if not (math.isfinite(sigmoid) and sigmoid > 0):
        raise UnsupportedModelError(f"LightGBM objective {objective!r}: bad sigmoid")
    if name == "binary":
        return "binary", "logistic", sigmoid
    if name == "multiclass":
        return "multiclass", "softmax", 1.0
    if name == "multiclassova":
        return "multiclass", "logistic", sigmoid
    if name == "cross_entropy":
        return ("binary" if is_classifier else "regression"), "logistic", 1.0
    return "regression", "identity", 1.0


def _recorded_vocabularies(dump: dict, feature_names: list[str]) -> dict[int, Any]:
    """Feature index -> the vocabulary of each pandas ``category`` column the model was fitted
    on (``pandas_categorical``, module docstring); empty for a model fitted on codes."""
    recorded = dump.get("pandas_categorical") or []
    if not recorded:
        return {}
    infos = dump.get("feature_infos") or {}
    features = [i for i, name in enumerate(feature_names)
                if isinstance(infos.get(name), dict) and infos[name].get("values")]
    if len(features) != len(recorded):
        raise UnsupportedModelError(
            f"the LightGBM model records the categories of {len(recorded)} pandas category "
            f"columns but has {len(features)} categorical features: cannot tell which column "
            f"each list belongs to")
    vocabularies = {}
    for feature, categories in zip(features, recorded):
        vocabularies[feature] = recorded_vocabulary(
            f"feature {_feature_name(feature_names, feature)!r}", categories)
    return vocabularies


def _model_names(feature_names: list[str], n_features: int) -> list[str] | None:
    if not feature_names or feature_names == [f"Column_{i}" for i in range(n_features)]:
        return None
    return feature_names


def _feature_name(feature_names: list[str], feature: int) -> str:
    return feature_names[feature] if feature < len(feature_names) else f"x{feature}"


def _node_regions(threshold: float, missing_type: str, default_left: bool):
    """The value regions and NaN side of one numeric LightGBM node (module docstring);
    labels are ``True`` for the left child, ``False`` for the right."""
    cut = le_cut(threshold)
    zero_left = default_left if missing_type == "Zero" else 0.0 <= threshold
    points = sorted({KEY_MIN, KEY_END, cut, _ZERO_LO, _ZERO_HI})
    regions = []
    for start, end in zip(points, points[1:]):
        goes_left = zero_left if _ZERO_LO <= start < _ZERO_HI else start < cut
        regions.append((start, end, goes_left))
    nan_left = default_left if missing_type == "NaN" else zero_left
    return regions, nan_left


def _convert_tree(info: dict, index: int, n_features: int, feature_names: list[str],
                  scale: float):
    where = f"LightGBM tree {index}"
    assembler = TreeAssembler(where)
    stack: list[tuple[dict, Any, dict]] = [(info["tree_structure"], None, {})]
    while stack:
        node, slot, constraints = stack.pop()
        if "split_feature" not in node:
            if "leaf_coeff" in node:
                raise UnsupportedModelError(
                    f"{where} is a linear tree (linear_tree=True): not supported")
            assembler.add_leaf(slot, (float(node["leaf_value"]) * scale,),
                               int(node.get("leaf_index", 0)))
            continue
        feature = int(node["split_feature"])
        if not 0 <= feature < n_features:
            raise UnsupportedModelError(f"{where} splits on feature {feature}, the model has "
                                        f"{n_features}")
        decision = node.get("decision_type")
        if decision == "==":
            codes = _category_codes(node.get("threshold"), where)
            split = assembler.add_categorical_split(slot, feature, codes, default_left=False)
            stack.append((node["right_child"], (split, False), constraints))
            stack.append((node["left_child"], (split, True), constraints))
            continue
        if decision != "<=":
            raise UnsupportedModelError(
                f"{where}: decision type {decision!r} on feature "
                f"{_feature_name(feature_names, feature)!r} is unknown")
        missing_type = node.get("missing_type", "None")
        if missing_type not in ("None", "Zero", "NaN"):
            raise UnsupportedModelError(f"{where}: unknown missing_type {missing_type!r}")
        threshold = float(node["threshold"])
        if not math.isfinite(threshold):
            raise UnsupportedModelError(f"{where}: threshold {threshold!r} is not finite")
        regions, nan_left = _node_regions(threshold, missing_type, bool(node["default_left"]))
        children = assembler.route(slot, feature, regions, nan_left, constraints)
        for child_slot, goes_left, child_constraints in reversed(children):
            child = node["left_child"] if goes_left else node["right_child"]
            stack.append((child, child_slot, child_constraints))
    return assembler.finish(center=True)


def _category_codes(threshold: Any, where: str) -> list[int]:
    """The codes of a categorical node's ``threshold`` (``"1||5||30"``)."""
    try:
        codes = [int(part) for part in str(threshold).split("||")]
    except ValueError as error:
        raise UnsupportedModelError(f"{where}: categorical threshold {threshold!r} is not a "
                                    f"list of codes") from error
    if any(not 0 <= code < MAX_CATEGORY_CODE for code in codes):
        raise UnsupportedModelError(f"{where}: categorical threshold {threshold!r} holds a "
                                    f"code outside [0, 2**24)")
    return codes


def _probe_rows(forest: Forest):
    """Numeric probes (NaN, zeros, signs, the zero band, thresholds and the float32 below
    them) on every feature but those categorical splits read, which get codes only (module
    docstring: fractions are outside what a categorical input is given), and the categorical
    probes."""
    import numpy as np

    n = forest.n_features
    categorical = sorted({tree.feature[node] for tree in forest.trees
                          for node, codes in enumerate(tree.categories) if codes})
    rows = [np.full(n, np.nan), np.zeros(n), np.ones(n), -np.ones(n),
            np.full(n, ZERO_THRESHOLD), np.full(n, -ZERO_THRESHOLD)]
    for row in rows[-2:]:
        row[categorical] = 0.0
    for tree in forest.trees[:8]:
        for node in range(min(tree.n_nodes, 16)):
            if tree.feature[node] >= 0 and not tree.category_set(node) \
                    and math.isfinite(tree.threshold[node]):
                for value in (tree.threshold[node],
                              key_value(max(KEY_MIN, order_key(tree.threshold[node]) - 1))):
                    row = np.zeros(n)
                    row[tree.feature[node]] = value
                    rows.append(row)
    rows += [np.asarray(row) for row in categorical_probe_rows(forest, np.zeros(n))]
    return np.asarray(rows, dtype=np.float32)


def _check_against_booster(booster, forest: Forest, scale: float) -> None:
    """``scale``: what the leaves were multiplied by (``raw_score=True`` is the plain sum of
    the trees, before the sigmoid factor and the average of ``average_output`` models)."""
    import numpy as np

    rows = _probe_rows(forest)
    expected = np.asarray(booster.predict(rows, raw_score=True), dtype=np.float64).reshape(
        len(rows), forest.n_outputs) * scale
    for r, row in enumerate(rows):
        raw, magnitude = forest_raw_scores(forest, row)
        for k in range(forest.n_outputs):
            if abs(raw[k] - expected[r, k]) > 2.0 ** -22 * (1.0 + magnitude[k]):
                raise UnsupportedModelError(
                    f"the exported trees do not reproduce LightGBM's own raw score on a probe "
                    f"row (output {k}: IR {raw[k]!r}, LightGBM {float(expected[r, k])!r}): "
                    f"refusing to export")
