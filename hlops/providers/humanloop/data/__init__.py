"""Datapoints at scale: a key+hash diff of millions of rows, and a streamed, batched upload.

Two entry points, called by the engine for each dataset that declares data:

- :func:`plan_data` -> :class:`~hlops.plan.DataChange` (counts only, never row content);
- :func:`apply_data` -> :class:`DataReport`, writing what the plan counted.

How it works (details in ``docs/datapoints.md``): the local data is streamed into a summary
of 65,536 buckets (count + XOR of row hashes, cached per file); the remote is read through
the digest endpoint at a coarse level (about 1,000 rows a bucket), and only buckets that
differ are read row by row (``{id, key, hash, annotations}``), so a no-op plan of a million
rows moves about 100 KB. Apply streams the rows again and sends only the rows to add or
change, in batches of at most 10,000 rows, ``parallelism`` requests at a time.

Modules: :mod:`~hlops.data.local` (the local summary and second pass),
:mod:`~hlops.providers.humanloop.data.digest` (remote reads), :mod:`~hlops.data.compare` (pure comparison),
:mod:`~hlops.providers.humanloop.data.derive` (the steps of a diff), :mod:`~hlops.providers.humanloop.data.upload` (batched writes),
:mod:`~hlops.data.cache` (summaries and rates on disk), :mod:`~hlops.providers.humanloop.data.applied` (the
dataset's last-applied record: a cold no-op plan without reading a row).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hlops import canonical
from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.data import applied, delta
from hlops.data.cache import RateStore, file_state, signature
from hlops.data.compare import coarse_level
from hlops.data.summary import summary_signature
from hlops.providers.humanloop.data.derive import DataDiff, derive, rate_for
from hlops.providers.humanloop.data.digest import read_digest
from hlops.data.local import FINE_MASK, RowSource, rereader, row_digest, row_key, summarise
from hlops.providers.humanloop.data.upload import ProgressEvent, Uploader, UploadFailed, _Stop
from hlops.providers.humanloop.data.streamed import apply_streamed, streamable
from hlops.errors import StalePlanError
from hlops.provider import DataReport
from hlops.plan import DataChange

__all__ = ["DataReport", "ProgressEvent", "RowSource", "UploadFailed", "apply_data", "plan_data",
           "streamable", "vouched"]


# The diff behind each DataChange made in this process, so apply does not diff again. Keyed
# by the object's id, dropped when the DataChange is garbage-collected; never serialised.
_HANDLES: dict[int, tuple[weakref.ref, DataDiff, str]] = {}
_HANDLES_LOCK = threading.Lock()


def _remember(change: DataChange, diff: DataDiff, sig: str) -> None:
    key = id(change)

    def forget(_ref: weakref.ref, key: int = key) -> None:
        with _HANDLES_LOCK:
            _HANDLES.pop(key, None)

    with _HANDLES_LOCK:
        _HANDLES[key] = (weakref.ref(change, forget), diff, sig)


def _handle(change: DataChange) -> tuple[DataDiff, str] | None:
    with _HANDLES_LOCK:
        entry = _HANDLES.get(id(change))
    if entry is None or entry[0]() is not change:
        return None
    return entry[1], entry[2]


def vouched(last_applied: Any, fields: dict[str, str], key: str | None, rows: RowSource,
            source: str | None) -> bool:
    """Whether the planner's check of the data file ``source`` (:func:`prepare`, a pass over
    every row) can be left out: the dataset's ``last_applied`` record was written for these
    very bytes under these fields, key and checks (they passed every check when they were
    applied), or it has an index for a delta plan, which checks the rows that changed
    itself -- and, when it falls back on the full comparison, every row, in that pass."""
    if source is None or not last_applied:
        return False
    sig = summary_signature(fields, key, rows)
    if delta.usable(last_applied, sig, key, rows, source):
        delta.prefetch(source)  # the plan's first step will want them
        return True
    return applied.matching(last_applied, sig, Path(source)) is not None


def plan_data(
    client: Client | None,
    dataset_id: int | None,
    remote_count: int,
    fields: dict[str, str],
    key: str | None,
    rows: RowSource,
    *,
    prune: bool,
    show_data: bool = False,
    source: str | None = None,
    cache_dir: Path | None = None,
    parallelism: int = 4,
    last_applied: Any = None,
    listed: Any = None,
) -> DataChange:
    """Compare a dataset's data (``rows``, streamed) with its remote datapoints.

    ``client``/``dataset_id`` None: the dataset does not exist yet, every row is an add (no
    network). Raises :class:`~hlops.errors.ManifestError` (with line numbers) on duplicate
    keys and rows without a key value. ``cache_dir`` (e.g. ``.hlops/cache``) keeps the local
    summary of a data file (``source``) and the last upload rate. ``last_applied``: the
    dataset's ``last_applied`` as read (:mod:`hlops.providers.humanloop.data.applied`); when it vouches for the
    file's bytes and the remote, the plan is a no-op without reading a row; ``listed``: the
    dataset as listed (with its ``digest`` when the server answered ``include=digest``),
    which lets that no-op be decided without any call.
    """
    diff = derive(
        client, dataset_id, remote_count, fields, key, rows, prune=prune,
        show_data=show_data, source=source, cache_dir=cache_dir, parallelism=parallelism,
        last_applied=last_applied, listed=listed,
    )
    change = diff.to_change(source, show_data, rate_for(client, cache_dir))
    _remember(change, diff, signature(fields, key))
    return change


def apply_data(
    client: Client,
    dataset_id: int,
    change: DataChange,
    fields: dict[str, str],
    key: str | None,
    rows: RowSource,
    *,
    prune: bool,
    parallelism: int = 4,
    progress: Callable[[ProgressEvent], None] | None = None,
    cache_dir: Path | None = None,
) -> DataReport:
    """Write what ``change`` counted: PUT new rows, PATCH changed ones, delete removed ones
    (only with ``prune``), ``parallelism`` requests at a time, in bounded memory.

    The diff is the one :func:`plan_data` computed in this process when the data file and
    the remote digest are unchanged since; otherwise (a saved plan, or something changed) it
    is derived again, and a data file whose fingerprint differs from the plan's is refused
    (:class:`~hlops.errors.StalePlanError`), as is a remote that now needs more rows removed
    than the plan showed. A failed batch raises :class:`UploadFailed` with how many rows were
    written; running apply again sends only what is still missing.

    A ``streamed`` change (the plan did not read the rows: a new or remote-empty dataset
    under ``--auto-approve``) is applied by :func:`~hlops.providers.humanloop.data.streamed.apply_streamed`:
    one pass that checks and sends; rows with problems raise
    :class:`~hlops.errors.DataStopped` after the rows before them were written.
    """
    if change.streamed and change.source is not None:
        streamed = apply_streamed(client, dataset_id, key, fields, rows, change.source,
                                  parallelism=parallelism, progress=progress, cache_dir=cache_dir)
        if streamed is not None:
            return streamed
    where = change.source or "inline data"
    sig = signature(fields, key)
    diff = _reusable(client, dataset_id, change, sig, key, prune)
    reused = diff is not None
    if diff is None:
        diff = derive(
            client, dataset_id, change.remote_rows, fields, key, rows, prune=prune,
            show_data=False, source=change.source, cache_dir=cache_dir, parallelism=parallelism,
        )
        if change.fingerprint and diff.fingerprint != change.fingerprint:
            raise StalePlanError([where], "changed since the plan was made (its rows differ)")
    if diff.remove > change.remove or diff.rows.remove_annotated > change.remove_annotated:
        raise StalePlanError(
            [where],
            f"now needs {diff.remove:,} datapoints removed ({diff.rows.remove_annotated:,} "
            f"annotated), more than the plan's {change.remove:,} ({change.remove_annotated:,})",
        )
    total = diff.add + diff.change + diff.remove
    if total == 0:
        return DataReport(reused_plan=reused)
    nbytes, _calls = diff.bytes_and_calls()
    up = Uploader(client, dataset_id, parallelism=parallelism, rows_total=total,
                  bytes_total=nbytes, progress=progress)
    try:
        try:
            up._emit()
            _stream(diff, rereader(rows), key, up, where)
            if diff.remove:
                up.delete(diff.rows.remove_id.tolist())
            up.finish()
        except _Stop:
            up.close()  # waits for the batches in flight, raises UploadFailed
            raise AssertionError("unreachable") from None
    except UploadFailed as exc:
        exc.report = _report(up, reused)
        raise
    except BaseException:
        _abandon(up)
        raise
    report = _report(up, reused)
    if change.source is not None and not diff.local_dup:
        applied.note(
            client, dataset_id, key, signature=diff.signature, path=Path(change.source),
            state=diff.source_state, read_at=diff.source_read_at, fingerprint=diff.fingerprint,
            rows=diff.local_rows, buckets=coarse_level(diff.local_rows), local_hash=diff.local_hash,
            reread=lambda: summarise(rereader(rows), key, where).fingerprint,
            index=_index_after(client, dataset_id, diff),
        )
    if cache_dir is not None:
        RateStore(cache_dir).put(client.base_url, report.rows, report.bytes_sent, report.calls, report.seconds)
    return report


def _index_after(client: Client, dataset_id: int, diff: DataDiff) -> Callable[[str], int] | None:
    """After a delta plan's apply: what stores the file's new index with the record."""
    if diff.delta is None:
        return None
    found = diff.delta
    return lambda sha256: delta.upload_index(client, dataset_id, found.index_after(sha256, diff.fingerprint))


def _report(up: Uploader, reused: bool) -> DataReport:
    return DataReport(
        added=up.done["add"], changed=up.done["change"], removed=up.done["remove"],
        calls=up.calls, bytes_sent=up.bytes_done, seconds=round(up.elapsed, 3),
        reused_plan=reused,
    )


def _abandon(up: Uploader) -> None:
    """Wait for what is in flight after an interruption or a changed file; an upload failure
    found meanwhile is not raised over the original exception."""
    try:
        up.close()
    except UploadFailed:
        pass


def _reusable(client: Client, dataset_id: int, change: DataChange, sig: str, key: str | None,
              prune: bool) -> DataDiff | None:
    found = _handle(change)
    if found is None:
        return None
    diff, planned_sig = found
    if planned_sig != sig or diff.key != key or diff.prune != prune:
        return None
    if diff.dataset_id is not None and diff.dataset_id != dataset_id:
        return None
    if diff.source_state is not None and (
        change.source is None or file_state(Path(change.source)) != diff.source_state
    ):
        return None
    fresh = read_digest(client, dataset_id, key, diff.coarse)
    if fresh.items_hash != diff.coarse_hash:
        return None
    return diff


def _stream(diff: DataDiff, rows: RowSource, key: str | None, up: Uploader, where: str) -> None:
    """Walk the rows once, sending those to add or change; rows are matched by ordinal and
    checked by key point, so a data file that changed under us is caught, not mis-sent."""
    rd = diff.rows
    a_ord, a_pt = rd.add_ordinal, rd.add_point
    c_ord, c_pt, c_id = rd.change_ordinal, rd.change_point, rd.change_id
    na, nc = len(a_ord), len(c_ord)
    ai = ci = 0
    next_a = a_ord[0] if na else -1
    next_c = c_ord[0] if nc else -1
    add_all = diff.add_all.tolist() if diff.add_all_rows else None
    if add_all is not None and diff.add_all_rows == diff.local_rows:
        _stream_all(diff, rows, up, where)  # a first upload: every row is an add
        return
    key_point, canonical_json = canonical.key_point, canonical.canonical_json
    line = 0
    for ordinal, (line, row) in enumerate(rows()):
        if ordinal == next_a or ordinal == next_c:
            cj, digest = row_digest(row)
            kt = row_key(row, key, digest)
            if ordinal == next_a:
                if kt is None or key_point(kt) != a_pt[ai]:
                    raise _changed(where, line)
                up.add(cj)
                ai += 1
                next_a = a_ord[ai] if ai < na else -1
            else:
                if kt is None or key_point(kt) != c_pt[ci]:
                    raise _changed(where, line)
                up.change(c_id[ci], cj)
                ci += 1
                next_c = c_ord[ci] if ci < nc else -1
        elif add_all is not None:
            if key is None:
                cj, digest = row_digest(row)
                kt = digest.hex()
            else:
                cj, kt = None, row.get(key)
                if type(kt) is not str:
                    kt = canonical.key_text(row, key, "")
            if kt is not None and add_all[key_point(kt) & FINE_MASK]:
                up.add(cj if cj is not None else canonical_json(row))
        elif next_a < 0 and next_c < 0:
            break
    if next_a >= 0 or next_c >= 0:
        raise _changed(where, line)


def _stream_all(diff: DataDiff, rows: RowSource, up: Uploader, where: str) -> None:
    """Every row is an add: no key to look at; the row count is checked at the end."""
    canonical_json = canonical.canonical_json
    n = line = 0
    for line, row in rows():
        up.add(canonical_json(row))
        n += 1
    if n != diff.local_rows:
        raise _changed(where, line)


def _changed(where: str, line: int) -> StalePlanError:
    at = f" (at line {line})" if line else ""
    return StalePlanError([where], f"changed since the plan was made{at}; rows sent so far were correct")
