"""Leak warnings (``trainer.leaks``): a column that alone separates the label, or one that
follows the row order when the row order follows the label, is named with its ``--drop``.

The real-looking data is the public credit-card sample (``../shared/data/creditcard_sample``,
or ``PYASTORE_CREDITCARD_CSV``; the tests that need it skip without it): 5,492 rows, all 492
frauds first, then 5,000 legitimate rows -- an index column added to it is exactly the leak
of a file sorted by the label.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from trainer import data, leaks

ROOT = Path(__file__).resolve().parents[3]
CREDITCARD_CSV = Path(os.environ.get(
    "PYASTORE_CREDITCARD_CSV",
    ROOT.parent / "shared" / "data" / "creditcard_sample" / "creditcard_sample_5492.csv"))


@pytest.fixture(scope="module")
def creditcard_text() -> str:
    if not CREDITCARD_CSV.exists():
        pytest.skip(f"credit-card sample not found at {CREDITCARD_CSV}")
    return CREDITCARD_CSV.read_text()


def with_columns(text: str, **columns) -> str:
    """The CSV ``text`` with columns added in front: name -> one value per data row."""
    lines = text.splitlines()
    names = list(columns)
    out = [",".join(names + [lines[0]])]
    for i, line in enumerate(lines[1:]):
        out.append(",".join([repr(columns[n][i]) for n in names] + [line]))
    return "\n".join(out) + "\n"



def test_column_roc_auc_is_sklearns_and_nan_safe():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.2).astype(int)
    x = np.column_stack([rng.normal(size=500), np.round(rng.normal(size=500)),  # ties
                         y + rng.normal(scale=0.5, size=500)])
    assert np.allclose(leaks.column_roc_auc(x, y), [roc_auc_score(y, c) for c in x.T])
    missing_marks_fraud = np.where(y == 1, np.nan, rng.normal(size=500))
    assert leaks.column_roc_auc(missing_marks_fraud[:, None], y)[0] in (0.0, 1.0)
    assert leaks.column_roc_auc(np.full((500, 1), np.nan), y)[0] == 0.5


def test_genuine_columns_raise_no_warning(creditcard_text, tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text(creditcard_text)
    dataset = data.load_csv(path, "Class")
    assert leaks.check_training_rows(dataset, 0.5, 0) == []  # V14, the best, is at 0.95


def test_an_index_of_a_file_sorted_by_label_and_a_leaking_column_are_named(creditcard_text,
                                                                            tmp_path):
    n = len(creditcard_text.splitlines()) - 1
    labels = np.array([int(line.rsplit(",", 1)[1].strip('"'))
                       for line in creditcard_text.splitlines()[1:]])
    rng = np.random.default_rng(0)
    chargeback = np.where(rng.random(n) < 0.003, 1 - labels, labels)  # the label, 0.3% noise
    path = tmp_path / "cards.csv"
    path.write_text(with_columns(creditcard_text, index=list(range(n)),
                                 chargeback=chargeback.tolist()))
    dataset = data.load_csv(path, "Class")
    found = leaks.check_training_rows(dataset, 0.5, 0)
    assert [(leak.column, leak.rule, leak.order) for leak in found] == [
        ("index", "separates", "increasing"), ("chargeback", "separates", "")]
    assert found[0].roc_auc == 0.0 and found[0].rows == n // 2
    assert "(--drop index)" in found[0].message and "sorted by the label" in found[0].message
    assert found[1].roc_auc > 0.99 and "(--drop chargeback)" in found[1].message
    # once dropped, nothing is left to warn about
    dataset = data.load_csv(path, "Class", drop=["index", "chargeback"])
    assert leaks.check_training_rows(dataset, 0.5, 0) == []


def test_a_position_that_ranks_the_label_is_named_by_the_row_order_rule():
    rng = np.random.default_rng(1)
    n = 4000
    y = np.sort((rng.random(n) < 0.05).astype(int))  # frauds appended at the end...
    swap = rng.choice(n, size=600, replace=False)  # ...mostly
    y[swap] = y[rng.permutation(swap)]
    genuine = rng.normal(size=n) + 1.5 * y
    x = np.column_stack([np.arange(n) * 10.0 + 7, genuine, -np.arange(n) * 0.5])
    found = leaks.find_leaks(x, y, ["row id", "amount", "countdown"])
    assert [(leak.column, leak.rule, leak.order) for leak in found] == [
        ("row id", "row_order", "increasing"), ("countdown", "row_order", "decreasing")]
    assert 0.9 <= found[0].roc_auc < 0.99 and found[1].roc_auc <= 0.1
    assert "(--drop 'row id')" in found[0].message  # quoted for the shell
    # the same position in a shuffled file says nothing
    shuffled = rng.permutation(n)
    assert leaks.find_leaks(x, y[shuffled], ["row id", "amount", "countdown"]) == []


def test_cli_warns_and_the_report_names_the_leak(creditcard_text, tmp_path, capsys):
    pytest.importorskip("xgboost")
    from pyastore.keys import keygen
    from trainer.cli import main

    n = len(creditcard_text.splitlines()) - 1
    path = tmp_path / "cards.csv"
    path.write_text(with_columns(creditcard_text, index=list(range(n))))
    out = tmp_path / "report"
    key, _ = keygen(tmp_path / "publisher")
    code = main(["fraud", "--data", str(path), "--target", "Class", "--augment", "none",
                 "--trees", "5", "--quiet", "--report", str(out), "--json",
                 "--out", str(tmp_path / "cards.astore"), "--sign-key", str(key)])
    assert code == 0
    captured = capsys.readouterr()
    warning = ("pyastore-train: warning: column 'index' alone separates the label (ROC-AUC "
               "0.0000 (positives lowest) on the 2,746 training rows) and is strictly "
               "increasing in row order: a row number or ID of a file sorted by the label; "
               "drop it (--drop index)\n")
    assert warning in captured.err
    printed = json.loads(captured.out)
    assert printed["data_warnings"][0]["column"] == "index"
    text = (out / "report.md").read_text()
    assert "## Data warnings" in text and "(--drop index)" in text
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["context"]["data_warnings"][0]["rule"] == "separates"
