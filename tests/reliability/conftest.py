"""Fixtures of the reliability suite (issue 7). See docs/reliability.md.

``record(item, cases=, passed=, **figures)`` keeps a test's figures: when the environment
variable ``HLOPS_RELIABILITY_RECORD`` names a file, one JSON line per call is appended to it
(``scripts/reliability_report.py`` sets it and renders the table); otherwise the figures are
only attached to the test report. Tests record *before* they assert, so a failing case is
counted as tried and not passed.

``HLOPS_RELIABILITY_FULL=1`` turns on the bigger runs (more seeds, more examples, every
crash point with both kill timings); the default run is bounded to a few minutes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rel_support import FULL  # noqa: E402


@pytest.fixture
def record(request):
    out = os.environ.get("HLOPS_RELIABILITY_RECORD")

    def write(item: str, *, cases: int, passed: int, **figures) -> None:
        entry = {"item": item, "test": request.node.nodeid, "cases": cases, "passed": passed,
                 "full": FULL, "time": round(time.time(), 3), **figures}
        request.node.user_properties.append(("reliability", entry))
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True, default=str) + "\n")

    return write


@pytest.fixture(scope="session")
def full() -> bool:
    return FULL


@pytest.fixture(scope="session", autouse=True)
def transport_error_run(tmp_path_factory):
    """R6's transport-error run: ``hlops apply`` against a port nobody listens on (it gives up
    after the first-contact connection retries, ~1 s). Started when the session starts, so
    that it overlaps the rest of the suite; R6 collects its output."""
    import subprocess

    from rel_support import CANARY_KEY, cli_env, write_leaky

    work = tmp_path_factory.mktemp("transport-error")
    tree = write_leaky(work / "leaky")
    proc = subprocess.Popen([sys.executable, "-m", "hlops", "apply", str(tree), "--auto-approve"], cwd=work,
                            env=cli_env("http://127.0.0.1:9", CANARY_KEY, work / ".hlops"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield {"proc": proc, "work": work}
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
