"""The PostgreSQL store: several server processes, one database (``hlops serve --db
postgresql://...``).

- **Same answers as SQLite.** The store's logic is the SQLite store's: the PostgreSQL
  mixins (:mod:`pg_datasets`, :mod:`pg_digest`, :mod:`pg_projects`) inherit the SQLite ones
  and override what differs in SQL, talking through :class:`~hlops.server.pg_common.PgCon`.
  Status codes, bodies, error messages and digest hashes are the same.
- **Connections.** A ``psycopg_pool.ConnectionPool`` (autocommit connections; each store
  call opens its own transaction). Reads run in ``REPEATABLE READ READ ONLY`` transactions:
  every query of one call sees one snapshot, as SQLite's WAL readers do.
- **Writes across processes.** A write runs in one ``READ COMMITTED`` transaction that
  first locks the row it changes (``SELECT ... FOR NO KEY UPDATE`` of the dataset or project): two
  processes racing a ``PATCH`` with the same ``If-Match`` serialise on that lock, and the
  second reads the version the first committed -> 412. Before checking that a name is free
  a write locks its organisation's row (``FOR NO KEY UPDATE``), so of two racing creates of
  one name one is 201 and the other 409 with the usual message; the unique constraints
  stay as the last word (a violation that still slips through is a 409).
- **Idempotency keys** live in the ``idempotency`` table, written in the transaction of
  the write they answer: a replay on any process finds the answer; two processes racing
  one key both try to insert it, the second blocks on the primary key until the first
  commits, then finds it taken -> its whole write is rolled back and answered 409.
- **Durability.** A request's rows go in by ``COPY`` in the request's one transaction,
  committed before the answer: ``kill -9`` of a server loses no acknowledged row, and a
  killed request leaves none of its rows.
- **Training** runs once per model version across processes: see
  :class:`~hlops.server.pg_models.PgModels`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from hlops.errors import SettingsError
from hlops.server.pg_applied import PgAppliedIndexMixin
from hlops.server.pg_common import PgCon, PgCursor, row_factory
from hlops.server.pg_datasets import PgDatasetsMixin
from hlops.server.pg_digest import PgDigestMixin
from hlops.server.pg_models import PgModels
from hlops.server.pg_projects import PgProjectsMixin
from hlops.server.pg_schema import migrate
from hlops.server.sqlite_store import IDEMPOTENCY_TTL
from hlops.server.store import Conflict, Idem, Replay, StoreError

POOL_MAX = 16  # connections per server process


class Busy(StoreError):
    """A deadlock or a lock wait that timed out: nothing was written; retry."""

    status = 503


def is_url(db: Any) -> bool:
    """Does ``--db`` name a PostgreSQL database (rather than a SQLite file)?"""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


class PgStore(PgDatasetsMixin, PgDigestMixin, PgAppliedIndexMixin, PgProjectsMixin):
    """A :class:`hlops.server.store.Store` in a PostgreSQL database."""

    IntegrityError = psycopg.errors.IntegrityError
    Models = PgModels

    def __init__(self, url: str, *, pool_max: int = POOL_MAX):
        self.url = url
        self._closed = False
        self._writes = 0
        self._summaries: OrderedDict = OrderedDict()
        self._summaries_lock = Lock()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                migrate(conn)
        except psycopg.OperationalError as exc:
            raise SettingsError(f"cannot connect to the PostgreSQL database: {_first_line(exc)}") from None
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_max, open=True, timeout=60,
            kwargs={"autocommit": True, "cursor_factory": PgCursor, "row_factory": row_factory},
            configure=_configure,
        )

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _read(self) -> Iterator[PgCon]:
        with self._pool.connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PgCon(conn, writing=False)
            finally:
                conn.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[PgCon]:
        with self._pool.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield PgCon(conn, writing=True)
            except BaseException as exc:
                conn.execute("ROLLBACK")
                err = _store_error(exc)
                if err is exc:
                    raise
                raise err from None
            try:
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                err = _store_error(exc)
                if err is exc:
                    raise
                raise err from None
            self._writes += 1

    @staticmethod
    def _names_lock(con: PgCon, org: int) -> None:
        """Before checking that a name is free: lock the organisation's row, so two writers
        of one organisation check and insert names one after the other."""
        con.raw("SELECT 1 FROM orgs WHERE id = %s FOR NO KEY UPDATE", (org,))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    # ------------------------------------------------------------------ organisations

    def ensure_orgs(self, keys: dict[str, str]) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._write() as con:
            for digest, name in keys.items():
                con.raw("INSERT INTO orgs(name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,))
                org = con.raw("SELECT id FROM orgs WHERE name = %s", (name,)).fetchone()[0]
                con.raw(
                    "INSERT INTO api_keys(key_digest, org_id) VALUES (%s, %s) "
                    "ON CONFLICT (key_digest) DO UPDATE SET org_id = excluded.org_id",
                    (digest, org),
                )
                out[digest] = org
        return out

    # ------------------------------------------------------------------ idempotency

    def idem_lookup(self, org: int, key: str) -> Replay | None:
        with self._read() as con:
            row = con.raw(
                "SELECT method, path, status, body, etag, fingerprint FROM idempotency "
                "WHERE org_id = %s AND key = %s AND created > %s",
                (org, key, time.time() - IDEMPOTENCY_TTL),
            ).fetchone()
        if row is None:
            return None
        return Replay(row[0], row[1], row[2], bytes(row[3]), row[4], row[5])

    def _idem_record(self, con: PgCon, org: int, idem: Idem | None, status: int, body: Any, etag: str | None) -> None:
        if idem is None:
            return
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        stamp = time.time()
        if self._writes % 1000 == 0:
            con.raw("DELETE FROM idempotency WHERE created < %s", (stamp - IDEMPOTENCY_TTL,))
        cur = con.raw(
            "INSERT INTO idempotency(org_id, key, method, path, status, body, etag, created, fingerprint) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (org_id, key) DO UPDATE SET "
            "method = excluded.method, path = excluded.path, status = excluded.status, "
            "body = excluded.body, etag = excluded.etag, created = excluded.created, "
            "fingerprint = excluded.fingerprint WHERE idempotency.created < %s",
            (org, idem.key, idem.method, idem.path, status, raw, etag, stamp, idem.fingerprint, stamp - IDEMPOTENCY_TTL),
        )
        if cur.rowcount == 0:
            raise Conflict("this Idempotency-Key was used by a request that completed meanwhile")

    def _answer(self, con: PgCon, org: int, idem: Idem | None, result: dict) -> dict:
        if idem is not None:
            version = result.get("version")
            etag = f'"{version}"' if isinstance(version, int) else None
            self._idem_record(con, org, idem, idem.status, result, etag)
        return result


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET lock_timeout = '60s'")


def _store_error(exc: BaseException) -> BaseException:
    """A database error that a client can act on, as the store's answer; others as they are."""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict("a concurrent request created the same thing first; read it again")
    if isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable,
                        psycopg.errors.SerializationFailure)):
        return Busy("the database was busy with a concurrent write; nothing was written, retry")
    return exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
