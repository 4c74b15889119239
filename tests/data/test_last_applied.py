"""The last-applied record (hlops/data/applied.py) against the real reference server: a
fresh clone's no-op plan reads no row; anything that is not exactly what was applied falls
back to the full comparison, which finds the change."""

from __future__ import annotations

import os
import shutil
import sqlite3

import orjson
import pytest

import hlops.api as hl
from hlops.data import cache
from hlops.providers.humanloop.data import applied, apply_data, plan_data
from hlops.data.summary import _RECENT
from hlops.datafile import CheckedFile
from hlops.errors import ApiError, ManifestError
from hlops.providers.humanloop.kinds import DATASET

from dp_helpers import FIELDS, make_rows, write_jsonl

KEY = "external_id"


@pytest.fixture(autouse=True)
def not_racy(monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)  # files written by a test are brand new


class Counted:
    """A data file's checked rows (what `hlops plan` reads), counting the passes made."""

    def __init__(self, path, fields=FIELDS, key=KEY):
        self.file = CheckedFile(str(path), dict(fields), key, {}, str(path))
        self.passes = 0

    def __call__(self):
        self.passes += 1
        return self.file()

    def unchecked(self):
        self.passes += 1
        return self.file.unchecked()


def record_of(client, ds):
    return client.request("GET", f"/datasets/{ds}")["last_applied"]


def plan(client, ds, path, *, fields=FIELDS, key=KEY, prune=False, cache_dir=None, record=True):
    """A plan as a fresh process makes it (nothing of this one's summaries kept)."""
    _RECENT.clear()
    rows = Counted(path, fields, key)
    raw = client.request("GET", f"/datasets/{ds}")
    change = plan_data(client, ds, raw["datapoint_count"], fields, key, rows, prune=prune,
                       source=str(path), cache_dir=cache_dir,
                       last_applied=raw["last_applied"] if record else None)
    return change, rows


def apply(client, ds, change, path, *, fields=FIELDS, key=KEY, prune=False):
    return apply_data(client, ds, change, fields, key, Counted(path, fields, key), prune=prune)


def first_apply(client, ds, path, **kw):
    change, _ = plan(client, ds, path, **kw)
    report = apply(client, ds, change, path, **{k: v for k, v in kw.items() if k != "cache_dir"})
    assert report.added == change.local_rows
    return change


def test_record_makes_a_noop_plan_read_no_row(client, make_dataset, tmp_path):
    ds = make_dataset()
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(3000))
    first = first_apply(client, ds, path)
    rec = record_of(client, ds)
    assert rec["rows"] == 3000 and rec["fingerprint"] == first.fingerprint
    assert set(rec) == {"format", "signature", "source_sha256", "fingerprint", "rows", "buckets", "digest", "root",
                        "index", "sample"}
    assert rec["index"] == 0  # a small file: no index (hlops.providers.humanloop.data.delta.MIN_BYTES)
    assert rec["sample"] == cache.sampled_hash(path)
    before = client.request("GET", f"/datasets/{ds}")["version"]

    change, rows = plan(client, ds, path)
    assert rows.passes == 0 and change.decided_by == "last_applied"
    assert not change.has_changes and change.remote_rows_read == 0 and change.unchanged == 3000
    slow, slow_rows = plan(client, ds, path, record=False)
    assert slow_rows.passes >= 1 and slow.decided_by == "digest"
    assert slow.fingerprint == change.fingerprint and slow.local_rows == change.local_rows
    writes = client.calls.writes
    assert apply(client, ds, change, path).rows == 0 and client.calls.writes == writes
    assert client.request("GET", f"/datasets/{ds}")["version"] == before  # the note bumps nothing

    os.utime(path)  # touched, same bytes (a fresh checkout)
    again, rows = plan(client, ds, path)
    assert rows.passes == 0 and again.decided_by == "last_applied"


def test_an_edited_row_is_found_and_the_next_apply_notes_it(client, make_dataset, tmp_path):
    ds = make_dataset()
    rows = make_rows(2000)
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first_apply(client, ds, path)
    rows[700]["text"] += " (edited)"
    write_jsonl(path, rows)
    change, read = plan(client, ds, path)
    assert read.passes >= 1 and change.decided_by == "digest"
    assert (change.add, change.change, change.remove) == (0, 1, 0)
    assert apply(client, ds, change, path).changed == 1
    after, read = plan(client, ds, path)
    assert read.passes == 0 and after.decided_by == "last_applied" and not after.has_changes


def test_a_datapoint_changed_through_the_api_is_found(client, make_dataset, tmp_path):
    ds = make_dataset()
    rows = make_rows(1500)
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first_apply(client, ds, path)
    item = next(iter(client.paginate(f"/datasets/{ds}/datapoints", limit=1)))
    data = {**item["data"], "text": "changed in the web app"}
    client.request("PATCH", f"/datasets/{ds}/datapoints", body={"data": [{"id": item["id"], "data": data}]})
    change, read = plan(client, ds, path)
    assert read.passes >= 1 and change.decided_by == "digest" and change.change == 1


def test_another_field_type_is_another_signature(client, make_dataset, tmp_path):
    ds = make_dataset()
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(500))
    first_apply(client, ds, path)
    retyped = {**FIELDS, "sentiment": "text"}
    change, read = plan(client, ds, path, fields=retyped)
    assert read.passes >= 1 and change.decided_by == "digest" and not change.has_changes


def test_no_record_after_a_crash_before_it_falls_back_and_converges(client, make_dataset, tmp_path):
    """Every batch written, the process gone before the note (R1 kills there too): the
    dataset has no record, plans compare rows, and a re-apply has nothing to write."""
    ds = make_dataset()
    rows = make_rows(1200)
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    for i in range(0, len(rows), 500):  # the batches of an apply, and nothing after them
        client.request("PUT", f"/datasets/{ds}", body={"data": rows[i:i + 500]})
    assert record_of(client, ds) is None
    change, read = plan(client, ds, path)
    assert read.passes >= 1 and change.decided_by == "digest" and not change.has_changes
    writes = client.calls.writes
    assert apply(client, ds, change, path).rows == 0 and client.calls.writes == writes


def test_a_stale_record_is_not_trusted(client, make_dataset, tmp_path):
    ds = make_dataset()
    rows = make_rows(800)
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first_apply(client, ds, path)
    rec = record_of(client, ds)
    other = write_jsonl(tmp_path / "e.jsonl", make_rows(800, seed=3))  # other bytes
    change, read = plan(client, ds, other)
    assert read.passes >= 1 and change.decided_by == "digest" and change.change > 0
    for broken in ({**rec, "format": 99}, {**rec, "rows": "800"}, {"x": 1}):
        client.request("PATCH", f"/datasets/{ds}", body={"last_applied": broken})
        change, read = plan(client, ds, path)
        assert read.passes >= 1 and change.decided_by == "digest" and not change.has_changes


def test_keyless_dataset_has_a_record_too(client, make_dataset, tmp_path):
    ds = make_dataset(key=None)
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(900))
    first_apply(client, ds, path, key=None)
    change, read = plan(client, ds, path, key=None)
    assert read.passes == 0 and change.decided_by == "last_applied" and change.unchanged == 900


def test_no_record_while_remote_rows_are_left_alone(client, make_dataset, tmp_path):
    """Without prune_data a remote row not in the file stays: the remote is not the file's
    rows, so no record (the plan must keep counting that row); with prune it goes."""
    ds = make_dataset()
    client.request("PUT", f"/datasets/{ds}", body={"data": make_rows(1, start=90_000)})
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(400))
    first_apply(client, ds, path)
    assert record_of(client, ds) is None
    change, _ = plan(client, ds, path, prune=True)
    assert change.remove == 1 and change.decided_by == "digest"
    apply(client, ds, change, path, prune=True)
    assert record_of(client, ds)["rows"] == 400


def test_engine_fresh_clone_plans_without_reading_the_file(srv, tmp_path, monkeypatch):
    """`hlops apply`, then the cache deleted (a fresh CI clone), then `hlops plan`: no-op,
    decided by the record; the data check read no row either (no summary was made)."""
    from hlops import planner

    monkeypatch.setattr(planner, "CHECK_FIRST_BYTES", 0)  # this small file counts as big
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HLOPS_HOME", str(tmp_path / ".hlops"))
    repo = tmp_path / "repo"
    repo.mkdir()
    write_jsonl(repo / "rows.jsonl", make_rows(2500))
    fields = "".join(f"  {k}: {v}\n" for k, v in FIELDS.items())
    (repo / "dataset.yaml").write_text(f"kind: Dataset\nname: la-fresh\nkey: {KEY}\nfields:\n{fields}data: rows.jsonl\n")
    conn = hl.connect(base_url=srv.url, api_key=srv.api_key)
    cache_dir = tmp_path / ".hlops" / "cache"

    applied = hl.apply(hl.plan(hl.load(repo, check_data=False), conn), conn)
    assert applied.ok and applied.writes >= 3  # create, PUT, the note
    shutil.rmtree(cache_dir)
    result = hl.plan(hl.load(repo, check_data=False), conn)
    (change,) = result.plan.changes
    assert not result.plan.has_changes and change.data.decided_by == "last_applied"
    assert change.data.remote_rows_read == 0 and change.data.local_rows == 2500
    assert not (cache_dir / "data").exists() or not any((cache_dir / "data").iterdir())
    report = hl.apply(result, conn)
    assert report.writes == 0

    hl.save_plan(result.plan, tmp_path / "plan.json")  # a saved plan after the apply is fresh
    saved = hl.read_saved_plan(tmp_path / "plan.json")
    assert saved.changes[0].remote_version == conn.client.request("GET", "/datasets", params={"name": "la-fresh"})["items"][0]["version"]

    broken = (repo / "rows.jsonl").read_bytes() + b'{"external_id": 1, "text": 5.5}\n'
    (repo / "rows.jsonl").write_bytes(broken)  # other bytes: checked again, the problem found
    with pytest.raises(ManifestError):
        hl.plan(hl.load(repo, check_data=False), conn)


def test_server_keeps_the_note_small_and_out_of_the_config(client, make_dataset):
    ds = make_dataset()
    raw = client.request("GET", f"/datasets/{ds}")
    assert raw["last_applied"] is None
    note = {"format": 1, "rows": 3}
    set_ = client.request("PATCH", f"/datasets/{ds}", body={"last_applied": note}, if_match=raw["version"])
    assert set_["last_applied"] == note and set_["version"] == raw["version"]
    assert set_["updated_at"] == raw["updated_at"]
    listed = [d for d in client.paginate("/datasets") if d["id"] == ds]
    assert listed[0]["last_applied"] == note
    assert DATASET.actual(set_) == DATASET.actual(raw)  # not part of what a plan compares
    for bad in ({"blob": "x" * 5000}, [1, 2], "text"):
        with pytest.raises(ApiError) as exc:
            client.request("PATCH", f"/datasets/{ds}", body={"last_applied": bad})
        assert exc.value.status == 422
    cleared = client.request("PATCH", f"/datasets/{ds}", body={"last_applied": None})
    assert cleared["last_applied"] is None


def test_an_old_database_file_gets_the_column(tmp_path):
    from hlops.server.sqlite_store import SqliteStore
    from hlops.server.store import Page

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "INSERT INTO orgs VALUES (1, 'o');"
        "CREATE TABLE datasets (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES orgs(id),"
        " name TEXT NOT NULL, description TEXT, key_field TEXT, datapoint_count INTEGER NOT NULL DEFAULT 0,"
        " version INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " UNIQUE (org_id, name));"
        "INSERT INTO datasets(org_id, name, created_at, updated_at) VALUES (1, 'old', 't', 't');"
    )
    con.commit()
    con.close()
    store = SqliteStore(db)
    try:
        (ds,) = store.list_datasets(1, None, Page(None, 10))["items"]
        assert ds["name"] == "old" and ds["last_applied"] is None
        out = store.patch_dataset(1, ds["id"], {"last_applied": {"rows": 1}}, None, None)
        assert out["last_applied"] == {"rows": 1} and out["version"] == 1
    finally:
        store.close()


def test_prune_and_show_data_keep_the_fast_way(client, make_dataset, tmp_path):
    ds = make_dataset()
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(600))
    first_apply(client, ds, path)
    change, read = plan(client, ds, path, prune=True)
    assert read.passes == 0 and change.decided_by == "last_applied" and change.remove == 0
    rows = Counted(path)
    raw = client.request("GET", f"/datasets/{ds}")
    shown = plan_data(client, ds, 600, FIELDS, KEY, rows, prune=False, show_data=True,
                      source=str(path), last_applied=raw["last_applied"])
    assert rows.passes == 0 and shown.examples == {} and not shown.has_changes


def test_a_broken_big_file_is_reported_when_the_remote_cannot_be_read(tmp_path, monkeypatch):
    from hlops import planner
    from hlops.providers.humanloop.client import ClientOptions

    monkeypatch.setattr(planner, "CHECK_FIRST_BYTES", 0)  # checked after the remote read
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "rows.jsonl").write_text('{"external_id": "a", "text": 1.5, "sentiment": "x"}\n')
    fields = "".join(f"  {k}: {v}\n" for k, v in FIELDS.items())
    (repo / "dataset.yaml").write_text(f"kind: Dataset\nname: la-broken\nkey: {KEY}\nfields:\n{fields}data: rows.jsonl\n")
    conn = hl.connect(base_url="http://127.0.0.1:9", api_key="k", options=ClientOptions(retries=0))
    with pytest.raises(ManifestError):
        hl.plan(hl.load(repo, check_data=False), conn, cache_dir=tmp_path / "cache")


def test_a_file_written_just_before_the_apply_gets_its_record(client, make_dataset, tmp_path, monkeypatch):
    """R2's root cause: a racy data file (changed too shortly before it was read for its stat
    to be trusted) got no record, so an apply's calls (the digest read and the PATCH of the
    record) depended on the file's age, and a storm's apply made more calls than the
    fault-free one it was compared with. Now the racy file's rows are read again instead."""
    monkeypatch.setattr(cache, "RACY_SECONDS", 3600.0)  # every file here is racy
    ds = make_dataset()
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(500))
    change, _ = plan(client, ds, path)
    rows = Counted(path)
    report = apply_data(client, ds, change, FIELDS, KEY, rows, prune=False)
    assert report.added == 500
    rec = record_of(client, ds)
    assert rec is not None and rec["rows"] == 500 and rec["fingerprint"] == change.fingerprint
    assert rows.passes == 2  # the upload's pass, and the racy file's check
    again, again_rows = plan(client, ds, path)
    assert again.decided_by == "last_applied" and again_rows.passes == 0


class CountedFile(Counted):
    """:class:`Counted` that a streamed apply takes (it reads the file's own pass)."""

    def checked_file(self):
        return self.file


def test_a_streamed_apply_of_a_file_written_just_before_reads_it_once(client, make_dataset, tmp_path, monkeypatch):
    """A streamed apply hashes the bytes its pass reads: a racy file gets its record without
    being read again (before: a second checked pass of every row and a second read for the
    SHA-256), and the record holds the SHA-256 of the file's bytes."""
    from hlops.providers.humanloop.data.streamed import apply_streamed

    monkeypatch.setattr(cache, "RACY_SECONDS", 3600.0)  # every file here is racy
    reads = []
    real = cache.content_hash
    monkeypatch.setattr(cache, "content_hash", lambda p: reads.append(p) or real(p))
    monkeypatch.setattr(applied, "content_hash", cache.content_hash)
    ds = make_dataset()
    rows = make_rows(3000)
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(orjson.dumps(r) + (b"\n\n" if i % 97 == 0 else b"\n")
                                                for i, r in enumerate(rows)).rstrip(b"\n"))  # BOM, blanks, no final newline
    counted = CountedFile(path)
    report = apply_streamed(client, ds, KEY, FIELDS, counted, str(path), parallelism=2, progress=None,
                            cache_dir=tmp_path / "cache")
    assert report is not None and report.added == 3000
    assert counted.passes == 0 and reads == []  # no second pass, no second read
    rec = record_of(client, ds)
    assert rec is not None and rec["rows"] == 3000 and rec["source_sha256"] == real(path)
    again, again_rows = plan(client, ds, path)
    assert again.decided_by == "last_applied" and again_rows.passes == 0
    path.write_bytes(path.read_bytes().replace(b"ticket 7:", b"ticket 8:", 1))  # same size, other bytes
    edited, _ = plan(client, ds, path)
    assert edited.decided_by != "last_applied" and edited.change == 1


def test_the_bytes_hash_is_the_files_and_only_once_read_to_the_end(tmp_path):
    from hlops.datareaders import RowReader

    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}\n\n  \n{"a": 2}')
    reader = RowReader(path)
    reader.hash_bytes = True
    assert reader.bytes_sha256() is None
    assert [row for _, row in reader] == [{"a": 1}, {"a": 2}]
    assert reader.bytes_sha256() == cache.content_hash(path)
    array = tmp_path / "array.jsonl"  # a JSON array named .jsonl: the reader stops at line 1
    array.write_bytes(b"[\n" + b"".join(b'{"a": %d},\n' % i for i in range(200_000)) + b"]\n")
    reader = RowReader(array)
    reader.hash_bytes = True
    assert list(reader) == [] and reader.problems and reader.bytes_sha256() is None


def test_a_racy_file_whose_rows_differ_gets_no_record(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(10))
    state = cache.file_state(path)
    assert applied._verified_sha256(path, state, "f" * 64, lambda: "f" * 64) == (cache.content_hash(path), state)
    assert applied._verified_sha256(path, state, "f" * 64, lambda: "0" * 64) is None
    path.write_text(path.read_text() + '{"external_id": "x", "text": "y"}\n')
    assert applied._verified_sha256(path, state, "f" * 64, lambda: "f" * 64) is None


def test_proven_version_accounts_for_the_put_answers():
    """A streamed apply's record without a digest read (applied.proven_version, pure): proven
    only when the answers' versions are v0+1..v0+k and their counts add up to the rows sent;
    anything else (another server's answers without a version, a version taken by another
    writer, a count that does not add up, rows not all sent) proves nothing."""
    proven = applied.proven_version
    answers = [(10_000, 2, 10_000), (10_000, 3, 20_000), (5_000, 4, 25_000)]
    assert proven(1, answers, 25_000) == 4
    assert proven(1, answers[::-1], 25_000) == 4  # answers arrive in any order (2 in flight)
    assert proven(1, [], 0) == 1  # an empty file: nothing sent, the empty read's version
    assert proven(1, [], 5) is None
    assert proven(None, answers, 25_000) is None  # the digest read had no version
    assert proven(1, [(10_000, None, None), *answers[1:]], 25_000) is None  # an answer without
    assert proven(1, [(10_000, 2, 10_000), (10_000, 3, 20_000), (5_000, 4, "25000")], 25_000) is None
    assert proven(True, answers, 25_000) is None and proven(1, [(10_000, True, 10_000)], 10_000) is None
    gap = [(10_000, 2, 10_000), (10_000, 4, 20_001), (5_000, 5, 25_001)]  # another write took 3
    assert proven(1, gap, 25_000) is None
    assert proven(1, [(10_000, 2, 10_000), (10_000, 4, 20_000), (5_000, 5, 25_000)], 25_000) is None
    assert proven(1, [(10_000, 2, 10_000), (10_000, 2, 10_000)], 20_000) is None  # a repeat
    assert proven(1, [(10_000, 2, 10_000), (10_000, 3, 20_001)], 20_000) is None  # a row more
    assert proven(1, answers, 30_000) is None  # not every row of the file was sent
    assert proven(1, [(0, 2, 0)], 0) is None  # an empty batch bumps no version


def test_other_samples_tell_an_edited_file_without_hashing_all_of_it(client, make_dataset, tmp_path, monkeypatch):
    """The record's ``sample`` (1 MiB of the file's bytes, spread over it): an edit inside a
    sample shows without the full SHA-256; one between samples is told by the full hash."""
    ds = make_dataset()
    rows = make_rows(30_000)  # ~3.5 MB: 16 samples of 64 KiB do not cover it
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first_apply(client, ds, path)
    raw = client.request("GET", f"/datasets/{ds}")["last_applied"]
    sig = applied.Record.from_json(raw).signature
    full = []
    monkeypatch.setattr(applied, "hashed_content", lambda p: full.append(p) or cache.hashed_content(p))
    assert applied.matching(raw, sig, path) is not None and len(full) == 1
    data = path.read_bytes()
    size = len(data)
    step = (size - cache.SAMPLE_BYTES) // (cache.SAMPLES - 1)
    inside, between = step * 3 + 10, step * 3 + cache.SAMPLE_BYTES + 10
    for at, hashed in ((inside, 1), (between, 2)):
        edited = bytearray(data)
        edited[at] = ord("x") if edited[at] != ord("x") else ord("y")
        path.write_bytes(bytes(edited))
        assert applied.matching(raw, sig, path) is None
        assert len(full) == hashed, at  # inside a sample: no full hash; between: one more
