"""The Python API: what the CLI does, as functions that return values.

::

    import hlops.api as hl

    config = hl.load("examples/projects/sentiment")
    with hl.connect(local=True) as conn:            # or base_url=..., api_key=...
        result = hl.plan(config, conn)
        print(hl.render_text(result.plan))
        report = hl.apply(result, conn, allow_data_loss=False)

Errors are :class:`hlops.errors.HlopsError` subclasses; nothing here prints or exits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from hlops.apply import ApplyOptions, Event, Report, apply_plan, check_fresh
from hlops.errors import PlanError, SettingsError, StalePlanError
from hlops.local import LocalServer, local_home
from hlops.plan import FORMAT_VERSION, Plan, ResourceChange
from hlops.planner import PlanOptions, build_plan
from hlops.provider import Provider, RemoteState, provider_class
from hlops.render import json as render_json_module
from hlops.render import markdown as render_markdown_module
from hlops.render import text as render_text_module

DEFAULT_BASE_URL = "https://api.humanloop.com"  # the humanloop provider's default


def load(paths: str | Path | Sequence[str | Path], check_data: bool = True) -> Any:
    """Load and validate manifests (a file, a directory, or several); raises ManifestError."""
    from hlops.manifest import load as load_manifests

    return load_manifests(paths, check_data=check_data)


class Connection:
    """A connected provider, and the embedded server behind it when ``local``. A context
    manager. ``client`` is the provider's HTTP client when it has one (Humanloop's)."""

    def __init__(self, provider: Provider | None = None, local: LocalServer | None = None):
        self.provider = provider
        self._local = local

    @property
    def client(self) -> Any:
        return getattr(self.provider, "client", None)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()
        if self._local is not None:
            self._local.__exit__(None, None, None)
            self._local = None

    @property
    def local(self) -> bool:
        return self._local is not None

    def __repr__(self) -> str:
        return f"Connection({self.provider!r}, local={self.local})"


def connect(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    local: bool = False,
    settings: Any = None,
    options: Any = None,
    home: Path | None = None,
    provider: str | None = None,
) -> Connection:
    """Connect to the provider ``provider`` (or hlops.yaml ``provider:``, HLOPS_PROVIDER,
    ``humanloop``) at ``base_url`` with ``api_key`` (each provider reads its own variables
    when they are not given: Humanloop's HLOPS_BASE_URL, hlops.yaml ``base_url``, its default
    URL, and HLOPS_API_KEY); with ``local``, start the embedded reference server.
    ``options`` are the provider's (Humanloop: ClientOptions)."""
    name = (
        provider
        or (getattr(settings, "provider", None) if settings is not None else None)
        or os.environ.get("HLOPS_PROVIDER")
    )
    cls = provider_class(name)
    if local:
        cls.require("local")
        server = LocalServer(home or local_home())
        server.__enter__()
        try:
            return Connection(
                cls.connect(url=server.url, api_key=server.api_key, env={}, options=options), server
            )
        except BaseException:
            server.__exit__(None, None, None)
            raise
    return Connection(
        cls.connect(url=base_url, api_key=api_key, env=os.environ, settings=settings, options=options)
    )


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    state: RemoteState
    config: Any


def plan(
    config: Any,
    conn: Connection,
    *,
    prune: bool = False,
    destroy: bool = False,
    targets: Sequence[str] = (),
    show_data: bool = False,
    manifests: Sequence[str | Path] = (),
    cache_dir: Path | None = None,
    stream_data: bool = False,
) -> PlanResult:
    """Compare the manifests with the remote; returns the frozen Plan (and what it read).

    ``stream_data``: nothing waits for the plan's counts (an apply that follows at once, as
    ``hlops apply --auto-approve``): the big data file of a new or remote-empty dataset is
    then not read here but checked, counted and sent by :func:`apply` in one pass (its
    DataChange is ``streamed``). Never for a plan that is shown for approval or saved."""
    options = PlanOptions(
        prune=prune,
        destroy=destroy,
        targets=tuple(targets),
        show_data=show_data,
        cache_dir=cache_dir if cache_dir is not None else local_home() / "cache",
        stream_data=stream_data,
    )
    built, state = build_plan(config, conn.provider, options)
    built = built.model_copy(
        update={"manifests": tuple(_relative(p) for p in manifests), "targets": tuple(targets)}
    )
    return PlanResult(built, state, config)


def apply(
    result: PlanResult,
    conn: Connection,
    *,
    allow_data_loss: bool = False,
    parallelism: int = 4,
    on_event: Callable[[Event], None] | None = None,
) -> Report:
    """Apply a plan just built by :func:`plan`. Raises ApplyError (with the report) on failures."""
    return apply_plan(
        result.plan,
        conn.provider,
        result.state,
        result.config,
        ApplyOptions(
            allow_data_loss=allow_data_loss, parallelism=parallelism, cache_dir=local_home() / "cache"
        ),
        on_event,
    )


# --------------------------------------------------------------------------- saved plans


def save_plan(plan: Plan, path: str | Path) -> None:
    try:
        Path(path).write_bytes(orjson.dumps(plan.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot write the plan ({exc.strerror or exc})") from None


def read_saved_plan(path: str | Path) -> Plan:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such plan file") from None
    except orjson.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not a saved plan (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise SettingsError(f"{path}: not a saved plan (no format_version)")
    if data["format_version"] != FORMAT_VERSION:
        raise SettingsError(
            f"{path}: plan format {data['format_version']!r} is not supported by this hlops "
            f"(it reads format {FORMAT_VERSION!r}); plan again with this version"
        )
    try:
        return Plan.from_json(data)
    except ValueError as exc:
        raise SettingsError(f"{path}: not a valid saved plan ({str(exc).splitlines()[0]})") from None


def is_saved_plan(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file() or p.suffix != ".json":
        return False
    try:
        with p.open("rb") as handle:
            return b'"format_version"' in handle.read(4096)
    except OSError:
        return False


def apply_saved(
    saved: Plan,
    conn: Connection,
    *,
    allow_data_loss: bool = False,
    parallelism: int = 4,
    on_event: Callable[[Event], None] | None = None,
) -> Report:
    """Apply a saved plan, refusing it if anything it touches changed since it was made.

    The manifests it was made from are loaded again and planned against the remote as it is
    now: every remote resource must still have the version the saved plan read, and the new
    plan must make exactly the saved plan's changes (same manifests, same data fingerprints,
    the same data destroyed).
    Only then is it applied — so what runs is what was reviewed.
    """
    if not saved.manifests:
        raise PlanError("the saved plan names no manifests; plan again with `hlops plan PATH -o FILE`")
    config = load(list(saved.manifests), check_data=False)  # plan() checks the data first
    fresh = plan(
        config,
        conn,
        prune=saved.prune,
        destroy=saved.destroy_mode,
        targets=saved.targets,
        manifests=saved.manifests,
    )
    check_fresh(saved, fresh.state)
    differing = _differences(saved, fresh.plan)
    if differing:
        raise StalePlanError(differing, "would change differently now (the manifests, data or remote changed)")
    return apply(fresh, conn, allow_data_loss=allow_data_loss, parallelism=parallelism, on_event=on_event)


def _differences(saved: Plan, fresh: Plan) -> list[str]:
    a = {c.address: _signature(c) for c in saved.changes if c.has_changes}
    b = {c.address: _signature(c) for c in fresh.changes if c.has_changes}
    return sorted(addr for addr in a.keys() | b.keys() if a.get(addr) != b.get(addr))


def _signature(change: ResourceChange) -> Any:
    data = None
    if change.data is not None:
        d = change.data
        data = (d.add, d.change, d.remove, d.remove_annotated, d.fingerprint)
    # data_loss too: annotations added since to a project the plan replaces do not move the
    # project's version, and the reviewed plan showed none of them destroyed
    return (change.action, change.after, change.remote_id, change.remote_version, data, change.data_loss)


# --------------------------------------------------------------------------- rendering


def render_text(plan: Plan, color: bool = False) -> str:
    return render_text_module.render(plan, color=color)


def render_markdown(plan: Plan) -> list[str]:
    return render_markdown_module.render_parts(plan)


def render_json(plan: Plan) -> str:
    return render_json_module.render(plan)


def _relative(path: str | Path) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# --------------------------------------------------------- models and labelled data


def _labelled(conn: Connection, capability: str) -> Any:
    conn.provider.require(capability)
    return conn.provider.labelled()


def predict(
    conn: Connection, project: str, texts: Sequence[str] = (), rows: Sequence[dict] = (),
    n_best: int = 1, wait: bool = False,
) -> list[dict]:
    """Predictions of the model of ``project`` (its name), in the seed's shape: one
    ``{data, predictions: [{output, task_type, value}]}`` per row. ``texts`` fill the
    project's first text input that is not display-only; ``rows`` are objects of input name ->
    value. With ``wait``, first wait until the models are trained on every annotation."""
    labelled = _labelled(conn, "predict")
    proj = labelled.find_project(project)
    if wait:
        labelled.wait_for_models(proj)
    data = [*rows, *({labelled.default_input(proj): text} for text in texts)]
    return labelled.predict(proj, data, n_best)


def export(conn: Connection, project: str, path: str | Path, fmt: str | None = None) -> int:
    """Write every annotated datapoint of ``project`` with its inputs and outputs to ``path``
    (``.jsonl``, ``.json`` or ``.csv``, or ``fmt``), streamed; returns how many."""
    from hlops import labelfiles

    path = Path(path)
    fmt = labelfiles.export_format(path, fmt)
    labelled = _labelled(conn, "export")
    return labelled.export(labelled.find_project(project), path, fmt)


def import_annotations(conn: Connection, project: str, path: str | Path, workers: int = 8) -> Any:
    """Load the annotations of ``path`` (rows of ``{key | datapoint_id, output, value}``) into
    ``project``; the file is checked in full before any write (ManifestError). Returns the
    ImportReport: ``imported``, ``datapoints``, ``skipped`` (rows the server refused, located)."""
    from hlops import labelfiles

    source, rows = labelfiles.read_annotations(Path(path))
    labelled = _labelled(conn, "annotations")
    proj = labelled.find_project(project)
    resolved = labelled.resolve_annotations(proj, source, rows)
    return labelled.import_annotations(proj, source, resolved, workers=workers)


def annotation_summary(conn: Connection, project: str) -> dict:
    """Annotation counts of ``project`` per output and the state of each output's model."""
    labelled = _labelled(conn, "annotations")
    return labelled.summary(labelled.find_project(project))


def user_token(conn: Connection, email: str) -> dict:
    """A personal token for the annotation web app: ``{email, token, projects}``
    (docs/annotate.md). A new token replaces the e-mail's earlier one."""
    return _web(conn).issue_token(email)


def project_url(conn: Connection, project: str) -> str:
    """The address of ``project``'s labelling page in the annotation web app."""
    return _web(conn).project_url(project)


def sign_in_url(conn: Connection) -> str:
    """The address of the annotation web app's sign-in page."""
    return _web(conn).sign_in_url()


def _web(conn: Connection) -> Any:
    conn.provider.require("web")
    return conn.provider.web()
