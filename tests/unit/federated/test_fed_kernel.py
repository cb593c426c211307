"""The tree kernel: brute-force agreement, symmetry, positive semidefiniteness, options."""

from __future__ import annotations

import numpy as np
import pytest

from fedlib import brute_force_kernel, fraud_like, random_tree
from pyastore.errors import UnsupportedModelError
from pyastore.ir import Tree
from trainer.federated.kernel import gram, kernel_tree
from trainer.federated.trees import Scaler, fit_tree


def _random_trees(seed: int, count: int, **kwargs) -> list[Tree]:
    rng = np.random.default_rng(seed)
    return [random_tree(rng, **kwargs) for _ in range(count)]


def test_kernel_equals_brute_force_common_subtree_count():
    trees = _random_trees(1, 14, n_features=2, max_depth=4)
    matrix = gram([kernel_tree(t) for t in trees])
    expected = np.array([[brute_force_kernel(a, b) for b in trees] for a in trees])
    assert np.count_nonzero(expected) > len(trees)  # the case is not trivially zero
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-12)


def test_cross_gram_equals_brute_force_and_the_square_one():
    left, right = _random_trees(2, 6), _random_trees(3, 5)
    cross = gram([kernel_tree(t) for t in left], [kernel_tree(t) for t in right])
    expected = np.array([[brute_force_kernel(a, b) for b in right] for a in left])
    np.testing.assert_allclose(cross, expected, rtol=1e-12, atol=1e-12)
    both = gram([kernel_tree(t) for t in left + right])
    np.testing.assert_allclose(both[:6, 6:], cross, rtol=1e-12, atol=1e-12)


def test_hand_computed_value_for_a_stump_and_a_two_level_tree():
    # stump: (f0 < 2) -> leaf, leaf ; deeper: (f0 < 3) -> (f1 < 5) -> leaf, leaf ; leaf
    stump = Tree((0, -1, -1), (2.0, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (False,) * 3,
                 ((), (0.0,), (1.0,)))
    deep = Tree((0, 1, -1, -1, -1), (3.0, 5.0, 0, 0, 0), (1, 2, -1, -1, -1),
                (4, 3, -1, -1, -1), (False,) * 5, ((), (), (0.0,), (1.0,), (0.5,)))
    k = gram([kernel_tree(stump), kernel_tree(deep)])
    # stump root vs deep root: productions (0,leaf,leaf) vs (0,1,leaf) differ -> 0;
    # stump root vs deep node 1: (0,leaf,leaf) vs (1,leaf,leaf) differ -> 0
    assert k[0, 1] == 0.0
    assert k[0, 0] == 4.0  # 2*2*1
    # deep with itself: root-root C = (1 + C(n1,n1)) * (1 + 0) = 2, n1-n1 C = 1
    assert k[1, 1] == 3.0 * 3.0 * 2 + 5.0 * 5.0 * 1


def test_kernel_is_symmetric_and_positive_semidefinite_on_random_and_fitted_trees():
    trees = _random_trees(4, 40, n_features=3, max_depth=5)
    x, y = fraud_like(600, seed=5)
    scaler = Scaler.fit(x)
    rng = np.random.default_rng(6)
    fitted = [fit_tree(scaler.transform(x), y, scaler, rng) for _ in range(25)]
    for kernel_trees in ([kernel_tree(t) for t in trees],
                         [kernel_tree(t, scaler) for t in fitted]):
        for normalized in (False, True):
            matrix = gram(kernel_trees, normalized=normalized)
            assert np.array_equal(matrix, matrix.T)
            smallest = np.linalg.eigvalsh(matrix).min()
            assert smallest >= -1e-9 * np.trace(matrix), (normalized, smallest)


def test_normalized_kernel_has_unit_diagonal_and_zero_for_a_single_leaf():
    leaf = Tree((-1,), (0.0,), (-1,), (-1,), (False,), ((0.0,),))
    trees = _random_trees(7, 5, max_depth=3, split_probability=1.0) + [leaf]
    matrix = gram([kernel_tree(t) for t in trees], normalized=True)
    assert np.allclose(np.diag(matrix)[:5], 1.0)
    assert matrix[5].tolist() == [0.0] * 6
    assert np.all(np.abs(matrix) <= 1.0 + 1e-12)


def test_child_order_matters():
    a = Tree((0, 1, -1, -1, -1), (1.0, 2.0, 0, 0, 0), (1, 2, -1, -1, -1), (4, 3, -1, -1, -1),
             (False,) * 5, ((), (), (0.0,), (1.0,), (0.0,)))
    mirrored = Tree((0, -1, 1, -1, -1), (1.0, 0, 2.0, 0, 0), (1, -1, 3, -1, -1),
                    (2, -1, 4, -1, -1), (False,) * 5, ((), (0.0,), (), (0.0,), (1.0,)))
    k = gram([kernel_tree(a), kernel_tree(mirrored)])
    assert k[0, 1] == 2.0 * 2.0  # only the (1, leaf, leaf) nodes match, not the roots
    assert k[0, 0] > k[0, 1]


def test_threshold_units_are_the_ranking_agents_standardised_units():
    tree = Tree((0, -1, -1), (110.0, 0, 0), (1, -1, -1), (2, -1, -1), (False,) * 3,
                ((), (0.0,), (1.0,)))
    scaler = Scaler(mean=(100.0,), sd=(5.0,))
    assert gram([kernel_tree(tree, scaler)])[0, 0] == pytest.approx(4.0)  # ((110-100)/5)^2


def test_decay_damps_and_overflow_is_refused_clearly():
    deep = random_tree(np.random.default_rng(8), n_features=1, max_depth=11,
                       split_probability=1.0)
    with pytest.raises(UnsupportedModelError, match="decay"):
        gram([kernel_tree(deep)])
    damped = gram([kernel_tree(deep)], lam=0.2)
    assert np.isfinite(damped).all() and damped[0, 0] > 0
