"""The comparison report: PNG curves, a Markdown summary and ``metrics.json``.

Curves are averaged over seeds on fixed grids (``trainer.metrics.FLAG_GRID``) and cover the
top 0-10% of scores (precision-recall, F1) or of the false-positive rate (ROC), the region an
alerting system works in. The table gives mean +/- standard deviation over seeds, and each
variant is compared with the no-augmentation baseline in plain words (``noise_verdict``).

Given the data set's labels, the report also says which metrics cannot discriminate
(``trainer.metrics.ceilings``): a metric capped below 1 on the test rows (recall at k% flagged
when more than k% of the rows are positive) is marked next to its number with its cap, and a
metric every run of a variant scores at its ceiling is marked as such; the comparison with the
baseline says so instead of calling such runs "identical". Warnings about the data (columns
that leak the label, ``trainer.leaks``) come first, with the option that drops each column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trainer.metrics import METRICS, at_ceiling, cap_reason, ceilings, noise_verdict, summarize

LABELS = {"none": "baseline (no synthetic data)", "capsnet": "CapsNet synthetic",
          "smote": "SMOTE synthetic", "random": "random synthetic"}
METRIC_TITLES = {"pr_auc": "PR-AUC", "roc_auc": "ROC-AUC", "best_f1": "best F1",
                 "recall_at_1pct": "recall @1% flagged", "recall_at_5pct": "recall @5% flagged"}


def metric_limits(results, labels) -> dict[str, Any]:
    """Per metric: the ceiling on each run's test rows (``labels[r.test_index]``), whether it
    is capped below 1, and why."""
    per_run = [ceilings(labels[r.test_index]) for r in results]
    limits: dict[str, Any] = {}
    for m in METRICS:
        values = [c[m] for c in per_run]
        limits[m] = {"ceiling": max(values), "ceiling_min": min(values),
                     "capped": min(values) < 1.0,
                     "reason": cap_reason(m, labels[results[0].test_index])}
    return limits


def _at_ceiling(runs, labels, metric: str) -> bool:
    return all(at_ceiling(r.metrics[metric], ceilings(labels[r.test_index])[metric])
               for r in runs)


def summarize_results(results, labels=None) -> dict[str, Any]:
    """Means, standard deviations and verdicts; with ``labels`` (the data set's, indexed by
    each run's ``test_index``) also the metrics' limits and which are at their ceiling."""
    variants = list(dict.fromkeys(r.augment for r in results))
    by_variant = {v: [r for r in results if r.augment == v] for v in variants}
    summary: dict[str, Any] = {"variants": {}, "seeds": sorted({r.seed for r in results})}
    for variant, runs in by_variant.items():
        summary["variants"][variant] = {
            "metrics": {m: summarize([r.metrics[m] for r in runs]) for m in METRICS},
            "per_seed": [{"seed": r.seed, **r.metrics, "seconds": r.seconds,
                          "synthetic_rows": int(r.training.synthetic.sum())} for r in runs],
        }
        if labels is not None:
            summary["variants"][variant]["at_ceiling"] = [
                m for m in METRICS if _at_ceiling(runs, labels, m)]
    if labels is not None:
        summary["limits"] = metric_limits(results, labels)
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


def plot(results, folder: Path, labels=None) -> list[str]:
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
        if y_key == "f1" and labels is not None:
            axes.plot(grid, _perfect_f1(labels[results[0].test_index]), color="0.5",
                      linestyle="--", label="perfect ranking (the most any model reaches)")
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


def _perfect_f1(y: np.ndarray) -> np.ndarray:
    """F1 of a perfect ranking at each share of FLAG_GRID flagged: 2 min(k, P) / (k + P)."""
    from trainer.metrics import FLAG_GRID

    n, positives = len(y), max(int(np.asarray(y).sum()), 1)
    flagged = np.round(FLAG_GRID * n)
    return 2 * np.minimum(flagged, positives) / (flagged + positives)


def _cell(summary: dict[str, Any], variant: str, metric: str) -> str:
    data = summary["variants"][variant]
    text = f"{data['metrics'][metric]['mean']:.4f} ± {data['metrics'][metric]['std']:.4f}"
    limit = summary.get("limits", {}).get(metric)
    if limit is None:
        return text
    everywhere = metric in data.get("at_ceiling", [])
    if limit["capped"]:
        cap = f"{limit['ceiling']:.4f}"
        if limit["ceiling_min"] != limit["ceiling"]:
            cap = f"{limit['ceiling_min']:.4f}-{cap}"
        return text + (f" (capped at {cap}, reached in every run: cannot discriminate)"
                       if everywhere else f" (capped at {cap})")
    return text + (" (at its ceiling in every run: cannot discriminate)" if everywhere else "")


def _limits_section(summary: dict[str, Any]) -> list[str]:
    limits = summary.get("limits")
    if not limits:
        return []
    lines = []
    for metric, limit in limits.items():
        title = METRIC_TITLES[metric]
        everywhere = [LABELS.get(v, v) for v, d in summary["variants"].items()
                      if metric in d.get("at_ceiling", [])]
        if limit["capped"]:
            reached = (f" Every run of {', '.join(everywhere)} reaches the cap: there the "
                       f"metric says nothing about the model." if everywhere else "")
            lines.append(f"- **{title} is capped**: {limit['reason']}.{reached}")
        elif everywhere:
            lines.append(f"- **{title}** is at its ceiling (1) in every run of "
                         f"{', '.join(everywhere)}: it cannot tell those runs apart (a column "
                         f"that leaks the label does this).")
    if not lines:
        return []
    return ["## Metrics that cannot discriminate", ""] + lines + [""]


def _warnings_section(context: dict[str, Any]) -> list[str]:
    warnings = context.get("data_warnings") or []
    if not warnings:
        return []
    return (["## Data warnings", "",
             "Checked on the training rows of the first split, one column at a time: a "
             "column whose ROC-AUC alone is ≥ 0.99 or ≤ 0.01, or one strictly increasing or "
             "decreasing down the rows whose ROC-AUC is ≥ 0.9 or ≤ 0.1.", ""]
            + [f"- **{w['column']}**: {w['message']}." for w in warnings] + [""])


def _verdict(summary: dict[str, Any], variant: str, metric: str, verdict: str) -> str:
    limit = summary.get("limits", {}).get(metric)
    title = METRIC_TITLES[metric]
    if limit is None:
        return f"{title} {verdict}"
    everywhere = all(metric in summary["variants"][v].get("at_ceiling", [])
                     for v in ("none", variant))
    if everywhere:
        return f"{title} cannot discriminate (both at the ceiling, {limit['ceiling']:.4f}, " \
               f"in every run)"
    if limit["capped"]:
        return f"{title} {verdict} (capped at {limit['ceiling']:.4f})"
    return f"{title} {verdict}"


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
    for variant in summary["variants"]:
        cells = [_cell(summary, variant, m) for m in METRICS]
        lines.append(f"| {LABELS.get(variant, variant)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± standard deviation over seeds, on the held-out test rows only.", ""]
    lines += _limits_section(summary)
    verdicts = [
        (v, d["versus_baseline"]) for v, d in summary["variants"].items() if "versus_baseline" in d
    ]
    if verdicts:
        lines += ["## Against the baseline", "",
                  "A difference counts as real only when its mean over seeds is more than two "
                  "standard errors of the paired (same split) differences from zero.", ""]
        for variant, verdict in verdicts:
            lines.append(f"- **{LABELS.get(variant, variant)}**: " + "; ".join(
                _verdict(summary, variant, m, verdict[m]) for m in METRICS))
        lines.append("")
    lines += ["## Curves", ""]
    limit = summary.get("limits", {}).get("recall_at_1pct")
    if limit is not None:
        lines += ["Up to the test rows' share of positives, flagging k% of the rows catches at "
                  "most k% × rows / positives of them, so recall (and F1) there are limited by "
                  "the number of alerts, not by the model: the dashed line in the F1 plot is a "
                  "perfect ranking.", ""]
    lines += [f"![{name}]({name})" for name in figures] + [""]
    return "\n".join(lines)


def write_report(results, folder: str | Path, context: dict[str, Any],
                 labels=None) -> dict[str, Any]:
    """Plots, ``report.md`` and ``metrics.json`` in ``folder``; ``labels``: the data set's
    labels (each run's test labels are ``labels[r.test_index]``), for the metrics' limits."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if labels is not None:
        labels = np.asarray(labels)
    summary = summarize_results(results, labels)
    figures = plot(results, folder, labels)
    (folder / "metrics.json").write_text(
        json.dumps({"context": context, **summary}, indent=2, sort_keys=True) + "\n"
    )
    (folder / "report.md").write_text(markdown(summary, context, figures))
    return summary
