"""The part index covers the row digest: the rows of many buckets are read from the index
alone (SQLite's query plan says COVERING INDEX; the table's pages hold the data), and a
database made before, with the old index, is given the new one when its server starts,
with the same answers. PostgreSQL: schema version 4 makes the same index."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from srv_helpers import create_dataset, expected_rows, field_list, make_rows, paginate, rows_by_bucket

from hlops.server.pg_schema import SCHEMA_VERSION, migrate, schema_version
from hlops.server.sqlite_store import SqliteStore
from hlops.server.store import Page
from support.postgres import drop_database, fresh_database, require_url
from support.server import ServerProcess

STORES = ("sqlite",)  # one server per test here; the rows' answers are in test_server_digest
OLD_INDEX = "CREATE INDEX datapoints_bucket ON datapoints (dataset_id, (point & 255), id, point)"


def rows_of(srv, dataset_id: int, which: list[int], buckets: int = 65536) -> list[dict]:
    return paginate(srv, f"/datasets/{dataset_id}/digest/rows", {"limit": 50}, method="POST",
                    json={"buckets": buckets, "which": which})


def indexes(path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'datapoints'")}


def test_sqlite_rows_of_many_buckets_read_only_the_index(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    try:
        (org,) = store.ensure_orgs({"0" * 64: "units"}).values()
        ds = store.create_dataset(org, {"name": "d", "key": "external_id", "fields": field_list()}, make_rows(400), None)
        store.digest_rows_of(org, ds["id"], None, 65536, [1, 2, 300], Page(None, 100))  # opens the reader
        seen: list[str] = []
        store._reader().set_trace_callback(seen.append)
        got = store.digest_rows_of(org, ds["id"], None, 65536, list(range(0, 65536, 7)), Page(None, 100))
        store._reader().set_trace_callback(None)
        assert got["items"]
        selects = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "FROM datapoints" in s]
        assert selects
        with sqlite3.connect(tmp_path / "s.db") as con:
            for sql in selects:
                plan = " ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql))
                assert "COVERING INDEX datapoints_part" in plan and "PRIMARY KEY" not in plan, (sql, plan)
    finally:
        store.close()


def test_sqlite_database_with_the_old_index_is_given_the_covering_one(tmp_path):
    rows = make_rows(500)
    with ServerProcess(tmp_path) as srv:
        ds = create_dataset(srv, key="external_id", rows=rows)
    db = tmp_path / "server.db"
    with sqlite3.connect(db) as con:  # what a build before this one made
        con.execute("DROP INDEX datapoints_part")
        con.execute(OLD_INDEX)
    assert "datapoints_bucket" in indexes(db) and "datapoints_part" not in indexes(db)
    expected = rows_by_bucket(expected_rows(rows, ds["datapoint_ids"], "external_id"), 65536)
    which = sorted(expected)[::3]
    with ServerProcess(tmp_path) as srv:
        got = rows_of(srv, ds["id"], which)
    assert {"datapoints_part", "datapoints_key"} <= indexes(db) and "datapoints_bucket" not in indexes(db)
    want = {dp_id: row for b in which for dp_id, row in expected[b].items()}
    assert {r["id"]: (r["key"], r["hash"]) for r in got} == want


@pytest.fixture
def pg_url():
    require_url()
    url = fresh_database()
    yield url
    drop_database(url)


def test_postgresql_version_3_is_given_the_covering_index(pg_url, tmp_path):
    assert SCHEMA_VERSION >= 4
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn, target=3)
        assert conn.execute("SELECT to_regclass('datapoints_bucket')").fetchone()[0] == "datapoints_bucket"
    rows = make_rows(300)
    with ServerProcess(tmp_path, db_url=pg_url) as srv:
        ds = create_dataset(srv, key="external_id", rows=rows)
        expected = rows_by_bucket(expected_rows(rows, ds["datapoint_ids"], "external_id"), 4096)
        which = sorted(expected)[::2]
        got = rows_of(srv, ds["id"], which, 4096)
    want = {dp_id: row for b in which for dp_id, row in expected[b].items()}
    assert {r["id"]: (r["key"], r["hash"]) for r in got} == want
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('datapoints_bucket')").fetchone()[0] is None
        cols = conn.execute("SELECT pg_get_indexdef('datapoints_part'::regclass)").fetchone()[0]
        assert "INCLUDE (point, key, hash, annotations)" in cols
