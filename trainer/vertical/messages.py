"""The messages of the exchange (their plaintext, before sealing) and their announcements.

Four kinds of message, each a ``Message`` value:

* ``representations`` -- party -> host, once per round: the pseudonyms of the party's training
  customers, their labels (the host trains on them: every party holds the label) and the
  party's third-hidden-layer representation of each, ``width`` float32 values per row;
* ``predict-request`` -- host -> each party: only the pseudonyms of the customers to score;
* ``predict-response`` -- party -> host, ``reply_to`` the request's id: the same pseudonyms in
  the same order and their representations;
* ``close`` -- host -> each party: the round is over, stop serving requests.

Plaintext encoding: canonical MessagePack of a map with the fields below (keys sorted; byte
strings as ``bin``): ``format`` (1), ``kind``, ``sender`` (participant name), ``recipient``
(the recipient's box key id), ``round``, ``request_id`` (32 lowercase hex, fresh random for
every message), ``reply_to`` (a request id or ""), ``ids`` (the 32-byte pseudonyms
concatenated), ``width``, ``values`` (rows x width float32, little-endian, row-major) and
``labels`` (one byte 0/1 per row, representations only). Round-trip law:
``Message.decode(m.encode()) == m``.

The announcement is the ``blob`` record of the log that names the ciphertext: subject
``sha256:<digest of the ciphertext>``, submitter the sender's signing key, name
``vertical <kind>``, and as description the canonical JSON of ``Announcement`` (protocol,
kind, sender, recipient, round, request id, reply-to). The receiver checks that the decrypted
message says the same as its signed announcement, so a ciphertext cannot be re-announced
under another sender, round or request.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from trainer.vertical.errors import MessageError

PROTOCOL = "pyastore-vertical-v1"
MESSAGE_FORMAT = 1
KINDS = ("representations", "predict-request", "predict-response", "close")
PSEUDONYM_BYTES = 32
MAX_ROUND = 1 << 31
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("format", "ids", "kind", "labels", "recipient", "reply_to", "request_id", "round",
           "sender", "values", "width")


def new_request_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Announcement:
    """What a ``blob`` record says about the ciphertext it names (module docstring)."""

    kind: str
    sender: str
    recipient: str  # box key id of the recipient
    round: int
    request_id: str
    reply_to: str = ""

    def to_description(self) -> str:
        return json.dumps({"protocol": PROTOCOL, "kind": self.kind, "sender": self.sender,
                           "recipient": self.recipient, "round": self.round,
                           "request_id": self.request_id, "reply_to": self.reply_to},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_description(cls, text: str, where: str) -> Announcement | None:
        """The announcement in a record's description; None when it is not this protocol's."""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict) or value.get("protocol") != PROTOCOL:
            return None
        try:
            announcement = cls(kind=value["kind"], sender=value["sender"],
                               recipient=value["recipient"], round=value["round"],
                               request_id=value["request_id"], reply_to=value["reply_to"])
        except KeyError as exc:
            raise MessageError(f"{where}: the announcement lacks field {exc.args[0]!r}") from None
        announcement.check(where)
        return announcement

    def check(self, where: str) -> None:
        if self.kind not in KINDS:
            raise MessageError(f"{where}: unknown message kind {self.kind!r}")
        if not isinstance(self.sender, str) or not self.sender:
            raise MessageError(f"{where}: the sender name is missing")
        if not isinstance(self.recipient, str) or not _HEX64.fullmatch(self.recipient):
            raise MessageError(f"{where}: the recipient must be a box key id (64 hex)")
        if type(self.round) is not int or not 0 <= self.round < MAX_ROUND:
            raise MessageError(f"{where}: round {self.round!r} is not an int in 0..2^31-1")
        if not isinstance(self.request_id, str) or not _REQUEST_ID.fullmatch(self.request_id):
            raise MessageError(f"{where}: request id {self.request_id!r} is not 32 hex")
        if self.reply_to != "" and (not isinstance(self.reply_to, str)
                                    or not _REQUEST_ID.fullmatch(self.reply_to)):
            raise MessageError(f"{where}: reply-to {self.reply_to!r} is not a request id")


@dataclass(frozen=True)
class Message:
    """One message's plaintext (module docstring)."""

    kind: str
    sender: str
    recipient: str
    round: int
    request_id: str
    reply_to: str = ""
    ids: bytes = b""
    width: int = 0
    values: bytes = b""
    labels: bytes = b""

    @property
    def n_rows(self) -> int:
        return len(self.ids) // PSEUDONYM_BYTES

    def pseudonyms(self) -> list[bytes]:
        return [self.ids[i:i + PSEUDONYM_BYTES] for i in range(0, len(self.ids), PSEUDONYM_BYTES)]

    def announcement(self) -> Announcement:
        return Announcement(self.kind, self.sender, self.recipient, self.round,
                            self.request_id, self.reply_to)

    def check(self, where: str) -> None:
        self.announcement().check(where)
        if len(self.ids) % PSEUDONYM_BYTES:
            raise MessageError(f"{where}: ids are not whole {PSEUDONYM_BYTES}-byte pseudonyms")
        rows = self.n_rows
        if self.kind in ("representations", "predict-response"):
            if type(self.width) is not int or self.width < 1:
                raise MessageError(f"{where}: a {self.kind} needs a width >= 1")
            if len(self.values) != 4 * rows * self.width:
                raise MessageError(f"{where}: {len(self.values)} value bytes for {rows} rows "
                                   f"of {self.width} float32")
        elif self.values or self.width:
            raise MessageError(f"{where}: a {self.kind} carries no values")
        if self.kind == "representations":
            if len(self.labels) != rows or not set(self.labels) <= {0, 1}:
                raise MessageError(f"{where}: representations need one 0/1 label per row")
        elif self.labels:
            raise MessageError(f"{where}: only representations carry labels")
        if self.kind == "predict-response" and not self.reply_to:
            raise MessageError(f"{where}: a predict-response must name the request it answers")
        if self.kind != "predict-response" and self.reply_to:
            raise MessageError(f"{where}: only a predict-response has a reply-to")

    def encode(self) -> bytes:
        import msgpack

        self.check("message")
        value = {"format": MESSAGE_FORMAT, "ids": self.ids, "kind": self.kind,
                 "labels": self.labels, "recipient": self.recipient, "reply_to": self.reply_to,
                 "request_id": self.request_id, "round": self.round, "sender": self.sender,
                 "values": self.values, "width": self.width}
        return msgpack.packb(value, use_bin_type=True)

    @classmethod
    def decode(cls, data: bytes, where: str) -> Message:
        import msgpack

        try:
            value = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True)
        except Exception as exc:  # msgpack raises several unrelated exception types
            raise MessageError(f"{where}: the plaintext is not MessagePack ({exc})") from None
        if not isinstance(value, dict) or tuple(sorted(value)) != _FIELDS:
            raise MessageError(f"{where}: the plaintext is not a message (fields "
                               f"{sorted(value) if isinstance(value, dict) else type(value)})")
        if value["format"] != MESSAGE_FORMAT:
            raise MessageError(f"{where}: message format {value['format']!r} is not "
                               f"{MESSAGE_FORMAT}")
        for field in ("ids", "values", "labels"):
            if not isinstance(value[field], bytes):
                raise MessageError(f"{where}: field {field!r} must be bytes")
        message = cls(kind=value["kind"], sender=value["sender"], recipient=value["recipient"],
                      round=value["round"], request_id=value["request_id"],
                      reply_to=value["reply_to"], ids=value["ids"], width=value["width"],
                      values=value["values"], labels=value["labels"])
        message.check(where)
        if message.encode() != bytes(data):
            raise MessageError(f"{where}: the plaintext is not in canonical form")
        return message
