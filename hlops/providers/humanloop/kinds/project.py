"""Projects: inputs read from dataset fields, outputs (task + labels), guidelines, users.

Comparable shape::

    {"name", "description", "guidelines", "review_existing_annotations",
     "inputs":  {name: {"data_type", "description", "display_only", "from": [refs]}},
     "outputs": {name: {"task_type", "description", "from": [refs], "input",
                        "labels": {label: description}}},
     "users":   {email: role}}

References (``from``) are ``"dataset-name.field"`` strings, sorted, so the order a manifest
lists them in never shows as a difference. Removing or retyping an input or output, removing
a label or an output's source, changing where an input reads from, or changing a tagging
output's ``input`` forces a replacement — which destroys the project's annotations.
"""

from __future__ import annotations

from typing import Any, Protocol

from hlops.models import split_reference, text_or_none
from hlops.providers.humanloop.kinds.base import Call, RemoteIndex


class ProjectContext(Protocol):
    def field_type(self, ref: str) -> str | None: ...

    def guidelines(self, project_name: str) -> str | None: ...


class ProjectKind:
    name = "project"
    manifest_kind = "Project"
    level = 1
    collection = "/projects"

    def desired(self, manifest: Any, context: ProjectContext) -> dict[str, Any]:
        inputs = {}
        for name, spec in manifest.input_map().items():
            refs = sorted(spec.from_)
            inputs[name] = {
                "data_type": spec.data_type or context.field_type(refs[0]) if refs else spec.data_type,
                "description": text_or_none(spec.description),
                "display_only": spec.display_only,
                "from": refs,
            }
        outputs = {
            name: {
                "task_type": out.task_type,
                "description": text_or_none(out.description),
                "from": sorted(out.from_),
                "labels": {k: text_or_none(v) for k, v in sorted(out.label_map().items())},
                "input": out.input,
            }
            for name, out in manifest.outputs.items()
        }
        return {
            "name": manifest.name,
            "description": text_or_none(manifest.description),
            "guidelines": text_or_none(context.guidelines(manifest.name)),
            "review_existing_annotations": manifest.review_existing_annotations,
            "inputs": inputs,
            "outputs": outputs,
            "users": dict(sorted(manifest.user_roles().items())),
        }

    def actual(self, raw: dict, index: RemoteIndex) -> dict[str, Any]:
        def refs(io: dict) -> list[str]:
            out = []
            for source in io.get("data_sources") or []:
                ref = index.field_ref(source["field_id"])
                out.append(ref if ref is not None else f"<deleted field {source['field_id']}>")
            return sorted(out)

        return {
            "name": raw["name"],
            "description": text_or_none(raw.get("description")),
            "guidelines": text_or_none(raw.get("guidelines")),
            "review_existing_annotations": bool(raw.get("review_existing_annotations", True)),
            "inputs": {
                i["name"]: {
                    "data_type": i["data_type"],
                    "description": text_or_none(i.get("description")),
                    "display_only": bool(i.get("display_only", False)),
                    "from": refs(i),
                }
                for i in raw.get("inputs", [])
            },
            "outputs": {
                o["name"]: {
                    "task_type": o["task_type"],
                    "description": text_or_none(o.get("description")),
                    "from": refs(o),
                    "labels": {
                        label["name"]: text_or_none(label.get("description"))
                        for label in sorted(o.get("labels") or [], key=lambda x: x["name"])
                    },
                    "input": o.get("input"),
                }
                for o in raw.get("outputs", [])
            },
            "users": {
                u["email"]: u.get("role", "annotator")
                for u in sorted(raw.get("users") or [], key=lambda u: u["email"])
            },
        }

    def replace_reason(self, path: tuple[str, ...], before: Any, after: Any, op: str) -> str | None:
        section = path[0]
        if section not in ("inputs", "outputs"):
            return None
        what = section[:-1]
        if len(path) == 2:
            return f"{what} {path[1]!r} is removed" if op == "remove" else None
        attr = path[2]
        if section == "inputs" and attr in ("data_type", "from"):
            if attr == "from":
                return f"input {path[1]!r} changes its source from {_refs(before)} to {_refs(after)}"
            return f"input {path[1]!r} changes type from {before} to {after}"
        if section == "outputs":
            if attr in ("task_type", "input"):
                return f"output {path[1]!r} changes {attr} from {before} to {after}"
            if attr == "labels" and len(path) == 4 and op == "remove":
                return f"output {path[1]!r} loses label {path[3]!r}"
            if attr == "from" and set(before or ()) - set(after or ()):
                gone = sorted(set(before or ()) - set(after or ()))
                return f"output {path[1]!r} loses its source {_refs(gone)}"
        return None

    def loss(self, raw: dict) -> list[str]:
        n = raw.get("annotation_count") or 0
        if not n:
            return []
        text = f"destroys {n:,} annotation{'s' if n != 1 else ''}"
        if n >= 10:
            text += " and the model trained on them"
        return [text]

    def depends_on(self, comparable: dict[str, Any]) -> set[str]:
        refs = [
            ref
            for section in ("inputs", "outputs")
            for io in comparable[section].values()
            for ref in io["from"]
        ]
        return {f"dataset/{split_reference(ref)[0]}" for ref in refs}

    def create_call(self, after: dict[str, Any], index: RemoteIndex) -> Call:
        return Call("POST", self.collection, self._body(after, index), create=True)

    def update_call(
        self, remote_id: int, before: dict, after: dict, index: RemoteIndex, version: int | None
    ) -> Call | None:
        full = self._body(after, index)
        body = {k: v for k, v in full.items() if before.get(k) != after.get(k)}
        if not body:
            return None
        return Call("PATCH", f"{self.collection}/{remote_id}", body, if_match=version)

    def delete_call(self, remote_id: int, version: int | None) -> Call:
        return Call("DELETE", f"{self.collection}/{remote_id}", if_match=version)

    @staticmethod
    def _body(after: dict[str, Any], index: RemoteIndex) -> dict[str, Any]:
        def sources(refs: list[str]) -> list[dict[str, int]]:
            out = []
            for ref in refs:
                field_id = index.field_id(ref)
                if field_id is None:
                    raise LookupError(f"field {ref!r} does not exist remotely")
                out.append({"field_id": field_id})
            return out

        return {
            "name": after["name"],
            "description": after["description"],
            "guidelines": after["guidelines"],
            "review_existing_annotations": after["review_existing_annotations"],
            "inputs": [
                {
                    "name": name,
                    "data_type": spec["data_type"],
                    "description": spec["description"],
                    "display_only": spec["display_only"],
                    "data_sources": sources(spec["from"]),
                }
                for name, spec in after["inputs"].items()
            ],
            "outputs": [
                {
                    "name": name,
                    "task_type": spec["task_type"],
                    "description": spec["description"],
                    "data_sources": sources(spec["from"]),
                    "labels": [
                        {"name": label, "description": desc}
                        for label, desc in spec["labels"].items()
                    ],
                    **({"input": spec["input"]} if spec["input"] else {}),
                }
                for name, spec in after["outputs"].items()
            ],
            "users": [{"email": email, "role": role} for email, role in after["users"].items()],
        }


def _refs(refs: Any) -> str:
    if not refs:
        return "nothing"
    return ", ".join(refs) if isinstance(refs, (list, tuple)) else str(refs)


PROJECT = ProjectKind()
