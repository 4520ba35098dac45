"""Durable storage on SQLite: one database file per store, one transaction per change.

Why SQLite (the standard library's :mod:`sqlite3`): it is a real embedded database (no server),
its write-ahead log gives atomic, durable transactions, readers that never see a half-written
change, and writers serialised across processes by the database's own lock.

A durable store lives in a directory holding :data:`DATABASE` (and SQLite's ``-wal`` / ``-shm``
files next to it). Tables:

* ``meta(key, value)``: ``format``, ``schema_version``, ``header`` (JSON: mode, encoder identity,
  dimension, index options) and ``seq``, the number of the last committed change;
* ``streams(id, ord, length, memory, chunk_memory, state, seq)``: one row per stream in creation
  order (``ord``), its length, its memory latents as float32 BLOBs (EvoEmbedding mode) with their
  shapes and counters (``state``, JSON), and the change that last updated it;
* ``records(id, stream_id, position, text, metadata, vector, seq)``: one row per entry, its vector
  a float32 BLOB, ``seq`` the change that wrote it;
* ``changes(seq, removed, dropped, created, cleared)``: one row per committed change (the ids it
  removed, the streams it dropped or created, whether it cleared the store), so that a process
  holding an older copy in memory replays exactly what happened since.

Every :meth:`SQLiteBackend.apply` is one ``BEGIN IMMEDIATE ... COMMIT``; it first checks that the
database is still at the change the in-memory store reflects (else :class:`StaleStore`: the store
catches up and plans again). ``synchronous=FULL``: a commit is on disk (WAL fsynced) before it
returns, so an acknowledged call survives a crash or a power cut.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import format as fmt
from . import sqlite_rows as db_rows
from .backend import AddedEntry, Change
from .format import StreamSnapshot
from .records import CorruptStoreError
from .sqlite_rows import DATABASE

DB_FORMAT = "evoembedding-store-sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
_SCHEMA = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "streams": "CREATE TABLE streams (id TEXT PRIMARY KEY, ord INTEGER NOT NULL UNIQUE, length INTEGER NOT NULL, "
    "memory BLOB, chunk_memory BLOB, state TEXT, seq INTEGER NOT NULL)",
    "records": "CREATE TABLE records (id TEXT PRIMARY KEY, stream_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL, seq INTEGER NOT NULL)",
    "streams_seq": "CREATE INDEX streams_seq ON streams (seq)",
    "records_seq": "CREATE INDEX records_seq ON records (seq)",
    "records_stream": "CREATE INDEX records_stream ON records (stream_id, position)",
    "changes": "CREATE TABLE changes (seq INTEGER PRIMARY KEY, removed TEXT NOT NULL, dropped TEXT NOT NULL, "
    "created TEXT NOT NULL, cleared INTEGER NOT NULL)",
}


class StaleStore(Exception):
    """The database holds changes the in-memory store has not seen: catch up, then plan again."""


class StorageError(OSError):
    """The database refused a write (disk full, read-only, locked too long); nothing was changed."""


@dataclass(frozen=True)
class Replayed:
    """What was committed since the in-memory store's change: see :meth:`SQLiteBackend.changes_since`.

    Attributes:
        seq: The change the database is at.
        dim: The stored dimension (``None``: no vector yet).
        changes: Per change, in order: ``(removed ids, dropped streams, created streams, cleared, added)``.
        streams: ``(stream id, length, memory state or None)`` of every stream updated since.
    """

    seq: int
    dim: int | None
    changes: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool, list[AddedEntry]]]
    streams: list[tuple[str, int, dict | None]]


def database_path(directory: str | Path) -> Path:
    """The database file of the durable store in ``directory``."""
    return Path(directory) / DATABASE


class SQLiteBackend:
    """The database of one durable store (see the module docstring).

    Args:
        directory: The store's directory (created if missing, with ``create``).
        memory_state: Turns a stream memory into ``{"memory", "chunk_memory", "meta"}`` arrays.
        create: Create the database if it does not exist (else ``FileNotFoundError``).
    """

    def __init__(self, directory: str | Path, memory_state: Callable[[Any], dict | None], *, create: bool) -> None:
        self.directory, self.memory_state = Path(directory), memory_state
        path = database_path(self.directory)
        if not create and not path.is_file():
            raise FileNotFoundError(f"{self.directory} holds no {DATABASE}: not a durable EvoStore")
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise CorruptStoreError(f"{path} is not a regular file; symlinks are refused")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            for pragma in ("trusted_schema=OFF", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=OFF"):
                self.conn.execute(f"PRAGMA {pragma}")
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self._init_schema()
        except sqlite3.OperationalError as exc:  # cannot open, locked too long, read-only directory
            self.close()
            raise StorageError(f"cannot open the store's database {path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self.close()
            raise CorruptStoreError(f"{path} is not a usable EvoStore database ({exc})") from None
        self.seq = 0
        self._data_version = self._version()

    # ------------------------------------------------------------------ schema
    def _schema(self) -> dict:
        return dict(self.conn.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))

    def _init_schema(self) -> None:
        if not self._schema():
            with _Transaction(self.conn, "BEGIN IMMEDIATE"):
                if not self._schema():  # another process may have created it meanwhile
                    for sql in _SCHEMA.values():
                        self.conn.execute(sql)
                    rows = [("format", DB_FORMAT), ("schema_version", str(SCHEMA_VERSION)), ("seq", "0")]
                    self.conn.executemany("INSERT INTO meta VALUES (?, ?)", rows)
        objects = self._schema()
        if objects != _SCHEMA:  # triggers, views or altered tables: never run anything a file brings
            raise CorruptStoreError(f"{DATABASE} has an unexpected schema: {sorted(objects)[:8]}")
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        if meta.get("format") != DB_FORMAT or meta.get("schema_version") != str(SCHEMA_VERSION):
            raise CorruptStoreError(
                f"{DATABASE} is not an {DB_FORMAT} database of schema {SCHEMA_VERSION} "
                f"(found {meta.get('format')!r}, {meta.get('schema_version')!r})"
            )

    def close(self) -> None:
        """Close the connection (the store can no longer write)."""
        conn, self.conn = getattr(self, "conn", None), None
        if conn is not None:
            conn.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self.conn is None:
            raise StorageError("the store's database is closed")
        return self.conn

    def _version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _db_seq(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        value = row[0] if row is not None else None
        return db_rows.counter(
            int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value, "seq"
        )

    def header(self) -> dict | None:
        """The stored header (mode, encoder identity, dimension, index options), or ``None`` (new database)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'header'").fetchone()
        if row is None:
            return None
        header = fmt.parse_json(row[0].encode(), f"{DATABASE} header")
        if not isinstance(header, dict) or header.get("mode") not in fmt.MODES:
            raise CorruptStoreError(f"{DATABASE} header is not a store header")
        fmt.manifest_dim(header)
        fmt.index_options(header, None)
        return header

    # ------------------------------------------------------------------ reading
    def stale(self) -> bool:
        """Whether another connection committed changes this store has not seen (cheap: one pragma)."""
        with _read_errors():
            version = self._version()
            if version == self._data_version:
                return False
            self._data_version = version
            return self._db_seq() != self.seq

    def open(self) -> list[StreamSnapshot]:
        """Every stream, verified (as a saved snapshot is), read in one consistent transaction."""
        with self._reading(), _read_errors():
            header, seq = self.header(), self._db_seq()
            if header is None:
                self.seq = seq
                return []
            streams = self.conn.execute(
                "SELECT id, length, memory, chunk_memory, state FROM streams ORDER BY ord"
            ).fetchall()
            rows = self.conn.execute(
                "SELECT r.stream_id, r.id, r.position, r.text, r.metadata, r.vector FROM records r "
                "JOIN streams s ON s.id = r.stream_id ORDER BY s.ord, r.position"
            ).fetchall()
            (total,) = self.conn.execute("SELECT COUNT(*) FROM records").fetchone()
        dim, with_memory = fmt.manifest_dim(header), header["mode"] == "evo"
        if total != len(rows):
            raise CorruptStoreError(f"{DATABASE}: {total - len(rows)} records belong to no stream")
        by_stream: dict[str, list] = {}
        for row in rows:
            by_stream.setdefault(row[0], []).append(row)
        docs, arrays = [], {}
        metadatas = iter(db_rows.parse_metadatas([row[4] for row in rows]))
        for n, (sid, length, memory, chunk_memory, state) in enumerate(streams):
            items = by_stream.get(sid, [])
            doc = {"id": sid, "length": db_rows.counter(length, "stream length"), "records": []}
            for _, id_, position, text, _metadata_text, _vector in items:
                doc["records"].append({"id": id_, "position": position, "text": text, "metadata": next(metadatas)})
            arrays[f"{n}/vectors"] = db_rows.vectors_from_blobs([row[5] for row in items], dim)
            if with_memory:
                memory_state = db_rows.memory_from_row(memory, chunk_memory, state)
                arrays[f"{n}/memory"], arrays[f"{n}/chunk_memory"] = (
                    memory_state["memory"],
                    memory_state["chunk_memory"],
                )
                doc["memory"] = memory_state["meta"]
            docs.append(doc)
        snapshots = fmt.decode_streams(
            {"entries": total}, {"streams": docs}, arrays, dim=dim, with_memory=with_memory, metadata_checked=True
        )
        self.seq = seq
        return snapshots

    def changes_since(self) -> Replayed:
        """Everything committed after change :attr:`seq`, verified, read in one transaction."""
        with self._reading(), _read_errors():
            seq, header = self._db_seq(), self.header()
            changes = self.conn.execute(
                "SELECT seq, removed, dropped, created, cleared FROM changes WHERE seq > ? ORDER BY seq", (self.seq,)
            ).fetchall()
            rows = self.conn.execute(
                "SELECT seq, id, stream_id, position, text, metadata, vector FROM records WHERE seq > ? "
                "ORDER BY seq, stream_id, position",
                (self.seq,),
            ).fetchall()
            streams = self.conn.execute(
                "SELECT id, length, memory, chunk_memory, state FROM streams WHERE seq > ? ORDER BY ord", (self.seq,)
            ).fetchall()
        dim = None if header is None else fmt.manifest_dim(header)
        added: dict[int, list[AddedEntry]] = {}
        for change_seq, id_, sid, position, text, metadata, vector in rows:
            entry = db_rows.entry_from_row(id_, sid, position, text, metadata, vector, dim)
            added.setdefault(change_seq, []).append(entry)
        out = []
        for change_seq, removed, dropped, created, cleared in changes:
            lists = [
                db_rows.id_list(value, name)
                for value, name in ((removed, "removed"), (dropped, "dropped"), (created, "created"))
            ]
            out.append((*lists, bool(cleared), added.get(change_seq, [])))
        with_memory = header is not None and header["mode"] == "evo"
        states = []
        for sid, length, memory, chunk_memory, state in streams:
            states.append(
                (
                    sid,
                    db_rows.counter(length, "stream length"),
                    db_rows.memory_from_row(memory, chunk_memory, state) if with_memory else None,
                )
            )
        return Replayed(seq, dim, out, states)

    def _reading(self):
        return _Transaction(self._conn, "BEGIN")

    # ------------------------------------------------------------------ writing
    def apply(self, change: Change, header: dict | None = None) -> None:
        """Commit one change (``header``: also store the store's header) before returning.

        Raises:
            StaleStore: Another writer committed first; nothing was written.
            StorageError: The database refused the write; nothing was written.
        """
        try:
            with _Transaction(self._conn, "BEGIN IMMEDIATE"):
                if self._db_seq() != self.seq:
                    raise StaleStore
                self._write(change, self.seq + 1, header)
        except sqlite3.Error as exc:
            raise StorageError(f"the store's database refused the write, nothing was changed: {exc}") from exc
        self.seq += 1
        self._data_version = self._version()

    def replace_all(self, header: dict, snapshots: list[StreamSnapshot], *, only_if_new: bool = False) -> None:
        """Replace everything stored with ``snapshots`` in one transaction (import / migration).

        Args:
            header: The store's header.
            snapshots: Every stream, in creation order.
            only_if_new: Write only into a database nobody has written a store into yet.

        Raises:
            StaleStore: ``only_if_new`` and the database already holds a store; nothing was written.
            StorageError: The database refused the write; nothing was written.
        """
        try:
            with _Transaction(self._conn, "BEGIN IMMEDIATE"):
                if only_if_new and (self._db_seq() != 0 or self.header() is not None):
                    raise StaleStore
                seq = self._db_seq() + 1
                self._write(Change(cleared=True), seq, header)
                for snapshot in snapshots:
                    self._new_stream(snapshot.id, snapshot.length, snapshot.memory, seq)
                    self.conn.executemany(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                r.id,
                                snapshot.id,
                                r.position,
                                r.text,
                                db_rows.dump_metadata(r.metadata),
                                db_rows.blob(v),
                                seq,
                            )
                            for r, v in zip(snapshot.records, snapshot.vectors)
                        ],
                    )
                created = json.dumps([s.id for s in snapshots])
                self.conn.execute("UPDATE changes SET created = ? WHERE seq = ?", (created, seq))
        except sqlite3.Error as exc:
            raise StorageError(f"the store's database refused the write, nothing was changed: {exc}") from exc
        self.seq = seq
        self._data_version = self._version()

    def _write(self, change: Change, seq: int, header: dict | None) -> None:
        c = self.conn
        if header is not None:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('header', ?)", (json.dumps(header, allow_nan=False),))
        c.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
        if change.cleared:
            c.execute("DELETE FROM records")
            c.execute("DELETE FROM streams")
        c.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in change.removed])
        for sid in change.dropped_streams:
            c.execute("DELETE FROM records WHERE stream_id = ?", (sid,))
            c.execute("DELETE FROM streams WHERE id = ?", (sid,))
        created = []
        for sid, length in change.lengths.items():
            memory = change.memories.get(sid)
            state = None if memory is None else self.memory_state(memory)
            if c.execute("SELECT 1 FROM streams WHERE id = ?", (sid,)).fetchone() is None:
                self._new_stream(sid, length, state, seq)
                created.append(sid)
            elif state is None:
                c.execute("UPDATE streams SET length = ?, seq = ? WHERE id = ?", (length, seq, sid))
            else:
                c.execute(
                    "UPDATE streams SET length = ?, memory = ?, chunk_memory = ?, state = ?, seq = ? WHERE id = ?",
                    (length, *db_rows.memory_columns(state), seq, sid),
                )
        c.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (e.id, e.stream_id, e.position, e.text, db_rows.dump_metadata(e.metadata), db_rows.blob(e.vector), seq)
                for e in change.added
            ],
        )
        c.execute(
            "INSERT INTO changes VALUES (?, ?, ?, ?, ?)",
            (
                seq,
                json.dumps(list(change.removed)),
                json.dumps(list(change.dropped_streams)),
                json.dumps(created),
                int(change.cleared),
            ),
        )

    def _new_stream(self, sid: str, length: int, state: dict | None, seq: int) -> None:
        (last,) = self.conn.execute("SELECT COALESCE(MAX(ord), 0) FROM streams").fetchone()
        columns = (None, None, None) if state is None else db_rows.memory_columns(state)
        self.conn.execute("INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?, ?)", (sid, last + 1, length, *columns, seq))

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (optional; SQLite also does it by itself)."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StorageError(f"checkpointing the store's database failed: {exc}") from exc


@contextmanager
def _read_errors() -> Iterator[None]:
    """SQLite errors while reading as the store's errors: busy or I/O -> :class:`StorageError`,
    a damaged file -> :class:`CorruptStoreError`."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StorageError(f"reading the store's database failed: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise CorruptStoreError(f"{DATABASE} is damaged ({exc})") from None


class _Transaction:
    """``BEGIN`` (or ``BEGIN IMMEDIATE``) ... ``COMMIT``, rolled back if the block raises."""

    def __init__(self, conn: sqlite3.Connection, begin: str) -> None:
        self.conn, self.begin = conn, begin

    def __enter__(self) -> None:
        self.conn.execute(self.begin)

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
