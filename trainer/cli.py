"""``pyastore-train``: the server-side command line (fit, compare, export, publish).

Errors are printed as one ``pyastore-train: error: ...`` line with the exit codes of
``pyastore.errors`` (2 usage, 5 bad input data, 6 unsupported model, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pyastore.commandline import Parser, run_command
from pyastore.errors import UsageError

EXAMPLES = """\
examples:
  pyastore keygen publisher
  pyastore-train fraud --out fraud.astore --sign-key publisher.key            # bundled data
  pyastore-train fraud --data cards.csv --target Class --algo rf --augment smote \\
      --out cards.astore --sign-key publisher.key --report report/
  pyastore-train fraud --data cards.csv --target Class --compare --seeds 5 --report report/
  pyastore-train bundled-data transactions.csv
"""

FRAUD_DATA_HELP = """\
columns: --target and --drop name header columns as the CSV reader keeps them: surrounding
  spaces (and a byte-order mark) removed, CSV quotes undone; inside a name, spaces and case
  count. A name not found is a usage error that lists the nearest header names.
leaks: before fitting, every column is checked on the training rows of the first split. One
  that alone separates the label (ROC-AUC >= 0.99 or <= 0.01), or one strictly increasing or
  decreasing down the rows (a row number, an ID, a sorted timestamp) whose ROC-AUC is >= 0.9
  or <= 0.1, is named in a warning, on stderr and in the report, with the --drop that
  removes it. Training goes on: the warning is advice.
categorical columns: a column holding text (a cell that is neither a number nor missing:
  empty, nan, NA, N/A, null, None) is categorical; --categorical COL makes a column of
  numbers categorical too (a ZIP code, an area code: each number is then a text), and
  --numeric COL keeps a column numeric (its text cells are then an error). The vocabulary
  is learned on the training rows only, sorted by UTF-8 bytes (--category-order target:
  by training positive rate); a category's code (its position) is what the trees split
  on, as a number or, with --category-splits native (xgboost, lightgbm), by the library's
  own set-membership splits, and the container stores the vocabulary (and those splits),
  so `pyastore score` takes the raw texts. A
  missing cell, and a category the training rows did not have, score as missing (the
  trees' default branch). Texts are compared with ASCII spaces and tabs at either end
  removed, case and accents kept.
metrics: recall at 1% / 5% flagged cannot exceed alerts / positives when more than 1% / 5%
  of the test rows are positive; stderr, --json and the report give each metric's cap next
  to its number, and the report marks metrics every run scores at their ceiling.
"""


def _say(message: str) -> None:
    sys.stderr.write(f"pyastore-train: {message}\n")
    sys.stderr.flush()


def cmd_bundled_data(args: argparse.Namespace) -> int:
    from trainer.data import write_bundled

    path = Path(args.output)
    if path.exists() and not args.force:
        raise UsageError(f"{path}: exists (use --force to overwrite)")
    write_bundled(path)
    _say(f"wrote the bundled default data set to {path} (target column: fraud)")
    return 0


def _dataset(args: argparse.Namespace):
    from trainer import data

    if args.data is None:
        if args.target is not None and data.column_name(args.target) != "fraud":
            raise UsageError("--target needs --data (the bundled data's target is 'fraud')")
        import hashlib
        import tempfile

        raw = data.bundled_fraud_csv()
        with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
            handle.write(raw)
            handle.flush()
            dataset = data.load_csv(handle.name, "fraud", tuple(args.drop),
                                    categorical=tuple(args.categorical),
                                    numeric=tuple(args.numeric))
        from dataclasses import replace

        return replace(
            dataset, source="bundled:fraud-default-v1", sha256=hashlib.sha256(raw).hexdigest()
        )
    return data.load_csv(args.data, args.target, tuple(args.drop),
                         categorical=tuple(args.categorical), numeric=tuple(args.numeric))


def _metrics_line(result, dataset) -> str:
    """``name value`` for each metric; a metric capped below 1 on the test rows says so."""
    from trainer.metrics import ceilings

    limits = ceilings(dataset.y[result.test_index])
    return ", ".join(
        f"{name} {value:.4f}" + (f" (capped at {limits[name]:.4f}: cannot discriminate here)"
                                 if limits.get(name, 1.0) < 1.0 else "")
        for name, value in result.metrics.items())


def cmd_fraud(args: argparse.Namespace) -> int:
    from trainer import fraud

    config = fraud.FraudConfig(
        algo=args.algo, augment=args.augment, test_size=args.test_size, seed=args.seed,
        balance=args.balance, synthetic=args.synthetic, synthetic_ratio=args.synthetic_ratio,
        tweak=args.tweak, epochs=args.epochs, n_trees=args.trees, n_jobs=args.jobs,
        progress=sys.stderr.isatty() and not args.quiet, category_order=args.category_order,
        category_splits=args.category_splits)
    config.check()
    if args.data is not None and args.target is None:
        raise UsageError("--data needs --target COLUMN")
    if not args.compare and args.out is None:
        raise UsageError("--out MODEL.astore is required (or use --compare)")
    if args.out is not None and args.sign_key is None:
        raise UsageError("--out needs --sign-key KEY (create one with: pyastore keygen NAME)")
    signing_key = None
    if args.sign_key is not None:
        from pyastore.keys import SigningKey

        signing_key = SigningKey.load(args.sign_key)
    started = time.perf_counter()
    dataset = _dataset(args)
    _say(f"data: {dataset.source}: {dataset.balance()}")
    if dataset.text:
        described = ", ".join(
            f"{name!r} ({len({v for v in dataset.text[i] if v is not None})} distinct)"
            for i, name in ((i, dataset.feature_names[i]) for i in sorted(dataset.text)))
        _say(f"categorical columns: {described}; each vocabulary is learned on the training "
             "rows and stored in the container (use --numeric COL to refuse text instead)")
    from trainer.leaks import check_training_rows

    leaks = check_training_rows(dataset, config.test_size, config.seed)
    for leak in leaks:
        _say(f"warning: {leak.message}")
    fraud._set_torch_threads()
    results = []
    if args.compare:
        variants = ", ".join(fraud.AUGMENTATIONS)
        _say(f"comparing {variants} over {args.seeds} seed(s) with {config.algo}")
        results = fraud.compare(dataset, config, args.seeds)
        for variant in fraud.AUGMENTATIONS:
            runs = [r for r in results if r.augment == variant]
            mean = sum(r.metrics["pr_auc"] for r in runs) / len(runs)
            _say(f"  {variant:8s} PR-AUC {mean:.4f} (mean of {len(runs)})")
        chosen = next(r for r in results if r.augment == config.augment and r.seed == config.seed)
    else:
        chosen = fraud.run_variant(dataset, config, config.seed)
        results = [chosen]
        _say(f"{config.algo} + {config.augment}: " + _metrics_line(chosen, dataset))
    if args.report:
        from trainer.report import write_report

        context = {"data": dataset.source, "sha256": dataset.sha256, "balance": dataset.balance(),
                   "algo": config.algo, "classifier": type(chosen.model).__name__,
                   "test_size": config.test_size, "balance_method": config.balance,
                   "synthetic_rows": int(chosen.training.synthetic.sum()),
                   "epochs": config.epochs, "tweak": config.tweak,
                   "seconds": round(time.perf_counter() - started, 1),
                   "data_warnings": [leak.as_dict() for leak in leaks]}
        write_report(results, args.report, context, labels=dataset.y)
        _say(f"report: {Path(args.report) / 'report.md'}")
    if args.out is not None:
        from pyastore import format as fmt

        data, check = fraud.export(chosen, dataset, config, signing_key, name=args.name)
        fmt.write_file(args.out, data)
        _say(f"wrote {args.out}: {check['bytes']} bytes, store key sha256:{check['store_key']}")
        _say(f"container vs {config.algo} on {check['rows_checked']} test rows: max |difference| "
             f"{check['max_abs_difference_vs_library']:.3g}")
        if args.chain:
            from trainer.publish import publish

            proof_path = publish(args.chain, args.out, check["store_key"], args.name,
                                 f"{config.algo} + {chosen.augment} fraud model", signing_key)
            _say(f"anchored in {args.chain}; proof bundle {proof_path}")
    _say(f"done in {time.perf_counter() - started:.1f} s")
    if args.json:
        from trainer.metrics import ceilings

        sys.stdout.write(json.dumps(
            {"metrics": chosen.metrics, "seconds": chosen.seconds,
             "ceilings": ceilings(dataset.y[chosen.test_index]),
             "data_warnings": [leak.as_dict() for leak in leaks]}, indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pyastore-train",
        description="Train fraud models and export signed containers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    raw = argparse.RawDescriptionHelpFormatter

    fraud = commands.add_parser(
        "fraud", help="train a fraud model (optionally with synthetic frauds) and export it",
        formatter_class=raw,
        description="Load a labelled CSV (or the bundled default data), split it (stratified), "
                    "balance the training set by oversampling, add synthetic frauds (CapsNet, "
                    "SMOTE or random), fit the classifier, evaluate on the untouched test rows, "
                    "and export a signed container. --compare runs every augmentation on the same "
                    "splits over --seeds seeds and writes a report.\n\n" + FRAUD_DATA_HELP,
        epilog=EXAMPLES)
    fraud.add_argument(
        "--data", metavar="FILE.csv", help="labelled CSV (default: the bundled data set)"
    )
    fraud.add_argument("--target", metavar="COLUMN",
                       help="the 0/1 label column (header names are compared with surrounding "
                            "spaces removed)")
    fraud.add_argument("--drop", metavar="COLUMN", nargs="+", action="extend", default=[],
                       help="columns to ignore (IDs, free text, columns that leak the label)")
    fraud.add_argument("--categorical", metavar="COLUMN", nargs="+", action="extend",
                       default=[], help="columns to treat as categories even when they hold "
                                        "numbers (text columns are categorical already)")
    fraud.add_argument("--numeric", metavar="COLUMN", nargs="+", action="extend", default=[],
                       help="columns that must be numeric: a text cell is an error instead of "
                            "making the column categorical")
    fraud.add_argument("--category-order", choices=("bytes", "target"), default="bytes",
                       help="the codes of a categorical column's categories: their UTF-8 byte "
                            "order (default), or their training positive rate (smoothed); see "
                            "docs/EXPERIMENTS.md")
    fraud.add_argument("--category-splits", choices=("codes", "native"), default="codes",
                       help="how the trees split on a categorical column: on its codes like a "
                            "number (default), or with XGBoost's / LightGBM's own "
                            "set-membership splits (--algo xgboost or lightgbm), stored in "
                            "the container as such; see docs/EXPERIMENTS.md")
    fraud.add_argument("--algo", choices=("xgboost", "lightgbm", "catboost", "rf", "mlp"),
                       default="xgboost")
    fraud.add_argument(
        "--augment",
        choices=("none", "capsnet", "smote", "random"),
        default="capsnet",
        help="synthetic frauds to add (default capsnet)",
    )
    fraud.add_argument("--compare", action="store_true", help="run every augmentation and report")
    fraud.add_argument("--seeds", type=int, default=5, help="splits to compare over (default 5)")
    fraud.add_argument("--seed", type=int, default=0, help="first split seed (default 0)")
    fraud.add_argument("--test-size", type=float, default=0.5, help="test share (default 0.5)")
    fraud.add_argument("--balance", choices=("random", "smote", "none"), default="random",
                       help="oversampling of the training frauds (default random)")
    fraud.add_argument("--synthetic", type=int, metavar="N", help="synthetic frauds to add")
    fraud.add_argument(
        "--synthetic-ratio",
        type=float,
        default=1.0,
        metavar="R",
        help="synthetic frauds per real training fraud when --synthetic is not given (default 1)",
    )
    fraud.add_argument("--tweak", type=float, default=0.1,
                       help="CapsNet: relative perturbation of the fraud capsule (default 0.1)")
    fraud.add_argument(
        "--epochs", type=int, default=250, help="CapsNet training epochs (default 250)"
    )
    fraud.add_argument(
        "--trees", type=int, default=100, help="trees of the classifier (default 100)"
    )
    fraud.add_argument("--jobs", type=int, default=1, help="threads for the classifier (default 1)")
    fraud.add_argument("--out", metavar="MODEL.astore", help="write the signed container here")
    fraud.add_argument("--sign-key", metavar="KEY", help="the publisher's .key file")
    fraud.add_argument("--name", default="fraud", help="model name in the container")
    fraud.add_argument(
        "--chain", metavar="LOG", help="append the container to this log, write MODEL.astore.proof"
    )
    fraud.add_argument(
        "--report", metavar="DIR", help="write plots, report.md and metrics.json here"
    )
    fraud.add_argument(
        "--json", action="store_true", help="print the chosen variant's metrics as JSON"
    )
    fraud.add_argument("--quiet", action="store_true", help="no progress bars")
    fraud.set_defaults(handler=cmd_fraud)

    bundled = commands.add_parser(
        "bundled-data",
        help="write the bundled default data set as CSV",
        formatter_class=raw,
        description="Write the reproducible fraud-like default data set "
        "(6,000 rows, 3%% fraud, target column 'fraud').",
        epilog="example:\n  pyastore-train bundled-data transactions.csv\n",
    )
    bundled.add_argument("output", metavar="FILE.csv")
    bundled.add_argument("--force", action="store_true", help="overwrite an existing file")
    bundled.set_defaults(handler=cmd_bundled_data)

    from trainer.vertical.cli import add_commands as add_vertical_commands

    add_vertical_commands(commands, raw)

    from trainer.federated.cli import add_parsers as add_federated_parsers

    add_federated_parsers(commands, raw)

    from trainer.gate_experiment import add_parser as add_gate_experiment

    add_gate_experiment(commands, raw)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
