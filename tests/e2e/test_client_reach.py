"""How long the client keeps trying to connect: briefly before the server has ever
answered (a wrong URL or a server that is not running is reported at once), patiently
after (a server restarting under an apply is waited for)."""

from __future__ import annotations

import threading
import time

from hlops.providers.humanloop.client import Client
from support.cli import run_hlops


def test_a_server_that_never_answered_is_reported_at_once(tmp_path):
    (tmp_path / "ds.yaml").write_text("kind: Dataset\nname: reach\nfields: {text: text}\n")
    started = time.monotonic()
    result = run_hlops("plan", str(tmp_path), env={"HLOPS_BASE_URL": "http://127.0.0.1:9", "HLOPS_API_KEY": "k"},
                       cwd=tmp_path)
    seconds = time.monotonic() - started
    assert result.code == 1, result
    assert "cannot reach http://127.0.0.1:9" in result.err and "Traceback" not in result.err
    # the full budget (8 attempts with back-off) took ~34 s; the first-contact one ~1 s
    assert seconds < 15, f"{seconds:.1f} s to report an unreachable server"


def test_a_server_restarting_after_it_answered_is_waited_for(fresh_server):
    client = Client(fresh_server.url, fresh_server.api_key)
    assert client.get("/datasets")["items"] == []  # the server has answered once
    fresh_server.stop()
    port = fresh_server.port
    # back in ~2 s: longer than the first-contact budget, well within the full one
    restart = threading.Timer(1.5, lambda: fresh_server.start(port))
    restart.start()
    try:
        assert client.get("/datasets")["items"] == []
    finally:
        restart.join()
    assert fresh_server.port == port
