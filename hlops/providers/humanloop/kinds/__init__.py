"""Per-kind knowledge of the Humanloop API, behind one boundary.

Each kind module (:mod:`.dataset`, :mod:`.project`) is pure: it turns a manifest and an API
object into the same *comparable* shape (names, no ids, no server-managed values), says which
attribute changes force a replacement and what a destroy loses, and builds request bodies.
The engine (diff, plan, render, apply) only talks to kinds through :class:`Kind`; a second
provider would bring its own kinds and client, not a new engine.
"""

from hlops.providers.humanloop.kinds.base import Call, Kind, RemoteIndex
from hlops.providers.humanloop.kinds.dataset import DATASET
from hlops.providers.humanloop.kinds.project import PROJECT

KINDS: dict[str, Kind] = {DATASET.name: DATASET, PROJECT.name: PROJECT}
ORDER = sorted(KINDS.values(), key=lambda k: k.level)

__all__ = ["Call", "Kind", "RemoteIndex", "KINDS", "ORDER", "DATASET", "PROJECT"]
