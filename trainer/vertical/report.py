"""The report of a vertical run: metrics over seeds, the published numbers beside them, the
training curves of the host and the centralised baseline, and the costs.

``summarise`` turns the rounds' results into one JSON-ready dict: for every model (each
party alone, the host, the centralised baseline) the mean and the standard deviation over the
seeds (``ddof=1``) of every metric; the costs per round (wall time, bytes in the store, log
records); whether the composed container matched the distributed path bit for bit in every
round. ``write_report`` writes ``metrics.json``, ``curves.png`` and ``report.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.vertical.metrics import METRICS

# The published method's numbers (test accuracy in %, macro precision / recall / F1): the
# personal party alone, the bank party alone, the host and a centralised network.
PUBLISHED = {
    "party_1": {"accuracy": 0.978, "macro_precision": 0.96, "macro_recall": 0.92,
                "macro_f1": 0.94},
    "party_2": {"accuracy": 0.9093, "macro_precision": 0.79, "macro_recall": 0.63,
                "macro_f1": 0.67},
    "host": {"accuracy": 0.9813, "macro_precision": 0.97, "macro_recall": 0.92,
             "macro_f1": 0.95},
    "centralised": {"accuracy": 0.9833},
}
PUBLISHED_TEST_CLASS_COUNTS = (1343, 157)


def mean_std(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std}


def summarise(results: Sequence[Any], party_names: Sequence[str]) -> dict[str, Any]:
    models = list(party_names) + ["host"] + (
        ["centralised"] if "centralised" in results[0].metrics else [])
    summary: dict[str, Any] = {"seeds": [r.seed for r in results], "models": {}}
    for model in models:
        summary["models"][model] = {m: mean_std([r.metrics[model][m] for r in results])
                                    for m in METRICS}
    summary["test_class_counts"] = [list(r.test_class_counts) for r in results]
    summary["composed_bit_identical_every_round"] = all(r.composed_equal for r in results)
    summary["composed_rows_checked"] = [r.composed_rows for r in results]
    summary["costs"] = {"seconds": mean_std([r.seconds for r in results]),
                        "bytes_exchanged": mean_std([r.bytes_exchanged for r in results]),
                        "blobs": mean_std([r.blobs for r in results]),
                        "log_records": mean_std([r.log_records for r in results])}
    summary["published"] = PUBLISHED
    summary["published_test_class_counts"] = list(PUBLISHED_TEST_CLASS_COUNTS)
    return summary


def plot_curves(results: Sequence[Any], path: Path, title: str = "") -> bool:
    """Host vs centralised training loss and accuracy per epoch: the mean over the seeds, and
    a band from the lowest to the highest seed."""
    if "centralised" not in results[0].curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for model, colour in (("host", "tab:blue"), ("centralised", "tab:orange")):
        for axis, key in zip(axes, ("loss", "accuracy")):
            runs = np.asarray([r.curves[model][key] for r in results])
            epochs = np.arange(1, runs.shape[1] + 1)
            axis.plot(epochs, runs.mean(axis=0), color=colour, label=model)
            # the band spans the seeds' lowest and highest values (a mean +- std band would
            # cross zero on the log-scaled loss)
            axis.fill_between(epochs, runs.min(axis=0), runs.max(axis=0), color=colour,
                              alpha=0.2)
            axis.set_xlabel("epoch")
            axis.set_ylabel(f"training {key}" + (" (binary cross-entropy)" if key == "loss"
                                                 else ""))
    axes[0].set_yscale("log")
    axes[0].legend()
    figure.suptitle(title or f"host vs centralised: mean and range over {len(results)} seeds")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def markdown_table(summary: dict[str, Any], labels: dict[str, str]) -> str:
    """One row per model: mean +- std of every metric, and the published numbers."""
    head = ("| model | accuracy | macro P | macro R | macro F1 | P (loan) | R (loan) | "
            "F1 (loan) | published acc. | published macro P/R/F1 |")
    lines = [head, "|" + " --- |" * 10]
    for model, label in labels.items():
        if model not in summary["models"]:
            continue
        stats = summary["models"][model]
        cells = [f"{stats[m]['mean']:.4f} ± {stats[m]['std']:.4f}" for m in METRICS]
        published = PUBLISHED.get(label.split(" ")[0], {})
        acc = f"{published['accuracy']:.4f}" if "accuracy" in published else "–"
        prf = "/".join(f"{published[m]:.2f}" for m in ("macro_precision", "macro_recall",
                                                          "macro_f1")) \
            if "macro_f1" in published else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {acc} | {prf} |")
    return "\n".join(lines) + "\n"


def write_report(results: Sequence[Any], folder: Path, config: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in config.parties]
    summary = summarise(results, names)
    summary["config"] = {"data": str(config.data), "target": config.target,
                         "id": config.id_column,
                         "parties": {n: list(c) for n, c in config.parties},
                         "test_size": config.test_size, "epochs": config.train.epochs,
                         "batch_size": config.train.batch_size,
                         "learning_rate": config.train.learning_rate}
    summary["rounds"] = [{"round": r.round, "seed": r.seed, "metrics": r.metrics,
                          "seconds": r.seconds, "bytes_exchanged": r.bytes_exchanged,
                          "blobs": r.blobs, "log_records": r.log_records,
                          "composed_equal": r.composed_equal, "store_keys": r.store_keys}
                         for r in results]
    (folder / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    plotted = plot_curves(results, folder / "curves.png")
    labels = {name: f"party_{i + 1} ({name})" for i, name in enumerate(names)}
    labels |= {"host": "host", "centralised": "centralised"}
    text = [f"# Vertically partitioned training: {len(results)} seed(s)\n",
            markdown_table(summary, labels),
            f"\nComposed container bit-identical to the distributed path in every round: "
            f"{summary['composed_bit_identical_every_round']}.\n"]
    if plotted:
        text.append("\n![host vs centralised](curves.png)\n")
    (folder / "report.md").write_text("".join(text))
    return folder / "report.md"
