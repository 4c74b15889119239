"""Pure comparison of the local data with the remote: buckets first, then rows.

No I/O here. The inputs are the local summary folded to N buckets and the remote digest at
the same N (:func:`classify`), then, for the buckets that differ, the local rows collected
by :func:`hlops.data.local.collect` and the remote rows ``(id, key, hash, annotations)`` read
from the digest (:func:`compare_keyed`, :func:`compare_keyless`).

Bucket categories:

- ``EQUAL``: same count and XOR (and no duplicate rows, which XOR away in pairs) -> nothing
  to do, nothing fetched;
- ``ADD_ALL``: the remote bucket is empty -> every local row there is an add, nothing fetched;
- ``REMOTE_ONLY``: the local bucket is empty -> the remote rows are removed (prune: their ids
  are fetched) or left alone (counted, nothing fetched);
- ``MIXED``: both sides have rows and differ -> rows are fetched and compared.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from hlops import canonical
from hlops.data.local import FINE, LocalRow

EQUAL, ADD_ALL, REMOTE_ONLY, MIXED = 0, 1, 2, 3

ROWS_PER_BUCKET = 1000  # the coarse level: about this many rows per bucket
PAGE = 1000  # rows per page of the row digest
BIG_PAGE = 10_000  # rows per page of the rows of many buckets (one request for any number)
PARTS = 256  # a server files rows under ``point & 255``: a request for many buckets walks parts

# The cost model that picks where differing rows are read from, in seconds (measured
# against the local reference server; only the ratios matter). The cost of one request is
# measured by each plan that needs rows (a provider measures it: Humanloop in its derive._measure).
BUCKET_SECONDS = 4e-6  # one item of a bucket digest: server fold + transfer + decode
ROW_SECONDS = 12e-6  # one row of the row digest: select + transfer + decode + compare
REQUEST_SECONDS = 5e-3  # one request's fixed cost, before it is measured
# Rows of many buckets in one request (measured on the reference server, 200k rows): each
# part of the index that holds a wanted bucket costs its own indexed range, and each row is
# fetched by key rather than read in order (~2x a listed row).
PART_SECONDS = 5e-4
MANY_ROW_FACTOR = 2.0

RemoteRow = tuple[int, str, str, int]  # id, key, hash (hex), annotations


def coarse_level(rows: int) -> int:
    """The first digest level: a power of two giving about ROWS_PER_BUCKET rows a bucket."""
    need = max(1, math.ceil(rows / ROWS_PER_BUCKET))
    return min(FINE, 1 << (need - 1).bit_length())


def listing_level(remote_rows: int) -> int:
    """The digest level read before a listing of every row: about 4 rows a bucket, so
    the rows kept from the listing are those of the (small) buckets that differ."""
    need = max(1, math.ceil(remote_rows / 4))
    return min(FINE, 1 << (need - 1).bit_length())


def classify(
    local_counts: np.ndarray,
    local_xor: np.ndarray,
    local_dup: np.ndarray,
    remote_counts: np.ndarray,
    remote_xor: np.ndarray,
) -> np.ndarray:
    """The category (int8) of each of N buckets, from both sides' counts and XORs."""
    same = (local_counts == remote_counts) & (local_xor == remote_xor).all(axis=1) & ~local_dup
    cat = np.full(len(local_counts), MIXED, np.int8)
    cat[(remote_counts == 0) & (local_counts > 0)] = ADD_ALL
    cat[(local_counts == 0) & (remote_counts > 0)] = REMOTE_ONLY
    cat[same | ((local_counts == 0) & (remote_counts == 0))] = EQUAL
    return cat


def expand(cat: np.ndarray) -> np.ndarray:
    """Categories of N buckets -> of the 65,536 fine buckets (fine f is in bucket f % N)."""
    return np.tile(cat, FINE // len(cat))


@dataclass(frozen=True)
class Costs:
    """Seconds a bucket-row request (``latency``: what the server spends finding a bucket,
    plus the round trip), a page of the plain listing or a digest request (``page_latency``),
    a row of the row digest and an item of the bucket digest cost; ``parallelism`` bucket
    requests overlap.

    ``many``: the server answers the rows of many buckets in one request (``POST
    .../digest/rows``), ``many_latency`` being one such request's round trip (measured):
    reading k buckets then costs a request per :data:`BIG_PAGE` rows, :data:`PART_SECONDS`
    per part of the server's index they touch and :data:`MANY_ROW_FACTOR` times a listed
    row per row, instead of one request per bucket."""

    latency: float = REQUEST_SECONDS
    page_latency: float = REQUEST_SECONDS
    parallelism: int = 4
    row: float = ROW_SECONDS
    bucket: float = BUCKET_SECONDS
    adaptive: bool = True  # bucket reads may switch to the listing when they prove slow
    many: bool = False
    many_latency: float = REQUEST_SECONDS

    @property
    def speedup(self) -> float:
        """What parallel bucket requests gain. Over a network, up to ``parallelism``; a
        server busy computing each answer gains less, so no more than 2 is assumed."""
        return float(min(self.parallelism, 2))

    def fetch_seconds(self, rows: float, buckets: float, level: int) -> float:
        """Reading ``rows`` rows of ``buckets`` buckets of ``level``."""
        if self.many:
            parts = min(PARTS, buckets * max(1, PARTS // level))
            return (rows * self.row * MANY_ROW_FACTOR + parts * PART_SECONDS
                    + (1 + rows / BIG_PAGE) * self.many_latency / self.speedup)
        return rows * self.row + (buckets + rows / PAGE) * self.latency / self.speedup

    def listing_seconds(self, rows: float) -> float:
        return rows * self.row + math.ceil(rows / PAGE) * self.page_latency


@dataclass(frozen=True)
class Step:
    """What to do next at the current level: ``fetch`` the differing buckets' rows here,
    ``refine`` (read the digest at ``buckets`` first), or ``listing`` (read every row)."""

    kind: str  # "fetch" | "refine" | "listing"
    buckets: int
    estimated: float = 0.0  # seconds


PROBE_FACTOR = 16  # how much finer a probe digest is when every bucket differs


def next_step(
    n: int, cat: np.ndarray, local_counts: np.ndarray, remote_counts: np.ndarray,
    costs: Costs = Costs(),
) -> Step:
    """Where to read the differing rows from, given the categories at level ``n``.

    Candidates, each costed in seconds (``estimated`` in :class:`Step`): fetch the differing
    buckets' rows at ``n`` (``parallelism`` requests at a time); read a finer digest at
    ``n * 2**j`` first (it costs that whole digest, but narrows the rows fetched when few
    rows differ in many buckets: 1% of the rows changed touches every coarse bucket); or read
    every row in one sequential listing. Differences are assumed spread uniformly (keys are
    hashed) and their number estimated from the share of buckets that differ. When (nearly)
    every bucket differs that estimate is only a lower bound, so the step is a probe: a
    digest ``PROBE_FACTOR`` times finer, unless that probe would cost more than a quarter
    of reading every row.
    """
    mixed = cat == MIXED
    k = int(mixed.sum())
    remote_total = int(remote_counts.sum())
    listing = costs.listing_seconds(remote_total)
    if k == 0:
        return Step("fetch", n)
    both = int(((local_counts > 0) & (remote_counts > 0)).sum())
    r_mixed = float(remote_counts[mixed].sum())
    p = k / max(both, k)
    useful = min(FINE, 1 << max(remote_total - 1, 0).bit_length())  # ~1 remote row a bucket

    def digest_cost(m: int) -> float:
        return min(m, remote_total) * costs.bucket + costs.page_latency

    fetch_cost = costs.fetch_seconds

    if p >= 0.95 and n < useful:
        probe = min(useful, n * PROBE_FACTOR)
        if digest_cost(probe) * 4 < min(listing, fetch_cost(r_mixed, k, n)):
            return Step("refine", probe, digest_cost(probe))
    lam = -math.log(max(1.0 - p, 0.5 / max(both, 1)))
    d = max(both * lam, float(np.abs(local_counts[mixed] - remote_counts[mixed]).sum()), k)
    base_hit = 1.0 - math.exp(-d / n)
    best = Step("fetch", n, fetch_cost(r_mixed, k, n))
    m = n * 2
    while m <= FINE:
        hit = 1.0 - math.exp(-d / m)
        rows = r_mixed * min(1.0, hit / base_hit)
        cost = digest_cost(m) + fetch_cost(rows, min(m * hit, k * m / n), m)
        if cost < best.estimated:
            best = Step("refine", m, cost)
        m *= 2
    if listing < 0.8 * best.estimated:  # clearly cheaper: one listing of every row
        return Step("listing", n, listing)
    return best


# --------------------------------------------------------------------------- rows


@dataclass
class RowDiff:
    """The row-level outcome, in compact arrays (ordinals, key points, ids, sizes)."""

    add_ordinal: array = field(default_factory=lambda: array("q"))
    add_point: array = field(default_factory=lambda: array("Q"))
    add_size: int = 0
    change_ordinal: array = field(default_factory=lambda: array("q"))
    change_point: array = field(default_factory=lambda: array("Q"))
    change_id: array = field(default_factory=lambda: array("q"))
    change_size: int = 0
    remove_id: array = field(default_factory=lambda: array("q"))
    remove_annotated: int = 0
    unmatched: int = 0
    unchanged: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {"add": [], "change": [], "remove": []})
    n_examples: int = 0

    def _example(self, kind: str, key: str) -> None:
        if len(self.examples[kind]) < self.n_examples:
            self.examples[kind].append(key)

    def add(self, row: LocalRow, key: str) -> None:
        self.add_ordinal.append(row.ordinal)
        self.add_point.append(row.point)
        self.add_size += row.size
        self._example("add", key)

    def change(self, row: LocalRow, remote_id: int, key: str) -> None:
        self.change_ordinal.append(row.ordinal)
        self.change_point.append(row.point)
        self.change_id.append(remote_id)
        self.change_size += row.size
        self._example("change", key)

    def remote_gone(self, remote: RemoteRow, prune: bool) -> None:
        if prune:
            self.remove_id.append(remote[0])
            self.remove_annotated += remote[3] > 0
            self._example("remove", remote[1])
        else:
            self.unmatched += 1


def compare_keyed(
    local: dict[str, LocalRow], remote: Iterable[RemoteRow], prune: bool, diff: RowDiff
) -> None:
    """Rows matched by key: same key and hash = unchanged, other hash = change (PATCH the
    remote id), local only = add, remote only = remove (prune) or left alone.

    ``local`` is consumed. A remote key seen twice (possible only if the dataset's key was
    not enforced when the rows were written) matches once; the lowest id wins."""
    for r in sorted(remote, key=lambda r: r[0]):
        row = local.pop(r[1], None)
        if row is None:
            diff.remote_gone(r, prune)
        elif row.digest.hex() != r[2]:
            diff.change(row, r[0], r[1])
        else:
            diff.unchanged += 1
    for k, row in sorted(local.items(), key=lambda kv: kv[1].ordinal):
        diff.add(row, k)
    local.clear()


def compare_keyless(
    local: dict[str, list[LocalRow]], remote: Iterable[RemoteRow], prune: bool, diff: RowDiff
) -> None:
    """Rows matched by content hash, as multisets: per hash, ``min(local, remote)`` copies
    are unchanged, extra local copies (the later ones in the file) are adds, extra remote
    copies are removed (prune; annotated copies are kept first) or left alone. There are no
    changes: an edited row is a different hash, so it shows as remove + add."""
    by_hash: dict[str, list[RemoteRow]] = {}
    for r in remote:
        by_hash.setdefault(r[2], []).append(r)
    for h in sorted(by_hash):
        copies = sorted(by_hash[h], key=lambda r: (-r[3], r[0]))
        mine = local.pop(h, [])
        keep = min(len(mine), len(copies))
        diff.unchanged += keep
        for r in copies[keep:]:
            diff.remote_gone(r, prune)
        for row in mine[keep:]:
            diff.add(row, h)
    for h, mine in sorted(local.items(), key=lambda kv: kv[1][0].ordinal):
        for row in mine:
            diff.add(row, h)
    local.clear()


def remote_point(r: RemoteRow, keyless: bool) -> int:
    """The key point of a remote row; without a key the row's key is its hash."""
    return canonical.key_point(r[2] if keyless else r[1])
