"""Publishing an exported container: append its store key to the verifiable log and write the
proof bundle beside it (``MODEL.astore.proof``), so a device can check offline that the
container was published and not revoked (``pyastore verify MODEL --log-key LOG.pub``)."""

from __future__ import annotations

import os

from pyastore import format as fmt


def publish(log_path: str, container_path: str, store_key: str, name: str, description: str,
            submitter) -> str:
    """Append ``store_key`` to the log at ``log_path`` (signed by ``submitter``, a
    ``pyastore.keys.SigningKey``), prove it, and write the bundle; returns the bundle path.
    The log signs its checkpoint with the log key it was created with."""
    from chain.log import Log

    with Log.open(log_path) as log:
        log.append_model(store_key, name, description, submitter)
        bundle = log.prove(store_key)
    proof_path = os.fspath(container_path) + ".proof"
    fmt.write_file(proof_path, bundle.to_bytes())
    return proof_path
