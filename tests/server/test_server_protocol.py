"""Conventions every call shares: idempotency replay, bad bodies (malformed JSON, wrong
content types, huge bodies) answered with a 4xx -- never a 5xx, never a traceback."""

from __future__ import annotations

import uuid

import pytest
from srv_helpers import assert_validation, create_dataset, field_list, make_rows, raw_request, uniq


def idem(key=None):
    return {"Idempotency-Key": key or uuid.uuid4().hex}


def test_idempotent_create_and_append(server):
    h = idem()
    body = {"name": uniq(), "fields": field_list(), "data": make_rows(2)}
    first = server.call("POST", "/datasets", json=body, headers=h)
    again = server.call("POST", "/datasets", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    assert again.headers.get("Idempotency-Replayed") == "true"
    assert "Idempotency-Replayed" not in first.headers
    ds = first.json()
    h = idem()
    put1 = server.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(3, start=5)}, headers=h)
    put2 = server.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(3, start=5)}, headers=h)
    assert put1.json() == put2.json()
    assert server.call("GET", f"/datasets/{ds['id']}").json()["datapoint_count"] == 5
    # the same key for another call, or with another body, is refused
    r = server.call("PATCH", f"/datasets/{ds['id']}", json={"description": "x"}, headers=h)
    assert_validation(r, ("header", "Idempotency-Key"))
    r = server.call("PUT", f"/datasets/{ds['id']}", json={"data": make_rows(1, start=50)}, headers=h)
    assert "another body" in assert_validation(r, ("header", "Idempotency-Key"))[0]["msg"]
    r = server.call("PUT", f"/datasets/{ds['id']}", params={"x": 1}, json={"data": make_rows(3, start=5)}, headers=h)
    assert r.status_code == 422
    # keys are per organisation
    r = server.call("POST", "/datasets", json=body | {"name": uniq()}, headers=h, other=True)
    assert r.status_code == 201


def test_failed_write_is_not_remembered(server):
    """An error changed nothing, so a retry with the same key runs again."""
    ds = create_dataset(server)
    h = idem()
    bad = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [{"nope": 1}]}, headers=h)
    assert bad.status_code == 422
    good = server.call("PUT", f"/datasets/{ds['id']}", json={"data": [{"text": "x"}]}, headers=h)
    assert good.status_code == 200 and good.json()["datapoint_count"] == 1


def test_idempotency_key_shape(server):
    ds = create_dataset(server)
    r = server.call("PUT", f"/datasets/{ds['id']}", json={"data": []}, headers={"Idempotency-Key": "x" * 201})
    assert r.status_code == 422
    # reads ignore the header
    assert server.call("GET", f"/datasets/{ds['id']}", headers=idem()).status_code == 200


def test_etag_tracks_version(server):
    ds = create_dataset(server)
    r = server.call("PATCH", f"/datasets/{ds['id']}", json={"description": "a"})
    assert r.headers["ETag"] == '"2"' == f'"{r.json()["version"]}"'
    assert server.call("GET", f"/datasets/{ds['id']}").headers["ETag"] == '"2"'


RAW_ROUTES = [
    ("POST", "/datasets"),
    ("PUT", "/datasets/{d}"),
    ("PATCH", "/datasets/{d}/datapoints"),
    ("POST", "/datasets/{d}/datapoints/delete"),
]
MODEL_ROUTES = [
    ("PATCH", "/datasets/{d}"),
    ("POST", "/projects"),
]


@pytest.fixture(scope="module")
def ds_id(server):
    return create_dataset(server)["id"]


@pytest.mark.parametrize("method, path", RAW_ROUTES + MODEL_ROUTES)
@pytest.mark.parametrize("raw", [b"{", b"", b"null", b"[]", b"42", b'"text"', b"{'a': 1}", b"\xff\xfe", b'{"data": [1, 2', b"NaN"])
def test_malformed_bodies_are_4xx(server, ds_id, method, path, raw):
    r = server.call(method, path.format(d=ds_id), data=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert "Traceback" not in r.text
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("method, path", RAW_ROUTES + MODEL_ROUTES)
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"])
def test_wrong_content_type_is_415(server, ds_id, method, path, ctype):
    r = server.call(method, path.format(d=ds_id), data=b'{"data": []}', headers={"Content-Type": ctype})
    assert r.status_code == 415, (r.status_code, r.text)


def test_missing_content_type_reads_json(server, ds_id):
    r = server.call("PUT", f"/datasets/{ds_id}", data=b'{"data": [{"text": "no header"}]}')
    assert r.status_code == 200, r.text


def test_json_variants(server, ds_id):
    r = server.call("PUT", f"/datasets/{ds_id}", data=b'{"data": []}', headers={"Content-Type": "application/vnd.api+json"})
    assert r.status_code == 200
    r = server.call("PUT", f"/datasets/{ds_id}", data='{"data": [{"text": "caf\u00e9 \u2603"}]}'.encode(),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_content_length_over_limit_is_413_before_reading(server, ds_id):
    head = (f"PUT /datasets/{ds_id} HTTP/1.1\r\nHost: x\r\nX-API-KEY: {server.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {33 * 1024 * 1024}")
    status, _ = raw_request(server, head)  # no body sent at all: answered from the headers
    assert status == 413


def test_streamed_body_over_limit_is_413(server, ds_id):
    chunk = b" " * (1024 * 1024)

    def body():
        yield b'{"data": ['
        for _ in range(34):
            yield chunk
        yield b"]}"

    try:
        r = server.call("PUT", f"/datasets/{ds_id}", data=body(), headers={"Content-Type": "application/json"})
    except Exception as exc:  # noqa: BLE001 - the server may close while we still send
        pytest.skip(f"connection closed while sending ({type(exc).__name__})")
    assert r.status_code == 413


def test_big_but_allowed_body(server, ds_id):
    rows = [{"text": "y" * 3000} for _ in range(9000)]  # ~27 MB
    r = server.call("PUT", f"/datasets/{ds_id}", json={"data": rows})
    assert r.status_code == 200 and len(r.json()["datapoint_ids"]) == 9000


@pytest.mark.parametrize("path", ["/datasets/0", "/datasets/-1", "/datasets/abc", "/datasets/99999999999999999999999",
                                  "/projects/9223372036854775808", "/datasets/1.5/digest"])
def test_bad_ids_are_422(server, path):
    r = server.call("GET", path)
    assert r.status_code == 422, r.text


def test_unknown_route_and_method(server):
    assert server.call("GET", "/nowhere").status_code == 404
    assert server.call("POST", "/datasets/1/digest").status_code == 405


def test_health_and_openapi_without_key(server):
    s = server._session
    assert s.get(server.url + "/health").json()["status"] == "ok"
    spec = s.get(server.url + "/openapi.json").json()
    assert "/datasets/{dataset_id}/digest" in spec["paths"]
    assert not any(p.startswith("/_test") for p in spec["paths"])
    put = spec["paths"]["/datasets/{dataset_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DatasetAppend")
    assert "DatasetCreate" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-KEY"


def test_unknown_and_repeated_query_parameters_are_422(server, ds_id):
    typo = server.call("GET", f"/datasets/{ds_id}/datapoints", params={"limt": 5})
    assert typo.status_code == 422, typo.text
    [item] = typo.json()["detail"]
    assert item["loc"] == ["query", "limt"] and item["type"] == "extra_forbidden"
    assert "limit" in item["msg"]
    twice = server.call("GET", "/datasets?name=a&name=b")
    assert twice.status_code == 422, twice.text
    assert twice.json()["detail"][0]["loc"] == ["query", "name"]
    assert server.call("GET", "/datasets", params={"name": "a", "limit": 5}).status_code == 200
