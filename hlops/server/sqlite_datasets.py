"""Datasets, fields, datapoints and digests in SQLite (a mixin of :class:`SqliteStore`).

Datapoint writes do their CPU work -- normalising, serialising, hashing 10,000 rows --
before taking the write lock (:func:`hlops.server.rows.prepare`), then insert in one
transaction (:func:`insert_rows`: one statement for the whole batch). If the dataset's
fields or key changed in between (a concurrent PATCH), the rows are prepared again under
the lock.

**One statement, not one step a row.** Python's sqlite3 lets go of the GIL around each
``sqlite3_step``: an ``executemany`` of 10,000 rows gives it up and takes it back 10,000
times. While another thread holds the GIL -- the next request being parsed and prepared,
a digest being read -- every take-back waits for that thread's switch interval (5 ms): the
insert crawls (300,000 rows beside a busy thread: 2.3 s alone, over a minute beside it), so
two writers in flight took as long as one after the other. :func:`insert_rows` sends the
batch as three parameters (the rows' points and keys as one JSON array, their hashes and
their canonical JSON each concatenated into one blob) to one ``INSERT ... SELECT`` over
``json_each``: SQLite runs the whole batch in one step without the GIL, so the next
request is prepared meanwhile (docs/performance.md, part I). It is also ~1 µs a row
cheaper than binding six parameters a row.

Digests are in :mod:`hlops.server.sqlite_digest`.
"""

from __future__ import annotations

import sqlite3
from itertools import accumulate, repeat
from typing import Any

import orjson

from hlops import canonical
from hlops.server import roots
from hlops.server.rows import (
    Prepared,
    duplicate_keys,
    duplicate_message,
    prepare,
    stored_point,
)
from hlops.server.sqlite_common import check_version, chunks, int_cursor, marks, now, page_of
from hlops.server.store import Conflict, Invalid, NotFound, Page

# One INSERT for a whole batch: ``?5`` is a JSON array of ``[point, key, offset, length]``
# (``offset``: 1-based, into ``?4``), ``?3`` the 32-byte hashes end to end, ``?4`` the rows'
# canonical JSON end to end; the n-th element (``j.key``) gets id ``?2 + n``.
INSERT_BATCH = (
    "INSERT INTO datapoints(dataset_id, id, point, key, hash, data) "
    "SELECT ?1, ?2 + j.key, j.value ->> 0, j.value ->> 1, substr(?3, j.key * 32 + 1, 32), "
    "substr(?4, j.value ->> 2, j.value ->> 3) FROM json_each(?5) AS j"
)
ONE_STATEMENT = sqlite3.sqlite_version_info >= (3, 38, 0)  # json_each and ->> built in


def insert_rows(con: sqlite3.Connection, dataset_id: int, first: int, prepared: Prepared) -> None:
    """Insert the prepared rows with ids ``first``, ``first + 1``, ... (see the module's
    docstring: one statement, the GIL let go once)."""
    if not ONE_STATEMENT:
        con.executemany(
            "INSERT INTO datapoints(dataset_id, id, point, key, hash, data) VALUES (?, ?, ?, ?, ?, ?)",
            zip(repeat(dataset_id), range(first, first + len(prepared)), prepared.points, prepared.keys,
                prepared.hashes, prepared.data),
        )
        return
    con.execute(INSERT_BATCH, (dataset_id, first, b"".join(prepared.hashes), b"".join(prepared.data), _spec(prepared)))


# The same for rows replaced by id: ``?3`` is a JSON array of ``[id, point, key, offset,
# length]``; a key is freed first (``FREE_KEYS``), so rows of one write may swap keys. The
# rows are a MATERIALIZED table first: joined straight to json_each, SQLite walks the whole
# dataset and looks each datapoint up in the array, instead of each row's id up by key.
UPDATE_BATCH = (
    "WITH j(n, id, point, key, off, len) AS MATERIALIZED (SELECT key, value ->> 0, value ->> 1, value ->> 2, "
    "value ->> 3, value ->> 4 FROM json_each(?3)) "
    "UPDATE datapoints SET point = j.point, key = j.key, hash = substr(?2, j.n * 32 + 1, 32), "
    "data = substr(?4, j.off, j.len) FROM j WHERE datapoints.dataset_id = ?1 AND datapoints.id = j.id"
)
FREE_KEYS = "UPDATE datapoints SET key = NULL WHERE dataset_id = ?1 AND id IN (SELECT value FROM json_each(?2))"


def update_rows(con: sqlite3.Connection, dataset_id: int, ids: list[int], prepared: Prepared, *, free_keys: bool) -> None:
    """Replace the datapoints ``ids`` by the prepared rows (in order), in one statement (two
    with ``free_keys``: the old keys are let go first)."""
    if not ONE_STATEMENT:
        update_rows_each(con, dataset_id, ids, prepared, free_keys=free_keys)
        return
    if free_keys:
        con.execute(FREE_KEYS, (dataset_id, orjson.dumps(ids)))
    con.execute(UPDATE_BATCH, (dataset_id, b"".join(prepared.hashes), _spec(prepared, ids), b"".join(prepared.data)))


def update_rows_each(con: Any, dataset_id: int, ids: list[int], prepared: Prepared, *, free_keys: bool) -> None:
    """:func:`update_rows` a statement a row (an older SQLite; PostgreSQL, whose driver
    holds no GIL while the server works)."""
    if free_keys:
        con.executemany("UPDATE datapoints SET key = NULL WHERE dataset_id = ? AND id = ?", zip(repeat(dataset_id), ids))
    con.executemany(
        "UPDATE datapoints SET point = ?, key = ?, hash = ?, data = ? WHERE dataset_id = ? AND id = ?",
        zip(prepared.points, prepared.keys, prepared.hashes, prepared.data, repeat(dataset_id), ids),
    )


def _spec(prepared: Prepared, ids: list[int] | None = None) -> bytes:
    """The JSON array of the statements above: ``[(id,) point, key, offset, length]`` a row,
    ``offset`` 1-based into the rows' canonical JSON end to end. SQLite's ``->>`` would cut a
    key at an escaped NUL; :func:`hlops.server.rows.prepare` refuses such keys first."""
    lengths = [len(d) for d in prepared.data]
    columns = (prepared.points, prepared.keys, accumulate(lengths[:-1], initial=1), lengths)
    return orjson.dumps(list(zip(*columns) if ids is None else zip(ids, *columns)))


class DatasetsMixin:
    """Needs ``_read()``, ``_write()``, ``_answer()``, ``_names_lock()`` and
    ``IntegrityError`` from the store class (SQLite or PostgreSQL)."""

    # ------------------------------------------------------------------ reading helpers

    def _dataset(self, con: sqlite3.Connection, org: int, dataset_id: int) -> sqlite3.Row:
        row = con.execute(
            "SELECT * FROM datasets WHERE id = ? AND org_id = ?", (dataset_id, org)
        ).fetchone()
        if row is None:
            raise NotFound(f"dataset {dataset_id} not found")
        return row

    @staticmethod
    def _fields(con: sqlite3.Connection, dataset_ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {i: [] for i in dataset_ids}
        for part in chunks(dataset_ids):
            for f in con.execute(
                f"SELECT id, dataset_id, name, data_type, description FROM fields "
                f"WHERE dataset_id IN ({marks(len(part))}) ORDER BY dataset_id, position",
                tuple(part),
            ):
                out[f["dataset_id"]].append(
                    {"id": f["id"], "name": f["name"], "data_type": f["data_type"], "description": f["description"]}
                )
        return out

    def _field_types(self, con: sqlite3.Connection, dataset_id: int) -> dict[str, str]:
        return {f["name"]: f["data_type"] for f in self._fields(con, [dataset_id])[dataset_id]}

    @staticmethod
    def _dataset_json(row: sqlite3.Row, fields: list[dict]) -> dict:
        return {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "key": row["key_field"],
            "fields": fields,
            "datapoint_count": row["datapoint_count"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "version": row["version"],
            "last_applied": orjson.loads(row["last_applied"]) if row["last_applied"] else None,
        }

    def _dataset_out(self, con: sqlite3.Connection, org: int, dataset_id: int) -> dict:
        row = self._dataset(con, org, dataset_id)
        return self._dataset_json(row, self._fields(con, [dataset_id])[dataset_id])

    @staticmethod
    def _touch(con: sqlite3.Connection, dataset_id: int, count_delta: int = 0, root: bytes | None = None) -> None:
        """A change of the dataset: +1 version; ``root``: its datapoints' new XOR of hashes
        (:mod:`hlops.server.roots`), given by every write of datapoints. Without one (a
        metadata change) the stored root stays valid for the new version if it was for the
        old one (the right-hand sides read the row as it was)."""
        con.execute(
            "UPDATE datasets SET version = version + 1, updated_at = ?, "
            "datapoint_count = datapoint_count + ?, hash_xor = coalesce(?, hash_xor), "
            "hash_xor_version = CASE WHEN ? OR hash_xor_version = version THEN version + 1 "
            "ELSE hash_xor_version END WHERE id = ?",
            (now(), count_delta, root, root is not None, dataset_id),
        )

    @staticmethod
    def _root(con: sqlite3.Connection, row: sqlite3.Row) -> bytes:
        """The XOR of the dataset's stored hashes: its ``hash_xor`` when stored for this
        very version, else (a dataset made before the column, or written by a server
        process of an older build since) computed from the datapoints."""
        if row["hash_xor"] is not None and row["hash_xor_version"] == row["version"]:
            return bytes(row["hash_xor"])
        return roots.xor_hashes(
            r[0] for r in con.execute("SELECT hash FROM datapoints WHERE dataset_id = ?", (row["id"],))
        )

    # ------------------------------------------------------------------ datasets

    def create_dataset(self, org: int, spec: dict, rows: list[Any], idem: Any) -> dict:
        fields = _check_fields(spec["fields"])
        key = spec.get("key")
        if key is not None and key not in fields:
            raise Invalid.one(("body", "key"), f"key {key!r} is not a field of this dataset", "unknown_field")
        prepared = prepare(rows, fields, key, ("body", "data")) if rows else None
        if prepared is not None:
            _refuse_duplicates(prepared, key)
        with self._write() as con:
            self._names_lock(con, org)
            if con.execute(
                "SELECT 1 FROM datasets WHERE org_id = ? AND name = ?", (org, spec["name"])
            ).fetchone():
                raise Conflict(f"a dataset named {spec['name']!r} already exists")
            stamp = now()
            dataset_id = con.execute(
                "INSERT INTO datasets(org_id, name, description, key_field, datapoint_count, "
                "version, created_at, updated_at, hash_xor, hash_xor_version) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, 1)",
                (org, spec["name"], spec.get("description"), key, len(prepared or ()), stamp, stamp,
                 roots.xor_hashes(prepared.hashes) if prepared else roots.ZERO),
            ).lastrowid
            con.executemany(
                "INSERT INTO fields(dataset_id, name, data_type, description, position) VALUES (?, ?, ?, ?, ?)",
                [(dataset_id, f["name"], f["data_type"], f.get("description"), i) for i, f in enumerate(spec["fields"])],
            )
            ids = self._insert_rows(con, dataset_id, prepared, key) if prepared else []
            result = self._dataset_out(con, org, dataset_id)
            result["datapoint_ids"] = ids
            return self._answer(con, org, idem, result)

    def list_datasets(self, org: int, name: str | None, page: Page, include_digest: bool = False) -> dict:
        after = int_cursor(page.after)
        sql = "SELECT * FROM datasets WHERE org_id = ? AND id > ?"
        args: list[Any] = [org, after]
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY id LIMIT ?", (*args, page.limit + 1)).fetchall()
            rows, next_cursor = page_of(rows, page.limit, lambda r: r["id"])
            fields = self._fields(con, [r["id"] for r in rows])
            items = [self._dataset_json(r, fields[r["id"]]) for r in rows]
            if include_digest:  # the digest at one bucket: no datapoint read (roots.py)
                for item, r in zip(items, rows):
                    item["digest"] = roots.listed_digest(r["key_field"], r["datapoint_count"], self._root(con, r))
        return {"items": items, "next_cursor": next_cursor}

    def get_dataset(self, org: int, dataset_id: int) -> dict:
        with self._read() as con:
            return self._dataset_out(con, org, dataset_id)

    def patch_dataset(self, org: int, dataset_id: int, patch: dict, if_match: int | None, idem: Any) -> dict:
        with self._write() as con:
            row = self._dataset(con, org, dataset_id)
            check_version(row["version"], if_match)
            existing = self._fields(con, [dataset_id])[dataset_id]
            sets: dict[str, Any] = {}
            if "name" in patch and patch["name"] != row["name"]:
                self._names_lock(con, org)
                if con.execute(
                    "SELECT 1 FROM datasets WHERE org_id = ? AND name = ?", (org, patch["name"])
                ).fetchone():
                    raise Conflict(f"a dataset named {patch['name']!r} already exists")
                sets["name"] = patch["name"]
            if "description" in patch and patch["description"] != row["description"]:
                sets["description"] = patch["description"]
            added, described = [], []
            if patch.get("fields") is not None:
                added, described = _field_changes(existing, patch["fields"])
            types = {f["name"]: f["data_type"] for f in existing} | {f["name"]: f["data_type"] for f in added}
            rekey = "key" in patch and patch["key"] != row["key_field"]
            if rekey:
                if patch["key"] is not None and patch["key"] not in types:
                    raise Invalid.one(("body", "key"), f"key {patch['key']!r} is not a field of this dataset", "unknown_field")
                sets["key_field"] = patch["key"]
            if "last_applied" in patch:
                self._note_applied(con, dataset_id, row, patch["last_applied"])
                row = self._dataset(con, org, dataset_id)
            if not (sets or added or described):
                return self._answer(con, org, idem, self._dataset_json(row, existing))
            if sets:
                con.execute(
                    f"UPDATE datasets SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                    (*sets.values(), dataset_id),
                )
            con.executemany(
                "INSERT INTO fields(dataset_id, name, data_type, description, position) VALUES (?, ?, ?, ?, ?)",
                [(dataset_id, f["name"], f["data_type"], f.get("description"), len(existing) + i) for i, f in enumerate(added)],
            )
            con.executemany(
                "UPDATE fields SET description = ? WHERE dataset_id = ? AND name = ?",
                [(desc, dataset_id, name) for name, desc in described],
            )
            if rekey:
                self._rekey(con, dataset_id, patch["key"])
            self._touch(con, dataset_id)
            result = self._answer(con, org, idem, self._dataset_out(con, org, dataset_id))
        if not rekey:  # committed, the datapoints untouched: the new version's summary is the old one's
            self._carry_summaries(dataset_id, row["version"], result["version"])
        return result

    @staticmethod
    def _note_applied(con: sqlite3.Connection, dataset_id: int, row: sqlite3.Row, note: dict | None) -> None:
        """Set (or clear, ``None``) the dataset's ``last_applied`` note: a client's record of
        its last apply, neither config nor data, so ``version`` and ``updated_at`` stay."""
        text = orjson.dumps(note, option=orjson.OPT_SORT_KEYS).decode() if note is not None else None
        if text != row["last_applied"]:
            con.execute("UPDATE datasets SET last_applied = ? WHERE id = ?", (text, dataset_id))

    def delete_dataset(self, org: int, dataset_id: int, force: bool, if_match: int | None, idem: Any) -> dict:
        with self._write() as con:
            row = self._dataset(con, org, dataset_id)
            check_version(row["version"], if_match)
            readers = con.execute(
                "SELECT DISTINCT p.id, p.name FROM project_sources ps JOIN fields f ON f.id = ps.field_id "
                "JOIN projects p ON p.id = ps.project_id WHERE f.dataset_id = ? ORDER BY p.id",
                (dataset_id,),
            ).fetchall()
            if readers and not force:
                names = ", ".join(f"{p['name']!r} (id {p['id']})" for p in readers)
                raise Conflict(
                    f"dataset {row['name']!r} is read by project(s) {names}; delete them first, "
                    "or delete with ?force=true, which deletes those projects too"
                )
            for p in readers:
                self._delete_project_rows(con, p["id"])
            con.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
            result = {"id": dataset_id, "deleted_projects": [p["id"] for p in readers]}
            return self._answer(con, org, idem, result)

    # ------------------------------------------------------------------ datapoints

    def append_datapoints(self, org: int, dataset_id: int, rows: list[Any], if_match: int | None, idem: Any) -> dict:
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            fields = self._field_types(con, dataset_id)
        key = row["key_field"]
        prepared = prepare(rows, fields, key, ("body", "data"))
        _refuse_duplicates(prepared, key)
        with self._write() as con:
            row = self._dataset(con, org, dataset_id)
            check_version(row["version"], if_match)
            if row["key_field"] != key or self._field_types(con, dataset_id) != fields:
                key, fields = row["key_field"], self._field_types(con, dataset_id)
                prepared = prepare(rows, fields, key, ("body", "data"))
                _refuse_duplicates(prepared, key)
            ids: list[int] = []
            if len(prepared):
                root = roots.xor(self._root(con, row), roots.xor_hashes(prepared.hashes))  # before the insert
                ids = self._insert_rows(con, dataset_id, prepared, key)
                self._warm_start(con, dataset_id, ids)
                self._touch(con, dataset_id, len(ids), root)
            result = self._dataset_out(con, org, dataset_id)
            result["datapoint_ids"] = ids
            return self._answer(con, org, idem, result)

    @staticmethod
    def _update_rows(con: sqlite3.Connection, dataset_id: int, ids: list[int], prepared: Prepared, *, free_keys: bool) -> None:
        update_rows(con, dataset_id, ids, prepared, free_keys=free_keys)

    def _insert_rows(self, con: sqlite3.Connection, dataset_id: int, prepared: Prepared, key: str | None) -> list[int]:
        n = len(prepared)
        last = con.execute(
            "UPDATE sequences SET value = value + ? WHERE name = 'datapoint' RETURNING value", (n,)
        ).fetchone()[0]
        first = last - n + 1
        ids = list(range(first, last + 1))
        try:
            insert_rows(con, dataset_id, first, prepared)
        except sqlite3.IntegrityError:
            # Rows of this batch have ids >= first; only older rows can be the duplicates.
            taken = self._taken_keys(con, dataset_id, prepared.keys, lambda dp_id: dp_id >= first)
            if taken:
                raise Conflict(duplicate_message(key or "", taken, "already in the dataset")) from None
            raise
        return ids

    @staticmethod
    def _taken_keys(con: sqlite3.Connection, dataset_id: int, keys: list[str | None], skip: Any) -> list[str]:
        """Which of ``keys`` stored datapoints hold, leaving out datapoints whose id ``skip``
        accepts (the rows of the write being checked)."""
        wanted = [k for k in keys if k is not None]
        taken: list[str] = []
        for part in chunks(wanted):
            taken += [
                k for k, dp_id in con.execute(
                    f"SELECT key, id FROM datapoints WHERE dataset_id = ? AND key IN ({marks(len(part))})",
                    (dataset_id, *part),
                )
                if not skip(dp_id)
            ]
        return taken

    def list_datapoints(self, org: int, dataset_id: int, fields: list[str] | None, page: Page) -> dict:
        after = int_cursor(page.after)
        with self._read() as con:
            self._dataset(con, org, dataset_id)
            if fields is not None:
                known = self._field_types(con, dataset_id)
                unknown = [f for f in fields if f not in known]
                if unknown:
                    raise Invalid.one(
                        ("query", "fields"),
                        f"unknown field(s) {', '.join(map(repr, unknown))}; the dataset's fields are: "
                        + ", ".join(known),
                        "unknown_field",
                    )
            rows = con.execute(
                "SELECT id, data FROM datapoints WHERE dataset_id = ? AND id > ? ORDER BY id LIMIT ?",
                (dataset_id, after, page.limit + 1),
            ).fetchall()
        rows, next_cursor = page_of(rows, page.limit, lambda r: r[0])
        if fields is None:
            items = [{"id": i, "data": orjson.Fragment(d)} for i, d in rows]
        else:
            items = []
            for i, d in rows:
                data = orjson.loads(d)
                items.append({"id": i, "data": {f: data[f] for f in fields if f in data}})
        return {"items": items, "next_cursor": next_cursor}

    def patch_datapoints(self, org: int, dataset_id: int, items: list[dict], if_match: int | None, idem: Any) -> dict:
        ids = [it["id"] for it in items]
        seen: set[int] = set()
        for i, dp_id in enumerate(ids):
            if dp_id in seen:
                raise Invalid.one(("body", "data", i, "id"), f"datapoint {dp_id} is listed twice", "duplicate")
            seen.add(dp_id)
        rows = [it["data"] for it in items]
        with self._read() as con:
            row = self._dataset(con, org, dataset_id)
            fields = self._field_types(con, dataset_id)
        key = row["key_field"]
        prepared = prepare(rows, fields, key, ("body", "data"), ("data",))
        _refuse_duplicates(prepared, key)
        with self._write() as con:
            row = self._dataset(con, org, dataset_id)
            check_version(row["version"], if_match)
            if row["key_field"] != key or self._field_types(con, dataset_id) != fields:
                key, fields = row["key_field"], self._field_types(con, dataset_id)
                prepared = prepare(rows, fields, key, ("body", "data"), ("data",))
                _refuse_duplicates(prepared, key)
            present: set[int] = set()
            old_hashes: list[bytes] = []
            for part in chunks(ids):
                for dp_id, old in con.execute(
                    f"SELECT id, hash FROM datapoints WHERE dataset_id = ? AND id IN ({marks(len(part))})",
                    (dataset_id, *part),
                ):
                    present.add(dp_id)
                    old_hashes.append(old)
            missing = [(i, dp_id) for i, dp_id in enumerate(ids) if dp_id not in present]
            if missing:
                raise Invalid([
                    {"loc": ["body", "data", i, "id"], "msg": f"datapoint {dp_id} is not in this dataset", "type": "not_found"}
                    for i, dp_id in missing[:50]
                ])
            if not ids:
                return self._answer(con, org, idem, self._dataset_out(con, org, dataset_id))
            root = roots.xor(self._root(con, row), roots.xor(roots.xor_hashes(old_hashes), roots.xor_hashes(prepared.hashes)))
            try:
                self._update_rows(con, dataset_id, ids, prepared, free_keys=key is not None)
            except self.IntegrityError:
                taken = self._taken_keys(con, dataset_id, prepared.keys, seen.__contains__)
                raise Conflict(duplicate_message(key or "", taken, "already in the dataset")) from None
            self._warm_start(con, dataset_id, ids, refresh=True)
            self._touch(con, dataset_id, 0, root)
            return self._answer(con, org, idem, self._dataset_out(con, org, dataset_id))

    def delete_datapoints(self, org: int, dataset_id: int, ids: list[int], if_match: int | None, idem: Any) -> dict:
        with self._write() as con:
            row = self._dataset(con, org, dataset_id)
            check_version(row["version"], if_match)
            root = self._root(con, row)
            gone: list[bytes] = []
            for part in chunks(sorted(set(ids))):
                gone += [r[0] for r in con.execute(
                    f"DELETE FROM datapoints WHERE dataset_id = ? AND id IN ({marks(len(part))}) RETURNING hash",
                    (dataset_id, *part),
                ).fetchall()]
            deleted = len(gone)
            if deleted:
                self._touch(con, dataset_id, -deleted, roots.xor(root, roots.xor_hashes(gone)))
            result = self._dataset_out(con, org, dataset_id)
            result["deleted"] = deleted
            return self._answer(con, org, idem, result)

    def _rekey(self, con: sqlite3.Connection, dataset_id: int, key: str | None) -> None:
        """Recompute every datapoint's key and point after the dataset's key changed."""
        updates, missing, nul = [], [], []
        for dp_id, digest, data in con.execute(
            "SELECT id, hash, data FROM datapoints WHERE dataset_id = ?", (dataset_id,)
        ):
            if key is None:
                text, point = None, canonical.key_point(digest.hex())
            else:
                text = canonical.key_text(orjson.loads(data), key, "")
                if text is None or "\x00" in text:  # no value, or one no store keeps whole (rows.prepare)
                    (missing if text is None else nul).append(dp_id)
                    continue
                point = canonical.key_point(text)
            updates.append((stored_point(point), text, dataset_id, dp_id))
        for ids, what, rule, kind in (
            (missing, "have no value for", "needs a value in every datapoint", "missing"),
            (nul, "hold a NUL character (U+0000) in", "cannot hold one", "key_nul"),
        ):
            if ids:
                shown = ", ".join(map(str, ids[:10]))
                raise Invalid.one(("body", "key"), f"{len(ids)} datapoint(s) {what} field {key!r} (ids {shown}); "
                                  f"a key field {rule}", kind)
        dups = duplicate_keys([u[1] for u in updates])
        if dups:
            raise Conflict(duplicate_message(key or "", dups, "in the dataset's datapoints"))
        con.execute("UPDATE datapoints SET key = NULL WHERE dataset_id = ?", (dataset_id,))
        con.executemany("UPDATE datapoints SET point = ?, key = ? WHERE dataset_id = ? AND id = ?", updates)


# ---------------------------------------------------------------------- pure helpers


def _check_fields(fields: list[dict]) -> dict[str, str]:
    """Field name -> data_type; a name used twice is a 422."""
    out: dict[str, str] = {}
    for i, f in enumerate(fields):
        if f["name"] in out:
            raise Invalid.one(("body", "fields", i, "name"), f"field {f['name']!r} is listed twice", "duplicate")
        out[f["name"]] = f["data_type"]
    return out


def _field_changes(existing: list[dict], desired: list[dict]) -> tuple[list[dict], list[tuple[str, Any]]]:
    """``(fields to add, (name, new description) to update)`` for a PATCH's full field list;
    a removed or retyped field is a 422 (it needs a replacement of the dataset)."""
    _check_fields(desired)
    old = {f["name"]: f for f in existing}
    added, described = [], []
    for i, f in enumerate(desired):
        before = old.get(f["name"])
        if before is None:
            added.append(f)
        elif before["data_type"] != f["data_type"]:
            raise Invalid.one(
                ("body", "fields", i, "data_type"),
                f"field {f['name']!r} is {before['data_type']}; changing a field's type needs a "
                "replacement of the dataset",
                "needs_replacement",
            )
        elif before["description"] != f.get("description"):
            described.append((f["name"], f.get("description")))
    gone = [name for name in old if name not in {f["name"] for f in desired}]
    if gone:
        raise Invalid.one(
            ("body", "fields"),
            f"field(s) {', '.join(map(repr, gone))} missing: fields can only be added; removing or "
            "renaming one needs a replacement of the dataset",
            "needs_replacement",
        )
    return added, described


def _refuse_duplicates(prepared: Prepared, key: str | None) -> None:
    dups = duplicate_keys(prepared.keys)
    if dups:
        raise Conflict(duplicate_message(key or "", dups, "within this request"))
