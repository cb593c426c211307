"""Metrics that cannot discriminate (``trainer.metrics.ceilings``) are marked as such: next to
the number on stderr, in ``--json`` and in the report, and in the comparison with the
baseline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from trainer import metrics, report


def test_flagged_rows_and_ceilings():
    assert metrics.flagged_rows(0.01, 700) == 7  # 0.01 * 700 is 7.000000000000001
    assert metrics.flagged_rows(0.01, 2746) == 28 and metrics.flagged_rows(0.01, 10) == 1
    y = np.array([1] * 246 + [0] * 2500)
    limits = metrics.ceilings(y)
    assert limits["recall_at_1pct"] == 28 / 246 and limits["recall_at_5pct"] == 138 / 246
    assert limits["pr_auc"] == limits["roc_auc"] == limits["best_f1"] == 1.0
    perfect = metrics.evaluate(y, y.astype(float))
    assert perfect["recall_at_1pct"] == limits["recall_at_1pct"]  # the best is the cap
    assert metrics.cap_reason("roc_auc", y) == ""
    rare = np.array([1] * 5 + [0] * 995)  # 0.5% positive: 10 alerts catch them all
    assert metrics.ceilings(rare)["recall_at_1pct"] == 1.0
    assert metrics.cap_reason("recall_at_1pct", rare) == ""


def _run(augment: str, seed: int, y: np.ndarray, test_index: np.ndarray, recall_1: float):
    values = {"pr_auc": 0.9, "roc_auc": 1.0, "best_f1": 0.8, "recall_at_1pct": recall_1,
              "recall_at_5pct": 0.15}
    return SimpleNamespace(augment=augment, seed=seed, metrics=values, seconds={},
                           training=SimpleNamespace(synthetic=np.zeros(1, dtype=bool)),
                           test_index=test_index)


def test_report_marks_a_capped_metric_and_does_not_call_it_identical():
    y = np.array([1, 0] * 50 + [0] * 100)  # 50 of 200 positive: 1% = 2 alerts
    test_index = np.arange(200)
    cap = 2 / 50
    results = [_run(variant, seed, y, test_index, cap) for seed in range(3)
               for variant in ("none", "smote")]
    summary = report.summarize_results(results, y)
    assert summary["limits"]["recall_at_1pct"]["capped"]
    assert summary["variants"]["smote"]["at_ceiling"] == ["roc_auc", "recall_at_1pct"]
    context = {"data": "d.csv", "sha256": "0" * 64, "balance": "b", "algo": "xgboost",
               "classifier": "X", "test_size": 0.5, "balance_method": "random",
               "synthetic_rows": 0}
    text = report.markdown(summary, context, [])
    assert "0.0400 ± 0.0000 (capped at 0.0400, reached in every run: cannot discriminate)" in text
    assert "recall @1% flagged cannot discriminate (both at the ceiling, 0.0400, in every run)" \
        in text
    assert "recall @1% flagged identical" not in text
    assert "1.0000 ± 0.0000 (at its ceiling in every run: cannot discriminate) |" in text
    assert "- **ROC-AUC** is at its ceiling (1) in every run of baseline (no synthetic data), " \
           "SMOTE synthetic: it cannot tell those runs apart" in text
    assert "0.1500 ± 0.0000 (capped at 0.2000) |" in text  # 5% = 10 alerts: capped, not reached
    assert "recall @5% flagged identical on every seed (capped at 0.2000)" in text
    without_labels = report.markdown(report.summarize_results(results), context, [])
    assert "capped" not in without_labels and "## Data warnings" not in without_labels


def test_cli_marks_capped_metrics_on_stderr_json_and_report(tmp_path, capsys):
    """The bundled data: 3,000 test rows, 96 frauds, so 1% flagged (30 alerts) is capped."""
    pytest.importorskip("xgboost")
    from pyastore.keys import keygen
    from trainer.cli import main

    key, _ = keygen(tmp_path / "publisher")
    out = tmp_path / "report"
    code = main(["fraud", "--augment", "none", "--trees", "5", "--quiet", "--report", str(out),
                 "--json", "--out", str(tmp_path / "fraud.astore"), "--sign-key", str(key)])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    cap = printed["ceilings"]["recall_at_1pct"]
    assert cap == 30 / 96 and printed["ceilings"]["recall_at_5pct"] == 1.0
    assert (f"recall_at_1pct {printed['metrics']['recall_at_1pct']:.4f} (capped at {cap:.4f}: "
            "cannot discriminate here)") in captured.err
    assert "recall_at_5pct" in captured.err and "recall_at_5pct 1.0000 (capped" not in captured.err
    text = (out / "report.md").read_text()
    assert "**recall @1% flagged is capped**: 1% of the 3,000 test rows is 30 alerts for 96 " \
           "positives (3.20% of the rows), so no model exceeds 30 / 96 = 0.3125" in text
    assert "(capped at 0.3125" in text and "## Data warnings" not in text
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["limits"]["recall_at_1pct"]["capped"] is True
    assert saved["limits"]["pr_auc"] == {"ceiling": 1.0, "ceiling_min": 1.0, "capped": False,
                                         "reason": ""}
