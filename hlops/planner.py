"""Build a Plan: manifests + one read of the remote (+ datapoint digests) -> frozen Plan.

This is the orchestration of the pure pieces: :func:`desired_state` (manifests -> comparable
shapes, through the provider's kinds), :meth:`Provider.read <hlops.provider.Provider.read>`,
:func:`hlops.diff.diff`, and :meth:`Provider.plan_data <hlops.provider.Provider.plan_data>`
for every dataset with data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hlops import __version__
from hlops.data import envknobs
from hlops.diff import Desired, Options, diff
from hlops.errors import HlopsError
from hlops.plan import STREAMED, Action, DataChange, Plan, ResourceChange
from hlops.provider import DataSpec, Kind, Provider, RemoteState, provider_class


# Data files at least this big are checked after the remote's resources are read (their
# dataset's last-applied record may spare the pass); smaller ones before any API call.
CHECK_FIRST_BYTES = 8 << 20
# With PlanOptions.stream_data, data files at least this big whose dataset the provider can
# fill in one streamed pass (a new or remote-empty one) are not read by the plan at all: the
# apply checks, counts and sends their rows in that one pass. HLOPS_STREAM_MIN_BYTES
# overrides it (tests stream small files with it).
STREAM_MIN_BYTES = CHECK_FIRST_BYTES
STREAM_MIN_BYTES_ENV = "HLOPS_STREAM_MIN_BYTES"


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    destroy: bool = False
    targets: tuple[str, ...] = ()
    show_data: bool = False
    cache_dir: Path | None = None
    # Nothing waits for the plan's counts (`hlops apply --auto-approve`): the data of a new or
    # remote-empty dataset may be streamed by the apply instead of read by the plan first.
    stream_data: bool = False


class _Context:
    """What a project's comparable shape needs from the rest of the manifests."""

    def __init__(self, config: Any):
        self.config = config

    def field_type(self, ref: str) -> str | None:
        dataset, _, field = ref.rpartition(".")
        ds = self.config.datasets.get(dataset)
        return ds.field_types().get(field) if ds is not None else None

    def guidelines(self, project_name: str) -> str | None:
        return self.config.guidelines(project_name)


def kinds_of(config: Any) -> Any:
    """The kinds of the provider ``hlops.yaml`` names (no connection needed)."""
    return provider_class(config.settings.provider).kinds


def desired_state(config: Any, kinds: Any = None) -> list[Desired]:
    """Every declared resource in the comparable shape of its kind (``kinds``: the
    provider's, by default the one ``hlops.yaml`` names)."""
    kinds = kinds if kinds is not None else kinds_of(config)
    context = _Context(config)
    out = []
    dataset: Kind = kinds["dataset"]
    project: Kind = kinds["project"]
    for kind, manifests in ((dataset, config.datasets), (project, config.projects)):
        for manifest in manifests.values():
            present = manifest.ensure == "present"
            loc = config.location(kind.manifest_kind, manifest.name)
            out.append(
                Desired(
                    kind=kind.name,
                    name=manifest.name,
                    comparable=kind.desired(manifest, context) if present else None,
                    renamed_from=manifest.renamed_from,
                    prevent_destroy=manifest.lifecycle.prevent_destroy,
                    ignore_changes=tuple(manifest.lifecycle.ignore_changes),
                    source=f"{loc.path}:{loc.line}" if loc is not None else None,
                )
            )
    return out


def dataset_renames(config: Any) -> dict[str, str]:
    return {
        ds.renamed_from: ds.name
        for ds in config.datasets.values()
        if ds.renamed_from and ds.ensure == "present"
    }


def build_plan(
    config: Any, provider: Provider, options: PlanOptions = PlanOptions()
) -> tuple[Plan, RemoteState]:
    """The plan that takes the remote to the manifests, and the remote state it was built on.

    Every data file is checked (or found checked in the cache) before any datapoint diff:
    small ones before the first API call (a broken file costs no call), big ones
    (:data:`CHECK_FIRST_BYTES` and more, whose pass takes seconds) right after the remote's
    resources are read, so that one whose bytes its dataset's ``last_applied`` record
    vouches for is not read at all. When the remote cannot be read, the big files are
    checked before the error is raised (a broken file is reported first)."""
    provider.require("plan")
    check = not options.destroy
    stream = options.stream_data and check and not options.show_data
    big = {name for name in config.datasets if _big(config.data_path(name), stream)}
    if check:
        check_data(config, options.cache_dir, which=lambda name: name not in big)
    desired = desired_state(config, provider.kinds)
    try:
        state = provider.read(dataset_renames(config))
    except HlopsError:
        if check:
            check_data(config, options.cache_dir, which=big.__contains__)
        raise
    if check:
        check_data(config, options.cache_dir, state, which=big.__contains__, provider=provider,
                   stream=stream)
    changes, unmanaged = diff(
        desired,
        state.actual(),
        state,
        Options(
            prune=options.prune,
            destroy=options.destroy,
            owns=config.settings.owns,
            targets=options.targets,
        ),
        kinds=provider.kinds,
    )
    changes = [_with_data(change, config, provider, state, options, stream) for change in changes]
    plan = Plan(
        hlops_version=__version__,
        base_url=provider.target,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        prune=options.prune,
        destroy_mode=options.destroy,
        notes=tuple(ownership_notes(config.settings.owns, unmanaged, options.prune)),
    )
    return plan, state


def ownership_notes(owns: Any, unmanaged: list[str], prune: bool, shown: int = 20) -> list[str]:
    """What a plan says about ownership: owned remote resources that no manifest declares
    (``--prune`` would delete them), or a ``--prune`` that cannot delete anything."""
    notes = []
    if prune and (owns is None or owns.empty):
        notes.append(
            "--prune deletes nothing: hlops.yaml `owns` names no prefix or name, so this "
            "repository owns nothing"
        )
    owned = [a for a in unmanaged if owns is not None and owns.owns(a.split("/", 1)[1])]
    if owned:
        listed = ", ".join(owned[:shown]) + (f" and {len(owned) - shown:,} more" if len(owned) > shown else "")
        n = len(owned)
        notes.append(
            f"{n} remote resource{'s' if n != 1 else ''} owned by this repository (hlops.yaml "
            f"`owns`) but declared by no manifest: {listed}. `hlops plan --prune` deletes "
            f"{'them' if n != 1 else 'it'}; `hlops pull --all` writes {'them as manifests' if n != 1 else 'it as a manifest'}."
        )
    return notes


def _big(path: Path | None, stream: bool = False) -> bool:
    """Checked after the remote is read (not before the first call): a big file, or with
    ``stream`` one the apply may stream."""
    try:
        size = path.stat().st_size if path is not None else -1
    except OSError:
        return False  # checked first: the check reports it
    return size >= CHECK_FIRST_BYTES or (stream and _streamable_size(size))


def stream_min_bytes() -> int:
    """:data:`STREAM_MIN_BYTES`, or ``HLOPS_STREAM_MIN_BYTES`` when set to a whole number."""
    return envknobs.whole_number(STREAM_MIN_BYTES_ENV, STREAM_MIN_BYTES)


def _streamable_size(size: int) -> bool:
    return size >= 0 and size >= stream_min_bytes()


def _streams(provider: Provider, raw: dict | None, spec: DataSpec) -> bool:
    """Whether the apply will check, count and send this dataset's rows in one pass (a big
    enough data file, a dataset the provider can fill that way: new, or without rows)."""
    if spec.source is None:
        return False
    try:
        size = Path(spec.source).stat().st_size
    except OSError:
        return False
    return _streamable_size(size) and provider.data_streamable(raw, spec)


def check_data(config: Any, cache_dir: Path | None, state: RemoteState | None = None,
               which: Callable[[str], bool] = lambda name: True, provider: Provider | None = None,
               stream: bool = False) -> None:
    """Check the data of every dataset that declares some (and that ``which`` selects by
    name); ManifestError with every problem of every file (no
    network). With the remote ``state`` (and its ``provider``), a data file whose bytes the
    provider says were applied as they are (Humanloop: the dataset's ``last_applied``
    record) is left alone (it passed these checks), and with ``stream`` so is one the apply
    will check while it streams the rows (:func:`_streams`)."""
    from hlops.data import prepare
    from hlops.datafile import row_source
    from hlops.errors import ManifestError

    problems = []
    for name, manifest in config.datasets.items():
        if manifest.ensure != "present" or manifest.data is None or not which(name):
            continue
        rows, source = row_source(config, name), _relative(config.data_path(name))
        fields, key = manifest.field_types(), manifest.key
        if state is not None and provider is not None:
            spec = DataSpec(fields, key, rows, source, manifest.prune_data)
            name_read = manifest.name
            if state.by_name("dataset", name_read) is None and manifest.renamed_from:
                name_read = manifest.renamed_from
            if provider.data_vouched(state, name_read, spec):
                continue
            if stream and _streams(provider, state.by_name("dataset", name_read), spec):
                continue
        try:
            prepare(fields, key, rows, source=source, cache_dir=cache_dir)
        except ManifestError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)


def _with_data(
    change: ResourceChange, config: Any, provider: Provider, state: RemoteState, options: PlanOptions,
    stream: bool = False,
) -> ResourceChange:
    """Attach the datapoint diff of a dataset that declares data."""
    from hlops.datafile import row_source

    if change.kind != "dataset" or change.action == Action.DELETE or change.after is None:
        return change
    manifest = config.datasets[change.name]
    if manifest.data is None:
        return change
    exists = change.action in (Action.UPDATE, Action.NOOP) and change.remote_id is not None
    raw = state.get("dataset", change.remote_id) if exists else None
    fields = {name: spec["data_type"] for name, spec in change.after["fields"].items()}
    spec = DataSpec(
        fields, change.after["key"], row_source(config, change.name),
        _relative(config.data_path(change.name)), manifest.prune_data,
    )
    if stream and _streams(provider, raw, spec):
        data = DataChange(source=spec.source, key=spec.key, prune=spec.prune, decided_by=STREAMED,
                          remote_rows=provider.row_count(raw) if raw is not None else 0)
    else:
        data = provider.plan_data(raw, spec, show_data=options.show_data, cache_dir=options.cache_dir)
    update: dict[str, Any] = {"data": data}
    if change.action == Action.NOOP and data.has_changes:
        update["action"] = Action.UPDATE
    if data.remove_annotated:
        n = data.remove_annotated
        update["data_loss"] = (
            *change.data_loss,
            f"removes {n:,} datapoint{'s' if n != 1 else ''} carrying annotations",
        )
    return change.model_copy(update=update)


def _relative(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
