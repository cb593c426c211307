"""Where the log's records live: the :class:`Storage` interface and its SQLite backend.

The interface is what :class:`chain.log.Log` needs and nothing more, so a PostgreSQL
backend (shared, multi-writer deployments) can implement it without touching the log logic:

* ``meta`` -- format version, origin, log public key, path of the log's secret key file;
* ``append(build)`` -- one atomic append. The backend locks the tip, calls
  ``build(AppendContext)`` with the next index and the previous record hash, checks the
  returned record links to them, and commits record, leaf hash and new tree nodes together.
  ``build`` may raise to abort (a duplicate publish, for instance): nothing is written.
  Concurrent appenders, in threads or processes, serialize on the tip, so the log is one
  linear history;
* ``import_records`` -- the same for a batch of already-signed records in one transaction;
* ``append_batch(build)`` -- group commit: like ``append``, but ``build`` returns a list of
  records chaining from the tip (each links to the one before it), all written in ONE
  transaction with one durable commit; the hash chain and the subtree table come out exactly
  as that many single appends would leave them;
* ``tx_index(tx_id)`` -- the log index of the ``tx`` record holding a transaction id, or
  None: the storage keeps an index of the ids of every ``tx`` record it writes (whatever the
  append path), refuses a second record with the same id, and never needs the ids in memory;
* ``tx_subject_index(subject)`` -- the same for the ``tx`` records without an id (a
  transaction whose id could not be read is known by the digest of its bytes);
* reads: ``count``, ``get``, ``iterate``, ``find_by_subject`` (every record about a subject
  but the ``tx`` decisions, which ``tx_index``/``tx_subject_index`` find), ``node`` (perfect subtree
  hashes for :mod:`chain.merkle`), ``stored_node``, ``node_count``;
* signed checkpoints the log issued: ``put_checkpoint``, ``checkpoints``, ``latest_checkpoint``;
* ``snapshot()`` -- a context in which every read sees one state of the log (``verify``).

SQLite layout (one file, ``PRAGMA journal_mode=WAL``, ``PRAGMA synchronous=FULL`` so a
returned append survives power loss; ``BEGIN IMMEDIATE`` takes the write lock before the tip
is read, so two processes can never both append at the same index)::

    meta(key TEXT PRIMARY KEY, value TEXT)            format_version, origin, log_public_key,
                                                      log_key_path, created
    records(idx INTEGER PRIMARY KEY CHECK (idx >= 0), kind TEXT, subject TEXT,
            body BLOB (the canonical record bytes = the Merkle leaf),
            leaf_hash BLOB CHECK (length(leaf_hash) = 32))
    nodes(level INTEGER CHECK (level >= 1), idx INTEGER, hash BLOB, PRIMARY KEY (level, idx))
    checkpoints(size INTEGER PRIMARY KEY, root BLOB, note TEXT, created TEXT)
    tx_ids(id TEXT PRIMARY KEY, idx INTEGER)          transaction id -> index of its tx record
    tx_subjects(subject TEXT PRIMARY KEY, idx INTEGER) subject -> index, tx records without id

The subject index (``records_subject``) leaves out the ``tx`` records: their subjects are
digests of transactions, random keys whose B-tree inserts would dirty about one page of the
index per decision, an append cost that grows with the log; the gate finds its decisions by id
(``tx_ids``) and the few without an id by subject (``tx_subjects``).

``nodes`` holds every perfect subtree of two or more leaves, written by the append that
completes it (on average one per append), so proofs need O(log n) reads at any size. The
table is derived data: ``Log.verify`` recomputes and compares it. So are ``tx_ids`` (the name
field of every ``tx`` record with a non-empty name) and ``tx_subjects`` (the subject of every
``tx`` record with an empty name); a log created before them gets them, and the subject index
without its ``tx`` rows, when first opened for writing (:meth:`SQLiteStorage.open`).

Thread safety: a :class:`SQLiteStorage` object is one connection; use one per thread.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from chain import merkle
from chain.errors import DuplicateRecordError, LogCorruptionError
from chain.records import GENESIS_PREV_HASH, KIND_TX, Record, RecordError
from pyastore.errors import LogError, UsageError

FORMAT_VERSION = 1
_RECORD_COLUMNS = (
    "idx, CAST(kind AS BLOB), CAST(subject AS BLOB), CAST(body AS BLOB), CAST(leaf_hash AS BLOB)"
)
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 60000

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body BLOB NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX records_subject ON records (subject) WHERE kind <> 'tx';
CREATE TABLE nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
# Also run on every writable open, so a log made before the id index gets it.
_TX_IDS_SCHEMA = """CREATE TABLE IF NOT EXISTS tx_ids (
    id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL CHECK (idx >= 0)
) WITHOUT ROWID"""
_TX_SUBJECTS_SCHEMA = """CREATE TABLE tx_subjects (
    subject TEXT PRIMARY KEY,
    idx INTEGER NOT NULL CHECK (idx >= 0)
) WITHOUT ROWID"""
_SCHEMA += _TX_IDS_SCHEMA + ";\n" + _TX_SUBJECTS_SCHEMA + ";\n"


@dataclass(frozen=True)
class LogMeta:
    format_version: int
    origin: str
    log_public_key: bytes
    log_key_path: str | None
    created: str


@dataclass(frozen=True)
class StoredRecord:
    """One row as stored: the columns beside the body are what ``verify`` cross-checks."""

    index: int
    kind: str
    subject: str
    body: bytes
    leaf_hash: bytes

    def record(self) -> Record:
        try:
            return Record.decode(self.body)
        except RecordError as exc:
            raise LogCorruptionError(
                f"record {self.index}: stored bytes are not a valid record: {exc}",
                index=self.index,
            ) from None


@dataclass(frozen=True)
class AppendContext:
    """What an append's ``build`` callback sees, inside the write lock."""

    index: int
    prev_hash: str
    storage: Storage


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created: str


class Storage(Protocol):
    """The operations a log backend provides; see the module docstring."""

    @property
    def meta(self) -> LogMeta: ...

    def append(self, build: Callable[[AppendContext], Record]) -> tuple[Record, bytes]: ...

    def append_batch(
        self, build: Callable[[AppendContext], Sequence[Record]]
    ) -> list[tuple[Record, bytes]]: ...

    def tx_index(self, tx_id: str) -> int | None: ...

    def tx_indices(self, tx_ids: Iterable[str]) -> dict[str, int]: ...

    def tx_id_count(self) -> int: ...

    def tx_subject_index(self, subject: str) -> int | None: ...

    def tx_subject_count(self) -> int: ...

    def import_records(self, records: Iterable[Record]) -> int: ...

    def tip(self) -> tuple[int, str]: ...

    def count(self) -> int: ...

    def get(self, index: int) -> StoredRecord: ...

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]: ...

    def find_by_subject(self, subject: str) -> list[StoredRecord]: ...

    def node(self, level: int, index: int) -> bytes: ...

    def stored_node(self, level: int, index: int) -> bytes | None: ...

    def node_count(self) -> int: ...

    def put_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None: ...

    def checkpoints(self) -> list[StoredCheckpoint]: ...

    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    def snapshot(self) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


def _tip_nodes(
    get_node: Callable[[int, int], bytes], index: int, leaf: bytes
) -> list[tuple[int, int, bytes]]:
    """The perfect nodes that leaf ``index`` completes, as ``(level, idx, hash)``."""
    completed = []
    level, position, current = 0, index, leaf
    while position & 1:
        current = merkle.node_hash(get_node(level, position - 1), current)
        level += 1
        position >>= 1
        completed.append((level, position, current))
    return completed


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _database_errors(method: _Method) -> _Method:
    """Turn SQLite's own failures (disk full, I/O error, malformed file) into ``LogError``."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStorage, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged file can give either
            raise LogError(f"{self.path}: database error: {exc}") from None

    return cast(_Method, wrapper)


class SQLiteStorage:
    """The default backend: one SQLite file. See the module docstring for the layout."""

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path
        self._meta: LogMeta | None = None
        self._tx_ids_known: bool | None = None

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path, *, create: bool, readonly: bool = False) -> sqlite3.Connection:
        mode = "rwc" if create else ("ro" if readonly else "rw")
        uri = "file:" + _uri_path(path) + f"?mode={mode}"
        if readonly and not os.access(path.parent, os.W_OK):
            # A read-only medium (the edge device's case): SQLite cannot create the WAL index
            # beside the file, and nothing can change the file, so open it as immutable.
            uri += "&immutable=1"
        try:
            db = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not readonly:
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise LogError(f"{path}: not a pyastore log (SQLite says: {exc})") from None
        return db

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        origin: str,
        log_public_key: bytes,
        log_key_path: str | None,
        created: str,
    ) -> SQLiteStorage:
        path = Path(path)
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path}: already exists; refusing to overwrite it with a new log")
        if not path.parent.is_dir():
            raise UsageError(f"{path.parent}: no such directory")
        db = cls._connect(path, create=True)
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            rows = [
                ("format_version", str(FORMAT_VERSION)),
                ("origin", origin),
                ("log_public_key", bytes(log_public_key).hex()),
                ("created", created),
            ]
            if log_key_path is not None:
                rows.append(("log_key_path", log_key_path))
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            raise
        return cls(db, path)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> SQLiteStorage:
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            raise UsageError(f"{path}: no such log file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory, not a log file") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        if head != SQLITE_MAGIC:
            raise LogError(f"{path}: not a pyastore log (not an SQLite database)")
        storage = cls(cls._connect(path, create=False, readonly=readonly), path)
        try:
            storage._meta = storage._read_meta()
            if not readonly:
                storage._db.execute(_TX_IDS_SCHEMA)  # a log from before the id index
                storage._add_tx_subjects()
        except BaseException:
            storage.close()
            raise
        return storage

    @_database_errors
    def _add_tx_subjects(self) -> None:
        """Give a log from before ``tx_subjects`` that table, filled from its ``tx`` records
        without an id, and its subject index without the ``tx`` rows: one transaction."""
        if self._has_table("tx_subjects"):
            return
        self._begin_write()
        try:
            if not self._has_table("tx_subjects"):  # another process may have just done it
                self._db.execute(_TX_SUBJECTS_SCHEMA)
                rows = [(stored.subject, stored.index)
                        for stored in (self._row(row) for row in self._db.execute(
                            "SELECT " + _RECORD_COLUMNS + " FROM records WHERE kind = 'tx' "
                            "ORDER BY idx"))
                        if not stored.record().name]
                self._db.executemany(
                    "INSERT OR IGNORE INTO tx_subjects (subject, idx) VALUES (?, ?)", rows)
                self._db.execute("DROP INDEX IF EXISTS records_subject")
                self._db.execute(
                    "CREATE INDEX records_subject ON records (subject) WHERE kind <> 'tx'")
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _has_table(self, name: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _read_meta(self) -> LogMeta:
        try:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            self._db.execute("SELECT idx, kind, subject, body, leaf_hash FROM records LIMIT 0")
            self._db.execute("SELECT level, idx, hash FROM nodes LIMIT 0")
            self._db.execute("SELECT size, root, note, created FROM checkpoints LIMIT 0")
        except sqlite3.DatabaseError as exc:
            raise LogError(
                f"{self.path}: not a pyastore log (an SQLite database without the log's "
                f"tables: {exc})"
            ) from None
        version = rows.get("format_version")
        if version != str(FORMAT_VERSION):
            raise LogError(
                f"{self.path}: log format version {version!r} is not supported by this "
                f"pyastore (it reads version {FORMAT_VERSION})"
            )
        try:
            public_key = bytes.fromhex(rows["log_public_key"])
            origin = rows["origin"]
        except (KeyError, ValueError):
            raise LogError(f"{self.path}: log metadata is incomplete or damaged") from None
        if len(public_key) != 32 or not origin:
            raise LogError(f"{self.path}: log metadata is incomplete or damaged")
        return LogMeta(
            int(version), origin, public_key, rows.get("log_key_path"), rows.get("created", "")
        )

    @property
    def meta(self) -> LogMeta:
        if self._meta is None:
            self._meta = self._read_meta()
        return self._meta

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------

    def _tip(self) -> tuple[int, str]:
        """Next index and previous record hash. O(log n): gaps below the tip are left to
        ``Log.verify`` (a ``count(*)`` here would scan the table on every append)."""
        row = self._db.execute(
            "SELECT idx, CAST(leaf_hash AS BLOB) FROM records ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, GENESIS_PREV_HASH
        return row[0] + 1, bytes(row[1]).hex()

    def _insert(self, record: Record, index: int, prev_hash: str) -> bytes:
        if record.index != index or record.prev_hash != prev_hash:
            raise LogError(
                f"record built for index {record.index} after {record.prev_hash[:16]}..., but the "
                f"log tip is index {index} after {prev_hash[:16]}..."
            )
        body = record.encode()
        leaf = record.record_hash()
        self._db.execute(
            "INSERT INTO records (idx, kind, subject, body, leaf_hash) VALUES (?, ?, ?, ?, ?)",
            (index, record.kind, record.subject, body, leaf),
        )
        nodes = _tip_nodes(self.node, index, leaf)
        if nodes:
            self._db.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        self._index_tx_ids([record])
        return leaf

    def _index_tx_ids(self, records: Iterable[Record]) -> None:
        """Add the transaction ids of the ``tx`` records among ``records`` to ``tx_ids`` (the
        subjects of those without an id to ``tx_subjects``); a :class:`DuplicateRecordError`
        (nothing written) for an id the log already holds."""
        transactions = [r for r in records if r.kind == KIND_TX]
        rows = [(r.name, r.index) for r in transactions if r.name]
        unnamed = [(r.subject, r.index) for r in transactions if not r.name]
        if unnamed:
            try:
                self._db.executemany(
                    "INSERT INTO tx_subjects (subject, idx) VALUES (?, ?)", unnamed)
            except sqlite3.IntegrityError:
                for subject, index in unnamed:
                    first = self.tx_subject_index(subject)
                    if first is not None and first != index:
                        raise DuplicateRecordError(
                            f"a transaction without an id with subject {subject} is already "
                            f"decided at log index {first}", index=first) from None
                raise
        if not rows:
            return
        try:
            self._db.executemany("INSERT INTO tx_ids (id, idx) VALUES (?, ?)", rows)
        except sqlite3.IntegrityError:
            for tx_id, index in rows:
                first = self.tx_index(tx_id)
                if first is not None and first != index:
                    raise DuplicateRecordError(
                        f"transaction id {tx_id!r} is already decided at log index {first}",
                        index=first,
                    ) from None
            raise

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction: ``BEGIN IMMEDIATE`` (see :meth:`_begin_write`), COMMIT when
        the block ends, ROLLBACK (keeping the block's own error) when it raises."""
        self._begin_write()
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # keep the original error
                self._db.execute("ROLLBACK")
            raise

    def _begin_write(self) -> None:
        """``BEGIN IMMEDIATE``, retried with short random sleeps while another writer holds
        the lock. SQLite's own busy handler backs off to 100 ms sleeps, which lets one busy
        process starve the others; polling every millisecond or so keeps writers fair."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.0005
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() > deadline:
                        raise LogError(
                            f"{self.path}: log is busy: another process held the write lock for "
                            f"{BUSY_TIMEOUT_MS // 1000} s"
                        ) from None
                    time.sleep(random.uniform(0, delay))
                    delay = min(delay * 2, 0.004)
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @_database_errors
    def append(self, build: Callable[[AppendContext], Record]) -> tuple[Record, bytes]:
        """Append one record built under the write lock; returns it and its leaf hash."""
        with self._writing():
            index, prev_hash = self._tip()
            record = build(AppendContext(index, prev_hash, self))
            leaf = self._insert(record, index, prev_hash)
        return record, leaf

    @_database_errors
    def append_batch(
        self, build: Callable[[AppendContext], Sequence[Record]]
    ) -> list[tuple[Record, bytes]]:
        """Group commit: append the records ``build`` returns, in one transaction.

        ``build`` runs inside the write lock with the tip (as for :meth:`append`) and returns
        records that chain from it: the first has the tip's index and ``prev_hash``, each
        next one the following index and the record hash of the one before. Record rows,
        subtree nodes and transaction ids are written together and committed once (one
        durable sync for the whole batch); if ``build`` raises or a record does not chain,
        nothing is written. Returns each record with its leaf hash, in order.
        """
        with self._writing():
            index, prev_hash = self._tip()
            records = list(build(AppendContext(index, prev_hash, self)))
            frontier = merkle.RootAccumulator.resume(self, index)
            rows: list[tuple[int, str, str, bytes, bytes]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            appended: list[tuple[Record, bytes]] = []
            for record in records:
                if record.index != index or record.prev_hash != prev_hash:
                    raise LogError(
                        f"batch record built for index {record.index} after "
                        f"{record.prev_hash[:16]}..., but it would go at index {index} after "
                        f"{prev_hash[:16]}..."
                    )
                body = record.encode()
                leaf = record.record_hash()
                rows.append((index, record.kind, record.subject, body, leaf))
                node_rows.extend(frontier.push(leaf))
                appended.append((record, leaf))
                prev_hash, index = leaf.hex(), index + 1
            if rows:
                self._index_tx_ids(records)
                self._flush_import(rows, node_rows)
        return appended

    @_database_errors
    def import_records(self, records: Iterable[Record]) -> int:
        """Append signed records that already chain from the tip, in one transaction.

        For migrations and bulk loads. Each record must carry the next index and the
        previous record's hash, exactly as ``append`` would have produced. Returns the count.
        """
        with self._writing():
            index, prev_hash = self._tip()
            frontier = merkle.RootAccumulator.resume(self, index)
            start = index
            rows: list[tuple[int, str, str, bytes, bytes]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            for record in records:
                if record.index != index or record.prev_hash != prev_hash:
                    raise LogError(
                        f"imported record {record.index} does not chain onto index {index}"
                    )
                body = record.encode()
                leaf = record.record_hash()
                rows.append((index, record.kind, record.subject, body, leaf))
                node_rows.extend(frontier.push(leaf))
                self._index_tx_ids([record])
                prev_hash, index = leaf.hex(), index + 1
                if len(rows) >= 10000:
                    self._flush_import(rows, node_rows)
            self._flush_import(rows, node_rows)
        # Fold the (large) WAL into the database now, so the next ordinary append does not
        # pay for copying the whole import. Best effort: busy readers just postpone it.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return index - start

    def _flush_import(
        self,
        rows: list[tuple[int, str, str, bytes, bytes]],
        node_rows: list[tuple[int, int, bytes]],
    ) -> None:
        self._db.executemany(
            "INSERT INTO records (idx, kind, subject, body, leaf_hash) VALUES (?, ?, ?, ?, ?)", rows
        )
        self._db.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", node_rows)
        rows.clear()
        node_rows.clear()

    @_database_errors
    def put_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None:
        """Remember a signed checkpoint; a second one for the same size is kept only once."""
        with self._writing():
            self._db.execute(
                "INSERT OR IGNORE INTO checkpoints (size, root, note, created) VALUES (?, ?, ?, ?)",
                (size, root, note, created),
            )

    # -- reading ---------------------------------------------------------------------------

    @_database_errors
    def tip(self) -> tuple[int, str]:
        """The next index and the record hash of the last record (64 zeros when empty), as
        committed now: what an append would chain onto if nobody appends first."""
        return self._tip()

    @_database_errors
    def count(self) -> int:
        """The number of records (the tree size), i.e. the next index."""
        row = self._db.execute("SELECT max(idx) FROM records").fetchone()
        return 0 if row[0] is None else row[0] + 1

    @_database_errors
    def row_count(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM records").fetchone()[0]
        return count

    @staticmethod
    def _row(row: tuple[Any, ...]) -> StoredRecord:
        # Every column is read as a BLOB (see _RECORD_COLUMNS) and decoded here, so a row
        # whose column type was changed behind our back still reaches verify() and is
        # reported with its index instead of failing inside the SQLite driver.
        index = row[0]
        if type(index) is not int:
            raise LogCorruptionError(f"record row with a non-integer index {index!r}", index=None)
        if any(not isinstance(value, (bytes, bytearray, memoryview)) for value in row[1:5]):
            raise LogCorruptionError(f"record {index}: a stored column is missing (NULL) or "
                                     "not bytes", index=index)
        kind = bytes(row[1]).decode("utf-8", "replace")
        subject = bytes(row[2]).decode("utf-8", "replace")
        return StoredRecord(index, kind, subject, bytes(row[3]), bytes(row[4]))

    @_database_errors
    def get(self, index: int) -> StoredRecord:
        row = self._db.execute(
            "SELECT " + _RECORD_COLUMNS + " FROM records WHERE idx = ?", (index,)
        ).fetchone()
        if row is None:
            raise LogError(f"{self.path}: no record at index {index}")
        return self._row(row)

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]:
        """Records ``[start, stop)`` in index order, streamed (constant memory)."""
        end = 2**63 - 1 if stop is None else stop
        try:
            cursor = self._db.execute(
                "SELECT " + _RECORD_COLUMNS + " FROM records "
                "WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            )
            for row in cursor:
                yield self._row(row)
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged file can give either
            raise LogError(f"{self.path}: database error: {exc}") from None

    @_database_errors
    def find_by_subject(self, subject: str) -> list[StoredRecord]:
        """The records about ``subject`` in log order, but the ``tx`` decisions (see
        :meth:`tx_index` and :meth:`tx_subject_index`)."""
        return self._stored_where("subject = ? AND kind <> 'tx'", (subject,))

    @_database_errors
    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._db.execute(
                "SELECT CAST(leaf_hash AS BLOB) FROM records WHERE idx = ?", (index,)
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT CAST(hash AS BLOB) FROM nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        if row is None:
            raise LogCorruptionError(
                f"{self.path}: tree node (level {level}, index {index}) is missing; "
                "run 'pyastore chain verify'",
                index=index << level,
            )
        return bytes(row[0])

    @_database_errors
    def stored_node(self, level: int, index: int) -> bytes | None:
        row = self._db.execute(
            "SELECT CAST(hash AS BLOB) FROM nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        return None if row is None else bytes(row[0])

    @_database_errors
    def tx_index(self, tx_id: str) -> int | None:
        """The index of the ``tx`` record whose transaction id is ``tx_id``, or None."""
        if not self._has_tx_ids():
            return None
        row = self._db.execute("SELECT idx FROM tx_ids WHERE id = ?", (tx_id,)).fetchone()
        return None if row is None else int(row[0])

    @_database_errors
    def tx_indices(self, tx_ids: Iterable[str]) -> dict[str, int]:
        """``tx_index`` for many ids at once: the ids the log holds, with their indices."""
        wanted = list(dict.fromkeys(tx_ids))
        found: dict[str, int] = {}
        if not wanted or not self._has_tx_ids():
            return found
        for start in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
            part = wanted[start:start + 500]
            marks = ",".join("?" * len(part))
            for tx_id, index in self._db.execute(
                f"SELECT id, idx FROM tx_ids WHERE id IN ({marks})", part
            ):
                found[tx_id] = int(index)
        return found

    @_database_errors
    def tx_subject_index(self, subject: str) -> int | None:
        """The index of the ``tx`` record without an id whose subject is ``subject``, or
        None."""
        if not self._has_table("tx_subjects"):  # a log from before it, opened read-only
            for stored in self._stored_where("subject = ? AND kind = 'tx'", (subject,)):
                if not stored.record().name:
                    return stored.index
            return None
        row = self._db.execute(
            "SELECT idx FROM tx_subjects WHERE subject = ?", (subject,)).fetchone()
        return None if row is None else int(row[0])

    @_database_errors
    def tx_subject_count(self) -> int:
        if not self._has_table("tx_subjects"):
            return sum(1 for stored in self._stored_where("kind = 'tx'", ())
                       if not stored.record().name)
        count: int = self._db.execute("SELECT count(*) FROM tx_subjects").fetchone()[0]
        return count

    def _stored_where(self, condition: str, parameters: tuple[Any, ...]) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT " + _RECORD_COLUMNS + f" FROM records WHERE {condition} ORDER BY idx",
            parameters).fetchall()
        return [self._row(row) for row in rows]

    @_database_errors
    def tx_id_count(self) -> int:
        if not self._has_tx_ids():
            return 0
        count: int = self._db.execute("SELECT count(*) FROM tx_ids").fetchone()[0]
        return count

    def _has_tx_ids(self) -> bool:
        """False only for a log from before the id index, opened read-only."""
        if self._tx_ids_known is None:
            row = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tx_ids'"
            ).fetchone()
            self._tx_ids_known = row is not None
        return self._tx_ids_known

    @_database_errors
    def node_count(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM nodes").fetchone()[0]
        return count

    @_database_errors
    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._db.execute(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size"
        ).fetchall()
        return [StoredCheckpoint(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    @_database_errors
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._db.execute(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else StoredCheckpoint(row[0], bytes(row[1]), row[2], row[3])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same state of the log, even
        while other processes append (WAL keeps the snapshot)."""
        try:
            self._db.execute("BEGIN")
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged file can give either
            raise LogError(f"{self.path}: database error: {exc}") from None
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # keep the original error
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged file can give either
            raise LogError(f"{self.path}: database error: {exc}") from None


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.absolute()), safe="/")
