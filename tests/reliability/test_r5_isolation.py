"""R5 -- isolation: nothing of one organisation is visible to, or changeable by, another.

Extends ``tests/server/test_isolation.py`` (a fixed list of routes) so that it is complete
by construction: the operations come from the running server's ``/openapi.json``.

- every operation that takes an id, called by organisation B with A's ids (and a valid body),
  answers 404 -- and exactly what it answers for an id that never existed, so a foreign id
  cannot even be probed;
- ids *inside* bodies (field ids of a project's sources, datapoint ids to annotate, change
  or delete) are as foreign as ids in paths: refused, and A's data does not move;
- no listing shows A's names (``?name=`` filters included), an Idempotency-Key of A replays
  nothing for B, and ``hlops plan`` as B sees none of what A applied;
- afterwards A's resources are exactly as they were (versions, counts, annotations).
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from rel_support import EXAMPLES, Org, org_server, run_inprocess

NEVER = 987_654_321  # an id that never existed


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("r5")
    srv = org_server(base / "server", orgs=3)
    a, b = Org(srv.url, srv.org_keys[0]), Org(srv.url, srv.org_keys[1])
    ds = a.call("POST", "/datasets", json={
        "name": "a-secret-dataset", "key": "id",
        "fields": [{"name": "id", "data_type": "text"}, {"name": "text", "data_type": "text"},
                   {"name": "label", "data_type": "categorical"}],
        "data": [{"id": str(i), "text": f"a-private-text {i}", "label": "pos"} for i in range(12)]}).json()
    fid = {f["name"]: f["id"] for f in ds["fields"]}
    project = a.call("POST", "/projects", json={
        "name": "a-secret-project",
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": fid["text"]}]}],
        "outputs": [{"name": "label", "task_type": "classification", "data_sources": [{"field_id": fid["label"]}]}],
        "review_existing_annotations": False}).json()
    a.call("POST", f"/projects/{project['id']}/annotations",
           json={"datapoint_id": ds["datapoint_ids"][0], "output": "label", "value": "neg"})
    mine = b.call("POST", "/datasets", json={"name": "b-own", "fields": [{"name": "text", "data_type": "text"}],
                                              "data": [{"text": "b row"}]}).json()
    b_fid = mine["fields"][0]["id"]
    b_project = b.call("POST", "/projects", json={
        "name": "b-own", "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": b_fid}]}],
        "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "x"}]}]}).json()
    spec = requests.get(srv.url + "/openapi.json", timeout=30).json()
    rig = {"base": base, "srv": srv, "a": a, "b": b, "ds": ds, "project": project, "fid": fid, "spec": spec,
           "b_ds": mine, "b_project": b_project, "snapshot": snapshot(a, ds, project)}
    try:
        yield rig
    finally:
        srv.close()


def snapshot(org: Org, ds: dict, project: dict) -> dict:
    d = org.get(f"/datasets/{ds['id']}")
    p = org.get(f"/projects/{project['id']}")
    rows = sorted((r["id"], r["hash"]) for r in org.all(f"/datasets/{ds['id']}/digest"))
    return {"dataset": (d["version"], d["datapoint_count"], d["name"]), "project": (p["version"], p["name"], p["annotation_count"]),
            "rows": rows, "summary": org.get(f"/projects/{project['id']}/annotations/summary")}


def body_for(method: str, template: str, rig) -> dict | None:
    """A body that would be valid if the ids were the caller's own."""
    dp = rig["ds"]["datapoint_ids"]
    bodies = {
        ("PUT", "/datasets/{dataset_id}"): {"data": [{"id": "new", "text": "x", "label": "pos"}]},
        ("PATCH", "/datasets/{dataset_id}"): {"description": "changed by b"},
        ("PATCH", "/datasets/{dataset_id}/datapoints"): {"data": [{"id": dp[1], "data": {"id": "1", "text": "b was here"}}]},
        ("POST", "/datasets/{dataset_id}/datapoints/delete"): {"ids": dp[:3]},
        ("POST", "/datasets/{dataset_id}/digest/rows"): {"buckets": 4, "which": [0, 1]},
        ("POST", "/datasets/{dataset_id}/digest/keys"): {"keys": ["1", "2"]},
        ("PATCH", "/projects/{project_id}"): {"guidelines": "changed by b"},
        ("POST", "/projects/{project_id}/annotations"): {"datapoint_id": dp[2], "output": "label", "value": "neg"},
        ("POST", "/projects/{project_id}/predict"): {"data": [{"text": "x"}]},
    }
    if method in ("GET", "DELETE"):
        return None
    return bodies.get((method, template), {})


def id_operations(spec: dict) -> list[tuple[str, str]]:
    return [(m.upper(), p) for p, item in spec["paths"].items() for m in item if "{" in p]


def normalise(text: str) -> str:
    return re.sub(r"\d+", "N", text)


def test_every_id_operation_answers_404_as_for_a_missing_id(rig, record):
    a_ids = {"dataset_id": rig["ds"]["id"], "project_id": rig["project"]["id"]}
    never = {"dataset_id": NEVER, "project_id": NEVER}
    ops = id_operations(rig["spec"])
    variants = [("", {}), ("?force=true", {})]
    failures, tried = [], 0
    for method, template in ops:
        for query, _ in variants if method == "DELETE" and "dataset" in template else variants[:1]:
            sent: dict = {"json": body_for(method, template, rig)}
            if template.endswith("/last_applied/index"):  # raw bytes, not JSON
                sent = {"data": b"an index" if method == "PUT" else None,
                        "headers": {"Content-Type": "application/octet-stream"}}
            foreign = rig["b"].call(method, template.format(**a_ids) + query, **sent)
            missing = rig["b"].call(method, template.format(**never) + query, **sent)
            tried += 1
            what = f"{method} {template}{query}"
            if foreign.status_code != 404:
                failures.append(f"{what}: {foreign.status_code} {foreign.text[:200]}")
            elif (foreign.status_code, normalise(foreign.text)) != (missing.status_code, normalise(missing.text)):
                failures.append(f"{what}: a foreign id answers {foreign.text!r}, a missing one {missing.text!r}")
    record("R5", cases=tried, passed=tried - len(failures), checks="id operations x foreign ids", operations=len(ops))
    assert not failures, "\n".join(failures)
    assert len(ops) >= 12


def test_ids_inside_bodies_are_foreign_too(rig, record):
    b, fid, dp = rig["b"], rig["fid"], rig["ds"]["datapoint_ids"]
    b_ds, b_project = rig["b_ds"]["id"], rig["b_project"]["id"]
    b_fid = rig["b_ds"]["fields"][0]["id"]
    cases = {
        "a project of B reading A's field": ("POST", "/projects", {
            "name": "b-steals", "inputs": [{"name": "t", "data_type": "text", "data_sources": [{"field_id": fid["text"]}]}],
            "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "x"}]}]}),
        "B's project gains A's field as an input": ("PATCH", f"/projects/{b_project}", {
            "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": b_fid}]},
                       {"name": "t2", "data_type": "text", "data_sources": [{"field_id": fid["text"]}]}]}),
        "B's project gains A's field as an output source": ("PATCH", f"/projects/{b_project}", {
            "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "x"}],
                         "data_sources": [{"field_id": fid["label"]}]}]}),
        "B annotates A's datapoint in B's project": ("POST", f"/projects/{b_project}/annotations",
                                                     {"datapoint_id": dp[0], "output": "o", "value": "x"}),
        "B changes A's datapoints through B's dataset": ("PATCH", f"/datasets/{b_ds}/datapoints",
                                                         {"data": [{"id": dp[0], "data": {"text": "b was here"}}]}),
        "B deletes A's datapoints through B's dataset": ("POST", f"/datasets/{b_ds}/datapoints/delete", {"ids": dp[:4]}),
    }
    failures = []
    for what, (method, path, body) in cases.items():
        r = b.call(method, path, json=body)
        if path.endswith("/delete") and r.status_code == 200:
            # deleting ids that are not in the dataset is a no-op, as for ids that never
            # existed (a retried delete is harmless): fine as long as nothing was deleted
            if r.json().get("deleted") != 0:
                failures.append(f"{what}: deleted {r.json().get('deleted')} datapoints")
        elif r.status_code not in (404, 422):
            failures.append(f"{what}: {r.status_code} {r.text[:200]}")
        if "a-private-text" in r.text or "a-secret" in r.text:
            failures.append(f"{what}: the answer shows A's data")
    record("R5", cases=len(cases), passed=len(cases) - len(failures), checks="foreign ids inside bodies")
    assert not failures, "\n".join(failures)


def test_no_listing_shows_another_organisations_names(rig, record):
    b = rig["b"]
    secret = ("a-secret-dataset", "a-secret-project", "a-private-text")
    listings = [("/datasets", {}), ("/projects", {}), ("/datasets", {"name": "a-secret-dataset"}),
                ("/projects", {"name": "a-secret-project"}), ("/datasets", {"limit": 1000}), ("/projects", {"limit": 1000})]
    ops = [p for p, item in rig["spec"]["paths"].items() if "get" in item and "{" not in p and p != "/health"]
    failures = []
    for path, params in listings + [(p, {}) for p in ops]:
        r = b.call("GET", path, params=params)
        if r.status_code != 200 or any(s in r.text for s in secret):
            failures.append(f"GET {path} {params}: {r.status_code} {r.text[:200]}")
    ids_b = {d["id"] for d in b.all("/datasets")} | {p["id"] for p in b.all("/projects")}
    if rig["ds"]["id"] in {d["id"] for d in b.all("/datasets")} or rig["project"]["id"] in {p["id"] for p in b.all("/projects")}:
        failures.append("B's listing holds A's ids")
    cases = len(listings) + len(ops) + 1
    record("R5", cases=cases, passed=cases - len(failures), checks="listings")
    assert not failures, "\n".join(failures)
    assert ids_b


def test_idempotency_keys_are_per_organisation(rig, record):
    """A's key, replayed by B, does not hand B A's stored answer."""
    a, b = rig["a"], rig["b"]
    key = uuid.uuid4().hex
    first = a.call("POST", "/datasets", json={"name": "a-idem", "fields": [{"name": "t", "data_type": "text"}],
                                               "data": [{"t": "a-private-text idem"}]}, headers={"Idempotency-Key": key})
    theirs = requests.post(b.url + "/datasets", json={"name": "a-idem", "fields": [{"name": "t", "data_type": "text"}],
                                                      "data": [{"t": "a-private-text idem"}]},
                           headers={"X-API-KEY": b.key, "Idempotency-Key": key}, timeout=30)
    ok = (first.status_code == 201 and theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
          and theirs.headers.get("Idempotency-Replayed") != "true")
    record("R5", cases=1, passed=int(ok), checks="idempotency keys")
    assert ok, (first.text, theirs.text, dict(theirs.headers))


def test_hlops_as_another_organisation_sees_nothing(rig, record, tmp_path):
    """A applies the sentiment example; hlops as B plans to create everything and lists no
    unmanaged resource of A."""
    srv = rig["srv"]
    work = rig["base"] / "work"
    work.mkdir(exist_ok=True)
    example = str(EXAMPLES / "sentiment")
    applied = run_inprocess(["apply", example, "--auto-approve"], srv.url, rig["a"].key, work / "home-a", work)
    assert applied.code == 0, applied
    plan = run_inprocess(["plan", example, "--json"], srv.url, rig["b"].key, work / "home-b", work)
    import json

    doc = json.loads(plan.out) if plan.out.strip().startswith("{") else {}
    actions = {c["kind"] + "/" + c["name"]: c["action"] for c in doc.get("changes", [])}
    theirs = {f"dataset/{d['name']}" for d in rig["a"].all("/datasets")} | {f"project/{p['name']}" for p in rig["a"].all("/projects")}
    mine = {f"dataset/{d['name']}" for d in rig["b"].all("/datasets")} | {f"project/{p['name']}" for p in rig["b"].all("/projects")}
    leaked = [u for u in doc.get("unmanaged", []) if u in theirs - mine or u not in mine]
    ok = plan.code == 2 and set(actions.values()) == {"create"} and not leaked and "a-private-text" not in plan.out
    record("R5", cases=1, passed=int(ok), checks="hlops plan as another organisation")
    assert ok, (plan, actions, doc.get("unmanaged"))


def test_a_is_untouched(rig, record):
    """Runs last in this module: nothing B did moved any of A's resources."""
    now = snapshot(rig["a"], rig["ds"], rig["project"])
    same = now == rig["snapshot"]
    record("R5", cases=1, passed=int(same), checks="A's state afterwards")
    assert same, (now, rig["snapshot"])
