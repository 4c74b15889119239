"""Rows by key (``POST /datasets/{id}/digest/keys``), on both stores: the digest rows of
the listed keys, exactly as the other row digests give them, in one statement that looks
each key up in the key index."""

from __future__ import annotations

import sqlite3
import uuid

import orjson
import pytest
from srv_helpers import assert_validation, create_dataset, create_project, field_list, make_rows, paginate

from hlops.server.sqlite_store import SqliteStore


def assert_not_found(r) -> None:
    assert r.status_code == 404, (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)


def rows_by_key(srv, ds: dict, keys: list, *, other: bool = False):
    return srv.call("POST", f"/datasets/{ds['id']}/digest/keys", json={"keys": keys}, other=other)


@pytest.fixture(scope="module")
def keyed(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(60))
    create_project(server, ds, review=False)  # warm start: an annotation a datapoint
    rows = {r["key"]: r for r in paginate(server, f"/datasets/{ds['id']}/digest")}
    return ds, rows


def test_rows_by_key_are_the_digest_rows_of_those_keys(server, keyed):
    """The found keys' rows exactly as the other row digests give them (annotations too),
    by id; a key not found is left out, a key listed twice answered once."""
    ds, rows = keyed
    found = ["10042", "10003", "10059", "10000"]
    cases = [found, found + ["nope", "10060", ""], ["missing", "also missing"], found + found[::-1], [*rows]]
    for keys in cases:
        r = rows_by_key(server, ds, keys)
        assert r.status_code == 200, r.text
        want = sorted((rows[k] for k in set(keys) if k in rows), key=lambda row: row["id"])
        assert r.json() == {"items": want, "next_cursor": None}
    assert {row["annotations"] for row in rows.values()} == {1}


def test_rows_by_key_of_text_keys(server):
    texts = ["café", "☃ snow", "a'b\"c", "emoji 🦜", "tab\there", "10000", " spaced "]
    fields = {"text": "text", "sentiment": "categorical"}
    ds = create_dataset(server, key="text", fields=fields, rows=[{"text": t} for t in texts])
    got = rows_by_key(server, ds, texts[::-1] + ["CAFÉ", "cafe"]).json()["items"]
    assert [row["key"] for row in got] == texts and [row["id"] for row in got] == ds["datapoint_ids"]


def test_rows_by_key_is_a_read(server, keyed):
    """Not a write in the server's counts; an Idempotency-Key is neither needed nor recorded."""
    ds, _ = keyed
    server.reset_stats()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(2):
        r = server.call("POST", f"/datasets/{ds['id']}/digest/keys", json={"keys": ["10001"]}, headers=headers)
        assert r.status_code == 200 and "Idempotency-Replayed" not in r.headers
    stats = server.stats()
    assert stats["writes"] == 0 and stats["by_path"] == {"POST /datasets/{dataset_id}/digest/keys": 2}


def test_rows_by_key_take_up_to_10000_keys(server, keyed):
    ds, rows = keyed
    keys = [f"k{i}" for i in range(9_998)] + ["10007", "10008"]
    r = rows_by_key(server, ds, keys)
    assert r.status_code == 200 and [row["key"] for row in r.json()["items"]] == ["10007", "10008"]
    assert_validation(rows_by_key(server, ds, keys + ["one too many"]), ("body", "keys"))


@pytest.mark.parametrize(
    "body, loc, kind",
    [
        ({"keys": []}, ("body", "keys"), None),
        ({}, ("body", "keys"), None),
        ({"keys": "10001"}, ("body", "keys"), None),
        ({"keys": ["10001", 10002]}, ("body", "keys", 1), None),
        ({"keys": ["10001", None]}, ("body", "keys", 1), None),
        ({"keys": ["10001", "100\x0002"]}, ("body", "keys", 1), "key_nul"),
        ({"keys": ["10001"], "key": "text"}, ("body", "key"), None),
    ],
)
def test_rows_by_key_bad_bodies_are_located(server, keyed, body, loc, kind):
    ds, _ = keyed
    detail = assert_validation(server.call("POST", f"/datasets/{ds['id']}/digest/keys", json=body), loc)
    if kind:
        assert [item["type"] for item in detail] == [kind]


def test_rows_by_key_need_a_keyed_dataset_of_ones_own(server, keyed):
    ds, _ = keyed
    keyless = create_dataset(server, rows=make_rows(3))
    detail = assert_validation(rows_by_key(server, keyless, ["10000"]), ("body", "keys"))
    assert detail[0]["type"] == "no_key" and "no key field" in detail[0]["msg"]
    assert_not_found(rows_by_key(server, ds, ["10000"], other=True))
    assert_not_found(rows_by_key(server, {"id": 10**12}, ["10000"]))


def test_sqlite_rows_by_key_look_each_key_up_in_the_key_index(tmp_path):
    """One statement, and its plan searches ``datapoints_key`` by (dataset, key): without the
    ``INDEXED BY``, SQLite walked the whole dataset by its primary key."""
    store = SqliteStore(tmp_path / "s.db")
    try:
        (org,) = store.ensure_orgs({"0" * 64: "units"}).values()
        ds = store.create_dataset(org, {"name": "d", "key": "external_id", "fields": field_list()}, make_rows(400), None)
        store.digest_rows_by_key(org, ds["id"], ["10001"])  # opens the reader
        seen: list[str] = []
        store._reader().set_trace_callback(seen.append)
        got = store.digest_rows_by_key(org, ds["id"], [str(10_000 + i) for i in range(0, 500, 3)])
        store._reader().set_trace_callback(None)
        assert len(orjson.loads(orjson.dumps(got["items"]))) == len(range(0, 400, 3))
        selects = [s for s in seen if "FROM datapoints" in s]
        assert len(selects) == 1
        with sqlite3.connect(tmp_path / "s.db") as con:
            plan = " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + selects[0]))
        assert "USING INDEX datapoints_key (dataset_id=? AND key=?)" in plan and "PRIMARY KEY" not in plan, plan
        assert orjson.dumps(store.digest_rows_by_key(org, ds["id"], ["nope"])["items"]) == b"[]"
    finally:
        store.close()
