"""Reading data files as streams of ``(line, row)``: JSONL, a JSON array, CSV.

The formats and their rules are described in :mod:`hlops.datafile`, which checks the rows;
this module only reads them, keeping syntax problems (located ``path:line:col``) in
``RowReader.problems`` and carrying on where the format allows it.

Why not ijson for ``.json``: it cannot tell on which line an element starts. Elements are
decoded one by one with ``json.JSONDecoder.raw_decode`` from a bounded text buffer (1 MiB +
one element), which gives exact lines and columns at the same speed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from hlops.errors import ManifestError, Problem
from hlops.models import nearest

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
CHUNK = 1 << 20
MAX_ELEMENT = 64 << 20  # a single JSON element larger than this is an error, not a stall

SKIP = object()  # RowReader.jsonl_row: no row on this line (blank, or a syntax problem)
STOP = object()  # RowReader.jsonl_row: stop reading (the file is a JSON array)

csv.field_size_limit(min(sys.maxsize, 1 << 30))


def format_of(path: Path | str) -> str | None:
    """``"jsonl"``, ``"json"``, ``"csv"`` or None for an unsupported extension."""
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}.get(suffix)


def display_path(path: Path | str) -> str:
    """``path`` relative to the current directory when below it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- readers


class LineRange(NamedTuple):
    """Consecutive whole lines of a JSONL file: the lines from byte ``start`` up to byte
    ``end``, the first of them line number ``first_line`` (1-based) of the file -- or
    :data:`PROVISIONAL` when not known yet (see :func:`line_ranges`)."""

    start: int
    end: int
    first_line: int


PROVISIONAL = 2  # the first line number of a range whose real number is not known yet


def line_ranges(path: Path | str, size: int) -> Iterator[LineRange]:
    """Cut a file into consecutive ranges of whole lines of about ``size`` bytes (each ends
    at a newline, or at the end of the file) without reading it: a seek and the rest of one
    line a cut. Only the first range knows its first line (1); every later one says
    :data:`PROVISIONAL` (not 1, so that nothing in it is taken for the file's first line:
    a BOM, a JSON array): a reader numbers its lines from there and counts them
    (:attr:`RowReader.range_lines`), and whoever takes the ranges back in file order knows
    each real first line from the counts before it (:func:`hlops.data.parallel.scan_file`
    reads a range again, numbered right, only when something in it has a line number)."""
    total = os.path.getsize(path)
    with open(path, "rb") as f:
        start, first = 0, 1
        while start < total:
            end = start + size
            if end >= total:
                end = total
            else:
                f.seek(end - 1)  # the line holding the byte before the cut, up to its newline
                end += len(f.readline()) - 1
            yield LineRange(start, end, first)
            start, first = end, PROVISIONAL


class _HashingFile(io.RawIOBase):
    """A file read in binary, its bytes hashed (SHA-256) as they are read; under an
    ``io.BufferedReader`` of 1 MB, which splits the lines in C."""

    def __init__(self, path: Path | str):
        self._f = open(path, "rb", buffering=0)
        self.sha = hashlib.sha256()
        self.at_end = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        if n:
            self.sha.update(memoryview(b)[:n])
        else:
            self.at_end = True
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class RowReader:
    """Iterate ``(line, row)`` over a data file; syntax problems go to ``problems`` and the
    reader carries on where the format allows it (JSONL, CSV) or stops (JSON array).

    ``position(field)`` is the (line, column) of ``field`` (a key or a CSV column) in the
    row last yielded; the row's start when unknown. ``ignored`` holds CSV columns dropped at the header (reported
    there once, so that rows do not repeat the problem). ``lines`` (JSONL only) reads just
    that range of lines, numbered as in the whole file."""

    def __init__(self, path: Path | str, fields: Mapping[str, str] | None = None,
                 display: str | None = None, lines: LineRange | None = None):
        self.path = Path(path)
        self.lines = lines
        self.range_lines = 0  # after jsonl_lines() of a range: the lines in it
        self.fields = fields
        self.display = display or display_path(self.path)
        self.problems: list[Problem] = []
        self.format = format_of(self.path)
        self._raw: str | bytes = b""
        self._line = 0
        self._col0 = 1
        self._header: list[str] = []
        # set before reading a whole JSONL file: the SHA-256 of its bytes, as they are read
        self.hash_bytes = False
        self._hashing: _HashingFile | None = None

    def problem(self, line: int, col: int, message: str) -> None:
        self.problems.append(Problem(self.display, line, col, message))

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self.format is None:
            self.problem(0, 0, f"unsupported data file extension {self.path.suffix!r} — use "
                         ".jsonl, .json or .csv")
            return iter(())
        return {"jsonl": self._jsonl, "json": self._json, "csv": self._csv}[self.format]()

    def position(self, field: str | None) -> tuple[int, int]:
        start = (self._line, self._col0)
        if field is None or not self._raw:
            return start
        if self.format == "csv":
            if field not in self._header or not isinstance(self._raw, str):
                return start
            return self._line, _csv_cell_col(self._raw, self._header.index(field))
        raw = self._raw if isinstance(self._raw, str) else self._raw.decode("utf-8", "replace")
        at = raw.find(json.dumps(field, ensure_ascii=False))
        if at < 0:
            return start
        newlines = raw.count("\n", 0, at)
        if not newlines:
            return self._line, self._col0 + at
        return self._line + newlines, at - raw.rfind("\n", 0, at)

    # -- .jsonl
    def jsonl_lines(self) -> tuple[Any, Iterator[tuple[int, bytes]]]:
        """``(open file, (line number, raw line) pairs)`` of a JSONL file or of its range
        :attr:`lines`; the pairs are C iterators over the file (no Python frame a line), for
        loops that parse the common line themselves (:meth:`jsonl_row` for the rest)."""
        if self.lines is None and self.hash_bytes:
            self._hashing = _HashingFile(self.path)
            f = io.BufferedReader(self._hashing, buffer_size=1 << 20)
            return f, enumerate(f, 1)
        f = open(self.path, "rb")
        if self.lines is None:
            return f, enumerate(f, 1)
        f.seek(self.lines.start)
        data = f.read(self.lines.end - self.lines.start)
        self.range_lines = data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))
        return f, enumerate(io.BytesIO(data), self.lines.first_line)

    def bytes_sha256(self) -> str | None:
        """With :attr:`hash_bytes`: the SHA-256 (hex) of every byte of the file, hashed as
        the pass read them, once it read to the end (None before, or when it stopped early:
        a JSON array in a .jsonl file). The very bytes the rows came from, so no later read
        of the file can disagree with the rows (a racy file may change without its stat)."""
        h = self._hashing
        return h.sha.hexdigest() if h is not None and h.at_end else None

    def jsonl_row(self, line_no: int, line: bytes) -> Any:
        """The row of a JSONL line that ``orjson.loads`` refused (or any line: it reads it
        the long way): :data:`SKIP` for a blank line or a syntax problem (recorded),
        :data:`STOP` when the file turns out to be a JSON array, else the row (and
        :meth:`position` then refers to this line)."""
        if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line.strip():
            return SKIP
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if line_no == 1 and line.lstrip().startswith(b"["):
                self.problem(1, 1, "a .jsonl file holds one JSON object per line, this "
                             "one starts with '[' — if it is a JSON array, name it .json")
                return STOP
            message = _json_message(exc.msg)
            if "UTF-8" not in message:
                message += " — each line of a .jsonl file must be one JSON object"
            self.problem(line_no, exc.colno or 1, message)
            return SKIP
        self._raw, self._line = line, line_no
        return row

    def at(self, line_no: int, line: bytes) -> None:
        """Make :meth:`position` refer to ``line`` (a row a caller parsed itself)."""
        self._raw, self._line = line, line_no

    def _jsonl(self) -> Iterator[tuple[int, Any]]:
        # The common line is parsed here directly; blank lines, a BOM, syntax errors (orjson
        # refuses all three) take the long way, jsonl_row.
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        f, lines = self.jsonl_lines()
        with f:
            for line_no, line in lines:
                try:
                    row = loads(line)
                except decode_error:
                    row = self.jsonl_row(line_no, line)
                    if row is SKIP:
                        continue
                    if row is STOP:
                        return
                else:
                    self._raw, self._line = line, line_no
                yield line_no, row

    # -- .json
    def _json(self) -> Iterator[tuple[int, Any]]:
        decoder = json.JSONDecoder()
        space = re.compile(r"[ \t\n\r]*")
        with open(self.path, encoding="utf-8-sig", newline="") as f:
            buf, pos, line, eof = "", 0, 1, False  # `line` is the line of buf[pos]
            state = "start"
            while True:
                end_space = space.match(buf, pos).end()
                line += buf.count("\n", pos, end_space)
                pos = end_space
                if pos >= len(buf) - 1 and not eof:
                    try:
                        more = f.read(CHUNK)
                    except UnicodeDecodeError:
                        self.problem(line, 1, "not valid UTF-8 near here — save the file as UTF-8")
                        return
                    eof = not more
                    buf, pos = buf[pos:] + more, 0
                    continue
                if pos >= len(buf):
                    if state == "start":
                        self.problem(1, 1, "empty .json file — it must hold an array of objects: "
                                     "[{...}, {...}]")
                    elif state != "done":
                        self.problem(line, 1, "the JSON array is not closed — add ']' at the end")
                    return
                char = buf[pos]
                col = pos - buf.rfind("\n", 0, pos)
                if state == "start":
                    if char != "[":
                        self.problem(line, col, "a .json data file must hold an array of objects "
                                     "[{...}, {...}] — for one object per line, use .jsonl")
                        return
                    pos, state = pos + 1, "first"
                    continue
                if state == "done":
                    self.problem(line, col, "unexpected text after the end of the JSON array — "
                                 "remove it")
                    return
                if char == "]" and state in ("first", "comma"):
                    pos, state = pos + 1, "done"
                    continue
                if state == "comma":
                    if char != ",":
                        self.problem(line, col, "expected ',' or ']' after an element of the "
                                     "JSON array")
                        return
                    pos, state = pos + 1, "element"
                    continue
                try:
                    row, end = decoder.raw_decode(buf, pos)
                    complete = end < len(buf) or eof
                except json.JSONDecodeError as exc:
                    complete, error = False, exc
                else:
                    error = None
                if not complete:
                    if eof or len(buf) - pos > MAX_ELEMENT:
                        where_line = line + buf.count("\n", pos, error.pos) if error else line
                        where_col = (error.pos - buf.rfind("\n", 0, error.pos)) if error else col
                        self.problem(where_line, where_col, _json_message(error.msg if error else
                                     "element too large") + " — the .json file must be one valid "
                                     "JSON array")
                        return
                    try:
                        more = f.read(CHUNK)
                    except UnicodeDecodeError:
                        self.problem(line, 1, "not valid UTF-8 near here — save the file as UTF-8")
                        return
                    eof = not more
                    buf, pos = buf[pos:] + more, 0
                    continue
                self._raw = buf[pos:end] if end - pos < 65536 else ""
                self._line, self._col0 = line, col
                yield line, row
                line += buf.count("\n", pos, end)
                pos, state = end, "comma"
                if pos > CHUNK:  # keep the buffer bounded
                    buf, pos = buf[pos:], 0

    # -- .csv
    def _csv(self) -> Iterator[tuple[int, Any]]:
        spans = {n for n, t in (self.fields or {}).items() if t == "character_offsets"}
        with open(self.path, encoding="utf-8-sig", newline="") as f:
            physical = _LineTap(f)
            reader = csv.reader(physical, strict=True)
            try:
                header = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                self.problem(1, 1, _csv_message(exc))
                return
            if not header or not any(h.strip() for h in header):
                self.problem(1, 1, "empty CSV file — the first row must name the columns")
                return
            self._header = [h.strip() for h in header]
            keep = self._check_header(self._header, physical.last)
            prev = reader.line_num
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    self.problem(prev + 1, 1, _csv_message(exc))
                    return
                line, prev = prev + 1, reader.line_num
                if not record or record == [""]:
                    continue
                self._raw = physical.last if line == prev else ""
                self._line = line
                if len(record) != len(self._header):
                    self.problem(line, 1, f"this row has {len(record)} cells but the header has "
                                 f"{len(self._header)} — quote cells that contain commas")
                    continue
                row, bad = {}, False
                for i in keep:
                    name, cell = self._header[i], record[i]
                    if cell == "":
                        row[name] = None
                    elif name in spans:
                        try:
                            row[name] = orjson.loads(cell)
                        except orjson.JSONDecodeError:
                            self.problem(*self.position(name), f"column {name!r} is not valid "
                                         "JSON — write spans as [{\"start\": 0, \"end\": 5, "
                                         "\"label\": \"ORG\"}]")
                            bad = True
                    else:
                        row[name] = cell
                if not bad:
                    yield line, row

    def _check_header(self, header: list[str], raw: str) -> list[int]:
        keep, seen = [], set()
        for i, name in enumerate(header):
            col = _csv_cell_col(raw, i)
            if not name:
                self.problem(1, col, f"column {i + 1} has no name — name it in the header row, "
                             "or remove the column")
            elif name in seen:
                self.problem(1, col, f"column {name!r} appears twice in the header — keep one")
            elif self.fields is not None and name not in self.fields:
                self.problem(1, col, _unknown_field(name, self.fields))
            else:
                keep.append(i)
            seen.add(name)
        return keep


class _LineTap:
    """Feeds csv.reader line by line, remembering the last physical line read (the whole
    record when it fits on one line, which is what column positions need)."""

    def __init__(self, f: io.TextIOBase):
        self.f = f
        self.last = ""

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        self.last = next(self.f)
        return self.last


def _csv_cell_col(line: str, index: int) -> int:
    """1-based character column where cell ``index`` starts in a one-line CSV record."""
    if not line:
        return 1
    cell, quoted, i = 0, False, 0
    start = 0
    while i < len(line) and cell < index:
        char = line[i]
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            cell += 1
            start = i + 1
        i += 1
    return start + 1 if cell == index else 1


def _csv_message(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8 — save the file as UTF-8"
    text = str(exc)
    if "unexpected end of data" in text or "EOF" in text:
        return "a quoted cell is never closed — check the quotes (a quote inside a cell is " \
               "written twice: \"\")"
    return f"invalid CSV: {text} — check the quoting of this row"


def _json_message(msg: str) -> str:
    if "UTF-8" in msg:
        return "not valid UTF-8 — save the file as UTF-8"
    return f"invalid JSON: {msg}"


def _unknown_field(name: str, fields: Mapping[str, str]) -> str:
    guess = nearest(name, fields)
    hint = f"did you mean {guess[0]!r}?" if guess else "fields: " + ", ".join(fields)
    return f"unknown field {name!r} — {hint} (add it to the dataset's fields, or remove it)"


def iter_rows(path: Path | str, fields: Mapping[str, str] | None = None) -> Iterator[tuple[int, Any]]:
    """Raw ``(line, row)`` of a data file; ManifestError after the last row on syntax
    errors. ``fields`` (name -> data type) tells CSV which cells hold JSON spans."""
    reader = RowReader(path, fields)
    yield from reader
    if reader.problems:
        raise ManifestError(reader.problems)
