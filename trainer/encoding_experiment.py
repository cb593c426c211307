"""How to encode categorical columns for the trees: the measurement behind the default.

``python -m trainer.encoding_experiment --data FILE.csv --target COL [--positive LABEL]
[--categorical COL...] [--seeds 5]`` fits the fraud pipeline's XGBoost classifier (100 trees,
depth 6, learning rate 0.1, subsample and columns 0.9; the training half balanced by random
oversampling, no synthetic rows) on ``seeds`` stratified 50/50 splits, once per encoding of
the categorical columns, and prints held-out PR-AUC and ROC-AUC (mean and standard
deviation over the seeds):

* ``target``: one code column per categorical column, categories ordered by their smoothed
  training positive rate (``trainer.categorical``, the exporter's default);
* ``bytes``: one code column, categories in UTF-8 byte order;
* ``onehot``: one 0/1 column per training category (an unseen or missing cell is all 0);
* ``native``: XGBoost's own categorical splits (``enable_categorical``, pandas ``category``
  columns of the training categories), a reference only: the container format has no
  set-membership splits, so the exporters refuse such models.

Every vocabulary is learned on the training half only. The results are in
docs/EXPERIMENTS.md ("Categorical columns"), with the data sets and the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

ENCODINGS = ("target", "bytes", "onehot", "native")


def _frame(path: str, target: str, positive: str | None, categorical: Sequence[str],
           drop: Sequence[str]):
    import pandas as pd

    from trainer.data import text_cells

    frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True)
    labels = frame.pop(target)
    y = ((labels.astype(str) == positive) if positive is not None else labels == 1)
    frame = frame.drop(columns=list(drop))
    raw = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    columns = {}
    for name in frame.columns:
        if name in categorical or frame[name].dtype.kind not in "fiub":
            columns[name] = text_cells(raw[name].tolist())
        else:
            columns[name] = frame[name].to_numpy(dtype=np.float64)
    return columns, y.to_numpy().astype(np.int64)


def _matrix(columns: dict, y: np.ndarray, train: np.ndarray, encoding: str):
    import pandas as pd

    from trainer import categorical

    parts, native = [], {}
    for name, values in columns.items():
        if values.dtype != object:
            parts.append(values[:, None])
            native[name] = values
            continue
        if encoding in ("target", "bytes"):
            vocabulary = categorical.learn(values[train], y[train], encoding)
            parts.append(categorical.encode(values, vocabulary)[:, None])
        elif encoding == "onehot":
            vocabulary = categorical.learn(values[train], y[train], "bytes")
            codes = categorical.encode(values, vocabulary)
            parts.append((codes[:, None] == np.arange(len(vocabulary.categories))[None, :])
                         .astype(np.float64))
        else:
            vocabulary = categorical.learn(values[train], y[train], "bytes")
            native[name] = pd.Categorical([v if v in vocabulary.categories else None
                                           for v in values],
                                          categories=list(vocabulary.categories))
    if encoding == "native":
        return pd.DataFrame(native)
    return np.hstack(parts)


def run(columns: dict, y: np.ndarray, seeds: int, encodings: Sequence[str]) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from trainer.fraud import FraudConfig, balance, make_classifier

    config = FraudConfig(augment="none")
    results: dict[str, dict[str, list[float]]] = {e: {"pr_auc": [], "roc_auc": []}
                                                  for e in encodings}
    for seed in range(seeds):
        index = np.arange(len(y))
        train, test = train_test_split(index, test_size=0.5, random_state=seed, stratify=y)
        train, test = np.sort(train), np.sort(test)
        for encoding in encodings:
            x = _matrix(columns, y, train, encoding)
            model = make_classifier(config, seed)
            if encoding == "native":
                model.set_params(enable_categorical=True)
                rng = np.random.default_rng(seed)
                positives = train[y[train] == 1]
                extra = max(int((y[train] == 0).sum()) - len(positives), 0)
                rows = np.concatenate([train, rng.choice(positives, size=extra, replace=True)])
                model.fit(x.iloc[rows], y[rows])
                scores = model.predict_proba(x.iloc[test])[:, 1]
            else:
                training = balance(x[train], y[train], config.balance, seed)
                model.fit(training.x, training.y)
                scores = model.predict_proba(x[test])[:, 1]
            results[encoding]["pr_auc"].append(float(average_precision_score(y[test], scores)))
            results[encoding]["roc_auc"].append(float(roc_auc_score(y[test], scores)))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.encoding_experiment",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--positive", help="the target's positive label (default: 1)")
    parser.add_argument("--categorical", nargs="+", default=[],
                        help="columns to treat as categories even when they look numeric")
    parser.add_argument("--drop", nargs="+", default=[])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--encodings", nargs="+", choices=ENCODINGS, default=list(ENCODINGS))
    args = parser.parse_args(argv)
    columns, y = _frame(args.data, args.target, args.positive, args.categorical, args.drop)
    results = run(columns, y, args.seeds, args.encodings)
    n_categorical = sum(1 for v in columns.values() if v.dtype == object)
    sys.stdout.write(f"{args.data}: {len(y)} rows, {int(y.sum())} positive, "
                     f"{len(columns)} columns ({n_categorical} categorical), "
                     f"{args.seeds} seeds\n")
    for encoding, metrics in results.items():
        line = ", ".join(f"{name} {np.mean(v):.4f} ± {np.std(v):.4f}"
                         for name, v in metrics.items())
        sys.stdout.write(f"  {encoding:7s} {line}\n")
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
