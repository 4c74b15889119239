"""Two server processes on one PostgreSQL database, driven concurrently (issue 15).

Each race is run many rounds, the two requests released together by a barrier, one to
each process; the outcomes are checked exactly: one PATCH wins and the other is 412; one
create is 201 and the other 409; an Idempotency-Key answered by one process is replayed by
the other byte for byte, and two processes racing one key apply it once; a cursor of one
process pages on in the other; a model version is trained once, not once per process.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from srv_helpers import create_dataset, make_rows, paginate, project_body, uniq

from support.postgres import db_url_for, drop_database
from support.server import ServerProcess

STORES = ("postgresql",)
ROUNDS = 12


@pytest.fixture(scope="module")
def pair(tmp_path_factory, store):
    url = db_url_for(store)
    a = ServerProcess(tmp_path_factory.mktemp("a"), db_url=url)
    b = ServerProcess(tmp_path_factory.mktemp("b"), db_url=url, start=False)
    b.api_key, b.other_key = a.api_key, a.other_key  # the same organisations in both
    b.keys_file.write_text(a.keys_file.read_text())
    b.start()
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        drop_database(url)


def race(*calls):
    """Run the calls at once (a barrier releases them together); answer their responses."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i, call):
        session = requests.Session()
        barrier.wait()
        out[i] = call(session)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def req(srv, method, path, **kw):
    headers = {**srv.headers(), **kw.pop("headers", {})}
    return lambda s: s.request(method, srv.url + path, headers=headers, timeout=60, **kw)


def test_racing_patches_exactly_one_wins(pair):
    a, b = pair
    ds = create_dataset(a)
    path = f"/datasets/{ds['id']}"
    for n in range(1, ROUNDS + 1):
        ra, rb = race(
            req(a, "PATCH", path, json={"description": f"a{n}"}, headers={"If-Match": f'"{n}"'}),
            req(b, "PATCH", path, json={"description": f"b{n}"}, headers={"If-Match": f'"{n}"'}),
        )
        assert sorted([ra.status_code, rb.status_code]) == [200, 412], (ra.text, rb.text)
        winner, loser = (ra, rb) if ra.status_code == 200 else (rb, ra)
        assert winner.json()["version"] == n + 1 and f"version {n + 1}" in loser.json()["detail"]
        # both processes read the winner's write
        for srv in (a, b):
            got = srv.call("GET", path).json()
            assert got["version"] == n + 1 and got["description"] == winner.json()["description"]


def test_racing_appends_with_if_match_apply_once(pair):
    a, b = pair
    ds = create_dataset(a, key="external_id")
    path = f"/datasets/{ds['id']}"
    for n in range(1, ROUNDS + 1):
        rows_a, rows_b = make_rows(50, start=n * 1000), make_rows(50, start=n * 1000 + 100)
        ra, rb = race(
            req(a, "PUT", path, json={"data": rows_a}, headers={"If-Match": f'"{n}"'}),
            req(b, "PUT", path, json={"data": rows_b}, headers={"If-Match": f'"{n}"'}),
        )
        assert sorted([ra.status_code, rb.status_code]) == [200, 412], (ra.text, rb.text)
    got = a.call("GET", path).json()
    assert got["version"] == ROUNDS + 1 and got["datapoint_count"] == ROUNDS * 50


def test_racing_creates_of_one_name_one_201_one_409(pair):
    a, b = pair
    for kind, body_of in (
        ("datasets", lambda name: {"name": name, "fields": [{"name": "text", "data_type": "text"}]}),
        ("projects", None),
    ):
        if kind == "projects":
            ds = create_dataset(a)
            body_of = lambda name: project_body(ds, name=name)  # noqa: E731
        for _ in range(ROUNDS):
            name = uniq(kind)
            ra, rb = race(req(a, "POST", f"/{kind}", json=body_of(name)), req(b, "POST", f"/{kind}", json=body_of(name)))
            assert sorted([ra.status_code, rb.status_code]) == [201, 409], (ra.text, rb.text)
            loser = ra if ra.status_code == 409 else rb
            assert f"named {name!r} already exists" in loser.json()["detail"]
            listed = b.call("GET", f"/{kind}", params={"name": name}).json()["items"]
            assert len(listed) == 1


def test_idempotency_key_replayed_by_the_other_process(pair):
    a, b = pair
    key = str(uuid.uuid4())
    body = {"name": uniq(), "fields": [{"name": "text", "data_type": "text"}], "data": [{"text": "x"}]}
    first = a.call("POST", "/datasets", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    again = b.call("POST", "/datasets", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("ETag") == first.headers.get("ETag")
    assert len(b.call("GET", "/datasets", params={"name": body["name"]}).json()["items"]) == 1
    # the same key with another body is refused by the other process too
    other = b.call("POST", "/datasets", json={**body, "name": uniq()}, headers={"Idempotency-Key": key})
    assert other.status_code == 422


def test_two_processes_racing_one_key_apply_it_once(pair):
    a, b = pair
    for _ in range(ROUNDS):
        key = str(uuid.uuid4())
        ds = create_dataset(a)
        path = f"/datasets/{ds['id']}"
        body = {"data": make_rows(20)}
        ra, rb = race(
            req(a, "PUT", path, json=body, headers={"Idempotency-Key": key}),
            req(b, "PUT", path, json=body, headers={"Idempotency-Key": key}),
        )
        statuses = sorted([ra.status_code, rb.status_code])
        assert statuses in ([200, 200], [200, 409]), (ra.text, rb.text)
        if statuses == [200, 200]:  # the second was a replay of the first
            assert ra.content == rb.content
        got = a.call("GET", path).json()
        assert got["datapoint_count"] == 20 and got["version"] == 2
        # whichever answered, a retry now replays the one answer
        winner = ra if ra.status_code == 200 else rb
        for srv in (a, b):
            again = srv.call("PUT", path, json=body, headers={"Idempotency-Key": key})
            assert again.status_code == 200 and again.content == winner.content


def test_a_cursor_pages_on_in_the_other_process(pair):
    a, b = pair
    ds = create_dataset(a, key="external_id", rows=make_rows(250))
    path = f"/datasets/{ds['id']}/datapoints"
    seen: list[int] = []
    cursor, n = None, 0
    while True:
        srv = (a, b)[n % 2]
        page = srv.call("GET", path, params={"limit": 40, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["id"] for i in page["items"]]
        cursor, n = page["next_cursor"], n + 1
        if cursor is None:
            break
    assert seen == ds["datapoint_ids"] and n == 7
    digest = [r["id"] for r in paginate(b, f"/datasets/{ds['id']}/digest", {"limit": 60})]
    assert digest == ds["datapoint_ids"]


def model_of(srv, pid: int) -> dict:
    summary = srv.call("GET", f"/projects/{pid}/annotations/summary").json()
    return summary["outputs"][0]["model"]


def settle(*servers) -> None:
    for srv in servers:
        assert srv.call("POST", "/_test/train").json() == {"idle": True}


def test_a_model_version_is_trained_once_not_once_per_process(pair):
    a, b = pair
    ds = create_dataset(a, key="external_id", rows=make_rows(30))
    p = a.call("POST", "/projects", json=project_body(ds)).json()
    labels = [r["sentiment"] for r in make_rows(30)]
    # annotations arrive at both processes, alternately: both are kicked for the project
    for i, dp in enumerate(ds["datapoint_ids"][:12]):
        srv = (a, b)[i % 2]
        r = srv.call("POST", f"/projects/{p['id']}/annotations",
                     json={"datapoint_id": dp, "output": "sentiment", "value": labels[i]})
        assert r.status_code == 200, r.text
    settle(a, b)
    settle(a, b)
    for srv in (a, b):
        m = model_of(srv, p["id"])
        assert m["status"] == "ready" and m["version"] == 1 and m["trained_on"] == 12, m
    # one more annotation, then both processes are kicked (a write to the project on b)
    r = a.call("POST", f"/projects/{p['id']}/annotations",
               json={"datapoint_id": ds["datapoint_ids"][12], "output": "sentiment", "value": labels[12]})
    assert r.status_code == 200
    r = b.call("PATCH", f"/projects/{p['id']}", json={"description": "kick b"})
    assert r.status_code == 200
    settle(a, b)
    settle(a, b)
    assert model_of(a, p["id"])["version"] == 2 and model_of(b, p["id"])["version"] == 2
    # a restart looks at every project again: nothing changed, nothing is trained
    b.restart()
    time.sleep(0.5)
    settle(a, b)
    assert model_of(b, p["id"])["version"] == 2 and model_of(a, p["id"])["status"] == "ready"
