"""Pure comparison: bucket categories, the level choice, rows by key and by hash."""

from __future__ import annotations

import numpy as np

from hlops.data import compare as cmp
from hlops.data.compare import ADD_ALL, EQUAL, MIXED, REMOTE_ONLY, RowDiff
from hlops.data.local import FINE, LocalRow


def _h(i: int) -> bytes:
    return bytes([i]) * 32


def test_coarse_level():
    assert cmp.coarse_level(0) == 1
    assert cmp.coarse_level(1000) == 1
    assert cmp.coarse_level(1001) == 2
    assert cmp.coarse_level(1_000_000) == 1024
    assert cmp.coarse_level(10**9) == FINE


def test_classify():
    x = np.zeros((5, 32), np.uint8)
    y = x.copy()
    y[4, 0] = 1
    lc = np.array([0, 3, 0, 2, 2])
    rc = np.array([0, 0, 4, 3, 2])
    dup = np.zeros(5, bool)
    cat = cmp.classify(lc, x, dup, rc, y)
    assert cat.tolist() == [EQUAL, ADD_ALL, REMOTE_ONLY, MIXED, MIXED]
    same = cmp.classify(lc[[0, 4]], x[[0, 4]], dup[[0, 4]], rc[[0, 4]], x[[0, 4]])
    assert same.tolist() == [EQUAL, EQUAL]
    # duplicates XOR away in pairs: a bucket holding them is compared row by row
    assert cmp.classify(lc[[4]], x[[4]], np.array([True]), rc[[4]], x[[4]]).tolist() == [MIXED]


def test_expand_maps_fine_buckets_to_their_coarse_bucket():
    cat = np.array([0, 1, 2, 3], np.int8)
    fine = cmp.expand(cat)
    assert len(fine) == FINE
    assert all(fine[f] == cat[f % 4] for f in (0, 1, 2, 3, 4, 65535, 1234))


def _spread(n: int, per: int, mixed_share: float):
    counts = np.full(n, per)
    cat = np.full(n, EQUAL, np.int8)
    cat[: int(n * mixed_share)] = MIXED
    return cat, counts, counts.copy()


def test_a_small_change_spread_everywhere_probes_then_narrows():
    # 1M rows in 1024 buckets, 1% changed: every coarse bucket differs -> a probe digest
    cat, lc, rc = _spread(1024, 977, 1.0)
    step = cmp.next_step(1024, cat, lc, rc)
    assert (step.kind, step.buckets) == ("refine", 1024 * cmp.PROBE_FACTOR)
    # at 16,384 buckets (61 rows each), 10k changes touch ~46% of them: with a server
    # that finds a bucket in a millisecond, go finer still
    cat, lc, rc = _spread(16384, 61, 0.46)
    step = cmp.next_step(16384, cat, lc, rc, cmp.Costs(latency=0.001))
    assert step.kind == "refine" and step.buckets == FINE


def test_a_few_changes_read_about_as_many_rows():
    cat, lc, rc = _spread(1024, 977, 3 / 1024)
    step = cmp.next_step(1024, cat, lc, rc)
    assert step.kind in ("fetch", "refine") and step.estimated < 3 * 977 * cmp.ROW_SECONDS * 1.5


def test_slow_requests_favour_one_listing():
    # every request waits 45 ms (e.g. a server with Nagle's delay on small answers)
    cat, lc, rc = _spread(16384, 61, 0.46)
    slow = cmp.Costs(latency=0.045)
    assert cmp.next_step(16384, cat, lc, rc, slow).kind == "listing"


def test_most_rows_changed_reads_every_row_once():
    cat, lc, rc = _spread(512, 39, 1.0)  # 20k rows, every bucket differs at 512 buckets
    step = cmp.next_step(512, cat, lc, rc)
    assert step.kind in ("refine", "listing")
    cat, lc, rc = _spread(8192, 2, 0.8)
    assert cmp.next_step(8192, cat, lc, rc).kind == "listing"


def test_tiny_dataset_is_fetched_whole():
    cat = np.array([MIXED], np.int8)
    assert cmp.next_step(1, cat, np.array([5]), np.array([4])).kind == "fetch"


def _row(ordinal: int, digest: bytes) -> LocalRow:
    return LocalRow(ordinal, ordinal + 1, 1000 + ordinal, 10 + ordinal, digest)


def test_compare_keyed():
    local = {"a": _row(0, _h(1)), "b": _row(1, _h(2)), "c": _row(2, _h(3))}
    remote = [(10, "a", _h(1).hex(), 0), (11, "b", _h(9).hex(), 2), (12, "z", _h(7).hex(), 1),
              (13, "y", _h(8).hex(), 0)]
    d = RowDiff(n_examples=5)
    cmp.compare_keyed(dict(local), remote, False, d)
    assert d.unchanged == 1 and list(d.change_id) == [11] and list(d.change_ordinal) == [1]
    assert list(d.add_ordinal) == [2] and d.add_size == 12
    assert d.unmatched == 2 and not d.remove_id
    d = RowDiff(n_examples=5)
    cmp.compare_keyed(dict(local), remote, True, d)
    assert sorted(d.remove_id) == [12, 13] and d.remove_annotated == 1 and d.unmatched == 0
    assert d.examples == {"add": ["c"], "change": ["b"], "remove": ["z", "y"]}


def test_compare_keyed_duplicate_remote_key_matches_once():
    d = RowDiff()
    cmp.compare_keyed({"a": _row(0, _h(1))}, [(5, "a", _h(1).hex(), 0), (3, "a", _h(2).hex(), 0)], True, d)
    assert list(d.change_id) == [3] and list(d.remove_id) == [5]


def test_compare_keyless_multisets():
    h1, h2, h3 = _h(1).hex(), _h(2).hex(), _h(3).hex()
    local = {h1: [_row(0, _h(1)), _row(3, _h(1)), _row(5, _h(1))], h2: [_row(1, _h(2))]}
    remote = [(1, h1, h1, 0), (2, h2, h2, 0), (3, h2, h2, 4), (4, h2, h2, 0), (5, h3, h3, 0)]
    d = RowDiff()
    cmp.compare_keyless({k: list(v) for k, v in local.items()}, remote, True, d)
    # h1: 3 local, 1 remote -> 2 adds (the later copies); h2: 1 local, 3 remote -> 2 removed,
    # the annotated copy kept; h3: remote only -> removed
    assert d.unchanged == 2
    assert list(d.add_ordinal) == [3, 5]
    assert sorted(d.remove_id) == [2, 4, 5] and d.remove_annotated == 0
    assert not d.change_id
    d = RowDiff()
    cmp.compare_keyless({k: list(v) for k, v in local.items()}, remote, False, d)
    assert d.unmatched == 3 and not d.remove_id
