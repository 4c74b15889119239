"""The summary pass split between worker processes gives exactly what one pass gives:
the same summary, the same located errors, the same plans. Small files, with the split
forced (no size threshold, ranges of a few hundred bytes, two workers)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlops.data import parallel
from hlops.providers.humanloop.data import apply_data, plan_data
from hlops.data.local import summarise
from hlops.data.scan import scan, scan_checked
from hlops.datafile import checked_rows, common_row_test, exact_row_test
from hlops.datafile import CheckedFile, CheckedPass, check_data, iter_checked
from hlops.datareaders import PROVISIONAL, RowReader, line_ranges
from hlops.errors import ManifestError, SettingsError

from dp_helpers import FIELDS, make_rows

KEY = "external_id"


@pytest.fixture
def split(monkeypatch):
    """Every JSONL file is split, in ranges of about 600 bytes (4-5 rows)."""
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "RANGE_BYTES", 600)
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    return monkeypatch


def source(path, key=KEY, fields=FIELDS) -> CheckedFile:
    return CheckedFile(str(path), dict(fields), key, {}, path.name)


def single_and_split(split, run):
    """``run()`` with the single pass, then with the split one (checked to be used)."""
    split.setenv(parallel.WORKERS_ENV, "1")
    single = run()
    split.setenv(parallel.WORKERS_ENV, "2")
    return single, run()


def outcome(src: CheckedFile, key: str | None):
    """The summary's every field, or the error's text."""
    try:
        s = summarise(src, key, src.display)
    except ManifestError as exc:
        return str(exc)
    return (s.count, s.fingerprint, s.bytes_total, s.counts.tobytes(), s.xor.tobytes(),
            s.nbytes.tobytes(), s.dup.tobytes())


def lines(rows: list) -> bytes:
    return b"".join(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in rows)


def test_line_ranges_cover_the_file_at_newlines(tmp_path):
    """Cut without reading: every range ends at a newline (or the end), only the first knows
    its first line; the readers count each range's lines, and the counts add up."""
    path = tmp_path / "d.jsonl"
    data = b"a\n\nbb\r\n" + b"c" * 50 + b"\nlast without newline"
    path.write_bytes(data)
    got = list(line_ranges(path, 3))
    assert [(r.start, r.end) for r in got] == [(0, 3), (3, 7), (7, 58), (58, len(data))]
    assert [r.first_line for r in got] == [1, PROVISIONAL, PROVISIONAL, PROVISIONAL]
    counts = []
    for r in got:
        reader = RowReader(path, lines=r)
        f, numbered = reader.jsonl_lines()
        with f:
            assert b"".join(line for _, line in numbered) == data[r.start:r.end]
        counts.append(reader.range_lines)
    assert counts == [2, 1, 1, 1]
    assert list(line_ranges(path, 1 << 20)) == [(0, len(data), 1)]
    assert list(line_ranges(path, len(data))) == [(0, len(data), 1)]
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert list(line_ranges(tmp_path / "e.jsonl", 3)) == []


@pytest.mark.parametrize("key", [KEY, None])
def test_same_summary_as_one_pass(tmp_path, split, key):
    rows = make_rows(300) + (make_rows(20) if key is None else [])  # duplicate rows: dup buckets
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines(rows).replace(b"\n", b"\r\n", 7) + b"\n\n")
    src = source(path, key)
    assert parallel.split_file(src) is not None
    assert len(list(line_ranges(path, parallel.RANGE_BYTES))) > 20
    single, split_ = single_and_split(split, lambda: outcome(src, key))
    assert isinstance(single, tuple) and single[0] == len(rows)
    assert split_ == single


def test_same_located_errors_as_one_pass(tmp_path, split):
    """Syntax errors, values of the wrong type, unknown fields, missing keys, non-objects,
    blank lines: more than 5 of a kind and more than 100 in all, spread over many ranges,
    so the caps (per kind, per file) and the "... and N more" lines are merged."""
    rows: list = []
    for i, row in enumerate(make_rows(400)):
        kind = i % 9
        if kind == 1:
            row[f"extra{i}"] = row[f"more{i}"] = "x"  # 88 kinds of unknown field
        elif kind == 2:
            row["sentiment"] = 1.5
        elif kind == 3 and i % 2:
            row = b'{"external_id": "broken", \n'
        elif kind == 4 and i % 4 == 0:
            row.pop(KEY)
        elif kind == 5 and i % 5 == 0:
            row = [1, 2]
        elif kind == 6 and i % 3 == 0:
            row = b"\n"
        rows.append(row)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(lines(rows))
    src = source(path)
    single, split_ = single_and_split(split, lambda: outcome(src, KEY))
    assert isinstance(single, str) and "more of the same" in single
    assert single.count("\n") > 120  # the file cap (100 value problems) was reached
    assert split_ == single
    with pytest.raises(ManifestError) as exc:  # and what iter_checked says
        list(iter_checked(path, FIELDS, KEY, display=path.name, duplicates=False))
    assert str(exc.value) == single


@pytest.mark.parametrize("many", [False, True])
def test_duplicate_keys_across_ranges_are_reported_with_both_lines(tmp_path, split, many):
    rows = make_rows(200)
    rows[150]["external_id"] = rows[151]["external_id"] = rows[3]["external_id"]  # other ranges
    if many:  # more than the problems listed at once
        for i in range(20, 140, 2):
            rows[i + 1]["external_id"] = rows[i]["external_id"]
    path = tmp_path / "dupes.jsonl"
    path.write_bytes(lines(rows))
    single, split_ = single_and_split(split, lambda: outcome(source(path), KEY))
    if many:
        assert f"{path.name}:22:1: duplicate key: line 21 has the same 'external_id'" in single
        assert "more rows repeat a key" in single
    else:
        assert f"{path.name}:152:1: duplicate key: line 4 has the same 'external_id'" in single
        assert f"{path.name}:151:1: duplicate key: line 4 has the same 'external_id'" in single
    assert split_ == single


def test_json_csv_and_small_files_keep_the_single_pass(tmp_path, split):
    rows = make_rows(5)
    (tmp_path / "d.json").write_bytes(orjson.dumps(rows))
    (tmp_path / "d.csv").write_text("external_id,text,sentiment\n1,a,b\n")
    (tmp_path / "array.jsonl").write_bytes(b"[\n" + lines(rows) + b"]\n")
    for name in ("d.json", "d.csv", "array.jsonl"):
        assert parallel.split_file(source(tmp_path / name)) is None
    (tmp_path / "d.jsonl").write_bytes(lines(rows))
    assert parallel.split_file(source(tmp_path / "d.jsonl")) is not None
    split.setattr(parallel, "MIN_BYTES", 1 << 20)
    assert parallel.split_file(source(tmp_path / "d.jsonl")) is None
    split.setattr(parallel, "MIN_BYTES", 0)
    split.setenv(parallel.WORKERS_ENV, "1")
    assert parallel.split_file(source(tmp_path / "d.jsonl")) is None
    split.setenv(parallel.WORKERS_ENV, "two")
    with pytest.raises(SettingsError, match="HLOPS_WORKERS must be a whole number"):
        parallel.workers()


def test_same_plan_and_a_correct_apply(tmp_path, split, client, make_dataset):
    ds = make_dataset()
    rows = make_rows(600)
    client.request("PUT", f"/datasets/{ds}", body={"data": rows})
    edited = [dict(r) for r in rows[:590]] + make_rows(15, start=10_000)  # 10 gone, 15 new
    for i in (0, 77, 300, 589):
        edited[i]["text"] = "changed"
    path = tmp_path / "edited.jsonl"
    path.write_bytes(lines(edited))
    src = source(path)

    def plan():
        return plan_data(client, ds, 600, FIELDS, KEY, src, prune=True)

    single, change = single_and_split(split, plan)
    assert (change.add, change.change, change.remove) == (15, 4, 10)
    # the same diff; the path to it (levels read, rows read) follows measured request times
    path_free = {"buckets": 0, "remote_rows_read": 0}
    assert change.model_copy(update=path_free) == single.model_copy(update=path_free)
    report = apply_data(client, ds, change, FIELDS, KEY, src, prune=True)
    assert (report.added, report.changed, report.removed) == (15, 4, 10)
    assert not plan().has_changes


SPAN_FIELDS = {**FIELDS, "ents": "character_offsets"}


class _Generic:
    """``file``'s rows as a plain RowSource (no ``checked_file``): scan.scan over iter_checked."""

    def __init__(self, file: CheckedFile):
        self.file, self.display = file, file.display

    def __call__(self):
        return self.file()


def _mixed_rows() -> list:
    """The common row (strings only: the one loop's own path) among every other kind."""
    rows: list = []
    for i, row in enumerate(make_rows(120)):
        row = {k: str(v) for k, v in row.items()}
        kind = i % 12
        if kind == 1:
            row[KEY] = i  # an int key: normalised by the checker
        elif kind == 2:
            row["ents"] = [{"start": 0, "end": 3, "label": "X"}]
        elif kind == 3:
            row["ents"] = [{"start": 0, "end": 999, "label": "X"}]  # past its text
        elif kind == 4:
            row.pop(KEY)
        elif kind == 5:
            row["nope"] = "x"
        elif kind == 6:
            row = b'{"external_id": "broken", \n'
        elif kind == 7:
            row = b"  \n"
        elif kind == 8:
            row = ["not", "an", "object"]
        elif kind == 9:
            row["sentiment"] = None
        elif kind == 10:
            row = {}
        rows.append(row)
    return rows


@pytest.mark.parametrize("bad", [False, True], ids=["good-file", "bad-file"])
@pytest.mark.parametrize("key", [KEY, None])
def test_the_one_loop_pass_equals_the_generator_pass(tmp_path, monkeypatch, key, bad):
    """summarise() of a data file runs the reader, the checker and the scan in one loop
    (scan.scan_checked); the summary and every located error are those of scan.scan over
    iter_checked (the generator pass), lines with a BOM, CRLF, blanks and spans included."""
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    rows = _mixed_rows() if bad else [{k: str(v) for k, v in r.items()} for r in make_rows(300)]
    if not bad:
        rows[5][KEY] = 5  # an int: the checker normalises it
        rows[7]["ents"] = [{"start": 1, "end": 2, "label": "Y"}]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines(rows).replace(b"\n", b"\r\n", 9) + b"\n")
    file = CheckedFile(str(path), dict(SPAN_FIELDS), key, {"ents": "text"}, path.name)
    assert parallel.checked_file(file) is file and parallel.split_file(file) is None
    fused = outcome(file, key)
    generic = outcome(_Generic(file), key)
    assert fused == generic
    assert isinstance(fused, str) == bad
    if bad:
        assert f"{path.name}:7:" in fused and "runs past the end of its text" in fused
    one_loop, generator = file.check_lines(), file.check_lines()
    scan_checked(one_loop, key, path.name, lambda *chunk: None)
    scan(generator, key, path.name, lambda *chunk: None)
    for checked in (one_loop, generator):  # what `hlops validate` counts
        checked.counted = (checked.findings.checker.rows, checked.findings.checker.bad_rows)
    assert one_loop.counted == generator.counted


@pytest.mark.parametrize("bad", [False, True], ids=["good-file", "bad-file"])
@pytest.mark.parametrize("key", [KEY, None])
def test_checked_rows_yields_what_the_checked_pass_yields(tmp_path, key, bad):
    """The streamed apply's reading (datafile.checked_rows): the same (line, row) pairs, the same
    counts and the same located problems as iterating the CheckedPass, on every kind of line."""
    rows = _mixed_rows() if bad else [{k: str(v) for k, v in r.items()} for r in make_rows(300)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines(rows).replace(b"\n", b"\r\n", 9) + b"\n")
    file = CheckedFile(str(path), dict(SPAN_FIELDS), key, {"ents": "text"}, path.name)
    one, generic = file.check_lines(), file.check_lines()
    assert list(checked_rows(one)) == list(generic)
    for checked in (one, generic):
        checked.counted = (checked.findings.checker.rows, checked.findings.checker.bad_rows,
                           [str(p) for p in checked.findings.problems()])
    assert one.counted == generic.counted
    assert bool(one.counted[2]) == bad
    array = tmp_path / "array.jsonl"  # a JSON array named .jsonl: read the reader's way
    array.write_bytes(b'[{"external_id": "a",\n "text": "b"}]\n')
    file = CheckedFile(str(array), dict(SPAN_FIELDS), key, {"ents": "text"}, array.name)
    one, generic = file.check_lines(), file.check_lines()
    assert list(checked_rows(one)) == list(generic)
    assert [str(p) for p in one.findings.problems()] == [str(p) for p in generic.findings.problems()]


def test_the_one_loop_pass_stops_at_a_json_array_named_jsonl(tmp_path, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    path = tmp_path / "array.jsonl"
    path.write_bytes(b'[{"external_id": "a",\n "text": "b"}]\n')
    file = source(path)
    assert outcome(file, KEY) == outcome(_Generic(file), KEY)
    assert "starts with '['" in outcome(file, KEY)


_VALUES = st.one_of(st.text(max_size=3), st.integers(), st.none(), st.booleans(), st.lists(st.text(max_size=2), max_size=1))
_NAMES = st.sampled_from(["external_id", "text", "sentiment", "other", "x'\"\\", ""])


@settings(max_examples=300, deadline=None)
@given(plain=st.frozensets(_NAMES, max_size=4), key=st.one_of(st.none(), _NAMES),
       row=st.dictionaries(_NAMES, _VALUES, max_size=5))
def test_the_exact_row_test_accepts_only_rows_the_general_test_accepts(plain, key, row):
    """The one-loop readers try datafile.exact_row_test (unrolled for the fields, generated) before
    datafile.common_row_test: whatever it accepts the general test must accept, and it must accept
    the commonest row (a string in every plain field, nothing else), odd field names included."""
    exact, common = exact_row_test(plain, key), common_row_test(plain, key)
    if exact(row):
        assert common(row)
    every = {name: "v" for name in plain}
    assert exact(every) == common(every) == (key is None or key in plain)
    general = row.keys() <= plain and all(type(v) is str for v in row.values()) and (
        key is None or type(row.get(key)) is str)
    assert common(row) == general


_READ_AGAIN: list[int] = []
_SCAN_RANGE = parallel._scan_range


def _counted_scan_range(file, lines, key, where):
    """parallel._scan_range, noting the first line of each call made in this process (a
    module-level function: the pool pickles it by name for the forked workers, whose calls
    are noted in their own copy of the list)."""
    _READ_AGAIN.append(lines.first_line)
    return _SCAN_RANGE(file, lines, key, where)


def test_only_a_range_with_a_problem_is_read_again(tmp_path, split):
    """Ranges are numbered provisionally; the parent reads a range again (numbered right)
    only when it holds something located, so a clean file is read once."""
    split.setattr(parallel, "_scan_range", _counted_scan_range)
    _READ_AGAIN.clear()
    rows = make_rows(300)
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines(rows))
    assert isinstance(outcome(source(path), KEY), tuple)
    assert _READ_AGAIN == []
    rows[250]["sentiment"] = 1.5  # one bad value far into the file
    path.write_bytes(lines(rows))
    assert f"{path.name}:251:" in outcome(source(path), KEY)
    assert len(_READ_AGAIN) == 1 and 200 < _READ_AGAIN[0] <= 251  # that range only, numbered right


@pytest.mark.parametrize("bad", [False, True], ids=["good-file", "bad-file"])
def test_checked_rows_indexes_keys_as_the_checker_does(tmp_path, bad):
    """`hlops validate`'s read (datafile.check_data) goes through checked_rows with the
    checker's key index: the common rows' keys are indexed by the loop itself, so every
    duplicate key is found and located as the generator pass finds it, other problems too."""
    rows = _mixed_rows() if bad else [{k: str(v) for k, v in r.items()} for r in make_rows(300)]
    rows += [dict(r) for r in rows[3:40:7] if isinstance(r, dict) and KEY in r]  # repeated keys
    rows.insert(50, {KEY: "row-with-an-int", "text": 5})  # a row check() normalises
    path = tmp_path / "keyed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines(rows) + b"\n")
    one = CheckedPass(path, dict(SPAN_FIELDS), KEY, span_texts={"ents": "text"}, display=path.name)
    generic = CheckedPass(path, dict(SPAN_FIELDS), KEY, span_texts={"ents": "text"}, display=path.name)
    assert one.findings.checker.key_index is not None
    assert list(checked_rows(one)) == list(generic)
    got, want = ([str(p) for p in c.findings.problems()] for c in (one, generic))
    assert got == want
    assert sum("duplicate key" in p for p in got) >= (1 if bad else 5)
    counted, problems = check_data(path, dict(SPAN_FIELDS), KEY, span_texts={"ents": "text"}, display=path.name)
    assert (counted, [str(p) for p in problems]) == (generic.findings.checker.rows, want)
