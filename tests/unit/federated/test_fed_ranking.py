"""Rankings: P-greedy against a direct Gaussian-process computation, linreg, none."""

from __future__ import annotations

import numpy as np

from fedlib import random_tree
from trainer.federated.kernel import gram, kernel_tree
from trainer.federated.ranking import p_greedy, rank_kernel, rank_linreg, rank_none


def _posterior_variances(matrix: np.ndarray, chosen: list[int]) -> np.ndarray:
    """K_ii - K_iS K_SS^-1 K_Si for every i, by a direct solve."""
    if not chosen:
        return np.diag(matrix).copy()
    block = matrix[np.ix_(chosen, chosen)]
    cross = matrix[:, chosen]
    return np.diag(matrix) - np.einsum("ij,ij->i", cross, np.linalg.solve(block, cross.T).T)


def _check_against_direct(matrix: np.ndarray, k: int) -> None:
    result = p_greedy(matrix, k)
    assert len(result.selected) == k
    assert len(set(result.selected)) == k
    for n, j in enumerate(result.selected):
        variances = _posterior_variances(matrix, list(result.selected[:n]))
        variances[list(result.selected[:n])] = -np.inf
        assert int(np.argmax(variances)) == j
        assert result.variances[n] == np.float64(variances[j]) or \
            abs(result.variances[n] - variances[j]) <= 1e-9 * matrix.trace()


def test_p_greedy_equals_direct_gp_posterior_variance_on_random_psd_matrices():
    rng = np.random.default_rng(11)
    for m in (5, 9, 14):
        features = rng.normal(size=(m, m + 3))
        _check_against_direct(features @ features.T, k=m - 1)


def test_p_greedy_equals_direct_gp_on_tree_kernel():
    rng = np.random.default_rng(12)
    trees = [random_tree(rng, n_features=3, max_depth=4, split_probability=0.9)
             for _ in range(10)]
    matrix = gram([kernel_tree(t) for t in trees], normalized=True)
    rank = np.linalg.matrix_rank(matrix)
    _check_against_direct(matrix, k=min(6, rank))


def test_p_greedy_stops_at_duplicates_and_rest_policy():
    rng = np.random.default_rng(13)
    base = rng.normal(size=(3, 5))
    vectors = np.vstack([base, base[1], base[0]])  # items 3 and 4 duplicate 1 and 0
    matrix = vectors @ vectors.T
    result = p_greedy(matrix, 5)
    assert len(result.selected) == 3  # the two duplicates add nothing to the span
    assert np.linalg.matrix_rank(vectors[list(result.selected)]) == 3
    assert rank_kernel(matrix, 5, rest="drop") == list(result.selected)
    filled = rank_kernel(matrix, 5, rest="recent")
    assert filled[:3] == list(result.selected) and sorted(filled) == [0, 1, 2, 3, 4]
    assert filled[3:] == [i for i in (4, 3, 2, 1, 0) if i not in result.selected]


def test_linreg_ranks_the_trees_that_explain_the_labels_first():
    rng = np.random.default_rng(14)
    outputs = rng.random((6, 400))
    labels = 3.0 * outputs[4] + 1.0 * outputs[1] + rng.normal(0, 0.01, 400)
    order = rank_linreg(outputs, labels, 6, bootstraps=10, rng=np.random.default_rng(0))
    assert order[:2] == [4, 1]
    again = rank_linreg(outputs, labels, 6, bootstraps=10, rng=np.random.default_rng(0))
    assert again == order  # seeded


def test_linreg_ties_fall_back_to_most_recent_first():
    outputs = np.zeros((4, 50))
    order = rank_linreg(outputs, np.zeros(50), 3, rng=np.random.default_rng(0))
    assert order == [3, 2, 1]


def test_none_is_most_recent_first():
    assert rank_none(5, 3) == [4, 3, 2]
    assert rank_none(2, 5) == [1, 0]
