"""The connection the PostgreSQL store's modules talk through.

The store's logic (validation, answers, error messages) is shared with the SQLite store:
the PostgreSQL mixins inherit the SQLite ones and override only what differs in SQL
(bulk insert by COPY, digests, JSON functions, row locks). For that shared code a
:class:`PgCon` speaks the small part of ``sqlite3.Connection`` it uses:

- ``execute(sql, params)`` / ``executemany(sql, rows)`` with ``?`` placeholders (rewritten to
  psycopg's ``%s`` once per statement text; no shared statement holds a literal ``%`` or
  ``?``);
- rows that index by position *and* by column name (:class:`Row`, like ``sqlite3.Row``);
- ``cursor.lastrowid`` after ``INSERT INTO datasets|projects|project_io`` (the statement
  gets ``RETURNING id``);
- ``executemany`` inside a savepoint, so a unique violation leaves the transaction usable
  for the query that finds the offending keys (PostgreSQL aborts a transaction on error).

``writing`` tells a mixin it runs in a write transaction (reads of a dataset or project
row then take its row lock: ``FOR NO KEY UPDATE``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import psycopg

_RETURNING_ID = re.compile(r"^\s*INSERT INTO (datasets|projects|project_io)\s*\(", re.IGNORECASE)


class Row(tuple):
    """A result row: ``row[0]`` or ``row["name"]``; ``dict(row)`` works (``keys()``)."""

    __slots__ = ()
    _names: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def row_factory(cursor: Any) -> Any:
    desc = cursor.description
    if desc is None:
        return tuple
    names = {d.name: i for i, d in enumerate(desc)}
    return type("Row", (Row,), {"__slots__": (), "_names": names})


class PgCursor(psycopg.Cursor):
    lastrowid: int | None = None


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders -> ``%s``, and ``RETURNING id`` for the inserts that need an id."""
    out = sql.replace("?", "%s")
    if _RETURNING_ID.match(out) and "RETURNING" not in out.upper():
        out += " RETURNING id"
    return out


class PgCon:
    """One connection inside one transaction (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection, writing: bool):
        self.conn = conn
        self.writing = writing

    def execute(self, sql: str, params: Any = ()) -> PgCursor:
        cur = self.conn.cursor()
        text = translate(sql)
        cur.execute(text, tuple(params) if not isinstance(params, (tuple, list)) else params)
        if text.endswith(" RETURNING id") and _RETURNING_ID.match(text):
            cur.lastrowid = cur.fetchone()[0]
        return cur

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.conn.cursor() as cur:
            cur.execute("SAVEPOINT many")
            try:
                cur.executemany(translate(sql), rows)
            except psycopg.errors.IntegrityError:
                cur.execute("ROLLBACK TO SAVEPOINT many")
                raise
            cur.execute("RELEASE SAVEPOINT many")

    def raw(self, sql: str, params: Any = None, *, binary: bool = False) -> PgCursor:
        """A statement in psycopg's own ``%s`` syntax (the PostgreSQL modules' own SQL)."""
        cur = self.conn.cursor(binary=binary)
        cur.execute(sql, params)
        return cur
