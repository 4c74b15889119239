"""Digests in PostgreSQL: the SQLite logic (:mod:`sqlite_digest`) with PostgreSQL's
aggregates.

The bucket summary reads chunks of ``string_agg`` of the stored hashes (raw bytes back to
back) and of ``point & 65535`` (decimal text): one row per 100,000 datapoints, grouped and
XORed by numpy exactly as for SQLite (:class:`hlops.server.digest.FineSummary`), so the
hashes are the same. Row digests select ``id, key, hash, annotations`` and build each item
in Python, in the SQLite answer's member order.
"""

from __future__ import annotations

from typing import Any

from hlops.server.digest import FineSummary, parts_after
from hlops.server.pg_common import PgCon
from hlops.server.rows import PARTS, bucket_parts
from hlops.server.sqlite_common import int_cursor, page_of, pair_cursor
from hlops.server.sqlite_digest import DIGEST_CHUNK, DigestMixin
from hlops.server.store import Page

SUMMARY_CHUNK = (
    "SELECT string_agg(hash, ''::bytea), string_agg((point & 65535)::text, ','), "
    "max(id), count(*) FROM (SELECT hash, point, id FROM datapoints WHERE dataset_id = %s AND id > %s "
    "ORDER BY id LIMIT %s) AS chunk"
)
ROW_COLUMNS = "id, coalesce(key, encode(hash, 'hex')), encode(hash, 'hex'), annotations"


def _item(r: Any) -> dict:
    return {"id": r[0], "key": r[1], "hash": r[2], "annotations": r[3]}


class PgDigestMixin(DigestMixin):
    def _key_summary(self, con: PgCon, dataset_id: int) -> FineSummary:
        summary = FineSummary()
        after = 0
        while True:
            hashes, fine, last, n = con.raw(SUMMARY_CHUNK, (dataset_id, after, DIGEST_CHUNK), binary=True).fetchone()
            if not n:
                return summary
            summary.add_chunk(bytes(hashes), fine)
            after = last

    def digest_rows(
        self, org: int, dataset_id: int, key: str | None, buckets: int | None, bucket: int | None, page: Page
    ) -> dict:
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            key = self._digest_key(con, row, key)
            if key != row["key_field"]:
                return self._digest_rows_slow(con, dataset_id, key, buckets, bucket, page)
            if bucket is None:
                after = int_cursor(page.after)
                rows = con.raw(
                    f"SELECT {ROW_COLUMNS} FROM datapoints WHERE dataset_id = %s AND id > %s ORDER BY id LIMIT %s",
                    (dataset_id, after, page.limit + 1),
                ).fetchall()
                rows, next_cursor = page_of(rows, page.limit, lambda r: r[0])
                return {"items": [_item(r) for r in rows], "next_cursor": next_cursor}
            parts = bucket_parts(buckets, bucket)
            sql = (
                f"SELECT {ROW_COLUMNS}, (point & 255) FROM datapoints "
                "WHERE dataset_id = %s AND (point & 255) = ANY(%s)"
            )
            args: list[Any] = [dataset_id, list(parts)]
            if buckets > PARTS:
                sql += " AND (point & %s) = %s"
                args += [buckets - 1, bucket]
            if page.after is not None:
                part, after_id = pair_cursor(page.after, PARTS)
                sql += " AND ((point & 255), id) > (%s, %s)"
                args += [part, after_id]
            rows = con.raw(sql + " ORDER BY (point & 255), id LIMIT %s", (*args, page.limit + 1)).fetchall()
            rows, next_cursor = page_of(rows, page.limit, lambda r: [r[4], r[0]])
        return {"items": [_item(r) for r in rows], "next_cursor": next_cursor}

    @staticmethod
    def _rows_by_key(con: PgCon, dataset_id: int, keys: list[str]) -> list[dict]:
        """One statement, the (distinct) keys one array joined to the key index. Measured at
        1M rows, 10,000 keys: ``key = ANY(%s)`` made PostgreSQL 15 walk the table (a parallel
        seq scan, ~125 ms; ~100 ms as ``key IN (SELECT unnest(...))``), the join is a nested
        loop of index look-ups (~67 ms), chosen by the planner from the array's length."""
        rows = con.raw(
            f"SELECT {ROW_COLUMNS} FROM unnest(%s::text[]) AS k(k) JOIN datapoints ON dataset_id = %s AND key = k.k "
            "ORDER BY id",
            (keys, dataset_id),
        ).fetchall()
        return [_item(r) for r in rows]

    def digest_rows_of(
        self, org: int, dataset_id: int, key: str | None, buckets: int, which: list[int], page: Page
    ) -> dict:
        """As SQLite's: the parts holding the buckets in order, each one range of the
        covering ``datapoints_part`` index."""
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            key = self._digest_key(con, row, key, ("body", "key"))
            if key != row["key_field"]:
                return self._digest_rows_slow(con, dataset_id, key, buckets, set(which), page)
            rows: list = []
            for part, after, wanted in parts_after(buckets, which, page):
                sql = (
                    f"SELECT {ROW_COLUMNS}, (point & 255) FROM datapoints "
                    "WHERE dataset_id = %s AND (point & 255) = %s AND id > %s"
                )
                args: list[Any] = [dataset_id, part, after]
                if wanted is not None:
                    sql += " AND (point & %s) = ANY(%s)"
                    args += [buckets - 1, wanted]
                rows += con.raw(sql + " ORDER BY id LIMIT %s", (*args, page.limit + 1 - len(rows))).fetchall()
                if len(rows) > page.limit:
                    break
            rows, next_cursor = page_of(rows, page.limit, lambda r: [r[4], r[0]])
        return {"items": [_item(r) for r in rows], "next_cursor": next_cursor}
