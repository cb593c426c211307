"""The categorical-encoding measurement: every encoding and library runs on the same splits,
native splits are what the trainer ships (the codes with the library's own splits), and the
command prints what docs/EXPERIMENTS.md quotes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from claims_data import claims_csv

from trainer import encoding_experiment


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    path = tmp_path_factory.mktemp("claims") / "claims.csv"
    path.write_bytes(claims_csv(1500, seed=3))
    return path


def test_native_matrix_is_the_codes_with_their_columns_named(claims):
    columns, y = encoding_experiment._frame(str(claims), "fraud", None, ["AreaCode"], [])
    train = np.arange(0, len(y), 2)
    by_bytes, none = encoding_experiment._matrix(columns, y, train, "bytes")
    native, categorical = encoding_experiment._matrix(columns, y, train, "native")
    onehot, _ = encoding_experiment._matrix(columns, y, train, "onehot")
    np.testing.assert_array_equal(native, by_bytes)
    assert none == [] and categorical == [0, 1, 2, 3]  # Month, Make, PolicyType, AreaCode
    assert onehot.shape[1] > native.shape[1] + 20


@pytest.mark.parametrize("algo", ["xgboost", "lightgbm"])
def test_every_encoding_is_measured_on_the_same_splits(claims, algo, capsys):
    assert encoding_experiment.main(["--data", str(claims), "--target", "fraud",
                                     "--categorical", "AreaCode", "--seeds", "2",
                                     "--algo", algo]) == 0
    out = capsys.readouterr().out
    assert f"2 seeds, {algo}" in out.splitlines()[0]
    results = json.loads(out.splitlines()[-1])
    assert list(results) == list(encoding_experiment.ENCODINGS)
    for metrics in results.values():
        assert len(metrics["pr_auc"]) == len(metrics["roc_auc"]) == 2
        assert all(0.5 < v <= 1.0 for v in metrics["roc_auc"])  # the signal is found
    # native splits change the model: its scores differ from the same codes split as numbers
    assert results["native"] != results["bytes"]
