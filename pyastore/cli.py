"""The ``pyastore`` command line: describe, verify, keygen, score, chain.

Every user error is printed as one ``pyastore: error: ...`` line on stderr and exits with the
code of its error class (``pyastore.errors``); only a bug prints a traceback (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pyastore.commandline import Parser, printable, run_command
from pyastore.errors import (
    EXIT_FORMAT,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOG,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_TRUST,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
    PyastoreError,
    UsageError,
)

if TYPE_CHECKING:
    from pyastore.model import Model

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_INTERNAL}  internal error (a bug: please report it)
  {EXIT_USAGE}  usage error: bad arguments, unreadable file, bad key file
  {EXIT_FORMAT}  malformed container or unsupported format version
  {EXIT_TRUST}  integrity, signature or trust failure
  {EXIT_INPUT}  bad input data
  {EXIT_UNSUPPORTED}  unsupported model
  {EXIT_LOG}  log failure (corrupt log, not anchored, revoked)
  {EXIT_TIMEOUT}  a peer did not answer in time
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

TRUST_HELP = """\
trust: a container must be signed by a trusted key. Trusted keys come from --trust FILE.pub
(repeatable), PYASTORE_TRUSTED_KEYS (.pub paths or 64-hex keys separated by ':'), and every
*.pub in $PYASTORE_CONFIG_DIR/trusted/ (default ~/.config/pyastore/trusted/).
"""


def _thread_count(text: str) -> int:
    """--threads: a whole number from 1 to MAX_THREADS (argparse reports the error)."""
    from pyastore.model import MAX_THREADS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} is not from 1 to {MAX_THREADS}")
    return value


def _add_trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust", metavar="FILE", action="append", default=[],
                        help="trust the signer in this .pub file (repeatable)")
    parser.add_argument("--allow-untrusted", action="store_true",
                        help="accept a valid signature by a key that is not trusted (warns)")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="accept an unsigned container (warns)")


def _add_anchor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-key", metavar="LOG.pub",
                        help="check that the container is anchored in the log with this public key")
    parser.add_argument("--proof", metavar="PROOF",
                        help="the proof bundle (default: MODEL.proof beside the container)")
    parser.add_argument(
        "--log",
        metavar="LOG",
        help="also check online against this log file (revocations since the proof)",
    )


def _check_anchor(args: argparse.Namespace, model: Model) -> str | None:
    if args.log_key is None:
        if args.proof or args.log:
            raise UsageError("--proof and --log need --log-key LOG.pub")
        return None
    from pyastore.anchor import check_anchored, default_proof_path
    from pyastore.keys import load_public_key

    return check_anchored(model.store_key, args.proof or default_proof_path(args.model),
                          load_public_key(args.log_key), args.log)


def _load(args: argparse.Namespace, *, permissive: bool = False) -> Model:
    from pyastore.model import load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load(args.model, trusted_keys=args.trust,
                     allow_untrusted=permissive or args.allow_untrusted,
                     allow_unsigned=permissive or args.allow_unsigned)
    if not permissive:
        for warning in caught:
            sys.stderr.write(f"pyastore: warning: {warning.message}\n")
    return model


# ---- describe --------------------------------------------------------------------------


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in rows:
        lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return lines


def _flat(value: Any) -> str:
    """A META value on one line, escaped for the terminal (META is the signer's text)."""
    if isinstance(value, (dict, list)):
        return printable(json.dumps(value, sort_keys=True))
    return printable(value)


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def describe_text(info: dict[str, Any]) -> str:
    """``pyastore describe``'s text. Every string from META goes through :func:`printable`:
    a signer's odd content cannot break the layout or forge a line."""
    meta = info["meta"]
    signature = info["signature"]
    status = {
        "trusted": "valid, signer trusted",
        "untrusted": "valid, signer NOT trusted",
        "unsigned": "UNSIGNED",
    }[signature["status"]]
    algorithm = _map(meta.get("algorithm"))
    rules = _map(meta.get("score_rules"))
    lines = [
        f"file:          {printable(info['file'])}",
        f"store key:     sha256:{info['store_key']}",
        f"format:        {info['format_version']} ({info['size_bytes']} bytes)",
        f"signature:     {signature['algorithm']}, {status}",
    ]
    if signature["signer"]:
        lines.append(f"signer:        {signature['signer']}")
    estimator = f", {_flat(algorithm['estimator'])}" if algorithm.get("estimator") else ""
    lines += [
        f"name:          {_flat(meta.get('name'))}",
        f"description:   {_flat(meta.get('description') or '-')}",
        f"created:       {_flat(meta.get('created'))}",
        f"algorithm:     {_flat(algorithm.get('family', '?'))} "
        f"({_flat(algorithm.get('library', '?'))} "
        f"{_flat(algorithm.get('library_version', ''))}{estimator})",
        "score rules:   "
        + ", ".join(f"{_flat(k)} {_flat(v)}" for k, v in sorted(rules.items())),
    ]
    payload = _map(meta.get("payload"))
    if payload:
        lines.append(
            "payload:       "
            + ", ".join(f"{_flat(k)} {_flat(v)}" for k, v in sorted(payload.items()))
        )
    for title, key in (("provenance", "provenance"), ("training parameters", "training_params")):
        entries = _map(meta.get(key))
        lines.append(f"{title}:" + ("" if entries else " -"))
        lines += [f"  {_flat(k)}: {_flat(v)}" for k, v in sorted(entries.items())]
    scorer = info.get("scorer") or {}
    if scorer.get("tree_walk"):
        lines.append(f"tree walk:     {scorer['tree_walk']} (derived at load: "
                     f"{scorer['derived_bytes'] / 1024:.1f} KiB)")
    inputs = meta["inputs"]
    lines.append(f"inputs ({len(inputs)}):")
    rows = [[str(i), _flat(v["name"]), _flat(v.get("type", "")), _flat(v.get("missing", ""))]
            for i, v in enumerate(inputs)]
    header = ["#", "name", "type", "missing"]
    summary = info.get("inputs") or []
    if any("categories" in entry for entry in summary):
        header.append("categories")
        for row, entry in zip(rows, summary):
            row.append(f"{entry['categories']} (missing: {_flat(entry['on_missing'])}, "
                       f"unseen: {_flat(entry['unseen'])})" if "categories" in entry else "")
    lines += _table(rows, header)
    outputs = meta["outputs"]
    lines.append(f"outputs ({len(outputs)}):")
    lines += _table([[str(i), _flat(v["name"]), _flat(v.get("type", "")),
                      _flat(v.get("meaning", ""))]
                     for i, v in enumerate(outputs)], ["#", "name", "type", "meaning"])
    lines.append("sections:")
    lines += _table(
        [
            [s["type"], "yes" if s["critical"] else "no", str(s["offset"]), str(s["length"])]
            for s in info["sections"]
        ],
        ["type", "critical", "offset", "length"],
    )
    return "\n".join(lines) + "\n"


def cmd_describe(args: argparse.Namespace) -> int:
    model = _load(args, permissive=True)
    info = model.describe()
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(describe_text(info))
    return EXIT_OK


# ---- verify ----------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        model = _load(args)
        anchored = _check_anchor(args, model)
    except PyastoreError as exc:
        sys.stdout.write(f"FAILED  {args.model}: {exc}\n")
        return exc.exit_code
    signer = f"signed by {model.signer} ({model.signature_status})" if model.signer else "UNSIGNED"
    sys.stdout.write(f"OK  {args.model}  sha256:{model.store_key}  {signer}"
                     + (f"; {anchored}" if anchored else "") + "\n")
    return EXIT_OK


# ---- keygen ----------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from pyastore.keys import keygen, load_public_key

    secret_path, public_path = keygen(args.name)
    sys.stdout.write(f"wrote {secret_path} (secret, mode 0600) and {public_path}\n"
                     f"public key: {load_public_key(public_path).hex()}\n")
    return EXIT_OK


# ---- score -----------------------------------------------------------------------------


def cmd_score(args: argparse.Namespace) -> int:
    from pyastore import batch

    model = _load(args)
    if args.require_anchored and args.log_key is None:
        raise UsageError("--require-anchored needs --log-key LOG.pub (and the proof bundle)")
    anchored = _check_anchor(args, model)
    if anchored:
        sys.stderr.write(f"pyastore: {anchored}\n")
    try:
        report = batch.run(model, args.input, args.output, input_format=args.input_format,
                           output_format=args.format, keep=args.keep, on_error=args.on_error,
                           n_threads=args.threads, chunk_rows=args.chunk_rows,
                           with_label=args.label, errors_path=args.errors)
    except PyastoreError as exc:
        where = ("no output file was written" if args.output != "-"
                 else "the output on stdout is incomplete")
        exc.message = f"{exc.message} ({where})"
        raise
    if report.bad_rows and args.errors:
        sys.stderr.write(f"pyastore: {report.bad_rows} row(s) with bad input, listed in "
                         f"{args.errors}\n")
    if args.output != "-":
        sys.stderr.write(f"pyastore: scored {report.rows_out} row(s) into {args.output}\n")
    return EXIT_OK


# ---- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pyastore",
        description="Signed, content-addressed model containers (.astore) and a fast scorer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  pyastore keygen publisher\n"
               "  pyastore describe fraud.astore --trust publisher.pub\n"
               "  pyastore verify fraud.astore --trust publisher.pub\n\n"
               + TRUST_HELP + "\n" + EXIT_CODES_HELP,
    )
    from pyastore import __version__

    parser.add_argument("--version", action="version", version=f"pyastore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    raw = argparse.RawDescriptionHelpFormatter

    describe = commands.add_parser(
        "describe",
        help="show a container's store key, signature and metadata",
        formatter_class=raw,
        description="Show the store key, signer and signature status, every metadata field "
        "and the inputs/outputs of a container (a categorical input with its number of "
        "categories and its missing and unseen rules). Integrity and the signature are "
        "checked (a damaged or forged file is an error); an untrusted or unsigned "
        "container is described with that status rather than refused.",
        epilog="example:\n  pyastore describe fraud.astore\n"
        "  pyastore describe fraud.astore --json | jq .store_key\n\n" + EXIT_CODES_HELP,
    )
    describe.add_argument("model", metavar="MODEL", help="the .astore file")
    describe.add_argument("--json", action="store_true", help="stable JSON instead of text")
    describe.add_argument("--trust", metavar="FILE", action="append", default=[],
                          help="a .pub key to report as trusted (repeatable)")
    describe.set_defaults(handler=cmd_describe, allow_untrusted=True, allow_unsigned=True)

    verify = commands.add_parser(
        "verify", help="check integrity, signature and trust; print a one-line verdict",
        formatter_class=raw,
        description="Check the store key (SHA-256 of the bytes), the Ed25519 signature and "
                    "that the signer is trusted; with --log-key, also that the store key is "
                    "anchored in the verifiable log (offline, from the proof bundle; online too "
                    "with --log). Prints 'OK ...' or 'FAILED ...'.",
        epilog="examples:\n  pyastore verify fraud.astore --trust publisher.pub\n"
               "  pyastore verify fraud.astore --trust publisher.pub --log-key log.pub "
               "--proof fraud.astore.proof\n\n"
               + TRUST_HELP + "\n" + EXIT_CODES_HELP)
    verify.add_argument("model", metavar="MODEL", help="the .astore file")
    _add_trust_options(verify)
    _add_anchor_options(verify)
    verify.set_defaults(handler=cmd_verify)

    score = commands.add_parser(
        "score",
        help="score CSV, NDJSON or Parquet rows with a container",
        formatter_class=raw,
        description="Score rows with a verified container. Input columns are matched to the "
        "model's inputs by name (any order; extra columns are ignored unless kept). "
        "An empty cell or nan/NA/null is a missing value. A categorical input (see "
        "describe) takes the category's text, compared once ASCII spaces at either end are "
        "removed; an unknown text or a missing cell follows the container's rules. The "
        "output has the kept "
        "columns, then one column per model output (and 'label' with --label). "
        "Large inputs are streamed in chunks; NDJSON is scored and flushed line by "
        "line. A file output appears only when scoring succeeded.",
        epilog="examples:\n"
        "  pyastore score fraud.astore transactions.csv -o scores.csv --trust publisher.pub\n"
        "  tail -f events.ndjson | pyastore score fraud.astore - --input-format ndjson\n"
        "  pyastore score fraud.astore tx.parquet -o scores.parquet --keep id --threads 2\n\n"
        + TRUST_HELP
        + "\n"
        + EXIT_CODES_HELP,
    )
    score.add_argument("model", metavar="MODEL", help="the .astore file")
    score.add_argument("input", metavar="INPUT", nargs="?", default="-",
                       help="CSV/NDJSON/Parquet file, or - for stdin (default)")
    score.add_argument("-o", "--output", default="-", help="output file, or - for stdout (default)")
    score.add_argument("--format", choices=("csv", "ndjson", "parquet"),
                       help="output format (default: from -o's extension, else the input's)")
    score.add_argument("--input-format", choices=("csv", "ndjson", "parquet"),
                       help="input format (default: from the extension; stdin is CSV)")
    score.add_argument("--keep", metavar="COL", nargs="+", action="extend", default=[],
                       help="input columns to copy to the output (e.g. an id)")
    score.add_argument("--label", action="store_true",
                       help="add a 'label' column: the decision with the model's cutoff")
    score.add_argument(
        "--threads", type=_thread_count, default=1, metavar="N", help="worker threads (default 1)"
    )
    score.add_argument("--chunk-rows", type=int, default=65536, metavar="N",
                       help="rows per chunk (default 65536; bounds memory)")
    score.add_argument("--on-error", choices=("fail", "skip", "null"), default="fail",
                       help="a row with a bad cell: stop (default), leave it out, or output empty "
                            "scores; skipped and null rows are always reported")
    score.add_argument("--errors", metavar="FILE", help="write bad rows (row, error) to this CSV "
                                                        "instead of stderr")
    score.add_argument("--require-anchored", action="store_true",
                       help="refuse to score unless the container is anchored in the log "
                            "(needs --log-key; see --proof, --log)")
    _add_trust_options(score)
    _add_anchor_options(score)
    score.set_defaults(handler=cmd_score)

    keygen = commands.add_parser(
        "keygen", help="create an Ed25519 signing key pair NAME.key / NAME.pub",
        formatter_class=raw,
        description="Create NAME.key (the secret, mode 0600) and NAME.pub (the public key to "
                    "give to devices). Refuses to overwrite an existing key.",
        epilog="example:\n  pyastore keygen keys/publisher\n\n" + EXIT_CODES_HELP)
    keygen.add_argument("name", metavar="NAME", help="path prefix of the two files")
    keygen.set_defaults(handler=cmd_keygen)

    from pyastore import cli_chain

    cli_chain.add_parser(cast("cli_chain.Subparsers", commands))
    from pyastore import cli_gate

    cli_gate.add_parser(cast("cli_gate.Subparsers", commands))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
