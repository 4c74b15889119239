"""Durability: a write answered 2xx is committed -- kill -9 during a stream of PUTs loses
nothing that was acknowledged."""

from __future__ import annotations

import sqlite3
import threading
import time

import requests
from srv_helpers import create_dataset, make_rows, paginate

from support.postgres import db_url_for, drop_database
from support.server import ServerProcess


def test_kill_9_loses_no_acknowledged_row(tmp_path, store):
    url = db_url_for(store)
    srv = ServerProcess(tmp_path, db_url=url)
    try:
        ds = create_dataset(srv, key="external_id")
        acked: dict[int, str] = {}  # datapoint id -> key
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[str] = []

        def writer(offset: int) -> None:
            session = requests.Session()
            batch = 0
            while not stop.is_set():
                rows = make_rows(250, start=offset + batch * 250)
                batch += 1
                try:
                    r = session.put(f"{srv.url}/datasets/{ds['id']}", json={"data": rows}, headers=srv.headers(), timeout=30)
                except requests.RequestException:
                    return  # the server is gone: this batch was never acknowledged
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                with lock:
                    acked.update(zip(r.json()["datapoint_ids"], (str(row["external_id"]) for row in rows)))

        threads = [threading.Thread(target=writer, args=(k * 10_000_000,)) for k in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 6000 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        srv.kill()  # SIGKILL while PUTs are in flight
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert len(acked) >= 6000
        snapshot = dict(acked)

        srv.start()
        rows = {r["id"]: r["key"] for r in paginate(srv, f"/datasets/{ds['id']}/digest", {"limit": 10_000})}
        missing = [i for i in snapshot if i not in rows]
        assert not missing, f"{len(missing)} acknowledged datapoints lost"
        assert all(rows[i] == k for i, k in snapshot.items())
        count = srv.call("GET", f"/datasets/{ds['id']}").json()["datapoint_count"]
        assert count == len(rows) >= len(snapshot)
        # the database is sound, and takes writes again
        assert srv.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(1, start=-5)}).status_code == 200
        srv.stop()
        if url is None:
            con = sqlite3.connect(srv.db_path)
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.close()
    finally:
        srv.close()
        if url:
            drop_database(url)
