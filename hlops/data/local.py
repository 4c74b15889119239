"""The local side of a datapoint diff: stream a data source into a small summary.

A data source (a :data:`RowSource`) is read as a stream, never held whole. One pass makes a
:class:`LocalSummary` at the *fine* level of 65,536 buckets (the finest digest the server
offers): per bucket, the number of rows, the XOR of their hashes and the bytes of their
canonical JSON. Any coarser power-of-two level is a fold of it, because a key's bucket at N
buckets is ``point % N`` and N divides 65,536. The summary is about 3 MB whatever the row count.

A second pass (:func:`collect`), only when the remote differs, keeps the key and hash of the
rows in the buckets that differ, so memory follows what differs, not the dataset.

Row identity during one plan/apply is the row's *ordinal* (its position in the stream), with
its 64-bit key point kept next to it to check that the stream still yields the same rows.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from hlops import canonical
from hlops.data import parallel
from hlops.data.scan import CHUNK, FINE, FINE_MASK, MAX_PROBLEMS, Accumulator, scan
from hlops.datafile import exact_row_test
from hlops.errors import ManifestError, Problem

RowSource = Callable[[], Iterator[tuple[int, dict]]]

__all__ = ["CHUNK", "FINE", "FINE_MASK", "LocalRow", "LocalSummary", "RowSource", "collect",
           "first_keys", "rereader", "row_digest", "row_key", "summarise"]


def rereader(rows: RowSource) -> RowSource:
    """The source to read the rows again from. A RowSource may carry ``unchecked``: the
    same rows without the per-row checks (types, spans, duplicate keys). hlops.data uses
    it for every pass after the first, once the data was checked (by the first pass, or by
    the pass that made an unchanged cached summary; the manifest loader checks data files
    too). A file that changes anyway is caught: apply matches rows by ordinal, checks each
    row's key point and the row count."""
    fast = getattr(rows, "unchecked", None)
    return fast if callable(fast) else rows


def row_digest(row: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(canonical JSON, SHA-256 digest)`` of a normalised row.

    The bytes come from :func:`hlops.canonical.canonical_json` and the digest is its SHA-256,
    which is :func:`hlops.canonical.row_hash` (a test pins the equality); both are needed
    because the same bytes are counted in the plan and sent by apply.
    """
    cj = canonical.canonical_json(row)
    return cj, hashlib.sha256(cj).digest()


def row_key(row: Mapping[str, Any], key: str | None, digest: bytes) -> str | None:
    """The row's key (:func:`hlops.canonical.key_text`): the key field's text, or its hash."""
    return canonical.key_text(row, key, digest.hex() if key is None else "")


@dataclass
class LocalSummary:
    """The fine-level summary of a data source: no row content, about 3 MB.

    ``dup`` marks fine buckets holding two rows with the same key. In a dataset with a
    ``key`` that is an error (see :func:`summarise`); without one it means duplicate rows,
    which XOR away in pairs, so such buckets are always compared row by row.
    """

    count: int
    fingerprint: str  # SHA-256 over the row hashes (32-byte digests), in stream order
    bytes_total: int  # sum of the rows' canonical JSON lengths
    counts: np.ndarray  # int64[FINE]
    xor: np.ndarray  # uint8[FINE, 32]
    nbytes: np.ndarray  # int64[FINE]
    dup: np.ndarray  # bool[FINE]
    # uint64[count]: each row's key point, in stream order (8 bytes a row), kept from the
    # pass so that a later pass can read only the rows of the buckets that differ
    # (:func:`collect`); kept in the on-disk cache too (None from an entry written before)
    points: np.ndarray | None = None

    def fold(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(counts, xor, nbytes, dup)`` at ``n`` buckets (a power of two <= 65,536)."""
        if not canonical.valid_bucket_count(n):
            raise ValueError(f"bad bucket count {n}")
        shape = (FINE // n, n)
        return (
            self.counts.reshape(shape).sum(axis=0),
            np.bitwise_xor.reduce(self.xor.reshape(*shape, 32), axis=0),
            self.nbytes.reshape(shape).sum(axis=0),
            self.dup.reshape(shape).any(axis=0),
        )

    @classmethod
    def of(cls, acc: Accumulator, dup: np.ndarray, points: np.ndarray | None = None) -> LocalSummary:
        """What an :class:`~hlops.data.scan.Accumulator` holds after the last row."""
        return cls(
            count=acc.count,
            fingerprint=acc.fp.hexdigest(),
            bytes_total=int(acc.nbytes.sum()),
            counts=acc.counts,
            xor=acc.xor.view(np.uint8).reshape(FINE, 32),
            nbytes=acc.nbytes,
            dup=dup,
            points=points,
        )

    @classmethod
    def empty(cls) -> LocalSummary:
        return cls(
            0, hashlib.sha256().hexdigest(), 0,
            np.zeros(FINE, np.int64), np.zeros((FINE, 32), np.uint8),
            np.zeros(FINE, np.int64), np.zeros(FINE, bool),
        )


def summarise(rows: RowSource, key: str | None, where: str) -> LocalSummary:
    """One streaming pass: the fine-level summary, and the checks of a keyed dataset.

    Raises :class:`ManifestError` (with line numbers, never the values) for rows without a
    key value and for duplicate keys. Memory: the summary, 8 bytes per row (the key points,
    sorted once to find duplicates) and a chunk of :data:`CHUNK` rows' digests; the per-row
    work is hashing (:func:`hlops.data.scan.scan`), the bookkeeping is done per chunk with
    numpy. A big JSONL data file is read by worker processes, a range of lines each
    (:mod:`hlops.data.parallel`); the summary and the errors are the same.
    """
    acc = Accumulator()
    file = parallel.split_file(rows)
    if file is not None:
        missing, problems = parallel.scan_file(file, key, where, acc.add)
    elif (whole := parallel.checked_file(rows)) is not None:
        missing, problems = parallel.scan_whole(whole, key, where, acc.add)
    else:
        missing, problems = scan(rows(), key, where, acc.add)
    if missing > len(problems):
        problems.append(Problem(where, 0, 0, f"{missing - len(problems):,} more datapoints have no key value"))
    dup_points = _duplicate_points(acc.points)
    points = np.frombuffer(acc.points, np.uint64)
    acc.points = array("Q")
    dup = np.zeros(FINE, bool)
    if dup_points:
        if key is not None:
            problems.extend(_duplicate_key_problems(rows, key, where, dup_points))
        for p in dup_points:
            dup[p & FINE_MASK] = True
    if problems:
        raise ManifestError(problems)
    return LocalSummary.of(acc, dup, points)


def _duplicate_points(points: array) -> set[int]:
    if len(points) < 2:
        return set()
    a = np.sort(np.frombuffer(points, np.uint64))
    same = a[1:] == a[:-1]
    return {int(p) for p in a[1:][same]}


def _duplicate_key_problems(rows: RowSource, key: str, where: str, suspects: set[int]) -> list[Problem]:
    """Second pass over the rows whose key point repeats: exact key comparison, with lines.

    The key's value is never put in the message (it is datapoint content)."""
    first: dict[str, int] = {}
    problems: list[Problem] = []
    more = 0
    for line, row in rows():
        kt = canonical.key_text(row, key, "")
        if kt is None or canonical.key_point(kt) not in suspects:
            continue
        seen = first.get(kt)
        if seen is None:
            first[kt] = line
        elif len(problems) < MAX_PROBLEMS:
            problems.append(Problem(where, line, 1, f"duplicate key: line {seen} has the same {key!r} — each datapoint needs its own key"))
        else:
            more += 1
    if more:
        problems.append(Problem(where, 0, 0, f"{more:,} more rows repeat a key"))
    return problems


# --------------------------------------------------------------------------- second pass


@dataclass(slots=True)
class LocalRow:
    ordinal: int
    line: int
    point: int
    size: int
    digest: bytes


def collect(
    rows: RowSource,
    key: str | None,
    wanted: np.ndarray,
    examples_from: np.ndarray | None = None,
    n_examples: int = 0,
    points: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Second pass: the rows whose fine bucket is ``wanted`` (bool[FINE]), read through
    :func:`rereader` (the data was checked by the first pass).

    Returns ``(rows, examples)``. With a key, ``rows`` maps key -> :class:`LocalRow`; without
    one it maps hash -> list of :class:`LocalRow` (duplicates are legal there), in stream
    order. ``examples`` holds up to ``n_examples`` keys of rows in ``examples_from`` buckets.

    With ``points`` (the summary's key point of every row, in stream order) and a source
    that can read rows by ordinal (``lines_at``: a JSONL data file), only the wanted
    rows are parsed and hashed, and the read stops after the last of them
    (:func:`_collect_selected`); otherwise every row is.
    """
    if points is not None:
        found = _collect_selected(rows, key, wanted, examples_from, n_examples, points)
        if found is not None:
            return found
    rows = rereader(rows)
    want = wanted.tolist()
    ex_mask = examples_from.tolist() if examples_from is not None and n_examples else None
    out: dict[str, Any] = {}
    examples: list[str] = []
    key_point = canonical.key_point
    for ordinal, (line, row) in enumerate(rows()):
        cj, digest = row_digest(row)
        kt = row_key(row, key, digest)
        if kt is None:  # summarise() reported it already
            continue
        p = key_point(kt)
        f = p & FINE_MASK
        if ex_mask is not None and ex_mask[f] and len(examples) < n_examples:
            examples.append(kt)
        if not want[f]:
            continue
        _keep(out, key, kt, LocalRow(ordinal, line, p, len(cj), digest))
    return out, examples


def _keep(out: dict[str, Any], key: str | None, kt: str, item: LocalRow) -> None:
    """File a collected row under its key (keyless: a list, rows may repeat)."""
    if key is None:
        out.setdefault(kt, []).append(item)
    else:
        out[kt] = item


def _collect_selected(
    rows: RowSource, key: str | None, wanted: np.ndarray, examples_from: np.ndarray | None,
    n_examples: int, points: np.ndarray,
) -> tuple[dict[str, Any], list[str]] | None:
    """:func:`collect` reading only the rows it keeps: which ordinals those are follows from
    ``points`` alone (a row's fine bucket is ``point & FINE_MASK``). None when the source
    cannot read rows by ordinal, or when a row read does not have the key point the summary
    recorded for its ordinal (the file changed since: the caller reads every row)."""
    file = getattr(rows, "checked_file", lambda: None)()
    lines_at = getattr(file, "lines_at", None)
    if lines_at is None:
        return None
    fine = (points & np.uint64(FINE_MASK)).astype(np.intp)
    keep = wanted[fine]
    select = keep.copy()
    ex_ordinals: set[int] = set()
    if examples_from is not None and n_examples:
        ex_ordinals = set(np.flatnonzero(examples_from[fine])[:n_examples].tolist())
        select[list(ex_ordinals)] = True
    ordinals = np.flatnonzero(select)
    found = lines_at(ordinals)
    if found is None:
        return None
    out: dict[str, Any] = {}
    examples: list[str] = []
    expected = points[ordinals].tolist()
    keep_list = keep[ordinals].tolist()
    # row_digest, row_key and canonical.key_point inlined, as in scan.scan and stream.rows
    # (a test pins the equality with collect's full pass): calling them made a 1M-row plan
    # after a 1% change ~0.2 s longer (3.79-4.03 s vs 4.04-4.21 s, three pairs). A row of
    # strings in every text/categorical field and nothing else is taken as the normaliser
    # would return it (as it is).
    normalise = canonical.RowNormaliser(file.fields)
    exact = exact_row_test(normalise.plain, None)
    loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
    sha256, from_bytes, key_text = hashlib.sha256, int.from_bytes, canonical.key_text
    n = 0
    for n, (ordinal, line, raw) in enumerate(found, 1):
        row = loads(raw)
        if not exact(row):
            row = normalise(row)
        cj = dumps(row, option=sort_keys)
        digest = sha256(cj).digest()
        if key is None:
            kt = digest.hex()
        else:
            kt = row.get(key)
            if type(kt) is not str:
                kt = key_text(row, key, "")
        p = from_bytes(sha256(kt.encode()).digest()[:8], "big") if kt is not None else None
        if p != expected[n - 1]:
            return None
        if ordinal in ex_ordinals:
            examples.append(kt)
        if keep_list[n - 1]:
            _keep(out, key, kt, LocalRow(ordinal, line, p, len(cj), digest))
    if n != len(ordinals):
        return None
    return out, examples


def first_keys(rows: RowSource, key: str | None, mask: np.ndarray, n: int) -> list[str]:
    """The keys of the first ``n`` rows in ``mask`` buckets (stops reading early)."""
    m = mask.tolist()
    out: list[str] = []
    if n <= 0 or not mask.any():
        return out
    for _line, row in rows():
        cj, digest = row_digest(row)
        kt = row_key(row, key, digest)
        if kt is not None and m[canonical.key_point(kt) & FINE_MASK]:
            out.append(kt)
            if len(out) >= n:
                break
    return out
