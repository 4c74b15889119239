"""The local summary: hashes, folds, duplicate keys, the cache. Pure: no server."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from hlops import canonical
from hlops.data import cache as cache_mod
from hlops.data.cache import SummaryCache, signature
from hlops.data.local import FINE, collect, row_digest, summarise
from hlops.errors import ManifestError

from dp_helpers import FIELDS, jsonl_source, list_source, make_rows, write_jsonl


def test_row_digest_is_the_canonical_hash():
    rows = make_rows(50) + [{"text": "é ü 日本", "external_id": "x"}, {"sentiment": "a"}]
    for r in rows:
        norm = canonical.normalise_row(r, FIELDS)
        cj, digest = row_digest(norm)
        assert cj == canonical.canonical_json(norm)
        assert digest.hex() == canonical.row_hash(norm)


@pytest.mark.parametrize("rows_n", [3000, 5000], ids=["small-chunk", "bincount"])  # scan.SMALL_CHUNK
@pytest.mark.parametrize("key", ["external_id", None])
def test_fold_equals_the_digest_definition(key, rows_n):
    rows = make_rows(rows_n)
    summary = summarise(list_source(rows), key, "x.jsonl")
    assert summary.count == rows_n
    for n in (1, 2, 64, 1024, FINE):
        counts, xor, nbytes, _dup = summary.fold(n)
        want_counts = np.zeros(n, np.int64)
        want_bytes = np.zeros(n, np.int64)
        want_hashes: dict[int, list[str]] = {}
        for r in rows:
            norm = canonical.normalise_row(r, FIELDS)
            h = canonical.row_hash(norm)
            b = canonical.bucket_of(canonical.key_text(norm, key, h), n)
            want_counts[b] += 1
            want_bytes[b] += len(canonical.canonical_json(norm))
            want_hashes.setdefault(b, []).append(h)
        assert (counts == want_counts).all()
        assert (nbytes == want_bytes).all()
        for b, hs in want_hashes.items():
            assert xor[b].tobytes().hex() == canonical.xor_hashes(hs)


def test_fingerprint_follows_order_and_content():
    rows = make_rows(10)
    a = summarise(list_source(rows), "external_id", "x").fingerprint
    b = summarise(list_source(rows[::-1]), "external_id", "x").fingerprint
    edited = [dict(r) for r in rows]
    edited[3]["text"] = "other"
    c = summarise(list_source(edited), "external_id", "x").fingerprint
    assert len({a, b, c}) == 3
    assert a == summarise(list_source(rows), "external_id", "x").fingerprint


def test_duplicate_keys_are_located_without_their_value(tmp_path):
    rows = make_rows(20)
    rows.insert(7, {"external_id": 3, "text": "SECRET-CANARY", "sentiment": "neutral"})
    rows.append({"external_id": "12", "text": "SECRET-CANARY 2", "sentiment": "neutral"})  # "12" == 12
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(ManifestError) as err:
        summarise(jsonl_source(path), "external_id", "d.jsonl")
    problems = err.value.problems
    assert [(p.line, "line 4" in p.message or "line 14" in p.message) for p in problems] == [(8, True), (22, True)]
    assert "SECRET" not in str(err.value) and "'3'" not in str(err.value)


def test_rows_without_a_key_value_are_located():
    rows = make_rows(5)
    rows[2] = {"text": "no id", "sentiment": "neutral"}
    with pytest.raises(ManifestError) as err:
        summarise(list_source(rows), "external_id", "inline data")
    assert [p.line for p in err.value.problems] == [3]


def test_keyless_duplicates_are_legal_and_marked():
    rows = make_rows(5) + make_rows(1)
    s = summarise(list_source(rows), None, "x")
    assert s.count == 6
    assert s.dup.sum() == 1


def test_collect_keeps_only_wanted_buckets():
    rows = make_rows(2000)
    s = summarise(list_source(rows), "external_id", "x")
    wanted = np.zeros(FINE, bool)
    wanted[: FINE // 4] = True
    got, _ = collect(list_source(rows), "external_id", wanted)
    expected = {
        str(r["external_id"]) for r in rows
        if canonical.key_point(str(r["external_id"])) % FINE < FINE // 4
    }
    assert set(got) == expected
    assert int(s.counts[wanted].sum()) == len(expected)
    assert all(got[k].ordinal == int(k) for k in got)


def _age(path, seconds=10):
    """Files written by a test are 'racy' (too fresh to cache); the cache is tested on a
    copy whose timestamps are in the past, as the files of a real repository are."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", 0.0)  # ctime is always 'now' here
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(100))
    sig = signature(FIELDS, "external_id")
    cache = SummaryCache(tmp_path / "cache")
    assert cache.load(path, sig) is None
    started = time.time() + 1
    before = cache_mod.file_state(path)
    s = summarise(jsonl_source(path), "external_id", "d")
    assert cache.save(path, sig, before, s, started)
    hit = cache.load(path, sig)
    assert hit is not None and hit.fingerprint == s.fingerprint and hit.count == 100
    assert (hit.counts == s.counts).all() and (hit.xor == s.xor).all() and (hit.nbytes == s.nbytes).all()
    # other fields or key: another entry
    assert cache.load(path, signature(FIELDS, None)) is None
    assert cache.load(path, signature({**FIELDS, "extra": "text"}, "external_id")) is None
    # an edit of the same size, with the mtime put back: ctime still differs
    st = os.stat(path)
    data = path.read_bytes().replace(b"ticket 5:", b"ticket 6:", 1)
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.load(path, sig) is None


def test_cache_refuses_a_racy_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(10))
    sig = signature(FIELDS, "external_id")
    cache = SummaryCache(tmp_path / "cache")
    before = cache_mod.file_state(path)
    s = summarise(jsonl_source(path), "external_id", "d")
    assert not cache.save(path, sig, before, s, time.time())  # written just now: not cached
    assert cache.load(path, sig) is None


def test_cache_holds_no_row_content(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", 0.0)
    rows = make_rows(30)
    rows[5]["text"] = "SECRET-CANARY-TEXT"
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cache = SummaryCache(tmp_path / "cache")
    s = summarise(jsonl_source(path), "external_id", "d")
    assert cache.save(path, signature(FIELDS, "external_id"), cache_mod.file_state(path), s, time.time() + 1)
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert b"SECRET-CANARY" not in blob and b"ticket 5" not in blob


def test_cache_second_tier_same_bytes_new_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", 0.0)
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(100))
    sig = signature(FIELDS, "external_id")
    cache = SummaryCache(tmp_path / "cache")
    s = summarise(jsonl_source(path), "external_id", "d")
    assert cache.save(path, sig, cache_mod.file_state(path), s, time.time() + 1)
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)  # a fresh checkout: new inode, mtime and ctime, same bytes
    hit = cache.load(path, sig)
    assert hit is not None and hit.fingerprint == s.fingerprint
    path.write_bytes(data.replace(b"ticket 1:", b"ticket 2:", 1))  # same size, other bytes
    assert cache.load(path, sig) is None


def test_a_small_file_gets_no_summary_on_disk_and_a_big_one_does(tmp_path, monkeypatch):
    from hlops.data import summary as summary_mod

    monkeypatch.setattr(cache_mod, "RACY_SECONDS", 0.0)  # files written by a test are brand new
    summary_mod._RECENT.clear()
    entries = lambda: list((tmp_path / "cache" / "data").glob("*.npz")) if (tmp_path / "cache" / "data").exists() else []  # noqa: E731
    small = write_jsonl(tmp_path / "small.jsonl", make_rows(20))
    assert small.stat().st_size < summary_mod.CACHE_MIN_BYTES
    s1, _state, _at = summary_mod.load_summary(jsonl_source(small), FIELDS, "external_id", str(small), tmp_path / "cache", "small")
    assert s1.count == 20 and entries() == []
    big = write_jsonl(tmp_path / "big.jsonl", make_rows(2000))
    assert big.stat().st_size >= summary_mod.CACHE_MIN_BYTES
    s2, _state, _at = summary_mod.load_summary(jsonl_source(big), FIELDS, "external_id", str(big), tmp_path / "cache", "big")
    assert s2.count == 2000 and len(entries()) == 1
    summary_mod._RECENT.clear()
    again = SummaryCache(tmp_path / "cache").load(big, summary_mod.summary_signature(FIELDS, "external_id", jsonl_source(big)))
    assert again is not None and again.fingerprint == s2.fingerprint


def test_hashed_content_reads_a_file_once_a_process_unless_racy(tmp_path, monkeypatch):
    reads = []
    real = cache_mod.content_hash
    monkeypatch.setattr(cache_mod, "content_hash", lambda p: reads.append(p) or real(p))
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(50))
    fresh = cache_mod.hashed_content(path)  # written just now: racy, so not remembered
    assert fresh is not None and cache_mod.hashed_content(path) == fresh and len(reads) == 2
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", 0.0)  # as a file of a checkout hours old
    aged = cache_mod.hashed_content(path)
    assert aged[0] == fresh[0] and aged[1] == cache_mod.file_state(path)
    assert cache_mod.hashed_content(path) == aged and len(reads) == 3  # remembered by its stat
    # the record check and the cache's save of one plan: one read
    sig = signature(FIELDS, "external_id")
    s = summarise(jsonl_source(path), "external_id", "d")
    assert SummaryCache(tmp_path / "cache").save(path, sig, aged[1], s, time.time())
    assert len(reads) == 3
    # an edit of the same size, the mtime put back: the ctime tells, the file is read again
    st = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b"ticket 5:", b"ticket 6:", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = cache_mod.hashed_content(path)
    assert again[0] != aged[0] and len(reads) == 4
