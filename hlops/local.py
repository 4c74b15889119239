"""`--local`: the reference server, embedded, so a new user needs no account.

The server runs in a background thread of this process on a free loopback port, with its
data in ``.hlops/local.db`` and an API key generated once into ``.hlops/api-key`` (mode 0600)
— both under the current directory, like Terraform's ``.terraform/``. The key never leaves
that file and the process memory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

from hlops.errors import SettingsError

HOME_NAME = ".hlops"
KEY_FILE = "api-key"
DB_FILE = "local.db"


def local_home(base: Path | None = None) -> Path:
    home = Path(os.environ.get("HLOPS_HOME") or (base or Path.cwd()) / HOME_NAME)
    return home


def ensure_key(home: Path) -> str:
    """The local API key, created on first use with mode 0600."""
    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise SettingsError(f"{path} is empty; delete it and run again to get a new key") from None
        return key
    key = "hl_local_" + secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


class LocalServer:
    """Context manager: the embedded reference server. ``url`` and ``api_key`` once entered."""

    def __init__(self, home: Path | None = None):
        self.home = home or local_home()
        self.url = ""
        self.api_key = ""
        self._handle = None

    def __enter__(self) -> LocalServer:
        from hlops.server.run import start_in_thread

        self.api_key = ensure_key(self.home)
        self._handle = start_in_thread(self.home / DB_FILE, [self.api_key])
        self.url = self._handle.url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.stop()
            self._handle = None

    def __repr__(self) -> str:
        return f"LocalServer(home={str(self.home)!r}, url={self.url!r})"
