"""The scarcity experiment's protocol: nested fraud subsets on fixed test halves, synthetic
rows from the training rows only, runs saved and resumed, paired tests and verdicts; the CTGAN
baseline through its own interpreter (made by scripts/ctgan_env.sh, as the test command does)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer import scarcity_experiment as experiment

ROOT = Path(__file__).resolve().parents[3]
CTGAN_PYTHON = ROOT / ".venv-ctgan" / "bin" / "python"


def _data(rows: int = 3000, frauds: int = 90, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=np.int64)
    y[rng.choice(rows, size=frauds, replace=False)] = 1
    x = rng.normal(size=(rows, 6)) + y[:, None] * np.array([1.5, -1.0, 0.8, 0, 0, 0])
    x[rng.random(x.shape) < 0.01] = np.nan  # a few missing cells
    return x, y


def _csv(path: Path) -> Path:
    x, y = _data()
    lines = [",".join([f"f{i}" for i in range(x.shape[1])] + ["Class"])]
    for row, label in zip(x, y):
        lines.append(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + f",{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _options(**changes) -> argparse.Namespace:
    values = dict(levels=[5, 12], seeds=2, methods=["none", "smote", "random"],
                  synthetic_ratio=4.0, capsnet_epochs=2, capsnet_rows=200, tweak=0.1,
                  ctgan_python=str(CTGAN_PYTHON), ctgan_epochs=5, jobs=1, quiet=True)
    values.update(changes)
    return argparse.Namespace(**values)


def test_the_splits_are_fixed_per_seed_and_the_fraud_subsets_nested():
    _, y = _data()
    legit, frauds, test = experiment.split(y, seed=3)
    again = experiment.split(y, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((legit, frauds, test), again))
    assert not set(test) & (set(legit) | set(frauds))
    assert len(legit) + len(frauds) + len(test) == len(y)
    assert y[legit].sum() == 0 and y[frauds].all()
    assert y[test].sum() == 45 and len(frauds) == 45  # stratified halves
    other = experiment.split(y, seed=4)
    assert not np.array_equal(other[2], test)


def test_synthetic_rows_come_from_the_training_frauds_only():
    x, y = _data()
    legit, frauds, _ = experiment.split(y, seed=0)
    scarce = x[frauds[:5]]
    options = _options()
    rows = experiment.synthetic_rows("random", x[legit], scarce, 20, 0, options)
    assert rows.shape == (20, x.shape[1])
    medians = np.nanmedian(np.vstack([x[legit], scarce]), axis=0)
    filled = np.where(np.isnan(scarce), medians, scarce)
    assert (rows >= filled.min(axis=0)).all() and (rows <= filled.max(axis=0)).all()
    smote = experiment.synthetic_rows("smote", x[legit], scarce, 20, 0, options)
    assert smote.shape == (20, x.shape[1]) and np.isfinite(smote).all()
    # SMOTE interpolates between training frauds: inside their bounding box too
    assert (smote >= filled.min(axis=0) - 1e-9).all() and (smote <= filled.max(axis=0) + 1e-9).all()
    assert experiment.synthetic_rows("none", x[legit], scarce, 20, 0, options).shape == (0, 6)
    capsnet = experiment.synthetic_rows("capsnet", x[legit], scarce, 7, 0, options)
    assert capsnet.shape == (7, x.shape[1]) and np.isfinite(capsnet).all()


def test_runs_are_saved_one_by_one_and_resumed(tmp_path, monkeypatch):
    x, y = _data()
    path = tmp_path / "results.json"
    settings = {"data": "synthetic", "synthetic_ratio": 4.0}
    results = experiment.run(x, y, _options(), path, settings)
    assert len(results["runs"]) == 2 * 2 * 3
    saved = json.loads(path.read_text())
    assert saved == results
    keys = {(r["seed"], r["level"], r["method"]) for r in saved["runs"]}
    assert len(keys) == 12
    for run in saved["runs"]:
        assert run["synthetic"] == (0 if run["method"] == "none" else 4 * run["level"])
        assert run["train_rows"] == 1455 + run["level"] + run["synthetic"]
        assert 0 < run["metrics"]["pr_auc"] <= 1 and run["test_frauds"] == 45
        assert run["metrics"]["recall_at_0.1"] >= run["metrics"]["recall_at_0.01"]
    calls = []
    monkeypatch.setattr(experiment, "run_one", lambda *a: calls.append(a) or {})
    assert experiment.run(x, y, _options(), path, settings) == saved  # nothing left to do
    assert calls == []
    with pytest.raises(SystemExit, match="other settings"):
        experiment.run(x, y, _options(), path, {"data": "synthetic", "synthetic_ratio": 1.0})


def _runs(pr_aucs: dict[str, list[float]]) -> dict:
    runs = []
    for method, values in pr_aucs.items():
        for seed, value in enumerate(values):
            metrics = {"pr_auc": value, "roc_auc": 0.9, "recall_at_0.01": 0.5,
                       "recall_at_0.1": 0.8}
            runs.append({"seed": seed, "level": 10, "method": method, "metrics": metrics,
                         "seconds": {"synthesis": 1.0, "fit": 0.5}})
    return {"settings": {"data": "made up"}, "runs": runs}


def test_paired_tests_and_verdicts(tmp_path):
    from scipy.stats import ttest_rel

    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    better = [b + d for b, d in zip(base, [0.05, 0.06, 0.04, 0.05, 0.055])]
    noisy = [b + d for b, d in zip(base, [0.03, -0.03, 0.01, -0.02, 0.005])]
    results = _runs({"none": base, "smote": better, "random": noisy})
    table = experiment.summary(results)
    mean, sd, p_value = table["10"]["smote"]["pr_auc_vs_none"]
    assert mean == pytest.approx(0.051)
    assert p_value == pytest.approx(ttest_rel(better, base).pvalue)
    assert table["10"]["none"]["pr_auc"]["mean"] == pytest.approx(0.50)
    words = experiment.verdict(table["10"])
    assert "better than the baseline: smote (+0.0510" in words and "random" not in words
    report = experiment.report(results, tmp_path / "report")
    text = report.read_text()
    assert "| 10 | smote | 5 |" in text and "**10 frauds**: better than the baseline" in text
    assert (tmp_path / "report" / "pr_auc_vs_frauds.png").stat().st_size > 1000
    quiet = experiment.verdict(experiment.summary(_runs({"none": base, "random": noisy}))["10"])
    assert quiet.startswith("no method differs")


def test_ctgan_without_its_interpreter_says_how_to_make_it(tmp_path):
    x, y = _data()
    with pytest.raises(SystemExit, match="scripts/ctgan_env.sh"):
        experiment.synthetic_rows("ctgan", x[y == 0], x[y == 1][:5], 5, 0,
                                  _options(ctgan_python=str(tmp_path / "missing")))


def test_ctgan_rows_through_its_own_interpreter():
    assert CTGAN_PYTHON.exists(), "scripts/test.sh makes .venv-ctgan (bash scripts/ctgan_env.sh)"
    x, y = _data()
    frauds = x[y == 1][:12]
    rows = experiment.synthetic_rows("ctgan", x[y == 0], frauds, 30, 0, _options())
    assert rows.shape == (30, x.shape[1]) and np.isfinite(rows).all()
    assert not np.isin(rows, frauds).all(axis=1).any()  # made up, not copied


def test_the_command_line_runs_and_reports(tmp_path):
    source = _csv(tmp_path / "data.csv")
    results, folder = tmp_path / "r.json", tmp_path / "out"
    command = [sys.executable, "-m", "trainer.scarcity_experiment", "--data", str(source),
               "--levels", "5", "--seeds", "3", "--methods", "none", "random", "--jobs", "1",
               "--results", str(results), "--report", str(folder), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(results.read_text())["runs"]) == 6
    assert "| 5 | random | 3 |" in (folder / "report.md").read_text()
    bad = subprocess.run(command[:-1] + ["--levels", "1"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "every level >= 2" in bad.stderr
