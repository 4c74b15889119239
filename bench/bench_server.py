"""Benchmark of the reference server against bare SQLite, in one run.

(a) **Ingest**: N datapoints through ``PUT /datasets/{id}`` in 10,000-row batches to a
    server subprocess, against a bare ``sqlite3`` ``executemany`` of the *same rows*
    (already serialised, hashed and keyed: no per-row Python work at all) in 10,000-row
    transactions into
      - a table with the server's own datapoints DDL (same columns, indexes, pragmas and
        background checkpointing): the goal, server >= 0.5x this rate;
      - a minimal table (rowid, unique key, hash, data) with the same pragmas: for scale.
    The three writers take turns batch by batch (the order rotating), so a busy machine
    slows them alike: the ratios are measured under the same conditions.
(b) **Digest**: ``GET /datasets/{id}/digest?buckets=65536`` of the N datapoints (the bucket
    summary; each timed call follows a version bump, so the server's summary cache is cold,
    and the answer is parsed by the client) against a bare ``SELECT id, key, hash`` of the
    same rows from the server's database file, alternating. Goal: server >= 0.5x the bare
    rate. Also reported: all rows' ``{id, key, hash, annotations}`` through the paginated row
    digest (10,000 per page), and a warm (cached) summary.

    .venv/bin/python bench/bench_server.py --rows 1000000

Results go to ``bench/results/server.json`` (ratios, absolute figures, command, date, machine).

``--store postgresql`` runs the PostgreSQL comparison instead (ingest vs a bare COPY, digest
vs a bare SELECT, two server processes vs one): see ``bench_server_pg.py``; results in
``bench/results/server-postgresql.json``::

    .venv/bin/python bench/bench_server.py --store postgresql --rows 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from hlops import canonical  # noqa: E402
from hlops.server.rows import stored_point  # noqa: E402
from hlops.server.sqlite_store import CHECKPOINT_BYTES, SCHEMA  # noqa: E402
from support.server import ServerProcess  # noqa: E402

BATCH = 10_000
FIELDS = {"text": "text", "sentiment": "categorical", "external_id": "text", "entities": "character_offsets"}
WORDS = (
    "the quick brown fox jumps over a lazy dog please refund this item I love it so much "
    "sound quality of these headphones was disappointing camera battery delivery late great"
).split()


def make_rows(n: int, seed: int = 7) -> list[dict]:
    """Seed-like datapoints, ~170 bytes of canonical JSON each; ``external_id`` is the key."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 16)))
        start = rnd.randint(0, 10)
        rows.append({
            "text": text,
            "sentiment": rnd.choice(("positive", "negative", "neutral")),
            "external_id": 1_000_000_000_000 + i,
            "entities": [{"start": start, "end": start + rnd.randint(1, 6), "label": rnd.choice(("ORG", "PER"))}],
        })
    return rows


def stored_tuples(rows: list[dict]) -> list[tuple]:
    """What the server stores per row: (point, key, hash, canonical JSON)."""
    out = []
    for norm in canonical.normalise_rows(rows, FIELDS):
        cj = canonical.canonical_json(norm)
        key = canonical.key_text(norm, "external_id", "")
        out.append((stored_point(canonical.key_point(key)), key, hashlib.sha256(cj).digest(), cj))
    return out


class BareWriter:
    """``executemany`` of prepared rows, 10,000 per transaction, with the server's pragmas
    and the same kind of background checkpointing (so only the server's own work differs)."""

    def __init__(self, path: Path, ddl: str, insert: str, row: callable):
        self.path, self.insert, self.row = path, insert, row
        self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "cache_size=-131072", "wal_autocheckpoint=0"):
            self.con.execute(f"PRAGMA {pragma}")
        self.con.executescript(ddl)
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._checkpoints, daemon=True)
        self._thread.start()

    def write(self, start: int, batch: list[tuple]) -> None:
        rows = [self.row(start + i + 1, r) for i, r in enumerate(batch)]
        t = time.perf_counter()
        self.con.execute("BEGIN")
        self.con.executemany(self.insert, rows)
        self.con.execute("COMMIT")
        self.seconds += time.perf_counter() - t

    def _checkpoints(self) -> None:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        while not self._stop.wait(0.25):
            try:
                if os.path.getsize(f"{self.path}-wal") >= CHECKPOINT_BYTES:
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (OSError, sqlite3.Error):
                pass
        con.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.con.close()


def ingest(srv: ServerProcess, tuples: list[tuple], bodies: list[bytes], tmp: Path) -> tuple[int, dict]:
    r = srv.call("POST", "/datasets", json={
        "name": "bench", "key": "external_id",
        "fields": [{"name": k, "data_type": v} for k, v in FIELDS.items()],
    })
    r.raise_for_status()
    dataset_id = r.json()["id"]
    same = BareWriter(
        tmp / "bare.db",
        SCHEMA + "INSERT INTO orgs(id, name) VALUES (1, 'bench');"
        "INSERT INTO datasets(id, org_id, name, key_field, created_at, updated_at) VALUES (1, 1, 'bench', 'external_id', '', '');",
        "INSERT INTO datapoints(dataset_id, id, point, key, hash, data) VALUES (1, ?, ?, ?, ?, ?)",
        lambda i, r: (i, *r),
    )
    minimal = BareWriter(
        tmp / "minimal.db",
        "CREATE TABLE dp (id INTEGER PRIMARY KEY, key TEXT UNIQUE, hash BLOB, data BLOB);",
        "INSERT INTO dp(id, key, hash, data) VALUES (?, ?, ?, ?)",
        lambda i, r: (i, *r[1:]),
    )
    session = requests.Session()
    headers = srv.headers(**{"Content-Type": "application/json"})
    server_seconds = 0.0

    def put(i: int) -> None:
        nonlocal server_seconds
        t = time.perf_counter()
        resp = session.put(f"{srv.url}/datasets/{dataset_id}", data=bodies[i], headers=headers, timeout=600)
        server_seconds += time.perf_counter() - t
        resp.raise_for_status()

    for i in range(len(bodies)):
        start = i * BATCH
        steps = [lambda: put(i), lambda: same.write(start, tuples[start:start + BATCH]),
                 lambda: minimal.write(start, tuples[start:start + BATCH])]
        for k in range(3):  # rotate who goes first
            steps[(i + k) % 3]()
    same.close()
    minimal.close()
    return dataset_id, {"server": server_seconds, "same": same.seconds, "minimal": minimal.seconds}


def cold_digest_seconds(srv: ServerProcess, dataset_id: int, n: int) -> float:
    """One 65,536-bucket digest after a PATCH (its cache invalidated), timed; checks it
    counts all ``n`` rows. Both stores' benches use it."""
    srv.call("PATCH", f"/datasets/{dataset_id}", json={"description": f"bump {time.time()}"}).raise_for_status()
    t = time.perf_counter()
    body = orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 65536}).content)
    elapsed = time.perf_counter() - t
    assert sum(b["count"] for b in body["items"]) == n
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="timed digest runs (median)")
    ap.add_argument("--out", type=Path, help="default: bench/results/server.json (server-postgresql.json)")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", help="PostgreSQL role that may CREATE DATABASE (default: $HLOPS_TEST_PG_URL, else a throwaway cluster)")
    ap.add_argument("--clients", type=int, default=6, help="postgresql: client processes of the mixed reads")
    ap.add_argument("--seconds", type=float, default=8.0, help="postgresql: seconds per mixed-read run")
    ap.add_argument("--rounds", type=int, default=3, help="postgresql: one/two-process runs (median)")
    args = ap.parse_args()
    if args.out is None:
        name = "server.json" if args.store == "sqlite" else "server-postgresql.json"
        args.out = REPO / "bench" / "results" / name
    n = args.rows - args.rows % BATCH

    print(f"preparing {n:,} rows ...", flush=True)
    rows = make_rows(n)
    bodies = [orjson.dumps({"data": rows[i:i + BATCH]}) for i in range(0, n, BATCH)]
    tuples = stored_tuples(rows)
    del rows
    body_bytes = sum(map(len, bodies))

    if args.store == "postgresql":
        from bench_server_pg import run

        with tempfile.TemporaryDirectory(prefix="hlops-bench-") as tmp:
            result = run(args, n, bodies, tuples, body_bytes, FIELDS, BATCH, Path(tmp))
        result = {"command": " ".join([".venv/bin/python", *sys.argv]), **result}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return

    with tempfile.TemporaryDirectory(prefix="hlops-bench-") as tmp:
        tmp = Path(tmp)
        with ServerProcess(tmp / "server", test_endpoints=False) as srv:
            print("ingest: server, bare (same DDL), bare (minimal), batch by batch ...", flush=True)
            dataset_id, secs = ingest(srv, tuples, bodies, tmp)
            del bodies, tuples
            for name, s in secs.items():
                print(f"  {name}: {n / s:,.0f} rows/s", flush=True)
            assert srv.call("GET", f"/datasets/{dataset_id}").json()["datapoint_count"] == n

            def bare_select() -> float:
                t = time.perf_counter()
                con = sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True)
                got = con.execute("SELECT id, key, hash FROM datapoints WHERE dataset_id = ?", (dataset_id,)).fetchall()
                con.close()
                elapsed = time.perf_counter() - t
                assert len(got) == n
                return elapsed

            print("digest: cold summary and bare select, alternating ...", flush=True)
            cold, select = [], []
            for _ in range(args.repeat):
                cold.append(cold_digest_seconds(srv, dataset_id, n))
                select.append(bare_select())
            t = time.perf_counter()
            for _ in range(args.repeat):
                orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 65536}).content)
            warm = (time.perf_counter() - t) / args.repeat

            t = time.perf_counter()
            total, cursor = 0, None
            while True:
                params = {"limit": 10_000, **({"cursor": cursor} if cursor else {})}
                page = orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params=params).content)
                total += len(page["items"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            all_rows = time.perf_counter() - t
            assert total == n

    digest, bare = statistics.median(cold), statistics.median(select)
    result = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "rows": n,
        "batch": BATCH,
        "request_bytes": body_bytes,
        "ingest": {
            "server_rows_per_s": round(n / secs["server"]),
            "bare_same_ddl_rows_per_s": round(n / secs["same"]),
            "bare_minimal_rows_per_s": round(n / secs["minimal"]),
            "ratio_vs_same_ddl": round(secs["same"] / secs["server"], 3),
            "ratio_vs_minimal": round(secs["minimal"] / secs["server"], 3),
            "goal": ">= 0.5 vs the same DDL",
            "seconds": {k: round(v, 3) for k, v in secs.items()},
        },
        "digest": {
            "buckets": 65536,
            "server_summary_cold_s": round(digest, 3),
            "server_summary_cold_runs_s": [round(x, 3) for x in cold],
            "server_summary_warm_s": round(warm, 4),
            "server_all_rows_paginated_s": round(all_rows, 3),
            "bare_select_s": round(bare, 3),
            "bare_select_runs_s": [round(x, 3) for x in select],
            "ratio_summary_vs_select": round(bare / digest, 3),
            "ratio_all_rows_vs_select": round(bare / all_rows, 3),
            "goal": ">= 0.5 (summary vs select)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
