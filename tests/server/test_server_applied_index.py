"""The last-applied index (``PUT``/``GET /datasets/{id}/last_applied/index``), on both
stores: raw bytes kept beside the dataset and answered as they were sent; a note like
``last_applied`` (no new version, no ``updated_at``, not a write in the counts), with a body
limit of its own, deleted with its dataset."""

from __future__ import annotations

import random
import sqlite3
import uuid

import psycopg
import pytest
from srv_helpers import assert_validation, create_dataset, make_rows, paginate, raw_request

from support.postgres import db_url_for, drop_database
from support.server import ServerProcess

OCTETS = {"Content-Type": "application/octet-stream"}
EVERY_BYTE = bytes(range(256))


def index_path(ds: dict) -> str:
    return f"/datasets/{ds['id']}/last_applied/index"


def put_index(srv, ds: dict, data, *, other: bool = False, headers: dict | None = None):
    return srv.call("PUT", index_path(ds), data=data, headers=OCTETS | (headers or {}), other=other)


def stored_index_ids(srv) -> list[int]:
    """The datasets with a row in ``applied_index``, read from the store's database itself."""
    sql = "SELECT dataset_id FROM applied_index ORDER BY dataset_id"
    if srv.db_url:
        with psycopg.connect(srv.db_url) as conn:
            return [r[0] for r in conn.execute(sql)]
    with sqlite3.connect(srv.db_path) as con:
        return [r[0] for r in con.execute(sql)]


def assert_not_found(r) -> None:
    assert r.status_code == 404, (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)


# ---------------------------------------------------------------------- the index


def test_an_index_comes_back_byte_for_byte_and_a_put_replaces_it(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    assert_not_found(server.call("GET", index_path(ds)))
    # a body over the global 32 MiB limit: the route has its own
    big = random.Random(7).randbytes(33 * 1024 * 1024 + 5)
    for data in (EVERY_BYTE * 3, big, b"", EVERY_BYTE[::-1]):
        r = put_index(server, ds, data)
        assert r.status_code == 204 and r.content == b"", (r.status_code, r.text[:200])
        got = server.call("GET", index_path(ds))
        assert got.status_code == 200 and got.headers["content-type"] == "application/octet-stream"
        assert got.content == data


def test_a_range_of_an_index_is_206_with_its_content_range(server):
    """``Range: bytes=a-b`` answers those bytes, as RFC 9110 has it: a client reads the part
    of its index it needs first while the rest is still to come."""
    ds = create_dataset(server, key="external_id", rows=make_rows(2))
    data = random.Random(3).randbytes(3 * 1024 * 1024 + 11)
    assert put_index(server, ds, data).status_code == 204
    size = len(data)
    for header, lo, hi in (("bytes=0-0", 0, 1), ("bytes=5-99", 5, 100), (f"bytes=1048570-{size - 1}", 1048570, size),
                           ("bytes=2000000-", 2000000, size), ("bytes=-7", size - 7, size),
                           (f"bytes=10-{size + 500}", 10, size), (f"bytes=-{size + 9}", 0, size)):
        r = server.call("GET", index_path(ds), headers={"Range": header})
        assert r.status_code == 206, (header, r.status_code, r.text[:200])
        assert r.content == data[lo:hi], header
        assert r.headers["Content-Range"] == f"bytes {lo}-{hi - 1}/{size}", header
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=9-3"):
        r = server.call("GET", index_path(ds), headers={"Range": header})
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{size}", header
    for header in ("bytes=0-1,5-6", "items=0-3", "bytes=-", "bytes=a-b"):  # ignored: the whole
        r = server.call("GET", index_path(ds), headers={"Range": header})
        assert r.status_code == 200 and r.content == data, header
    other = server.call("GET", index_path(ds), headers={"Range": "bytes=0-3"}, other=True)
    assert_not_found(other)


def test_an_index_is_a_note_not_a_change_of_the_dataset(server):
    """Neither ``version`` nor ``updated_at`` moves, the digest and the listed root stay, and
    ``/_test/stats`` does not count it as a write; the next datapoint write is +1 as ever."""
    ds = create_dataset(server, key="external_id", rows=make_rows(20))
    path = f"/datasets/{ds['id']}"
    before = server.call("GET", path)
    digest = server.call("GET", path + "/digest", params={"buckets": 256}).json()
    listed = paginate(server, "/datasets", {"name": ds["name"], "include": "digest"})
    server.reset_stats()
    assert put_index(server, ds, EVERY_BYTE).status_code == 204
    assert put_index(server, ds, b"again", headers={"Idempotency-Key": uuid.uuid4().hex}).status_code == 204
    stats = server.stats()
    assert stats["writes"] == 0 and stats["by_path"] == {"PUT /datasets/{dataset_id}/last_applied/index": 2}
    after = server.call("GET", path)
    assert after.json() == before.json() and after.headers["ETag"] == before.headers["ETag"]
    assert server.call("GET", path + "/digest", params={"buckets": 256}).json() == digest
    assert paginate(server, "/datasets", {"name": ds["name"], "include": "digest"}) == listed
    put = server.call("PUT", path, json={"data": make_rows(1, start=500)}).json()
    assert put["version"] == ds["version"] + 1
    assert server.call("GET", index_path(ds)).content == b"again"


def test_an_index_stays_in_its_organisation_and_goes_with_its_dataset(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(2))
    theirs = create_dataset(server, other=True)
    assert put_index(server, ds, b"ours").status_code == 204
    assert put_index(server, theirs, b"theirs", other=True).status_code == 204
    assert_not_found(server.call("GET", index_path(ds), other=True))
    assert_not_found(put_index(server, ds, b"overwritten?", other=True))
    assert_not_found(server.call("GET", index_path(theirs)))
    assert_not_found(put_index(server, theirs, b"overwritten?"))
    assert_not_found(put_index(server, {"id": 10**12}, b"no such dataset"))
    assert server.call("GET", index_path(ds)).content == b"ours"
    assert server.call("GET", index_path(theirs), other=True).content == b"theirs"
    assert {ds["id"], theirs["id"]} <= set(stored_index_ids(server))
    assert server.call("DELETE", f"/datasets/{ds['id']}").status_code == 200
    assert_not_found(server.call("GET", index_path(ds)))
    assert ds["id"] not in stored_index_ids(server) and theirs["id"] in stored_index_ids(server)


def test_an_index_put_with_an_idempotency_key_is_replayed(server):
    """The key is fingerprinted over the whole body, also one over the global limit."""
    ds = create_dataset(server, key="external_id")
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    big = random.Random(3).randbytes(33 * 1024 * 1024)
    first = put_index(server, ds, big, headers=headers)
    again = put_index(server, ds, big, headers=headers)
    assert first.status_code == again.status_code == 204 and again.content == b""
    assert "Idempotency-Replayed" not in first.headers and again.headers["Idempotency-Replayed"] == "true"
    assert "content-type" not in again.headers
    r = put_index(server, ds, big[:-1], headers=headers)
    assert "another body" in assert_validation(r, ("header", "Idempotency-Key"))[0]["msg"]
    assert server.call("GET", index_path(ds)).content == big


@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain", "multipart/form-data; boundary=x"])
def test_an_index_is_raw_bytes_by_its_content_type(server, ctype):
    ds = create_dataset(server, key="external_id")
    headers = {} if ctype is None else {"Content-Type": ctype}
    for body in (b'{"a": 1}', b""):
        r = server.call("PUT", index_path(ds), data=body, headers=headers)
        assert r.status_code == 415, (r.status_code, r.text)
        assert "application/octet-stream" in r.json()["detail"]
    assert_not_found(server.call("GET", index_path(ds)))
    r = server.call("PUT", index_path(ds), data=b"x", headers={"Content-Type": "Application/Octet-Stream; q=1"})
    assert r.status_code == 204


@pytest.fixture
def small_limit(tmp_path, store):
    """A server whose index may be at most 1,000 bytes (``--max-index-bytes``)."""
    url = db_url_for(store)
    try:
        with ServerProcess(tmp_path / "server", db_url=url, extra_args=["--max-index-bytes", "1000"]) as srv:
            yield srv
    finally:
        if url:
            drop_database(url)


def test_an_index_over_its_limit_is_413_and_other_bodies_keep_theirs(small_limit):
    srv = small_limit
    ds = create_dataset(srv, key="external_id")
    assert put_index(srv, ds, b"x" * 1000).status_code == 204
    r = put_index(srv, ds, b"y" * 1001)
    assert r.status_code == 413 and "1,000 bytes" in r.json()["detail"]
    head = (f"PUT {index_path(ds)} HTTP/1.1\r\nHost: x\r\nX-API-KEY: {srv.api_key}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 5000")
    assert raw_request(srv, head)[0] == 413  # answered from the headers, no body sent
    r = put_index(srv, ds, (b"z" * 400 for _ in range(5)))  # chunked: counted while read
    assert r.status_code == 413
    r = put_index(srv, ds, (b"z" * 400 for _ in range(2)), headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 204
    assert srv.call("GET", index_path(ds)).content == b"z" * 800
    rows = [{"text": "w" * 500, "external_id": i} for i in range(10)]  # ~5 KB of JSON: the global limit
    assert srv.call("PUT", f"/datasets/{ds['id']}", json={"data": rows}).status_code == 200


def test_an_older_sqlite_database_is_given_the_table(tmp_path):
    with ServerProcess(tmp_path) as srv:
        ds = create_dataset(srv, key="external_id", rows=make_rows(2))
    with sqlite3.connect(tmp_path / "server.db") as con:  # what a build before this one made
        con.execute("DROP TABLE applied_index")
    with ServerProcess(tmp_path) as srv:
        assert put_index(srv, ds, EVERY_BYTE).status_code == 204
        assert srv.call("GET", index_path(ds)).content == EVERY_BYTE
