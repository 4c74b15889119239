"""plan_data for a dataset that does not exist yet: no network, every row an add."""

from __future__ import annotations

import math

import orjson
import pytest

from hlops.providers.humanloop.data import plan_data
from hlops.errors import ManifestError
from hlops.plan import DataChange

from dp_helpers import FIELDS, list_source, make_rows


def test_new_dataset_everything_is_an_add():
    rows = make_rows(25_000)
    change = plan_data(None, None, 0, FIELDS, "external_id", list_source(rows), prune=False,
                       source=None)
    assert isinstance(change, DataChange)
    assert (change.add, change.change, change.remove, change.unchanged) == (25_000, 0, 0, 0)
    assert change.local_rows == 25_000 and change.remote_rows == 0
    assert change.calls == 3  # 10k + 10k + 5k rows
    body = sum(len(orjson.dumps(r | {"external_id": str(r["external_id"])})) for r in rows)
    assert change.bytes_to_send == body + (25_000 - 3) + 3 * len(b'{"data":[]}')
    assert change.examples == {} and change.fingerprint and change.notes == ()
    assert change.estimated_seconds is None  # no rate seen yet
    # counts only: the plan's JSON has no row content
    assert b"ticket" not in orjson.dumps(change.model_dump(mode="json"))


def test_show_data_gives_a_few_keys_only():
    change = plan_data(None, None, 0, FIELDS, "external_id", list_source(make_rows(50)),
                       prune=False, show_data=True)
    assert len(change.examples["add"]) == 5
    assert all(isinstance(k, str) and k.isdigit() for k in change.examples["add"])


def test_keyless_plan_says_so():
    rows = make_rows(10) + make_rows(10)
    change = plan_data(None, None, 0, FIELDS, None, list_source(rows), prune=False)
    assert change.add == 20 and change.key is None and change.keyless
    assert any("no `key`" in n and "remove" in n for n in change.notes)


def test_duplicate_keys_are_an_error():
    rows = make_rows(10) + make_rows(1, start=4)
    with pytest.raises(ManifestError) as err:
        plan_data(None, None, 0, FIELDS, "external_id", list_source(rows), prune=False)
    assert [p.line for p in err.value.problems] == [11]


def test_round_trip_through_plan_json():
    change = plan_data(None, None, 0, FIELDS, "external_id", list_source(make_rows(10)), prune=True)
    again = DataChange.model_validate(orjson.loads(orjson.dumps(change.model_dump(mode="json"))))
    assert again == change and math.isclose(again.bytes_to_send, change.bytes_to_send)
