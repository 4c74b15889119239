"""A broken row near the end of a big data file (issue 14: "what does an apply do when row
900,000 is broken?"). hlops checks first and streams second: every row is checked before
the first datapoint call, so the apply stops with the located error (file:line), no
traceback, and writes nothing (not even the dataset); after the fix a rerun applies every
row. The same holds for a dataset that already exists and gains rows."""

from __future__ import annotations

import json

import pytest

from support.cli import run_hlops

ROWS = 25_000  # three 10k-row PUTs
BROKEN = ROWS - 10  # the line of the broken row, near the end


def _write(tree, rows: int, broken: int | None) -> None:
    (tree / "data").mkdir(parents=True, exist_ok=True)
    with open(tree / "data" / "rows.jsonl", "w") as f:
        for i in range(1, rows + 1):
            if i == broken:
                f.write('{"id": "r%d", "text": "row %d"\n' % (i, i))  # the closing brace lost
            else:
                f.write(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n")
    (tree / "dataset.yaml").write_text(
        "kind: Dataset\nname: late\nkey: id\nfields: {id: text, text: text}\ndata: data/rows.jsonl\n"
    )


def _count(server) -> int | None:
    items = server.call("GET", "/datasets", params={"name": "late"}).json()["items"]
    return items[0]["datapoint_count"] if items else None


@pytest.mark.parametrize("existing", [0, 5_000], ids=["new-dataset", "existing-dataset"])
def test_a_broken_row_near_the_end_writes_nothing_and_a_rerun_finishes(fresh_server, tmp_path, existing):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    if existing:
        _write(tree, existing, None)
        first = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
        assert first.code == 0, first.err
        assert _count(fresh_server) == existing
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
