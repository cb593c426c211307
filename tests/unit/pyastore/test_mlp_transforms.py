"""The XFRM section: imputation, scaling and column selection applied by the C core exactly
as docs/FORMAT.md says (float64 arithmetic, one rounding to float32), for MLPs and trees,
and the missing-value policies the exporters record."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import golden_models
import pyastore
from pyastore import format as fmt
from pyastore.ir import (
    Algorithm,
    ColumnTransform,
    Dense,
    Mlp,
    ModelSpec,
    Output,
    ScoreRules,
    Transforms,
    Variable,
)

CREATED = "2026-01-01T00:00:00Z"


def load_unsigned(spec) -> pyastore.Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyastore.load(fmt.write(spec, None, created=CREATED), allow_unsigned=True)


def reference_transform(transforms: Transforms, x: np.ndarray) -> np.ndarray:
    """docs/FORMAT.md, "XFRM": the exporter's float64 arithmetic in numpy (itself checked
    against scikit-learn's transformers at every export), then one rounding to float32."""
    from trainer.export.sklearn_pipeline import apply_transforms

    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        return apply_transforms(transforms, x).astype(np.float32)


def pass_through_spec(transforms: Transforms) -> ModelSpec:
    """A network that outputs model column j as output j, exactly: one identity layer whose
    weights are the identity matrix adds only exact zeros to each value (as long as every
    column is finite: 0 * NaN would spread a NaN to every output)."""
    n = len(transforms.columns)
    eye = tuple(tuple(1.0 if i == j else 0.0 for i in range(n)) for j in range(n))
    return ModelSpec(
        name="pass-through", algorithm=Algorithm("mlp", "test", "1"),
        inputs=tuple(Variable(f"raw{i}", missing="impute") for i in range(transforms.n_inputs)),
        outputs=tuple(Output(f"c{j}", "value") for j in range(n)),
        rules=ScoreRules("embedding"), mlp=Mlp((Dense(eye, (0.0,) * n),)),
        transforms=transforms)


TRANSFORMS = Transforms(n_inputs=6, columns=(
    ColumnTransform(source=5, impute=2.5, scaling="standardize", a=93152.503, b=2121.852197),
    ColumnTransform(source=0),
    ColumnTransform(source=3, impute=-1.0),
    ColumnTransform(source=0, scaling="affine", a=0.0222222222222, b=-0.5111111111),
    ColumnTransform(source=2, impute=0.1, scaling="affine", a=-3.0, b=1e-3),
    ColumnTransform(source=4, scaling="standardize", a=0.0, b=0.3),
))  # raw column 1 is read by no model column; raw 0 twice


def test_transforms_match_the_specification_bit_for_bit():
    model = load_unsigned(pass_through_spec(TRANSFORMS))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 100, (20000, 6)).astype(np.float32)
    x[:, 5] = rng.normal(93000, 2000, 20000)
    imputed = np.zeros(x.shape, dtype=bool)
    imputed[:, [2, 3, 5]] = rng.random((20000, 3)) < 0.1
    x[imputed] = np.nan
    x[:, 1] = np.inf  # never read
    got = model.score(x)
    want = reference_transform(TRANSFORMS, x)
    assert np.isfinite(want).all()
    assert np.array_equal(got, want.astype(np.float64))


def test_without_imputation_nan_stays_nan():
    transforms = Transforms(2, (ColumnTransform(source=1, scaling="standardize", a=1.0, b=2.0),))
    model = load_unsigned(pass_through_spec(transforms))
    got = model.score(np.array([[0.0, np.nan], [np.nan, 3.0]], dtype=np.float32))[:, 0]
    assert np.isnan(got[0]) and got[1] == 1.0


def test_scaling_overflow_rounds_to_infinity():
    transforms = Transforms(1, (ColumnTransform(source=0, scaling="affine", a=1e300, b=0.0),))
    model = load_unsigned(pass_through_spec(transforms))
    got = model.score(np.array([[1.0], [-1.0], [0.0], [1e-300]], dtype=np.float32))[:, 0]
    assert got[0] == np.inf and got[1] == -np.inf and got[2] == 0.0 and got[3] == 0.0


def test_trees_read_transformed_columns():
    """The golden forest behind transforms scores like the plain forest on transformed rows."""
    forest_spec = golden_models.tiny_forest_spec()
    transforms = Transforms(4, (ColumnTransform(source=3, impute=0.25),
                                ColumnTransform(source=0, scaling="affine", a=2.0, b=-0.5),
                                ColumnTransform(source=1, impute=0.0, scaling="standardize",
                                                a=1.0, b=4.0)))
    spec = dataclasses.replace(forest_spec, inputs=forest_spec.inputs + (Variable("extra"),),
                               transforms=transforms)
    with_transforms = load_unsigned(spec)
    plain = load_unsigned(forest_spec)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (5000, 4)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    assert np.array_equal(with_transforms.score(x), plain.score(reference_transform(transforms, x)))
    assert with_transforms.format_version == (1, 1) and plain.format_version == (1, 0)
    assert [s[0] for s in with_transforms.sections()] == ["META", "XFRM", "FRST", "SIGN"]


def test_raw_inputs_are_what_the_caller_passes():
    model = load_unsigned(pass_through_spec(TRANSFORMS))
    assert model.input_names == tuple(f"raw{i}" for i in range(6))
    assert len(model.output_names) == 6
    with pytest.raises(pyastore.InputError, match="6"):
        model.score(np.zeros((2, 5), dtype=np.float32))
    by_name = model.score({f"raw{i}": float(i) for i in range(6)})
    assert list(by_name) == [f"c{j}" for j in range(6)]


def test_exported_missing_value_policies():
    pytest.importorskip("sklearn")
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from trainer.export import export_model

    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 4))
    x[:, 2] = np.nan  # no value at fit: the imputer drops the column
    y = (x[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = make_pipeline(SimpleImputer(), StandardScaler(),
                                 MLPClassifier(hidden_layer_sizes=(5,), max_iter=50,
                                               random_state=0)).fit(x, y)
    spec = export_model(pipeline, feature_names=["a", "b", "dropped", "d"])
    assert [v.missing for v in spec.inputs] == ["impute", "impute", "as_missing", "impute"]
    assert [c.source for c in spec.transforms.columns] == [0, 1, 3]
    model = load_unsigned(spec)
    rows = rng.normal(size=(1000, 4))
    rows[rng.random(rows.shape) < 0.3] = np.nan
    rows = rows.astype(np.float32).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pipeline.predict_proba(rows)[:, 1]
    assert np.abs(model.score(rows)[:, 0] - want).max() <= 1e-5
    assert model.meta["transforms"][2]["input"] == "d"
    plain = load_unsigned(export_model(pipeline[-1]))
    assert {v["missing"] for v in plain.meta["inputs"]} == {"error"}
