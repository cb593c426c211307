"""The fraud pipeline: a fraud model from scarce labels, optionally enriched with synthetic frauds.

The pipeline, one named pass each:

1. ``load``      -- a labelled CSV (``trainer.data.load_csv``) or the bundled default data;
2. ``split``     -- stratified train/test split (50/50 by default) with a fixed seed; the test
                    rows are never seen again until evaluation. Categorical columns are
                    encoded here, their vocabularies learned on the training rows only
                    (``Dataset.encoded``; a test category not among them is unseen);
3. ``balance``   -- oversample the training frauds up to the non-fraud count (random
                    duplication, or SMOTE with ``balance="smote"``);
4. ``synthesize``-- add ``n_synthetic`` new fraud rows made from the *training* rows only:
                    CapsNet (``trainer.synth.capsnet``), SMOTE or random (``trainer.synth.
                    baselines``); ``none`` adds nothing. Synthetic rows are marked
                    (``TrainingSet.synthetic``). Generators see median-imputed rows (the
                    classifier still sees the real missing values); a categorical column
                    gets codes of training rows only (its most common code where missing,
                    SMOTE-NC for SMOTE, codes the frauds hold for random, the nearest
                    training code for the CapsNet's decoded values);
5. ``fit``       -- XGBoost (100 trees), LightGBM, CatBoost, random forest or MLP, with
                    the same hyper-parameters for every compared variant. The trees split
                    on a categorical column's codes as on a number (``category_splits=
                    "codes"``), or, for XGBoost and LightGBM, with the library's own
                    set-membership splits (``"native"``), which the container stores as such;
6. ``evaluate``  -- metrics and curves on the test rows (``trainer.metrics``);
7. ``export``    -- the chosen variant into a signed container with its provenance, checked by
                    scoring the test rows through the container and comparing with the
                    library's own predictions; optionally appended to the log.

``run`` does one variant on one split; ``compare`` does every variant on ``seeds`` splits.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pyastore.encoding import Categorical
from pyastore.errors import UsageError
from trainer.data import Dataset

AUGMENTATIONS = ("none", "capsnet", "smote", "random")
ALGORITHMS = ("xgboost", "lightgbm", "catboost", "rf", "mlp")
CATEGORY_SPLITS = ("codes", "native")
NATIVE_CATEGORICAL = ("xgboost", "lightgbm")  # algorithms with their own categorical splits
TRAINER_VERSION = "0.1.0"


@dataclass(frozen=True)
class FraudConfig:
    algo: str = "xgboost"
    augment: str = "capsnet"
    test_size: float = 0.5
    seed: int = 0
    balance: str = "random"  # random | smote | none
    synthetic: int | None = None  # number of synthetic frauds; None: synthetic_ratio
    synthetic_ratio: float = 1.0  # x the number of real training frauds
    tweak: float = 0.1
    epochs: int = 250
    n_trees: int = 100
    max_depth: int = 6
    rf_max_depth: int = 12
    n_jobs: int = 1
    progress: bool = True
    category_order: str = "bytes"  # trainer.categorical.ORDERS: the codes of categories
    category_splits: str = "codes"  # CATEGORY_SPLITS: how the trees split on those codes

    def check(self) -> None:
        if self.algo not in ALGORITHMS:
            raise UsageError(f"--algo must be one of {', '.join(ALGORITHMS)}")
        if self.augment not in AUGMENTATIONS:
            raise UsageError(f"--augment must be one of {', '.join(AUGMENTATIONS)}")
        if not 0.0 < self.test_size < 1.0:
            raise UsageError("--test-size must be between 0 and 1")
        if self.balance not in ("random", "smote", "none"):
            raise UsageError("--balance must be random, smote or none")
        if self.synthetic is not None and self.synthetic < 0:
            raise UsageError("--synthetic must be >= 0")
        if self.category_order not in ("bytes", "target"):
            raise UsageError("--category-order must be bytes or target")
        if self.category_splits not in CATEGORY_SPLITS:
            raise UsageError("--category-splits must be codes or native")
        if self.category_splits == "native" and self.algo not in NATIVE_CATEGORICAL:
            raise UsageError(f"--category-splits native needs --algo xgboost or lightgbm "
                             f"(--algo {self.algo} splits on codes only)")
        if self.synthetic_ratio < 0 or self.tweak < 0 or self.epochs < 1:
            raise UsageError("--synthetic-ratio and --tweak must be >= 0, --epochs >= 1")


@dataclass
class TrainingSet:
    x: np.ndarray
    y: np.ndarray
    synthetic: np.ndarray  # bool per row: made by a generator
    duplicated: np.ndarray  # bool per row: a copy added by balancing


@dataclass
class VariantResult:
    augment: str
    seed: int
    metrics: dict[str, float]
    curves: dict[str, list[float]]
    scores: np.ndarray
    test_index: np.ndarray
    model: Any
    training: TrainingSet
    seconds: dict[str, float] = field(default_factory=dict)
    generator_info: dict[str, Any] = field(default_factory=dict)
    categorical: dict[str, Categorical] = field(default_factory=dict)  # vocabulary by column
    x: np.ndarray | None = None  # the dataset's rows as the model saw them (codes included)


# ---- 2. split ---------------------------------------------------------------------------


def split(dataset: Dataset, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test row indices."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(dataset.y))
    train, test = train_test_split(
        index, test_size=test_size, random_state=seed, stratify=dataset.y
    )
    return np.sort(train), np.sort(test)


# ---- 3. balance ---------------------------------------------------------------------------


def _impute(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), medians, x)


def _fill_values(x: np.ndarray, categorical: Sequence[int] = ()) -> np.ndarray:
    """What a generator sees in a missing cell: the column's median (0 when the column has
    no value), and for a categorical column its most common code, a real category."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column without a value
        fill = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
    fill = np.where(np.isnan(fill), 0.0, fill)
    for column in categorical:
        codes = x[:, column][~np.isnan(x[:, column])]
        if len(codes):
            values, counts = np.unique(codes, return_counts=True)
            fill[column] = values[np.argmax(counts)]
    return fill


def balance(x: np.ndarray, y: np.ndarray, method: str, seed: int,
            categorical: Sequence[int] = ()) -> TrainingSet:
    n_fraud, n_legit = int((y == 1).sum()), int((y == 0).sum())
    extra = max(n_legit - n_fraud, 0)
    none = np.zeros(len(y), dtype=bool)
    if method == "none" or extra == 0:
        return TrainingSet(x, y, none, none.copy())
    if method == "random":
        rng = np.random.default_rng(seed)
        picks = rng.choice(np.flatnonzero(y == 1), size=extra, replace=True)
        return TrainingSet(np.vstack([x, x[picks]]), np.concatenate([y, y[picks]]),
                           np.zeros(len(y) + extra, dtype=bool),
                           np.concatenate([none, np.ones(extra, dtype=bool)]))
    from trainer.synth.baselines import smote_rows

    new = smote_rows(_impute(x, _fill_values(x, categorical)), y, extra, seed=seed,
                     categorical=categorical)
    return TrainingSet(np.vstack([x, new]), np.concatenate([y, np.ones(len(new), dtype=y.dtype)]),
                       np.zeros(len(y) + len(new), dtype=bool),
                       np.concatenate([none, np.ones(len(new), dtype=bool)]))


# ---- 4. synthesize ---------------------------------------------------------------------------


def synthesize(training: TrainingSet, real_x: np.ndarray, real_y: np.ndarray, config: FraudConfig,
               seed: int, categorical: Sequence[int] = ()) -> tuple[TrainingSet, dict[str, Any]]:
    """Add synthetic frauds made from the training rows only (``real_x``: before balancing).
    The columns ``categorical`` hold category codes: every generator gives them codes of
    training rows only (``trainer.synth.baselines``)."""
    method = config.augment
    n_real_fraud = int((real_y == 1).sum())
    n_new = (
        config.synthetic
        if config.synthetic is not None
        else int(round(config.synthetic_ratio * n_real_fraud))
    )
    info: dict[str, Any] = {"method": method, "rows": 0}
    if method == "none" or n_new == 0:
        return training, info
    medians = _fill_values(real_x, categorical)
    frauds = _impute(real_x[real_y == 1], medians)
    if method == "capsnet":
        from trainer.synth.capsnet import CapsNetConfig, CapsNetGenerator

        generator = CapsNetGenerator(
            CapsNetConfig(
                epochs=config.epochs, tweak=config.tweak, seed=seed, progress=config.progress
            )
        )
        generator.fit(_impute(training.x, medians), training.y)
        new = generator.generate(frauds, n_new, seed=seed)
        if categorical:
            from trainer.synth.baselines import nearest_codes

            known = [np.unique(real_x[:, c][~np.isnan(real_x[:, c])]) for c in categorical]
            new = nearest_codes(new, categorical, known)
        info.update(
            {
                "epochs": config.epochs,
                "tweak": config.tweak,
                "final_loss": generator.history[-1],
                "architecture": "FC100 -> 10x10 primary capsules -> 3 routing iterations -> "
                "2x16 class capsules; decoder 32-64-128-n",
            }
        )
    elif method == "smote":
        from trainer.synth.baselines import smote_rows

        new = smote_rows(_impute(real_x, medians), real_y, n_new, seed=seed,
                         categorical=categorical)
    else:
        from trainer.synth.baselines import random_rows

        new = random_rows(frauds, n_new, seed=seed, categorical=categorical)
    info["rows"] = int(len(new))
    augmented = TrainingSet(
        np.vstack([training.x, new]),
        np.concatenate([training.y, np.ones(len(new), dtype=training.y.dtype)]),
        np.concatenate([training.synthetic, np.ones(len(new), dtype=bool)]),
        np.concatenate([training.duplicated, np.zeros(len(new), dtype=bool)]),
    )
    return augmented, info


# ---- 5. fit ----------------------------------------------------------------------------------


def make_classifier(config: FraudConfig, seed: int, categorical: Sequence[int] = (),
                    n_features: int = 0):
    """The classifier of ``config.algo``. With ``config.category_splits == "native"``,
    XGBoost is told which of its ``n_features`` columns are the ``categorical`` ones
    (``feature_types``); LightGBM learns it at fit time (``fit_classifier``)."""
    if config.algo == "xgboost":
        from xgboost import XGBClassifier

        native = {}
        if config.category_splits == "native" and categorical:
            codes = set(categorical)
            native = {"enable_categorical": True,
                      "feature_types": ["c" if i in codes else "q" for i in range(n_features)]}
        return XGBClassifier(
            n_estimators=config.n_trees,
            max_depth=config.max_depth,
            learning_rate=0.1,
            subsample=0.9,
            colsample_bytree=0.9,
            tree_method="hist",
            n_jobs=config.n_jobs,
            random_state=seed,
            eval_metric="logloss",
            **native,
        )
    if config.algo == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=config.n_trees,
            num_leaves=31,
            max_depth=config.max_depth,
            learning_rate=0.1,
            subsample=0.9,
            subsample_freq=1,
            colsample_bytree=0.9,
            n_jobs=config.n_jobs,
            random_state=seed,
            verbose=-1,
        )
    if config.algo == "catboost":
        from catboost import CatBoostClassifier

        return CatBoostClassifier(
            iterations=config.n_trees,
            depth=config.max_depth,
            learning_rate=0.1,
            thread_count=config.n_jobs,
            random_seed=seed,
            verbose=False,
            allow_writing_files=False,
        )
    if config.algo == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=config.n_trees, max_depth=config.rf_max_depth,
                                      n_jobs=config.n_jobs, random_state=seed)
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=300, random_state=seed),
    )


def fit_classifier(model: Any, config: FraudConfig, x: np.ndarray, y: np.ndarray,
                   categorical: Sequence[int] = ()) -> Any:
    """``model.fit(x, y)``; LightGBM with native category splits is told the ``categorical``
    columns, which hold codes (NaN for missing)."""
    if config.algo == "lightgbm" and config.category_splits == "native" and categorical:
        return model.fit(x, y, categorical_feature=list(categorical))
    return model.fit(x, y)


def _set_torch_threads() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)  # the CapsNet is small: one thread beats two fighting over it


# ---- the variants ------------------------------------------------------------------------------


def run_variant(dataset: Dataset, config: FraudConfig, seed: int) -> VariantResult:
    """Split with ``seed``, balance, synthesize (``config.augment``), fit, evaluate."""
    from trainer.metrics import curves, evaluate

    config.check()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    train_index, test_index = split(dataset, config.test_size, seed)
    all_x, vocabularies = (dataset.encoded(train_index, config.category_order) if dataset.text
                           else (dataset.x, {}))
    real_x, real_y = all_x[train_index], dataset.y[train_index]
    categorical = sorted(dataset.text)
    training = balance(real_x, real_y, config.balance, seed, categorical)
    seconds["split_balance"] = time.perf_counter() - started
    started = time.perf_counter()
    training, info = synthesize(training, real_x, real_y, config, seed, categorical)
    seconds["synthesize"] = time.perf_counter() - started
    started = time.perf_counter()
    model = make_classifier(config, seed, categorical, all_x.shape[1])
    fit_classifier(model, config, training.x, training.y, categorical)
    seconds["fit"] = time.perf_counter() - started
    test_x = all_x[test_index]
    scores = model.predict_proba(test_x)[:, 1]
    test_y = dataset.y[test_index]
    return VariantResult(
        config.augment,
        seed,
        evaluate(test_y, scores),
        curves(test_y, scores),
        scores,
        test_index,
        model,
        training,
        seconds,
        info,
        vocabularies,
        all_x,
    )


def compare(dataset: Dataset, config: FraudConfig, seeds: int,
            variants: tuple[str, ...] = AUGMENTATIONS) -> list[VariantResult]:
    """Every variant on ``seeds`` splits (seeds 0..seeds-1), identical classifiers and splits."""
    _set_torch_threads()
    results = []
    for seed in range(config.seed, config.seed + seeds):
        for augment in variants:
            results.append(run_variant(dataset, replace(config, augment=augment), seed))
    return results


# ---- 7. export -----------------------------------------------------------------------------------


def export(result: VariantResult, dataset: Dataset, config: FraudConfig, signing_key, *,
           name: str = "fraud", created: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """Container bytes for a fitted variant, and a check of the container against the library."""
    import pyastore
    from pyastore import format as fmt
    from trainer.export import export_model

    provenance = {
        "training_data": dataset.source,
        "training_data_sha256": dataset.sha256,
        "target": dataset.target,
        "split_seed": result.seed,
        "test_size": config.test_size,
        "balance": config.balance,
        "synthetic_method": result.augment,
        "synthetic_rows": int(result.training.synthetic.sum()),
        "synthetic_parameters": {
            k: v for k, v in result.generator_info.items() if k not in ("method", "rows")
        },
        "trainer_version": TRAINER_VERSION,
        "test_metrics": {k: round(v, 6) for k, v in result.metrics.items()},
    }
    spec = export_model(
        result.model,
        feature_names=list(dataset.feature_names),
        name=name,
        description=f"Fraud classifier ({config.algo}, augmentation {result.augment}) "
        f"trained on {dataset.source}",
        provenance=provenance,
        categorical=result.categorical,
    )
    data = fmt.write(spec, signing_key, created=created)
    model = pyastore.load(data, trusted_keys=[signing_key.public_key], use_default_trust=False)
    rows = result.x if result.x is not None else dataset.x
    test_x = np.ascontiguousarray(rows[result.test_index], dtype=np.float32)
    container_scores = np.empty((len(test_x), len(model.output_names)))
    if len(test_x):
        model.score_into(test_x, container_scores)  # codes, as the library saw them
    container_scores = container_scores[:, 0]
    library_scores = result.model.predict_proba(test_x)[:, 1]
    check = {
        "store_key": model.store_key,
        "bytes": len(data),
        "max_abs_difference_vs_library": float(np.max(np.abs(container_scores - library_scores))),
        "rows_checked": int(len(test_x)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return data, check
