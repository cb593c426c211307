"""Helpers shared by the federated tests: small seeded data, random trees, a brute-force
common-subtree kernel, and a small simulated federation.

A uniquely named module rather than a ``conftest.py`` (the test folders have no
``__init__.py``); test modules import what they use from here.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from pyastore import keys
from pyastore.ir import Tree

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
FEATURES = [f"f{i}" for i in range(6)]


def seeded_key(label: str) -> keys.SigningKey:
    return keys.SigningKey(hashlib.sha256(label.encode()).digest())


def fraud_like(n_rows: int, seed: int, fraud_rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 6 features where frauds are shifted on f0..f2 (separable but not trivially)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n_rows) < fraud_rate).astype(np.int64)
    x = rng.normal(0.0, 1.0, (n_rows, len(FEATURES)))
    x[:, 0] += 2.5 * y
    x[:, 1] -= 1.5 * y
    x[:, 2] = x[:, 2] * 40.0 + 100.0 + 60.0 * y  # a feature on another scale
    return x, y


def random_tree(rng: np.random.Generator, n_features: int = 3, max_depth: int = 4,
                split_probability: float = 0.7) -> Tree:
    """A random IR tree (preorder numbering) with float32 thresholds."""
    feature, threshold, left, right, default_left, value = [], [], [], [], [], []

    def grow(depth: int) -> int:
        node = len(feature)
        for column in (feature, left, right):
            column.append(-1)
        threshold.append(0.0)
        default_left.append(False)
        value.append(())
        if depth < max_depth and rng.random() < split_probability:
            feature[node] = int(rng.integers(0, n_features))
            threshold[node] = float(np.float32(rng.normal(0.0, 1.5)))
            left[node] = grow(depth + 1)
            right[node] = grow(depth + 1)
        else:
            value[node] = (float(np.float32(rng.random())),)
        return node

    grow(0)
    return Tree(tuple(feature), tuple(threshold), tuple(left), tuple(right),
                tuple(default_left), tuple(value))


def _fragments(tree: Tree, node: int) -> set[str]:
    """Every labelled fragment rooted at ``node``, as canonical strings (brute force)."""
    if tree.feature[node] < 0:
        return set()

    def choices(child: int) -> set[str]:
        if tree.feature[child] < 0:
            return {"leaf"}
        return {f"[{tree.feature[child]}]"} | _fragments(tree, child)

    return {f"({tree.feature[node]} {a} {b})" for a in choices(tree.left[node])
            for b in choices(tree.right[node])}


def brute_force_kernel(a: Tree, b: Tree) -> float:
    """k(T, T') = sum x(v) x(v') |fragments(v) & fragments(v')| with raw thresholds."""
    total = 0.0
    for i in range(a.n_nodes):
        fa = _fragments(a, i)
        if not fa:
            continue
        for j in range(b.n_nodes):
            common = len(fa & _fragments(b, j))
            if common:
                total += a.threshold[i] * b.threshold[j] * common
    return total


def agent_parts(n_agents: int, rows: int = 260, seed: int = 0, no_fraud_agent: int | None = 0):
    """Private training rows for ``n_agents`` (the ``no_fraud_agent`` has no frauds)."""
    from trainer.federated.agent import AgentData

    parts = []
    for k in range(n_agents):
        x, y = fraud_like(rows + 37 * k, seed=1000 * seed + k, fraud_rate=0.08)
        if k == no_fraud_agent:
            x, y = x[y == 0], y[y == 0]
        parts.append(AgentData(x, y, list(FEATURES)))
    return parts


def small_federation(tmp_path: Path, *, n_agents: int = 4, topology: str = "ring",
                     ranking: str = "kernel", rounds: int = 2, schedule: str = "sync",
                     n_new: int = 3, n_max: int | None = 6, n_share: int = 2, seed: int = 0):
    """A seeded federation run in ``tmp_path`` (keys derived from the seed: tests only)."""
    from trainer.federated.agent import FederationParams
    from trainer.federated.simulation import simulate

    params = FederationParams(n_new=n_new, n_max=n_max, n_share=n_share, rounds=rounds,
                              topology=topology, ranking=ranking, schedule=schedule, seed=seed)
    return simulate(agent_parts(n_agents, seed=seed), params, out_dir=tmp_path / "out",
                    log_path=tmp_path / "fed.log", key_seed=f"test-{seed}".encode())
