"""``pyastore gate``, ``pyastore tx prove|verify`` and ``pyastore score --stream``.

The main CLI (:mod:`pyastore.cli`) calls :func:`add_parser` with its subparsers object, after
registering ``score``: this module adds the streaming options (``--stream``, ``--max-batch``,
``--max-delay-ms``) and the receipt options (``--receipt``, ``--receipt-out``,
``--receipt-key``) to ``score``, handles ``score --stream`` itself and appends the receipt
after the main CLI's ``score`` handler has run; it also registers ``pyastore receipt``. Each
command's handler returns an exit code and raises the typed errors of :mod:`pyastore.errors`
(the main CLI prints ``pyastore: error: <message>`` and exits with ``exc.exit_code``).
Semantics, record fields and answer lines: docs/GATE.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from pyastore.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

GATE_DESCRIPTION = """\
Score every transaction before it enters the ledger. Each line of INPUT (NDJSON objects, or
CSV rows under a header line) is a transaction with an id (--id, default 'id') and the
model's inputs by name. A score <= cutoff is admitted, a score > cutoff is rejected, a
malformed line is rejected with its reason; every decision is appended to the ledger as a
'tx' record (id, SHA-256 of the transaction's bytes, score, decision, the model's store key)
and only then answered with one JSON line on stdout: {"id", "line", "decision", "index",
"score"[, "reason"][, "duplicate"]}. An id the ledger already holds is refused (rejected,
"duplicate": true, "index" of the first decision); nothing is appended for it.

Records are appended in micro-batches of at most --max-batch transactions or --max-delay-ms
after the first of them was read, one durable commit per batch. The records of a batch are
signed in a helper process while the next batch is parsed and scored (--signer process, the
default with more than one CPU), or in the gate's own process (--signer inline, the default
on one CPU or with --max-batch 1); the records and answers are the same. SIGTERM or end of
input: every transaction already read is decided and answered, then exit 0 (SIGINT: 130).
After a crash, run the gate again on the same input: what was decided is answered as a
duplicate with its ledger index, the rest is decided; nothing is decided twice.
"""

GATE_EPILOG = """\
examples:
  pyastore gate fraud.astore --ledger ledger.log --trust publisher.pub < tx.ndjson
  tail -f tx.ndjson | pyastore gate fraud.astore --ledger ledger.log --cutoff 0.3 \\
      --rejected rejected.ndjson --max-batch 64 --max-delay-ms 5 --trust publisher.pub
  pyastore tx prove ledger.log tx-1042 -o tx-1042.proof
  pyastore tx verify tx-1042.proof --log-key log.pub --id tx-1042 --model fraud.astore

exit codes: 0 done (end of input, SIGTERM, or stdout closed: see stderr), 2 usage, 3/4 bad
or untrusted container, 5 bad CSV header, 7 the ledger cannot be written or is not a log,
130 SIGINT.
"""


def add_parser(subparsers: Subparsers) -> None:
    """Register ``gate`` and ``tx`` on an argparse subparsers object."""
    from pyastore import cli

    raw = argparse.RawDescriptionHelpFormatter
    gate = subparsers.add_parser(
        "gate", help="score transactions and record every decision in a ledger before "
        "answering", description=GATE_DESCRIPTION, epilog=GATE_EPILOG, formatter_class=raw)
    gate.add_argument("model", metavar="MODEL", help="the .astore file (a binary model)")
    gate.add_argument("input", metavar="INPUT", nargs="?", default="-",
                      help="transactions file, or - for stdin (default)")
    gate.add_argument("--ledger", required=True, metavar="LOG",
                      help="the ledger: a log made by 'pyastore chain init'")
    gate.add_argument("--cutoff", type=float, metavar="P",
                      help="admit scores <= P (default: the container's decision cutoff)")
    gate.add_argument("--id", dest="id_field", default="id", metavar="FIELD",
                      help="the field holding the transaction id (default 'id')")
    gate.add_argument("--input-format", choices=("ndjson", "csv"),
                      help="default: csv for a .csv INPUT, else ndjson")
    gate.add_argument("--rejected", metavar="FILE",
                      help="also append every rejected transaction (answer + its line) here")
    gate.add_argument("--max-batch", type=int, default=512, metavar="N",
                      help="at most N transactions per durable commit (default 512)")
    gate.add_argument("--max-delay-ms", type=float, default=5.0, metavar="MS",
                      help="commit a batch at most MS after its first transaction was read "
                      "(default 5)")
    gate.add_argument("--signer", choices=("process", "inline"), default=None,
                      help="sign each batch's records in a helper process, beside the next "
                      "batch's parsing and scoring (the default with more than one CPU), or "
                      "inline, one batch at a time (the default on one CPU or with "
                      "--max-batch 1, where a round trip per transaction costs more than it "
                      "gains)")
    gate.add_argument("--key", metavar="SIGNER.key",
                      help="key that signs the tx records (default: the ledger's own key)")
    gate.add_argument("--require-anchored", action="store_true",
                      help="refuse to start unless the container is anchored in the model log "
                      "(needs --log-key; see --proof, --log)")
    cli._add_trust_options(gate)
    cli._add_anchor_options(gate)
    gate.set_defaults(handler=cmd_gate)

    tx = subparsers.add_parser(
        "tx", help="prove or verify one decision of the gate (a tx record of the ledger)",
        description="Write a proof bundle for the ledger's decision on one transaction id, or "
        "check such a bundle offline against the log's public key.", epilog=GATE_EPILOG,
        formatter_class=raw)
    commands = tx.add_subparsers(dest="tx_command", metavar="COMMAND")
    commands.required = True
    prove = commands.add_parser("prove", help="write a proof bundle for a transaction id",
                                formatter_class=raw, epilog=GATE_EPILOG)
    prove.add_argument("ledger", metavar="LOG")
    prove.add_argument("tx_id", metavar="ID", help="the transaction id")
    prove.add_argument("-o", "--output", required=True, metavar="PROOF",
                       help="bundle file to write ('-' for stdout)")
    prove.add_argument("--key", metavar="LOGKEY", help="log key (default: the path given at init)")
    prove.set_defaults(handler=cmd_tx_prove)
    verify = commands.add_parser("verify", help="check a transaction's proof bundle offline",
                                 formatter_class=raw, epilog=GATE_EPILOG)
    verify.add_argument("proof", metavar="PROOF")
    verify.add_argument("--log-key", required=True, metavar="LOG.pub",
                        help="the ledger's public key")
    verify.add_argument("--id", dest="tx_id", metavar="ID", help="require this transaction id")
    verify.add_argument("--model", metavar="MODEL.astore",
                        help="require the decision to be by this container (or give --store-key)")
    verify.add_argument("--store-key", metavar="KEY", help="require this model store key")
    verify.add_argument("--transaction", metavar="FILE",
                        help="require the record to be over these canonical bytes")
    verify.add_argument("--admitted", action="store_true",
                        help="require the decision to be 'admitted'")
    verify.set_defaults(handler=cmd_tx_verify)

    score = subparsers.choices.get("score")
    if score is not None:
        streaming = score.add_argument_group(
            "streaming (--stream)", "score NDJSON or CSV lines in micro-batches as they arrive: "
            "each batch is scored in one call and its lines written and flushed before the next "
            "is read; a batch closes at --max-batch lines or --max-delay-ms after its first "
            "line; memory stays constant; SIGTERM or end of input answers every line read")
        streaming.add_argument("--stream", action="store_true",
                               help="micro-batched streaming (stdin or a file, to stdout)")
        streaming.add_argument("--max-batch", type=int, default=512, metavar="N",
                               help="lines per batch with --stream (default 512)")
        streaming.add_argument("--max-delay-ms", type=float, default=5.0, metavar="MS",
                               help="longest wait for a batch with --stream (default 5)")
        receipt_options = score.add_argument_group(
            "receipts (--receipt)", "append a signed score receipt to a log: the model's store "
            "key, SHA-256 of the canonical input and of the outputs, row count, columns, cutoff, "
            "scorer version, time, and a Merkle tree over the rows (docs/GATE.md); the receipt "
            "file is the record's proof bundle, checked by 'pyastore receipt verify'")
        receipt_options.add_argument("--receipt", metavar="LOG",
                                     help="append the receipt to this log (INPUT must be a file)")
        receipt_options.add_argument("--receipt-out", metavar="FILE",
                                     help="the receipt file (default: OUTPUT.receipt)")
        receipt_options.add_argument("--receipt-key", metavar="KEY",
                                     help="key that signs the receipt (default: the log's key)")
        score.set_defaults(handler=cmd_score_or_stream, batch_score=score.get_default("handler"))

    receipt = subparsers.add_parser(
        "receipt", help="verify a score receipt; prove or verify one row of it",
        description="Check a score receipt written by 'pyastore score --receipt': re-score the "
        "input with the model and compare the model, row count, input, outputs and row tree; "
        "prove one row's input and outputs without revealing the others.",
        epilog="examples:\n  pyastore score fraud.astore tx.csv -o scores.csv --receipt "
        "receipts.log\n  pyastore receipt verify scores.csv.receipt --model fraud.astore "
        "--input tx.csv --log-key log.pub\n  pyastore receipt prove-row scores.csv.receipt "
        "--model fraud.astore --input tx.csv --row 17 -o row17.proof\n  pyastore receipt "
        "verify-row row17.proof --log-key log.pub", formatter_class=raw)
    receipt_commands = receipt.add_subparsers(dest="receipt_command", metavar="COMMAND")
    receipt_commands.required = True
    check = receipt_commands.add_parser("verify", help="re-score and check a receipt")
    check.add_argument("receipt", metavar="RECEIPT")
    check.add_argument("--model", required=True, metavar="MODEL")
    check.add_argument("--input", required=True, metavar="FILE")
    check.add_argument("--input-format", choices=("csv", "ndjson", "parquet"))
    check.add_argument("--scores", metavar="FILE",
                       help="also check this scores file (CSV/NDJSON output of score) row by row")
    check.add_argument("--log-key", metavar="LOG.pub",
                       help="also check the receipt is in the log's signed tree")
    cli._add_trust_options(check)
    check.set_defaults(handler=cmd_receipt_verify)
    prove_row = receipt_commands.add_parser("prove-row", help="prove one row of a receipt")
    prove_row.add_argument("receipt", metavar="RECEIPT")
    prove_row.add_argument("--model", required=True, metavar="MODEL")
    prove_row.add_argument("--input", required=True, metavar="FILE")
    prove_row.add_argument("--input-format", choices=("csv", "ndjson", "parquet"))
    prove_row.add_argument("--row", required=True, type=int, metavar="N",
                           help="the row, from 1 (as pyastore score numbers rows)")
    prove_row.add_argument("-o", "--output", required=True, metavar="FILE")
    cli._add_trust_options(prove_row)
    prove_row.set_defaults(handler=cmd_receipt_prove_row)
    check_row = receipt_commands.add_parser("verify-row", help="check one row's proof")
    check_row.add_argument("proof", metavar="ROWPROOF")
    check_row.add_argument("--log-key", metavar="LOG.pub",
                           help="also check the receipt is in the log's signed tree")
    check_row.set_defaults(handler=cmd_receipt_verify_row)


def cmd_score_or_stream(args: argparse.Namespace) -> int:
    """``pyastore score``: ``--stream`` here, everything else by the main CLI's handler."""
    if args.receipt is None:
        return int(args.batch_score(args)) if not args.stream else cmd_score_stream(args)
    if args.stream:
        raise UsageError("--receipt covers a whole file: score it without --stream")
    if args.input == "-":
        raise UsageError("--receipt needs INPUT as a file (it is read again to be hashed)")
    if args.on_error != "fail":
        raise UsageError("--receipt covers every row: --on-error must be fail")
    receipt_out = args.receipt_out or (None if args.output == "-" else args.output + ".receipt")
    if receipt_out is None:
        raise UsageError("--receipt with output on stdout needs --receipt-out FILE")
    if not os.path.isfile(args.receipt):
        raise UsageError(f"{args.receipt}: no such log (create it with pyastore chain init)")
    code = int(args.batch_score(args))
    if code != EXIT_OK:
        return code
    from chain.log import utc_now
    from pyastore import cli, receipts
    from pyastore.files import write_atomic

    model = cli._load(args)
    scored = receipts.score_for_receipt(model, args.input, args.input_format)
    receipt = receipts.make_receipt(model, scored, cutoff=None, time=utc_now())
    write_atomic(receipt_out, receipts.append_receipt(args.receipt, receipt, args.receipt_key))
    sys.stderr.write(f"pyastore: receipt for {scored.rows} row(s) appended to {args.receipt}, "
                     f"written to {receipt_out}\n")
    return EXIT_OK


def _receipt_scored(args: argparse.Namespace, receipt: Any, **options: Any
                    ) -> tuple[Any, Any]:
    from pyastore import cli, receipts

    model = cli._load(args)
    receipts.check_model(receipt, model)
    return model, receipts.score_for_receipt(model, args.input, args.input_format, **options)


def cmd_receipt_verify(args: argparse.Namespace) -> int:
    from pyastore import receipts
    from pyastore.files import read_bytes
    from pyastore.keys import load_public_key

    log_key = load_public_key(args.log_key) if args.log_key else None
    evidence = receipts.read_receipt(read_bytes(args.receipt, what="receipt"), log_key)
    model, scored = _receipt_scored(args, evidence.receipt, keep_outputs=args.scores is not None)
    receipts.check(evidence.receipt, model, scored)
    if args.scores:
        receipts.check_scores(model, scored, args.scores)
    where = (f"in the log's tree of size {evidence.tree_size}" if evidence.tree_size is not None
             else "(log inclusion not checked: give --log-key)")
    print(f"OK  receipt at log index {evidence.index} {where}, signed by {evidence.submitter}: "
          f"{scored.rows} row(s) of {args.input} scored by model {model.store_key} give these "
          "outputs" + (f", as in {args.scores}" if args.scores else ""))
    return EXIT_OK


def cmd_receipt_prove_row(args: argparse.Namespace) -> int:
    from pyastore import receipts
    from pyastore.files import read_bytes, write_atomic

    bundle = read_bytes(args.receipt, what="receipt")
    evidence = receipts.read_receipt(bundle, None)
    model, scored = _receipt_scored(args, evidence.receipt, keep_leaves=True,
                                    capture_row=args.row - 1)
    receipts.check(evidence.receipt, model, scored)
    write_atomic(args.output, receipts.prove_row(bundle, scored, args.row - 1))
    print(f"wrote {args.output}: row {args.row} of {scored.rows}")
    return EXIT_OK


def cmd_receipt_verify_row(args: argparse.Namespace) -> int:
    from pyastore import receipts
    from pyastore.files import read_bytes
    from pyastore.keys import load_public_key

    log_key = load_public_key(args.log_key) if args.log_key else None
    row = receipts.verify_row(read_bytes(args.proof, what="row proof"), log_key)
    receipt = row.evidence.receipt
    inputs = ", ".join(f"{name}={value!r}" for name, value in zip(receipt.inputs, row.inputs))
    outputs = ", ".join(f"{name}={value!r}" for name, value in zip(receipt.outputs, row.outputs))
    print(f"OK  row {row.row + 1} of {receipt.rows} scored by model {receipt.model}: {inputs} "
          f"-> {outputs}")
    return EXIT_OK


def cmd_score_stream(args: argparse.Namespace) -> int:
    from pyastore import batch, cli
    from pyastore.stream import MicroBatcher, ShutdownSignals, score_stream

    if args.max_batch < 1:
        raise UsageError("--max-batch must be at least 1")
    if not 0 <= args.max_delay_ms <= 60000:
        raise UsageError("--max-delay-ms must be between 0 and 60000")
    if args.output != "-":
        raise UsageError("--stream writes to stdout (-o -); for a file, score without --stream")
    input_format = args.input_format or (
        "csv" if args.input.lower().endswith(".csv") else "ndjson")
    if input_format == "parquet":
        raise UsageError("--stream reads NDJSON or CSV lines, not Parquet")
    output_format = args.format or input_format
    if output_format == "parquet":
        raise UsageError("--stream writes NDJSON or CSV, not Parquet")
    if args.require_anchored and args.log_key is None:
        raise UsageError("--require-anchored needs --log-key LOG.pub (and the proof bundle)")
    model = cli._load(args)
    anchored = cli._check_anchor(args, model)
    if anchored:
        sys.stderr.write(f"pyastore: {anchored}\n")
    if args.errors:
        raise UsageError("--errors FILE is not available with --stream: bad rows go to stderr")

    def on_bad_row(row: int, message: str) -> None:
        sys.stderr.write(f"pyastore: bad row {row}: {message}\n")

    scorer = batch.BatchScorer(model, keep=args.keep, on_error=args.on_error,
                               n_threads=args.threads, with_label=args.label,
                               on_bad_row=on_bad_row)
    writer = (batch.NdjsonWriter(sys.stdout, scorer.output_columns) if output_format == "ndjson"
              else batch.CsvWriter(sys.stdout, scorer.output_columns))
    where = "<stdin>" if args.input == "-" else args.input
    fd, close_input = _open_input(args.input)
    try:
        with ShutdownSignals() as stop:
            batcher = MicroBatcher(fd, max_batch=args.max_batch,
                                   max_delay_ms=args.max_delay_ms, stop=stop)
            try:
                score_stream(scorer, batcher, writer, input_format=input_format, where=where)
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK
            writer.close()
    finally:
        if close_input:
            os.close(fd)
    if stop.received is not None:
        sys.stderr.write(f"pyastore: stopped by {signal.Signals(stop.received).name}; every "
                         f"line read was scored ({scorer.report.rows_out} row(s) written)\n")
        if stop.received == signal.SIGINT:
            return EXIT_INTERRUPTED
    return EXIT_OK


def _open_input(path: str) -> tuple[int, bool]:
    """A file descriptor for INPUT (stdin for ``-``) and whether to close it."""
    if path == "-":
        if sys.stdin is None:
            raise UsageError("standard input is closed: give an INPUT file")
        try:
            return sys.stdin.fileno(), False
        except (OSError, ValueError):
            raise UsageError("standard input is closed: give an INPUT file") from None
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not an input file")
    try:
        return os.open(path, os.O_RDONLY), True
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def _signing_key(args: argparse.Namespace, log: Any) -> Any:
    from pyastore import keys

    if args.key:
        return keys.SigningKey.load(args.key)
    return log.signing_key()


def cmd_gate(args: argparse.Namespace) -> int:
    """``pyastore gate``. A SIGTERM or SIGHUP outside the reading loop (while the model and
    the ledger open, or after the loop) stops it with exit 0 too: at that moment every
    transaction read -- none, before the loop -- has been decided and answered."""
    from pyastore.commandline import Terminated

    try:
        return _run_gate(args)
    except Terminated as stop:
        sys.stderr.write(f"pyastore gate: stopped by {signal.Signals(stop.signum).name}; every "
                         "transaction read was decided and answered\n")
        return EXIT_OK


def _run_gate(args: argparse.Namespace) -> int:
    from chain.log import Log
    from pyastore import cli
    from pyastore.gate import Gate
    from pyastore.stream import MicroBatcher, ShutdownSignals

    if args.max_batch < 1:
        raise UsageError("--max-batch must be at least 1")
    if not 0 <= args.max_delay_ms <= 60000:
        raise UsageError("--max-delay-ms must be between 0 and 60000")
    if args.require_anchored and args.log_key is None:
        raise UsageError("--require-anchored needs --log-key LOG.pub (and the proof bundle)")
    input_format = args.input_format or (
        "csv" if args.input.lower().endswith(".csv") else "ndjson")
    model = cli._load(args)
    anchored = cli._check_anchor(args, model)
    if anchored:
        sys.stderr.write(f"pyastore: {anchored}\n")
    if os.path.isdir(args.ledger):
        raise UsageError(f"{args.ledger}: is a directory, not a ledger")
    fd, close_input = _open_input(args.input)
    rejected = None
    try:
        if args.rejected:
            try:
                rejected = open(args.rejected, "a", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{args.rejected}: cannot write: {exc.strerror}") from None
        with Log.open(args.ledger) as log:
            gate = Gate(model, log, _signing_key(args, log), sys.stdout, cutoff=args.cutoff,
                        id_field=args.id_field, input_format=input_format,
                        rejected_out=rejected)
            with ShutdownSignals() as stop:
                batcher = MicroBatcher(fd, max_batch=args.max_batch,
                                       max_delay_ms=args.max_delay_ms, stop=stop)
                signer = args.signer or ("process" if (os.cpu_count() or 1) > 1
                                         and args.max_batch > 1 else "inline")
                try:
                    report = gate.run(batcher, pipelined=signer == "process")
                finally:
                    sys.stderr.write(f"pyastore gate: {gate.report.summary()}\n")
                if stop.received is not None:
                    report.stopped_by = signal.Signals(stop.received).name
    finally:
        if rejected is not None:
            rejected.close()
        if close_input:
            os.close(fd)
    if report.output_closed:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.stderr.write(f"pyastore gate: stdout was closed; stopped reading. "
                         f"{report.unanswered} decision(s) were durable but could not be "
                         "answered: resubmit them for their ledger index (as duplicates)\n")
        return EXIT_OK
    if report.stopped_by:
        sys.stderr.write(f"pyastore gate: stopped by {report.stopped_by}; every transaction "
                         "read was decided and answered\n")
    if report.partial_bytes:
        sys.stderr.write(f"pyastore gate: {report.partial_bytes} byte(s) of an incomplete last "
                         "line were not decided\n")
    return EXIT_INTERRUPTED if report.stopped_by == "SIGINT" else EXIT_OK


def cmd_tx_prove(args: argparse.Namespace) -> int:
    from chain.log import Log
    from pyastore.errors import LogError
    from pyastore.files import write_atomic

    with Log.open(args.ledger) as log:
        record = log.tx(args.tx_id)
        if record is None:
            raise LogError(f"transaction id {args.tx_id!r} is not in the ledger {args.ledger}")
        bundle = log.prove_index(record.index, args.key)
    data = bundle.to_bytes()
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return EXIT_OK
    write_atomic(args.output, data)
    print(f"wrote {args.output}: transaction {args.tx_id!r}, record {record.index}, "
          f"{len(bundle.record.inclusion_proof)} proof hashes")
    return EXIT_OK


def cmd_tx_verify(args: argparse.Namespace) -> int:
    from chain.errors import ProofError
    from pyastore.files import read_bytes
    from pyastore.gate import ADMITTED, verify_tx_bundle
    from pyastore.keys import load_public_key

    store_key = args.store_key
    if args.model:
        import warnings

        import pyastore

        with warnings.catch_warnings():  # only the store key is wanted here
            warnings.simplefilter("ignore")
            store_key = pyastore.load(args.model, allow_untrusted=True).store_key
    transaction = None
    if args.transaction:  # the line as sent; its line terminator is not part of the bytes
        transaction = read_bytes(args.transaction, what="transaction")
        transaction = transaction.removesuffix(b"\n").removesuffix(b"\r")
    proof = verify_tx_bundle(read_bytes(args.proof, what="proof bundle"),
                             load_public_key(args.log_key), tx_id=args.tx_id,
                             store_key=store_key, transaction=transaction)
    if args.admitted and proof.decision.decision != ADMITTED:
        raise ProofError(f"transaction {proof.tx_id!r} was {proof.decision.decision}, not "
                         f"admitted: {proof.reason}", expected=ADMITTED,
                         computed=proof.decision.decision)
    print(f"OK  {proof.summary()}")
    return EXIT_OK
