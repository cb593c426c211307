"""The verifiable log: the API behind ``pyastore chain ...``.

A :class:`Log` is an append-only sequence of signed :class:`~chain.records.Record` values,
linked by a hash chain and hashed into an RFC 9162 Merkle tree, with signed checkpoints over
that tree. Typical use (server side)::

    log = Log.init("models.log", "log.key", origin="example.com/models")
    log.append_model(store_key, "fraud-xgb", "weekly refit", SigningKey.load("me.key"))
    bundle = log.prove(store_key)            # ProofBundle; bundle.to_bytes() -> file
    log.verify()                             # recompute everything, raise at the first bad index

Where the log's secret key lives: never in the log file. ``Log.init`` records the public key
(which every checkpoint is verified against) and, when the key was given as a file path, that
file's absolute path in the log's metadata. Operations that sign (``checkpoint``, ``prove``)
use, in order: the key passed to the call, the key passed to ``Log.open``/``Log.init``, the
remembered path. A key whose public key is not the log's is refused. ``prove`` without any
key available falls back to the latest stored checkpoint that covers the record.

Policies enforced on append (and re-checked by :meth:`Log.verify`):

* a store key is published (``model``) at most once; a second publish is refused naming the
  index that holds the first;
* a ``revoke`` needs an earlier publish of the key, at most one revoke per key, signed by the
  publisher's key or by the log's own key (the operator);
* a transaction id is decided at most once: :meth:`Log.append_tx_batch` answers a second
  ``tx`` for an id (or, for a ``tx`` without an id, for the same subject) with the index of
  the first instead of appending it, looking ids up in the storage's index (``tx_index``).

Where the records live: an SQLite file (``chain.storage``) for a path, a PostgreSQL schema
(``chain.storage_pg``) for a ``postgresql://`` URL; the log's bytes are the same on both.

Thread safety: a ``Log`` wraps one database connection; use one per thread or process. Many
processes (on many hosts, with PostgreSQL) may append at once: appends serialize on the tip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from chain import checkpoint as checkpoints
from chain import merkle
from chain.errors import DuplicateRecordError, LogCorruptionError, ProofError, RevokedError
from chain.proof import ProofBundle, ProofEntry, Verdict
from chain.records import (
    GENESIS_PREV_HASH,
    KIND_MODEL,
    KIND_REVOKE,
    KIND_TX,
    Record,
    RecordError,
    parse_subject,
)
from chain.storage import AppendContext, SQLiteStorage, Storage, StoredCheckpoint
from chain.storage_pg import PostgresStorage, is_postgres_url, url_stem
from pyastore import keys
from pyastore.errors import KeyFileError, LogError, UsageError

_ORIGIN_BAD = re.compile(r"[\s+\x00-\x1f\x7f]")


def utc_now() -> str:
    """The current UTC time as ISO-8601 with a ``Z``, second precision."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class KeyStatus:
    """The log's records about one store key (``None`` where there is none)."""

    store_key: str
    published: Record | None
    revoked: Record | None


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a :meth:`Log.verify` that found nothing wrong."""

    size: int
    root_hash: bytes
    models: int
    revocations: int
    unknown_kind_indices: tuple[int, ...]
    checkpoints_checked: int
    transactions: int = 0


class TxDraft(NamedTuple):
    """A ``tx`` record to append (:meth:`Log.append_tx_batch`), before it has an index.

    ``tx_id`` is the transaction id (the record's name; "" when the transaction had no
    readable id), ``subject`` the ``sha256:`` digest of its canonical bytes, ``description``
    and ``reason`` as docs/GATE.md defines them for the gate. (A named tuple: the gate makes
    one per transaction, and a tuple is made in a fraction of a frozen dataclass's time.)
    """

    tx_id: str
    subject: str
    description: str
    reason: str


@dataclass(frozen=True)
class TxOutcome:
    """What became of one draft: its new ``record``, or ``duplicate_of``, the index of the
    ``tx`` record that already holds its id (then nothing was appended for it)."""

    draft: TxDraft
    record: Record | None
    duplicate_of: int | None


def _load_signing_key(key: keys.SigningKey | str | os.PathLike[str]) -> keys.SigningKey:
    if isinstance(key, keys.SigningKey):
        return key
    return keys.SigningKey.load(key)


def default_origin(path: Path, public_key: bytes) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem) or "log"
    return f"pyastore.local/{stem}-{public_key.hex()[:8]}"


class Log:
    """An open log. Create with :meth:`init`, open with :meth:`open`; see the module doc."""

    def __init__(self, storage: Storage, signing_key: keys.SigningKey | None = None):
        self.storage = storage
        self._signing_key = signing_key
        if signing_key is not None:
            self._check_log_key(signing_key, "the given key")

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        log_signing_key: keys.SigningKey | str | os.PathLike[str],
        *,
        origin: str | None = None,
    ) -> Log:
        """Create a new, empty log file; refuses to overwrite anything."""
        key_path = None
        if not isinstance(log_signing_key, keys.SigningKey):
            key_path = str(Path(log_signing_key).absolute())
        signing_key = _load_signing_key(log_signing_key)
        postgres = is_postgres_url(path)
        location = str(path) if postgres else ""
        path = Path(url_stem(location)) if postgres else Path(path)
        if origin is None:
            origin = default_origin(path, signing_key.public_key)
        if not origin or _ORIGIN_BAD.search(origin):
            raise UsageError(
                f"log origin {origin!r} must be non-empty, without spaces, '+' or control "
                "characters (e.g. example.com/models)"
            )
        create = PostgresStorage.create if postgres else SQLiteStorage.create
        storage: Storage = create(
            location if postgres else path,  # type: ignore[arg-type]
            origin=origin,
            log_public_key=signing_key.public_key,
            log_key_path=key_path,
            created=utc_now(),
        )
        return cls(storage, signing_key)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        log_key: keys.SigningKey | str | os.PathLike[str] | None = None,
        readonly: bool = False,
    ) -> Log:
        """Open an existing log. ``LogError`` when the file is not a log of a known version."""
        storage: Storage = (
            PostgresStorage.open(str(path), readonly=readonly) if is_postgres_url(path)
            else SQLiteStorage.open(path, readonly=readonly)
        )
        try:
            return cls(storage, None if log_key is None else _load_signing_key(log_key))
        except BaseException:
            storage.close()
            raise

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- identity ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self.storage.meta.origin

    @property
    def public_key(self) -> bytes:
        return self.storage.meta.log_public_key

    @property
    def size(self) -> int:
        return self.storage.count()

    def _check_log_key(self, key: keys.SigningKey, source: str) -> None:
        if key.public_key != self.public_key:
            raise KeyFileError(
                f"{source} is not this log's key (log public key {self.public_key.hex()}, "
                f"key has {key.public_key.hex()})"
            )

    def signing_key(
        self, key: keys.SigningKey | str | os.PathLike[str] | None = None
    ) -> keys.SigningKey:
        """The log's signing key: the one given here, at open, or the remembered path."""
        if key is not None:
            loaded = _load_signing_key(key)
            source = "the given key" if isinstance(key, keys.SigningKey) else str(key)
            self._check_log_key(loaded, source)
            return loaded
        if self._signing_key is not None:
            return self._signing_key
        remembered = self.storage.meta.log_key_path
        if remembered is None:
            raise KeyFileError(
                "this log does not remember where its key is; pass the log key (--key LOGKEY)"
            )
        loaded = keys.SigningKey.load(remembered)
        self._check_log_key(loaded, remembered)
        self._signing_key = loaded
        return loaded

    # -- appending ---------------------------------------------------------------------------

    def _append(
        self, make: Callable[[AppendContext], Record], submitter: keys.SigningKey
    ) -> Record:
        def build(context: AppendContext) -> Record:
            unsigned = make(context)
            return unsigned.signed(submitter)

        record, _ = self.storage.append(build)
        return record

    @staticmethod
    def _new_record(context: AppendContext, **fields: str) -> Record:
        try:
            return Record(
                index=context.index,
                prev_hash=context.prev_hash,
                submitter="0" * 64,
                signature="",
                **fields,
            )
        except RecordError as exc:
            raise UsageError(str(exc)) from None

    def _status_in(self, storage: Storage, subject: str) -> KeyStatus:
        published = revoked = None
        for stored in storage.find_by_subject(subject):
            record = stored.record()
            if record.kind == KIND_MODEL and published is None:
                published = record
            elif record.kind == KIND_REVOKE and revoked is None:
                revoked = record
        return KeyStatus(subject, published, revoked)

    def append_model(
        self,
        store_key: str,
        name: str,
        description: str,
        submitter: keys.SigningKey,
        *,
        time: str | None = None,
    ) -> Record:
        """Publish a store key. Refuses a key the log already holds."""
        subject = parse_subject(store_key)
        when = time or utc_now()

        def make(context: AppendContext) -> Record:
            existing = self._status_in(context.storage, subject).published
            if existing is not None:
                raise DuplicateRecordError(
                    f"store key {subject} is already published in this log at index "
                    f"{existing.index} ({existing.name!r}, {existing.time}); "
                    "a key is published once",
                    index=existing.index,
                )
            return self._new_record(
                context, kind=KIND_MODEL, subject=subject, name=name,
                description=description, time=when, reason="",
            )

        return self._append(make, submitter)

    def revoke(
        self, store_key: str, reason: str, submitter: keys.SigningKey, *, time: str | None = None
    ) -> Record:
        """Revoke a published key; only its publisher or the log key may do so, once."""
        subject = parse_subject(store_key)
        if not reason or not reason.strip():
            raise UsageError("a revocation needs a reason (--reason)")
        when = time or utc_now()
        log_key_hex = self.public_key.hex()
        submitter_hex = submitter.public_key.hex()

        def make(context: AppendContext) -> Record:
            status = self._status_in(context.storage, subject)
            if status.published is None:
                raise LogError(
                    f"store key {subject} is not published in this log; nothing to revoke"
                )
            if status.revoked is not None:
                raise DuplicateRecordError(
                    f"store key {subject} is already revoked at index {status.revoked.index}",
                    index=status.revoked.index,
                )
            if submitter_hex not in (status.published.submitter, log_key_hex):
                raise LogError(
                    f"only the publisher ({status.published.submitter}) or the log key may "
                    f"revoke {subject}; this key is {submitter_hex}"
                )
            return self._new_record(
                context, kind=KIND_REVOKE, subject=subject, name=status.published.name,
                description="", time=when, reason=reason,
            )

        return self._append(make, submitter)

    def append_record(
        self,
        kind: str,
        subject: str,
        submitter: keys.SigningKey,
        *,
        name: str = "",
        description: str = "",
        time: str | None = None,
    ) -> Record:
        """Append a record of another kind (receipts, shares, blobs); no policy is applied."""
        if kind in (KIND_MODEL, KIND_REVOKE, KIND_TX):
            raise UsageError(f"use append_model / revoke / append_tx_batch for {kind!r} records")
        subject = parse_subject(subject)
        when = time or utc_now()
        return self._append(
            lambda context: self._new_record(
                context, kind=kind, subject=subject, name=name, description=description,
                time=when, reason="",
            ),
            submitter,
        )

    def append_tx_batch(
        self,
        drafts: Sequence[TxDraft],
        submitter: keys.SigningKey,
        *,
        time: str | None = None,
    ) -> list[TxOutcome]:
        """Append one ``tx`` record per new transaction, all in ONE durable commit.

        Inside the write lock, each draft whose id the log already holds (or that repeats an
        id earlier in the batch; id-less drafts: the same subject) becomes a duplicate outcome
        pointing at the first record; the others are signed by ``submitter`` and chained. When
        this returns, every appended record is durable; if it raises, nothing was appended.
        """
        when = time or utc_now()
        outcomes: list[TxOutcome] = []

        def build(context: AppendContext) -> list[Record]:
            outcomes.clear()
            duplicate_of: list[int | None] = []  # per draft: the first record of its id
            seen_ids = context.storage.tx_indices(d.tx_id for d in drafts if d.tx_id)
            seen_subjects: dict[str, int] = {}  # drafts without an id, in this batch
            fresh: list[TxDraft] = []
            index = context.index
            for draft in drafts:
                seen = seen_ids if draft.tx_id else seen_subjects
                key = draft.tx_id or draft.subject
                first = seen.get(key)
                if first is None and not draft.tx_id:
                    first = self._first_tx(context.storage, draft)
                duplicate_of.append(first)
                if first is not None:
                    continue
                fresh.append(draft)
                seen[key] = index
                index += 1
            try:
                records = Record.sign_chain(
                    KIND_TX, [(d.subject, d.tx_id, d.description, d.reason) for d in fresh],
                    index=context.index, prev_hash=context.prev_hash, time=when,
                    signing_key=submitter)
            except RecordError as exc:
                raise UsageError(str(exc)) from None
            made = iter(records)
            outcomes.extend(TxOutcome(draft, next(made) if first is None else None, first)
                            for draft, first in zip(drafts, duplicate_of))
            return records

        self.storage.append_batch(build)
        return list(outcomes)

    @staticmethod
    def _first_tx(storage: Storage, draft: TxDraft) -> int | None:
        if draft.tx_id:
            return storage.tx_index(draft.tx_id)
        return storage.tx_subject_index(draft.subject)

    def tx(self, tx_id: str) -> Record | None:
        """The ``tx`` record deciding transaction ``tx_id``, or None."""
        index = self.storage.tx_index(tx_id)
        return None if index is None else self.record(index)

    def prove_index(
        self, index: int, signing_key: keys.SigningKey | str | os.PathLike[str] | None = None
    ) -> ProofBundle:
        """A proof bundle for the record at ``index`` (any kind, e.g. a ``tx`` decision): the
        record and its inclusion proof in a fresh checkpoint (the log key is needed), or in
        the latest stored checkpoint covering it. ``revocations`` is empty."""
        record = self.record(index)
        signed = self._checkpoint_covering(index, signing_key)
        return ProofBundle(signed.text, self._entry(record, signed.size), ())

    def _checkpoint_covering(
        self, index: int, signing_key: keys.SigningKey | str | os.PathLike[str] | None
    ) -> checkpoints.SignedCheckpoint:
        """A fresh checkpoint when the log key is available, else the latest stored one,
        which must cover record ``index``."""
        try:
            return self.checkpoint(signing_key)
        except KeyFileError:
            if signing_key is not None:
                raise
            latest = self.storage.latest_checkpoint()
            if latest is None or latest.size <= index:
                raise LogError(
                    f"no checkpoint covers record {index} and the log key is not available to "
                    "sign one; run 'pyastore chain checkpoint LOG --key LOGKEY'"
                ) from None
            return checkpoints.parse(latest.note)

    # -- reading -----------------------------------------------------------------------------

    def record(self, index: int) -> Record:
        return self.storage.get(index).record()

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        for stored in self.storage.iterate(start, stop):
            yield stored.record()

    def status(self, store_key: str) -> KeyStatus:
        return self._status_in(self.storage, parse_subject(store_key))

    def root(self, size: int | None = None) -> bytes:
        current = self.size
        size = current if size is None else size
        if not 0 <= size <= current:
            raise UsageError(f"tree size {size} is outside 0..{current}")
        return merkle.root_hash(self.storage, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise UsageError(f"no record {index} in a tree of size {size} (log size {self.size})")
        return merkle.inclusion_proof(self.storage, index, size)

    def consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof that the tree of ``new_size`` extends ``old_size``."""
        current = self.size
        new_size = current if new_size is None else new_size
        if not 0 <= old_size <= new_size <= current:
            raise UsageError(
                f"no consistency proof from size {old_size} to {new_size} (log size {current})"
            )
        return merkle.consistency_proof(self.storage, old_size, new_size)

    # -- checkpoints and proofs ----------------------------------------------------------------

    def checkpoint(
        self, signing_key: keys.SigningKey | str | os.PathLike[str] | None = None
    ) -> checkpoints.SignedCheckpoint:
        """Sign (and remember) a checkpoint for the current tree size."""
        key = self.signing_key(signing_key)
        size = self.size
        latest = self.storage.latest_checkpoint()
        if latest is not None and latest.size == size:
            return checkpoints.parse(latest.note)
        root = merkle.root_hash(self.storage, size)
        signed = checkpoints.sign(checkpoints.Checkpoint(self.origin, size, root), key)
        self.storage.put_checkpoint(size, root, signed.text, utc_now())
        return signed

    def _entry(self, record: Record, size: int) -> ProofEntry:
        stored = self.storage.get(record.index)
        return ProofEntry(
            record.index,
            stored.body,
            tuple(merkle.inclusion_proof(self.storage, record.index, size)),
        )

    def prove(
        self, store_key: str, signing_key: keys.SigningKey | str | os.PathLike[str] | None = None
    ) -> ProofBundle:
        """A self-contained proof bundle for a published store key (see :mod:`chain.proof`).

        The checkpoint is a fresh one for the current size when the log key is available,
        else the latest stored checkpoint covering the record. Revocations up to the
        checkpoint's size are included (a revoked key still gets a bundle: it proves the
        revocation).
        """
        status = self.status(store_key)
        if status.published is None:
            raise LogError(f"store key {status.store_key} is not published in this log")
        signed = self._checkpoint_covering(status.published.index, signing_key)
        size = signed.size
        revocations: tuple[ProofEntry, ...] = ()
        if status.revoked is not None and status.revoked.index < size:
            revocations = (self._entry(status.revoked, size),)
        return ProofBundle(signed.text, self._entry(status.published, size), revocations)

    def recheck(self, verdict: Verdict) -> KeyStatus:
        """Online check of an offline :class:`Verdict` against this (newer) log.

        Proves the log grew consistently from the verdict's checkpoint (same origin and log
        key, consistency proof from its size to the current size), then looks for a
        revocation made since. Raises ``ProofError`` or ``RevokedError``.
        """
        tree = verdict.checkpoint
        if tree.origin != self.origin:
            raise ProofError(
                f"proof is for log {tree.origin!r}, this log is {self.origin!r}",
                expected=self.origin,
                computed=tree.origin,
            )
        size = self.size
        if tree.size > size:
            raise ProofError(
                f"proof's checkpoint has tree size {tree.size} but this log has only {size} "
                "records: the log was truncated or this is another log",
                expected=f"<= {size}",
                computed=tree.size,
            )
        merkle.verify_consistency(
            tree.size, size, tree.root_hash, self.root(size), self.consistency(tree.size, size)
        )
        status = self.status(verdict.store_key)
        published = status.published
        if published is None or published.record_hash() != verdict.record.record_hash():
            raise ProofError(
                f"store key {verdict.store_key}: the log's record differs from the proof's"
            )
        if status.revoked is not None:
            late = (
                " after the proof's checkpoint (the proof is stale)"
                if status.revoked.index >= tree.size
                else ""
            )
            raise RevokedError(
                f"store key {verdict.store_key} was revoked at log index {status.revoked.index}"
                f"{late} ({status.revoked.time}): {status.revoked.reason!r}",
                index=status.revoked.index,
                reason=status.revoked.reason,
            )
        return status

    # -- auditing ----------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Recompute every record, link, signature, leaf hash, tree node and checkpoint.

        Raises :class:`LogCorruptionError` naming the first bad index; returns a report.
        """
        with self.storage.snapshot():  # concurrent appends must not look like corruption
            return self._verify()

    def _verify(self) -> VerifyReport:
        storage = self.storage
        log_key_hex = self.public_key.hex()
        stored_checkpoints = storage.checkpoints()
        wanted_sizes = {c.size for c in stored_checkpoints}
        roots_at: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        accumulator = merkle.RootAccumulator()
        published: dict[str, tuple[int, str]] = {}
        revoked: set[str] = set()
        unknown: list[int] = []
        models = revocations = transactions = indexed_ids = indexed_subjects = 0
        prev_hash = GENESIS_PREV_HASH
        expected = 0
        for stored in storage.iterate():
            index = expected
            if stored.index != index:
                raise LogCorruptionError(
                    f"record {index} is missing (the next stored record has index {stored.index})",
                    index=index,
                )
            record = stored.record()
            if record.index != index:
                raise LogCorruptionError(
                    f"record {index}: the row holds the record for index {record.index} "
                    "(rows reordered or replaced)",
                    index=index,
                )
            if (stored.kind, stored.subject) != (record.kind, record.subject):
                raise LogCorruptionError(
                    f"record {index}: row columns (kind {stored.kind!r}, subject {stored.subject}) "
                    f"disagree with the record (kind {record.kind!r}, subject {record.subject})",
                    index=index,
                )
            if record.prev_hash != prev_hash:
                raise LogCorruptionError(
                    f"record {index}: hash chain broken: prev_hash is {record.prev_hash}, but "
                    f"the hash of record {index - 1} is {prev_hash}",
                    index=index,
                )
            computed = merkle.leaf_hash(stored.body)
            if stored.leaf_hash != computed:
                raise LogCorruptionError(
                    f"record {index}: stored leaf hash {stored.leaf_hash.hex()} but the record "
                    f"hashes to {computed.hex()}",
                    index=index,
                )
            if not record.signature_valid():
                raise LogCorruptionError(
                    f"record {index}: submitter signature is invalid "
                    f"(submitter {record.submitter})",
                    index=index,
                )
            self._check_policy(record, published, revoked, log_key_hex)
            if record.kind == KIND_MODEL:
                models += 1
            elif record.kind == KIND_REVOKE:
                revocations += 1
            elif record.kind == KIND_TX:
                transactions += 1
                if record.name:
                    indexed_ids += 1
                    self._check_tx_id(record, storage.tx_index(record.name))
                else:
                    indexed_subjects += 1
                    self._check_tx_subject(record, storage.tx_subject_index(record.subject))
            elif not record.kind_known:
                unknown.append(index)
            for level, position, value in accumulator.push(computed):
                stored_value = storage.stored_node(level, position)
                if stored_value != value:
                    first, last = position << level, ((position + 1) << level) - 1
                    shown = "missing" if stored_value is None else stored_value.hex()
                    raise LogCorruptionError(
                        f"tree node (level {level}, records {first}..{last}) is {shown}, "
                        f"computed {value.hex()}",
                        index=last,
                    )
            prev_hash = computed.hex()
            expected += 1
            if expected in wanted_sizes:
                roots_at[expected] = accumulator.root()
        size = expected
        if storage.count() != size:
            raise LogCorruptionError(
                f"the log reports {storage.count()} records but {size} were read", index=size
            )
        nodes_expected = size - bin(size).count("1")
        if storage.node_count() != nodes_expected:
            raise LogCorruptionError(
                f"the tree node table has {storage.node_count()} rows, expected {nodes_expected}",
                index=None,
            )
        if storage.tx_id_count() != indexed_ids:
            raise LogCorruptionError(
                f"the transaction id index has {storage.tx_id_count()} entries, but the log "
                f"holds {indexed_ids} tx record(s) with an id",
                index=None,
            )
        if storage.tx_subject_count() != indexed_subjects:
            raise LogCorruptionError(
                f"the index of transactions without an id has {storage.tx_subject_count()} "
                f"entries, but the log holds {indexed_subjects} tx record(s) without an id",
                index=None,
            )
        for stored_checkpoint in stored_checkpoints:
            self._check_stored_checkpoint(stored_checkpoint, size, roots_at)
        return VerifyReport(
            size, accumulator.root(), models, revocations, tuple(unknown), len(stored_checkpoints),
            transactions,
        )

    @staticmethod
    def _check_tx_id(record: Record, indexed: int | None) -> None:
        """Each id decided once: the index must send the id to this very record."""
        if indexed == record.index:
            return
        if indexed is None:
            raise LogCorruptionError(
                f"record {record.index}: transaction id {record.name!r} is missing from the "
                "transaction id index",
                index=record.index,
            )
        raise LogCorruptionError(
            f"record {record.index}: second decision for transaction id {record.name!r} "
            f"(the index holds it at {indexed})",
            index=record.index,
        )

    @staticmethod
    def _check_tx_subject(record: Record, indexed: int | None) -> None:
        """A transaction without an id is decided once, by its subject."""
        if indexed == record.index:
            return
        if indexed is None:
            raise LogCorruptionError(
                f"record {record.index}: the transaction without an id {record.subject} is "
                "missing from the index of transactions without an id",
                index=record.index,
            )
        raise LogCorruptionError(
            f"record {record.index}: second decision for the transaction without an id "
            f"{record.subject} (the index holds it at {indexed})",
            index=record.index,
        )

    @staticmethod
    def _check_policy(
        record: Record, published: dict[str, tuple[int, str]], revoked: set[str], log_key_hex: str
    ) -> None:
        index = record.index
        if record.kind == KIND_MODEL:
            if record.subject in published:
                raise LogCorruptionError(
                    f"record {index}: second publish of store key {record.subject} (first at "
                    f"index {published[record.subject][0]})",
                    index=index,
                )
            published[record.subject] = (index, record.submitter)
        elif record.kind == KIND_REVOKE:
            first = published.get(record.subject)
            if first is None:
                raise LogCorruptionError(
                    f"record {index}: revokes store key {record.subject}, which was never "
                    "published",
                    index=index,
                )
            if record.subject in revoked:
                raise LogCorruptionError(
                    f"record {index}: second revocation of store key {record.subject}", index=index
                )
            if record.submitter not in (first[1], log_key_hex):
                raise LogCorruptionError(
                    f"record {index}: revocation of {record.subject} signed by "
                    f"{record.submitter}, neither the publisher nor the log key",
                    index=index,
                )
            revoked.add(record.subject)

    def _check_stored_checkpoint(
        self, stored: StoredCheckpoint, size: int, roots_at: dict[int, bytes]
    ) -> None:
        if stored.size > size:
            raise LogCorruptionError(
                f"the log signed a checkpoint for {stored.size} records but holds only {size}: "
                f"records {size}..{stored.size - 1} were removed",
                index=size,
            )
        try:
            signed = checkpoints.verify(stored.note, self.public_key, origin=self.origin)
        except ProofError as exc:
            raise LogCorruptionError(
                f"stored checkpoint for size {stored.size} does not verify: {exc}", index=None
            ) from None
        root = roots_at[stored.size]
        if signed.size != stored.size or signed.root_hash != root or stored.root != root:
            raise LogCorruptionError(
                f"stored checkpoint for size {stored.size} has root {signed.root_hash.hex()}, "
                f"but the records give {root.hex()}: history was rewritten before index "
                f"{stored.size}",
                index=None,
            )
