"""The Plan: a frozen value that renderers print and apply executes.

A plan is built once from the desired state (manifests) and the actual state (one read of
the remote), and never asks the remote anything again. Its JSON form is the saved plan
(`hlops plan -o plan.json`) and the `--json` output; `format_version` changes only with an
incompatible change of that format (see docs/plan-format.md).

Vocabulary:

- a :class:`ResourceChange` is what happens to one resource (kind + name): ``create``,
  ``update``, ``replace``, ``delete`` or ``no-op``, with the attribute changes that make it,
  the attributes that force a replacement, the data loss it causes, and the remote ``id`` and
  ``version`` it was planned against;
- a :class:`DataChange` is what happens to a dataset's datapoints (counts only — a plan never
  holds a datapoint's content, since plans end up in public pull-request comments);
- :class:`Plan` orders the changes (datasets before the projects that read them) and keeps
  the summary.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = "1"
STREAMED = "stream"  # DataChange.decided_by of rows counted by the apply that sends them

# How a datapoint diff was computed and what it will cost: not part of a plan's identity.
_VOLATILE_DATA = ("bytes_to_send", "calls", "estimated_seconds", "buckets", "remote_rows_read",
                  "decided_by")


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "no-op": " "}[
            self.value
        ]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttributeChange(_Frozen):
    """One changed attribute: its path in the comparable shape, before and after."""

    path: tuple[str, ...]
    before: Any = None
    after: Any = None
    op: str = "change"  # "add" | "remove" | "change"
    forces_replace: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def kind(self) -> str:
        return self.op


class DataChange(_Frozen):
    """What happens to a dataset's datapoints. Counts, never content.

    ``fingerprint`` identifies the local data (SHA-256 over the row hashes in file order) so
    that applying a saved plan can refuse a data file that changed since.
    """

    source: str | None = None  # the data file, relative to the working directory; None = inline
    key: str | None = None  # the key field; None = rows matched by content hash
    local_rows: int = 0
    remote_rows: int = 0
    add: int = 0
    change: int = 0
    remove: int = 0  # rows that will be deleted (prune_data)
    remove_annotated: int = 0  # of those, rows carrying annotations
    unmatched_remote: int = 0  # remote rows not in the file, left alone (no prune_data)
    prune: bool = False
    fingerprint: str = ""
    bytes_to_send: int = 0
    calls: int = 0
    estimated_seconds: float | None = None
    examples: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # --show-data only
    unchanged: int = 0  # local rows already on the remote as they are
    buckets: int = 0  # the digest level the rows were compared at (0 = no remote to compare)
    remote_rows_read: int = 0  # rows of the remote digest the plan had to read
    remote_version: int | None = None  # the dataset version the digest was read at
    # how the rows were compared: "last_applied" (the dataset's record of its last apply
    # vouched for the file's bytes and the remote: no row read), "digest", "new", or
    # "stream" (STREAMED: every row is an add, and the rows are checked, counted and sent
    # in one pass by the apply; counts are 0 here, the apply's report has them)
    decided_by: str = ""
    notes: tuple[str, ...] = ()  # e.g. how rows are matched in a dataset without a key

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.remove) or self.streamed

    @property
    def streamed(self) -> bool:
        """Counted by the apply itself, in the pass that sends the rows (``hlops apply
        --auto-approve`` of a new or remote-empty dataset: no approval waits for counts)."""
        return self.decided_by == STREAMED

    @property
    def keyless(self) -> bool:
        return self.key is None


class ResourceChange(_Frozen):
    kind: str  # "dataset" | "project"
    name: str
    action: Action
    before: dict[str, Any] | None = None  # comparable shape, as read
    after: dict[str, Any] | None = None  # comparable shape, as desired
    changes: tuple[AttributeChange, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    data: DataChange | None = None
    data_loss: tuple[str, ...] = ()  # why this change destroys data; empty = it doesn't
    remote_id: int | None = None
    remote_version: int | None = None
    renamed_from: str | None = None
    prevent_destroy: bool = False
    depends_on: tuple[str, ...] = ()
    source: str | None = None  # "path:line" of the manifest that declares it
    notes: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def destroys(self) -> bool:
        return self.action in (Action.DELETE, Action.REPLACE)

    @property
    def has_changes(self) -> bool:
        return self.action != Action.NOOP or bool(self.data and self.data.has_changes)


class Summary(_Frozen):
    add: int = 0
    change: int = 0
    replace: int = 0
    destroy: int = 0
    data_loss: int = 0
    rows_add: int = 0
    rows_change: int = 0
    rows_remove: int = 0

    @property
    def line(self) -> str:
        return (
            f"Plan: {self.add} to add, {self.change} to change, {self.replace} to replace, "
            f"{self.destroy} to destroy."
        )


class Plan(_Frozen):
    format_version: str = FORMAT_VERSION
    hlops_version: str = ""
    base_url: str = ""
    changes: tuple[ResourceChange, ...] = ()
    unmanaged: tuple[str, ...] = ()  # remote resources no manifest declares (addresses)
    prune: bool = False
    destroy_mode: bool = False
    manifests: tuple[str, ...] = ()  # the manifest paths it was planned from (relative to cwd)
    targets: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> Summary:
        counts = {"add": 0, "change": 0, "replace": 0, "destroy": 0}
        rows = {"rows_add": 0, "rows_change": 0, "rows_remove": 0}
        for ch in self.changes:
            if ch.action == Action.CREATE:
                counts["add"] += 1
            elif ch.action == Action.UPDATE or (ch.action == Action.NOOP and ch.has_changes):
                counts["change"] += 1
            elif ch.action == Action.REPLACE:
                counts["replace"] += 1
            elif ch.action == Action.DELETE:
                counts["destroy"] += 1
            if ch.data:
                rows["rows_add"] += ch.data.add
                rows["rows_change"] += ch.data.change
                rows["rows_remove"] += ch.data.remove
        return Summary(**counts, **rows, data_loss=sum(1 for c in self.changes if c.data_loss))

    @property
    def has_changes(self) -> bool:
        return any(c.has_changes for c in self.changes)

    @property
    def id(self) -> str:
        """A short content hash: two plans with the same id make the same changes.

        It covers what the plan does and what it was made against (changes, remote ids and
        versions, data fingerprints, manifests, targets, prune/destroy), not where or how it
        was computed: the base URL, the hlops version and the datapoint cost estimates
        (bytes, calls, seconds, the digest level read) are left out, so planning the same
        state twice — on a pull request, then on main after the merge — gives the same id.
        Remote resources the plan leaves alone (``unmanaged``, and the notes about them) are
        left out too: another team creating a dataset does not make a reviewed plan stale.
        """
        body = self.model_dump(mode="json", exclude={"base_url", "hlops_version", "unmanaged", "notes"})
        for change in body["changes"]:
            data = change.get("data")
            if data:
                for volatile in _VOLATILE_DATA:
                    data.pop(volatile, None)
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]

    def change_for(self, address: str) -> ResourceChange | None:
        return next((c for c in self.changes if c.address == address), None)

    def destructive(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.data_loss]

    def protected(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.prevent_destroy and c.destroys]

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["summary"] = self.summary.model_dump()
        out["plan_id"] = self.id
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        data = {k: v for k, v in data.items() if k not in ("summary", "plan_id")}
        return cls.model_validate(data)
