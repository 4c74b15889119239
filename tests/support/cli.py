"""Run the real `hlops` command line in a subprocess against a test server."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_hlops(*args: str, server=None, cwd: Path | None = None, env: dict | None = None,
              input: str | None = None, timeout: float = 300) -> Result:
    """``hlops ARGS`` with HLOPS_BASE_URL / HLOPS_API_KEY of ``server`` (a ServerProcess)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    full_env.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    if server is not None:
        full_env.update({"HLOPS_BASE_URL": server.url, "HLOPS_API_KEY": server.api_key})
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "hlops", *args],
        cwd=cwd or REPO, env=full_env, input=input, capture_output=True, text=True, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
