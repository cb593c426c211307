"""Log records: what one entry of the log says, and its canonical bytes.

A :class:`Record` is a frozen value. Its canonical encoding is a MessagePack array with the
fields in a fixed order, every integer in its shortest form and every text field a UTF-8
``str`` (the encoding ``msgpack.packb(..., use_bin_type=True)`` produces is deterministic for
these types)::

    [ 1,              # record format version (int)
      index,          # position in the log, 0-based (int)
      kind,           # "model", "revoke", or a later kind (str)
      subject,        # what the record is about: a container's store key (64 lowercase
                      # hex, bare), or a "sha256:<64 hex>" payload digest (docs/CHAIN.md)
      name,           # str, may be empty
      description,    # str, may be empty
      time,           # UTC ISO-8601 ending in "Z", e.g. "2025-01-31T12:00:00Z"
      submitter,      # 64 lowercase hex Ed25519 public key
      prev_hash,      # 64 lowercase hex record hash of record index-1; 64 zeros for index 0
      reason,         # str, the revocation reason ("" for other kinds)
      signature ]     # 128 lowercase hex Ed25519 signature by ``submitter``

The submitter signs ``SIGNING_DOMAIN || msgpack(the first ten elements)``, so a signature
made for a record can never be replayed as a signature over something else.

The **leaf** of the Merkle tree is the whole encoding, signature included, and the **record
hash** is its RFC 9162 leaf hash ``SHA-256(0x00 || leaf)``; ``prev_hash`` links each record to
that hash of its predecessor (the hash chain).

Round-trip law: ``Record.decode(r.encode()) == r`` for every valid record ``r``, and
``Record.decode(b).encode() == b`` for every ``b`` that decodes: :meth:`Record.decode` refuses
any byte string that is not the canonical encoding of its own value.

Kinds: ``model`` (publish a store key) and ``revoke`` are understood; ``tx`` (a decision of
the transaction gate, ``name`` holding the transaction id, unique among ``tx`` records) and
``receipt`` (a score receipt) are the gate's (docs/GATE.md). Any other kind that is
syntactically valid (``[a-z][a-z0-9-]{0,31}``) is stored and verified like the rest but
flagged by ``kind_known == False``, so later kinds (score receipts, federated shares, data
blobs) can be logged without breaking older verifiers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack

from chain import merkle
from chain.errors import LogCorruptionError
from pyastore import keys
from pyastore.errors import PyastoreError, UsageError

FORMAT_VERSION = 1
SIGNING_DOMAIN = b"pyastore-chain-record-v1\n"
GENESIS_PREV_HASH = "0" * 64
_PLACEHOLDER_SUBJECT = "0" * 64  # stands in for a subject while the log's own fields are checked
KIND_MODEL = "model"
KIND_REVOKE = "revoke"
KIND_PROCESS = "process"  # federated forests: a federation opens (docs/FEDERATED.md)
KIND_FIT = "fit"  # federated forests: a creator made a tree (one-tree container)
KIND_SHARE = "share"  # federated forests: a tree sent from one agent to another
KIND_STATUS = "status"  # federated forests: an agent's phase in a round
FEDERATION_KINDS = frozenset({KIND_PROCESS, KIND_FIT, KIND_SHARE, KIND_STATUS})
KIND_BLOB = "blob"  # a ciphertext in a content-addressed store (vertical exchange)
KIND_TX = "tx"  # the transaction gate: one decision; name = the transaction id (docs/GATE.md)
KIND_RECEIPT = "receipt"  # a signed score receipt (docs/GATE.md)
KNOWN_KINDS = (
    frozenset({KIND_MODEL, KIND_REVOKE, KIND_BLOB, KIND_TX, KIND_RECEIPT}) | FEDERATION_KINDS
)
MAX_NAME = 256
MAX_DESCRIPTION = 4096
MAX_REASON = 1024
MAX_ENCODED = 16384

_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


class RecordError(LogCorruptionError):
    """A record value or encoding that breaks the rules above."""


def is_subject(text: object) -> bool:
    """True for a store key (64 lowercase hex) or a ``sha256:<64 hex>`` payload digest."""
    return keys.is_store_key(text) or keys.is_payload_digest(text)


def parse_subject(text: object, error: type[PyastoreError] = UsageError) -> str:
    """A subject as a person or caller gives it, in its stored form; ``error`` if it is none.

    Blanks around it are dropped and hex is lowercased. ``sha256:<hex>`` stays a payload
    digest: the prefix is never stripped to make a store key of it (see docs/CHAIN.md).
    """
    candidate = text.strip().lower() if isinstance(text, str) else ""
    if not is_subject(candidate):
        raise error(
            f"{text!r} is not a store key (64 hex characters) or a payload digest "
            "(sha256:<64 hex>)"
        )
    return candidate


def _check_text(value: object, field: str, limit: int) -> None:
    if type(value) is not str:
        raise RecordError(f"record field {field!r} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise RecordError(f"record field {field!r} is longer than {limit} characters")


@dataclass(frozen=True)
class Record:
    """One log entry. See the module docstring for the fields and the encoding."""

    index: int
    kind: str
    subject: str
    name: str
    description: str
    time: str
    submitter: str
    prev_hash: str
    reason: str
    signature: str

    def __post_init__(self) -> None:
        if type(self.index) is not int or self.index < 0:
            raise RecordError(f"record index must be a non-negative int, not {self.index!r}")
        if type(self.kind) is not str or not _KIND.fullmatch(self.kind):
            raise RecordError(f"record kind {self.kind!r} is not a valid kind name")
        if not is_subject(self.subject):
            raise RecordError(
                f"record subject {self.subject!r} is neither a store key (64 lowercase hex) "
                "nor 'sha256:<64 lowercase hex>'"
            )
        _check_text(self.name, "name", MAX_NAME)
        _check_text(self.description, "description", MAX_DESCRIPTION)
        _check_text(self.reason, "reason", MAX_REASON)
        if type(self.time) is not str or not _TIME.fullmatch(self.time):
            raise RecordError(f"record time {self.time!r} is not UTC ISO-8601 ending in 'Z'")
        if type(self.submitter) is not str or not keys.is_public_key_hex(self.submitter):
            raise RecordError("record field 'submitter' must be 64 lowercase hex")
        if type(self.prev_hash) is not str or not keys.is_hex(
            self.prev_hash, keys.SHA256_HEX_LENGTH
        ):
            raise RecordError("record field 'prev_hash' must be 64 lowercase hex")
        if type(self.signature) is not str or not (
            self.signature == "" or keys.is_signature_hex(self.signature)
        ):
            raise RecordError("record signature must be 128 lowercase hex (or empty if unsigned)")

    @property
    def kind_known(self) -> bool:
        return self.kind in KNOWN_KINDS

    def _fields(self) -> list[object]:
        return [
            FORMAT_VERSION,
            self.index,
            self.kind,
            self.subject,
            self.name,
            self.description,
            self.time,
            self.submitter,
            self.prev_hash,
            self.reason,
        ]

    def signing_message(self) -> bytes:
        """The bytes the submitter signs: the domain string, then every field but the signature."""
        fields: bytes = msgpack.packb(self._fields(), use_bin_type=True)
        return SIGNING_DOMAIN + fields

    def encode(self) -> bytes:
        """The canonical bytes (the Merkle leaf). Refuses an unsigned record."""
        cached: bytes | None = self.__dict__.get("_body")
        if cached is not None:
            return cached
        if not self.signature:
            raise RecordError(f"record {self.index} is not signed")
        encoded: bytes = msgpack.packb(self._fields() + [self.signature], use_bin_type=True)
        return encoded

    def record_hash(self) -> bytes:
        """SHA-256(0x00 || encode()): the Merkle leaf hash, also the hash-chain link."""
        cached: bytes | None = self.__dict__.get("_leaf")
        if cached is not None:
            return cached
        return merkle.leaf_hash(self.encode())

    def signed(self, signing_key: keys.SigningKey) -> Record:
        """This record with ``submitter`` set to the key's public key and signed by it."""
        unsigned = dataclasses.replace(
            self, submitter=keys.public_key_hex(signing_key.public_key), signature=""
        )
        signature = signing_key.sign(unsigned.signing_message())
        return dataclasses.replace(unsigned, signature=signature.hex())

    def with_signature(self, signature: str) -> Record:
        """This record with ``signature`` set, checking only that field (the others were
        checked when this value was made): the batch append's fast path to :meth:`signed`."""
        if type(signature) is not str or not keys.is_signature_hex(signature):
            raise RecordError("record signature must be 128 lowercase hex")
        signed = object.__new__(Record)
        signed.__dict__.update(self.__dict__)
        signed.__dict__["signature"] = signature
        signed.__dict__.pop("_body", None)
        signed.__dict__.pop("_leaf", None)
        return signed

    @classmethod
    def sign_chain(
        cls,
        kind: str,
        drafts: Sequence[tuple[str, str, str, str]],
        *,
        index: int,
        prev_hash: str,
        time: str,
        signing_key: keys.SigningKey,
    ) -> list[Record]:
        """Records ``index, index + 1, ...`` of ``kind``, one per ``(subject, name,
        description, reason)``, each linked to the one before (the first to ``prev_hash``)
        and signed by ``signing_key``: what ``Record(...).signed(key)`` in a loop gives,
        with the encoding and record hash of each computed once and kept on the record.

        The log's own fields (``index``, ``kind``, ``time``, ``prev_hash``) are checked once;
        each draft's fields as ``Record`` checks them. The group-commit path of the log.
        """
        first = cls(index=index, kind=kind, subject=_PLACEHOLDER_SUBJECT, name="", description="",
                    time=time, submitter=keys.public_key_hex(signing_key.public_key),
                    prev_hash=prev_hash, reason="", signature="")
        submitter = first.submitter
        packer = msgpack.Packer(use_bin_type=True)
        pack = packer.pack
        sign = signing_key.sign
        sha256 = hashlib.sha256
        records: list[Record] = []
        for subject, name, description, reason in drafts:
            if not is_subject(subject):
                raise RecordError(
                    f"record subject {subject!r} is neither a store key (64 lowercase hex) "
                    "nor 'sha256:<64 lowercase hex>'"
                )
            _check_text(name, "name", MAX_NAME)
            _check_text(description, "description", MAX_DESCRIPTION)
            _check_text(reason, "reason", MAX_REASON)
            fields = pack([FORMAT_VERSION, index, kind, subject, name, description, time,
                           submitter, prev_hash, reason])
            signature = sign(SIGNING_DOMAIN + fields).hex()
            # An array of 10 (0x9a) grows to 11 (0x9b) by appending the signature.
            body = b"\x9b" + fields[1:] + pack(signature)
            leaf = sha256(merkle.LEAF_PREFIX + body).digest()
            record = object.__new__(cls)
            record.__dict__.update(
                index=index, kind=kind, subject=subject, name=name, description=description,
                time=time, submitter=submitter, prev_hash=prev_hash, reason=reason,
                signature=signature, _body=body, _leaf=leaf)
            records.append(record)
            index, prev_hash = index + 1, leaf.hex()
        return records

    def signature_valid(self) -> bool:
        if not self.signature:
            return False
        return keys.verify(
            bytes.fromhex(self.submitter), self.signing_message(), bytes.fromhex(self.signature)
        )

    @classmethod
    def decode(cls, data: bytes) -> Record:
        """Parse canonical bytes; a :class:`RecordError` for anything else."""
        data = bytes(data)
        if len(data) > MAX_ENCODED:
            raise RecordError(f"encoded record is {len(data)} bytes (limit {MAX_ENCODED})")
        try:
            value = msgpack.unpackb(
                data, raw=False, use_list=True, strict_map_key=True, max_bin_len=0,
                max_map_len=0, max_ext_len=0,
            )
        except Exception as exc:  # msgpack raises several unrelated exception types
            raise RecordError(f"encoded record is not valid MessagePack: {exc}") from None
        if type(value) is not list or len(value) != 11:
            raise RecordError("encoded record is not an array of 11 fields")
        if type(value[0]) is not int or value[0] != FORMAT_VERSION:
            raise RecordError(
                f"record format version {value[0]!r} is not supported (expected {FORMAT_VERSION})"
            )
        record = cls(*value[1:])
        if record.encode() != data:
            raise RecordError("encoded record is not in canonical form")
        return record
