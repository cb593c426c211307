"""One class per scoring engine, all behind one interface, each fed the same model and rows.

An ``Engine`` turns a ``bench.models.BenchModel`` into its own files (``prepare``: convert,
compile; not timed as load), loads them into a ready ``Scorer`` (``load``: what the load-time
number measures), and describes a fresh process that imports it, loads the model and scores
one row (``cold_start_command``). A ``Scorer`` scores a float32 matrix with a thread count
(``predict_batch``) and one event given as a Python list of floats (``predict_one``: the
event as a streaming service receives it; any conversion the engine needs is part of its
cost). Every prediction is the positive-class probability as float64.

An engine that cannot run (not installed, conversion or compilation fails, wrong results
shape) raises ``Missing`` with the reason; the harness reports it in the table, never drops
it. ``applies_to`` says which model families an engine takes; other pairs are not shown.

The engines:

* ``pyastore``           -- ``pyastore.load`` + ``Model.score`` / ``Model.score_one``;
* ``pyastore-c``         -- the C API from ``bench/c/bench_engine.c`` (its own timings, no
                            Python: load = hash + parse, no Ed25519 check);
* ``xgboost-inplace``    -- ``Booster.inplace_predict`` (``nthread`` set on the booster);
* ``xgboost-dmatrix``    -- ``DMatrix(x, nthread)`` then ``Booster.predict`` (DMatrix build timed);
* ``sklearn``            -- ``predict_proba`` (``n_jobs`` for forests, BLAS threads for MLPs);
* ``onnxruntime``        -- onnxmltools (XGBoost, LightGBM) / skl2onnx (scikit-learn)
                            conversion, one session per ``intra_op_num_threads``;
* ``tl2cgen``            -- treelite import, ``tl2cgen.export_lib`` with gcc -O3,
                            ``Predictor(nthread)`` on a ``tl2cgen.DMatrix``;
* ``m2cgen``             -- ``m2cgen.export_to_c``, compiled with gcc -O3 together with a
                            small row loop (OpenMP for 2 threads), called through ctypes;
* ``lleaves``            -- the LightGBM twin compiled by lleaves (LLVM), ``predict(n_jobs)``;
* ``ydf``                -- YDF's own equal-shape twin of M1 / M2 (``bench.models``, not the
                            XGBoost trees: no agreement column), ``model.predict`` on
                            ``{"features": x}`` with ``num_threads``;
* ``ydf-benchmark``      -- the same model timed by YDF itself: ``model.benchmark`` (C++
                            serving API, batches of 100; its mean per example, no per-call
                            single-event times).

Single events are timed in blocks (``time_single``: every call's ns), so the harness can show
each block's median and p99 beside the overall ones.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.models import ROOT, YDF_FEATURES, BatchData, BenchModel

COMPILE_TIMEOUT_S = 300


class Missing(Exception):
    """The engine cannot score this model here; ``str(exc)`` is the reason shown in the table."""


@dataclass
class Artifact:
    """What ``prepare`` made: the engine's files (label -> path; the first one is the model
    file whose size is reported) and how long converting/compiling took."""

    files: dict[str, Path]
    prepare_seconds: float = 0.0
    cached: bool = False
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def main_file(self) -> Path:
        return next(iter(self.files.values()))


class Scorer:
    """A model loaded into an engine, ready to score."""

    #: False for an engine that reports only its own mean time per event (``single_event``)
    per_call_timings = True
    #: how the single events were timed, when not through ``predict_one`` from Python
    single_event_note: str | None = None

    def predict_batch(self, x: np.ndarray, threads: int) -> np.ndarray:
        raise NotImplementedError

    def predict_one(self, row: list[float]) -> float:
        raise NotImplementedError

    # The harness times batches and single events through these; engines that time
    # themselves (the C driver) override them.
    def time_batch(self, data: BatchData, threads: int, repeats: int,
                   budget_s: float) -> list[float]:
        self.predict_batch(data.x[:1000], threads)  # warm-up: lazy sessions, thread pools, pages
        times: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            self.predict_batch(data.x, threads)
            times.append(time.perf_counter() - started)
            if sum(times) > budget_s:
                break
        return times

    def time_single(self, rows: list[list[float]], calls: int, budget_s: float) -> list[int]:
        """One block of single events: ``predict_one(rows[i % len(rows)])`` for ``i`` in
        ``range(calls)``, each call timed alone with ``perf_counter_ns``, after 20 untimed
        calls; the block stops early once past ``budget_s`` with 100 calls in. Returns the ns
        of every call, in call order."""
        predict_one = self.predict_one
        for row in rows[:20]:
            predict_one(row)
        clock = time.perf_counter_ns
        times: list[int] = []
        deadline = clock() + int(budget_s * 1e9)
        n_rows = len(rows)
        for i in range(calls):
            row = rows[i % n_rows]
            started = clock()
            predict_one(row)
            ended = clock()
            times.append(ended - started)
            if ended > deadline and i >= 100:
                break
        return times

    def single_event(self, rows: list[list[float]], budget_s: float) -> dict[str, Any]:
        """For ``per_call_timings = False``: the engine's own figure for one event."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _positive(out: Any, n_rows: int) -> np.ndarray:
    """The positive-class column of an engine's output, as float64 of shape (n_rows,)."""
    array = np.asarray(out, dtype=np.float64).reshape(n_rows, -1)
    return np.ascontiguousarray(array[:, -1])


def _version(module: str) -> str:
    try:
        imported = __import__(module)
    except Exception as exc:  # noqa: BLE001 - any import failure makes the engine missing
        raise Missing(f"`import {module}` fails: {type(exc).__name__}: {exc}") from None
    version = getattr(imported, "__version__", None)
    if version is None:
        from importlib import metadata

        try:
            version = metadata.version(module)
        except metadata.PackageNotFoundError:
            version = "?"
    return str(version)


def _python_command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


class Engine:
    key = ""
    name = ""
    families: tuple[str, ...] = ()
    #: files are shared libraries: load a fresh copy per timed load (dlopen caches by path)
    loads_shared_library = False
    #: scores a model of its own (YDF's twin) rather than the original library's: the
    #: agreement check does not apply
    own_model = False

    def applies_to(self, model: BenchModel) -> bool:
        return model.family in self.families

    def version(self) -> str:
        raise NotImplementedError

    def prepare(self, model: BenchModel, workdir: Path) -> Artifact:
        raise NotImplementedError

    def load(self, artifact: Artifact, model: BenchModel) -> Scorer:
        raise NotImplementedError

    def cold_start_command(self, artifact: Artifact, model: BenchModel, row: list[float],
                           workdir: Path) -> list[str] | None:
        return None

    def load_seconds(self, scorer: Scorer) -> float | None:
        """The engine's own load timing (for engines that run outside this process)."""
        return None


# ---- pyastore ---------------------------------------------------------------------------------


class PyastoreScorer(Scorer):
    def __init__(self, model):
        self.model = model

    def predict_batch(self, x, threads):
        return self.model.score(x, n_threads=threads)[:, -1]

    def predict_one(self, row):
        return self.model.score_one(row)[-1]


class PyastoreEngine(Engine):
    key = "pyastore"
    name = "pyastore (Python API)"
    families = ("xgboost", "sklearn_rf", "sklearn_mlp", "lightgbm")

    def version(self):
        import pyastore
        from pyastore import _core

        return f"{getattr(pyastore, '__version__', '?')} (core {_core.LIBRARY_VERSION})"

    def prepare(self, model, workdir):
        if model.astore is None:
            raise Missing(f"not supported yet: {model.astore_error}")
        return Artifact({"astore": model.astore}, cached=True)

    def load(self, artifact, model):
        import pyastore

        return PyastoreScorer(pyastore.load(artifact.main_file, trusted_keys=[model.public_key],
                                            use_default_trust=False))

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, pyastore\n"
            f"m = pyastore.load({str(artifact.main_file)!r}, "
            f"trusted_keys=[{model.public_key.hex()!r}], use_default_trust=False)\n"
            f"p = m.score(np.array([{row!r}], dtype=np.float32))\n")


class PyastoreNoNumpyEngine(PyastoreEngine):
    """Cold start only: pyastore scoring a list with ``score_one``, numpy never imported."""

    key = "pyastore-nonumpy"
    name = "pyastore (Python, no numpy: score_one on a list)"

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import sys, pyastore\n"
            f"m = pyastore.load({str(artifact.main_file)!r}, "
            f"trusted_keys=[{model.public_key.hex()!r}], use_default_trust=False)\n"
            f"p = m.score_one({row!r})\n"
            "assert 'numpy' not in sys.modules, 'numpy was imported'\n")


# ---- pyastore through the C API (bench/c/bench_engine.c) -------------------------------------


class CBuildError(RuntimeError):
    """The working tree's csrc/ does not build: the C numbers cannot be measured honestly."""


def build_c_driver(out_dir: Path, log=print) -> tuple[Path | None, str]:
    """Build bench_engine against the working tree's libastore; (path, how it was built), or
    (None, why not) when there is no C compiler or make.

    libastore is built by csrc/Makefile into ``out_dir`` and bench_engine.c is compiled with
    the flags of csrc/libastore.mk (read through ``make print-ASTORE_CFLAGS``), so the
    benchmark measures the code and flags of the tree it runs in. A tree that does not build raises
    ``CBuildError`` with make's output: there is no fallback to another revision.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    driver = out_dir / "bench_engine"
    source = ROOT / "bench" / "c" / "bench_engine.c"
    csrc = ROOT / "csrc"
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None or shutil.which("make") is None:
        return None, f"no C compiler or make on PATH ({cc})"
    build = out_dir / "libastore"
    make = ["make", "-s", "-C", str(csrc), f"CC={cc}", f"BUILD={build}"]
    built = subprocess.run([*make, f"{build}/libastore.a"], capture_output=True, text=True)
    if built.returncode != 0:
        raise CBuildError("the working tree's csrc/ does not build (make "
                          f"{build}/libastore.a):\n{built.stdout}{built.stderr}")
    flags = {}
    for name in ("ASTORE_CFLAGS", "ASTORE_LIBS"):
        printed = subprocess.run([*make, f"print-{name}"], capture_output=True, text=True)
        if printed.returncode != 0 or not printed.stdout.split():
            raise CBuildError(f"make print-{name} failed: {printed.stderr.strip()}")
        flags[name] = printed.stdout.split()
    compiled = subprocess.run(
        [cc, *flags["ASTORE_CFLAGS"], f"-I{csrc}", str(source), str(build / "libastore.a"),
         *flags["ASTORE_LIBS"], "-o", str(driver)],
        capture_output=True, text=True)
    if compiled.returncode != 0:
        raise CBuildError("bench/c/bench_engine.c does not compile against the working "
                          f"tree's libastore:\n{compiled.stderr}")
    return driver, "working tree csrc/"


class CDriverScorer(Scorer):
    single_event_note = "C API call, no Python"

    def __init__(self, driver: Path, astore: Path, n_features: int, workdir: Path):
        self.driver, self.astore = driver, astore
        self.n_features, self.workdir = n_features, workdir
        self.load_times: list[float] = []

    def _run(self, raw: Path, n_rows: int, threads: int, repeats: int, output: str = "-",
             latency_calls: int = 0, latency_output: Path | None = None) -> dict[str, Any]:
        command = [str(self.driver), str(self.astore), str(raw), str(n_rows), str(threads),
                   str(repeats), output, str(latency_calls)]
        if latency_output is not None:
            command.append(str(latency_output))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise Missing(f"bench_engine failed: {result.stderr.strip()}")
        report = json.loads(result.stdout)
        self.load_times.append(report["load_s"])
        return report

    def predict_batch(self, x, threads):
        x = np.ascontiguousarray(x, dtype=np.float32)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            raw, out = Path(tmp) / "x.f32", Path(tmp) / "out.f64"
            x.tofile(raw)
            self._run(raw, len(x), threads, 1, str(out))
            scores = np.fromfile(out, dtype=np.float64).reshape(len(x), -1)
        return np.ascontiguousarray(scores[:, -1])

    def predict_one(self, row):
        return float(self.predict_batch(np.array([row], dtype=np.float32), 1)[0])

    def time_batch(self, data, threads, repeats, budget_s):
        """One driver run first; more runs in a second call only if they fit ``budget_s``."""
        times = self._run(data.raw_path, data.n_rows, threads, 1)["batch_s"]
        if repeats <= 1:
            return times
        more = min(repeats - 1, int(max(budget_s - times[0], 0.0) / max(times[0], 1e-9)))
        if more > 0:
            times += self._run(data.raw_path, data.n_rows, threads, more)["batch_s"]
        return times

    def time_single(self, rows, calls, budget_s):
        """One driver run timing ``calls`` single events (no budget: C calls are short)."""
        raw = self.workdir / f"rows_{self.n_features}.f32"
        np.asarray(rows, dtype=np.float32).tofile(raw)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            calls_file = Path(tmp) / "latency_ns.f64"
            self._run(raw, len(rows), 1, 1, "-", calls, calls_file)
            return [int(ns) for ns in np.fromfile(calls_file, dtype=np.float64)]


class CDriverEngine(Engine):
    key = "pyastore-c"
    name = "pyastore (C API, bench_engine)"
    families = PyastoreEngine.families

    def __init__(self):
        self.driver: Path | None = None
        self.how = ""
        self.reason = ""

    def build(self, out_dir: Path, log=print) -> None:
        self.driver, self.how = build_c_driver(out_dir, log)
        if self.driver is None:
            self.reason = self.how

    def version(self):
        if self.driver is None:
            raise Missing(self.reason or "the C driver was not built")
        return f"libastore, {self.how}"

    def prepare(self, model, workdir):
        if model.astore is None:
            raise Missing(f"not supported yet: {model.astore_error}")
        return Artifact({"astore": model.astore}, cached=True)

    def load(self, artifact, model):
        return CDriverScorer(self.driver, artifact.main_file, model.n_features, model.directory)

    def load_seconds(self, scorer):
        """The driver's own load timing (read + hash + parse), median over its runs."""
        if not scorer.load_times:
            scorer.predict_batch(np.zeros((1, scorer.n_features), dtype=np.float32), 1)
        return float(np.median(scorer.load_times))

    def cold_start_command(self, artifact, model, row, workdir):
        raw = workdir / f"cold_row_{model.key}.f32"
        np.asarray([row], dtype=np.float32).tofile(raw)
        return [str(self.driver), str(artifact.main_file), str(raw), "1", "1", "1"]


# ---- xgboost ----------------------------------------------------------------------------------


class XGBoostInplaceScorer(Scorer):
    def __init__(self, booster):
        self.booster = booster
        self.threads = 0

    def _threads(self, threads):
        if threads != self.threads:
            self.booster.set_param({"nthread": threads})
            self.threads = threads

    def predict_batch(self, x, threads):
        self._threads(threads)
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float64)

    def predict_one(self, row):
        self._threads(1)
        return float(self.booster.inplace_predict(np.array([row], dtype=np.float32))[0])


class XGBoostDMatrixScorer(XGBoostInplaceScorer):
    def predict_batch(self, x, threads):
        import xgboost

        self._threads(threads)
        matrix = xgboost.DMatrix(x, nthread=threads)
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    def predict_one(self, row):
        import xgboost

        self._threads(1)
        matrix = xgboost.DMatrix(np.array([row], dtype=np.float32), nthread=1)
        return float(self.booster.predict(matrix)[0])


class XGBoostInplaceEngine(Engine):
    key = "xgboost-inplace"
    name = "xgboost inplace_predict"
    families = ("xgboost",)
    scorer = XGBoostInplaceScorer
    predict_code = "b.inplace_predict(np.array([{row!r}], dtype=np.float32))"

    def version(self):
        return _version("xgboost")

    def prepare(self, model, workdir):
        return Artifact({"xgboost UBJ": model.files["xgboost UBJ"],
                         "xgboost JSON": model.files["xgboost JSON"]}, cached=True)

    def load(self, artifact, model):
        import xgboost

        return self.scorer(xgboost.Booster(model_file=str(artifact.main_file)))

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, xgboost as xgb\n"
            f"b = xgb.Booster(model_file={str(artifact.main_file)!r})\n"
            "p = " + self.predict_code.format(row=row) + "\n")


class XGBoostDMatrixEngine(XGBoostInplaceEngine):
    key = "xgboost-dmatrix"
    name = "xgboost DMatrix + predict"
    scorer = XGBoostDMatrixScorer
    predict_code = "b.predict(xgb.DMatrix(np.array([{row!r}], dtype=np.float32)))"


# ---- scikit-learn -----------------------------------------------------------------------------


class SklearnScorer(Scorer):
    def __init__(self, estimator):
        self.estimator = estimator

    def predict_batch(self, x, threads):
        from threadpoolctl import threadpool_limits

        if hasattr(self.estimator, "n_jobs"):
            self.estimator.n_jobs = threads
        with threadpool_limits(limits=threads):
            return np.ascontiguousarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)

    def predict_one(self, row):
        if getattr(self.estimator, "n_jobs", 1) != 1:
            self.estimator.n_jobs = 1
        return float(self.estimator.predict_proba(np.array([row], dtype=np.float32))[0, 1])


class SklearnEngine(Engine):
    key = "sklearn"
    name = "scikit-learn predict_proba"
    families = ("sklearn_rf", "sklearn_mlp")

    def version(self):
        return _version("sklearn")

    def prepare(self, model, workdir):
        return Artifact({"pickle": model.files["pickle"]}, cached=True)

    def load(self, artifact, model):
        import pickle

        with open(artifact.main_file, "rb") as handle:
            return SklearnScorer(pickle.load(handle))

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import pickle, numpy as np\n"
            f"m = pickle.load(open({str(artifact.main_file)!r}, 'rb'))\n"
            f"p = m.predict_proba(np.array([{row!r}], dtype=np.float32))\n")


# ---- onnxruntime ------------------------------------------------------------------------------


def _onnx_convert(model: BenchModel, path: Path) -> list[str]:
    """Write ``model`` as ONNX to ``path``; notes about the conversion."""
    estimator = model.library_model()
    if model.family == "xgboost":
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, model.n_features]))]
        onx = onnxmltools.convert_xgboost(estimator, initial_types=types, target_opset=15)
        notes = ["converted with onnxmltools.convert_xgboost"]
    else:
        import skl2onnx
        from skl2onnx.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, model.n_features]))]
        onx = skl2onnx.convert_sklearn(estimator, initial_types=types,
                                       options={id(estimator): {"zipmap": False}})
        notes = ["converted with skl2onnx"]
    path.write_bytes(onx.SerializeToString())
    return notes


class OnnxScorer(Scorer):
    def __init__(self, path: Path):
        self.path = path
        self.sessions: dict[int, Any] = {}
        self.session(1)

    def session(self, threads: int):
        if threads not in self.sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            session = ort.InferenceSession(str(self.path), options,
                                           providers=["CPUExecutionProvider"])
            outputs = [o.name for o in session.get_outputs()]
            wanted = [n for n in outputs if "prob" in n.lower()] or outputs[-1:]
            self.sessions[threads] = (session, session.get_inputs()[0].name, wanted)
        return self.sessions[threads]

    def predict_batch(self, x, threads):
        session, name, wanted = self.session(threads)
        out = session.run(wanted, {name: x})[0]
        return _positive(out, len(x))

    def predict_one(self, row):
        session, name, wanted = self.sessions[1]
        out = session.run(wanted, {name: np.array([row], dtype=np.float32)})[0]
        return float(np.asarray(out).reshape(-1)[-1])


class OnnxEngine(Engine):
    key = "onnxruntime"
    name = "onnxruntime (intra-op threads = T)"
    families = ("xgboost", "sklearn_rf", "sklearn_mlp")

    def version(self):
        return _version("onnxruntime")

    def prepare(self, model, workdir):
        path = workdir / "model.onnx"
        stamp = workdir / "onnx.json"
        if path.exists() and stamp.exists():
            info = json.loads(stamp.read_text())
            return Artifact({"ONNX": path}, info["seconds"], True, info["notes"])
        module = "skl2onnx" if model.family.startswith("sklearn") else "onnxmltools"
        converter_version = _version(module)
        started = time.perf_counter()
        try:
            notes = [f"{note} {converter_version}" for note in _onnx_convert(model, path)]
        except Exception as exc:  # noqa: BLE001 - the converter's failure is the reason shown
            raise Missing(
                f"{module} conversion fails: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        seconds = time.perf_counter() - started
        stamp.write_text(json.dumps({"seconds": seconds, "notes": notes}))
        return Artifact({"ONNX": path}, seconds, False, notes)

    def load(self, artifact, model):
        try:
            return OnnxScorer(artifact.main_file)
        except Exception as exc:  # noqa: BLE001
            raise Missing(
                f"onnxruntime cannot load the converted model: {str(exc)[:200]}"
            ) from None

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, onnxruntime as ort\n"
            "o = ort.SessionOptions(); o.intra_op_num_threads = 1\n"
            f"s = ort.InferenceSession({str(artifact.main_file)!r}, o, "
            "providers=['CPUExecutionProvider'])\n"
            f"p = s.run(None, {{s.get_inputs()[0].name: np.array([{row!r}], dtype=np.float32)}})\n")


# ---- treelite + tl2cgen -----------------------------------------------------------------------


def _treelite_model(model: BenchModel):
    import treelite

    if model.family == "xgboost":
        return treelite.frontend.load_xgboost_model(str(model.files["xgboost JSON"]))
    import treelite.sklearn

    return treelite.sklearn.import_model(model.library_model())


class Tl2cgenScorer(Scorer):
    def __init__(self, libpath: Path):
        self.libpath = libpath
        self.predictors: dict[int, Any] = {}
        self.predictor(1)

    def predictor(self, threads):
        if threads not in self.predictors:
            import tl2cgen

            self.predictors[threads] = tl2cgen.Predictor(str(self.libpath), nthread=threads)
        return self.predictors[threads]

    def predict_batch(self, x, threads):
        import tl2cgen

        out = self.predictor(threads).predict(tl2cgen.DMatrix(x, dtype="float32"))
        return _positive(out, len(x))

    def predict_one(self, row):
        import tl2cgen

        one_row = tl2cgen.DMatrix(np.array([row], dtype=np.float32), dtype="float32")
        out = self.predictors[1].predict(one_row)
        return float(np.asarray(out).reshape(-1)[-1])


class Tl2cgenEngine(Engine):
    key = "tl2cgen"
    name = "treelite + tl2cgen (gcc -O3)"
    families = ("xgboost", "sklearn_rf")
    loads_shared_library = True

    def version(self):
        return f"treelite {_version('treelite')}, tl2cgen {_version('tl2cgen')}"

    def prepare(self, model, workdir):
        libpath = workdir / "tl2cgen.so"
        checkpoint = workdir / "treelite.bin"
        stamp = workdir / "tl2cgen.json"
        files = {"compiled .so": libpath, "treelite checkpoint": checkpoint}
        if libpath.exists() and stamp.exists():
            info = json.loads(stamp.read_text())
            return Artifact(files, info["seconds"], True, info["notes"])
        import tl2cgen

        started = time.perf_counter()
        try:
            tl_model = _treelite_model(model)
            tl_model.serialize(str(checkpoint))
            tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=str(libpath),
                               params={"parallel_comp": 2}, nthread=2)
        except Exception as exc:  # noqa: BLE001
            raise Missing(
                f"treelite/tl2cgen fails: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        seconds = time.perf_counter() - started
        notes = [f"import + codegen + gcc -O3 took {seconds:.0f} s"]
        stamp.write_text(json.dumps({"seconds": seconds, "notes": notes}))
        return Artifact(files, seconds, False, notes)

    def load(self, artifact, model):
        return Tl2cgenScorer(artifact.main_file)

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, tl2cgen\n"
            f"m = tl2cgen.Predictor({str(artifact.main_file)!r}, nthread=1)\n"
            f"p = m.predict(tl2cgen.DMatrix(np.array([{row!r}], dtype=np.float32), "
            "dtype='float32'))\n")


# ---- m2cgen -----------------------------------------------------------------------------------

M2CGEN_LOOP = r"""
#include <stddef.h>
void score_rows(const float *x, long n_rows, int n_features, double *out, int n_threads) {
    long i;
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (i = 0; i < n_rows; i++) {
        double input[%(n)d];
        double output[%(outputs)d];
        int j;
        for (j = 0; j < n_features; j++) input[j] = (double)x[i * n_features + j];
        %(call)s
        out[i] = %(result)s;
    }
}
"""


class M2cgenScorer(Scorer):
    def __init__(self, libpath: Path, n_features: int, n_outputs: int):
        self.lib = ctypes.CDLL(str(libpath))
        self.lib.score_rows.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int,
                                        ctypes.c_void_p, ctypes.c_int]
        self.lib.score_rows.restype = None
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.input_type = ctypes.c_double * n_features
        if n_outputs:
            self.lib.score.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            self.lib.score.restype = None
            self.output = (ctypes.c_double * n_outputs)()
        else:
            self.lib.score.argtypes = [ctypes.c_void_p]
            self.lib.score.restype = ctypes.c_double

    def predict_batch(self, x, threads):
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(len(x), dtype=np.float64)
        self.lib.score_rows(x.ctypes.data, len(x), self.n_features, out.ctypes.data, threads)
        return out

    def predict_one(self, row):
        values = self.input_type(*row)
        if self.n_outputs:
            self.lib.score(values, self.output)
            return self.output[self.n_outputs - 1]
        return self.lib.score(values)


class M2cgenEngine(Engine):
    key = "m2cgen"
    name = "m2cgen C (gcc -O3, ctypes)"
    families = ("xgboost", "sklearn_rf", "sklearn_mlp")
    loads_shared_library = True

    def version(self):
        return _version("m2cgen")

    def prepare(self, model, workdir):
        libpath = workdir / "m2cgen.so"
        stamp = workdir / "m2cgen.json"
        if stamp.exists():
            info = json.loads(stamp.read_text())
            if info.get("error"):
                raise Missing(info["error"])
            if libpath.exists():
                return Artifact({"compiled .so": libpath, "C source": workdir / "m2cgen.c"},
                                info["seconds"], True, info["notes"], {"outputs": info["outputs"]})
        started = time.perf_counter()
        try:
            outputs, notes = self._generate_and_compile(model, workdir, libpath)
        except Missing as exc:
            stamp.write_text(json.dumps({"error": str(exc)}))
            raise
        seconds = time.perf_counter() - started
        stamp.write_text(json.dumps({"seconds": seconds, "notes": notes, "outputs": outputs}))
        return Artifact({"compiled .so": libpath, "C source": workdir / "m2cgen.c"}, seconds, False,
                        notes, {"outputs": outputs})

    def _generate_and_compile(self, model, workdir, libpath):
        import m2cgen

        estimator = model.library_model()
        notes = []
        if model.family == "xgboost":
            # m2cgen 0.10 reads base_score with float(); XGBoost 3 stores it as "[5E-1]".
            config = json.loads(estimator.get_booster().save_config())
            raw = config["learner"]["learner_model_param"]["base_score"]
            estimator.base_score = float(str(raw).strip("[]"))
            notes.append("base_score passed as a float (XGBoost 3 writes a vector)")
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 100_000))
        try:
            code = m2cgen.export_to_c(estimator)
        except RecursionError:
            raise Missing("m2cgen.export_to_c exceeds Python's recursion limit (100,000)") from None
        except Exception as exc:  # noqa: BLE001
            raise Missing(
                f"m2cgen.export_to_c fails: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        finally:
            sys.setrecursionlimit(limit)
        if "void score(double * input, double * output)" in code:
            match = re.search(r"memcpy\(output, \(double\[\]\)\{[^}]*\}, (\d+) \* sizeof", code)
            outputs = int(match.group(1)) if match else 2
            call, result = "score(input, output);", f"output[{outputs - 1}]"
        elif "double score(double * input)" in code:
            outputs, call, result = 0, "output[0] = score(input);", "output[0]"
        else:
            raise Missing("m2cgen emitted an unexpected function signature")
        if re.search(r"[<>=] inf\b", code):
            # scikit-learn's "only NaN goes right" splits have threshold +inf, which m2cgen
            # prints as a bare `inf`: define it, or gcc stops on an undeclared identifier.
            code = "#include <math.h>\n#define inf INFINITY\n" + code
            notes.append("patched: bare `inf` thresholds defined as INFINITY")
        source = workdir / "m2cgen.c"
        source.write_text(code + M2CGEN_LOOP % {"n": model.n_features, "outputs": max(outputs, 1),
                                                "call": call, "result": result})
        notes.append(f"generated C: {source.stat().st_size / 1e6:.1f} MB")
        command = ["gcc", "-O3", "-std=c99", "-fPIC", "-shared", "-fopenmp", str(source),
                   "-lm", "-o", str(libpath)]
        try:
            compiled = subprocess.run(command, capture_output=True, text=True,
                                      timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise Missing(f"gcc -O3 on the {source.stat().st_size / 1e6:.0f} MB of generated C "
                          f"did not finish in {COMPILE_TIMEOUT_S} s") from None
        if compiled.returncode != 0:
            errors = [line for line in compiled.stderr.splitlines() if "error" in line]
            first = (errors or [compiled.stderr[-200:]])[0][-200:]
            raise Missing(f"gcc fails on the generated C: {first}")
        return outputs, notes

    def load(self, artifact, model):
        return M2cgenScorer(artifact.main_file, model.n_features, artifact.extra["outputs"])

    def cold_start_command(self, artifact, model, row, workdir):
        outputs = artifact.extra["outputs"]
        call = (f"o = (ctypes.c_double * {outputs})(); lib.score(x, o)" if outputs else
                "lib.score.restype = ctypes.c_double; lib.score(x)")
        return _python_command(
            "import ctypes\n"
            f"lib = ctypes.CDLL({str(artifact.main_file)!r})\n"
            f"x = (ctypes.c_double * {model.n_features})(*{row!r})\n"
            f"{call}\n")


# ---- lleaves ----------------------------------------------------------------------------------


class LleavesScorer(Scorer):
    def __init__(self, model):
        self.model = model

    def predict_batch(self, x, threads):
        scores = self.model.predict(x.astype(np.float64), n_jobs=threads)
        return np.asarray(scores, dtype=np.float64)

    def predict_one(self, row):
        return float(self.model.predict(np.array([row], dtype=np.float64), n_jobs=1)[0])


class LleavesEngine(Engine):
    key = "lleaves"
    name = "lleaves (LightGBM twin, LLVM-compiled)"
    families = ("lightgbm",)

    def version(self):
        return f"lleaves {_version('lleaves')} (lightgbm {_version('lightgbm')})"

    def prepare(self, model, workdir):
        cache = workdir / "lleaves.o"
        files = {"compiled object": cache, "LightGBM text": model.files["LightGBM text"]}
        if cache.exists():
            return Artifact(files, 0.0, True)
        import lleaves

        started = time.perf_counter()
        try:
            compiled = lleaves.Model(model_file=str(model.files["LightGBM text"]))
            compiled.compile(cache=str(cache))
        except Exception as exc:  # noqa: BLE001
            raise Missing(
                f"lleaves compile fails: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        seconds = time.perf_counter() - started
        return Artifact(files, seconds, False, [f"LLVM compile took {seconds:.0f} s"])

    def load(self, artifact, model):
        import lleaves

        compiled = lleaves.Model(model_file=str(artifact.files["LightGBM text"]))
        compiled.compile(cache=str(artifact.main_file))
        return LleavesScorer(compiled)

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, lleaves\n"
            f"m = lleaves.Model(model_file={str(artifact.files['LightGBM text'])!r})\n"
            f"m.compile(cache={str(artifact.main_file)!r})\n"
            f"p = m.predict(np.array([{row!r}], dtype=np.float64), n_jobs=1)\n")


# ---- YDF ------------------------------------------------------------------------------------


class YdfScorer(Scorer):
    """``model.predict`` on ``{"features": x}`` (the float32 matrix as YDF's one 2-D feature)."""

    def __init__(self, model):
        self.model = model

    def predict_batch(self, x, threads):
        scores = self.model.predict({YDF_FEATURES: x}, num_threads=threads)
        return np.asarray(scores, dtype=np.float64)

    def predict_one(self, row):
        one_row = {YDF_FEATURES: np.array([row], dtype=np.float32)}
        return float(self.model.predict(one_row, num_threads=1)[0])


class YdfEngine(Engine):
    key = "ydf"
    name = "YDF predict (own model, num_threads = T)"
    families = ("ydf",)
    #: scores its own equal-shape model, not the original one: agreement is not applicable
    own_model = True

    def version(self):
        return _version("ydf")

    def prepare(self, model, workdir):
        return Artifact({"YDF model": model.files["YDF model"]}, cached=True,
                        notes=list(model.notes))

    def load(self, artifact, model):
        import ydf

        return YdfScorer(ydf.deserialize_model(artifact.main_file.read_bytes()))

    def cold_start_command(self, artifact, model, row, workdir):
        return _python_command(
            "import numpy as np, ydf\n"
            f"m = ydf.deserialize_model(open({str(artifact.main_file)!r}, 'rb').read())\n"
            f"p = m.predict({{{YDF_FEATURES!r}: np.array([{row!r}], dtype=np.float32)}}, "
            "num_threads=1)\n")


def parse_ydf_benchmark(report: str) -> dict[str, float]:
    """The µs per example of ``model.benchmark``'s report: ``{"single": .., "multi": ..}``
    (the multi-thread figure uses the ``num_threads`` passed, ``multi_threads``)."""
    figures: dict[str, float] = {}
    for line in report.splitlines():
        match = re.match(r"\s*(Single|Multi)-thread inference time per example: ([0-9.eE+-]+) us",
                         line)
        if match:
            figures[match.group(1).lower()] = float(match.group(2))
        match = re.search(r"using (\d+) threads", line)
        if match:
            figures["multi_threads"] = float(match.group(1))
    if "single" not in figures:
        raise Missing(f"model.benchmark printed no per-example time: {report[:200]!r}")
    return figures


class YdfBenchmarkScorer(YdfScorer):
    """YDF timing itself: ``model.benchmark`` (its C++ serving API, batches of
    ``batch_size`` rows taken from the data set, no Python per batch); a batch "run" is the
    per-example figure times the rows."""

    per_call_timings = False

    def __init__(self, model, duration_s: float):
        super().__init__(model)
        self.duration_s = duration_s

    def benchmark(self, x: np.ndarray, threads: int, batch_size: int) -> dict[str, float]:
        report = self.model.benchmark({YDF_FEATURES: x}, benchmark_duration=self.duration_s,
                                      warmup_duration=self.duration_s / 4,
                                      batch_size=batch_size, num_threads=threads)
        return parse_ydf_benchmark(str(report))

    def time_batch(self, data, threads, repeats, budget_s):
        figures = self.benchmark(data.x, threads, 100)
        if threads == 1:
            per_example_us = figures["single"]
        elif figures.get("multi_threads") == threads and "multi" in figures:
            per_example_us = figures["multi"]
        else:
            raise Missing(f"model.benchmark(num_threads={threads}) reported {figures}")
        return [1e-6 * per_example_us * data.n_rows]

    def single_event(self, rows, budget_s):
        x = np.asarray(rows, dtype=np.float32)
        us = self.benchmark(x, 1, 1)["single"]
        return {"mean_us": us, "note": f"model.benchmark with batch_size=1, 1 thread: "
                                       f"{us:.2f} µs per example (its mean; no per-call times)"}


class YdfBenchmarkEngine(YdfEngine):
    key = "ydf-benchmark"
    name = "YDF model.benchmark (own model, its C++ timer, batches of 100)"

    def __init__(self, duration_s: float = 1.0):
        self.duration_s = duration_s

    def prepare(self, model, workdir):
        artifact = super().prepare(model, workdir)
        artifact.notes = [f"the model of the YDF predict row, timed by model.benchmark for "
                          f"{self.duration_s:g} s per figure"]
        return artifact

    def load(self, artifact, model):
        import ydf

        return YdfBenchmarkScorer(ydf.deserialize_model(artifact.main_file.read_bytes()),
                                  self.duration_s)

    def cold_start_command(self, artifact, model, row, workdir):
        return None


ENGINES: tuple[type[Engine], ...] = (
    PyastoreEngine, CDriverEngine, XGBoostInplaceEngine, XGBoostDMatrixEngine, SklearnEngine,
    OnnxEngine, Tl2cgenEngine, M2cgenEngine, LleavesEngine, YdfEngine, YdfBenchmarkEngine,
)


def make_engines(engine_benchmark_s: float = 1.0) -> list[Engine]:
    """One of each engine; ``engine_benchmark_s``: how long an engine's own benchmark runs
    (``ydf-benchmark``), per measurement."""
    return [YdfBenchmarkEngine(engine_benchmark_s) if cls is YdfBenchmarkEngine else cls()
            for cls in ENGINES]
