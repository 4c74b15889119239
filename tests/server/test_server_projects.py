"""Projects: validation of inputs/outputs, PATCH rules, delete, annotations, the warm start."""

from __future__ import annotations

import copy

import pytest
from srv_helpers import (
    assert_validation,
    create_dataset,
    create_project,
    fid,
    make_rows,
    paginate,
    project_body,
    uniq,
)


@pytest.fixture(scope="module")
def ds(server):
    return create_dataset(server, key="external_id", rows=make_rows(12))


def tagging_output(ds, **over):
    out = {"name": "entities", "task_type": "sequence_tagging", "input": "text",
           "data_sources": [{"field_id": fid(ds, "entities")}]}
    return out | over


def test_create_shapes(server, ds):
    body = project_body(ds, description="d", guidelines="# Guide")
    body["users"] = ["b@example.com", {"email": "a@example.com", "role": "owner"}]
    body["outputs"].append({"name": "topic", "task_type": "multilabel_classification",
                            "labels": ["billing", {"name": "bug", "description": "Broken"}]})
    body["outputs"].append(tagging_output(ds))
    r = server.call("POST", "/projects", json=body)
    assert r.status_code == 201, r.text
    p = r.json()
    assert r.headers["ETag"] == '"1"' and p["version"] == 1
    assert p["users"] == [{"email": "a@example.com", "role": "owner"}, {"email": "b@example.com", "role": "annotator"}]
    assert p["outputs"][1]["labels"] == [{"name": "billing", "description": None}, {"name": "bug", "description": "Broken"}]
    assert p["outputs"][2]["input"] == "text" and p["outputs"][0]["input"] is None
    assert p["review_existing_annotations"] is True and p["annotation_count"] == 0
    assert server.call("GET", f"/projects/{p['id']}").json() == p
    assert server.call("POST", "/projects", json=body).status_code == 409


def bad_bodies(ds):
    """(name, mutate(body), expected loc)"""
    f = lambda n: fid(ds, n)  # noqa: E731
    return [
        ("unknown field", lambda b: b["inputs"][0]["data_sources"].__setitem__(0, {"field_id": 987654}),
         ("body", "inputs", 0, "data_sources", 0, "field_id")),
        ("input type differs from field", lambda b: b["inputs"][0].__setitem__("data_type", "categorical"),
         ("body", "inputs", 0, "data_sources", 0, "field_id")),
        ("input without source", lambda b: b["inputs"][0].__setitem__("data_sources", []),
         ("body", "inputs", 0, "data_sources")),
        ("two fields of one dataset", lambda b: b["inputs"][0].__setitem__(
            "data_sources", [{"field_id": f("text")}, {"field_id": f("external_id")}]),
         ("body", "inputs", 0, "data_sources", 1, "field_id")),
        ("duplicate input", lambda b: b["inputs"].append(copy.deepcopy(b["inputs"][0])), ("body", "inputs", 1, "name")),
        ("duplicate output", lambda b: b["outputs"].append(copy.deepcopy(b["outputs"][0])), ("body", "outputs", 1, "name")),
        ("classification without labels or source", lambda b: b["outputs"][0].__setitem__("data_sources", []),
         ("body", "outputs", 0)),
        ("multilabel without labels or source", lambda b: b["outputs"].append(
            {"name": "m", "task_type": "multilabel_classification"}), ("body", "outputs", 1)),
        ("classification from a text field", lambda b: b["outputs"][0].__setitem__(
            "data_sources", [{"field_id": f("text")}]), ("body", "outputs", 0, "data_sources", 0, "field_id")),
        ("tagging without input", lambda b: b["outputs"].append(tagging_output(ds, input=None)),
         ("body", "outputs", 1, "input")),
        ("tagging input unknown", lambda b: b["outputs"].append(tagging_output(ds, input="nope")),
         ("body", "outputs", 1, "input")),
        ("tagging input not text", lambda b: (b["inputs"].append(
            {"name": "label", "data_type": "categorical", "data_sources": [{"field_id": f("sentiment")}]}),
            b["outputs"].append(tagging_output(ds, input="label"))), ("body", "outputs", 1, "input")),
        ("tagging from a categorical field", lambda b: b["outputs"].append(
            tagging_output(ds, data_sources=[{"field_id": f("sentiment")}])),
         ("body", "outputs", 1, "data_sources", 0, "field_id")),
        ("tagging without labels or source", lambda b: b["outputs"].append(tagging_output(ds, data_sources=[])),
         ("body", "outputs", 1)),
        ("input on a classification output", lambda b: b["outputs"][0].__setitem__("input", "text"),
         ("body", "outputs", 0, "input")),
        ("label twice", lambda b: b["outputs"][0].__setitem__("labels", ["a", "a"]), ("body", "outputs", 0, "labels", 1, "name")),
        ("user twice", lambda b: b.__setitem__("users", ["a@x.io", "A@x.io"]), ("body", "users", 1)),
        ("bad e-mail", lambda b: b.__setitem__("users", ["not-an-email"]), ("body", "users", 0)),
        ("bad task type", lambda b: b["outputs"][0].__setitem__("task_type", "regression"), ("body", "outputs", 0, "task_type")),
        ("no outputs", lambda b: b.__setitem__("outputs", []), ("body", "outputs")),
        ("extra key", lambda b: b.__setitem__("colour", "red"), ("body", "colour")),
    ]


@pytest.mark.parametrize("case", range(21))
def test_create_validation(server, ds, case):
    name, mutate, loc = bad_bodies(ds)[case]
    body = project_body(ds)
    mutate(body)
    r = server.call("POST", "/projects", json=body)
    detail = assert_validation(r, loc)
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail), name


def test_other_orgs_field_is_unknown(server, ds):
    theirs = create_dataset(server, other=True)
    body = project_body(ds)
    body["inputs"][0]["data_sources"] = [{"field_id": fid(theirs, "text")}]
    detail = assert_validation(server.call("POST", "/projects", json=body), ("body", "inputs", 0, "data_sources", 0, "field_id"))
    assert theirs["name"] not in str(detail)


def test_list_projects(server, ds):
    names = [uniq("p") for _ in range(3)]
    ids = [create_project(server, ds, name=n)["id"] for n in names]
    listed = [p["id"] for p in paginate(server, "/projects", {"limit": 1})]
    assert listed[-3:] == ids
    assert [p["id"] for p in paginate(server, "/projects", {"name": names[1]})] == [ids[1]]


def test_patch_allowed_changes(server, ds):
    p = create_project(server, ds, guidelines="g1")
    path = f"/projects/{p['id']}"
    # a no-op keeps the version
    same = {"name": p["name"], "guidelines": "g1", "inputs": project_body(ds)["inputs"]}
    r = server.call("PATCH", path, json=same)
    assert r.status_code == 200 and r.json()["version"] == 1
    inputs = [{**project_body(ds)["inputs"][0], "description": "now described", "display_only": True},
              {"name": "external_id", "data_type": "text", "data_sources": [{"field_id": fid(ds, "external_id")}]}]
    outputs = [{**project_body(ds)["outputs"][0], "labels": ["positive", {"name": "negative", "description": "bad"}]},
               tagging_output(ds)]
    r = server.call("PATCH", path, json={
        "guidelines": "g2", "description": "d", "users": ["z@example.com"], "inputs": inputs, "outputs": outputs,
    }, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["version"] == 2 and q["guidelines"] == "g2" and q["users"] == [{"email": "z@example.com", "role": "annotator"}]
    assert q["inputs"][0]["id"] == p["inputs"][0]["id"] and q["inputs"][0]["display_only"] is True
    assert q["outputs"][0]["id"] == p["outputs"][0]["id"]
    assert [lb["name"] for lb in q["outputs"][0]["labels"]] == ["positive", "negative"]
    assert [o["name"] for o in q["outputs"]] == ["sentiment", "entities"]
    # users replace; more labels; descriptions change
    outputs[0]["labels"] = [{"name": "positive", "description": "good"}, "negative", "neutral"]
    r = server.call("PATCH", path, json={"outputs": outputs, "users": []})
    assert r.status_code == 200 and r.json()["users"] == [] and r.json()["version"] == 3
    assert r.json()["outputs"][0]["labels"][0] == {"name": "positive", "description": "good"}
    assert server.call("PATCH", path, json={"guidelines": "x"}, headers={"If-Match": "2"}).status_code == 412
    other = create_project(server, ds)
    assert server.call("PATCH", path, json={"name": other["name"]}).status_code == 409


def test_patch_changes_that_need_replacement(server, ds):
    p = create_project(server, ds, outputs=[
        {"name": "sentiment", "task_type": "classification", "labels": ["a", "b"],
         "data_sources": [{"field_id": fid(ds, "sentiment")}]},
        tagging_output(ds),
    ])
    path = f"/projects/{p['id']}"
    base = server.call("GET", path).json()
    inputs = [{k: v for k, v in i.items() if k != "id"} for i in base["inputs"]]
    outputs = [{k: v for k, v in o.items() if k != "id"} for o in base["outputs"]]
    cases = [
        ({"inputs": []}, ("body", "inputs")),  # min length
        ({"inputs": [dict(inputs[0], name="renamed")]}, ("body", "inputs")),
        ({"inputs": [dict(inputs[0], data_type="categorical", data_sources=[{"field_id": fid(ds, "sentiment")}])]},
         ("body", "inputs", 0, "data_type")),
        ({"inputs": [dict(inputs[0], data_sources=[{"field_id": fid(ds, "external_id")}])]},
         ("body", "inputs", 0, "data_sources")),
        ({"outputs": outputs[1:]}, ("body", "outputs")),
        ({"outputs": [dict(outputs[0], task_type="multilabel_classification"), outputs[1]]}, ("body", "outputs", 0, "task_type")),
        ({"outputs": [dict(outputs[0], labels=[outputs[0]["labels"][0]]), outputs[1]]}, ("body", "outputs", 0, "labels")),
        ({"outputs": [dict(outputs[0], data_sources=[]), outputs[1]]}, ("body", "outputs", 0, "data_sources")),
        ({"outputs": [outputs[0], dict(outputs[1], input="external_id")]}, ("body", "outputs", 1, "input")),
        ({"users": None}, ("body", "users")),
    ]
    for patch, loc in cases:
        detail = assert_validation(server.call("PATCH", path, json=patch), loc)
        if patch.get("inputs") != [] and "users" not in patch:  # the rest are plain schema errors
            assert any(d["type"] == "needs_replacement" and "replacement" in d["msg"] for d in detail), detail
    assert server.call("GET", path).json()["version"] == 1


def test_delete_project(server, ds):
    fresh = create_dataset(server, rows=make_rows(3))
    p = create_project(server, fresh, review=False)
    assert [r["annotations"] for r in paginate(server, f"/datasets/{fresh['id']}/digest")] == [1, 1, 1]
    assert server.call("DELETE", f"/projects/{p['id']}", headers={"If-Match": "5"}).status_code == 412
    r = server.call("DELETE", f"/projects/{p['id']}")
    assert r.status_code == 200 and r.json() == {"id": p["id"]}
    assert server.call("GET", f"/projects/{p['id']}").status_code == 404
    assert [r["annotations"] for r in paginate(server, f"/datasets/{fresh['id']}/digest")] == [0, 0, 0]
    # the dataset can now go without force
    assert server.call("DELETE", f"/datasets/{fresh['id']}").status_code == 200


def annotate(server, project_id, **body):
    return server.call("POST", f"/projects/{project_id}/annotations", json=body)


def test_annotations(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(12))
    body = project_body(ds, outputs=[
        {"name": "sentiment", "task_type": "classification", "labels": ["positive", "negative"]},
        {"name": "topics", "task_type": "multilabel_classification", "labels": ["a", "b", "c"]},
        {"name": "entities", "task_type": "sequence_tagging", "input": "text", "labels": ["ORG", "PER"]},
        {"name": "open", "task_type": "classification", "data_sources": [{"field_id": fid(ds, "sentiment")}]},
    ])
    p = server.call("POST", "/projects", json=body).json()
    dp = ds["datapoint_ids"]
    r = annotate(server, p["id"], datapoint_id=dp[0], output="sentiment", value="positive")
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "positive" and r.json()["source"] == "user" and r.json()["output"] == "sentiment"
    # last write wins, still one annotation
    assert annotate(server, p["id"], datapoint_id=dp[0], output="sentiment", value="negative").json()["value"] == "negative"
    assert annotate(server, p["id"], datapoint_id=dp[0], output="topics", value=["b", "a"]).json()["value"] == ["a", "b"]
    spans = [{"start": 4, "end": 6, "label": "PER"}, {"start": 0, "end": 3, "label": "ORG"}]
    r = annotate(server, p["id"], datapoint_id=dp[0], output="entities", value=spans)
    assert r.status_code == 200 and r.json()["value"][0]["start"] == 0
    assert annotate(server, p["id"], datapoint_id=dp[1], output="open", value="anything").status_code == 200
    rows = {r["id"]: r["annotations"] for r in paginate(server, f"/datasets/{ds['id']}/digest")}
    assert rows[dp[0]] == 3 and rows[dp[1]] == 1
    # annotations are work, not configuration: the project's version does not move
    assert server.call("GET", f"/projects/{p['id']}").json()["version"] == 1
    bad = [
        ({"datapoint_id": dp[0], "output": "sentiment", "value": "maybe"}, ("body", "value")),
        ({"datapoint_id": dp[0], "output": "sentiment", "value": ["positive"]}, ("body", "value")),
        ({"datapoint_id": dp[0], "output": "topics", "value": ["a", "a"]}, ("body", "value")),
        ({"datapoint_id": dp[0], "output": "topics", "value": ["z"]}, ("body", "value", 0)),
        ({"datapoint_id": dp[0], "output": "entities", "value": [{"start": 0, "end": 999, "label": "ORG"}]}, ("body", "value")),
        ({"datapoint_id": dp[0], "output": "entities", "value": [{"start": 2, "end": 2, "label": "ORG"}]}, ("body", "value", 0)),
        ({"datapoint_id": dp[0], "output": "entities", "value": [{"start": 0, "end": 2, "label": "LOC"}]}, ("body", "value", 0, "label")),
        ({"datapoint_id": dp[0], "output": "nope", "value": "x"}, ("body", "output")),
        ({"datapoint_id": dp[0], "output": "sentiment"}, ("body", "value")),
        ({"datapoint_id": 0, "output": "sentiment", "value": "positive"}, ("body", "datapoint_id")),
    ]
    for b, loc in bad:
        assert_validation(annotate(server, p["id"], **b), loc)
    elsewhere = create_dataset(server, rows=make_rows(1))
    r = annotate(server, p["id"], datapoint_id=elsewhere["datapoint_ids"][0], output="sentiment", value="positive")
    assert r.status_code == 404
    assert annotate(server, p["id"], datapoint_id=dp[2], output="sentiment", value="positive",
                    ).status_code == 200
    r = server.call("POST", f"/projects/{p['id']}/annotations", json={"datapoint_id": dp[3], "output": "sentiment", "value": "positive"},
                    headers={"If-Match": "2"})
    assert r.status_code == 412
    # deleting a datapoint deletes its annotations
    server.call("POST", f"/datasets/{ds['id']}/datapoints/delete", json={"ids": [dp[0]]}).raise_for_status()
    summary = server.call("GET", f"/projects/{p['id']}/annotations/summary").json()
    counts = {o["name"]: o["annotated"] for o in summary["outputs"]}
    assert counts == {"sentiment": 1, "topics": 0, "entities": 0, "open": 1}
    assert summary["annotation_count"] == 2 and summary["annotated_datapoints"] == 2


def test_warm_start_follows_data(server):
    ds = create_dataset(server, key="external_id", rows=make_rows(3))
    p = create_project(server, ds, review=False)
    assert p["annotation_count"] == 3
    path = f"/datasets/{ds['id']}"
    # new rows with the source field become annotations too; rows without it do not
    added = server.call("PUT", path, json={"data": make_rows(2, start=50) + [{"text": "no label", "external_id": "x"}]}).json()
    summary = server.call("GET", f"/projects/{p['id']}/annotations/summary").json()["outputs"][0]
    assert summary["by_source"] == {"user": 0, "dataset": 5}
    a, b, c = ds["datapoint_ids"]
    # a user's annotation is never overwritten from the data
    assert annotate(server, p["id"], datapoint_id=a, output="sentiment", value="neutral").status_code == 200
    server.call("PATCH", path + "/datapoints", json={"data": [
        {"id": a, "data": {"text": "t", "external_id": "10000", "sentiment": "positive"}},
        {"id": b, "data": {"text": "t", "external_id": "10001"}},  # label removed
        {"id": c, "data": {"text": "t", "external_id": "10002", "sentiment": "negative"}},
    ]}).raise_for_status()
    summary = server.call("GET", f"/projects/{p['id']}/annotations/summary").json()["outputs"][0]
    assert summary["by_source"] == {"user": 1, "dataset": 3}
    rows = {r["id"]: r["annotations"] for r in paginate(server, path + "/digest")}
    assert rows[a] == 1 and rows[b] == 0 and rows[c] == 1
    assert rows[added["datapoint_ids"][2]] == 0
    assert summary["source_labels"] == ["negative", "neutral", "positive"]


def test_turning_review_off_later_warm_starts(server):
    ds = create_dataset(server, rows=make_rows(4))
    p = create_project(server, ds, review=True)
    assert p["annotation_count"] == 0
    r = server.call("PATCH", f"/projects/{p['id']}", json={"review_existing_annotations": False})
    assert r.status_code == 200 and r.json()["annotation_count"] == 4 and r.json()["version"] == 2
    # a new output with a source is warm-started as well
    outputs = [{k: v for k, v in o.items() if k != "id"} for o in r.json()["outputs"]]
    outputs.append({"name": "entities", "task_type": "sequence_tagging", "input": "text",
                    "data_sources": [{"field_id": fid(ds, "entities")}]})
    r = server.call("PATCH", f"/projects/{p['id']}", json={"outputs": outputs})
    assert r.status_code == 200, r.text
    assert r.json()["annotation_count"] == 8


def test_model_status_leaves_untrained_at_ten(server):
    """Below 10 annotated datapoints an output is untrained; at 10 a model is due (the
    trainer, hlops/server/training.py, owns the states after that)."""
    ds = create_dataset(server, rows=make_rows(10))
    few = create_project(server, create_dataset(server, rows=make_rows(9)), review=False)
    (out,) = server.call("GET", f"/projects/{few['id']}/annotations/summary").json()["outputs"]
    assert out["annotated"] == 9 and out["model"]["status"] == "untrained"
    p = create_project(server, ds, review=False)
    (out,) = server.call("GET", f"/projects/{p['id']}/annotations/summary").json()["outputs"]
    assert out["annotated"] == 10 and out["model"]["status"] != "untrained"
