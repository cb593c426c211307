"""Which signers a loader trusts.

Trusted Ed25519 public keys come from, in this order (all are combined):

1. the caller: ``trusted_keys=`` (raw 32 bytes, 64-hex strings or paths to ``.pub`` files),
   or ``--trust FILE`` on the command line (repeatable);
2. the environment: ``PYASTORE_TRUSTED_KEYS``, a ``os.pathsep``-separated list of ``.pub``
   paths or 64-hex keys;
3. the config directory: every ``*.pub`` file in ``$PYASTORE_CONFIG_DIR/trusted/``
   (default ``$XDG_CONFIG_HOME/pyastore/trusted/``, i.e. ``~/.config/pyastore/trusted/``).

A malformed entry in any of them is an error (``KeyFileError``), never silently skipped.
"""

from __future__ import annotations

import os

from pyastore.errors import KeyFileError
from pyastore.keys import PUBLIC_KEY_BYTES, is_public_key_hex, load_public_key, parse_public_key

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: `typing` stays off the device's import path
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Union

    # One trusted key as a caller gives it: raw bytes, key text (hex or a key line), or a path.
    KeySource = Union[bytes, bytearray, memoryview, str, os.PathLike[str]]

ENV_TRUSTED_KEYS = "PYASTORE_TRUSTED_KEYS"
ENV_CONFIG_DIR = "PYASTORE_CONFIG_DIR"


def config_dir() -> str:
    """The pyastore configuration directory (see the module docstring)."""
    explicit = os.environ.get(ENV_CONFIG_DIR)
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = xdg if xdg else os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "pyastore")


def _one_key(source: KeySource, origin: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        key = bytes(source)
        if len(key) != PUBLIC_KEY_BYTES:
            raise KeyFileError(f"{origin}: a raw public key is 32 bytes, got {len(key)}")
        return key
    text = os.fspath(source)
    stripped = text.strip()
    if is_public_key_hex(stripped.lower()) or stripped.startswith("ed25519-"):
        return parse_public_key(stripped, origin)
    return load_public_key(text)


def resolve(
    trusted_keys: Iterable[KeySource] | None = None, *, use_defaults: bool = True
) -> set[bytes]:
    """The set of trusted public keys (32 raw bytes each)."""
    keys: set[bytes] = set()
    for source in trusted_keys or ():
        keys.add(_one_key(source, "trusted key"))
    if not use_defaults:
        return keys
    env = os.environ.get(ENV_TRUSTED_KEYS, "")
    for entry in env.split(os.pathsep):
        if entry.strip():
            keys.add(_one_key(entry.strip(), ENV_TRUSTED_KEYS))
    folder = os.path.join(config_dir(), "trusted")
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".pub"):
                keys.add(load_public_key(os.path.join(folder, name)))
    return keys
