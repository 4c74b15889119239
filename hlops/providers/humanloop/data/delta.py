"""The delta plan: a changed data file against the index of the file last applied.

When a dataset's last-applied record (:mod:`~hlops.providers.humanloop.data.applied`) was
written with an index (``"index"``: its size in bytes; the blob itself at ``GET
/datasets/{id}/last_applied/index`` [ext], :mod:`hlops.data.index`), the record's fields,
key and checks are the manifest's, and the remote still holds exactly the rows applied
(its root is the record's), a plan of a changed JSONL file does not read every row:

1. the file's lines are printed by two worker processes (:mod:`hlops.data.lineprints`)
   while the index is fetched;
2. :func:`hlops.data.index.match` pairs each row with the index row of the same print:
   those rows are byte for byte rows applied, their key points and digests the index's;
3. only the other rows are parsed, checked, canonicalised and hashed; a problem in any of
   them, a key repeated, a line that is not JSON: the delta gives up (None) and the plan
   makes its full pass, which reports every problem where it is;
4. the remote rows of their keys (``POST /datasets/{id}/digest/keys``), and of the rows
   that vanished from the file under another key (their fine buckets' rows, kept by key
   point), are compared with them by key (:func:`hlops.data.compare.compare_keyed`);
5. the fingerprint and the summary folded to the record's level come from the index's
   digests and the rows read, so the apply that follows notes its record, and the new
   index, without another pass.

1% of 1M rows changed: ~10,000 rows parsed and ~10,000 remote rows read, instead of a pass
over every row and ~140,000 remote rows (docs/performance.md, part J).
"""

from __future__ import annotations

import io
import os
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hlops import canonical
from hlops.data import envknobs
from hlops.data import lineprints
from hlops.data import index as ix
from hlops.data.cache import file_state
from hlops.data.compare import RowDiff, coarse_level, compare_keyed, remote_point
from hlops.data.local import FINE, FINE_MASK, LocalRow, RowSource, row_digest, row_key
from hlops.datafile import RowChecker, common_row_test, exact_row_test
from hlops.datareaders import format_of
from hlops.errors import ApiError, TransportError
from hlops.providers.humanloop.client import Client, Download
from hlops.providers.humanloop.data import applied
from hlops.providers.humanloop.data.digest import items_hash, read_rows_of

MIN_BYTES = 8 << 20  # smaller files: the full pass takes about as long as the workers' start
MIN_BYTES_ENV = "HLOPS_DELTA_MIN_BYTES"  # a whole number overrides it (tests: 0)
MAX_ROWS = 2_000_000  # the index is 48 bytes a row, held whole by a plan: ~96 MB at most
MAX_READ_SHARE = 0.25  # more rows than this to read: the full comparison reads fewer
KEYS_BATCH = 5_000  # keys a POST .../digest/keys (at most 10,000)
INDEX_PATH = "/datasets/{id}/last_applied/index"


def min_bytes() -> int:
    """:data:`MIN_BYTES`, or ``HLOPS_DELTA_MIN_BYTES`` when set to a whole number."""
    return envknobs.whole_number(MIN_BYTES_ENV, MIN_BYTES)


def usable(last_applied: Any, signature: str, key: str | None, rows: RowSource, source: str | None) -> bool:
    """Whether a plan of ``source`` may be a delta (the record has an index, is for these
    fields, key and checks; a big keyed JSONL data file), before anything is read."""
    rec = applied.Record.from_json(last_applied)
    if rec is None or rec.index <= 0 or rec.signature != signature or key is None:
        return False
    return 0 < rec.rows <= MAX_ROWS and _big_jsonl(rows, source)


def _big_jsonl(rows: RowSource, source: str | None) -> bool:
    """A JSONL data file of :func:`min_bytes` or more: its prints pay off."""
    file = getattr(rows, "checked_file", lambda: None)()
    if source is None or file is None or format_of(file.path) != "jsonl":
        return False
    try:
        return Path(source).stat().st_size >= min_bytes()
    except OSError:
        return False


@dataclass
class Begun:
    """A delta's background work, started before the plan knows it will be one: the file's
    line prints and the index's download (both cancelled when the plan turns out a no-op or
    falls back)."""

    printing: lineprints.Printing
    download: Download

    def cancel(self) -> None:
        self.printing.cancel()
        self.download.cancel()


def begin(client: Client, dataset_id: int, last_applied: Any, signature: str, key: str | None,
          rows: RowSource, source: str | None) -> Begun | None:
    """Start the prints (or take them from :func:`prefetch`) and the index's download when a
    delta may follow, beside the check of the file's bytes against the record (a SHA-256 of
    the file: when it matches, the plan is a no-op and both are cancelled)."""
    if not usable(last_applied, signature, key, rows, source):
        return None
    try:
        printing = lineprints.start(source)
    except OSError:
        return None
    rec = applied.Record.from_json(last_applied)
    early = ix.Head(0, "", "", rec.rows, coarse_level(rec.rows)).early_size
    return Begun(printing, client.download(INDEX_PATH.format(id=dataset_id), 0, early))


def prefetch(source: str) -> None:
    """Start the prints of a file whose plan will be a delta, before the plan gets there."""
    try:
        lineprints.prefetch(source)
    except OSError:
        pass


@dataclass
class Delta:
    """What an apply of a delta plan needs to note its record and the file's new index."""

    index: ix.Index
    match: ix.Match
    prints: lineprints.LinePrints
    read_digests: np.ndarray
    read_points: np.ndarray
    counts: np.ndarray  # the file's summary folded to the record's level
    xor: np.ndarray

    def index_after(self, source_sha256: str, fingerprint: str) -> ix.Index:
        return ix.index_after(self.index, self.match, self.prints, self.read_digests,
                              self.read_points, source_sha256, fingerprint, self.counts, self.xor)


@dataclass
class Outcome:
    """A delta's rows diff and what :class:`~hlops.providers.humanloop.data.derive.DataDiff`
    takes from it."""

    rows: RowDiff
    local_rows: int
    remote_rows: int
    fingerprint: str
    local_hash: str
    remote_rows_read: int
    coarse: int
    coarse_hash: str
    remote_version: int | None
    state: dict
    read_at: float
    delta: Delta


def derive_delta(
    client: Client, dataset_id: int, key: str, rows: RowSource, source: str, last_applied: Any,
    listed: Any, prune: bool, n_examples: int, begun: Begun, parallelism: int,
) -> Outcome | None:
    """The diff of a delta plan (see the module docstring); None when the delta does not
    apply (the caller compares as without it)."""
    rec = applied.Record.from_json(last_applied)
    if rec is None:
        return None
    read_at = time.time()
    state = file_state(Path(source))
    remote = _remote_as_recorded(client, dataset_id, key, rec, listed)
    if remote is None or state is None:
        return None
    return _derive(client, dataset_id, key, rows, rec, remote, begun.download, state, read_at, prune,
                   n_examples, begun.printing, parallelism)


def _derive(client: Client, dataset_id: int, key: str, rows: RowSource, rec: applied.Record,
            remote: tuple[int, str, int | None], download: Download, state: dict, read_at: float,
            prune: bool, n_examples: int, printing: lineprints.Printing, parallelism: int) -> Outcome | None:
    """:func:`derive_delta` once the first part of the index is on its way (``download``:
    its head, fold, prints and points): they are matched and the rows read while its
    digests arrive, asked for once the prints are made (not to share the cores with them)."""
    if not download.wait(ix.HEAD.size):
        return None
    head = ix.Head.parse(download.buffer)
    if (head is None or head.source_sha256 != rec.source_sha256 or head.fingerprint != rec.fingerprint
            or head.rows != rec.rows or not download.wait(None) or download.size != head.early_size):
        return None
    index = ix.Index.from_bytes(download.buffer, with_digests=False)
    try:
        prints = printing.result()
    except lineprints.PrintError:
        return None
    if index is None or prints.probe != index.probe:
        return None
    download = client.download(INDEX_PATH.format(id=dataset_id), head.early_size, head.size)
    try:
        return _compare(client, dataset_id, key, rows, rec, remote, index, prints, download, state,
                        read_at, prune, n_examples, printing, parallelism)
    finally:
        download.cancel()


def _compare(client: Client, dataset_id: int, key: str, rows: RowSource, rec: applied.Record,
             remote: tuple[int, str, int | None], index: ix.Index, prints: lineprints.LinePrints,
             digests: Download, state: dict, read_at: float, prune: bool, n_examples: int,
             printing: lineprints.Printing, parallelism: int) -> Outcome | None:
    """The rows matched, read and compared; the fold and fingerprint once ``digests`` came."""
    m = ix.match(index, prints)
    to_read = m.to_read
    if len(to_read) > MAX_READ_SHARE * max(1, len(m.old)):
        return None
    by_key = _KeyReads(client, dataset_id)
    try:
        read = _read_rows(rows.checked_file(), key, prints, m, to_read, by_key.send)  # type: ignore[attr-defined]
        if read is None or not printing.unchanged():  # a problem; or edited while printed or read
            return None
        local, read_points, read_digests = read
        # while the last keys' rows are on their way: the fold and the fingerprint
        if not digests.wait(None) or digests.size != 32 * index.rows:
            return None
        index.digests = np.frombuffer(digests.buffer, np.uint8).reshape(index.rows, 32)
        counts, xor = ix.fold(index, m, read_digests, read_points, coarse_level(len(m.old)))
        fingerprint = ix.fingerprint_of(index, m, read_digests, read_points)
        vanished = index.points[m.vanished]
        remote_rows = by_key.rows() + _vanished_rows(client, dataset_id, key, vanished, read_points, parallelism)
    finally:
        by_key.close()
    if _repeats_a_key(remote_rows, local, vanished):
        return None
    diff = RowDiff(n_examples=n_examples)
    compare_keyed(local, remote_rows, prune, diff)
    diff.unchanged += len(m.old) - len(to_read)
    coarse, coarse_hash, version = remote
    return Outcome(
        rows=diff, local_rows=len(m.old), remote_rows=rec.rows, fingerprint=fingerprint,
        local_hash=items_hash(counts, xor), remote_rows_read=len(remote_rows), coarse=coarse,
        coarse_hash=coarse_hash, remote_version=version, state=state, read_at=read_at,
        delta=Delta(index, m, prints, read_digests, read_points, counts, xor),
    )


def _remote_as_recorded(client: Client, dataset_id: int, key: str, rec: applied.Record,
                        listed: Any) -> tuple[int, str, int | None] | None:
    """``(level, items hash, version)`` of the remote digest as this plan saw it, when the
    remote still holds exactly the rows of the record (from the listed root, else one
    digest read); None when it does not."""
    listed = listed if isinstance(listed, dict) else {}
    by_listing = applied.trusted_listing(rec, key, listed.get("digest"))
    if by_listing:
        version = listed.get("version")
        return 1, rec.root, version if type(version) is int else None
    if by_listing is False:
        return None
    same, digest = applied.trusted_digest(client, dataset_id, key, rec)
    return (rec.buckets, digest.items_hash, digest.version) if same else None


def _read_rows(file: Any, key: str, prints: lineprints.LinePrints, m: ix.Match, to_read: np.ndarray,
               keys_read: Callable[[list[str]], None]) -> tuple[dict[str, LocalRow], np.ndarray, np.ndarray] | None:
    """Parse, check and hash the rows at ``to_read``: ``(key -> LocalRow, their key points,
    their digests)`` in that order; None at the first row with a problem (or a key read
    twice): the full pass reports it. ``keys_read`` is handed the keys every
    :data:`KEYS_BATCH` rows (their remote rows are asked for meanwhile)."""
    local: dict[str, LocalRow] = {}
    points, digests = array("Q"), bytearray()
    lines = m.lines[to_read]
    at = prints.starts[lines]
    starts, ends = at.tolist(), (at + prints.lengths[lines]).tolist()
    checker = RowChecker(file.fields, key, file.span_texts, file.display, duplicates=False)
    plain = checker.plain_rows()
    exact, common = exact_row_test(plain, key), common_row_test(plain, key)
    loads, decode_error, key_point = orjson.loads, orjson.JSONDecodeError, canonical.key_point
    batch: list[str] = []
    # one pread a row: a mmap of the file would count every page it touched (about all of
    # them, with the kernel's fault-around) in the plan's RSS
    with open(file.path, "rb", buffering=0) as f:
        fd, pread = f.fileno(), os.pread
        for ordinal, line, a, b in zip(to_read.tolist(), lines.tolist(), starts, ends):
            raw = pread(fd, b - a, a)
            if line == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                if not raw.strip():
                    return None  # a BOM on a blank first line: the rows are not the lines
            try:
                row = loads(raw)
            except decode_error:
                return None
            if not (type(row) is dict and (exact(row) or common(row))):
                row = checker.check(line + 1, row)
                if row is None:
                    return None
            cj, digest = row_digest(row)  # not inlined as in the passes over every row: a few
            kt = row_key(row, key, digest)  # thousand rows here, the calls cost nothing
            if kt is None or kt in local:
                return None
            p = key_point(kt)
            local[kt] = LocalRow(ordinal, line + 1, p, len(cj), digest)
            points.append(p)
            digests += digest
            batch.append(kt)
            if len(batch) == KEYS_BATCH:
                keys_read(batch)
                batch = []
    if checker.finish():
        return None
    if batch:
        keys_read(batch)
    return local, np.frombuffer(points, np.uint64), np.frombuffer(digests, np.uint8).reshape(-1, 32)


class _KeyReads:
    """``POST /datasets/{id}/digest/keys`` of the keys read so far, in a background thread,
    while the next rows are parsed."""

    def __init__(self, client: Client, dataset_id: int):
        self._client, self._path = client, f"/datasets/{dataset_id}/digest/keys"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hlops-keys")
        self._pages: list = []

    def send(self, keys: list[str]) -> None:
        self._pages.append(self._pool.submit(self._client.request, "POST", self._path, body={"keys": keys}))

    def rows(self) -> list:
        out: list = []
        for page in self._pages:
            out.extend((it["id"], it["key"], it["hash"], it.get("annotations") or 0) for it in page.result()["items"])
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _repeats_a_key(remote_rows: list, local: dict[str, LocalRow], vanished: np.ndarray) -> bool:
    """Whether a row read repeats the key of a row kept as it was. The remote holds the
    rows of the file applied: a key read that it holds is the key of a row that vanished
    from the file (edited: the row read is its new text) or of one still in it, unread."""
    gone = set(vanished.tolist())
    return any(local[r[1]].point not in gone for r in remote_rows if r[1] in local)


def _vanished_rows(client: Client, dataset_id: int, key: str, vanished: np.ndarray,
                   read_points: np.ndarray, parallelism: int) -> list:
    """The remote rows of the vanished rows whose key is none read (removed from the file):
    their fine buckets' rows, kept by key point."""
    gone = vanished[~np.isin(vanished, read_points)] if len(vanished) else vanished
    out: list = []
    if len(gone):
        points = set(gone.tolist())
        fine = sorted({p & FINE_MASK for p in points})
        for page in read_rows_of(client, dataset_id, key, FINE, fine, parallelism):
            out.extend(r for r in page if remote_point(r, False) in points)
    return out


def start_for_apply(key: str | None, rows: RowSource, source: str | None) -> lineprints.Printing | None:
    """The prints of a file that a streamed apply sends whole, for the index it notes with
    the record: one worker at a lower priority, beside the pass and the uploads (a server on
    the same machine needs the cores more)."""
    if key is None or not _big_jsonl(rows, source):
        return None
    try:
        return lineprints.start(source, workers=1, nice=10)
    except OSError:
        return None


def index_noter(client: Client, dataset_id: int, printing: lineprints.Printing | None,
                summary: Any, digests: bytearray | None, read_sha256: str | None) -> Callable[[str], int] | None:
    """What :func:`~hlops.providers.humanloop.data.applied.note` calls to store the index of
    a file a streamed apply sent: its prints, and the pass's key points and digests. Called
    when the pass is over: with the SHA-256 of the bytes it read, the index is sent at once,
    in a thread, while the last batches are in flight (it names those bytes: the record
    noted after, for the same bytes, finds it)."""
    if printing is None or digests is None or summary.points is None or not 0 < summary.count <= MAX_ROWS:
        return None

    def store(source_sha256: str) -> int:
        try:
            prints = printing.result()
        except lineprints.PrintError:
            return 0
        digest_rows = np.frombuffer(digests, np.uint8).reshape(-1, 32)
        counts, xor = summary.fold(coarse_level(summary.count))[:2]
        index = ix.index_of(prints, summary.points, digest_rows, source_sha256, summary.fingerprint, counts, xor)
        return upload_index(client, dataset_id, index) if index is not None else 0

    if read_sha256 is None:
        return store
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hlops-index")
    early = pool.submit(store, read_sha256)
    pool.shutdown(wait=False)

    def stored(source_sha256: str) -> int:
        size = early.result()
        return size if source_sha256 == read_sha256 else store(source_sha256)

    return stored


def upload_index(client: Client, dataset_id: int, index: ix.Index) -> int:
    """Store ``index`` beside the record; its size in bytes (0: not stored). The body is
    read from the index's arrays as it is sent, not joined into one more copy."""
    body = _Parts(index.parts())
    try:
        client.put_bytes(INDEX_PATH.format(id=dataset_id), body)
    except (ApiError, TransportError):  # a server without the call, over its limit, gone
        return 0
    return len(body)


class _Parts(io.RawIOBase):
    """Buffers read one after the other as one seekable file (a request body that a retry
    can rewind)."""

    def __init__(self, parts: list[memoryview]):
        self._parts = [p.cast("B") for p in parts]
        self._size = sum(len(p) for p in self._parts)
        self._at = 0

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, min(self._size, base + offset))
        return self._at

    def readinto(self, b: Any) -> int:
        at, lo = self._at, 0
        for part in self._parts:
            if at < lo + len(part):
                n = min(len(b), lo + len(part) - at)
                b[:n] = part[at - lo:at - lo + n]
                self._at += n
                return n
            lo += len(part)
        return 0

