"""A broken row near the end of a big data file (issue 14: "what does an apply do when row
900,000 is broken?").

- A plan shown for approval, a saved plan, and any dataset that already holds rows: hlops
  checks first and streams second. Every row is checked before the first datapoint call,
  so the apply stops with the located error (file:line), no traceback, and writes nothing
  (not even the dataset); after the fix a rerun applies every row.
- ``hlops apply --auto-approve`` of a new (or remote-empty) dataset with a big data file
  streams: the rows are checked as they are sent, each 10k-row batch only when every row
  read so far was good. A broken row at line 24,990 of 25,000 stops it cleanly: the two
  batches before it were written (20,000 rows), nothing at or after it, the same located
  error, exit 1, no last-applied record; the rerun after the fix sends only the 5,000
  rows still missing. (HLOPS_STREAM_MIN_BYTES=0 streams this small file as it would a
  big one.)"""

from __future__ import annotations

import json

import pytest

from support.cli import run_hlops

ROWS = 25_000  # three 10k-row PUTs
BROKEN = ROWS - 10  # the line of the broken row, near the end
STREAM = {"HLOPS_STREAM_MIN_BYTES": "0"}


def _write(tree, rows: int, broken: int | None, how: str = "syntax") -> None:
    (tree / "data").mkdir(parents=True, exist_ok=True)
    with open(tree / "data" / "rows.jsonl", "w") as f:
        for i in range(1, rows + 1):
            if i == broken and how == "syntax":
                f.write('{"id": "r%d", "text": "row %d"\n' % (i, i))  # the closing brace lost
            elif i == broken:  # the key of line 5 again
                f.write(json.dumps({"id": "r5", "text": f"row {i}"}) + "\n")
            else:
                f.write(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n")
    (tree / "dataset.yaml").write_text(
        "kind: Dataset\nname: late\nkey: id\nfields: {id: text, text: text}\ndata: data/rows.jsonl\n"
    )


def _dataset(server) -> dict | None:
    items = server.call("GET", "/datasets", params={"name": "late"}).json()["items"]
    return items[0] if items else None


def _count(server) -> int | None:
    ds = _dataset(server)
    return ds["datapoint_count"] if ds else None


def _puts(server) -> int:
    return sum(n for path, n in server.stats()["by_path"].items() if path.startswith("PUT "))


@pytest.mark.parametrize("existing", [0, 5_000], ids=["new-dataset", "existing-dataset"])
def test_a_broken_row_near_the_end_writes_nothing_and_a_rerun_finishes(fresh_server, tmp_path, existing):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    if existing:
        _write(tree, existing, None)
        first = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
        assert first.code == 0, first.err
        assert _count(fresh_server) == existing
        env.update(STREAM)  # a dataset with rows is checked first, streaming or not
    _write(tree, ROWS, BROKEN)
    fresh_server.reset_stats()
    bad = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert bad.code != 0
    assert f"rows.jsonl:{BROKEN}" in bad.err, bad.err
    assert "Traceback" not in bad.err + bad.out
    assert fresh_server.stats()["writes"] == 0  # no dataset created, no row sent
    assert _count(fresh_server) == (existing or None)

    _write(tree, ROWS, None)
    good = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert good.code == 0, good.err
    assert _count(fresh_server) == ROWS
    again = run_hlops("plan", str(tree), server=fresh_server, env=env)
    assert again.code == 0, again.out + again.err  # nothing left to do


@pytest.mark.parametrize("how", ["syntax", "duplicate-key"])
def test_a_streamed_apply_stops_cleanly_at_a_late_problem_and_a_rerun_sends_the_rest(fresh_server, tmp_path, how):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops"), **STREAM}
    _write(tree, ROWS, BROKEN, how)
    fresh_server.reset_stats()
    bad = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert bad.code == 1, bad.out + bad.err
    assert f"rows.jsonl:{BROKEN}:" in bad.err, bad.err
    if how == "duplicate-key":
        assert "duplicate key: line 5 has the same 'id'" in bad.err, bad.err
    assert "20,000 rows before the first problem were written" in bad.err, bad.err
    assert "Traceback" not in bad.err + bad.out
    stats = fresh_server.stats()
    assert _puts(fresh_server) == 2  # the batch holding the broken row was never sent
    assert stats["by_path"].get("POST /datasets") == 1
    assert stats["writes"] == 3  # the dataset and two batches: no last-applied record
    ds = _dataset(fresh_server)
    assert ds["datapoint_count"] == 20_000 and not ds.get("last_applied")

    _write(tree, ROWS, None)
    fresh_server.reset_stats()
    good = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert good.code == 0, good.err
    assert _count(fresh_server) == ROWS
    assert _puts(fresh_server) == 1  # the 5,000 rows still missing, in one batch
    again = run_hlops("plan", str(tree), "--json", server=fresh_server, env=env)
    assert again.code == 0, again.out + again.err
    data = json.loads(again.out)["changes"][0]["data"]
    assert data["add"] == 0 and data["decided_by"] == "last_applied"


@pytest.mark.parametrize("rows, broken", [(ROWS, 10), (1, 1)], ids=["line-10", "the-only-row"])
def test_a_problem_in_the_first_batch_sends_no_row(fresh_server, tmp_path, rows, broken):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops"), **STREAM}
    _write(tree, rows, broken)
    fresh_server.reset_stats()
    bad = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert bad.code == 1 and f"rows.jsonl:{broken}:" in bad.err, bad.err
    assert "none was written" in bad.err, bad.err
    assert _puts(fresh_server) == 0 and _count(fresh_server) == 0
