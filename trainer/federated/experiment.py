"""The federated experiment: partition one labelled table into agents, run variants over
seeds, score every agent's final container on the joined test set, and write the report.

Partition (``partition``), per seed:

1. rows are shuffled and dealt to ``n_agents`` groups of uneven sizes: group ``k`` gets a
   share proportional to ``1 + spread * u_k`` with ``u_k`` uniform in ``[-1, 1]`` (sizes spread
   by up to ``+-spread`` of the average, default 70%);
2. each group splits 90/10 into train/test at random (not stratified);
3. ``no_fraud_agents`` agents (chosen at random) get no training frauds: each of their
   training frauds is swapped with a legitimate training row of another agent, so every
   group keeps its size (the method's "an agent with no anomalies at all" case).

Metrics (``evaluate``): every agent's final **container** (the C core, as on a device) scores
the joined test rows of all agents (and the agent's own training rows, to show the
training-set metrics); an event is an anomaly when ``Phi(x) > 0.5``; balanced accuracy,
precision (0 when nothing is flagged) and recall.

Variants (``VARIANTS``): ``disconnected`` (topology none: FIT only), ``ring`` and ``full``
with each ranking, and ``pool`` (full topology, no CROP, each agent shares its newest
``n_share`` trees, i.e. its own FIT of the round: every agent ends with every tree, as in
bagging-style federated tree frameworks).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyastore.errors import InputError, UsageError
from trainer.federated.agent import AgentData, FederationParams

VARIANTS: dict[str, dict[str, Any]] = {
    "disconnected": {"topology": "none", "ranking": "none"},
    "ring-kernel": {"topology": "ring", "ranking": "kernel"},
    "ring-linreg": {"topology": "ring", "ranking": "linreg"},
    "ring-none": {"topology": "ring", "ranking": "none"},
    "full-kernel": {"topology": "full", "ranking": "kernel"},
    "full-linreg": {"topology": "full", "ranking": "linreg"},
    "full-none": {"topology": "full", "ranking": "none"},
    "pool": {"topology": "full", "ranking": "none", "n_max": None},
    "ring-kernel-normalized": {"topology": "ring", "ranking": "kernel",
                               "kernel_normalized": True},
    "full-kernel-normalized": {"topology": "full", "ranking": "kernel",
                               "kernel_normalized": True},
}
METRICS = ("bacc", "precision", "recall")


@dataclass
class AgentSplit:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def partition(x: np.ndarray, y: np.ndarray, n_agents: int, seed: int, *, spread: float = 0.7,
              test_share: float = 0.1, no_fraud_agents: int = 1) -> list[AgentSplit]:
    """Deal rows to agents (module docstring); ``UsageError`` when an agent would be empty."""
    if n_agents < 1:
        raise UsageError(f"--agents must be >= 1, got {n_agents}")
    if not 0.0 <= spread < 1.0 or not 0.0 < test_share < 1.0:
        raise UsageError("the size spread must be in [0, 1) and the test share in (0, 1)")
    if not 0 <= no_fraud_agents < n_agents:
        raise UsageError(f"--no-fraud-agents must be in 0..{n_agents - 1}")
    rng = np.random.default_rng([seed, 7919])
    n = len(y)
    weights = 1.0 + spread * rng.uniform(-1.0, 1.0, n_agents)
    exact = weights / weights.sum() * n
    sizes = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - sizes), kind="stable")[:n - sizes.sum()]:
        sizes[k] += 1
    for k, size in enumerate(sizes):
        if size < 2:
            raise UsageError(f"agent {k} would get {size} row(s) of {n}: too many agents for "
                             "this data (each needs rows to train and test on)")
    order = rng.permutation(n)
    groups = np.split(order, np.cumsum(sizes)[:-1])
    trains, tests = [], []
    for group in groups:
        shuffled = rng.permutation(group)
        n_test = max(1, int(round(test_share * len(group))))
        tests.append(np.sort(shuffled[:n_test]))
        trains.append(np.sort(shuffled[n_test:]))
    for k in rng.choice(n_agents, size=no_fraud_agents, replace=False):
        others = np.concatenate([t for j, t in enumerate(trains) if j != k])
        owner = np.concatenate([np.full(len(t), j) for j, t in enumerate(trains) if j != k])
        legit = np.flatnonzero(y[others] == 0)
        frauds = trains[k][y[trains[k]] == 1]
        if len(frauds) > len(legit):
            raise InputError("not enough legitimate rows to give an agent no frauds")
        picks = rng.choice(legit, size=len(frauds), replace=False)
        replaced = dict(zip(frauds.tolist(), others[picks].tolist()))
        trains[k] = np.sort(np.array([replaced.get(i, i) for i in trains[k]], dtype=np.int64))
        for fraud, pick in zip(frauds, picks):
            j = owner[pick]
            trains[j] = np.sort(np.where(trains[j] == others[pick], fraud, trains[j]))
    x32 = np.asarray(x, dtype=np.float32)
    return [AgentSplit(x32[tr], y[tr], x32[te], y[te]) for tr, te in zip(trains, tests)]


def classification_metrics(y: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    y = np.asarray(y).astype(bool)
    flagged = np.asarray(flagged).astype(bool)
    tp = float(np.sum(y & flagged))
    fp = float(np.sum(~y & flagged))
    fn = float(np.sum(y & ~flagged))
    tn = float(np.sum(~y & ~flagged))
    tpr = tp / (tp + fn) if tp + fn else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    return {"bacc": (tpr + tnr) / 2, "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tpr}


def evaluate(model_paths: list[Path], members: list[bytes], splits: list[AgentSplit]
             ) -> list[dict[str, Any]]:
    """Score every agent's container on the joined test set and on its own training rows."""
    import pyastore

    test_x = np.vstack([s.test_x for s in splits])
    test_y = np.concatenate([s.test_y for s in splits])
    rows = []
    for k, path in enumerate(model_paths):
        model = pyastore.load(path, trusted_keys=[members[k]], use_default_trust=False)
        test_scores = model.score(test_x)[:, 0]
        train_scores = model.score(splits[k].train_x)[:, 0]
        rows.append({"agent": k, "trees": len(model.meta["provenance"]["federation"]["trees"]),
                     "model_bytes": path.stat().st_size,
                     "train_frauds": int(splits[k].train_y.sum()),
                     "train_rows": int(len(splits[k].train_y)),
                     "test": classification_metrics(test_y, test_scores > 0.5),
                     "train": classification_metrics(splits[k].train_y, train_scores > 0.5)})
    return rows


def run_variant(name: str, splits: list[AgentSplit], feature_names: list[str],
                base: FederationParams, seed: int, out: Path, log_path: Path,
                progress: bool) -> dict[str, Any]:
    """One variant on one seed: simulate, evaluate, summarise costs."""
    from dataclasses import replace

    from trainer.federated.simulation import simulate, summary_json

    overrides = VARIANTS[name] if name in VARIANTS else {}
    params = replace(base, seed=seed, **overrides)
    parts = [AgentData(s.train_x, s.train_y, feature_names) for s in splits]
    result = simulate(parts, params, out_dir=out, log_path=log_path, progress=progress)
    return {"variant": name, "seed": seed, "params": params.to_json(),
            "agents": evaluate(result.model_paths, result.members, splits),
            "costs": summary_json(result)}


def kernel_timing(splits: list[AgentSplit], feature_names: list[str], seed: int,
                  params: FederationParams) -> dict[str, float]:
    """Seconds for the kernel Gram matrix + P-greedy (select n_max) on 50 and 200 trees."""
    from trainer.federated.kernel import gram, kernel_tree
    from trainer.federated.ranking import p_greedy
    from trainer.federated.trees import Scaler, fit_tree

    split = max(splits, key=lambda s: len(s.train_y))
    scaler = Scaler.fit(split.train_x)
    z = scaler.transform(split.train_x)
    rng = np.random.default_rng(seed)
    trees = [fit_tree(z, split.train_y, scaler, rng) for _ in range(200)]
    out = {}
    for count in (50, 200):
        started = time.perf_counter()
        for _ in range(5):
            matrix = gram([kernel_tree(t, scaler) for t in trees[:count]],
                          normalized=params.kernel_normalized, lam=params.kernel_decay)
            p_greedy(matrix, params.n_max or 50, tolerance=params.pgreedy_tolerance)
        out[f"kernel_pgreedy_{count}_seconds"] = (time.perf_counter() - started) / 5
    out["mean_nodes_per_tree"] = float(np.mean([t.n_nodes for t in trees]))
    return out


def load_table(path: str, target: str, drop: tuple[str, ...]):
    from trainer.data import load_csv

    dataset = load_csv(path, target, drop)
    return dataset


def derived_log(log_path: Path, variant: str, seed: int, first: bool) -> Path:
    """The log of one run: ``LOG`` for the first, ``LOG-stem.<variant>.seed<s>.suffix`` else."""
    if first:
        return log_path
    return log_path.with_name(f"{log_path.stem}.{variant}.seed{seed}{log_path.suffix}")


# ---- summaries -------------------------------------------------------------------------------


def _agent_matrix(runs: list[dict[str, Any]], variant: str, split: str, metric: str
                  ) -> np.ndarray:
    """(seeds, agents) matrix of one metric for one variant."""
    chosen = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
    return np.array([[a[split][metric] for a in r["agents"]] for r in chosen])


def _no_fraud_mask(runs: list[dict[str, Any]], variant: str) -> np.ndarray:
    """(seeds, agents): True for the agents without training frauds in that seed's run."""
    chosen = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
    return np.array([[a["train_frauds"] == 0 for a in r["agents"]] for r in chosen])


def summarize(runs: list[dict[str, Any]], baseline: str = "disconnected") -> dict[str, Any]:
    """Per variant: metrics over seeds, gains against the baseline per agent, sizes, costs."""
    from trainer.metrics import noise_verdict

    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    variants += sorted({r["variant"] for r in runs} - set(variants))
    summary: dict[str, Any] = {}
    for variant in variants:
        chosen = [r for r in runs if r["variant"] == variant]
        entry: dict[str, Any] = {"seeds": len(chosen)}
        for split in ("test", "train"):
            for metric in METRICS:
                per_seed = _agent_matrix(runs, variant, split, metric).mean(axis=1)
                entry[f"{split}_{metric}"] = {"mean": float(per_seed.mean()),
                                              "std": float(per_seed.std(ddof=1))
                                              if len(per_seed) > 1 else 0.0}
        entry["trees"] = float(np.mean([a["trees"] for r in chosen for a in r["agents"]]))
        entry["model_bytes"] = float(np.mean([a["model_bytes"] for r in chosen
                                              for a in r["agents"]]))
        costs = [r["costs"] for r in chosen]
        entry["bytes_shared"] = float(np.mean([c["bytes_shared"] for c in costs]))
        entry["trees_shared"] = float(np.mean([c["trees_shared"] for c in costs]))
        entry["registry_bytes"] = float(np.mean([c["registry_bytes"] for c in costs]))
        entry["log_bytes"] = float(np.mean([c["log_bytes"] for c in costs]))
        entry["seconds"] = float(np.mean([c["seconds"] for c in costs]))
        round_seconds = [t["seconds"] for c in costs for t in c["rounds"]]
        # async runs have no common rounds: every agent keeps its own pace
        entry["round_seconds"] = float(np.mean(round_seconds)) if round_seconds else None
        entry["rank_seconds"] = float(np.mean([c["rank_seconds"] for c in costs]))
        entry["refusals"] = int(sum(len(c["refusals"]) for c in costs))
        if variant != baseline and any(r["variant"] == baseline for r in runs):
            gains = {}
            for metric in METRICS:
                base = _agent_matrix(runs, baseline, "test", metric)
                mine = _agent_matrix(runs, variant, "test", metric)
                if base.shape != mine.shape:
                    continue
                per_agent = (mine - base).mean(axis=0)
                gains[metric] = {
                    "mean": float(per_agent.mean()), "median": float(np.median(per_agent)),
                    "best_agent": int(np.argmax(per_agent)), "best": float(per_agent.max()),
                    "worst_agent": int(np.argmin(per_agent)), "worst": float(per_agent.min()),
                    "per_agent": per_agent.tolist(),
                    "verdict": noise_verdict(base.mean(axis=1).tolist(),
                                             mine.mean(axis=1).tolist()),
                }
                # within each run (seed), as the published per-run table: the best and the
                # worst agent, and the agent(s) without training frauds, which differ by seed
                per_run = mine - base
                no_fraud = _no_fraud_mask(runs, baseline)
                best_is_no_fraud = [bool(no_fraud[i, np.argmax(row)])
                                    for i, row in enumerate(per_run)]
                gains[metric]["per_run"] = {
                    "best": float(per_run.max(axis=1).mean()),
                    "worst": float(per_run.min(axis=1).mean()),
                    "mean": float(per_run.mean(axis=1).mean()),
                    "median": float(np.median(per_run, axis=1).mean()),
                    "no_fraud_agent": float(per_run[no_fraud].mean()) if no_fraud.any()
                    else None,
                    "best_is_no_fraud_agent": int(sum(best_is_no_fraud)),
                    "seeds": int(len(per_run)),
                }
                train_base = _agent_matrix(runs, baseline, "train", metric).mean()
                train_mine = _agent_matrix(runs, variant, "train", metric).mean()
                gains[metric]["train_change"] = float(train_mine - train_base)
            entry["gain_vs_" + baseline] = gains
        summary[variant] = entry
    return summary


def origin_fractions(runs: list[dict[str, Any]], variant: str) -> np.ndarray:
    """Mean over seeds of each holder's share of trees by creator (rows sum to 100)."""
    chosen = [np.asarray(r["costs"]["origins"], dtype=np.float64) for r in runs
              if r["variant"] == variant]
    shares = [100.0 * m / m.sum(axis=1, keepdims=True) for m in chosen]
    return np.mean(shares, axis=0)


def write_report(runs: list[dict[str, Any]], report_dir: str | Path, context: dict[str, Any]
                 ) -> Path:
    """metrics.json, summary.json, heatmaps and plots, and report.md in ``report_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize(runs)
    (folder / "metrics.json").write_text(json.dumps({"context": context, "runs": runs},
                                                    indent=1, sort_keys=True))
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    heatmaps = []
    for variant in summary:
        if variant == "disconnected":
            continue
        fractions = origin_fractions(runs, variant)
        figure, axes = plt.subplots(figsize=(7.5, 6.2))
        image = axes.imshow(fractions, cmap="viridis", vmin=0, vmax=max(fractions.max(), 1))
        axes.set_xlabel("creator of the tree")
        axes.set_ylabel("agent holding it (final model)")
        axes.set_title(f"Origin of trees, {variant} (% of each row, mean of "
                       f"{summary[variant]['seeds']} seeds)")
        n = fractions.shape[0]
        axes.set_xticks(range(n))
        axes.set_yticks(range(n))
        axes.tick_params(labelsize=7)
        figure.colorbar(image, ax=axes, label="% of the holder's trees")
        figure.tight_layout()
        name = f"origin_{variant}.png"
        figure.savefig(folder / name, dpi=110)
        plt.close(figure)
        heatmaps.append(name)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for variant, entry in summary.items():
        bacc = entry["test_bacc"]
        left.errorbar(entry["trees"], bacc["mean"], yerr=bacc["std"], fmt="o", capsize=3)
        left.annotate(variant, (entry["trees"], bacc["mean"]), fontsize=7,
                      xytext=(4, 3), textcoords="offset points")
        right.errorbar(max(entry["bytes_shared"], 1) / 1e6, bacc["mean"], yerr=bacc["std"],
                       fmt="o", capsize=3)
        right.annotate(variant, (max(entry["bytes_shared"], 1) / 1e6, bacc["mean"]),
                       fontsize=7, xytext=(4, 3), textcoords="offset points")
    left.set_xlabel("trees per agent model")
    right.set_xlabel("MB of one-tree containers exchanged (whole run)")
    right.set_xscale("symlog", linthresh=0.1)
    for axes in (left, right):
        axes.set_ylabel("balanced accuracy, joined test set")
        axes.grid(alpha=0.3)
    figure.suptitle("Quality against model size and exchange (mean over agents; ±sd over seeds)")
    figure.tight_layout()
    figure.savefig(folder / "quality_vs_cost.png", dpi=110)
    plt.close(figure)
    report = folder / "report.md"
    report.write_text(_markdown(summary, context, heatmaps))
    return report


def _markdown(summary: dict[str, Any], context: dict[str, Any], heatmaps: list[str]) -> str:
    lines = ["# Federated random forests: report", ""]
    lines += [f"- {key}: {value}" for key, value in context.items()]
    lines += ["", "## Quality (joined test set; mean over agents, ± sd over seeds)", "",
              "| variant | BAcc | precision | recall | train BAcc | trees/model | MB exchanged |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for variant, entry in summary.items():
        cells = [f"{entry[f'test_{m}']['mean']:.3f} ± {entry[f'test_{m}']['std']:.3f}"
                 for m in METRICS]
        lines.append(f"| {variant} | " + " | ".join(cells) +
                     f" | {entry['train_bacc']['mean']:.3f} | {entry['trees']:.0f} | "
                     f"{entry['bytes_shared'] / 1e6:.1f} |")
    lines += ["", "## Change against the disconnected agents (per agent, mean over seeds)", "",
              "| variant | metric | mean | median | most gaining agent | least gaining agent | "
              "train-set change | beyond seed noise? |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant, entry in summary.items():
        for metric, gain in entry.get("gain_vs_disconnected", {}).items():
            lines.append(f"| {variant} | {metric} | {gain['mean']:+.3f} | {gain['median']:+.3f} | "
                         f"{gain['best_agent']} ({gain['best']:+.3f}) | {gain['worst_agent']} "
                         f"({gain['worst']:+.3f}) | {gain['train_change']:+.3f} | "
                         f"{gain['verdict']} |")
    lines += ["", "## Within each run (mean over seeds of the per-run figure)", "",
              "| variant | metric | agent without frauds | best agent (times it is the agent "
              "without frauds) | worst agent | mean | median |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for variant, entry in summary.items():
        for metric, gain in entry.get("gain_vs_disconnected", {}).items():
            run = gain["per_run"]
            no_fraud = "-" if run["no_fraud_agent"] is None else f"{run['no_fraud_agent']:+.3f}"
            lines.append(f"| {variant} | {metric} | {no_fraud} | {run['best']:+.3f} "
                         f"({run['best_is_no_fraud_agent']}/{run['seeds']}) | "
                         f"{run['worst']:+.3f} | {run['mean']:+.3f} | {run['median']:+.3f} |")
    lines += ["", "## Costs (mean per run)", "",
              "| variant | wall s/run | s/round | ranking s | log MB | registry MB | refusals |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for variant, entry in summary.items():
        per_round = "-" if entry["round_seconds"] is None else f"{entry['round_seconds']:.2f}"
        lines.append(f"| {variant} | {entry['seconds']:.1f} | {per_round} | "
                     f"{entry['rank_seconds']:.2f} | {entry['log_bytes'] / 1e6:.2f} | "
                     f"{entry['registry_bytes'] / 1e6:.2f} | {entry['refusals']} |")
    lines += [""] + [f"![{name}]({name})" for name in heatmaps + ["quality_vs_cost.png"]]
    return "\n".join(lines) + "\n"
