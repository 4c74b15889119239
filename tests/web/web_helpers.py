"""Helpers of the web app tests: the examples applied with the real CLI, tokens through the
real API, sessions through the real sign-in form."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import requests

from support.cli import REPO, run_hlops

EXAMPLES = REPO / "examples" / "projects"
SENTIMENT = "Sentiment classification project"
TOPICS = "Ticket topics"
ENTITIES = "Named entities"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def apply_examples(server, root: Path) -> Path:
    """sentiment (with review_existing_annotations: true, so no warm start: the model waits
    for 10 annotations), multilabel and entities, applied with `hlops apply`."""
    for name in ("sentiment", "multilabel", "entities"):
        shutil.copytree(EXAMPLES / name, root / name)
    shutil.copytree(REPO / "schema", root.parent / "schema", dirs_exist_ok=True)
    project = root / "sentiment" / "project.yaml"
    text = project.read_text()
    assert "review_existing_annotations: false" in text
    project.write_text(text.replace("review_existing_annotations: false", "review_existing_annotations: true"))
    result = run_hlops("apply", "sentiment", "multilabel", "entities", "--auto-approve", server=server, cwd=root,
                       env={"HLOPS_HOME": str(root / ".hlops")})
    assert result.code == 0, result
    return root


def project(server, name: str, other: bool = False) -> dict:
    (found,) = server.call("GET", "/projects", params={"name": name}, other=other).json()["items"]
    return found


def token(server, email: str, other: bool = False) -> str:
    r = server.call("POST", "/users/tokens", json={"email": email}, other=other)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def session(server, tok: str) -> requests.Session:
    """A signed-in browser-less session (cookies kept by requests)."""
    s = requests.Session()
    page = s.get(server.url + "/app/sign-in")
    r = s.post(server.url + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": tok}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


def shown_datapoint(html: str) -> int | None:
    found = re.search(r'<span id="datapoint-id">(\d+)</span>', html)
    return int(found.group(1)) if found else None


def train(server) -> None:
    r = server.call("POST", "/_test/train")
    assert r.status_code == 200 and r.json() == {"idle": True}, r.text


def datapoints(server, dataset: str) -> list[dict]:
    (ds,) = server.call("GET", "/datasets", params={"name": dataset}).json()["items"]
    return server.call("GET", f"/datasets/{ds['id']}/datapoints", params={"limit": 1000}).json()["items"]


def export(server, pid: int) -> dict[int, dict]:
    r = server.call("GET", f"/projects/{pid}/export")
    assert r.status_code == 200, r.text
    return {row["datapoint_id"]: row["outputs"] for row in r.json()}
