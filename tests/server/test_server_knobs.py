"""The test-only knobs: rate limit, seeded faults, fail-nth, lost responses (phase after),
request statistics and the request log."""

from __future__ import annotations

import json
import uuid

import pytest
from srv_helpers import create_dataset, make_rows

from support.server import ServerProcess


def statuses(srv, n: int, path: str = "/datasets") -> list:
    out = []
    for _ in range(n):
        r = srv.call("GET", path)
        out.append((r.status_code, r.headers.get("Retry-After")))
    return out


def test_rate_limit(tmp_path):
    with ServerProcess(tmp_path, rate_limit=5) as srv:
        got = statuses(srv, 15)
        limited = [ra for status, ra in got if status == 429]
        assert limited and all(ra is not None and int(ra) >= 1 for ra in limited)
        assert got[0][0] == 200
        # the other key has a bucket of its own
        assert srv.call("GET", "/datasets", other=True).status_code == 200
        # limits are counted, and can be lifted at runtime
        assert srv.stats()["by_status"]["429"] == len(limited)
        srv.set_faults(rate_limit=None)
        assert {s for s, _ in statuses(srv, 10)} == {200}


def test_seeded_faults_repeat(tmp_path):
    runs = []
    for i in range(2):
        with ServerProcess(tmp_path / str(i), fault_rate=0.4, fault_statuses=[503, 429], fault_seed=11, fault_retry_after=0) as srv:
            runs.append(statuses(srv, 30))
            stats = srv.stats()
    assert runs[0] == runs[1]
    codes = [s for s, _ in runs[0]]
    assert set(codes) == {200, 503, 429}
    assert all(ra == "0" for s, ra in runs[0] if s == 429)
    assert all(ra is None for s, ra in runs[0] if s == 503)
    assert stats["total"] == 30 and stats["by_status"]["503"] == codes.count(503)


def test_fail_nth_and_stats(tmp_path):
    with ServerProcess(tmp_path, fail_nth=[2, 4]) as srv:
        assert [s for s, _ in statuses(srv, 5)] == [200, 503, 200, 503, 200]
        stats = srv.stats()
        assert stats["total"] == 5 and stats["writes"] == 0
        assert stats["by_path"] == {"GET /datasets": 5}
        assert stats["by_status"] == {"200": 3, "503": 2}
        srv.reset_stats()  # counts (and fail-nth numbering) start again
        assert srv.stats()["total"] == 0
        assert [s for s, _ in statuses(srv, 2)] == [200, 503]
        ds = create_dataset(srv)
        srv.call("PUT", f"/datasets/{ds['id']}", json={"data": []})
        stats = srv.stats()
        assert stats["writes"] == 2 and stats["by_method"] == {"GET": 2, "POST": 1, "PUT": 1}
        assert stats["by_path"]["PUT /datasets/{dataset_id}"] == 1


def test_lost_response_is_replayed(tmp_path):
    """Phase ``after``: the write is committed, the answer lost; the client's retry with the
    same Idempotency-Key gets the first answer and nothing is written twice."""
    with ServerProcess(tmp_path) as srv:
        ds = create_dataset(srv)
        srv.reset_stats()
        srv.set_faults(fail_nth=[1], phase="after")
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        lost = srv.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(3)}, headers=headers)
        assert lost.status_code == 503
        again = srv.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(3)}, headers=headers)
        assert again.status_code == 200 and again.headers["Idempotency-Replayed"] == "true"
        assert again.json()["datapoint_count"] == 3 and len(again.json()["datapoint_ids"]) == 3
        assert srv.call("GET", f"/datasets/{ds['id']}").json()["datapoint_count"] == 3
        srv.set_faults(fail_nth=[], rate=0.0, phase="before")
        assert srv.call("GET", f"/datasets/{ds['id']}").status_code == 200


def test_runtime_fault_config_is_checked(tmp_path):
    with ServerProcess(tmp_path) as srv:
        srv.set_faults(rate=1.0, statuses=[429], retry_after=3)
        r = srv.call("GET", "/datasets")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        for bad in ({"rate": 2}, {"statuses": [200]}, {"phase": "during"}, {"bogus": 1}, {"retry_after": -1}):
            resp = srv._session.post(srv.url + "/_test/faults", json=bad)
            assert resp.status_code == 422, bad
        srv.set_faults(rate=0)
        assert srv.call("GET", "/datasets").status_code == 200
        assert srv._session.get(srv.url + "/health").status_code == 200  # never faulted


def test_request_log_has_no_secrets(tmp_path):
    log = tmp_path / "requests.jsonl"
    with ServerProcess(tmp_path / "srv", request_log=log) as srv:
        ds = create_dataset(srv, rows=[{"text": "secret-content-xyz"}])
        srv.call("GET", f"/datasets/{ds['id']}", other=True)
        srv.call("GET", "/datasets", headers={"X-API-KEY": "not-a-real-key-1"})
        keys = (srv.api_key, srv.other_key)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/datasets", 201), ("GET", f"/datasets/{ds['id']}", 404), ("GET", "/datasets", 401),
    ]
    assert all(set(x) == {"time", "org", "method", "path", "status"} for x in lines)
    assert lines[0]["org"] != lines[1]["org"] and lines[2]["org"] is None
    text = log.read_text()
    assert not any(k in text for k in keys) and "secret-content" not in text and "not-a-real-key" not in text


def test_test_endpoints_are_off_by_default(tmp_path):
    with ServerProcess(tmp_path, test_endpoints=False) as srv:
        assert srv._session.get(srv.url + "/_test/stats").status_code in (401, 404)
        with pytest.raises(Exception):
            srv.stats()
