"""The default store: SQLite through the standard library.

- **One writer, many readers.** Writes run on one connection under a lock, each in a
  ``BEGIN IMMEDIATE`` transaction committed before the route answers; reads use one
  connection per worker thread and see a consistent snapshot (WAL). CPU-heavy work on
  datapoints (parsing, hashing) happens *before* the lock is taken, so two uploads overlap.
- **Durability.** WAL with ``synchronous=NORMAL`` (the default, ``sync="normal"``): a
  committed transaction is in the WAL file before the answer is sent, so killing the
  process (even ``kill -9``) loses nothing acknowledged; a power cut or kernel crash may
  lose the last transactions. ``sync="full"`` fsyncs every commit and survives those too.
  Checkpoints (copying the WAL into the database) run in a background thread so a large
  upload does not stall on them.
- **Tables** (see :data:`SCHEMA`): datasets, fields and datapoints; the datasets'
  last-applied indexes (``applied_index``); projects, their inputs/outputs
  (``project_io``) and the fields they read (``project_sources``); annotations; API key
  digests and organisations; idempotency records.

The data work lives in mixins -- :mod:`sqlite_datasets`, :mod:`sqlite_digest`,
:mod:`sqlite_applied`, :mod:`sqlite_projects`; this module holds connections, transactions, the schema,
organisations and idempotency.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from hlops.server.sqlite_applied import AppliedIndexMixin
from hlops.server.sqlite_datasets import DatasetsMixin
from hlops.server.sqlite_digest import DigestMixin
from hlops.server.sqlite_models import SqliteModels
from hlops.server.sqlite_projects import ProjectsMixin
from hlops.server.store import Conflict, Idem, Replay

SCHEMA_VERSION = 1
IDEMPOTENCY_TTL = 24 * 3600
CHECKPOINT_BYTES = 64 * 1024 * 1024  # WAL size that triggers a background checkpoint
IDLE_SECONDS = 2.0  # no write for this long: truncate the WAL

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS api_keys (
    key_digest TEXT PRIMARY KEY,          -- sha256 hex of the key; keys are never stored
    org_id INTEGER NOT NULL REFERENCES orgs(id)
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    key_field TEXT,
    datapoint_count INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_applied TEXT,                    -- JSON object a client noted after its last apply
    hash_xor BLOB,                        -- XOR of the datapoints' hashes (server/roots.py), valid
    hash_xor_version INTEGER,             -- ... when this equals version (else: unknown)
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS fields (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    data_type TEXT NOT NULL,
    description TEXT,
    position INTEGER NOT NULL,
    UNIQUE (dataset_id, name)
);
-- Clustered by dataset so a dataset's rows are read sequentially. ``point`` is the key
-- point as a signed integer (hlops/server/rows.py), ``hash`` the 32-byte SHA-256 of ``data``
-- (canonical JSON), ``key`` the key text (NULL when the dataset has no key: it is the hash).
CREATE TABLE IF NOT EXISTS datapoints (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    id INTEGER NOT NULL,
    point INTEGER NOT NULL,
    key TEXT,
    hash BLOB NOT NULL,
    data BLOB NOT NULL,
    annotations INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset_id, id)
) WITHOUT ROWID;
-- 256 parts by the point's low bits, then id: new rows append at the end of their part,
-- which keeps an upload's index writes local; a bucket is a set of parts (and points).
-- Covering for the row digests (key, hash, annotations): a bucket's rows are read from
-- the index alone, never from the table's pages with the data.
CREATE INDEX IF NOT EXISTS datapoints_part ON datapoints (dataset_id, (point & 255), id, point, key, hash, annotations);
CREATE UNIQUE INDEX IF NOT EXISTS datapoints_key ON datapoints (dataset_id, key) WHERE key IS NOT NULL;
-- A client's opaque blob beside the dataset's last_applied note (sqlite_applied.py): a
-- table of its own, so that no read of a dataset row loads it.
CREATE TABLE IF NOT EXISTS applied_index (
    dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    guidelines TEXT,
    users TEXT NOT NULL,                  -- JSON [{email, role}]
    review_existing INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS project_io (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('input', 'output')),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,                   -- JSON: everything but id, name and data_sources
    UNIQUE (project_id, kind, name)
);
CREATE TABLE IF NOT EXISTS project_sources (
    io_id INTEGER NOT NULL REFERENCES project_io(id) ON DELETE CASCADE,
    field_id INTEGER NOT NULL REFERENCES fields(id),
    project_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (io_id, field_id)
);
CREATE INDEX IF NOT EXISTS project_sources_field ON project_sources (field_id);
CREATE INDEX IF NOT EXISTS project_sources_project ON project_sources (project_id);
CREATE TABLE IF NOT EXISTS annotations (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    output_id INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL,
    datapoint_id INTEGER NOT NULL,
    value TEXT NOT NULL,                  -- JSON
    source TEXT NOT NULL CHECK (source IN ('user', 'dataset')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (project_id, output_id, datapoint_id),
    FOREIGN KEY (dataset_id, datapoint_id) REFERENCES datapoints(dataset_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS annotations_datapoint ON annotations (dataset_id, datapoint_id);
CREATE TABLE IF NOT EXISTS idempotency (
    org_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    etag TEXT,
    created REAL NOT NULL,
    fingerprint TEXT,                     -- SHA-256 of the request (method, path, query, body)
    PRIMARY KEY (org_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created);
"""


class SqliteStore(DatasetsMixin, DigestMixin, AppliedIndexMixin, ProjectsMixin):
    """A :class:`hlops.server.store.Store` in one SQLite file."""

    IntegrityError = sqlite3.IntegrityError
    Models = SqliteModels  # the model store of hlops.server.training over this store

    @staticmethod
    def _names_lock(con: sqlite3.Connection, org: int) -> None:
        """Before checking that a name is free: nothing to do, writes are serialised."""

    def __init__(self, path: str | Path, *, sync: str = "normal", checkpoint_bytes: int = CHECKPOINT_BYTES):
        if sync not in ("normal", "full"):
            raise ValueError("sync must be 'normal' or 'full'")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._sync = sync
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writes = 0
        self._summaries: OrderedDict = OrderedDict()  # digest summaries (DatasetsMixin)
        self._summaries_lock = threading.Lock()
        self._w = self._connect(writer=True)
        self._w.executescript(SCHEMA)
        self._migrate()
        with self._write() as con:
            con.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            con.execute("INSERT OR IGNORE INTO sequences(name, value) VALUES ('datapoint', 0)")
        self._checkpoint_bytes = checkpoint_bytes
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="hlops-checkpoint", daemon=True)
        self._checkpointer.start()

    def _migrate(self) -> None:
        """Bring a database made by an earlier build up to :data:`SCHEMA`."""
        added = (("idempotency", "fingerprint", "TEXT"), ("datasets", "last_applied", "TEXT"),
                 ("datasets", "hash_xor", "BLOB"), ("datasets", "hash_xor_version", "INTEGER"))
        for table, column, kind in added:
            columns = {r[1] for r in self._w.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self._w.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        # the part index before it covered the row digest (SCHEMA makes its successor)
        self._w.execute("DROP INDEX IF EXISTS datapoints_bucket")

    # ------------------------------------------------------------------ connections

    def _connect(self, writer: bool) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=not writer, timeout=30)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={self._sync.upper()}")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        if writer:
            con.execute("PRAGMA cache_size=-131072")  # 128 MiB: an upload's index pages stay hot
            con.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it
        else:
            con.execute("PRAGMA cache_size=-8192")  # reads lean on mmap; one per worker thread
            con.execute("PRAGMA mmap_size=268435456")
            con.execute("PRAGMA query_only=1")
        return con

    def _reader(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._connect(writer=False)
            self._local.con = con
            with self._readers_lock:
                self._readers.append(con)
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        con = self._reader()
        con.execute("BEGIN")
        try:
            yield con
        finally:
            con.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The write transaction: committed when the block ends, rolled back on error."""
        with self._lock:
            con = self._w
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            self._writes += 1

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database whenever it grew past ``checkpoint_bytes``
        (PASSIVE: never blocks the writer); after :data:`IDLE_SECONDS` without a write, also
        truncate it (TRUNCATE waits for writers, which is why it waits for a quiet moment)."""
        con = None
        wal = self.path + "-wal"
        seen_writes, quiet_since = -1, time.monotonic()
        while not self._stop.wait(0.25):
            try:
                size = os.path.getsize(wal)
            except OSError:
                continue
            if self._writes != seen_writes:
                seen_writes, quiet_since = self._writes, time.monotonic()
            idle = time.monotonic() - quiet_since > IDLE_SECONDS
            if size < self._checkpoint_bytes and not (idle and size > 0):
                continue
            try:
                if con is None:
                    con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    con.execute("PRAGMA busy_timeout=1000")
                con.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if idle else 'PASSIVE'})").fetchall()
            except sqlite3.Error:
                pass  # busy: try again next round
        if con is not None:
            con.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._checkpointer.join(timeout=5)
        with self._lock:
            try:
                self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._w.close()
        with self._readers_lock:
            for con in self._readers:
                try:
                    con.close()
                except sqlite3.ProgrammingError:
                    pass  # made in another thread; the process is ending anyway
            self._readers.clear()

    # ------------------------------------------------------------------ organisations

    def ensure_orgs(self, keys: dict[str, str]) -> dict[str, int]:
        """Create the organisations and key digests of ``keys`` (digest -> org name) that do
        not exist yet; answer digest -> org id."""
        out: dict[str, int] = {}
        with self._write() as con:
            for digest, name in keys.items():
                con.execute("INSERT OR IGNORE INTO orgs(name) VALUES (?)", (name,))
                org = con.execute("SELECT id FROM orgs WHERE name = ?", (name,)).fetchone()[0]
                con.execute(
                    "INSERT INTO api_keys(key_digest, org_id) VALUES (?, ?) "
                    "ON CONFLICT(key_digest) DO UPDATE SET org_id = excluded.org_id",
                    (digest, org),
                )
                out[digest] = org
        return out

    # ------------------------------------------------------------------ idempotency

    def idem_lookup(self, org: int, key: str) -> Replay | None:
        with self._read() as con:
            row = con.execute(
                "SELECT method, path, status, body, etag, fingerprint FROM idempotency "
                "WHERE org_id = ? AND key = ? AND created > ?",
                (org, key, time.time() - IDEMPOTENCY_TTL),
            ).fetchone()
        if row is None:
            return None
        return Replay(row["method"], row["path"], row["status"], bytes(row["body"]), row["etag"], row["fingerprint"])

    def _idem_record(
        self, con: sqlite3.Connection, org: int, idem: Idem | None, status: int, body: Any,
        etag: str | None,
    ) -> None:
        """Save an answer under ``idem``. An expired record of the same key is replaced; a
        live one means a concurrent twin of this request won: :class:`Conflict`."""
        if idem is None:
            return
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        stamp = time.time()
        if self._writes % 1000 == 0:
            con.execute("DELETE FROM idempotency WHERE created < ?", (stamp - IDEMPOTENCY_TTL,))
        cur = con.execute(
            "INSERT INTO idempotency(org_id, key, method, path, status, body, etag, created, fingerprint) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(org_id, key) DO UPDATE SET "
            "method = excluded.method, path = excluded.path, status = excluded.status, "
            "body = excluded.body, etag = excluded.etag, created = excluded.created, "
            "fingerprint = excluded.fingerprint WHERE idempotency.created < ?",
            (org, idem.key, idem.method, idem.path, status, raw, etag, stamp, idem.fingerprint, stamp - IDEMPOTENCY_TTL),
        )
        if cur.rowcount == 0:
            raise Conflict("this Idempotency-Key was used by a request that completed meanwhile")

    def _answer(self, con: sqlite3.Connection, org: int, idem: Idem | None, result: dict) -> dict:
        """Record ``result`` as the answer of ``idem`` (same transaction) and return it."""
        if idem is not None:
            version = result.get("version")
            etag = f'"{version}"' if isinstance(version, int) else None
            self._idem_record(con, org, idem, idem.status, result, etag)
        return result
