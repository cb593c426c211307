"""Errors of the verifiable log, all subclasses of :class:`pyastore.errors.LogError`.

The CLI maps every ``LogError`` to exit code 7. The subclasses only add what a caller may
want to act on: the log index a corruption was found at, or the expected and computed
values of a proof check that failed.
"""

from __future__ import annotations

from pyastore.errors import LogError


class LogCorruptionError(LogError):
    """The log's stored records do not verify; ``index`` is the first bad record (or None)."""

    def __init__(self, message: str, *, index: int | None = None):
        super().__init__(message)
        self.index = index


class ProofError(LogError):
    """A Merkle proof, checkpoint or proof bundle failed to verify.

    ``expected`` and ``computed`` hold the two values that differ when the failure is a
    mismatch (hex strings for hashes, ints for sizes), else ``None``.
    """

    def __init__(self, message: str, *, expected: object = None, computed: object = None):
        super().__init__(message)
        self.expected = expected
        self.computed = computed


class DuplicateRecordError(LogError):
    """A publish of a store key that the log already holds (or a second revoke)."""

    def __init__(self, message: str, *, index: int):
        super().__init__(message)
        self.index = index


class RevokedError(LogError):
    """The store key was revoked in the log state the verifier can see."""

    def __init__(self, message: str, *, index: int, reason: str):
        super().__init__(message)
        self.index = index
        self.reason = reason
