"""Bucket summaries of a dataset, computed from the stored hashes and points only.

A summary is kept at the finest level, :data:`hlops.canonical.MAX_BUCKETS` (65,536)
buckets -- ``counts[b]`` and the XOR of the hashes of the datapoints whose key point is
``b`` modulo 65,536 -- and folded down to any smaller power of two on demand: bucket ``i`` of
N gathers the fine buckets ``i, i + N, i + 2N, ...`` (``point % N == (point % 65536) % N``).

The store feeds it chunks of ``(point >> 48, hash)`` straight from SQL (concatenated by
SQLite, so no Python object is made per datapoint) and numpy does the grouping; that is
what keeps a digest of a million datapoints near the cost of merely selecting them.
"""

from __future__ import annotations

import numpy as np

from hlops import canonical

FINE = canonical.MAX_BUCKETS
_FINE_BITS = FINE.bit_length() - 1
# top 16 bits of a stored (bit-reversed) point -> the fine bucket (low 16 bits of the point)
_REV16 = np.array([int(f"{i:016b}"[::-1], 2) for i in range(FINE)], dtype=np.int64)


class FineSummary:
    """Counts and XORed hashes per fine bucket, built up chunk by chunk."""

    def __init__(self) -> None:
        self.counts = np.zeros(FINE, dtype=np.int64)
        self.xor = np.zeros((FINE, 4), dtype=np.uint64)

    def add_hex_chunk(self, hex_hashes: str, tops: str) -> None:
        """Add datapoints given as one string of concatenated hex hashes and one of
        comma-separated ``point >> 48`` values (signed), in the same order."""
        if not hex_hashes:
            return
        hashes = np.frombuffer(bytes.fromhex(hex_hashes), dtype=">u8").reshape(-1, 4)
        # np.fromstring in text mode (sep=",") parses in C; it is not the deprecated binary mode
        top = np.fromstring(tops, dtype=np.int64, sep=",") + (FINE // 2)
        if len(top) != len(hashes):
            raise ValueError("digest chunk: hashes and points differ in length")
        self.add(_REV16[top], hashes.astype(np.uint64))

    def add_points(self, fine: list[int], hashes: list[bytes]) -> None:
        """Add datapoints given as fine buckets and 32-byte digests (the slow path)."""
        if not fine:
            return
        h = np.frombuffer(b"".join(hashes), dtype=">u8").reshape(-1, 4).astype(np.uint64)
        self.add(np.array(fine, dtype=np.int64), h)

    def add(self, fine: np.ndarray, hashes: np.ndarray) -> None:
        self.counts += np.bincount(fine, minlength=FINE)
        order = np.argsort(fine, kind="stable")
        sorted_fine = fine[order]
        starts = np.flatnonzero(np.r_[True, sorted_fine[1:] != sorted_fine[:-1]])
        self.xor[sorted_fine[starts]] ^= np.bitwise_xor.reduceat(hashes[order], starts, axis=0)

    def fold(self, buckets: int) -> list[dict]:
        """``[{bucket, count, hash}]`` of the non-empty buckets of a ``buckets``-bucket digest."""
        counts = self.counts.reshape(FINE // buckets, buckets).sum(axis=0)
        xor = np.bitwise_xor.reduce(self.xor.reshape(FINE // buckets, buckets, 4), axis=0)
        hexes = xor.astype(">u8").tobytes().hex()
        return [
            {"bucket": int(b), "count": int(counts[b]), "hash": hexes[b * 64:(b + 1) * 64]}
            for b in np.flatnonzero(counts)
        ]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def fine_bucket(key_point: int) -> int:
    return key_point & (FINE - 1)
