"""The exchange: sealed messages in a content-addressed store, announced in the log.

Sending (``Exchange.send``): encode the message, seal it to the recipient's box key
(``trainer.vertical.crypto``), ``put`` the ciphertext in the store (its name is its SHA-256),
then append a ``blob`` record signed by the sender that binds the ciphertext digest (the
record's subject) to the sender (the record's submitter), the recipient's key id, the request
id and the round (the record's description, ``trainer.vertical.messages.Announcement``).
The blob is stored before it is announced, so a reader never sees a record whose blob is not
there yet.

Receiving (``Exchange.receive``), every check before the plaintext is used, each failure its
own error (``trainer.vertical.errors``) naming the log index and what failed:

1. the record is a ``blob`` of this protocol, addressed to this participant's box key
   (``WrongRecipientError``);
2. its signature verifies and its signer is the roster participant it names as sender
   (``UnknownSenderError``);
3. its request id appears in no earlier blob record of the log (``ReplayError``);
4. the store holds the blob and its bytes hash to the announced digest
   (``MissingBlobError``, ``DigestMismatchError``);
5. the sealed box opens with this participant's key (``DecryptionError``);
6. the plaintext is a well-formed message that says what the record says: kind, sender,
   recipient, round, request id, reply-to (``MessageError``).

``Exchange.inbox`` walks the log from where it last stopped and receives every blob record
addressed to this participant; fail-closed: the first refused message raises, and the
participant stops rather than train or predict on anything suspect. ``Exchange.wait`` polls
until a condition holds, else raises ``ExchangeTimeoutError``: a missing participant makes
the others fail, never hang.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from chain.records import KIND_BLOB, Record
from pyastore import keys
from trainer.vertical import crypto
from trainer.vertical.errors import (
    ExchangeTimeoutError,
    MessageError,
    ReplayError,
    UnknownSenderError,
    WrongRecipientError,
)
from trainer.vertical.messages import Announcement, Message
from trainer.vertical.roster import Roster
from trainer.vertical.store import BlobStore

T = TypeVar("T")


@dataclass(frozen=True)
class Received:
    """A message that passed every check, with the log record that announced it."""

    message: Message
    index: int
    digest: str


@dataclass(frozen=True)
class Sent:
    """What ``Exchange.send`` wrote: the record's index, the ciphertext digest and size."""

    index: int
    digest: str
    ciphertext_bytes: int


class Exchange:
    """One participant's end of the exchange (module docstring).

    ``log_path``: the shared log (it must exist); ``store``: the shared ``BlobStore``;
    ``me``: this participant's name in ``roster``; ``signing_key``: its Ed25519 key (must
    match the roster); ``box_key``: its X25519 key (needed to receive).
    """

    def __init__(self, log_path: str | os.PathLike[str], store: BlobStore, roster: Roster,
                 me: str, signing_key: keys.SigningKey, box_key: crypto.BoxKey | None = None,
                 *, poll_interval: float = 0.1):
        from chain.log import Log

        self.roster = roster
        self.me = roster.get(me)
        if signing_key.public_key != self.me.sign_key:
            raise UnknownSenderError(f"the signing key given for {me!r} is not the one the "
                                     f"roster lists ({self.me.sign_key.hex()[:16]}...)")
        if box_key is not None and box_key.public != self.me.box_key:
            raise WrongRecipientError(f"the box key given for {me!r} is not the one the roster "
                                      f"lists (key id {crypto.key_id(self.me.box_key)[:16]}...)")
        self.store = store
        self.signing_key = signing_key
        self.box_key = box_key
        self.poll_interval = poll_interval
        self.log_path = Path(log_path)
        self._log = Log.open(self.log_path)
        self._cursor = 0  # the next log index the inbox looks at
        self._scanned = 0  # request ids of records before this index are in _first_use
        self._first_use: dict[str, int] = {}  # request id -> index of the first record using it
        self.bytes_sent = 0
        self.bytes_received = 0
        self.records_sent = 0

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def my_key_id(self) -> str:
        return crypto.key_id(self.me.box_key)

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: Message) -> Sent:
        """Seal ``message`` to its recipient, store it and announce it (module docstring)."""
        recipient = next((p for p in self.roster.participants
                          if crypto.key_id(p.box_key) == message.recipient), None)
        if recipient is None:
            raise WrongRecipientError(f"{message.kind} from {self.me.name}: recipient key id "
                                      f"{message.recipient[:16]}... is no participant's")
        if message.sender != self.me.name:
            raise MessageError(f"{self.me.name} cannot send a message naming sender "
                               f"{message.sender!r}")
        ciphertext = crypto.seal(message.encode(), recipient.box_key)
        digest = self.store.put(ciphertext)
        record = self._log.append_record(
            KIND_BLOB, digest, self.signing_key, name=f"vertical {message.kind}",
            description=message.announcement().to_description())
        self.bytes_sent += len(ciphertext)
        self.records_sent += 1
        return Sent(record.index, digest, len(ciphertext))

    # -- receiving -------------------------------------------------------------------------

    def _announcement(self, record: Record) -> Announcement | None:
        if record.kind != KIND_BLOB:
            return None
        return Announcement.from_description(record.description, f"log record {record.index}")

    def _index_until(self, stop: int) -> None:
        """Note the request id of every blob record before index ``stop``."""
        if stop <= self._scanned:
            return
        for record in self._log.records(self._scanned, stop):
            try:
                announcement = self._announcement(record)
            except MessageError:
                announcement = None  # a malformed record of someone else's uses no id
            if announcement is not None:
                self._first_use.setdefault(announcement.request_id, record.index)
        self._scanned = stop

    def receive(self, record: Record) -> Received:
        """Run every check on one record (module docstring) and return its message."""
        where = f"log record {record.index} ({record.name or record.kind})"
        announcement = self._announcement(record)
        if announcement is None:
            raise MessageError(f"{where}: not a blob record of the vertical exchange")
        if announcement.recipient != self.my_key_id:
            owner = next((p.name for p in self.roster.participants
                          if crypto.key_id(p.box_key) == announcement.recipient), "nobody known")
            raise WrongRecipientError(
                f"{where}: addressed to key {announcement.recipient[:16]}... ({owner}), not to "
                f"{self.me.name} (key {self.my_key_id[:16]}...)")
        signer = self.roster.by_sign_key(record.submitter)
        if not record.signature_valid():
            raise UnknownSenderError(f"{where}: the record's signature does not verify for "
                                     f"submitter {record.submitter[:16]}...")
        if signer is None:
            raise UnknownSenderError(f"{where}: signed by {record.submitter[:16]}..., which is "
                                     "not a participant's key in the roster")
        if signer.name != announcement.sender:
            raise UnknownSenderError(f"{where}: signed by {signer.name} but names "
                                     f"{announcement.sender!r} as the sender")
        self._index_until(record.index)
        first = self._first_use.get(announcement.request_id, record.index)
        if first < record.index:
            raise ReplayError(f"{where}: request id {announcement.request_id} was already used "
                              f"by log record {first}; refusing the replay")
        ciphertext = self.store.get(record.subject)
        if self.box_key is None:
            raise WrongRecipientError(f"{where}: {self.me.name} has no box key to open it")
        plaintext = self.box_key.open(ciphertext, where)
        message = Message.decode(plaintext, where)
        if message.announcement() != announcement:
            raise MessageError(f"{where}: the sealed message ({message.kind} from "
                               f"{message.sender}, round {message.round}, request "
                               f"{message.request_id}) differs from its signed announcement "
                               f"({announcement.kind} from {announcement.sender}, round "
                               f"{announcement.round}, request {announcement.request_id})")
        self.bytes_received += len(ciphertext)
        return Received(message, record.index, record.subject)

    def inbox(self) -> list[Received]:
        """Receive every new blob record addressed to this participant, in log order."""
        received = []
        for record in self._log.records(self._cursor):
            announcement = self._announcement(record)
            if announcement is not None and announcement.recipient == self.my_key_id:
                received.append(self.receive(record))
            # request ids of every earlier record count, whoever they were for
            self._index_until(record.index + 1)
            self._cursor = record.index + 1
        return received

    def wait(self, poll: Callable[[], T | None], timeout: float, what: str) -> T:
        """Call ``poll`` until it returns something other than None, at most ``timeout``
        seconds; ``ExchangeTimeoutError`` naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = poll()
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise ExchangeTimeoutError(f"{self.me.name}: timed out after {timeout:g} s "
                                           f"waiting for {what}")
            time.sleep(self.poll_interval)
