"""Read the actual state once: every dataset and project of the organisation, paginated.

The result (:class:`RemoteState`, the :class:`hlops.provider.RemoteState` of this provider)
is the input of the pure diff: nothing downstream asks the remote again while a plan is
built (datapoints are compared through the digest by :mod:`hlops.providers.humanloop.data`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hlops.errors import ApiError
from hlops.provider import Actual
from hlops.providers.humanloop.kinds import KINDS
from hlops.providers.humanloop.kinds.base import RemoteIndex

if TYPE_CHECKING:
    from hlops.providers.humanloop.client import Client


@dataclass
class RemoteState:
    index: RemoteIndex = field(default_factory=RemoteIndex)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def _items(self, kind: str) -> dict[int, dict]:
        return self.index.datasets if kind == "dataset" else self.index.projects

    def actual(self) -> list[Actual]:
        """Every remote resource in the comparable shape of its kind."""
        out = []
        for kind in ("dataset", "project"):
            for raw in self._items(kind).values():
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

    def get(self, kind: str, remote_id: Any) -> dict | None:
        return self._items(kind).get(remote_id)

    def by_name(self, kind: str, name: str) -> dict | None:
        return next((raw for raw in self._items(kind).values() if raw["name"] == name), None)

    def names(self, kind: str) -> list[str]:
        return [raw["name"] for raw in self._items(kind).values()]

    def comparable(self, kind: str, raw: dict) -> dict[str, Any]:
        return KINDS[kind].actual(raw, self.index)

    def dependents(self, kind: str, remote_id: Any) -> list[tuple[str, dict]]:
        return self.index.dependents(kind, remote_id)

    def remember(self, kind: str, raw: dict) -> None:
        with self.lock:
            if kind == "dataset":
                self.index.add_dataset(raw)
            else:
                self.index.projects[raw["id"]] = raw

    def forget(self, kind: str, remote_id: Any) -> None:
        with self.lock:
            self._items(kind).pop(remote_id, None)

    def last_applied(self, kind: str, name: str) -> Any:
        raw = self.by_name(kind, name)
        return (raw or {}).get("last_applied")


def read(client: Client, renames: dict[str, str] | None = None) -> RemoteState:
    """List every dataset and project.

    ``renames`` maps an old dataset name to the new one a manifest gives it with
    ``renamed_from``, so projects reading it compare under the new name.
    """
    state = RemoteState()
    renames = renames or {}
    for raw in _datasets(client):
        state.index.add_dataset(raw, renames.get(raw["name"]))
    for raw in client.paginate(KINDS["project"].collection):
        state.index.projects[raw["id"]] = raw
    return state


def _datasets(client: Client) -> list[dict]:
    """Every dataset, each with its ``digest`` at one bucket ([ext] ``include=digest``: what
    a no-op data check needs, so it makes no call of its own). A server that refuses the
    parameter (an older hlops server: 422 at ``query.include``) is asked without it; one that
    ignores it lists no ``digest``, and each data check then reads its dataset's digest."""
    collection = KINDS["dataset"].collection
    try:
        return list(client.paginate(collection, include="digest"))
    except ApiError as exc:
        if exc.status != 422 or "include" not in str(exc.detail):
            raise
        return list(client.paginate(collection))
