"""``bench_server.py --store postgresql``: the reference server on PostgreSQL against bare
PostgreSQL, in one run (issue 15).

(a) **Ingest**: N datapoints through ``PUT /datasets/{id}`` in 10,000-row batches against a
    bare binary ``COPY`` of the *same rows* (already serialised, hashed and keyed) into the
    *same table* (the server's ``datapoints``, under a dataset row of its own), 10,000 rows
    per transaction. Batch by batch, the order rotating. Goal: server >= 0.5x.
(b) **Digest**: ``GET /datasets/{id}/digest?buckets=65536`` with a cold summary cache (each
    timed call follows a version bump) against a bare ``SELECT id, key, hash`` of the same
    rows (psycopg, fetched), alternating. Goal: >= 0.5x.
(c) **Two processes vs one**: mixed reads (a dataset, a page of 200 datapoints at a random
    cursor, a 1,024-bucket digest, the dataset list) from client *processes* on keep-alive
    connections, for a fixed time: all to one server process, then split over two server
    processes on the same database (a load balancer's job), alternating. Goal: >= 1.6x the
    requests/s.

PostgreSQL: ``--pg-url`` (a role that may CREATE DATABASE), else ``$HLOPS_TEST_PG_URL``, else
a throwaway cluster started here (initdb, default durability settings: fsync on).
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import platform
import random
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from hlops.server.app import encode_cursor
from support import postgres
from support.server import ServerProcess

COPY_SQL = "COPY datapoints (dataset_id, id, point, key, hash, data) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ["int8", "int8", "int8", "text", "bytea", "bytea"]
BARE_IDS = 1 << 50  # the bare COPY's datapoint ids: far above the server's


def _admin(url: str | None) -> str:
    if url:
        return url
    if os.environ.get("HLOPS_TEST_PG_URL"):
        return os.environ["HLOPS_TEST_PG_URL"]
    return postgres.start_cluster(fast=False)[0]


def _bare_dataset(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT id FROM orgs ORDER BY id LIMIT 1").fetchone()[0]
        return conn.execute(
            "INSERT INTO datasets(org_id, name, key_field, created_at, updated_at) "
            "VALUES (%s, 'bare-copy', 'external_id', '', '') RETURNING id", (org,),
        ).fetchone()[0]


def ingest(srv, url, tuples, bodies, batch, fields) -> tuple[int, dict]:
    r = srv.call("POST", "/datasets", json={
        "name": "bench", "key": "external_id",
        "fields": [{"name": k, "data_type": v} for k, v in fields.items()],
    })
    r.raise_for_status()
    dataset_id = r.json()["id"]
    bare_id = _bare_dataset(url)
    conn = psycopg.connect(url, autocommit=True)
    import requests

    session = requests.Session()
    headers = srv.headers(**{"Content-Type": "application/json"})
    secs = {"server": 0.0, "bare_copy": 0.0}

    def put(i: int) -> None:
        t = time.perf_counter()
        resp = session.put(f"{srv.url}/datasets/{dataset_id}", data=bodies[i], headers=headers, timeout=600)
        secs["server"] += time.perf_counter() - t
        resp.raise_for_status()

    def copy(start: int) -> None:
        part = tuples[start:start + batch]
        t = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as cp:
            cp.set_types(COPY_TYPES)
            for i, row in zip(range(BARE_IDS + start, BARE_IDS + start + len(part)), part):
                cp.write_row((bare_id, i, *row))
        secs["bare_copy"] += time.perf_counter() - t

    for i in range(len(bodies)):
        start = i * batch
        steps = [lambda: put(i), lambda: copy(start)]
        for k in range(2):
            steps[(i + k) % 2]()
    conn.close()
    return dataset_id, secs


def digest(srv, url, dataset_id, n, repeat_) -> dict:
    from bench_server import cold_digest_seconds  # the script that runs this module

    def bare() -> float:
        t = time.perf_counter()
        with psycopg.connect(url) as conn:
            got = conn.execute("SELECT id, key, hash FROM datapoints WHERE dataset_id = %s", (dataset_id,)).fetchall()
        elapsed = time.perf_counter() - t
        assert len(got) == n
        return elapsed

    colds, selects = [], []
    for _ in range(repeat_):
        colds.append(cold_digest_seconds(srv, dataset_id, n))
        selects.append(bare())
    d, b = statistics.median(colds), statistics.median(selects)
    return {
        "buckets": 65536, "server_summary_cold_s": round(d, 3), "server_summary_cold_runs_s": [round(x, 3) for x in colds],
        "bare_select_s": round(b, 3), "bare_select_runs_s": [round(x, 3) for x in selects],
        "ratio_summary_vs_select": round(b / d, 3), "goal": ">= 0.5 (summary vs select)",
    }


def _reader(urls: list[str], key: str, paths: list[str], seconds: float, out) -> None:
    """One client process: keep-alive connections, one to each url, round robin."""
    conns = []
    for u in urls:
        host, port = u.removeprefix("http://").rsplit(":", 1)
        conns.append(http.client.HTTPConnection(host, int(port), timeout=60))
    rnd = random.Random(os.getpid())
    done, errors, k = 0, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn = conns[k % len(conns)]
        k += 1
        conn.request("GET", rnd.choice(paths), headers={"X-API-KEY": key})
        resp = conn.getresponse()
        resp.read()
        done += 1
        errors += resp.status != 200
    out.put((done, errors))


def mixed_reads(urls: list[str], key: str, paths: list[str], clients: int, seconds: float) -> float:
    """Requests/s of ``clients`` processes; client i talks to ``urls[i % len(urls)]``."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=([urls[i % len(urls)]], key, paths, seconds, out)) for i in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    done, errors = sum(r[0] for r in results), sum(r[1] for r in results)
    if errors:
        raise RuntimeError(f"{errors} mixed reads failed")
    return done / seconds


def scale(srv, second, dataset_id, n, clients, seconds, rounds) -> dict:
    rnd = random.Random(3)
    paths = [f"/datasets/{dataset_id}", "/datasets?limit=10", f"/datasets/{dataset_id}/digest?buckets=1024"]
    paths += [f"/datasets/{dataset_id}/datapoints?limit=200&cursor={encode_cursor(rnd.randrange(n))}" for _ in range(20)]
    # warm both processes' summary caches and connection pools
    for s in (srv, second):
        for p in paths[:3]:
            s.call("GET", p).raise_for_status()
    one, two = [], []
    for _ in range(rounds):
        one.append(mixed_reads([srv.url], srv.api_key, paths, clients, seconds))
        two.append(mixed_reads([srv.url, second.url], srv.api_key, paths, clients, seconds))
    o, t = statistics.median(one), statistics.median(two)
    return {
        "clients": clients, "seconds_per_run": seconds, "one_process_rps": round(o, 1), "two_processes_rps": round(t, 1),
        "one_runs": [round(x, 1) for x in one], "two_runs": [round(x, 1) for x in two],
        "ratio_two_vs_one": round(t / o, 3), "goal": ">= 1.6",
    }



def run(args, n: int, bodies: list[bytes], tuples: list[tuple], body_bytes: int, fields: dict, batch: int, tmp: Path) -> dict:
    admin = _admin(args.pg_url)
    url = postgres.fresh_database(admin)
    try:
        with ServerProcess(tmp / "server", db_url=url, test_endpoints=False) as srv:
            print("ingest: server PUT and bare COPY, batch by batch ...", flush=True)
            dataset_id, secs = ingest(srv, url, tuples, bodies, batch, fields)
            for name, s in secs.items():
                print(f"  {name}: {n / s:,.0f} rows/s", flush=True)
            assert srv.call("GET", f"/datasets/{dataset_id}").json()["datapoint_count"] == n
            print("digest: cold summary and bare select, alternating ...", flush=True)
            dig = digest(srv, url, dataset_id, n, args.repeat)
            print(f"  summary {dig['server_summary_cold_s']} s, select {dig['bare_select_s']} s", flush=True)
            second = ServerProcess(tmp / "second", db_url=url, test_endpoints=False, start=False)
            second.api_key, second.other_key = srv.api_key, srv.other_key
            second.keys_file.write_text(srv.keys_file.read_text())
            with second:
                print("mixed reads: one process, then two, alternating ...", flush=True)
                sc = scale(srv, second, dataset_id, n, args.clients, args.seconds, args.rounds)
                print(f"  one {sc['one_process_rps']} req/s, two {sc['two_processes_rps']} req/s", flush=True)
        with psycopg.connect(url) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
    finally:
        postgres.drop_database(url)
    return {
        "store": "postgresql",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(), "python": platform.python_version(), "postgresql": server_version,
            "fsync": fsync, "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "rows": n, "batch": batch, "request_bytes": body_bytes,
        "ingest": {
            "server_rows_per_s": round(n / secs["server"]),
            "bare_copy_rows_per_s": round(n / secs["bare_copy"]),
            "ratio_vs_bare_copy": round(secs["bare_copy"] / secs["server"], 3),
            "goal": ">= 0.5 vs a bare COPY into the same table",
            "seconds": {k: round(v, 3) for k, v in secs.items()},
        },
        "digest": dig,
        "two_processes": sc,
    }

