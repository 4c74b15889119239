"""Synthetic plans for the pure renderer tests: deterministic, no server."""

from __future__ import annotations

from hlops.diff import PRUNE_NOTE
from hlops.plan import Action, AttributeChange, DataChange, Plan, ResourceChange


def project_shape(name: str, labels: dict[str, str | None], guidelines: str | None = None) -> dict:
    return {
        "name": name,
        "description": f"Project {name}",
        "guidelines": guidelines,
        "review_existing_annotations": True,
        "inputs": {"text": {"data_type": "text", "description": None, "display_only": False, "from": [f"ds-{name}.text"]}},
        "outputs": {"label": {"task_type": "classification", "description": None, "from": [], "labels": labels, "input": None}},
        "users": {"owner@example.com": "owner"},
    }


def dataset_shape(name: str) -> dict:
    return {
        "name": name,
        "description": None,
        "key": "id",
        "fields": {"id": {"data_type": "text", "description": None}, "text": {"data_type": "text", "description": None}},
    }


def big_plan(projects: int = 240, huge_guidelines_lines: int = 4000) -> Plan:
    """More than 65,000 characters of changes of every kind, and one change (a guidelines
    rewrite) too long for a comment on its own."""
    changes: list[ResourceChange] = []
    for i in range(projects):
        name = f"team-a-project-{i:03d}"
        before = project_shape(name, {"a": None, "b": None})
        labels = {"a": None, "b": None, **{f"new-{j}": f"Label {j} of project {i}" for j in range(8)}}
        after = project_shape(name, labels)
        attrs = tuple(
            AttributeChange(path=("outputs", "label", "labels", f"new-{j}"), after=f"Label {j} of project {i}", op="add")
            for j in range(8)
        )
        changes.append(ResourceChange(
            kind="project", name=name, action=Action.UPDATE, before=before, after=after, changes=attrs,
            remote_id=1000 + i, remote_version=3, source=f"manifests/project-{i:03d}.yaml:2",
        ))
    old = "\n".join(f"Rule {i}: label carefully, line {i}." for i in range(huge_guidelines_lines)) + "\n"
    new = "\n".join(f"Rule {i}: label very carefully, line {i}." for i in range(huge_guidelines_lines)) + "\n"
    changes.append(ResourceChange(
        kind="project", name="team-a-handbook", action=Action.UPDATE,
        before=project_shape("team-a-handbook", {"x": None}, old),
        after=project_shape("team-a-handbook", {"x": None}, new),
        changes=(AttributeChange(path=("guidelines",), before=old, after=new),),
        remote_id=5000, remote_version=9, source="manifests/handbook.yaml:2",
    ))
    changes.append(ResourceChange(
        kind="dataset", name="team-a-retyped", action=Action.REPLACE,
        before=dataset_shape("team-a-retyped"), after=dataset_shape("team-a-retyped") | {"key": None},
        changes=(AttributeChange(path=("fields", "text", "data_type"), before="text", after="categorical", forces_replace=True),),
        replace_reasons=("field 'text' changes type from text to categorical",),
        data_loss=("destroys 1,200 datapoints",), remote_id=6000, remote_version=2,
        data=DataChange(source="data/retyped.jsonl", key="id", local_rows=1200, add=1200, fingerprint="f" * 64),
    ))
    changes.append(ResourceChange(
        kind="dataset", name="team-a-old", action=Action.DELETE, before=dataset_shape("team-a-old"),
        data_loss=("destroys 40 datapoints",), remote_id=6001, remote_version=1, notes=(PRUNE_NOTE,),
    ))
    changes.append(ResourceChange(
        kind="dataset", name="team-a-new", action=Action.CREATE, after=dataset_shape("team-a-new"),
        data=DataChange(source="data/new.jsonl", key="id", local_rows=10, add=10, fingerprint="e" * 64, bytes_to_send=1234, calls=1),
        source="manifests/new.yaml:2",
    ))
    unmanaged = tuple(f"dataset/team-b-{i:03d}" for i in range(70))
    return Plan(
        hlops_version="0.1.0", base_url="http://127.0.0.1:1", changes=tuple(changes), unmanaged=unmanaged,
        prune=True, manifests=("manifests",),
    )
