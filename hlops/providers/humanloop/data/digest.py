"""The remote side of a datapoint diff: the digest endpoints, read through the client.

- ``GET /datasets/{id}/digest?buckets=N[&key=f]`` -> per bucket ``{bucket, count, hash}``
  (empty buckets left out), with the dataset's ``version`` and ``datapoint_count``;
- ``GET /datasets/{id}/digest?buckets=N&bucket=i[&key=f]`` -> paginated rows
  ``{id, key, hash, annotations}`` of bucket i; without ``bucket``, of every datapoint;
- ``POST /datasets/{id}/digest/rows {"buckets": N, "which": [...], "key"?}`` -> the same
  rows of many buckets, in pages of up to 10,000 (:func:`read_rows_of`).

Rows of many buckets are fetched in parallel threads (the client is thread-safe).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from hlops.providers.humanloop.client import Client
from hlops.data.compare import BIG_PAGE, PAGE, PARTS, RemoteRow


@dataclass
class RemoteDigest:
    buckets: int
    counts: np.ndarray  # int64[buckets]
    xor: np.ndarray  # uint8[buckets, 32]
    total: int
    version: int | None
    items_hash: str  # SHA-256 of the digest's items: equal digests, equal remote data
    key: str | None = None  # the key field the server bucketed by (None: the row hash)


def items_hash(counts: np.ndarray, xor: np.ndarray) -> str:
    """SHA-256 of a digest's counts (int64) and XORs (uint8[n, 32]): equal hashes, equal
    digests (the remote's, or the local summary folded to the same level)."""
    h = hashlib.sha256(np.ascontiguousarray(counts, np.int64).tobytes())
    h.update(np.ascontiguousarray(xor, np.uint8).tobytes())
    return h.hexdigest()


def _params(key: str | None, **extra: object) -> dict:
    params = {k: v for k, v in extra.items() if v is not None}
    if key is not None:
        params["key"] = key
    return params


def read_digest(client: Client, dataset_id: int, key: str | None, buckets: int) -> RemoteDigest:
    body = client.request(
        "GET", f"/datasets/{dataset_id}/digest", params=_params(key, buckets=buckets)
    )
    counts = np.zeros(buckets, np.int64)
    xor = np.zeros((buckets, 32), np.uint8)
    items = body.get("items") or []
    if items:
        idx = np.fromiter((it["bucket"] for it in items), np.int64, len(items))
        counts[idx] = np.fromiter((it["count"] for it in items), np.int64, len(items))
        hexes = "".join(it["hash"] for it in items)
        xor[idx] = np.frombuffer(bytes.fromhex(hexes), np.uint8).reshape(len(items), 32)
    return RemoteDigest(
        buckets=buckets,
        counts=counts,
        xor=xor,
        total=int(body.get("datapoint_count", counts.sum())),
        version=body.get("version"),
        items_hash=items_hash(counts, xor),
        key=body.get("key", key),
    )


def _rows(client: Client, dataset_id: int, params: dict) -> list[RemoteRow]:
    return [
        (it["id"], it["key"], it["hash"], it.get("annotations") or 0)
        for it in client.paginate(f"/datasets/{dataset_id}/digest", limit=PAGE, **params)
    ]


def read_bucket_rows(
    client: Client,
    dataset_id: int,
    key: str | None,
    buckets: int,
    which: list[int],
    parallelism: int,
) -> Iterator[list[RemoteRow]]:
    """The rows of buckets ``which`` (at level ``buckets``), one list per bucket, as they
    arrive; at most ``parallelism`` requests in flight."""
    todo = iter(which)
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="hlops-digest") as pool:
        inflight: set[Future] = set()

        def refill() -> None:
            for b in todo:
                inflight.add(pool.submit(_rows, client, dataset_id, _params(key, buckets=buckets, bucket=b)))
                if len(inflight) >= parallelism * 2:
                    return

        refill()
        try:
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    inflight.discard(fut)
                    yield fut.result()
                refill()
        finally:
            for fut in inflight:
                fut.cancel()


def read_all_rows(
    client: Client, dataset_id: int, key: str | None, keep: Callable[[RemoteRow], bool]
) -> Iterator[RemoteRow]:
    """Every datapoint's row, one listing, filtered by ``keep`` as pages arrive."""
    for it in client.paginate(f"/datasets/{dataset_id}/digest", limit=PAGE, **_params(key)):
        r = (it["id"], it["key"], it["hash"], it.get("annotations") or 0)
        if keep(r):
            yield r


STREAMS = 2  # requests for many buckets in flight at once (the reference server: 2 CPUs)


def read_rows_of(
    client: Client, dataset_id: int, key: str | None, buckets: int, which: list[int],
    parallelism: int,
) -> Iterator[list[RemoteRow]]:
    """The rows of buckets ``which`` (at level ``buckets``) through ``POST
    /datasets/{id}/digest/rows``, one list per page as pages arrive: the buckets are split
    by the server's parts (``bucket & 255``) into at most ``min(parallelism, STREAMS)``
    streams of :data:`BIG_PAGE`-row pages read side by side."""
    ordered = sorted(which, key=lambda b: (b & (PARTS - 1), b))
    n = max(1, min(parallelism, STREAMS, len(ordered)))
    cut = -(-len(ordered) // n)
    groups = [ordered[i:i + cut] for i in range(0, len(ordered), cut)]
    with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="hlops-rows") as pool:
        pages: list = [pool.submit(_page_of, client, dataset_id, key, buckets, g, None) for g in groups]
        pending = {fut: g for fut, g in zip(pages, groups)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    group = pending.pop(fut)
                    rows, cursor = fut.result()
                    if cursor:
                        pending[pool.submit(_page_of, client, dataset_id, key, buckets, group, cursor)] = group
                    yield rows
        finally:
            for fut in pending:
                fut.cancel()


def _page_of(client: Client, dataset_id: int, key: str | None, buckets: int, which: list[int],
             cursor: str | None) -> tuple[list[RemoteRow], str | None]:
    body: dict = {"buckets": buckets, "which": which}
    if key is not None:
        body["key"] = key
    params: dict = {"limit": BIG_PAGE}
    if cursor:
        params["cursor"] = cursor
    page = client.request("POST", f"/datasets/{dataset_id}/digest/rows", params=params, body=body)
    rows = [(it["id"], it["key"], it["hash"], it.get("annotations") or 0) for it in page["items"]]
    return rows, page.get("next_cursor")
