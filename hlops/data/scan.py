"""The per-row half of the summary pass (:func:`hlops.data.local.summarise`), shared by the
single pass and the worker processes of a split one (:mod:`hlops.data.parallel`).

:func:`scan` turns ``(line, normalised row)`` pairs into three flat arrays, in stream order:
the 64-bit key points (8 bytes a row), the SHA-256 digests of the rows' canonical JSON (32
bytes) and its sizes (4 bytes). :class:`Accumulator` folds those, chunk by chunk and in
stream order, into the fine-level bucket arrays and the fingerprint; it keeps the key
points (duplicate keys are found from them at the end).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import orjson

from hlops import canonical
from hlops.datafile import common_row_test, exact_row_test
from hlops.datareaders import SKIP, STOP
from hlops.errors import Problem

if TYPE_CHECKING:
    from hlops.datafile import CheckedPass

FINE = canonical.MAX_BUCKETS  # 65,536
FINE_MASK = FINE - 1
MAX_PROBLEMS = 50  # located problems reported at once; the rest are counted
CHUNK = 65_536  # rows handed to the sink at once
SMALL_CHUNK = 4_096  # below this many rows a chunk is added row by row (np.add.at)

Sink = Callable[[array, bytearray, array], None]  # (points "Q", digests, sizes "I")


def scan(rows: Iterable[tuple[int, dict]], key: str | None, where: str, sink: Sink) -> tuple[int, list[Problem]]:
    """Read ``rows``, handing ``sink`` the points, digests and sizes of every :data:`CHUNK`
    rows (and of the rest at the end). Returns the number of rows without a key value (they
    are skipped) and the first :data:`MAX_PROBLEMS` of them, located."""
    problems: list[Problem] = []
    missing = 0
    points, digests, sizes = array("Q"), bytearray(), array("I")
    key_text = canonical.key_text
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS  # canonical.canonical_json, inlined
    for line, row in rows:
        cj = dumps(row, option=sort_keys)
        digest = sha256(cj).digest()
        if key is None:
            kt = digest.hex()
        else:
            kt = row.get(key)
            if type(kt) is not str:
                kt = key_text(row, key, "")
                if kt is None:
                    missing += 1
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(Problem(where, line, 1, f"no value for the key field {key!r} — every datapoint needs a key"))
                    continue
        points.append(from_bytes(sha256(kt.encode()).digest()[:8], "big"))  # canonical.key_point
        digests += digest
        sizes.append(len(cj))
        if len(sizes) >= CHUNK:
            sink(points, digests, sizes)
            points, digests, sizes = array("Q"), bytearray(), array("I")
    if sizes:
        sink(points, digests, sizes)
    return missing, problems


def scan_checked(checked: CheckedPass, key: str | None, where: str, sink: Sink) -> tuple[int, list[Problem]]:
    """:func:`scan` of ``checked``'s rows (a :class:`hlops.datafile.CheckedPass`), with the
    same results, the same ``checked.findings`` and the same sink calls; for a JSONL file
    in one loop instead of three nested generators (reader, checker, scan). The common line
    -- an object of strings in text/categorical fields, its key a string -- is parsed,
    counted as checked and hashed here; every other line goes through the reader's and the
    checker's own code (``RowReader.jsonl_row``, ``RowChecker.check``), so every problem and
    its location is theirs. The caller raises the findings' problems after it, as
    :func:`hlops.datafile.iter_checked` does after its last row."""
    reader, checker = checked.reader, checked.findings.checker
    if reader.format != "jsonl" or checker.key_index is not None:
        return scan(checked, key, where, sink)  # (the summary's passes leave duplicate keys to it)
    plain = checker.plain_rows()
    problems: list[Problem] = []
    missing = fast = 0
    points, digests, sizes = array("Q"), bytearray(), array("I")
    key_text = canonical.key_text
    exact, common = exact_row_test(plain, checker.key), common_row_test(plain, checker.key)
    check, position, slow_row, at = checker.check, reader.position, reader.jsonl_row, reader.at
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    f, lines = reader.jsonl_lines()
    with f:
        for line, raw in lines:
            try:
                row = loads(raw)
            except decode_error:  # blank, a BOM, a syntax error: the reader's way
                row = slow_row(line, raw)
                if row is SKIP:
                    continue
                if row is STOP:
                    break
                row = check(line, row, position)
                if row is None:
                    continue
            else:
                if type(row) is dict and (exact(row) or common(row)):
                    fast += 1  # check() would return the row as it is and report nothing
                else:
                    at(line, raw)
                    row = check(line, row, position)
                    if row is None:
                        continue
            # from here on exactly scan()'s loop body
            cj = dumps(row, option=sort_keys)
            digest = sha256(cj).digest()
            if key is None:
                kt = digest.hex()
            else:
                kt = row.get(key)
                if type(kt) is not str:
                    kt = key_text(row, key, "")
                    if kt is None:
                        missing += 1
                        if len(problems) < MAX_PROBLEMS:
                            problems.append(Problem(where, line, 1, f"no value for the key field {key!r} — every datapoint needs a key"))
                        continue
            points.append(from_bytes(sha256(kt.encode()).digest()[:8], "big"))  # canonical.key_point
            digests += digest
            sizes.append(len(cj))
            if len(sizes) >= CHUNK:
                sink(points, digests, sizes)
                points, digests, sizes = array("Q"), bytearray(), array("I")
    checker.rows += fast
    if sizes:
        sink(points, digests, sizes)
    return missing, problems


class Accumulator:
    """The fine-level bucket arrays and the fingerprint, fed chunk by chunk in stream order."""

    def __init__(self) -> None:
        self.points = array("Q")
        self.counts = np.zeros(FINE, np.int64)
        self.nbytes = np.zeros(FINE, np.int64)
        self.xor = np.zeros((FINE, 4), np.uint64)  # 32 bytes a bucket, XOR is bytewise
        self.fp = hashlib.sha256()
        self.count = 0

    def add(self, points: array | bytes, digests: bytes | bytearray, sizes: array | bytes) -> None:
        chunk = np.frombuffer(points, np.uint64)
        n = len(chunk)
        if not n:
            return
        fine = (chunk & np.uint64(FINE_MASK)).astype(np.intp)
        self.points.frombytes(chunk.tobytes())
        if n < SMALL_CHUNK:  # a small file: no two 65,536-long bincounts for a few rows
            np.add.at(self.counts, fine, 1)
            np.add.at(self.nbytes, fine, np.frombuffer(sizes, np.uint32).astype(np.int64))
        else:
            self.counts += np.bincount(fine, minlength=FINE)
            self.nbytes += np.bincount(fine, weights=np.frombuffer(sizes, np.uint32), minlength=FINE).astype(np.int64)
        np.bitwise_xor.at(self.xor, fine, np.frombuffer(bytes(digests), np.uint64).reshape(n, 4))
        self.fp.update(digests)
        self.count += n
