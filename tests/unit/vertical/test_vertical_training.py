"""Party and host training, prediction by request, the exported containers, and the composed
container: bit for bit what the distributed path computes."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from pyastore import format as fmt
from pyastore import load
from pyastore.errors import InputError
from pyastore.ir import (
    Algorithm,
    ColumnTransform,
    Dense,
    Mlp,
    ModelSpec,
    Output,
    ScoreRules,
    Transforms,
    Variable,
)
from trainer.vertical import compose
from trainer.vertical.host import Host, HostConfig
from trainer.vertical.nets import TrainConfig
from trainer.vertical.party import PartyConfig, run_party
from vertical_testlib import PARTIES, make_federation, run_in_threads, write_data

TRAIN = TrainConfig(epochs=20, batch_size=32, learning_rate=0.01)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One whole round in threads: two parties and the host; the host then asks for every
    customer by pseudonym."""
    root = tmp_path_factory.mktemp("round")
    data = write_data(root / "data.csv")
    fed = make_federation(root)
    pseudonyms = [fed.id_key.pseudonym(str(i)) for i in data["id"]]

    def party(name):
        config = PartyConfig(name=name, columns=PARTIES[name], id_column="id", target="label",
                             seed=3, train=TRAIN, timeout=60)
        with fed.exchange(name) as exchange:
            return run_party(config, root / "data.csv", exchange, fed.id_key, root / name)

    def host():
        with fed.exchange("host") as exchange:
            side = Host(HostConfig(seed=3, train=TRAIN, timeout=60), exchange)
            result = side.train(root / "host", fed.signing["host"])
            scores = side.predict(pseudonyms)
            with pytest.raises(InputError, match="does not hold 1 of the 2 customers"):
                side.predict([pseudonyms[0], b"\x01" * 32])
            side.close_round()
            return result, scores

    results = run_in_threads({"personal": lambda: party("personal"),
                              "bank": lambda: party("bank"), "host": host})
    return fed, data, results, root


def _load(path, fed, name):
    return load(path, trusted_keys=[fed.signing[name].public_key], use_default_trust=False)


def _raw(data, names):
    return np.stack([data[c] for c in names], axis=1)


def test_round_trains_every_side_and_predicts_by_request(trained):
    fed, data, results, root = trained
    host_result, scores = results["host"]
    assert host_result.n_train == 168 and results["personal"].n_test == 72
    assert host_result.input_names == ("personal.h0", "personal.h1", "personal.h2",
                                       "personal.h3", "bank.h0", "bank.h1", "bank.h2")
    assert len(host_result.curve.loss) == TRAIN.epochs
    assert host_result.curve.loss[-1] < host_result.curve.loss[0]
    assert scores.shape == (240,) and np.ptp(scores) > 0.5  # the host learnt something
    for name in PARTIES:
        assert results[name].requests_served == 2  # the full request and the one refused
        report = json.loads((root / name / "metrics.json").read_text())
        assert set(report["metrics"]) >= {"accuracy", "macro_f1", "f1_1"}
        assert sum(report["test_class_counts"]) == 72
    host_model = _load(root / "host" / "host.astore", fed, "host")
    assert host_model.meta["score_rules"]["task"] == "binary"


def test_encoder_container_is_the_networks_third_hidden_layer(trained):
    fed, data, results, root = trained
    encoder = _load(results["personal"].encoder_path, fed, "personal")
    assert encoder.meta["score_rules"]["task"] == "embedding"
    assert encoder.input_names == PARTIES["personal"]
    assert [layer["units"] for layer in encoder.meta["payload"]["layers"]] == [4, 8, 4]
    assert all(t["scaling"] == "standardize" for t in encoder.meta["transforms"])
    values = encoder.score(_raw(data, PARTIES["personal"]))
    assert values.shape == (240, 4) and (values >= 0).all() and np.ptp(values) > 0
    alone = _load(results["personal"].model_path, fed, "personal")
    assert alone.meta["score_rules"]["task"] == "binary"


def test_composed_container_equals_the_distributed_path_bit_for_bit(trained):
    fed, data, results, root = trained
    encoders = [_load(results[name].encoder_path, fed, name) for name in PARTIES]
    host = _load(results["host"][0].model_path, fed, "host")
    spec = compose.composed_spec(encoders, host)
    composed = _load(fmt.write(spec, fed.signing["host"]), fed, "host")
    names = [c for cols in PARTIES.values() for c in cols]
    assert composed.input_names == tuple(names)
    one_call = composed.score(_raw(data, names))[:, 0]
    distributed = results["host"][1]
    assert np.array_equal(one_call.view(np.uint64), distributed.view(np.uint64))
    # the same rows in another column order (a DataFrame-like dict of columns by name)
    import pandas as pd

    frame = pd.DataFrame({c: data[c] for c in reversed(names)})
    assert np.array_equal(composed.score(frame)[:, 0].view(np.uint64),
                          distributed.view(np.uint64))
    # one event at a time takes the single-row path of the C core: the same bits again
    single = [composed.score_one(list(row))[0] for row in _raw(data, names)[:16]]
    assert np.array_equal(np.asarray(single).view(np.uint64), distributed[:16].view(np.uint64))


def test_composed_layers_are_block_diagonal_with_exact_zeros(trained):
    fed, data, results, root = trained
    encoders = [_load(results[name].encoder_path, fed, name) for name in PARTIES]
    host = _load(results["host"][0].model_path, fed, "host")
    spec = compose.composed_spec(encoders, host)
    parts = [compose.mlp_of(e) for e in encoders]
    for k in range(3):
        layer = np.asarray(spec.mlp.layers[k].weights)
        a, b = np.asarray(parts[0].layers[k].weights), np.asarray(parts[1].layers[k].weights)
        assert np.array_equal(layer[:a.shape[0], :a.shape[1]], a)
        assert np.array_equal(layer[a.shape[0]:, a.shape[1]:], b)
        off = np.concatenate([layer[:a.shape[0], a.shape[1]:].ravel(),
                              layer[a.shape[0]:, :a.shape[1]].ravel()])
        assert (off == 0).all() and not np.signbit(off).any()
    assert spec.mlp.layers[3:] == compose.mlp_of(host).layers
    assert [c.source for c in spec.transforms.columns] == list(range(7))


# ---- the -0.0 case, made on purpose -----------------------------------------------------


def _spec(name, inputs, layers, transforms, outputs, task):
    return ModelSpec(name=name, algorithm=Algorithm("mlp", "handmade", "1"),
                     inputs=tuple(Variable(n, missing="error") for n in inputs),
                     outputs=tuple(Output(o, "value") for o in outputs),
                     rules=ScoreRules(task=task, class_labels=(0, 1) if task == "binary" else (),
                                      cutoff=0.5 if task == "binary" else None),
                     mlp=Mlp(tuple(layers)), transforms=transforms)


def _encoder(name, weight, bias):
    layers = [Dense(((weight,),), (bias,), "relu") for _ in range(3)]
    xfrm = Transforms(1, (ColumnTransform(0, scaling="standardize", a=0.0, b=1.0),))
    return _spec(name, [name], layers, xfrm, ["h0"], "embedding")


def test_a_negative_zero_sum_changes_only_the_sign_of_a_zero(tmp_path):
    """Party a's unit sums to -0.0 on its own (bias -0.0 plus 1 * -0.0); in the composed
    layer the product with party b's input adds +0.0, which turns it into +0.0. The output,
    a sigmoid of the host's sum, must not see the difference."""
    from pyastore.keys import SigningKey

    key = SigningKey(b"\x05" * 32)

    def loaded(spec):
        return load(fmt.write(spec, key), trusted_keys=[key.public_key], use_default_trust=False)

    encoder_a, encoder_b = loaded(_encoder("a", 1.0, -0.0)), loaded(_encoder("b", 2.0, 0.5))
    host = loaded(_spec("host", ["a.h0", "b.h0"], [Dense(((3.0, 0.25),), (-0.0,), "sigmoid")],
                        None, ["P_1"], "binary"))
    rows = np.array([[-0.0, 3.0], [-0.0, -7.0], [0.0, 1.5], [2.5, -0.0]], dtype=np.float64)
    h_a = encoder_a.score(rows[:, :1])
    h_b = encoder_b.score(rows[:, 1:])
    assert h_a[0, 0] == 0 and math.copysign(1.0, h_a[0, 0]) == -1.0  # the party's -0.0
    distributed = host.score(np.hstack([h_a, h_b]).astype(np.float32))[:, 0]
    spec = compose.composed_spec([encoder_a, encoder_b], host)
    # the composed encoder layers alone show the other sign
    inner = loaded(_spec("inner", ["a", "b"], spec.mlp.layers[:3], spec.transforms,
                         ["h0", "h1"], "embedding"))
    h = inner.score(rows)
    assert h[0, 0] == 0 and math.copysign(1.0, h[0, 0]) == 1.0
    assert np.array_equal(h[:, 1].view(np.uint64), h_b[:, 0].view(np.uint64))
    composed = loaded(spec).score(rows)[:, 0]
    assert np.array_equal(composed.view(np.uint64), distributed.view(np.uint64))
    assert struct.pack("<d", composed[0]) == struct.pack("<d", distributed[0])


def test_composition_refuses_parts_that_do_not_fit(tmp_path):
    from pyastore.errors import UnsupportedModelError
    from pyastore.keys import SigningKey

    key = SigningKey(b"\x06" * 32)

    def loaded(spec):
        return load(fmt.write(spec, key), trusted_keys=[key.public_key], use_default_trust=False)

    a, b = loaded(_encoder("a", 1.0, 0.1)), loaded(_encoder("b", 1.0, 0.2))
    host = loaded(_spec("host", ["x", "y", "z"], [Dense(((1.0, 1.0, 1.0),), (0.0,), "sigmoid")],
                        None, ["P_1"], "binary"))
    with pytest.raises(UnsupportedModelError, match="the host reads 3 values but the encoders "
                                                    "give 2"):
        compose.composed_spec([a, b], host)
    pair = loaded(_spec("host", ["x", "y"], [Dense(((1.0, 1.0),), (0.0,), "sigmoid")], None,
                        ["P_1"], "binary"))
    with pytest.raises(UnsupportedModelError, match="share input column"):
        compose.composed_spec([a, a], pair)
    with pytest.raises(UnsupportedModelError, match="not an encoder"):
        compose.composed_spec([a, pair], loaded(_spec(
            "host", ["x", "y"], [Dense(((1.0, 1.0),), (0.0,), "sigmoid")], None, ["P_1"],
            "binary")))
