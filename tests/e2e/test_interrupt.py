"""Ctrl-C during an apply (issue 5: an apply you can kill): the first SIGINT finishes the
calls in flight, sends no new one, exits 130 with a message saying so; the remote holds
whole batches only, and the next apply sends exactly what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support.cli import REPO, run_hlops

ROWS = 150_000  # 15 PUT batches of 10,000: several seconds of upload to interrupt
BATCH = 10_000


def _dataset(tmp_path):
    tree = tmp_path / "big"
    (tree / "data").mkdir(parents=True)
    with open(tree / "data" / "rows.jsonl", "w") as f:
        for i in range(ROWS):
            f.write(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n")
    (tree / "dataset.yaml").write_text(
        "kind: Dataset\nname: interrupted\nkey: id\nfields: {id: text, text: text}\ndata: data/rows.jsonl\n"
    )
    return tree


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _count(server) -> int:
    items = server.call("GET", "/datasets", params={"name": "interrupted"}).json()["items"]
    return items[0]["datapoint_count"] if items else 0


@pytest.mark.parametrize("streamed", [False, True], ids=["checked-first", "streamed"])
def test_first_ctrl_c_finishes_calls_in_flight_and_sends_no_new_one(fresh_server, tmp_path, streamed):
    tree = _dataset(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    env.update(NO_COLOR="1", HLOPS_BASE_URL=fresh_server.url, HLOPS_API_KEY=fresh_server.api_key,
               HLOPS_HOME=str(tmp_path / ".hlops"))
    if streamed:  # the rows checked and sent in one pass, as a file of 8 MB or more would be
        env["HLOPS_STREAM_MIN_BYTES"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hlops", "apply", str(tree), "--auto-approve", "--parallelism", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # and Ctrl-C's default action, as in a terminal: a test run started in the background
        # (`pytest &`, some CI runners) inherits SIGINT ignored, and so would the child
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while fresh_server.stats()["writes"] < 3:  # the create and two batches are in
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Interrupt received" in err and "no new one was sent" in err and "Traceback" not in err
    written = _count(fresh_server)
    writes = fresh_server.stats()["writes"]
    assert 0 < written < ROWS and written % BATCH == 0, written  # whole batches, and it stopped
    time.sleep(1)
    assert fresh_server.stats()["writes"] == writes, "a call was sent after the process exited"

    again = run_hlops("apply", str(tree), "--auto-approve", server=fresh_server, cwd=tmp_path)
    assert again.code == 0, again
    assert f"{ROWS - written:,} to add" in again.out
    assert _count(fresh_server) == ROWS
    assert run_hlops("plan", str(tree), server=fresh_server, cwd=tmp_path).code == 0
