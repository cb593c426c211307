"""GET_TOP rankings: which trees an agent keeps (CROP) and which it shares (SHARE).

``GET_TOP(Phi, k)`` ranks the ensemble and returns the first ``k`` (all when there are fewer);
``CROP(Phi, k) = GET_TOP(Phi, k)``. Three rankings:

* ``kernel`` (the method's default, needs no labels): **P-greedy** on a Gaussian process
  whose covariance is the tree kernel (:mod:`trainer.federated.kernel`). Start with
  ``p = diag K``; repeatedly take the tree with the largest posterior variance ``p``, make the
  next Newton basis vector ``v_n = (K[:, j] - sum_{i<n} v_i v_i[j]) / sqrt(p[j])`` and update
  ``p <- p - v_n**2``; stop at ``k`` trees or when the largest ``p`` is at most
  ``tolerance * max(diag K)`` (what is left lies in the span of the chosen trees: duplicates,
  or trees the kernel cannot see, such as a single leaf). The selection order is the ranking.
  The trees P-greedy never selects are ranked after it, most recent first
  (``rest="recent"``, the default, so CROP keeps ``min(k, |Phi|)`` trees); ``rest="drop"``
  drops them (CROP may then keep fewer than ``k``).
* ``linreg`` (the method authors' released code; supervised): ``bootstraps`` times, regress
  the agent's training labels on the trees' outputs (least squares with an intercept, on a
  bootstrap sample of the rows, minimum-norm solution), average the tree coefficients over the
  bootstraps, rank by the squared mean coefficient, largest first; ties most recent first.
* ``none``: most recent first (the last tree added ranks first).

"Most recent" is the position in the ensemble list: ADD appends, so newer trees are later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyastore.errors import UsageError

RANKINGS = ("kernel", "linreg", "none")
RESTS = ("recent", "drop")


@dataclass(frozen=True)
class PGreedyResult:
    """The selected indices in selection order, and the posterior variance each had when
    selected (``variances[n]`` is the largest ``p`` at step ``n``)."""

    selected: tuple[int, ...]
    variances: tuple[float, ...]


def p_greedy(kernel_matrix: np.ndarray, k: int, *, tolerance: float = 1e-10) -> PGreedyResult:
    """P-greedy selection of at most ``k`` of the ``m`` items of a PSD kernel matrix."""
    matrix = np.asarray(kernel_matrix, dtype=np.float64)
    m = matrix.shape[0]
    if matrix.shape != (m, m):
        raise UsageError(f"a kernel matrix must be square, got {matrix.shape}")
    k = min(int(k), m)
    power = np.diag(matrix).copy()
    scale = float(power.max(initial=0.0))
    if k <= 0 or scale <= 0.0:
        return PGreedyResult((), ())
    floor = tolerance * scale
    basis = np.zeros((m, k))
    chosen = np.zeros(m, dtype=bool)
    selected: list[int] = []
    variances: list[float] = []
    for n in range(k):
        candidates = np.where(chosen, -np.inf, power)
        j = int(np.argmax(candidates))
        if candidates[j] <= floor:
            break
        column = matrix[:, j] - basis[:, :n] @ basis[j, :n]
        basis[:, n] = column / np.sqrt(candidates[j])
        power = power - basis[:, n] ** 2
        chosen[j] = True
        selected.append(j)
        variances.append(float(candidates[j]))
    return PGreedyResult(tuple(selected), tuple(variances))


def most_recent_first(m: int) -> list[int]:
    return list(range(m - 1, -1, -1))


def rank_kernel(kernel_matrix: np.ndarray, k: int, *, rest: str = "recent",
                tolerance: float = 1e-10) -> list[int]:
    """The first ``k`` of the kernel ranking (P-greedy, then the rest per ``rest``)."""
    if rest not in RESTS:
        raise UsageError(f"rest must be one of {RESTS}, got {rest!r}")
    m = len(kernel_matrix)
    chosen = list(p_greedy(kernel_matrix, k, tolerance=tolerance).selected)
    if rest == "recent" and len(chosen) < min(k, m):
        taken = set(chosen)
        chosen += [i for i in most_recent_first(m) if i not in taken][:min(k, m) - len(chosen)]
    return chosen[:k]


def rank_linreg(outputs: np.ndarray, labels: np.ndarray, k: int, *, bootstraps: int = 10,
                rng: np.random.Generator) -> list[int]:
    """The first ``k`` of the linear-regression ranking; ``outputs`` is ``(m trees, n rows)``."""
    outputs = np.asarray(outputs, dtype=np.float64)
    m, n = outputs.shape
    labels = np.asarray(labels, dtype=np.float64)
    if m == 0:
        return []
    if n == 0:
        return most_recent_first(m)[:k]
    design = np.hstack([np.ones((n, 1)), outputs.T])
    coefficients = np.zeros(m)
    for _ in range(max(int(bootstraps), 1)):
        rows = rng.integers(0, n, n)
        solution, *_ = np.linalg.lstsq(design[rows], labels[rows], rcond=None)
        coefficients += solution[1:]
    importance = (coefficients / max(int(bootstraps), 1)) ** 2
    recency = np.asarray(most_recent_first(m))
    order = recency[np.argsort(-importance[recency], kind="stable")]
    return order[:k].tolist()


def rank_none(m: int, k: int) -> list[int]:
    return most_recent_first(m)[:k]
