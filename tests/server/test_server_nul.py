"""No store takes a text holding NUL (U+0000): PostgreSQL's text cannot hold it (each of
these was a 500 there) and SQLite's JSON functions cut a text at one. Both answer a 422
located at the text -- a key, a name, a description, guidelines, a label, an e-mail, a query
parameter -- and write nothing; a datapoint's values may hold it (their JSON escapes it)."""

from __future__ import annotations

from srv_helpers import assert_validation, create_dataset, field_list, make_rows, paginate, project_body, uniq


def test_a_key_holding_a_nul_is_refused_located_and_nothing_is_written(server):
    """No store keeps a key with U+0000 whole (PostgreSQL's text cannot hold it, SQLite's
    JSON functions cut a text there): both refuse it alike, in a PUT and in a PATCH by id,
    at the row's key field, and write nothing (it was a 500 on PostgreSQL)."""
    rows = make_rows(4)
    ds = create_dataset(server, key="text", rows=rows[:2])
    bad = [dict(rows[2], text="same prefix\x00 then more"), rows[3]]
    assert_validation(server.call("PUT", f"/datasets/{ds['id']}", json={"data": bad}), ("body", "data", 0, "text"))
    items = paginate(server, f"/datasets/{ds['id']}/datapoints")
    assert len(items) == 2
    patch = [{"id": items[0]["id"], "data": dict(rows[0], text="a\x00b")}]
    r = server.call("PATCH", f"/datasets/{ds['id']}/datapoints", json={"data": patch})
    assert_validation(r, ("body", "data", 0, "data", "text"))
    assert sorted(d["data"]["text"] for d in paginate(server, f"/datasets/{ds['id']}/datapoints")) == sorted(
        r["text"] for r in rows[:2])


def test_a_new_key_field_holding_a_nul_is_refused_and_the_key_stays(server):
    """PATCHing ``key`` to a field whose values hold U+0000 is the same 422, at ``body.key``,
    and the dataset keeps its key (it was a 500 on PostgreSQL)."""
    rows = make_rows(3)
    rows[1]["sentiment"] = "neu\x00tral"
    fields = {"text": "text", "sentiment": "text", "external_id": "text", "entities": "character_offsets"}
    ds = create_dataset(server, key="external_id", rows=rows, fields=fields)
    path = f"/datasets/{ds['id']}"
    detail = assert_validation(server.call("PATCH", path, json={"key": "sentiment"}), ("body", "key"))
    assert detail[0]["type"] == "key_nul"
    assert server.call("GET", path).json()["key"] == "external_id"
    assert server.call("PATCH", path, json={"key": "text"}).json()["key"] == "text"  # the others still may


def test_text_holding_a_nul_is_a_422_on_both_stores(server):
    """Names, descriptions, guidelines, label names and emails with U+0000 are refused, located
    (PostgreSQL's text cannot hold it: it was a 500 there); datapoint values may hold it."""
    fields = field_list()
    cases = [
        ({"name": "a\x00b", "fields": fields}, ("body", "name")),
        ({"name": uniq(), "description": "d\x00", "fields": fields}, ("body", "description")),
    ]
    for body, loc in cases:
        assert_validation(server.call("POST", "/datasets", json=body), loc)
    ds = create_dataset(server, key="external_id", rows=[dict(make_rows(1)[0], text="a value may\x00 hold it")])
    base = project_body(ds)
    output = base["outputs"][0]
    bad = [({**base, "guidelines": "read\x00me"}, ("body", "guidelines")),
           ({**base, "users": ["a\x00@example.com"]}, ("body", "users")),
           ({**base, "outputs": [{**output, "labels": ["positive", "x\x00"]}]}, ("body", "outputs", 0, "labels")),
           ({**base, "outputs": [{**output, "labels": [{"name": "ok", "description": "\x00"}]}]}, ("body", "outputs"))]
    for body, loc in bad:
        assert_validation(server.call("POST", "/projects", json=body), loc)
    assert server.call("GET", "/projects").json()["items"] == []
    (row,) = paginate(server, f"/datasets/{ds['id']}/datapoints")
    assert row["data"]["text"] == "a value may\x00 hold it"


def test_a_query_parameter_holding_a_nul_is_a_422_at_it(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    for path, params, name in [
        ("/datasets", {"name": "a\x00b"}, "name"),
        ("/projects", {"name": "\x00"}, "name"),
        (f"/datasets/{ds['id']}/digest", {"buckets": 4, "key": "te\x00xt"}, "key"),
        (f"/datasets/{ds['id']}/datapoints", {"limit": 5, "cursor": "x\x00"}, "cursor"),
    ]:
        detail = assert_validation(server.call("GET", path, params=params), ("query", name))
        assert detail[0]["type"] == "string_nul"
    assert len(paginate(server, "/datasets", {"name": ds["name"]})) == 1  # the same call without it


def test_a_body_key_field_or_token_email_holding_a_nul_is_a_422(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    r = server.call("POST", f"/datasets/{ds['id']}/digest/rows", json={"buckets": 4, "which": [0], "key": "te\x00xt"})
    assert_validation(r, ("body", "key"))
    assert_validation(server.call("POST", "/users/tokens", json={"email": "a\x00@example.com"}), ("body", "email"))
