"""Finding Debian's Chromium for the browser tests: skip without it, fail under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DEBIAN_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    found = os.environ.get("HLOPS_CHROMIUM") or shutil.which("chromium") or DEBIAN_CHROMIUM
    return found if Path(found).exists() else None


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: .ci/chromium.sh must install it)")
    pytest.skip(f"skipped: {why}")


def require_chromium() -> str:
    """The Chromium binary, or a skip (a failure under CI=true) saying what is missing."""
    path = chromium_path()
    if path is None:
        _missing("no Chromium (apt-get install -y chromium, or run .ci/chromium.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("no playwright package (pip install -e '.[test]')")
    return path
