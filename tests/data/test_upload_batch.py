"""A request body in the making (upload._Batch, a growing buffer since docs/performance.md
part I): the body is exactly ``{"data":[`` + the items joined by commas + ``]}``, and an item
fits exactly when the body with it stays within MAX_ROWS and MAX_BYTES -- the limits the
list of items had."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hlops.providers.humanloop.data import upload

ITEMS = st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=30), max_size=3).map(orjson.dumps), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ITEMS, st.integers(min_value=20, max_value=400), st.integers(min_value=1, max_value=12))
def test_the_body_and_the_limits_are_those_of_the_joined_items(items, max_bytes, max_rows):
    saved = upload.MAX_BYTES, upload.MAX_ROWS
    upload.MAX_BYTES, upload.MAX_ROWS = max_bytes, max_rows
    try:
        batch, taken = upload._Batch(), []
        for item in items:
            with_it = b'{"data":[' + b",".join([*taken, item]) + b"]}"
            assert batch.fits(len(item)) == (len(taken) < max_rows and (not taken or len(with_it) <= max_bytes))
            if not batch.fits(len(item)):
                break
            batch.add(item)
            taken.append(item)
        body = batch.body()
        assert body == b'{"data":[' + b",".join(taken) + b"]}"
        assert orjson.loads(body) == {"data": [orjson.loads(i) for i in taken]}
    finally:
        upload.MAX_BYTES, upload.MAX_ROWS = saved


def test_an_empty_batch_is_an_empty_list():
    assert upload._Batch().body() == b'{"data":[]}'


@settings(max_examples=60, deadline=None)
@given(ITEMS, st.integers(min_value=20, max_value=400), st.integers(min_value=1, max_value=12))
def test_the_uploader_cuts_its_bodies_where_the_batch_stops_fitting(items, max_bytes, max_rows):
    saved = upload.MAX_BYTES, upload.MAX_ROWS
    upload.MAX_BYTES, upload.MAX_ROWS = max_bytes, max_rows
    up = upload.Uploader(None, 1, parallelism=1, rows_total=0, bytes_total=0, progress=None)
    try:
        bodies: list[bytes] = []
        up._submit = lambda kind, batch: bodies.append(batch.body())  # what would be sent
        for item in items:
            up.add(item)
        if up.put_batch.rows:
            bodies.append(up.put_batch.body())
        sent = [orjson.loads(b)["data"] for b in bodies]
        assert [row for rows in sent for row in rows] == [orjson.loads(i) for i in items]
        for body, rows, following in zip(bodies, sent, sent[1:] + [None]):
            assert 1 <= len(rows) <= max_rows
            assert len(body) <= max_bytes or len(rows) == 1  # an item too big goes alone
            if following:  # cut only when the next item did not fit
                grown = b'{"data":[' + b",".join(orjson.dumps(r) for r in rows + following[:1]) + b"]}"
                assert len(rows) == max_rows or len(grown) > max_bytes
    finally:
        up.pool.shutdown()
        upload.MAX_BYTES, upload.MAX_ROWS = saved


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=2, max_size=12), st.data())
@settings(max_examples=40, deadline=None)
def test_a_body_of_exactly_max_bytes_is_sent_whole(sizes, data):
    items = [orjson.dumps("x" * n) for n in sizes]
    k = data.draw(st.integers(min_value=1, max_value=len(items) - 1))
    exact = len(b'{"data":[' + b",".join(items[:k]) + b"]}")
    saved = upload.MAX_BYTES
    upload.MAX_BYTES = exact
    up = upload.Uploader(None, 1, parallelism=1, rows_total=0, bytes_total=0, progress=None)
    try:
        bodies: list[bytes] = []
        up._submit = lambda kind, batch: bodies.append(batch.body())
        for item in items:
            up.add(item)
        assert bodies[0] == b'{"data":[' + b",".join(items[:k]) + b"]}"  # k items: exactly the limit
        batch = upload._Batch()
        for item in items[: k - 1]:
            batch.add(item)
        assert batch.fits(len(items[k - 1]))  # up to exactly the limit
        batch.add(items[k - 1])
        assert not batch.fits(len(items[k])) and upload._Batch().fits(exact + 1)  # an empty batch takes anything
    finally:
        up.pool.shutdown()
        upload.MAX_BYTES = saved
