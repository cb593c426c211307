"""The Python scoring API on the golden model: input kinds, name matching, bad input,
threads, the one low-level entry (score_into) and the one decision rule (decide)."""

from __future__ import annotations

import math
import threading
from array import array

import numpy as np
import pandas as pd
import pytest

import golden_models
import pyastore
from pyastore.errors import InputError, UsageError


@pytest.fixture(scope="module")
def model(golden_path, golden_pub):
    return pyastore.load(golden_path, trusted_keys=[golden_pub])


ROWS = golden_models.GOLDEN_ROWS


def expected(model):
    return [model.score_one(row) for row in ROWS]


def test_all_input_kinds_agree(model):
    want = expected(model)
    array = np.array(ROWS, dtype=np.float64)
    assert model.score(array).tolist() == want
    assert model.score(np.asfortranarray(array)).tolist() == want
    assert model.score(array.astype(np.float32)).tolist() == want
    assert model.score([list(r) for r in ROWS]) == want
    frame = pd.DataFrame(ROWS, columns=list(model.input_names))
    assert model.score(frame).tolist() == want
    reordered = frame[["age_days", "amount", "velocity"]].assign(extra="ignored")
    assert model.score(reordered).tolist() == want
    one = dict(zip(model.input_names, ROWS[1]))
    assert model.score(one) == {"P_fraud": want[1][0]}
    assert model.score_one(one) == want[1]


def test_none_means_missing(model):
    assert model.score_one([None, 3.0, 0.25]) == model.score_one([math.nan, 3.0, 0.25])
    assert model.score([[None, 3.0, 0.25]]) == [model.score_one([math.nan, 3.0, 0.25])]


def test_predict_uses_cutoff(model):
    scores = [r[0] for r in expected(model)]
    assert model.predict([list(r) for r in ROWS]) == [1 if s > 0.5 else 0 for s in scores]
    low = min(scores)
    assert model.predict([list(r) for r in ROWS], cutoff=low) == [int(s > low) for s in scores]


def test_decide_is_strict_at_the_cutoff(model):
    assert model.cutoff == 0.5 and model.decides
    assert model.decide([0.5]) == 0  # at the cutoff: negative, as sklearn/xgboost predict
    assert model.decide([0.5000001]) == 1
    assert model.decide([0.7], cutoff=0.7) == 0
    assert model.decide([0.7], cutoff=0.69) == 1


def test_score_into_is_the_entry_every_path_ends_in(model):
    want = expected(model)
    flat = array("f", [v for row in ROWS for v in row])
    out = array("d", bytes(8 * len(ROWS)))
    assert model.score_into(flat, out) == len(ROWS)
    assert [[v] for v in out] == want
    x = np.array(ROWS, dtype=np.float32)
    y = np.empty((len(ROWS), 1))
    assert model.score_into(x, y, n_threads=2) == len(ROWS)
    assert y.tolist() == want
    assert list(model.invalid_rows(flat)) == []  # this model accepts missing values
    with pytest.raises(InputError, match="whole rows"):
        model.score_into(array("f", [1.0, 2.0]), array("d", [0.0]))


def test_empty_inputs(model):
    assert model.score([]) == []
    assert model.score(np.empty((0, 3))).shape == (0, 1)


@pytest.mark.parametrize("bad, message", [
    ([[1.0, 2.0]], "row 1 has 2 values"),
    ([[1.0, "abc", 2.0]], "row 1, column 'velocity': 'abc' is not a number"),
    ([[1.0, 2.0, 3.0], [1.0, [1], 2.0]], "row 2, column 'velocity'"),
])
def test_bad_lists(model, bad, message):
    """Rows in messages count from 1; InputError.row is the 0-based index."""
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
        model.score(bad)
    assert caught.value.row == len(bad) - 1


def test_text_cells_and_missing_words_in_lists(model):
    assert model.score([["1.5", "NA", " 2 "]]) == model.score([[1.5, None, 2.0]])
    assert model.score_one(["1.5", "NA", " 2 "]) == model.score_one([1.5, None, 2.0])


def test_bad_arrays_and_frames(model):
    with pytest.raises(InputError, match="2 columns"):
        model.score(np.zeros((3, 2)))
    with pytest.raises(InputError, match="not numeric"):
        model.score(np.array([["a", "b", "c"]]))
    with pytest.raises(InputError, match="missing: velocity"):
        model.score(pd.DataFrame({"amount": [1.0], "age_days": [2.0]}))
    with pytest.raises(InputError, match="row 2, column 'amount': 'x' is not a number"):
        model.score(pd.DataFrame({"amount": [1.0, "x"], "velocity": [1, 2], "age_days": [0, 0]}))
    with pytest.raises(InputError, match="lacks input"):
        model.score({"amount": 1.0})
    with pytest.raises(InputError, match="has 2 values"):
        model.score_one([1.0, 2.0])
    with pytest.raises(InputError, match="column 'velocity': 'x' is not a number") as caught:
        model.score_one([1.0, "x", 2.0])
    assert (caught.value.row, caught.value.column) == (None, 1)


def test_threads_give_identical_results_and_share_the_model(model):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20000, 3)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    single = model.score(x, n_threads=1)
    assert np.array_equal(model.score(x, n_threads=2), single)
    assert np.array_equal(model.score(x, n_threads=7), single)
    results = [None] * 4

    def work(i):
        results[i] = model.score(x, n_threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, single) for r in results)


def test_load_warns_when_allowing(golden_path, isolated_trust):
    with pytest.warns(pyastore.SecurityWarning, match="NOT trusted"):
        pyastore.load(golden_path, allow_untrusted=True)
    with pytest.warns(pyastore.SecurityWarning, match="UNSIGNED"):
        pyastore.load(golden_models.build("tiny_forest_unsigned"), allow_unsigned=True)


def test_missing_policy_error_is_enforced(isolated_trust):
    import dataclasses

    from pyastore import format as fmt

    spec = golden_models.tiny_forest_spec()
    inputs = (spec.inputs[0], spec.inputs[1], dataclasses.replace(spec.inputs[2], missing="error"))
    data = fmt.write(dataclasses.replace(spec, inputs=inputs), golden_models.golden_key(),
                     created=golden_models.CREATED)
    model = pyastore.load(data, trusted_keys=[golden_models.golden_key().public_key])
    assert model.score_one([math.nan, 1.0, 2.0])  # amount may be missing
    with pytest.raises(InputError, match="'age_days': missing value"):
        model.score_one([1.0, 1.0, math.nan])
    assert model.accepts_missing == (True, True, False)
    with pytest.raises(InputError, match="row 2, column 'age_days'") as caught:
        model.score([[1.0, 1.0, 1.0], [1.0, 1.0, None]])
    assert (caught.value.row, caught.value.column) == (1, 2)
    with pytest.raises(InputError, match="row 1, column 'age_days'"):
        model.score(np.array([[1.0, 1.0, np.nan]]))
    flat = array("f", [1, 1, math.nan, 1, 1, 1, 1, 1, math.nan])
    assert [row for row, _ in model.invalid_rows(flat)] == [0, 2]
    out = array("d", [7.0] * 3)
    with pytest.raises(InputError, match="row 2, column 'age_days'"):
        model.score_into(flat[3:], out)
    assert list(out) == [7.0] * 3  # nothing scored


def test_embeddings_have_no_decision(isolated_trust):
    import dataclasses

    from pyastore import format as fmt
    from pyastore.ir import ScoreRules

    spec = golden_models.tiny_forest_spec()
    spec = dataclasses.replace(spec, rules=ScoreRules(task="embedding"))
    data = fmt.write(spec, golden_models.golden_key(), created=golden_models.CREATED)
    model = pyastore.load(data, trusted_keys=[golden_models.golden_key().public_key])
    assert not model.decides and model.cutoff is None
    with pytest.raises(UsageError, match="'embedding'"):
        model.predict([[1.0, 2.0, 3.0]])
    with pytest.raises(UsageError, match="not a decision"):
        model.decide([0.3])


def test_nan_outputs_have_no_decision(model):
    with pytest.raises(InputError, match=r"\(nan\) include NaN: no decision"):
        model.decide([math.nan])
    assert model.decide([math.inf]) == 1 and model.decide([-math.inf]) == 0
