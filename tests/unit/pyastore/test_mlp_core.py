"""The MLP_ payload through the writer and the C core: the golden network, random networks
against torch (hypothesis), bit-identical results for any thread count, block size and
instruction set, the format version, and what the writer and reader refuse."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden_models
import pyastore
from conftest import GOLDEN_DIR, ROOT
from pyastore import _core
from pyastore import format as fmt
from pyastore.errors import UnsupportedModelError
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

torch = pytest.importorskip("torch")

CREATED = "2026-01-01T00:00:00Z"
ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "softmax")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def load_unsigned(spec_or_bytes) -> pyastore.Model:
    """Loads a spec (written unsigned) or container bytes, whoever signed them."""
    data = spec_or_bytes if isinstance(spec_or_bytes, bytes) else fmt.write(
        spec_or_bytes, None, created=CREATED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyastore.load(data, allow_unsigned=True, allow_untrusted=True,
                             use_default_trust=False)


def random_layers(sizes, activations, seed) -> tuple[Dense, ...]:
    """Dense layers with float32-exact weights of torch's default scale."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, activation in enumerate(activations):
        bound = 1.0 / math.sqrt(sizes[k])
        weights = rng.uniform(-bound, bound, (sizes[k + 1], sizes[k])).astype(np.float32)
        bias = rng.uniform(-bound, bound, sizes[k + 1]).astype(np.float32)
        layers.append(Dense(tuple(map(tuple, weights.astype(np.float64).tolist())),
                            tuple(bias.astype(np.float64).tolist()), activation,
                            0.0625 if activation == "leaky_relu" else 0.0))
    return tuple(layers)


def mlp_spec(layers, transforms=None, n_inputs=None) -> ModelSpec:
    n_inputs = n_inputs or layers[0].n_in
    return ModelSpec(
        name="test-mlp", algorithm=Algorithm("mlp", "test", "1"),
        inputs=tuple(Variable(f"x{i}", missing="as_missing") for i in range(n_inputs)),
        outputs=tuple(Output(f"h{j}", "value") for j in range(layers[-1].n_out)),
        rules=ScoreRules("embedding"), mlp=Mlp(tuple(layers)), transforms=transforms)


def torch_network(layers) -> torch.nn.Sequential:
    modules = []
    for layer in layers:
        linear = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(layer.weights, dtype=torch.float32))
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float32))
        modules.append(linear)
        modules.append({"identity": torch.nn.Identity(), "relu": torch.nn.ReLU(),
                        "leaky_relu": torch.nn.LeakyReLU(layer.alpha), "tanh": torch.nn.Tanh(),
                        "sigmoid": torch.nn.Sigmoid(),
                        "softmax": torch.nn.Softmax(dim=1)}[layer.activation])
    return torch.nn.Sequential(*modules).eval()


# ---- the golden network -------------------------------------------------------------------

# The golden network's outputs for golden_models.GOLDEN_ROWS, as float64 bit patterns: the
# core computes in float32 with its own exp, so these are the same on every platform and
# instruction set (a NaN is recorded as "nan": IEEE 754 leaves its sign and payload to the
# CPU). After a deliberate change: pytest --update-goldens
GOLDEN_MLP_SCORES = "tiny_mlp_scores.json"


def score_bits(values) -> list[str]:
    return ["nan" if math.isnan(v) else struct.pack("<d", v).hex() for v in values]


def pin_golden_scores() -> None:
    model = load_unsigned(golden_models.build("tiny_mlp"))
    scores = [score_bits(model.score_one(row)) for row in golden_models.GOLDEN_ROWS]
    rows = [[repr(v) for v in row] for row in golden_models.GOLDEN_ROWS]
    lines = ",\n  ".join(json.dumps(row) for row in scores)
    (GOLDEN_DIR / GOLDEN_MLP_SCORES).write_text(
        f'{{"rows": {json.dumps(rows)},\n "scores": [\n  {lines}]}}\n')


def golden_reference(row):
    """tiny_mlp_spec() evaluated in float64 from its definition (docs/FORMAT.md)."""
    spec = golden_models.tiny_mlp_spec()
    x = []
    for column in spec.transforms.columns:
        v = row[column.source]
        if math.isnan(v) and column.impute is not None:
            v = column.impute
        if column.scaling == "standardize":
            v = (v - column.a) / column.b
        elif column.scaling == "affine":
            v = v * column.a + column.b
        x.append(float(np.float32(v)))
    for layer in spec.mlp.layers:
        z = [
            b + sum(w * xi for w, xi in zip(row_w, x))
            for row_w, b in zip(layer.weights, layer.bias)
        ]
        if layer.activation == "relu":
            x = [max(v, 0.0) for v in z]
        elif layer.activation == "leaky_relu":
            x = [v if v >= 0 else layer.alpha * v for v in z]
        elif layer.activation == "tanh":
            x = [math.tanh(v) for v in z]
        elif layer.activation == "sigmoid":
            x = [1 / (1 + math.exp(-v)) for v in z]
        elif layer.activation == "softmax":
            top = max(z)
            e = [math.exp(v - top) for v in z]
            x = [v / sum(e) for v in e]
        else:
            x = z
    return x


def test_golden_mlp_scores_match_its_definition_and_pinned_bits(golden_pub, update_goldens):
    """With ``--update-goldens`` the pinned bits are rewritten first (the comparison with the
    float64 definition still has to hold)."""
    if update_goldens:
        pin_golden_scores()
    model = pyastore.load(GOLDEN_DIR / "tiny_mlp.astore", trusted_keys=[golden_pub])
    assert model.format_version == (1, 1)
    assert [s[0] for s in model.sections()] == ["META", "XFRM", "MLP_", "SIGN"]
    assert model.output_names == ("P_low", "P_mid", "P_high")
    pinned = json.loads((GOLDEN_DIR / GOLDEN_MLP_SCORES).read_text())
    scores = [model.score_one(row) for row in golden_models.GOLDEN_ROWS]
    for row, got in zip(golden_models.GOLDEN_ROWS, scores):
        assert got == pytest.approx(golden_reference(row), abs=1e-6, nan_ok=True), row
    assert [score_bits(row) for row in scores] == pinned["scores"]


def test_golden_mlp_meta_describes_transforms_and_layers(golden_pub):
    model = pyastore.load(GOLDEN_DIR / "tiny_mlp.astore", trusted_keys=[golden_pub])
    meta = model.meta
    assert meta["payload"]["kind"] == "mlp"
    assert [layer["units"] for layer in meta["payload"]["layers"]] == [4, 4, 3, 3, 3, 3]
    assert meta["payload"]["layers"][1] == {"inputs": 4, "units": 4,
                                            "activation": "leaky_relu", "alpha": 0.125}
    assert meta["transforms"][0] == {"column": 0, "source": 2, "input": "age_days",
                                     "impute": 1.0, "scaling": "standardize", "center": 0.5,
                                     "scale": 2.0}
    assert meta["transforms"][1]["scaling"] == "affine"
    assert meta["transforms"][2] == {"column": 2, "source": 1, "input": "velocity",
                                     "impute": -1.0, "scaling": "none"}


def test_each_file_declares_the_minor_its_sections_need():
    """Numeric forests stay 1.0 (byte for byte the old golden), networks are 1.1, forests
    with categorical splits 1.2; the reader reads up to 1.2."""
    forest = fmt.write(golden_models.tiny_forest_spec(), None, created=CREATED)
    assert struct.unpack_from("<HH", forest, 8) == (1, 0)
    assert forest == (GOLDEN_DIR / "tiny_forest_unsigned.astore").read_bytes()
    layers = random_layers([3, 2], ["sigmoid"], 0)
    data = fmt.write(mlp_spec(layers), None, created=CREATED)
    assert struct.unpack_from("<HH", data, 8) == (1, 1)
    assert b"format: 1.1\n" in load_unsigned(data)._container.signed_message
    categorical = fmt.write(golden_models.tiny_categorical_spec(), None, created=CREATED)
    assert struct.unpack_from("<HH", categorical, 8) == (1, 2)
    assert b"format: 1.2\n" in load_unsigned(categorical)._container.signed_message
    assert _core.FORMAT_VERSION == (1, 2)


def test_mlp_section_layout_is_aligned_and_in_place():
    layers = random_layers([5, 7, 3], ["relu", "softmax"], 1)
    data = fmt.write(mlp_spec(layers), None, created=CREATED)
    model = load_unsigned(data)
    section = {t: (offset, length) for t, _, offset, length in model.sections()}["MLP_"]
    body = data[section[0]:section[0] + section[1]]
    n_layers, n_features, n_outputs, table, flags = struct.unpack_from("<5I", body, 0)
    assert (n_layers, n_features, n_outputs, table, flags) == (2, 5, 3, 64, 0)
    for k, layer in enumerate(layers):
        n_in, n_out, activation, alpha, w_off, b_off, r0, r1 = struct.unpack_from(
            "<3If4I", body, table + 32 * k)
        assert (n_in, n_out, ACTIVATIONS[activation], r0, r1) == (
            layer.n_in, layer.n_out, layer.activation, 0, 0)
        assert w_off % 64 == 0 and b_off % 64 == 0 and section[0] % 64 == 0
        weights = struct.unpack_from(f"<{n_in * n_out}f", body, w_off)
        assert weights == tuple(v for row in layer.weights for v in row)  # [out][in]
        assert struct.unpack_from(f"<{n_out}f", body, b_off) == layer.bias


# ---- random networks against torch ----------------------------------------------------------

@st.composite
def networks(draw):
    depth = draw(st.integers(1, 6))
    sizes = [draw(st.integers(1, 256)) for _ in range(depth + 1)]
    activations = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth)]
    return sizes, activations, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(network=networks(), n_rows=st.integers(1, 300))
def test_random_networks_match_torch(network, n_rows):
    sizes, activations, seed = network
    layers = random_layers(sizes, activations, seed)
    model = load_unsigned(mlp_spec(layers))
    x = np.random.default_rng(seed + 1).normal(0, 2, (n_rows, sizes[0])).astype(np.float32)
    with torch.no_grad():
        want = torch_network(layers)(torch.from_numpy(x)).double().numpy()
    got = model.score(x)
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-5 * scale, (sizes, activations)
    one = model.score_one(x[-1].tolist())
    assert one == got[-1].tolist()  # the single-event path gives the same bits


def test_special_values_propagate_like_torch():
    layers = random_layers([4, 6, 3], ["relu", "softmax"], 3)
    model = load_unsigned(mlp_spec(layers))
    x = np.array([[np.nan, 0, 0, 0], [np.inf, 1, 1, 1], [-np.inf, 0, 0, 0], [1e30, -1e30, 0, 0],
                  [0, 0, 0, 0]], dtype=np.float32)
    with torch.no_grad():
        want = torch_network(layers)(torch.from_numpy(x)).double().numpy()
    got = model.score(x)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    assert np.abs(got[finite] - want[finite]).max() <= 1e-6


def test_activation_extremes():
    """exp over- and underflow: sigmoid saturates to exactly 0 and 1, softmax stays a
    distribution, tanh reaches +-1."""
    spec = mlp_spec((Dense(((1.0,), (-1.0,), (0.5,)), (0.0, 0.0, 0.0), "sigmoid"),))
    model = load_unsigned(spec)
    got = model.score(np.array([[200.0], [-200.0], [88.0], [-88.0], [0.0]], dtype=np.float32))
    assert got[0].tolist()[:2] == [1.0, 0.0] and got[1].tolist()[:2] == [0.0, 1.0]
    assert got[4].tolist() == [0.5, 0.5, 0.5]
    tanh = load_unsigned(mlp_spec((Dense(((1.0,),), (0.0,), "tanh"),)))
    values = tanh.score(np.array([[50.0], [-50.0], [1e-3], [0.3]], dtype=np.float32))[:, 0]
    assert values[0] == 1.0 and values[1] == -1.0
    assert values[2] == pytest.approx(math.tanh(1e-3), rel=1e-6)
    assert values[3] == pytest.approx(math.tanh(0.3), abs=1e-7)
    softmax = load_unsigned(mlp_spec((Dense(((1.0,), (-1.0,)), (0.0, 0.0), "softmax"),)))
    for row in softmax.score(np.array([[500.0], [-500.0], [0.0]], dtype=np.float32)):
        assert row.sum() == pytest.approx(1.0, abs=1e-7)


# ---- bit-identical results ------------------------------------------------------------------

def invariance_model() -> tuple[pyastore.Model, np.ndarray]:
    layers = random_layers([30, 128, 64, 5], ["tanh", "leaky_relu", "softmax"], 4)
    transforms = Transforms(31, tuple(
        ColumnTransform(source=i + 1, impute=0.5 if i % 3 == 0 else None,
                        scaling=("standardize", "affine", "none")[i % 3],
                        a=(0.25, 2.0, 0.0)[i % 3], b=(3.0, -1.0, 0.0)[i % 3]) for i in range(30)))
    model = load_unsigned(mlp_spec(layers, transforms, n_inputs=31))
    x = np.random.default_rng(5).normal(size=(5003, 31)).astype(np.float32)
    x[::7, 1] = np.nan
    return model, x


def test_thread_counts_and_blocks_give_identical_bits():
    model, x = invariance_model()
    reference = model.score(x, n_threads=1)
    for threads in (2, 3, 8):
        assert np.array_equal(model.score(x, n_threads=threads), reference, equal_nan=True)
    pieces = np.concatenate([model.score(x[i:i + 37]) for i in range(0, len(x), 37)])
    assert np.array_equal(pieces, reference, equal_nan=True)
    singles = np.array([model.score_one(row) for row in x[:50].tolist()])
    assert np.array_equal(singles, reference[:50], equal_nan=True)


KERNEL_SCRIPT = """
import sys, warnings, numpy as np, pyastore
warnings.simplefilter("ignore")
model = pyastore.load(open(sys.argv[1], "rb").read(), allow_unsigned=True)
x = np.load(sys.argv[2])
sys.stdout.write(model.score(x).tobytes().hex())
"""


def test_every_instruction_set_gives_identical_bits(tmp_path):
    """The core picks AVX-512, AVX or 4-lane vectors at load (ASTORE_MLP_KERNEL forces a
    narrower one): each lane computes the same float32 operations, so the bits agree."""
    model, x = invariance_model()
    container, rows = tmp_path / "model.astore", tmp_path / "rows.npy"
    container.write_bytes(model.container_bytes)
    np.save(rows, x)
    outputs = {}
    for kernel in ("", "avx", "generic"):
        env = dict(os.environ, ASTORE_MLP_KERNEL=kernel, PYTHONPATH=str(ROOT))
        result = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT, str(container), str(rows)],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs[kernel] = result.stdout
    assert outputs[""] == outputs["avx"] == outputs["generic"]
    assert outputs[""] == model.score(x).tobytes().hex()


# ---- refusals -------------------------------------------------------------------------------

def _layer(n_in, n_out, activation="relu", alpha=0.0, value=0.5):
    return Dense(tuple((value,) * n_in for _ in range(n_out)), (0.0,) * n_out, activation, alpha)


@pytest.mark.parametrize("layers, message", [
    ((_layer(3, 4), _layer(5, 2)), "takes 5 inputs but layer 0 gives 4"),
    ((_layer(3, 4, "gelu"),), "unknown activation"),
    ((_layer(3, 4, "relu", 0.1),), "alpha is for leaky_relu"),
    ((_layer(3, 4, "leaky_relu", float("inf")),), "slope"),
    ((_layer(3, 4, value=float("nan")),), "NaN or infinite"),
    ((_layer(3, 4, value=1e39),), "too large for float32"),
    ((_layer(3, 1025),), "at most 1024 units"),
    ((Dense(((1.0, 2.0), (1.0,)), (0.0, 0.0)),), "equal length"),
    ((Dense(((1.0,),), (0.0, 1.0)),), "2 biases for 1 units"),
    ((), "at least one layer"),
])
def test_writer_refuses_malformed_networks(layers, message):
    with pytest.raises(UnsupportedModelError, match=message):
        fmt.encode_mlp(Mlp(layers))


@pytest.mark.parametrize("columns, n_inputs, message", [
    ((ColumnTransform(source=3),), 3, "source 3"),
    ((ColumnTransform(source=0, scaling="log"),), 3, "unknown scaling"),
    ((ColumnTransform(source=0, scaling="standardize", a=1.0, b=0.0),), 3, "divide by zero"),
    ((ColumnTransform(source=0, scaling="affine", a=float("inf"), b=0.0),), 3, "not finite"),
    ((ColumnTransform(source=0, a=1.0),), 3, "must be 0 without scaling"),
    ((ColumnTransform(source=0, impute=float("nan")),), 3, "imputation value"),
    ((), 3, "at least one column"),
    ((ColumnTransform(source=0),), 0, "inputs"),
])
def test_writer_refuses_malformed_transforms(columns, n_inputs, message):
    with pytest.raises(UnsupportedModelError, match=message):
        fmt.encode_transforms(Transforms(n_inputs, columns))


def test_writer_refuses_inconsistent_specs():
    spec = golden_models.tiny_mlp_spec()
    with pytest.raises(UnsupportedModelError, match="exactly one scoring payload"):
        fmt.write(dataclasses.replace(spec, forest=golden_models.tiny_forest_spec().forest), None)
    with pytest.raises(UnsupportedModelError, match="exactly one scoring payload"):
        fmt.write(dataclasses.replace(spec, mlp=None), None)
    with pytest.raises(UnsupportedModelError, match="transforms read 3"):
        fmt.write(dataclasses.replace(spec, inputs=spec.inputs[:2]), None)
    short = Transforms(3, spec.transforms.columns[:2])
    with pytest.raises(UnsupportedModelError, match="make 2 columns but the mlp reads 3"):
        fmt.write(dataclasses.replace(spec, transforms=short), None)
    with pytest.raises(UnsupportedModelError, match="the mlp reads 3"):
        fmt.write(dataclasses.replace(spec, transforms=None, inputs=spec.inputs[:2]), None)


def test_reader_refuses_what_a_writer_could_not_write(golden_pub):
    """Bit patterns the writer never emits, re-keyed so they reach the C core."""
    data = (GOLDEN_DIR / "tiny_mlp.astore").read_bytes()
    model = pyastore.load(data, trusted_keys=[golden_pub])
    offset = {t: o for t, _, o, _ in model.sections()}["MLP_"]

    def rekeyed(patch_offset, fmt_, value):
        mutated = bytearray(data)
        struct.pack_into(fmt_, mutated, offset + patch_offset, value)
        return fmt.assemble([(t.encode(), bytes(mutated[o:o + n]), True)
                             for t, _, o, n in model.sections()[:-1]], None)

    with pytest.raises(pyastore.FormatError, match="reserved"):
        load_unsigned(rekeyed(64 + 24, "<I", 1))
    with pytest.raises(pyastore.UnsupportedVersionError, match="flags"):
        load_unsigned(rekeyed(16, "<I", 1))
    with pytest.raises(pyastore.FormatError, match="not finite"):
        w_off = struct.unpack_from("<I", data, offset + 64 + 16)[0]
        load_unsigned(rekeyed(w_off + 4, "<f", float("inf")))
