"""The only module that speaks HTTP: session, auth, retries, pagination, error mapping.

Retry policy (urllib3's ``Retry`` on the requests session does the retrying — backoff,
``Retry-After``, counting — no hand-written loop):

- ``429`` is retried for every method, after the ``Retry-After`` the server sent: the server
  guarantees a 429 was not processed.
- ``5xx`` and lost responses are retried for reads, and for writes that carry an
  ``Idempotency-Key`` (every write this client sends does): the server replays the first
  answer of a key instead of applying the write twice.
- Creating a named resource (``POST /datasets``, ``POST /projects``) is the exception: it is
  retried by urllib3 only on 429 and on connection errors (the request never left). Any other
  failure surfaces as :class:`AmbiguousCreate`, and the caller first looks the name up before
  sending it again — a create is never repeated blind.

- Connection errors are retried with the full budget once the server has answered once
  (a server restarting under an apply is waited for), but only ``first_contact_retries``
  times before that: a wrong URL or a server that is not running is reported in about a
  second, not after half a minute of back-off.

The API key lives only in the session headers; it is never put in an error message, a log
line or a ``repr``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hlops import __version__
from hlops.errors import (
    ApiError,
    AuthError,
    ConflictError,
    Interrupted,
    NotFoundError,
    PreconditionFailed,
    RateLimited,
    TransportError,
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
PAGE_SIZE = 1000


class AmbiguousCreate(TransportError):
    """A create whose outcome is unknown (5xx or a lost response): look the name up first."""


class _BudgetAdapter(HTTPAdapter):
    """Retries with a small connection budget until the server first answers (any status),
    then with the full one (see the module docstring)."""

    def __init__(self, first: Retry, full: Retry, reached: threading.Event, **kwargs: Any):
        super().__init__(max_retries=first, **kwargs)
        self._first, self._full, self._reached = first, full, reached

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.max_retries = self._full if self._reached.is_set() else self._first
        response = super().send(request, **kwargs)
        self._reached.set()
        return response


@dataclass
class ClientOptions:
    timeout: tuple[float, float] = (5.0, 300.0)  # connect, read
    retries: int = 8
    first_contact_retries: int = 2  # connection retries until the server has answered once
    backoff_factor: float = 0.2
    backoff_max: float = 10.0
    pool_size: int = 16


@dataclass
class CallCounter:
    """Counts logical calls (one per request this client made, retries not included)."""

    total: int = 0
    writes: int = 0
    bytes_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, size: int) -> None:
        with self._lock:
            self.total += 1
            self.bytes_sent += size
            if method != "GET":
                self.writes += 1


class Client:
    """A thin, thread-safe client of the Humanloop API (and its hlops extensions)."""

    def __init__(self, base_url: str, api_key: str, options: ClientOptions | None = None):
        if not api_key:
            raise AuthError(401, "no API key: set HLOPS_API_KEY, pass --api-key, or use --local")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.options = options or ClientOptions()
        self.calls = CallCounter()
        self._local = threading.local()
        self._stopped = threading.Event()
        self._reached = threading.Event()  # the server has answered (any status) at least once

    def __repr__(self) -> str:  # never shows the key
        return f"Client({self.base_url!r})"

    # ------------------------------------------------------------------ sessions

    def _session(self, create: bool) -> requests.Session:
        name = "create_session" if create else "session"
        session = getattr(self._local, name, None)
        if session is None:
            session = self._new_session(create)
            setattr(self._local, name, session)
        return session

    def _new_session(self, create: bool) -> requests.Session:
        session = requests.Session()
        adapter = _BudgetAdapter(
            first=self._retry(create, self.options.first_contact_retries),
            full=self._retry(create, self.options.retries),
            reached=self._reached, pool_connections=1, pool_maxsize=self.options.pool_size,
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {
                "X-API-KEY": self._api_key,
                "Accept": "application/json",
                "User-Agent": f"hlops/{__version__}",
            }
        )
        return session

    def _retry(self, create: bool, connect: int) -> Retry:
        opts = self.options
        return Retry(
            total=opts.retries,
            connect=connect,
            read=0 if create else opts.retries,
            status=opts.retries,
            other=0,
            allowed_methods=None,  # every method: see the module docstring for why it's safe
            status_forcelist={429} if create else RETRYABLE_STATUSES,
            backoff_factor=opts.backoff_factor,
            backoff_max=opts.backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,
        )

    def stop(self) -> None:
        """Send no new call from now on (calls already sent finish): an apply's first Ctrl-C.
        Every later call raises :class:`~hlops.errors.Interrupted` before it is sent."""
        self._stopped.set()

    def _check_stopped(self, method: str, path: str) -> None:
        if self._stopped.is_set():
            raise Interrupted(f"{method} {path}: not sent, interrupted")

    # ------------------------------------------------------------------ calls

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        if_match: int | None = None,
        create: bool = False,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one logical call and return the decoded JSON answer (``None`` for 204).

        Raises the :class:`~hlops.errors.ApiError` subclass of the status, or
        :class:`~hlops.errors.TransportError`.
        """
        self._check_stopped(method, path)
        headers = {}
        data = raw_body
        if body is not None:
            data = orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        if method != "GET":
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        if if_match is not None:
            headers["If-Match"] = str(if_match)
        self.calls.add(method, len(data or b""))
        response = _sent(lambda: self._session(create).request(
            method, self.base_url + path, params=params, data=data, headers=headers,
            timeout=self.options.timeout,
        ), method, path, self.base_url, create)
        return self._decode(response, method, path, create)

    @staticmethod
    def _decode(response: requests.Response, method: str, path: str, create: bool) -> Any:
        status = response.status_code
        if status == 204:
            return None
        try:
            payload = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            payload = None
        if status < 400:
            return payload
        detail = payload.get("detail") if isinstance(payload, dict) else response.reason
        if create and status >= 500:
            raise AmbiguousCreate(f"{method} {path}: HTTP {status}: {detail}")
        raise _error_class(status)(status, detail, method, path)

    def stream_lines(self, path: str, **params: Any) -> Iterator[bytes]:
        """A GET whose answer is read as it arrives (``GET /projects/{id}/export?format=jsonl``):
        yields each non-empty line. An error status raises as :meth:`request` does; an answer
        cut off midway raises :class:`~hlops.errors.TransportError`."""
        self._check_stopped("GET", path)
        self.calls.add("GET", 0)
        response = _sent(lambda: self._session(False).get(
            self.base_url + path, params=params or None, timeout=self.options.timeout, stream=True,
        ), "GET", path, self.base_url)
        with response:
            if response.status_code >= 400:
                self._decode(response, "GET", path, False)
            try:
                for line in response.iter_lines(chunk_size=256 * 1024, delimiter=b"\n"):
                    if line:
                        yield line
            except (requests.exceptions.RequestException, OSError) as exc:
                raise TransportError(f"GET {path}: the answer was cut off ({_reason(exc)})") from None

    def put_bytes(self, path: str, data: Any) -> None:
        """``PUT`` a binary body (``application/octet-stream``; bytes, or a file-like object
        with ``len``, ``seek`` and ``tell``): the last-applied index."""
        self._check_stopped("PUT", path)
        self.calls.add("PUT", len(data))
        # no Idempotency-Key: a PUT of the same bytes again leaves the same state (and the
        # server would read and hash the whole body once more to fingerprint it)
        headers = {"Content-Type": "application/octet-stream"}
        response = _sent(lambda: self._session(False).put(
            self.base_url + path, data=data, headers=headers, timeout=self.options.timeout,
        ), "PUT", path, self.base_url)
        self._decode(response, "PUT", path, False)

    def get_bytes(self, path: str) -> bytearray | None:
        """A binary answer whole (see :meth:`download`); None for a 404."""
        found = self.download(path)
        return found.buffer if found.wait(None) else None

    def download(self, path: str, start: int = 0, stop: int | None = None) -> Download:
        """Start a binary ``GET`` read by a background thread into one buffer of its
        ``Content-Length`` (no copy of tens of MB joined from chunks): the first bytes can be
        used while the rest arrives (:meth:`Download.wait`). With ``start``/``stop``: those
        bytes only (``Range``; the server must answer 206 with them)."""
        self._check_stopped("GET", path)
        self.calls.add("GET", 0)
        ranged = (start, stop) if start or stop is not None else None
        return Download(self._session(False), self.base_url, path, self.options.timeout, ranged)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def paginate(self, path: str, limit: int = PAGE_SIZE, **params: Any) -> Iterator[dict]:
        """Every item of a cursor-paginated list, page by page."""
        cursor = None
        while True:
            query = {"limit": limit, **params}
            if cursor:
                query["cursor"] = cursor
            page = self.request("GET", path, params=query)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


class Download:
    """A binary answer arriving in a background thread (:meth:`Client.download`).

    :meth:`wait` blocks until the first ``n`` bytes are in :attr:`buffer` (preallocated,
    never resized: views of what arrived stay valid). A 404 is an answer of no bytes
    (:attr:`missing`); another error status, or an answer cut off, raises from
    :meth:`wait`."""

    PIECE = 1 << 20

    def __init__(self, session: requests.Session, base_url: str, path: str, timeout: Any,
                 ranged: tuple[int, int | None] | None = None):
        self.path = path
        self._headers = {}
        if ranged is not None:
            first, stop = ranged
            self._headers["Range"] = f"bytes={first}-{'' if stop is None else stop - 1}"
        self.buffer = bytearray()
        self.size: int | None = None
        self.missing = False
        self._got = 0
        self._error: BaseException | None = None
        self._cancelled = False
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(session, base_url, timeout),
                                        name="hlops-download", daemon=True)
        self._thread.start()

    def _run(self, session: requests.Session, base_url: str, timeout: Any) -> None:
        path = self.path
        try:
            response = _sent(lambda: session.get(base_url + path, timeout=timeout, stream=True, headers=self._headers),
                             "GET", path, base_url)
            with response:
                if response.status_code == 404:
                    self.missing = True
                    return
                if response.status_code >= 400:
                    Client._decode(response, "GET", path, False)
                if self._headers and response.status_code != 206:  # a server without ranges
                    self.missing = True
                    return
                try:
                    size = int(response.headers.get("Content-Length", ""))
                except ValueError:
                    size = -1
                if size < 0:
                    data = response.content
                    with self._cond:
                        self.buffer, self.size, self._got = bytearray(data), len(data), len(data)
                    return
                with self._cond:
                    self.buffer, self.size = bytearray(size), size
                view = memoryview(self.buffer)
                try:
                    while self._got < size and not self._cancelled:
                        n = response.raw.readinto(view[self._got:self._got + self.PIECE])
                        if not n:
                            break
                        with self._cond:
                            self._got += n
                            self._cond.notify_all()
                except (requests.exceptions.RequestException, OSError) as exc:
                    raise TransportError(f"GET {path}: the answer was cut off ({_reason(exc)})") from None
                if self._got != size and not self._cancelled:
                    raise TransportError(f"GET {path}: the answer was cut off ({self._got:,} of {size:,} bytes)")
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def wait(self, n: int | None) -> bool:
        """Whether the first ``n`` bytes (None: all) arrived; False for a 404 or a shorter
        answer. Raises what the download raised."""
        with self._cond:
            while not self._done and (self.size is None or self._got < (self.size if n is None else n)):
                self._cond.wait()
        if self._error is not None:
            raise self._error
        if self.missing or self.size is None:
            return False
        return self._got >= (self.size if n is None else min(n, self.size)) and (n is None or n <= self.size)

    def cancel(self) -> None:
        """Stop reading (the buffer keeps what arrived)."""
        self._cancelled = True


def _sent(send: Callable[[], requests.Response], method: str, path: str, base_url: str,
          create: bool = False) -> requests.Response:
    """``send()``'s response; a transport failure as :class:`~hlops.errors.TransportError`
    (retries given up, the server unreachable or too slow), or, for a ``create`` that may
    have landed, :class:`~hlops.errors.AmbiguousCreate`."""
    try:
        return send()
    except requests.exceptions.RetryError as exc:
        raise TransportError(f"{method} {path}: gave up after retries ({_reason(exc)})") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        if create:
            raise AmbiguousCreate(f"{method} {path}: {_reason(exc)}") from None
        raise TransportError(f"{method} {path}: cannot reach {base_url} ({_reason(exc)})") from None


def _error_class(status: int) -> type[ApiError]:
    return {
        401: AuthError,
        404: NotFoundError,
        409: ConflictError,
        412: PreconditionFailed,
        429: RateLimited,
    }.get(status, ApiError)


def _reason(exc: Exception) -> str:
    """A short reason for a transport failure (requests' messages repeat the whole URL)."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:200]
