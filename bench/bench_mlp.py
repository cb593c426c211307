"""Benchmarks of MLP scoring: pyastore's C core against onnxruntime on the same networks.

Two ways to run:

* ``pytest bench/bench_mlp.py`` -- pytest-benchmark functions (single event, a 100,000-row
  batch, onnxruntime's batch when installed), for regressions;
* ``python bench/bench_mlp.py [--rows 1000000] [--repeats 5]`` -- the numbers as a Markdown
  table: single-event latency through ``Model.score_one`` (a Python list in, a list out) and
  through onnxruntime's ``InferenceSession.run`` on a 1-row array; batch throughput on
  ``--rows`` float32 rows with one thread for both (onnxruntime: ``intra_op_num_threads=1``,
  ``inter_op_num_threads=1``, sequential execution, all graph optimizations); the ratio
  pyastore / onnxruntime (below 1: pyastore is faster); and the largest difference between
  the two engines' outputs.

The networks are the bank-loan sized 10-10-20-10-1 and a wider 30-128-64-1, ReLU hidden
layers and a sigmoid output, weights drawn like torch's default initialization (seeded). The
ONNX graph is built from the same float32 weights: per layer ``MatMul`` + ``Add`` + the
activation. Run on a quiet machine: the table prints the 1-minute load average before and
after.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import pyastore  # noqa: E402
from pyastore import format as fmt  # noqa: E402
from pyastore.ir import Algorithm, Dense, Mlp, ModelSpec, Output, ScoreRules, Variable  # noqa: E402

NETWORKS = {
    "10-10-20-10-1": ((10, 10, 20, 10, 1), ("relu", "relu", "relu", "sigmoid")),
    "30-128-64-1": ((30, 128, 64, 1), ("relu", "relu", "sigmoid")),
}
CREATED = "2026-01-01T00:00:00Z"


def network_layers(name: str, seed: int = 0) -> tuple[Dense, ...]:
    sizes, activations = NETWORKS[name]
    rng = np.random.default_rng(seed)
    layers = []
    for k, activation in enumerate(activations):
        bound = 1.0 / math.sqrt(sizes[k])
        weights = rng.uniform(-bound, bound, (sizes[k + 1], sizes[k])).astype(np.float32)
        bias = rng.uniform(-bound, bound, sizes[k + 1]).astype(np.float32)
        layers.append(Dense(tuple(map(tuple, weights.astype(np.float64).tolist())),
                            tuple(bias.astype(np.float64).tolist()), activation))
    return tuple(layers)


def pyastore_model(name: str) -> pyastore.Model:
    layers = network_layers(name)
    spec = ModelSpec(
        name=f"bench-{name}", algorithm=Algorithm("mlp", "bench", "1"),
        inputs=tuple(Variable(f"x{i}") for i in range(layers[0].n_in)),
        outputs=(Output("P_1"),), rules=ScoreRules("binary", (0, 1), 0.5), mlp=Mlp(layers))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyastore.load(fmt.write(spec, None, created=CREATED), allow_unsigned=True)


def onnx_bytes(name: str) -> bytes:
    """The same network as an ONNX graph: MatMul + Add + activation per layer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layers = network_layers(name)
    nodes, initializers = [], []
    current = "x"
    for k, layer in enumerate(layers):
        weights = np.asarray(layer.weights, dtype=np.float32).T.copy()  # [in][out] for MatMul
        initializers += [numpy_helper.from_array(weights, f"W{k}"),
                         numpy_helper.from_array(np.asarray(layer.bias, np.float32), f"b{k}")]
        nodes += [helper.make_node("MatMul", [current, f"W{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"z{k}"])]
        op = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": "Identity"}[
            layer.activation]
        out = "y" if k == len(layers) - 1 else f"h{k}"
        nodes.append(helper.make_node(op, [f"z{k}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, layers[0].n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, layers[-1].n_out])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_session(name: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes(name), options, providers=["CPUExecutionProvider"])


def rows(name: str, n: int, seed: int = 1) -> np.ndarray:
    n_features = NETWORKS[name][0][0]
    return np.random.default_rng(seed).normal(size=(n, n_features)).astype(np.float32)


# ---- pytest-benchmark -----------------------------------------------------------------------

try:
    import pytest
except ImportError:  # main() needs no pytest
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("name", list(NETWORKS))
    def test_score_one(benchmark, name):
        model = pyastore_model(name)
        row = rows(name, 1)[0].tolist()
        result = benchmark(model.score_one, row)
        assert 0.0 <= result[0] <= 1.0

    @pytest.mark.parametrize("name", list(NETWORKS))
    def test_score_batch_100k_one_thread(benchmark, name):
        model = pyastore_model(name)
        x = rows(name, 100_000)
        out = np.empty((len(x), 1))
        benchmark(model.score_into, x, out)

    @pytest.mark.parametrize("name", list(NETWORKS))
    def test_onnxruntime_batch_100k_one_thread(benchmark, name):
        pytest.importorskip("onnxruntime")
        session = onnx_session(name)
        x = rows(name, 100_000)
        benchmark(session.run, ["y"], {"x": x})


# ---- the table ------------------------------------------------------------------------------

def per_call_seconds(call, argument, calls: int, chunks: int = 30) -> float:
    """Median over ``chunks`` of the mean time of ``calls / chunks`` back-to-back calls."""
    per_chunk = max(1, calls // chunks)
    for _ in range(min(per_chunk, 1000)):
        call(argument)
    times = []
    for _ in range(chunks):
        started = time.perf_counter_ns()
        for _ in range(per_chunk):
            call(argument)
        times.append((time.perf_counter_ns() - started) / per_chunk)
    return statistics.median(times) * 1e-9


def batch_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, n_rows: int, repeats: int, calls: int) -> dict[str, float]:
    model = pyastore_model(name)
    x = rows(name, n_rows)
    out = np.empty((n_rows, 1))
    row = x[0].tolist()
    result = {
        "one_pyastore": per_call_seconds(model.score_one, row, calls),
        "batch_pyastore": batch_seconds(lambda: model.score_into(x, out), repeats),
        "kernel": kernel_name(),
    }
    try:
        session = onnx_session(name)
    except ImportError:
        return result
    one = x[:1]
    result["one_onnxruntime"] = per_call_seconds(lambda a: session.run(["y"], {"x": a}), one,
                                                 calls)
    result["batch_onnxruntime"] = batch_seconds(lambda: session.run(["y"], {"x": x}), repeats)
    theirs = session.run(["y"], {"x": x})[0].astype(np.float64)
    result["max_difference"] = float(np.abs(theirs - out).max())
    return result


def kernel_name() -> str:
    forced = os.environ.get("ASTORE_MLP_KERNEL")
    if forced:
        return forced
    flags = ""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        pass
    return "avx512" if " avx512f" in flags else "avx" if " avx" in flags else "generic"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=60_000)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results = {name: measure(name, args.rows, args.repeats, args.calls) for name in NETWORKS}
    load_after = os.getloadavg()[0]
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"MLP scoring, one thread. {cpu}; Python {platform.python_version()}, numpy "
          f"{np.__version__}, onnxruntime {ort_version}; pyastore kernel "
          f"{next(iter(results.values()))['kernel']}; {args.rows:,} rows, median of "
          f"{args.repeats}; load average {load_before:.2f} before, {load_after:.2f} after.\n")
    print("| network | engine | single event (µs) | batch (ms) | rows/s | ratio pyastore/ORT "
          "(single, batch) | max abs diff |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for name, r in results.items():
        for engine in ("pyastore", "onnxruntime"):
            if f"batch_{engine}" not in r:
                continue
            one, batch = r[f"one_{engine}"], r[f"batch_{engine}"]
            ratio = diff = ""
            if engine == "pyastore" and "batch_onnxruntime" in r:
                ratio = (f"{one / r['one_onnxruntime']:.2f}, "
                         f"{batch / r['batch_onnxruntime']:.2f}")
                diff = f"{r['max_difference']:.1e}"
            print(f"| {name} | {engine} | {one * 1e6:.2f} | {batch * 1e3:.1f} | "
                  f"{args.rows / batch:,.0f} | {ratio} | {diff} |")


if __name__ == "__main__":
    main()
