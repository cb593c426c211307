"""The comparison report: PNG curves, a Markdown summary and ``metrics.json``.

Curves are averaged over seeds on fixed grids (``trainer.metrics.FLAG_GRID``) and cover the
top 0-10% of scores (precision-recall, F1) or of the false-positive rate (ROC), the region an
alerting system works in. The table gives mean +/- standard deviation over seeds, and each
variant is compared with the no-augmentation baseline in plain words (``noise_verdict``).

Warnings about the data (columns that leak the label, ``trainer.leaks``) come first, with the
option that drops each column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer.metrics import METRICS, noise_verdict, summarize

LABELS = {"none": "baseline (no synthetic data)", "capsnet": "CapsNet synthetic",
          "smote": "SMOTE synthetic", "random": "random synthetic"}
METRIC_TITLES = {"pr_auc": "PR-AUC", "roc_auc": "ROC-AUC", "best_f1": "best F1",
                 "recall_at_1pct": "recall @1% flagged", "recall_at_5pct": "recall @5% flagged"}


def summarize_results(results) -> dict[str, Any]:
    variants = list(dict.fromkeys(r.augment for r in results))
    by_variant = {v: [r for r in results if r.augment == v] for v in variants}
    summary: dict[str, Any] = {"variants": {}, "seeds": sorted({r.seed for r in results})}
    for variant, runs in by_variant.items():
        summary["variants"][variant] = {
            "metrics": {m: summarize([r.metrics[m] for r in runs]) for m in METRICS},
            "per_seed": [{"seed": r.seed, **r.metrics, "seconds": r.seconds,
                          "synthetic_rows": int(r.training.synthetic.sum())} for r in runs],
        }
    if "none" in by_variant:
        baseline = sorted(by_variant["none"], key=lambda r: r.seed)
        for variant, runs in by_variant.items():
            if variant == "none":
                continue
            runs = sorted(runs, key=lambda r: r.seed)
            summary["variants"][variant]["versus_baseline"] = {
                m: noise_verdict([r.metrics[m] for r in baseline], [r.metrics[m] for r in runs])
                for m in METRICS}
    return summary


def _mean_curve(runs, key: str) -> np.ndarray:
    return np.mean([np.asarray(r.curves[key]) for r in runs], axis=0)


def plot(results, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r.augment for r in results))
    grid = np.asarray(results[0].curves["flagged"]) * 100
    files = []
    panels = [
        (
            "pr_curve.png",
            "Precision-recall, top 0-10% of scores",
            "recall",
            "precision",
            "recall",
            "precision",
        ),
        (
            "f1_vs_cutoff.png",
            "F1 vs share of transactions flagged",
            None,
            "f1",
            "% of test rows flagged",
            "F1",
        ),
        (
            "roc_curve.png",
            "ROC, false-positive rate 0-10%",
            None,
            "tpr",
            "false-positive rate (%)",
            "true-positive rate",
        ),
    ]
    for filename, title, x_key, y_key, x_label, y_label in panels:
        figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=110)
        for variant in variants:
            runs = [r for r in results if r.augment == variant]
            x = _mean_curve(runs, x_key) if x_key else grid
            axes.plot(
                x, _mean_curve(runs, y_key), label=f"{LABELS.get(variant, variant)} (n={len(runs)})"
            )
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(folder / filename)
        plt.close(figure)
        files.append(filename)
    return files


def _warnings_section(context: dict[str, Any]) -> list[str]:
    warnings = context.get("data_warnings") or []
    if not warnings:
        return []
    return (["## Data warnings", "",
             "Checked on the training rows of the first split, one column at a time: a "
             "column whose ROC-AUC alone is ≥ 0.99 or ≤ 0.01, or one strictly increasing or "
             "decreasing down the rows whose ROC-AUC is ≥ 0.9 or ≤ 0.1.", ""]
            + [f"- **{w['column']}**: {w['message']}." for w in warnings] + [""])


def markdown(summary: dict[str, Any], context: dict[str, Any], figures: list[str]) -> str:
    lines = [f"# Fraud model comparison: {context['data']}", ""]
    lines += [
        f"- data: `{context['data']}` (sha256 `{context['sha256'][:16]}...`), {context['balance']}",
        f"- classifier: {context['algo']} ({context['classifier']}), identical for every variant",
        f"- split: stratified, test share {context['test_size']}, "
        f"seeds {', '.join(map(str, summary['seeds']))}",
        f"- balancing: {context['balance_method']}; synthetic frauds per run: "
        f"{context['synthetic_rows']}",
        "",
    ]
    lines += _warnings_section(context)
    header = "| variant | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " |"
    lines += [header, "|" + " --- |" * (len(METRICS) + 1)]
    for variant, data in summary["variants"].items():
        cells = [
            f"{data['metrics'][m]['mean']:.4f} ± {data['metrics'][m]['std']:.4f}" for m in METRICS
        ]
        lines.append(f"| {LABELS.get(variant, variant)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± standard deviation over seeds, on the held-out test rows only.", ""]
    verdicts = [
        (v, d["versus_baseline"]) for v, d in summary["variants"].items() if "versus_baseline" in d
    ]
    if verdicts:
        lines += ["## Against the baseline", "",
                  "A difference counts as real only when its mean over seeds is more than two "
                  "standard errors of the paired (same split) differences from zero.", ""]
        for variant, verdict in verdicts:
            lines.append(f"- **{LABELS.get(variant, variant)}**: " + "; ".join(
                f"{METRIC_TITLES[m]} {verdict[m]}" for m in METRICS))
        lines.append("")
    lines += ["## Curves", ""] + [f"![{name}]({name})" for name in figures] + [""]
    return "\n".join(lines)


def write_report(results, folder: str | Path, context: dict[str, Any]) -> dict[str, Any]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize_results(results)
    figures = plot(results, folder)
    (folder / "metrics.json").write_text(
        json.dumps({"context": context, **summary}, indent=2, sort_keys=True) + "\n"
    )
    (folder / "report.md").write_text(markdown(summary, context, figures))
    return summary
