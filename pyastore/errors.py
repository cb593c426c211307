"""Typed errors of pyastore and the CLI exit code each one maps to.

Every failure a user can cause has its own exception class; the CLI prints the message
(never a traceback) and exits with the class's ``exit_code``. The C core reports an
``astore_status``; both backends (``pyastore._core`` and ``pyastore._cffi_core``) turn it
into an exception with :func:`error_from_status`, through ``STATUS_ERRORS``: the one table,
keyed by the status's C name (``astore_status_name``), so an entry cannot silently move to
another status. A test checks every status's name, exception and exit code by name.

Exit codes (documented in the README and ``pyastore --help``):

====  ==============================================================
0     success
1     internal error (a bug: please report it)
2     usage error: bad arguments, a file that cannot be read, a bad key file
3     malformed container (``FormatError``, ``UnsupportedVersionError``)
4     integrity, signature or trust failure
5     bad input data (``InputError``)
6     unsupported model (``UnsupportedModelError``)
7     log failure: log corrupt, record not anchored or revoked (``LogError``)
8     a peer did not answer in time (``PeerTimeoutError``)
130   interrupted (Ctrl-C)
====  ==============================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_FORMAT = 3
EXIT_TRUST = 4
EXIT_INPUT = 5
EXIT_UNSUPPORTED = 6
EXIT_LOG = 7
EXIT_TIMEOUT = 8
EXIT_INTERRUPTED = 130


class SecurityWarning(UserWarning):
    """Something was allowed that weakens trust: an unsigned or untrusted container loaded on
    request, a secret key file others may read."""


class PyastoreError(Exception):
    """Base class of every error pyastore raises on purpose.

    ``offset`` is the byte offset in the container the error refers to, when there is one.
    """

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        if self.offset is None:
            return self.message
        return f"{self.message} (at byte {self.offset})"


class UsageError(PyastoreError):
    """Bad arguments or a file that cannot be opened as asked."""

    exit_code = EXIT_USAGE


class KeyFileError(UsageError):
    """A key file that is missing, malformed, of the wrong kind or unsafe to write."""


class FormatError(PyastoreError):
    """The bytes are not a well-formed container: truncated, bad framing, bad section."""

    exit_code = EXIT_FORMAT


class UnsupportedVersionError(FormatError):
    """The container's major format version is not one this reader understands."""


class IntegrityError(PyastoreError):
    """The store key recorded in the container does not match the SHA-256 of its bytes."""

    exit_code = EXIT_TRUST


class SignatureError(PyastoreError):
    """The container is unsigned (and that was not allowed) or its signature is invalid."""

    exit_code = EXIT_TRUST


class UntrustedSignerError(SignatureError):
    """The signature is valid but the signer's public key is not among the trusted keys."""


class InputError(PyastoreError):
    """Input data that cannot be scored: wrong shape, missing column, non-numeric cell.

    ``row`` is the 0-based index of the offending row in what was scored and ``column`` the
    0-based index of the offending input, when the error is about one cell or row (messages
    number rows from 1: ``row`` 0 is "row 1").
    """

    exit_code = EXIT_INPUT

    def __init__(self, message: str, *, offset: int | None = None, row: int | None = None,
                 column: int | None = None):
        super().__init__(message, offset=offset)
        self.row = row
        self.column = column


class UnsupportedModelError(PyastoreError):
    """A model (or a part of it) that pyastore cannot export or score exactly."""

    exit_code = EXIT_UNSUPPORTED


class LogError(PyastoreError):
    """The verifiable log is corrupt, or a record is not anchored, or it was revoked."""

    exit_code = EXIT_LOG


class PeerTimeoutError(PyastoreError):
    """Another process this one waits for (a party of a vertical exchange...) did not answer
    within the time allowed: a clear failure instead of a hang."""

    exit_code = EXIT_TIMEOUT


class OutOfMemoryError(PyastoreError):
    """The C core could not allocate memory for a container or model."""

    exit_code = EXIT_INTERNAL


class InternalError(PyastoreError):
    """A broken invariant inside pyastore: a bug, never a user error."""

    exit_code = EXIT_INTERNAL


# astore_status name -> exception class. ASTORE_ERR_ARGUMENT is a bad call by one of our own
# backends (a NULL pointer or a wrong buffer size), never something a user can cause.
STATUS_ERRORS: dict[str, type[PyastoreError]] = {
    "ASTORE_ERR_ARGUMENT": InternalError,
    "ASTORE_ERR_TRUNCATED": FormatError,
    "ASTORE_ERR_FORMAT": FormatError,
    "ASTORE_ERR_VERSION": UnsupportedVersionError,
    "ASTORE_ERR_INTEGRITY": IntegrityError,
    "ASTORE_ERR_UNSUPPORTED": UnsupportedModelError,
    "ASTORE_ERR_NOMEM": OutOfMemoryError,
    "ASTORE_ERR_INPUT": InputError,
}


def error_from_status(status_name: str, message: str, *, offset: int | None = None,
                      row: int | None = None, column: int | None = None) -> PyastoreError:
    """The exception for a failed C call, from its status name and error record fields.

    ``offset``, ``row`` and ``column`` are None when the C record holds its "none" value.
    An unknown status name (a newer core than this package) is an :class:`InternalError`.
    """
    cls = STATUS_ERRORS.get(status_name)
    if cls is None:
        return InternalError(f"{status_name}: {message}", offset=offset)
    if cls is InputError:
        return InputError(message, offset=offset, row=row, column=column)
    return cls(message, offset=offset)
