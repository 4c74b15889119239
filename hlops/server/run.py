"""Running the reference server: in the foreground (``hlops serve``) or in a background
thread of the current process (``--local`` embedding, tests).

Both bind the listening socket themselves, so ``port=0`` picks a free port and the bound
URL is known before the first request; the URL is announced only once uvicorn is ready to
accept connections (a callback, and optionally a *ready file* written atomically).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

from hlops.server.app import create_app
from hlops.server.config import Settings, key_map
from hlops.server.sqlite_store import SqliteStore


def open_store(db: str | Path, sync: str = "normal"):
    """The store ``db`` names: a ``postgresql://`` URL is the PostgreSQL store (psycopg,
    the ``postgres`` extra), anything else a SQLite file."""
    if isinstance(db, str) and db.startswith(("postgresql://", "postgres://")):
        try:
            from hlops.server.pg_store import PgStore
        except ImportError:
            from hlops.errors import SettingsError

            raise SettingsError(
                "a PostgreSQL --db needs psycopg: pip install 'hlops[postgres]'"
            ) from None
        return PgStore(db)
    return SqliteStore(db, sync=sync)


def settings_for(keys: Iterable[str | tuple[str, str | None]] = (), settings: Settings | None = None) -> Settings:
    """``settings`` (or the defaults) with ``keys`` added: each a key, or ``(key, org name)``."""
    base = settings or Settings()
    pairs = [(k, None) if isinstance(k, str) else (k[0], k[1]) for k in keys]
    return replace(base, keys={**base.keys, **key_map(pairs)})


class _Server(uvicorn.Server):
    """uvicorn's server, announcing its URL once started (and never installing signal
    handlers when it runs outside the main thread)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]):
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are
    # TCP; without it a response's header and body writes wait on delayed ACKs (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write_ready_file(path: str | Path, url: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _config(app, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,  # the request log (--request-log) is the test-only record
        lifespan="off",
        timeout_keep_alive=30,
        server_header=False,
    )


def serve(
    host: str,
    port: int,
    db: str | Path,
    keys: Iterable[str | tuple[str, str | None]] = (),
    *,
    settings: Settings | None = None,
    sync: str = "normal",
    ready_file: str | Path | None = None,
    announce: Callable[[str], None] = print,
    log_level: str = "warning",
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; the store is closed on the way out.
    ``keys``: API keys (or ``(key, org name)``), each an organisation, added to ``settings``."""
    settings = settings_for(keys, settings)
    store = open_store(db, sync)
    try:
        app = create_app(store, settings)
        sock = bind(host, port)
        url = url_of(sock)

        def ready() -> None:
            # A server process handles 10,000-row batches: fewer young-generation collections.
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 50)
            announce(url)
            if ready_file:
                write_ready_file(ready_file, url)

        server = _Server(_config(app, log_level), ready)
        server.run(sockets=[sock])
    finally:
        store.close()
        if ready_file:
            Path(ready_file).unlink(missing_ok=True)


class BackgroundServer:
    """A server in a daemon thread of this process. ``start()`` returns the URL once it
    accepts connections; ``stop()`` shuts it down and closes the store."""

    def __init__(
        self, db: str | Path, keys: Iterable[str | tuple[str, str | None]] = (), *, settings: Settings | None = None,
        host: str = "127.0.0.1", port: int = 0, sync: str = "normal",
    ):
        self.db = db
        self.settings = settings_for(keys, settings)
        self.host = host
        self.port = port
        self.sync = sync
        self.url: str | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        self._store = open_store(self.db, self.sync)
        app = create_app(self._store, self.settings)
        sock = bind(self.host, self.port)
        self.url = url_of(sock)
        self.port = sock.getsockname()[1]
        self._server = _Server(_config(app, "error"), self._ready.set)

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._error = exc
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=run, name="hlops-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None or not self._server.started:
            self.stop()
            raise RuntimeError(f"the embedded server did not start: {self._error!r}")
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> BackgroundServer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    db: str | Path, keys: Iterable[str | tuple[str, str | None]] = (), *, settings: Settings | None = None,
    host: str = "127.0.0.1", port: int = 0, sync: str = "normal",
) -> BackgroundServer:
    """Start a :class:`BackgroundServer` and return it (its ``url`` and ``port`` are set).

    Example (``--local``)::

        server = start_in_thread(".hlops/server.db", [api_key])
        ...  # talk to server.url
        server.stop()
    """
    server = BackgroundServer(db, keys, settings=settings, host=host, port=port, sync=sync)
    server.start()
    return server
