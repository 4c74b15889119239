"""pydantic validation errors -> human sentences located at the YAML node they are about.

pydantic says ``outputs.sentiment.task_type: Input should be 'classification', ...``; a user
should read ``tickets.yaml:14:16: 'classifcation' is not a task_type — did you mean
'classification'? (classification, multilabel_classification, sequence_tagging)``.

- The error's ``loc`` is walked through the document's :class:`~hlops.yamlsrc.Src` tree to
  find the line and column; steps the tree does not have (a short form expanded by the model,
  a union member's tag) are skipped, so the walk stops at the deepest node that was written.
- Unknown keys are located at the key and get a "did you mean" against the keys the model at
  that place accepts (found by walking the model classes along the same ``loc``).
- A misspelt required key gives two pydantic errors (extra ``task_typ``, missing
  ``task_type``); only the first is reported, with the suggestion.
- Errors raised by our own model validators (type ``hlops``) carry the attribute path in
  ``ctx["at"]``, appended to ``loc``.

Pure: no file access; the caller turns (line, col, message) into Problems.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from hlops import models
from hlops.models import nearest
from hlops.yamlsrc import Src

_PATTERN_NAMES = {
    models.NAME_PATTERN: "name",
    models.FIELD_NAME_PATTERN: "field_name",
    models.EMAIL_PATTERN: "email",
    models.REFERENCE_PATTERN: "reference",
}

# Keys that belong to the other kind: a better hint than "did you mean".
_OTHER_KIND_KEYS = {
    "Dataset": ("inputs", "outputs", "guidelines", "users", "review_existing_annotations"),
    "Project": ("fields", "key", "data", "prune_data"),
}

_MISSING_HINTS = {
    "name": "add `name:` with a name unique for its kind",
    "task_type": "add `task_type:` classification, multilabel_classification or "
    "sequence_tagging",
    "data_type": "add `data_type:` text, categorical or character_offsets",
    "from": "add `from:` with the source field, `dataset.field`",
    "email": "add `email:`",
}

_MAPPING_HINTS = {
    "fields": " — write one `name: type` per line, e.g. `text: text`",
    "inputs": " — write one `name: dataset.field` per line",
    "outputs": " — write one `name:` per output, with its task_type and labels",
}

_CHOICE_NAMES = {
    "data_type": "data type",
    "task_type": "task_type",
    "role": "role",
    "ensure": "value for ensure",
    "kind": "kind",
}


def value_phrase(value: Any, raw: str | None = None) -> str:
    """`an integer (5)`, `the text 'abc'`, `a list` ... for messages. Never long."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return f"a number ({raw or value})"
    if isinstance(value, float):
        return f"a number ({raw or value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional; for a union, prefer the member that is a model."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            picked = [a for a in args if _is_model(_unwrap(a)) or typing.get_origin(_unwrap(a)) in (dict, tuple, list)]
            annotation = picked[0] if picked else args[0]
            continue
        return annotation


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class validating the value at ``loc`` (None when it is not a model)."""
    current: Any = root
    for step in loc:
        current = _unwrap(current)
        if _is_model(current):
            field = _field_by_key(current, step)
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        if origin is dict:
            current = typing.get_args(current)[1]
        elif origin in (tuple, list):
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if _is_model(current) else None


def _field_by_key(model: type[BaseModel], key: Any):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def model_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def walk(src: Src, loc: tuple) -> tuple[Src, tuple]:
    """The deepest node along ``loc`` and the steps that were followed."""
    node, followed = src, []
    for step in loc:
        child = node.child(step)
        if child is None:
            continue
        node = child
        followed.append(step)
    return node, tuple(followed)


def describe(kind: str, loc: tuple) -> str:
    """What the object at ``loc`` is, for messages: `output 'sentiment'`, `user 2` ..."""
    if not loc:
        return {"Dataset": "this dataset", "Project": "this project"}.get(kind, kind)
    head = loc[0]
    if head in ("fields", "inputs", "outputs") and len(loc) >= 2:
        thing = f"{head[:-1]} {loc[1]!r}"
        if len(loc) >= 4 and loc[2] == "labels" and isinstance(loc[3], int):
            return f"label {loc[3] + 1} of {thing}"
        if len(loc) == 2:
            return thing
        return f"`{'.'.join(str(s) for s in loc[2:])}` of {thing}"
    if head == "users" and len(loc) >= 2 and isinstance(loc[1], int):
        return f"user {loc[1] + 1}"
    return "`" + ".".join(str(s) for s in loc) + "`"


def _key_name(loc: tuple) -> str:
    for step in reversed(loc):
        if isinstance(step, str) and not step.startswith("["):
            return step
    return "value"


def _item_name(loc: tuple) -> str:
    """`name`, `item 2 of users`, `output 'o'` ..."""
    if len(loc) == 2 and loc[0] in ("fields", "inputs", "outputs"):
        return f"{loc[0][:-1]} {loc[1]!r}"
    if loc and isinstance(loc[-1], int):
        return f"item {loc[-1] + 1} of `{_key_name(loc[:-1])}`"
    return f"`{_key_name(loc)}`"


def explain(errors: list[dict], src: Src, model: type[BaseModel], kind: str) -> list[tuple[int, int, str]]:
    """Located messages, one per problem, for the pydantic ``errors`` of one document."""
    errors = [dict(e) for e in errors]
    for error in errors:
        if error["type"] == "hlops":
            error["loc"] = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get("at", ()))
    extras = {(tuple(e["loc"][:-1]), e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"}
    out: list[tuple[int, int, str]] = []
    seen: set[tuple[int, int]] = set()
    comma_cut: set[tuple] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and _cut_at_comma(src, loc):
            if loc[:-1] not in comma_cut:  # once per mapping: it is one mistake
                comma_cut.add(loc[:-1])
                node, _ = walk(src, loc)
                out.append((*node.key_pos, (
                    f"`{loc[-1]}` is not a key but the rest of a value cut at a comma — inside "
                    "{...} a comma starts a new key; put the value in quotes")))
            continue
        if error["type"] == "missing":
            parent = loc[:-1]
            typos = [k for (p, k) in extras if p == parent and nearest(str(k), [loc[-1]])]
            if typos:
                continue  # reported as "unknown key ... did you mean" instead
        if walk(src, loc)[0].bad:
            continue  # already reported while reading the YAML (an unset ${VAR}, a bad tag)
        item = _one(error, loc, src, model, kind)
        if item is None:
            continue
        line, col, message = item
        if (line, col) in seen and error["type"] not in ("extra_forbidden", "missing"):
            continue  # one problem per node (e.g. several members of a union)
        seen.add((line, col))
        out.append(item)
    return out


def _cut_at_comma(src: Src, loc: tuple) -> bool:
    """`{name: a, description: b, c}` — YAML reads `c` as a key with no value."""
    parent, _ = walk(src, loc[:-1])
    node = parent.child(loc[-1])
    return bool(parent.flow and node is not None and node.tag == "null" and node.raw == ""
                and node.line == node.key_line and node.col == node.key_col)


def _one(error: dict, loc: tuple, src: Src, model: type[BaseModel], kind: str):
    etype, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if etype == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        node, _ = walk(src, loc)
        line, col = node.key_pos
        where = describe(kind, parent)
        other = "Project" if kind == "Dataset" else "Dataset"
        if not parent and key in _OTHER_KIND_KEYS.get(kind, ()):
            return line, col, (f"`{key}` belongs to a {other}, not a {kind} — remove it, or "
                               f"check `kind:`")
        valid = [k for k in model_keys(model_at(model, parent) or model) if k != "kind"]
        guess = nearest(str(key), valid)
        hint = f"did you mean `{guess[0]}`?" if guess else "valid keys: " + ", ".join(valid)
        return line, col, f"unknown key `{key}` in {where} — {hint}"
    if etype == "missing":
        parent, key = loc[:-1], loc[-1]
        node, _ = walk(src, parent)
        line, col = node.key_pos
        hint = _MISSING_HINTS.get(key, f"add `{key}:`")
        return line, col, f"{describe(kind, parent)} has no `{key}` — {hint}"
    if loc and loc[-1] == "[key]":
        node, _ = walk(src, loc[:-1])
        line, col = node.key_pos
        container = loc[-3] if len(loc) >= 3 else "field"
        thing = {"fields": "field", "inputs": "input", "outputs": "output"}.get(container, "key")
        return line, col, (f"{loc[-2]!r} is not a valid {thing} name — use letters, digits, "
                           "'_' and '-', starting with a letter or '_'")
    node, followed = walk(src, loc)
    line, col = node.line, node.col
    raw = node.raw
    name, item = _key_name(loc), _item_name(loc)
    got = value_phrase(value, raw)
    if etype in ("hlops", "short_form"):
        return line, col, error["msg"]
    if etype == "value_error":
        return line, col, str(error["msg"]).removeprefix("Value error, ")
    if etype == "literal_error":
        choices = [c.strip(" '") for c in ctx.get("expected", "").replace(" or ", ", ").split(",")]
        guess = nearest(str(value), choices) if isinstance(value, str) else []
        what = _CHOICE_NAMES.get(name, name)
        hint = f"did you mean {guess[0]!r}? ({', '.join(choices)})" if guess else (
            "use one of: " + ", ".join(choices))
        shown = repr(value) if isinstance(value, str) else got
        return line, col, f"{shown} is not a valid {what} — {hint}"
    if etype == "string_type":
        if isinstance(value, (int, float, bool)) and raw is not None:
            return line, col, f"{item} must be text, got {got} — quote it: \"{raw}\""
        return line, col, f"{item} must be text, got {got}"
    if etype in ("bool_parsing", "bool_type"):
        return line, col, f"{item} must be true or false, got {got}"
    if etype in ("int_parsing", "int_type", "int_from_float"):
        return line, col, f"{item} must be a whole number, got {got}"
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        low, high = _bounds(model_at(model, loc[:-1]) or model, name)
        return line, col, f"{item} must be between {low} and {high}, got {value}"
    if etype in ("dict_type", "model_type", "model_attributes_type"):
        inner = model_at(model, loc)
        keys = f" with keys {', '.join(model_keys(inner))}" if inner else ""
        hint = _MAPPING_HINTS.get(loc[-1] if loc else "", "")
        return line, col, f"{item} must be a mapping{keys}, got {got}{hint}"
    if etype in ("tuple_type", "list_type"):
        return line, col, f"{item} must be a list, got {got} — write one `- item` per line"
    if etype == "string_pattern_mismatch":
        return line, col, _pattern_message(_PATTERN_NAMES.get(ctx.get("pattern")), item, value)
    if etype == "string_too_short":
        return line, col, f"{item} must not be empty"
    if etype == "string_too_long":
        return line, col, (f"{item} is {len(str(value))} characters long — at most "
                           f"{ctx.get('max_length')}")
    dotted = ".".join(str(s) for s in loc) or kind
    return line, col, f"`{dotted}`: {error.get('msg')}"


def _bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    field = model.model_fields.get(name)
    low = high = "?"
    for meta in getattr(field, "metadata", ()):
        low = getattr(meta, "ge", None) or low
        high = getattr(meta, "le", None) or high
    return low, high


def _pattern_message(which: str | None, item: str, value: Any) -> str:
    if which == "name":
        return (f"{value!r} is not a valid name — 1 to 200 characters, no '/', tab, newline or NUL, "
                "no spaces at either end")
    if which == "field_name":
        return (f"{value!r} is not a valid field name — use letters, digits, '_' and '-', "
                "starting with a letter or '_'")
    if which == "email":
        return f"{value!r} is not an e-mail address — e.g. annotator@example.com"
    if which == "reference":
        return f"{value!r} is not a field reference — write dataset.field, e.g. support-tickets.text"
    return f"{item} has the wrong form ({value!r})"
