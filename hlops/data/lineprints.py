"""A 64-bit print of every line of a JSONL file, the same in every process: what tells a
plan which lines of a data file are byte for byte lines of the file last applied.

The print is Python's own hash of the line's bytes (SipHash-1-3 since 3.11, in C: ~20 ns
for a line of ~140 bytes, under a ``map`` with no Python step a line) under
``PYTHONHASHSEED=0``. The seed of the CLI's own process is random (hash randomisation
guards dicts keyed by untrusted strings, and stays on there), so the prints are made by
small worker processes started with the fixed seed, ``python -S`` and nothing imported:
each reads a range of whole lines (:func:`hlops.datareaders.line_ranges`) in 4 MB blocks,
splits them in C and writes back, per line, its print, its length and whether it is blank.
Two workers print a 146 MB, 1M-line file in ~0.13 s each (the read and the split are most
of it: a cryptographic hash of each line costs ~0.5 s more).

A print is a change detector, not a proof: two different lines share one with probability
2^-64 (an edit made on purpose to collide with another line of the file could find one;
the key point and the remote rows still compare every line that did change). Which hash
function the prints came from is itself printed (:data:`PROBE`'s print, stored with
them): another Python build whose hash differs gives other probes, and the prints are not
compared.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hlops.datareaders import line_ranges

PROBE = b"hlops line print, version 1"
_COUNT = struct.Struct("<q")

# Runs under `python -S -c` with PYTHONHASHSEED=0: argv = path, start, end (whole lines).
# Writes, for each block of lines as it is printed, the line count n, then n int64 prints,
# n uint32 lengths (without the newline) and n bytes, 1 for a line of white space only (not
# for an empty one: the caller tells those from the lengths); last a count of -1 and the
# probe's print. Nothing is kept between blocks, so a worker stays at ~20 MB.
_WORKER = r"""
import struct, sys
from array import array
path, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer
def emit(lines):
    prints, lengths = array("q", map(hash, lines)), array("I", map(len, lines))
    out.write(struct.pack("<q", len(lines)))
    out.write(prints.tobytes() + lengths.tobytes() + bytes(map(bytes.isspace, lines)))
rest = b""
with open(path, "rb") as f:
    f.seek(start)
    left = end - start
    while left > 0:
        block = f.read(min(4 << 20, left))
        if not block:
            break
        left -= len(block)
        lines = (rest + block).split(b"\n") if rest else block.split(b"\n")
        rest = lines.pop()
        emit(lines)
if rest:
    emit([rest])
out.write(struct.pack("<qq", -1, hash(PROBE)))
out.flush()
"""

MIN_SPLIT_BYTES = 16 << 20  # smaller files are printed by one worker


@dataclass
class LinePrints:
    """Every physical line of a file, in order (the text after the last newline is a line
    when not empty): ``prints`` int64, ``lengths`` uint32 (bytes, without the newline),
    ``blank`` bool (empty or white space only: not a row). ``probe``: the print of
    :data:`PROBE` by the same hash function."""

    probe: int
    prints: np.ndarray
    lengths: np.ndarray
    blank: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        """Each line's first byte (int64)."""
        out = np.empty(len(self.lengths), np.int64)
        if len(out):
            out[0] = 0
            np.cumsum(self.lengths[:-1].astype(np.int64) + 1, out=out[1:])
        return out


class PrintError(Exception):
    """A worker failed (the caller does without prints)."""


def start(path: Path | str, workers: int = 2, nice: int = 0) -> Printing:
    """Start printing ``path`` in the background (``workers`` processes for a big file;
    ``nice``: their lower priority, for prints made beside work that matters more) -- or
    take the printing :func:`prefetch` started of the same file, unchanged since."""
    key = _memo_key(path, workers, nice)
    found = _PREFETCHED.pop(key, None) if key is not None else None
    return found if found is not None else Printing(Path(path), workers, nice)


def prefetch(path: Path | str, workers: int = 2) -> None:
    """Start printing ``path`` now, for the :func:`start` that will ask for it later in
    this process (the planner's data check knows a delta plan will follow before the
    plan's own steps begin). One taker; at most :data:`_PREFETCH_MAX` kept."""
    key = _memo_key(path, workers, 0)
    if key is None or key in _PREFETCHED:
        return
    while len(_PREFETCHED) >= _PREFETCH_MAX:
        _PREFETCHED.pop(next(iter(_PREFETCHED))).cancel()
    _PREFETCHED[key] = Printing(Path(path), workers)


_PREFETCHED: dict[tuple, Printing] = {}
_PREFETCH_MAX = 4


def _memo_key(path: Path | str, workers: int, nice: int) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, workers, nice)


class Printing:
    """Worker processes printing a file; :meth:`result` waits for them."""

    def __init__(self, path: Path, workers: int, nice: int = 0):
        self._path = path
        size = os.path.getsize(path)
        share = max(MIN_SPLIT_BYTES, -(-size // max(1, workers)))
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        code = f"import os\nos.nice({int(nice)})\nPROBE = {PROBE!r}\n{_WORKER}" if nice else f"PROBE = {PROBE!r}\n{_WORKER}"
        self._result: LinePrints | None = None
        self._cancelled = False
        self._stat = _memo_key(path, 0, 0)
        self._procs = [
            subprocess.Popen([sys.executable, "-S", "-c", code, str(path), str(r.start), str(r.end)],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
            for r in line_ranges(path, share)
        ]
        # each worker's answer drained as it comes (a worker blocks once its pipe is full)
        self._answers: list[bytes | None] = [None] * len(self._procs)
        self._readers = [threading.Thread(target=self._drain, args=(i,), daemon=True, name="hlops-prints")
                         for i in range(len(self._procs))]
        for reader in self._readers:
            reader.start()

    def _drain(self, i: int) -> None:
        try:
            self._answers[i] = self._procs[i].communicate()[0]
        except (OSError, ValueError):  # cancelled meanwhile
            self._answers[i] = None

    def result(self) -> LinePrints:
        """The prints (waits for the workers); :class:`PrintError` when one failed."""
        if self._result is None:
            self._result = self._collect()
        return self._result

    def _collect(self) -> LinePrints:
        probes, prints, lengths, white = set(), [], [], []
        for proc, reader, i in zip(self._procs, self._readers, range(len(self._procs))):
            reader.join()
            out = self._answers[i]
            if self._cancelled or out is None:
                raise PrintError("the line prints were cancelled")
            if proc.returncode != 0:
                raise PrintError(f"a line-print worker failed (exit {proc.returncode})")
            at = 0
            while True:
                if at + 8 > len(out):
                    raise PrintError("a line-print worker's answer is cut short")
                (n,) = _COUNT.unpack_from(out, at)
                at += 8
                if n < 0:
                    if at + 8 != len(out):
                        raise PrintError("a line-print worker's answer is cut short")
                    probes.add(_COUNT.unpack_from(out, at)[0])
                    break
                if at + 13 * n > len(out):
                    raise PrintError("a line-print worker's answer is cut short")
                prints.append(np.frombuffer(out, np.int64, n, at))
                lengths.append(np.frombuffer(out, np.uint32, n, at + 8 * n))
                white.append(np.frombuffer(out, np.uint8, n, at + 12 * n))
                at += 13 * n
        if not self._procs:
            probes.add(_probe_of_workers())
        if len(probes) != 1:
            raise PrintError("line-print workers disagree on the hash function")
        length = np.concatenate(lengths) if lengths else np.zeros(0, np.uint32)
        return LinePrints(
            probe=probes.pop(),
            prints=np.concatenate(prints) if prints else np.zeros(0, np.int64),
            lengths=length,
            blank=((np.concatenate(white) != 0) if white else np.zeros(0, bool)) | (length == 0),
        )

    def unchanged(self) -> bool:
        """Whether the file still has the stat it had when its printing started."""
        return self._stat is not None and _memo_key(self._path, 0, 0) == self._stat

    def cancel(self) -> None:
        """Stop the workers that are still running (nothing after :meth:`result`)."""
        self._cancelled = True
        for proc in self._procs:
            if proc.returncode is None:
                proc.kill()
        for reader in self._readers:
            reader.join()


def _probe_of_workers() -> int:
    """The probe's print, from a worker (an empty file has no range to print)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, "-S", "-c", f"print(hash({PROBE!r}))"], env=env,
                         capture_output=True, check=True, stdin=subprocess.DEVNULL)
    return int(out.stdout)


def prints_of(path: Path | str, workers: int = 2) -> LinePrints:
    """:class:`LinePrints` of ``path`` (waits)."""
    return start(path, workers).result()
