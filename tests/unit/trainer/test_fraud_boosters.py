"""The fraud pipeline with LightGBM and CatBoost: fitted, exported, scored like the library."""

from __future__ import annotations

import re

import pytest

import pyastore
from trainer import fraud
from trainer.cli import main as train_main


@pytest.mark.parametrize("algo,library,estimator", [
    ("lightgbm", "lightgbm", "LGBMClassifier"), ("catboost", "catboost", "CatBoostClassifier")])
def test_cli_fits_and_exports(algo, library, estimator, tmp_path, capsys, monkeypatch):
    pytest.importorskip(library)
    monkeypatch.chdir(tmp_path)  # nothing may be written next to the caller
    key, pub = pyastore.keys.keygen(tmp_path / "publisher")
    out = tmp_path / "fraud.astore"
    code = train_main(["fraud", "--algo", algo, "--augment", "none", "--trees", "15",
                       "--out", str(out), "--sign-key", str(key), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    difference = float(re.search(r"max \|difference\| (\S+)", err).group(1))
    assert difference <= 1e-6, err
    model = pyastore.load(out, trusted_keys=[pub])
    assert model.meta["algorithm"]["library"] == library
    assert model.meta["algorithm"]["estimator"] == estimator
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fraud.astore", "publisher.key",
                                                          "publisher.pub"]


def test_algorithms_are_known():
    assert {"lightgbm", "catboost"} <= set(fraud.ALGORITHMS)
    for algo in ("lightgbm", "catboost"):
        fraud.FraudConfig(algo=algo).check()
