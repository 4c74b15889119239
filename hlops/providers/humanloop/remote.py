"""Read the actual state once: every dataset and project of the organisation, paginated.

The result is the input of the pure diff: nothing downstream asks the remote again while a
plan is built (datapoints are compared through the digest by :mod:`hlops.data`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hlops.providers.humanloop.client import Client
from hlops.diff import Actual
from hlops.providers.humanloop.kinds import KINDS
from hlops.providers.humanloop.kinds.base import RemoteIndex


@dataclass
class RemoteState:
    index: RemoteIndex = field(default_factory=RemoteIndex)

    def actual(self) -> list[Actual]:
        """Every remote resource in the comparable shape of its kind."""
        out = []
        for kind, items in (("dataset", self.index.datasets), ("project", self.index.projects)):
            for raw in items.values():
                out.append(
                    Actual(
                        kind=kind,
                        name=raw["name"],
                        id=raw["id"],
                        version=raw.get("version", 0),
                        comparable=KINDS[kind].actual(raw, self.index),
                        raw=raw,
                    )
                )
        return out

    def by_name(self, kind: str, name: str) -> dict | None:
        items = self.index.datasets if kind == "dataset" else self.index.projects
        return next((raw for raw in items.values() if raw["name"] == name), None)


def read(client: Client, renames: dict[str, str] | None = None) -> RemoteState:
    """List every dataset and project.

    ``renames`` maps an old dataset name to the new one a manifest gives it with
    ``renamed_from``, so projects reading it compare under the new name.
    """
    state = RemoteState()
    renames = renames or {}
    for raw in client.paginate(KINDS["dataset"].collection):
        state.index.add_dataset(raw, renames.get(raw["name"]))
    for raw in client.paginate(KINDS["project"].collection):
        state.index.projects[raw["id"]] = raw
    return state
