"""The server's pure parts: the fast normaliser, stored points and bucket parts, the
digest summary, settings and keys files, the CLI, and the in-process server."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from hlops import canonical
from hlops.errors import SettingsError
from hlops.server.config import FaultConfig, key_digest, key_map, parse_keys
from hlops.server.digest import FineSummary
from hlops.server.rows import bucket_parts, key_point_of, prepare, stored_point
from hlops.server.run import start_in_thread
from hlops.server.store import Invalid

FIELDS = {"t": "text", "c": "categorical", "o": "character_offsets"}

values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=5),
    st.lists(st.one_of(
        st.fixed_dictionaries({"start": st.integers(-2, 6), "end": st.integers(-2, 8), "label": st.text(max_size=2)}),
        st.dictionaries(st.sampled_from(["start", "end", "label", "x"]), st.one_of(st.integers(-1, 5), st.text(max_size=2))),
        st.integers(), st.text(max_size=2),
    ), max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
rows = st.lists(st.dictionaries(st.sampled_from(["t", "c", "o", "x"]), values, max_size=4), max_size=5)


def _result(fn):
    try:
        return ("ok", fn())
    except canonical.InvalidValue as exc:
        return ("err", exc.msg, exc.type, exc.loc)


@settings(max_examples=400, deadline=None)
@given(rows)
def test_normalise_rows_equals_normalise_row(batch):
    """The fast path gives exactly normalise_row's results -- and the same first error."""
    fast = _result(lambda: canonical.normalise_rows(batch, FIELDS))
    expected = None
    for i, row in enumerate(batch):
        one = _result(lambda row=row: canonical.normalise_row(row, FIELDS))
        if one[0] == "err":
            expected = ("err", one[1], one[2], (i, *one[3]))
            break
    if expected is None:
        expected = ("ok", [canonical.normalise_row(row, FIELDS) for row in batch])
    assert fast == expected
    if fast[0] == "ok":
        assert [canonical.canonical_json(r) for r in fast[1]] == [
            canonical.canonical_json(canonical.normalise_row(r, FIELDS)) for r in batch
        ]


@given(st.integers(0, 2**64 - 1))
def test_stored_point_round_trip(point):
    s = stored_point(point)
    assert -(2**63) <= s < 2**63 and key_point_of(s) == point
    assert s & 0xFFFF == point & 0xFFFF  # buckets are read off the stored value


@pytest.mark.parametrize("buckets", [1, 2, 8, 128, 256, 512, 65536])
def test_bucket_parts(buckets):
    for key in map(str, range(300)):
        point = canonical.key_point(key)
        bucket = canonical.bucket_of(key, buckets)
        parts = bucket_parts(buckets, bucket)
        assert (stored_point(point) & 255) in parts
        assert point % buckets == bucket
        other = (bucket + 1) % buckets
        if other != bucket:
            in_other = (stored_point(point) & 255) in bucket_parts(buckets, other)
            assert not in_other or (buckets > 256 and (stored_point(point) & (buckets - 1)) != other)


def test_prepare_matches_canonical():
    batch = [{"t": 12, "c": "a", "o": [{"label": "B", "end": 5, "start": 2}, {"start": 0, "end": 1, "label": "A"}]},
             {"t": "x", "c": None}]
    p = prepare(batch, FIELDS, "t", ("body", "data"))
    for i, row in enumerate(batch):
        norm = canonical.normalise_row(row, FIELDS)
        assert p.data[i] == canonical.canonical_json(norm)
        assert p.hashes[i].hex() == canonical.row_hash(norm)
        assert p.keys[i] == canonical.key_text(norm, "t", "")
        assert p.points[i] == stored_point(canonical.key_point(p.keys[i]))
    keyless = prepare(batch, FIELDS, None, ("body",))
    assert keyless.keys == [None, None]
    assert keyless.points[1] == stored_point(canonical.key_point(keyless.hashes[1].hex()))
    with pytest.raises(Invalid) as exc:
        prepare([{"c": "a"}, {"t": 1.5}], FIELDS, "t", ("body", "data"))
    assert [tuple(d["loc"]) for d in exc.value.detail] == [("body", "data", 0, "t"), ("body", "data", 1, "t")]


def test_fine_summary_folds_like_canonical():
    keys = [f"k{i}" for i in range(2000)]
    hashes = [hashlib.sha256(k.encode()).digest() for k in keys]
    summary = FineSummary()
    summary.add_points([canonical.key_point(k) & 0xFFFF for k in keys], hashes)
    assert summary.total == 2000
    for n in (1, 4, 1024, 65536):
        expected: dict[int, list[str]] = {}
        for k, h in zip(keys, hashes):
            expected.setdefault(canonical.bucket_of(k, n), []).append(h.hex())
        got = {it["bucket"]: (it["count"], it["hash"]) for it in summary.fold(n)}
        assert got == {b: (len(hs), canonical.xor_hashes(hs)) for b, hs in expected.items()}


def test_keys_file_parsing_never_shows_a_key():
    lines = ["# comment", "", "key-aaaa-1111 org-a", "key-bbbb-2222   # trailing comment", "key-cccc-3333 org-a"]
    parsed = parse_keys(lines)
    assert parsed == [("key-aaaa-1111", "org-a"), ("key-bbbb-2222", None), ("key-cccc-3333", "org-a")]
    mapping = key_map(parsed)
    assert mapping[key_digest("key-aaaa-1111")] == mapping[key_digest("key-cccc-3333")] == "org-a"
    assert mapping[key_digest("key-bbbb-2222")].startswith("org-")
    for bad in (["secret-key-1 org a b"], ["secret-key-1 bad/org"]):
        with pytest.raises(SettingsError) as exc:
            parse_keys(bad, "keys.txt")
        assert "secret-key-1" not in str(exc.value) and "keys.txt:1" in str(exc.value)
    with pytest.raises(SettingsError):
        key_map([("short", None)])


def test_fault_config_checks():
    assert not FaultConfig().active
    assert FaultConfig(fail_nth=(3,)).active
    for bad in (FaultConfig(rate=1.5), FaultConfig(statuses=(200,)), FaultConfig(statuses=()), FaultConfig(retry_after=-1)):
        with pytest.raises(SettingsError):
            bad.checked()


def test_serve_cli_errors(tmp_path):
    run = lambda *args, **kw: subprocess.run([sys.executable, "-m", "hlops", "serve", *args], capture_output=True, text=True, timeout=60, **kw)  # noqa: E731
    env = {k: v for k, v in __import__("os").environ.items() if k != "HLOPS_API_KEY"}
    r = run("--db", str(tmp_path / "x.db"), env=env)
    assert r.returncode == 1 and "--api-key" in r.stderr
    keys = tmp_path / "keys"
    keys.write_text("super-secret-key-9 too many words\n")
    r = run("--keys-file", str(keys), "--db", str(tmp_path / "x.db"), env=env)
    assert r.returncode == 1 and "super-secret" not in r.stderr and "keys:1" in r.stderr
    r = run("--help")
    assert r.returncode == 0 and "[test-only]" in r.stdout and "--fault-rate" in r.stdout
    r = run("--api-key", "k" * 10, "--fault-rate", "2", env=env)
    assert r.returncode == 1


def test_background_server(tmp_path):
    server = start_in_thread(tmp_path / "embedded.db", ["embedded-key-1234"])
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert requests.get(server.url + "/health", timeout=10).json()["status"] == "ok"
        headers = {"X-API-KEY": "embedded-key-1234"}
        r = requests.post(server.url + "/datasets", json={"name": "e", "fields": [{"name": "t", "data_type": "text"}]}, headers=headers, timeout=10)
        assert r.status_code == 201
    finally:
        server.stop()
    # the data outlives the server
    with start_in_thread(tmp_path / "embedded.db", ["embedded-key-1234"]) as again:
        r = requests.get(again.url + "/datasets", headers={"X-API-KEY": "embedded-key-1234"}, timeout=10)
        assert [d["name"] for d in r.json()["items"]] == ["e"]
