"""Golden containers: pinned bytes, store keys and scores of format 1.0.

A failure here means the writer's output changed. If that is deliberate (a format change),
bump the format version as docs/FORMAT.md says and regenerate with ``--update-goldens``.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest

import golden_models
import pyastore
from conftest import GOLDEN_DIR


@pytest.fixture(scope="module", autouse=True)
def maybe_regenerate(update_goldens):
    if update_goldens:
        golden_models.write_all()


def manifest():
    return json.loads((GOLDEN_DIR / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(golden_models.GOLDEN))
def test_golden_bytes_are_reproduced(name):
    committed = (GOLDEN_DIR / f"{name}.astore").read_bytes()
    assert golden_models.build(name) == committed


@pytest.mark.parametrize("name", sorted(golden_models.GOLDEN))
def test_golden_store_key(name, golden_pub, isolated_trust):
    entry = manifest()[name]
    path = GOLDEN_DIR / f"{name}.astore"
    data = path.read_bytes()
    assert len(data) == entry["bytes"]
    assert hashlib.sha256(data[:-136]).hexdigest() == entry["store_key"]
    model = pyastore.load(path, trusted_keys=[golden_pub], allow_unsigned=name.endswith("unsigned"))
    assert model.store_key == entry["store_key"]


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_golden_scores_match_hand_computation(golden_path, golden_pub):
    """The trees of tiny_forest_spec() written out as if/else, NaN going the default way."""
    model = pyastore.load(golden_path, trusted_keys=[golden_pub])
    t1 = {"left": -1.25, "mid": 0.5, "right": 2.0}

    def by_hand(a, b, c):
        tree1 = (
            t1["left"] if (a < 0.5 or math.isnan(a)) else (t1["mid"] if b < 1.5 else t1["right"])
        )
        if not math.isnan(b) and b < 2.0:
            if c < 0.25 or math.isnan(c):
                tree2 = 1.5 if (not math.isnan(a) and a < -1.0) else -2.0
            else:
                tree2 = -0.5
        else:
            tree2 = 0.75
        return _sigmoid(tree1 + tree2 - 0.25)

    for row in golden_models.GOLDEN_ROWS:
        assert model.score_one(row) == [pytest.approx(by_hand(*row), abs=1e-15)], row
    # one value worked through: [0, 0, 0] -> tree 1 left leaf -1.25, tree 2 -2.0, base -0.25
    assert model.score_one([0, 0, 0])[0] == pytest.approx(_sigmoid(-3.5), abs=1e-15)
