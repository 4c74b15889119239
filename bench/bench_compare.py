"""The changed-data comparison alone, old way beside new, in one process (issue 14, part b).

A reference server with N rows, every 100th row's text edited in a JSONL file; the local
summary is made once and reused, then ``derive()`` runs alternately

- ``old``: no many-bucket call (the per-bucket GET measured, the model's choice between
  those and the listing, as before) and the full second local pass;
- ``new``: ``POST /datasets/{id}/digest/rows`` and the second pass over the wanted rows only,

printing wall seconds, client and server CPU seconds, remote rows read and calls::

    HLOPS_WORKERS=1 .venv/bin/python bench/bench_compare.py --rows 200000 --pairs 4

Not the whole CLI (``bench_wire.py --only plan`` is): it isolates what part b changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "data")]

from dp_helpers import FIELDS, make_rows, write_jsonl  # noqa: E402
from support.server import ServerProcess  # noqa: E402

from hlops.data.summary import load_summary  # noqa: E402
from hlops.datafile import CheckedFile  # noqa: E402
from hlops.providers.humanloop.client import Client  # noqa: E402

D = importlib.import_module("hlops.providers.humanloop.data.derive")
KEY = "external_id"


def server_cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--pairs", type=int, default=4)
    args = ap.parse_args()
    old_way = {"on": False}
    measure = D._measure

    def measured(client, dataset_id, key, fine, parallelism):
        costs = measure(client, dataset_id, key, fine, parallelism)
        if not old_way["on"]:
            return costs
        started = time.perf_counter()  # as before: the per-bucket GET is what was timed
        client.request("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 65536, "bucket": fine, "limit": 1000})
        return dataclasses.replace(costs, many=False, latency=max(5e-4, time.perf_counter() - started))

    D._measure = measured
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "srv") as srv:
        client = Client(srv.url, srv.api_key)
        body = {"name": f"cmp-{uuid.uuid4().hex[:8]}", "key": KEY,
                "fields": [{"name": k, "data_type": v} for k, v in FIELDS.items()]}
        ds = client.request("POST", "/datasets", body=body, create=True)["id"]
        rows = make_rows(args.rows)
        for i in range(0, len(rows), 10_000):
            client.request("PUT", f"/datasets/{ds}", body={"data": rows[i:i + 10_000]})
        for i in range(0, len(rows), 100):
            rows[i] = dict(rows[i], text=rows[i]["text"][::-1])
        path = write_jsonl(Path(tmp) / "rows.jsonl", rows)
        source = CheckedFile(str(path), FIELDS, KEY, {}, "rows.jsonl")
        summary, *_ = load_summary(source, FIELDS, KEY, str(path), None, "rows.jsonl")
        points = summary.points
        print("load", open("/proc/loadavg").read().split()[:3])
        for pair in range(args.pairs):
            for name in ("old", "new") if pair % 2 == 0 else ("new", "old"):
                old_way["on"] = name == "old"
                summary.points = None if name == "old" else points
                srv.reset_stats()
                s0, t0, c0 = server_cpu(srv.proc.pid), time.perf_counter(), time.process_time()
                diff = D.derive(client, ds, len(rows), FIELDS, KEY, source, prune=True, show_data=False,
                                source=str(path), cache_dir=None)
                print(f"{name} pair {pair}: {time.perf_counter() - t0:.2f} s wall, client "
                      f"{time.process_time() - c0:.2f} s CPU, server {server_cpu(srv.proc.pid) - s0:.2f} s CPU; "
                      f"change {diff.change}, remote rows read {diff.remote_rows_read}, calls {srv.stats()['total']}")
        print("load", open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
