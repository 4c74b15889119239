"""The files of ``hlops predict``/``export``/``annotations``, read and named without any API.

Provider-neutral: input rows (objects of input name -> value), the export formats, and
annotation rows ``{key | datapoint_id, output, value}`` (``dataset`` optional), each checked
in full before a provider is called (a ManifestError locates every problem).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from hlops import canonical
from hlops.datareaders import RowReader
from hlops.errors import ManifestError, Problem, SettingsError

EXPORT_FORMATS = ("jsonl", "json", "csv")
IMPORT_MEMBERS = frozenset({"key", "datapoint_id", "dataset", "output", "value"})


def read_input_rows(path: Path) -> list[tuple[int, dict]]:
    """``(line, row)`` of a file of input rows (objects of input name -> string, integer or
    null); a ManifestError listing every problem, before any API call."""
    reader = RowReader(path)
    rows, problems = [], []
    for line, row in reader:
        if not isinstance(row, dict):
            problems.append(Problem(reader.display, line, 1, "a row is an object of input name -> value"))
            continue
        for name, value in row.items():
            if value is not None and not isinstance(value, str) and not canonical._is_int(value):
                at = reader.position(name)
                problems.append(Problem(reader.display, at[0], at[1], f"{name}: a value is a string, an integer or null"))
        rows.append((line, row))
    problems += reader.problems
    if not rows and not problems:
        problems.append(Problem(reader.display, 0, 0, "no rows"))
    if problems:
        raise ManifestError(problems)
    return rows


def export_format(path: Path | None, given: str | None) -> str:
    """``--format``, or the one the file's extension names (``.jsonl``/``.ndjson``,
    ``.json``, ``.csv``)."""
    if given:
        return given
    if path is None or str(path) == "-":
        return "jsonl"
    suffix = path.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}.get(suffix)
    if fmt is None:
        raise SettingsError(f"cannot tell the format of {path} from its extension: name it .jsonl, .json or .csv, or pass --format")
    return fmt


@dataclass
class AnnotationRow:
    line: int
    output: str
    value: Any
    datapoint_id: int | None = None
    key: str | None = None
    dataset: str | None = None

    @property
    def target(self) -> str:
        where = f" in dataset {self.dataset!r}" if self.dataset else ""
        return f"datapoint {self.datapoint_id}" if self.key is None else f"key {self.key!r}{where}"


@dataclass
class ImportReport:
    imported: int = 0
    skipped: list[Problem] = field(default_factory=list)
    datapoints: set[int] = field(default_factory=set)


def read_annotations(path: Path) -> tuple[str, list[AnnotationRow]]:
    """Rows of an annotations file (``.jsonl``, ``.json``, ``.csv``), checked without the
    API: each an object with ``output``, ``value`` and exactly one of ``key`` /
    ``datapoint_id`` (``dataset`` optional, with ``key``). In a CSV, a ``value`` cell that
    starts with ``[`` is JSON (a multilabel list or spans)."""
    reader = RowReader(path)
    rows: list[AnnotationRow] = []
    problems: list[Problem] = []
    csv_file = reader.format == "csv"

    def bad(line: int, member: str | None, message: str) -> None:
        at = reader.position(member) if member else (line, 1)
        problems.append(Problem(reader.display, at[0], at[1], message))

    for line, row in reader:
        if not isinstance(row, dict):
            bad(line, None, "a row is an object {key or datapoint_id, output, value}")
            continue
        if csv_file:
            row = {k: v for k, v in row.items() if v not in (None, "")}
            if isinstance(row.get("value"), str) and row["value"].lstrip().startswith("["):
                try:
                    row["value"] = orjson.loads(row["value"])
                except orjson.JSONDecodeError:
                    bad(line, "value", "value: a cell starting with '[' must be JSON")
                    continue
            if isinstance(row.get("datapoint_id"), str) and row["datapoint_id"].isdigit():
                row["datapoint_id"] = int(row["datapoint_id"])
        extra = sorted(set(row) - IMPORT_MEMBERS)
        if extra:
            bad(line, extra[0], f"unknown member {extra[0]!r}; a row has key or datapoint_id, output, value (and dataset)")
            continue
        if ("key" in row) == ("datapoint_id" in row):
            bad(line, None, "a row names its datapoint by exactly one of key or datapoint_id")
            continue
        key = row.get("key")
        if "key" in row and not (isinstance(key, str) and key or canonical._is_int(key)):
            bad(line, "key", "key: a non-empty string (or an integer)")
            continue
        dp = row.get("datapoint_id")
        if "datapoint_id" in row and not (canonical._is_int(dp) and dp > 0):
            bad(line, "datapoint_id", "datapoint_id: a positive integer")
            continue
        dataset = row.get("dataset")
        if dataset is not None and (not isinstance(dataset, str) or not dataset or "key" not in row):
            bad(line, "dataset", "dataset: the name of a dataset, with key")
            continue
        if not isinstance(row.get("output"), str) or not row["output"]:
            bad(line, "output" if "output" in row else None, "output: the name of one of the project's outputs")
            continue
        if "value" not in row or row["value"] is None:
            bad(line, None, "value: the annotation (a label, a list of labels, or a list of spans)")
            continue
        rows.append(AnnotationRow(
            line, row["output"], row["value"], datapoint_id=dp, key=None if key is None else str(key), dataset=dataset,
        ))
    problems += reader.problems
    if not rows and not problems:
        problems.append(Problem(reader.display, 0, 0, "no annotations in the file"))
    if problems:
        raise ManifestError(problems)
    return reader.display, rows
