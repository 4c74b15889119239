"""Batched, parallel, memory-bounded writes of datapoints, with progress events.

Rows arrive as canonical JSON bytes (the same bytes the plan counted) and are packed into
request bodies without decoding them again:

- new rows: ``PUT /datasets/{id}`` ``{"data": [row, ...]}``;
- changed rows: ``PATCH /datasets/{id}/datapoints`` ``{"data": [{"id": i, "data": row}, ...]}``;
- removed rows: ``POST /datasets/{id}/datapoints/delete`` ``{"ids": [...]}``.

A batch holds at most :data:`MAX_ROWS` rows and :data:`MAX_BYTES` of body. At most
``min(parallelism, WRITE_DEPTH)`` batches are in flight; the producer (the thread streaming
the data file) waits for a free slot, so memory holds at most ``WRITE_DEPTH + 2`` batches
whatever the size of the data. Progress events are emitted from the producer's thread only.

Why a depth of 2 and not ``parallelism``: a dataset's writes are serialised by the server
(one writer per dataset: keys must stay unique), so a second batch in flight keeps the
server busy while the client prepares the next, and more only make server threads contend
(measured on the reference server: 4 in flight cost it 30-50% more CPU per row than 1-2,
for no more rows/s).

When a batch fails (after the client's own retries), no new batch is scheduled, the ones
in flight are waited for, and :class:`UploadFailed` says how many rows were sent: a next
apply re-diffs against the digest and sends only what is still missing. Every write carries
an ``Idempotency-Key`` (the client adds one per call), so a retried batch is never applied
twice.

What the server answered to each ``PUT`` is kept as ``(rows sent, version, datapoint_count)``
in :attr:`Uploader.put_answers` (each answer carries the dataset; an idempotent replay of a
retried batch answers the first attempt's result): a streamed apply proves from them that no
other write happened meanwhile (:func:`hlops.providers.humanloop.data.applied.proven_version`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import orjson

from hlops.providers.humanloop.client import Client
from hlops.errors import ApiError, HlopsError, TransportError

MAX_ROWS = 10_000
MAX_BYTES = 16 * 1024 * 1024
WRITE_DEPTH = 2  # write batches in flight per dataset (see the module docstring)
_HEAD = b'{"data":['
_TAIL = b"]}"


@dataclass(frozen=True)
class ProgressEvent:
    """Where an upload stands. ``rows_*`` count datapoints written (added + changed +
    removed), ``bytes_*`` request bodies."""

    rows_done: int
    rows_total: int
    bytes_done: int
    bytes_total: int
    elapsed: float
    calls: int
    phase: str = "upload"  # "upload" | "delete" | "done"

    @property
    def rows_per_second(self) -> float:
        return self.rows_done / self.elapsed if self.elapsed > 0 else 0.0


class UploadFailed(HlopsError):
    """A batch failed after retries; ``rows_sent`` rows were written before."""

    def __init__(self, message: str, rows_sent: int, cause: BaseException):
        super().__init__(message)
        self.rows_sent = rows_sent
        self.cause = cause
        self.report = None  # the DataReport of what was done, set by apply_data


def describe(exc: BaseException) -> str:
    """A failure in words, without the server's detail when it may quote datapoints."""
    if isinstance(exc, ApiError):
        if exc.status == 409:  # its detail lists keys: datapoint content
            return "HTTP 409: the server refused rows whose key already exists"
        safe = exc.status in (401, 404, 412, 429) or exc.status >= 500
        if safe and isinstance(exc.detail, str):
            return f"HTTP {exc.status}: {exc.detail[:200]}"
        return f"HTTP {exc.status}"
    if isinstance(exc, TransportError):
        return str(exc)
    return type(exc).__name__


class _Batch:
    """One request's body in the making: ``_HEAD``, then every item followed by a comma, in
    one growing buffer. Not a list of the items: 10,000 small bytes objects kept alive until
    the batch is sent cost a streamed apply ~0.3 us a row more than the buffer (the
    allocator's work on objects that outlive the row, measured in docs/performance.md, part I)."""

    __slots__ = ("buf", "rows")

    def __init__(self) -> None:
        self.buf = bytearray(_HEAD)
        self.rows = 0

    def fits(self, size: int) -> bool:
        """Whether an item of ``size`` bytes keeps the body within MAX_ROWS and MAX_BYTES: the
        body would be the buffer (its last comma the separator), the item and ``_TAIL``."""
        return self.rows < MAX_ROWS and (self.rows == 0 or len(self.buf) + size + len(_TAIL) <= MAX_BYTES)

    def add(self, item: bytes) -> None:
        buf = self.buf
        buf += item
        buf += b","
        self.rows += 1

    def body(self) -> bytes:
        buf = self.buf
        if self.rows:
            del buf[-1]  # the last item's comma
        buf += _TAIL
        return bytes(buf)


class Uploader:
    def __init__(
        self,
        client: Client,
        dataset_id: int,
        *,
        parallelism: int,
        rows_total: int,
        bytes_total: int,
        progress: Callable[[ProgressEvent], None] | None,
    ):
        self.client = client
        self.dataset_id = dataset_id
        self.parallelism = max(1, min(parallelism, WRITE_DEPTH))
        self.rows_total = rows_total
        self.bytes_total = bytes_total
        self.progress = progress
        self.pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="hlops-upload")
        self.inflight: dict[Future, tuple[str, int, int]] = {}
        self.put_batch = _Batch()
        self.patch_batch = _Batch()
        self.started = time.monotonic()
        self.done = {"add": 0, "change": 0, "remove": 0}
        self.bytes_done = 0
        self.calls = 0
        self.failure: BaseException | None = None
        # (rows sent, "version", "datapoint_count") of each acknowledged PUT, as answered
        # (None where the answer has no such member)
        self.put_answers: list[tuple[int, object, object]] = []
        self.phase = "upload"
        # called before each PUT/PATCH batch is sent: may raise to keep it unsent (a streamed
        # pass whose rows had a problem, hlops.data.stream)
        self.gate: Callable[[], None] | None = None

    # ------------------------------------------------------------------ producer side

    def add(self, cj: bytes) -> None:
        batch = self.put_batch
        buf = batch.buf
        if batch.rows >= MAX_ROWS or (batch.rows and len(buf) + len(cj) + len(_TAIL) > MAX_BYTES):  # not fits()
            self._submit("add", batch)
            batch = self.put_batch = _Batch()
            buf = batch.buf
        buf += cj  # inlined _Batch.add: this runs once per row
        buf += b","
        batch.rows += 1

    def change(self, remote_id: int, cj: bytes) -> None:
        item = b'{"id":%d,"data":%b}' % (remote_id, cj)
        batch = self.patch_batch
        if not batch.fits(len(item)):
            self._submit("change", batch)
            batch = self.patch_batch = _Batch()
        batch.add(item)

    def delete(self, ids: list[int]) -> None:
        self.flush()
        self.phase = "delete"
        for i in range(0, len(ids), MAX_ROWS):
            chunk = ids[i : i + MAX_ROWS]
            self._schedule("remove", orjson.dumps({"ids": chunk}), len(chunk))

    def flush(self) -> None:
        for kind, batch in (("add", self.put_batch), ("change", self.patch_batch)):
            if batch.rows:
                self._submit(kind, batch)
        self.put_batch, self.patch_batch = _Batch(), _Batch()

    def _submit(self, kind: str, batch: _Batch) -> None:
        if self.gate is not None:
            self._check()
            self.gate()
        self._schedule(kind, batch.body(), batch.rows)

    def _schedule(self, kind: str, body: bytes, rows: int) -> None:
        self._check()
        while len(self.inflight) >= self.parallelism:
            self._harvest(block=True)
            self._check()
        if kind == "add":
            method, path = "PUT", f"/datasets/{self.dataset_id}"
        elif kind == "change":
            method, path = "PATCH", f"/datasets/{self.dataset_id}/datapoints"
        else:
            method, path = "POST", f"/datasets/{self.dataset_id}/datapoints/delete"
        fut = self.pool.submit(self.client.request, method, path, raw_body=body)
        self.inflight[fut] = (kind, rows, len(body))
        self._harvest(block=False)  # report batches already done, without waiting

    def _harvest(self, block: bool) -> None:
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            kind, rows, size = self.inflight.pop(fut)
            self.calls += 1
            exc = fut.exception()
            if exc is not None:
                if self.failure is None:
                    self.failure = exc
                continue
            self.done[kind] += rows
            self.bytes_done += size
            if kind == "add":
                self.put_answers.append((rows, *_version_and_count(fut.result())))
        if done:
            self._emit()

    def _check(self) -> None:
        if self.failure is not None:
            raise _Stop()

    def _emit(self, phase: str | None = None) -> None:
        if self.progress is not None:
            self.progress(
                ProgressEvent(
                    rows_done=sum(self.done.values()),
                    rows_total=self.rows_total,
                    bytes_done=self.bytes_done,
                    bytes_total=self.bytes_total,
                    elapsed=time.monotonic() - self.started,
                    calls=self.calls,
                    phase=phase or self.phase,
                )
            )

    # ------------------------------------------------------------------ end

    def finish(self) -> None:
        """Send what is buffered and wait for every batch; raise :class:`UploadFailed` if one
        failed (after waiting for the others)."""
        try:
            if self.failure is None:
                self.flush()
        except _Stop:
            pass
        self.close()

    def close(self) -> None:
        while self.inflight:
            self._harvest(block=True)
        self.pool.shutdown(wait=True)
        if self.failure is not None:
            sent = sum(self.done.values())
            of = f" of {self.rows_total:,}" if self.rows_total else ""  # 0: not counted yet (streamed)
            raise UploadFailed(
                f"{sent:,}{of} datapoint writes were done before a batch "
                f"failed ({describe(self.failure)}); run apply again to send the rest",
                sent,
                self.failure,
            )
        self._emit("done")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _version_and_count(answer: object) -> tuple[object, object]:
    """The dataset's ``version`` and ``datapoint_count`` in a write's answer (None: absent)."""
    if not isinstance(answer, dict):
        return None, None
    return answer.get("version"), answer.get("datapoint_count")


class _Stop(Exception):
    """Internal: a batch failed, stop producing."""
