"""A streamed first apply (issue 14): ``hlops apply --auto-approve`` of a dataset with no rows
yet checks, hashes and sends the data file's rows in one pass, instead of a plan's pass and
then a second read for the upload. Real server, real files, calls counted.
HLOPS_STREAM_MIN_BYTES=0 streams these small files as a big one (>= 8 MB) would be."""

from __future__ import annotations

import json

from support.cli import run_hlops
from support.datatree import write_dataset

ROWS = 30_000  # three 10k-row PUTs
STREAM = {"HLOPS_STREAM_MIN_BYTES": "0"}


def _write(tree, rows: int) -> list[dict]:
    written = [{"id": f"r{i}", "text": f"row {i}", "label": ["pos", "neg"][i % 2]} for i in range(1, rows + 1)]
    write_dataset(tree, "streamed", written)
    return written


def _dataset(server) -> dict:
    return server.call("GET", "/datasets", params={"name": "streamed"}).json()["items"][0]


def _remote_rows(server, dataset_id: int) -> list[dict]:
    rows, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = server.call("GET", f"/datasets/{dataset_id}/datapoints", params=params).json()
        rows += [item["data"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


def _by_path(server) -> dict[str, int]:
    return server.stats()["by_path"]


def _check_landed(server, tree, env, written) -> None:
    ds = _dataset(server)
    assert ds["datapoint_count"] == ROWS
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(_remote_rows(server, ds["id"]), key=key) == sorted(written, key=key)
    assert ds.get("last_applied"), "the streamed pass notes the last-applied record"
    server.reset_stats()
    again = run_hlops("plan", str(tree), "--json", server=server, env={**env, "HLOPS_HOME": str(tree / "clone")})
    assert again.code == 0, again.err
    data = json.loads(again.out)["changes"][0]["data"]
    assert (data["add"], data["change"], data["decided_by"]) == (0, 0, "last_applied")
    assert server.stats()["writes"] == 0


def test_a_new_dataset_is_streamed_in_one_pass(fresh_server, tmp_path):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops"), **STREAM}
    written = _write(tree, ROWS)
    fresh_server.reset_stats()
    run = run_hlops("apply", str(tree), "--auto-approve", "--json", server=fresh_server, env=env)
    assert run.code == 0, run.err
    body = json.loads(run.out)
    data = body["plan"]["changes"][0]["data"]
    assert data["decided_by"] == "stream" and data["add"] == 0  # counted by the apply, not the plan
    assert body["report"]["results"][0]["rows"] == ROWS
    calls = _by_path(fresh_server)
    assert calls.get("POST /datasets") == 1
    assert calls.get("PUT /datasets/{dataset_id}") == 3
    assert calls.get("PATCH /datasets/{dataset_id}") == 1  # the record
    # one digest read, the empty one before the first PUT: the record is proven by the PUT
    # answers (versions v0+1..v0+3, counts 10k, 20k, 30k), not by a second read after them
    assert calls.get("GET /datasets/{dataset_id}/digest") == 1
    assert fresh_server.stats()["writes"] == 5
    _check_landed(fresh_server, tree, env, written)


def test_a_remote_empty_dataset_is_streamed(fresh_server, tmp_path):
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops"), **STREAM}
    _write(tree, 0)
    first = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert first.code == 0, first.err
    assert _dataset(fresh_server)["datapoint_count"] == 0
    written = _write(tree, ROWS)
    fresh_server.reset_stats()
    run = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, env=env)
    assert run.code == 0, run.err
    assert "checked, counted and sent in one pass" in run.out, run.out
    calls = _by_path(fresh_server)
    assert calls.get("PUT /datasets/{dataset_id}") == 3 and "POST /datasets" not in calls
    assert calls.get("GET /datasets/{dataset_id}/digest") == 1  # the empty read only
    assert fresh_server.stats()["writes"] == 4  # three batches and the record
    _check_landed(fresh_server, tree, env, written)


def test_plans_shown_or_saved_count_first(fresh_server, tmp_path):
    """Without --auto-approve the plan shows counts before it asks; a saved plan holds
    counts and a fingerprint (apply refuses a file that changed since): neither streams."""
    tree = tmp_path / "tree"
    env = {"HLOPS_HOME": str(tmp_path / ".hlops"), **STREAM}
    _write(tree, 1_000)
    asked = run_hlops("apply", str(tree), server=fresh_server, env=env)  # stdin is no terminal
    assert asked.code == 1 and "+1,000 to add" in asked.out, asked.out + asked.err
    saved = tmp_path / "plan.json"
    made = run_hlops("plan", str(tree), "-o", str(saved), server=fresh_server, env=env)
    assert made.code == 2, made.err  # 2: the plan has changes
    data = json.loads(saved.read_text())["changes"][0]["data"]
    assert data["add"] == 1_000 and data["decided_by"] == "new" and data["fingerprint"]
    run = run_hlops("apply", str(saved), server=fresh_server, env=env)
    assert run.code == 0, run.err
    assert _dataset(fresh_server)["datapoint_count"] == 1_000


def test_a_halt_the_full_check_does_not_confirm_falls_back_to_the_digest_diff(fresh_server, tmp_path, monkeypatch):
    """Two distinct keys whose 64-bit points collide (about once in 10^8 files of a million
    rows) halt the stream like a repeated key, but the full check finds no problem: the apply
    then goes on the usual way, a digest diff that sends the rest. Forced here by a halt at
    the second batch (in process, through hlops.api)."""
    from hlops import api
    from hlops.data import stream

    real, calls = stream.StreamedPass.commit, []

    def commit(self):
        calls.append(1)
        if len(calls) == 2:
            raise stream.Halt()
        real(self)

    monkeypatch.setattr(stream.StreamedPass, "commit", commit)
    monkeypatch.setenv("HLOPS_STREAM_MIN_BYTES", "0")
    monkeypatch.setenv("HLOPS_HOME", str(tmp_path / ".hlops"))
    tree = tmp_path / "tree"
    written = _write(tree, ROWS)
    monkeypatch.chdir(tmp_path)
    with api.connect(base_url=fresh_server.url, api_key=fresh_server.api_key) as conn:
        result = api.plan(api.load(tree, check_data=False), conn, stream_data=True)
        assert result.plan.changes[0].data.streamed
        fresh_server.reset_stats()
        report = api.apply(result, conn)
    assert report.ok and report.results[0].rows == ROWS  # 10,000 streamed, the rest after the diff
    assert sum(n for p, n in _by_path(fresh_server).items() if p.startswith("PUT ")) == 3
    ds = _dataset(fresh_server)
    assert ds["datapoint_count"] == ROWS
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(_remote_rows(fresh_server, ds["id"]), key=key) == sorted(written, key=key)


def _apply_with(server, tmp_path, monkeypatch, on_progress) -> dict[str, int]:
    """A streamed apply of ROWS rows in process (hlops.api), ``on_progress(event)`` called
    with each of the upload's progress events; the calls it made, by path and status."""
    from hlops import api

    monkeypatch.setenv("HLOPS_STREAM_MIN_BYTES", "0")
    monkeypatch.setenv("HLOPS_HOME", str(tmp_path / ".hlops"))
    tree = tmp_path / "tree"
    _write(tree, ROWS)
    monkeypatch.chdir(tmp_path)

    def on_event(event):
        if event.get("type") == "progress":
            on_progress(event["event"])

    with api.connect(base_url=server.url, api_key=server.api_key) as conn:
        result = api.plan(api.load(tree, check_data=False), conn, stream_data=True)
        assert result.plan.changes[0].data.streamed
        server.reset_stats()
        report = api.apply(result, conn, parallelism=1, on_event=on_event)
    assert report.ok and report.results[0].rows == ROWS
    stats = server.stats()
    return {**stats["by_path"], **{f"status {k}": n for k, n in stats["by_status"].items()}}


def _foreign_row(server) -> None:
    """Another client writes one row the file does not have."""
    ds = _dataset(server)
    answer = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [{"id": "other", "text": "x", "label": "pos"}]})
    assert answer.status_code == 200, answer.text


def _next_plan_shows_the_extra_row(server, tmp_path) -> None:
    tree = tmp_path / "tree"
    again = run_hlops("plan", str(tree), "--json", server=server,
                      env={"HLOPS_HOME": str(tmp_path / "clone"), **STREAM})
    assert again.code == 0, again.err
    data = json.loads(again.out)["changes"][0]["data"]
    assert data["decided_by"] == "digest"  # no record to trust: the rows are compared
    assert (data["add"], data["change"], data["unmatched_remote"]) == (0, 0, 1)


def test_a_write_by_another_client_between_the_puts_leaves_no_record(fresh_server, tmp_path, monkeypatch):
    """The PUT answers then skip a version (the other client's write took it): nothing is
    proven, the digest is read after the PUTs as before, it differs (one row more), and no
    record is written: the next plan compares and shows the row."""
    written = []

    def sneak_in(event):
        if event.phase == "upload" and event.rows_done >= 10_000 and not written:
            _foreign_row(fresh_server)
            written.append(1)

    calls = _apply_with(fresh_server, tmp_path, monkeypatch, sneak_in)
    assert written
    assert calls.get("GET /datasets/{dataset_id}/digest") == 2  # the fallback read
    assert "PATCH /datasets/{dataset_id}" not in calls  # refused before the PATCH
    ds = _dataset(fresh_server)
    assert ds["datapoint_count"] == ROWS + 1 and ds["last_applied"] is None
    _next_plan_shows_the_extra_row(fresh_server, tmp_path)


def test_a_write_by_another_client_after_the_last_put_fails_the_records_if_match(fresh_server, tmp_path, monkeypatch):
    """The PUT answers prove the remote's rows up to the last PUT; a write after it (here when
    the upload is done, before the record) makes the record's If-Match on v0+k fail: 412,
    no record."""
    written = []

    def sneak_in(event):
        if event.phase == "done" and not written:
            _foreign_row(fresh_server)
            written.append(1)

    calls = _apply_with(fresh_server, tmp_path, monkeypatch, sneak_in)
    assert written
    assert calls.get("GET /datasets/{dataset_id}/digest") == 1  # proven: no read after the PUTs
    assert calls.get("PATCH /datasets/{dataset_id}") == 1 and calls.get("status 412") == 1
    ds = _dataset(fresh_server)
    assert ds["datapoint_count"] == ROWS + 1 and ds["last_applied"] is None
    _next_plan_shows_the_extra_row(fresh_server, tmp_path)


def test_a_retried_put_is_accounted_for_by_its_replayed_answer(fresh_server, tmp_path, monkeypatch):
    """The second PUT is done and committed but its answer lost (a 503 after the work): the
    client sends it again with the same Idempotency-Key and the server replays the first
    answer (its version and count), so the answers still add up and no digest is read."""
    # counted from the apply's start: 1 POST /datasets, 2 the empty digest, 3 the first PUT
    fresh_server.set_faults(fail_nth=[4], phase="after", statuses=[503])
    try:
        calls = _apply_with(fresh_server, tmp_path, monkeypatch, lambda event: None)
    finally:
        fresh_server.set_faults(fail_nth=[], rate=0)
    assert calls.get("PUT /datasets/{dataset_id}") == 4 and calls.get("status 503") == 1
    assert calls.get("GET /datasets/{dataset_id}/digest") == 1
    ds = _dataset(fresh_server)
    assert ds["datapoint_count"] == ROWS and ds["last_applied"]["rows"] == ROWS
