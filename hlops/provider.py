"""The provider boundary: what the engine needs from a backend, and the registry that picks one.

The engine (manifest → validate → refs → diff → plan → render, apply's ordering, the local
data pass in :mod:`hlops.data`) is the same for every backend. Everything that knows a
backend's API — its calls and payloads, what forces a replacement, how its data is read and
written, its auth — lives in one package, ``hlops/providers/<name>/``, whose entry point is a
subclass of :class:`Provider`. The engine imports this module, never a provider package; a
provider is chosen by name (``provider:`` in ``hlops.yaml``, default ``humanloop``) through
:data:`PROVIDERS`. ``tests/engine/test_provider_boundary.py`` holds both sides to it.

How a provider is used, in order (each arrow is one method below)::

    Provider.connect(url=, api_key=, env=, settings=, options=)   flags + environment -> instance
    provider.kinds[kind].desired(manifest, context)               manifests -> comparable dicts
    provider.read(renames) -> RemoteState                         the remote, read once
    state.actual() -> [Actual]                                    remote -> comparable dicts
    kinds[kind].replace_reason(...) / loss(raw) / depends_on(...) used by the pure diff
    provider.data_vouched / plan_data(raw, DataSpec) -> DataChange   datapoints (tasks, rows)
    provider.create / update / delete (one change each)           apply, level by level
    provider.apply_data(raw, DataChange, DataSpec) -> DataReport  apply's datapoint sync

Writing a provider (``docs/providers.md`` has the checklist and the mapping table):

- **Kinds.** ``kinds`` maps the engine's resource kinds (``"dataset"``, ``"project"``: the
  manifest kinds, lower case) to objects of the :class:`Kind` protocol. ``desired`` and
  ``actual`` must produce the *same comparable shape* (names and references, no ids, no
  server-managed values): the diff compares them with DeepDiff, and the renderers show them.
  A backend without a separate thing for a kind (Label Studio has no datasets: a dataset's
  rows become a project's tasks) still returns a comparable for every declared resource it
  can represent — e.g. a dataset whose ``actual`` is read from the project that holds its
  tasks — and says what it cannot hold through :meth:`Provider.validate`.
- **Replacement and data loss.** ``replace_reason(path, before, after, op)`` returns a
  sentence when an attribute change cannot be made in place (the plan shows ``-/+`` and the
  reason); ``loss(raw)`` lists what destroying the resource loses ("destroys 12 annotations")
  — a non-empty loss makes apply refuse without ``--allow-data-loss``.
- **Remote state.** :meth:`Provider.read` reads everything once and returns a
  :class:`RemoteState`; nothing reads the remote while the diff runs. ``raw`` is the
  provider's own record of a resource (any dict); the engine reads only ``raw["id"]`` and
  ``raw["name"]`` and otherwise hands it back to the provider. ``Actual.version`` is what a
  saved plan records to refuse a stale apply (0 if the backend has none).
- **Execution.** ``create``/``update``/``delete`` execute one change and keep the
  ``RemoteState`` up to date (``remember``/``forget``). They may run concurrently within a
  level (the state must be thread-safe). A create must never make a duplicate when it is
  retried after a lost answer (look the name up first); a delete of what is already gone is
  success; an update whose ``version`` no longer matches raises
  :class:`~hlops.errors.PreconditionFailed`. Errors are HlopsErrors,
  never carrying a credential or a row's values.
- **Data.** A dataset's rows are the provider's to compare and sync. The local half is
  shared (:func:`hlops.data.prepare` checks and summarises a file once; :mod:`hlops.data.local`
  and :mod:`hlops.data.compare` compare local rows with remote ``{id, key, hash}`` rows). How
  the remote half is read is the provider's strategy: Humanloop compares a server-side
  bucketed digest and reads only differing buckets; a backend without one reads every row
  in pages and hashes client-side (say so in the plan's notes: it costs a full read).
  :meth:`Provider.plan_data` returns a :class:`~hlops.plan.DataChange` (counts only, never
  row content); :meth:`Provider.apply_data` writes what it counted, prunes only with
  ``DataSpec.prune``, and can be killed and rerun (rows are matched by key).
- **Capabilities.** ``capabilities`` names the commands the provider supports, from
  :data:`CAPABILITIES`. The engine calls :meth:`Provider.require` before any work, so an
  unsupported command fails at once with the provider's ``unsupported[capability]`` reason.
- **Config and auth.** ``variables`` lists the environment variables the provider reads (its
  URL and credentials; ``secret`` ones are never echoed); ``connect`` resolves flags,
  environment and ``hlops.yaml`` (``settings``) into a connected instance, raising
  :class:`~hlops.errors.SettingsError` with what to set when something is missing.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hlops.errors import SettingsError, Unsupported

if TYPE_CHECKING:
    from pathlib import Path

    from hlops.data.local import RowSource
    from hlops.errors import Problem
    from hlops.plan import DataChange


# --------------------------------------------------------------------------- registry

# name -> "module:Class". Loaded on first use, so choosing a provider imports only that one.
PROVIDERS: dict[str, str] = {
    "humanloop": "hlops.providers.humanloop:HumanloopProvider",
    "labelstudio": "hlops.providers.labelstudio:LabelStudioProvider",
}
DEFAULT_PROVIDER = "humanloop"


def provider_class(name: str | None = None) -> type[Provider]:
    """The provider registered as ``name`` (default :data:`DEFAULT_PROVIDER`)."""
    name = name or DEFAULT_PROVIDER
    target = PROVIDERS.get(name)
    if target is None:
        raise SettingsError(f"unknown provider {name!r} (known: {', '.join(sorted(PROVIDERS))})")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# --------------------------------------------------------------------------- capabilities

# What a provider may support, by the CLI command (or Python API function) that needs it.
CAPABILITIES: dict[str, str] = {
    "plan": "hlops plan / hlops apply / hlops destroy",
    "drift": "hlops drift",
    "pull": "hlops pull",
    "import": "hlops import",
    "export": "hlops export",
    "predict": "hlops predict",
    "annotations": "hlops annotations import / summary",
    "local": "--local (the embedded reference server)",
    "web": "hlops users token / hlops open (the annotation web app)",
}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Actual:
    """One resource as read from the remote, in its kind's comparable shape."""

    kind: str
    name: str
    id: Any  # the provider's id (int for Humanloop)
    version: int  # what a saved plan records; 0 when the backend has no versions
    comparable: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Variable:
    """An environment variable a provider reads (listed in docs and error messages)."""

    name: str  # "HLOPS_API_KEY"
    meaning: str  # "API key"
    secret: bool = False  # never echoed, logged or saved


@dataclass(frozen=True)
class DataSpec:
    """What the manifests say about one dataset's rows, for :meth:`Provider.plan_data` and
    :meth:`Provider.apply_data`."""

    fields: dict[str, str]  # field name -> data type
    key: str | None  # the field that identifies a row (None: rows match by content)
    rows: RowSource  # streams ``(line, row)``; checked and summarised by hlops.data
    source: str | None  # the data file, relative to the working directory (None: inline)
    prune: bool  # remove remote rows the data does not have (``prune_data``)


@dataclass(frozen=True)
class DataReport:
    """What :meth:`Provider.apply_data` wrote."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    calls: int = 0  # write calls
    bytes_sent: int = 0
    seconds: float = 0.0
    reused_plan: bool = False  # the diff plan_data computed in this process was reused

    @property
    def rows(self) -> int:
        return self.added + self.changed + self.removed

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "rows": self.rows}


class CallCount(Protocol):
    """Logical calls a provider made (retries not included): apply's summary line."""

    total: int
    writes: int
    bytes_sent: int


# --------------------------------------------------------------------------- protocols


class DesiredContext(Protocol):
    """What a kind's :meth:`Kind.desired` may ask about the rest of the manifests."""

    def field_type(self, ref: str) -> str | None: ...  # "dataset.field" -> data type

    def guidelines(self, project_name: str) -> str | None: ...  # text, read from its file


class Kind(Protocol):
    """One resource kind as a provider represents it. Pure: no I/O."""

    name: str  # the engine's kind: "dataset" | "project" (addresses are "kind/name")
    manifest_kind: str  # "Dataset" | "Project"
    level: int  # creation order: lower first; destroys run in reverse

    def desired(self, manifest: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable shape of a manifest model (:mod:`hlops.models`)."""

    def replace_reason(self, path: tuple[str, ...], before: Any, after: Any, op: str) -> str | None:
        """Why changing ``path`` (``op``: add | remove | change) needs a replacement, or None."""

    def loss(self, raw: dict) -> list[str]:
        """What destroying (or replacing) this remote resource loses; [] when nothing."""

    def depends_on(self, comparable: dict[str, Any]) -> set[str]:
        """Addresses this resource needs to exist first (``{"dataset/tickets"}``)."""

    # Optional: ``change_loss(raw, before, after) -> list[str]``, what an *in-place* update
    # from ``before`` to ``after`` loses (Label Studio: a label removed while annotations
    # exist). The diff calls it, when a kind has it, for every update; a non-empty answer
    # marks the change as data loss (apply refuses it without --allow-data-loss).


class RemoteState(Protocol):
    """What :meth:`Provider.read` read, kept up to date while apply runs. Thread-safe."""

    def actual(self) -> list[Actual]:
        """Every remote resource in the comparable shape of its kind."""

    def get(self, kind: str, remote_id: Any) -> dict | None:
        """The raw record of ``kind`` with ``remote_id``, or None."""

    def by_name(self, kind: str, name: str) -> dict | None:
        """The raw record of ``kind`` named ``name``, or None."""

    def names(self, kind: str) -> list[str]:
        """The names of every remote resource of ``kind``."""

    def comparable(self, kind: str, raw: dict) -> dict[str, Any]:
        """``raw`` in its kind's comparable shape (``pull`` writes manifests from it)."""

    def dependents(self, kind: str, remote_id: Any) -> list[tuple[str, dict]]:
        """``(kind, raw)`` of every resource that must be replaced when this one is
        destroyed or replaced (Humanloop: the projects reading a dataset's field ids)."""

    def remember(self, kind: str, raw: dict) -> None:
        """Record what a create or update returned."""

    def forget(self, kind: str, remote_id: Any) -> None:
        """Drop what a delete removed."""

    def last_applied(self, kind: str, name: str) -> Any:
        """The record of what hlops last applied to this resource's data, or None."""


class Web(Protocol):
    """The provider's annotation web app (``hlops users token``, ``hlops open``)."""

    def issue_token(self, email: str) -> dict: ...  # {email, token, projects: [{id, name, role}]}
    def project_url(self, name: str) -> str: ...
    def sign_in_url(self) -> str: ...


class Labelled(Protocol):
    """Predictions, the labelled-data export and annotation import of one provider
    (``hlops predict``/``export``/``annotations``). ``project`` is the raw record
    :meth:`find_project` returned. The files (input rows, export formats, annotation rows)
    are read by :mod:`hlops.labelfiles` before the provider is called; ``rows`` of
    ``resolve_annotations`` are its ``AnnotationRow`` objects. Located problems are ManifestErrors."""

    def find_project(self, name: str) -> dict: ...  # SettingsError when there is none

    def default_input(self, project: dict) -> str: ...  # the input bare texts fill

    def wait_for_models(self, project: dict, on_wait: Callable[[dict], None] | None = None) -> dict: ...

    def predict(self, project: dict, rows: list[dict], n_best: int = 1,
                lines: list[int] | None = None, source: str = "") -> list[dict]: ...

    def summary(self, project: dict) -> dict: ...  # counts; "annotated_datapoints" at least

    def export(self, project: dict, out: Path | None, fmt: str,
               progress: Callable[[int], None] | None = None, stdout: Any = None) -> int: ...

    def resolve_annotations(self, project: dict, source: str, rows: list) -> list: ...

    def import_annotations(self, project: dict, source: str, resolved: list,
                           progress: Callable[[int], None] | None = None, workers: int = 8) -> Any: ...


# --------------------------------------------------------------------------- the provider


class Provider(ABC):
    """One backend, connected. Subclass it in ``hlops/providers/<name>/`` and register it in
    :data:`PROVIDERS`. Class attributes describe it before connecting; methods do the work.
    """

    name: ClassVar[str]  # the registry name: "humanloop"
    kinds: ClassVar[Mapping[str, Kind]]  # "dataset" / "project" -> Kind
    capabilities: ClassVar[frozenset[str]]  # keys of CAPABILITIES
    unsupported: ClassVar[Mapping[str, str]] = {}  # capability -> why not / what to do instead
    variables: ClassVar[tuple[Variable, ...]] = ()  # environment variables it reads

    # ----------------------------------------------------------------- connecting

    @classmethod
    @abstractmethod
    def connect(cls, *, url: str | None, api_key: str | None, env: Mapping[str, str],
                settings: Any = None, options: Any = None) -> Provider:
        """Connect from flags (``url``, ``api_key``: None when not given), the environment
        and ``hlops.yaml`` (``settings``: :class:`hlops.models.Settings` or None).
        ``options`` are provider-specific (timeouts, retries). Raises SettingsError."""

    @classmethod
    def validate(cls, config: Any, locate: Callable[[str, str, tuple], tuple[str, int, int]]) -> list[Problem]:
        """Problems with manifests this backend cannot represent, each located with
        ``locate(manifest_kind, name, attribute_path) -> (file, line, col)``. Called by
        :func:`hlops.manifest.load` after the engine's own checks. Default: none."""
        return []

    @classmethod
    def supports(cls, capability: str) -> bool:
        return capability in cls.capabilities

    @classmethod
    def require(cls, capability: str) -> None:
        """Raise :class:`~hlops.errors.Unsupported` unless ``capability`` is supported."""
        if capability in cls.capabilities:
            return
        command = CAPABILITIES.get(capability, capability)
        reason = cls.unsupported.get(capability)
        raise Unsupported(
            f"{command} is not supported by the {cls.name} provider"
            + (f": {reason}" if reason else "")
        )

    @property
    @abstractmethod
    def target(self) -> str:
        """Where it is connected (a base URL), recorded in plans; never a credential."""

    @property
    @abstractmethod
    def calls(self) -> CallCount:
        """Calls made so far (apply reports the difference)."""

    @abstractmethod
    def stop(self) -> None:
        """Send no new call from now on; calls in flight finish (apply's first Ctrl-C).
        Later calls raise :class:`~hlops.errors.Interrupted`."""

    # ----------------------------------------------------------------- reading

    @abstractmethod
    def read(self, renames: Mapping[str, str] | None = None) -> RemoteState:
        """Read every remote resource once. ``renames`` maps an old dataset name to the new
        one a manifest gives it (``renamed_from``), so what reads it compares by the new one."""

    # ----------------------------------------------------------------- executing

    @abstractmethod
    def create(self, kind: str, after: dict[str, Any], state: RemoteState) -> dict:
        """Create ``after`` (comparable shape); returns its raw record (remembered in state)."""

    @abstractmethod
    def update(self, kind: str, remote_id: Any, before: dict[str, Any], after: dict[str, Any],
               version: int | None, state: RemoteState) -> dict | None:
        """Take the resource from ``before`` to ``after`` in place; None when there was
        nothing to send. Raises PreconditionFailed if ``version`` is no longer current."""

    @abstractmethod
    def delete(self, kind: str, remote_id: Any, version: int | None, state: RemoteState) -> None:
        """Delete the resource (already gone is success) and forget it in ``state``."""

    # ----------------------------------------------------------------- datapoints

    def data_vouched(self, state: RemoteState, name: str, spec: DataSpec) -> bool:
        """Whether the remote record of dataset ``name`` proves these very bytes of
        ``spec.source`` were applied (and so passed every check): the planner then skips
        the local check of a big file. Default: never."""
        return False

    def data_streamable(self, raw: dict | None, spec: DataSpec) -> bool:
        """Whether :meth:`apply_data` can check, count and send every row of ``spec`` in one
        pass when the plan did not read them (its DataChange ``streamed``): a dataset that
        does not exist yet (``raw`` None) or holds no rows. The planner asks only when no
        approval waits for the plan's counts. Default: never."""
        return False

    @abstractmethod
    def plan_data(self, raw: dict | None, spec: DataSpec, *, show_data: bool = False,
                  cache_dir: Path | None = None) -> DataChange:
        """Compare ``spec``'s rows with the rows of the remote dataset ``raw`` (None: it does
        not exist yet, every row is an add, no call). Counts only, never row values unless
        ``show_data``. Raises ManifestError for bad rows (the local pass does)."""

    @abstractmethod
    def apply_data(self, raw: dict, change: DataChange, spec: DataSpec, *, parallelism: int = 4,
                   progress: Callable[[Any], None] | None = None,
                   cache_dir: Path | None = None) -> DataReport:
        """Write what ``change`` counted to the dataset ``raw``. Refuses (StalePlanError) a
        data file or remote that changed beyond the plan; safe to rerun after a kill."""

    # ----------------------------------------------------------------- optional

    def remote_rows(self, raw: dict) -> Iterator[dict[str, Any]]:
        """Every row of the remote dataset ``raw`` as field -> value (``pull``, ``import``)."""
        self.require("pull")
        raise Unsupported(f"reading a dataset's rows is not supported by the {self.name} provider")

    def row_count(self, raw: dict) -> int:
        """How many rows the remote dataset ``raw`` holds, as read (no call)."""
        return 0

    def labelled(self) -> Labelled:
        """The labelled-data operations (``predict``, ``export``, ``annotations``): a
        :class:`Labelled`. The engine calls :meth:`require` first."""
        raise Unsupported(f"labelled data is not supported by the {self.name} provider")

    def web(self) -> Web:
        """The annotation web app's client side: a :class:`Web`. The engine calls
        :meth:`require` (``web``) first."""
        raise Unsupported(f"the annotation web app is not supported by the {self.name} provider")

    def close(self) -> None:
        """Release connections. Default: nothing."""
