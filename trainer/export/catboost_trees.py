"""Ingest a CatBoost model into the pyastore tree IR.

Supported: ``CatBoostClassifier``, ``CatBoostRegressor`` and ``CatBoost`` (exact classes) with
symmetric (oblivious) trees of depth at most ``MAX_DEPTH`` and numeric features only. Source of
truth: the model's JSON export, ``save_model(path, format="json")``.

Losses (``model_info.params.loss_function.type``) and what they become:

* ``Logloss``, ``CrossEntropy`` -> binary, logistic; ``MultiClass`` -> multiclass, softmax;
  ``MultiClassOneVsAll`` -> multiclass, logistic per class (CatBoost's own one-vs-all
  probabilities, which need not sum to 1);
* ``RMSE``, ``MAE``, ``Quantile``, ``Expectile``, ``MAPE``, ``Huber``, ``LogCosh`` ->
  regression, identity (the raw formula value);
* refused: every other loss -- ``Poisson`` and ``Tweedie`` (exp link), ranking, multi-target
  and uncertainty losses.

Oblivious trees. A tree of depth ``D`` applies one split per level to every row: split ``i``
(``splits[i]``: a ``float_feature_index`` and a float32 ``border``) sets bit ``i`` of the leaf
index when ``x > border`` (CatBoost compares its float32 input with the float32 border), and
``leaf_values`` holds ``2**D`` leaves of ``approx_dimension`` values each, leaf-major. The
export expands the tree into an ordinary binary tree: level ``i``'s nodes test split ``i``,
bit 0 left (``x <= border``, i.e. ``x < next_float32_above(border)``), bit 1 right. A level
whose outcome the path already fixes (the same feature split again at a compatible border)
adds no node (``trainer.export.tree_assembly`` prunes it), so combinations no row can reach
are left out. Depth above ``MAX_DEPTH`` (2**10 leaves per tree, CatBoost's own recommended
range is 4 to 10) is refused rather than expanded.

Missing values, per feature (``nan_value_treatment``, set by ``nan_mode``): ``AsFalse``
(``Min``: NaN is below every border) sends NaN to bit 0, ``AsTrue`` (``Max``) to bit 1, and
``AsIs`` (``Forbidden``; CatBoost still scores NaN, comparing it as ``NaN > border``, false)
to bit 0. Inputs are ``missing="as_missing"``: the container scores NaN as CatBoost does.

Scores: ``raw = scale * sum(leaves) + bias`` (``scale_and_bias``). ``scale`` is folded into the
leaves, ``bias`` is the base score. Leaves are float64 in CatBoost and float32 in the container:
each tree's leaves are centred on its midpoint (per output) before rounding, the midpoint
added to the base score in float64 (``trainer.export.tree_assembly``), so the difference from
CatBoost is at most ``2**-24`` times half each tree's leaf range, summed over the trees. Node
``labels`` keep CatBoost's leaf index (what ``calc_leaf_indexes`` returns) for every IR leaf.

Refused with ``UnsupportedModelError`` naming the feature: categorical features (CatBoost
splits on hashes of the category text, one-hot, and on target statistics (CTRs) computed
from tables of per-category counts: neither is a set of vocabulary codes, so the container
cannot reproduce them; give CatBoost the codes as a numeric column instead), text and
embedding features; also non-symmetric trees (``grow_policy`` ``Depthwise``/``Lossguide``).

Inputs are named after the model's feature ids, else ``x0``, ``x1``, ...

Guard: after conversion the exporter scores probe rows (NaN, zeros, signs, border values) with
the IR and with ``predict(prediction_type="RawFormulaVal")`` and refuses the model if they
disagree beyond float32 rounding.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import Algorithm, Forest, ModelSpec, is_float32
from trainer.export import ExportOptions, make_spec, python_label, require_exact_class
from trainer.export.tree_assembly import (
    KEY_END,
    KEY_MIN,
    TreeAssembler,
    forest_raw_scores,
    key_value,
    le_cut,
    order_key,
)

SUPPORTED_CLASSES = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor")
MAX_DEPTH = 10

# loss -> (task, post_transform)
LOSSES = {
    "Logloss": ("binary", "logistic"),
    "CrossEntropy": ("binary", "logistic"),
    "MultiClass": ("multiclass", "softmax"),
    "MultiClassOneVsAll": ("multiclass", "logistic"),
    "RMSE": ("regression", "identity"),
    "MAE": ("regression", "identity"),
    "Quantile": ("regression", "identity"),
    "Expectile": ("regression", "identity"),
    "MAPE": ("regression", "identity"),
    "Huber": ("regression", "identity"),
    "LogCosh": ("regression", "identity"),
}

_NAN_TO_RIGHT = {"AsFalse": False, "AsIs": False, "AsTrue": True}


def export(model: Any, options: ExportOptions) -> ModelSpec:
    """Convert a fitted CatBoost model to a ``ModelSpec`` (see the module docstring)."""
    return export_traced(model, options)[0]


def export_traced(model: Any, options: ExportOptions
                  ) -> tuple[ModelSpec, tuple[tuple[int, ...], ...]]:
    """``export``, and per exported tree CatBoost's leaf index of every IR node (-1 at split
    nodes): the differential tests compare it with ``calc_leaf_indexes``."""
    import catboost

    class_name = require_exact_class(model, "catboost", SUPPORTED_CLASSES)
    if not model.is_fitted():
        raise UnsupportedModelError(f"{class_name} is not fitted")
    names = [str(n) for n in (getattr(model, "feature_names_", None) or [])]
    _refuse_non_numeric_features(model, names)
    document = _json_document(model)
    info = document.get("features_info", {})
    for kind in ("categorical_features", "text_features", "embedding_features"):
        if info.get(kind):
            first = info[kind][0]
            raise UnsupportedModelError(
                f"feature {first.get('feature_id') or first.get('flat_feature_index')!r} is "
                f"{kind.split('_')[0]}: only numeric CatBoost features are supported")
    if "oblivious_trees" not in document:
        raise UnsupportedModelError(
            "the CatBoost model has non-symmetric trees (grow_policy Depthwise or Lossguide): "
            "only symmetric (oblivious) trees are supported")

    loss = (((document.get("model_info") or {}).get("params") or {}).get("loss_function")
            or {}).get("type")
    if loss not in LOSSES:
        raise UnsupportedModelError(f"CatBoost loss {loss!r} is not supported (supported: "
                                    f"{', '.join(LOSSES)})")
    task, post_transform = LOSSES[loss]

    float_features = info.get("float_features") or []
    flat_index = {int(f["feature_index"]): int(f["flat_feature_index"]) for f in float_features}
    nan_right = {}
    for feature in float_features:
        treatment = feature.get("nan_value_treatment", "AsIs")
        if treatment not in _NAN_TO_RIGHT:
            raise UnsupportedModelError(f"CatBoost nan_value_treatment {treatment!r} is not "
                                        f"supported")
        nan_right[int(feature["feature_index"])] = _NAN_TO_RIGHT[treatment]
    n_features = max(len(names), 1 + max(flat_index.values(), default=-1))

    scale, bias = document.get("scale_and_bias", [1.0, [0.0]])
    bias = [float(v) for v in bias]
    trees_json = document["oblivious_trees"]
    if not trees_json:
        raise UnsupportedModelError("the CatBoost model has no trees")
    dimension = len(bias)
    n_outputs = dimension
    if (task == "multiclass") != (dimension > 1):
        raise UnsupportedModelError(f"CatBoost loss {loss!r} with {dimension} outputs per "
                                    f"leaf is not supported")

    trees, labels = [], []
    base = list(bias)
    for index, tree_json in enumerate(trees_json):
        tree, tree_labels, offset = _convert_tree(tree_json, index, dimension, float(scale),
                                                  flat_index, nan_right)
        for k in range(dimension):
            base[k] += offset[k]
        trees.append(tree)
        labels.append(tree_labels)
    forest = Forest(n_features=n_features, n_outputs=n_outputs, leaf_width=dimension,
                    trees=tuple(trees), tree_output=(0,) * len(trees), aggregation="sum",
                    base_score=tuple(base), post_transform=post_transform)
    _check_against_model(model, forest)

    class_labels = _class_labels(model, document, task, n_outputs)
    algorithm = Algorithm(family="gradient_boosted_trees", library="catboost",
                          library_version=str(catboost.__version__), estimator=class_name)
    ids = [str(f.get("feature_id") or "") for f in sorted(float_features,
                                                         key=lambda f: f["flat_feature_index"])]
    model_names = ids if ids and all(ids) and len(ids) == n_features else None
    spec = make_spec(forest=forest, task=task, class_labels=class_labels, algorithm=algorithm,
                     model_feature_names=model_names, missing="as_missing", options=options,
                     training_params=model.get_params())
    return spec, tuple(labels)


def _refuse_non_numeric_features(model: Any, names: list[str]) -> None:
    for kind, getter in (("categorical", "get_cat_feature_indices"),
                         ("text", "get_text_feature_indices"),
                         ("embedding", "get_embedding_feature_indices")):
        method = getattr(model, getter, None)
        indices = list(method()) if method is not None else []
        if indices:
            index = int(indices[0])
            name = names[index] if index < len(names) else f"x{index}"
            why = (" (CatBoost's splits on hashed categories and target statistics are not "
                   "codes of a vocabulary; fit on the category codes as a numeric column "
                   "instead)") if kind == "categorical" else ""
            raise UnsupportedModelError(f"feature {name!r} is {kind}: only numeric CatBoost "
                                        f"features can be exported{why}")


def _json_document(model: Any) -> dict:
    handle, path = tempfile.mkstemp(suffix=".json", prefix="catboost-export-")
    os.close(handle)
    try:
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    finally:
        os.unlink(path)


def _convert_tree(tree_json: dict, index: int, dimension: int, scale: float,
                  flat_index: dict[int, int], nan_right: dict[int, bool]):
    where = f"CatBoost tree {index}"
    splits = tree_json.get("splits") or []
    depth = len(splits)
    if depth > MAX_DEPTH:
        raise UnsupportedModelError(
            f"{where} has depth {depth}: oblivious trees deeper than {MAX_DEPTH} "
            f"(2**{MAX_DEPTH} leaves) are not exported")
    values = [float(v) for v in tree_json["leaf_values"]]
    if len(values) != dimension << depth:
        raise UnsupportedModelError(f"{where}: {len(values)} leaf values for depth {depth} "
                                    f"and {dimension} outputs")
    levels = []
    for split in splits:
        if split.get("split_type") != "FloatFeature":
            raise UnsupportedModelError(f"{where}: split type {split.get('split_type')!r} is "
                                        f"not supported (numeric features only)")
        feature = int(split["float_feature_index"])
        if feature not in flat_index:
            raise UnsupportedModelError(f"{where} splits on unknown float feature {feature}")
        border = float(split["border"])
        if not is_float32(border):
            raise UnsupportedModelError(f"{where}: border {border!r} is not a float32")
        cut = le_cut(border)  # bit 0 below the cut: x <= border
        levels.append((flat_index[feature], [(KEY_MIN, cut, 0), (cut, KEY_END, 1)],
                       int(nan_right[feature])))

    assembler = TreeAssembler(where)
    stack: list[tuple[int, int, Any, dict]] = [(0, 0, None, {})]
    while stack:
        level, leaf, slot, constraints = stack.pop()
        if level == depth:
            assembler.add_leaf(slot, [scale * v for v in
                                      values[leaf * dimension:(leaf + 1) * dimension]], leaf)
            continue
        feature, regions, nan_bit = levels[level]
        children = assembler.route(slot, feature, regions, nan_bit, constraints)
        for child_slot, bit, child_constraints in reversed(children):
            stack.append((level + 1, leaf | (bit << level), child_slot, child_constraints))
    return assembler.finish(center=True)


def _class_labels(model: Any, document: dict, task: str, n_outputs: int) -> tuple:
    if task == "regression":
        return ()
    expected = 2 if task == "binary" else n_outputs
    labels = getattr(model, "classes_", None)
    if labels is None or len(labels) == 0:
        labels = ((document.get("model_info") or {}).get("class_params") or {}).get(
            "class_names") or list(range(expected))
    labels = tuple(python_label(label) for label in labels)
    if len(labels) != expected:
        raise UnsupportedModelError(f"{len(labels)} class labels for a {task} CatBoost model "
                                    f"with {n_outputs} outputs")
    return labels


def _probe_rows(forest: Forest):
    import numpy as np

    n = forest.n_features
    rows = [np.full(n, np.nan), np.zeros(n), np.ones(n), -np.ones(n)]
    for tree in forest.trees[:8]:
        for node in range(min(tree.n_nodes, 16)):
            if tree.feature[node] >= 0:
                for key in (order_key(tree.threshold[node]),
                            max(KEY_MIN, order_key(tree.threshold[node]) - 1)):
                    row = np.zeros(n)
                    row[tree.feature[node]] = key_value(key)
                    rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def _check_against_model(model: Any, forest: Forest) -> None:
    import numpy as np

    rows = _probe_rows(forest)
    expected = np.asarray(model.predict(rows, prediction_type="RawFormulaVal"),
                          dtype=np.float64).reshape(len(rows), forest.n_outputs)
    for r, row in enumerate(rows):
        raw, magnitude = forest_raw_scores(forest, row)
        for k in range(forest.n_outputs):
            if not math.isclose(raw[k], expected[r, k], rel_tol=0.0,
                                abs_tol=2.0 ** -22 * (1.0 + magnitude[k])):
                raise UnsupportedModelError(
                    f"the exported trees do not reproduce CatBoost's own raw score on a probe "
                    f"row (output {k}: IR {raw[k]!r}, CatBoost {float(expected[r, k])!r}): "
                    f"refusing to export")
