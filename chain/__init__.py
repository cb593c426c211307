"""The append-only verifiable log that anchors store keys.

Modules, each owning one thing:

* :mod:`chain.merkle` -- RFC 9162 hashing, inclusion/consistency proofs, pure verifiers;
* :mod:`chain.records` -- the :class:`Record` value and its canonical signed bytes;
* :mod:`chain.checkpoint` -- signed tree heads (C2SP tlog-checkpoint in a signed note);
* :mod:`chain.storage` -- the storage interface and the SQLite backend;
* :mod:`chain.log` -- :class:`Log`: init/open, append, revoke, checkpoint, prove, verify;
* :mod:`chain.proof` -- proof bundles and the offline :func:`verify_bundle` for devices.

``pyastore`` (the device runtime) imports only :mod:`chain.proof` and what it needs
(records, checkpoint, merkle): no SQLite on the verification path. The format is documented
in ``docs/CHAIN.md``.
"""

from __future__ import annotations

from chain.errors import (
    DuplicateRecordError,
    LogCorruptionError,
    ProofError,
    RevokedError,
)
from chain.proof import ProofBundle, Verdict, verify_bundle

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: `typing` stays off the device's import path
if TYPE_CHECKING:
    from chain.log import Log

__all__ = [
    "DuplicateRecordError",
    "LogCorruptionError",
    "ProofBundle",
    "ProofError",
    "RevokedError",
    "Verdict",
    "verify_bundle",
]


def __getattr__(name: str) -> type[Log]:
    if name == "Log":  # lazy: keeps sqlite3 and the storage code off the device's import path
        from chain.log import Log

        return Log
    raise AttributeError(f"module 'chain' has no attribute {name!r}")
