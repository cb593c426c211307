"""The Python scoring API on the golden model: input kinds, name matching, bad input,
threads, the status-to-exception mapping."""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest

import golden_models
import pyastore
from pyastore import _core, errors
from pyastore.errors import InputError


@pytest.fixture(scope="module")
def model(golden_path, golden_pub):
    return pyastore.load(golden_path, trusted_keys=[golden_pub])


ROWS = golden_models.GOLDEN_ROWS


def expected(model):
    return [model.score_one(row) for row in ROWS]


def test_status_mapping_is_total():
    assert len(_core.STATUS_NAMES) == len(_core.STATUS_ERRORS) == 9
    assert _core.STATUS_ERRORS[0] is None
    for name in _core.STATUS_ERRORS[1:]:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.PyastoreError)
        assert cls.exit_code in range(1, 8)


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
    assert model.predict([list(r) for r in ROWS]) == [1 if s >= 0.5 else 0 for s in scores]


def test_empty_inputs(model):
    assert model.score([]) == []
    assert model.score(np.empty((0, 3))).shape == (0, 1)


@pytest.mark.parametrize("bad, message", [
    ([[1.0, 2.0]], "row 0 has 2 values"),
    ([[1.0, "abc", 2.0]], "row 0, column 'velocity': 'abc' is not a number"),
    ([[1.0, 2.0, 3.0], [1.0, [1], 2.0]], "row 1, column 'velocity'"),
])
def test_bad_lists(model, bad, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        model.score(bad)


def test_bad_arrays_and_frames(model):
    with pytest.raises(InputError, match="2 columns"):
        model.score(np.zeros((3, 2)))
    with pytest.raises(InputError, match="not numeric"):
        model.score(np.array([["a", "b", "c"]]))
    with pytest.raises(InputError, match="missing: velocity"):
        model.score(pd.DataFrame({"amount": [1.0], "age_days": [2.0]}))
    with pytest.raises(InputError, match="row 1, column 'amount': 'x' is not a number"):
        model.score(pd.DataFrame({"amount": [1.0, "x"], "velocity": [1, 2], "age_days": [0, 0]}))
    with pytest.raises(InputError, match="lacks input"):
        model.score({"amount": 1.0})
    with pytest.raises(InputError, match="has 2 values"):
        model.score_one([1.0, 2.0])
    with pytest.raises(InputError, match="value 1 of the row is not a number"):
        model.score_one([1.0, "x", 2.0])


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
    with pytest.raises(InputError, match="row 1, column 'age_days'"):
        model.score([[1.0, 1.0, 1.0], [1.0, 1.0, None]])
    with pytest.raises(InputError, match="row 0, column 'age_days'"):
        model.score(np.array([[1.0, 1.0, np.nan]]))
