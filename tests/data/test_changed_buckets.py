"""A changed-data plan reads about the changed buckets' rows, not all of them (issue 14).

Against the real reference server: 1% of the rows edited, spread over the file (every
coarse bucket differs), some removed, some added. The plan's counts equal a brute-force
comparison of the two sides; the remote rows come from ``POST .../digest/rows`` (few
calls, a fraction of the rows); the local second pass parses only the rows of the
differing buckets, found by ordinal from the summary's key points. Without a server: that
selective pass equals the full one (blank lines, a BOM, keyless duplicates, examples), and
a file edited after its summary falls back to the full pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hlops import canonical
from hlops.data.local import collect, summarise
from hlops.datafile import CheckedFile
from hlops.providers.humanloop.data import apply_data, plan_data

from dp_helpers import FIELDS, make_rows, write_jsonl

N = 30_000
KEY = "external_id"


class CountingFile(CheckedFile):
    """A JSONL data file as a RowSource, counting what each pass reads."""

    def __call__(self):
        _COUNTS["checked_passes"] += 1
        return super().__call__()

    def check_lines(self, lines=None):  # the one-loop pass of the whole file (lines=None) or a range
        _COUNTS["checked_passes" if lines is None else "checked_ranges"] += 1
        return super().check_lines(lines)

    def unchecked(self):
        _COUNTS["unchecked_passes"] += 1
        return super().unchecked()

    def lines_at(self, ordinals):  # what the selective pass reads
        found = super().lines_at(ordinals)
        if found is None:
            return None

        def counted():
            for item in found:
                _COUNTS["rows_read_at"] += 1
                yield item

        return counted()


_COUNTS: Counter = Counter()


def source(path: Path, key: str | None) -> CountingFile:
    return CountingFile(str(path), FIELDS, key, {}, path.name)


def state(rows: list[dict], key: str | None) -> Counter:
    """key -> hash (keyed) or a multiset of hashes (keyless), brute force."""
    out: Counter = Counter()
    for r in rows:
        norm = canonical.normalise_row(r, FIELDS)
        h = canonical.row_hash(norm)
        out[(canonical.key_text(norm, key, h), h) if key else h] += 1
    return out


def expected_counts(old: list[dict], new: list[dict], key: str | None) -> tuple[int, int, int]:
    """(add, change, remove) with prune, by brute force."""
    if key is None:
        a, b = state(old, None), state(new, None)
        return sum((b - a).values()), 0, sum((a - b).values())
    a = {k: h for (k, h) in state(old, key)}
    b = {k: h for (k, h) in state(new, key)}
    return (len(b.keys() - a.keys()), sum(1 for k in a.keys() & b.keys() if a[k] != b[k]),
            len(a.keys() - b.keys()))


def edited(rows: list[dict]) -> list[dict]:
    """Every 100th row's text edited, every 997th removed, 40 rows added."""
    new = [dict(r, text=r["text"][::-1]) if i % 100 == 0 else r for i, r in enumerate(rows) if i % 997 != 5]
    return new + make_rows(40, start=len(rows) + 1000, seed=3)



def uploaded_and_edited(client, ds: int, tmp_path: Path) -> tuple[list[dict], list[dict], Path]:
    """N rows uploaded into dataset ``ds``; the file of their edited version (:func:`edited`)."""
    rows = make_rows(N)
    for i in range(0, N, 10_000):
        client.request("PUT", f"/datasets/{ds}", body={"data": rows[i:i + 10_000]})
    new = edited(rows)
    return rows, new, write_jsonl(tmp_path / "rows.jsonl", new)

@pytest.mark.parametrize("key", [KEY, None])
def test_one_percent_changed_reads_about_the_changed_buckets(srv, client, make_dataset, tmp_path, key):
    ds = make_dataset(key=key)
    rows, new, path = uploaded_and_edited(client, ds, tmp_path)
    _COUNTS.clear()
    srv.reset_stats()
    change = plan_data(client, ds, N, FIELDS, key, source(path, key), prune=True, source=str(path))
    stats = srv.stats()

    assert (change.add, change.change, change.remove) == expected_counts(rows, new, key)
    assert change.unchanged == len(new) - change.add - change.change
    # the remote: a fraction of the rows, in a handful of calls, none of them a write
    assert change.remote_rows_read <= 0.15 * N, change.remote_rows_read
    assert stats["writes"] == 0
    assert stats["by_path"].get("POST /datasets/{dataset_id}/digest/rows", 0) >= 1
    assert stats["total"] <= 12, stats["by_path"]
    # the local side: one checked pass (the summary), then only the differing buckets' rows
    assert _COUNTS["checked_passes"] == 1 and _COUNTS["unchecked_passes"] == 0, _COUNTS
    assert change.change + change.add <= _COUNTS["rows_read_at"] <= 0.15 * len(new), _COUNTS

    report = apply_data(client, ds, change, FIELDS, key, source(path, key), prune=True)
    assert (report.added, report.changed, report.removed) == (change.add, change.change, change.remove)
    again = plan_data(client, ds, len(new), FIELDS, key, source(path, key), prune=True, source=str(path))
    assert (again.add, again.change, again.remove, again.unchanged) == (0, 0, 0, len(new))



def test_a_plan_from_the_cached_summary_reads_only_the_changed_buckets_rows(srv, client, make_dataset, tmp_path, monkeypatch):
    """`hlops plan` then `hlops apply` (two processes): the second takes the summary from the
    disk cache, which keeps each row's key point too, so its second pass against a remote
    that differs still reads only the differing buckets' rows (it read every row before)."""
    from hlops.data import cache, summary as summary_mod

    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)  # the test's file is brand new
    ds = make_dataset(key=KEY)
    rows, new, path = uploaded_and_edited(client, ds, tmp_path)
    home = tmp_path / "cache"
    plans, counted = [], []
    for _ in range(2):
        summary_mod._RECENT.clear()  # a new process: only the disk cache is left
        _COUNTS.clear()
        plans.append(plan_data(client, ds, N, FIELDS, KEY, source(path, KEY), prune=True,
                               source=str(path), cache_dir=home))
        counted.append(dict(_COUNTS))
    first, second = plans
    assert (second.add, second.change, second.remove) == (first.add, first.change, first.remove) \
        == expected_counts(rows, new, KEY)
    assert counted[0]["checked_passes"] == 1
    assert counted[1].get("checked_passes", 0) == 0, counted[1]  # the summary: from the cache
    assert counted[1].get("unchecked_passes", 0) == 0, counted[1]  # no full second pass
    assert 0 < counted[1]["rows_read_at"] <= 0.15 * len(new), counted[1]

# ---------------------------------------------------------------- the selective pass, no server


def awkward_file(path: Path, rows: list[dict]) -> Path:
    """The rows as JSONL with a BOM, blank and whitespace-only lines between them."""
    import orjson

    lines = [b"\xef\xbb\xbf" + orjson.dumps(rows[0]) + b"\n"]
    for i, r in enumerate(rows[1:], 1):
        if i % 50 == 0:
            lines.append(b"\n" if i % 100 else b"  \t\r\n")
        lines.append(orjson.dumps(r) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize("key", [KEY, None])
def test_the_selective_pass_equals_the_full_one(tmp_path, key):
    rows = make_rows(3000)
    for i, r in enumerate(rows):  # the normaliser's every way: a row as it is, a key to turn
        if i % 2:                 # into text (an integer), a field left out
            r["external_id"] = f"t-{r['external_id']}"
        if i % 7 == 0:
            del r["sentiment"]
    if key is None:
        rows += rows[:200]  # keyless: repeated rows are legal
    path = awkward_file(tmp_path / "rows.jsonl", rows)
    file = CountingFile(str(path), FIELDS, key, {}, "rows.jsonl")
    summary = summarise(file, key, "rows.jsonl")
    assert summary.points is not None and len(summary.points) == len(rows)
    rnd = np.random.default_rng(7)
    shares = (0.0, 0.01, 0.3, 1.0)
    _COUNTS.clear()
    for share in shares:
        wanted = rnd.random(65536) < share
        examples_from = rnd.random(65536) < 0.5
        full = collect(file, key, wanted, examples_from, 5)
        selected = collect(file, key, wanted, examples_from, 5, summary.points)
        assert selected == full
    assert _COUNTS["unchecked_passes"] == len(shares)  # the full passes only


def test_a_file_edited_after_its_summary_is_read_whole(tmp_path):
    rows = make_rows(2000)
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    file = CountingFile(str(path), FIELDS, KEY, {}, "rows.jsonl")
    summary = summarise(file, KEY, "rows.jsonl")
    rows[10] = dict(rows[10], external_id="another key")  # same ordinal, another key point
    write_jsonl(path, rows)
    wanted = np.ones(65536, bool)
    _COUNTS.clear()
    got, _ = collect(file, KEY, wanted, points=summary.points)
    assert _COUNTS["unchecked_passes"] == 1  # the fallback: every row, read again
    assert got == collect(file, KEY, wanted)[0] and "another key" in got


def test_prune_of_buckets_only_the_remote_has(srv, client, make_dataset, tmp_path):
    """Every bucket local-empty (the file lost its rows): the ids to remove come in 10,000-row
    pages of the many-bucket call, not one request per bucket."""
    ds = make_dataset(key=KEY)
    rows = make_rows(12_000)
    for i in range(0, len(rows), 10_000):
        client.request("PUT", f"/datasets/{ds}", body={"data": rows[i:i + 10_000]})
    path = write_jsonl(tmp_path / "rows.jsonl", [])
    srv.reset_stats()
    change = plan_data(client, ds, len(rows), FIELDS, KEY, source(path, KEY), prune=True, source=str(path))
    stats = srv.stats()
    assert (change.add, change.change, change.remove) == (0, 0, len(rows))
    assert stats["by_path"].get("POST /datasets/{dataset_id}/digest/rows", 0) >= 2  # measured, then read
    assert stats["total"] <= 8 and stats["writes"] == 0, stats["by_path"]
    report = apply_data(client, ds, change, FIELDS, KEY, source(path, KEY), prune=True)
    assert report.removed == len(rows)
    assert client.request("GET", f"/datasets/{ds}")["datapoint_count"] == 0
