"""R8 -- durability: the server SIGKILLed while an apply streams datapoints into it loses no
acknowledged row, and applying again completes the rest without a duplicate.

The apply (a real ``python -m hlops`` subprocess) uploads a 25,000-row keyed dataset and a
20,000-row keyless one (whose rows are identified by their hash: a batch written twice would
show as duplicates). The loopback proxy between them keeps the bodies of the upload batches
and knows which were *acknowledged* -- a 2xx relayed to the client. Once a few batches are
acknowledged, and others are in flight, the server gets SIGKILL. Then:

- ``apply killed too``: the apply is killed as well; the server restarts on the same
  database; every row of every acknowledged batch must be there, nothing twice, the
  database passes ``PRAGMA integrity_check``; the next apply converges (plan clean, every
  row's key and hash).
- ``server restarted under the apply``: the server comes back on the same port within a
  second or so; the apply, still retrying, must finish the job by itself or fail cleanly,
  and in either case the acknowledged rows are there and the next apply converges.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter

import pytest
from killing_proxy import KillingProxy
from rel_support import FULL, Org, expected_state, org_server, run_inprocess, spawn, state_problems, write_bulk

from hlops import canonical

KEYLESS_ROWS = 20_000
SCENARIOS = [("apply killed too", 1), ("server restarted under the apply", 4)]
if FULL:
    SCENARIOS += [("apply killed too", 4), ("apply killed too", 2), ("server restarted under the apply", 1),
                  ("server restarted under the apply", 2)]


def write_keyless(directory, rows: int = KEYLESS_ROWS):
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "events.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"event": f"event {i} happened", "kind": ("a", "b", "c")[i % 3]}) + "\n")
    (directory / "events.yaml").write_text("kind: Dataset\nname: r8-events\nfields:\n  event: text\n  kind: categorical\n"
                                           "data: events.jsonl\n")
    return directory


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("r8-tree")
    paths = [write_bulk(base / "bulk", name="r8-bulk"), write_keyless(base / "events")]
    return base, paths, expected_state(paths)


def acked_rows(proxy: KillingProxy) -> tuple[Counter, int]:
    """(key, hash) of every row of every acknowledged upload batch, and the batch count."""
    rows: Counter = Counter()
    batches = 0
    for x in proxy.calls():
        if x.method == "PUT" and x.relayed and 200 <= x.status < 300:
            batches += 1
            body = json.loads(x.body)
            ds = json.loads(x.response)
            key = ds.get("key")
            fields = {f["name"]: f["data_type"] for f in ds["fields"]}
            for row in body["data"]:
                norm = canonical.normalise_row(row, fields)
                h = canonical.row_hash(norm)
                rows[(ds["name"], canonical.key_text(norm, key, h), h)] += 1
    return rows, batches


def remote_rows(org: Org) -> Counter:
    rows: Counter = Counter()
    for ds in org.all("/datasets"):
        for r in org.all(f"/datasets/{ds['id']}/digest", limit=10_000):
            rows[(ds["name"], r["key"], r["hash"])] += 1
    return rows


@pytest.mark.parametrize("scenario, parallelism", SCENARIOS)
def test_server_killed_during_ingest_loses_no_acknowledged_row(tmp_path, tree, record, scenario, parallelism):
    base, paths, expected = tree
    srv = org_server(tmp_path / "server", orgs=2)
    proxy = KillingProxy(srv.url, keep_bodies=True)
    org = Org(srv.url, srv.api_key)
    home = tmp_path / ".hlops"
    try:
        kill_after = 2 if parallelism > 1 else 1
        killed = threading.Event()

        def on_answer(ex):
            if ex.method == "PUT" and 200 <= ex.status < 300 and not killed.is_set():
                if sum(1 for x in proxy.calls() if x.method == "PUT" and x.relayed and x.status < 300) >= kill_after:
                    inflight = [x for x in proxy.calls(answered_only=False) if x.method == "PUT" and not x.n]
                    if parallelism == 1 or inflight:
                        killed.set()
                        srv.kill()  # SIGKILL

        def kill_mid_batch(ex):
            # with one batch at a time, kill while the next batch is being written
            if parallelism == 1 and ex.method == "PUT" and sum(1 for x in proxy.calls() if x.method == "PUT") >= kill_after \
                    and not killed.is_set():
                killed.set()
                threading.Timer(0.15, srv.kill).start()

        proxy.on_answer = on_answer if parallelism > 1 else None
        proxy.before_forward = kill_mid_batch
        args = ["apply", *map(str, paths), "--auto-approve", "--parallelism", str(parallelism)]
        proc = spawn(args, proxy.url, org.key, home, base, tmp_path / "apply.log")
        deadline = time.monotonic() + 120
        while not killed.is_set() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert killed.is_set(), f"the server was never killed:\n{(tmp_path / 'apply.log').read_text()[-2000:]}"
        time.sleep(0.3)
        while srv.running:
            time.sleep(0.05)
        proxy.on_answer = proxy.before_forward = None
        if scenario == "apply killed too":
            proc.kill()
            proc.wait(30)
            srv.start(srv.port)
            proxy.upstream = srv.url
            apply_code = None
        else:
            time.sleep(0.5)
            srv.start(srv.port)  # same port: the apply's retries find it
            proxy.upstream = srv.url
            apply_code = proc.wait(180)
        acked, batches = acked_rows(proxy)
        after_restart = remote_rows(org)
        lost = acked - after_restart
        dup = sum(c - 1 for c in after_restart.values() if c > 1)
        con = sqlite3.connect(srv.db_path)
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
        again = run_inprocess(["apply", *map(str, paths), "--auto-approve"], srv.url, org.key, home, base)
        plan = run_inprocess(["plan", *map(str, paths)], srv.url, org.key, home, base)
        problems = []
        if lost:
            problems.append(f"{sum(lost.values())} acknowledged rows lost")
        if dup:
            problems.append(f"{dup} duplicated rows after the restart")
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        if apply_code not in (None, 0, 1):
            problems.append(f"the apply under the restart exited {apply_code}")
        if again.code != 0:
            problems.append(f"the next apply failed: {again}")
        if plan.code != 0:
            problems.append(f"plan after it exits {plan.code}")
        problems += state_problems(org, expected)
        record("R8", cases=1, passed=int(not problems), scenario=scenario, parallelism=parallelism,
               acked_batches=batches, acked_rows=sum(acked.values()), rows_after_restart=sum(after_restart.values()),
               apply_exit=apply_code)
        assert not problems, "\n".join(problems) + f"\n{(tmp_path / 'apply.log').read_text()[-2000:]}"
        assert batches >= kill_after and sum(acked.values()) >= kill_after * 1000
    finally:
        proxy.close()
        srv.close()
