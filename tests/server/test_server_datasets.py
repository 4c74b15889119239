"""Datasets and datapoints: create, append, read, change, delete; keys; validation; limits."""

from __future__ import annotations

import pytest
from srv_helpers import (
    CANARY,
    FIELDS,
    assert_validation,
    create_dataset,
    create_project,
    expected_rows,
    field_list,
    make_rows,
    paginate,
    uniq,
)

from hlops import canonical


def test_create_and_read(server):
    rows = make_rows(3)
    ds = create_dataset(server, key="external_id", rows=rows, description="d")
    assert ds["key"] == "external_id" and ds["description"] == "d"
    assert ds["datapoint_count"] == 3 and ds["version"] == 1
    assert ds["created_at"] == ds["updated_at"] and ds["created_at"].endswith("Z")
    got = server.call("GET", f"/datasets/{ds['id']}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    body = got.json()
    assert {k: body[k] for k in ("id", "name", "fields", "datapoint_count", "version")} == {
        k: ds[k] for k in ("id", "name", "fields", "datapoint_count", "version")
    }
    items = paginate(server, f"/datasets/{ds['id']}/datapoints")
    assert [it["id"] for it in items] == ds["datapoint_ids"]
    assert [it["data"] for it in items] == [canonical.normalise_row(r, FIELDS) for r in rows]


def test_duplicate_name_409_and_names_per_kind(server):
    name = uniq()
    create_dataset(server, name=name)
    r = server.call("POST", "/datasets", json={"name": name, "fields": field_list()})
    assert r.status_code == 409 and name in r.json()["detail"]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"fields": field_list()}, ("body", "name")),
        ({"name": "x"}, ("body", "fields")),
        ({"name": "x", "fields": []}, ("body", "fields")),
        ({"name": " x", "fields": field_list()}, ("body", "name")),
        ({"name": "x", "fields": [{"name": "a b", "data_type": "text"}]}, ("body", "fields", 0, "name")),
        ({"name": "x", "fields": [{"name": "a", "data_type": "number"}]}, ("body", "fields", 0, "data_type")),
        ({"name": "x", "fields": [{"name": "a", "data_type": "text", "x": 1}]}, ("body", "fields", 0, "x")),
        ({"name": "x", "fields": field_list(), "bogus": 1}, ("body", "bogus")),
        ({"name": "x", "fields": field_list(), "key": "nope"}, ("body", "key")),
        ({"name": "x", "fields": [{"name": "a", "data_type": "text"}] * 2}, ("body", "fields", 1, "name")),
        ({"name": "x", "fields": field_list(), "data": {"a": 1}}, ("body", "data")),
    ],
)
def test_create_validation(server, body, loc):
    assert_validation(server.call("POST", "/datasets", json=body), loc)


def test_append_versions_and_if_match(server):
    ds = create_dataset(server)
    path = f"/datasets/{ds['id']}"
    r = server.call("PUT", path, json={"data": make_rows(2)})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
    assert r.json()["datapoint_count"] == 2 and len(r.json()["datapoint_ids"]) == 2
    # nothing to append: no change, no new version
    r = server.call("PUT", path, json={"data": []})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["datapoint_ids"] == []
    for stale in ("1", '"1"', 'W/"1"'):
        r = server.call("PUT", path, json={"data": make_rows(1)}, headers={"If-Match": stale})
        assert r.status_code == 412 and "version 2" in r.json()["detail"]
    for current in ('"2"', "*"):
        r = server.call("PUT", path, json={"data": make_rows(1)}, headers={"If-Match": current})
        assert r.status_code == 200, r.text
    assert r.json()["version"] == 4 and r.json()["datapoint_count"] == 4
    r = server.call("PUT", path, json={"data": make_rows(1)}, headers={"If-Match": "abc"})
    assert r.status_code == 422


def test_put_answers_add_up_and_a_replay_answers_the_first_result(server):
    """What a streamed apply proves its record by (hlops.providers.humanloop.data.applied.
    proven_version): each PUT that writes answers version + 1 and the count after it, on both
    stores, and a PUT sent again with its Idempotency-Key (a lost answer, retried) answers
    the first attempt's version and count, even after another write."""
    ds = create_dataset(server)
    path = f"/datasets/{ds['id']}"
    first = server.call("PUT", path, json={"data": make_rows(3)}, headers={"Idempotency-Key": "k-first"})
    other = server.call("PUT", path, json={"data": make_rows(2, 3)})
    again = server.call("PUT", path, json={"data": make_rows(3)}, headers={"Idempotency-Key": "k-first"})
    seen = [(r.json()["version"], r.json()["datapoint_count"]) for r in (first, other, again)]
    assert seen == [(2, 3), (3, 5), (2, 3)] and again.headers.get("Idempotency-Replayed") == "true"
    assert server.call("GET", path).json()["datapoint_count"] == 5


def test_list_pagination_and_name_filter(fresh_server):
    srv = fresh_server
    names = [uniq() for _ in range(5)]
    ids = [create_dataset(srv, name=n)["id"] for n in names]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = srv.call("GET", "/datasets", params=params).json()
        assert len(page["items"]) <= 2
        seen += [d["id"] for d in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3
    one = srv.call("GET", "/datasets", params={"name": names[3]}).json()
    assert [d["id"] for d in one["items"]] == [ids[3]] and one["next_cursor"] is None
    assert srv.call("GET", "/datasets", params={"name": "nothing"}).json()["items"] == []
    for bad in ("!!!", "bm90IGpzb24", "IjEi"):  # not base64, not JSON, a string
        assert_validation(srv.call("GET", "/datasets", params={"cursor": bad}), ("query", "cursor"))
    assert srv.call("GET", "/datasets", params={"limit": 0}).status_code == 422
    assert srv.call("GET", "/datasets", params={"limit": 1001}).status_code == 422


def test_patch_dataset_rules(server):
    rows = make_rows(3)
    ds = create_dataset(server, rows=rows)
    path = f"/datasets/{ds['id']}"
    digest_before = server.call("GET", path + "/digest", params={"buckets": 4}).json()["items"]
    # no-op: same version
    r = server.call("PATCH", path, json={"name": ds["name"], "fields": field_list()})
    assert r.status_code == 200 and r.json()["version"] == 1
    # rename, describe, add a field (existing datapoints get null: hashes unchanged)
    new_name = uniq()
    r = server.call("PATCH", path, json={
        "name": new_name, "description": "new",
        "fields": field_list() + [{"name": "lang", "data_type": "categorical", "description": "ISO"}],
    }, headers={"If-Match": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == new_name and body["description"] == "new" and body["version"] == 2
    assert [f["name"] for f in body["fields"]] == [*FIELDS, "lang"]
    assert body["fields"][-1]["description"] == "ISO"
    assert server.call("GET", path + "/digest", params={"buckets": 4}).json()["items"] == digest_before
    assert server.call("PUT", path, json={"data": [{"text": "x", "lang": "en"}]}).status_code == 200
    # describe an existing field
    fields = body["fields"]
    fields[0] = {**fields[0], "description": "the text"}
    fields = [{k: f[k] for k in ("name", "data_type", "description")} for f in fields]
    r = server.call("PATCH", path, json={"fields": fields})
    assert r.status_code == 200 and r.json()["fields"][0]["description"] == "the text"
    # removing, renaming or retyping a field needs a replacement
    assert_validation(server.call("PATCH", path, json={"fields": fields[1:]}), ("body", "fields"))
    retyped = [dict(fields[0], data_type="categorical"), *fields[1:]]
    detail = assert_validation(server.call("PATCH", path, json={"fields": retyped}), ("body", "fields", 0, "data_type"))
    assert "replacement" in detail[0]["msg"]
    # stale If-Match, taken name
    assert server.call("PATCH", path, json={"description": "x"}, headers={"If-Match": "1"}).status_code == 412
    other = create_dataset(server)
    assert server.call("PATCH", path, json={"name": other["name"]}).status_code == 409
    assert_validation(server.call("PATCH", path, json={"name": None}), ("body", "name"))
    assert_validation(server.call("PATCH", path, json={"key": "nope"}), ("body", "key"))


def test_patch_key_recomputes_and_checks(server):
    rows = make_rows(4)
    ds = create_dataset(server, rows=rows)
    path = f"/datasets/{ds['id']}"
    r = server.call("PATCH", path, json={"key": "external_id"})
    assert r.status_code == 200 and r.json()["key"] == "external_id"
    digest = paginate(server, path + "/digest")
    assert {d["key"] for d in digest} == {str(r["external_id"]) for r in rows}
    # back to no key: keys are hashes again
    assert server.call("PATCH", path, json={"key": None}).json()["key"] is None
    assert all(d["key"] == d["hash"] for d in paginate(server, path + "/digest"))
    # duplicates -> 409; a datapoint without the field -> 422
    server.call("PUT", path, json={"data": [{"text": "dup", "sentiment": "positive"}, {"text": "dup2", "sentiment": "positive"}]})
    assert server.call("PATCH", path, json={"key": "sentiment"}).status_code == 409
    assert_validation(server.call("PATCH", path, json={"key": "external_id"}), ("body", "key"))
    assert server.call("GET", path).json()["key"] is None


def test_key_uniqueness(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    path = f"/datasets/{ds['id']}"
    r = server.call("PUT", path, json={"data": make_rows(2, start=10) + make_rows(1, start=10)})
    assert r.status_code == 409 and "10010" in r.json()["detail"] and "within" in r.json()["detail"]
    r = server.call("PUT", path, json={"data": make_rows(2, start=2)})  # 10002 exists already
    assert r.status_code == 409 and "10002" in r.json()["detail"] and "already" in r.json()["detail"]
    assert server.call("GET", path).json()["datapoint_count"] == 3  # nothing of either write
    r = server.call("PUT", path, json={"data": [{"text": CANARY}]})
    assert_validation(r, ("body", "data", 0, "external_id"))
    r = server.call("POST", "/datasets", json={"name": uniq(), "key": "external_id", "fields": field_list(),
                                               "data": make_rows(1) * 2})
    assert r.status_code == 409


@pytest.mark.parametrize(
    "row, loc",
    [
        ({"nope": "x"}, (0, "nope")),
        ({"text": True}, (0, "text")),
        ({"text": 1.5}, (0, "text")),
        ({"text": {"a": CANARY}}, (0, "text")),
        ({"sentiment": [CANARY]}, (0, "sentiment")),
        ({"entities": CANARY}, (0, "entities")),
        ({"entities": [{"start": 3, "end": 3, "label": "X"}]}, (0, "entities", 0)),
        ({"entities": [{"start": -1, "end": 3, "label": "X"}]}, (0, "entities", 0)),
        ({"entities": [{"start": 5, "end": 2, "label": "X"}]}, (0, "entities", 0)),
        ({"entities": [{"start": 0, "end": 2}]}, (0, "entities", 0, "label")),
        ({"entities": [{"start": 0, "end": 2, "label": ""}]}, (0, "entities", 0, "label")),
        ({"entities": [{"start": "0", "end": 2, "label": "X"}]}, (0, "entities", 0, "start")),
        ({"entities": [{"start": 0, "end": 2, "label": "X", "extra": CANARY}]}, (0, "entities", 0, "extra")),
        ({"entities": [[0, 2, "X"]]}, (0, "entities", 0)),
        (CANARY, (0,)),
    ],
)
def test_datapoint_validation_never_echoes(server, row, loc):
    ds = create_dataset(server)
    good = {"text": "fine"}
    r = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [row, good]})
    assert_validation(r, ("body", "data", *loc))
    assert server.call("GET", f"/datasets/{ds['id']}").json()["datapoint_count"] == 0


def test_many_problems_are_capped(server):
    ds = create_dataset(server)
    r = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [{"text": 1.5}] * 500})
    detail = assert_validation(r, ("body", "data", 0, "text"))
    assert len(detail) <= 51 and "more" in detail[-1]["msg"]


def test_datapoints_list_fields_and_pages(server):
    rows = make_rows(7)
    ds = create_dataset(server, rows=rows)
    path = f"/datasets/{ds['id']}/datapoints"
    items = paginate(server, path, {"fields": "text,external_id", "limit": 3})
    assert [it["id"] for it in items] == ds["datapoint_ids"]
    assert items[0]["data"] == {"text": rows[0]["text"], "external_id": str(rows[0]["external_id"])}
    assert_validation(server.call("GET", path, params={"fields": "text,nope"}), ("query", "fields"))
    assert_validation(server.call("GET", path, params={"fields": "text,"}), ("query", "fields"))


def test_patch_datapoints(server):
    rows = make_rows(3)
    ds = create_dataset(server, key="external_id", rows=rows)
    path = f"/datasets/{ds['id']}"
    a, b, c = ds["datapoint_ids"]
    # replace wholesale: a field not given is gone; swap keys between two rows
    r = server.call("PATCH", path + "/datapoints", json={"data": [
        {"id": a, "data": {"text": "new a", "external_id": rows[1]["external_id"]}},
        {"id": b, "data": {"text": "new b", "external_id": rows[0]["external_id"]}},
    ]}, headers={"If-Match": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["datapoint_count"] == 3
    items = {it["id"]: it["data"] for it in paginate(server, path + "/datapoints")}
    assert items[a] == {"text": "new a", "external_id": str(rows[1]["external_id"])}
    assert items[c] == canonical.normalise_row(rows[2], FIELDS)
    digest = {d["id"]: d for d in paginate(server, path + "/digest")}
    assert digest[a]["key"] == str(rows[1]["external_id"])
    assert digest[a]["hash"] == canonical.row_hash(items[a])
    # a key taken by a row outside the patch -> 409; nothing changed
    r = server.call("PATCH", path + "/datapoints", json={"data": [{"id": a, "data": {"external_id": rows[2]["external_id"]}}]})
    assert r.status_code == 409
    assert server.call("GET", path).json()["version"] == 2
    # unknown id, listed twice, bad values, bad shapes
    assert_validation(server.call("PATCH", path + "/datapoints", json={"data": [{"id": 999_999, "data": {"external_id": "z"}}]}), ("body", "data", 0, "id"))
    assert_validation(server.call("PATCH", path + "/datapoints", json={"data": [{"id": a, "data": {"external_id": "q"}}] * 2}), ("body", "data", 1, "id"))
    assert_validation(server.call("PATCH", path + "/datapoints", json={"data": [{"id": a, "data": {"text": 2.5, "external_id": "q"}}]}), ("body", "data", 0, "data", "text"))
    assert_validation(server.call("PATCH", path + "/datapoints", json={"data": [{"id": a}]}), ("body", "data", 0, "data"))
    assert_validation(server.call("PATCH", path + "/datapoints", json={"data": [{"id": "a", "data": {}}]}), ("body", "data", 0, "id"))
    assert_validation(server.call("PATCH", path + "/datapoints", json={"rows": []}), ("body", "rows"), ("body", "data"))
    assert server.call("PATCH", path + "/datapoints", json={"data": []}, headers={"If-Match": "1"}).status_code == 412


def test_delete_datapoints(server):
    ds = create_dataset(server, rows=make_rows(4))
    path = f"/datasets/{ds['id']}"
    ids = ds["datapoint_ids"]
    r = server.call("POST", path + "/datapoints/delete", json={"ids": [ids[0], ids[2], 987_654_321]})
    assert r.status_code == 200 and r.json()["deleted"] == 2
    assert r.json()["datapoint_count"] == 2 and r.json()["version"] == 2
    assert [it["id"] for it in paginate(server, path + "/datapoints")] == [ids[1], ids[3]]
    r = server.call("POST", path + "/datapoints/delete", json={"ids": [ids[0]]})
    assert r.json()["deleted"] == 0 and r.json()["version"] == 2
    assert_validation(server.call("POST", path + "/datapoints/delete", json={"ids": [0, "x"]}), ("body", "ids", 0), ("body", "ids", 1))
    assert server.call("POST", path + "/datapoints/delete", json={"ids": []}, headers={"If-Match": "7"}).status_code == 412


def test_delete_dataset_and_force(server):
    ds = create_dataset(server, rows=make_rows(2))
    r = server.call("DELETE", f"/datasets/{ds['id']}")
    assert r.status_code == 200 and r.json() == {"id": ds["id"], "deleted_projects": []}
    assert server.call("GET", f"/datasets/{ds['id']}").status_code == 404
    assert server.call("DELETE", f"/datasets/{ds['id']}").status_code == 404

    ds = create_dataset(server, rows=make_rows(2))
    other = create_dataset(server, rows=make_rows(2))
    project = create_project(server, ds)
    bystander = create_project(server, other)
    r = server.call("DELETE", f"/datasets/{ds['id']}")
    assert r.status_code == 409 and project["name"] in r.json()["detail"] and "force" in r.json()["detail"]
    assert server.call("DELETE", f"/datasets/{ds['id']}", headers={"If-Match": "9"}).status_code == 412
    r = server.call("DELETE", f"/datasets/{ds['id']}", params={"force": "true"})
    assert r.status_code == 200 and r.json()["deleted_projects"] == [project["id"]]
    assert server.call("GET", f"/projects/{project['id']}").status_code == 404
    assert server.call("GET", f"/projects/{bystander['id']}").status_code == 200
    # the name is free again
    create_dataset(server, name=ds["name"])


def test_limits_rows_413(server):
    ds = create_dataset(server)
    path = f"/datasets/{ds['id']}"
    too_many = [{"text": "x"}] * 10_001
    r = server.call("PUT", path, json={"data": too_many})
    assert r.status_code == 413 and "10,000" in r.json()["detail"]
    r = server.call("POST", "/datasets", json={"name": uniq(), "fields": field_list(), "data": too_many})
    assert r.status_code == 413
    r = server.call("PATCH", path + "/datapoints", json={"data": [{"id": 1, "data": {}}] * 10_001})
    assert r.status_code == 413
    r = server.call("POST", path + "/datapoints/delete", json={"ids": list(range(1, 10_002))})
    assert r.status_code == 413
    ok = server.call("PUT", path, json={"data": [{"text": str(i)} for i in range(10_000)]})
    assert ok.status_code == 200 and ok.json()["datapoint_count"] == 10_000


def test_expected_rows_helper_matches_server(server):
    """The client-side computation the digest tests rely on agrees with what the server stored."""
    rows = make_rows(5)
    ds = create_dataset(server, key="external_id", rows=rows)
    expected = expected_rows(rows, ds["datapoint_ids"], "external_id")
    got = {d["id"]: (d["key"], d["hash"]) for d in paginate(server, f"/datasets/{ds['id']}/digest")}
    assert got == expected
