"""The two stores answer alike: the same rows give the same digest hashes, listings and
error answers on a SQLite server and on a PostgreSQL server."""

from __future__ import annotations

import pytest
from srv_helpers import field_list, make_rows

from support.postgres import db_url_for, drop_database
from support.server import ServerProcess

STORES = ("postgresql",)


@pytest.fixture(scope="module")
def both(tmp_path_factory, store):
    url = db_url_for(store)
    with ServerProcess(tmp_path_factory.mktemp("sqlite")) as lite, \
            ServerProcess(tmp_path_factory.mktemp("pg"), db_url=url) as pg:
        yield lite, pg
    drop_database(url)


def strip(body):
    """An answer without what differs by design (times)."""
    if isinstance(body, dict):
        return {k: strip(v) for k, v in body.items() if k not in ("created_at", "updated_at")}
    if isinstance(body, list):
        return [strip(v) for v in body]
    return body


def test_same_rows_same_answers(both):
    rows = make_rows(700) + [{"text": "ünïcode ✓ \u2028 \"quoted\"", "external_id": "u-1", "sentiment": None}]
    answers = []
    for srv in both:
        calls = []
        body = {"name": "agree", "key": "external_id", "fields": field_list(), "data": rows}
        created = srv.call("POST", "/datasets", json=body)
        calls.append((created.status_code, strip(created.json())))
        did = created.json()["id"]
        calls.append(srv.call("POST", "/datasets", json=body).json())  # 409, same message
        stale = srv.call("PATCH", f"/datasets/{did}", json={"description": "x"}, headers={"If-Match": '"7"'})
        calls.append((stale.status_code, stale.json()))
        bad = srv.call("PUT", f"/datasets/{did}", json={"data": [{"text": ["not", "text"], "external_id": "z"}]})
        calls.append((bad.status_code, bad.json()))
        dup = srv.call("PUT", f"/datasets/{did}", json={"data": make_rows(1, start=3)})
        calls.append((dup.status_code, dup.json()))
        for buckets in (1, 16, 1024, 65536):
            calls.append(strip(srv.call("GET", f"/datasets/{did}/digest", params={"buckets": buckets}).json()))
        calls.append(srv.call("GET", f"/datasets/{did}/digest", params={"buckets": 512, "bucket": 3}).json())
        calls.append(srv.call("GET", f"/datasets/{did}/digest", params={"key": "text", "buckets": 64}).json())
        calls.append(srv.call("GET", f"/datasets/{did}/digest", params={"limit": 50}).json())
        calls.append(srv.call("GET", f"/datasets/{did}/datapoints", params={"limit": 20, "fields": "text"}).json())
        calls.append(srv.call("GET", f"/datasets/{did}/datapoints", params={"limit": 800}).json())
        keys = ["u-1", "10003", "nope", "10699", "10003", ""]
        calls.append(srv.call("POST", f"/datasets/{did}/digest/keys", json={"keys": keys}).json())
        calls.append(srv.call("POST", f"/datasets/{did}/digest/keys", json={"keys": ["a\x00"]}).json())
        index = f"/datasets/{did}/last_applied/index"
        calls.append(srv.call("GET", index).json())  # 404
        put = srv.call("PUT", index, data=bytes(range(256)), headers={"Content-Type": "application/octet-stream"})
        calls.append((put.status_code, srv.call("GET", index).content))
        answers.append(calls)
    lite, pg = answers
    assert lite[0][0] == 201
    assert lite[3][0] == 422 and lite[4][0] == 409
    for i, (a, b) in enumerate(zip(lite, pg)):
        assert strip(a) == strip(b), f"answer {i} differs"
