"""The crypto envelope: X25519 box keys and sealed boxes (PyNaCl / libsodium).

Every message of the exchange is sealed to its recipient's X25519 public key with a
libsodium sealed box (``crypto_box_seal``: an ephemeral key pair per message, X25519 +
XSalsa20-Poly1305). Only the recipient's secret key opens it, and any change to the
ciphertext makes opening fail. A sealed box says nothing about who sealed it: the sender is
authenticated by the Ed25519-signed ``blob`` record that announces the ciphertext in the log
(``trainer.vertical.exchange``).

Box keys are kept apart from the Ed25519 signing keys (one key, one purpose). Key files are
one line of text, like ``pyastore.keys``:

* ``NAME.box.pub`` -- ``x25519-public:<64 lowercase hex>``
* ``NAME.box.key`` -- ``x25519-secret:<64 lowercase hex>``, created with mode 0600

A key id is the SHA-256 of the raw 32-byte public key in lowercase hex: what a ``blob``
record names as the recipient.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pyastore import keys
from pyastore.errors import KeyFileError
from trainer.vertical.errors import DecryptionError

BOX_PUBLIC_PREFIX = "x25519-public:"
BOX_SECRET_PREFIX = "x25519-secret:"
_HEX = frozenset("0123456789abcdef")


def key_id(public_key: bytes) -> str:
    """The id of an X25519 public key: SHA-256 of its 32 bytes, lowercase hex."""
    return hashlib.sha256(bytes(public_key)).hexdigest()


def _parse(text: str, prefix: str, source: str) -> bytes:
    line = text.strip()
    other = BOX_SECRET_PREFIX if prefix == BOX_PUBLIC_PREFIX else BOX_PUBLIC_PREFIX
    if line.startswith(other):
        raise KeyFileError(f"{source}: holds an X25519 {other.split('-')[1][:-1]} key, expected "
                           f"the {prefix.split('-')[1][:-1]} key")
    body = line[len(prefix):] if line.startswith(prefix) else ""
    if len(body) != 64 or not _HEX.issuperset(body):
        raise KeyFileError(f"{source}: not a box key (expected one line '{prefix}<64 lowercase "
                           "hex>')")
    return bytes.fromhex(body)


def parse_box_public_key(text: str, source: str = "box public key") -> bytes:
    """The 32 bytes of an X25519 public key given as a key-file line."""
    return _parse(text, BOX_PUBLIC_PREFIX, source)


def _read(path: Path) -> str:
    return keys.read_key_text(path, "box key file")


def load_box_public_key(path: str | os.PathLike[str]) -> bytes:
    path = Path(path)
    return parse_box_public_key(_read(path), str(path))


@dataclass(frozen=True)
class BoxKey:
    """An X25519 key pair: ``secret`` opens what was sealed to ``public``."""

    secret: bytes

    @property
    def public(self) -> bytes:
        from nacl.public import PrivateKey

        return bytes(PrivateKey(self.secret).public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @classmethod
    def generate(cls) -> BoxKey:
        from nacl.public import PrivateKey

        return cls(bytes(PrivateKey.generate()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BoxKey:
        path = Path(path)
        return cls(_parse(_read(path), BOX_SECRET_PREFIX, str(path)))

    def open(self, ciphertext: bytes, what: str) -> bytes:
        """The plaintext of a box sealed to this key; ``DecryptionError`` naming ``what``."""
        from nacl.exceptions import CryptoError
        from nacl.public import PrivateKey, SealedBox

        try:
            return SealedBox(PrivateKey(self.secret)).decrypt(bytes(ciphertext))
        except CryptoError:
            raise DecryptionError(
                f"{what}: the sealed box does not open with key {self.key_id[:16]}...: the "
                "ciphertext was altered or was not sealed to this key") from None


def seal(plaintext: bytes, recipient_public_key: bytes) -> bytes:
    """``plaintext`` sealed to ``recipient_public_key`` (a fresh ephemeral key each call)."""
    from nacl.public import PublicKey, SealedBox

    return SealedBox(PublicKey(bytes(recipient_public_key))).encrypt(bytes(plaintext))


def write_box_key_files(base: str | os.PathLike[str]) -> tuple[Path, Path, BoxKey]:
    """Create ``BASE.box.key`` (mode 0600, never readable by others) and ``BASE.box.pub``;
    refuse to overwrite either."""
    base = Path(base)
    secret_path = base.with_name(base.name + ".box.key")
    public_path = base.with_name(base.name + ".box.pub")
    for path in (secret_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    key = BoxKey.generate()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for path, line, mode in ((secret_path, BOX_SECRET_PREFIX + key.secret.hex(), 0o600),
                             (public_path, BOX_PUBLIC_PREFIX + key.public.hex(), 0o644)):
        try:
            fd = os.open(path, flags, mode)
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(line + "\n")
    return secret_path, public_path, key
