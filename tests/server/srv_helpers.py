"""Builders shared by the reference server's tests."""

from __future__ import annotations

import hashlib
import socket
import uuid
from typing import Any

from hlops import canonical

FIELDS = {"text": "text", "sentiment": "categorical", "external_id": "text", "entities": "character_offsets"}
CANARY = "CANARY-7f3a9-do-not-echo"  # a datapoint value that must never appear in an error


def uniq(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def field_list(fields: dict[str, str] = FIELDS) -> list[dict]:
    return [{"name": k, "data_type": v} for k, v in fields.items()]


def make_rows(n: int, start: int = 0, *, tag: str = "") -> list[dict]:
    return [
        {
            "text": f"row {i} {tag} some text here",
            "sentiment": ("positive", "negative", "neutral")[i % 3],
            "external_id": 10_000 + i,
            "entities": [{"start": 0, "end": 3, "label": "ORG"}],
        }
        for i in range(start, start + n)
    ]


def create_dataset(srv, *, key: str | None = None, rows: list[dict] | None = None, name: str | None = None,
                   fields: dict[str, str] = FIELDS, other: bool = False, **extra: Any) -> dict:
    body = {"name": name or uniq(), "fields": field_list(fields), **extra}
    if key is not None:
        body["key"] = key
    if rows is not None:
        body["data"] = rows
    r = srv.call("POST", "/datasets", json=body, other=other)
    assert r.status_code == 201, r.text
    return r.json()


def fid(dataset: dict, name: str) -> int:
    return next(f["id"] for f in dataset["fields"] if f["name"] == name)


def project_body(dataset: dict, *, name: str | None = None, review: bool = True, **extra: Any) -> dict:
    body = {
        "name": name or uniq("proj"),
        "inputs": [
            {"name": "text", "data_type": "text", "data_sources": [{"field_id": fid(dataset, "text")}]},
        ],
        "outputs": [
            {"name": "sentiment", "task_type": "classification",
             "data_sources": [{"field_id": fid(dataset, "sentiment")}]},
        ],
        "review_existing_annotations": review,
    }
    body.update(extra)
    return body


def create_project(srv, dataset: dict, *, other: bool = False, **kw: Any) -> dict:
    r = srv.call("POST", "/projects", json=project_body(dataset, **kw), other=other)
    assert r.status_code == 201, r.text
    return r.json()


def expected_rows(rows: list[dict], ids: list[int], key: str | None, fields: dict[str, str] = FIELDS) -> dict[int, tuple]:
    """id -> (key text, hash) computed client-side with hlops.canonical."""
    out = {}
    for dp_id, row in zip(ids, rows):
        norm = canonical.normalise_row(row, fields)
        h = canonical.row_hash(norm)
        out[dp_id] = (canonical.key_text(norm, key, h), h)
    return out


def expected_buckets(expected: dict[int, tuple], buckets: int) -> dict[int, tuple[int, str]]:
    """bucket -> (count, XOR hash) of the non-empty buckets."""
    acc: dict[int, list[str]] = {}
    for text, h in expected.values():
        acc.setdefault(canonical.bucket_of(text, buckets), []).append(h)
    return {b: (len(hs), canonical.xor_hashes(hs)) for b, hs in acc.items()}


def rows_by_bucket(expected: dict[int, tuple], buckets: int) -> dict[int, dict[int, tuple]]:
    """bucket -> {datapoint id: (key text, hash)} of the non-empty buckets."""
    out: dict[int, dict] = {}
    for dp_id, (text, h) in expected.items():
        out.setdefault(canonical.bucket_of(text, buckets), {})[dp_id] = (text, h)
    return out


def paginate(srv, path: str, params: dict | None = None, *, other: bool = False,
             method: str = "GET", json: dict | None = None) -> list[dict]:
    """Every page's items (``method`` and the ``json`` body the same with each cursor)."""
    items, cursor = [], None
    for _ in range(10_000):
        q = dict(params or {})
        if cursor:
            q["cursor"] = cursor
        r = srv.call(method, path, params=q, other=other, **({"json": json} if json is not None else {}))
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assert_validation(r, *locs: tuple) -> list[dict]:
    """A 422 in FastAPI's shape, without ``input`` members, with an item at (or under) each
    ``loc``."""
    assert r.status_code == 422, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert set(item) == {"loc", "msg", "type"}, item
    got = [tuple(item["loc"]) for item in detail]
    for loc in locs:
        assert any(g[:len(loc)] == loc for g in got), (loc, got)
    assert CANARY not in r.text
    return detail


def raw_request(server, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` (request line and headers) and ``body`` as they are, on a socket of
    its own: what a client library would not send (a length it does not keep to, no body at
    all). The status and the bytes read up to the end of the answer's headers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data
