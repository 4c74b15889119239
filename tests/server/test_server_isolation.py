"""Organisations: another organisation's key gets 404 on every id of the first, lists show
nothing of it, and a missing or unknown key gets 401 everywhere."""

from __future__ import annotations

import pytest
from srv_helpers import create_dataset, create_project, fid, make_rows, paginate

# every route that takes an id: (method, path template, body)
ROUTES = [
    ("GET", "/datasets/{d}", None),
    ("PUT", "/datasets/{d}", {"data": [{"text": "x"}]}),
    ("PATCH", "/datasets/{d}", {"description": "x"}),
    ("DELETE", "/datasets/{d}", None),
    ("DELETE", "/datasets/{d}?force=true", None),
    ("GET", "/datasets/{d}/datapoints", None),
    ("PATCH", "/datasets/{d}/datapoints", {"data": [{"id": "{dp}", "data": {"text": "x"}}]}),
    ("POST", "/datasets/{d}/datapoints/delete", {"ids": ["{dp}"]}),
    ("GET", "/datasets/{d}/digest", None),
    ("GET", "/datasets/{d}/digest?buckets=4", None),
    ("GET", "/datasets/{d}/digest?buckets=4&bucket=1", None),
    ("GET", "/projects/{p}", None),
    ("PATCH", "/projects/{p}", {"description": "x"}),
    ("DELETE", "/projects/{p}", None),
    ("POST", "/projects/{p}/annotations", {"datapoint_id": "{dp}", "output": "sentiment", "value": "positive"}),
    ("GET", "/projects/{p}/annotations/summary", None),
]


@pytest.fixture(scope="module")
def owned(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    project = create_project(server, ds)
    return {"d": ds["id"], "p": project["id"], "dp": ds["datapoint_ids"][0], "ds": ds, "project": project}


def fill(value, ids):
    if isinstance(value, str):
        if value in ("{dp}", "{d}", "{p}"):
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method, template, body", ROUTES, ids=[f"{m} {t}" for m, t, _ in ROUTES])
def test_other_org_gets_404(server, owned, method, template, body):
    path = template.format(**owned)
    r = server.call(method, path, json=fill(body, owned), other=True)
    assert r.status_code == 404, (r.status_code, r.text)
    assert r.json()["detail"].endswith("not found")


def test_first_org_still_intact(server, owned):
    assert server.call("GET", f"/datasets/{owned['d']}").json()["version"] == 1
    assert server.call("GET", f"/projects/{owned['p']}").json()["version"] == 1
    assert server.call("GET", f"/datasets/{owned['d']}").json()["datapoint_count"] == 3


def test_lists_are_per_org(server, owned):
    theirs = create_dataset(server, other=True, name=owned["ds"]["name"])  # same name: fine, other org
    create_project(server, theirs, other=True, name=owned["project"]["name"])
    mine = {d["id"] for d in paginate(server, "/datasets")}
    others = {d["id"] for d in paginate(server, "/datasets", other=True)}
    assert owned["d"] in mine and owned["d"] not in others and theirs["id"] in others and not mine & others
    assert owned["p"] not in {p["id"] for p in paginate(server, "/projects", other=True)}
    assert paginate(server, "/datasets", {"name": owned["ds"]["name"]}, other=True)[0]["id"] == theirs["id"]


def test_cross_org_references(server, owned):
    """Another org's field ids and datapoint ids do not exist for a project of mine."""
    theirs = create_dataset(server, other=True, rows=make_rows(1))
    mine = create_dataset(server, rows=make_rows(1))
    p = create_project(server, mine)
    r = server.call("POST", f"/projects/{p['id']}/annotations",
                    json={"datapoint_id": theirs["datapoint_ids"][0], "output": "sentiment", "value": "x"})
    assert r.status_code == 404
    body = {"name": "x", "inputs": [{"name": "t", "data_type": "text", "data_sources": [{"field_id": fid(theirs, "text")}]}],
            "outputs": [{"name": "o", "task_type": "classification", "labels": ["a"]}]}
    assert server.call("POST", "/projects", json=body).status_code == 422


ALL_ROUTES = ROUTES + [("GET", "/datasets", None), ("POST", "/datasets", {"name": "x", "fields": []}),
                       ("GET", "/projects", None), ("POST", "/projects", {}), ("GET", "/nowhere", None)]


@pytest.mark.parametrize("key", [None, "", "wrong-key-123456"])
def test_401_without_a_valid_key(server, owned, key):
    for method, template, body in ALL_ROUTES:
        headers = {} if key is None else {"X-API-KEY": key}
        r = server._session.request(method, server.url + template.format(**owned), json=fill(body, owned), headers=headers)
        assert r.status_code == 401, (method, template, r.status_code)
        assert "key" in r.json()["detail"].lower()
    assert server._session.get(server.url + "/health").status_code == 200
