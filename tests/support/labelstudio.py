"""A real Label Studio in a subprocess, for tests.

Usage::

    from support.labelstudio import LabelStudioProcess, find_label_studio

    exe = find_label_studio()                       # None: not installed
    template = migrated_template(exe, cache_dir)    # once per session (~40 s of migrations)
    with LabelStudioProcess(exe, template, tmp_dir) as ls:
        requests.get(ls.url + "/api/projects", headers={"Authorization": f"Token {ls.token}"})

Label Studio runs its Django migrations on a new data dir, which costs ~40 s of CPU. So a
*template* data dir is migrated once and copied per instance: ``.ci/labelstudio.sh`` builds
one next to the install (``.venv-labelstudio/hlops-template-<version>``); without it, the
first test module of a session builds one in the session's shared temp dir (an atomic
rename, so two xdist workers never see a half-built one). The template has no user: each
instance creates its own user, organisation (legacy tokens enabled) and a random token at
start (``label-studio start --username --password --user-token --enable-legacy-api-token``).

Offline and quiet: ``LATEST_VERSION_CHECK=false`` (no PyPI version check), SQLite, a data
dir of its own, bound to 127.0.0.1. Label Studio moves to the next port by itself when the
one it was given is taken, so the URL is read from its own "Starting development server at"
line rather than assumed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
ENV_EXE = "HLOPS_LABEL_STUDIO"
_SERVING = re.compile(r"Starting development server at (http://[^/\s]+)/")


def find_label_studio() -> Path | None:
    """``$HLOPS_LABEL_STUDIO``, else ``.venv-labelstudio/bin/label-studio`` of the repo."""
    named = os.environ.get(ENV_EXE)
    if named:
        return Path(named) if Path(named).is_file() else None
    local = REPO / ".venv-labelstudio" / "bin" / "label-studio"
    return local if local.is_file() else None


def label_studio_version(exe: Path) -> str:
    python = exe.parent / "python"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LATEST_VERSION_CHECK="false",
        LOG_LEVEL="WARNING",
        DEBUG="false",
        # Label Studio reads USERNAME/PASSWORD from the environment as its default user.
        USERNAME="", PASSWORD="",
    )
    return env


def build_template(exe: Path, target: Path) -> Path:
    """A migrated data dir with no user at ``target`` (built aside, renamed into place)."""
    if (target / "label_studio.sqlite3").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    subprocess.run(
        [str(exe), "init", "--data-dir", str(work), "--quiet", "--no-browser"],
        env=_env(work), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
        timeout=600,
    )
    (work / ".env").unlink(missing_ok=True)  # a SECRET_KEY per instance, not shared
    try:
        work.rename(target)
    except OSError:  # another worker won the race: its template is as good
        shutil.rmtree(work, ignore_errors=True)
    return target


def migrated_template(exe: Path, session_dir: Path) -> Path:
    """The install's template when ``.ci/labelstudio.sh`` built one, else a session one."""
    version = label_studio_version(exe)
    installed = exe.parent.parent / f"hlops-template-{version}"
    if (installed / "label_studio.sqlite3").is_file():
        return installed
    return build_template(exe, session_dir / f"labelstudio-template-{version}")


class LabelStudioProcess:
    """One Label Studio on a free loopback port, with its own copy of the template."""

    def __init__(self, exe: Path, template: Path, tmp_dir: Path, startup_timeout: float = 120.0):
        self.exe = exe
        self.dir = Path(tmp_dir)
        self.data_dir = self.dir / "data"
        shutil.copytree(template, self.data_dir)
        self.username = "hlops-test@example.com"
        self.password = secrets.token_hex(16)
        self.token = secrets.token_hex(20)  # the legacy token (40 hex, like Label Studio's own)
        self.log_path = self.dir / "labelstudio.log"
        self.startup_timeout = startup_timeout
        self.url = ""
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def start(self) -> None:
        port = _free_port()
        args = [
            str(self.exe), "start", "--data-dir", str(self.data_dir), "--port", str(port),
            "--internal-host", "127.0.0.1", "--no-browser",
            "--username", self.username, "--password", self.password,
            "--user-token", self.token, "--enable-legacy-api-token",
        ]
        began = time.monotonic()
        log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            args, env=_env(self.data_dir), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited ({self._proc.returncode}):\n{self.log_tail()}")
            if not self.url:
                found = _SERVING.search(self.log_path.read_text(errors="replace"))
                if found:
                    self.url = found.group(1)
            if self.url and self._ready():
                self.startup_seconds = time.monotonic() - began
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Label Studio not ready after {self.startup_timeout} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            r = requests.get(self.url + "/api/projects", headers=self.headers, timeout=5)
        except requests.RequestException:
            return False
        return r.status_code == 200

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> LabelStudioProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
