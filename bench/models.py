"""The standard bench models and data, built reproducibly and cached.

Every side-by-side number in ``docs/PERFORMANCE.md`` is measured on these models:

* **M1** XGBoost ``binary:logistic``, 100 trees, ``max_depth`` 6, 30 features, trained on
  200,000 fraud-like rows with 0.5% positives (``fraud_like``);
* **M2** XGBoost, 500 trees, ``max_depth`` 8, same data (scored on the first 250,000 of the
  1M scoring rows: at 5-10x M1's cost per row, 1M rows for every engine would not fit the
  15-minute budget; ns/row is steady long before 250k rows);
* **M3** scikit-learn ``RandomForestClassifier``, 100 trees, ``max_depth`` 12, same data;
* **M4a / M4b** scikit-learn ``MLPClassifier`` 10-10-20-10-1 and 30-128-64-1 (relu, logistic
  output), on the same data without missing values (an MLP does not take NaN);
* **M5** the fraud pipeline (``pyastore-train fraud``): ``trainer.fraud.run_variant`` on the
  bundled data (``trainer.data.bundled_fraud_csv``), XGBoost 100 trees depth 6 with
  CapsNet-generated frauds -- with ``epochs=30`` instead of the default 250 (the generator's
  quality does not change the shape of the scoring work, and 250 epochs would take most of the
  time budget);
* **M1-lgbm** LightGBM with M1's size (100 trees, ``max_depth`` 6, up to 63 leaves) on M1's
  data: the model ``lleaves`` compiles, since lleaves only reads LightGBM models;
* **M1-ydf / M2-ydf** YDF (Yggdrasil Decision Forests) gradient-boosted trees with M1's / M2's
  shape on the same training rows: as many trees, ``max_depth`` one more (YDF counts the root
  as depth 1: 7 for XGBoost's 6, 9 for 8), XGBoost's learning rate (0.1) and row subsample
  (0.9), no early stopping and no validation split. YDF scores only its own models, so these
  are YDF's trees, not M1's: equal shape, not the same model (``ydf_twin`` records nodes per
  tree and nodes visited per row, and the same figures for the XGBoost model they copy).
  M5 has no YDF twin: its training rows (with CapsNet frauds) exist only inside the pipeline.

Data. ``fraud_like(n, seed)`` draws 30 features (5 log-normal "amount-like" columns, 25
normal ones, 2% NaN in columns 5-9), a non-linear score of 8 of them plus noise, and labels
the top 0.5% as positive. Scoring rows (1M for the batch numbers, float32) come from the same
generator with another seed; M5's scoring rows are bundled-data rows drawn with replacement.

Every model is exported to a signed ``.astore`` with the fixed bench key (``BENCH_KEY``), next
to the library's own files (XGBoost JSON and UBJ, sklearn pickle, LightGBM text). The cache
(``bench/.cache/<profile>/``, git-ignored) is keyed by a recipe fingerprint (sizes, seeds,
library versions); the containers are re-exported when the exporter or writer sources change.
``--quick`` builds the same kinds of models with tiny sizes under ``<cache>/quick``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "bench" / ".cache"
BENCH_SEED = 20251122
N_FEATURES = 30
POSITIVE_RATE = 0.005
MISSING_COLUMNS = range(5, 10)
MISSING_RATE = 0.02
#: YDF takes the 30 columns as one two-dimensional feature (``features.00_of_30`` ...)
YDF_FEATURES = "features"
#: rows of the scoring batch on which nodes visited per row are counted
VISIT_ROWS = 10_000


def bench_key():
    """The fixed Ed25519 key every bench container is signed with (not a secret)."""
    from pyastore import keys

    return keys.SigningKey(hashlib.sha256(b"pyastore bench signing key").digest())


@dataclass(frozen=True)
class Profile:
    """The sizes of one bench run: ``FULL`` (docs/PERFORMANCE.md's numbers) or ``QUICK`` (smoke)."""

    name: str
    train_rows: int
    mlp_train_rows: int
    batch_rows: int
    big_model_batch_rows: int  # M2 (500 deep trees): fewer rows, or it alone takes 10 minutes
    agreement_rows: int
    m1: tuple[int, int]  # trees, depth
    m2: tuple[int, int]
    m3: tuple[int, int]
    m5: tuple[int, int]  # the fraud pipeline's trees, depth (the README's: 100, 6)
    mlp_small: tuple[int, ...]  # n_features, hidden..., as in 10-10-20-10-1
    mlp_wide: tuple[int, ...]
    mlp_max_iter: int
    capsnet_epochs: int
    batch_repeats: int
    batch_budget_s: float  # stop repeating a batch measurement past this much time
    latency_blocks: int  # single events: blocks, interleaved across the model's engines
    latency_calls: int  # calls per block
    latency_budget_s: float  # per block: a slow engine makes fewer calls
    engine_benchmark_s: float  # an engine's own benchmark (YDF's model.benchmark), per run
    load_repeats: int
    cold_repeats: int
    cold_contenders: bool  # cold start of every engine, or pyastore and the baselines only


FULL = Profile(
    name="full", train_rows=200_000, mlp_train_rows=50_000, batch_rows=1_000_000,
    big_model_batch_rows=250_000, agreement_rows=10_000,
    m1=(100, 6), m2=(500, 8), m3=(100, 12), m5=(100, 6),
    mlp_small=(10, 10, 20, 10), mlp_wide=(30, 128, 64), mlp_max_iter=30, capsnet_epochs=30,
    batch_repeats=3, batch_budget_s=6.0, latency_blocks=5, latency_calls=10_000,
    latency_budget_s=2.0, engine_benchmark_s=1.0, load_repeats=5, cold_repeats=3,
    cold_contenders=True,
)
QUICK = Profile(
    name="quick", train_rows=4_000, mlp_train_rows=2_000, batch_rows=4_000,
    big_model_batch_rows=4_000, agreement_rows=1_000,
    m1=(10, 3), m2=(20, 4), m3=(8, 5), m5=(10, 3),
    mlp_small=(10, 10, 20, 10), mlp_wide=(30, 16, 8), mlp_max_iter=5, capsnet_epochs=1,
    batch_repeats=1, batch_budget_s=1.0, latency_blocks=2, latency_calls=50,
    latency_budget_s=0.1, engine_benchmark_s=0.05, load_repeats=1, cold_repeats=1,
    cold_contenders=False,
)


# ---- data ------------------------------------------------------------------------------------


def fraud_like(n_rows: int, seed: int, *, missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` fraud-like rows: float32 features (30) and 0/1 labels, 0.5% positive."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, N_FEATURES))
    x[:, :5] = np.exp(0.8 * x[:, :5])  # amount-like, heavy right tail
    score = (1.2 * np.log(x[:, 0]) + 0.9 * x[:, 5] * x[:, 6] - 0.8 * np.abs(x[:, 7])
             + 0.7 * np.sin(2.0 * x[:, 8]) + 0.6 * (x[:, 9] > 1.0) + 0.5 * x[:, 10] ** 2
             - 0.4 * x[:, 11] + 0.8 * np.log(x[:, 1]) * (x[:, 12] > 0)
             + rng.normal(0.0, 0.8, n_rows))
    y = (score > np.quantile(score, 1.0 - POSITIVE_RATE)).astype(np.int64)
    x = x.astype(np.float32)
    if missing:
        holes = rng.random((n_rows, len(MISSING_COLUMNS))) < MISSING_RATE
        block = x[:, MISSING_COLUMNS.start:MISSING_COLUMNS.stop]
        block[holes] = np.nan
        x[:, MISSING_COLUMNS.start:MISSING_COLUMNS.stop] = block
    return x, y


@dataclass
class BatchData:
    """Rows to score: ``x`` float32 C-contiguous, and the same bytes as a raw ``.f32`` file
    (what the C driver reads)."""

    x: np.ndarray
    raw_path: Path

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])


def _batch_data(path: Path, make) -> BatchData:
    if path.exists():
        meta = json.loads(path.with_suffix(".json").read_text())
        x = np.fromfile(path, dtype=np.float32).reshape(meta["rows"], meta["cols"])
        return BatchData(x, path)
    x = np.ascontiguousarray(make(), dtype=np.float32)
    tmp = path.with_suffix(".tmp")
    x.tofile(tmp)
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps({"rows": x.shape[0], "cols": x.shape[1]}))
    return BatchData(x, path)


# ---- models ----------------------------------------------------------------------------------


@dataclass
class BenchModel:
    """One standard model: its library files, its container, its scoring rows.

    ``files`` maps a label (``xgboost JSON``, ``xgboost UBJ``, ``pickle``, ``LightGBM text``)
    to a path. ``astore`` is None when pyastore cannot export the model yet; then
    ``astore_error`` says why. ``n_nodes``/``n_internal`` count tree nodes (all / splits);
    for an MLP ``n_params`` counts weights and biases instead.
    """

    key: str
    title: str
    family: str  # "xgboost", "sklearn_rf", "sklearn_mlp", "lightgbm"
    directory: Path
    n_features: int
    files: dict[str, Path]
    batch: BatchData
    n_trees: int | None = None
    n_nodes: int | None = None
    n_internal: int | None = None
    n_params: int | None = None
    astore: Path | None = None
    astore_error: str | None = None
    twin_of: str | None = None  # M1-lgbm, M1-ydf: the model whose size it copies
    notes: list[str] = field(default_factory=list)
    _library: Any = None

    @property
    def public_key(self) -> bytes:
        return bench_key().public_key

    def library_model(self) -> Any:
        """The original library's model object (the reference for agreement)."""
        if self._library is None:
            if self.family == "xgboost":
                from xgboost import XGBClassifier

                model = XGBClassifier()
                model.load_model(self.files["xgboost JSON"])
            elif self.family == "lightgbm":
                import lightgbm

                model = lightgbm.Booster(model_file=str(self.files["LightGBM text"]))
            elif self.family == "ydf":
                import ydf

                model = ydf.deserialize_model(self.files["YDF model"].read_bytes())
            else:
                with open(self.files["pickle"], "rb") as handle:
                    model = pickle.load(handle)
            self._library = model
        return self._library

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The original library's positive-class probability for float32 rows ``x``."""
        model = self.library_model()
        if self.family == "lightgbm":
            return np.asarray(model.predict(x.astype(np.float64)), dtype=np.float64)
        if self.family == "ydf":  # its own model: there is no other library to compare with
            return np.asarray(model.predict({YDF_FEATURES: x}), dtype=np.float64)
        if self.family == "xgboost":
            import xgboost

            booster = model.get_booster()
            return booster.predict(xgboost.DMatrix(x, missing=np.nan)).astype(np.float64)
        return model.predict_proba(x)[:, 1].astype(np.float64)


@dataclass(frozen=True)
class MissingTwin:
    """A twin model that could not be built here (its library is missing): the reason."""

    key: str
    family: str
    reason: str


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def exporter_fingerprint() -> str:
    """Changes when pyastore's writer or the exporters change: then containers are rebuilt."""
    digest = hashlib.sha256()
    sources = [ROOT / "pyastore" / "format.py", ROOT / "pyastore" / "ir.py"]
    sources += sorted((ROOT / "trainer" / "export").glob("*.py"))
    for path in sources:
        if path.exists():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _versions() -> dict[str, str]:
    import sklearn
    import xgboost

    return {"numpy": np.__version__, "xgboost": xgboost.__version__, "sklearn": sklearn.__version__}


def _count_xgboost(path: Path) -> tuple[int, int, int]:
    """(trees, nodes, internal nodes) from an XGBoost JSON model file."""
    trees = json.loads(path.read_text())["learner"]["gradient_booster"]["model"]["trees"]
    nodes = sum(len(t["left_children"]) for t in trees)
    internal = sum(sum(1 for c in t["left_children"] if c != -1) for t in trees)
    return len(trees), nodes, internal


def xgboost_node_visits(model: BenchModel, x: np.ndarray) -> float:
    """Mean nodes an XGBoost model visits per row of ``x`` (root to leaf, leaf included,
    summed over the trees), from the leaves XGBoost itself reports (``pred_leaf``)."""
    import xgboost

    trees = json.loads(model.files["xgboost JSON"].read_text())
    trees = trees["learner"]["gradient_booster"]["model"]["trees"]
    booster = model.library_model().get_booster()
    leaves = booster.predict(xgboost.DMatrix(x, missing=np.nan), pred_leaf=True).astype(np.int64)
    visits = 0.0
    for index, tree in enumerate(trees):
        depth = np.zeros(len(tree["left_children"]), dtype=np.int64)
        for node, (left, right) in enumerate(zip(tree["left_children"], tree["right_children"])):
            if left != -1:  # parents precede their children in XGBoost's numbering
                depth[left] = depth[right] = depth[node] + 1
        visits += float(np.mean(depth[leaves[:, index]] + 1))
    return visits


def _flatten_ydf_tree(tree: Any,
                      feature_of: dict[int, int]) -> tuple[dict[str, np.ndarray], bool]:
    """One YDF tree as arrays indexed by node (root 0): feature, threshold, NaN direction,
    children, leaf flag and value; and whether every split is ``value >= threshold`` (the only
    kind the walk follows)."""
    from ydf.model.tree import condition as conditions

    flat = [tree.root]
    index = {id(tree.root): 0}
    for node in flat:  # grows while it is read: breadth-first numbering
        if not node.is_leaf:
            for child in (node.pos_child, node.neg_child):
                index[id(child)] = len(flat)
                flat.append(child)
    arrays: dict[str, list] = {k: [] for k in ("feature", "threshold", "missing", "pos", "neg",
                                                "leaf", "value")}
    walkable = True
    for node in flat:
        if node.is_leaf:
            record = (0, 0.0, False, 0, 0, True, float(node.value.value))
        else:
            split = node.condition
            numerical = isinstance(split, conditions.NumericalHigherThanCondition)
            walkable = walkable and numerical
            record = (feature_of[split.attribute] if numerical else 0,
                      split.threshold if numerical else 0.0, numerical and split.missing,
                      index[id(node.pos_child)], index[id(node.neg_child)], False, 0.0)
        for key, item in zip(arrays, record):
            arrays[key].append(item)
    flat_arrays = {key: np.array(items) for key, items in arrays.items()}
    flat_arrays["threshold"] = flat_arrays["threshold"].astype(np.float32)
    return flat_arrays, walkable


def ydf_tree_stats(model: Any, x: np.ndarray) -> dict[str, Any]:
    """Nodes, split nodes and mean nodes visited per row of ``x`` (root to leaf, leaf
    included, summed over the trees) of a YDF binary gradient-boosted model.

    The walk reads YDF's own tree structure (``get_all_trees``); its leaf values summed with the
    initial prediction must give ``model.predict`` (checked: ``walk_max_abs_diff``), or the
    visit count is left out (None).
    """
    columns = [column.name for column in model.data_spec().columns]
    position = {name: i for i, name in enumerate(model.input_feature_names())}
    feature_of = {i: position[name] for i, name in enumerate(columns) if name in position}
    n_rows = len(x)
    rows = np.arange(n_rows)
    margin = np.full(n_rows, float(np.asarray(model.initial_predictions()).reshape(-1)[0]))
    visits = np.zeros(n_rows)
    nodes = internal = 0
    walkable = True
    for tree in model.get_all_trees():
        flat, tree_walkable = _flatten_ydf_tree(tree, feature_of)
        nodes += len(flat["leaf"])
        internal += int((~flat["leaf"]).sum())
        walkable = walkable and tree_walkable
        if not walkable:
            continue
        at = np.zeros(n_rows, dtype=np.int64)
        visits += 1  # the root
        while True:
            active = ~flat["leaf"][at]
            if not active.any():
                break
            cell = x[rows, flat["feature"][at]]
            go_pos = np.where(np.isnan(cell), flat["missing"][at], cell >= flat["threshold"][at])
            at = np.where(active, np.where(go_pos, flat["pos"][at], flat["neg"][at]), at)
            visits += active
        margin += flat["value"][at]
    stats: dict[str, Any] = {"trees": model.num_trees(), "nodes": nodes, "internal": internal,
                             "visits_per_row": None, "walk_max_abs_diff": None}
    if walkable:
        walked = 1.0 / (1.0 + np.exp(-margin))
        predicted = np.asarray(model.predict({YDF_FEATURES: x}), dtype=np.float64)
        stats["walk_max_abs_diff"] = float(np.max(np.abs(walked - predicted)))
        if stats["walk_max_abs_diff"] <= 1e-5:
            stats["visits_per_row"] = float(np.mean(visits))
    return stats


def _export_astore(model: Any, path: Path, name: str, feature_names: list[str]) -> str | None:
    """Write the signed container for ``model``; the error message when pyastore refuses it."""
    from pyastore import format as fmt
    from pyastore.errors import PyastoreError
    from trainer.export import export_model

    try:
        spec = export_model(model, feature_names=feature_names, name=name)
        data = fmt.write(spec, bench_key(), created="2025-01-01T00:00:00Z")
    except PyastoreError as exc:
        return f"{type(exc).__name__}: {exc}"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return None


class ModelBuilder:
    """Builds (or reloads from cache) the standard models of one profile."""

    def __init__(self, profile: Profile, cache: Path = DEFAULT_CACHE, log=print):
        self.profile = profile
        self.root = Path(cache) / profile.name
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._train: tuple[np.ndarray, np.ndarray] | None = None
        self._train_clean: tuple[np.ndarray, np.ndarray] | None = None

    # -- shared data
    def train_data(self, missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if missing:
            if self._train is None:
                self._train = fraud_like(self.profile.train_rows, BENCH_SEED)
            return self._train
        if self._train_clean is None:
            self._train_clean = fraud_like(self.profile.mlp_train_rows, BENCH_SEED + 1,
                                           missing=False)
        return self._train_clean

    def batch(self, kind: str, rows: int | None = None) -> BatchData:
        n = self.profile.batch_rows
        if kind == "fraud_like":
            data = _batch_data(self.root / "batch_fraud_like.f32",
                               lambda: fraud_like(n, BENCH_SEED + 7)[0])
            if rows is not None and rows < data.n_rows:  # the first rows; the C driver: same file
                data = BatchData(data.x[:rows], data.raw_path)
            return data
        if kind.startswith("clean"):
            width = int(kind[len("clean"):])
            return _batch_data(self.root / f"batch_clean{width}.f32",
                               lambda: fraud_like(n, BENCH_SEED + 8, missing=False)[0][:, :width])
        raise ValueError(kind)

    # -- cache bookkeeping
    def _cached(self, key: str, recipe: dict[str, Any], build) -> dict[str, Any]:
        """Run ``build(directory) -> info`` unless the cached build has the same recipe."""
        directory = self.root / key
        stamp = directory / "build.json"
        fingerprint = _fingerprint(recipe, _versions())
        if stamp.exists():
            info = json.loads(stamp.read_text())
            if info.get("fingerprint") == fingerprint:
                return info
        directory.mkdir(parents=True, exist_ok=True)
        self.log(f"[bench] building {key} ({self.profile.name}) ...")
        started = time.perf_counter()
        info = build(directory)
        info.update(fingerprint=fingerprint, build_seconds=round(time.perf_counter() - started, 1),
                    recipe=recipe)
        stamp.write_text(json.dumps(info, indent=1, default=str))
        return info

    def _container(self, model: BenchModel, feature_names: list[str] | None = None) -> None:
        """Attach the signed container, re-exporting when the exporter sources changed."""
        path = model.directory / "model.astore"
        stamp = model.directory / "astore.json"
        fingerprint = exporter_fingerprint()
        if stamp.exists():
            info = json.loads(stamp.read_text())
            if info.get("fingerprint") == fingerprint:
                model.astore_error = info.get("error")
                model.astore = path if model.astore_error is None and path.exists() else None
                if model.astore is not None or model.astore_error is not None:
                    return
        names = feature_names or [f"x{i}" for i in range(model.n_features)]
        error = _export_astore(model.library_model(), path, model.key, names)
        stamp.write_text(json.dumps({"fingerprint": fingerprint, "error": error}))
        model.astore_error = error
        model.astore = None if error else path

    # -- the models
    def xgboost_model(self, key: str, trees: int, depth: int,
                      batch_rows: int | None = None) -> BenchModel:
        recipe = {"kind": "xgboost", "trees": trees, "depth": depth,
                  "rows": self.profile.train_rows, "seed": BENCH_SEED}

        def build(directory: Path) -> dict[str, Any]:
            from xgboost import XGBClassifier

            x, y = self.train_data()
            clf = XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=0.1,
                                subsample=0.9, colsample_bytree=0.9, tree_method="hist",
                                objective="binary:logistic", n_jobs=2, random_state=BENCH_SEED)
            clf.fit(x, y)
            clf.save_model(directory / "model.json")
            clf.save_model(directory / "model.ubj")
            return {}

        directory = self.root / key
        self._cached(key, recipe, build)
        files = {"xgboost JSON": directory / "model.json", "xgboost UBJ": directory / "model.ubj"}
        n_trees, nodes, internal = _count_xgboost(files["xgboost JSON"])
        model = BenchModel(key=key, title=f"XGBoost binary:logistic, {trees} trees, depth {depth}, "
                                          f"{N_FEATURES} features",
                           family="xgboost", directory=directory, n_features=N_FEATURES,
                           files=files, batch=self.batch("fraud_like", batch_rows), n_trees=n_trees,
                           n_nodes=nodes, n_internal=internal)
        self._container(model)
        return model

    def random_forest(self, key: str, trees: int, depth: int) -> BenchModel:
        recipe = {"kind": "rf", "trees": trees, "depth": depth, "rows": self.profile.train_rows,
                  "seed": BENCH_SEED}

        def build(directory: Path) -> dict[str, Any]:
            from sklearn.ensemble import RandomForestClassifier

            x, y = self.train_data()
            rf = RandomForestClassifier(n_estimators=trees, max_depth=depth, n_jobs=2,
                                        random_state=BENCH_SEED)
            rf.fit(x, y)
            rf.n_jobs = 1
            with open(directory / "model.pkl", "wb") as handle:
                pickle.dump(rf, handle, protocol=pickle.HIGHEST_PROTOCOL)
            return {"nodes": int(sum(e.tree_.node_count for e in rf.estimators_)),
                    "internal": int(sum(int((e.tree_.children_left != -1).sum())
                                        for e in rf.estimators_))}

        directory = self.root / key
        info = self._cached(key, recipe, build)
        model = BenchModel(key=key, title=f"scikit-learn RandomForestClassifier, {trees} trees, "
                                          f"max_depth {depth}, {N_FEATURES} features",
                           family="sklearn_rf", directory=directory, n_features=N_FEATURES,
                           files={"pickle": directory / "model.pkl"},
                           batch=self.batch("fraud_like"), n_trees=trees, n_nodes=info["nodes"],
                           n_internal=info["internal"])
        self._container(model)
        return model

    def mlp(self, key: str, shape: tuple[int, ...]) -> BenchModel:
        n_in, hidden = shape[0], tuple(shape[1:])
        recipe = {"kind": "mlp", "shape": shape, "rows": self.profile.mlp_train_rows,
                  "max_iter": self.profile.mlp_max_iter, "seed": BENCH_SEED}

        def build(directory: Path) -> dict[str, Any]:
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            from sklearn.neural_network import MLPClassifier

            x, y = self.train_data(missing=False)
            mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=self.profile.mlp_max_iter,
                                random_state=BENCH_SEED)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mlp.fit(x[:, :n_in], y)
            with open(directory / "model.pkl", "wb") as handle:
                pickle.dump(mlp, handle, protocol=pickle.HIGHEST_PROTOCOL)
            params = sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_)
            return {"params": int(params)}

        directory = self.root / key
        info = self._cached(key, recipe, build)
        label = "-".join(str(s) for s in shape) + "-1"
        title = f"scikit-learn MLPClassifier {label} (relu, logistic output)"
        model = BenchModel(key=key, title=title,
                           family="sklearn_mlp", directory=directory, n_features=n_in,
                           files={"pickle": directory / "model.pkl"},
                           batch=self.batch(f"clean{n_in}"), n_params=info["params"])
        self._container(model)
        return model

    def fraud_main_job(self, key: str = "M5") -> BenchModel:
        epochs = self.profile.capsnet_epochs
        trees, depth = self.profile.m5
        recipe = {"kind": "fraud", "epochs": epochs, "trees": trees, "depth": depth, "seed": 0}
        directory = self.root / key

        def build(directory: Path) -> dict[str, Any]:
            from dataclasses import replace

            from trainer import fraud
            from trainer.data import load_csv, write_bundled

            csv = write_bundled(directory / "transactions.csv")
            dataset = load_csv(csv, "fraud")
            config = fraud.FraudConfig(epochs=epochs, n_trees=trees, max_depth=depth,
                                       progress=False, n_jobs=2)
            fraud._set_torch_threads()
            try:
                result = fraud.run_variant(dataset, config, seed=0)
            finally:  # torch.set_num_threads(1) also capped OpenMP for tl2cgen and xgboost
                try:
                    import torch

                    torch.set_num_threads(os.cpu_count() or 1)
                except ImportError:
                    pass
            result.model.set_params(n_jobs=1)
            result.model.save_model(directory / "model.json")
            result.model.save_model(directory / "model.ubj")
            _, check = fraud.export(result, dataset, replace(config, n_jobs=1), bench_key(),
                                    name="fraud", created="2025-01-01T00:00:00Z")
            np.save(directory / "pool.npy", dataset.x.astype(np.float32))
            return {"check": check, "features": list(dataset.feature_names),
                    "auc": result.metrics.get("roc_auc")}

        info = self._cached(key, recipe, build)
        pool = np.load(directory / "pool.npy")
        rng = np.random.default_rng(BENCH_SEED + 5)
        batch = _batch_data(self.root / "batch_fraud_bundled.f32",
                            lambda: pool[rng.integers(0, len(pool), self.profile.batch_rows)])
        files = {"xgboost JSON": directory / "model.json", "xgboost UBJ": directory / "model.ubj"}
        n_trees, nodes, internal = _count_xgboost(files["xgboost JSON"])
        title = (f"fraud pipeline: XGBoost {n_trees} trees depth {depth} on the bundled data + "
                 f"CapsNet frauds ({epochs} epochs), {pool.shape[1]} features")
        model = BenchModel(key=key, title=title,
                           family="xgboost", directory=directory, n_features=int(pool.shape[1]),
                           files=files, batch=batch, n_trees=n_trees, n_nodes=nodes,
                           n_internal=internal)
        self._container(model, info["features"])
        return model

    def lightgbm_twin(self, of: BenchModel) -> BenchModel | MissingTwin:
        """LightGBM with ``of``'s size on the same data, for lleaves; the reason when LightGBM
        is missing."""
        trees, depth = self.profile.m1
        key = f"{of.key}-lgbm"
        try:
            import lightgbm
        except ImportError as exc:
            return MissingTwin(key, "lightgbm", f"lightgbm is not installed ({exc})")
        recipe = {"kind": "lightgbm", "trees": trees, "depth": depth,
                  "rows": self.profile.train_rows, "seed": BENCH_SEED,
                  "lightgbm": lightgbm.__version__}

        def build(directory: Path) -> dict[str, Any]:
            x, y = self.train_data()
            clf = lightgbm.LGBMClassifier(n_estimators=trees, max_depth=depth,
                                          num_leaves=2 ** depth - 1, learning_rate=0.1,
                                          subsample=0.9, subsample_freq=1, colsample_bytree=0.9,
                                          random_state=BENCH_SEED, n_jobs=2, verbose=-1)
            clf.fit(x, y)
            clf.booster_.save_model(str(directory / "model.txt"))
            dump = clf.booster_.dump_model()
            leaves = sum(t["num_leaves"] for t in dump["tree_info"])
            return {"trees": len(dump["tree_info"]), "nodes": 2 * leaves - len(dump["tree_info"]),
                    "internal": leaves - len(dump["tree_info"])}

        directory = self.root / key
        info = self._cached(key, recipe, build)
        model = BenchModel(key=key, title=f"LightGBM twin of {of.key}: {info['trees']} trees, "
                                          f"max_depth {depth}", family="lightgbm",
                           directory=directory, n_features=N_FEATURES,
                           files={"LightGBM text": directory / "model.txt"}, batch=of.batch,
                           n_trees=info["trees"], n_nodes=info["nodes"],
                           n_internal=info["internal"], twin_of=of.key)
        self._container(model)  # pyastore scores the same LightGBM model as lleaves
        return model

    def ydf_twin(self, of: BenchModel, trees: int, depth: int) -> BenchModel | MissingTwin:
        """YDF gradient-boosted trees with ``of``'s shape (``trees``, XGBoost ``depth``) on the
        same training rows; the reason when YDF is missing.

        Equal shape, not the same trees: as many trees, ``max_depth`` = ``depth`` + 1 (YDF's
        root is depth 1), XGBoost's learning rate and row subsample, no early stopping (so no
        validation split either: all rows train). The model is stored serialized
        (``model.serialize()``), one file, loaded with ``ydf.deserialize_model``.
        """
        key = f"{of.key}-ydf"
        try:
            import ydf
        except ImportError as exc:
            return MissingTwin(key, "ydf", f"ydf is not installed ({exc})")
        recipe = {"kind": "ydf", "trees": trees, "depth": depth, "rows": self.profile.train_rows,
                  "seed": BENCH_SEED, "ydf": ydf.__version__, "visit_rows": VISIT_ROWS}

        def build(directory: Path) -> dict[str, Any]:
            x, y = self.train_data()
            learner = ydf.GradientBoostedTreesLearner(
                label="label", task=ydf.Task.CLASSIFICATION, num_trees=trees,
                max_depth=depth + 1, shrinkage=0.1, subsample=0.9, early_stopping="NONE",
                validation_ratio=0.0, random_seed=BENCH_SEED, num_threads=2)
            previous = ydf.verbose(0)  # its training log would land in the table on stdout
            try:
                model = learner.train({YDF_FEATURES: x, "label": y})
            finally:
                ydf.verbose(previous)
            if list(model.label_classes()) != ["0", "1"]:
                raise RuntimeError(f"YDF label classes {model.label_classes()}, not ['0', '1']")
            tmp = directory / "model.ydf.tmp"
            tmp.write_bytes(model.serialize())
            os.replace(tmp, directory / "model.ydf")
            sample = of.batch.x[:VISIT_ROWS]
            stats = ydf_tree_stats(model, sample)
            stats["of_visits_per_row"] = xgboost_node_visits(of, sample)
            return stats

        directory = self.root / key
        info = self._cached(key, recipe, build)
        n_trees = info["trees"]
        shape = (f"{n_trees} trees, {info['nodes'] / n_trees:.1f} nodes per tree "
                 f"({of.key}: {of.n_nodes / of.n_trees:.1f})")
        if info["visits_per_row"] is not None:
            shape += (f", {info['visits_per_row']:.0f} nodes visited per row "
                      f"({info['visits_per_row'] / n_trees:.2f} per tree; {of.key}: "
                      f"{info['of_visits_per_row']:.0f}, "
                      f"{info['of_visits_per_row'] / of.n_trees:.2f})")
        notes = [f"own model: YDF's trees with {of.key}'s shape on {of.key}'s training rows "
                 f"(max_depth {depth + 1} = XGBoost's {depth}), not {of.key}'s trees; {shape}"]
        return BenchModel(key=key, title=f"YDF GradientBoostedTrees twin of {of.key}: {n_trees} "
                                         f"trees, max_depth {depth + 1} (root = 1)",
                          family="ydf", directory=directory, n_features=N_FEATURES,
                          files={"YDF model": directory / "model.ydf"}, batch=of.batch,
                          n_trees=n_trees, n_nodes=info["nodes"], n_internal=info["internal"],
                          twin_of=of.key, notes=notes)


MODEL_KEYS = ("M1", "M2", "M3", "M4a", "M4b", "M5")


def build_models(profile: Profile, cache: Path = DEFAULT_CACHE, only: tuple[str, ...] = MODEL_KEYS,
                 log=print) -> tuple[list[BenchModel], dict[str, list[BenchModel | MissingTwin]]]:
    """The standard models of ``profile`` (those in ``only``), and by model key its twins
    (the LightGBM twin of M1, the YDF twins of M1 and M2; a ``MissingTwin`` when the library
    is missing)."""
    builder = ModelBuilder(profile, cache, log)
    models: list[BenchModel] = []
    twins: dict[str, list[BenchModel | MissingTwin]] = {}
    for key in only:
        if key == "M1":
            models.append(builder.xgboost_model("M1", *profile.m1))
            twins["M1"] = [builder.lightgbm_twin(models[-1]),
                           builder.ydf_twin(models[-1], *profile.m1)]
        elif key == "M2":
            models.append(builder.xgboost_model("M2", *profile.m2, profile.big_model_batch_rows))
            twins["M2"] = [builder.ydf_twin(models[-1], *profile.m2)]
        elif key == "M3":
            models.append(builder.random_forest("M3", *profile.m3))
        elif key == "M4a":
            models.append(builder.mlp("M4a", profile.mlp_small))
        elif key == "M4b":
            models.append(builder.mlp("M4b", profile.mlp_wide))
        elif key == "M5":
            models.append(builder.fraud_main_job("M5"))
        else:
            raise ValueError(f"unknown model {key!r}; choose from {', '.join(MODEL_KEYS)}")
    return models, twins
