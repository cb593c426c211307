"""What the MLP, torch and pipeline exporters refuse, each with an error that names the
problem: a container never scores differently from the model it came from."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pyastore.errors import UnsupportedModelError, UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler  # noqa: E402

from trainer.export import export_model  # noqa: E402

nn = torch.nn


@pytest.fixture(autouse=True)
def _quiet():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def data(n=200, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    return x, (x[:, 0] > 0).astype(int)


class MySequential(nn.Sequential):
    pass


class MyReLU(nn.ReLU):
    pass


def no_stats_batch_norm():
    return nn.BatchNorm1d(3, track_running_stats=False)


@pytest.mark.parametrize("network, message", [
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.GELU()), r"module 1 \(.*GELU\)"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Sequential(nn.Conv1d(1, 1, 1))),
     r"module 2\.0 \(.*Conv1d\)"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.LogSoftmax(dim=1)), "LogSoftmax"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), "softmax over dim 0"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3)),
     "batch norm folds only into the nn.Linear right before it"),
    (lambda: nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 1)), "batch norm folds only"),
    (lambda: nn.Sequential(nn.Linear(3, 3), no_stats_batch_norm()), "no running statistics"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 1)), "activation must follow an nn.Linear"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Tanh()), "one activation per layer"),
    (lambda: nn.Sequential(nn.Linear(3, 3), MyReLU()), "MyReLU"),
    (lambda: MySequential(nn.Linear(3, 1)), "MySequential.*only torch.nn.Sequential"),
    (lambda: nn.Sequential(nn.Dropout(0.5)), "no nn.Linear layer"),
    (lambda: nn.Linear(3, 1), "Linear.*only torch.nn.Sequential"),
])
def test_torch_modules_that_cannot_be_exported(network, message):
    with pytest.raises(UnsupportedModelError, match=message):
        export_model(network())


@pytest.mark.parametrize("network, options, error, message", [
    (lambda: nn.Sequential(nn.Linear(3, 4)), {}, UsageError, "say what they mean with task="),
    (lambda: nn.Sequential(nn.Linear(3, 4)), {"task": "multiclass"}, UnsupportedModelError,
     "append nn.Softmax"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=1)), {"class_labels": (1, 2)},
     UsageError, "2 class labels for 3 output units"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh()), {"task": "binary"}, UnsupportedModelError,
     "one sigmoid"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), {"task": "regression"},
     UnsupportedModelError, "one output unit"),
    (lambda: nn.Sequential(nn.Linear(3, 1), nn.Sigmoid()), {"class_labels": (0, 1, 2)},
     UsageError, "2 class labels"),
    (lambda: nn.Sequential(nn.Linear(3, 1)), {"task": "clustering"}, UsageError, "unknown task"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)),
     {"encoder_layers": 3}, UsageError, "from 1 to 2"),
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)),
     {"encoder_layers": 1, "task": "binary"}, UsageError, "embedding"),
])
def test_torch_task_and_option_errors(network, options, error, message):
    with pytest.raises(error, match=message):
        export_model(network(), **options)


def test_torch_identity_logit_is_a_margin_output():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).eval()
    spec = export_model(net, task="binary", class_labels=("ok", "fraud"), cutoff=0.75)
    assert [o.name for o in spec.outputs] == ["score_fraud"]
    assert spec.rules.cutoff == pytest.approx(np.log(3.0))


def test_sklearn_mlps_that_cannot_be_exported():
    x, y = data()
    multilabel = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(x, np.stack([y, 1 - y], 1))
    with pytest.raises(UnsupportedModelError, match="multi-label"):
        export_model(multilabel)
    multi_output = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5).fit(x, np.stack([y, y], 1))
    with pytest.raises(UnsupportedModelError, match="single-output"):
        export_model(multi_output)
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(MLPClassifier())
    fitted = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(x, y)
    with pytest.raises(UsageError, match="torch networks only"):
        export_model(fitted, task="binary")
    with pytest.raises(UsageError, match="encoder_layers applies to MLPs only"):
        export_model(RandomForestClassifier(n_estimators=2).fit(x, y), encoder_layers=1)
    with pytest.raises(UsageError, match="from 1 to 2"):
        export_model(fitted, encoder_layers=5)


@pytest.mark.parametrize("steps, message", [
    (lambda: [PolynomialFeatures(), MLPClassifier(max_iter=5)], "PolynomialFeatures"),
    (lambda: [SimpleImputer(missing_values=0.0), MLPClassifier(max_iter=5)],
     "only NaN can be imputed"),
    (lambda: [SimpleImputer(add_indicator=True), MLPClassifier(max_iter=5)], "add_indicator"),
    (lambda: [MinMaxScaler(clip=True), MLPClassifier(max_iter=5)], "clip"),
    (lambda: [StandardScaler(), SimpleImputer(), MLPClassifier(max_iter=5)],
     "one imputer, before any scaler"),
    (lambda: [StandardScaler(), MinMaxScaler(), MLPClassifier(max_iter=5)], "at most one scaler"),
    (lambda: [StandardScaler(), HistGradientBoostingClassifier(max_iter=3)], "compares in float64"),
    (lambda: [make_pipeline(StandardScaler()), MLPClassifier(max_iter=5)], "Pipeline"),
])
def test_pipelines_that_cannot_be_exported(steps, message):
    x, y = data()
    pipeline = make_pipeline(*steps()).fit(x, y)
    with pytest.raises(UnsupportedModelError, match=message):
        export_model(pipeline)


def test_a_pipeline_without_transforms_and_an_unfitted_one():
    x, y = data()
    with pytest.raises(UnsupportedModelError, match="export its final estimator"):
        export_model(make_pipeline(MLPClassifier(max_iter=5)).fit(x, y))
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        export_model(Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier())]))


def test_imputer_then_histogram_boosting_is_exact_for_float32_statistics():
    x, y = data(features=3)
    x[::5, 1] = np.nan
    pipeline = make_pipeline(SimpleImputer(strategy="constant", fill_value=0.5),
                             HistGradientBoostingClassifier(max_iter=3)).fit(x, y)
    spec = export_model(pipeline)
    assert spec.transforms is not None and spec.forest is not None
