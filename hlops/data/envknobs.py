"""Knobs read from the environment, for tests and benchmarks that need a small file to take
the path a big one would (``HLOPS_STREAM_MIN_BYTES``, ``HLOPS_DELTA_MIN_BYTES``). Here,
in the data toolkit, for the planner and the providers alike."""

from __future__ import annotations

import os


def whole_number(name: str, default: int) -> int:
    """``$name`` as a whole number (at least 0), or ``default`` when it is unset, empty or
    not a number."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(0, int(raw)) if raw else default
    except ValueError:
        return default
