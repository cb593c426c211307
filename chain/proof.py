"""Proof bundles: a self-contained file proving a store key is anchored in a log.

A bundle is UTF-8 JSON (at most 1 MiB), every field required, no other field allowed::

    {
      "format": "pyastore-proof-bundle-v1",
      "checkpoint": "<signed checkpoint text, see chain.checkpoint>",
      "record": {"index": 5, "leaf": "<base64 canonical record bytes>",
                 "inclusion_proof": ["<64 hex>", ...]},
      "revocations": [ {"index": ..., "leaf": ..., "inclusion_proof": [...]}, ... ]
    }

``record`` is the ``model`` record publishing the key, ``inclusion_proof`` its RFC 9162
audit path in the checkpoint's tree. ``revocations`` lists every ``revoke`` record for the
key inside that tree, each with its own inclusion proof.

:func:`verify_bundle` is pure and offline: bytes and keys in, a :class:`Verdict` or a
:class:`~pyastore.errors.LogError` out. It checks, in order: the checkpoint's syntax and its
signature by the trusted log key; the record's encoding, that its subject is the store key
asked about, and its submitter signature; the inclusion proof against the checkpoint root;
then each revocation (same checks) -- a valid one raises :class:`~chain.errors.RevokedError`.

Revocation semantics. A Merkle tree proves presence, not absence: an empty ``revocations``
list means "not revoked as of tree size N, as stated by whoever built the bundle". The
verdict therefore carries ``status_as_of_size``. A bundle made before a revoke still
verifies offline -- the device cannot see the future -- so a device that knows a newer tree
size (``min_tree_size``) refuses older bundles as stale, and a device that can reach the log
calls :meth:`chain.log.Log.recheck`, which proves the log grew consistently from the bundle's
checkpoint and looks for revocations made since.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from chain import checkpoint as checkpoints
from chain import merkle
from chain.errors import ProofError, RevokedError
from chain.records import KIND_MODEL, KIND_REVOKE, Record, RecordError, parse_subject
from pyastore import keys

BUNDLE_FORMAT = "pyastore-proof-bundle-v1"
MAX_BUNDLE_BYTES = 1 << 20
MAX_REVOCATIONS = 64


@dataclass(frozen=True)
class ProofEntry:
    """One record of the log with its inclusion proof in the bundle's checkpoint tree."""

    index: int
    leaf: bytes
    inclusion_proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "leaf": base64.b64encode(self.leaf).decode("ascii"),
            "inclusion_proof": [h.hex() for h in self.inclusion_proof],
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> ProofEntry:
        if not isinstance(value, dict) or set(value) != {"index", "leaf", "inclusion_proof"}:
            raise ProofError(
                f"proof bundle: {where} must have exactly index, leaf, inclusion_proof"
            )
        index, leaf, path = value["index"], value["leaf"], value["inclusion_proof"]
        if type(index) is not int or index < 0:
            raise ProofError(f"proof bundle: {where}.index must be a non-negative integer")
        if not isinstance(leaf, str):
            raise ProofError(f"proof bundle: {where}.leaf must be base64 text")
        try:
            leaf_bytes = base64.b64decode(leaf.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ProofError(f"proof bundle: {where}.leaf is not valid base64") from None
        if not isinstance(path, list) or len(path) > 64:
            raise ProofError(f"proof bundle: {where}.inclusion_proof must be a list of hashes")
        hashes = []
        for position, item in enumerate(path):
            if not keys.is_hex(item, keys.SHA256_HEX_LENGTH):
                raise ProofError(
                    f"proof bundle: {where}.inclusion_proof[{position}] is not 64 lowercase hex"
                )
            hashes.append(bytes.fromhex(item))
        return cls(index, leaf_bytes, tuple(hashes))


@dataclass(frozen=True)
class ProofBundle:
    """Round-trip: ``ProofBundle.from_bytes(b.to_bytes()) == b``."""

    checkpoint: str
    record: ProofEntry
    revocations: tuple[ProofEntry, ...] = ()

    def to_bytes(self) -> bytes:
        value = {
            "format": BUNDLE_FORMAT,
            "checkpoint": self.checkpoint,
            "record": self.record.to_json(),
            "revocations": [entry.to_json() for entry in self.revocations],
        }
        return (json.dumps(value, indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> ProofBundle:
        data = bytes(data)
        if len(data) > MAX_BUNDLE_BYTES:
            raise ProofError(f"proof bundle is {len(data)} bytes (limit {MAX_BUNDLE_BYTES})")
        if not data.strip():
            raise ProofError("proof bundle is empty")
        try:
            value = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProofError("proof bundle is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ProofError(
                f"proof bundle is truncated or not JSON ({exc.msg} at byte {exc.pos})"
            ) from None
        if not isinstance(value, dict):
            raise ProofError("proof bundle is not a JSON object")
        if value.get("format") != BUNDLE_FORMAT:
            raise ProofError(
                f"proof bundle format {value.get('format')!r} is not {BUNDLE_FORMAT!r}"
            )
        expected = {"format", "checkpoint", "record", "revocations"}
        if set(value) != expected:
            missing, extra = expected - set(value), set(value) - expected
            raise ProofError(
                f"proof bundle fields are wrong (missing: {sorted(missing)}, "
                f"unknown: {sorted(extra)})"
            )
        if not isinstance(value["checkpoint"], str):
            raise ProofError("proof bundle: checkpoint must be text")
        revocations = value["revocations"]
        if not isinstance(revocations, list) or len(revocations) > MAX_REVOCATIONS:
            raise ProofError("proof bundle: revocations must be a (short) list")
        return cls(
            value["checkpoint"],
            ProofEntry.from_json(value["record"], "record"),
            tuple(
                ProofEntry.from_json(item, f"revocations[{n}]")
                for n, item in enumerate(revocations)
            ),
        )


@dataclass(frozen=True)
class Verdict:
    """What a verified bundle establishes.

    The store key was published by ``record.submitter`` at log index ``record.index`` and
    is in the tree of ``checkpoint`` (signed by the trusted log key); no revocation of it is
    in that tree as far as the bundle shows -- the status holds as of ``status_as_of_size``.
    """

    store_key: str
    record: Record
    checkpoint: checkpoints.Checkpoint

    @property
    def status_as_of_size(self) -> int:
        return self.checkpoint.size

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    def summary(self) -> str:
        return (
            f"store key {self.store_key} is anchored in log {self.origin} at index "
            f"{self.record.index} (checkpoint size {self.checkpoint.size}); not revoked as of "
            f"tree size {self.checkpoint.size}"
        )


def _check_entry(entry: ProofEntry, tree: checkpoints.Checkpoint, what: str) -> Record:
    try:
        record = Record.decode(entry.leaf)
    except RecordError as exc:
        raise ProofError(f"proof bundle: {what} is not a valid log record: {exc}") from None
    if record.index != entry.index:
        raise ProofError(
            f"proof bundle: {what} claims index {entry.index} but the record says {record.index}",
            expected=record.index,
            computed=entry.index,
        )
    if not record.signature_valid():
        raise ProofError(
            f"proof bundle: {what} (log index {record.index}) has an invalid submitter signature"
        )
    if entry.index >= tree.size:
        raise ProofError(
            f"proof bundle: {what} has index {entry.index}, outside the checkpoint's tree of "
            f"size {tree.size}",
            expected=f"< {tree.size}",
            computed=entry.index,
        )
    try:
        merkle.verify_inclusion(
            entry.index, tree.size, merkle.leaf_hash(entry.leaf), entry.inclusion_proof,
            tree.root_hash,
        )
    except ProofError as exc:
        raise ProofError(
            f"proof bundle: {what} is not in the checkpoint's tree: {exc}",
            expected=exc.expected,
            computed=exc.computed,
        ) from None
    return record


def verify_bundle(
    bundle_bytes: bytes,
    store_key_hex: str,
    trusted_log_public_key: bytes,
    *,
    origin: str | None = None,
    min_tree_size: int | None = None,
) -> Verdict:
    """Check offline that ``store_key_hex`` is anchored, unrevoked, in a trusted checkpoint.

    ``origin`` pins the log identity when the device knows it. ``min_tree_size`` refuses a
    bundle whose checkpoint is older (smaller) than a tree size the device has already seen.
    Raises :class:`ProofError` (a ``LogError``) for any failure and :class:`RevokedError`
    when the bundle itself shows a revocation.
    """
    store_key = parse_subject(store_key_hex, ProofError)
    bundle = ProofBundle.from_bytes(bundle_bytes)
    signed = checkpoints.verify(bundle.checkpoint, trusted_log_public_key, origin=origin)
    tree = signed.checkpoint
    if min_tree_size is not None and tree.size < min_tree_size:
        raise ProofError(
            f"proof bundle is stale: its checkpoint has tree size {tree.size}, older than the "
            f"tree size {min_tree_size} already seen; fetch a fresh proof",
            expected=f">= {min_tree_size}",
            computed=tree.size,
        )
    record = _check_entry(bundle.record, tree, "record")
    if record.subject != store_key:
        raise ProofError(
            f"proof bundle is for store key {record.subject}, not for {store_key}",
            expected=store_key,
            computed=record.subject,
        )
    if record.kind != KIND_MODEL:
        raise ProofError(
            f"proof bundle's record is a {record.kind!r} record, not a model publish",
            expected=KIND_MODEL,
            computed=record.kind,
        )
    log_key_hex = bytes(trusted_log_public_key).hex()
    for number, entry in enumerate(bundle.revocations):
        revoke = _check_entry(entry, tree, f"revocations[{number}]")
        if revoke.kind != KIND_REVOKE or revoke.subject != store_key:
            raise ProofError(
                f"proof bundle: revocations[{number}] is a {revoke.kind!r} record for "
                f"{revoke.subject}, not a revocation of {store_key}"
            )
        if revoke.index <= record.index or revoke.submitter not in (record.submitter, log_key_hex):
            raise ProofError(
                f"proof bundle: revocations[{number}] (log index {revoke.index}) is not a "
                "revocation the log could have accepted (wrong order or submitter)"
            )
        raise RevokedError(
            f"store key {store_key} was revoked at log index {revoke.index} "
            f"({revoke.time}): {revoke.reason!r}",
            index=revoke.index,
            reason=revoke.reason,
        )
    return Verdict(store_key, record, tree)
