"""Errors of vertically partitioned training, each naming what failed and where.

The receiver's checks (``trainer.vertical.exchange``) refuse a message with one of the
``ExchangeError`` subclasses below; they are integrity failures, so the CLI exits with code 4
like any other integrity, signature or trust failure (``pyastore.errors``). A participant that
does not answer in time raises ``ExchangeTimeoutError``, exit code 8, the code
``pyastore.errors`` gives every ``PeerTimeoutError`` (docs/VERTICAL.md lists them all).
"""

from __future__ import annotations

from pyastore.errors import IntegrityError, PeerTimeoutError


class ExchangeError(IntegrityError):
    """A message in the exchange failed one of the receiver's checks."""


class DigestMismatchError(ExchangeError):
    """The bytes in the store do not hash to the digest their name or record announces."""


class MissingBlobError(ExchangeError):
    """A record announces a digest that the store does not hold."""


class UnknownSenderError(ExchangeError):
    """A record is signed by a key that is not a participant's, or its signature fails."""


class WrongRecipientError(ExchangeError):
    """A message is not addressed to this participant's key."""


class ReplayError(ExchangeError):
    """A request id that was already used in this log."""


class DecryptionError(ExchangeError):
    """A sealed box that does not open with the recipient's key (tampered or forged)."""


class MessageError(ExchangeError):
    """A decrypted message that is malformed or disagrees with the record announcing it."""


class ExchangeTimeoutError(PeerTimeoutError):
    """A participant did not send what was waited for within the time allowed."""
