"""Data files and row sources for the datapoint tests (no server needed here)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson

from hlops import canonical

FIELDS = {"external_id": "text", "text": "text", "sentiment": "categorical"}
SENTIMENTS = ("positive", "negative", "neutral")


def make_rows(n: int, start: int = 0, seed: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {
            "external_id": i,
            "text": f"ticket {i}: " + " ".join(rnd.choice(("slow", "great", "broken", "fine", "late")) for _ in range(6)),
            "sentiment": SENTIMENTS[i % 3],
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def jsonl_source(path: Path, fields: dict[str, str] = FIELDS):
    """A RowSource: (line, normalised row) from a JSONL file, re-read on every call."""

    def rows() -> Iterator[tuple[int, dict]]:
        with open(path, "rb") as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    yield line_no, canonical.normalise_row(orjson.loads(line), fields)

    return rows


def list_source(rows: list[dict], fields: dict[str, str] = FIELDS):
    def source() -> Iterator[tuple[int, dict]]:
        for i, r in enumerate(rows, 1):
            yield i, canonical.normalise_row(r, fields)

    return source
