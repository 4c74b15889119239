"""Derive a dataset's datapoint diff: local summary + remote digest -> :class:`DataDiff`.

The steps, each reading only what the previous one could not settle:

1. the local summary at 65,536 fine buckets (one streaming pass, or the cache);
2. the remote bucket digest at a coarse level N (about 1,000 rows a bucket): equal buckets
   are settled; remote-empty buckets are all adds; local-empty buckets are left alone or,
   with prune, removals;
3. if rows in both sides differ (``MIXED`` buckets), :func:`~hlops.data.compare.next_step`
   picks where to read their rows from: those buckets at N, a finer digest first, or one
   listing of every row; the remote rows of those buckets are fetched in parallel while a
   second local pass collects the local rows of the same buckets (parsing only those rows
   when the summary kept each row's key point: see :func:`hlops.data.local.collect`);
4. rows are compared by key (or by hash, as multisets, without a key).

Memory follows what differs: the summaries (~3 MB) plus the rows of the differing buckets,
processed in groups of at most :data:`GROUP_ROWS` rows (one local pass per group).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hlops.data import compare as cmp
from hlops.data.cache import RateStore, estimate_seconds
from hlops.data.compare import ADD_ALL, MIXED, REMOTE_ONLY, RowDiff
from hlops.data.local import (
    FINE, FINE_MASK, LocalSummary, RowSource, collect, first_keys, rereader,
)
from hlops.data.summary import load_summary, summary_signature
from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.data import applied, delta
from hlops.providers.humanloop.data.digest import (
    RemoteDigest, items_hash, read_all_rows, read_bucket_rows, read_digest, read_rows_of,
)
from hlops.providers.humanloop.data.upload import MAX_BYTES, MAX_ROWS
from hlops.errors import ApiError, PlanError
from hlops.plan import DataChange

GROUP_ROWS = 200_000  # local + remote rows compared at once (each group is one local pass;
# ~470 bytes a row in Python objects: 400,000 took a 1%-changed plan of 1M rows to 218 MB)
N_EXAMPLES = 5
KEYLESS_NOTE = (
    "this dataset has no `key`: datapoints are matched by content, so an edited row shows "
    "as one removed and one added (removed only with prune_data)"
)


@dataclass
class DataDiff:
    """The full outcome of a diff, kept in memory between plan and apply (never saved).

    Row identity is the ordinal in the stream, checked by the key point."""

    fingerprint: str
    local_rows: int
    remote_rows: int
    key: str | None
    prune: bool
    add_all: np.ndarray  # bool[FINE]: every local row in these fine buckets is an add
    add_all_rows: int
    add_all_bytes: int
    rows: RowDiff
    add_examples: list[str] = field(default_factory=list)
    buckets: int = 0
    coarse: int = 1
    coarse_hash: str = ""  # items hash of the coarse digest: the remote as the plan saw it
    remote_version: int | None = None
    remote_rows_read: int = 0
    unmatched_extra: int = 0  # remote rows in local-empty buckets, left alone
    source_state: dict | None = None
    source_read_at: float = 0.0  # when source_state was read (racy files get no record)
    signature: str = ""  # of the summary (hlops.data.cache.signature, with the checks)
    local_hash: str = ""  # items hash of the local summary folded to coarse_level(local_rows)
    local_dup: bool = False  # a fine bucket holds repeated rows (keyless): no record then
    dataset_id: int | None = None
    decided_by: str = "digest"  # "last_applied" | "index" | "digest" | "new" (no remote dataset)
    delta: Any = None  # a delta plan's (hlops.providers.humanloop.data.delta.Delta): the next index

    # -- counts -------------------------------------------------------------------------
    @property
    def add(self) -> int:
        return self.add_all_rows + len(self.rows.add_ordinal)

    @property
    def change(self) -> int:
        return len(self.rows.change_ordinal)

    @property
    def remove(self) -> int:
        return len(self.rows.remove_id)

    @property
    def unmatched(self) -> int:
        return self.rows.unmatched + self.unmatched_extra

    @property
    def unchanged(self) -> int:
        return self.local_rows - self.add - self.change

    def bytes_and_calls(self) -> tuple[int, int]:
        """Request bodies apply will send, and how many write calls (PUT/PATCH/delete).

        Exact when batches are cut by row count (rows under ~1.6 KB); with bigger rows the
        16 MiB cut is estimated from the total."""
        head = len(b'{"data":[]}')
        add_rows, change_rows, remove_rows = self.add, self.change, self.remove
        add_content = self.add_all_bytes + self.rows.add_size
        put_calls = max(-(-add_rows // MAX_ROWS), -(-add_content // MAX_BYTES))
        ids = np.frombuffer(self.rows.change_id, np.int64) if change_rows else np.zeros(0, np.int64)
        change_content = (self.rows.change_size + int(_digits(ids).sum())
                          + change_rows * len(b'{"id":,"data":}'))
        patch_calls = max(-(-change_rows // MAX_ROWS), -(-change_content // MAX_BYTES))
        rids = np.frombuffer(self.rows.remove_id, np.int64) if remove_rows else np.zeros(0, np.int64)
        delete_calls = -(-remove_rows // MAX_ROWS)
        total = (
            add_content + (add_rows - put_calls) + put_calls * head
            + change_content + (change_rows - patch_calls) + patch_calls * head
            + int(_digits(rids).sum()) + (remove_rows - delete_calls) + delete_calls * len(b'{"ids":[]}')
        )
        return total, put_calls + patch_calls + delete_calls

    def to_change(self, source: str | None, show_data: bool, rate: dict | None) -> DataChange:
        nbytes, calls = self.bytes_and_calls()
        examples: dict[str, tuple[str, ...]] = {}
        if show_data:
            adds = (self.add_examples + self.rows.examples["add"])[:N_EXAMPLES]
            for kind, keys in (("add", adds), ("change", self.rows.examples["change"]),
                               ("remove", self.rows.examples["remove"])):
                if keys:
                    examples[kind] = tuple(keys)
        rows = self.add + self.change + self.remove
        return DataChange(
            source=source,
            key=self.key,
            local_rows=self.local_rows,
            remote_rows=self.remote_rows,
            add=self.add,
            change=self.change,
            remove=self.remove,
            remove_annotated=self.rows.remove_annotated,
            unmatched_remote=self.unmatched,
            prune=self.prune,
            fingerprint=self.fingerprint,
            bytes_to_send=nbytes,
            calls=calls,
            estimated_seconds=estimate_seconds(rate, rows, nbytes),
            examples=examples,
            unchanged=self.unchanged,
            buckets=self.buckets,
            remote_rows_read=self.remote_rows_read,
            remote_version=self.remote_version,
            decided_by=self.decided_by,
            notes=(KEYLESS_NOTE,) if self.key is None else (),
        )


def _digits(a: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative ints (the JSON length of an id)."""
    if not len(a):
        return a
    return np.floor(np.log10(np.maximum(a, 1))).astype(np.int64) + 1 + (a < 0)


def derive(
    client: Client | None,
    dataset_id: int | None,
    remote_count: int,
    fields: dict[str, str],
    key: str | None,
    rows: RowSource,
    *,
    prune: bool,
    show_data: bool,
    source: str | None,
    cache_dir: Path | None,
    parallelism: int = 4,
    costs: cmp.Costs | None = None,
    last_applied: Any = None,
    listed: Any = None,
) -> DataDiff:
    """The diff (see the module docstring). ``costs`` overrides the measured cost model
    (tests use it to drive each path). ``last_applied``: the dataset's record of its last
    apply (:mod:`hlops.providers.humanloop.data.applied`); when it vouches for the file's bytes and the remote,
    the diff is a no-op decided without reading a row. ``listed``: the dataset as the list
    read it (its ``version``, and its ``digest`` when the server answered
    ``include=digest``): a record with a root is then checked against it without a call."""
    where = source or "inline data"
    n_ex = N_EXAMPLES if show_data else 0
    read = None  # a remote digest already read, reused below when at the same level
    if client is not None and dataset_id is not None and source is not None and last_applied:
        begun = delta.begin(client, dataset_id, last_applied, summary_signature(fields, key, rows), key, rows,
                            source)
        try:
            trusted, read = _from_record(client, dataset_id, key, fields, rows, source, last_applied, prune,
                                         n_ex, listed)
            if trusted is not None:
                return trusted
            if begun is not None and key is not None:
                found = _from_index(client, dataset_id, key, fields, rows, source, last_applied, listed,
                                    prune, n_ex, begun, parallelism)
                if found is not None:
                    return found
        finally:
            if begun is not None:
                begun.cancel()
    summary, state, read_at = load_summary(rows, fields, key, source, cache_dir, where)
    diff = DataDiff(
        fingerprint=summary.fingerprint, local_rows=summary.count, remote_rows=0, key=key,
        prune=prune, add_all=np.zeros(FINE, bool), add_all_rows=0, add_all_bytes=0,
        rows=RowDiff(n_examples=n_ex), source_state=state, source_read_at=read_at,
        signature=summary_signature(fields, key, rows), dataset_id=dataset_id,
        local_dup=bool(summary.dup.any()),
    )
    record_level = cmp.coarse_level(summary.count)
    diff.local_hash = items_hash(*summary.fold(record_level)[:2])

    if client is None or dataset_id is None:  # a dataset still to create: all adds
        diff.decided_by = "new"
        diff.coarse_hash = items_hash(np.zeros(1, np.int64), np.zeros((1, 32), np.uint8))
        _settle_add_all(diff, summary, np.full(1, ADD_ALL, np.int8))
        diff.add_examples = first_keys(rereader(rows), key, diff.add_all, n_ex)
        return diff

    coarse = cmp.coarse_level(max(summary.count, remote_count))
    digest = read if read is not None and read.buckets == coarse else read_digest(client, dataset_id, key, coarse)
    diff.coarse, diff.coarse_hash = coarse, digest.items_hash
    diff.remote_rows, diff.remote_version = digest.total, digest.version
    lc, lx, _lb, ld = summary.fold(coarse)
    cat = cmp.classify(lc, lx, ld, digest.counts, digest.xor)
    level, listing = coarse, False
    if digest.key != key:
        if key is not None:
            raise PlanError(
                f"the server bucketed the digest by {digest.key!r} instead of {key!r}"
            )
        # No key here, but the dataset has one (a plan that drops `key`): the server's
        # buckets are by that field, ours by hash. Compare every row, by hash, in one listing.
        cat = np.full(coarse, MIXED, np.int8)
        digest.counts = np.full(coarse, -(-digest.total // coarse), np.int64)  # for grouping
        listing = True
    if costs is None and not listing and (cat == MIXED).any():
        costs = _measure(client, dataset_id, key, int(np.flatnonzero(cat == MIXED)[0]), parallelism)
    while not listing and (cat == MIXED).any():
        step = cmp.next_step(level, cat, lc, digest.counts, costs)
        if step.kind == "fetch":
            break
        if step.kind == "listing":
            # every row will be read anyway; a fine digest first (small next to that
            # listing) marks which rows differ, so only those are kept and compared
            listing = True
            finest = cmp.listing_level(digest.total)
            if finest <= level:
                break
            step = cmp.Step("refine", finest)
        level = step.buckets
        digest = read_digest(client, dataset_id, key, level)
        lc, lx, _lb, ld = summary.fold(level)
        cat = cmp.classify(lc, lx, ld, digest.counts, digest.xor)
    diff.buckets = level
    _settle_add_all(diff, summary, cat)
    if not prune:
        diff.unmatched_extra = int(digest.counts[cat == REMOTE_ONLY].sum())
    fetch = (cat == MIXED) | ((cat == REMOTE_ONLY) if prune else False)
    if costs is None and not listing and fetch.any():  # only removals to read (prune)
        costs = _measure(client, dataset_id, key, int(np.flatnonzero(fetch)[0]), parallelism)
    groups = _groups(np.flatnonzero(fetch), lc, digest.counts)
    examples_from = diff.add_all if n_ex else None
    for group in groups:
        _compare_group(client, dataset_id, key, rows, diff, digest, cat, group, listing,
                       examples_from, parallelism, costs, summary.points)
        examples_from = None
    if n_ex and not diff.add_examples and diff.add_all_rows:
        diff.add_examples = first_keys(rereader(rows), key, diff.add_all, n_ex)
    _sort_rows(diff.rows)
    return diff


def _measure(client: Client, dataset_id: int, key: str | None, fine_bucket: int,
             parallelism: int) -> cmp.Costs:
    """What requests cost on this server, measured with two small reads: the rows of one
    fine bucket inside a differing bucket (the time a server needs to find a bucket varies
    a lot with how it indexes them) through ``POST .../digest/rows`` -- or, on a server
    without that call, through ``GET .../digest?bucket=`` -- and the first page of the plain
    listing. ``fine_bucket``: a differing bucket's index at any level, which is also a fine
    bucket inside it (fine f lies in bucket f % n)."""
    base = {"key": key} if key is not None else {}

    def timed(params: dict) -> float:
        started = time.perf_counter()
        page = client.request("GET", f"/datasets/{dataset_id}/digest", params={**base, **params})
        rows = len(page.get("items") or ())
        return max(5e-4, time.perf_counter() - started - rows * cmp.ROW_SECONDS)

    def timed_many() -> float | None:
        """One fine bucket through ``POST .../digest/rows`` (None: the server has no such call)."""
        body = {"buckets": FINE, "which": [fine_bucket], **base}
        started = time.perf_counter()
        try:
            page = client.request("POST", f"/datasets/{dataset_id}/digest/rows", params={"limit": cmp.PAGE}, body=body)
        except ApiError as exc:
            if exc.status in (404, 405):
                return None
            raise
        rows = len(page.get("items") or ())
        return max(5e-4, time.perf_counter() - started - rows * cmp.ROW_SECONDS)

    many = timed_many()
    page = timed({"limit": cmp.PAGE})
    if many is None:
        return cmp.Costs(
            latency=timed({"buckets": FINE, "bucket": fine_bucket, "limit": cmp.PAGE}),
            page_latency=page, parallelism=max(1, parallelism),
        )
    # Both are one round trip of a cheap read (what the many-bucket call spends per index
    # part is priced apart, PART_SECONDS): the smaller is the round trip. A retried request
    # (a 429's Retry-After, a 503's backoff) would otherwise tip the model into another path
    # with many more calls.
    rtt = min(many, page)
    return cmp.Costs(page_latency=rtt, parallelism=max(1, parallelism), many=True, many_latency=rtt)


def _from_record(
    client: Client, dataset_id: int, key: str | None, fields: dict[str, str], rows: RowSource,
    source: str, last_applied: Any, prune: bool, n_examples: int, listed: Any = None,
) -> tuple[DataDiff | None, RemoteDigest | None]:
    """The no-op diff when the dataset's last-applied record vouches for the data file's
    bytes and the remote still holds the rows applied (told by the listed digest, else by
    one digest read); else (None, the digest if one was read)."""
    found = applied.matching(last_applied, summary_signature(fields, key, rows), Path(source))
    if found is None:
        return None, None
    rec, state = found
    listed = listed if isinstance(listed, dict) else {}
    by_listing = applied.trusted_listing(rec, key, listed.get("digest"))
    if by_listing is False:
        return None, None
    if by_listing:
        # At one bucket: apply's check that the plan is not stale (`_reusable`) reads the
        # digest at `coarse` and compares its items hash with `coarse_hash`, the root.
        version = listed.get("version")
        diff = DataDiff(
            fingerprint=rec.fingerprint, local_rows=rec.rows, remote_rows=rec.rows, key=key,
            prune=prune, add_all=np.zeros(FINE, bool), add_all_rows=0, add_all_bytes=0,
            rows=RowDiff(n_examples=n_examples), buckets=1, coarse=1, coarse_hash=rec.root,
            remote_version=version if type(version) is int else None, source_state=state,
            dataset_id=dataset_id, decided_by="last_applied",
        )
        return diff, None
    same, digest = applied.trusted_digest(client, dataset_id, key, rec)
    if not same:
        return None, digest
    diff = DataDiff(
        fingerprint=rec.fingerprint, local_rows=rec.rows, remote_rows=digest.total, key=key,
        prune=prune, add_all=np.zeros(FINE, bool), add_all_rows=0, add_all_bytes=0,
        rows=RowDiff(n_examples=n_examples), buckets=rec.buckets, coarse=rec.buckets,
        coarse_hash=digest.items_hash, remote_version=digest.version, source_state=state,
        dataset_id=dataset_id, decided_by="last_applied",
    )
    return diff, digest


def _from_index(
    client: Client, dataset_id: int, key: str, fields: dict[str, str], rows: RowSource, source: str,
    last_applied: Any, listed: Any, prune: bool, n_examples: int, begun: Any, parallelism: int,
) -> DataDiff | None:
    """The diff of a delta plan (:mod:`~hlops.providers.humanloop.data.delta`), or None."""
    out = delta.derive_delta(client, dataset_id, key, rows, source, last_applied, listed, prune,
                             n_examples, begun, parallelism)
    if out is None:
        return None
    diff = DataDiff(
        fingerprint=out.fingerprint, local_rows=out.local_rows, remote_rows=out.remote_rows,
        key=key, prune=prune, add_all=np.zeros(FINE, bool), add_all_rows=0, add_all_bytes=0,
        rows=out.rows, buckets=out.coarse, coarse=out.coarse, coarse_hash=out.coarse_hash,
        remote_version=out.remote_version, remote_rows_read=out.remote_rows_read,
        source_state=out.state, source_read_at=out.read_at, signature=summary_signature(fields, key, rows),
        local_hash=out.local_hash, dataset_id=dataset_id, decided_by="index", delta=out.delta,
    )
    _sort_rows(diff.rows)
    return diff


def _settle_add_all(diff: DataDiff, summary: LocalSummary, cat: np.ndarray) -> None:
    fine = cmp.expand(cat) == ADD_ALL
    diff.add_all = fine & (summary.counts > 0)
    diff.add_all_rows = int(summary.counts[diff.add_all].sum())
    diff.add_all_bytes = int(summary.nbytes[diff.add_all].sum())


def _groups(buckets: np.ndarray, local_counts: np.ndarray, remote_counts: np.ndarray) -> list[np.ndarray]:
    """Split the buckets to compare into groups of at most GROUP_ROWS rows (both sides)."""
    if not len(buckets):
        return []
    sizes = local_counts[buckets] + remote_counts[buckets]
    out, start, acc = [], 0, 0
    for i, s in enumerate(sizes.tolist()):
        if acc and acc + s > GROUP_ROWS:
            out.append(buckets[start:i])
            start, acc = i, 0
        acc += s
    out.append(buckets[start:])
    return out


def _compare_group(
    client: Client, dataset_id: int, key: str | None, rows: RowSource, diff: DataDiff,
    digest: RemoteDigest, cat: np.ndarray, group: np.ndarray, listing: bool,
    examples_from: np.ndarray | None, parallelism: int, costs: cmp.Costs | None,
    points: np.ndarray | None = None,
) -> None:
    """Compare one group of buckets: their remote rows are read in a background thread
    (many buckets a request, bucket by bucket, or filtered from one listing) while a local
    pass collects theirs -- only those rows when ``points`` (the summary's key point of
    every row) says which they are.

    Bucket reads watch their own pace: when the first ones show that the rest would take
    clearly longer than one listing of every row, they stop and the listing is read instead
    (a server may find buckets much more slowly than the measured request suggested)."""
    n = digest.buckets
    in_group = np.zeros(n, bool)
    in_group[group] = True
    wanted_fine = cmp.expand(in_group & (cat == MIXED))
    fetch_fine = cmp.expand(in_group).tolist()
    read_all = [listing]

    def from_listing() -> list:
        keep = lambda r: fetch_fine[cmp.remote_point(r, key is None) & FINE_MASK]  # noqa: E731
        return list(read_all_rows(client, dataset_id, key, keep))

    def fetch() -> list:
        if listing:
            return from_listing()
        out: list = []
        if costs is not None and costs.many:  # few big requests: bounded by about a listing
            for page in read_rows_of(client, dataset_id, key, n, group.tolist(), parallelism):
                out.extend(page)
            return out
        started = time.perf_counter()
        check_at = max(8, 2 * parallelism)
        chunks = read_bucket_rows(client, dataset_id, key, n, group.tolist(), parallelism)
        for done, chunk in enumerate(chunks, 1):
            out.extend(chunk)
            if done == check_at and costs is not None and costs.adaptive and len(group) > 2 * check_at:
                rest = (len(group) - done) * (time.perf_counter() - started) / done
                if rest > 1.5 * costs.listing_seconds(digest.total):
                    chunks.close()
                    read_all[0] = True
                    return from_listing()
        return out

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hlops-fetch") as bg:
        remote_future = bg.submit(fetch)
        if wanted_fine.any() or examples_from is not None:
            local, examples = collect(rows, key, wanted_fine, examples_from, diff.rows.n_examples, points)
            if examples_from is not None:
                diff.add_examples = examples
        else:
            local = {}
        remote = remote_future.result()
    diff.remote_rows_read += digest.total if read_all[0] else len(remote)
    if key is None:
        cmp.compare_keyless(local, remote, diff.prune, diff.rows)
    else:
        cmp.compare_keyed(local, remote, diff.prune, diff.rows)


def _sort_rows(rd: RowDiff) -> None:
    """Order adds and changes by ordinal (apply walks them along the stream)."""
    from array import array

    for names in (("add_ordinal", "add_point"), ("change_ordinal", "change_point", "change_id")):
        ords = np.frombuffer(getattr(rd, names[0]), np.int64)
        if len(ords) < 2:
            continue
        order = np.argsort(ords, kind="stable")
        for name in names:
            arr = getattr(rd, name)
            sorted_ = np.frombuffer(arr, np.uint64 if arr.typecode == "Q" else np.int64)[order]
            setattr(rd, name, array(arr.typecode, sorted_.tobytes()))


def rate_for(client: Client | None, cache_dir: Path | None) -> dict | None:
    if cache_dir is None:
        return None
    return RateStore(cache_dir).get(client.base_url if client is not None else None)
