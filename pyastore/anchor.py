"""Checking on the device that a container's store key is anchored in the verifiable log.

Offline: the proof bundle (``MODEL.astore.proof`` by default, written by
``pyastore chain prove`` or ``pyastore-train --chain``) must show the store key in a checkpoint
signed by the trusted log key, with no revocation in that tree. Online, when the log file
itself is reachable (``log_path``), the log must extend that checkpoint consistently and hold no
later revocation. Failures raise ``LogError`` subclasses (exit code 7).
"""

from __future__ import annotations

import os

from pyastore.errors import LogError, UsageError
from pyastore.files import read_bytes


def default_proof_path(container_path: str) -> str:
    return os.fspath(container_path) + ".proof"


def check_anchored(store_key: str, proof_path: str, log_public_key: bytes,
                   log_path: str | None = None) -> str:
    """Verify the bundle (and the log when given); return a one-line summary."""
    from chain.proof import verify_bundle

    if not os.path.lexists(proof_path):
        raise LogError(f"{proof_path}: no proof bundle (create one with: pyastore chain prove LOG "
                       f"{store_key} -o {proof_path})")
    bundle = read_bytes(proof_path, what="proof bundle")
    verdict = verify_bundle(bundle, store_key, log_public_key)
    summary = verdict.summary()
    if log_path is not None:
        from chain.log import Log
        from chain.storage_pg import is_postgres_url

        if not is_postgres_url(log_path) and not os.path.exists(log_path):
            raise UsageError(f"{log_path}: no such log")
        with Log.open(log_path, readonly=True) as log:
            log.recheck(verdict)
            size = log.size
        summary += f"; online check against {log_path} (tree size {size}): still not revoked"
    return summary
