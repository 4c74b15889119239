"""Datasets: typed fields (and, through :mod:`hlops.data`, their datapoints).

Comparable shape::

    {"name": str, "description": str | None, "key": str | None,
     "fields": {field name: {"data_type": str, "description": str | None}}}

A field's type cannot change and a field cannot be removed through the API: either forces a
replacement of the dataset (and of every project reading it, whose field ids change).
"""

from __future__ import annotations

from typing import Any

from hlops.models import text_or_none
from hlops.providers.humanloop.kinds.base import Call, RemoteIndex


class DatasetKind:
    name = "dataset"
    manifest_kind = "Dataset"
    level = 0
    collection = "/datasets"

    def desired(self, manifest: Any, context: Any = None) -> dict[str, Any]:
        return manifest.comparable()

    def actual(self, raw: dict, index: RemoteIndex | None = None) -> dict[str, Any]:
        return {
            "name": raw["name"],
            "description": text_or_none(raw.get("description")),
            "key": raw.get("key"),
            "fields": {
                f["name"]: {
                    "data_type": f["data_type"],
                    "description": text_or_none(f.get("description")),
                }
                for f in raw["fields"]
            },
        }

    def replace_reason(self, path: tuple[str, ...], before: Any, after: Any, op: str) -> str | None:
        if path[0] != "fields":
            return None
        if len(path) == 2 and op == "remove":
            return f"field {path[1]!r} is removed"
        if len(path) == 3 and path[2] == "data_type":
            return f"field {path[1]!r} changes type from {before} to {after}"
        return None

    def loss(self, raw: dict) -> list[str]:
        n = raw.get("datapoint_count") or 0
        return [f"destroys {n:,} datapoint{'s' if n != 1 else ''}"] if n else []

    def depends_on(self, comparable: dict[str, Any]) -> set[str]:
        return set()

    def create_call(self, after: dict[str, Any], index: RemoteIndex) -> Call:
        return Call("POST", self.collection, self._body(after), create=True)

    def update_call(
        self, remote_id: int, before: dict, after: dict, index: RemoteIndex, version: int | None
    ) -> Call | None:
        full = self._body(after)
        body = {k: v for k, v in full.items() if k == "fields" or before.get(k) != after.get(k)}
        if before["fields"] == after["fields"]:
            body.pop("fields")
        if not body:
            return None
        return Call("PATCH", f"{self.collection}/{remote_id}", body, if_match=version)

    def delete_call(self, remote_id: int, version: int | None) -> Call:
        return Call("DELETE", f"{self.collection}/{remote_id}", if_match=version)

    @staticmethod
    def _body(after: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": after["name"],
            "description": after["description"],
            "key": after["key"],
            "fields": [
                {"name": name, "data_type": spec["data_type"], "description": spec["description"]}
                for name, spec in after["fields"].items()
            ],
        }


DATASET = DatasetKind()
