"""The command line of vertically partitioned training (hooked into ``pyastore-train``).

* ``vertical``: every participant as its own process on this machine
  (``trainer.vertical.orchestrate``), one round per seed, with an optional report;
* ``vertical-party keygen | id-key | pseudonyms | run | audit``: a data party on its own
  machine (``audit``: look for its raw rows in the store and the log);
* ``vertical-host roster | run | predict | compose``: the host on its own machine.

Errors are one ``pyastore-train: error: ...`` line and the exit codes of ``pyastore.errors``
(2 usage, 4 integrity/refused message, 5 bad input data, 7 log), plus 8 when a participant
does not answer within ``--timeout`` (docs/VERTICAL.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from pyastore.errors import InputError, UsageError

VERTICAL_EXAMPLES = """\
example (the bank loan data, two parties, five seeds):
  pyastore-train vertical --data Bank_Personal_Loan_Modelling.csv --target "Personal Loan" \\
      --id ID --party "personal=Education,Family,Income,CCAvg,Experience,Mortgage" \\
      --party "bank=Securities Account,CD Account,CreditCard" \\
      --chain run/exchange.log --store run/store --out run --report run/report --seeds 5

exit codes: 0 ok, 2 usage, 4 a message refused (integrity), 5 bad input data, 7 log failure,
8 a participant did not answer within --timeout
"""

PARTY_EXAMPLES = """\
examples:
  pyastore-train vertical-party keygen bank --dir keys/          # bank.key/.pub, bank.box.key/.pub
  pyastore-train vertical-party id-key keys/ids.key              # the parties' shared ID secret
  pyastore-train vertical-party pseudonyms --id-key keys/ids.key --data new.csv --id ID
  pyastore-train vertical-party run --name bank --data bank.csv --id ID --target "Personal Loan" \\
      --columns "Securities Account,CD Account,CreditCard" --roster roster.json \\
      --sign-key keys/bank.key --box-key keys/bank.box.key --id-key keys/ids.key \\
      --chain exchange.log --store store/ --out bank/
"""

HOST_EXAMPLES = """\
examples:
  pyastore-train vertical-host roster --party personal=keys/personal --party bank=keys/bank \\
      --host host=keys/host --out roster.json
  pyastore-train vertical-host run --roster roster.json --sign-key keys/host.key \\
      --box-key keys/host.box.key --chain exchange.log --store store/ --out host/ --no-close
  pyastore-train vertical-host predict --model host/host.astore --predict customers.txt \\
      --roster roster.json --sign-key keys/host.key --box-key keys/host.box.key \\
      --chain exchange.log --store store/ --out host/ --close
  pyastore-train vertical-host compose --encoder personal.encoder.astore \\
      --encoder bank.encoder.astore --host host/host.astore --trust keys/personal.pub \\
      --trust keys/bank.pub --trust keys/host.pub --sign-key keys/host.key --out composed.astore
"""


def _say(message: str) -> None:
    sys.stderr.write(f"pyastore-train: {message}\n")
    sys.stderr.flush()


def _train_config(args: argparse.Namespace):
    from trainer.vertical.nets import TrainConfig

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate)
    config.check()
    return config


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Adam learning rate (default 1e-3)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="longest wait for another participant (default 600)")


def _exchange_options(parser: argparse.ArgumentParser, *, seeds: bool = False) -> None:
    parser.add_argument("--chain", metavar="LOG", required=True, help="the shared log")
    parser.add_argument("--store", metavar="DIR", required=True,
                        help="the shared content-addressed store (a folder)")
    if not seeds:
        parser.add_argument("--roster", metavar="FILE", required=True,
                            help="the roster (participants and their public keys)")
        parser.add_argument("--seed", type=int, default=0, help="the round's seed (default 0)")
        parser.add_argument("--round", type=int, default=0,
                            help="the round number, the same at every participant (default 0)")


def _exchange(args: argparse.Namespace, name: str):
    from pyastore import keys
    from trainer.vertical.crypto import BoxKey
    from trainer.vertical.exchange import Exchange
    from trainer.vertical.roster import Roster
    from trainer.vertical.store import DirectoryStore

    if not Path(args.chain).exists():
        raise UsageError(f"{args.chain}: no such log (create it with: pyastore chain init)")
    return Exchange(args.chain, DirectoryStore(args.store), Roster.load(args.roster), name,
                    keys.SigningKey.load(args.sign_key), BoxKey.load(args.box_key))


# ---- vertical ----------------------------------------------------------------------------


def cmd_vertical(args: argparse.Namespace) -> int:
    from trainer.vertical.orchestrate import VerticalConfig, parse_party, run_vertical

    config = VerticalConfig(
        data=Path(args.data), target=args.target, id_column=args.id,
        parties=tuple(parse_party(p) for p in args.party), chain=Path(args.chain),
        store=Path(args.store), out=Path(args.out), seeds=args.seeds, seed=args.seed,
        test_size=args.test_size, train=_train_config(args), timeout=args.timeout,
        baseline=args.report is not None)

    def progress(result) -> None:
        parts = ", ".join(f"{name} {m['accuracy']:.4f}" for name, m in result.metrics.items())
        _say(f"round {result.round} (seed {result.seed}): accuracy {parts}; composed container "
             f"{'bit-identical' if result.composed_equal else 'DIFFERS'} on "
             f"{result.composed_rows} rows; {result.bytes_exchanged} bytes in "
             f"{result.blobs} blobs, {result.log_records} log records, {result.seconds:.1f} s")

    results = run_vertical(config, progress)
    if args.report is not None:
        from trainer.vertical.report import write_report

        path = write_report(results, Path(args.report), config)
        _say(f"report: {path}")
    if not all(r.composed_equal for r in results):
        raise InputError("the composed container's scores differ from the distributed "
                         "predictions (see the rounds' result.json)")
    return 0


# ---- vertical-party ------------------------------------------------------------------------


def cmd_party_keygen(args: argparse.Namespace) -> int:
    from pyastore import keys
    from trainer.vertical.crypto import write_box_key_files

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such directory")
    secret, public = keys.keygen(folder / args.name)
    box_secret, box_public, box = write_box_key_files(folder / args.name)
    _say(f"wrote {secret}, {public}, {box_secret}, {box_public}")
    entry = {"name": args.name, "role": args.role,
             "sign_key": keys.load_public_key(public).hex(), "box_key": box.public.hex()}
    sys.stdout.write(json.dumps(entry) + "\n")
    return 0


def cmd_party_id_key(args: argparse.Namespace) -> int:
    from trainer.vertical.ids import IdKey

    path = IdKey.generate().write(args.file)
    _say(f"wrote the ID key {path}: give it to every data party, never to the host")
    return 0


def cmd_party_pseudonyms(args: argparse.Namespace) -> int:
    from trainer.vertical.data import read_header
    from trainer.vertical.ids import IdKey

    key = IdKey.load(args.id_key)
    header = read_header(args.data)
    if args.id not in header:
        raise InputError(f"{args.data}: no ID column {args.id!r} (columns: {', '.join(header)})")
    at = header.index(args.id)
    with open(args.data, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))[1:]
    lines = "".join(key.pseudonym(row[at]).hex() + "\n" for row in rows if row)
    if args.out:
        Path(args.out).write_text(lines)
    else:
        sys.stdout.write(lines)
    return 0


def cmd_party_run(args: argparse.Namespace) -> int:
    from trainer.vertical.ids import IdKey
    from trainer.vertical.orchestrate import parse_party
    from trainer.vertical.party import PartyConfig, run_party

    _, columns = parse_party(f"{args.name}={args.columns}")
    config = PartyConfig(name=args.name, columns=columns, id_column=args.id, target=args.target,
                         seed=args.seed, round=args.round, test_size=args.test_size,
                         train=_train_config(args), timeout=args.timeout,
                         serve=not args.no_serve)
    id_key = IdKey.load(args.id_key)
    with _exchange(args, args.name) as exchange:
        result = run_party(config, args.data, exchange, id_key, args.out)
    _say(f"{args.name}: trained on {result.n_train} rows; alone on its {result.n_test} test "
         f"rows: accuracy {result.metrics['accuracy']:.4f}; served {result.requests_served} "
         f"request(s); sent {result.bytes_sent} bytes in {result.records_sent} blobs")
    return 0


def cmd_party_audit(args: argparse.Namespace) -> int:
    from trainer.vertical import audit
    from trainer.vertical.data import read_header
    from trainer.vertical.errors import ExchangeError
    from trainer.vertical.orchestrate import parse_party

    _, columns = parse_party(f"party={args.columns}")
    header = read_header(args.data)
    for column in (args.id, *columns):
        if column not in header:
            raise InputError(f"{args.data}: no column {column!r} (columns: {', '.join(header)})")
    with open(args.data, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle)][1:]
    at = [header.index(c) for c in columns]
    ids = [row[header.index(args.id)].strip() for row in rows if row]
    texts = [[row[i].strip() for i in at] for row in rows if row]
    try:
        values = [[float(cell) for cell in cells] for cells in texts]
    except ValueError as exc:
        raise InputError(f"{args.data}: a cell of {', '.join(columns)} is not a number "
                         f"({exc})") from None
    store, log = Path(args.store), Path(args.chain)
    if not store.is_dir() or not log.exists():
        raise UsageError(f"no store folder {store} or no log {log}")
    files = audit.files_of(store, log)
    wanted = audit.needles(ids, texts, values)
    findings = audit.scan(files, wanted)
    size = sum(f.stat().st_size for f in files)
    if findings:
        shown = "; ".join(f"{Path(f.path).name}: {f.what}" for f in findings[:5])
        raise ExchangeError(f"{len(findings)} trace(s) of this party's raw rows in the store or "
                            f"the log: {shown}")
    _say(f"no trace of {len(ids)} rows ({len(wanted)} patterns) in {len(files)} files "
         f"({size} bytes) of the store and the log")
    return 0


# ---- vertical-host -------------------------------------------------------------------------


def cmd_host_roster(args: argparse.Namespace) -> int:
    from pyastore import keys
    from trainer.vertical.crypto import load_box_public_key
    from trainer.vertical.roster import Participant, Roster

    entries = [(spec, "party") for spec in args.party] + [(args.host, "host")]
    participants = []
    for spec, role in entries:
        name, sep, base = spec.partition("=")
        if not sep or not name or not base:
            raise UsageError(f"{spec!r}: expected NAME=KEYBASE (KEYBASE.pub and KEYBASE.box.pub)")
        participants.append(Participant(name, role, keys.load_public_key(base + ".pub"),
                                        load_box_public_key(base + ".box.pub")))
    roster = Roster(tuple(participants))
    Path(args.out).write_text(roster.to_json())
    _say(f"wrote {args.out}: {len(participants)} participants")
    return 0


def _read_pseudonyms(path: str) -> list[bytes]:
    try:
        lines = Path(path).read_text(encoding="ascii").split()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    pseudonyms = []
    for number, line in enumerate(lines, 1):
        try:
            value = bytes.fromhex(line)
        except ValueError:
            value = b""
        if len(value) != 32:
            raise InputError(f"{path}: line {number} is not a pseudonym (64 hex characters); "
                             "the host names customers only by pseudonym")
        pseudonyms.append(value)
    if len(set(pseudonyms)) != len(pseudonyms):
        raise InputError(f"{path}: a customer is named twice")
    return pseudonyms


def cmd_host_run(args: argparse.Namespace) -> int:
    from pyastore import keys
    from trainer.vertical.host import Host, HostConfig

    config = HostConfig(name=args.name, seed=args.seed, round=args.round,
                        train=_train_config(args), timeout=args.timeout)
    wanted = _read_pseudonyms(args.predict) if args.predict else None
    out = Path(args.out)
    with _exchange(args, args.name) as exchange:
        host = Host(config, exchange)
        result = host.train(out, keys.SigningKey.load(args.sign_key))
        _say(f"{args.name}: trained on {result.n_train} joined rows; wrote {result.model_path}")
        if wanted is not None:
            path = out / "predictions.csv"
            _write_predictions(path, wanted, host.predict(wanted))
            _say(f"{args.name}: predicted {len(wanted)} customers by request; wrote {path}")
        if not args.no_close:
            host.close_round()
        (out / "costs.json").write_text(json.dumps({
            "bytes_sent": exchange.bytes_sent, "bytes_received": exchange.bytes_received,
            "records_sent": exchange.records_sent}, indent=2) + "\n")
    return 0


def cmd_host_predict(args: argparse.Namespace) -> int:
    from trainer.vertical.host import Host, HostConfig

    wanted = _read_pseudonyms(args.predict)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = HostConfig(name=args.name, round=args.round, timeout=args.timeout)
    with _exchange(args, args.name) as exchange:
        host = Host(config, exchange)
        host.use_model(args.model)
        _write_predictions(out / "predictions.csv", wanted, host.predict(wanted))
        _say(f"{args.name}: predicted {len(wanted)} customers by request; wrote "
             f"{out / 'predictions.csv'}")
        if args.close:
            host.close_round()
    return 0


def _write_predictions(path: Path, pseudonyms: list[bytes], scores) -> None:
    path.write_text("pseudonym,P_1\n" + "".join(
        f"{p.hex()},{float(s)!r}\n" for p, s in zip(pseudonyms, scores)))


def cmd_host_compose(args: argparse.Namespace) -> int:
    from pyastore import format as fmt
    from pyastore import keys, load
    from trainer.vertical.compose import composed_spec

    trusted: list[Any] = list(args.trust)
    encoders = [load(path, trusted_keys=trusted, use_default_trust=False)
                for path in args.encoder]
    host = load(args.host, trusted_keys=trusted, use_default_trust=False)
    data = fmt.write(composed_spec(encoders, host), keys.SigningKey.load(args.sign_key))
    fmt.write_file(args.out, data)
    composed = load(data, allow_untrusted=True, use_default_trust=False)
    _say(f"wrote {args.out}: {len(data)} bytes, store key sha256:{composed.store_key}, inputs "
         f"{', '.join(composed.input_names)}")
    return 0


# ---- the parsers ---------------------------------------------------------------------------


def add_commands(commands: Any, formatter_class: Any) -> None:
    """Register ``vertical``, ``vertical-party`` and ``vertical-host`` on ``commands``."""
    vertical = commands.add_parser(
        "vertical", help="vertically partitioned training: parties and host as processes",
        formatter_class=formatter_class, epilog=VERTICAL_EXAMPLES,
        description="Train one model across parties that hold disjoint columns of the same "
                    "customers. Each party trains a local network on its columns and sends "
                    "only its encrypted third-hidden-layer representations (through the store, "
                    "announced in the log); the host trains on the joined representations and "
                    "predicts new customers by asking the parties for theirs. Every participant "
                    "runs as its own process sharing only --store and --chain.")
    vertical.add_argument("--data", metavar="FILE.csv", required=True)
    vertical.add_argument("--target", metavar="COLUMN", required=True, help="the 0/1 label")
    vertical.add_argument("--id", metavar="COLUMN", required=True, help="the customer ID")
    vertical.add_argument("--party", metavar="NAME=COL,COL", action="append", required=True,
                          help="a party and its columns (repeat for each party, in order)")
    _exchange_options(vertical, seeds=True)
    vertical.add_argument("--out", metavar="DIR", required=True,
                          help="keys, roster and every round's containers and metrics")
    vertical.add_argument("--report", metavar="DIR",
                          help="write metrics.json, report.md and the curves (adds the "
                               "centralised baseline)")
    vertical.add_argument("--seeds", type=int, default=1, help="rounds, one per seed (default 1)")
    vertical.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    vertical.add_argument("--test-size", type=float, default=0.3,
                          help="test share, not stratified (default 0.3)")
    _training_options(vertical)
    vertical.set_defaults(handler=cmd_vertical)

    party = commands.add_parser("vertical-party", help="a data party of vertical training",
                                formatter_class=formatter_class, epilog=PARTY_EXAMPLES,
                                description="Run one data party on its own machine.")
    actions = party.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    keygen = actions.add_parser("keygen", help="signing and box key pairs for a participant")
    keygen.add_argument("name")
    keygen.add_argument("--dir", default=".", help="folder for the key files (default .)")
    keygen.add_argument("--role", choices=("party", "host"), default="party")
    keygen.set_defaults(handler=cmd_party_keygen)
    id_key = actions.add_parser("id-key", help="create the parties' shared ID key")
    id_key.add_argument("file")
    id_key.set_defaults(handler=cmd_party_id_key)
    pseudonyms = actions.add_parser("pseudonyms", help="customer IDs -> pseudonyms (hex lines)")
    pseudonyms.add_argument("--id-key", required=True)
    pseudonyms.add_argument("--data", metavar="FILE.csv", required=True)
    pseudonyms.add_argument("--id", metavar="COLUMN", required=True)
    pseudonyms.add_argument("--out", metavar="FILE", help="default: standard output")
    pseudonyms.set_defaults(handler=cmd_party_pseudonyms)
    audit = actions.add_parser(
        "audit", help="look for this party's raw rows in the store and the log",
        description="Scan every byte of the store and the log for this party's raw rows and "
                    "customer IDs (trainer.vertical.audit lists the encodings); exit 4 and "
                    "name them when any is found.")
    audit.add_argument("--data", metavar="FILE.csv", required=True)
    audit.add_argument("--id", metavar="COLUMN", required=True)
    audit.add_argument("--columns", metavar="COL,COL", required=True)
    audit.add_argument("--chain", metavar="LOG", required=True)
    audit.add_argument("--store", metavar="DIR", required=True)
    audit.set_defaults(handler=cmd_party_audit)
    run = actions.add_parser("run", help="train, send representations, answer requests",
                             formatter_class=formatter_class, epilog=PARTY_EXAMPLES)
    run.add_argument("--name", required=True, help="this party's name in the roster")
    run.add_argument("--data", metavar="FILE.csv", required=True)
    run.add_argument("--id", metavar="COLUMN", required=True)
    run.add_argument("--target", metavar="COLUMN", required=True)
    run.add_argument("--columns", metavar="COL,COL", required=True, help="this party's columns")
    run.add_argument("--sign-key", required=True, help="this party's Ed25519 .key")
    run.add_argument("--box-key", required=True, help="this party's X25519 .box.key")
    run.add_argument("--id-key", required=True, help="the parties' shared ID key")
    run.add_argument("--out", metavar="DIR", required=True)
    run.add_argument("--test-size", type=float, default=0.3)
    run.add_argument("--no-serve", action="store_true",
                     help="stop after sending the representations (answer no requests)")
    _exchange_options(run)
    _training_options(run)
    run.set_defaults(handler=cmd_party_run)

    host = commands.add_parser("vertical-host", help="the host of vertical training",
                               formatter_class=formatter_class, epilog=HOST_EXAMPLES,
                               description="Run the host on its own machine.")
    actions = host.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    roster = actions.add_parser("roster", help="write the roster from the public key files")
    roster.add_argument("--party", metavar="NAME=KEYBASE", action="append", required=True)
    roster.add_argument("--host", metavar="NAME=KEYBASE", required=True)
    roster.add_argument("--out", metavar="FILE", required=True)
    roster.set_defaults(handler=cmd_host_roster)
    run = actions.add_parser("run", help="train on the representations, predict by request",
                             formatter_class=formatter_class, epilog=HOST_EXAMPLES)
    run.add_argument("--name", default="host", help="the host's name in the roster")
    run.add_argument("--sign-key", required=True)
    run.add_argument("--box-key", required=True)
    run.add_argument("--out", metavar="DIR", required=True)
    run.add_argument("--predict", metavar="FILE",
                     help="pseudonyms (hex, one a line) to predict; writes predictions.csv")
    run.add_argument("--no-close", action="store_true",
                     help="leave the round open (the parties keep serving)")
    _exchange_options(run)
    _training_options(run)
    run.set_defaults(handler=cmd_host_run)
    predict = actions.add_parser("predict", help="predict with a trained host container",
                                 formatter_class=formatter_class, epilog=HOST_EXAMPLES)
    predict.add_argument("--name", default="host", help="the host's name in the roster")
    predict.add_argument("--model", metavar="host.astore", required=True,
                         help="the host container of the round (signed by this host)")
    predict.add_argument("--predict", metavar="FILE", required=True,
                         help="pseudonyms (hex, one a line) to predict")
    predict.add_argument("--sign-key", required=True)
    predict.add_argument("--box-key", required=True)
    predict.add_argument("--out", metavar="DIR", required=True, help="gets predictions.csv")
    predict.add_argument("--close", action="store_true",
                         help="close the round afterwards (the parties stop serving)")
    predict.add_argument("--chain", metavar="LOG", required=True, help="the shared log")
    predict.add_argument("--store", metavar="DIR", required=True, help="the shared store")
    predict.add_argument("--roster", metavar="FILE", required=True)
    predict.add_argument("--round", type=int, default=0, help="the round being served")
    predict.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                         help="longest wait for a party's answer (default 600)")
    predict.set_defaults(handler=cmd_host_predict)
    compose = actions.add_parser("compose", help="one container from the encoders and host")
    compose.add_argument("--encoder", metavar="FILE", action="append", required=True,
                         help="a party's encoder container (in the host's input order)")
    compose.add_argument("--host", metavar="FILE", required=True)
    compose.add_argument("--trust", metavar="KEY.pub", action="append", default=[],
                         help="a signer to trust (every part must be signed by one)")
    compose.add_argument("--sign-key", required=True)
    compose.add_argument("--out", metavar="FILE", required=True)
    compose.set_defaults(handler=cmd_host_compose)
