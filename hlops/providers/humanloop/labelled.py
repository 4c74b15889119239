"""Models and labelled data from the client's side (issue 9): predictions, the export of the
annotated datapoints, and importing annotations made elsewhere.

Everything takes a :class:`~hlops.providers.humanloop.client.Client` and a project *name* (resolved with
``GET /projects?name=``); nothing prints (the CLI, ``hlops/cli/predict.py``, does).

- :func:`predict` sends rows of input values in batches of :data:`PREDICT_BATCH` to
  ``POST /projects/{id}/predict`` and answers the seed's shape; :func:`read_input_rows`
  reads them from a ``.jsonl`` / ``.json`` / ``.csv`` file, checked before any call.
- :func:`export` streams ``GET /projects/{id}/export?format=jsonl`` into a ``.jsonl``,
  ``.json`` or ``.csv`` file (written beside the target and renamed at the end: an
  interrupted export leaves no half file).
- :func:`read_annotations` + :func:`resolve_annotations` + :func:`import_annotations`:
  rows ``{key | datapoint_id, output, value}`` (``dataset`` optional), checked offline
  first (no call for a malformed file), then against the project (outputs, labels, value
  shapes, keys), and only then written, one ``POST /projects/{id}/annotations`` per row
  (several at a time, each with its own Idempotency-Key, so a retried row is never applied
  twice).

Messages locate problems (``file:line:col``) and never repeat a datapoint's text or an API
key; keys are identifiers chosen by the user and may be named.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from hlops import canonical
from hlops.providers.humanloop.client import Client
from hlops.labelfiles import (  # noqa: F401 - the file halves, re-exported
    EXPORT_FORMATS, AnnotationRow, ImportReport, export_format, read_annotations, read_input_rows,
)
from hlops.errors import ApiError, AuthError, ManifestError, Problem, RateLimited, SettingsError

PREDICT_BATCH = 1000
IMPORT_WORKERS = 8
TEXT_TYPES = ("text", "categorical")


# ---------------------------------------------------------------------- projects


def find_project(client: Client, name: str) -> dict:
    """The project named ``name`` (a SettingsError naming the problem when there is none)."""
    items = client.get("/projects", name=name, limit=1)["items"]
    if not items:
        raise SettingsError(f"no project named {name!r} (check the name, or run `hlops apply` to create it)")
    return items[0]


def default_input(project: dict) -> str:
    """The project's first text input that is not display-only (the model reads it)."""
    for inp in project["inputs"]:
        if inp["data_type"] == "text" and not inp.get("display_only"):
            return inp["name"]
    for inp in project["inputs"]:
        if inp["data_type"] in TEXT_TYPES:
            return inp["name"]
    raise SettingsError(f"project {project['name']!r} has no text input to predict from")


def summary(client: Client, project_id: int) -> dict:
    return client.get(f"/projects/{project_id}/annotations/summary")


def wait_for_models(
    client: Client, project_id: int, timeout: float = 600.0, poll: float = 0.5,
    on_wait: Callable[[dict], None] | None = None,
) -> dict:
    """Poll the annotation summary until no output's model is ``training`` (a model trained
    on every annotation serves, or the output has too few); return the last summary."""
    deadline = time.monotonic() + timeout
    while True:
        found = summary(client, project_id)
        busy = [o for o in found["outputs"] if o["model"]["status"] == "training"]
        if not busy:
            return found
        if time.monotonic() > deadline:
            names = ", ".join(o["name"] for o in busy)
            raise SettingsError(f"the model of {names} was still training after {timeout:.0f} s")
        if on_wait is not None:
            on_wait(found)
        time.sleep(poll)


# ---------------------------------------------------------------------- predict


def predict(client: Client, project: dict, rows: list[dict], n_best: int = 1,
            lines: list[int] | None = None, source: str = "") -> list[dict]:
    """The seed's answer for ``rows``, batch by batch. With ``lines`` (each row's line in
    ``source``), a 422 from the server is reported at the rows' lines."""
    answer: list[dict] = []
    for start in range(0, len(rows), PREDICT_BATCH):
        batch = rows[start:start + PREDICT_BATCH]
        try:
            answer += client.request("POST", f"/projects/{project['id']}/predict", body={"data": batch, "n_best": n_best})
        except ApiError as exc:
            if exc.status == 422 and lines is not None and isinstance(exc.detail, list):
                raise ManifestError(_located(exc.detail, lines, start, source)) from None
            raise
    return answer


def _located(detail: list, lines: list[int], offset: int, source: str) -> list[Problem]:
    problems = []
    for item in detail:
        loc = list(item.get("loc", [])) if isinstance(item, dict) else []
        msg = item.get("msg", "invalid") if isinstance(item, dict) else str(item)
        if len(loc) >= 3 and loc[:2] == ["body", "data"] and isinstance(loc[2], int) and offset + loc[2] < len(lines):
            where = ".".join(str(x) for x in loc[3:])
            problems.append(Problem(source, lines[offset + loc[2]], 1, f"{where}: {msg}" if where else msg))
        else:
            problems.append(Problem(source, 0, 0, msg))
    return problems


# ---------------------------------------------------------------------- export


def export(
    client: Client, project: dict, out: Path | None, fmt: str, progress: Callable[[int], None] | None = None,
    stdout: Any = None,
) -> int:
    """Stream the project's annotated datapoints into ``out`` (``None`` or ``-``:
    ``stdout``, a binary stream) as ``fmt``; returns how many were written."""
    to_stdout = out is None or str(out) == "-"
    if to_stdout:
        return _write_export(client, project, stdout, fmt, progress)
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            n = _write_export(client, project, handle, fmt, progress)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _write_export(client: Client, project: dict, handle: Any, fmt: str, progress: Callable[[int], None] | None) -> int:
    lines = client.stream_lines(f"/projects/{project['id']}/export", format="jsonl")
    n = 0
    if fmt == "csv":
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
        columns = _csv_columns(project)
        writer = csv.writer(text)
        writer.writerow([c for c, _, _ in columns])
        for line in lines:
            row = orjson.loads(line)
            writer.writerow([_cell(row[part][name]) if part else row["datapoint_id"] for _, part, name in columns])
            n += 1
            if progress:
                progress(n)
        text.flush()
        text.detach()
        return n
    if fmt == "json":
        handle.write(b"[")
    for line in lines:
        if fmt == "json":
            handle.write((b"\n" if n == 0 else b",\n") + line)
        else:
            handle.write(line + b"\n")
        n += 1
        if progress:
            progress(n)
    if fmt == "json":
        handle.write(b"\n]\n")
    return n


def _csv_columns(project: dict) -> list[tuple[str, str | None, str]]:
    """``(column, "inputs" | "outputs" | None, name)``: ``datapoint_id``, every input, every
    output; a name that is both an input and an output gets ``input:`` / ``output:``."""
    ins = [i["name"] for i in project["inputs"]]
    outs = [o["name"] for o in project["outputs"]]
    both = set(ins) & set(outs)
    return (
        [("datapoint_id", None, "datapoint_id")]
        + [(f"input:{n}" if n in both else n, "inputs", n) for n in ins]
        + [(f"output:{n}" if n in both else n, "outputs", n) for n in outs]
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------------- annotations import


def resolve_annotations(client: Client, project: dict, source: str, rows: list[AnnotationRow]) -> list[tuple[AnnotationRow, int]]:
    """Check ``rows`` against the project (outputs, value shapes, listed labels) and find
    each key's datapoint (reads only: the keys of the datasets the project reads, via
    ``GET /datasets/{id}/digest``). A ManifestError lists every problem."""
    outputs = {o["name"]: o for o in project["outputs"]}
    problems: list[Problem] = []
    for row in rows:
        msg = _value_problem(outputs, row)
        if msg:
            problems.append(Problem(source, row.line, 1, msg))
    if problems:  # checked before any key is read
        raise ManifestError(problems)
    keyed = [r for r in rows if r.key is not None]
    index: dict[str, dict[str, int]] = {}
    if keyed:
        named = None if any(r.dataset is None for r in keyed) else {r.dataset for r in keyed}
        index = _key_index(client, project, named, source, problems)
        if problems:
            raise ManifestError(problems)
    resolved: list[tuple[AnnotationRow, int]] = []
    first: dict[tuple[int, str], int] = {}
    for row in rows:
        if row.key is None:
            dp = row.datapoint_id
        else:
            found = {name: ids[row.key] for name, ids in index.items() if row.key in ids and (row.dataset in (None, name))}
            if not found:
                where = f"dataset {row.dataset!r}" if row.dataset else "the datasets the project reads (" + ", ".join(sorted(index)) + ")"
                problems.append(Problem(source, row.line, 1, f"no datapoint with key {row.key!r} in {where}"))
                continue
            if len(found) > 1:
                problems.append(Problem(source, row.line, 1, f"key {row.key!r} is in datasets {', '.join(sorted(found))}: add \"dataset\": NAME"))
                continue
            (dp,) = found.values()
        seen = first.get((dp, row.output))
        if seen is not None:
            problems.append(Problem(source, row.line, 1, f"{row.target} is annotated for output {row.output!r} again (first at line {seen})"))
            continue
        first[(dp, row.output)] = row.line
        resolved.append((row, dp))
    if problems:
        raise ManifestError(problems)
    return resolved


def _value_problem(outputs: dict[str, dict], row: AnnotationRow) -> str | None:
    output = outputs.get(row.output)
    if output is None:
        return f"the project has no output {row.output!r}; its outputs: {', '.join(repr(n) for n in outputs)}"
    task, value = output["task_type"], row.value
    closed = {lb["name"] for lb in output.get("labels") or []} if not output.get("data_sources") else None
    if task == "classification":
        labels = [value] if isinstance(value, str) and value else None
        if labels is None:
            return f"value: output {row.output!r} (classification) takes one label, a string"
    elif task == "multilabel_classification":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return f"value: output {row.output!r} (multilabel) takes a list of labels"
        if len(set(value)) != len(value):
            return "value: a label is listed twice"
        labels = value
    else:
        try:
            spans = canonical.normalise_value("character_offsets", value)
        except canonical.InvalidValue as exc:
            return f"value: output {row.output!r} (sequence_tagging) takes a list of {{start, end, label}} spans: {exc.msg}"
        labels = [s["label"] for s in spans]
    if closed is not None:
        unknown = sorted(set(labels) - closed)
        if unknown:
            return f"value: {unknown[0]!r} is not one of the labels of output {row.output!r}"
    return None


def _key_index(client: Client, project: dict, named: set[str] | None, source: str, problems: list[Problem]) -> dict[str, dict[str, int]]:
    """Dataset name -> {key: datapoint id} for the datasets the project reads (only those
    ``named``, when every keyed row names its dataset). A dataset without a key field is
    keyed by its datapoints' hashes."""
    field_ids = {s["field_id"] for io in project["inputs"] + project["outputs"] for s in io.get("data_sources") or []}
    datasets = [d for d in client.paginate("/datasets") if any(f["id"] in field_ids for f in d["fields"])]
    known = {d["name"] for d in datasets}
    for name in sorted((named or set()) - known):
        problems.append(Problem(source, 0, 0, f"dataset {name!r} is not read by project {project['name']!r} (it reads: {', '.join(sorted(known))})"))
    index: dict[str, dict[str, int]] = {}
    for d in datasets:
        if named is not None and d["name"] not in named:
            continue
        index[d["name"]] = {item["key"]: item["id"] for item in client.paginate(f"/datasets/{d['id']}/digest", limit=10_000)}
    return index


def import_annotations(
    client: Client, project: dict, source: str, resolved: list[tuple[AnnotationRow, int]],
    progress: Callable[[int], None] | None = None, workers: int = IMPORT_WORKERS,
) -> ImportReport:
    """Write the resolved rows (``POST /projects/{id}/annotations`` each, ``workers`` at a
    time). A row the server refuses (4xx) is skipped and reported at its line; an
    authentication, rate-limit or transport failure stops the import (and raises)."""
    report = ImportReport()
    path = f"/projects/{project['id']}/annotations"

    def send(item: tuple[AnnotationRow, int]) -> tuple[AnnotationRow, int, Problem | None]:
        row, dp = item
        try:
            client.request("POST", path, body={"datapoint_id": dp, "output": row.output, "value": row.value})
        except (AuthError, RateLimited):
            raise
        except ApiError as exc:
            if 400 <= exc.status < 500:
                return row, dp, Problem(source, row.line, 1, f"{row.target}: {_short(exc)}")
            raise
        return row, dp, None

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hlops-import") as pool:
        done = 0
        for row, dp, problem in _ordered(pool, send, resolved):
            done += 1
            if problem is None:
                report.imported += 1
                report.datapoints.add(dp)
            else:
                report.skipped.append(problem)
            if progress:
                progress(done)
    return report


def _ordered(pool: ThreadPoolExecutor, fn: Callable, items: Iterable) -> Iterator:
    """``pool.map`` with a bounded queue (memory stays flat for a big file); the first
    exception cancels what is not started yet."""
    window = []
    try:
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 256:
                yield window.pop(0).result()
        while window:
            yield window.pop(0).result()
    finally:
        for fut in window:
            fut.cancel()


def _short(exc: ApiError) -> str:
    detail = exc.detail
    if isinstance(detail, list):
        parts = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail[:3]]
        return f"HTTP {exc.status}: " + "; ".join(parts)
    return f"HTTP {exc.status}: {detail}"



class Labelled:
    """This module bound to one client: the :class:`hlops.provider.Labelled` of Humanloop."""

    def __init__(self, client: Client):
        self.client = client

    def find_project(self, name: str) -> dict:
        return find_project(self.client, name)

    def default_input(self, project: dict) -> str:
        return default_input(project)

    def read_input_rows(self, path: Path) -> list[tuple[int, dict]]:
        return read_input_rows(path)

    def wait_for_models(self, project: dict, on_wait: Callable[[dict], None] | None = None) -> dict:
        return wait_for_models(self.client, project["id"], on_wait=on_wait)

    def predict(self, project: dict, rows: list[dict], n_best: int = 1,
                lines: list[int] | None = None, source: str = "") -> list[dict]:
        return predict(self.client, project, rows, n_best, lines=lines, source=source)

    def summary(self, project: dict) -> dict:
        return summary(self.client, project["id"])

    def export_format(self, path: Path | None, given: str | None) -> str:
        return export_format(path, given)

    def export(self, project: dict, out: Path | None, fmt: str,
               progress: Callable[[int], None] | None = None, stdout: Any = None) -> int:
        return export(self.client, project, out, fmt, progress=progress, stdout=stdout)

    def read_annotations(self, path: Path) -> tuple[str, list[AnnotationRow]]:
        return read_annotations(path)

    def resolve_annotations(self, project: dict, source: str, rows: list[AnnotationRow]) -> list:
        return resolve_annotations(self.client, project, source, rows)

    def import_annotations(self, project: dict, source: str, resolved: list,
                           progress: Callable[[int], None] | None = None, workers: int = IMPORT_WORKERS) -> ImportReport:
        return import_annotations(self.client, project, source, resolved, progress=progress, workers=workers)
