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
