"""Benchmark of the reference server against bare SQLite, in one run.

(a) **Ingest**: N datapoints through ``PUT /datasets/{id}`` in 10,000-row batches to a
    server subprocess, against a bare ``sqlite3`` ``executemany`` of the *same rows*
    (already serialised, hashed and keyed -- no per-row Python work at all) in 10,000-row
    transactions into a table with the server's own datapoints DDL (same columns and
    indexes, same pragmas). A second bare figure uses a minimal table (rowid, unique key)
    for scale. Goal: server >= 0.5x the same-DDL bare rate.
(b) **Digest**: ``GET /datasets/{id}/digest?buckets=65536`` of the N datapoints (the bucket
    summary; each timed call follows a version bump, so the server's summary cache is cold)
    against a bare ``SELECT id, key, hash`` of the same rows from the server's database file.
    Goal: server >= 0.5x the bare rate. Also reported: all rows' ``{id, key, hash,
    annotations}`` through the paginated row digest, and a warm (cached) summary.

    .venv/bin/python bench/bench_server.py --rows 1000000

Results go to ``bench/results/server.json`` (ratios, absolute figures, command, date, machine).
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
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import orjson
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hlops import canonical  # noqa: E402
from hlops.server.rows import stored_point  # noqa: E402
from hlops.server.sqlite_store import SCHEMA  # noqa: E402
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


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


def bare_same_ddl(path: Path, tuples: list[tuple]) -> float:
    con = connect(path)
    con.executescript(SCHEMA)
    con.execute("INSERT INTO orgs(id, name) VALUES (1, 'bench')")
    con.execute(
        "INSERT INTO datasets(id, org_id, name, key_field, created_at, updated_at) VALUES (1, 1, 'bench', 'external_id', '', '')"
    )
    t = time.perf_counter()
    for start in range(0, len(tuples), BATCH):
        batch = tuples[start:start + BATCH]
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO datapoints(dataset_id, id, point, key, hash, data) VALUES (1, ?, ?, ?, ?, ?)",
            [(start + i + 1, *row) for i, row in enumerate(batch)],
        )
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def bare_minimal(path: Path, tuples: list[tuple]) -> float:
    con = connect(path)
    con.execute("CREATE TABLE dp (id INTEGER PRIMARY KEY, key TEXT UNIQUE, hash BLOB, data BLOB)")
    t = time.perf_counter()
    for start in range(0, len(tuples), BATCH):
        con.execute("BEGIN")
        con.executemany("INSERT INTO dp(key, hash, data) VALUES (?, ?, ?)", [r[1:] for r in tuples[start:start + BATCH]])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def server_ingest(srv: ServerProcess, bodies: list[bytes], parallel: int) -> tuple[int, float]:
    r = srv.call("POST", "/datasets", json={
        "name": "bench", "key": "external_id",
        "fields": [{"name": k, "data_type": v} for k, v in FIELDS.items()],
    })
    r.raise_for_status()
    dataset_id = r.json()["id"]
    sessions = [requests.Session() for _ in range(parallel)]
    headers = srv.headers(**{"Content-Type": "application/json"})

    def put(i: int) -> None:
        resp = sessions[i % parallel].put(f"{srv.url}/datasets/{dataset_id}", data=bodies[i], headers=headers, timeout=600)
        resp.raise_for_status()

    t = time.perf_counter()
    if parallel == 1:
        for i in range(len(bodies)):
            put(i)
    else:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(put, range(len(bodies))))
    return dataset_id, time.perf_counter() - t


def timed(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--parallel", type=int, default=1, help="concurrent PUTs (default 1: sequential)")
    ap.add_argument("--repeat", type=int, default=3, help="timed digest runs (median)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "server.json")
    args = ap.parse_args()
    n = args.rows

    print(f"preparing {n:,} rows ...", flush=True)
    rows = make_rows(n)
    bodies = [orjson.dumps({"data": rows[i:i + BATCH]}) for i in range(0, n, BATCH)]
    tuples = stored_tuples(rows)
    del rows
    body_bytes = sum(map(len, bodies))

    with tempfile.TemporaryDirectory(prefix="hlops-bench-") as tmp:
        tmp = Path(tmp)
        print("bare sqlite (same DDL) ...", flush=True)
        bare_ddl = bare_same_ddl(tmp / "bare.db", tuples)
        print(f"  {n / bare_ddl:,.0f} rows/s", flush=True)
        print("bare sqlite (minimal table) ...", flush=True)
        bare_min = bare_minimal(tmp / "minimal.db", tuples)
        print(f"  {n / bare_min:,.0f} rows/s", flush=True)
        del tuples

        with ServerProcess(tmp / "server", test_endpoints=False) as srv:
            print(f"server ingest ({args.parallel} in flight) ...", flush=True)
            dataset_id, ingest = server_ingest(srv, bodies, args.parallel)
            print(f"  {n / ingest:,.0f} rows/s", flush=True)
            del bodies
            count = srv.call("GET", f"/datasets/{dataset_id}").json()["datapoint_count"]
            assert count == n, (count, n)

            bumps = iter(range(10**6))

            def digest_cold() -> None:
                srv.call("PATCH", f"/datasets/{dataset_id}", json={"description": f"bump {next(bumps)}"}).raise_for_status()
                t = time.perf_counter()
                body = orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 65536}).content)
                digest_cold.elapsed.append(time.perf_counter() - t)
                assert sum(b["count"] for b in body["items"]) == n

            digest_cold.elapsed = []
            for _ in range(args.repeat):
                digest_cold()
            digest = statistics.median(digest_cold.elapsed)
            warm, _ = timed(lambda: orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params={"buckets": 65536}).content), args.repeat)

            def all_rows() -> None:
                total, cursor = 0, None
                while True:
                    params = {"limit": 10_000, **({"cursor": cursor} if cursor else {})}
                    page = orjson.loads(srv.call("GET", f"/datasets/{dataset_id}/digest", params=params).content)
                    total += len(page["items"])
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
                assert total == n

            rows_digest, _ = timed(all_rows, 1)
            db_path = srv.db_path

        def bare_select() -> None:
            con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            got = con.execute("SELECT id, key, hash FROM datapoints WHERE dataset_id = ?", (dataset_id,)).fetchall()
            con.close()
            assert len(got) == n

        select, select_times = timed(bare_select, args.repeat)

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
        },
        "rows": n,
        "batch": BATCH,
        "parallel_puts": args.parallel,
        "request_bytes": body_bytes,
        "ingest": {
            "server_rows_per_s": round(n / ingest),
            "bare_same_ddl_rows_per_s": round(n / bare_ddl),
            "bare_minimal_rows_per_s": round(n / bare_min),
            "ratio_vs_same_ddl": round(bare_ddl / ingest, 3),
            "ratio_vs_minimal": round(bare_min / ingest, 3),
            "goal": ">= 0.5 vs same DDL",
            "seconds": {"server": round(ingest, 3), "bare_same_ddl": round(bare_ddl, 3), "bare_minimal": round(bare_min, 3)},
        },
        "digest": {
            "buckets": 65536,
            "server_summary_cold_s": round(digest, 3),
            "server_summary_cold_runs_s": [round(x, 3) for x in digest_cold.elapsed],
            "server_summary_warm_s": round(warm, 4),
            "server_all_rows_paginated_s": round(rows_digest, 3),
            "bare_select_s": round(select, 3),
            "bare_select_runs_s": [round(x, 3) for x in select_times],
            "ratio_summary_vs_select": round(select / digest, 3),
            "ratio_all_rows_vs_select": round(select / rows_digest, 3),
            "goal": ">= 0.5 (summary vs select)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
