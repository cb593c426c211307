"""What the Python API adds on top of the C core, for models whose inputs refuse missing values.

scikit-learn MLPs are exported with ``missing="error"``: every input must be checked for NaN
before scoring. That check lives in the C core (``astore_model_check_rows``, run by every
``astore_model_score``), so ``Model.score`` on a numpy array should cost little more than
``Model.score_into`` on the same float32 buffer. This prints, per network, the median over
``--repeats`` runs of ``Model.score`` and ``Model.score_into`` on ``--rows`` random float32
rows (ns/row) and the median ``Model.score_one`` latency over 20,000 events::

    python bench/bench_api_path.py [--rows 1000000] [--repeats 5]

The networks (10-10-20-10-1 and 30-128-64-1, ReLU, logistic output) are fitted for a few
iterations on random rows: their weights do not change the cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.neural_network import MLPClassifier

import pyastore
from pyastore import format as fmt
from trainer.export import export_model

NETWORKS = (((10, 20, 10), 10), ((128, 64), 30))


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_model()}, load {os.getloadavg()[0]:.2f}")
    print("| network | Model.score ns/row | Model.score_into ns/row | score_one median µs |")
    print("| --- | ---: | ---: | ---: |")
    for hidden, n_in in NETWORKS:
        features = rng.normal(size=(4000, n_in))
        labels = (features[:, 0] + features[:, 1] > 0).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a few iterations: ConvergenceWarning
            network = MLPClassifier(hidden, max_iter=30, random_state=0).fit(features, labels)
            spec = export_model(network, feature_names=[f"f{i}" for i in range(n_in)])
            model = pyastore.load(fmt.write(spec, None), allow_unsigned=True)
        assert not any(model.accepts_missing), "the check under test would not run"
        x = rng.normal(size=(args.rows, n_in)).astype(np.float32)
        out = np.empty((args.rows, 1))
        api = median_seconds(lambda m=model, x=x: m.score(x), args.repeats)
        into = median_seconds(lambda m=model, x=x, out=out: m.score_into(x, out), args.repeats)
        row = x[0].tolist()
        latencies = []
        for _ in range(20000):
            start = time.perf_counter_ns()
            model.score_one(row)
            latencies.append(time.perf_counter_ns() - start)
        name = f"{n_in}-{'-'.join(map(str, hidden))}-1"
        print(f"| {name} | {api / args.rows * 1e9:.1f} | {into / args.rows * 1e9:.1f} | "
              f"{statistics.median(latencies) / 1e3:.2f} |")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
