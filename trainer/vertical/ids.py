"""Customer pseudonyms: a keyed hash (HMAC-SHA256) of each customer ID.

The data parties share one secret, the *ID key*; each replaces every customer ID by
``HMAC-SHA256(key, "pyastore-vertical-id-v1\\n" || id)`` before anything leaves it, so raw IDs
never reach the store, the log, or the host. The parties compute the same pseudonym for the
same customer and the host joins representations on pseudonyms alone. Without the key nobody
can test a guessed ID against a pseudonym (customer IDs are often small integers, which a
plain hash would not hide).

The ID is taken as the text of the CSV cell with surrounding blanks removed: both parties
must write a customer's ID the same way (``"17"`` and ``"017"`` are different customers).

Key file: one line ``vertical-id-secret:<64 lowercase hex>`` (32 random bytes), mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from pyastore.errors import KeyFileError

ID_SECRET_PREFIX = "vertical-id-secret:"
PSEUDONYM_DOMAIN = b"pyastore-vertical-id-v1\n"
PSEUDONYM_BYTES = 32
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class IdKey:
    """The parties' shared ID secret. ``pseudonym`` is a pure function of (key, id)."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise KeyFileError("an ID key is 32 bytes")

    def __repr__(self) -> str:  # never print the secret
        return "IdKey(<secret>)"

    def pseudonym(self, customer_id: str) -> bytes:
        """The 32-byte pseudonym of one customer ID (its text, blanks stripped)."""
        text = str(customer_id).strip().encode("utf-8")
        return hmac.new(self.secret, PSEUDONYM_DOMAIN + text, hashlib.sha256).digest()

    @classmethod
    def generate(cls) -> IdKey:
        return cls(os.urandom(32))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdKey:
        from pyastore.keys import read_key_text

        path = Path(path)
        text = read_key_text(path, "ID key file").strip()
        body = text[len(ID_SECRET_PREFIX):] if text.startswith(ID_SECRET_PREFIX) else ""
        if len(body) != 64 or not _HEX.issuperset(body):
            raise KeyFileError(f"{path}: not an ID key (expected one line "
                               f"'{ID_SECRET_PREFIX}<64 lowercase hex>')")
        return cls(bytes.fromhex(body))

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the key file (mode 0600 from creation); refuses to overwrite."""
        path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(ID_SECRET_PREFIX + self.secret.hex() + "\n")
        return path
