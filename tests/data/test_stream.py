"""The streamed pass (hlops.data.stream): the same summary as the plan's pass of a clean file,
and a halt before the batch that follows a problem."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hlops.data.local import summarise
from hlops.data.stream import Halt, StreamedPass
from hlops.datafile import CheckedFile

FIELDS = {"id": "text", "text": "text"}


def _rows(n: int, repeat_every: int = 0) -> list[dict]:
    return [{"id": f"k{i}", "text": f"row {i % repeat_every if repeat_every else i}"} for i in range(n)]


def _write(path, rows, fmt):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=1))
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "text"])
            for r in rows:
                w.writerow([r["id"], r["text"]])


def _stream(file, key, every=1000):
    s = StreamedPass(file, key)
    sent = []
    for cj in s.rows():
        sent.append(cj)
        if len(sent) % every == 0:
            s.commit()
    s.commit()
    return s, sent


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("key", ["id", None])
def test_the_summary_is_the_plans(tmp_path, fmt, key):
    path = tmp_path / f"rows.{fmt}"
    rows = _rows(3_000) if key else [{"text": r["text"], "id": "same"} for r in _rows(3_000, 700)]
    _write(path, rows, fmt)
    file = CheckedFile(str(path), FIELDS, key, {}, path.name)
    s, sent = _stream(file, key)
    got, want = s.summary(), summarise(file, key, path.name)
    assert len(sent) == got.count == want.count == 3_000
    assert got.fingerprint == want.fingerprint and got.bytes_total == want.bytes_total
    for name in ("counts", "xor", "nbytes", "dup"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert got.dup.any() == (key is None)  # keyless repeats are legal, and marked


@pytest.mark.parametrize("bad", ["syntax", "value", "no-key", "repeated-key"])
def test_a_problem_halts_the_next_commit(tmp_path, bad):
    rows = [json.dumps(r) for r in _rows(2_500)]
    rows[1_500] = {"syntax": '{"id": "x", "text": "y"', "value": '{"id": "x", "text": [1]}',
                   "no-key": '{"text": "y"}', "repeated-key": '{"id": "k3", "text": "y"}'}[bad]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows) + "\n")
    s = StreamedPass(CheckedFile(str(path), FIELDS, "id", {}, path.name), "id")
    committed = 0
    with pytest.raises(Halt):
        for n, _cj in enumerate(s.rows(), 1):
            if n % 1_000 == 0:
                s.commit()
                committed = n
        s.commit()
    assert committed == 1_000  # the batch holding line 1,501 (and all after it) never passes
    assert s.acc.count == 1_000
