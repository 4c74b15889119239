"""Background training: a model per project output, retrained as its annotations change.

**When.** Every successful write (``POST``/``PUT``/``PATCH``/``DELETE`` answered 2xx) is a
*kick* naming what it touched: ``/projects/{id}/...`` that project, ``/datasets/{id}/...``
every project reading that dataset, ``POST /projects`` the projects created since the last
look. A kick costs nothing on the request path (no I/O: the route's answer is already on its
way). One worker thread collects kicks and starts once writes have been quiet for
:data:`DEBOUNCE_SECONDS`, or :data:`MAX_DELAY_SECONDS` after the first kick of a burst,
whatever comes first -- so a stream of annotations retrains every few seconds, not per
annotation. When the server starts (on its first request) every project is looked at once,
at once: a restart catches up with whatever changed while no model was being trained.

**What.** For each output of a kicked project: fewer than :data:`MIN_EXAMPLES` annotated
datapoints -> no model serves it (predict answers 409); otherwise the training set's
*signature* (see :class:`~hlops.server.sqlite_models.TrainingSet`) is compared with the
one the serving model was trained on, and only a changed set is read, turned into texts and
trained (``hlops.server.ml.train``, seed :data:`SEED`, examples by datapoint id: the same
annotations always give the same model, byte for byte). The model's bytes, its integer
version (+1) and metrics go to the database in one transaction.

**The model's input text** (:func:`model_text`): a datapoint's values of the project's
*model inputs* -- its inputs that are not ``display_only`` and hold text (``text`` or
``categorical``), in the project's order -- that have a value, joined with a newline. A
project whose every input is display-only uses all its text inputs. A ``sequence_tagging``
output reads the text of its own ``input`` only (its spans point into that text).
Predictions compose the text of a request row the same way.

**Status** (the ``model`` of each output in ``GET /projects/{id}/annotations/summary``):
``untrained`` (fewer than 10 annotated datapoints), ``training`` (a (re)train is queued or
running; the previous model, if any, still serves), ``ready`` (the serving model is trained
on the current annotations), ``failed`` (training raised; the message is in ``error``).

**Threads.** Training runs in this process (one worker thread, plus a request that trains
synchronously: see :meth:`Trainer.ensure`); a per-project lock keeps two trainings of the
same project apart -- in this process a thread lock, across server processes sharing one
PostgreSQL database also the model store's ``project_lock`` (an advisory lock): the second
process to look at a project finds the model already trained on the current annotations
(same signature) and trains nothing, so a model version is trained once, not once per
process. The worker stops when the store is closed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from typing import Any

from hlops.server.sqlite_models import ProjectSpec, SqliteModels, TrainingSet

log = logging.getLogger("hlops.server.training")

MIN_EXAMPLES = 10  # == hlops.server.ml.MIN_EXAMPLES (not imported here: ml loads scikit-learn)
SEED = 0
DEBOUNCE_SECONDS = 1.0
MAX_DELAY_SECONDS = 10.0
MODEL_CACHE = 16  # deserialised models kept in memory for predictions
TEXT_TYPES = ("text", "categorical")

_PROJECT = re.compile(r"^/projects/([0-9]{1,19})(/.*)?$")
_DATASET = re.compile(r"^/datasets/([0-9]{1,19})(/.*)?$")


# ---------------------------------------------------------------------- model input text


def model_inputs(inputs: list[dict]) -> list[str]:
    """The names of the inputs a project's classifiers read, in the project's order."""
    names = [i["name"] for i in inputs if i["data_type"] in TEXT_TYPES and not i.get("display_only")]
    return names or [i["name"] for i in inputs if i["data_type"] in TEXT_TYPES]


def model_text(output: dict, names: list[str], values: dict[str, Any]) -> str:
    """The text a model of ``output`` reads from one row of input ``values``."""
    if output["task_type"] == "sequence_tagging":
        value = values.get(output.get("input"))
        return value if isinstance(value, str) else ""
    return "\n".join(v for v in (values.get(n) for n in names) if isinstance(v, str))


def text_inputs_of(output: dict, names: list[str]) -> list[str]:
    """The inputs whose values make ``output``'s text."""
    return [output["input"]] if output["task_type"] == "sequence_tagging" else names


# ---------------------------------------------------------------------- the trainer


class Trainer:
    """Trains in a background thread; answers model statuses and serves models.

    ``debounce`` / ``max_delay``: see the module docstring.
    """

    def __init__(self, models: SqliteModels, *, debounce: float = DEBOUNCE_SECONDS, max_delay: float = MAX_DELAY_SECONDS):
        self.models = models
        self.debounce = debounce
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._events: list[tuple[str, int]] = []  # ("project", id) | ("dataset", id) | ("new", 0)
        self._first_kick: float | None = None
        self._last_kick = 0.0
        self._flush = 0  # > 0: someone waits for the queue to drain; skip the debounce
        self._pending: set[int] = set()  # projects resolved from events, not yet looked at
        self._running: Counter[int] = Counter()
        self._max_seen = 0  # projects above this id are "new"
        self._errors: dict[tuple[int, int], str] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int], tuple[int, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ kicks (event loop)

    def start(self) -> None:
        """Start the worker (idempotent); it first looks at every project, at once."""
        if self._thread is not None:
            return
        with self._cond:
            if self._thread is not None:
                return
            self._events.append(("new", 0))
            self._first_kick = time.monotonic() - self.max_delay  # no debounce for the first look
            self._thread = threading.Thread(target=self._run, name="hlops-training", daemon=True)
            self._thread.start()

    def kick(self, method: str, path: str) -> None:
        """A write to ``path`` succeeded. Cheap and non-blocking: no I/O."""
        event: tuple[str, int] | None = None
        if method == "POST" and path.rstrip("/") == "/projects":
            event = ("new", 0)
        elif m := _PROJECT.match(path):
            if m.group(2) != "/predict":
                event = ("project", int(m.group(1)))
        elif m := _DATASET.match(path):
            event = ("dataset", int(m.group(1)))
        if event is None:
            return
        with self._cond:
            now = time.monotonic()
            if not self._events:
                self._first_kick = now
            self._last_kick = now
            self._events.append(event)
            self._cond.notify_all()

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._events:
                    if self.models.closed:
                        return
                    self._cond.wait(0.5)
                while not self._flush and not self.models.closed:
                    now = time.monotonic()
                    wait = min(self._last_kick + self.debounce, (self._first_kick or now) + self.max_delay) - now
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                events = list(self._events)
            if self.models.closed:
                return
            try:
                pids = self._resolve(events)
            except Exception:  # noqa: BLE001 - a closed store at shutdown, or a bug: keep serving
                log.exception("training: cannot read the projects to look at")
                pids = set()
                if self.models.closed:
                    return
            with self._cond:
                del self._events[: len(events)]
                self._first_kick = time.monotonic() if self._events else None
                self._pending |= pids
            for pid in sorted(pids):
                with self._cond:
                    if pid not in self._pending:
                        continue
                    self._pending.discard(pid)
                    self._running[pid] += 1
                try:
                    with self._lock(pid), self.models.project_lock(pid):
                        self._refresh(pid)
                except Exception:  # noqa: BLE001
                    if self.models.closed:
                        return
                    log.exception("training: project %s failed", pid)
                finally:
                    self._finished(pid)

    def _resolve(self, events: list[tuple[str, int]]) -> set[int]:
        pids = {pid for kind, pid in events if kind == "project"}
        datasets = {did for kind, did in events if kind == "dataset"}
        if datasets:
            pids |= self.models.projects_reading(datasets)
        if any(kind == "new" for kind, _ in events):
            new = self.models.project_ids_after(self._max_seen)
            pids |= set(new)
            if new:
                self._max_seen = max(self._max_seen, new[-1])
        return pids

    def _lock(self, pid: int) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(pid, threading.Lock())

    def _refresh(self, pid: int) -> None:
        """Bring every output's model of project ``pid`` up to date (caller holds its lock)."""
        spec = self.models.project_any(pid)
        if spec is None:
            with self._locks_lock:
                self._locks.pop(pid, None)
            return
        rows = self.models.model_rows(pid)
        counts = self.models.annotated_counts(pid)
        names = model_inputs(spec.inputs)
        for output in spec.outputs:
            oid = output["id"]
            row = rows.get(oid)
            if counts.get(oid, 0) < MIN_EXAMPLES:
                if row is not None and row.has_model:
                    self.models.drop_model(pid, oid)
                self._errors.pop((pid, oid), None)
                continue
            ts = self.models.training_set(spec, output, with_examples=False)
            if row is not None and row.has_model and row.signature == ts.signature:
                continue
            ts = self.models.training_set(spec, output, with_examples=True, min_count=MIN_EXAMPLES)
            self._train(spec, output, ts, names, row)

    def _train(self, spec: ProjectSpec, output: dict, ts: TrainingSet, names: list[str], row: Any) -> None:
        from hlops.server import ml  # scikit-learn: loaded on the first training only

        pid, oid = spec.id, output["id"]
        texts, targets = [], []
        for values, value in ts.examples or []:
            text = model_text(output, names, values)
            if output["task_type"] == "sequence_tagging":
                value = [s for s in value if s["end"] <= len(text)]  # a text shortened since
            texts.append(text)
            targets.append(value)
        if len(texts) < MIN_EXAMPLES:
            return
        task = output["task_type"]
        fingerprint = ml.fingerprint(task, texts, targets, ts.labels, SEED)
        if row is not None and row.has_model and row.fingerprint == fingerprint:
            # same examples as the model sees them (e.g. only a display-only value changed)
            self.models.set_signature(pid, oid, ts.signature)
            return
        started = time.monotonic()
        try:
            model = ml.train(task, texts, targets, ts.labels, SEED)
        except Exception as exc:  # noqa: BLE001 - recorded in the status; the old model serves
            self._errors[(pid, oid)] = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("training: project %s output %s failed: %s", pid, oid, type(exc).__name__)
            return
        version = self.models.save_model(pid, oid, model.to_bytes(), model.version, ts.signature, len(texts), model.metrics)
        self._errors.pop((pid, oid), None)
        if version is not None:
            with self._cache_lock:
                self._cache[(pid, oid)] = (version, model)
                self._trim_cache()
            log.info("training: project %s output %s version %s on %s examples in %.1f s",
                     pid, oid, version, len(texts), time.monotonic() - started)

    # ------------------------------------------------------------------ for routes

    def ensure(self, pid: int) -> None:
        """Train now, in the caller's thread, whatever project ``pid`` lacks (waits for a
        training of the same project that is already running, and reuses its result)."""
        with self._cond:
            self._running[pid] += 1
        try:
            with self._lock(pid), self.models.project_lock(pid):
                self._refresh(pid)
        finally:
            self._finished(pid)

    def _finished(self, pid: int) -> None:
        """One training of ``pid`` counted in ``_running`` is over: wake the waiters."""
        with self._cond:
            self._running[pid] -= 1
            if self._running[pid] <= 0:
                del self._running[pid]
            self._cond.notify_all()

    def model(self, pid: int, oid: int) -> Any | None:
        """The model serving output ``oid`` (an ``ml.Model``), or None."""
        version = self.models.model_version(pid, oid)
        if version is None:
            return None
        with self._cache_lock:
            hit = self._cache.get((pid, oid))
            if hit is not None and hit[0] == version:
                self._cache.move_to_end((pid, oid))
                return hit[1]
        found = self.models.model_bytes(pid, oid)
        if found is None:
            return None
        from hlops.server import ml

        try:
            model = ml.Model.from_bytes(found[1])
        except ValueError:  # written by another ml.ALGORITHM: retrain it
            self.models.set_signature(pid, oid, None)
            return None
        with self._cache_lock:
            self._cache[(pid, oid)] = (found[0], model)
            self._trim_cache()
        return model

    def _trim_cache(self) -> None:
        while len(self._cache) > MODEL_CACHE:
            self._cache.popitem(last=False)

    def error(self, pid: int, oid: int) -> str | None:
        return self._errors.get((pid, oid))

    def pending(self, pid: int) -> bool:
        """Is a (re)train of project ``pid`` queued or running?"""
        with self._cond:
            if pid in self._pending or self._running.get(pid):
                return True
            events = list(self._events)
            max_seen = self._max_seen
        if any(kind == "project" and p == pid for kind, p in events):
            return True
        if any(kind == "new" for kind, _ in events) and pid > max_seen:
            return True
        datasets = {d for kind, d in events if kind == "dataset"}
        return bool(datasets) and pid in self.models.projects_reading(datasets)

    def status(self, pid: int, out: dict) -> dict:
        """The ``model`` member of an output in the annotation summary."""
        none = {"status": "untrained", "version": 0, "trained_on": 0, "trained_at": None, "metrics": None}
        if out["annotated"] < MIN_EXAMPLES:
            return none
        row = self.models.model_rows(pid).get(out["id"])
        busy = self.pending(pid)
        if row is not None and row.has_model:
            return {
                "status": "training" if busy else "ready",
                "version": row.version,
                "trained_on": row.trained_on,
                "trained_at": row.trained_at,
                "metrics": row.metrics,
            }
        error = self.error(pid, out["id"])
        if error and not busy:
            return {**none, "status": "failed", "error": error}
        return {**none, "status": "training"}

    def flush(self, timeout: float = 60.0) -> bool:
        """Skip the debounce and wait until nothing is queued or running (test-only)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush += 1
            self._cond.notify_all()
            try:
                while self._events or self._pending or self._running:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None:
                        return not (self._events or self._pending or self._running)
                    self._cond.wait(min(left, 0.5))
                return True
            finally:
                self._flush -= 1
