"""The content-addressed store that carries the exchange's ciphertexts.

A store maps a digest ``sha256:<64 lowercase hex>`` to the bytes that hash to it. Writers
``put`` bytes and get the digest back; readers ``get`` a digest and receive bytes that are
checked against it, so a store can be any untrusted place (a shared folder, an object
bucket): it can lose or corrupt a blob, never substitute one unnoticed. ``BlobStore`` is the
interface; ``DirectoryStore`` the default, a local folder with one file per blob named by the
hex digest, written atomically (temporary file, then rename) so that a reader never sees a
half-written blob.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pyastore.errors import UsageError
from trainer.vertical.errors import DigestMismatchError, MissingBlobError

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
MAX_BLOB_BYTES = 1 << 30


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex_of(digest: str) -> str:
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise UsageError(f"{digest!r} is not a digest (sha256:<64 lowercase hex>)")
    return match.group(1)


class BlobStore(Protocol):
    """What the exchange needs of a store (module docstring)."""

    def put(self, data: bytes) -> str:
        """Store ``data``; return its digest. Storing the same bytes twice is harmless."""

    def get(self, digest: str) -> bytes:
        """The bytes of ``digest``: ``MissingBlobError`` when absent, ``DigestMismatchError``
        when what is held does not hash to ``digest``."""

    def digests(self) -> Iterator[str]:
        """Every digest held, in no particular order."""


class DirectoryStore:
    """A ``BlobStore`` in a local folder: ``ROOT/<64 hex>`` per blob."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True):
        self.root = Path(root)
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{self.root}: cannot create the store folder: "
                                 f"{exc.strerror}") from None
        if not self.root.is_dir():
            raise UsageError(f"{self.root}: the store is not a folder")

    def path_of(self, digest: str) -> Path:
        return self.root / _hex_of(digest)

    def put(self, data: bytes) -> str:
        data = bytes(data)
        digest = digest_of(data)
        path = self.path_of(digest)
        if path.exists():
            return digest
        temporary = self.root / f".{path.name}.{os.getpid()}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise UsageError(f"{path}: cannot write to the store: {exc.strerror}") from None
        return digest

    def get(self, digest: str) -> bytes:
        path = self.path_of(digest)
        try:
            size = path.stat().st_size
            if size > MAX_BLOB_BYTES:
                raise DigestMismatchError(f"store blob {path}: {size} bytes is over the "
                                          f"{MAX_BLOB_BYTES}-byte limit")
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingBlobError(f"blob {digest} is announced but not in the store "
                                   f"{self.root}") from None
        except OSError as exc:
            raise MissingBlobError(f"store blob {path}: cannot read: {exc.strerror}") from None
        computed = digest_of(data)
        if computed != digest:
            raise DigestMismatchError(f"store blob {path}: its bytes hash to {computed}, "
                                      f"expected {digest} (altered in the store)")
        return data

    def digests(self) -> Iterator[str]:
        for path in sorted(self.root.iterdir()):
            if len(path.name) == 64 and not path.name.startswith("."):
                yield "sha256:" + path.name
