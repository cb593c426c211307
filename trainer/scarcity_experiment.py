"""Does synthetic fraud data help when frauds are truly scarce?

``python -m trainer.scarcity_experiment --data creditcard_union.csv --target Class
[--levels 10 25 55 123 246] [--seeds 10] [--methods none capsnet smote random ctgan]
[--results FILE.json] [--report FOLDER]``

Protocol, for each seed: one stratified 50/50 split of the whole file (the test half is the
same for every scarcity level and method of that seed, and never touched by training). The
training half keeps all its legitimate rows and only the first ``n`` of its frauds in a
seeded order, for each ``n`` of ``--levels`` (so the 10 frauds of a seed are among its 25, and
so on). Each method then adds ``--synthetic-ratio`` x ``n`` synthetic frauds made from those
training rows only:

* ``none``: no synthetic rows (the baseline);
* ``capsnet``: the published Capsule Network generator (``trainer.synth.capsnet``: trained on
  the training frauds, oversampled, against as many legitimate training rows sampled at
  random, up to ``--capsnet-rows`` in all; new frauds decoded from the fraud class capsules
  of real frauds with the tweak applied);
* ``smote``: SMOTE interpolation between training frauds (imbalanced-learn);
* ``random``: each feature uniform between the training frauds' minimum and maximum;
* ``ctgan``: CTGAN (the ``ctgan`` package) fitted on the training frauds. It needs a pandas
  older than the project's, so it runs in an interpreter of its own (``--ctgan-python``, made
  by ``bash scripts/ctgan_env.sh``) through ``trainer/synth/ctgan_worker.py``.

The same XGBoost classifier as ``pyastore-train fraud`` (100 trees, depth 6, learning rate 0.1,
subsample and columns 0.9) is fitted on every training set and scored on the test half:
PR-AUC, ROC-AUC, best F1, recall and precision at 0-10% of the rows flagged, the time the
method and the fit took. Each run is appended to ``--results`` as soon as it is done, and runs
already there are skipped: an interrupted experiment goes on where it stopped.

``--report FOLDER`` (also without running anything) writes ``report.md`` (mean +- sd per level
and method, paired t-tests against the baseline over the seeds, a plain-words verdict per
level, the cost of each method) and ``pr_auc_vs_frauds.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LEVELS = (10, 25, 55, 123, 246)
METHODS = ("none", "capsnet", "smote", "random", "ctgan")
FLAGGED = (0.005, 0.01, 0.02, 0.05, 0.10)  # shares of the test rows flagged, for the curves


def load(path: str | Path, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The file's numeric features (missing cells as NaN) and its 0/1 labels."""
    from trainer.data import load_csv

    dataset = load_csv(path, target)
    if dataset.text:
        raise SystemExit("the scarcity experiment takes numeric columns only")
    return dataset.x.astype(np.float64), dataset.y.astype(np.int64)


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training legitimate rows, training frauds in a seeded order, and test rows."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    train, test = train_test_split(index, test_size=0.5, random_state=seed, stratify=y)
    train = np.sort(train)
    frauds = np.random.default_rng(10_000 + seed).permutation(train[y[train] == 1])
    return train[y[train] == 0], frauds, np.sort(test)


def _impute(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), medians, x)


def synthetic_rows(method: str, x_legit: np.ndarray, x_fraud: np.ndarray, count: int,
                   seed: int, options: argparse.Namespace) -> np.ndarray:
    """``count`` synthetic frauds by ``method`` from the training rows (NaN imputed by the
    training medians for the generators)."""
    if method == "none" or count == 0:
        return np.empty((0, x_fraud.shape[1]))
    medians = np.nanmedian(np.vstack([x_legit, x_fraud]), axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    frauds = _impute(x_fraud, medians)
    if method == "random":
        from trainer.synth.baselines import random_rows

        return random_rows(frauds, count, seed=seed)
    if method == "smote":
        from trainer.synth.baselines import smote_rows

        legit = _impute(x_legit, medians)
        return smote_rows(np.vstack([legit, frauds]),
                          np.r_[np.zeros(len(legit), int), np.ones(len(frauds), int)],
                          count, seed=seed)
    if method == "capsnet":
        from trainer.synth.capsnet import CapsNetConfig, CapsNetGenerator

        rng = np.random.default_rng(seed)
        half = max(options.capsnet_rows // 2, len(frauds))
        legit = _impute(x_legit[rng.choice(len(x_legit), size=min(half, len(x_legit)),
                                           replace=False)], medians)
        oversampled = frauds[rng.choice(len(frauds), size=half, replace=True)]
        generator = CapsNetGenerator(CapsNetConfig(epochs=options.capsnet_epochs,
                                                   tweak=options.tweak, seed=seed,
                                                   progress=False))
        generator.fit(np.vstack([legit, oversampled]),
                      np.r_[np.zeros(len(legit), int), np.ones(len(oversampled), int)])
        return generator.generate(frauds, count, seed=seed)
    if method == "ctgan":
        return _ctgan_rows(frauds, count, seed, options)
    raise ValueError(f"unknown method {method!r}")


def _ctgan_rows(frauds: np.ndarray, count: int, seed: int,
                options: argparse.Namespace) -> np.ndarray:
    python = options.ctgan_python
    if not python or not Path(python).exists():
        raise SystemExit("ctgan runs in an interpreter of its own: run 'bash scripts/"
                         "ctgan_env.sh' and give --ctgan-python .venv-ctgan/bin/python")
    worker = Path(__file__).resolve().parent / "synth" / "ctgan_worker.py"
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "frauds.npy", Path(folder) / "synthetic.npy"
        np.save(source, frauds)
        subprocess.run([python, str(worker), str(source), str(target), str(count), str(seed),
                        str(options.ctgan_epochs)], check=True)
        return np.load(target)


def run_one(x: np.ndarray, y: np.ndarray, seed: int, level: int, method: str,
            options: argparse.Namespace) -> dict[str, Any]:
    from trainer.fraud import FraudConfig, make_classifier
    from trainer.metrics import evaluate, flagged_rows

    legit, frauds, test = split(y, seed)
    if level > len(frauds):
        raise SystemExit(f"level {level}: the training half holds only {len(frauds)} frauds")
    x_legit, x_fraud = x[legit], x[frauds[:level]]
    started = time.perf_counter()
    new = synthetic_rows(method, x_legit, x_fraud, int(round(options.synthetic_ratio * level)),
                         seed, options)
    synthesis = time.perf_counter() - started
    train_x = np.vstack([x_legit, x_fraud, new])
    train_y = np.r_[np.zeros(len(x_legit), int), np.ones(len(x_fraud) + len(new), int)]
    started = time.perf_counter()
    model = make_classifier(FraudConfig(n_jobs=options.jobs), seed)
    model.fit(train_x, train_y)
    fit = time.perf_counter() - started
    scores = model.predict_proba(x[test])[:, 1]
    test_y = y[test]
    metrics = evaluate(test_y, scores)
    order = np.argsort(-scores, kind="stable")
    for share in FLAGGED:
        alerts = flagged_rows(share, len(test_y))
        caught = int(test_y[order[:alerts]].sum())
        metrics[f"recall_at_{share:g}"] = caught / int(test_y.sum())
        metrics[f"precision_at_{share:g}"] = caught / alerts
    return {"seed": seed, "level": level, "method": method, "synthetic": int(len(new)),
            "train_rows": int(len(train_y)), "test_rows": int(len(test_y)),
            "test_frauds": int(test_y.sum()), "metrics": metrics,
            "seconds": {"synthesis": synthesis, "fit": fit},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _read(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": []}


def _write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(temporary, path)


def run(x: np.ndarray, y: np.ndarray, options: argparse.Namespace, path: Path,
        settings: dict[str, Any]) -> dict[str, Any]:
    """Every (seed, level, method) not yet in ``path``, each saved as soon as it is done."""
    results = _read(path)
    if results.get("settings", settings) != settings:
        raise SystemExit(f"{path} holds runs made with other settings: {results['settings']} "
                         "(give another --results file)")
    results["settings"] = settings
    done = {(r["seed"], r["level"], r["method"]) for r in results["runs"]}
    for seed in range(options.seeds):
        for level in options.levels:
            for method in options.methods:
                if (seed, level, method) in done:
                    continue
                record = run_one(x, y, seed, level, method, options)
                results["runs"].append(record)
                _write(path, results)
                if not options.quiet:
                    print(f"seed {seed} level {level} {method}: PR-AUC "
                          f"{record['metrics']['pr_auc']:.4f} ({record['seconds']['synthesis']:.1f}"
                          f" + {record['seconds']['fit']:.1f} s)", file=sys.stderr)
    return results


# ---- the report ---------------------------------------------------------------------------


def _paired(baseline: list[float], variant: list[float]) -> tuple[float, float, float]:
    """Mean difference, its standard deviation, and the two-sided paired t-test p-value."""
    from scipy.stats import ttest_rel

    differences = np.asarray(variant) - np.asarray(baseline)
    if len(differences) < 2 or not np.any(differences):
        return float(differences.mean()) if len(differences) else 0.0, 0.0, 1.0
    p_value = float(ttest_rel(variant, baseline).pvalue)
    return float(differences.mean()), float(differences.std(ddof=1)), p_value


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Per level and method: mean, sd and n of each metric; paired tests against ``none``."""
    runs = results["runs"]
    table: dict[str, Any] = {}
    for level in sorted({r["level"] for r in runs}):
        at_level = [r for r in runs if r["level"] == level]
        methods = list(dict.fromkeys(r["method"] for r in at_level))
        entry: dict[str, Any] = {}
        base = {r["seed"]: r for r in at_level if r["method"] == "none"}
        for method in methods:
            mine = {r["seed"]: r for r in at_level if r["method"] == method}
            stats: dict[str, Any] = {"seeds": sorted(mine)}
            for metric in next(iter(mine.values()))["metrics"]:
                values = np.array([r["metrics"][metric] for r in mine.values()])
                stats[metric] = {"mean": float(values.mean()),
                                 "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
            paired = sorted(set(mine) & set(base))
            if method != "none" and paired:
                for metric in ("pr_auc", "roc_auc"):
                    stats[f"{metric}_vs_none"] = _paired(
                        [base[s]["metrics"][metric] for s in paired],
                        [mine[s]["metrics"][metric] for s in paired])
            stats["seconds"] = float(np.mean([r["seconds"]["synthesis"] + r["seconds"]["fit"]
                                              for r in mine.values()]))
            stats["synthesis_seconds"] = float(np.mean([r["seconds"]["synthesis"]
                                                        for r in mine.values()]))
            entry[method] = stats
        table[str(level)] = entry
    return table


def verdict(entry: dict[str, Any]) -> str:
    """Plain words for one level: which methods beat or lose to the baseline on PR-AUC."""
    better, worse = [], []
    for method, stats in entry.items():
        if method == "none" or "pr_auc_vs_none" not in stats:
            continue
        mean, _, p_value = stats["pr_auc_vs_none"]
        if p_value < 0.05:
            (better if mean > 0 else worse).append(f"{method} ({mean:+.4f}, p={p_value:.3f})")
    if not better and not worse:
        return "no method differs from the baseline beyond the seed-to-seed noise (paired t, 5%)"
    words = []
    if better:
        words.append("better than the baseline: " + ", ".join(better))
    if worse:
        words.append("worse: " + ", ".join(worse))
    return "; ".join(words)


def plot(table: dict[str, Any], folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(int(level) for level in table)
    methods = list(dict.fromkeys(m for entry in table.values() for m in entry))
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for offset, method in enumerate(methods):
        shown = [level for level in levels if method in table[str(level)]]
        means = [table[str(level)][method]["pr_auc"]["mean"] for level in shown]
        sds = [table[str(level)][method]["pr_auc"]["sd"] for level in shown]
        axes.errorbar([level * (1 + 0.03 * (offset - 2)) for level in shown], means, yerr=sds,
                      marker="o", capsize=3, label=method)
    axes.set_xscale("log")
    axes.set_xticks(levels, [str(level) for level in levels])
    axes.set_xlabel("real frauds in the training half")
    axes.set_ylabel("test PR-AUC (mean ± sd over seeds)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    name = "pr_auc_vs_frauds.png"
    figure.savefig(folder / name, dpi=120)
    plt.close(figure)
    return name


def report(results: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = summary(results)
    figure = plot(table, folder)
    lines = ["# Synthetic frauds under scarcity", "",
             f"Settings: `{json.dumps(results['settings'], sort_keys=True)}`", "",
             "| frauds | method | seeds | PR-AUC | ROC-AUC | recall @1% | recall @10% | "
             "ΔPR-AUC vs none (p) | s per run |",
             "| ---: | --- | ---: | --- | --- | --- | --- | --- | ---: |"]
    for level, entry in table.items():
        for method, stats in entry.items():
            paired = stats.get("pr_auc_vs_none")
            versus = ("" if paired is None else
                      f"{paired[0]:+.4f} ± {paired[1]:.4f} ({paired[2]:.3f})")
            lines.append(
                f"| {level} | {method} | {len(stats['seeds'])} | "
                f"{stats['pr_auc']['mean']:.4f} ± {stats['pr_auc']['sd']:.4f} | "
                f"{stats['roc_auc']['mean']:.4f} ± {stats['roc_auc']['sd']:.4f} | "
                f"{stats['recall_at_0.01']['mean']:.3f} | {stats['recall_at_0.1']['mean']:.3f} | "
                f"{versus} | {stats['seconds']:.1f} |")
    lines += ["", "Verdicts (PR-AUC, paired t-test over the seeds against no synthetic data):", ""]
    for level, entry in table.items():
        lines.append(f"- **{level} frauds**: {verdict(entry)}")
    lines += ["", f"![PR-AUC against the number of training frauds]({figure})", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.scarcity_experiment",
                                     description=__doc__.split("\n\n")[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the CSV file (all its columns but the target numeric)")
    parser.add_argument("--target", default="Class")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS),
                        help="numbers of real training frauds (default 10 25 55 123 246)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--synthetic-ratio", type=float, default=4.0,
                        help="synthetic frauds per real training fraud (default 4)")
    parser.add_argument("--capsnet-epochs", type=int, default=250)
    parser.add_argument("--capsnet-rows", type=int, default=2000,
                        help="rows the CapsNet trains on: half frauds (oversampled), half "
                        "legitimate (default 2000)")
    parser.add_argument("--tweak", type=float, default=0.1)
    parser.add_argument("--ctgan-python", default=".venv-ctgan/bin/python")
    parser.add_argument("--ctgan-epochs", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2, help="XGBoost threads (default 2)")
    parser.add_argument("--results", default="docs/experiments/scarcity/results.json")
    parser.add_argument("--report", metavar="FOLDER", help="write report.md and the plot here")
    parser.add_argument("--quiet", action="store_true")
    options = parser.parse_args(argv)
    if options.seeds < 1 or any(level < 2 for level in options.levels):
        parser.error("--seeds must be >= 1 and every level >= 2 (SMOTE needs two frauds)")
    if not math.isfinite(options.synthetic_ratio) or options.synthetic_ratio < 0:
        parser.error("--synthetic-ratio must be >= 0")
    path = Path(options.results)
    if options.data:
        from trainer.fraud import _set_torch_threads

        _set_torch_threads()
        x, y = load(options.data, options.target)
        settings = {"data": Path(options.data).name, "target": options.target,
                    "synthetic_ratio": options.synthetic_ratio,
                    "capsnet_epochs": options.capsnet_epochs,
                    "capsnet_rows": options.capsnet_rows, "tweak": options.tweak,
                    "ctgan_epochs": options.ctgan_epochs, "classifier": "xgboost 100x6"}
        results = run(x, y, options, path, settings)
    else:
        results = _read(path)
        if not results["runs"]:
            parser.error(f"{path}: no runs yet (give --data to run the experiment)")
    if options.report:
        print(report(results, Path(options.report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
