"""Ingest a scikit-learn ``Pipeline`` of feature transforms followed by a model.

Supported steps, in this order (``None``/``"passthrough"`` steps are skipped):

1. at most one ``SimpleImputer`` (``missing_values=NaN``, any strategy, no indicator): NaN in
   raw column ``i`` becomes ``statistics_[i]`` (cast to the fitted dtype, as scikit-learn
   does); columns it drops (no value seen at fit, ``keep_empty_features=False``) are left out
   of the model columns -- the container's column selection;
2. at most one ``StandardScaler`` (``(x - mean_) / scale_``, the missing parts 0 and 1) or
   ``MinMaxScaler`` without ``clip`` (``x * scale_ + min_``);
3. the final estimator: anything ``trainer.export`` exports (tree models, xgboost, MLPs).

They become the container's XFRM section (``pyastore.ir.Transforms``): the raw columns are
the container's inputs (named by ``feature_names``, else the pipeline's
``feature_names_in_``, else ``x0 ..``), the transformed columns what the payload reads. The
XFRM arithmetic is scikit-learn's, in float64, rounded once to float32 -- which is what
scikit-learn's trees and xgboost do to their float64 input, so a tree pipeline scores exactly
alike (CatBoost too: it rounds its input to float32). Histogram gradient boosting and
LightGBM compare their input in float64, so they are refused after a scaler (their thresholds
would meet values the float32 rounding moved).

Before returning, the export transforms probe rows (NaN, zeros, signs, large values, values
around every statistic) with the pipeline's own transformers and with the XFRM arithmetic
and refuses the pipeline unless every value agrees bit for bit.

Raw inputs an imputer fills are exported with ``missing="impute"``; others keep the final
estimator's policy for the column that reads them; a raw column no model column reads (a
dropped one) is ``"as_missing"``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import ColumnTransform, ModelSpec, Transforms, Variable
from trainer.export import (
    ExportOptions,
    _library_of,
    export_estimator,
    input_names,
    json_safe,
    require_exact_class,
)

TRANSFORMERS = ("SimpleImputer", "StandardScaler", "MinMaxScaler")


def export(pipeline: Any, options: ExportOptions, *, iteration_range=None,
           encoder_layers: int | None = None) -> ModelSpec:
    """Convert a fitted ``Pipeline`` to a ``ModelSpec`` with transforms (module docstring)."""
    require_exact_class(pipeline, "sklearn", ("Pipeline",))
    steps = [(name, step) for name, step in pipeline.steps
             if step is not None and not (isinstance(step, str) and step == "passthrough")]
    if not steps:
        raise UnsupportedModelError("the pipeline has no steps")
    *transformers, (final_name, final) = steps
    if not transformers:
        raise UnsupportedModelError("the pipeline has no transform step: export its final "
                                    "estimator directly")
    n_inputs = getattr(transformers[0][1], "n_features_in_", None)
    if n_inputs is None:
        raise UnsupportedModelError(f"pipeline step {transformers[0][0]!r} is not fitted")
    raw_names = input_names(int(n_inputs), getattr(pipeline, "feature_names_in_", None),
                            options.feature_names)
    columns = [ColumnTransform(source=i) for i in range(int(n_inputs))]
    for name, step in transformers:
        columns = _apply_step(name, step, columns)
    library = _library_of(final)
    final_class = type(final).__name__
    if (final_class.startswith("HistGradientBoosting") or library == "lightgbm") and any(
            c.scaling != "none" or (c.impute is not None and _float32(c.impute) != c.impute)
            for c in columns):
        raise UnsupportedModelError(
            f"{final_class} compares in float64: after a scaler (or an imputed value that is "
            "not a float32) its splits would see values rounded to float32; export it without "
            "the scaler")
    inner_options = ExportOptions(feature_names=[raw_names[c.source] for c in columns],
                                  name=options.name, description=options.description,
                                  training_params=None, provenance=options.provenance,
                                  cutoff=options.cutoff)
    inner = export_estimator(final, library, inner_options, iteration_range=iteration_range,
                             encoder_layers=encoder_layers)
    transforms = Transforms(n_inputs=int(n_inputs), columns=tuple(columns))
    _verify(transformers, transforms)
    policy = {}
    for column, variable in zip(columns, inner.inputs):
        policy[column.source] = "impute" if column.impute is not None else variable.missing
    inputs = tuple(Variable(name=name, type="float", missing=policy.get(i, "as_missing"))
                   for i, name in enumerate(raw_names))
    step_names = [type(step).__name__ for _, step in transformers] + [final_class]
    algorithm = dataclasses.replace(inner.algorithm,
                                    estimator=f"Pipeline({', '.join(step_names)})")
    params = {"steps": [{"name": name, "estimator": type(step).__name__,
                         "params": json_safe(step.get_params(deep=False))}
                        for name, step in transformers]
              + [{"name": final_name, "estimator": final_class, "params": inner.training_params}]}
    params.update(json_safe(options.training_params))
    return dataclasses.replace(
        inner, inputs=inputs, transforms=transforms, algorithm=algorithm,
        name=options.name if options.name is not None else f"Pipeline({final_class})",
        training_params=params)


def _float32(value: float) -> float:
    import numpy as np

    return float(np.float32(value))


def _apply_step(name: str, step: Any, columns: list[ColumnTransform]) -> list[ColumnTransform]:
    """``columns`` after one transformer step, refusing what XFRM cannot express."""
    import numpy as np

    cls = type(step)
    if cls.__module__.split(".")[0] != "sklearn" or cls.__name__ not in TRANSFORMERS:
        raise UnsupportedModelError(
            f"cannot export pipeline step {name!r} ({cls.__module__}.{cls.__qualname__}): "
            f"supported transforms are {', '.join(TRANSFORMERS)} (then the model)")
    require_exact_class(step, "sklearn", TRANSFORMERS)
    width = getattr(step, "n_features_in_", None)
    if width != len(columns):
        raise UnsupportedModelError(f"pipeline step {name!r} is not fitted or reads "
                                    f"{width} columns, not {len(columns)}")
    if cls.__name__ == "SimpleImputer":
        missing = step.missing_values
        if not (isinstance(missing, float) and np.isnan(missing)):
            raise UnsupportedModelError(f"pipeline step {name!r}: only NaN can be imputed, "
                                        f"not missing_values={missing!r}")
        if step.add_indicator:
            raise UnsupportedModelError(f"pipeline step {name!r}: add_indicator is not "
                                        "supported")
        if any(c.impute is not None or c.scaling != "none" for c in columns):
            raise UnsupportedModelError(f"pipeline step {name!r}: one imputer, before any "
                                        "scaler")
        try:
            statistics = np.asarray(step.statistics_, dtype=np.float64)
        except (TypeError, ValueError):
            raise UnsupportedModelError(f"pipeline step {name!r}: non-numeric "
                                        "imputation values") from None
        fill_dtype = np.dtype(getattr(step, "_fill_dtype", np.float64))
        fill = statistics.astype(fill_dtype).astype(np.float64) if fill_dtype.kind == "f" \
            else statistics
        keep = np.ones(len(columns), dtype=bool) if step.keep_empty_features \
            else ~np.isnan(statistics)
        return [dataclasses.replace(c, impute=float(fill[i]))
                for i, c in enumerate(columns) if keep[i]]
    if any(c.scaling != "none" for c in columns):
        raise UnsupportedModelError(f"pipeline step {name!r}: at most one scaler")
    if cls.__name__ == "StandardScaler":
        mean = np.zeros(len(columns)) if step.mean_ is None else np.asarray(step.mean_, np.float64)
        scale = (
            np.ones(len(columns)) if step.scale_ is None else np.asarray(step.scale_, np.float64)
        )
        return [dataclasses.replace(c, scaling="standardize", a=float(mean[i]), b=float(scale[i]))
                for i, c in enumerate(columns)]
    if step.clip:
        raise UnsupportedModelError(f"pipeline step {name!r}: MinMaxScaler(clip=True) is not "
                                    "supported")
    scale = np.asarray(step.scale_, np.float64)
    offset = np.asarray(step.min_, np.float64)
    return [dataclasses.replace(c, scaling="affine", a=float(scale[i]), b=float(offset[i]))
            for i, c in enumerate(columns)]


def apply_transforms(transforms: Transforms, x: Any):
    """The XFRM arithmetic in numpy, float64, before the float32 rounding (docs/FORMAT.md)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    out = np.empty((x.shape[0], len(transforms.columns)), dtype=np.float64)
    for j, column in enumerate(transforms.columns):
        v = x[:, column.source].copy()
        if column.impute is not None:
            v[np.isnan(v)] = column.impute
        if column.scaling == "standardize":
            v = (v - column.a) / column.b
        elif column.scaling == "affine":
            v = v * column.a + column.b
        out[:, j] = v
    return out


def _verify(transformers: list[tuple[str, Any]], transforms: Transforms) -> None:
    """Refuses unless the pipeline's transformers and XFRM agree bit for bit on probe rows."""
    import numpy as np

    n = transforms.n_inputs
    values = [np.nan, 0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -7.25, 1e6, -1e6, 1e-3, 123456.0]
    for column in transforms.columns:
        for value in (column.impute, column.a, column.b):
            if value is not None:
                center = float(np.float32(value))
                values += [center, float(np.nextafter(np.float32(center), np.float32(np.inf))),
                           float(np.nextafter(np.float32(center), np.float32(-np.inf)))]
    rng = np.random.default_rng(0)
    rows = [np.full(n, v) for v in values]
    rows += [rng.choice(values, size=n) for _ in range(64)]
    probe = np.asarray(rows, dtype=np.float32).astype(np.float64)
    expected = probe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, step in transformers:
            expected = step.transform(expected)
    got = apply_transforms(transforms, probe)
    expected = np.asarray(expected, dtype=np.float64)
    if expected.shape != got.shape:
        raise UnsupportedModelError(f"the pipeline's transforms could not be reproduced: they "
                                    f"make {expected.shape[1]} columns, XFRM {got.shape[1]}")
    same = ((expected == got) & (np.signbit(expected) == np.signbit(got))) | (
        np.isnan(expected) & np.isnan(got))
    if not same.all():
        column = int(np.argwhere(~same)[0][1])
        raise UnsupportedModelError(f"the pipeline's transforms could not be reproduced "
                                    f"exactly: model column {column} differs on probe rows")
