"""Execute a Plan: the second interpreter of the same value the renderers print.

Order: first every destroy (deletes, and the delete half of replacements), by kind level in
reverse (projects before the datasets they read); then creates and updates level by level
(datasets, with their datapoints, before the projects that read them). Work within a level
runs in parallel, bounded by ``parallelism``. A failure is recorded and the run goes on with
everything that does not depend on it; what depends on it is skipped.

Apply keeps no state of its own: the remote is the state. Killed after any call, the next
plan reads what exists and the next apply finishes the job — creates are matched by name
(a create whose answer was lost is looked up before it is sent again), datapoints by key and
hash through the digest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hlops.errors import (
    ApplyError,
    DataLossRefused,
    HlopsError,
    Interrupted,
    PreconditionFailed,
    PreventDestroyError,
    StalePlanError,
)
from hlops.plan import Action, Plan, ResourceChange
from hlops.provider import DataSpec, Provider, RemoteState


@dataclass
class StepResult:
    address: str
    action: str
    status: str  # "done" | "failed" | "skipped"
    detail: str = ""
    seconds: float = 0.0
    rows: int = 0


@dataclass
class Report:
    results: list[StepResult] = field(default_factory=list)
    calls: int = 0
    writes: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.results)

    def by_status(self, status: str) -> list[StepResult]:
        return [r for r in self.results if r.status == status]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "results": [r.__dict__ for r in self.results],
            "calls": self.calls,
            "writes": self.writes,
            "bytes_sent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ApplyOptions:
    allow_data_loss: bool = False
    parallelism: int = 4
    cache_dir: Path | None = None  # where upload rates are kept for the next plan's estimate


Event = dict[str, Any]  # {"type": "start"|"done"|"failed"|"skipped"|"progress", ...}


def check_allowed(plan: Plan, allow_data_loss: bool) -> None:
    """Refuse what the plan may not do: prevent_destroy always, data loss unless allowed."""
    protected = plan.protected()
    if protected:
        raise PreventDestroyError([c.address for c in protected])
    lossy = plan.destructive()
    if lossy and not allow_data_loss:
        raise DataLossRefused([c.address for c in lossy])


def check_fresh(plan: Plan, state: RemoteState) -> None:
    """Refuse a saved plan if anything it touches changed since it was made."""
    stale = []
    for change in plan.changes:
        if not change.has_changes:
            continue
        if change.remote_id is not None:
            raw = state.get(change.kind, change.remote_id)
            if raw is None:
                stale.append(f"{change.address} (deleted since)")
            elif raw.get("version") != change.remote_version:
                stale.append(
                    f"{change.address} (version {change.remote_version} -> {raw.get('version')})"
                )
        elif change.action == Action.CREATE:
            if state.by_name(change.kind, change.name) is not None:
                stale.append(f"{change.address} (created since)")
    if stale:
        raise StalePlanError(stale)


class Applier:
    """Runs one plan through one provider; the provider's state is thread-safe."""

    def __init__(
        self,
        plan: Plan,
        provider: Provider,
        state: RemoteState,
        config: Any,
        options: ApplyOptions,
        on_event: Callable[[Event], None] | None = None,
    ):
        self.plan = plan
        self.provider = provider
        self.state = state
        self.config = config
        self.options = options
        self.on_event = on_event or (lambda event: None)
        self.report = Report()
        self._lock = threading.Lock()
        self._failed: set[str] = set()

    # ------------------------------------------------------------------ driver

    def run(self) -> Report:
        started = time.monotonic()
        calls = self.provider.calls
        calls_before = (calls.total, calls.writes, calls.bytes_sent)
        changes = [c for c in self.plan.changes if c.has_changes]
        order = sorted(self.provider.kinds.values(), key=lambda k: k.level)
        for kind in reversed(order):
            self._run_level(
                [c for c in changes if c.kind == kind.name and c.destroys], self._destroy
            )
        for kind in order:
            self._run_level(
                [c for c in changes if c.kind == kind.name and c.action != Action.DELETE],
                self._converge,
            )
        c = self.provider.calls
        self.report.calls = c.total - calls_before[0]
        self.report.writes = c.writes - calls_before[1]
        self.report.bytes_sent = c.bytes_sent - calls_before[2]
        self.report.seconds = time.monotonic() - started
        return self.report

    def _run_level(self, changes: list[ResourceChange], step: Callable[[ResourceChange], StepResult | None]) -> None:
        if not changes:
            return
        workers = max(1, min(self.options.parallelism, len(changes)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hlops-apply") as pool:
            try:
                for result in pool.map(lambda ch: self._guarded(ch, step), changes):
                    if result is not None:
                        self._record(result)
            except KeyboardInterrupt:
                self._interrupted(pool)

    def _interrupted(self, pool: ThreadPoolExecutor) -> None:
        """The first Ctrl-C, as Terraform takes it: the calls in flight finish, no new one
        is sent (the provider refuses them), steps not started never start; then
        :class:`Interrupted`. Nothing is left half-sent, so the next apply finishes the job.
        A second Ctrl-C while waiting quits at once."""
        self.provider.stop()
        self.on_event({"type": "interrupted"})
        pool.shutdown(wait=True, cancel_futures=True)
        raise Interrupted(
            "apply interrupted: the calls in flight were finished and no new one was sent; "
            "run apply again to finish (it sends only what is still missing)"
        ) from None

    def _guarded(self, change: ResourceChange, step: Callable[[ResourceChange], StepResult | None]) -> StepResult | None:
        blocked = [d for d in change.depends_on if d in self._failed]
        if blocked:
            with self._lock:
                self._failed.add(change.address)
            return StepResult(change.address, change.action.value, "skipped", f"depends on {blocked[0]}, which failed")
        started = time.monotonic()
        self.on_event({"type": "start", "address": change.address, "action": change.action.value})
        try:
            result = step(change)
        except HlopsError as exc:
            with self._lock:
                self._failed.add(change.address)
            return StepResult(change.address, change.action.value, "failed", str(exc), time.monotonic() - started)
        if result is not None:
            result.seconds = time.monotonic() - started
        return result

    def _failure(self, address: str) -> str:
        return next((r.detail for r in self.report.results if r.address == address), "failed")

    def _record(self, result: StepResult) -> None:
        # Steps of a replacement report twice (destroy, then create): keep the last word.
        self.report.results = [r for r in self.report.results if r.address != result.address]
        self.report.results.append(result)
        self.on_event({"type": result.status, "address": result.address, "action": result.action, "detail": result.detail})

    # ------------------------------------------------------------------ steps

    def _destroy(self, change: ResourceChange) -> StepResult:
        self.provider.delete(change.kind, change.remote_id, change.remote_version, self.state)
        return StepResult(change.address, change.action.value, "done", "destroyed" if change.action == Action.DELETE else "destroyed, recreating")

    def _converge(self, change: ResourceChange) -> StepResult:
        assert change.after is not None
        if change.address in self._failed:  # the destroy half of a replacement failed
            return StepResult(change.address, change.action.value, "failed", self._failure(change.address))
        if change.action in (Action.CREATE, Action.REPLACE):
            raw = self.provider.create(change.kind, change.after, self.state)
            detail = "created" if change.action == Action.CREATE else "replaced"
        else:
            raw = self._update(change)
            detail = "updated" if raw is not None else "unchanged"
            if raw is None:
                raw = self.state.get(change.kind, change.remote_id)
        rows = 0
        if change.data is not None and change.data.has_changes:
            rows = self._apply_data(change, raw)
            detail += f", {rows:,} rows written"
        return StepResult(change.address, change.action.value, "done", detail, rows=rows)

    def _update(self, change: ResourceChange) -> dict | None:
        try:
            return self.provider.update(
                change.kind, change.remote_id, change.before, change.after, change.remote_version, self.state
            )
        except PreconditionFailed:
            raise StalePlanError([change.address], "changed while this apply ran") from None

    def _apply_data(self, change: ResourceChange, raw: dict) -> int:
        from hlops.datafile import row_source

        fields = {name: spec["data_type"] for name, spec in change.after["fields"].items()}
        manifest = self.config.datasets[change.name]

        def progress(event: Any) -> None:
            self.on_event({"type": "progress", "address": change.address, "event": event})

        spec = DataSpec(fields, change.after["key"], row_source(self.config, change.name),
                        change.data.source, manifest.prune_data)
        report = self.provider.apply_data(
            raw, change.data, spec, parallelism=self.options.parallelism, progress=progress,
            cache_dir=self.options.cache_dir,
        )
        return report.rows


def apply_plan(
    plan: Plan,
    provider: Provider,
    state: RemoteState,
    config: Any,
    options: ApplyOptions = ApplyOptions(),
    on_event: Callable[[Event], None] | None = None,
) -> Report:
    """Apply ``plan``; raises :class:`ApplyError` (with the report) if any step failed."""
    check_allowed(plan, options.allow_data_loss)
    provider.require("plan")
    report = Applier(plan, provider, state, config, options, on_event).run()
    if not report.ok:
        failed = report.by_status("failed")
        skipped = report.by_status("skipped")
        raise ApplyError(
            report,
            f"apply finished with {len(failed)} failed and {len(skipped)} skipped step(s): "
            + "; ".join(f"{r.address}: {r.detail}" for r in failed[:3]),
        )
    return report
