"""Raw request bodies that carry datapoints, checked in one pass without pydantic per row.

Each function takes the body bytes and returns plain Python values, or raises
:class:`Invalid` (422, FastAPI's shape, values never quoted) or :class:`TooLarge` (413: more
datapoints than one request may carry). The datapoints themselves are checked later, against
their dataset's fields, by :func:`hlops.server.rows.prepare`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from hlops.server.rows import parse_json
from hlops.server.schemas import MAX_ID, DatasetSettings
from hlops.server.store import Invalid, TooLarge


def _object(body: Any, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(body, dict):
        raise Invalid.one(("body",), "the body must be a JSON object", "model_attributes_type")
    items = [
        {"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
        for k in body if k not in allowed
    ] + [
        {"loc": ["body", k], "msg": "Field required", "type": "missing"}
        for k in sorted(required) if k not in body
    ]
    if items:
        raise Invalid(items)
    return body


def _list(value: Any, loc: tuple, max_items: int, what: str) -> list:
    if not isinstance(value, list):
        raise Invalid.one(loc, "Input should be a valid list", "list_type")
    if len(value) > max_items:
        raise TooLarge(f"at most {max_items:,} {what} per request, got {len(value):,}")
    return value


def _id(value: Any) -> bool:
    return type(value) is int and 1 <= value <= MAX_ID


def dataset_create(raw: bytes, max_rows: int) -> tuple[dict, list]:
    """``POST /datasets``: ``(settings, datapoints)``."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise Invalid.one(("body",), "the body must be a JSON object", "model_attributes_type")
    rows = body.get("data")
    rows = [] if rows is None else _list(rows, ("body", "data"), max_rows, "datapoints")
    try:
        settings = DatasetSettings.model_validate({k: v for k, v in body.items() if k != "data"})
    except ValidationError as exc:
        raise Invalid(validation_items(exc.errors(), ("body",))) from None
    return settings.model_dump(), rows


def dataset_append(raw: bytes, max_rows: int) -> list:
    """``PUT /datasets/{id}``: the datapoints."""
    body = _object(parse_json(raw), {"data"}, {"data"})
    return _list(body["data"], ("body", "data"), max_rows, "datapoints")


def datapoints_patch(raw: bytes, max_rows: int) -> list[dict]:
    """``PATCH /datasets/{id}/datapoints``: ``[{id, data}]``."""
    body = _object(parse_json(raw), {"data"}, {"data"})
    items = _list(body["data"], ("body", "data"), max_rows, "datapoints")
    problems = []
    for i, item in enumerate(items):
        loc = ["body", "data", i]
        if not isinstance(item, dict):
            problems.append({"loc": loc, "msg": "expected {id, data}", "type": "model_attributes_type"})
            continue
        for k in item:
            if k not in ("id", "data"):
                problems.append({"loc": [*loc, k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"})
        if not _id(item.get("id")):
            problems.append({"loc": [*loc, "id"], "msg": "a datapoint id (a positive integer)", "type": "int_type"})
        if not isinstance(item.get("data"), dict):
            problems.append({"loc": [*loc, "data"], "msg": "the datapoint's data must be an object", "type": "dict_type"})
        if len(problems) >= 50:
            break
    if problems:
        raise Invalid(problems)
    return items


def datapoints_delete(raw: bytes, max_rows: int) -> list[int]:
    """``POST /datasets/{id}/datapoints/delete``: the ids."""
    body = _object(parse_json(raw), {"ids"}, {"ids"})
    ids = _list(body["ids"], ("body", "ids"), max_rows, "datapoint ids")
    bad = [i for i, v in enumerate(ids) if not _id(v)]
    if bad:
        raise Invalid([
            {"loc": ["body", "ids", i], "msg": "a datapoint id (a positive integer)", "type": "int_type"}
            for i in bad[:50]
        ])
    return ids


def validation_items(errors: list[dict], prefix: tuple = ()) -> list[dict]:
    """pydantic/FastAPI error dicts reduced to ``{loc, msg, type}``: the ``input`` (which
    may hold datapoint values) and ``ctx``/``url`` members are dropped."""
    return [
        {"loc": [*prefix, *[p if isinstance(p, (str, int)) else str(p) for p in e.get("loc", ())]],
         "msg": str(e.get("msg", "")), "type": str(e.get("type", "value_error"))}
        for e in errors
    ]
