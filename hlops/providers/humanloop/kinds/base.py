"""What every kind provides, and the remote index the kinds read ids and names from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol



@dataclass(frozen=True)
class Call:
    """One API call, described as data: apply executes it, tests can inspect it."""

    method: str
    path: str
    body: Any = None
    create: bool = False  # creates a named resource: never re-sent without a name check
    if_match: int | None = None


@dataclass
class RemoteIndex:
    """Ids and names of what exists remotely, kept up to date while apply runs.

    ``fields`` maps a field id to ``(dataset id, field name, data type)``; ``dataset_names``
    maps a dataset id to the name it has *after* the plan (so a dataset renamed in the same
    plan does not make every project reading it look changed).
    """

    datasets: dict[int, dict] = field(default_factory=dict)  # id -> API object
    projects: dict[int, dict] = field(default_factory=dict)
    dataset_names: dict[int, str] = field(default_factory=dict)

    def add_dataset(self, raw: dict, planned_name: str | None = None) -> None:
        self.datasets[raw["id"]] = raw
        self.dataset_names[raw["id"]] = planned_name or raw["name"]

    def field_ref(self, field_id: int) -> str | None:
        """``"dataset-name.field"`` of a field id, under the dataset's planned name."""
        for ds_id, ds in self.datasets.items():
            for f in ds["fields"]:
                if f["id"] == field_id:
                    return f"{self.dataset_names.get(ds_id, ds['name'])}.{f['name']}"
        return None

    def field_id(self, ref: str) -> int | None:
        """The id of ``"dataset-name.field"`` (by planned name), or None."""
        ds_name, _, f_name = ref.rpartition(".")
        for ds_id, ds in self.datasets.items():
            if self.dataset_names.get(ds_id, ds["name"]) == ds_name:
                for f in ds["fields"]:
                    if f["name"] == f_name:
                        return f["id"]
        return None

    def dependents(self, kind: str, remote_id: int) -> list[tuple[str, dict]]:
        """What must be replaced with a destroyed resource: a dataset's readers (their
        sources are field ids, which die with the dataset)."""
        if kind != "dataset":
            return []
        return [("project", raw) for raw in self.readers_of(remote_id)]

    def readers_of(self, dataset_id: int) -> list[dict]:
        """Projects that read a field of the dataset."""
        ids = {f["id"] for f in self.datasets.get(dataset_id, {}).get("fields", [])}
        out = []
        for project in self.projects.values():
            sources = [
                s["field_id"]
                for io in (*project.get("inputs", []), *project.get("outputs", []))
                for s in io.get("data_sources") or []
            ]
            if ids.intersection(sources):
                out.append(project)
        return out


class Kind(Protocol):
    name: str  # "dataset"
    manifest_kind: str  # "Dataset"
    level: int  # creation order: lower first; deletes run in reverse
    collection: str  # "/datasets"

    def desired(self, manifest: Any, context: Any) -> dict[str, Any]: ...

    def actual(self, raw: dict, index: RemoteIndex) -> dict[str, Any]: ...

    def replace_reason(self, path: tuple[str, ...], before: Any, after: Any, op: str) -> str | None: ...

    def loss(self, raw: dict) -> list[str]: ...

    def depends_on(self, comparable: dict[str, Any]) -> set[str]: ...

    def create_call(self, after: dict[str, Any], index: RemoteIndex) -> Call: ...

    def update_call(
        self, remote_id: int, before: dict, after: dict, index: RemoteIndex, version: int | None
    ) -> Call | None: ...

    def delete_call(self, remote_id: int, version: int | None) -> Call: ...
