"""`GET /datasets?include=digest` [ext]: each listed dataset's digest at one bucket (key,
count, XOR of its datapoints' hashes), kept by every datapoint write, on both stores; equal
to `GET /datasets/{id}/digest?buckets=1` after every kind of write; unknown values 422."""

from __future__ import annotations

import psycopg
import sqlite3

from srv_helpers import assert_validation, create_dataset, field_list, make_rows, paginate, uniq
from support.postgres import db_url_for, drop_database

from hlops.server.pg_store import PgStore
from hlops.server.sqlite_store import SqliteStore

EMPTY = "0" * 64


def listed(server, dataset_id: int, **params) -> dict:
    r = server.call("GET", "/datasets", params={"include": "digest", "limit": 1000, **params})
    assert r.status_code == 200, r.text
    return next(it for it in r.json()["items"] if it["id"] == dataset_id)


def one_bucket(server, dataset_id: int) -> dict:
    """What the list should say, from the digest endpoint (its fine summary of the rows)."""
    body = server.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 1}).json()
    items = body["items"]
    return {"key": body["key"], "count": body["datapoint_count"], "hash": items[0]["hash"] if items else EMPTY}


def assert_agrees(server, dataset_id: int) -> dict:
    item = listed(server, dataset_id)
    assert item["digest"] == one_bucket(server, dataset_id)
    assert item["digest"]["count"] == item["datapoint_count"]
    return item


def test_every_write_keeps_the_listed_digest_equal_to_the_digest(server):
    ds = create_dataset(server, key="external_id")
    assert assert_agrees(server, ds["id"])["digest"] == {"key": "external_id", "count": 0, "hash": EMPTY}
    path = f"/datasets/{ds['id']}"
    r = server.call("PUT", path, json={"data": make_rows(50)})
    assert r.status_code == 200, r.text
    ids = r.json()["datapoint_ids"]
    assert_agrees(server, ds["id"])
    # a PATCH of datapoints: two rows swap keys, a third gets new text
    a, b = make_rows(2, start=0), make_rows(2, start=1)[:1]
    body = {"data": [{"id": ids[0], "data": {**a[0], "external_id": 10_001}},
                     {"id": ids[1], "data": {**b[0], "external_id": 10_000}},
                     {"id": ids[2], "data": {**make_rows(1, start=2)[0], "text": "edited"}}]}
    assert server.call("PATCH", path + "/datapoints", json=body).status_code == 200
    assert_agrees(server, ds["id"])
    r = server.call("POST", path + "/datapoints/delete", json={"ids": [ids[5], ids[7], 999_999_999]})
    assert r.json()["deleted"] == 2
    assert assert_agrees(server, ds["id"])["digest"]["count"] == 48
    before = listed(server, ds["id"])["digest"]
    # metadata: description, a field added, the key dropped and set again, a note
    fields = field_list() + [{"name": "extra", "data_type": "text"}]
    assert server.call("PATCH", path, json={"description": "d", "fields": fields}).status_code == 200
    assert server.call("PATCH", path, json={"key": None}).status_code == 200
    assert assert_agrees(server, ds["id"])["digest"] == {**before, "key": None}
    assert server.call("PATCH", path, json={"key": "external_id", "last_applied": {"a": 1}}).status_code == 200
    assert assert_agrees(server, ds["id"])["digest"] == before
    # and every datapoint deleted: the empty root again
    server.call("POST", path + "/datapoints/delete", json={"ids": ids})
    assert assert_agrees(server, ds["id"])["digest"] == {"key": "external_id", "count": 0, "hash": EMPTY}


def test_keyless_duplicates_and_a_dataset_created_with_rows(server):
    rows = make_rows(30, tag="kl")
    ds = create_dataset(server, rows=rows + rows[:4])  # 4 rows twice: their hashes XOR away
    item = assert_agrees(server, ds["id"])
    assert item["digest"]["key"] is None and item["digest"]["count"] == 34
    server.call("PUT", f"/datasets/{ds['id']}", json={"data": rows[:1]})
    assert_agrees(server, ds["id"])


def test_without_include_the_items_are_unchanged(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    item = next(it for it in paginate(server, "/datasets") if it["id"] == ds["id"])
    assert "digest" not in item
    with_digest = listed(server, ds["id"])
    assert {k: v for k, v in with_digest.items() if k != "digest"} == item
    # the name filter and pagination work with it
    r = server.call("GET", "/datasets", params={"include": "digest", "name": ds["name"]})
    assert [it["id"] for it in r.json()["items"]] == [ds["id"]] and "digest" in r.json()["items"][0]
    pages = paginate(server, "/datasets", {"include": "digest", "limit": 1})
    assert all("digest" in it for it in pages) and ds["id"] in [it["id"] for it in pages]


def test_unknown_include_is_a_located_422(server):
    assert_validation(server.call("GET", "/datasets", params={"include": "rows"}), ("query", "include"))
    assert_validation(server.call("GET", "/datasets?include=digest&include=digest"), ("query", "include"))


def test_a_dataset_from_before_the_column_is_computed_then_stored(server):
    """hash_xor NULL (a database made by an older build): answered from the datapoints,
    and stored again by the next write."""
    ds = create_dataset(server, key="external_id", rows=make_rows(20))
    expected = one_bucket(server, ds["id"])
    _sql(server, "UPDATE datasets SET hash_xor = NULL, hash_xor_version = NULL WHERE id = ?", ds["id"])
    assert listed(server, ds["id"])["digest"] == expected
    server.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(5, start=100)})
    assert _sql(server, "SELECT hash_xor_version = version FROM datasets WHERE id = ?", ds["id"])
    assert_agrees(server, ds["id"])


def test_a_write_by_an_older_process_is_not_trusted(server):
    """A server process of an older build (still running after a newer one migrated the
    database) writes datapoints and bumps the version without touching the root: the
    stale root is not answered, the datapoints are."""
    ds = create_dataset(server, key="external_id", rows=make_rows(20))
    before = listed(server, ds["id"])["digest"]
    _sql(server, "UPDATE datapoints SET hash = ? WHERE id = ?", bytes(range(32)), ds["datapoint_ids"][0])
    _sql(server, "UPDATE datasets SET version = version + 1 WHERE id = ?", ds["id"])
    item = assert_agrees(server, ds["id"])
    assert item["digest"]["hash"] != before["hash"] and item["version"] == ds["version"] + 1
    server.call("PATCH", f"/datasets/{ds['id']}", json={"description": "metadata only"})
    assert_agrees(server, ds["id"])  # still computed: the metadata change carries no validity
    server.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(2, start=300)})
    assert _sql(server, "SELECT hash_xor_version = version FROM datasets WHERE id = ?", ds["id"])
    assert_agrees(server, ds["id"])


def _sql(server, sql: str, *args):
    """One statement on the server's database, beside it (``?`` placeholders); the first
    column of the first row, if any."""
    if server.store == "postgresql":
        with psycopg.connect(server.db_url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), args)
            return cur.fetchone()[0] if cur.description else None
    with sqlite3.connect(server.db_path) as con:
        cur = con.execute(sql, args)
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def test_a_metadata_patch_keeps_the_digest_summary(store, tmp_path, monkeypatch):
    """After a description change (version + 1, datapoints untouched) the store answers the
    digest at the new version from the summary it had: no second scan. A rekey scans again."""
    from hlops.server.store import Page

    url = db_url_for(store)
    st = PgStore(url) if url else SqliteStore(str(tmp_path / "units.db"))
    scans = []
    real = st._key_summary
    monkeypatch.setattr(st, "_key_summary", lambda con, i: scans.append(i) or real(con, i))
    try:
        (org,) = st.ensure_orgs({"0" * 64: "units"}).values()
        spec = {"name": uniq(), "key": "external_id", "fields": field_list()}
        ds = st.create_dataset(org, spec, make_rows(40), None)
        first = st.digest_buckets(org, ds["id"], None, 16)
        st.patch_dataset(org, ds["id"], {"description": "new"}, None, None)
        again = st.digest_buckets(org, ds["id"], None, 16)
        assert again["version"] == first["version"] + 1 and again["items"] == first["items"]
        assert scans == [ds["id"]]
        st.patch_dataset(org, ds["id"], {"key": None}, None, None)
        assert st.digest_buckets(org, ds["id"], None, 16)["key"] is None and len(scans) == 2
        (item,) = st.list_datasets(org, spec["name"], Page(None, 10), include_digest=True)["items"]
        assert item["digest"]["count"] == 40
    finally:
        st.close()
        if url:
            drop_database(url)
