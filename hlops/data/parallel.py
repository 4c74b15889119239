"""The summary pass of a big JSONL data file, split between worker processes.

The pass is CPU-bound Python (parse, check, normalise, canonical JSON, SHA-256: ~5 µs a
row), so threads would not help; processes do. The file is cut into ranges of whole lines
(:func:`hlops.datareaders.line_ranges`, about :data:`RANGE_BYTES` each, cut at newlines
without reading the file); each worker runs the same checked pass on a range
(:meth:`hlops.datafile.CheckedFile.check_lines`) and :func:`hlops.data.scan.scan`, and sends
back the range's key points, row digests and sizes (44 bytes a row) and what the checks
found. The parent takes the ranges back *in file order* and feeds them to the accumulator
as the single pass would (counts add, XORs xor, the fingerprint hashes the digests in
order, key points are appended in order, so duplicate keys across ranges are found as
before), and merges the checks' findings into exactly those of one pass
(:meth:`hlops.datafile.Findings.absorb`). At most ``2 x workers`` ranges are in flight, so
memory stays bounded whatever the file's size.

Only JSONL is split: a line is a row, so a cut at a newline is a cut between rows and the
line numbers of a range are known from the newlines before it. A JSON array or a CSV file
cannot be cut without parsing it from the start (a newline may sit inside a string or a
quoted cell), so they keep the single pass. Small files keep it too (starting workers
costs more than it saves below :data:`MIN_BYTES`), as does a machine with one CPU, or
``HLOPS_WORKERS=1``.

Workers are forked (``fork``): they start in milliseconds with hlops already imported. Not
``spawn`` or ``forkserver``: both import the main module again in every worker, which costs
the CLI's imports each time and would re-run a user's script that calls hlops without an
``if __name__ == "__main__"`` guard. A fork copies only the calling thread, so a lock that
another thread holds at that moment (OpenSSL's, in a thread making HTTPS calls) would stay
held in the child for ever: the pass is split only when the calling thread is the
process's only thread (a plan checks its data before any other work starts; ``hlops
apply``, which applies datasets in threads, has that summary already from its plan).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from hlops.data.scan import MAX_PROBLEMS, Sink, scan_checked
from hlops.datafile import CheckedFile, Findings
from hlops.datareaders import LineRange, format_of, line_ranges
from hlops.errors import ManifestError, Problem, SettingsError

MIN_BYTES = 8 << 20  # smaller files (~55,000 rows of ~140 bytes) are read in one pass
RANGE_BYTES = 4 << 20  # about 28,000 rows of ~140 bytes
MAX_AUTO_WORKERS = 4  # each worker peaks at ~46 MB: 4 keep a 1M-row plan within ~270 MB
WORKERS_ENV = "HLOPS_WORKERS"


def workers() -> int:
    """Worker processes for a split pass: ``HLOPS_WORKERS`` when set (1: never split),
    else the CPUs this process may run on, at most :data:`MAX_AUTO_WORKERS`."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise SettingsError(f"{WORKERS_ENV} must be a whole number (1: one process), got {value!r}") from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_AUTO_WORKERS)


def checked_file(rows: Any) -> CheckedFile | None:
    """The data file behind ``rows`` (a :class:`hlops.datafile.RowSource` or a
    CheckedFile), or None (inline rows, any other source)."""
    describe = getattr(rows, "checked_file", None)
    return describe() if callable(describe) else None


def split_file(rows: Any) -> CheckedFile | None:
    """The data file behind ``rows`` when its pass should be split between processes."""
    describe = getattr(rows, "checked_file", None)
    if not callable(describe) or workers() < 2 or threading.active_count() > 1:
        return None
    file = describe()
    if file is None or format_of(file.path) != "jsonl":
        return None
    try:
        if os.path.getsize(file.path) < MIN_BYTES:
            return None
        with open(file.path, "rb") as f:
            first = f.readline().removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return None  # the single pass reports it
    # A first line that opens an array stops the reader at once (the file is a JSON array
    # named .jsonl); a range further on would not know to stop.
    return None if first.startswith(b"[") else file


@dataclass
class _Part:
    """What a worker sends back for one range of lines."""

    lines: LineRange
    count: int  # the lines in the range
    points: bytes
    digests: bytes
    sizes: bytes
    missing: int
    problems: list[Problem]
    findings: Findings

    def located(self) -> bool:
        """Whether anything in it carries a line number (a problem, a finding)."""
        return bool(self.missing or self.problems or not self.findings.clean())


def _scan_range(file: CheckedFile, lines: LineRange, key: str | None, where: str) -> _Part:
    """In a worker: the checked pass and the scan of one range of lines."""
    checked = file.check_lines(lines)
    chunks: list[tuple] = []
    missing, problems = scan_checked(checked, key, where, lambda *chunk: chunks.append(chunk))
    return _Part(
        lines, checked.reader.range_lines,
        b"".join(bytes(c[0]) for c in chunks), b"".join(bytes(c[1]) for c in chunks),
        b"".join(bytes(c[2]) for c in chunks), missing, problems, checked.findings,
    )


def scan_file(file: CheckedFile, key: str | None, where: str, sink: Sink) -> tuple[int, list[Problem]]:
    """:func:`hlops.data.scan.scan` over every row of ``file`` (``sink`` called in file
    order), the ranges read by :func:`workers` processes. Raises ManifestError with the
    checks' problems, as the single checked pass does after its last row.

    The ranges are cut without reading the file (:func:`hlops.datareaders.line_ranges`), so a
    worker numbers its lines provisionally; the parts are taken back in file order, and the
    rare part that holds something located (a problem) is read again here with its real
    first line, which the counts of the parts before it give."""
    n = max(1, min(workers(), -(-os.path.getsize(file.path) // RANGE_BYTES)))  # none idle
    findings: Findings | None = None
    missing, problems = 0, []
    pending: deque = deque()
    next_line = 1

    def take() -> None:
        nonlocal findings, missing, next_line
        part = pending.popleft().result()
        if part.lines.first_line != next_line and part.located():
            part = _scan_range(file, part.lines._replace(first_line=next_line), key, where)
        next_line += part.count
        sink(part.points, part.digests, part.sizes)
        missing += part.missing
        problems.extend(part.problems[: MAX_PROBLEMS - len(problems)])
        if findings is None:
            findings = part.findings
        else:
            findings.absorb(part.findings)

    import multiprocessing  # with concurrent.futures.process: ~50 ms, only for a split pass
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))
    try:
        for lines in line_ranges(file.path, RANGE_BYTES):
            pending.append(pool.submit(_scan_range, file, lines, key, where))
            if len(pending) >= 2 * n:
                take()
        while pending:
            take()
    finally:
        pool.shutdown(cancel_futures=True)
    checked = findings.problems() if findings is not None else []
    if checked:
        raise ManifestError(checked)
    return missing, problems


def scan_whole(file: CheckedFile, key: str | None, where: str, sink: Sink) -> tuple[int, list[Problem]]:
    """:func:`scan_file` in this process, one pass (what a file too small to split gets):
    the same results and the same ManifestError as :func:`hlops.data.scan.scan` over
    ``file()``, in one loop (:func:`hlops.data.scan.scan_checked`)."""
    checked = file.check_lines(None)
    missing, problems = scan_checked(checked, key, where, sink)
    found = checked.findings.problems()
    if found:
        raise ManifestError(found)
    return missing, problems
