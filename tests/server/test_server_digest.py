"""The digest: bucket hashes equal the XOR of row hashes computed client-side with
hlops.canonical from the rows sent; bucket rows; every mode's pagination; errors."""

from __future__ import annotations

import itertools

import pytest
from srv_helpers import (
    assert_validation,
    create_dataset,
    create_project,
    expected_buckets,
    expected_rows,
    make_rows,
    paginate,
    rows_by_bucket,
)

from hlops import canonical


@pytest.fixture(scope="module")
def keyed(server):
    rows = make_rows(300)
    ds = create_dataset(server, key="external_id", rows=rows)
    return ds, expected_rows(rows, ds["datapoint_ids"], "external_id")


@pytest.fixture(scope="module")
def keyless(server):
    rows = make_rows(120, tag="keyless")
    ds = create_dataset(server, rows=rows)
    return ds, expected_rows(rows, ds["datapoint_ids"], None)


def summary(server, dataset_id: int, buckets: int, **params) -> dict:
    r = server.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": buckets, **params})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("buckets", [1, 2, 16, 128, 256, 512, 4096, 65536])
@pytest.mark.parametrize("which", ["keyed", "keyless"])
def test_bucket_hashes_are_xor_of_row_hashes(server, request, which, buckets):
    ds, expected = request.getfixturevalue(which)
    body = summary(server, ds["id"], buckets)
    assert body["buckets"] == buckets and body["key"] == ds["key"]
    assert body["datapoint_count"] == len(expected) and body["version"] == ds["version"]
    got = {it["bucket"]: (it["count"], it["hash"]) for it in body["items"]}
    assert got == expected_buckets(expected, buckets)  # also: no empty bucket listed
    assert [it["bucket"] for it in body["items"]] == sorted(got)


@pytest.mark.parametrize("buckets", [1, 4, 256, 1024, 65536])
@pytest.mark.parametrize("which", ["keyed", "keyless"])
def test_bucket_rows(server, request, which, buckets):
    ds, expected = request.getfixturevalue(which)
    by_bucket = rows_by_bucket(expected, buckets)
    for bucket in sorted(by_bucket)[:6] + [max(by_bucket)]:
        rows = paginate(server, f"/datasets/{ds['id']}/digest", {"buckets": buckets, "bucket": bucket, "limit": 7})
        assert {r["id"]: (r["key"], r["hash"]) for r in rows} == by_bucket[bucket]
        assert len(rows) == len(by_bucket[bucket])
        assert all(r["annotations"] == 0 for r in rows)
    empty = next((b for b in range(buckets) if b not in by_bucket), None)
    if empty is not None:
        assert paginate(server, f"/datasets/{ds['id']}/digest", {"buckets": buckets, "bucket": empty}) == []


def test_all_rows(server, keyed):
    ds, expected = keyed
    rows = paginate(server, f"/datasets/{ds['id']}/digest", {"limit": 50})
    assert [r["id"] for r in rows] == ds["datapoint_ids"]
    assert {r["id"]: (r["key"], r["hash"]) for r in rows} == expected


def expected_by_field(server, ds: dict, field: str) -> dict[int, tuple[str, str]]:
    """datapoint id -> (key text by ``field``, hash), from the dataset's datapoints."""
    expected = {}
    for it in paginate(server, f"/datasets/{ds['id']}/datapoints"):
        h = canonical.row_hash(it["data"])
        expected[it["id"]] = (canonical.key_text(it["data"], field, h), h)
    return expected

def test_digest_by_another_field(server, keyed):
    """``key=`` other than the dataset's key: computed on the fly, same rules."""
    ds, _ = keyed
    expected = expected_by_field(server, ds, "text")
    body = summary(server, ds["id"], 64, key="text")
    assert body["key"] == "text"
    assert {it["bucket"]: (it["count"], it["hash"]) for it in body["items"]} == expected_buckets(expected, 64)
    bucket = body["items"][0]["bucket"]
    rows = paginate(server, f"/datasets/{ds['id']}/digest", {"key": "text", "buckets": 64, "bucket": bucket, "limit": 2})
    want = {i: v for i, v in expected.items() if canonical.bucket_of(v[0], 64) == bucket}
    assert {r["id"]: (r["key"], r["hash"]) for r in rows} == want
    rows = paginate(server, f"/datasets/{ds['id']}/digest", {"key": "text", "limit": 100})
    assert {r["id"]: (r["key"], r["hash"]) for r in rows} == expected
    # the dataset's own key named explicitly: the stored path, same answer
    assert summary(server, ds["id"], 64, key="external_id") == summary(server, ds["id"], 64)


def test_digest_follows_writes(server):
    rows = make_rows(20)
    ds = create_dataset(server, key="external_id", rows=rows)
    path = f"/datasets/{ds['id']}"
    before = summary(server, ds["id"], 8)
    a = ds["datapoint_ids"][0]
    new = {"text": "changed", "external_id": rows[0]["external_id"]}
    server.call("PATCH", path + "/datapoints", json={"data": [{"id": a, "data": new}]}).raise_for_status()
    server.call("POST", path + "/datapoints/delete", json={"ids": [ds["datapoint_ids"][1]]}).raise_for_status()
    more = make_rows(3, start=100)
    added = server.call("PUT", path, json={"data": more}).json()["datapoint_ids"]
    after = summary(server, ds["id"], 8)
    assert after["version"] == before["version"] + 3 and after["datapoint_count"] == 22
    expected = expected_rows(rows, ds["datapoint_ids"], "external_id")
    expected.pop(ds["datapoint_ids"][1])
    expected[a] = expected_rows([new], [a], "external_id")[a]
    expected.update(expected_rows(more, added, "external_id"))
    assert {it["bucket"]: (it["count"], it["hash"]) for it in after["items"]} == expected_buckets(expected, 8)


def test_annotation_counts_in_rows(server):
    rows = make_rows(4)
    ds = create_dataset(server, key="external_id", rows=rows)
    create_project(server, ds, review=False)  # warm start: one annotation per row
    create_project(server, ds, review=False)
    got = paginate(server, f"/datasets/{ds['id']}/digest")
    assert [r["annotations"] for r in got] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    "params, loc",
    [
        ({"buckets": 3}, ("query", "buckets")),
        ({"buckets": 0}, ("query", "buckets")),
        ({"buckets": 131072}, ("query", "buckets")),
        ({"bucket": 1}, ("query", "bucket")),
        ({"buckets": 4, "bucket": 4}, ("query", "bucket")),
        ({"buckets": 4, "bucket": -1}, ("query", "bucket")),
        ({"buckets": 4, "key": "nope"}, ("query", "key")),
        ({"key": "nope"}, ("query", "key")),
        ({"cursor": "WzEsMiwzXQ"}, ("query", "cursor")),  # [1,2,3]
        ({"buckets": 4, "bucket": 1, "cursor": "MQ"}, ("query", "cursor")),  # 1: not a pair
        ({"limit": 10_001}, ("query", "limit")),
    ],
)
def test_digest_errors(server, keyed, params, loc):
    ds, _ = keyed
    assert_validation(server.call("GET", f"/datasets/{ds['id']}/digest", params=params), loc)


# ---------------------------------------------------------------- rows of many buckets


def rows_of(server, dataset_id: int, body: dict, limit: int | None = None) -> list[dict]:
    """Every page of ``POST /datasets/{id}/digest/rows`` (the same body with each cursor)."""
    return paginate(server, f"/datasets/{dataset_id}/digest/rows", {"limit": limit} if limit else {},
                    method="POST", json=body)


@pytest.mark.parametrize("buckets", [1, 4, 256, 1024, 65536])
@pytest.mark.parametrize("which", ["keyed", "keyless"])
def test_rows_of_many_buckets(server, request, which, buckets):
    """Any set of buckets of any level: exactly their rows, each once, across small pages."""
    ds, expected = request.getfixturevalue(which)
    by_bucket = rows_by_bucket(expected, buckets)
    full = sorted(by_bucket)
    wanted = full[::3] + ([b for b in range(buckets) if b not in by_bucket][:2])  # some empty ones too
    want = {i: v for b in wanted for i, v in by_bucket.get(b, {}).items()}
    rows = rows_of(server, ds["id"], {"buckets": buckets, "which": wanted}, limit=7)
    assert len(rows) == len(want)
    assert {r["id"]: (r["key"], r["hash"]) for r in rows} == want
    assert all(r["annotations"] == 0 for r in rows)
    # the same as the single-bucket reads, and in one big page
    assert len(rows_of(server, ds["id"], {"buckets": buckets, "which": wanted})) == len(want)


@pytest.mark.parametrize("buckets", [4, 1024])
def test_rows_of_many_buckets_pages_are_full_and_the_last_says_so(server, keyed, buckets):
    """Every page but the last holds ``limit`` rows, none is empty, and the last answers no
    cursor -- also when the rows end exactly at a page's end, inside a part or at a part's
    end (the page is cut by SQLite's aggregate a part, then probed for a row left)."""
    ds, expected = keyed
    by_bucket = rows_by_bucket(expected, buckets)
    fullest = max(by_bucket, key=lambda b: len(by_bucket[b]))  # its last part holds several rows
    assert len(by_bucket[fullest]) >= 3
    for wanted, limit in itertools.product((sorted(by_bucket)[::2], [fullest]), (1, 2, 7, -1, 0, 1j)):
        total = sum(len(by_bucket[b]) for b in wanted)
        limit = {-1: total - 1, 0: total, 1j: total + 1}.get(limit, limit) or 1
        pages, cursor = [], None
        while True:
            q = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            r = server.call("POST", f"/datasets/{ds['id']}/digest/rows", params=q, json={"buckets": buckets, "which": wanted})
            assert r.status_code == 200, r.text
            pages.append(r.json()["items"])
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1), (wanted, limit)
        assert 1 <= len(pages[-1]) <= limit, (wanted, limit)
        assert len(pages) == -(-total // limit), (wanted, limit)
        assert sorted(r["id"] for p in pages for r in p) == sorted(i for b in wanted for i in by_bucket[b])


def test_rows_of_many_buckets_by_another_field(server, keyed):
    ds, _ = keyed
    expected = expected_by_field(server, ds, "text")
    wanted = [0, 5, 63]
    want = {i: v for i, v in expected.items() if canonical.bucket_of(v[0], 64) in wanted}
    rows = rows_of(server, ds["id"], {"buckets": 64, "which": wanted, "key": "text"}, limit=3)
    assert {r["id"]: (r["key"], r["hash"]) for r in rows} == want


def test_rows_of_many_buckets_is_a_read(server, keyed):
    """Not a write in the server's counts, and an Idempotency-Key is not recorded for it."""
    ds, _ = keyed
    server.reset_stats()
    body = {"buckets": 16, "which": [1, 2]}
    for _ in range(2):
        r = server.call("POST", f"/datasets/{ds['id']}/digest/rows", json=body, headers={"Idempotency-Key": "same-key"})
        assert r.status_code == 200, r.text
    stats = server.stats()
    assert stats["writes"] == 0 and stats["by_path"] == {"POST /datasets/{dataset_id}/digest/rows": 2}


@pytest.mark.parametrize(
    "body, params, loc",
    [
        ({"buckets": 3, "which": [0]}, {}, ("body", "buckets")),
        ({"buckets": 0, "which": [0]}, {}, ("body", "buckets")),
        ({"buckets": 131072, "which": [0]}, {}, ("body", "buckets")),
        ({"which": [0]}, {}, ("body", "buckets")),
        ({"buckets": 4}, {}, ("body", "which")),
        ({"buckets": 4, "which": []}, {}, ("body", "which")),
        ({"buckets": 4, "which": [1, 4]}, {}, ("body", "which", 1)),
        ({"buckets": 4, "which": [-1]}, {}, ("body", "which", 0)),
        ({"buckets": 4, "which": [2, 0, 2]}, {}, ("body", "which", 2)),
        ({"buckets": 4, "which": ["x"]}, {}, ("body", "which", 0)),
        ({"buckets": 4, "which": [1], "key": "nope"}, {}, ("body", "key")),
        ({"buckets": 4, "which": [1], "extra": 1}, {}, ("body", "extra")),
        ({"buckets": 4, "which": [1]}, {"cursor": "MQ"}, ("query", "cursor")),  # 1: not a pair
        ({"buckets": 4, "which": [1]}, {"limit": 10_001}, ("query", "limit")),
    ],
)
def test_rows_of_many_buckets_errors(server, keyed, body, params, loc):
    ds, _ = keyed
    assert_validation(server.call("POST", f"/datasets/{ds['id']}/digest/rows", json=body, params=params), loc)


def test_rows_of_many_buckets_not_json(server, keyed):
    ds, _ = keyed
    r = server.call("POST", f"/datasets/{ds['id']}/digest/rows", data=b"buckets=4",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
