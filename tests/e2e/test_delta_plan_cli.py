"""The delta plan through the CLI (issue 14): ``hlops apply --auto-approve`` of a new dataset
stores the file's index beside its record; ``hlops plan`` of the edited file (a fresh
HLOPS_HOME: no cache) compares only the rows that changed (``decided_by: index``), says
where a broken edit is, and ``hlops apply`` of it leaves a record the next plan trusts.
HLOPS_STREAM_MIN_BYTES=0 and HLOPS_DELTA_MIN_BYTES=0 treat these small files as big ones."""

from __future__ import annotations

import json

from support.cli import run_hlops
from support.datatree import write_dataset

ROWS = 20_000
ENV = {"HLOPS_STREAM_MIN_BYTES": "0", "HLOPS_DELTA_MIN_BYTES": "0"}


def _write(tree, rows: list[dict]) -> None:
    write_dataset(tree, "delta", rows, "prune_data: true\n")


def _plan(server, tree, tmp_path, n: int):
    env = {**ENV, "HLOPS_HOME": str(tmp_path / f"home-{n}")}
    return run_hlops("plan", str(tree), "--json", server=server, env=env)


def test_an_edited_file_is_planned_as_a_delta_and_applied(fresh_server, tmp_path):
    tree = tmp_path / "tree"
    rows = [{"id": f"r{i}", "text": f"row {i}", "label": ["pos", "neg"][i % 2]} for i in range(ROWS)]
    _write(tree, rows)
    first = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server,
                      env={**ENV, "HLOPS_HOME": str(tmp_path / "home-0")})
    assert first.code == 0, first.err
    ds = fresh_server.call("GET", "/datasets", params={"name": "delta"}).json()["items"][0]
    assert ds["last_applied"]["index"] > 0

    edited = [dict(r, text=r["text"] + " (edited)") if i % 100 == 0 else r for i, r in enumerate(rows)]
    edited = [r for i, r in enumerate(edited) if i % 1000 != 7] + [{"id": "new", "text": "n", "label": "pos"}]
    _write(tree, edited)
    fresh_server.reset_stats()
    plan = _plan(fresh_server, tree, tmp_path, 1)
    assert plan.code == 2, plan.err  # changes
    data = json.loads(plan.out)["changes"][0]["data"]
    assert data["decided_by"] == "index"
    assert (data["add"], data["change"], data["remove"]) == (1, ROWS // 100, ROWS // 1000)
    calls = fresh_server.stats()["by_path"]
    assert calls["GET /datasets/{dataset_id}/last_applied/index"] == 2
    assert "POST /datasets/{dataset_id}/digest/rows" in calls  # the removed rows' buckets
    assert fresh_server.stats()["writes"] == 0

    broken = list(edited)
    broken[500] = {"id": "r500", "text": "x", "label": ["not", "a", "label"]}
    _write(tree, broken)
    bad = _plan(fresh_server, tree, tmp_path, 2)
    assert bad.code == 1 and "Traceback" not in bad.err
    assert "rows.jsonl:501:" in bad.err and "label" in bad.err, bad.err  # the 501st line, where the label is

    _write(tree, edited)
    run = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server,
                    env={**ENV, "HLOPS_HOME": str(tmp_path / "home-3")})
    assert run.code == 0, run.err
    record = fresh_server.call("GET", f"/datasets/{ds['id']}").json()["last_applied"]
    assert record["index"] > 0 and record["rows"] == len(edited)
    again = _plan(fresh_server, tree, tmp_path, 4)
    assert again.code == 0, again.err
    assert json.loads(again.out)["changes"][0]["data"]["decided_by"] == "last_applied"
