"""The one canonical form of a datapoint, shared by the server and the planner.

Both sides import this module, so the hash the server stores when a datapoint is written
and the hash the planner computes from a data file agree by construction.

A datapoint's **canonical JSON** is built in two steps:

1. *Normalise* every value by its field's ``data_type``:

   - ``text``: a string, or an integer (the seed sends ``external_id`` as a number), held as
     the string of that integer. Booleans are not integers here.
   - ``categorical``: a string, or an integer held as its string.
   - ``character_offsets``: a list of ``{"start": int, "end": int, "label": str}`` with
     ``0 <= start < end``; spans are sorted by ``(start, end, label)`` since their order
     carries no meaning.
   - ``None`` (or a missing field) means "no value" and is **left out** of the canonical
     form, so adding a field to a dataset (existing datapoints get null) changes no hash.

2. Serialise with sorted keys and no whitespace, non-ASCII kept as UTF-8:
   ``json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
   orjson with ``OPT_SORT_KEYS`` produces the same bytes for these value types (strings,
   integers, lists and objects of them) about four times faster, so it is used here; a
   property test checks the equality.

The **hash** of a datapoint is the SHA-256 hex digest of those bytes.

The **key** of a datapoint, in a dataset with a ``key`` field, is that field's normalised
value as text; in a dataset without one it is the datapoint's hash. A key falls in bucket
``int(sha256(key)[:16 hex digits], 16) % N`` of an N-bucket digest, and a bucket's hash is
the XOR of its datapoints' hashes (the all-zero hash for an empty bucket).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

DATA_TYPES = ("text", "categorical", "character_offsets")
ZERO_HASH = "0" * 64
MAX_BUCKETS = 65_536


class InvalidValue(ValueError):
    """A value that does not fit its field: ``msg`` is written for a person, ``type`` is a
    short machine tag in the style of FastAPI's validation errors, ``loc`` is the path of
    the value inside the datapoint (field name, then list index / key)."""

    def __init__(self, msg: str, type_: str, loc: tuple[Any, ...] = ()):
        super().__init__(msg)
        self.msg = msg
        self.type = type_
        self.loc = loc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalise_value(data_type: str, value: Any) -> Any:
    """Return ``value`` in its canonical form for ``data_type`` (``None`` stays ``None``).

    Raises :class:`InvalidValue` with a located message when the value does not fit.
    """
    if value is None:
        return None
    if data_type in ("text", "categorical"):
        if isinstance(value, str):
            return value
        if _is_int(value):
            return str(value)
        raise InvalidValue(
            f"expected a string for a {data_type} field, got {_type_name(value)}",
            "string_type",
        )
    if data_type == "character_offsets":
        return _normalise_spans(value)
    raise InvalidValue(f"unknown data_type {data_type!r}", "data_type")


def _normalise_spans(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidValue(
            "expected a list of {start, end, label} spans, got " + _type_name(value),
            "list_type",
        )
    spans = []
    for i, span in enumerate(value):
        if not isinstance(span, Mapping):
            raise InvalidValue(
                f"expected a {{start, end, label}} object, got {_type_name(span)}",
                "dict_type",
                (i,),
            )
        extra = set(span) - {"start", "end", "label"}
        if extra:
            raise InvalidValue(
                f"unexpected key {sorted(extra)[0]!r} in a span; a span has start, end and label",
                "extra_forbidden",
                (i, sorted(extra)[0]),
            )
        for name in ("start", "end"):
            if not _is_int(span.get(name)):
                raise InvalidValue(
                    f"span {name} must be an integer, got {_type_name(span.get(name))}",
                    "int_type",
                    (i, name),
                )
        if not isinstance(span.get("label"), str) or not span["label"]:
            raise InvalidValue(
                "span label must be a non-empty string", "string_type", (i, "label")
            )
        start, end = span["start"], span["end"]
        if not 0 <= start < end:
            raise InvalidValue(
                f"span must have 0 <= start < end, got start={start}, end={end}",
                "span_bounds",
                (i,),
            )
        spans.append({"start": start, "end": end, "label": span["label"]})
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return spans


def check_spans_within(spans: list[dict[str, Any]], text: str | None) -> str | None:
    """Return a message when a span runs past the end of ``text``, else ``None``.

    ``character_offsets`` point into a text; which text is a project's choice (the tagging
    output's ``input``), so this check is separate from :func:`normalise_value`.
    """
    if text is None:
        return None
    for span in spans:
        if span["end"] > len(text):
            return (
                f"span {span['start']}..{span['end']} ({span['label']}) runs past the end "
                f"of its text ({len(text)} characters)"
            )
    return None


def normalise_row(row: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """Normalise one datapoint against ``fields`` (name -> data_type).

    Unknown field names raise :class:`InvalidValue` located at that name; ``None`` values are
    dropped. Raises on the first problem; callers that want every problem of a row call
    :func:`row_problems`.
    """
    out: dict[str, Any] = {}
    for name, value in row.items():
        data_type = fields.get(name)
        if type(value) is str and (data_type == "text" or data_type == "categorical"):
            out[name] = value  # the common case, already canonical
            continue
        if data_type is None:
            raise InvalidValue(_unknown_field_msg(name, fields), "unknown_field", (name,))
        try:
            norm = normalise_value(data_type, value)
        except InvalidValue as exc:
            raise InvalidValue(exc.msg, exc.type, (name, *exc.loc)) from None
        if norm is not None:
            out[name] = norm
    return out


class RowNormaliser:
    """:func:`normalise_row` for one set of ``fields``, for a stream of rows: a row whose
    values are all strings in text/categorical fields (the common row) is copied without
    looking up each field's type; any other row goes through :func:`normalise_row` (same
    result, same errors)."""

    def __init__(self, fields: Mapping[str, str]):
        self.fields = dict(fields)
        # fields whose normal value is the string itself: a row of strings in these alone is normal
        self.plain = frozenset(n for n, t in self.fields.items() if t in ("text", "categorical"))

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        plain = self.plain
        for name, value in row.items():
            if type(value) is not str or name not in plain:
                return normalise_row(row, self.fields)
        # Already normal: a plain dict (a freshly parsed row) is returned as it is, not
        # copied (a copy was ~10% of the local pass); any other mapping is copied.
        return row if type(row) is dict else dict(row)


def normalise_rows(rows: list[Any], fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """``[normalise_row(row, fields) for row in rows]``, about twice as fast.

    For bulk writes (the server validates 10,000 datapoints per request). The common value
    shapes -- a string or integer in a text/categorical field, a list of well-formed spans --
    are normalised inline; anything else goes through :func:`normalise_value`, so the
    result and the errors are exactly those of :func:`normalise_row` (a property test pins
    this). Raises :class:`InvalidValue` on the first problem, its ``loc`` starting with the
    row's index; callers wanting every problem use :func:`row_problems` on the failures.
    """
    out: list[dict[str, Any]] = []
    append = out.append
    for i, row in enumerate(rows):
        if type(row) is not dict:
            if not isinstance(row, Mapping):
                raise InvalidValue(
                    f"a datapoint must be an object, got {_type_name(row)}", "dict_type", (i,)
                )
        norm: dict[str, Any] = {}
        for name, value in row.items():
            data_type = fields.get(name)
            kind = type(value)
            if kind is str and (data_type == "text" or data_type == "categorical"):
                norm[name] = value
                continue
            if kind is int and (data_type == "text" or data_type == "categorical"):
                norm[name] = str(value)
                continue
            if kind is list and data_type == "character_offsets":
                spans = _plain_spans(value)
                if spans is not None:
                    norm[name] = spans
                    continue
            if data_type is None:
                raise InvalidValue(_unknown_field_msg(name, fields), "unknown_field", (i, name))
            try:
                value = normalise_value(data_type, value)
            except InvalidValue as exc:
                raise InvalidValue(exc.msg, exc.type, (i, name, *exc.loc)) from None
            if value is not None:
                norm[name] = value
        append(norm)
    return out


def _plain_spans(value: list[Any]) -> list[dict[str, Any]] | None:
    """Spans in canonical form when every one is a well-formed ``{start, end, label}``
    object; ``None`` when any is not (the caller then lets :func:`normalise_value` report
    the problem). Already sorted spans are returned as they are (key order does not matter:
    :func:`canonical_json` sorts keys)."""
    spans = []
    for span in value:
        if type(span) is not dict or len(span) != 3:
            return None
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if type(start) is not int or type(end) is not int or type(label) is not str:
            return None
        if not label or not 0 <= start < end:
            return None
        spans.append((start, end, label))
    if len(spans) < 2 or all(spans[i] <= spans[i + 1] for i in range(len(spans) - 1)):
        return value
    spans.sort()
    return [{"start": s, "end": e, "label": lb} for s, e, lb in spans]


def row_problems(row: Any, fields: Mapping[str, str]) -> list[InvalidValue]:
    """Every problem of one datapoint (an empty list when it is valid)."""
    if not isinstance(row, Mapping):
        return [InvalidValue(f"a datapoint must be an object, got {_type_name(row)}", "dict_type")]
    problems = []
    for name, value in row.items():
        data_type = fields.get(name)
        if data_type is None:
            problems.append(InvalidValue(_unknown_field_msg(name, fields), "unknown_field", (name,)))
            continue
        try:
            normalise_value(data_type, value)
        except InvalidValue as exc:
            problems.append(InvalidValue(exc.msg, exc.type, (name, *exc.loc)))
    return problems


def canonical_json(normalised: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of an already normalised datapoint."""
    return orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS)


def row_hash(normalised: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of an already normalised datapoint."""
    return hashlib.sha256(canonical_json(normalised)).hexdigest()


def key_text(normalised: Mapping[str, Any], key: str | None, hash_: str) -> str | None:
    """The datapoint's key: the key field's normalised value, or its hash when the dataset
    has no key. ``None`` when the key field has no value (the caller decides if that is an
    error)."""
    if key is None:
        return hash_
    value = normalised.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    # A character_offsets key is unusual but well defined: its canonical JSON.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def key_point(key: str) -> int:
    """The 64-bit number a key is bucketed by: the first 16 hex digits of sha256(key)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def bucket_of(key: str, buckets: int) -> int:
    """Which of ``buckets`` buckets (a power of two <= 65,536) ``key`` falls in."""
    return key_point(key) % buckets


def xor_hashes(hashes: Iterable[str]) -> str:
    """XOR of hex SHA-256 digests, as a 64-digit hex string (all zeros for none)."""
    acc = 0
    for h in hashes:
        acc ^= int(h, 16)
    return f"{acc:064x}"


def valid_bucket_count(n: int) -> bool:
    return 1 <= n <= MAX_BUCKETS and n & (n - 1) == 0


def _unknown_field_msg(name: str, fields: Mapping[str, str]) -> str:
    known = ", ".join(sorted(fields)) or "none"
    return f"unknown field {name!r}; the dataset's fields are: {known}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
