"""The web app's guards, through plain HTTP: CSRF on every form, organisations apart,
the API key never a way into the pages (nor a session into the API), tokens stored hashed,
leases, and bad form values refused with nothing written."""

from __future__ import annotations

import hashlib
import html
import sqlite3
import time

import pytest
import requests

from hlops.server.sqlite_store import SqliteStore
from hlops.server.web.sqlite_web import SqliteWeb
from support.cli import run_hlops
from web_helpers import (
    ENTITIES, SENTIMENT, apply_examples, csrf_of, export, project, session, shown_datapoint, token,
)

ANNOTATOR = "annotator1@example.com"


@pytest.fixture(scope="module")
def work(server, tmp_path_factory):
    root = apply_examples(server, tmp_path_factory.mktemp("websec"))
    # the same sentiment project in organisation B, with the same people
    other = tmp_path_factory.mktemp("websec-b")
    result = run_hlops("apply", str(root / "sentiment"), "--auto-approve", cwd=other,
                       env={"HLOPS_BASE_URL": server.url, "HLOPS_API_KEY": server.other_key,
                            "HLOPS_HOME": str(other / ".hlops")})
    assert result.code == 0, result
    return root


def label_page(s: requests.Session, server, pid: int) -> requests.Response:
    return s.get(f"{server.url}/app/projects/{pid}")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(server, work):
    pid = project(server, SENTIMENT)["id"]
    s = session(server, token(server, ANNOTATOR))
    page = label_page(s, server, pid)
    dp = shown_datapoint(page.text)
    before = export(server, pid)
    for fields in ({}, {"csrf": "forged"}, {"csrf": csrf_of(page.text) + "x"}):
        r = s.post(f"{server.url}/app/projects/{pid}/annotate", data={**fields, "datapoint_id": dp, "o:sentiment": "positive"},
                   allow_redirects=False)
        assert r.status_code == 403, r.text
        assert "did not come from this site" in r.text
    for path in ("skip", "undo"):
        assert s.post(f"{server.url}/app/projects/{pid}/{path}", data={"datapoint_id": dp}).status_code == 403
    assert s.post(f"{server.url}/app/sign-out", data={"csrf": ""}).status_code == 403
    assert export(server, pid) == before
    assert label_page(s, server, pid).status_code == 200  # still signed in
    # a sign-in form posted from elsewhere (no double-submit cookie) is refused too
    r = requests.post(server.url + "/app/sign-in", data={"csrf": "x", "token": token(server, ANNOTATOR)}, allow_redirects=False)
    assert r.status_code == 403
    # with its token, the same form is saved
    r = s.post(f"{server.url}/app/projects/{pid}/annotate",
               data={"csrf": csrf_of(page.text), "datapoint_id": dp, "o:sentiment": "positive"}, allow_redirects=False)
    assert r.status_code == 303
    assert export(server, pid)[dp] == {"sentiment": "positive"}


def test_a_token_of_org_a_opens_nothing_of_org_b(server, work):
    a, b = project(server, SENTIMENT), project(server, SENTIMENT, other=True)
    assert a["id"] != b["id"]
    s = session(server, token(server, ANNOTATOR))
    listed = s.get(server.url + "/app/projects").text
    assert f'href="/app/projects/{a["id"]}"' in listed and f'href="/app/projects/{b["id"]}"' not in listed
    for path in (f"/app/projects/{b['id']}", f"/app/projects/{b['id']}/progress"):
        assert s.get(server.url + path).status_code == 404
    csrf = csrf_of(label_page(s, server, a["id"]).text)
    rows = server.call("GET", f"/projects/{b['id']}/export", other=True).json()
    r = s.post(f"{server.url}/app/projects/{b['id']}/annotate", data={"csrf": csrf, "datapoint_id": 1, "o:sentiment": "positive"})
    assert r.status_code == 404
    assert server.call("GET", f"/projects/{b['id']}/export", other=True).json() == rows
    # org B's key cannot issue a token for an e-mail only org A lists
    r = server.call("POST", "/users/tokens", json={"email": "ner-owner@example.com"}, other=True)
    assert r.status_code == 404
    # and org B's token for the same e-mail sees org B's project only
    sb = session(server, token(server, ANNOTATOR, other=True))
    assert sb.get(f"{server.url}/app/projects/{a['id']}").status_code == 404
    assert sb.get(f"{server.url}/app/projects/{b['id']}").status_code == 200


def test_the_api_key_never_opens_a_page_and_a_session_never_the_api(server, work):
    pid = project(server, SENTIMENT)["id"]
    r = requests.get(f"{server.url}/app/projects/{pid}", headers={"X-API-KEY": server.api_key}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/app/sign-in")
    page = requests.get(server.url + "/app/sign-in")
    r = requests.post(server.url + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": server.api_key},
                      cookies=page.cookies, allow_redirects=False)
    assert r.status_code == 401
    s = session(server, token(server, ANNOTATOR))
    assert s.get(f"{server.url}/projects/{pid}").status_code == 401


def test_cookies_tokens_and_rotation(server, work):
    first = token(server, ANNOTATOR)
    page = requests.get(server.url + "/app/sign-in")
    r = requests.post(server.url + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": first},
                      cookies=page.cookies, allow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/app" in cookie
    second = token(server, ANNOTATOR)  # replaces the first
    page = requests.get(server.url + "/app/sign-in")
    r = requests.post(server.url + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": first},
                      cookies=page.cookies, allow_redirects=False)
    assert r.status_code == 401 and "not valid" in r.text
    session(server, second)
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as con:
        digests = {row[0] for row in con.execute("SELECT digest FROM web_tokens")}
    assert hashlib.sha256(second.encode()).hexdigest() in digests
    raw = b"".join(p.read_bytes() for p in server.db_path.parent.glob(server.db_path.name + "*"))
    assert second.encode() not in raw and first.encode() not in raw


def test_two_annotators_never_get_the_same_datapoint(server, work):
    pid = project(server, ENTITIES)["id"]
    one = session(server, token(server, "ner-owner@example.com"))
    two = session(server, token(server, "linguist@example.com"))
    a = shown_datapoint(label_page(one, server, pid).text)
    b = shown_datapoint(label_page(two, server, pid).text)
    assert a is not None and b is not None and a != b
    assert shown_datapoint(label_page(one, server, pid).text) == a  # the lease holds on reload
    r = two.get(f"{server.url}/app/projects/{pid}", params={"datapoint": a})
    assert r.status_code == 409 and "Someone else" in r.text


def test_spans_the_api_refuses_are_refused_by_the_form_too(server, work):
    pid = project(server, ENTITIES)["id"]
    s = session(server, token(server, "ner-owner@example.com"))
    page = label_page(s, server, pid)
    dp = shown_datapoint(page.text)
    before = export(server, pid)
    for spans, why in (('[{"start": 3, "end": 3, "label": "ORG"}]', "start < end"),
                       ('[{"start": 0, "end": 100000, "label": "ORG"}]', "past the end"),
                       ('[{"start": 0, "end": 2, "label": ""}]', "label"),
                       ("not json", "could not be read")):
        r = s.post(f"{server.url}/app/projects/{pid}/annotate",
                   data={"csrf": csrf_of(page.text), "datapoint_id": dp, "o:entities": spans}, allow_redirects=False)
        assert r.status_code == 422 and why in html.unescape(r.text), (spans, r.text[-600:])
    assert export(server, pid) == before


def test_leases_expire_and_belong_to_one_person(tmp_path):
    store = SqliteStore(tmp_path / "web.db")
    try:
        web = SqliteWeb(store)
        org = store.ensure_orgs({"k" * 64: "org"})["k" * 64]
        r = store.create_dataset(org, {"name": "d", "fields": [{"name": "t", "data_type": "text"}]}, [], None)
        fid = r["fields"][0]["id"]
        p = store.create_project(org, {"name": "p", "inputs": [{"name": "t", "data_type": "text", "data_sources": [{"field_id": fid}]}],
                                       "outputs": [{"name": "o", "task_type": "classification", "labels": [{"name": "x"}]}]}, None)
        assert web.take_lease(p["id"], 7, "a@x", 0.2)
        assert not web.take_lease(p["id"], 7, "b@x", 0.2)
        assert web.leased_by_others(p["id"], "b@x") == {7}
        assert web.take_lease(p["id"], 8, "a@x", 0.2) and web.leased_by_others(p["id"], "b@x") == {8}  # one per person
        time.sleep(0.3)
        assert web.take_lease(p["id"], 8, "b@x", 0.2)
    finally:
        store.close()


def test_a_form_with_several_outputs_is_saved_whole_or_not_at_all(server, work):
    r = server.call("POST", "/datasets", json={"name": "two-outputs", "fields": [{"name": "text", "data_type": "text"}],
                                               "data": [{"text": "Ada went to Paris"}]})
    ds = r.json()
    r = server.call("POST", "/projects", json={
        "name": "two outputs",
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": ds["fields"][0]["id"]}]}],
        "outputs": [{"name": "kind", "task_type": "classification", "labels": [{"name": "travel"}, {"name": "other"}]},
                    {"name": "places", "task_type": "sequence_tagging", "input": "text", "labels": [{"name": "LOC"}]}],
        "users": ["two@example.com"],
    })
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    s = session(server, token(server, "two@example.com"))
    page = label_page(s, server, pid)
    dp = shown_datapoint(page.text)
    bad = {"csrf": csrf_of(page.text), "datapoint_id": dp, "o:kind": "travel",
           "o:places": '[{"start": 12, "end": 99, "label": "LOC"}]'}
    r = s.post(f"{server.url}/app/projects/{pid}/annotate", data=bad, allow_redirects=False)
    assert r.status_code == 422 and "past the end" in html.unescape(r.text)
    assert export(server, pid) == {}  # the valid classification was not saved either
    good = {**bad, "o:places": '[{"start": 12, "end": 17, "label": "LOC"}]'}
    assert s.post(f"{server.url}/app/projects/{pid}/annotate", data=good, allow_redirects=False).status_code == 303
    assert export(server, pid) == {dp: {"kind": "travel", "places": [{"start": 12, "end": 17, "label": "LOC"}]}}
