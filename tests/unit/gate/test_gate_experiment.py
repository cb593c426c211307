"""The gate experiment end to end on a small data set: both balancing orders, and the replay
through a real gate whose ledger counts must equal the confusion matrix."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("xgboost")
pytest.importorskip("imblearn")


def test_experiment_replay_matches_the_confusion_matrix(tmp_path):
    import numpy as np

    from trainer import gate_experiment

    rng = np.random.default_rng(7)
    rows = 900
    x = rng.normal(size=(rows, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=rows) > 1.6).astype(int)
    data = tmp_path / "small.csv"
    with open(data, "w") as handle:
        handle.write("a,b,c,d,e,Class\n")
        for features, label in zip(x, y):
            handle.write(",".join(f"{v:.6f}" for v in features) + f",{label}\n")
    results = gate_experiment.run(data, 1, 0.3, tmp_path / "out")
    assert {r["order"] for r in results["runs"]} == set(gate_experiment.ORDERS)
    for kind, replay in results["replay"].items():
        assert replay["transactions"] == replay["ledger_tx_records"] == 270, kind
        assert replay["counts_equal_confusion_matrix"], replay
        assert replay["decisions_differing_from_library"] == 0
    text = gate_experiment.report(results)
    assert "| split-then-balance | xgboost |" in text
    json.dumps(results)  # the results file is plain JSON
