"""Datapoints on their way in: the fast path from request bytes to rows ready to store.

A write carries up to 10,000 datapoints, so nothing here goes through a pydantic model per
row: the body is parsed once with orjson and every row is normalised by
:func:`hlops.canonical.normalise_rows` (the same rules the client hashes with), then turned
into what the store keeps -- canonical JSON, its SHA-256, the key and the key's bucket
point. Problems come back in FastAPI's 422 shape, located by row index and field, and never
quote a value.

**Stored point.** The store keeps each datapoint's :func:`hlops.canonical.key_point` as a
signed 64-bit integer with the same bits (two's complement; SQLite integers are signed). A
datapoint falls in bucket ``point % N`` of an N-bucket digest (N a power of two), which is
``point & (N - 1)`` on the stored value too. Its low 8 bits (``point & 255``) split a
dataset into 256 *parts*: an index ordered by (part, id) takes an upload's new rows at the
ends of 256 runs -- few pages touched per batch -- and a bucket is one part (N >= 256) or a
set of parts (N < 256).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from hlops import canonical
from hlops.server.store import Invalid

MAX_PROBLEMS = 50  # 422 items listed for one request; the rest are counted
_SIGN = 1 << 63
_WRAP = 1 << 64


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or a 422 ``json_invalid`` located at the body (like FastAPI's)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc).split(":", 1)[0] if str(exc) else "invalid JSON"
        raise Invalid.one(("body",), f"JSON decode error: {msg}", "json_invalid") from None


def stored_point(key_point: int) -> int:
    """The signed 64-bit form of a key point (same bits), as SQLite stores integers."""
    return key_point - _WRAP if key_point >= _SIGN else key_point


def key_point_of(stored: int) -> int:
    """The inverse of :func:`stored_point`."""
    return stored + _WRAP if stored < 0 else stored


PARTS = 256  # ``point & 255``: the part a datapoint's index entry is filed under


def bucket_parts(buckets: int, bucket: int) -> list[int]:
    """The parts (``point & 255``) that hold bucket ``bucket`` of ``buckets``; for
    ``buckets > 256`` the rows of the part must also pass ``point & (buckets - 1) == bucket``."""
    if buckets >= PARTS:
        return [bucket & (PARTS - 1)]
    return list(range(bucket, PARTS, buckets))


@dataclass
class Prepared:
    """Rows ready to insert, in request order. ``keys[i]`` is ``None`` in a dataset without
    a key field (the key is then the hash, which the store does not repeat)."""

    normalised: list[dict[str, Any]]
    data: list[bytes]
    hashes: list[bytes]
    keys: list[str | None]
    points: list[int]

    def __len__(self) -> int:
        return len(self.data)


def prepare(
    rows: list[Any], fields: dict[str, str], key: str | None, loc: tuple[Any, ...], suffix: tuple[Any, ...] = ()
) -> Prepared:
    """Normalise, serialise and hash ``rows`` against ``fields`` (name -> data_type).

    Raises :class:`Invalid` listing the problems of every bad row (up to
    :data:`MAX_PROBLEMS`), each located at ``loc + (row index,) + suffix + (field, ...)``; a
    row without a value for the dataset's ``key`` is a problem too.
    """
    try:
        normalised = canonical.normalise_rows(rows, fields)
    except canonical.InvalidValue:
        raise Invalid(_all_problems(rows, fields, key, loc, suffix)) from None
    dumps, sha256, key_point, key_text = orjson.dumps, hashlib.sha256, canonical.key_point, canonical.key_text
    sort_keys = orjson.OPT_SORT_KEYS
    data: list[bytes] = [dumps(norm, option=sort_keys) for norm in normalised]  # == canonical_json
    hashes: list[bytes] = [sha256(cj).digest() for cj in data]
    if key is None:
        keys: list[str | None] = [None] * len(data)
        points = [key_point(h.hex()) for h in hashes]
    else:
        keys = [key_text(norm, key, "") for norm in normalised]
        if None in keys:
            raise Invalid(_missing_key([i for i, k in enumerate(keys) if k is None], key, loc, suffix))
        if nul := [i for i, k in enumerate(keys) if "\x00" in k]:  # type: ignore[operator]
            raise Invalid(_nul_key(nul, key, loc, suffix))
        points = [key_point(k) for k in keys]
    points = [p - _WRAP if p >= _SIGN else p for p in points]  # stored_point, inlined
    return Prepared(normalised, data, hashes, keys, points)


def duplicate_keys(keys: list[str | None]) -> list[str]:
    """Keys that occur more than once in ``keys`` (in first-seen order)."""
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for k in keys:
        if k is None:
            continue
        if k in seen:
            dups[k] = None
        seen.add(k)
    return list(dups)


def duplicate_message(field: str, keys: list[str], where: str) -> str:
    shown = ", ".join(repr(k) for k in keys[:10])
    more = f" (and {len(keys) - 10} more)" if len(keys) > 10 else ""
    return f"duplicate values of key field {field!r} {where}: {shown}{more}"


def _all_problems(
    rows: list[Any], fields: dict[str, str], key: str | None, loc: tuple[Any, ...], suffix: tuple[Any, ...]
) -> list[dict]:
    items: list[dict] = []
    count = 0
    for i, row in enumerate(rows):
        problems = canonical.row_problems(row, fields)
        for p in problems:
            count += 1
            if len(items) < MAX_PROBLEMS:
                items.append({"loc": [*loc, i, *suffix, *p.loc], "msg": p.msg, "type": p.type})
        if not problems and key is not None and row.get(key) is None:
            count += 1
            if len(items) < MAX_PROBLEMS:
                items.extend(_missing_key([i], key, loc, suffix))
    if count > len(items):
        items.append({
            "loc": list(loc),
            "msg": f"{count - len(items)} more problems not listed",
            "type": "too_many_errors",
        })
    return items


def _missing_key(indexes: list[int], key: str | None, loc: tuple[Any, ...], suffix: tuple[Any, ...]) -> list[dict]:
    return _key_problems(indexes, key, loc, suffix, f"the dataset's key field {key!r} needs a value", "missing",
                         "without a key value")


def _nul_key(indexes: list[int], key: str | None, loc: tuple[Any, ...], suffix: tuple[Any, ...]) -> list[dict]:
    """A key holding U+0000: PostgreSQL's text cannot hold it and SQLite's JSON functions cut
    a text there, so no store keeps it whole; refused by both alike (docs/api.md)."""
    return _key_problems(indexes, key, loc, suffix, f"the key field {key!r} holds a NUL character (U+0000)",
                         "key_nul", "whose key holds a NUL character")


def _key_problems(indexes: list[int], key: str | None, loc: tuple[Any, ...], suffix: tuple[Any, ...],
                  msg: str, kind: str, more: str) -> list[dict]:
    items = [{"loc": [*loc, i, *suffix, key], "msg": msg, "type": kind} for i in indexes[:MAX_PROBLEMS]]
    if len(indexes) > MAX_PROBLEMS:
        items.append({"loc": list(loc), "msg": f"{len(indexes) - MAX_PROBLEMS} more datapoints {more}",
                      "type": "too_many_errors"})
    return items
