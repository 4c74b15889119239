"""SQLite inserts a write's datapoints in one statement (hlops/server/sqlite_datasets.py).

An ``executemany`` steps once a row, and Python's sqlite3 gives the GIL up around every
step: beside a busy thread (the next request being prepared) each take-back waited a switch
interval, so two writers in flight were no faster than one after the other. The batch now
goes to one ``INSERT ... SELECT`` over ``json_each``. These tests pin that it is one
statement, and that it stores exactly what the row-by-row insert stored (ids, points,
keys, hashes, canonical JSON), keyed and keyless, with text that JSON has to escape."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from srv_helpers import field_list, make_rows

from hlops.server import sqlite_datasets
from hlops.server.sqlite_store import SqliteStore

TRICKY = ['quote " and backslash \\ here', "tab\tnew\nline", "ünïcødé 日本語 🎉", "\u2028 \x00 \x1f", ""]


def rows_with_tricky_text(n: int) -> list[dict]:
    rows = make_rows(n)
    for i, row in enumerate(rows):
        row["text"] = TRICKY[i % len(TRICKY)] + f" {i}"
    return rows


def stored(store: SqliteStore, dataset_id: int) -> list[tuple]:
    return store._w.execute(
        "SELECT id, point, key, hash, data, annotations FROM datapoints WHERE dataset_id = ? ORDER BY id", (dataset_id,)
    ).fetchall()


@contextmanager
def dataset(tmp_path, name: str, key: str | None, rows: list[dict]) -> Iterator[tuple[SqliteStore, int, int]]:
    """``(store, org, dataset id)``: a fresh database holding one dataset with ``rows``."""
    store = SqliteStore(tmp_path / f"{name}.db")
    try:
        (org,) = store.ensure_orgs({"0" * 64: "units"}).values()
        body = {"name": "d", "fields": field_list()} | ({"key": key} if key else {})
        yield store, org, store.create_dataset(org, body, rows, None)["id"]
    finally:
        store.close()


def statements(store: SqliteStore, write: Callable[[], object], *starts: str) -> list[str]:
    """The statements starting with one of ``starts`` that the writer ran for ``write()``."""
    seen: list[str] = []
    store._w.set_trace_callback(seen.append)
    try:
        write()
    finally:
        store._w.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(starts)]


def load(tmp_path, name: str, key: str | None, batches: list[list[dict]]) -> tuple[list[tuple], list[str]]:
    """The stored rows after appending ``batches``, and the INSERT statements run for them."""
    with dataset(tmp_path, name, key, []) as (store, org, ds):
        def write() -> None:
            for rows in batches:
                store.append_datapoints(org, ds, rows, None, None)
        inserts = statements(store, write, "INSERT INTO DATAPOINTS")
        return stored(store, ds), inserts


@pytest.mark.parametrize("key", ["external_id", None])
def test_a_batch_is_one_insert_statement_and_stores_what_row_by_row_did(tmp_path, monkeypatch, key):
    if not sqlite_datasets.ONE_STATEMENT:
        pytest.skip("this SQLite has no json_each / ->>")
    rows = rows_with_tricky_text(700)
    batches = [rows[:500], rows[500:]]
    got, inserts = load(tmp_path, "one", key, batches)
    assert len(inserts) == len(batches)  # not one a row
    monkeypatch.setattr(sqlite_datasets, "ONE_STATEMENT", False)
    want, row_inserts = load(tmp_path, "many", key, batches)
    assert len(row_inserts) == len(rows)
    assert got == want
    assert len(got) == len(rows) and len({r[0] for r in got}) == len(rows)
    for _, point, k, digest, data, _ in got:
        assert hashlib.sha256(data).digest() == digest
        assert isinstance(point, int) and (k is None) == (key is None)
        assert isinstance(data, bytes) and isinstance(digest, bytes) and len(digest) == 32


def test_a_duplicate_key_in_a_later_batch_is_refused_and_stores_nothing_of_it(tmp_path):
    with dataset(tmp_path, "d", "external_id", make_rows(10)) as (store, org, ds):
        before = stored(store, ds)
        with pytest.raises(sqlite_datasets.Conflict, match="already in the dataset"):
            store.append_datapoints(org, ds, make_rows(5, start=8), None, None)
        assert stored(store, ds) == before


def replaced(tmp_path, name: str, key: str | None) -> tuple[list[tuple], list[str]]:
    """The stored rows after a write that replaces rows by id (two of them swapping their
    keys), and the UPDATE statements it ran."""
    with dataset(tmp_path, name, key, rows_with_tricky_text(300)) as (store, org, ds):
        ids = [r[0] for r in stored(store, ds)]
        new = rows_with_tricky_text(300)
        for row in new:
            row["text"] += " edited"
        new[3]["external_id"], new[7]["external_id"] = new[7]["external_id"], new[3]["external_id"]
        items = [{"id": dp_id, "data": row} for dp_id, row in zip(ids[::3], new[::3])]
        items += [{"id": ids[3], "data": new[3]}, {"id": ids[7], "data": new[7]}]
        items = list({it["id"]: it for it in items}.values())
        updates = statements(store, lambda: store.patch_datapoints(org, ds, items, None, None), "UPDATE DATAPOINTS", "WITH")
        return stored(store, ds), updates


@pytest.mark.parametrize("key", ["external_id", None])
def test_rows_replaced_by_id_in_one_statement_store_what_row_by_row_did(tmp_path, monkeypatch, key):
    if not sqlite_datasets.ONE_STATEMENT:
        pytest.skip("this SQLite has no json_each / ->>")
    got, updates = replaced(tmp_path, "one", key)
    assert len(updates) == (2 if key else 1)
    monkeypatch.setattr(sqlite_datasets, "ONE_STATEMENT", False)
    want, row_updates = replaced(tmp_path, "many", key)
    assert len(row_updates) > 100
    assert got == want
    assert sum(b"edited" in r[4] for r in got) == 101  # every third row, and row 7
    for _, _, _, digest, data, _ in got:
        assert hashlib.sha256(data).digest() == digest


def test_rows_replaced_by_id_are_looked_up_by_primary_key_not_by_walking_the_dataset(tmp_path):
    store = SqliteStore(tmp_path / "p.db")
    try:
        plan = " | ".join(r[3] for r in store._w.execute(
            "EXPLAIN QUERY PLAN " + sqlite_datasets.UPDATE_BATCH, (1, b"", b"[]", b"")))
        assert "SEARCH datapoints USING PRIMARY KEY (dataset_id=? AND id=?)" in plan, plan
        assert "datapoints_part" not in plan, plan
    finally:
        store.close()
