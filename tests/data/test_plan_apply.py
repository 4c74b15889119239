"""plan_data / apply_data against the real reference server: the counts are right."""

from __future__ import annotations

import orjson
import pytest

from hlops import canonical
from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.data import UploadFailed, apply_data, plan_data
from hlops.errors import StalePlanError
from hlops.plan import DataChange

from dp_helpers import FIELDS, jsonl_source, list_source, make_rows, write_jsonl

KEY = "external_id"


def plan(client, ds, rows, *, key=KEY, prune=False, remote=0, **kw) -> DataChange:
    return plan_data(client, ds, remote, FIELDS, key, list_source(rows), prune=prune, **kw)


def apply(client, ds, change, rows, *, key=KEY, prune=False, **kw):
    return apply_data(client, ds, change, FIELDS, key, list_source(rows), prune=prune, **kw)


def counts(change: DataChange) -> dict:
    return {k: getattr(change, k) for k in ("add", "change", "remove", "unchanged", "unmatched_remote")}


def put_raw(client: Client, ds: int, rows: list[dict]) -> None:
    for i in range(0, len(rows), 10_000):
        client.request("PUT", f"/datasets/{ds}", body={"data": rows[i : i + 10_000]})


def remote_state(client: Client, ds: int, key=KEY) -> dict[str, str]:
    """key -> hash of every remote datapoint (through the digest's row listing)."""
    params = {"key": key} if key else {}
    return {r["key"]: r["hash"] for r in client.paginate(f"/datasets/{ds}/digest", **params)}


def local_state(rows: list[dict], key=KEY) -> dict[str, str]:
    out = {}
    for r in rows:
        norm = canonical.normalise_row(r, FIELDS)
        h = canonical.row_hash(norm)
        out[canonical.key_text(norm, key, h)] = h
    return out


def test_first_apply_then_nothing_to_do(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(2500)
    change = plan(client, ds, rows)
    assert counts(change) == {"add": 2500, "change": 0, "remove": 0, "unchanged": 0, "unmatched_remote": 0}
    events = []
    report = apply(client, ds, change, rows, progress=events.append)
    assert (report.added, report.changed, report.removed, report.calls) == (2500, 0, 0, 1)
    assert report.bytes_sent == change.bytes_to_send
    assert events[-1].rows_done == events[-1].rows_total == 2500 and events[-1].phase == "done"
    assert remote_state(client, ds) == local_state(rows)

    before = client.calls.writes
    again = plan(client, ds, rows, remote=2500)
    assert counts(again) == {"add": 0, "change": 0, "remove": 0, "unchanged": 2500, "unmatched_remote": 0}
    assert not again.has_changes and again.remote_rows_read == 0 and again.calls == 0
    report = apply(client, ds, again, rows)
    assert report.rows == 0 and client.calls.writes == before  # a re-apply writes nothing


def _edit(rows, changed=(), removed=(), added=0, start=100_000):
    out = []
    for i, r in enumerate(rows):
        if i in removed:
            continue
        r = dict(r)
        if i in changed:
            r["text"] = r["text"] + " (edited)"
        out.append(r)
    return out + make_rows(added, start=start)


@pytest.mark.parametrize("prune", [False, True])
def test_adds_changes_and_removals(client, make_dataset, prune):
    ds = make_dataset()
    rows = make_rows(3000)
    put_raw(client, ds, rows)
    new = _edit(rows, changed={1, 50, 2999}, removed={7, 8, 1500, 2000}, added=5)
    change = plan(client, ds, new, prune=prune, remote=3000, show_data=True)
    assert change.add == 5 and change.change == 3
    assert change.unchanged == 3000 - 3 - 4
    assert (change.remove, change.unmatched_remote) == ((4, 0) if prune else (0, 4))
    assert change.remove_annotated == 0
    assert set(change.examples["change"]) == {"1", "50", "2999"}
    assert set(change.examples["add"]) <= {str(i) for i in range(100_000, 100_005)}
    assert ("remove" in change.examples) == prune
    report = apply(client, ds, change, new, prune=prune)
    assert (report.added, report.changed, report.removed) == (5, 3, 4 if prune else 0)
    after = remote_state(client, ds)
    want = local_state(new)
    if not prune:
        want.update({k: h for k, h in local_state(rows).items() if k in {"7", "8", "1500", "2000"}})
    assert after == want
    final = plan(client, ds, new, prune=prune, remote=len(after))
    assert not final.has_changes


def test_remove_annotated_counts_data_loss(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(40)
    put_raw(client, ds, rows)
    dataset = client.request("GET", f"/datasets/{ds}")
    field_ids = {f["name"]: f["id"] for f in dataset["fields"]}
    project = client.request("POST", "/projects", create=True, body={
        "name": f"p-{ds}",
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": field_ids["text"]}]}],
        "outputs": [{"name": "sentiment", "task_type": "classification",
                     "labels": [{"name": "positive"}, {"name": "negative"}, {"name": "neutral"}]}],
    })
    ids = {r["key"]: r["id"] for r in client.paginate(f"/datasets/{ds}/digest", key=KEY)}
    for k in ("3", "4"):
        client.request("POST", f"/projects/{project['id']}/annotations",
                       body={"datapoint_id": ids[k], "output": "sentiment", "value": "positive"})
    new = _edit(rows, removed={3, 4, 5})
    change = plan(client, ds, new, prune=True, remote=40)
    assert (change.remove, change.remove_annotated) == (3, 2)
    kept = plan(client, ds, new, prune=False, remote=40)
    assert (kept.remove, kept.remove_annotated, kept.unmatched_remote) == (0, 0, 3)


def test_keyless_dataset_multisets(client, make_dataset):
    ds = make_dataset(key=None)
    rows = make_rows(30) + make_rows(3)  # rows 0..2 twice: legal without a key
    put_raw(client, ds, rows)
    same = plan(client, ds, rows, key=None, remote=33)
    assert not same.has_changes and same.unchanged == 33 and same.keyless
    assert any("no `key`" in n for n in same.notes)
    # an edit is a remove + add; one duplicate copy dropped; one more copy of row 5
    new = _edit(rows, changed={10}, removed={31}) + [make_rows(6)[5]]
    for prune in (False, True):
        change = plan(client, ds, new, key=None, prune=prune, remote=33)
        assert change.change == 0 and change.add == 2  # the edited row, the extra copy
        assert (change.remove, change.unmatched_remote) == ((2, 0) if prune else (0, 2))
    report = apply(client, ds, change, new, key=None, prune=True)
    assert (report.added, report.removed) == (2, 2)
    assert not plan(client, ds, new, key=None, prune=True, remote=33).has_changes


def test_keyless_duplicates_that_xor_away_are_still_seen(client, make_dataset):
    ds = make_dataset(key=None)
    a, b = make_rows(2)
    put_raw(client, ds, [b, b])
    change = plan(client, ds, [a, a], key=None, prune=True, remote=2)
    assert (change.add, change.remove, change.unchanged) == (2, 2, 0)


def test_resume_after_a_partial_upload(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(24_000)
    put_raw(client, ds, rows[:12_000])  # an upload killed half way
    change = plan(client, ds, rows, remote=12_000)
    assert (change.add, change.unchanged, change.calls) == (12_000, 12_000, 2)
    writes = client.calls.writes
    report = apply(client, ds, change, rows)
    assert report.added == 12_000 and client.calls.writes - writes == 2
    assert remote_state(client, ds) == local_state(rows)


def test_interrupted_apply_then_the_rest(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(35_000)
    change = plan(client, ds, rows)

    class Kill(BaseException):
        pass

    def kill_after_first_batch(event):
        if event.rows_done >= 10_000:
            raise Kill()

    with pytest.raises(Kill):
        apply(client, ds, change, rows, parallelism=1, progress=kill_after_first_batch)
    done = len(remote_state(client, ds))
    assert 10_000 <= done < 35_000
    again = plan(client, ds, rows, remote=done)
    assert again.add == 35_000 - done
    report = apply(client, ds, again, rows)
    assert report.added == 35_000 - done
    assert remote_state(client, ds) == local_state(rows)


def test_failed_batch_stops_and_says_how_many_rows_were_sent(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(30_000)
    rows[29_999]["external_id"] = "CANARY-KEY-29999"
    change = plan(client, ds, rows)
    sneaked = []

    def sneak_in(event):  # someone else writes a key of the last batch meanwhile
        if event.rows_done >= 10_000 and not sneaked:
            client.request("PUT", f"/datasets/{ds}", body={"data": [{**rows[29_999], "text": "other"}]})
            sneaked.append(1)

    with pytest.raises(UploadFailed) as err:
        apply(client, ds, change, rows, parallelism=1, progress=sneak_in)
    assert err.value.rows_sent == 20_000 and err.value.report.added == 20_000
    assert "20,000 of 30,000" in str(err.value) and "CANARY" not in str(err.value)
    again = plan(client, ds, rows, remote=20_001)
    assert (again.add, again.change) == (9_999, 1)
    apply(client, ds, again, rows)
    assert remote_state(client, ds) == local_state(rows)


def test_saved_plan_is_rederived_and_refuses_a_changed_file(client, make_dataset, tmp_path):
    ds = make_dataset()
    rows = make_rows(500)
    put_raw(client, ds, rows[:200])
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    source = jsonl_source(path)
    change = plan_data(client, ds, 200, FIELDS, KEY, source, prune=False, source=str(path))
    saved = DataChange.model_validate(orjson.loads(orjson.dumps(change.model_dump(mode="json"))))
    write_jsonl(path, _edit(rows, changed={450}))
    with pytest.raises(StalePlanError):
        apply_data(client, ds, saved, FIELDS, KEY, source, prune=False)
    with pytest.raises(StalePlanError):  # the in-memory plan notices it too
        apply_data(client, ds, change, FIELDS, KEY, source, prune=False)
    write_jsonl(path, rows)
    report = apply_data(client, ds, saved, FIELDS, KEY, source, prune=False)
    assert report.added == 300 and not report.reused_plan


def test_apply_refuses_to_remove_more_than_planned(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(100)
    put_raw(client, ds, rows)
    change = plan(client, ds, rows[:-1], prune=True, remote=100)
    assert change.remove == 1
    put_raw(client, ds, make_rows(2, start=5000))  # the remote grew since the plan
    with pytest.raises(StalePlanError):
        apply(client, ds, change, rows[:-1], prune=True)


def test_plan_cache_makes_a_repeat_free_and_sees_edits(client, make_dataset, tmp_path, monkeypatch):
    from hlops.data import cache

    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)  # files written by a test are brand new
    ds = make_dataset()
    rows = make_rows(1000)
    put_raw(client, ds, rows)
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    reads = []
    inner = jsonl_source(path)

    def source():
        reads.append(1)
        return inner()

    kw = dict(prune=False, source=str(path), cache_dir=tmp_path / "cache")
    first = plan_data(client, ds, 1000, FIELDS, KEY, source, **kw)
    assert len(reads) == 1 and not first.has_changes
    second = plan_data(client, ds, 1000, FIELDS, KEY, source, **kw)
    assert len(reads) == 1 and second == first  # from the cache: the file is not read
    data = path.read_bytes()
    path.write_bytes(data.replace(b"ticket 10:", b"ticket 11:", 1))  # same size
    third = plan_data(client, ds, 1000, FIELDS, KEY, source, **kw)
    assert len(reads) > 1 and third.change == 1 and third.fingerprint != first.fingerprint


def test_rate_is_remembered_for_the_estimate(client, make_dataset, tmp_path):
    ds = make_dataset()
    rows = make_rows(3000)
    change = plan(client, ds, rows, cache_dir=tmp_path)
    assert change.estimated_seconds is None
    apply(client, ds, change, rows, cache_dir=tmp_path)
    other = make_dataset()
    estimate = plan(client, other, rows, cache_dir=tmp_path).estimated_seconds
    assert estimate is not None and estimate > 0


def _all_adds(diff, rows, key) -> list[int]:
    """Ordinals of every row to add: listed ones and those of remote-empty buckets."""
    out = set(diff.rows.add_ordinal)
    for i, r in enumerate(rows):
        norm = canonical.normalise_row(r, FIELDS)
        k = canonical.key_text(norm, key, canonical.row_hash(norm))
        if diff.add_all[canonical.key_point(k) % 65536]:
            out.add(i)
    assert len(out) == diff.add
    return sorted(out)


@pytest.mark.slow
@pytest.mark.parametrize("key", [KEY, None])
def test_twenty_thousand_rows_through_every_path(client, make_dataset, key):
    """The same diff whichever way the rows are read: narrowed through finer digests,
    fetched bucket by bucket, or in one listing."""
    from hlops.data.compare import Costs
    from hlops.providers.humanloop.data.derive import derive

    ds = make_dataset(key=key)
    rows = make_rows(20_000)
    put_raw(client, ds, rows)
    # 1% changed (spread over every coarse bucket), 50 added, 30 removed
    new = _edit(rows, changed=set(range(0, 20_000, 100)), removed=set(range(7, 20_000, 661)), added=50)
    outcomes = {}
    paths = {"narrow": Costs(latency=0.0005, page_latency=0.0005, row=1e-3, adaptive=False),
             "listing": Costs(latency=5.0),
             "coarse": Costs(latency=1e-6, bucket=1.0),
             "many": Costs(many=True, many_latency=0.0005, page_latency=0.0005, adaptive=False)}
    for name, costs in paths.items():
        diff = derive(client, ds, 20_000, FIELDS, key, list_source(new), prune=True,
                      show_data=False, source=None, cache_dir=None, costs=costs)
        outcomes[name] = (diff.add, diff.change, diff.remove, diff.unchanged,
                          _all_adds(diff, new, key), sorted(diff.rows.change_id),
                          sorted(diff.rows.remove_id))
        if name in ("narrow", "many"):
            assert diff.buckets > 32 and diff.remote_rows_read < 20_000 / 2
        elif name == "listing":
            assert diff.remote_rows_read == 20_000
        else:
            assert diff.buckets == 32
    assert outcomes["narrow"] == outcomes["listing"] == outcomes["coarse"] == outcomes["many"]
    edited = len(set(range(0, 20_000, 100)) - set(range(7, 20_000, 661)))
    removed = len(set(range(7, 20_000, 661)))
    if key is None:  # an edit is a remove + add
        assert outcomes["narrow"][:3] == (50 + edited, 0, removed + edited)
    else:
        assert outcomes["narrow"][:3] == (50, edited, removed)
    change = plan(client, ds, new, key=key, prune=True, remote=20_000)
    report = apply(client, ds, change, new, key=key, prune=True)
    assert (report.added, report.changed, report.removed) == (change.add, change.change, change.remove)
    assert remote_state(client, ds, key) == local_state(new, key)


def test_plan_without_key_against_a_dataset_that_has_one(client, make_dataset):
    # the manifest drops `key`: the server still buckets by its key field; rows compare by hash
    ds = make_dataset(key=KEY)
    rows = make_rows(1500)
    put_raw(client, ds, rows)
    change = plan(client, ds, _edit(rows, changed={3}), key=None, prune=True, remote=1500)
    assert (change.add, change.remove, change.change, change.unchanged) == (1, 1, 0, 1499)


def _counting_source(rows: list[dict], calls: dict):
    inner = list_source(rows)

    def checked():
        calls["checked"] += 1
        return inner()

    def unchecked():
        calls["unchecked"] += 1
        return inner()

    checked.unchecked = unchecked
    return checked


def test_passes_after_the_first_read_through_the_unchecked_source(client, make_dataset):
    ds = make_dataset()
    rows = make_rows(300)
    calls = {"checked": 0, "unchecked": 0}
    source = _counting_source(rows, calls)
    change = plan_data(client, ds, 0, FIELDS, KEY, source, prune=False)
    assert calls == {"checked": 1, "unchecked": 0}
    report = apply_data(client, ds, change, FIELDS, KEY, source, prune=False)
    assert report.added == 300 and calls == {"checked": 1, "unchecked": 1}
    # a plan that needs a second pass (the rows of differing buckets) takes it unchecked
    calls.update(checked=0, unchecked=0)
    more = _counting_source(rows + make_rows(5, start=9000), calls)
    assert plan_data(client, ds, 300, FIELDS, KEY, more, prune=False).add == 5
    assert calls == {"checked": 1, "unchecked": 1}
