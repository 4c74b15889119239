"""PostgreSQL for tests: a server to create throwaway databases in.

:func:`admin_url` answers, once per process:

1. ``$HLOPS_TEST_PG_URL`` when set (what ``.ci/postgres.sh`` exports for ``.ci/run``): a
   role that may ``CREATE DATABASE``;
2. else a throwaway cluster started here when PostgreSQL's binaries are installed
   (``/usr/lib/postgresql/*/bin``): ``initdb`` into a temp dir (as the ``postgres`` system
   user when we are root: initdb refuses root), a free loopback port, its unix socket in the
   temp dir, ``fsync=off`` (nothing here survives a power cut anyway); stopped at exit;
3. else ``None``: the caller skips with "no PostgreSQL" -- or fails under ``CI=true``, where
   PostgreSQL must be there.

:func:`fresh_database` creates a database of its own for one test module or server, so
tests never share tables.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

BOTH = ("sqlite", "postgresql")  # the stores a test parametrised over ``store`` runs on
_state: dict[str, str | None] = {}


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(*, fast: bool = True) -> tuple[str, Path]:
    """Start a throwaway cluster; answer its admin URL and its directory (stopped and
    removed at exit)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb) on this machine")
    root = Path(tempfile.mkdtemp(prefix="hlops-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if fast:
        opts += " -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True, capture_output=True,
    )

    def stop() -> None:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", root


def admin_url() -> str | None:
    """A PostgreSQL URL to create test databases with, or None (see the module docstring)."""
    if "url" not in _state:
        url = os.environ.get("HLOPS_TEST_PG_URL") or None
        if url is None and _bin_dir() is not None:
            try:
                url, _ = start_cluster()
            except (OSError, subprocess.CalledProcessError, RuntimeError):
                url = None
        _state["url"] = url
    return _state["url"]


def require_url() -> str:
    """:func:`admin_url`, or skip ("no PostgreSQL") -- a failure under ``CI=true``."""
    url = admin_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no PostgreSQL: under CI=true the PostgreSQL tests must run (see .ci/postgres.sh)")
        pytest.skip("no PostgreSQL")
    return url


def fresh_database(admin: str | None = None) -> str:
    """Create an empty database; answer its URL."""
    import psycopg

    admin = admin or require_url()
    name = "hlops_test_" + secrets.token_hex(6)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path="/" + name))


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(os.environ.get("HLOPS_TEST_PG_URL") or admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # a throwaway cluster goes away at exit anyway


def db_url_for(store: str) -> str | None:
    """A fresh database for ``store == "postgresql"`` (else None: the SQLite file)."""
    return fresh_database() if store == "postgresql" else None
