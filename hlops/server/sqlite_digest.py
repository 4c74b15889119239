"""Digests in SQLite (a mixin of :class:`SqliteStore`): bucket summaries and row listings.

A digest never parses datapoint JSON when it uses the dataset's own key: it reads the
stored hash and point of each datapoint (concatenated by SQLite in chunks, grouped by
numpy, see :mod:`hlops.server.digest`) and keeps the finest summary of the last few
dataset versions in memory. A digest by another field (``?key=`` that is not the dataset's
key) has to read and parse every datapoint: correct, but slower.

Rows of one bucket come from the ``datapoints_part`` index, which covers them (point, key,
hash, annotations): the bucket's parts (``point & 255``), filtered on ``point & (N - 1)``
when N > 256; each row's JSON is built by SQLite from the index entry and embedded in the
answer as is. Rows of many buckets (``digest_rows_of``) walk the parts that hold them in
order, one range ``(dataset, part, id > after)`` of the index each, filtered there on
``point & (N - 1) IN (the part's wanted buckets)``; the table's pages (the data) are never
read. Rows by key (``digest_rows_by_key``) are one statement: the keys as one JSON array,
each looked up in the unique ``datapoints_key`` index.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from typing import Any

import orjson

from hlops import canonical
from hlops.server.digest import FineSummary, fine_bucket, parts_after
from hlops.server.rows import PARTS, bucket_parts
from hlops.server.sqlite_common import int_cursor, marks, page_of, pair_cursor
from hlops.server.store import Invalid, Page

DIGEST_CHUNK = 100_000  # datapoints per SQL round trip of a digest scan
SUMMARY_CACHE = 4  # fine summaries kept in memory (dataset, version, key)
# a row of the row digest, as JSON text made by SQLite (the key of a keyless dataset is its hash)
ROW_JSON = (
    "json_object('id', id, 'key', coalesce(key, lower(hex(hash))), 'hash', lower(hex(hash)), "
    "'annotations', annotations)"
)


def _part_rows(
    con: sqlite3.Connection, dataset_id: int, part: int, after: int, buckets: int, wanted: list[int] | None,
    limit: int, *, exists: bool = False,
) -> Any:
    """Up to ``limit`` rows of one part above id ``after`` (only those in the ``wanted``
    buckets of ``buckets``; None: all), as ``(their JSON joined by commas, how many, the
    highest id)``; with ``exists``, whether there is one. One range of the covering index
    (the filter and each row's JSON read only its entries, never the table's pages holding
    the data), aggregated by SQLite: one step a part, not one a row, so no Python object
    a row and the GIL let go once (see hlops.server.sqlite_datasets on the per-step GIL)."""
    sql = "FROM datapoints INDEXED BY datapoints_part WHERE dataset_id = ? AND (point & 255) = ? AND id > ?"
    args: list[Any] = [dataset_id, part, after]
    if wanted is not None:
        sql += f" AND (point & ?) IN ({marks(len(wanted))})"
        args += [buckets - 1, *wanted]
    if exists:
        return con.execute(f"SELECT 1 {sql} LIMIT 1", args).fetchone() is not None
    return con.execute(
        f"SELECT group_concat(j, ','), count(*), max(id) FROM (SELECT id, {ROW_JSON} AS j {sql} ORDER BY id LIMIT ?)",
        (*args, limit),
    ).fetchone()


class DigestMixin:
    """Needs ``_read()``, ``_dataset()`` and ``_field_types()``."""

    _summaries: OrderedDict
    _summaries_lock: threading.Lock

    def digest_buckets(self, org: int, dataset_id: int, key: str | None, buckets: int) -> dict:
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            key = self._digest_key(con, row, key)
            summary = self._summary(con, row, key)
        return {
            "key": key,
            "buckets": buckets,
            "datapoint_count": row["datapoint_count"],
            "version": row["version"],
            "items": summary.fold(buckets),
        }

    def _digest_key(
        self, con: sqlite3.Connection, row: sqlite3.Row, key: str | None, at: tuple = ("query", "key")
    ) -> str | None:
        """The key a digest uses: ``key`` if given (it must be a field: else a 422 at ``at``),
        else the dataset's."""
        if key is None:
            return row["key_field"]
        fields = self._field_types(con, row["id"])
        if key not in fields:
            raise Invalid.one(
                at,
                f"key {key!r} is not a field of this dataset; its fields are: " + ", ".join(fields),
                "unknown_field",
            )
        return key

    def _summary(self, con: sqlite3.Connection, row: sqlite3.Row, key: str | None) -> FineSummary:
        cache_key = (row["id"], row["version"], key)
        with self._summaries_lock:
            hit = self._summaries.get(cache_key)
            if hit is not None:
                self._summaries.move_to_end(cache_key)
                return hit
        if key == row["key_field"]:
            summary = self._key_summary(con, row["id"])
        else:
            summary = FineSummary()
            fine, hashes = [], []
            for _id, text, digest in self._keyed_scan(con, row["id"], key):
                fine.append(fine_bucket(canonical.key_point(text)))
                hashes.append(digest)
            summary.add_points(fine, hashes)
        with self._summaries_lock:
            self._summaries[cache_key] = summary
            while len(self._summaries) > SUMMARY_CACHE:
                self._summaries.popitem(last=False)
        return summary

    def _carry_summaries(self, dataset_id: int, version: int, new_version: int) -> None:
        """A committed change of the dataset that touched neither its datapoints nor its
        key (a description, a field added: no hash or point changes) gives ``new_version``
        the summaries cached for ``version``, so the next digest does not scan again. Only
        after the commit: a version number is the data's only once committed."""
        with self._summaries_lock:
            for (ds, v, key), summary in list(self._summaries.items()):
                if ds == dataset_id and v == version:
                    self._summaries[(ds, new_version, key)] = summary
            while len(self._summaries) > SUMMARY_CACHE:
                self._summaries.popitem(last=False)

    @staticmethod
    def _key_summary(con: sqlite3.Connection, dataset_id: int) -> FineSummary:
        """The summary by the dataset's own key: stored hashes and points only."""
        summary = FineSummary()
        # group_concat of the BLOB hashes gives their raw bytes back-to-back (as TEXT:
        # the connection hands TEXT over as bytes for the length of this scan).
        con.text_factory = bytes
        try:
            after = 0
            while True:
                hashes, fine, last, n = con.execute(
                    "SELECT group_concat(hash, ''), group_concat(point & 65535), max(id), count(*) "
                    "FROM (SELECT hash, point, id FROM datapoints WHERE dataset_id = ? AND id > ? "
                    "ORDER BY id LIMIT ?)",
                    (dataset_id, after, DIGEST_CHUNK),
                ).fetchone()
                if not n:
                    break
                summary.add_chunk(hashes, fine)
                after = last
        finally:
            con.text_factory = str
        return summary

    @staticmethod
    def _keyed_scan(con: sqlite3.Connection, dataset_id: int, key: str):
        """``(id, key text, hash)`` of every datapoint by another field than the dataset's
        key; a datapoint without a value for it is keyed by its hash."""
        for dp_id, digest, data in con.execute(
            "SELECT id, hash, data FROM datapoints WHERE dataset_id = ? ORDER BY id", (dataset_id,)
        ):
            text = canonical.key_text(orjson.loads(data), key, "")
            yield dp_id, (text if text is not None else digest.hex()), digest

    def digest_rows(
        self, org: int, dataset_id: int, key: str | None, buckets: int | None, bucket: int | None, page: Page
    ) -> dict:
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            key = self._digest_key(con, row, key)
            if key != row["key_field"]:
                return self._digest_rows_slow(con, dataset_id, key, buckets, bucket, page)
            if bucket is None:
                return self._all_rows(con, dataset_id, int_cursor(page.after), page.limit)
            else:
                parts = bucket_parts(buckets, bucket)
                sql = (
                    f"SELECT id, {ROW_JSON}, (point & 255) FROM datapoints "
                    f"WHERE dataset_id = ? AND (point & 255) IN ({marks(len(parts))})"
                )
                args: list[Any] = [dataset_id, *parts]
                if buckets > PARTS:
                    sql += " AND (point & ?) = ?"
                    args += [buckets - 1, bucket]
                if page.after is not None:
                    part, after_id = pair_cursor(page.after, PARTS)
                    sql += " AND ((point & 255), id) > (?, ?)"
                    args += [part, after_id]
                rows = con.execute(
                    sql + " ORDER BY (point & 255), id LIMIT ?", (*args, page.limit + 1)
                ).fetchall()
                rows, next_cursor = page_of(rows, page.limit, lambda r: [r[2], r[0]])
        # each row is already JSON, built by SQLite: embed it as is
        return {"items": [orjson.Fragment(r[1]) for r in rows], "next_cursor": next_cursor}

    def digest_rows_of(
        self, org: int, dataset_id: int, key: str | None, buckets: int, which: list[int], page: Page
    ) -> dict:
        """The rows of the buckets ``which`` (sorted, distinct) of ``buckets``, in one paged
        stream ordered by (part, id): one indexed range per part that holds a wanted bucket."""
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            key = self._digest_key(con, row, key, ("body", "key"))
            if key != row["key_field"]:
                return self._digest_rows_slow(con, dataset_id, key, buckets, set(which), page)
            texts: list[str] = []
            count, last, more = 0, None, False
            for part, after, wanted in parts_after(buckets, which, page):
                if count == page.limit:  # the page is full: is any row left, for the cursor?
                    if _part_rows(con, dataset_id, part, after, buckets, wanted, 1, exists=True):
                        more = True
                        break
                    continue
                text, n, high = _part_rows(con, dataset_id, part, after, buckets, wanted, page.limit - count)
                if n:
                    texts.append(text)
                    count, last = count + n, [part, high]
                if count == page.limit and _part_rows(con, dataset_id, part, high, buckets, wanted, 1, exists=True):
                    more = True
                    break
        return {"items": orjson.Fragment("[" + ",".join(texts) + "]"), "next_cursor": last if more else None}

    def digest_rows_by_key(self, org: int, dataset_id: int, keys: list[str]) -> dict:
        """The rows of the datapoints whose key is one of ``keys`` (distinct; one not found is
        left out), ordered by id, all in one answer."""
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            if row["key_field"] is None:
                raise Invalid.one(("body", "keys"), f"dataset {dataset_id} has no key field: its datapoints are keyed "
                                  "by their hash; read its rows by bucket (GET .../digest)", "no_key")
            return {"items": self._rows_by_key(con, dataset_id, keys), "next_cursor": None}

    @staticmethod
    def _rows_by_key(con: sqlite3.Connection, dataset_id: int, keys: list[str]) -> Any:
        """One statement: a look-up of the key index a key; the answer's JSON array is built
        by SQLite. ``INDEXED BY``: without it SQLite walked the whole dataset by its primary
        key (1M rows, 10,000 keys: 0.37-0.46 s against 0.02 s warm)."""
        (text,) = con.execute(
            f"SELECT '[' || coalesce(group_concat(j, ','), '') || ']' FROM (SELECT {ROW_JSON} AS j "
            "FROM datapoints INDEXED BY datapoints_key WHERE dataset_id = ? AND key IN (SELECT value FROM json_each(?)) "
            "ORDER BY id)",
            (dataset_id, orjson.dumps(keys)),
        ).fetchone()
        return orjson.Fragment(text)

    @staticmethod
    def _all_rows(con: sqlite3.Connection, dataset_id: int, after: int, limit: int) -> dict:
        """A page of every datapoint's row, by id: SQLite builds the whole JSON array, so
        no Python object is made per datapoint."""
        text, last, n = con.execute(
            f"SELECT '[' || coalesce(group_concat(j, ','), '') || ']', max(id), count(*) FROM ("
            f"SELECT id, {ROW_JSON} AS j FROM datapoints WHERE dataset_id = ? AND id > ? ORDER BY id LIMIT ?)",
            (dataset_id, after, limit),
        ).fetchone()
        more = n == limit and con.execute(
            "SELECT 1 FROM datapoints WHERE dataset_id = ? AND id > ? LIMIT 1", (dataset_id, last)
        ).fetchone()
        return {"items": orjson.Fragment(text), "next_cursor": last if more else None}

    def _digest_rows_slow(
        self, con: sqlite3.Connection, dataset_id: int, key: str, buckets: int | None,
        bucket: int | set[int] | None, page: Page,
    ) -> dict:
        """Rows by another field than the dataset's key (every datapoint parsed), of one
        bucket, of a set of buckets, or of all; ordered by id."""
        after = int_cursor(page.after)
        counts = dict(con.execute(
            "SELECT id, annotations FROM datapoints WHERE dataset_id = ? AND id > ?", (dataset_id, after)
        ).fetchall())
        items = []
        for dp_id, text, digest in self._keyed_scan(con, dataset_id, key):
            if dp_id <= after:
                continue
            if bucket is not None:
                b = canonical.key_point(text) % buckets
                if (b not in bucket) if isinstance(bucket, set) else (b != bucket):
                    continue
            items.append({"id": dp_id, "key": text, "hash": digest.hex(), "annotations": counts.get(dp_id, 0)})
            if len(items) > page.limit:
                break
        items, next_cursor = page_of(items, page.limit, lambda r: r["id"])
        return {"items": items, "next_cursor": next_cursor}
