"""Datapoints on their way in: the fast path from request bytes to rows ready to store.

A write carries up to 10,000 datapoints, so nothing here goes through a pydantic model per
row: the body is parsed once with orjson and every row is normalised by
:func:`hlops.canonical.normalise_rows` (the same rules the client hashes with), then turned
into what the store keeps -- canonical JSON, its SHA-256, the key and the key's bucket
point. Problems come back in FastAPI's 422 shape, located by row index and field, and never
quote a value.

**Stored point.** The store keeps each datapoint's :func:`hlops.canonical.key_point` with
its 64 bits *reversed* (and shifted into SQLite's signed range so that integer order equals
unsigned order). A datapoint falls in bucket ``point % N`` of an N-bucket digest (N a power
of two), i.e. its low bits -- reversed, those are the *high* bits, so each bucket of any N
is one contiguous range of stored points, and the top 8 bits (``point >> 56``) split a
dataset into 256 parts that an index can append to cheaply.
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
_REVERSED_BYTE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or a 422 ``json_invalid`` located at the body (like FastAPI's)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc).split(":", 1)[0] if str(exc) else "invalid JSON"
        raise Invalid.one(("body",), f"JSON decode error: {msg}", "json_invalid") from None


def stored_point(key_point: int) -> int:
    """The bit-reversed, signed form of a 64-bit key point (see the module docstring)."""
    return int.from_bytes(key_point.to_bytes(8, "little").translate(_REVERSED_BYTE), "big") - _SIGN


def key_point_of(stored: int) -> int:
    """The inverse of :func:`stored_point`."""
    return int.from_bytes((stored + _SIGN).to_bytes(8, "big").translate(_REVERSED_BYTE), "little")


def reverse_bits(value: int, bits: int) -> int:
    return int(f"{value:0{bits}b}"[::-1], 2) if bits else 0


def bucket_range(buckets: int, bucket: int) -> tuple[int, int, int, int]:
    """``(part_lo, part_hi, point_lo, point_hi)`` (inclusive, stored forms) of bucket
    ``bucket`` of ``buckets``: the datapoints whose ``point >> 56`` lies in the part range
    and whose stored point lies in the point range."""
    k = buckets.bit_length() - 1
    top = reverse_bits(bucket, k)
    lo = top << (64 - k) if k else 0
    hi = ((top + 1) << (64 - k)) - 1 if k else (1 << 64) - 1
    lo, hi = lo - _SIGN, hi - _SIGN
    return lo >> 56, hi >> 56, lo, hi


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
    dumps, sha256, key_point = orjson.dumps, hashlib.sha256, canonical.key_point
    sort_keys = orjson.OPT_SORT_KEYS
    data: list[bytes] = []
    hashes: list[bytes] = []
    keys: list[str | None] = []
    points: list[int] = []
    missing: list[int] = []
    for i, norm in enumerate(normalised):
        cj = dumps(norm, option=sort_keys)  # == canonical.canonical_json(norm)
        digest = sha256(cj).digest()
        if key is None:
            text = None
            point = key_point(digest.hex())
        else:
            text = canonical.key_text(norm, key, "")
            if text is None:
                missing.append(i)
                continue
            point = key_point(text)
        data.append(cj)
        hashes.append(digest)
        keys.append(text)
        points.append(stored_point(point))
    if missing:
        raise Invalid(_missing_key(missing, key, loc, suffix))
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
    items = [
        {"loc": [*loc, i, *suffix, key], "msg": f"the dataset's key field {key!r} needs a value", "type": "missing"}
        for i in indexes[:MAX_PROBLEMS]
    ]
    if len(indexes) > MAX_PROBLEMS:
        items.append({
            "loc": list(loc),
            "msg": f"{len(indexes) - MAX_PROBLEMS} more datapoints without a key value",
            "type": "too_many_errors",
        })
    return items
