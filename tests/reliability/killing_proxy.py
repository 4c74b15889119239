"""A loopback HTTP proxy in front of the reference server that sees every call, and can kill.

It relays each request to the server unchanged, counts the answers (one per call, in the
order they come back), and records every exchange (method, path, query, Idempotency-Key,
body digest, status, whether the server replayed it) -- a richer request log than the
server's own, taken on the wire. It can be armed to:

- ``kill(pid, after=k)``: SIGKILL process ``pid`` right after it relayed the answer of call
  ``k`` (``when="after"``; the process is SIGSTOPped before the answer is written, so it
  cannot act on the answer, nor finish and exit 0 when that was its last call), or right after the server answered call ``k`` but *before*
  relaying it (``when="before"``: the server did the work, the client never heard). From then
  on it forwards nothing: a request arriving later is held until the client is dead, so
  with one call in flight at a time the server has seen exactly ``k`` calls.
- ``on_answer``: a callback run after each answer is relayed (R8 kills the *server* with it);
  ``before_forward``: one run before a call is forwarded (R6 races a write with it).

When the server is down the proxy closes the client's connection without an answer, like a
dead server would. ``upstream`` may be changed at any time (a restarted server).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


@dataclass
class Exchange:
    """One call as the proxy saw it. ``n`` is its answer's position (1-based; 0 when no
    answer came back from the server)."""

    n: int
    method: str
    path: str
    query: str
    idempotency_key: str | None
    body_sha: str
    body: bytes = field(repr=False)
    status: int = 0
    replayed: bool = False
    relayed: bool = False
    started: float = 0.0
    answered: float = 0.0
    response: bytes = field(default=b"", repr=False)


class KillingProxy:
    def __init__(self, upstream: str, *, keep_bodies: bool = False):
        self.upstream = upstream.rstrip("/")
        self.keep_bodies = keep_bodies  # keep request bodies and answers (R8 reads them)
        self.exchanges: list[Exchange] = []
        self.answers = 0
        self.lock = threading.Lock()
        self._kill: tuple[int, int, str] | None = None  # (pid, k, when)
        self.killed_at: int | None = None
        self.frozen = threading.Event()  # set once armed and k answers came back: hold the rest
        self.on_answer: Callable[[Exchange], None] | None = None
        self.before_forward: Callable[[Exchange], None] | None = None
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.forwarding = 0  # calls forwarded whose answer has not come back yet
        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="killing-proxy", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control

    def arm(self, pid: int, k: int, when: str = "after") -> None:
        """SIGKILL ``pid`` at answer ``k`` (``when``: ``after`` or ``before`` relaying it)."""
        assert when in ("after", "before")
        with self.lock:
            self._kill = (pid, k, when)
            self.killed_at = None
            self.frozen.clear()

    def reset(self) -> None:
        with self.lock:
            self.exchanges = []
            self.answers = 0
            self._kill = None
            self.killed_at = None
            self.frozen.clear()
            self.on_answer = None
            self.before_forward = None

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every call already forwarded has its answer (a killed client's last
        calls may still be running in the server: let them finish before the next run)."""
        deadline = time.monotonic() + timeout
        while self.forwarding and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.frozen.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> KillingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the log

    def calls(self, answered_only: bool = True) -> list[Exchange]:
        with self.lock:
            return [x for x in self.exchanges if x.n or not answered_only]

    def _kill_now(self, pid: int, n: int) -> None:
        self.killed_at = n
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client killed mid-answer (broken pipe, reset) is what this proxy is for: no
        traceback on stderr (in-process runs of hlops would capture it as theirs)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: KillingProxy

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        target = self.owner.upstream
        conn = getattr(self, "_conn", None)
        if conn is None or getattr(self, "_conn_target", None) != target:
            if conn is not None:
                conn.close()
            parts = urlsplit(target)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
            self._conn, self._conn_target = conn, target
        return conn

    def _drop_upstream(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
        self._conn = None

    def _relay(self) -> None:
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        ex = Exchange(0, self.command, path, query, self.headers.get("Idempotency-Key"),
                      hashlib.sha256(body).hexdigest(), body if owner.keep_bodies else b"",
                      started=time.monotonic())
        with owner.lock:
            owner.exchanges.append(ex)
        if owner.frozen.is_set():
            self._hold()
            return
        hook = owner.before_forward
        if hook is not None:
            hook(ex)  # e.g. change the server's state just before this call reaches it
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        with owner.lock:
            owner.forwarding += 1
        try:
            conn = self._upstream()
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self._drop_upstream()
            self.close_connection = True  # like a dead server: no answer at all
            return
        finally:
            with owner.lock:
                owner.forwarding -= 1
        kill = None
        with owner.lock:
            owner.answers += 1
            ex.n = owner.answers
            ex.status = resp.status
            ex.replayed = resp.getheader("Idempotency-Replayed") == "true"
            ex.answered = time.monotonic()
            if owner.keep_bodies:
                ex.response = data
            if owner._kill is not None and not owner.frozen.is_set() and ex.n >= owner._kill[1]:
                owner.frozen.set()
                kill = owner._kill
        if kill is not None and kill[2] == "before":
            owner._kill_now(kill[0], ex.n)
            self.close_connection = True
            return
        if kill is not None:
            # Stopped before the answer is relayed, killed after: the client gets the answer
            # and does nothing more with it. Killed only after relaying, a client whose last
            # call this was could finish and exit 0 first (a race R1 lost at its last call).
            _signal(kill[0], signal.SIGSTOP)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        ex.relayed = True
        if kill is not None:
            owner._kill_now(kill[0], ex.n)
            self.close_connection = True
            return
        callback = owner.on_answer
        if callback is not None:
            callback(ex)

    def _hold(self) -> None:
        """A call after the kill point: never forwarded. Wait for the client to die (its
        socket closes), at most a few seconds, then drop the connection."""
        self.close_connection = True
        time.sleep(0.05)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay
