"""The index of the data file last applied: each row's line print, key point and digest, in
file order (48 bytes a row). Pure: bytes in, arrays out, no I/O.

An apply stores it beside the dataset's last-applied record; the next plan of a changed
file prints the file's lines (:mod:`hlops.data.lineprints`) and :func:`match` tells, by
print alone, which rows are byte for byte rows of the file applied (their key point and
digest are the index's: they are not parsed) and which are to be read. Only those rows
are parsed, and only the remote rows of their keys, and of the rows that vanished, are
read (docs/datapoints.md, "The delta plan").

The index names what it describes: the file's SHA-256 and the rows' fingerprint (the
record's ``source_sha256`` and ``fingerprint``), and the hash function its prints came from
(:data:`hlops.data.lineprints.PROBE`'s print). An index that does not name the record's
file, or another hash function's prints, is not used.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from hlops.data.lineprints import LinePrints

MAGIC = b"hlops-ix"
VERSION = 1
# magic, version, probe, source sha256, fingerprint, rows, the fold's level
HEAD = struct.Struct("<8sIq32s32sQQ")
CHUNK = 1 << 16  # rows gathered at once when the digests are hashed


@dataclass
class Head:
    """What an index names, and where its parts lie: the fold at ``level`` buckets, the
    prints and points (what a plan needs first), then the digests (last: a plan needs them
    only at its end, so they may still be arriving while it matches and reads)."""

    probe: int
    source_sha256: str  # hex
    fingerprint: str  # hex
    rows: int
    level: int

    @property
    def early_size(self) -> int:
        """Bytes up to the end of the points."""
        return HEAD.size + 40 * self.level + 16 * self.rows

    @property
    def size(self) -> int:
        return self.early_size + 32 * self.rows

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> Head | None:
        if len(data) < HEAD.size:
            return None
        magic, version, probe, sha, fp, rows, level = HEAD.unpack_from(data)
        if magic != MAGIC or version != VERSION or level < 1 or level & (level - 1):
            return None
        return cls(probe, sha.hex(), fp.hex(), rows, level)


@dataclass
class Index:
    """The index of a file: each row's print, key point and digest, in file order, and the
    file's summary folded to ``level`` buckets (counts, XORs: what the record's ``digest``
    hashes), so that a delta's fold costs the rows that changed only."""

    probe: int
    source_sha256: str  # hex
    fingerprint: str  # hex
    prints: np.ndarray  # int64[rows]: each row's line print, in file order
    points: np.ndarray  # uint64[rows]: each row's key point
    digests: np.ndarray | None  # uint8[rows, 32]: each row's SHA-256 (None: not read yet)
    counts: np.ndarray  # int64[level]
    xor: np.ndarray  # uint8[level, 32]

    @property
    def rows(self) -> int:
        return len(self.prints)

    @property
    def level(self) -> int:
        return len(self.counts)

    def parts(self) -> list[memoryview]:
        """The serialised index in parts (views of the arrays: no copy); see :meth:`to_bytes`."""
        head = HEAD.pack(MAGIC, VERSION, self.probe, bytes.fromhex(self.source_sha256),
                         bytes.fromhex(self.fingerprint), self.rows, self.level)
        arrays = (np.ascontiguousarray(self.counts, "<i8"), np.ascontiguousarray(self.xor, np.uint8),
                  np.ascontiguousarray(self.prints, "<i8"), np.ascontiguousarray(self.points, "<u8"),
                  np.ascontiguousarray(self.digests, np.uint8))
        return [memoryview(head), *(memoryview(a).cast("B") for a in arrays)]

    def to_bytes(self) -> bytes:
        return b"".join(self.parts())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, with_digests: bool = True) -> Index | None:
        """The index, its arrays views of ``data``; None when it is not one (another
        format, cut short). Without ``with_digests``, ``data`` may end after the points."""
        head = Head.parse(data)
        if head is None or len(data) < head.early_size or (with_digests and len(data) != head.size):
            return None
        rows, level, at = head.rows, head.level, HEAD.size
        index = cls(
            probe=head.probe, source_sha256=head.source_sha256, fingerprint=head.fingerprint,
            counts=np.frombuffer(data, "<i8", level, at),
            xor=np.frombuffer(data, np.uint8, 32 * level, at + 8 * level).reshape(level, 32),
            prints=np.frombuffer(data, "<i8", rows, at + 40 * level),
            points=np.frombuffer(data, "<u8", rows, at + 40 * level + 8 * rows),
            digests=None,
        )
        if with_digests:
            index.take_digests(data)
        return index

    def take_digests(self, data: bytes | bytearray | memoryview) -> None:
        """The digests, from the whole serialised index."""
        at = HEAD.size + 40 * self.level + 16 * self.rows
        self.digests = np.frombuffer(data, np.uint8, 32 * self.rows, at).reshape(self.rows, 32)


def row_prints(prints: LinePrints) -> tuple[np.ndarray, np.ndarray]:
    """``(print of each row, its line index)``: a JSONL file's rows are its lines that are
    not blank."""
    if not prints.blank.any():
        return prints.prints, np.arange(len(prints.prints), dtype=np.int64)
    lines = np.flatnonzero(~prints.blank)
    return prints.prints[lines], lines


def index_of(prints: LinePrints, points: np.ndarray, digests: np.ndarray, source_sha256: str,
             fingerprint: str, counts: np.ndarray, xor: np.ndarray) -> Index | None:
    """The index of a file whose rows (in order) have these key points and digests, and
    whose summary folds to ``counts``, ``xor``; None when its lines are not exactly those
    rows (not a JSONL file as its pass read it)."""
    rp, _lines = row_prints(prints)
    if len(rp) != len(points) or len(digests) != len(points):
        return None
    return Index(prints.probe, source_sha256, fingerprint, rp, np.asarray(points, np.uint64),
                 np.asarray(digests, np.uint8).reshape(len(points), 32), counts, xor)


@dataclass
class Match:
    """A file's rows against an index: ``old[r]`` is the index row whose line has row r's
    print (-1: row r is to be read); ``vanished``: the index rows no row matched."""

    old: np.ndarray  # int64[rows]
    lines: np.ndarray  # int64[rows]: row r's line index in the file
    vanished: np.ndarray  # int64

    @property
    def to_read(self) -> np.ndarray:
        return np.flatnonzero(self.old < 0)


def match(index: Index, prints: LinePrints) -> Match:
    """Pair each row of the file with an index row of the same print: first where they
    stand at the same position from the start and from the end (an edit in place, or one
    run of rows inserted or removed, leaves the rest aligned: a compare, no sort), then
    the rest by sorting. A print found twice on either side pairs nothing (its rows are
    read: repeated rows are a duplicate key, which the reader of those rows finds)."""
    new, lines = row_prints(prints)
    old_prints = index.prints
    n, m = len(new), len(old_prints)
    old = np.full(n, -1, np.int64)
    k = min(n, m)
    head = np.flatnonzero(new[:k] == old_prints[:k])
    old[head] = head
    taken = np.zeros(m, bool)
    taken[head] = True
    if n != m and k:
        tail = np.flatnonzero((new[n - k:] == old_prints[m - k:]) & (old[n - k:] < 0) & ~taken[m - k:])
        old[n - k + tail] = m - k + tail
        taken[m - k + tail] = True
    rest_new, rest_old = np.flatnonzero(old < 0), np.flatnonzero(~taken)
    if len(rest_new) and len(rest_old):
        pn, po = new[rest_new], old_prints[rest_old]
        order = np.argsort(po, kind="stable")
        sorted_old = po[order]
        at = np.minimum(np.searchsorted(sorted_old, pn), len(sorted_old) - 1)
        hit = sorted_old[at] == pn
        hit &= ~_repeated(sorted_old)[at] & ~np.isin(pn, _repeats(pn))
        old[rest_new[hit]] = rest_old[order[at[hit]]]
        taken[rest_old[order[at[hit]]]] = True
    return Match(old, lines, np.flatnonzero(~taken))


def _repeats(values: np.ndarray) -> np.ndarray:
    s = np.sort(values)
    return s[1:][s[1:] == s[:-1]]


def _repeated(sorted_values: np.ndarray) -> np.ndarray:
    """Which entries of a sorted array are equal to a neighbour."""
    out = np.zeros(len(sorted_values), bool)
    same = sorted_values[1:] == sorted_values[:-1]
    out[1:] |= same
    out[:-1] |= same
    return out


def gathered(index: Index, m: Match, read_digests: np.ndarray, read_points: np.ndarray):
    """``(points, digests)`` of every row of the file in chunks of :data:`CHUNK` rows, in
    order: the index's for the rows matched, ``read_*`` (in the order of
    :attr:`Match.to_read`) for the rows read."""
    to_read = m.to_read
    slot = np.full(len(m.old), -1, np.int64)
    slot[to_read] = np.arange(len(to_read))
    for lo in range(0, len(m.old), CHUNK):
        old = m.old[lo:lo + CHUNK]
        digests = index.digests[np.maximum(old, 0)]
        points = index.points[np.maximum(old, 0)]
        mine = np.flatnonzero(old < 0)
        if len(mine):
            digests[mine] = read_digests[slot[lo + mine]]
            points[mine] = read_points[slot[lo + mine]]
        yield points, digests


def fingerprint_of(index: Index, m: Match, read_digests: np.ndarray, read_points: np.ndarray) -> str:
    """The file's fingerprint: SHA-256 over its rows' digests in order, as the summary pass
    makes it."""
    fp = hashlib.sha256()
    for _points, digests in gathered(index, m, read_digests, read_points):
        fp.update(digests)
    return fp.hexdigest()


def fold(index: Index, m: Match, read_digests: np.ndarray, read_points: np.ndarray,
         level: int) -> tuple[np.ndarray, np.ndarray]:
    """The file's summary folded to ``level`` buckets (counts, uint8[level, 32] XORs): the
    index's fold without the rows that vanished and with the rows read, when at the index's
    level; else from every row's digest."""
    if level == index.level:
        counts = index.counts.astype(np.int64)  # a copy
        xor = index.xor.view(np.uint64).reshape(level, 4).copy()
        for points, digests, sign in ((index.points[m.vanished], index.digests[m.vanished], -1),
                                      (read_points, read_digests, 1)):
            b = (points & np.uint64(level - 1)).astype(np.intp)
            counts += sign * np.bincount(b, minlength=level)
            np.bitwise_xor.at(xor, b, np.ascontiguousarray(digests).view(np.uint64).reshape(len(b), 4))
        return counts, xor.view(np.uint8).reshape(level, 32)
    counts = np.zeros(level, np.int64)
    xor = np.zeros((level, 4), np.uint64)
    for points, digests in gathered(index, m, read_digests, read_points):
        b = (points & np.uint64(level - 1)).astype(np.intp)
        counts += np.bincount(b, minlength=level)
        np.bitwise_xor.at(xor, b, digests.view(np.uint64).reshape(len(b), 4))
    return counts, xor.view(np.uint8).reshape(level, 32)


def index_after(index: Index, m: Match, prints: LinePrints, read_digests: np.ndarray,
                read_points: np.ndarray, source_sha256: str, fingerprint: str,
                counts: np.ndarray, xor: np.ndarray) -> Index:
    """The index of the file as it is now (after an apply of what it changed), its fold
    ``counts``, ``xor``."""
    rp, _lines = row_prints(prints)
    pts, dgs = [], []
    for points, digests in gathered(index, m, read_digests, read_points):
        pts.append(points)
        dgs.append(digests)
    n = len(rp)
    return Index(prints.probe, source_sha256, fingerprint, rp,
                 np.concatenate(pts) if pts else np.zeros(0, np.uint64),
                 np.concatenate(dgs) if dgs else np.zeros((n, 32), np.uint8), counts, xor)
