"""Drift: where the remote no longer matches the manifests, said from the remote's side.

A drift report is read off a Plan (the plan is the difference; drift is the same difference
told as "what the remote has now" rather than "what apply will do"), plus the owned remote
resources no manifest declares. Pure: no I/O.

Statuses:

- ``changed``: attributes differ (each with the manifest's and the remote's value) and/or
  datapoints differ (counts only);
- ``missing``: declared, not found remotely;
- ``present``: declared ``ensure: absent``, still exists remotely;
- ``undeclared``: owned by this repository (hlops.yaml ``owns``), declared by no manifest.

Attributes under ``lifecycle.ignore_changes`` are not drift (the plan already leaves them
out), and neither are remote datapoints missing from a data file when ``prune_data`` is off
(the manifest does not claim them): those are counted as a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hlops.plan import Action, Plan, ResourceChange
from hlops.render.values import is_pruned, show, text_diff


@dataclass(frozen=True)
class AttributeDrift:
    path: str
    manifest: Any
    remote: Any


@dataclass(frozen=True)
class ResourceDrift:
    address: str
    status: str  # "changed" | "missing" | "present" | "undeclared"
    source: str | None = None
    attributes: tuple[AttributeDrift, ...] = ()
    data: dict[str, int] = field(default_factory=dict)  # counts: missing_remotely, differ, extra_remotely
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "source": self.source,
            "attributes": [a.__dict__ for a in self.attributes],
            "data": self.data,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class DriftReport:
    resources: tuple[ResourceDrift, ...]
    unmanaged: tuple[str, ...]  # not owned, not declared: not drift, listed for information
    notes: tuple[str, ...]
    plan_id: str

    @property
    def drifted(self) -> bool:
        return bool(self.resources)

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drifted,
            "resources": [r.to_json() for r in self.resources],
            "unmanaged": list(self.unmanaged),
            "notes": list(self.notes),
            "plan_id": self.plan_id,
        }


def drift_report(plan: Plan, owned_undeclared: list[str]) -> DriftReport:
    out: list[ResourceDrift] = []
    notes: list[str] = []
    for change in plan.changes:
        if is_pruned(change):
            out.append(ResourceDrift(change.address, "undeclared"))
            continue
        if change.data is not None and change.data.unmatched_remote and not change.data.prune:
            n = change.data.unmatched_remote
            notes.append(
                f"{change.address}: {n:,} remote datapoint{'s' if n != 1 else ''} not in the data file "
                "(kept: prune_data is off, so not drift)"
            )
        if not change.has_changes:
            continue
        out.append(_resource(change))
    owned = set(owned_undeclared)
    out += [ResourceDrift(a, "undeclared") for a in owned_undeclared if a not in {r.address for r in out}]
    unmanaged = tuple(a for a in plan.unmanaged if a not in owned)
    return DriftReport(tuple(out), unmanaged, tuple(notes), plan.id)


def _resource(change: ResourceChange) -> ResourceDrift:
    if change.action == Action.CREATE:
        return ResourceDrift(change.address, "missing", change.source)
    if change.action == Action.DELETE:
        return ResourceDrift(change.address, "present", change.source)
    attrs = tuple(AttributeDrift(a.dotted, a.after, a.before) for a in change.changes)
    data: dict[str, int] = {}
    if change.action == Action.REPLACE:  # datapoint counts would be those of a new dataset
        reasons = tuple(f"to match the manifest, apply would replace it: {r}" for r in change.replace_reasons)
        return ResourceDrift(change.address, "changed", change.source, attrs, data, reasons)
    if change.data is not None and change.data.has_changes:
        d = change.data
        data = {"missing_remotely": d.add, "differ": d.change, "extra_remotely": d.remove}
    return ResourceDrift(change.address, "changed", change.source, attrs, data)


# --------------------------------------------------------------------------- text


def render_text(report: DriftReport) -> str:
    if not report.drifted:
        lines = ["No drift: the remote matches the manifests."]
    else:
        n = len(report.resources)
        lines = [f"Drift: the remote no longer matches the manifests ({n} resource{'s' if n != 1 else ''}).", ""]
        for r in report.resources:
            where = f"  ({r.source})" if r.source else ""
            if r.status == "missing":
                lines.append(f"  + {r.address}: declared, but not found remotely{where}")
            elif r.status == "present":
                lines.append(f"  - {r.address}: declared `ensure: absent`, but still exists remotely{where}")
            elif r.status == "undeclared":
                lines.append(f"  ? {r.address}: owned by this repository (hlops.yaml `owns`), declared by no manifest")
            else:
                lines.append(f"  ~ {r.address}{where}")
                for a in r.attributes:
                    lines += _attribute(a)
                if r.data:
                    lines.append("      datapoints: " + data_phrase(r.data))
                lines += [f"      ({note})" for note in r.notes]
            lines.append("")
        lines.append(
            "`hlops plan` shows how apply would put the manifests' values back; `hlops pull` takes "
            "the remote's values into the manifests."
        )
    for note in report.notes:
        lines.append(f"Note: {note}")
    if report.unmanaged:
        lines.append(f"Not owned and not declared (not drift): {', '.join(report.unmanaged)}")
    return "\n".join(lines) + "\n"


def _attribute(a: AttributeDrift) -> list[str]:
    if any(isinstance(v, str) and "\n" in v for v in (a.manifest, a.remote)):
        diff = text_diff(a.manifest, a.remote, a.path)
        diff = [line.replace("(remote)", "(manifest)", 1) if line.startswith("---") else
                line.replace("(manifest)", "(remote)", 1) if line.startswith("+++") else line for line in diff]
        return [f"      {a.path}:"] + [f"          {line}" for line in diff]
    if a.remote is None:
        return [f"      {a.path}: not set remotely (manifest: {show(a.manifest)})"]
    if a.manifest is None:
        return [f"      {a.path}: set remotely to {show(a.remote)} (not in the manifest)"]
    return [f"      {a.path}: remote {show(a.remote)}, manifest {show(a.manifest)}"]


def data_phrase(data: dict[str, int]) -> str:
    parts = []
    if data.get("missing_remotely"):
        parts.append(f"{data['missing_remotely']:,} rows of the data file missing remotely")
    if data.get("differ"):
        parts.append(f"{data['differ']:,} rows differ")
    if data.get("extra_remotely"):
        parts.append(f"{data['extra_remotely']:,} remote rows not in the data file")
    return ", ".join(parts)
