"""Bucket summaries of a dataset, computed from the stored hashes and points only.

A summary is kept at the finest level, :data:`hlops.canonical.MAX_BUCKETS` (65,536)
buckets -- ``counts[b]`` and the XOR of the hashes of the datapoints whose key point is
``b`` modulo 65,536 -- and folded down to any smaller power of two on demand: bucket ``i`` of
N gathers the fine buckets ``i, i + N, i + 2N, ...`` (``point % N == (point % 65536) % N``).

The store feeds it chunks of ``(point & 65535, hash)`` straight from SQL (concatenated by
SQLite, so no Python object is made per datapoint) and numpy does the grouping; that is
what makes a digest of a million datapoints cheaper than merely selecting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from hlops import canonical
from hlops.server.rows import PARTS, bucket_parts
from hlops.server.sqlite_common import pair_cursor

FINE = canonical.MAX_BUCKETS


class FineSummary:
    """Counts and XORed hashes per fine bucket, built up chunk by chunk."""

    def __init__(self) -> None:
        self.counts = np.zeros(FINE, dtype=np.int64)
        self.xor = np.zeros((4, FINE), dtype=np.uint64)  # 4 x 64 bits of the XOR, per bucket
        self._folded: dict[int, list[dict]] = {}

    def add_chunk(self, hashes: bytes, fine: bytes) -> None:
        """Add datapoints given as their 32-byte hashes concatenated, and their fine
        buckets (``point & 65535``) as comma-separated decimal text, in the same order."""
        if not hashes:
            return
        words = np.frombuffer(hashes, dtype=">u8").reshape(-1, 4)
        # np.fromstring in text mode (sep=",") parses in C; it is not the deprecated binary mode
        buckets = np.fromstring(fine, dtype=np.int64, sep=",")
        if len(buckets) != len(words):
            raise ValueError("digest chunk: hashes and points differ in length")
        self.add(buckets, words.astype(np.uint64))

    def add_points(self, fine: list[int], hashes: list[bytes]) -> None:
        """Add datapoints given as fine buckets and 32-byte digests (the slow path)."""
        if not fine:
            return
        h = np.frombuffer(b"".join(hashes), dtype=">u8").reshape(-1, 4).astype(np.uint64)
        self.add(np.array(fine, dtype=np.int64), h)

    def add(self, fine: np.ndarray, hashes: np.ndarray) -> None:
        """``fine``: int64[n] fine buckets; ``hashes``: uint64[n, 4] (big-endian words)."""
        self._folded.clear()
        self.counts += np.bincount(fine, minlength=FINE)
        for word in range(4):  # unbuffered in-place XOR per bucket (no sort needed)
            np.bitwise_xor.at(self.xor[word], fine, hashes[:, word])

    def fold(self, buckets: int) -> list[dict]:
        """``[{bucket, count, hash}]`` of the non-empty buckets of a ``buckets``-bucket digest
        (kept: a summary is immutable once the store caches it)."""
        if buckets in self._folded:
            return self._folded[buckets]
        counts = self.counts.reshape(FINE // buckets, buckets).sum(axis=0)
        xor = np.bitwise_xor.reduce(self.xor.reshape(4, FINE // buckets, buckets), axis=1)
        nonzero = np.flatnonzero(counts)
        hexes = np.ascontiguousarray(xor[:, nonzero].T).astype(">u8").tobytes().hex()
        items = [
            {"bucket": b, "count": c, "hash": hexes[i * 64:(i + 1) * 64]}
            for i, (b, c) in enumerate(zip(nonzero.tolist(), counts[nonzero].tolist()))
        ]
        self._folded[buckets] = items
        return items

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def fine_bucket(key_point: int) -> int:
    return key_point & (FINE - 1)


def parts_after(buckets: int, which: list[int], page: Any) -> Iterator[tuple[int, int, list[int] | None]]:
    """The parts holding buckets ``which`` of ``buckets``, in order, from a ``[part, id]``
    cursor on: ``(part, read ids above this, the part's wanted buckets)``; the wanted list
    is None when the whole part is wanted (``buckets <= 256``: a part lies in one bucket).
    A malformed cursor is a 422 (``query.cursor``)."""
    start, after = pair_cursor(page.after, PARTS) if page.after is not None else (0, 0)
    by_part: dict[int, list[int]] = {}
    for b in which:
        for part in bucket_parts(buckets, b):
            by_part.setdefault(part, []).append(b)
    for part in sorted(by_part):
        if part >= start:
            yield part, (after if part == start else 0), (by_part[part] if buckets > PARTS else None)
