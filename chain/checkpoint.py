"""Signed tree heads: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes.

A checkpoint is a short UTF-8 text (c2sp.org/tlog-checkpoint)::

    <origin>\\n
    <tree size, decimal, no leading zeros>\\n
    <base64 of the 32-byte RFC 9162 root hash>\\n
    [extension lines, each non-empty]

followed, as a signed note (c2sp.org/signed-note), by an empty line and signature lines::

    \\n
    \u2014 <key name> <base64(key ID (4 bytes, big-endian) || Ed25519 signature (64 bytes))>\\n

The signature is Ed25519 (RFC 8032) over the note text: every line up to and including the
last text newline, without the separating empty line. The key ID is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)`` (signature type 0x01 = Ed25519).
pyastore logs use their origin as the key name (the spec's SHOULD). The verifier key string
``<name>+<hex key ID>+<base64(0x01 || public key)>`` is what other note tools accept.

Verification follows the note rules as Go's ``note.Open`` applies them: signatures from keys
other than the trusted one are ignored; a note with no line claiming the trusted key (name
and key ID) is refused; the first line that claims it decides -- it verifies, or the whole
note is refused -- and later lines claiming the same key are ignored (repeats are dropped).

Deviations from the specs, all on the strict side: a note is at most 64 KiB with at most 16
signature lines (the signed-note minimum a verifier must accept); the root hash must be
exactly 32 bytes in canonical base64; ``\\r`` and other control characters are refused
anywhere. Nothing else differs, so these notes verify with Go's ``golang.org/x/mod/sumdb/note``
given the verifier key string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from chain.errors import ProofError
from chain.merkle import HASH_SIZE
from pyastore import keys

SIGNATURE_TYPE_ED25519 = b"\x01"
EM_DASH_PREFIX = "\u2014 "
MAX_NOTE_BYTES = 65536
MAX_SIGNATURES = 16

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _valid_name(name: str) -> bool:
    return bool(name) and not any(ch.isspace() or ch == "+" for ch in name)


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key with this name."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + SIGNATURE_TYPE_ED25519 + bytes(public_key)
    ).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The signed-note verifier key string ``name+hexkeyid+base64(0x01||key)``."""
    encoded = base64.b64encode(SIGNATURE_TYPE_ED25519 + bytes(public_key)).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def _strict_b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ProofError(f"checkpoint: {what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ProofError(f"checkpoint: {what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """The note text of a checkpoint. Round-trip: ``Checkpoint.parse_body(c.body()) == c``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise ProofError("checkpoint: origin must be one non-empty line")
        if _CONTROL.search(self.origin) or self.origin != self.origin.strip():
            raise ProofError("checkpoint: origin has control characters or outer spaces")
        if type(self.size) is not int or not 0 <= self.size < 2**64:
            raise ProofError(f"checkpoint: tree size {self.size!r} is not a uint64")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ProofError("checkpoint: root hash must be 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line or _CONTROL.search(line):
                raise ProofError("checkpoint: extension lines must be non-empty single lines")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "\n".join(lines + list(self.extensions)) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise ProofError("checkpoint: note text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ProofError(
                f"checkpoint: expected origin, size and root lines, got {len(lines)} line(s)"
            )
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise ProofError(f"checkpoint: tree size {size_text!r} is not a decimal number")
        root = _strict_b64(root_text, "root hash")
        if len(root) != HASH_SIZE:
            raise ProofError(f"checkpoint: root hash is {len(root)} bytes, expected {HASH_SIZE}")
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    key_name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{EM_DASH_PREFIX}{self.key_name} {blob}\n"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed signed checkpoint (signatures not yet verified unless said so)."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    @property
    def text(self) -> str:
        return self.checkpoint.body() + "\n" + "".join(s.line() for s in self.signatures)

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash

    @property
    def origin(self) -> str:
        return self.checkpoint.origin


def sign(
    checkpoint: Checkpoint, signing_key: keys.SigningKey, key_name: str | None = None
) -> SignedCheckpoint:
    """Sign ``checkpoint`` with the log key; the key name defaults to the origin."""
    name = checkpoint.origin if key_name is None else key_name
    if not _valid_name(name):
        raise ProofError(f"checkpoint: key name {name!r} is empty or has spaces or '+'")
    signature = signing_key.sign(checkpoint.body().encode("utf-8"))
    note_signature = NoteSignature(name, key_id(name, signing_key.public_key), signature)
    return SignedCheckpoint(checkpoint, (note_signature,))


def parse(text: str | bytes) -> SignedCheckpoint:
    """Parse a signed checkpoint strictly, without checking any signature."""
    if isinstance(text, bytes):
        if len(text) > MAX_NOTE_BYTES:
            raise ProofError(f"checkpoint: note is {len(text)} bytes (limit {MAX_NOTE_BYTES})")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ProofError("checkpoint: note is not valid UTF-8") from None
    if not isinstance(text, str):
        raise ProofError("checkpoint: note must be text")
    if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise ProofError(f"checkpoint: note is larger than {MAX_NOTE_BYTES} bytes")
    if _CONTROL.search(text):
        raise ProofError("checkpoint: note contains control characters")
    if not text.endswith("\n"):
        raise ProofError("checkpoint: note is truncated (no final newline)")
    split = text.rfind("\n\n")
    if split < 0:
        raise ProofError("checkpoint: no empty line separates the text from the signatures")
    body, signature_block = text[: split + 1], text[split + 2 :]
    signature_lines = signature_block[:-1].split("\n") if signature_block else []
    if not signature_lines:
        raise ProofError("checkpoint: note has no signature lines")
    if len(signature_lines) > MAX_SIGNATURES:
        raise ProofError(f"checkpoint: more than {MAX_SIGNATURES} signature lines")
    signatures = []
    for line in signature_lines:
        if not line.startswith(EM_DASH_PREFIX):
            raise ProofError(f"checkpoint: malformed signature line {line[:40]!r}")
        parts = line[len(EM_DASH_PREFIX) :].split(" ")
        if len(parts) != 2 or not _valid_name(parts[0]):
            raise ProofError(f"checkpoint: malformed signature line {line[:40]!r}")
        blob = _strict_b64(parts[1], f"signature of key {parts[0]!r}")
        if len(blob) < 5:
            raise ProofError(f"checkpoint: signature of key {parts[0]!r} is too short")
        signatures.append(NoteSignature(parts[0], blob[:4], blob[4:]))
    return SignedCheckpoint(Checkpoint.parse_body(body), tuple(signatures))


def verify(
    text: str | bytes,
    trusted_public_key: bytes,
    *,
    key_name: str | None = None,
    origin: str | None = None,
) -> SignedCheckpoint:
    """Parse ``text`` and check it is signed by ``trusted_public_key``.

    ``key_name`` defaults to the checkpoint's origin; ``origin``, when given, must match.
    Returns the parsed checkpoint; raises :class:`ProofError` otherwise.
    """
    signed = parse(text)
    if origin is not None and signed.origin != origin:
        raise ProofError(
            f"checkpoint is for log {signed.origin!r}, expected log {origin!r}",
            expected=origin,
            computed=signed.origin,
        )
    name = signed.origin if key_name is None else key_name
    wanted_id = key_id(name, trusted_public_key)
    message = signed.checkpoint.body().encode("utf-8")
    for note_signature in signed.signatures:
        if note_signature.key_name != name or note_signature.key_id != wanted_id:
            continue  # another key's signature (a witness, a rotated key): ignored
        if not keys.verify(trusted_public_key, message, note_signature.signature):
            raise ProofError(
                f"checkpoint signature by the trusted log key {name}+{wanted_id.hex()} is invalid "
                "(the checkpoint was altered or forged)"
            )
        return signed
    present = ", ".join(f"{s.key_name}+{s.key_id.hex()}" for s in signed.signatures)
    raise ProofError(
        f"checkpoint is not signed by the trusted log key {name}+{wanted_id.hex()} "
        f"(signed by: {present}): unknown log key",
        expected=f"{name}+{wanted_id.hex()}",
        computed=present,
    )
