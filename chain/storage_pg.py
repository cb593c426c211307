"""The PostgreSQL backend of the log: :class:`PostgresStorage`, for logs shared by many writers.

A log lives in one schema of one database, named by a libpq connection URL::

    postgresql://user@db.example.com/ledger                       schema "public"
    postgresql://user@db.example.com/ledger?options=-csearch_path%3Dmodels    schema "models"
    postgresql:///ledger?host=/run/postgresql                     Unix socket

It implements :class:`chain.storage.Storage` with the same tables, columns and meaning as the
SQLite backend, so the log's bytes -- records, leaf hashes, tree nodes, checkpoints and so
proofs -- are identical for the same sequence of appends (tested)::

    meta(key text PRIMARY KEY, value text)
    records(idx bigint PRIMARY KEY CHECK (idx >= 0), kind text, subject text, body bytea,
            leaf_hash bytea CHECK (octet_length(leaf_hash) = 32))
    nodes(level int CHECK (level >= 1), idx bigint, hash bytea, PRIMARY KEY (level, idx))
    checkpoints(size bigint PRIMARY KEY, root bytea, note text, created text)
    tx_ids(id text PRIMARY KEY, idx bigint)
    tx_subjects(subject text PRIMARY KEY, idx bigint)

The subject index leaves out the ``tx`` records, as in SQLite (see :mod:`chain.storage`).

One linear history under many writers on many hosts: every write runs in one READ COMMITTED
transaction that first takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``)
whose key is derived from the ``records`` table's OID, so it is one lock per log. Only then
is the tip read: the lock's holder sees every append committed before it, builds the record
on that tip and commits record, nodes and transaction ids together; the lock is released by
the commit or the rollback, also when a writer's connection dies. ``records.idx`` being the
primary key is the backstop: two writers could never both commit the same index. SERIALIZABLE
isolation would give the same history, but concurrent appenders always conflict on the tip,
so most of them would fail with a serialization error and retry, doing their signing work
again; the advisory lock queues them instead, in the server, without retries. Readers never
take it: ``snapshot()`` is a REPEATABLE READ, READ ONLY transaction.

Durability: each write commits with ``synchronous_commit = on`` (set for the session), so an
append that returned survives a server crash. A connection lost during an append raises
:class:`~pyastore.errors.LogError`: before the commit was sent, nothing was appended (the
server rolls the transaction back); a connection lost while committing is reported as an
append whose outcome is unknown (re-open the log and look).

psycopg 3 is imported when a ``postgresql://`` log is opened, never by ``import chain``.
Thread safety: one :class:`PostgresStorage` is one connection; use one per thread.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from chain import merkle
from chain.errors import DuplicateRecordError, LogCorruptionError
from chain.records import GENESIS_PREV_HASH, KIND_TX, Record
from chain.storage import (
    FORMAT_VERSION,
    AppendContext,
    LogMeta,
    StoredCheckpoint,
    StoredRecord,
    _tip_nodes,
)
from pyastore.errors import LogError, UsageError

URL_SCHEMES = ("postgresql://", "postgres://")
# The high 32 bits of the advisory lock key ("pyas"); the low 32 are the records table's OID.
_LOCK_NAMESPACE = 0x70796173
_PAGE_ROWS = 5000
_RECORD_COLUMNS = "idx, kind, subject, body, leaf_hash"

_TX_SUBJECTS_SCHEMA = """CREATE TABLE tx_subjects (
        subject text PRIMARY KEY,
        idx bigint NOT NULL CHECK (idx >= 0)
    )"""
_SCHEMA = (
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE records (
        idx bigint PRIMARY KEY CHECK (idx >= 0),
        kind text NOT NULL,
        subject text NOT NULL,
        body bytea NOT NULL,
        leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32)
    )""",
    "CREATE INDEX records_subject ON records (subject) WHERE kind <> 'tx'",
    """CREATE TABLE nodes (
        level integer NOT NULL CHECK (level >= 1),
        idx bigint NOT NULL CHECK (idx >= 0),
        hash bytea NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx)
    )""",
    """CREATE TABLE checkpoints (
        size bigint PRIMARY KEY CHECK (size >= 0),
        root bytea NOT NULL CHECK (octet_length(root) = 32),
        note text NOT NULL,
        created text NOT NULL
    )""",
    """CREATE TABLE tx_ids (
        id text PRIMARY KEY,
        idx bigint NOT NULL CHECK (idx >= 0)
    )""",
    _TX_SUBJECTS_SCHEMA,
)


def is_postgres_url(location: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) log location."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def url_stem(url: str) -> str:
    """A short name for the log at ``url`` (for a default origin): database[-schema]."""
    parts = urlsplit(url)
    name = parts.path.strip("/") or "log"
    schema = re.search(r"search_path(?:%3D|=)([A-Za-z0-9_]+)", parts.query)
    return f"{name}-{schema.group(1)}" if schema else name


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError("a postgresql:// log needs psycopg 3: pip install 'pyastore[postgresql]'"
                         ) from None
    return psycopg


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _database_errors(method: _Method) -> _Method:
    """PostgreSQL's failures (connection lost, server gone, disk full) as ``LogError``."""

    @functools.wraps(method)
    def wrapper(self: PostgresStorage, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except self._psycopg.Error as exc:
            raise self._log_error(exc) from None

    return cast(_Method, wrapper)


class PostgresStorage:
    """The PostgreSQL backend; see the module docstring."""

    def __init__(self, connection: Any, url: str):
        self._db = connection
        self._psycopg = _psycopg()
        self.path = display_url(url)
        self._meta: LogMeta | None = None
        self._lock_key: int | None = None
        self._committing = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def _connect(cls, url: str) -> Any:
        psycopg = _psycopg()
        try:
            db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise LogError(f"{display_url(url)}: cannot connect to the log database: "
                           f"{_first_line(exc)}") from None
        db.execute("SET synchronous_commit = on")
        return db

    @classmethod
    def create(cls, url: str, *, origin: str, log_public_key: bytes, log_key_path: str | None,
               created: str) -> PostgresStorage:
        storage = cls(cls._connect(url), url)
        try:
            storage._create(origin, log_public_key, log_key_path, created)
        except BaseException:
            storage.close()
            raise
        return storage

    @_database_errors
    def _create(self, origin: str, log_public_key: bytes, log_key_path: str | None,
                created: str) -> None:
        with self._db.transaction():
            schema = self._db.execute("SELECT current_schema()").fetchone()[0]
            if schema is None:  # the search path names a schema that does not exist yet
                wanted = self._db.execute("SHOW search_path").fetchone()[0].split(",")[0]
                wanted = wanted.strip().strip('"')
                if wanted.startswith("$") or not wanted:
                    raise UsageError(f"{self.path}: no schema to create the log in")
                self._db.execute(f'CREATE SCHEMA "{wanted.replace(chr(34), "")}"')
                schema = wanted
            exists = self._db.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name IN ('meta', 'records')", (schema,)).fetchone()
            if exists is not None:
                raise UsageError(f"{self.path}: schema {schema!r} already holds a log (or a "
                                 "table named meta or records); refusing to overwrite it")
            for statement in _SCHEMA:
                self._db.execute(statement)
            rows = [("format_version", str(FORMAT_VERSION)), ("origin", origin),
                    ("log_public_key", bytes(log_public_key).hex()), ("created", created)]
            if log_key_path is not None:
                rows.append(("log_key_path", log_key_path))
            with self._db.cursor() as cursor:
                cursor.executemany("INSERT INTO meta (key, value) VALUES (%s, %s)", rows)
        self._meta = self._read_meta()

    @classmethod
    def open(cls, url: str, *, readonly: bool = False) -> PostgresStorage:
        storage = cls(cls._connect(url), url)
        try:
            if readonly:
                storage._db.execute("SET default_transaction_read_only = on")
            storage._meta = storage._read_meta()
            if not readonly:
                storage._add_tx_subjects()
        except BaseException:
            storage.close()
            raise
        return storage

    @_database_errors
    def _add_tx_subjects(self) -> None:
        """Give a log from before ``tx_subjects`` that table, filled from its ``tx`` records
        without an id, and its subject index without the ``tx`` rows: one transaction."""
        if self._has_tx_subjects():
            return
        with self._write():
            if self._has_tx_subjects():  # another writer has just done it
                return
            self._db.execute(_TX_SUBJECTS_SCHEMA)
            rows = [(stored.subject, stored.index) for stored in (
                        self._row(row) for row in self._db.execute(
                            f"SELECT {_RECORD_COLUMNS} FROM records WHERE kind = 'tx' "
                            "ORDER BY idx").fetchall())
                    if not stored.record().name]
            with self._db.cursor() as cursor:
                cursor.executemany("INSERT INTO tx_subjects (subject, idx) VALUES (%s, %s) "
                                   "ON CONFLICT (subject) DO NOTHING", rows)
            self._db.execute("DROP INDEX IF EXISTS records_subject")
            self._db.execute(
                "CREATE INDEX records_subject ON records (subject) WHERE kind <> 'tx'")

    def _has_tx_subjects(self) -> bool:
        return self._db.execute(
            "SELECT to_regclass('tx_subjects') IS NOT NULL").fetchone()[0] is True

    def _read_meta(self) -> LogMeta:
        psycopg = self._psycopg
        try:
            with self._db.transaction():
                rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
                self._db.execute("SELECT idx, kind, subject, body, leaf_hash FROM records LIMIT 0")
                self._db.execute("SELECT level, idx, hash FROM nodes LIMIT 0")
                self._db.execute("SELECT size, root, note, created FROM checkpoints LIMIT 0")
                self._db.execute("SELECT id, idx FROM tx_ids LIMIT 0")
        except psycopg.errors.UndefinedTable as exc:
            raise LogError(f"{self.path}: not a pyastore log (no log tables in this schema: "
                           f"{_first_line(exc)})") from None
        except psycopg.Error as exc:
            raise self._log_error(exc) from None
        version = rows.get("format_version")
        if version != str(FORMAT_VERSION):
            raise LogError(f"{self.path}: log format version {version!r} is not supported by "
                           f"this pyastore (it reads version {FORMAT_VERSION})")
        try:
            public_key = bytes.fromhex(rows["log_public_key"])
            origin = rows["origin"]
        except (KeyError, ValueError):
            raise LogError(f"{self.path}: log metadata is incomplete or damaged") from None
        if len(public_key) != 32 or not origin:
            raise LogError(f"{self.path}: log metadata is incomplete or damaged")
        return LogMeta(int(version), origin, public_key, rows.get("log_key_path"),
                       rows.get("created", ""))

    @property
    def meta(self) -> LogMeta:
        if self._meta is None:
            self._meta = self._read_meta()
        return self._meta

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection is closed all the same
            self._db.close()

    def _log_error(self, exc: Exception) -> LogError:
        psycopg = self._psycopg
        broken = isinstance(exc, psycopg.OperationalError) or self._db.closed or self._db.broken
        if broken and self._committing:
            return LogError(f"{self.path}: the connection to the log database was lost while "
                            f"committing: the append may or may not have been written; re-open "
                            f"the log and check its size ({_first_line(exc)})")
        if broken:
            return LogError(f"{self.path}: the connection to the log database was lost; nothing "
                            f"was appended ({_first_line(exc)})")
        return LogError(f"{self.path}: database error: {_first_line(exc)}")

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding the log's advisory lock; committed on success."""
        if self._lock_key is None:
            oid = self._db.execute("SELECT 'records'::regclass::oid::bigint").fetchone()[0]
            self._lock_key = (_LOCK_NAMESPACE << 32) | int(oid)
            if self._lock_key >= 1 << 63:
                self._lock_key -= 1 << 64
        self._db.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error
                self._db.execute("ROLLBACK")
            raise
        self._committing = True
        try:
            self._db.execute("COMMIT")
        finally:
            self._committing = False

    def _tip(self) -> tuple[int, str]:
        row = self._db.execute(
            "SELECT idx, leaf_hash FROM records ORDER BY idx DESC LIMIT 1").fetchone()
        if row is None:
            return 0, GENESIS_PREV_HASH
        return int(row[0]) + 1, bytes(row[1]).hex()

    def _index_tx_ids(self, records: Iterable[Record]) -> None:
        transactions = [r for r in records if r.kind == KIND_TX]
        rows = [(r.name, r.index) for r in transactions if r.name]
        unnamed = [(r.subject, r.index) for r in transactions if not r.name]
        if unnamed:
            with self._db.cursor() as cursor:
                cursor.executemany("INSERT INTO tx_subjects (subject, idx) VALUES (%s, %s) "
                                   "ON CONFLICT (subject) DO NOTHING", unnamed)
            for subject, index in unnamed:
                first = self.tx_subject_index(subject)
                if first is None:
                    raise LogError(f"{self.path}: the index of transactions without an id "
                                   f"did not take {subject}")
                if first != index:
                    raise DuplicateRecordError(
                        f"a transaction without an id with subject {subject} is already "
                        f"decided at log index {first}", index=first)
        if not rows:
            return
        with self._db.cursor() as cursor:
            # ON CONFLICT keeps the transaction alive, so the first holder can be named.
            cursor.executemany("INSERT INTO tx_ids (id, idx) VALUES (%s, %s) "
                               "ON CONFLICT (id) DO NOTHING", rows)
            inserted = self._db.execute(
                "SELECT count(*) FROM tx_ids WHERE (id, idx) IN (SELECT * FROM unnest("
                "%s::text[], %s::bigint[]))",
                ([r[0] for r in rows], [r[1] for r in rows])).fetchone()[0]
        if inserted == len(rows):
            return
        for tx_id, index in rows:
            first = self.tx_index(tx_id)
            if first is not None and first != index:
                raise DuplicateRecordError(
                    f"transaction id {tx_id!r} is already decided at log index {first}",
                    index=first)
        raise LogError(f"{self.path}: a transaction id appears twice in one append")

    def _insert_rows(self, rows: list[tuple[int, str, str, bytes, bytes]],
                     node_rows: list[tuple[int, int, bytes]]) -> None:
        with self._db.cursor() as cursor:
            if rows:
                cursor.executemany("INSERT INTO records (idx, kind, subject, body, leaf_hash) "
                                   "VALUES (%s, %s, %s, %s, %s)", rows)
            if node_rows:
                cursor.executemany("INSERT INTO nodes (level, idx, hash) VALUES (%s, %s, %s)",
                                   node_rows)

    @_database_errors
    def append(self, build: Callable[[AppendContext], Record]) -> tuple[Record, bytes]:
        """Append one record built under the log's lock; returns it and its leaf hash."""
        with self._write():
            index, prev_hash = self._tip()
            record = build(AppendContext(index, prev_hash, self))
            if record.index != index or record.prev_hash != prev_hash:
                raise LogError(
                    f"record built for index {record.index} after {record.prev_hash[:16]}..., "
                    f"but the log tip is index {index} after {prev_hash[:16]}...")
            body = record.encode()
            leaf = record.record_hash()
            self._insert_rows([(index, record.kind, record.subject, body, leaf)],
                              _tip_nodes(self.node, index, leaf))
            self._index_tx_ids([record])
        return record, leaf

    def _chained_rows(
        self, records: Iterable[Record], index: int, prev_hash: str, what: str
    ) -> Iterator[tuple[Record, bytes, list[tuple[int, int, bytes]]]]:
        frontier = merkle.RootAccumulator.resume(self, index)
        for record in records:
            if record.index != index or record.prev_hash != prev_hash:
                raise LogError(f"{what} record built for index {record.index} after "
                               f"{record.prev_hash[:16]}..., but it would go at index {index} "
                               f"after {prev_hash[:16]}...")
            leaf = merkle.leaf_hash(record.encode())
            yield record, leaf, frontier.push(leaf)
            prev_hash, index = leaf.hex(), index + 1

    @_database_errors
    def append_batch(
        self, build: Callable[[AppendContext], Sequence[Record]]
    ) -> list[tuple[Record, bytes]]:
        """Group commit: the records ``build`` returns, chained from the tip, in one
        transaction (see :meth:`chain.storage.SQLiteStorage.append_batch`)."""
        with self._write():
            index, prev_hash = self._tip()
            records = list(build(AppendContext(index, prev_hash, self)))
            appended: list[tuple[Record, bytes]] = []
            rows: list[tuple[int, str, str, bytes, bytes]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            for record, leaf, nodes in self._chained_rows(records, index, prev_hash, "batch"):
                rows.append((record.index, record.kind, record.subject, record.encode(), leaf))
                node_rows.extend(nodes)
                appended.append((record, leaf))
            self._insert_rows(rows, node_rows)
            self._index_tx_ids(records)
        return appended

    @_database_errors
    def import_records(self, records: Iterable[Record]) -> int:
        """Append signed records that already chain from the tip, in one transaction."""
        with self._write():
            start, prev_hash = self._tip()
            count = 0
            rows: list[tuple[int, str, str, bytes, bytes]] = []
            node_rows: list[tuple[int, int, bytes]] = []
            batch: list[Record] = []
            for record, leaf, nodes in self._chained_rows(records, start, prev_hash, "imported"):
                rows.append((record.index, record.kind, record.subject, record.encode(), leaf))
                node_rows.extend(nodes)
                batch.append(record)
                count += 1
                if len(rows) >= 10000:
                    self._insert_rows(rows, node_rows)
                    self._index_tx_ids(batch)
                    rows, node_rows, batch = [], [], []
            self._insert_rows(rows, node_rows)
            self._index_tx_ids(batch)
        return count

    @_database_errors
    def put_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None:
        """Remember a signed checkpoint; a second one for the same size is kept only once."""
        with self._write():
            self._db.execute(
                "INSERT INTO checkpoints (size, root, note, created) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (size) DO NOTHING", (size, root, note, created))

    # -- reading ---------------------------------------------------------------------------

    @_database_errors
    def tip(self) -> tuple[int, str]:
        """The next index and the record hash of the last record (64 zeros when empty), as
        committed now: what an append would chain onto if nobody appends first."""
        return self._tip()

    @_database_errors
    def count(self) -> int:
        row = self._db.execute("SELECT max(idx) FROM records").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    @_database_errors
    def row_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    @staticmethod
    def _row(row: tuple[Any, ...]) -> StoredRecord:
        return StoredRecord(int(row[0]), row[1], row[2], bytes(row[3]), bytes(row[4]))

    @_database_errors
    def get(self, index: int) -> StoredRecord:
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE idx = %s", (index,)).fetchone()
        if row is None:
            raise LogError(f"{self.path}: no record at index {index}")
        return self._row(row)

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]:
        """Records ``[start, stop)`` in index order, read in pages (constant memory)."""
        end = 2**63 - 1 if stop is None else stop
        position = start
        while True:
            try:
                rows = self._db.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM records WHERE idx >= %s AND idx < %s "
                    "ORDER BY idx LIMIT %s", (position, end, _PAGE_ROWS)).fetchall()
            except self._psycopg.Error as exc:
                raise self._log_error(exc) from None
            for row in rows:
                yield self._row(row)
            if len(rows) < _PAGE_ROWS:
                return
            position = int(rows[-1][0]) + 1

    @_database_errors
    def find_by_subject(self, subject: str) -> list[StoredRecord]:
        """The records about ``subject`` but the ``tx`` decisions (as in SQLite)."""
        return self._stored_where("subject = %s AND kind <> 'tx'", (subject,))

    @_database_errors
    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._db.execute("SELECT leaf_hash FROM records WHERE idx = %s",
                                   (index,)).fetchone()
        else:
            row = self._db.execute("SELECT hash FROM nodes WHERE level = %s AND idx = %s",
                                   (level, index)).fetchone()
        if row is None:
            raise LogCorruptionError(
                f"{self.path}: tree node (level {level}, index {index}) is missing; "
                "run 'pyastore chain verify'", index=index << level)
        return bytes(row[0])

    @_database_errors
    def stored_node(self, level: int, index: int) -> bytes | None:
        row = self._db.execute("SELECT hash FROM nodes WHERE level = %s AND idx = %s",
                               (level, index)).fetchone()
        return None if row is None else bytes(row[0])

    @_database_errors
    def node_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM nodes").fetchone()[0])

    @_database_errors
    def tx_index(self, tx_id: str) -> int | None:
        row = self._db.execute("SELECT idx FROM tx_ids WHERE id = %s", (tx_id,)).fetchone()
        return None if row is None else int(row[0])

    @_database_errors
    def tx_indices(self, tx_ids: Iterable[str]) -> dict[str, int]:
        """The log index of the ``tx`` record of each id the log holds, in one query."""
        wanted = list(dict.fromkeys(tx_ids))
        if not wanted:
            return {}
        rows = self._db.execute("SELECT id, idx FROM tx_ids WHERE id = ANY(%s)",
                                (wanted,)).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    @_database_errors
    def tx_id_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM tx_ids").fetchone()[0])

    @_database_errors
    def tx_subject_index(self, subject: str) -> int | None:
        if not self._has_tx_subjects():  # a log from before it, opened read-only
            for stored in self._stored_where("subject = %s AND kind = 'tx'", (subject,)):
                if not stored.record().name:
                    return stored.index
            return None
        row = self._db.execute("SELECT idx FROM tx_subjects WHERE subject = %s",
                               (subject,)).fetchone()
        return None if row is None else int(row[0])

    @_database_errors
    def tx_subject_count(self) -> int:
        if not self._has_tx_subjects():
            return sum(1 for stored in self._stored_where("kind = 'tx'", ())
                       if not stored.record().name)
        return int(self._db.execute("SELECT count(*) FROM tx_subjects").fetchone()[0])

    def _stored_where(self, condition: str, parameters: tuple[Any, ...]) -> list[StoredRecord]:
        rows = self._db.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE {condition} "
                                "ORDER BY idx", parameters).fetchall()
        return [self._row(row) for row in rows]

    @_database_errors
    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._db.execute(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size").fetchall()
        return [StoredCheckpoint(int(r[0]), bytes(r[1]), r[2], r[3]) for r in rows]

    @_database_errors
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._db.execute("SELECT size, root, note, created FROM checkpoints "
                               "ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2],
                                                         row[3])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ, READ ONLY transaction: every read inside sees one state of
        the log while other writers append."""
        try:
            self._db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except self._psycopg.Error as exc:
            raise self._log_error(exc) from None
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except self._psycopg.Error as exc:
            raise self._log_error(exc) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
