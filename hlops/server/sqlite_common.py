"""Small helpers shared by the SQLite store's modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from hlops.server.store import Invalid, VersionMismatch

T = TypeVar("T")
SQL_PARAMS = 500  # values bound per IN (...) list


def now() -> str:
    """The current time, ISO 8601 UTC with microseconds (``2025-01-31T12:00:00.000000Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_version(current: int, if_match: int | None) -> None:
    """412 when the caller's ``If-Match`` names another version than ``current``."""
    if if_match is not None and if_match != current:
        raise VersionMismatch(f"the resource is at version {current}, not {if_match}")


def chunks(items: Sequence[T], size: int = SQL_PARAMS) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def marks(n: int) -> str:
    """``?, ?, ?`` for an ``IN`` list of ``n`` values."""
    return ", ".join("?" * n)


def page_of(rows: list[Any], limit: int, cursor_of: Any) -> tuple[list[Any], Any]:
    """Split ``limit + 1`` fetched rows into the page and the next cursor (or ``None``)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, cursor_of(rows[-1])
    return rows, None


def int_cursor(after: Any) -> int:
    """A decoded id cursor (0 for the first page), or a 422."""
    if after is None:
        return 0
    if type(after) is not int or not 0 <= after < 1 << 63:
        raise Invalid.one(("query", "cursor"), "invalid cursor", "cursor")
    return after


def pair_cursor(after: Any, parts: int) -> tuple[int, int]:
    """A decoded ``[part, id]`` cursor, or a 422."""
    if (
        isinstance(after, list) and len(after) == 2 and all(type(x) is int for x in after)
        and 0 <= after[0] < parts and 0 <= after[1] < 1 << 63
    ):
        return after[0], after[1]
    raise Invalid.one(("query", "cursor"), "invalid cursor", "cursor")
