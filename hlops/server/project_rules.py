"""The rules a project's inputs, outputs and users must follow, and what a PATCH may change.

Pure functions over plain dicts (the request as pydantic validated it, and the fields the
organisation has), so the SQLite store and any other store share them. Every problem of a
request is collected and reported at once, in FastAPI's 422 shape, located in the body.

Inputs and outputs, normalised (labels and users may arrive in short forms)::

    input  {name, data_type, description, display_only, data_sources: [{field_id}]}
    output {name, description, task_type, data_sources: [{field_id}],
            labels: [{name, description}], input}

What PATCH may change, per docs/api.md: an input or output of an existing name may change
``description`` (and an input ``display_only``); an output may gain labels (and change their
descriptions) and data sources; new names are added. Anything else -- a removed or retyped
input/output, a removed label or data source, a changed input source or tagging ``input``
-- needs a replacement of the project and is a 422 that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hlops.server.store import Invalid

# which field type an output's data sources must have, per task type
SOURCE_TYPE = {
    "classification": "categorical",
    "multilabel_classification": "categorical",
    "sequence_tagging": "character_offsets",
}


@dataclass
class Problems:
    items: list[dict] = field(default_factory=list)

    def add(self, loc: tuple[Any, ...], msg: str, type_: str = "value_error") -> None:
        self.items.append({"loc": ["body", *loc], "msg": msg, "type": type_})

    def raise_any(self) -> None:
        if self.items:
            raise Invalid(self.items)


def normalise_users(users: list[Any], problems: Problems) -> list[dict]:
    """E-mails or ``{email, role}`` -> ``[{email, role}]`` sorted by e-mail; an e-mail listed
    twice (ignoring case) is a problem."""
    out: dict[str, dict] = {}
    for i, user in enumerate(users):
        entry = {"email": user, "role": "annotator"} if isinstance(user, str) else dict(user)
        folded = entry["email"].lower()
        if folded in out:
            problems.add(("users", i), f"user {entry['email']!r} is listed twice", "duplicate")
            continue
        out[folded] = {"email": entry["email"], "role": entry.get("role") or "annotator"}
    return sorted(out.values(), key=lambda u: u["email"])


def normalise_io(inputs: list[dict], outputs: list[dict]) -> tuple[list[dict], list[dict]]:
    ins = [
        {
            "name": i["name"],
            "data_type": i["data_type"],
            "description": i.get("description"),
            "display_only": bool(i.get("display_only", False)),
            "data_sources": [{"field_id": s["field_id"]} for s in i.get("data_sources") or []],
        }
        for i in inputs
    ]
    outs = [
        {
            "name": o["name"],
            "description": o.get("description"),
            "task_type": o["task_type"],
            "data_sources": [{"field_id": s["field_id"]} for s in o.get("data_sources") or []],
            "labels": [
                {"name": lb, "description": None} if isinstance(lb, str)
                else {"name": lb["name"], "description": lb.get("description")}
                for lb in o.get("labels") or []
            ],
            "input": o.get("input"),
        }
        for o in outputs
    ]
    return ins, outs


def check_io(inputs: list[dict], outputs: list[dict], fields: dict[int, dict], problems: Problems) -> None:
    """Check normalised inputs and outputs against the organisation's ``fields``
    (field id -> ``{dataset_id, dataset, name, data_type}``)."""
    seen: set[str] = set()
    for i, inp in enumerate(inputs):
        if inp["name"] in seen:
            problems.add(("inputs", i, "name"), f"input {inp['name']!r} is listed twice", "duplicate")
        seen.add(inp["name"])
        datasets: dict[int, int] = {}
        for j, src in enumerate(inp["data_sources"]):
            loc = ("inputs", i, "data_sources", j, "field_id")
            f = fields.get(src["field_id"])
            if f is None:
                problems.add(loc, f"field {src['field_id']} not found", "unknown_field")
                continue
            if f["data_type"] != inp["data_type"]:
                problems.add(
                    loc,
                    f"input {inp['name']!r} is {inp['data_type']} but field {f['dataset']}.{f['name']} "
                    f"is {f['data_type']}",
                    "data_type_mismatch",
                )
            if f["dataset_id"] in datasets:
                problems.add(
                    loc,
                    f"input {inp['name']!r} reads two fields of dataset {f['dataset']!r}; an input "
                    "reads at most one field per dataset",
                    "duplicate",
                )
            datasets[f["dataset_id"]] = j
        if not inp["data_sources"]:
            problems.add(("inputs", i, "data_sources"), "an input needs at least one data source", "missing")
    text_inputs = {inp["name"] for inp in inputs if inp["data_type"] == "text"}
    all_inputs = {inp["name"] for inp in inputs}
    seen = set()
    for i, out in enumerate(outputs):
        if out["name"] in seen:
            problems.add(("outputs", i, "name"), f"output {out['name']!r} is listed twice", "duplicate")
        seen.add(out["name"])
        task, want = out["task_type"], SOURCE_TYPE[out["task_type"]]
        for j, src in enumerate(out["data_sources"]):
            loc = ("outputs", i, "data_sources", j, "field_id")
            f = fields.get(src["field_id"])
            if f is None:
                problems.add(loc, f"field {src['field_id']} not found", "unknown_field")
            elif f["data_type"] != want:
                problems.add(
                    loc,
                    f"a {task} output reads existing labels from a {want} field; "
                    f"{f['dataset']}.{f['name']} is {f['data_type']}",
                    "data_type_mismatch",
                )
        if len({s["field_id"] for s in out["data_sources"]}) != len(out["data_sources"]):
            problems.add(("outputs", i, "data_sources"), "a field is listed twice", "duplicate")
        names = [lb["name"] for lb in out["labels"]]
        for j, name in enumerate(names):
            if name in names[:j]:
                problems.add(("outputs", i, "labels", j, "name"), f"label {name!r} is listed twice", "duplicate")
        if not out["labels"] and not out["data_sources"]:
            problems.add(
                ("outputs", i),
                f"a {task} output needs labels, or a data source ({want} field) holding existing ones",
                "missing",
            )
        if task == "sequence_tagging":
            if not out["input"]:
                problems.add(
                    ("outputs", i, "input"),
                    "a sequence_tagging output needs `input`: the text input its spans point into",
                    "missing",
                )
            elif out["input"] not in text_inputs:
                why = "is not text" if out["input"] in all_inputs else "is not an input of this project"
                problems.add(("outputs", i, "input"), f"input {out['input']!r} {why}", "invalid_input")
        elif out["input"] is not None:
            problems.add(("outputs", i, "input"), "`input` is only for sequence_tagging outputs", "extra_forbidden")


@dataclass
class IoPatch:
    """What a PATCH does to inputs and outputs: the final lists (existing ones keep their
    ``id``) and whether any change needs the warm start to run again."""

    inputs: list[dict]
    outputs: list[dict]
    changed: bool
    new_sources: bool  # an output gained data sources, or a new output has some


def patch_io(
    current_inputs: list[dict], current_outputs: list[dict], desired_inputs: list[dict] | None,
    desired_outputs: list[dict] | None, fields: dict[int, dict], problems: Problems,
) -> IoPatch:
    ins = current_inputs if desired_inputs is None else desired_inputs
    outs = current_outputs if desired_outputs is None else desired_outputs
    check_io(ins, outs, fields, problems)
    changed = new_sources = False
    if desired_inputs is not None:
        ins, changed_in = _merge(current_inputs, desired_inputs, "inputs", _input_rule, problems)
        changed |= changed_in
    if desired_outputs is not None:
        outs, changed_out = _merge(current_outputs, desired_outputs, "outputs", _output_rule, problems)
        changed |= changed_out
        before = {o["name"]: {s["field_id"] for s in o["data_sources"]} for o in current_outputs}
        new_sources = any(
            {s["field_id"] for s in o["data_sources"]} - before.get(o["name"], set()) for o in outs
        )
    return IoPatch(ins, outs, changed, new_sources)


def _merge(current: list[dict], desired: list[dict], what: str, rule: Any, problems: Problems) -> tuple[list[dict], bool]:
    old = {c["name"]: c for c in current}
    names = {d["name"] for d in desired}
    gone = [name for name in old if name not in names]
    if gone:
        problems.add(
            (what,),
            f"{what[:-1]}(s) {', '.join(map(repr, gone))} missing: removing one needs a "
            "replacement of the project (which destroys its annotations)",
            "needs_replacement",
        )
    out, changed = [], False
    for i, d in enumerate(desired):
        before = old.get(d["name"])
        if before is None:
            out.append(d)
            changed = True
            continue
        rule(before, d, (what, i), problems)
        merged = {**d, "id": before["id"]}
        changed |= any(merged[k] != before[k] for k in d)
        out.append(merged)
    return out, changed


def _input_rule(before: dict, after: dict, loc: tuple, problems: Problems) -> None:
    name = before["name"]
    if after["data_type"] != before["data_type"]:
        problems.add((*loc, "data_type"), f"changing the type of input {name!r} needs a replacement of the project", "needs_replacement")
    if [s["field_id"] for s in after["data_sources"]] != [s["field_id"] for s in before["data_sources"]]:
        if {s["field_id"] for s in after["data_sources"]} != {s["field_id"] for s in before["data_sources"]}:
            problems.add(
                (*loc, "data_sources"),
                f"changing where input {name!r} reads from needs a replacement of the project",
                "needs_replacement",
            )


def _output_rule(before: dict, after: dict, loc: tuple, problems: Problems) -> None:
    name = before["name"]
    if after["task_type"] != before["task_type"]:
        problems.add((*loc, "task_type"), f"changing the task type of output {name!r} needs a replacement of the project", "needs_replacement")
    if after["input"] != before["input"]:
        problems.add((*loc, "input"), f"changing the input of output {name!r} needs a replacement of the project", "needs_replacement")
    lost = {s["field_id"] for s in before["data_sources"]} - {s["field_id"] for s in after["data_sources"]}
    if lost:
        problems.add(
            (*loc, "data_sources"),
            f"removing a data source of output {name!r} needs a replacement of the project",
            "needs_replacement",
        )
    dropped = [lb["name"] for lb in before["labels"] if lb["name"] not in {x["name"] for x in after["labels"]}]
    if dropped:
        problems.add(
            (*loc, "labels"),
            f"removing label(s) {', '.join(map(repr, dropped))} of output {name!r} needs a replacement of the project",
            "needs_replacement",
        )
