"""A real reference server in a subprocess, for tests (``python -m hlops serve``).

Usage::

    from support.server import ServerProcess

    with ServerProcess() as srv:            # temp dir, temp DB, two organisations
        requests.get(srv.url + "/datasets", headers=srv.headers())
        srv.stats()                          # request counts (the /_test endpoints are on)
        srv.set_faults(rate=0.3, statuses=[503, 429], seed=1)
        srv.kill(); srv.restart()            # kill -9, then start again on the same DB

Each instance generates two random API keys: ``api_key`` (organisation ``org-a``) and
``other_key`` (organisation ``org-b``); keys are passed in a keys file, never on the command
line. The server binds a free loopback port itself and reports its URL through a ready
file, so there is no port race. ``db_url`` (a ``postgresql://`` URL) runs it on PostgreSQL
instead of a SQLite file (``.store`` says which: ``"sqlite"`` or ``"postgresql"``). The pytest fixtures ``server`` (one per test module) and
``fresh_server`` (one per test) in ``tests/conftest.py`` wrap this class.

Test-only knobs (constructor keywords, same names as the ``hlops serve`` flags):
``rate_limit``, ``fault_rate``, ``fault_statuses``, ``fault_seed``, ``fault_retry_after``,
``fail_nth``, ``fault_phase``, ``request_log`` -- and ``extra_args`` for anything else.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(
        self,
        tmp_dir: str | Path | None = None,
        *,
        db_path: str | Path | None = None,
        db_url: str | None = None,
        rate_limit: float | None = None,
        fault_rate: float | None = None,
        fault_statuses: list[int] | tuple[int, ...] | None = None,
        fault_seed: int | None = None,
        fault_retry_after: int | None = None,
        fail_nth: list[int] | tuple[int, ...] = (),
        fault_phase: str | None = None,
        request_log: str | Path | None = None,
        test_endpoints: bool = True,
        extra_args: list[str] | tuple[str, ...] = (),
        start: bool = True,
        startup_timeout: float = 30.0,
    ):
        self._own_dir = tmp_dir is None
        self.dir = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.mkdtemp(prefix="hlops-server-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path) if db_path is not None else self.dir / "server.db"
        self.db_url = db_url  # a PostgreSQL database instead of the SQLite file
        self.store = "postgresql" if db_url else "sqlite"
        self.api_key = "hlk_a_" + secrets.token_hex(16)
        self.other_key = "hlk_b_" + secrets.token_hex(16)
        self.keys_file = self.dir / "keys.txt"
        self.keys_file.write_text(f"# test keys\n{self.api_key} org-a\n{self.other_key} org-b\n")
        self.ready_file = self.dir / "ready.url"
        self.log_path = self.dir / "server.log"
        self.request_log = Path(request_log) if request_log else None
        self.startup_timeout = startup_timeout
        args: list[str] = []
        knobs = {
            "--rate-limit": rate_limit,
            "--fault-rate": fault_rate,
            "--fault-statuses": ",".join(map(str, fault_statuses)) if fault_statuses else None,
            "--fault-seed": fault_seed,
            "--fault-retry-after": fault_retry_after,
            "--fault-phase": fault_phase,
            "--request-log": self.request_log,
        }
        for flag, value in knobs.items():
            if value is not None:
                args += [flag, str(value)]
        for n in fail_nth:
            args += ["--fail-nth", str(n)]
        if test_endpoints:
            args.append("--test-endpoints")
        self.args = args + list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.url: str = ""
        self.port: int = 0
        self._session = requests.Session()
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle

    def command(self, port: int = 0) -> list[str]:
        return [
            sys.executable, "-m", "hlops", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--db", self.db_url or str(self.db_path), "--keys-file", str(self.keys_file),
            "--ready-file", str(self.ready_file), *self.args,
        ]

    def start(self, port: int = 0) -> str:
        """Start the process (``port`` 0: any free port); returns the URL once it answers."""
        if self.running:
            raise RuntimeError("the server is already running")
        self.ready_file.unlink(missing_ok=True)
        env = dict(os.environ)
        env.pop("HLOPS_API_KEY", None)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(port), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir, env=env,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the server did not start in {self.startup_timeout}s:\n{self.logs()[-3000:]}")
            time.sleep(0.02)
        self.url = self.ready_file.read_text().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        self._session.get(self.url + "/health", timeout=10).raise_for_status()
        return self.url

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash looks like)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._session.close()
        self._session = requests.Session()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._session.close()
        self._session = requests.Session()

    def restart(self, same_port: bool = True) -> str:
        """Stop if running, start again on the same DB (and, if possible, the same port)."""
        self.stop()
        port = self.port if same_port else 0
        try:
            return self.start(port)
        except RuntimeError:
            if not port:
                raise
            return self.start(0)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP helpers

    def headers(self, other: bool = False, **extra: str) -> dict[str, str]:
        """Auth headers of the first organisation (``other=True``: the second)."""
        return {"X-API-KEY": self.other_key if other else self.api_key, **extra}

    def call(self, method: str, path: str, *, other: bool = False, headers: dict | None = None, **kwargs: Any) -> requests.Response:
        """One request as organisation A (or B with ``other=True``); ``json=`` etc. as in requests."""
        kwargs.setdefault("timeout", 60)
        return self._session.request(method, self.url + path, headers={**self.headers(other), **(headers or {})}, **kwargs)

    def stats(self) -> dict:
        """``{total, writes, by_method, by_path, by_status}`` since start or the last reset."""
        return self._test("GET", "/_test/stats")

    def reset_stats(self) -> None:
        """Zero the counts (and restart the fault sequence: ``fail_nth`` counts from here)."""
        self._test("POST", "/_test/reset-stats")

    def set_faults(self, **changes: Any) -> dict:
        """Change fault settings at runtime: ``rate``, ``statuses``, ``seed``, ``fail_nth``,
        ``phase``, ``retry_after``, ``rate_limit`` (None/0 turns the limit off)."""
        return self._test("POST", "/_test/faults", json=changes)

    def _test(self, method: str, path: str, **kwargs: Any) -> dict:
        r = self._session.request(method, self.url + path, timeout=10, **kwargs)
        r.raise_for_status()
        return r.json()
