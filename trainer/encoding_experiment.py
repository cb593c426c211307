"""How to encode categorical columns for the trees: the measurement behind the default.

``python -m trainer.encoding_experiment --data FILE.csv --target COL [--positive LABEL]
[--categorical COL...] [--algo xgboost|lightgbm] [--seeds 5]`` fits the fraud pipeline's
classifier (``trainer.fraud.make_classifier``: 100 trees, depth 6, learning rate 0.1,
subsample and columns 0.9; the training half balanced by random oversampling, no synthetic
rows) on ``seeds`` stratified 50/50 splits, once per encoding of the categorical columns,
and prints held-out PR-AUC and ROC-AUC (mean and standard deviation over the seeds):

* ``bytes``: one code column per categorical column, categories in UTF-8 byte order (the
  trainer's default), split on as a number;
* ``target``: one code column, categories ordered by their smoothed training positive rate
  (``trainer.categorical``);
* ``onehot``: one 0/1 column per training category (an unseen or missing cell is all 0), a
  reference: the container has no one-to-many column transform;
* ``native``: the byte-order codes split by the library's own set-membership splits
  (``--category-splits native`` of the trainer, which the container stores as such).

Every vocabulary is learned on the training half only. The results are in
docs/EXPERIMENTS.md ("Categorical columns"), with the data sets and the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

ENCODINGS = ("bytes", "target", "onehot", "native")


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


def _matrix(columns: dict, y: np.ndarray, train: np.ndarray, encoding: str
            ) -> tuple[np.ndarray, list[int]]:
    """The feature matrix of ``encoding`` and the indices of its code columns (categorical
    columns for ``native``; empty for the others, whose codes are numbers to the trees)."""
    from trainer import categorical

    parts, codes = [], []
    for values in columns.values():
        if values.dtype != object:
            parts.append(values[:, None])
            continue
        order = "target" if encoding == "target" else "bytes"
        vocabulary = categorical.learn(values[train], y[train], order)
        encoded = categorical.encode(values, vocabulary)
        if encoding == "onehot":
            parts.append((encoded[:, None] == np.arange(len(vocabulary.categories))[None, :])
                         .astype(np.float64))
        else:
            codes.append(sum(part.shape[1] for part in parts))
            parts.append(encoded[:, None])
    return np.hstack(parts), (codes if encoding == "native" else [])


def run(columns: dict, y: np.ndarray, seeds: int, encodings: Sequence[str],
        algo: str = "xgboost") -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from trainer.fraud import FraudConfig, balance, fit_classifier, make_classifier

    results: dict[str, dict[str, list[float]]] = {e: {"pr_auc": [], "roc_auc": []}
                                                  for e in encodings}
    for seed in range(seeds):
        index = np.arange(len(y))
        train, test = train_test_split(index, test_size=0.5, random_state=seed, stratify=y)
        train, test = np.sort(train), np.sort(test)
        for encoding in encodings:
            x, categorical = _matrix(columns, y, train, encoding)
            config = FraudConfig(algo=algo, augment="none", category_splits="native"
                                 if encoding == "native" else "codes")
            training = balance(x[train], y[train], config.balance, seed, categorical)
            model = make_classifier(config, seed, categorical, x.shape[1])
            fit_classifier(model, config, training.x, training.y, categorical)
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
    parser.add_argument("--algo", choices=("xgboost", "lightgbm"), default="xgboost")
    args = parser.parse_args(argv)
    columns, y = _frame(args.data, args.target, args.positive, args.categorical, args.drop)
    results = run(columns, y, args.seeds, args.encodings, args.algo)
    n_categorical = sum(1 for v in columns.values() if v.dtype == object)
    sys.stdout.write(f"{args.data}: {len(y)} rows, {int(y.sum())} positive, "
                     f"{len(columns)} columns ({n_categorical} categorical), "
                     f"{args.seeds} seeds, {args.algo}\n")
    for encoding, metrics in results.items():
        line = ", ".join(f"{name} {np.mean(v):.4f} ± {np.std(v):.4f}"
                         for name, v in metrics.items())
        sys.stdout.write(f"  {encoding:7s} {line}\n")
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
