"""Differential tests: exported MLPs (and pipelines with feature transforms) score like the
library they came from, on 100,000 rows.

* probabilities within 1e-5 absolute of ``predict_proba`` / torch in eval mode, and the same
  decision (argmax, or the cutoff for binary) except for rows within 1e-6 of a tie;
* regression values and embeddings within 1e-5 times the output's scale;
* tree pipelines (transforms + trees) within float32 leaf rounding (1e-6): the transforms
  themselves are bit-exact (tests/unit/pyastore/test_mlp_transforms.py).

Rows come from the bank personal-loan data (``../shared/data/bank_personal_loan``, resampled
with replacement and 5% of the values set to NaN) and from a random generator with the same
column scales. Everything is seeded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
torch = pytest.importorskip("torch")

import pyastore  # noqa: E402
from pyastore import format as fmt  # noqa: E402
from trainer.export import export_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BANK_CSV = Path(os.environ.get(
    "PYASTORE_BANK_CSV",
    ROOT.parent / "shared" / "data" / "bank_personal_loan" / "Bank_Personal_Loan_Modelling.csv"))
N_ROWS = 100_000
PROBABILITY_TOLERANCE = 1e-5
TIE = 1e-6


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch / BLAS thread: same results, and fair to a shared machine."""
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of deliberately short fits
        yield


def load_unsigned(spec) -> pyastore.Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyastore.load(fmt.write(spec, None, created="2026-01-01T00:00:00Z"),
                             allow_unsigned=True)


def bank():
    """(features DataFrame, loan target, education target, column names)."""
    pd = pytest.importorskip("pandas")
    if not BANK_CSV.exists():
        pytest.skip(f"bank data not found at {BANK_CSV}")
    frame = pd.read_csv(BANK_CSV)
    loan = frame.pop("Personal Loan").to_numpy()
    frame = frame.drop(columns=["ID"])
    education = frame["Education"].to_numpy()
    return frame.astype(np.float64), loan, education


def with_nan(x: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    x = x.copy()
    x[np.random.default_rng(seed).random(x.shape) < fraction] = np.nan
    return x


def scoring_rows(frame, seed: int, nan_fraction: float = 0.05) -> dict[str, np.ndarray]:
    """100,000 bank rows (resampled) and 100,000 random rows, float32-representable float64."""
    rng = np.random.default_rng(seed)
    data = frame.to_numpy(dtype=np.float64)
    resampled = data[rng.integers(0, len(data), N_ROWS)]
    random = rng.normal(data.mean(0), data.std(0) * 1.5, size=(N_ROWS, data.shape[1]))
    return {name: with_nan(rows, nan_fraction, seed + i).astype(np.float32).astype(np.float64)
            for i, (name, rows) in enumerate((("bank", resampled), ("random", random)))}


def assert_probabilities(got: np.ndarray, want: np.ndarray, cutoff: float | None = None):
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= PROBABILITY_TOLERANCE
    if cutoff is not None:  # binary: one column, the positive probability
        decided = (got[:, 0] >= cutoff) != (want[:, 0] >= cutoff)
        assert not (decided & (np.abs(want[:, 0] - cutoff) > TIE)).any()
        return
    ours, theirs = got.argmax(1), want.argmax(1)
    differ = ours != theirs
    if differ.any():  # only where the library's top two are within TIE
        top2 = np.sort(want[differ], axis=1)[:, -2:]
        assert (top2[:, 1] - top2[:, 0] <= TIE).all()


def fit_pipeline(estimator, frame, target, imputer="median", scaler="standard"):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    scale = StandardScaler() if scaler == "standard" else MinMaxScaler()
    pipeline = make_pipeline(SimpleImputer(strategy=imputer), scale, estimator)
    x = with_nan(frame.to_numpy(), 0.05, 7).astype(np.float32).astype(np.float64)
    return pipeline.fit(frame.__class__(x, columns=frame.columns), target)


def test_sklearn_binary_mlp_pipeline_on_bank_rows():
    from sklearn.neural_network import MLPClassifier

    frame, loan, _ = bank()
    pipeline = fit_pipeline(MLPClassifier(hidden_layer_sizes=(10, 20, 10), max_iter=200,
                                          random_state=0), frame, loan)
    spec = export_model(pipeline, cutoff=0.3)
    model = load_unsigned(spec)
    assert model.input_names == tuple(frame.columns)
    assert model.output_names == ("P_1",)
    for rows in scoring_rows(frame, 11).values():
        got = model.score(rows)
        want = pipeline.predict_proba(rows)[:, 1:]
        assert_probabilities(got, want, cutoff=0.3)


def test_sklearn_multiclass_mlp_pipeline_minmax():
    from sklearn.neural_network import MLPClassifier

    frame, _, education = bank()
    features = frame.drop(columns=["Education"])
    pipeline = fit_pipeline(MLPClassifier(hidden_layer_sizes=(16, 8), activation="tanh",
                                          max_iter=150, random_state=1),
                            features, education, imputer="mean", scaler="minmax")
    model = load_unsigned(export_model(pipeline))
    assert model.output_names == ("P_1", "P_2", "P_3")
    for rows in scoring_rows(features, 12).values():
        assert_probabilities(model.score(rows), pipeline.predict_proba(rows))


def test_sklearn_mlp_regressor_and_logistic_hidden_layers():
    from sklearn.neural_network import MLPRegressor

    frame, _, _ = bank()
    target = frame["CCAvg"].to_numpy()
    features = frame.drop(columns=["CCAvg"])
    pipeline = fit_pipeline(MLPRegressor(hidden_layer_sizes=(12,), activation="logistic",
                                         max_iter=150, random_state=2), features, target)
    model = load_unsigned(export_model(pipeline))
    assert model.meta["score_rules"]["task"] == "regression"
    for rows in scoring_rows(features, 13).values():
        want = pipeline.predict(rows)
        got = model.score(rows)[:, 0]
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_sklearn_mlp_without_transforms_refuses_missing_values():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 6))
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(int)
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=3).fit(x, y)
    model = load_unsigned(export_model(mlp, feature_names=list("abcdef")))
    rows = rng.normal(size=(N_ROWS, 6)).astype(np.float32).astype(np.float64)
    assert_probabilities(model.score(rows), mlp.predict_proba(rows)[:, 1:], cutoff=0.5)
    assert {v["missing"] for v in model.meta["inputs"]} == {"error"}
    rows[5, 2] = np.nan
    with pytest.raises(pyastore.InputError, match="missing value"):
        model.score(rows)


@pytest.mark.parametrize("kind", ["RandomForestClassifier", "GradientBoostingClassifier",
                                  "ExtraTreesClassifier", "XGBClassifier"])
def test_tree_pipelines_read_transformed_columns(kind):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        RandomForestClassifier,
    )

    frame, loan, _ = bank()
    if kind == "XGBClassifier":
        xgboost = pytest.importorskip("xgboost")
        estimator = xgboost.XGBClassifier(n_estimators=20, max_depth=4, n_jobs=1)
    else:
        estimator = {"RandomForestClassifier": RandomForestClassifier,
                     "GradientBoostingClassifier": GradientBoostingClassifier,
                     "ExtraTreesClassifier": ExtraTreesClassifier}[kind](
            n_estimators=20, max_depth=5, random_state=4)
    pipeline = fit_pipeline(estimator, frame, loan, imputer="mean")
    spec = export_model(pipeline)
    assert spec.forest is not None and spec.transforms is not None
    model = load_unsigned(spec)
    assert model.format_version == (1, 1)
    for rows in scoring_rows(frame, 14).values():
        got = model.score(rows)
        want = pipeline.predict_proba(rows)[:, 1:]
        assert np.abs(got - want).max() <= 1e-6


def bank_torch_net(activation: str, head: str) -> torch.nn.Sequential:
    """An 11-input network trained briefly on standardized bank rows (any weights would do;
    trained ones give realistic magnitudes)."""
    nn = torch.nn
    hidden = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.05),
              "sigmoid": nn.Sigmoid}[activation]
    out = {"sigmoid": [nn.Linear(10, 1), nn.Sigmoid()],
           "softmax2": [nn.Linear(10, 2), nn.Softmax(dim=1)],
           "softmax3": [nn.Linear(10, 3), nn.Softmax(dim=1)]}[head]
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(11, 10), nn.BatchNorm1d(10), hidden(), nn.Dropout(0.1),
                         nn.Linear(10, 20), hidden(), nn.Linear(20, 10), nn.BatchNorm1d(10),
                         hidden(), *out)


def train(net, x: np.ndarray, y: np.ndarray, classes: int) -> None:
    inputs = torch.from_numpy(x.astype(np.float32))
    target = torch.from_numpy(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for _ in range(15):
        for start in range(0, len(x), 500):
            optimizer.zero_grad()
            out = net(inputs[start:start + 500])
            if classes == 1:
                loss = torch.nn.functional.binary_cross_entropy(
                    out[:, 0], target[start:start + 500].float())
            else:
                loss = torch.nn.functional.nll_loss(torch.log(out + 1e-9),
                                                    target[start:start + 500].long())
            loss.backward()
            optimizer.step()
    net.eval()


@pytest.mark.parametrize("activation, head", [("relu", "sigmoid"), ("tanh", "softmax2"),
                                              ("leaky_relu", "softmax3"), ("sigmoid", "sigmoid")])
def test_torch_networks_on_bank_rows(activation, head):
    frame, loan, education = bank()
    features = frame.drop(columns=["Education"]) if head == "softmax3" else frame.drop(
        columns=["ZIP Code"])
    target = education - 1 if head == "softmax3" else loan
    data = features.to_numpy()
    mean, std = data.mean(0), data.std(0)
    net = bank_torch_net(activation, head)
    train(net, (data - mean) / std, target, 1 if head == "sigmoid" else int(head[-1]))
    labels = (1, 2, 3) if head == "softmax3" else ("no", "yes")
    spec = export_model(net, feature_names=list(features.columns), class_labels=labels)
    model = load_unsigned(spec)
    for rows in scoring_rows(features, 15, nan_fraction=0.0).values():
        x = ((rows - mean) / std).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).double().numpy()
        got = model.score(x)
        if head == "softmax3":
            assert_probabilities(got, want)
        else:
            assert_probabilities(got, want[:, -1:], cutoff=0.5)


def test_torch_encoder_layers_match_the_hidden_representation():
    nn = torch.nn
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 64),
                        nn.BatchNorm1d(64), nn.Tanh(), nn.Linear(64, 1), nn.Sigmoid())
    with torch.no_grad():
        net[4].running_mean.uniform_(-0.5, 0.5)
        net[4].running_var.uniform_(0.5, 2.0)
    net.eval()
    spec = export_model(net, encoder_layers=2)
    assert spec.rules.task == "embedding"
    model = load_unsigned(spec)
    assert model.output_names == tuple(f"h{k}" for k in range(64))
    x = np.random.default_rng(16).normal(size=(N_ROWS, 30)).astype(np.float32)
    with torch.no_grad():
        want = net[:6](torch.from_numpy(x)).double().numpy()
    assert np.abs(model.score(x) - want).max() <= 1e-5
    with pytest.raises(pyastore.UsageError, match="embedding"):
        model.predict(x[:2])


def test_sklearn_encoder_layers_match_a_manual_forward_pass():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(17)
    x = rng.normal(size=(1500, 8))
    y = (x[:, :3].sum(1) > 0).astype(int)
    mlp = MLPClassifier(hidden_layer_sizes=(16, 12, 4), max_iter=80, random_state=7).fit(x, y)
    model = load_unsigned(export_model(mlp, encoder_layers=2))
    rows = rng.normal(size=(N_ROWS, 8)).astype(np.float32).astype(np.float64)
    hidden = rows
    for weights, bias in zip(mlp.coefs_[:2], mlp.intercepts_[:2]):
        hidden = np.maximum(hidden @ weights + bias, 0.0)
    assert np.abs(model.score(rows) - hidden).max() <= 1e-5 * max(1.0, np.abs(hidden).max())
