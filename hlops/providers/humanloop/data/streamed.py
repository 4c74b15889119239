"""A streamed apply: every row of a data file into a dataset that has none, in one pass.

Used when the plan did not read the rows (``DataChange.streamed``: ``hlops apply
--auto-approve`` of a new or remote-empty dataset, a data file of at least
:data:`hlops.planner.STREAM_MIN_BYTES`). The pass (:class:`hlops.data.stream.StreamedPass`)
reads, checks, canonicalises and hashes each row and the :class:`Uploader` packs the
canonical JSON into ``PUT`` batches as it comes, ``min(parallelism, 2)`` in flight, so the
local work hides in the waits for the server instead of coming before the first PUT; the
summary, the fingerprint and the last-applied record are by-products of the same pass (the
record's SHA-256 too: the pass hashes the bytes it reads, so the file is not read again for
it, racy or not). The
record is written without reading the remote digest again when the ``PUT`` answers prove
that no other write happened since the empty digest read before the first one
(:func:`hlops.providers.humanloop.data.applied.proven_version`); else the digest is read.

A problem found late (docs/datapoints.md, "A broken row in a streamed apply"): each batch
is sent only when every row read up to then was good, so nothing at or after the first
broken row is sent. The uploader stops, waits for the batches in flight, the full check
(:func:`hlops.data.local.summarise`) locates every problem as a plan would have, and
:class:`~hlops.errors.DataStopped` says how many rows were written; no record is noted, so
a rerun after the fix compares by digest and sends only the rows still missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hlops.data.cache import RateStore, SummaryCache, file_state, hashed_content, remember_content
from hlops.data.compare import coarse_level
from hlops.data.local import RowSource, rereader, summarise
from hlops.data.stream import Halt, StreamedPass
from hlops.data.summary import CACHE_MIN_BYTES, summary_signature
from hlops.errors import DataStopped, ManifestError, StalePlanError
from hlops.provider import DataReport
from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.data import applied, delta
from hlops.providers.humanloop.data.digest import items_hash, read_digest
from hlops.providers.humanloop.data.upload import ProgressEvent, Uploader, UploadFailed, _Stop


def streamable(raw: dict | None, rows: RowSource, source: str | None) -> bool:
    """A data file (not inline rows) going into a dataset that does not exist yet or, as
    read, holds no rows."""
    file = getattr(rows, "checked_file", None)
    if source is None or not callable(file) or file() is None:
        return False
    return raw is None or not raw.get("datapoint_count")


def apply_streamed(
    client: Client, dataset_id: int, key: str | None, fields: dict[str, str], rows: RowSource,
    source: str, *, parallelism: int, progress: Callable[[ProgressEvent], None] | None,
    cache_dir: Path | None,
) -> DataReport | None:
    """Send every row of ``source`` (see the module docstring). None, having sent nothing,
    when the dataset holds rows now (written since the plan read it): the caller then
    compares as usual."""
    where = source
    remote = read_digest(client, dataset_id, key, 1)
    if remote.total or remote.key != key:
        return None
    path = Path(source)
    read_at = time.time()
    state = file_state(path)
    file = rows.checked_file()  # type: ignore[attr-defined]
    if state is None or file is None:
        return None
    stream = StreamedPass(file, key)
    # the file's prints, for the index noted with the record (after a failure the worker is
    # left to finish: it reads the file once and exits)
    printing = delta.start_for_apply(key, rows, source)
    if printing is not None:
        stream.digests = bytearray()
    up = Uploader(client, dataset_id, parallelism=parallelism, rows_total=0,
                  bytes_total=state["size"], progress=progress)
    up.gate = stream.commit
    try:
        try:
            up._emit()
            add = up.add
            for cj in stream.rows():
                add(cj)
            stream.commit()  # Halt if any row had a problem, even with no row left to send
            up.flush()  # the last batch
            # while the last batches are in flight: the record's SHA-256 of the file's bytes
            # (as the pass read them; else read again, kept by stat for applied.note below),
            # the summary and its cache entry
            read_sha256 = stream.bytes_sha256()
            if read_sha256 is None:
                hashed_content(path)
            elif file_state(path) == state:
                remember_content(state, read_sha256, read_at)
            summary = stream.summary()
            index = delta.index_noter(client, dataset_id, printing, summary, stream.digests, read_sha256)
            sig = summary_signature(fields, key, rows)
            if cache_dir is not None and state["size"] >= CACHE_MIN_BYTES:
                SummaryCache(cache_dir).save(path, sig, state, summary, read_at)
            up.finish()
        except _Stop:
            up.close()  # waits for the batches in flight, raises UploadFailed
            raise AssertionError("unreachable") from None
    except UploadFailed as exc:
        exc.report = _report(up)
        raise
    except Halt:
        _abandon(up)
        return _stopped(client, dataset_id, key, fields, rows, where, up,
                        parallelism=parallelism, progress=progress, cache_dir=cache_dir)
    except BaseException:
        _abandon(up)
        raise
    report = _report(up)
    if file_state(path) != state:
        raise StalePlanError([where], (
            f"changed while apply read and sent it ({report.added:,} rows sent, as read); no "
            "last-applied record: run apply again, it compares and sends what differs"))
    if not summary.dup.any():
        level = coarse_level(summary.count)
        counts, xor = summary.fold(level)[:2]
        applied.note(
            client, dataset_id, key, signature=sig, path=path, state=state, read_at=read_at,
            fingerprint=summary.fingerprint, rows=summary.count, buckets=level,
            local_hash=items_hash(counts, xor),
            reread=lambda: summarise(rereader(rows), key, where).fingerprint,
            proven=_proven(remote.version, up, summary.count, counts, xor), read_sha256=read_sha256,
            index=index,
        )
    if cache_dir is not None:
        RateStore(cache_dir).put(client.base_url, report.rows, report.bytes_sent, report.calls, report.seconds)
    return report


def _stopped(client: Client, dataset_id: int, key: str | None, fields: dict[str, str],
             rows: RowSource, where: str, up: Uploader, **apply_options: Any) -> DataReport:
    """After a halt: every problem, located as the plan's check finds them, with how many
    rows were written before. Only when the full check finds nothing (two distinct keys
    whose 64-bit points collide) does the apply go on, the usual way (a digest diff)."""
    sent = up.done["add"]
    try:
        summarise(rows, key, where)
    except ManifestError as exc:
        raise DataStopped(exc.problems, sent) from None
    from hlops.providers.humanloop.data import apply_data  # the usual way, diff first
    from hlops.plan import DataChange

    rest = apply_data(client, dataset_id, DataChange(source=where, key=key), fields, key, rows,
                      prune=False, **apply_options)
    return DataReport(added=sent + rest.added, changed=rest.changed, removed=rest.removed,
                      calls=up.calls + rest.calls, bytes_sent=up.bytes_done + rest.bytes_sent,
                      seconds=round(up.elapsed, 3))


def _proven(v0: object, up: Uploader, rows: int, counts: Any, xor: Any) -> applied.Proven | None:
    """What the PUT answers prove of the remote (:func:`applied.proven_version`: no other
    write since the empty digest read at ``v0``), or None: the record is then checked by a
    digest read."""
    version = applied.proven_version(v0, up.put_answers, rows)
    return None if version is None else applied.Proven(version, applied.root_hash(counts, xor))


def _report(up: Uploader) -> DataReport:
    return DataReport(added=up.done["add"], calls=up.calls, bytes_sent=up.bytes_done,
                      seconds=round(up.elapsed, 3))


def _abandon(up: Uploader) -> None:
    try:
        up.close()
    except UploadFailed:
        pass
