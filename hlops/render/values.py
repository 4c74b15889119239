"""Small, shared ways of showing values and changes, for the text and markdown renderers."""

from __future__ import annotations

import difflib
from typing import Any

import orjson

from hlops.plan import Action, AttributeChange, DataChange, ResourceChange

ACTION_PHRASE = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
    Action.NOOP: "is up to date",
}

# Data loss first, then replacements, deletes, updates, creates (most risky first).
RISK_ORDER = {Action.REPLACE: 1, Action.DELETE: 2, Action.UPDATE: 3, Action.CREATE: 4, Action.NOOP: 5}


def risk_key(change: ResourceChange) -> tuple[int, int, str]:
    return (0 if change.data_loss else 1, RISK_ORDER[change.action], change.address)


def is_pruned(change: ResourceChange) -> bool:
    """A delete made by ``--prune`` (see ``hlops.diff.PRUNE_NOTE``): an owned remote
    resource no manifest declares."""
    return change.action == Action.DELETE and any(n.startswith("pruned:") for n in change.notes)


def show(value: Any) -> str:
    """A value on one line: strings quoted, lists and maps compact, nothing as (none)."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        if "\n" in value:
            lines = value.count("\n") + (0 if value.endswith("\n") else 1)
            return f"<{lines} lines of text>"
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        # An attribute left unset inside a map says nothing: {data_type: "text"}.
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value)


def flatten(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """``{"a": {"b": 1}}`` -> ``[(("a", "b"), 1)]``; lists and empty maps are leaves."""
    if isinstance(value, dict) and value:
        out = []
        for key, item in value.items():
            out.extend(flatten(item, (*prefix, str(key))))
        return out
    return [(prefix, value)]


def resource_lines(value: dict[str, Any] | None) -> list[str]:
    """A whole resource (created or destroyed) as ``path: value`` lines, without the
    attributes left at their empty default (no description, no tagging input, no source),
    which say nothing in a review; a label without a description is just its path."""
    lines = []
    for path, item in flatten(value or {}):
        if path[0] == "name" or _unset(path, item):
            continue
        dotted = ".".join(path)
        lines.append(dotted if item is None else f"{dotted}: {show(item)}")
    return lines


def _unset(path: tuple[str, ...], value: object) -> bool:
    if len(path) > 1 and path[-2] == "labels":
        return False
    return (
        (value is None and path[-1] in ("description", "input", "key"))
        or (value == [] and path[-1] == "from")
        or (value == {} and path[-1] == "labels")
    )


def text_diff(before: str | None, after: str | None, name: str) -> list[str]:
    """A unified diff of two texts (the guidelines), without the file header noise."""
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        (after or "").splitlines(),
        fromfile=f"{name} (remote)",
        tofile=f"{name} (manifest)",
        lineterm="",
        n=2,
    )
    return list(lines)


def is_text_block(change: AttributeChange) -> bool:
    return any(isinstance(v, str) and "\n" in v for v in (change.before, change.after))


def value_suffix(change: AttributeChange) -> str:
    """``": value"`` for an added or removed attribute that has one (a label without a
    description has none)."""
    value = change.after if change.kind == "add" else change.before
    return "" if value is None else f": {show(value)}"


def data_line(data: DataChange) -> str:
    """``datapoints: +120 ~3 -0 (of 200 in data/x.jsonl)`` — counts only, never content."""
    if data.streamed:
        return (f"every row of {data.source or 'the data'} to add, checked, counted and sent in one "
                "pass (the dataset has no rows yet; the counts are in the apply's report)")
    parts = [f"+{data.add:,} to add", f"~{data.change:,} to change"]
    if data.prune or data.remove:
        parts.append(f"-{data.remove:,} to remove")
    where = f" from {data.source}" if data.source else ""
    text = f"{', '.join(parts)} ({data.local_rows:,} rows{where}"
    if data.remote_rows:
        text += f", {data.remote_rows:,} remote"
    text += ")"
    if data.unmatched_remote and not data.prune:
        text += f"; {data.unmatched_remote:,} remote rows not in the file are kept (prune_data is off)"
    return text


def cost_line(data: DataChange) -> str | None:
    if not data.has_changes or data.streamed:
        return None
    text = f"sends {human_bytes(data.bytes_to_send)} in {data.calls:,} call{'s' if data.calls != 1 else ''}"
    if data.estimated_seconds is not None:
        text += f", about {human_seconds(data.estimated_seconds)} at the last rate seen"
    return text


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def human_seconds(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
