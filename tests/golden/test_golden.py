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


def test_golden_categorical_scores_match_hand_computation(golden_pub, isolated_trust):
    """The trees of tiny_categorical_spec() written out as if/else over the texts: merchant
    m01, m03 or m35 goes left at tree 1's root; an unseen or missing merchant is missing and
    takes the default (right) side; channel app or web goes left at tree 2's root, missing
    or unseen goes left (its default)."""
    from golden_models import CHANNELS, MERCHANTS

    model = pyastore.load(GOLDEN_DIR / "tiny_categorical.astore", trusted_keys=[golden_pub])
    assert model.format_version == (1, 2)

    def by_hand(merchant, amount, channel):
        known_merchant = merchant in MERCHANTS
        if known_merchant and merchant in ("m01", "m03", "m35"):
            tree1 = 1.0
        else:
            tree1 = 0.25 if (amount is None or math.isnan(amount) or amount < 100.0) else 0.5
        if channel not in CHANNELS or channel in ("app", "web"):
            tree2 = 4.0 if known_merchant and merchant == "m34" else 2.0
        else:
            tree2 = 8.0
        return tree1 + tree2

    merchants = [*MERCHANTS, "m40", "M01", "", None, "unknown"]
    rows = [[m, a, c] for m in merchants for a in (0.0, 100.0, 99.5, math.nan)
            for c in (*CHANNELS, "tv", None)]
    for row in rows:
        assert model.score_one(row) == [by_hand(*row)], row
    assert model.score_one({"merchant": "m35", "amount": 1e6, "channel": "pos"}) == [9.0]
    assert model.score_one(["m34", 5.0, "web"]) == [4.25]
