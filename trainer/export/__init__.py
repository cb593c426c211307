"""Export trained models into the pyastore intermediate representation (IR).

The export path is a pipeline of named passes::

    xgboost / LightGBM / CatBoost / scikit-learn / torch model  --ingest-->  ModelSpec
    --pyastore.format.write-->  sections  -->  container bytes

This package owns the first pass. ``export_model`` looks at the model's class (by module and
name, without importing any framework eagerly) and hands it to one ingest module per library:

* ``trainer.export.xgboost_trees``: ``Booster``, ``XGBClassifier``, ``XGBRegressor``,
  ``XGBRFClassifier``, ``XGBRFRegressor`` (gbtree and dart boosters);
* ``trainer.export.lightgbm_trees``: ``Booster``, ``LGBMClassifier``, ``LGBMRegressor``
  (numeric features);
* ``trainer.export.catboost_trees``: ``CatBoost``, ``CatBoostClassifier``,
  ``CatBoostRegressor`` (symmetric trees, numeric features);
* ``trainer.export.sklearn_trees``: decision trees, random forests, extra trees, gradient
  boosting and histogram gradient boosting, classifiers and regressors;
* ``trainer.export.sklearn_mlp``: ``MLPClassifier`` and ``MLPRegressor``;
* ``trainer.export.sklearn_pipeline``: a ``Pipeline`` of ``SimpleImputer`` /
  ``StandardScaler`` / ``MinMaxScaler`` steps (the container's feature transforms) followed
  by any model above;
* ``trainer.export.torch_mlp``: a ``torch.nn.Sequential`` of dense layers and activations.

Each ingest module converts the library's trees to the single comparison rule of the IR
(``x < threshold`` in float32, NaN to the default side; see ``pyastore.ir``) and explains its
conversion in its docstring. Anything that cannot be reproduced exactly raises
``pyastore.errors.UnsupportedModelError`` naming the problem: an export never scores
differently from the library it came from.

Output conventions, the same for every library:

* binary classifier: one output ``P_<positive label>`` (type ``probability``), the probability
  of ``classes_[1]``; ``ScoreRules(task="binary", class_labels=(negative, positive),
  cutoff=cutoff)``. (xgboost ``binary:logitraw`` has no probability: its one output is the
  margin ``score_<positive label>`` and the cutoff is carried into margin space, ``logit``.)
* multiclass classifier: one output ``P_<label>`` per class, in class order;
  ``ScoreRules(task="multiclass", class_labels=labels)``.
* regressor: one output ``prediction`` (type ``value``); ``ScoreRules(task="regression")``.
* encoder (the first ``encoder_layers`` layers of a network, ``task="embedding"``): one output
  ``h0 .. h{n-1}`` (type ``value``) per unit of the last exported layer;
  ``ScoreRules(task="embedding")``.
* inputs: one ``Variable(name, "float", missing)`` per feature, named after the model's feature
  names (or ``feature_names=``), else ``x0 .. x{n-1}``. ``missing`` is ``"as_missing"``
  when the library scores NaN, ``"error"`` when it refuses NaN input. An input named in
  ``categorical=`` becomes ``Variable(name, "categorical", "categorical", categorical=...)``
  (its column held the codes of that vocabulary when the model was fitted).
* ``training_params``: the model's hyper-parameters made JSON/msgpack-safe, updated with the
  caller's ``training_params``; ``provenance`` is passed through, made safe the same way.

Importing this package imports no framework.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from pyastore.encoding import TYPE as CATEGORICAL
from pyastore.encoding import Categorical
from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import Algorithm, Forest, Mlp, ModelSpec, Output, ScoreRules, Variable

__all__ = ["export_model"]

_LIBRARY_MODULES = {"xgboost": "xgboost_trees", "lightgbm": "lightgbm_trees",
                    "catboost": "catboost_trees", "sklearn": "sklearn_trees",
                    "torch": "torch_mlp"}


def export_model(model: Any, *, feature_names: Sequence[str] | None = None,
                 name: str | None = None, description: str = "",
                 training_params: dict[str, Any] | None = None,
                 provenance: dict[str, Any] | None = None, cutoff: float = 0.5,
                 iteration_range: tuple[int, int] | None = None,
                 encoder_layers: int | None = None, task: str | None = None,
                 class_labels: Sequence[Any] | None = None,
                 categorical: dict[str, Categorical] | None = None) -> ModelSpec:
    """Convert a fitted xgboost / LightGBM / CatBoost / scikit-learn model or a torch network
    into a ``ModelSpec``.

    ``feature_names`` overrides the names read from the model (one per input column, in
    column order). ``name`` defaults to the estimator's class name. ``cutoff`` is the decision
    threshold on the positive-class probability of binary classifiers. ``iteration_range``
    (xgboost only) is ``(begin, end)`` in boosting rounds, as in ``Booster.predict``; by
    default all rounds, or ``(0, best_iteration + 1)`` when early stopping recorded a best
    iteration. ``encoder_layers=k`` (MLPs only) exports the first ``k`` dense layers, each
    with its activation, as an encoder (``task="embedding"``). ``task`` and ``class_labels``
    (torch only, which records neither) say what the network's outputs mean
    (``trainer.export.torch_mlp``). ``categorical`` maps input names to the vocabularies
    their columns were encoded with (``trainer.categorical``): those inputs become
    categorical inputs of the container, whose device maps texts to the same codes.

    Raises ``UnsupportedModelError`` for a model (or part of one) that cannot be exported
    exactly, ``UsageError`` for bad arguments.
    """
    library = _library_of(model)
    options = ExportOptions(feature_names=feature_names, name=name, description=description,
                            training_params=training_params, provenance=provenance,
                            cutoff=cutoff)
    if library != "xgboost" and iteration_range is not None:
        raise UsageError("iteration_range applies to xgboost models only")
    if library != "torch" and (task is not None or class_labels is not None):
        raise UsageError("task and class_labels apply to torch networks only (other libraries "
                         "record them)")
    if library == "torch":
        from trainer.export import torch_mlp

        spec = torch_mlp.export(model, options, task=task, class_labels=class_labels,
                                encoder_layers=encoder_layers)
    elif library == "sklearn" and type(model).__name__ == "Pipeline":
        from trainer.export import sklearn_pipeline

        spec = sklearn_pipeline.export(model, options, iteration_range=iteration_range,
                                       encoder_layers=encoder_layers)
    else:
        spec = export_estimator(model, library, options, iteration_range=iteration_range,
                                encoder_layers=encoder_layers)
    return with_categorical_inputs(spec, categorical or {})


def with_categorical_inputs(spec: ModelSpec, categorical: dict[str, Categorical]) -> ModelSpec:
    """``spec`` whose inputs named in ``categorical`` are categorical with that vocabulary.
    An input whose model refuses NaN (missing policy ``error``) takes only a vocabulary that
    never yields NaN; one with imputation keeps its XFRM (the code's NaN is imputed)."""
    if not categorical:
        return spec
    names = [v.name for v in spec.inputs]
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise UsageError(f"categorical names {unknown} that are not inputs of the model")
    inputs = []
    for variable in spec.inputs:
        vocabulary = categorical.get(variable.name)
        if vocabulary is None:
            inputs.append(variable)
            continue
        if variable.missing == "error" and vocabulary.scores_nan:
            raise UnsupportedModelError(
                f"input {variable.name!r}: the model refuses missing values, but its "
                "vocabulary scores a missing or unseen category as missing (give it a "
                "missing code)")
        inputs.append(replace(variable, type=CATEGORICAL, missing=CATEGORICAL,
                              categorical=vocabulary))
    return replace(spec, inputs=tuple(inputs))


def export_estimator(model: Any, library: str, options: ExportOptions, *,
                     iteration_range: tuple[int, int] | None = None,
                     encoder_layers: int | None = None) -> ModelSpec:
    """One xgboost, LightGBM, CatBoost or scikit-learn estimator (not a pipeline) to a
    ``ModelSpec``."""
    if library in ("xgboost", "lightgbm", "catboost") and encoder_layers is not None:
        raise UsageError("encoder_layers applies to MLPs only")
    if library == "xgboost":
        from trainer.export import xgboost_trees

        return xgboost_trees.export(model, options, iteration_range=iteration_range)
    if library == "lightgbm":
        from trainer.export import lightgbm_trees

        return lightgbm_trees.export(model, options)
    if library == "catboost":
        from trainer.export import catboost_trees

        return catboost_trees.export(model, options)
    from trainer.export import sklearn_mlp

    if type(model).__name__ in sklearn_mlp.SUPPORTED_CLASSES:
        return sklearn_mlp.export(model, options, encoder_layers=encoder_layers)
    if encoder_layers is not None:
        raise UsageError("encoder_layers applies to MLPs only")
    from trainer.export import sklearn_trees

    return sklearn_trees.export(model, options)


class ExportOptions:
    """The caller's choices that do not depend on the library (see ``export_model``)."""

    def __init__(self, *, feature_names, name, description, training_params, provenance,
                 cutoff):
        if not isinstance(cutoff, (int, float)) or not 0.0 < float(cutoff) < 1.0:
            raise UsageError(f"cutoff must be a probability strictly between 0 and 1, "
                             f"got {cutoff!r}")
        self.feature_names = None if feature_names is None else list(feature_names)
        self.name = name
        self.description = description
        self.training_params = dict(training_params or {})
        self.provenance = dict(provenance or {})
        self.cutoff = float(cutoff)


def _library_of(model: Any) -> str:
    for cls in type(model).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if root in _LIBRARY_MODULES:
            return root
    raise UnsupportedModelError(
        f"cannot export {_qualified_name(type(model))}: only xgboost, LightGBM, CatBoost and "
        f"scikit-learn tree models, scikit-learn MLPs and pipelines, and torch nn.Sequential "
        f"networks are supported")


def require_exact_class(model: Any, library: str, supported: Iterable[str]) -> str:
    """The model's class name, refusing subclasses and classes outside ``supported``.

    A subclass may override prediction, so only the library's own classes are exported.
    """
    cls = type(model)
    supported = tuple(supported)
    root = (cls.__module__ or "").split(".")[0]
    if root != library or cls.__name__ not in supported:
        raise UnsupportedModelError(
            f"cannot export {_qualified_name(cls)}: supported {library} estimators are "
            f"{', '.join(supported)}")
    return cls.__name__


def make_spec(*, forest: Forest | None = None, task: str, class_labels: Sequence[Any],
              algorithm: Algorithm, model_feature_names: Sequence[str] | None, missing: str,
              options: ExportOptions, training_params: dict[str, Any],
              margin_output: bool = False, mlp: Mlp | None = None) -> ModelSpec:
    """Assemble the ``ModelSpec`` around an exported forest or MLP (conventions: module
    docstring)."""
    payload = forest if forest is not None else mlp
    if payload is None or (forest is not None and mlp is not None):
        raise UnsupportedModelError("a model needs exactly one payload, a forest or an MLP")
    n_features, n_outputs = payload.n_features, payload.n_outputs
    names = input_names(n_features, model_feature_names, options.feature_names)
    inputs = tuple(Variable(name=n, type="float", missing=missing) for n in names)
    labels = tuple(python_label(label) for label in class_labels)
    if task == "binary":
        if len(labels) != 2:
            raise UnsupportedModelError(f"a binary classifier needs 2 classes, got {len(labels)}")
        positive = labels[1]
        if margin_output:
            outputs = (Output(name=f"score_{positive}", type="score",
                              meaning=f"log-odds (margin) that the label is {positive!r}"),)
            cutoff = math.log(options.cutoff / (1.0 - options.cutoff))
        else:
            outputs = (Output(name=f"P_{positive}", type="probability",
                              meaning=f"probability that the label is {positive!r}"),)
            cutoff = options.cutoff
        rules = ScoreRules(task="binary", class_labels=labels, cutoff=cutoff)
    elif task == "multiclass":
        outputs = tuple(Output(name=f"P_{label}", type="probability",
                               meaning=f"probability that the label is {label!r}")
                        for label in labels)
        if len({o.name for o in outputs}) != len(outputs):
            raise UnsupportedModelError(f"class labels {labels!r} give duplicate output names")
        rules = ScoreRules(task="multiclass", class_labels=labels)
    elif task == "regression":
        outputs = (Output(name="prediction", type="value", meaning="predicted value"),)
        rules = ScoreRules(task="regression")
    elif task == "embedding":
        outputs = tuple(Output(name=f"h{k}", type="value", meaning=f"unit {k} of the encoding")
                        for k in range(n_outputs))
        rules = ScoreRules(task="embedding")
    else:
        raise UnsupportedModelError(f"unknown task {task!r}")
    if len(outputs) != n_outputs:
        raise UnsupportedModelError(
            f"{len(outputs)} outputs for a model with {n_outputs} outputs")
    params = json_safe(training_params)
    params.update(json_safe(options.training_params))
    return ModelSpec(
        name=options.name if options.name is not None else algorithm.estimator,
        algorithm=algorithm,
        inputs=inputs,
        outputs=outputs,
        rules=rules,
        forest=forest,
        mlp=mlp,
        description=options.description,
        training_params=params,
        provenance=json_safe(options.provenance),
    )


def input_names(n_features: int, model_names: Sequence[str] | None,
                override: Sequence[str] | None) -> list[str]:
    """Input variable names: the caller's, else the model's, else ``x0 .. x{n-1}``."""
    if override is not None:
        names = list(override)
        if len(names) != n_features:
            raise UsageError(f"feature_names has {len(names)} names, the model reads "
                             f"{n_features} features")
    elif model_names is not None and len(model_names) > 0:
        names = [str(n) for n in model_names]
        if len(names) != n_features:
            raise UnsupportedModelError(f"the model names {len(names)} features but reads "
                                        f"{n_features}")
    else:
        names = [f"x{i}" for i in range(n_features)]
    for n in names:
        if not isinstance(n, str) or not n:
            raise UsageError(f"feature names must be non-empty strings, got {n!r}")
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise UsageError(f"duplicate feature names: {duplicates}")
    return names


def python_label(label: Any) -> Any:
    """A class label as a plain Python ``str``/``int``/``float``/``bool``."""
    if hasattr(label, "item") and callable(label.item):
        label = label.item()
    if isinstance(label, (bool, int, float, str)):
        return label
    raise UnsupportedModelError(f"class label {label!r} of type {type(label).__name__} is not "
                                f"a str, int, float or bool")


def json_safe(value: Any) -> Any:
    """``value`` made of str/int/float/bool/None, lists and str-keyed dicts only.

    numpy scalars and arrays become Python numbers and lists, tuples become lists, non-finite
    floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``, classes and functions become
    their qualified name, estimators a dict of their class and parameters; anything else its
    type's qualified name (never a ``repr``, which may hold a memory address and would make the
    container bytes differ between runs).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__") \
            and not hasattr(value, "get_params"):
        return _qualified_name(value)
    if hasattr(value, "tolist") and callable(value.tolist):
        return json_safe(value.tolist())
    if hasattr(value, "get_params") and callable(value.get_params):
        return {"estimator": _qualified_name(type(value)),
                "params": json_safe(value.get_params(deep=False))}
    return _qualified_name(type(value))


def _qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or str(obj)
    return f"{module}.{name}" if module else name


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float (no numpy needed)."""
    import struct

    return struct.unpack("<f", struct.pack("<f", value))[0]
