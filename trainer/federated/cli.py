"""``pyastore-train federated`` and ``pyastore-train federated-agent``: parsers and handlers.

``federated`` simulates a whole federation on one machine: it deals the rows of one labelled
CSV to ``--agents`` agents (uneven sizes, 90/10 train/test each, an agent without training
frauds), runs the schedule with a progress bar per round, writes each agent's signed container
and, with ``--report``, the metrics, plots and costs. ``--compare`` runs every variant of
the experiment (disconnected, ring and full with each ranking, pool-everything).

``federated-agent`` runs one agent as its own process (real deployments and the ``async``
schedule): its own CSV, the shared registry directory and log, its key, the consortium's keys.

Errors are ``pyastore.errors`` exceptions (the trainer CLI prints one line and exits with the
class's code: 2 usage, 5 bad input data, 7 log failure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyastore.errors import UsageError

EXAMPLES = """\
examples:
  pyastore-train federated --data cards.csv --target Class --drop Time --agents 20 \\
      --topology ring --rounds 4 --ranking kernel --chain fed.log --out fed/ --report fed/report
  pyastore-train federated --data cards.csv --target Class --drop Time --compare --seeds 5 \\
      --chain runs/fed.log --out runs/ --report docs/experiments/federated
  pyastore chain provenance fed/agent-03.astore --log fed.log
"""

AGENT_EXAMPLES = """\
example (agent 3 of a consortium of 20; the process record must already be in the log):
  pyastore-train federated-agent --id 3 --data my_rows.csv --target Class --drop Time \\
      --registry /shared/registry --log /shared/fed.log --key agent-03.key \\
      --consortium keys/agent-*.pub --out agent-03.astore
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=_positive, default=4, help="rounds (default 4)")
    parser.add_argument("--n-new", type=_positive, default=10, help="trees per FIT (10)")
    parser.add_argument("--n-max", type=_positive, default=50,
                        help="ensemble bound after CROP (50; 0: unbounded, pool everything)")
    parser.add_argument("--n-share", type=_positive, default=10, help="trees per SHARE (10)")
    parser.add_argument("--ranking", choices=("kernel", "linreg", "none"), default="kernel",
                        help="GET_TOP ranking (default kernel: P-greedy on the tree kernel)")
    parser.add_argument("--kernel", choices=("raw", "normalized"), default="raw",
                        help="tree kernel k, or k/sqrt(k(T,T)k(T',T')) (default raw)")
    parser.add_argument("--kernel-decay", type=float, default=1.0,
                        help="Collins-Duffy decay in (0, 1] (default 1: plain count)")
    parser.add_argument("--pgreedy-rest", choices=("recent", "drop"), default="recent",
                        help="trees P-greedy cannot select: ranked after, most recent first "
                             "(default), or dropped")
    parser.add_argument("--max-depth", type=_positive, default=0,
                        help="tree depth limit (default 0: fully grown)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parsers(commands, formatter) -> None:
    """Register ``federated`` and ``federated-agent`` on the trainer's subparsers."""
    fed = commands.add_parser(
        "federated", help="simulate federated random forests over the log",
        formatter_class=formatter, epilog=EXAMPLES,
        description="Deal a labelled CSV to agents, run FIT/SHARE/GET rounds in which every "
                    "shared tree is a signed one-tree container anchored in the log, and write "
                    "each agent's signed model (see docs/FEDERATED.md).")
    fed.add_argument("--data", required=True, metavar="FILE.csv", help="labelled CSV")
    fed.add_argument("--target", required=True, metavar="COLUMN", help="the 0/1 label column")
    fed.add_argument("--drop", metavar="COLUMN", nargs="+", action="extend", default=[],
                     help="columns to ignore (e.g. Time)")
    fed.add_argument("--agents", type=_positive, default=20, help="number of agents (20)")
    fed.add_argument("--topology", choices=("none", "ring", "full"), default="ring")
    fed.add_argument("--schedule", choices=("sync", "async"), default="sync",
                     help="sync: lock-step phases; async: one OS process per agent")
    fed.add_argument("--chain", required=True, metavar="LOG",
                     help="the log (created with a new log key in OUT/keys if missing)")
    fed.add_argument("--out", required=True, metavar="DIR", help="models, keys, registry")
    fed.add_argument("--report", metavar="DIR", help="write report.md, metrics and plots here")
    fed.add_argument("--seeds", type=_positive, default=1, help="seeds to run (default 1)")
    fed.add_argument("--seed", type=_positive, default=0, help="first seed (default 0)")
    fed.add_argument("--spread", type=float, default=0.7,
                     help="agent sizes spread by up to +-this share of the average (0.7)")
    fed.add_argument("--no-fraud-agents", type=_positive, default=1,
                     help="agents given no training frauds (default 1)")
    fed.add_argument("--compare", action="store_true",
                     help="run every variant of the experiment (ignores --topology/--ranking)")
    fed.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_params(fed)
    fed.set_defaults(handler=cmd_federated)

    agent = commands.add_parser(
        "federated-agent", help="run one federated agent as its own process",
        formatter_class=formatter, epilog=AGENT_EXAMPLES,
        description="Run one agent of an opened federation: FIT on its own rows, SHARE to "
                    "present neighbours through the registry directory, GET what passes the "
                    "rules, then write and publish its signed model.")
    agent.add_argument("--id", type=_positive, required=True, help="this agent's member index")
    agent.add_argument("--data", required=True, metavar="MY.csv", help="this agent's rows")
    agent.add_argument("--target", required=True, metavar="COLUMN", help="the 0/1 label")
    agent.add_argument("--drop", metavar="COLUMN", nargs="+", action="extend", default=[],
                       help="columns to ignore")
    agent.add_argument("--registry", required=True, metavar="DIR", help="the shared registry")
    agent.add_argument("--log", required=True, metavar="LOG", help="the shared log")
    agent.add_argument("--key", required=True, metavar="MY.key", help="this agent's key")
    agent.add_argument("--consortium", required=True, nargs="+", metavar="KEY.pub",
                       help="every member's public key, in member order")
    agent.add_argument("--out", required=True, metavar="MODEL.astore", help="final model")
    agent.add_argument("--process", metavar="ID",
                       help="the process id (default: the newest for this consortium)")
    agent.add_argument("--outcome", metavar="FILE.json", help="write stats and refusals here")
    agent.add_argument("--pause", type=float, default=0.0,
                       help="seconds to wait between SHARE and GET (default 0)")
    agent.set_defaults(handler=cmd_federated_agent)


def params_from(args: argparse.Namespace, topology: str, schedule: str, seed: int):
    from trainer.federated.agent import FederationParams

    params = FederationParams(
        n_new=args.n_new, n_max=args.n_max or None, n_share=args.n_share, rounds=args.rounds,
        topology=topology, ranking=args.ranking, schedule=schedule, seed=seed,
        kernel_normalized=args.kernel == "normalized", kernel_decay=args.kernel_decay,
        pgreedy_rest=args.pgreedy_rest, max_depth=args.max_depth or None)
    params.check()
    return params


def _say(message: str) -> None:
    sys.stderr.write(f"pyastore-train: {message}\n")
    sys.stderr.flush()


def cmd_federated(args: argparse.Namespace) -> int:
    from trainer.federated import experiment
    from trainer.federated.schedules import neighbours

    if args.agents < 1:
        raise UsageError("--agents must be >= 1")
    if args.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    variants = list(experiment.VARIANTS) if args.compare else ["run"]
    topologies = {experiment.VARIANTS[v]["topology"] for v in variants} if args.compare \
        else {args.topology}
    for topology in sorted(topologies):  # refuse an impossible graph before any work
        neighbours(topology, args.agents)
    base = params_from(args, args.topology, args.schedule, args.seed)
    dataset = experiment.load_table(args.data, args.target, tuple(args.drop))
    _say(f"data: {dataset.source}: {dataset.balance()}")
    progress = sys.stderr.isatty() and not args.quiet
    out = Path(args.out)
    log_path = Path(args.chain)
    runs = []
    started = time.perf_counter()
    first = True
    for seed in range(args.seed, args.seed + args.seeds):
        splits = experiment.partition(dataset.x, dataset.y, args.agents, seed,
                                      spread=args.spread, no_fraud_agents=args.no_fraud_agents)
        for variant in variants:
            run_dir = out if len(variants) == 1 and args.seeds == 1 else \
                out / variant / f"seed-{seed}"
            run_log = experiment.derived_log(log_path, variant, seed, first)
            first = False
            _say(f"seed {seed}, {variant if args.compare else base.topology + '/' + base.ranking}"
                 f": {args.agents} agents, log {run_log}")
            run = experiment.run_variant(variant, splits, list(dataset.feature_names), base,
                                         seed, run_dir, run_log, progress)
            test = run["agents"]
            mean_bacc = sum(a["test"]["bacc"] for a in test) / len(test)
            _say(f"  mean balanced accuracy {mean_bacc:.4f} over {len(test)} agents, "
                 f"{run['costs']['seconds']:.1f} s, {len(run['costs']['refusals'])} refusal(s); "
                 f"models in {run_dir}")
            runs.append(run)
    if args.report:
        context = {"data": dataset.source, "sha256": dataset.sha256,
                   "balance": dataset.balance(), "agents": args.agents,
                   "seeds": f"{args.seed}..{args.seed + args.seeds - 1}",
                   "parameters": json.dumps({k: v for k, v in base.to_json().items()
                                             if k not in ("topology", "ranking", "seed")}),
                   "seconds": round(time.perf_counter() - started, 1)}
        splits = experiment.partition(dataset.x, dataset.y, args.agents, args.seed,
                                      spread=args.spread, no_fraud_agents=args.no_fraud_agents)
        context.update({k: round(v, 5) for k, v in experiment.kernel_timing(
            splits, list(dataset.feature_names), args.seed, base).items()})
        report = experiment.write_report(runs, args.report, context)
        _say(f"report: {report}")
    if args.json:
        sys.stdout.write(json.dumps(experiment.summarize(runs), indent=1, sort_keys=True) + "\n")
    return 0


def cmd_federated_agent(args: argparse.Namespace) -> int:
    from pyastore import keys
    from trainer.federated.worker import load_agent_csv, run_agent

    signing_key = keys.SigningKey.load(args.key)
    consortium = [keys.load_public_key(path) for path in args.consortium]
    if args.id >= len(consortium):
        raise UsageError(f"--id {args.id} is not one of the {len(consortium)} members")
    if consortium[args.id] != signing_key.public_key:
        raise UsageError(f"--key {args.key} is not the key of member {args.id} "
                         f"({args.consortium[args.id]})")
    data = load_agent_csv(args.data, args.target, tuple(args.drop))
    from trainer.federated.simulation import single_blas_thread

    with single_blas_thread():
        path = run_agent(args.id, data, signing_key, consortium, registry_dir=args.registry,
                         log_path=args.log, out=args.out, process_id=args.process,
                         outcome_path=args.outcome, pause=args.pause)
    _say(f"agent {args.id}: wrote {path}")
    return 0
