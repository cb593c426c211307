"""What every pyastore command line shares: the argument parser and the error boundary.

``pyastore`` (:mod:`pyastore.cli`) and ``pyastore-train`` (:mod:`trainer.cli`) both build a
:class:`Parser` and hand it to :func:`run_command`, the one place where a typed error of
:mod:`pyastore.errors` becomes one ``PROG: error: <message>`` line on stderr and the error's
exit code. Only a bug prints a traceback (exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys

from pyastore.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PyastoreError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn



class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as ``PROG: error: ...`` and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog.split()[0]}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen command's ``handler`` and return the exit code."""
    prog = parser.prog.split()[0]
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except PyastoreError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (`| head`): not an error of ours. Python's advice:
        # point stdout at /dev/null so that the flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
