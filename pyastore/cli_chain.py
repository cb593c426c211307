"""``pyastore chain ...``: the command-line face of the verifiable log (:mod:`chain`).

The main CLI (:mod:`pyastore.cli`) calls :func:`add_parser` with its subparsers object and,
for the ``chain`` command, :func:`run` with the parsed arguments. ``run`` returns an exit code
and raises the typed errors of :mod:`pyastore.errors`; the main CLI prints
``pyastore: error: <message>`` and exits with ``exc.exit_code``.

Output goes to stdout; nothing is printed on error but the message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyastore.commandline import printable
from pyastore.errors import UsageError
from pyastore.files import write_atomic

if TYPE_CHECKING:
    from chain.proof import ProofBundle
    from chain.records import Record

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

_EPILOG = {
    "init": "example:\n  pyastore keygen log && pyastore chain init models.log --key log.key "
    "--origin example.com/models",
    "append": "example:\n  pyastore chain append models.log fraud.astore --key me.key",
    "revoke": "example:\n  pyastore chain revoke models.log 3f5a...e1 --reason 'leaked key' "
    "--key me.key",
    "show": "example:\n  pyastore chain show models.log --json",
    "checkpoint": "example:\n  pyastore chain checkpoint models.log -o models.checkpoint",
    "prove": "example:\n  pyastore chain prove models.log 3f5a...e1 -o fraud.proof\n"
    "  pyastore verify fraud.astore --proof fraud.proof --log-key log.pub   (on the device)",
    "verify": "example:\n  pyastore chain verify models.log",
}


def _sub(subparsers: Subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=_EPILOG[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``chain`` and its subcommands on an argparse subparsers object."""
    chain_parser = subparsers.add_parser(
        "chain",
        help="append-only verifiable log of store keys (init, append, revoke, prove, verify)",
        description=(
            "The verifiable log: store keys anchored in an append-only, hash-chained RFC 9162 "
            "Merkle tree with signed checkpoints. See docs/CHAIN.md."
        ),
        epilog="example:\n  pyastore chain init models.log --key log.key\n"
        "  pyastore chain append models.log fraud.astore --key me.key\n"
        "  pyastore chain prove models.log <store key> -o fraud.proof",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chain_parser.set_defaults(handler=run)
    commands = chain_parser.add_subparsers(dest="chain_command", metavar="COMMAND")
    commands.required = True

    p = _sub(commands, "init", "create a new, empty log signed by a log key")
    p.add_argument("log", metavar="LOG", help="log file to create (refuses to overwrite), or a "
                   "postgresql:// URL (a schema of a shared database; see docs/CHAIN.md)")
    p.add_argument("--key", required=True, metavar="LOGKEY", help="the log's secret key (.key); "
                   "its path is remembered for signing checkpoints")
    p.add_argument("--origin", help="log identity in checkpoints, e.g. example.com/models "
                   "(default: pyastore.local/<log name>-<key prefix>)")

    p = _sub(commands, "append", "verify a container and publish its store key in the log")
    p.add_argument("log", metavar="LOG")
    p.add_argument("model", metavar="MODEL.astore", help="container to publish")
    p.add_argument("--key", required=True, metavar="SUBMITTER.key",
                   help="your secret key; signs the log record")
    p.add_argument("--trust", action="append", default=[], metavar="SIGNER.pub",
                   help="public key trusted to have signed the container (repeatable; your own "
                   "key is always trusted)")
    p.add_argument("--allow-untrusted", action="store_true",
                   help="publish even if the container's signer is not trusted")
    p.add_argument("--name", help="record name (default: the container's model name)")
    p.add_argument("--description", default="", help="record description")

    p = _sub(commands, "revoke", "append a revocation of a published store key")
    p.add_argument("log", metavar="LOG")
    p.add_argument("store_key", metavar="KEY", help="store key (64 hex) or a container file")
    p.add_argument("--reason", required=True, help="why the key is revoked (kept in the log)")
    p.add_argument("--key", required=True, metavar="SUBMITTER.key",
                   help="the publisher's key, or the log key")

    p = _sub(commands, "show", "list the log's records")
    p.add_argument("log", metavar="LOG")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = _sub(commands, "checkpoint", "sign and print a checkpoint for the current tree size")
    p.add_argument("log", metavar="LOG")
    p.add_argument("--key", metavar="LOGKEY", help="log key (default: the path given at init)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the checkpoint to FILE")

    p = _sub(commands, "prove", "write a self-contained proof bundle for a store key")
    p.add_argument("log", metavar="LOG")
    p.add_argument("store_key", metavar="KEY", help="store key (64 hex) or a container file")
    p.add_argument("-o", "--output", required=True, metavar="PROOF",
                   help="bundle file to write ('-' for stdout)")
    p.add_argument("--key", metavar="LOGKEY", help="log key (default: the path given at init)")

    p = _sub(commands, "verify", "recompute every hash, link, signature and root of a log")
    p.add_argument("log", metavar="LOG")

    from pyastore import cli_provenance

    cli_provenance.add_parser(commands)
    return chain_parser


def _store_key_of(text: str) -> str:
    """A store key given as hex, or read from a container file."""
    if os.path.isfile(text):
        import warnings

        import pyastore

        with warnings.catch_warnings():  # only the key is wanted; trust was decided at append
            warnings.simplefilter("ignore")
            model = pyastore.load(text, trusted_keys=[], allow_untrusted=True)
        return model.store_key
    return text


def _cmd_init(args: argparse.Namespace) -> int:
    from chain import checkpoint as checkpoints
    from chain.log import Log

    with Log.init(args.log, args.key, origin=args.origin) as log:
        print(f"created log {args.log}")
        print(f"origin:         {log.origin}")
        print(f"log public key: {log.public_key.hex()}")
        print(f"verifier key:   {checkpoints.verifier_key(log.origin, log.public_key)}")
    return 0


def _cmd_append(args: argparse.Namespace) -> int:
    from chain.log import Log
    from pyastore import keys

    submitter = keys.SigningKey.load(args.key)
    trusted = [submitter.public_key] + [keys.load_public_key(p) for p in args.trust]
    import pyastore

    model = pyastore.load(args.model, trusted_keys=trusted, allow_untrusted=args.allow_untrusted)
    name = args.name if args.name is not None else (getattr(model, "name", "") or "")
    with Log.open(args.log) as log:
        record = log.append_model(model.store_key, name, args.description, submitter)
    print(f"appended record {record.index}: model {record.subject} "
          f"({printable(record.name) or 'unnamed'})")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    from chain.log import Log
    from pyastore import keys

    submitter = keys.SigningKey.load(args.key)
    store_key = _store_key_of(args.store_key)
    with Log.open(args.log) as log:
        record = log.revoke(store_key, args.reason, submitter)
    print(f"appended record {record.index}: revoke {record.subject} ({printable(record.reason)})")
    return 0


def _record_json(record: Record) -> dict[str, object]:
    return {
        "index": record.index,
        "kind": record.kind,
        "known_kind": record.kind_known,
        "subject": record.subject,
        "name": record.name,
        "description": record.description,
        "time": record.time,
        "submitter": record.submitter,
        "prev_hash": record.prev_hash,
        "reason": record.reason,
        "signature": record.signature,
        "record_hash": record.record_hash().hex(),
    }


def _cmd_show(args: argparse.Namespace) -> int:
    from chain.log import Log

    with Log.open(args.log, readonly=True) as log:
        size = log.size
        root = log.root(size)
        if args.json:
            out = {
                "origin": log.origin,
                "log_public_key": log.public_key.hex(),
                "size": size,
                "root_hash": root.hex(),
                "records": [_record_json(r) for r in log.records(0, size)],
            }
            json.dump(out, sys.stdout, indent=1)  # ASCII: no raw control characters
            sys.stdout.write("\n")
            return 0
        print(f"log {log.origin}: {size} record(s), root {root.hex()}")
        if size:
            print(f"{'index':>7}  {'kind':<8} {'subject':<18} {'time':<20} {'submitter':<12} name")
        for record in log.records(0, size):
            subject = record.subject if len(record.subject) <= 18 else record.subject[:15] + "..."
            note = "" if record.kind_known else "  [unknown kind]"
            detail = record.name
            if record.kind == "revoke":
                detail += f" (reason: {record.reason})"
            detail = printable(detail)
            print(
                f"{record.index:>7}  {record.kind:<8} {subject:<18} {record.time:<20} "
                f"{record.submitter[:8] + '...':<12} {detail}{note}"
            )
    return 0


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    from chain.log import Log

    with Log.open(args.log) as log:
        signed = log.checkpoint(args.key)
    if args.output:
        write_atomic(args.output, signed.text.encode("utf-8"))
    sys.stdout.write(signed.text)
    return 0


def _cmd_prove(args: argparse.Namespace) -> int:
    from chain.log import Log

    store_key = _store_key_of(args.store_key)
    with Log.open(args.log) as log:
        bundle = log.prove(store_key, args.key)
        status = log.status(store_key)
    data = bundle.to_bytes()
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    write_atomic(args.output, data)
    assert status.published is not None  # prove() refuses a key the log never published
    revoked = " (REVOKED: the bundle carries the revocation)" if bundle.revocations else ""
    print(
        f"wrote {args.output}: record {status.published.index} in a tree of "
        f"{_size_of(bundle)} record(s), {len(bundle.record.inclusion_proof)} proof hashes{revoked}"
    )
    return 0


def _size_of(bundle: ProofBundle) -> int:
    from chain import checkpoint as checkpoints

    return checkpoints.parse(bundle.checkpoint).size


def _cmd_verify(args: argparse.Namespace) -> int:
    from chain.log import Log

    with Log.open(args.log, readonly=True) as log:
        report = log.verify()
        origin = log.origin
    print(
        f"log {origin} verifies: {report.size} record(s) ({report.models} model, "
        f"{report.revocations} revoke), root {report.root_hash.hex()}, "
        f"{report.checkpoints_checked} stored checkpoint(s) checked"
    )
    if report.unknown_kind_indices:
        shown = ", ".join(str(i) for i in report.unknown_kind_indices[:20])
        print(f"note: {len(report.unknown_kind_indices)} record(s) of kinds this pyastore does "
              f"not know (indices {shown}); their hashes and signatures were checked")
    return 0


def _provenance_run(args: argparse.Namespace) -> int:
    from pyastore import cli_provenance

    return cli_provenance.run(args)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": _cmd_init,
    "append": _cmd_append,
    "revoke": _cmd_revoke,
    "show": _cmd_show,
    "checkpoint": _cmd_checkpoint,
    "prove": _cmd_prove,
    "verify": _cmd_verify,
    "provenance": _provenance_run,
}


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``chain`` command; returns the exit code, raises typed errors."""
    handler = _COMMANDS.get(getattr(args, "chain_command", None) or "")
    if handler is None:
        raise UsageError("pyastore chain: missing command (see 'pyastore chain --help')")
    return handler(args)
