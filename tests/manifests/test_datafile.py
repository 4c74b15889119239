"""Streaming data files: formats, positions, checks, bounded-memory duplicate keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hlops import datafile, datareaders
from hlops.datafile import KeyIndex, RowChecker, check_data, iter_checked, iter_rows
from hlops.errors import ManifestError

FIELDS = {"id": "text", "text": "text", "label": "categorical", "spans": "character_offsets"}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_jsonl_rows_and_lines(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"id": 1}\n\n  \n{"id": "2"}\n')
    assert list(iter_rows(path)) == [(1, {"id": 1}), (4, {"id": "2"})]


def test_json_array_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(datareaders, "CHUNK", 7)  # elements straddle every read
    rows = [{"id": str(i), "text": "é" * (i % 5) + ' "quoted" ] } ,'} for i in range(40)]
    body = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    got = list(iter_rows(write(tmp_path, "d.json", body)))
    assert [row for _, row in got] == rows
    assert [line for line, _ in got] == list(range(2, 42))


def test_json_pretty_printed_lines(tmp_path):
    body = json.dumps([{"id": "a"}, {"id": "b"}], indent=2)
    assert [line for line, _ in iter_rows(write(tmp_path, "d.json", body))] == [2, 5]


def test_json_empty_array_and_numbers_at_chunk_ends(tmp_path, monkeypatch):
    assert list(iter_rows(write(tmp_path, "e.json", " [ ] "))) == []
    monkeypatch.setattr(datareaders, "CHUNK", 5)  # "[1, 2" then "2]": 22 must not be read as 2
    assert list(iter_rows(write(tmp_path, "n.json", "[1, 22]"))) == [(1, 1), (1, 22)]
    with pytest.raises(ManifestError, match="the JSON array is not closed"):
        list(iter_rows(write(tmp_path, "u.json", "[1, 22")))


def test_csv_multiline_cells_keep_their_first_line(tmp_path):
    body = 'id,text,spans\n1,"two\nlines",\n2,one,"[{""start"": 0, ""end"": 3, ""label"": ""X""}]"\n'
    rows = list(iter_rows(write(tmp_path, "d.csv", body), FIELDS))
    assert rows == [(2, {"id": "1", "text": "two\nlines", "spans": None}),
                    (4, {"id": "2", "text": "one", "spans": [{"start": 0, "end": 3, "label": "X"}]})]


def test_csv_header_spaces_are_ignored(tmp_path):
    rows = list(iter_rows(write(tmp_path, "d.csv", "id, text\n1, hi\n"), FIELDS))
    assert rows == [(2, {"id": "1", "text": " hi"})]


def test_check_reports_positions_and_never_values(tmp_path):
    secret = "SECRET-CANARY-123"
    body = (f'{{"id": "1", "text": "{secret}", "label": ["{secret}"]}}\n'
            f'{{"id": "1", "text": "{secret}"}}\n')
    rows, problems = check_data(write(tmp_path, "d.jsonl", body), FIELDS, "id")
    assert rows == 2
    assert [(p.line, p.col) for p in problems] == [(1, 42)]  # line 2 is no dupe: line 1 was bad
    assert all(secret not in p.message for p in problems)


def test_spans_are_checked_against_their_text(tmp_path):
    body = '{"id": "1", "text": "Hi Apple", "spans": [{"start": 3, "end": 9, "label": "ORG"}]}\n'
    _, problems = check_data(write(tmp_path, "d.jsonl", body), FIELDS, "id",
                             span_texts={"spans": "text"})
    assert "runs past the end of its text (8 characters)" in problems[0].message
    _, problems = check_data(write(tmp_path, "e.jsonl", body), FIELDS, "id")
    assert problems == []  # without a text to point into, only start < end is checked


def test_iter_checked_yields_good_rows_then_raises(tmp_path):
    body = '{"id": "1", "text": "a"}\n{"id": "2", "text": 1.5}\n{"id": "3"}\n'
    path = write(tmp_path, "d.jsonl", body)
    seen = []
    with pytest.raises(ManifestError) as err:
        for line, row in iter_checked(path, FIELDS, "id"):
            seen.append(line)
    assert seen == [1, 3]
    assert [p.line for p in err.value.problems] == [2]


def test_problems_are_capped_per_kind(tmp_path):
    body = "".join('{"id": "%d", "txt": "x"}\n' % i for i in range(1000))
    _, problems = check_data(write(tmp_path, "d.jsonl", body), FIELDS, "id")
    assert len(problems) == datafile.PER_CLASS + 1
    assert problems[-1].line == 1000 and "995 more" in problems[-1].message


@pytest.mark.parametrize("spill_at", [3, 10**9])
def test_duplicate_keys_in_memory_and_spilled(monkeypatch, spill_at):
    monkeypatch.setattr(datafile, "SPILL_AT", spill_at)
    index = KeyIndex()
    keys = ["a", "b", "c", "a", "d", "e", "b", "a", "f", "g", "h"]
    for line, key in enumerate(keys, 1):
        index.add(key, line)
    assert sorted(index.duplicates()) == [(4, 1), (7, 2), (8, 1)]


def test_duplicate_keys_many_rows_spilled(monkeypatch):
    monkeypatch.setattr(datafile, "SPILL_AT", 1000)
    checker = RowChecker({"id": "text"}, "id")
    for i in range(10_000):
        checker.check(i + 1, {"id": str(i % 9_990)})
    problems = checker.finish()
    dupes = [p for p in problems if p.message.startswith("duplicate key")]
    assert [p.line for p in dupes] == [9991, 9992, 9993, 9994, 9995]
    assert "line 1 has the same" in dupes[0].message
    assert "5 more of the same" in problems[-1].message and problems[-1].line == 10_000


def test_unsupported_extension(tmp_path):
    with pytest.raises(ManifestError) as err:
        list(iter_rows(write(tmp_path, "d.txt", "x")))
    assert "unsupported data file extension '.txt'" in str(err.value)
