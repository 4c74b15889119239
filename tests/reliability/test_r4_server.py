"""R4 -- server robustness: hostile requests to every operation of the reference server are
answered 2xx or 4xx, never 5xx, always with a JSON body and never a traceback.

This extends ``tests/server`` (schemathesis over ``/openapi.json`` with valid and invalid
generated data and its conformance checks, fixed malformed bodies, wrong content types and
body limits: ``test_schemathesis.py``, ``test_protocol.py``) with what a schema cannot
generate: bytes that are not JSON, JSON that is too deep, too wide, too big or in another
encoding, mutated valid bodies, hostile query strings, path ids and headers. The operations
are read from the running server's ``/openapi.json``, so a new route is fuzzed from the day
it exists. The server's own request counts (``/_test/stats``) must show no 5xx at the end.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import FULL, org_server

EXAMPLES = 1200 if FULL else 250
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    srv = org_server(tmp_path_factory.mktemp("r4"), orgs=2)
    s = requests.Session()
    h = {"X-API-KEY": srv.api_key}
    ds = s.post(srv.url + "/datasets", headers=h, json={
        "name": "r4", "key": "id", "fields": [{"name": "id", "data_type": "text"}, {"name": "text", "data_type": "text"},
                                             {"name": "label", "data_type": "categorical"},
                                             {"name": "spans", "data_type": "character_offsets"}],
        "data": [{"id": str(i), "text": f"row {i}", "label": "a", "spans": []} for i in range(30)]}).json()
    fid = {f["name"]: f["id"] for f in ds["fields"]}
    project = s.post(srv.url + "/projects", headers=h, json={
        "name": "r4", "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": fid["text"]}]}],
        "outputs": [{"name": "label", "task_type": "classification", "data_sources": [{"field_id": fid["label"]}]}]}).json()
    spec = s.get(srv.url + "/openapi.json").json()
    ops = [(m.upper(), p) for p, item in spec["paths"].items() for m in item if p != "/health"]
    ids = {"dataset_id": ds["id"], "project_id": project["id"]}
    valid = {  # a valid body per write operation, to mutate
        ("POST", "/datasets"): {"name": "x", "fields": [{"name": "t", "data_type": "text"}], "data": [{"t": "a"}]},
        ("PUT", "/datasets/{dataset_id}"): {"data": [{"id": "new", "text": "a", "label": "b", "spans": [{"start": 0, "end": 1, "label": "L"}]}]},
        ("PATCH", "/datasets/{dataset_id}"): {"description": "d", "fields": [{"name": "id", "data_type": "text"}]},
        ("PATCH", "/datasets/{dataset_id}/datapoints"): {"data": [{"id": ds["datapoint_ids"][0], "data": {"id": "0", "text": "b"}}]},
        ("POST", "/datasets/{dataset_id}/datapoints/delete"): {"ids": [ds["datapoint_ids"][1]]},
        ("POST", "/projects"): {"name": "y", "inputs": [{"name": "t", "data_type": "text", "data_sources": [{"field_id": fid["text"]}]}],
                                "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "a"}]}]},
        ("PATCH", "/projects/{project_id}"): {"guidelines": "g", "users": ["a@example.com"]},
        ("POST", "/projects/{project_id}/annotations"): {"datapoint_id": ds["datapoint_ids"][2], "output": "label", "value": "a"},
    }
    rig = {"srv": srv, "s": s, "ops": ops, "ids": ids, "valid": valid, "tried": 0, "bad": []}
    try:
        yield rig
    finally:
        srv.close()


def json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                        st.text(max_size=20), st.sampled_from(["", "\x00", "\ud7ff", "𝔘𝔫𝔦", "a" * 300]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                        max_leaves=12)


def mutate(data: st.DataObject, value):
    """A valid body with one value somewhere replaced by junk, a key dropped or added."""
    value = json.loads(json.dumps(value))
    paths, stack = [], [((), value)]
    while stack:
        path, v = stack.pop()
        paths.append(path)
        if isinstance(v, dict):
            stack += [((*path, k), x) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [((*path, i), x) for i, x in enumerate(v)]
    path = data.draw(st.sampled_from(paths))
    if not path:
        return data.draw(json_values())
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    op = data.draw(st.sampled_from(["junk", "drop", "add"]))
    if op == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "add" and isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=10))] = data.draw(json_values())
    else:
        parent[path[-1]] = data.draw(json_values())
    return value


ADVERSARIAL = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"data": [' + b'{"text": ' * 3000 + b'"x"' + b"}" * 3000 + b"]}",
    b'{"name": ' + b"9" * 5000 + b', "fields": []}',
    b'{"data": [{"text": 1e999}]}',
    b'{"data": [{"text": "\\ud800"}]}',
    b"\xef\xbb\xbf{}",
    '{"data": []}'.encode("utf-16"),
    b'{"data": [{' + b",".join(b'"k%d": 1' % i for i in range(20_000)) + b"}]}",
    b'{"data": [' + b",".join([b'{"text": "a"}'] * 10_001) + b"]}",
    b'{"ids": [' + b",".join([b"1"] * 10_001) + b"]}",
    b'{"data": [{"id": "z", "spans": [{"start": -1, "end": 99999999999999999999, "label": ""}]}]}',
    b"\x00" * 1000,
    b'{"a":1}' * 1000,
    b"null", b"true", b"[]", b"{}", b'""', b"0", b"{", b"", b" ",
]


@st.composite
def body_request(draw, rig):
    writes = [op for op in rig["ops"] if op[0] != "GET"]
    method, template = draw(st.sampled_from(writes))
    kind = draw(st.sampled_from(["mutated", "mutated", "junk json", "bytes", "adversarial", "truncated"]))
    valid = rig["valid"].get((method, template), {})
    if kind == "mutated":
        body = json.dumps(mutate(_DataShim(draw), valid)).encode()
    elif kind == "junk json":
        body = json.dumps(draw(json_values())).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "truncated":
        full = json.dumps(valid).encode()
        body = full[: draw(st.integers(0, max(0, len(full) - 1)))]
    else:
        body = draw(st.sampled_from(ADVERSARIAL))
    ctype = draw(st.sampled_from(["application/json"] * 6 + ["application/json; charset=latin-1", "text/plain",
                                                              "application/problem+json", None]))
    return method, template, kind, body, ctype


class _DataShim:
    """Lets :func:`mutate` draw inside a composite strategy."""

    def __init__(self, draw):
        self.draw = draw


def check(rig, response: requests.Response, what: str) -> None:
    rig["tried"] += 1
    problems = []
    if response.status_code >= 500:
        problems.append(f"{response.status_code}")
    if "Traceback" in response.text or 'File "' in response.text:
        problems.append("a traceback in the answer")
    if response.status_code >= 400:
        try:
            assert "detail" in response.json()
        except (ValueError, AssertionError, TypeError):
            problems.append(f"a {response.status_code} without a JSON detail: {response.text[:100]!r}")
    if problems:
        rig["bad"].append(f"{what}: {', '.join(problems)}")
    assert not problems, f"{what}: {problems}: {response.text[:300]}"


def test_hostile_bodies_are_4xx_never_5xx(rig, record):
    srv, s, ids = rig["srv"], rig["s"], rig["ids"]
    start = rig["tried"]

    @settings(max_examples=EXAMPLES, **FUZZ)
    @given(req=body_request(rig))
    def run(req):
        method, template, kind, body, ctype = req
        headers = {"X-API-KEY": srv.api_key, "Idempotency-Key": uuid.uuid4().hex}
        if ctype:
            headers["Content-Type"] = ctype
        r = s.request(method, srv.url + template.format(**ids), data=body, headers=headers, timeout=60)
        check(rig, r, f"{method} {template} ({kind}, {len(body)} bytes, {ctype})")

    try:
        run()
    finally:
        record("R4", cases=rig["tried"] - start, passed=rig["tried"] - start - len(rig["bad"]), requests="hostile bodies")


HOSTILE_IDS = ["0", "-1", "99999999999999999999", "1e3", "0x10", "%00", "..", "1;DROP TABLE datasets", "１", " 1"]
HOSTILE_HEADERS = [{"If-Match": "not-a-version"}, {"If-Match": '"-5"'}, {"If-Match": "9" * 40},
                   {"Idempotency-Key": "k" * 201}, {"Idempotency-Key": "\u00e9\u00e8"},
                   {"X-API-KEY": "x" * 10_000}, {"Accept": "text/html"}, {}]


@st.composite
def query_request(draw, rig):
    method, template = draw(st.sampled_from(rig["ops"]))
    ids = dict(rig["ids"])
    if "{" in template and draw(st.booleans()):
        name = re.search(r"{(\w+)}", template)[1]
        ids[name] = draw(st.sampled_from(HOSTILE_IDS))
    params = draw(st.dictionaries(
        st.sampled_from(["limit", "cursor", "name", "buckets", "bucket", "key", "fields", "force", "x"]),
        st.one_of(st.sampled_from(["-1", "0", "1001", "3", "65536", "131072", "abc", "", "true", "nope", "a,b,,", "\x00",
                                   "eyJub3QiOiAiYSBjdXJzb3IifQ", "ZZZZ", "9" * 30]), st.text(max_size=12)),
        max_size=3))
    headers = draw(st.sampled_from(HOSTILE_HEADERS))
    return method, template, ids, params, headers


def test_hostile_queries_ids_and_headers_never_5xx(rig, record):
    srv, s = rig["srv"], rig["s"]
    start, bad_before = rig["tried"], len(rig["bad"])

    @settings(max_examples=EXAMPLES, **FUZZ)
    @given(req=query_request(rig))
    def run(req):
        method, template, ids, params, extra = req
        headers = {"X-API-KEY": srv.api_key, **extra}
        url = srv.url + template.format(**ids)
        try:
            r = s.request(method, url, params=params, headers=headers, timeout=60,
                          data=b"{}" if method != "GET" else None)
        except requests.exceptions.InvalidHeader:
            return  # requests itself refuses to send it
        check(rig, r, f"{method} {template} {params} {extra}")

    try:
        run()
    finally:
        record("R4", cases=rig["tried"] - start, passed=rig["tried"] - start - (len(rig["bad"]) - bad_before),
               requests="hostile queries, ids, headers")


def test_the_server_counted_no_5xx(rig, record):
    """The server's own counts agree: not one answer of the module was a 5xx."""
    stats = rig["srv"].stats()
    errors = {s: n for s, n in stats["by_status"].items() if s.startswith("5")}
    record("R4", cases=stats["total"], passed=stats["total"] - sum(errors.values()),
           requests="all of this module (server's count)", by_status=stats["by_status"])
    assert not errors, stats["by_status"]
    assert stats["total"] >= rig["tried"]
