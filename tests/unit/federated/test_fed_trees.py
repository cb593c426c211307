"""Trees: exact folding of the scaler, routing equal to scikit-learn, container round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyastore
from fedlib import FEATURES, fraud_like, random_tree, seeded_key
from pyastore import format as fmt
from pyastore.errors import UsageError
from trainer.federated import containers
from trainer.federated.trees import Scaler, TreeId, fit_tree, fold_thresholds, predict_tree


def _float32_samples(rng: np.random.Generator, n: int) -> np.ndarray:
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    near = rng.normal(0, 3, n).astype(np.float32)
    return np.concatenate([bits, near, np.array([-np.inf, np.inf, 0.0, -0.0], np.float32)])


def test_folded_threshold_routes_every_float32_exactly_like_the_standardised_one():
    rng = np.random.default_rng(21)
    scaler = Scaler(mean=(0.37, -1250.5, 3.0e-3), sd=(1.7, 0.031, 4.0e5))
    features = np.repeat(np.arange(3), 40)
    targets = rng.normal(0, 2, len(features)).astype(np.float32)
    raw = fold_thresholds(features, targets, scaler)
    values = _float32_samples(rng, 4000)
    for feature, target, cut in zip(features, targets, raw):
        z = ((values.astype(np.float64) - scaler.mean[feature]) / scaler.sd[feature])
        with np.errstate(over="ignore"):
            z = z.astype(np.float32)
        assert np.array_equal(values < cut, z < target), (feature, target, cut)
        # the boundary itself: the largest float32 below the cut goes left, the cut right
        below = np.nextafter(cut, np.float32(-np.inf))
        z_below = np.float32((np.float64(below) - scaler.mean[feature]) / scaler.sd[feature])
        z_cut = np.float32((np.float64(cut) - scaler.mean[feature]) / scaler.sd[feature])
        assert z_below < target <= z_cut


def test_fitted_tree_routes_raw_rows_as_sklearn_routes_standardised_rows():
    from sklearn.tree import DecisionTreeRegressor

    x, y = fraud_like(800, seed=22)
    scaler = Scaler.fit(x)
    z = scaler.transform(x)
    rng = np.random.default_rng(23)
    replay = np.random.default_rng(23)
    tree = fit_tree(z, y, scaler, rng)
    rows = replay.integers(0, len(y), len(y))
    model = DecisionTreeRegressor(max_features="sqrt",
                                  random_state=int(replay.integers(0, 2**31 - 1)))
    model.fit(z[rows], y[rows].astype(np.float64))
    probe, _ = fraud_like(3000, seed=24)
    expected = model.predict(scaler.transform(probe)).astype(np.float32)
    assert tree.n_nodes > 3
    assert np.array_equal(predict_tree(tree, probe), expected.astype(np.float64))


def test_container_round_trip_and_scores_match_numpy(tmp_path):
    x, y = fraud_like(500, seed=25)
    scaler = Scaler.fit(x)
    rng = np.random.default_rng(26)
    key = seeded_key("creator")
    trees = [fit_tree(scaler.transform(x), y, scaler, rng) for _ in range(4)]
    trees.append(random_tree(np.random.default_rng(27), n_features=6))
    forest = containers._forest(trees, len(FEATURES))
    body = fmt.encode_forest(forest)
    decoded = containers.decode_trees(body)
    assert fmt.encode_forest(containers._forest(decoded, len(FEATURES))) == body
    data = containers.one_tree_container(trees[0], creator=3, counter=7, round_=1,
                                         process_id="ab" * 32, feature_names=FEATURES,
                                         tree_params={}, signing_key=key,
                                         created="2026-01-01T00:00:00Z")
    again = containers.one_tree_container(trees[0], creator=3, counter=7, round_=1,
                                          process_id="ab" * 32, feature_names=FEATURES,
                                          tree_params={}, signing_key=key,
                                          created="2026-01-01T00:00:00Z")
    assert data == again  # deterministic: one tree, one store key
    model = pyastore.load(data, trusted_keys=[key.public_key], use_default_trust=False)
    probe, _ = fraud_like(400, seed=28)
    scores = model.score(probe.astype(np.float32))[:, 0]
    np.testing.assert_allclose(scores, predict_tree(decoded[0], probe), rtol=0, atol=1e-7)
    assert model.meta["provenance"]["federation"]["tree"] == {"creator": 3, "counter": 7,
                                                              "round": 1}
    assert model.meta["score_rules"]["cutoff"] == 0.5


def test_the_decision_is_the_methods_phi_above_one_half():
    from pyastore.ir import Tree

    key = seeded_key("creator")
    stump = Tree((0, -1, -1), (0.0, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (False,) * 3,
                 ((), (0.5,), (0.75,)))
    data = containers.one_tree_container(stump, creator=0, counter=0, round_=1,
                                         process_id="cd" * 32, feature_names=FEATURES,
                                         tree_params={}, signing_key=key,
                                         created="2026-01-01T00:00:00Z")
    model = pyastore.load(data, trusted_keys=[key.public_key], use_default_trust=False)
    rows = np.zeros((2, len(FEATURES)), dtype=np.float32)
    rows[0, 0], rows[1, 0] = -1.0, 1.0
    assert model.score(rows)[:, 0].tolist() == [0.5, 0.75]
    assert model.predict(rows) == [0, 1]  # exactly 0.5 is normal, above it an anomaly


def test_tree_id_text_round_trip_and_errors():
    assert TreeId.parse(TreeId(4, 12).text) == TreeId(4, 12)
    with pytest.raises(UsageError, match="not a tree id"):
        TreeId.parse("4-12")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 2**20))
def test_tree_id_round_trip(creator, counter):
    tree_id = TreeId(creator, counter)
    assert TreeId.parse(tree_id.text) == tree_id


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_decode_is_the_inverse_of_encode(seed):
    rng = np.random.default_rng(seed)
    trees = [random_tree(rng, n_features=6, max_depth=5) for _ in range(3)]
    body = fmt.encode_forest(containers._forest(trees, len(FEATURES)))
    decoded = containers.decode_trees(body)
    assert fmt.encode_forest(containers._forest(decoded, len(FEATURES))) == body
    probe = rng.normal(0, 2, (64, len(FEATURES)))
    for tree, again in zip(trees, decoded):
        assert np.array_equal(predict_tree(tree, probe), predict_tree(again, probe))
