"""Datasets and datapoints in PostgreSQL: the SQLite logic (:mod:`sqlite_datasets`) with
row locks and ``COPY``.

- In a write transaction the dataset's row is read ``FOR NO KEY UPDATE``: concurrent writers of
  one dataset (in any process) take turns, and each checks ``If-Match`` against the version
  the previous one committed.
- Datapoints go in by one binary ``COPY`` per request (inside a savepoint: when a key is
  already taken, the savepoint is rolled back and the taken keys are looked up for the
  409's message). Their ids are reserved in one step (``hlops_reserve_ids``, see
  :mod:`pg_schema`): consecutive, and -- as the dataset's row is locked -- increasing in
  commit order within a dataset, so an id cursor never skips a row committed later.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import psycopg

from hlops.server.pg_common import PgCon
from hlops.server.rows import Prepared, duplicate_message
from hlops.server.sqlite_datasets import DatasetsMixin, update_rows_each
from hlops.server.store import Conflict, NotFound

COPY_SQL = "COPY datapoints (dataset_id, id, point, key, hash, data) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ["int8", "int8", "int8", "text", "bytea", "bytea"]


class PgDatasetsMixin(DatasetsMixin):
    def _dataset(self, con: PgCon, org: int, dataset_id: int) -> Any:
        lock = " FOR NO KEY UPDATE" if con.writing else ""
        row = con.raw(f"SELECT * FROM datasets WHERE id = %s AND org_id = %s{lock}", (dataset_id, org)).fetchone()
        if row is None:
            raise NotFound(f"dataset {dataset_id} not found")
        return row

    @staticmethod
    def _update_rows(con: PgCon, dataset_id: int, ids: list[int], prepared: Prepared, *, free_keys: bool) -> None:
        update_rows_each(con, dataset_id, ids, prepared, free_keys=free_keys)

    def _insert_rows(self, con: PgCon, dataset_id: int, prepared: Prepared, key: str | None) -> list[int]:
        n = len(prepared)
        last = con.raw("SELECT hlops_reserve_ids(%s)", (n,)).fetchone()[0]
        first = last - n + 1
        ids = list(range(first, last + 1))
        with con.conn.cursor() as cur:
            cur.execute("SAVEPOINT copy_rows")
            try:
                with cur.copy(COPY_SQL) as copy:
                    copy.set_types(COPY_TYPES)
                    write = copy.write_row
                    for row in zip(repeat(dataset_id), ids, prepared.points, prepared.keys, prepared.hashes, prepared.data):
                        write(row)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT copy_rows")
                taken = self._taken_keys(con, dataset_id, prepared.keys, lambda dp_id: dp_id >= first)
                if taken:
                    raise Conflict(duplicate_message(key or "", taken, "already in the dataset")) from None
                raise
            cur.execute("RELEASE SAVEPOINT copy_rows")
        return ids
