"""Renames in place, ignore_changes, --target, ownership and --prune, drift: against the real
server, in-process where the CLI isn't the point."""

from __future__ import annotations

import json

import pytest

from gitops_helpers import apply_path, plan_of
from support.cli import run_hlops

from hlops.errors import PlanError
from hlops.render import markdown, text

DATASET = """kind: Dataset
name: {ds}
{ds_rename}key: id
fields: {{id: text, text: text, label: categorical}}
data: rows.jsonl
"""
PROJECT = """kind: Project
name: {pj}
{pj_rename}inputs: {{text: {ds}.text}}
outputs: {{label: {{task_type: classification, from: {ds}.label, labels: [pos, neg]}}}}
guidelines: Label the feeling.
review_existing_annotations: false
"""


def write_tree(path, ds, pj, ds_from=None, pj_from=None, extra=""):
    path.mkdir(exist_ok=True)
    (path / "rows.jsonl").write_text("".join(
        json.dumps({"id": f"r{i}", "text": f"text {i}", "label": "pos" if i % 2 else "neg"}) + "\n" for i in range(12)
    ))
    (path / "tree.yaml").write_text(
        DATASET.format(ds=ds, ds_rename=f"renamed_from: {ds_from}\n" if ds_from else "")
        + "---\n"
        + PROJECT.format(ds=ds, pj=pj, pj_rename=f"renamed_from: {pj_from}\n" if pj_from else "")
        + extra
    )


def get(server, kind, name):
    items = server.call("GET", f"/{kind}s", params={"name": name}).json()["items"]
    return items[0] if items else None


def test_renamed_from_renames_in_place_keeping_ids_datapoints_and_annotations(server, connect, tmp_path):
    conn = connect(server)
    cache = tmp_path / "cache"
    tree = tmp_path / "tree"
    write_tree(tree, "rn-tickets", "rn-project")
    apply_path(tree, conn, cache)
    ds, pj = get(server, "dataset", "rn-tickets"), get(server, "project", "rn-project")
    point = server.call("GET", f"/datasets/{ds['id']}/datapoints", params={"limit": 1}).json()["items"][0]
    r = server.call("POST", f"/projects/{pj['id']}/annotations", json={"datapoint_id": point["id"], "output": "label", "value": "pos"})
    assert r.status_code == 200, r.text
    before = server.call("GET", f"/projects/{pj['id']}/annotations/summary").json()["annotation_count"]
    assert before == 12  # 12 from the data (warm start), one of them overwritten by a user

    write_tree(tree, "rn-tickets-v2", "rn-project-v2", ds_from="rn-tickets", pj_from="rn-project")
    plan = plan_of(tree, conn, cache).plan
    actions = {c.address: (c.action.value, c.renamed_from, c.remote_id) for c in plan.changes}
    assert actions == {
        "dataset/rn-tickets-v2": ("update", "rn-tickets", ds["id"]),
        "project/rn-project-v2": ("update", "rn-project", pj["id"]),
    }
    assert not plan.destructive()
    out = text.render(plan)
    assert "will be renamed from 'rn-tickets'" in out and "will be renamed from 'rn-project'" in out
    assert "will be renamed from <code>rn-project</code>" in markdown.render(plan)
    apply_path(tree, conn, cache)

    ds2, pj2 = get(server, "dataset", "rn-tickets-v2"), get(server, "project", "rn-project-v2")
    assert (ds2["id"], pj2["id"]) == (ds["id"], pj["id"])
    assert ds2["datapoint_count"] == 12
    assert get(server, "dataset", "rn-tickets") is None and get(server, "project", "rn-project") is None
    summary = server.call("GET", f"/projects/{pj['id']}/annotations/summary").json()
    assert summary["annotation_count"] == before
    assert summary["outputs"][0]["by_source"]["user"] == 1
    assert not plan_of(tree, conn, cache).plan.has_changes  # renamed_from may stay: harmless once done


def test_ignore_changes_leaves_web_app_edits_alone(server, connect, tmp_path):
    conn = connect(server)
    cache = tmp_path / "cache"
    tree = tmp_path / "tree"
    write_tree(tree, "ig-tickets", "ig-project", extra="lifecycle: {ignore_changes: [guidelines, outputs.label.labels]}\n")
    apply_path(tree, conn, cache)
    pj = get(server, "project", "ig-project")
    outputs = [{k: v for k, v in o.items() if k != "id"} for o in pj["outputs"]]
    outputs[0]["labels"].append({"name": "mixed", "description": None})
    r = server.call("PATCH", f"/projects/{pj['id']}", json={"guidelines": "Rewritten by the team lead in the UI.", "outputs": outputs})
    assert r.status_code == 200, r.text
    assert not plan_of(tree, conn, cache).plan.has_changes
    # Not ignored: a description edit shows.
    server.call("PATCH", f"/projects/{pj['id']}", json={"description": "UI"})
    plan = plan_of(tree, conn, cache).plan
    assert [(c.address, [a.dotted for a in c.changes]) for c in plan.changes if c.has_changes] == [
        ("project/ig-project", ["description"])]


def test_target_plans_and_applies_a_subset(fresh_server, tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, "tg-tickets", "tg-project", extra="---\nkind: Dataset\nname: tg-other\nfields: {t: text}\n")
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    plan = run_hlops("plan", str(tree), "--target", "project/tg-project", "--json", server=fresh_server, cwd=tmp_path, env=env)
    assert plan.code == 2, plan
    doc = json.loads(plan.out)
    assert [c["kind"] + "/" + c["name"] for c in doc["changes"]] == ["dataset/tg-tickets", "project/tg-project"]
    assert doc["targets"] == ["project/tg-project"]
    applied = run_hlops("apply", str(tree), "--target", "dataset/tg-other", "--auto-approve", server=fresh_server, cwd=tmp_path, env=env)
    assert applied.code == 0, applied
    assert get(fresh_server, "dataset", "tg-other") and not get(fresh_server, "dataset", "tg-tickets")
    bad = run_hlops("plan", str(tree), "--target", "project/nope", server=fresh_server, cwd=tmp_path, env=env)
    assert bad.code == 1 and "matches no resource" in bad.err


OWNERSHIP = "owns:\n  prefixes: [team-a-]\n  names: [shared-exact]\n"


def test_prune_deletes_only_owned_undeclared_resources(server, connect, tmp_path):
    conn = connect(server)
    c = conn.client
    for name in ("team-a-old", "team-a-older", "shared-exact", "team-b-x", "team-ab-x", "shared-exact-2", "Team-A-case"):
        c.request("POST", "/datasets", body={"name": name, "fields": [{"name": "t", "data_type": "text"}]}, create=True)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hlops.yaml").write_text(OWNERSHIP)
    (tree / "a.yaml").write_text("kind: Dataset\nname: team-a-kept\nfields: {t: text}\n")
    cache = tmp_path / "cache"

    listed = plan_of(tree, conn, cache).plan
    owned = ["dataset/shared-exact", "dataset/team-a-old", "dataset/team-a-older"]
    assert set(owned) <= set(listed.unmanaged) and "dataset/team-b-x" in listed.unmanaged
    assert any("3 remote resources owned by this repository" in n for n in listed.notes)
    assert all(a in listed.notes[0] for a in owned)

    pruned = plan_of(tree, conn, cache, prune=True).plan
    deletes = sorted(ch.address for ch in pruned.changes if ch.action.value == "delete")
    assert deletes == owned
    for name in ("team-b-x", "team-ab-x", "shared-exact-2", "Team-A-case"):
        assert f"dataset/{name}" in pruned.unmanaged
    md = markdown.render(pruned)
    section = md[md.index("#### 🗑️ Pruned"):]
    assert all(a in section for a in owned) and "team-b-x</code>" not in section
    assert "`--prune` deletes 3 resources" in md
    out = text.render(pruned)
    assert out.index("Pruned (--prune)") < out.index("# dataset/team-a-old will be destroyed")

    apply_path(tree, conn, cache, prune=True)
    remaining = {d["name"] for d in c.paginate("/datasets")}
    assert {"team-b-x", "team-ab-x", "shared-exact-2", "Team-A-case", "team-a-kept"} <= remaining
    assert not {"team-a-old", "team-a-older", "shared-exact"} & remaining


def test_prune_refuses_to_cascade_into_an_unowned_project(server, connect, tmp_path):
    conn = connect(server)
    c = conn.client
    ds = c.request("POST", "/datasets", body={"name": "team-a-read", "fields": [{"name": "t", "data_type": "text"}]}, create=True)
    c.request("POST", "/projects", body={
        "name": "team-c-reader", "inputs": [{"name": "t", "data_type": "text", "data_sources": [{"field_id": ds["fields"][0]["id"]}]}],
        "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "x"}]}]}, create=True)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hlops.yaml").write_text(OWNERSHIP)
    (tree / "a.yaml").write_text("kind: Dataset\nname: team-a-other-kept\nfields: {t: text}\n")
    with pytest.raises(PlanError, match="team-c-reader"):
        plan_of(tree, conn, tmp_path / "cache", prune=True)
    assert get(server, "dataset", "team-a-read") and get(server, "project", "team-c-reader")


def test_prune_without_ownership_deletes_nothing(server, connect, tmp_path):
    conn = connect(server)
    conn.client.request("POST", "/datasets", body={"name": "nobody-owns-me", "fields": [{"name": "t", "data_type": "text"}]}, create=True)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.yaml").write_text("kind: Dataset\nname: unowned-tree-ds\nfields: {t: text}\n")
    plan = plan_of(tree, conn, tmp_path / "cache", prune=True).plan
    assert not [c for c in plan.changes if c.action.value == "delete"]
    assert any("--prune deletes nothing" in n for n in plan.notes)


def test_drift_is_read_only_and_exits_2_on_drift(fresh_server, tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, "team-a-drift", "team-a-drift-project")
    (tree / "hlops.yaml").write_text(OWNERSHIP)
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    assert run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, cwd=tmp_path, env=env).code == 0
    clean = run_hlops("drift", str(tree), server=fresh_server, cwd=tmp_path, env=env)
    assert clean.code == 0 and "No drift" in clean.out, clean
    pj = get(fresh_server, "project", "team-a-drift-project")
    fresh_server.call("PATCH", f"/projects/{pj['id']}", json={"guidelines": "Changed in the UI.\nTwo lines.\n"})
    fresh_server.call("POST", "/datasets", json={"name": "team-a-stray", "fields": [{"name": "t", "data_type": "text"}]})
    fresh_server.call("POST", "/datasets", json={"name": "someone-elses", "fields": [{"name": "t", "data_type": "text"}]})
    writes = fresh_server.stats()["writes"]
    drift = run_hlops("drift", str(tree), server=fresh_server, cwd=tmp_path, env=env)
    assert drift.code == 2, drift
    assert "~ project/team-a-drift-project" in drift.out and "+Changed in the UI." in drift.out
    assert "? dataset/team-a-stray: owned by this repository" in drift.out
    assert "Not owned and not declared (not drift): dataset/someone-elses" in drift.out
    as_json = json.loads(run_hlops("drift", str(tree), "--json", server=fresh_server, cwd=tmp_path, env=env).out)
    assert as_json["drift"] is True
    assert {r["address"]: r["status"] for r in as_json["resources"]} == {
        "project/team-a-drift-project": "changed", "dataset/team-a-stray": "undeclared"}
    md = run_hlops("drift", str(tree), "--markdown", server=fresh_server, cwd=tmp_path, env=env)
    assert md.code == 2 and md.out.startswith("<!-- hlops-drift -->")
    assert fresh_server.stats()["writes"] == writes, "drift wrote to the API"
