"""`hlops users token EMAIL` and `hlops open PROJECT`, with a server and with --local."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
import requests

from support.cli import REPO, run_hlops
from web_helpers import EXAMPLES, SENTIMENT, csrf_of, project, session, shown_datapoint


@pytest.fixture(scope="module")
def work(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("webcli")
    shutil.copytree(EXAMPLES / "sentiment", root / "sentiment")
    shutil.copytree(REPO / "schema", root.parent / "schema", dirs_exist_ok=True)
    result = run_hlops("apply", "sentiment", "--auto-approve", server=server, cwd=root, env={"HLOPS_HOME": str(root / ".hlops")})
    assert result.code == 0, result
    return root


def test_users_token_prints_a_token_that_signs_in(server, work):
    result = run_hlops("users", "token", "Annotator1@example.com", server=server, cwd=work)
    assert result.code == 0, result
    tok = result.out.strip()
    assert tok.startswith("hlt_") and "\n" not in tok
    assert "Sentiment classification project (annotator)" in result.err and tok not in result.err
    s = session(server, tok)
    assert shown_datapoint(s.get(f"{server.url}/app/projects/{project(server, SENTIMENT)['id']}").text) is not None
    # the client sent an Idempotency-Key, yet no answer holding the token was recorded
    raw = b"".join(p.read_bytes() for p in server.db_path.parent.glob(server.db_path.name + "*"))
    assert tok.encode() not in raw

    result = run_hlops("users", "token", "nobody@example.com", server=server, cwd=work)
    assert result.code == 1 and "no project of this organisation lists that e-mail" in result.err, result
    assert result.out == ""


def test_open_prints_the_project_url(server, work):
    result = run_hlops("open", SENTIMENT, server=server, cwd=work)
    assert result.code == 0, result
    assert result.out.strip() == f"Navigate to {server.url}/app/projects/{project(server, SENTIMENT)['id']}"
    result = run_hlops("open", "No such project", server=server, cwd=work)
    assert result.code == 1 and "no project named 'No such project'" in result.err


def test_open_local_serves_the_page_until_ctrl_c(tmp_path):
    shutil.copytree(EXAMPLES / "sentiment", tmp_path / "sentiment")
    shutil.copytree(REPO / "schema", tmp_path.parent / "schema", dirs_exist_ok=True)
    assert run_hlops("apply", "sentiment", "--local", "--auto-approve", cwd=tmp_path).code == 0
    result = run_hlops("users", "token", "annotator1@example.com", "--local", cwd=tmp_path)
    assert result.code == 0, result
    tok = result.out.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    # SIGINT as a terminal's foreground job has it: a test run started in the background
    # (`cmd &` in a script) ignores SIGINT, and its children would inherit that
    proc = subprocess.Popen([sys.executable, "-m", "hlops", "open", SENTIMENT, "--local"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Navigate to http://127.0.0.1:"), line
        url = line.removeprefix("Navigate to ")
        base = url.split("/app/")[0]
        s = requests.Session()
        page = s.get(base + "/app/sign-in")
        r = s.post(base + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": tok, "next": url.removeprefix(base)})
        assert r.status_code == 200 and r.url == url
        assert shown_datapoint(r.text) is not None  # the warm-started project still has unlabelled ones
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a server behind
            raise
    assert proc.returncode == 0, err
    assert "Stopped." in err


def test_the_python_api_gives_the_same(server, work):
    from hlops import api

    with api.connect(base_url=server.url, api_key=server.api_key) as conn:
        found = api.user_token(conn, "lead@example.com")
        url = api.project_url(conn, SENTIMENT)
    assert found["projects"] == [{"id": project(server, SENTIMENT)["id"], "name": SENTIMENT, "role": "admin"}]
    assert url == f"{server.url}/app/projects/{project(server, SENTIMENT)['id']}"
    session(server, found["token"])
