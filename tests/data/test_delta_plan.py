"""The delta plan (issue 14): a changed data file against the index its last apply stored.

Against the real reference server: a streamed apply stores the file's index beside its
record; a plan of an edited file (rows edited, removed, added, moved, blank lines) parses
only the rows that are not byte for byte rows applied and reads only their remote rows by
key. Its counts, fingerprint and folded summary equal the full comparison's; its apply
notes the record and the next index, so the plan after is a no-op and the next edit a delta
again. Whatever the delta cannot vouch for (a row with a problem, a key repeated, a remote
written since, an index gone, other fields) falls back on the full comparison."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from hlops.data.local import summarise
from hlops.datafile import CheckedFile
from hlops.errors import ManifestError
from hlops.plan import STREAMED, DataChange
from hlops.providers.humanloop.data import apply_data, delta, plan_data

from dp_helpers import FIELDS, make_rows, write_jsonl
from test_changed_buckets import expected_counts

N = 20_000
KEY = "external_id"
INDEX = "GET /datasets/{dataset_id}/last_applied/index"


class CountingFile(CheckedFile):
    """A JSONL data file as a RowSource, counting the passes over every row."""

    def __call__(self):
        _COUNTS["passes"] += 1
        return super().__call__()

    def unchecked(self):
        _COUNTS["passes"] += 1
        return super().unchecked()

    def check_lines(self, lines=None):
        _COUNTS["passes"] += 1
        return super().check_lines(lines)


_COUNTS: Counter = Counter()


@pytest.fixture(autouse=True)
def small_files_too(monkeypatch):
    monkeypatch.setattr(delta, "MIN_BYTES", 0)  # these files are far below 8 MB


def source(path: Path, fields=FIELDS) -> CountingFile:
    return CountingFile(str(path), fields, KEY, {}, path.name)


def dataset(client, ds: int) -> dict:
    return client.request("GET", f"/datasets/{ds}")


def streamed(client, ds: int, path: Path):
    change = DataChange(source=str(path), key=KEY, decided_by=STREAMED)
    return apply_data(client, ds, change, FIELDS, KEY, source(path), prune=False)


def plan(client, ds: int, path: Path, prune: bool = True, **options):
    raw = dataset(client, ds)
    return plan_data(client, ds, raw["datapoint_count"], FIELDS, KEY, options.pop("rows", None) or source(path),
                     prune=prune, source=str(path), last_applied=raw["last_applied"], **options)


def edit(rows: list[dict], seed: int = 1) -> list[dict]:
    """Every 100th row edited, every 997th removed, 30 added, a block of 50 moved."""
    new = [dict(r, text=r["text"][::-1]) if i % 100 == 0 else r for i, r in enumerate(rows) if i % 997 != 5]
    new = new[:300] + new[5000:5050] + new[300:5000] + new[5050:]
    return new + make_rows(30, start=10 * N + seed * 100, seed=seed)


def write_with_blanks(path: Path, rows: list[dict]) -> Path:
    lines = []
    for i, r in enumerate(rows):
        if i % 1000 == 7:
            lines.append(b"\n" if i % 2000 else b"  \t\r\n")
        lines.append(orjson.dumps(r) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture
def applied_file(srv, client, make_dataset, tmp_path):
    """A dataset of N rows from a streamed apply of a file, with the record and its index."""
    ds = make_dataset(key=KEY)
    rows = make_rows(N)
    path = write_with_blanks(tmp_path / "rows.jsonl", rows)
    streamed(client, ds, path)
    record = dataset(client, ds)["last_applied"]
    assert record and record["index"] > 0, record
    return ds, rows, path


@pytest.mark.parametrize("prune", [True, False])
def test_a_delta_plan_equals_the_full_comparison(srv, client, applied_file, prune, monkeypatch):
    ds, rows, path = applied_file
    new = edit(rows)
    write_with_blanks(path, new)
    _COUNTS.clear()
    srv.reset_stats()
    change = plan(client, ds, path, prune=prune)
    stats = srv.stats()
    add, chg, rem = expected_counts(rows, new, KEY)
    assert change.decided_by == "index"
    assert (change.add, change.change) == (add, chg)
    assert (change.remove, change.unmatched_remote) == ((rem, 0) if prune else (0, rem))
    assert change.unchanged == len(new) - add - chg
    # nothing read whole: no pass over the rows, the remote rows of the changed keys only
    assert _COUNTS["passes"] == 0, _COUNTS
    assert change.remote_rows_read <= add + chg + rem + 20 * rem, change.remote_rows_read
    assert stats["writes"] == 0 and stats["by_path"][INDEX] == 2  # its first part, then its digests
    assert stats["by_path"]["POST /datasets/{dataset_id}/digest/keys"] == 1
    assert stats["total"] <= 7, stats["by_path"]
    # the same as the full comparison, fingerprint included
    monkeypatch.setattr(delta, "MIN_BYTES", 1 << 60)
    full = plan(client, ds, path, prune=prune)
    assert full.decided_by == "digest"
    for name in ("add", "change", "remove", "unmatched_remote", "unchanged", "fingerprint", "bytes_to_send", "calls"):
        assert getattr(change, name) == getattr(full, name), name
    assert change.fingerprint == summarise(source(path), KEY, "rows").fingerprint


def test_its_apply_notes_the_record_and_the_next_index(srv, client, applied_file):
    ds, rows, path = applied_file
    new = edit(rows)
    write_with_blanks(path, new)
    change = plan(client, ds, path)
    report = apply_data(client, ds, change, FIELDS, KEY, source(path), prune=True)
    assert (report.added, report.changed, report.removed) == (change.add, change.change, change.remove)
    record = dataset(client, ds)["last_applied"]
    assert record["index"] > 0 and record["rows"] == len(new)
    again = plan(client, ds, path)
    assert again.decided_by == "last_applied" and not again.has_changes
    # and the next edit is a delta against the new index
    newer = edit(new, seed=2)
    write_with_blanks(path, newer)
    third = plan(client, ds, path)
    assert third.decided_by == "index"
    assert (third.add, third.change, third.remove) == expected_counts(new, newer, KEY)
    apply_data(client, ds, third, FIELDS, KEY, source(path), prune=True)
    remote = {r["data"]["external_id"]: r["data"] for r in _all_datapoints(client, ds)}
    assert remote == {str(r["external_id"]): {**r, "external_id": str(r["external_id"])} for r in newer}


def _all_datapoints(client, ds: int) -> list[dict]:
    return list(client.paginate(f"/datasets/{ds}/datapoints", limit=1000))


def test_a_row_with_a_problem_is_reported_by_the_full_pass(srv, client, applied_file):
    ds, rows, path = applied_file
    new = edit(rows)
    new[123] = dict(new[123], sentiment=["not", "a", "category"])
    write_with_blanks(path, new)
    with pytest.raises(ManifestError) as err:
        plan(client, ds, path)
    assert "sentiment" in str(err.value) and ":" in str(err.value)


def test_a_key_repeated_by_an_edit_is_reported(srv, client, applied_file):
    ds, rows, path = applied_file
    new = list(rows)
    new[500] = dict(rows[501], text="another text, the same key as the next row")
    write_with_blanks(path, new)
    with pytest.raises(ManifestError) as err:
        plan(client, ds, path)
    assert "duplicate key" in str(err.value)
    new[500] = rows[501]  # an exact copy of another line: its print repeats
    write_with_blanks(path, new)
    with pytest.raises(ManifestError) as err:
        plan(client, ds, path)
    assert "duplicate key" in str(err.value)


def test_a_remote_written_since_is_compared_in_full(srv, client, applied_file):
    ds, rows, path = applied_file
    new = edit(rows)
    write_with_blanks(path, new)
    client.request("PUT", f"/datasets/{ds}", body={"data": make_rows(3, start=50 * N)})
    change = plan(client, ds, path)
    assert change.decided_by == "digest"
    assert (change.add, change.change, change.remove) == (lambda a, c, r: (a, c, r + 3))(*expected_counts(rows, new, KEY))


def test_an_index_that_does_not_name_the_record_is_not_used(srv, client, applied_file):
    ds, rows, path = applied_file
    new = edit(rows)
    write_with_blanks(path, new)
    blob = bytearray(client.get_bytes(f"/datasets/{ds}/last_applied/index"))
    blob[20] ^= 1  # the file's SHA-256 it names
    client.put_bytes(f"/datasets/{ds}/last_applied/index", bytes(blob))
    assert plan(client, ds, path).decided_by == "digest"
    client.put_bytes(f"/datasets/{ds}/last_applied/index", b"not an index")
    assert plan(client, ds, path).decided_by == "digest"


def test_other_fields_are_compared_in_full(srv, client, applied_file):
    ds, rows, path = applied_file
    write_with_blanks(path, edit(rows))
    raw = dataset(client, ds)
    fields = {**FIELDS, "sentiment": "text"}
    change = plan_data(client, ds, raw["datapoint_count"], fields, KEY, source(path, fields), prune=True,
                       source=str(path), last_applied=raw["last_applied"])
    assert change.decided_by == "digest"


def test_the_delta_reads_random_edits_right(srv, client, applied_file):
    """Random edits, moves and blank lines: the counts are the brute-force ones."""
    ds, rows, path = applied_file
    rnd = random.Random(11)
    for round_ in range(3):
        new = [dict(r, text=r["text"] + "!") if rnd.random() < 0.01 else r for r in rows if rnd.random() > 0.005]
        cut = rnd.randrange(len(new))
        new = new[cut:] + new[:cut] if round_ == 1 else new
        new += make_rows(rnd.randrange(0, 50), start=20 * N + round_ * 1000)
        write_with_blanks(path, new)
        change = plan(client, ds, path)
        assert change.decided_by == "index"
        assert (change.add, change.change, change.remove) == expected_counts(rows, new, KEY), round_


def test_keys_and_digests_of_the_index_are_the_pass_s(srv, client, applied_file):
    from hlops.data import index as ix

    ds, rows, path = applied_file
    found = ix.Index.from_bytes(client.get_bytes(f"/datasets/{ds}/last_applied/index"))
    summary = summarise(source(path), KEY, "rows")
    assert found is not None and found.rows == N == summary.count
    assert (found.points == summary.points).all()
    assert found.fingerprint == summary.fingerprint
    assert found.source_sha256 == dataset(client, ds)["last_applied"]["source_sha256"]
    assert len(np.unique(found.prints)) == N
