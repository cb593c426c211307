"""The published gate experiment, reproduced: XGBoost and a random forest with SMOTE, balancing
before and after the split, and the test set replayed through ``pyastore gate``.

``pyastore-train gate-experiment --out DIR`` runs, for each seed:

1. **balance-then-split** (the published pseudo-code): SMOTE over the whole data set, then a
   stratified train/test split: synthetic frauds, interpolated between real ones, end up in
   the test set next to the frauds they were made from;
2. **split-then-balance** (sound): the stratified split first, SMOTE on the training rows
   only, the test set untouched real rows;

and fits XGBoost (100 trees) and a random forest (100 trees) on each training set, scored on
its test set: confusion matrix at 0.5, accuracy, precision, recall, F1, ROC-AUC. Then, for the
first seed and the sound order, each model is exported to a signed container and its test
set replayed through a real ``pyastore gate`` process into a fresh ledger; the ledger's
admitted/rejected counts are compared with the confusion matrix (admitted = predicted
legitimate = TN + FN, rejected = TP + FP) and every decision with the library's own.

Writes ``DIR/results.json`` and ``DIR/report.md``; the replay's containers, transactions and
ledgers go to a temporary folder (kept in ``DIR/replay-*`` with ``--keep-replay``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "creditcard_sample" / \
    "creditcard_sample_5492.csv"
ORDERS = ("balance-then-split", "split-then-balance")
MODELS = ("xgboost", "random-forest")


def load(path: Path) -> tuple[Any, Any, list[str]]:
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path)
    if "Class" not in frame.columns:
        raise SystemExit(f"{path}: no 'Class' column")
    names = [c for c in frame.columns if c != "Class"]
    return (frame[names].to_numpy(dtype=np.float32), frame["Class"].to_numpy(dtype=np.int64),
            names)


def classifier(kind: str, seed: int) -> Any:
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=100, max_depth=6, learning_rate=0.3, n_jobs=1,
                             random_state=seed, tree_method="hist")
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=seed)


def metrics(y: Any, scores: Any) -> dict[str, Any]:
    from sklearn import metrics as m

    predicted = (scores > 0.5).astype(int)
    tn, fp, fn, tp = (int(v) for v in m.confusion_matrix(y, predicted, labels=[0, 1]).ravel())
    return {"tn": tn, "fp": fp, "fn": fn, "tp": tp,
            "accuracy": float(m.accuracy_score(y, predicted)),
            "precision": float(m.precision_score(y, predicted, zero_division=0)),
            "recall": float(m.recall_score(y, predicted)),
            "f1": float(m.f1_score(y, predicted)),
            "roc_auc": float(m.roc_auc_score(y, scores))}


def split_sets(order: str, x: Any, y: Any, seed: int, test_size: float) -> tuple[Any, ...]:
    from imblearn.over_sampling import SMOTE
    from sklearn.model_selection import train_test_split

    if order == "balance-then-split":
        bx, by = SMOTE(random_state=seed).fit_resample(x, y)
        return tuple(train_test_split(bx, by, test_size=test_size, stratify=by,
                                      random_state=seed))
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=test_size, stratify=y,
                                                        random_state=seed)
    bx, by = SMOTE(random_state=seed).fit_resample(train_x, train_y)
    return bx, test_x, by, test_y


def replay(model: Any, kind: str, names: list[str], test_x: Any, test_y: Any, seed: int,
           out: Path) -> dict[str, Any]:
    """Export ``model``, replay the test set through a real gate, compare with the library."""
    import numpy as np

    import pyastore
    from chain.log import Log
    from pyastore import format as fmt
    from pyastore import keys
    from trainer.export import export_model

    signer = keys.SigningKey(hashlib.sha256(b"gate experiment publisher").digest())
    log_key = keys.SigningKey(hashlib.sha256(b"gate experiment ledger").digest())
    folder = out / f"replay-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    spec = export_model(model, feature_names=names, name=f"gate-experiment-{kind}",
                        description="SMOTE on the training rows, creditcard sample",
                        cutoff=0.5)
    container = folder / "model.astore"
    container.write_bytes(fmt.write(spec, signer, created="2026-01-01T00:00:00Z"))
    public = folder / "publisher.pub"
    public.write_text(keys.public_key_line(signer.public_key) + "\n")
    secret = folder / "ledger.key"
    secret.write_text(keys.SECRET_PREFIX + log_key.seed.hex() + "\n")
    secret.chmod(0o600)
    ledger = folder / "ledger.log"
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    Log.init(ledger, secret, origin="example.com/gate-experiment").close()
    transactions = folder / "test.ndjson"
    with open(transactions, "w") as handle:
        for i, row in enumerate(test_x):
            event = {"id": f"test-{i}", **{n: float(v) for n, v in zip(names, row)}}
            handle.write(json.dumps(event) + "\n")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pyastore", "gate", str(container),
                             str(transactions), "--ledger", str(ledger), "--trust", str(public),
                             "--max-batch", "256"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the gate failed: {result.stderr}")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    with Log.open(ledger, readonly=True) as log:
        report = log.verify()
        decisions = [json.loads(r.description)["decision"] for r in log.records()
                     if r.kind == "tx"]
    library = model.predict_proba(test_x)[:, 1]
    loaded = pyastore.load(container, trusted_keys=[signer.public_key], use_default_trust=False)
    container_scores = loaded.score(np.ascontiguousarray(test_x, dtype=np.float32))[:, 0]
    cm = metrics(test_y, library)
    admitted = decisions.count("admitted")
    rejected = decisions.count("rejected")
    differ = sum(1 for a, p in zip(answers, library)
                 if (a["decision"] == "rejected") != bool(p > 0.5))
    return {"transactions": len(answers), "ledger_tx_records": report.transactions,
            "ledger_verifies": True, "admitted": admitted, "rejected": rejected,
            "tn_plus_fn": cm["tn"] + cm["fn"], "tp_plus_fp": cm["tp"] + cm["fp"],
            "counts_equal_confusion_matrix": (admitted == cm["tn"] + cm["fn"]
                                              and rejected == cm["tp"] + cm["fp"]),
            "decisions_differing_from_library": differ,
            "max_abs_score_difference": float(np.max(np.abs(container_scores - library))),
            "gate_seconds": seconds, "store_key": loaded.store_key}


def run(data: Path, seeds: int, test_size: float, out: Path, keep_replay: bool = False
        ) -> dict[str, Any]:
    import tempfile

    import numpy as np

    if not keep_replay:
        with tempfile.TemporaryDirectory() as folder:
            return run(data, seeds, test_size, Path(folder), keep_replay=True)

    x, y, names = load(data)
    runs: list[dict[str, Any]] = []
    replays: dict[str, Any] = {}
    for seed in range(seeds):
        for order in ORDERS:
            train_x, test_x, train_y, test_y = split_sets(order, x, y, seed, test_size)
            for kind in MODELS:
                model = classifier(kind, seed).fit(train_x, train_y)
                scores = model.predict_proba(test_x)[:, 1]
                runs.append({"seed": seed, "order": order, "model": kind,
                             "test_rows": int(len(test_y)), "test_frauds": int(test_y.sum()),
                             **metrics(test_y, scores)})
                if seed == 0 and order == "split-then-balance":
                    replays[kind] = replay(model, kind, names, test_x, test_y, seed, out)
    summary: dict[str, Any] = {}
    for order in ORDERS:
        for kind in MODELS:
            chosen = [r for r in runs if r["order"] == order and r["model"] == kind]
            summary[f"{order}/{kind}"] = {
                key: {"mean": float(np.mean([r[key] for r in chosen])),
                      "sd": float(np.std([r[key] for r in chosen]))}
                for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "tp", "fp",
                            "fn", "tn")}
    return {"data": str(data), "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "seeds": seeds, "test_size": test_size, "runs": runs, "summary": summary,
            "replay": replays}


def report(results: dict[str, Any]) -> str:
    lines = ["| order | model | accuracy | precision | recall | F1 | ROC-AUC | TP | FP | FN | TN |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, values in results["summary"].items():
        order, kind = name.split("/")
        cells = [f"{values[k]['mean']:.4f} ± {values[k]['sd']:.4f}"
                 for k in ("accuracy", "precision", "recall", "f1", "roc_auc")]
        counts = [f"{values[k]['mean']:.1f}" for k in ("tp", "fp", "fn", "tn")]
        lines.append(f"| {order} | {kind} | " + " | ".join(cells + counts) + " |")
    lines += ["", "| replayed model (seed 0, split-then-balance) | test rows | admitted | "
              "TN+FN | rejected | TP+FP | equal | decisions ≠ library | max abs score diff | "
              "gate time |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for kind, r in results["replay"].items():
        lines.append(f"| {kind} | {r['transactions']} | {r['admitted']} | {r['tn_plus_fn']} | "
                     f"{r['rejected']} | {r['tp_plus_fp']} | "
                     f"{'yes' if r['counts_equal_confusion_matrix'] else 'NO'} | "
                     f"{r['decisions_differing_from_library']} | "
                     f"{r['max_abs_score_difference']:.2e} | {r['gate_seconds']:.2f} s |")
    return "\n".join(lines) + "\n"


def add_parser(commands: Any, raw: Any) -> None:
    parser = commands.add_parser(
        "gate-experiment", formatter_class=raw,
        help="XGBoost/RF + SMOTE, balance before vs after the split, replay through the gate",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="example:\n  pyastore-train gate-experiment --out docs/experiments/gate\n")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="labelled CSV with a 'Class' column (default: the credit-card "
                        "sample)")
    parser.add_argument("--seeds", type=int, default=5, help="splits per order (default 5)")
    parser.add_argument("--test-size", type=float, default=0.3,
                        help="test share (default 0.3)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--keep-replay", action="store_true",
                        help="keep the replay's containers, transactions and ledgers in DIR")
    parser.set_defaults(handler=cmd_gate_experiment)


def cmd_gate_experiment(args: argparse.Namespace) -> int:
    from pyastore.errors import UsageError

    if not args.data.is_file():
        raise UsageError(f"{args.data}: no such file")
    if args.seeds < 1 or not 0 < args.test_size < 1:
        raise UsageError("--seeds must be >= 1 and --test-size in (0, 1)")
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.data, args.seeds, args.test_size, args.out, args.keep_replay)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (args.out / "report.md").write_text(text)
    sys.stdout.write(text)
    return 0
