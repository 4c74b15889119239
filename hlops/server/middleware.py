"""The gate every request passes before a route: one pure ASGI middleware, in this order.

1. Open paths (``/health``, ``/openapi.json``, ``/docs``, ``/redoc``), the annotation web
   app (``/app``, ``/app/*``: it signs people in with sessions of its own and never takes an
   API key, see ``hlops/server/web/auth.py``) and, when enabled, the test endpoints
   (``/_test/*``) go straight through, uncounted and never faulted.
2. Test-only: a seeded fault may answer now (phase ``before``) -- the request is not
   processed.
3. ``Content-Length`` over the body limit -> 413 before anything is read; a body without a
   length is counted while it is read (413 as soon as it passes the limit). The limit is
   ``max_body_bytes``, except for the last-applied index (``PUT
   /datasets/{id}/last_applied/index``: raw bytes, ``max_index_bytes``).
4. ``X-API-KEY`` -> organisation (by SHA-256 digest), else 401.
5. Test-only: the per-key rate limit -> 429 with ``Retry-After``.
6. A body that is not JSON (by ``Content-Type``) -> 415; the index's must be
   ``application/octet-stream`` (even an empty one).
7. ``Idempotency-Key`` on a write (not on a POST that only reads, ``…/digest/rows`` and
   ``…/digest/keys``): a stored answer of the same method and path is replayed;
   the same key with another method or path is a 422; a twin still in flight is a 409.
8. The route runs. Test-only: with a fault of phase ``after``, its answer is dropped and
   the fault status sent instead (the write *is* committed: a lost response).

Then the request is counted (``/_test/stats``) and logged (``--request-log``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match

from hlops.server.config import Settings
from hlops.server.faults import Fault, FaultInjector, RateLimiter, RequestLog, Stats
from hlops.server.store import Idem, Store

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
WEB_APP = "/app"  # the web app's own auth (sessions), not the API key
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_IDEMPOTENCY_KEY = 200
READ_POSTS = ("/digest/rows", "/digest/keys")  # the ends of the paths of POSTs that only read
OCTETS = "application/octet-stream"
_INDEX_PATH = re.compile(r"^/datasets/[^/]+/last_applied/index$")


def is_read_post(method: str, path: str) -> bool:
    """A POST that only reads (``/datasets/{id}/digest/rows``, ``.../digest/keys``): no
    Idempotency-Key record."""
    return method == "POST" and path.endswith(READ_POSTS)


def is_index_put(method: str, path: str) -> bool:
    """``PUT /datasets/{id}/last_applied/index``: a body of raw bytes, with a limit of its
    own (``max_index_bytes``)."""
    return method == "PUT" and _INDEX_PATH.match(path) is not None


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The body limit of a request: the last-applied index's own, else the global one."""
    return settings.max_index_bytes if is_index_put(method, path) else settings.max_body_bytes


def too_large(limit: int) -> str:
    return f"request body larger than {limit:,} bytes"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, too_large(limit))


@dataclass
class GateState:
    """What the gate needs, shared with the test endpoints (which reconfigure it)."""

    settings: Settings
    store: Store
    orgs: dict[str, int]  # key digest -> org id
    injector: FaultInjector
    limiter: RateLimiter
    stats: Stats = field(default_factory=Stats)
    log: RequestLog = field(default_factory=lambda: RequestLog(None))
    inflight: set = field(default_factory=set)
    inflight_lock: threading.Lock = field(default_factory=threading.Lock)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, list, bytes]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, hdrs, raw


async def _send_response(send: Any, response: tuple[int, list, bytes]) -> None:
    status, headers, body = response
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def fault_response(fault: Fault) -> tuple[int, list, bytes]:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    return _json(fault.status, {"detail": f"injected fault ({fault.status}, test-only)"}, headers)


class Gate:
    def __init__(self, app: Any, state: GateState, routes: Any):
        self.app = app
        self.state = state
        self.routes = routes  # the router's routes, to name the path template of any request

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if (
            path in OPEN_PATHS or path == WEB_APP or path.startswith(WEB_APP + "/")
            or (path.startswith("/_test/") and self.state.settings.test_endpoints)
        ):
            return await self.app(scope, receive, send)
        st = self.state
        method = scope["method"]
        status = 500
        org: int | None = None
        claimed: tuple | None = None
        try:
            headers = _headers(scope)
            fault = st.injector.draw()
            early, org = self._check(scope, headers, fault)
            if early is not None:
                status = early[0]
                await _send_response(send, early)
                return
            key = headers.get("idempotency-key")
            if key is not None and method in WRITE_METHODS and not is_read_post(method, path):
                early, receive = await self._idempotency(scope, receive, org, key, fault)
                if early is not None:
                    status = early[0]
                    await _send_response(send, early)
                    return
                claimed = (org, key)
            scope.setdefault("state", {})["org_id"] = org
            status = await self._run(scope, receive, send, fault)
        finally:
            if claimed is not None:
                with st.inflight_lock:
                    st.inflight.discard(claimed)
            st.stats.record(method, self._template(scope), status)
            st.log.write(org, method, path, status)

    async def _idempotency(self, scope: dict, receive: Any, org: int, key: str, fault: Fault | None) -> tuple[tuple | None, Any]:
        """Step 7. Reads the body (to fingerprint the request: a key reused with another
        body is refused), replays a stored answer, or claims the key for this request.
        Returns ``(early answer or None, the receive callable the route must use)``."""
        st = self.state
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
            return _json(422, {"detail": [{
                "loc": ["header", "Idempotency-Key"],
                "msg": f"an Idempotency-Key is 1-{MAX_IDEMPOTENCY_KEY} printable characters",
                "type": "string_too_long",
            }]}), receive
        limit = body_limit(st.settings, scope["method"], scope["path"])
        body = await _read_body(receive, limit)
        if body is None:
            return _json(413, {"detail": too_large(limit)}), receive
        fingerprint = hashlib.sha256(
            b"%s %s?%s\n" % (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b"")) + body
        ).hexdigest()
        replay = await run_in_threadpool(st.store.idem_lookup, org, key)
        if replay is not None:
            return (fault_response(fault) if fault else self._replay(replay, scope["method"], scope["path"], fingerprint)), receive
        with st.inflight_lock:
            if (org, key) in st.inflight:
                return _json(409, {"detail": "a request with this Idempotency-Key is still in progress"}), receive
            st.inflight.add((org, key))
        scope.setdefault("state", {})["idem"] = Idem(key, scope["method"], scope["path"], fingerprint=fingerprint)
        return None, _replayed_body(body, receive)

    def _check(self, scope: dict, headers: dict[str, str], fault: Fault | None) -> tuple[tuple | None, int | None]:
        """Steps 2-6: ``(early answer, None)`` with the answer as ``(status, headers,
        body)``, or ``(None, org id)`` to go on."""
        st = self.state
        if fault is not None and fault.phase == "before":
            return fault_response(fault), None
        method, path = scope["method"], scope["path"]
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _json(400, {"detail": "invalid Content-Length"}), None
            limit = body_limit(st.settings, method, path)
            if int(length) > limit:
                return _json(413, {"detail": too_large(limit)}), None
        key = headers.get("x-api-key")
        if not key:
            return _json(401, {"detail": "missing X-API-KEY header"}), None
        digest = hashlib.sha256(key.encode("latin-1")).hexdigest()  # the header's own bytes
        org = st.orgs.get(digest)
        if org is None:
            return _json(401, {"detail": "unknown API key"}), None
        wait = st.limiter.check(digest)
        if wait is not None:
            return _json(429, {"detail": "rate limit exceeded (test-only limit)"}, {"Retry-After": str(wait)}), None
        if is_index_put(method, path):
            if _media_type(headers, "") != OCTETS:
                return _json(415, {"detail": f"the body must be raw bytes (Content-Type: {OCTETS})"}), None
        elif method in BODY_METHODS and (length not in (None, "0") or "transfer-encoding" in headers):
            ctype = _media_type(headers, "application/json")
            if ctype != "application/json" and not ctype.endswith("+json"):
                return _json(415, {"detail": "the body must be JSON (Content-Type: application/json)"}), None
        return None, org

    async def _run(self, scope: dict, receive: Any, send: Any, fault: Fault | None) -> int:
        """Run the route with the body counted; answer the fault instead when it is of
        phase ``after``. Returns the status sent."""
        limit = body_limit(self.state.settings, scope["method"], scope["path"])
        seen = 0

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        sent = {"status": 500}

        async def observed_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            if fault is None:
                await send(message)

        await self.app(scope, counted_receive, observed_send)
        if fault is not None:  # phase "after": the work is done and committed; lose the answer
            await _send_response(send, fault_response(fault))
            return fault.status
        return sent["status"]

    @staticmethod
    def _replay(replay: Any, method: str, path: str, fingerprint: str) -> tuple[int, list, bytes]:
        if (replay.method, replay.path) != (method, path):
            why = f"was used for {replay.method} {replay.path}"
        elif replay.fingerprint and replay.fingerprint != fingerprint:
            why = "was used for a request with another body or query"
        else:
            why = ""
        if why:
            return _json(422, {"detail": [{
                "loc": ["header", "Idempotency-Key"],
                "msg": f"this Idempotency-Key {why}; send a new key for a new request",
                "type": "idempotency_key_reused",
            }]})
        extra = {"Idempotency-Replayed": "true"}
        if replay.etag:
            extra["ETag"] = replay.etag
        if replay.status == 204:  # no content, no content headers
            return 204, [(k.encode(), v.encode()) for k, v in extra.items()], b""
        return _json(replay.status, replay.body, extra)

    def _template(self, scope: dict) -> str:
        route = scope.get("route")
        if isinstance(getattr(route, "path", None), str):
            return route.path
        for candidate in self.routes:
            path = getattr(candidate, "path", None)
            if not isinstance(path, str):  # e.g. a lazily included router: nothing to name
                continue
            try:
                match, _ = candidate.matches(scope)
            except Exception:  # noqa: BLE001 - a route that cannot match this scope
                continue
            if match == Match.FULL:
                return path
        return "<unmatched>"


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or ``None`` once it passes ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replayed_body(body: bytes, receive: Any) -> Any:
    """A receive callable giving ``body`` once, then deferring to the real one."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _media_type(headers: dict[str, str], default: str) -> str:
    """The request's ``Content-Type`` without parameters, lower case (``default`` if none)."""
    return headers.get("content-type", default).split(";", 1)[0].strip().lower()


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", ()):
        out[k.decode("latin-1").lower()] = v.decode("latin-1")
    return out
