"""Data files: streamed, never read whole; every row checked against its dataset's fields.

Formats (chosen by extension):

- ``.jsonl`` / ``.ndjson``: one JSON object per line; blank lines are skipped.
- ``.json``: one top-level array of objects. It is decoded element by element from a
  bounded text buffer (``json.JSONDecoder.raw_decode``) rather than by ijson, because ijson
  cannot say on which line an element starts; this way every row and every syntax error has
  an exact line and column, at the same speed. Memory: the buffer (1 MiB + one element).
  The readers live in :mod:`hlops.datareaders`; this module checks what they read.
- ``.csv``: the header row names the fields (surrounding spaces ignored); an empty cell is
  null (no value); ``character_offsets`` cells hold JSON text
  (``[{"start": 0, "end": 5, "label": "ORG"}]``). Line numbers are those of the record's
  first physical line; columns are the cell's character position when the record fits on
  one line.

Files are UTF-8 (a BOM is ignored).

The API, from raw to ready::

    iter_rows(path, fields=None)                 -> Iterator[(line, row)]  raw rows; raises
                                                    ManifestError at the end on syntax errors
    iter_checked(path, fields, key=None, *, span_texts=None, display=None)
                                                 -> Iterator[(line, normalised_row)]
    iter_normalised(config, dataset_name)        -> Iterator[(line, normalised_row)]
                                                    (the file or the inline `data:` rows)
    row_source(config, dataset_name)             -> a callable restarting iter_normalised
    check_data(path, fields, key=None, *, span_texts=None, display=None)
                                                 -> (rows, [Problem])   used by load()

``iter_checked`` / ``iter_normalised`` yield only rows without problems, normalised with
:func:`hlops.canonical.normalise_row` (the same function the server uses, so both sides hash
the same bytes), and raise :class:`~hlops.errors.ManifestError` with every problem *after
the last row* — a caller that consumes the whole iterator never acts on a bad file.

Checks per row: an object; no unknown field (with the nearest name); each value fits its
field (:func:`hlops.canonical.normalise_value`); spans have ``start < end`` and stay within
their text (``span_texts``: span field -> text field, see :func:`hlops.refs.span_texts`);
the key field has a value; no two rows share a key.

Duplicate keys are found in bounded memory: each key is kept as a 16-byte BLAKE2b digest plus
its line (24 bytes) in a flat buffer; past 65,536 keys the buffer is spilled into 64
partition files (by the digest's first 6 bits) in a temporary directory, and at the end each
partition is sorted on its own (numpy). Memory stays ~1.5 MiB + one partition (1/64 of the
keys: 0.4 MiB per million) whatever the row count; 10^8 keys need ~2.4 GB of temporary disk. A 128-bit digest makes a false duplicate
vanishingly unlikely (~10^-20 at a billion rows).

Problems are capped so a bad million-row file stays readable: at most 5 per kind of problem
(e.g. "wrong type in `sentiment`") and 100 per file, then one line counting the rest.
Messages never quote a datapoint's values (they may be private): they name fields and lines.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hlops.canonical import InvalidValue, RowNormaliser, check_spans_within, key_text, row_problems
from hlops.datareaders import (  # noqa: F401 - re-exported: the reading half of this API
    SUFFIXES,
    SKIP,
    STOP,
    LineRange,
    RowReader,
    _unknown_field,
    display_path,
    format_of,
    iter_rows,
)
from hlops.errors import ManifestError, Problem

PER_CLASS = 5
PER_FILE = 100
SPILL_AT = 1 << 16
PARTITIONS = 64


# --------------------------------------------------------------------------- checks


class KeyIndex:
    """Finds duplicate keys in bounded memory (see the module docstring)."""

    RECORD = 24

    def __init__(self) -> None:
        self._buf = bytearray()
        self._count = 0
        self._tmp: tempfile.TemporaryDirectory | None = None

    def add(self, key: str, line: int) -> None:
        self._buf += hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
        self._buf += line.to_bytes(8, "little")
        self._count += 1
        if self._count >= SPILL_AT:
            self._spill()

    def _records(self, data: bytes):
        import numpy as np

        dtype = np.dtype([("hi", ">u8"), ("lo", ">u8"), ("line", "<u8")])
        return np.frombuffer(data, dtype=dtype)

    def _spill(self) -> None:
        import numpy as np

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hlops-keys-")
        records = self._records(self._buf)
        part = (records["hi"] >> np.uint64(64 - 6)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        records, part = records[order], part[order]
        bounds = np.searchsorted(part, np.arange(PARTITIONS + 1))
        for p in range(PARTITIONS):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                with open(os.path.join(self._tmp.name, f"{p}.bin"), "ab") as f:
                    f.write(records[lo:hi].tobytes())
        del records, part, order
        self._buf = bytearray()
        self._count = 0

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """``(line, first_line)`` for every row whose key an earlier row already has, in
        line order within each partition."""
        if self._tmp is None:
            if self._count:
                yield from self._dupes(self._buf)
            return
        if self._count:
            self._spill()
        try:
            for p in range(PARTITIONS):
                name = os.path.join(self._tmp.name, f"{p}.bin")
                if os.path.exists(name):
                    with open(name, "rb") as f:
                        yield from self._dupes(f.read())
        finally:
            self._tmp.cleanup()
            self._tmp = None

    def _dupes(self, data: bytes) -> Iterator[tuple[int, int]]:
        import numpy as np

        records = self._records(data)
        if len(records) < 2:
            return
        order = np.lexsort((records["line"], records["lo"], records["hi"]))
        srt = records[order]
        same = (srt["hi"][1:] == srt["hi"][:-1]) & (srt["lo"][1:] == srt["lo"][:-1])
        lines = srt["line"]
        first, previous = 0, -2
        for i in (np.nonzero(same)[0] + 1).tolist():
            if i - 1 != previous:  # a new group: its first row has the smallest line
                first = int(lines[i - 1])
            previous = i
            yield int(lines[i]), first


_VALUE_HINTS = {
    ("text", "string_type"): " — write text (or a whole number), or null for no value",
    ("categorical", "string_type"): " — write one label as text, or null for no label",
    ("character_offsets", "list_type"): " — write a list of {start, end, label}, or null",
    ("character_offsets", "dict_type"): " — each span is {start, end, label}",
    ("character_offsets", "int_type"): " — offsets count characters from 0",
    ("character_offsets", "span_bounds"): " — a span ends after it starts",
    ("character_offsets", "extra_forbidden"): "",
    ("character_offsets", "string_type"): " — e.g. \"label\": \"ORG\"",
}


class RowChecker:
    """Checks rows one by one (``check``) and, at the end, keys (``finish``)."""

    def __init__(self, fields: Mapping[str, str], key: str | None = None,
                 span_texts: Mapping[str, str] | None = None, display: str = "",
                 duplicates: bool = True):
        self.fields = dict(fields)
        self.key = key
        self.span_texts = {s: t for s, t in (span_texts or {}).items()
                           if s in self.fields and t in self.fields}
        self.display = display
        self.problems: list[Problem] = []
        self.rows = 0
        self.bad_rows = 0
        self._keys = KeyIndex() if key and duplicates else None
        self._normalise = RowNormaliser(self.fields)
        self._classes: dict[tuple, list] = {}  # class -> [count, shown, last_line, what]
        self._shown_classes: list[tuple] = []  # the class of each of self.problems
        self._shown = 0

    def plain_rows(self) -> frozenset[str]:
        """The fields of the rows :meth:`check` passes unchanged and without a problem (an
        object of strings in these fields only, the key field among them a string), for a
        loop that counts those rows itself (``rows += n``), indexes their keys in
        :attr:`key_index` when there is one, and calls :meth:`check` for the rest."""
        return frozenset(self._normalise.plain - self.span_texts.keys())

    @property
    def key_index(self) -> KeyIndex | None:
        """Where :meth:`check` notes each good row's key to find duplicates (None: left to
        the caller, ``duplicates=False``)."""
        return self._keys

    def report(self, line: int, col: int, message: str, klass: tuple, what: str) -> None:
        entry = self._classes.setdefault(klass, [0, 0, 0, what])
        entry[0] += 1
        entry[2] = max(entry[2], line)
        self._show(klass, Problem(self.display, line, col, message))

    def _show(self, klass: tuple, problem: Problem) -> None:
        entry = self._classes[klass]
        if entry[1] < PER_CLASS and self._shown < PER_FILE:
            entry[1] += 1
            self._shown += 1
            self.problems.append(problem)
            self._shown_classes.append(klass)

    def absorb(self, later: RowChecker) -> None:
        """Take in what ``later`` found in the rows that follow this checker's (the next
        range of lines of the same file), as if this checker had read them too; before
        :meth:`finish`. Exact: a problem ``later`` did not show would not be shown here
        either (its class, or the file, already had as many shown when it came)."""
        if self._keys is not None or later._keys is not None:
            raise ValueError("duplicate keys are found by the caller when a file is checked in ranges")
        for klass, (_count, _shown, _last, what) in later._classes.items():
            self._classes.setdefault(klass, [0, 0, 0, what])
        for klass, problem in zip(later._shown_classes, later.problems):
            self._show(klass, problem)
        for klass, (count, _shown, last, _what) in later._classes.items():
            entry = self._classes[klass]
            entry[0] += count
            entry[2] = max(entry[2], last)
        self.rows += later.rows
        self.bad_rows += later.bad_rows

    def check(self, line: int, row: Any, position=None) -> dict[str, Any] | None:
        """The normalised row, or None (its problems recorded). ``position(field)`` gives
        the (line, col) of a field for messages; default: the row's line, column 1."""
        if position is None:
            def position(field, line=line):
                return line, 1
        self.rows += 1
        if not isinstance(row, dict):
            self.bad_rows += 1
            self.report(*position(None), row_problems(row, self.fields)[0].msg + " — one datapoint is "
                        "one object {field: value}", ("not_object",), "rows that are not objects")
            return None
        try:
            norm = self._normalise(row)
        except InvalidValue:
            self.bad_rows += 1
            for problem in row_problems(row, self.fields):
                name = problem.loc[0] if problem.loc else None
                if problem.type == "unknown_field":
                    self.report(*position(name), _unknown_field(name, self.fields),
                                ("unknown", name), f"unknown field {name!r}")
                else:
                    hint = _VALUE_HINTS.get((self.fields.get(name), problem.type), "")
                    self.report(*position(name), f"field {name!r}: {problem.msg}{hint}",
                                ("value", name, problem.type), f"bad values in {name!r}")
            return None
        ok = True
        for span_field, text_field in self.span_texts.items() if self.span_texts else ():
            spans = norm.get(span_field)
            if not spans:
                continue
            text = norm.get(text_field)
            if text is None:
                message = f"has spans but {text_field!r} has no text for them to point into"
            elif check_spans_within(spans, text) is not None:  # the server's rule, our words:
                worst = max(spans, key=lambda span: span["end"])  # no label (a value) shown
                message = (f"span {worst['start']}..{worst['end']} runs past the end of its text "
                           f"({len(text)} characters)")
            else:
                message = None
            if message:
                ok = False
                self.report(*position(span_field), f"field {span_field!r}: {message} — "
                            f"spans point into {text_field!r}", ("bounds", span_field),
                            f"spans out of bounds in {span_field!r}")
        if self.key is not None:
            text = norm.get(self.key)
            if type(text) is not str:  # strings are the common case: no call
                text = key_text(norm, self.key, "")
            if text is None:
                ok = False
                self.report(*position(self.key), f"no value for the key field {self.key!r} — "
                            "every datapoint needs a key", ("nokey",), "rows without a key")
            elif "\x00" in text:  # the server refuses it: no store keeps such a key whole
                ok = False
                self.report(*position(self.key), f"the key field {self.key!r} holds a NUL character "
                            "(U+0000) — a key cannot", ("nulkey",), "keys holding a NUL character")
            elif ok and self._keys is not None:
                self._keys.add(text, line)
        if not ok:
            self.bad_rows += 1
            return None
        return norm

    def finish(self) -> list[Problem]:
        """Every problem, duplicates and "... N more" summaries included."""
        if self._keys is not None:
            # The index yields duplicates partition by partition; show the first ones by line.
            count, last, heap = 0, 0, []  # heap: the PER_CLASS smallest lines (negated)
            for line, first in self._keys.duplicates():
                count, last = count + 1, max(last, line)
                if len(heap) < PER_CLASS:
                    heapq.heappush(heap, (-line, first))
                elif line < -heap[0][0]:
                    heapq.heapreplace(heap, (-line, first))
            for negative, first in sorted(heap, reverse=True):
                self.report(-negative, 1, f"duplicate key: line {first} has the same "
                            f"{self.key!r} — each datapoint needs its own key", ("dupe",),
                            "duplicate keys")
            if count:
                entry = self._classes[("dupe",)]
                entry[0], entry[2] = count, max(entry[2], last)
            self.bad_rows += count
        for count, shown, last, what in self._classes.values():
            if count > shown:
                self.problems.append(Problem(self.display, last, 1, (
                    f"… and {count - shown:,} more of the same ({what}); the last one is on "
                    "this line")))
        return sorted(self.problems, key=lambda p: (p.line, p.col))


def common_row_test(plain: frozenset[str], key: str | None) -> Callable[[dict], bool]:
    """Whether an object row is one that :meth:`hlops.datafile.RowChecker.check` passes
    unchanged and without a problem: strings in ``plain`` fields only (see
    :meth:`~hlops.datafile.RowChecker.plain_rows`), the ``key`` field among them a string."""

    def common(row: dict) -> bool:
        if not row.keys() <= plain or (key is not None and (type(row.get(key)) is not str or "\x00" in row[key])):
            return False
        for value in row.values():
            if type(value) is not str:
                return False
        return True

    return common


@functools.lru_cache(maxsize=64)
def exact_row_test(plain: frozenset[str], key: str | None) -> Callable[[dict], bool]:
    """A quicker test for the commonest row of all: a string in *every* ``plain`` field and
    nothing else. A row it accepts :func:`common_row_test` accepts too, so the one-loop
    readers try it first and fall back on the general test; unrolled for these very fields
    (one generated expression, as :mod:`dataclasses` generates ``__init__``): the general
    test's keys view and loop cost as much as the row's canonical JSON (~0.3 us a row)."""
    if key is not None and key not in plain:
        return lambda row: False  # the general test refuses every row then (its key is no plain field)
    tests = [f"len(row) == {len(plain)}", *(f"type(row.get({name!r})) is str" for name in sorted(plain))]
    if key is not None:  # a key holding NUL is a problem check() reports
        tests.append(f"'\\x00' not in row[{key!r}]")
    return eval("lambda row: " + " and ".join(tests), {"len": len, "type": type, "str": str})  # noqa: S307 - field names as literals (repr)


@dataclass
class Findings:
    """The problems of a checked pass (syntax, then values) before the end-of-file summary;
    findings of consecutive ranges of lines of one file merge into those of the whole."""

    syntax: list[Problem]
    checker: RowChecker

    def absorb(self, later: Findings) -> None:
        self.syntax.extend(later.syntax)
        self.checker.absorb(later.checker)

    def clean(self) -> bool:
        """Nothing found: no problem, no row reported (so nothing that has a line number)."""
        checker = self.checker
        return not self.syntax and not checker.bad_rows and not checker._classes and not checker.problems

    def problems(self) -> list[Problem]:
        """Every problem, as :func:`iter_checked` raises them (call once)."""
        return self.syntax + self.checker.finish()


class CheckedPass:
    """One pass over a data file (or over a range of lines of a JSONL file): iterating
    yields ``(line, normalised row)`` for every good row; :attr:`findings` holds the
    problems once the iteration is over."""

    def __init__(self, path: Path | str, fields: Mapping[str, str], key: str | None = None, *,
                 span_texts: Mapping[str, str] | None = None, display: str | None = None,
                 duplicates: bool = True, lines: LineRange | None = None):
        self.reader = RowReader(path, fields, display, lines)
        checker = RowChecker(fields, key, span_texts, self.reader.display, duplicates=duplicates)
        self.findings = Findings(self.reader.problems, checker)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        check, position = self.findings.checker.check, self.reader.position
        for line, row in self.reader:
            norm = check(line, row, position)
            if norm is not None:
                yield line, norm


def checked_rows(checked: CheckedPass) -> Iterator[tuple[int, dict]]:
    """``checked``'s ``(line, row)`` pairs -- the same rows, the same ``checked.findings``
    as iterating it -- for a JSONL file in one generator instead of three (reader, checker,
    pass): the common line (:func:`exact_row_test`, :func:`common_row_test`) is parsed,
    counted and its key indexed for duplicates here, every other line goes through the
    reader's and the checker's own code. For a consumer that needs each row itself (the
    streamed apply, :mod:`hlops.data.stream`; :func:`check_data`, what ``hlops validate``
    reads); the summary pass keeps :func:`hlops.data.scan.scan_checked`, which has not even
    this generator's step a row."""
    reader, checker = checked.reader, checked.findings.checker
    if reader.format != "jsonl":
        yield from checked
        return
    plain = checker.plain_rows()
    exact, common, fast = exact_row_test(plain, checker.key), common_row_test(plain, checker.key), 0
    index = checker.key_index  # check() would index the key of a keyed row for duplicates
    index_add, index_key = (index.add, checker.key) if index is not None else (None, None)
    check, position, slow_row, at = checker.check, reader.position, reader.jsonl_row, reader.at
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    f, lines = reader.jsonl_lines()
    try:
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
                        if index_add is not None:
                            index_add(row[index_key], line)
                    else:
                        at(line, raw)
                        row = check(line, row, position)
                        if row is None:
                            continue
                yield line, row
    finally:
        checker.rows += fast


def check_data(path: Path | str, fields: Mapping[str, str], key: str | None = None, *,
               span_texts: Mapping[str, str] | None = None,
               display: str | None = None) -> tuple[int, list[Problem]]:
    """Stream ``path`` once; the number of rows read and every problem (syntax and values)."""
    checked = CheckedPass(path, fields, key, span_texts=span_texts, display=display)
    for _ in checked_rows(checked):
        pass
    return checked.findings.checker.rows, checked.findings.problems()


def iter_checked(path: Path | str, fields: Mapping[str, str], key: str | None = None, *,
                 span_texts: Mapping[str, str] | None = None,
                 display: str | None = None,
                 duplicates: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, normalised row)`` of every good row; ManifestError after the last row when
    any row (or the file's syntax) had a problem. ``duplicates=False`` leaves duplicate keys
    to the caller (:func:`hlops.data.local.summarise` finds them itself, in the same pass)."""
    checked = CheckedPass(path, fields, key, span_texts=span_texts, display=display,
                          duplicates=duplicates)
    yield from checked
    problems = checked.findings.problems()
    if problems:
        raise ManifestError(problems)


_AT_BLOCK = 1 << 20  # bytes of lines looked at at once by CheckedFile.lines_at
_WHITE = (9, 10, 13, 32)  # a line starting with one of these may be blank


@dataclass(frozen=True)
class CheckedFile:
    """A data file's checked rows as :class:`RowSource` reads them (duplicate keys left to
    the reader), described by plain values so that a worker process can check a range of
    its lines (:meth:`check_lines`) and :func:`hlops.data.local.summarise` can split the
    pass of a big JSONL file between processes. A RowSource itself (``unchecked`` too)."""

    path: str
    fields: dict[str, str]
    key: str | None
    span_texts: dict[str, str]
    display: str

    def __call__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter_checked(self.path, self.fields, self.key, span_texts=self.span_texts,
                            display=self.display, duplicates=False)

    def unchecked(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """The same rows, normalised without the checks (see :class:`RowSource`)."""
        normalise = RowNormaliser(self.fields)
        for line, row in RowReader(self.path, self.fields):
            yield line, normalise(row)

    def checked_file(self) -> CheckedFile:
        return self

    def lines_at(self, ordinals: Sequence[int]) -> Iterator[tuple[int, int, bytes]] | None:
        """``(ordinal, line, the line's bytes)`` of the rows at ``ordinals`` (ascending
        positions in the stream that :meth:`unchecked` yields), reading no other row's bytes
        into Python and stopping after the last one; None when the file is not JSONL (a JSON
        array or a CSV file cannot be entered without parsing it from its start). For a file
        that passed the checks: in JSONL every non-blank line is a row. The caller parses
        and normalises them (:func:`hlops.data.local.collect`)."""
        if format_of(self.path) != "jsonl":
            return None
        return self._jsonl_at(ordinals)

    def _jsonl_at(self, ordinals: Sequence[int]) -> Iterator[tuple[int, int, bytes]]:
        """Blocks of whole lines; numpy finds the newlines, so lines not wanted cost no
        Python step. A line is a row unless it is blank (only lines that start with white
        space are looked at for that); the first line may start with a BOM."""
        import numpy as np

        want = np.asarray(ordinals, np.int64)
        k, ordinal, line = 0, 0, 1  # next wanted; ordinal and line number of the block's first line
        with open(self.path, "rb") as f:
            base = 3 if f.read(3) == b"\xef\xbb\xbf" else 0
            f.seek(0)
            while k < len(want):
                block = f.read(_AT_BLOCK)
                if not block:
                    return
                if block[-1] != 10:
                    block += f.readline()  # the rest of the last line
                arr = np.frombuffer(block, np.uint8)
                ends = np.flatnonzero(arr == 10)
                if not len(ends) or ends[-1] != len(block) - 1:
                    ends = np.append(ends, len(block))  # a last line without a newline
                starts = np.concatenate(([base], ends[:-1] + 1))
                base = 0
                is_row = np.ones(len(starts), bool)
                for c in np.flatnonzero(np.isin(arr[np.minimum(starts, len(block) - 1)], _WHITE)).tolist():
                    if not block[starts[c]:ends[c]].strip():
                        is_row[c] = False
                rows_at = np.flatnonzero(is_row)
                hi = int(np.searchsorted(want, ordinal + len(rows_at)))
                at = rows_at[want[k:hi] - ordinal]  # the wanted lines' indexes, then plain ints:
                for w, n, a, b in zip(want[k:hi].tolist(), (at + line).tolist(),  # no numpy
                                      starts[at].tolist(), ends[at].tolist()):  # scalar a row
                    yield w, n, block[a:b]
                k, ordinal, line = hi, ordinal + len(rows_at), line + len(starts)

    def check_lines(self, lines: LineRange | None = None) -> CheckedPass:
        """The checked pass of a range of lines (``None``: the whole file)."""
        return CheckedPass(self.path, self.fields, self.key, span_texts=self.span_texts,
                           display=self.display, duplicates=False, lines=lines)


def check_inline(rows: Iterable[tuple], fields: Mapping[str, str],
                 key: str | None, span_texts: Mapping[str, str] | None,
                 display: str) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """Check inline ``data:`` rows given as ``(line, col, row)`` (positions in the YAML), or
    ``(line, col, row, position)`` where ``position(field)`` locates a field's value."""
    checker = RowChecker(fields, key, span_texts, display)
    good = []
    for line, col, row, *more in rows:
        position = more[0] if more else (lambda field, at=(line, col): at)
        norm = checker.check(line, row, position)
        if norm is not None:
            good.append((line, norm))
    return good, checker.finish()


def iter_normalised(config: Any, dataset_name: str,
                    duplicates: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a dataset of a loaded :class:`~hlops.manifest.Config`, checked and
    normalised: from its data file, or its inline ``data:`` list (lines of the manifest).
    Yields nothing for a dataset without data. ManifestError after the last row on problems.
    """
    dataset = config.datasets[dataset_name]
    fields, texts = dataset.field_types(), config.span_texts(dataset_name)
    path = config.data_path(dataset_name)
    if path is not None:
        yield from iter_checked(path, fields, dataset.key, span_texts=texts, duplicates=duplicates)
        return
    if isinstance(dataset.data, list):
        good, problems = check_inline(config.inline_rows(dataset_name), fields, dataset.key,
                                      texts, config.location("Dataset", dataset_name).path)
        if problems:
            raise ManifestError(problems)
        yield from good


class RowSource:
    """A re-startable stream of a dataset's normalised rows (what :mod:`hlops.data` reads).

    Calling it starts :func:`iter_normalised` again: every row checked. ``unchecked()`` yields
    the same rows normalised but without the per-row checks (spans, keys, duplicates) — for
    the passes after the first, once the data is known to be good. ``checks`` names what the
    checks depend on besides the fields and key (which text each span field points into), so
    a cache of "this file was checked" can include it.

    Duplicate keys are left to the reader (``duplicate_keys_checked_by_reader``): every
    consumer is :func:`hlops.data.local.summarise`, which finds them in the same pass from
    the 64-bit key points it keeps anyway (and confirms them with the exact keys), so a
    second index of every key here would only cost time.
    """

    duplicate_keys_checked_by_reader = True

    def __init__(self, config: Any, dataset_name: str):
        self.config = config
        self.dataset_name = dataset_name
        texts = config.span_texts(dataset_name)
        self.checks = ",".join(f"{s}>{t}" for s, t in sorted(texts.items()))

    def __call__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter_normalised(self.config, self.dataset_name, duplicates=False)

    def checked_file(self) -> CheckedFile | None:
        """The same checked rows as a :class:`CheckedFile`; None for inline rows."""
        path = self.config.data_path(self.dataset_name)
        if path is None:
            return None
        dataset = self.config.datasets[self.dataset_name]
        return CheckedFile(str(path), dataset.field_types(), dataset.key,
                           dict(self.config.span_texts(self.dataset_name)), display_path(path))

    def unchecked(self) -> Iterator[tuple[int, dict[str, Any]]]:
        file = self.checked_file()
        # inline rows: few, and checking them is the simplest way to read them
        yield from (self() if file is None else file.unchecked())


def row_source(config: Any, dataset_name: str) -> RowSource:
    """The :class:`RowSource` of a dataset of a loaded config."""
    return RowSource(config, dataset_name)
