"""Categorical columns from the training CSV to the device: detection and the --categorical /
--numeric overrides, vocabularies of the training rows only, and the end-to-end differential:
``pyastore score`` on the raw CSV gives the library's predictions on the encoded matrix."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest
from claims_data import MAKES, claims_csv

import pyastore
from pyastore.cli import main as pyastore_main
from pyastore.errors import InputError, UsageError
from pyastore.keys import SigningKey
from trainer import categorical, data, fraud
from trainer.cli import main as train_main

KEY = SigningKey(bytes(range(1, 33)))


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    path = tmp_path_factory.mktemp("claims") / "claims.csv"
    path.write_bytes(claims_csv(1200, seed=7))
    return path


def test_text_columns_are_detected_and_overrides_are_matched_like_drop(claims):
    dataset = data.load_csv(claims, "fraud", categorical=[])
    assert dataset.categorical_names == ("Month", "Make", "PolicyType")
    assert np.isnan(dataset.x[:, 0]).all()
    policies = set(dataset.text[2].tolist())
    assert "Sedan - All Perils" in policies and " Sedan - All Perils\t" not in policies
    assert None in set(dataset.text[1].tolist())  # the empty Make cells are missing
    forced = data.load_csv(claims, "fraud", categorical=[" AreaCode ", '"Month"'])
    assert forced.categorical_names == ("Month", "Make", "PolicyType", "AreaCode")
    assert set(forced.text[3].tolist()) == {"415", "510", "650", "707", "831", "925"}
    with pytest.raises(InputError, match=r"column 'Make', data row 1: 'Ford' is not a number"):
        data.load_csv(claims, "fraud", categorical=[], numeric=["Make"])
    with pytest.raises(InputError, match="is not a number"):
        data.load_csv(claims, "fraud")  # categorical columns off: the former behaviour
    with pytest.raises(UsageError, match="--categorical: no column named 'Mak'.*did you mean "
                                         "'Make'"):
        data.load_csv(claims, "fraud", categorical=["Mak"])
    with pytest.raises(UsageError, match="named by both --categorical and --numeric"):
        data.load_csv(claims, "fraud", categorical=["Make"], numeric=["Make"])


def test_vocabulary_is_learned_on_the_training_rows_only(claims):
    dataset = data.load_csv(claims, "fraud", categorical=[])
    train, test = fraud.split(dataset, 0.5, 0)
    x, vocabularies = dataset.encoded(train)
    makes = vocabularies["Make"]
    training_makes = {v for v in dataset.text[1][train].tolist() if v is not None}
    assert set(makes.categories) == training_makes
    assert list(makes.categories) == sorted(training_makes, key=lambda t: t.encode())
    test_only = {v for v in dataset.text[1][test].tolist() if v is not None} - training_makes
    assert test_only, "the data set should leave some makes in the test rows only"
    for row in test:
        text = dataset.text[1][row]
        if text is None or text in test_only:
            assert math.isnan(x[row, 1])
        else:
            assert x[row, 1] == makes.categories.index(text)
    ordered = categorical.learn(dataset.text[1][train], dataset.y[train], "target")
    assert set(ordered.categories) == training_makes and ordered != makes


def _read_scores(path):
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle)]


@pytest.mark.parametrize("algo,splits", [("xgboost", "codes"), ("xgboost", "native"),
                                         ("lightgbm", "native")])
def test_train_then_score_the_raw_csv_equals_the_library(claims, tmp_path, algo, splits):
    """The differential: train and export in-process, then ``pyastore score`` the raw CSV
    (text cells, padded texts, empty cells, makes the training rows never had): every
    score equals the library's prediction on the encoded matrix to 1e-6 -- with the trees
    splitting on codes as numbers, or with the library's own categorical splits, which the
    container then holds as set-membership splits."""
    dataset = data.load_csv(claims, "fraud", categorical=["AreaCode"])
    config = fraud.FraudConfig(algo=algo, augment="none", n_trees=20, progress=False,
                               category_splits=splits)
    result = fraud.run_variant(dataset, config, 0)
    container, check = fraud.export(result, dataset, config, KEY,
                                    created="2026-01-01T00:00:00Z")
    assert check["max_abs_difference_vs_library"] <= 1e-6
    sets = pyastore.load(container, trusted_keys=[KEY.public_key],
                         use_default_trust=False).meta["payload"].get("categorical_splits", 0)
    assert (sets > 0) == (splits == "native"), sets
    model_path = tmp_path / "claims.astore"
    model_path.write_bytes(container)
    (tmp_path / "k.pub").write_text(f"ed25519-public:{KEY.public_key.hex()}\n")
    out = tmp_path / "scores.csv"
    assert pyastore_main(["score", str(model_path), str(claims), "-o", str(out),
                          "--trust", str(tmp_path / "k.pub")]) == 0
    scores = np.array([float(row["P_1"]) for row in _read_scores(out)])
    library = result.model.predict_proba(result.x.astype(np.float32))[:, 1]
    assert len(scores) == len(library) == 1200
    assert np.max(np.abs(scores - library)) <= 1e-6
    unseen = [i for i in result.test_index
              if dataset.text[1][i] is not None
              and dataset.text[1][i] not in result.categorical["Make"].categories]
    missing = [i for i in range(1200) if dataset.text[1][i] is None]
    assert unseen and missing  # both were among the compared rows
    model = pyastore.load(container, trusted_keys=[KEY.public_key], use_default_trust=False)
    assert [entry.get("type") for entry in model.meta["inputs"]] == [
        "categorical", "categorical", "categorical", "categorical", "float", "float"]
    one = model.score({"Month": "Dec", "Make": MAKES[0], "PolicyType": "Sport - Collision",
                       "AreaCode": 650, "Amount": 1500.0, "Age": 40})
    row = [MAKES[0], "Dec", "Sport - Collision", "650"]
    encoded = [result.categorical[name].code(text) for name, text in
               zip(("Make", "Month", "PolicyType", "AreaCode"), row)]
    x = np.array([[encoded[1], encoded[0], encoded[2], encoded[3], 1500.0, 40.0]],
                 dtype=np.float32)
    assert abs(one["P_1"] - float(result.model.predict_proba(x)[0, 1])) <= 1e-6


def test_pyastore_train_fraud_with_categorical_columns(claims, tmp_path, capsys):
    key = tmp_path / "publisher"
    assert pyastore_main(["keygen", str(key)]) == 0
    out = tmp_path / "claims.astore"
    code = train_main(["fraud", "--data", str(claims), "--target", "fraud", "--augment", "none",
                       "--trees", "5", "--categorical", "AreaCode", "--out", str(out),
                       "--sign-key", f"{key}.key", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert ("categorical columns: 'Month' (12 distinct), 'Make' (15 distinct), 'PolicyType' "
            "(5 distinct), 'AreaCode' (6 distinct)") in err
    assert pyastore_main(["describe", str(out), "--trust", f"{key}.pub"]) == 0
    text = capsys.readouterr().out
    assert any(line.split()[:5] == ["1", "Make", "categorical", "categorical", "14"]
               or line.split()[:5] == ["1", "Make", "categorical", "categorical", "15"]
               for line in text.splitlines())
    assert train_main(["fraud", "--data", str(claims), "--target", "fraud", "--numeric", "Make",
                       "--augment", "none", "--compare", "--seeds", "1", "--quiet"]) == 5
    assert "'Ford' is not a number" in capsys.readouterr().err
    assert train_main(["fraud", "--data", str(claims), "--target", "fraud", "--algo", "rf",
                       "--category-splits", "native", "--augment", "none", "--compare",
                       "--seeds", "1", "--quiet"]) == 2
    assert ("--category-splits native needs --algo xgboost or lightgbm"
            in capsys.readouterr().err)
    native = tmp_path / "native.astore"
    assert train_main(["fraud", "--data", str(claims), "--target", "fraud", "--augment", "none",
                       "--trees", "5", "--category-splits", "native", "--algo", "lightgbm",
                       "--out", str(native), "--sign-key", f"{key}.key", "--quiet"]) == 0
    capsys.readouterr()
    assert pyastore_main(["describe", str(native), "--trust", f"{key}.pub"]) == 0
    assert re.search(r"payload: .*categorical_splits [1-9]", capsys.readouterr().out)


@pytest.mark.parametrize("augment,balance", [("smote", "random"), ("random", "random"),
                                             ("capsnet", "random"), ("none", "smote")])
def test_synthetic_and_balancing_rows_hold_only_training_categories(claims, augment, balance):
    dataset = data.load_csv(claims, "fraud", categorical=("AreaCode",))
    config = fraud.FraudConfig(augment=augment, balance=balance, epochs=3, n_trees=5,
                               progress=False)
    result = fraud.run_variant(dataset, config, seed=0)
    made = result.training.synthetic | result.training.duplicated
    if augment == "none":
        made = result.training.duplicated
    assert made.sum() > 0
    train_x = result.x[np.isin(np.arange(len(dataset.y)), result.test_index, invert=True)]
    for column in sorted(dataset.text):
        known = set(train_x[:, column][~np.isnan(train_x[:, column])].tolist())
        new = result.training.x[made, column]
        assert set(new.tolist()) <= known, (dataset.feature_names[column], augment, balance)
        assert np.array_equal(new, np.round(new))  # codes, never a value between two
    numeric = [c for c in range(len(dataset.feature_names)) if c not in dataset.text]
    if augment in ("smote", "capsnet"):  # the numbers are still made up, not copied
        synthetic = result.training.x[result.training.synthetic][:, numeric]
        assert len(np.unique(synthetic, axis=0)) > len(synthetic) // 2


def test_the_baselines_keep_categorical_columns_on_codes():
    from trainer.synth.baselines import nearest_codes, random_rows, smote_rows

    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=200), rng.integers(0, 4, 200) * 2.0,
                         rng.normal(size=200)])
    y = (rng.random(200) < 0.2).astype(int)
    smote = smote_rows(x, y, 50, categorical=[1])
    assert set(smote[:, 1].tolist()) <= {0.0, 2.0, 4.0, 6.0}
    assert len(np.unique(smote[:, 0])) > 40  # the continuous column is interpolated
    plain = smote_rows(x, y, 50)
    assert not set(plain[:, 1].tolist()) <= {0.0, 2.0, 4.0, 6.0}  # what SMOTE alone does
    every = smote_rows(x[:, [1]], y, 20, categorical=[0])  # SMOTE-N: every column a category
    assert set(every[:, 0].tolist()) <= {0.0, 2.0, 4.0, 6.0}
    frauds = x[y == 1]
    drawn = random_rows(frauds, 100, categorical=[1])
    assert set(drawn[:, 1].tolist()) <= set(frauds[:, 1].tolist())
    assert np.array_equal(random_rows(frauds, 100)[:, 0], drawn[:, 0])  # numbers unchanged
    snapped = nearest_codes(np.array([[0.0, -3.0, 0.0], [0.0, 2.9, 0.0], [0.0, 3.1, 0.0],
                                      [0.0, 99.0, 0.0], [0.0, 3.0, 1.5]]),
                            [1], [np.array([6.0, 0.0, 2.0, 4.0])])
    assert snapped[:, 1].tolist() == [0.0, 2.0, 4.0, 6.0, 2.0]  # a tie goes to the lower
    assert snapped[:, 2].tolist() == [0.0, 0.0, 0.0, 0.0, 1.5]
    assert nearest_codes(np.array([[7.7]]), [0], [np.array([5.0])]).tolist() == [[5.0]]
