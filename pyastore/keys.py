"""Ed25519 key files, signature verification, and the text form of every hex value.

Key files are one line of text, so they can be read, diffed and pasted:

* ``NAME.pub``  -- ``ed25519-public:<64 lowercase hex>`` (the 32-byte public key)
* ``NAME.key``  -- ``ed25519-secret:<64 lowercase hex>`` (the 32-byte seed), mode 0600

A public key is also accepted as bare 64-character hex wherever a key is asked for
(``--trust``, ``PYASTORE_TRUSTED_KEYS``). Reading a secret key where a public one is
expected (or the reverse) is a ``KeyFileError`` naming the file, never a silent success.

The same module says what the hex text of every value pyastore and its log exchange looks
like -- store keys, payload digests, public keys, signatures, hashes -- so that the loader,
the trust list and the log (``chain``) all check it one way: :func:`is_hex`,
:func:`is_store_key`, :func:`is_payload_digest`, :func:`is_public_key_hex`,
:func:`is_signature_hex`.

Verification is on the device's hot path (a fresh process that loads one container), so
``verify`` calls libsodium's ``crypto_sign_open`` through PyNaCl's compiled
module directly when it is there (1-2 ms to import, against ~30 ms for ``nacl.signing``)
and falls back to the public ``nacl.bindings`` API otherwise; a test checks both agree.
Signing and key generation are server-side and use ``nacl.signing``.
"""

from __future__ import annotations

import os

from pyastore.errors import KeyFileError, UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: `typing` stays off the device's import path
if TYPE_CHECKING:
    from pathlib import Path

PUBLIC_PREFIX = "ed25519-public:"
SECRET_PREFIX = "ed25519-secret:"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SHA256_HEX_LENGTH = 64
DIGEST_PREFIX = "sha256:"
_HEX_DIGITS = frozenset("0123456789abcdef")


def is_hex(text: object, length: int) -> bool:
    """True for text of exactly ``length`` lowercase hex characters (the only spelling stored)."""
    return isinstance(text, str) and len(text) == length and _HEX_DIGITS.issuperset(text)


def is_store_key(text: object) -> bool:
    """True for a store key: a SHA-256, 64 lowercase hex characters.

    Every other SHA-256 value written as text (log record hashes, Merkle proof hashes) has
    the same form.
    """
    return is_hex(text, SHA256_HEX_LENGTH)


def is_payload_digest(text: object) -> bool:
    """True for ``sha256:<64 lowercase hex>``: the SHA-256 of a payload that is not a container.

    The prefix names the algorithm and keeps such digests apart from store keys, which are
    always bare hex where they are stored.
    """
    return (
        isinstance(text, str)
        and text.startswith(DIGEST_PREFIX)
        and is_hex(text[len(DIGEST_PREFIX):], SHA256_HEX_LENGTH)
    )


def is_public_key_hex(text: object) -> bool:
    """True for an Ed25519 public key (or seed) as text: 64 lowercase hex characters."""
    return is_hex(text, 2 * PUBLIC_KEY_BYTES)


def is_signature_hex(text: object) -> bool:
    """True for an Ed25519 signature as text: 128 lowercase hex characters."""
    return is_hex(text, 2 * SIGNATURE_BYTES)


def _parse_key_line(text: str, prefix: str, other_prefix: str, source: str) -> bytes:
    line = text.strip()
    if line.startswith(other_prefix):
        kind = "secret" if other_prefix == SECRET_PREFIX else "public"
        wanted = "public" if kind == "secret" else "secret"
        raise KeyFileError(f"{source}: is an Ed25519 {kind} key, expected a {wanted} key")
    body = line[len(prefix):] if line.startswith(prefix) else None
    if body is None and prefix == PUBLIC_PREFIX and is_public_key_hex(line.lower()):
        body = line.lower()
    if body is None or not is_public_key_hex(body):
        raise KeyFileError(
            f"{source}: not a pyastore key (expected one line '{prefix}<64 lowercase hex>')"
        )
    return bytes.fromhex(body)


def read_key_text(path: str | os.PathLike[str], what: str = "key file") -> str:
    """The ASCII text of a key file (any kind: signing, box, ID keys), or a ``KeyFileError``
    naming the path: missing, not a regular file, over 4096 bytes, or binary."""
    from pyastore.files import read_bytes

    data = read_bytes(path, what=what, error=KeyFileError, limit=4096)
    if len(data) > 4096:
        raise KeyFileError(f"{os.fspath(path)}: too large to be a {what} (over 4096 bytes)")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{os.fspath(path)}: not a {what} (binary content)") from None


def parse_public_key(text: str, source: str = "public key") -> bytes:
    """Return the 32 raw bytes of a public key given as a key-file line or bare hex."""
    return _parse_key_line(text, PUBLIC_PREFIX, SECRET_PREFIX, source)


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """Read a ``.pub`` file (or a file holding bare hex) and return the 32 raw key bytes."""
    path = os.fspath(path)
    return parse_public_key(read_key_text(path), path)


def load_secret_seed(path: str | os.PathLike[str]) -> bytes:
    """Read a ``.key`` file and return its 32-byte Ed25519 seed."""
    path = os.fspath(path)
    return _parse_key_line(read_key_text(path), SECRET_PREFIX, PUBLIC_PREFIX, path)


def public_key_hex(public_key: bytes) -> str:
    """The canonical text of a public key: 64 lowercase hex characters."""
    return bytes(public_key).hex()


def public_key_line(public_key: bytes) -> str:
    return PUBLIC_PREFIX + public_key_hex(public_key)


class SigningKey:
    """An Ed25519 signing key loaded from a ``.key`` file (server side)."""

    def __init__(self, seed: bytes):
        from nacl.signing import SigningKey as _NaclSigningKey

        if len(seed) != 32:
            raise KeyFileError("an Ed25519 seed is 32 bytes")
        self._key = _NaclSigningKey(bytes(seed))
        self.public_key: bytes = bytes(self._key.verify_key)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Load a ``.key`` file; warns (``SecurityWarning``) when others may read or write it."""
        seed = load_secret_seed(path)
        mode = os.stat(path).st_mode
        if mode & 0o077:
            import warnings

            from pyastore.errors import SecurityWarning

            warnings.warn(f"{os.fspath(path)}: the secret key file is readable or writable by "
                          f"others (mode {mode & 0o777:o}); chmod 600 it", SecurityWarning,
                          stacklevel=2)
        return cls(seed)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of ``message``."""
        return bytes(self._key.sign(bytes(message)).signature)


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` (never an existing file, never through a link) holding ``text``, flushed
    to disk; on any failure (a full disk...) remove what was created: no empty key file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        path.unlink()
        if isinstance(exc, OSError):
            raise KeyFileError(f"{path}: cannot write: {exc.strerror}") from None
        raise


def keygen(name: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create ``NAME.key`` (mode 0600) and ``NAME.pub``; refuse to overwrite either.

    Returns the two paths. The secret file is created with ``O_EXCL`` and mode 0600 from
    the start, so the secret is never readable by others, not even briefly.
    """
    from pathlib import Path

    base = Path(name)
    if base.suffix in (".key", ".pub"):
        base = base.with_suffix("")
    secret_path = base.with_name(base.name + ".key")
    public_path = base.with_name(base.name + ".pub")
    for path in (secret_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    if not secret_path.parent.is_dir():
        raise UsageError(f"{secret_path.parent}: no such directory")
    key = SigningKey.generate()
    _write_new(secret_path, SECRET_PREFIX + key.seed.hex() + "\n", 0o600)
    try:
        _write_new(public_path, public_key_line(key.public_key) + "\n", 0o644)
    except BaseException:
        secret_path.unlink()
        raise
    return secret_path, public_path


def _verify_fast(public_key: bytes, message: bytes, signature: bytes) -> bool | None:
    try:
        from nacl._sodium import ffi, lib  # compiled libsodium binding shipped by PyNaCl
    except ImportError:
        return None
    if lib.sodium_init() < 0:
        return None
    signed = signature + message
    opened = ffi.new("unsigned char[]", len(signed))
    opened_length = ffi.new("unsigned long long *")
    status: int = lib.crypto_sign_open(opened, opened_length, signed, len(signed), public_key)
    return status == 0


def _verify_public_api(public_key: bytes, message: bytes, signature: bytes) -> bool:
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    public_key, message, signature = bytes(public_key), bytes(message), bytes(signature)
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    verdict = _verify_fast(public_key, message, signature)
    if verdict is None:
        verdict = _verify_public_api(public_key, message, signature)
    return verdict
