"""One pass over a data file that checks, canonicalises and hashes its rows *and* hands their
canonical JSON on to be sent, in checked batches: the local half of an apply that streams
(``hlops apply --auto-approve`` of a dataset with no rows yet, where every row is an add).

The plan then never read the file; this pass does everything the plan's pass would have
done, once: the per-row checks (:class:`hlops.datafile.CheckedPass`), canonical JSON and
SHA-256 of row and key (as :func:`hlops.data.scan.scan`), the fine summary and fingerprint
(:class:`hlops.data.scan.Accumulator`), which become the dataset's last-applied record.

The consumer (the uploader) calls :meth:`StreamedPass.commit` before it sends a batch of the
rows read so far. ``commit`` raises :class:`Halt` when any row read up to there had a
problem (syntax, a value, a missing key, a key repeated: each batch's 64-bit key points are
looked up in the sorted points of the rows committed before), so nothing at or after a
broken row is sent, and the rows before it all were. What was wrong, located as a plan
would have said it, comes from the full check (:func:`hlops.data.local.summarise`) the
caller runs after the halt. Memory: one batch of pending points and digests, and 16 bytes a
row (the key points twice: the accumulator's, in stream order, and the sorted copy).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from hlops import canonical
from hlops.data.local import LocalSummary
from hlops.data.scan import FINE, FINE_MASK, Accumulator
from hlops.datafile import checked_rows


class Halt(Exception):
    """A row read before this batch had a problem: send nothing more."""


class StreamedPass:
    """``rows()`` yields the canonical JSON of every good row in file order; ``commit()``
    before sending what was yielded; ``summary()`` after the last row."""

    def __init__(self, file: Any, key: str | None):
        self.key = key
        self._checked = file.check_lines(None)  # a CheckedPass of the whole file, keys left to us
        self._checked.reader.hash_bytes = True  # the record's SHA-256 of the bytes the rows came from
        self.acc = Accumulator()
        self._points, self._digests, self._sizes = array("Q"), bytearray(), array("I")
        self._seen = np.zeros(0, np.uint64)  # sorted key points of the committed rows (keyed)
        self.line = 0  # the line of the last row read
        self.digests: bytearray | None = None  # a bytearray: every committed row's digest, kept
        self.done = False  # every row read

    def rows(self) -> Iterator[bytes]:
        key, key_text = self.key, canonical.key_text
        sha256, from_bytes = hashlib.sha256, int.from_bytes
        dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS  # canonical.canonical_json
        points, digests, sizes = self._points, self._digests, self._sizes
        for line, row in checked_rows(self._checked):  # the one-loop reading of the plan's pass
            cj = dumps(row, option=sort_keys)
            digest = sha256(cj).digest()
            if key is None:
                kt = digest.hex()
            else:
                kt = row.get(key)
                if type(kt) is not str:
                    kt = key_text(row, key, "")
                    if kt is None:  # the checker reported it (the row is not yielded)
                        continue
            points.append(from_bytes(sha256(kt.encode()).digest()[:8], "big"))  # canonical.key_point
            digests += digest
            sizes.append(len(cj))
            self.line = line
            yield cj
        self.done = True

    @property
    def clean(self) -> bool:
        """No problem in the rows read so far."""
        findings = self._checked.findings
        return not findings.syntax and not findings.checker.bad_rows

    def commit(self) -> None:
        """Fold the rows read since the last commit into the summary; :class:`Halt` when any
        row read so far had a problem (then nothing is folded)."""
        if not self.clean:
            raise Halt()
        if not self._sizes:
            return
        if self.key is not None:
            chunk = np.frombuffer(self._points, np.uint64)
            batch = np.sort(chunk)
            clash = bool((batch[1:] == batch[:-1]).any())
            if not clash and len(self._seen):
                at = np.minimum(np.searchsorted(self._seen, batch), len(self._seen) - 1)
                clash = bool((self._seen[at] == batch).any())
            if clash:  # a key repeats (or, once in ~10^8 files, two keys' points collide)
                raise Halt()
            del chunk  # a view of self._points, which is emptied below
            merged = np.concatenate((self._seen, batch))
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            self._seen = merged
        self.acc.add(self._points, self._digests, self._sizes)
        if self.digests is not None:
            self.digests += self._digests
        # the generator holds these objects: empty them in place
        del self._points[:], self._sizes[:]
        self._digests.clear()

    def bytes_sha256(self) -> str | None:
        """After the last row: the SHA-256 of the file's bytes as this pass read them (a
        JSONL file; None for another format: the caller hashes the file again)."""
        return self._checked.reader.bytes_sha256()

    def summary(self) -> LocalSummary:
        """The fine summary of every row (after the last :meth:`commit`), as
        :func:`hlops.data.local.summarise` makes it of a clean file."""
        acc = self.acc
        dup = np.zeros(FINE, bool)
        if self.key is None and acc.count > 1:  # repeated rows are legal without a key
            pts = np.sort(np.frombuffer(acc.points, np.uint64))
            same = pts[1:][pts[1:] == pts[:-1]]
            dup[(same & np.uint64(FINE_MASK)).astype(np.intp)] = True
        return LocalSummary.of(acc, dup, np.frombuffer(acc.points, np.uint64))
