"""The fraud pipeline: data loading, honesty of the split, generators, metrics, CLI."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("xgboost")
pytest.importorskip("imblearn")

import pyastore  # noqa: E402
from pyastore.errors import InputError, UsageError  # noqa: E402
from trainer import data, fraud, metrics  # noqa: E402
from trainer.cli import main as train_main  # noqa: E402
from trainer.synth import baselines, capsnet  # noqa: E402

BUNDLED_SHA256 = "9c404f441561fb15a9cb9362033f5cbb8970f37d0f85f5cc05bfc6fdc4425eff"
FAST = fraud.FraudConfig(epochs=3, n_trees=10, progress=False)


@pytest.fixture(autouse=True)
def one_torch_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    path = data.write_bundled(tmp_path_factory.mktemp("data") / "bundled.csv")
    return data.load_csv(path, "fraud")


def test_bundled_data_is_reproducible(bundled):
    assert hashlib.sha256(data.bundled_fraud_csv()).hexdigest() == BUNDLED_SHA256
    assert bundled.sha256 == BUNDLED_SHA256
    assert bundled.x.shape == (6000, 12) and 150 < bundled.y.sum() < 250
    assert np.isnan(bundled.x).any()


def test_load_csv_errors(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(InputError, match=r"column 'b', data row 2: 'x' is not a number"):
        data.load_csv(path, "label")
    with pytest.raises(UsageError, match="--target: no column named 'y'"):
        data.load_csv(path, "y")
    path.write_text("a,label\n1,0\n2,yes\n")
    with pytest.raises(InputError, match="target column 'label' is not numeric"):
        data.load_csv(path, "label")
    path.write_text("a,label\n1,0\n2,\n")
    with pytest.raises(InputError, match="missing a value in data row 2"):
        data.load_csv(path, "label")
    path.write_text("a,label\n1,0\n2,2\n")
    with pytest.raises(InputError, match="both classes 0 and 1"):
        data.load_csv(path, "label")
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        data.load_csv(path, "label")
    with pytest.raises(UsageError, match="no such file"):
        data.load_csv(tmp_path / "nope.csv", "label")


def test_load_csv_bom_and_drop(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffid,a,label\n7,1.5,0\n8,2.5,1\n".encode("utf-8"))
    dataset = data.load_csv(path, "label", drop=("id",))
    assert dataset.feature_names == ("a",) and dataset.x.tolist() == [[1.5], [2.5]]
    with pytest.raises(UsageError, match="--drop: no column named 'zzz'"):
        data.load_csv(path, "label", drop=("zzz",))


def test_test_rows_never_touch_balancing_or_synthesis(bundled, monkeypatch):
    seen = []
    original = capsnet.CapsNetGenerator.fit

    def spy(self, x, y):
        seen.append(np.array(x))
        return original(self, x, y)

    monkeypatch.setattr(capsnet.CapsNetGenerator, "fit", spy)
    result = fraud.run_variant(bundled, replace(FAST, augment="capsnet"), seed=3)
    train_index, test_index = fraud.split(bundled, 0.5, 3)
    assert np.array_equal(result.test_index, test_index)
    assert not set(train_index) & set(test_index)
    training = result.training
    real = ~training.synthetic & ~training.duplicated
    assert np.array_equal(
        np.nan_to_num(training.x[real], nan=-7.0), np.nan_to_num(bundled.x[train_index], nan=-7.0)
    )
    assert training.synthetic.sum() == bundled.y[train_index].sum()  # ratio 1
    assert (training.y[training.synthetic] == 1).all()
    # the generator saw only training rows (imputed): no test row is among them
    test_rows = {tuple(np.nan_to_num(r, nan=-7.0)) for r in bundled.x[test_index]}
    generator_rows = {tuple(r) for r in seen[0]}
    assert len(seen[0]) == len(training.x) - training.synthetic.sum()
    assert not (
        generator_rows
        & test_rows - {tuple(np.nan_to_num(r, nan=-7.0)) for r in bundled.x[train_index]}
    )
    # evaluation used exactly the untouched test rows
    assert np.allclose(result.scores, result.model.predict_proba(bundled.x[test_index])[:, 1])


@pytest.mark.parametrize("augment", ["none", "smote", "random"])
def test_variants_add_the_right_rows(bundled, augment):
    result = fraud.run_variant(bundled, replace(FAST, augment=augment), seed=1)
    expected = 0 if augment == "none" else bundled.y[fraud.split(bundled, 0.5, 1)[0]].sum()
    assert result.training.synthetic.sum() == expected
    assert 0.5 < result.metrics["roc_auc"] <= 1.0


def test_capsnet_pieces():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    v = capsnet.squash(s)
    assert torch.allclose(v[0].norm(), torch.tensor(25.0 / 26.0))
    assert torch.allclose(v[0] / v[0].norm(), torch.tensor([0.6, 0.8]))
    assert v[1].abs().sum() == 0
    lengths = torch.tensor([[0.95, 0.05], [0.5, 0.5]])
    loss = capsnet.margin_loss(lengths, torch.tensor([0, 1]))
    expected = (0.0 + 0.0) / 2 + ((0.9 - 0.5) ** 2 + 0.5 * (0.5 - 0.1) ** 2) / 2
    assert float(loss) == pytest.approx(expected)


def test_capsnet_learns_and_generates_deterministically():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (300, 5)), rng.normal(2.5, 1, (300, 5))])
    y = np.array([0] * 300 + [1] * 300)
    config = capsnet.CapsNetConfig(epochs=15, progress=False, seed=4)
    generator = capsnet.CapsNetGenerator(config).fit(x, y)
    assert generator.history[-1] < generator.history[0]
    scores = generator.class_scores(x)
    assert ((scores[:, 1] > scores[:, 0]) == y).mean() > 0.9  # capsule lengths classify
    rows = generator.generate(x[y == 1], 50)
    assert rows.shape == (50, 5) and np.isfinite(rows).all()
    assert abs(rows.mean() - 2.5) < 1.0  # decoded frauds resemble frauds
    again = capsnet.CapsNetGenerator(config).fit(x, y).generate(x[y == 1], 50)
    assert np.array_equal(rows, again)


def test_baselines():
    frauds = np.array([[0.0, 10.0], [1.0, 20.0], [0.5, 15.0]])
    rows = baselines.random_rows(frauds, 200, seed=1)
    assert rows.shape == (200, 2)
    assert (rows >= frauds.min(0)).all() and (rows <= frauds.max(0)).all()
    x = np.vstack([np.zeros((20, 2)), frauds, frauds + 0.1])
    y = np.array([0] * 20 + [1] * 6)
    assert baselines.smote_rows(x, y, 9, seed=0).shape == (9, 2)


def test_metrics_and_noise_verdict():
    y = np.array([0] * 95 + [1] * 5)
    perfect = np.concatenate([np.zeros(95), np.ones(5)])
    result = metrics.evaluate(y, perfect)
    assert (
        result["pr_auc"]
        == result["roc_auc"]
        == result["best_f1"]
        == result["recall_at_5pct"]
        == 1.0
    )
    assert result["recall_at_1pct"] == pytest.approx(0.2)
    assert "within seed-to-seed noise" in metrics.noise_verdict(
        [0.5, 0.6, 0.55], [0.52, 0.58, 0.56]
    )
    assert metrics.noise_verdict([0.5, 0.6, 0.55], [0.7, 0.8, 0.75]).startswith("better by +0.2000")
    assert metrics.noise_verdict([0.5], [0.6]) == "too few seeds to tell from noise"


def test_cli_end_to_end_export_scores_like_the_library(tmp_path, capsys):
    from chain.log import Log
    from chain.proof import verify_bundle

    key, pub = pyastore.keys.keygen(tmp_path / "publisher")
    log_key, log_pub = pyastore.keys.keygen(tmp_path / "log")
    Log.init(str(tmp_path / "models.log"), str(log_key)).close()
    out = tmp_path / "fraud.astore"
    code = train_main(["fraud", "--out", str(out), "--sign-key", str(key), "--epochs", "2",
                       "--trees", "20", "--quiet", "--report", str(tmp_path / "report"),
                       "--chain", str(tmp_path / "models.log")])
    assert code == 0
    err = capsys.readouterr().err
    assert "max |difference|" in err
    model = pyastore.load(out, trusted_keys=[pub])
    proof = (tmp_path / "fraud.astore.proof").read_bytes()
    assert (
        verify_bundle(proof, model.store_key, pyastore.keys.load_public_key(log_pub)).record.index
        == 0
    )
    meta = model.meta
    assert meta["provenance"]["training_data_sha256"] == BUNDLED_SHA256
    assert meta["provenance"]["synthetic_method"] == "capsnet"
    assert meta["provenance"]["synthetic_parameters"]["epochs"] == 2
    assert list(model.input_names) == list(
        data.load_csv(data.write_bundled(tmp_path / "b.csv"), "fraud").feature_names
    )
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(report["variants"]) == {"capsnet"}
    for name in ("pr_curve.png", "f1_vs_cutoff.png", "roc_curve.png", "report.md"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_cli_compare_writes_a_report_over_seeds(tmp_path):
    code = train_main(
        [
            "fraud",
            "--compare",
            "--seeds",
            "3",
            "--epochs",
            "2",
            "--trees",
            "10",
            "--quiet",
            "--report",
            str(tmp_path / "r"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert set(report["variants"]) == set(fraud.AUGMENTATIONS)
    assert report["variants"]["capsnet"]["metrics"]["pr_auc"]["n"] == 3
    assert "versus_baseline" in report["variants"]["smote"]
    text = (tmp_path / "r" / "report.md").read_text()
    assert "±" in text and "Against the baseline" in text


@pytest.mark.parametrize("args, code, words", [
    (["fraud", "--data", "/nonexistent.csv", "--target", "y", "--compare"], 2, "no such file"),
    (["fraud", "--out", "x.astore"], 2, "--sign-key"),
    (["fraud", "--data", "x.csv"], 2, "--target"),
    (["fraud", "--test-size", "1.5", "--compare"], 2, "--test-size"),
])
def test_cli_errors(args, code, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train_main(args) == code
    assert words in capsys.readouterr().err
