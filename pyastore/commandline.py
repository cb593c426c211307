"""What every pyastore command line shares: the argument parser and the error boundary.

``pyastore`` (:mod:`pyastore.cli`) and ``pyastore-train`` (:mod:`trainer.cli`) both build a
:class:`Parser` and hand it to :func:`run_command`, the one place where a typed error of
:mod:`pyastore.errors` becomes one ``PROG: error: <message>`` line on stderr and the error's
exit code. Only a bug prints a traceback (exit 1).

SIGTERM and SIGHUP become a :class:`Terminated` exception, so that every ``finally`` runs
(an output being written is removed, not left half-made) before the command exits with
128 + the signal number. Warnings (``SecurityWarning``...) print as ``PROG: warning: ...``.
:func:`printable` is how any text from a file or container is shown to a person.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from pyastore.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PyastoreError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn



class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (running every ``finally``) and exit 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def printable(text: object) -> str:
    """Text from a container, a log or an input as shown on a terminal: control characters
    (newlines, escape sequences) written as escapes, so that a model name cannot move the
    cursor, recolour the screen or forge a line of output."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as ``PROG: error: ...`` and exits with 2, and lets
    options and positional arguments mix in any order in a command without subcommands
    (``pyastore score MODEL --trust K.pub INPUT``, which plain argparse refuses)."""

    _mixing = False

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        has_subcommands = any(isinstance(action, argparse._SubParsersAction)
                              for action in self._actions)
        if has_subcommands or self._mixing:
            return super().parse_known_args(args, namespace)
        self._mixing = True  # parse_known_intermixed_args calls parse_known_args itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog.split()[0]}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command's ``handler`` and return the exit code."""
    prog = parser.prog.split()[0]
    args = parser.parse_args(argv)

    def show_warning(message: Warning | str, category: type[Warning], filename: str,
                     lineno: int, file: object = None, line: str | None = None) -> None:
        sys.stderr.write(f"{prog}: warning: {message}\n")

    warnings.showwarning = show_warning
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, _terminate)
    try:
        return int(args.handler(args))
    except PyastoreError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated as stop:
        sys.stderr.write(f"{prog}: terminated by {signal.Signals(stop.signum).name}\n")
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader of our stdout went away (`| head`): not an error of ours. Python's advice:
        # point stdout at /dev/null so that the flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
