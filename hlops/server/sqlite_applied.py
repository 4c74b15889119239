"""The last-applied index (a mixin of both stores): an opaque blob a client keeps beside a
dataset -- up to ``max_index_bytes``, tens of MB at ~50 bytes a datapoint -- and reads back
at its next plan. The server never looks inside.

Like the dataset's ``last_applied`` note it is neither config nor data: writing it bumps
neither ``version`` nor ``updated_at``, leaves the cached digest summaries and the stored
root alone (nothing here calls ``_touch``), and is not counted as a write by
``/_test/stats``. It lives in a table of its own (``applied_index``, one row a dataset,
deleted with it), so no read of a dataset row ever loads it.

SQLite writes the blob through its incremental blob I/O (a ``zeroblob`` of the size, then
1 MiB pieces written into it): bound as a parameter, the whole blob would be copied by
SQLite once more, and a 64 MB ``PUT`` peaked at 286 MB more RSS instead of 137 MB.
PostgreSQL binds it, and reads it in binary (:mod:`pg_applied`).
"""

from __future__ import annotations

from typing import Any

from hlops.server.store import Idem, NotFound

PIECE = 1 << 20  # bytes a blob write hands SQLite at a time
PUT_INDEX = (
    "INSERT INTO applied_index(dataset_id, data) VALUES (?, {value}) "
    "ON CONFLICT (dataset_id) DO UPDATE SET data = excluded.data"
)
SIZE_INDEX = (  # length() of a blob is read from its record header, not its pages
    "SELECT length(i.data) FROM applied_index i JOIN datasets d ON d.id = i.dataset_id "
    "WHERE i.dataset_id = ? AND d.org_id = ?"
)


class AppliedIndexMixin:
    """Needs ``_read()``, ``_write()``, ``_dataset()`` and ``_idem_record()``."""

    def put_applied_index(self, org: int, dataset_id: int, data: bytes, idem: Idem | None) -> None:
        """Store ``data`` as the dataset's index, replacing any it had."""
        with self._write() as con:
            self._dataset(con, org, dataset_id)  # another organisation's: NotFound
            self._store_index(con, dataset_id, data)
            if idem is not None:
                self._idem_record(con, org, idem, idem.status, b"", None)

    def get_applied_index(self, org: int, dataset_id: int, start: int = 0,
                          stop: int | None = None) -> tuple[bytes, int]:
        """Bytes ``start`` up to ``stop`` (None: the end) of the dataset's index, and its
        whole size; the caller keeps the range within it."""
        with self._read() as con:
            row = con.execute(SIZE_INDEX, (dataset_id, org)).fetchone()
            if row is None:
                self._dataset(con, org, dataset_id)  # which 404: no dataset, or no index
                raise NotFound(f"dataset {dataset_id} has no last-applied index")
            size = row[0]
            stop = size if stop is None else min(stop, size)
            return self._index_slice(con, dataset_id, start, stop), size

    @staticmethod
    def _index_slice(con: Any, dataset_id: int, start: int, stop: int) -> bytes:
        """Through SQLite's incremental blob I/O: only the pages of the range are read."""
        if stop <= start:
            return b""
        with con.blobopen("applied_index", "data", dataset_id, readonly=True) as blob:
            blob.seek(start)
            return blob.read(stop - start)

    @staticmethod
    def _store_index(con: Any, dataset_id: int, data: bytes) -> None:
        """A row of zeros of the blob's size, then the bytes written into it piece by piece
        (the table's rowid is the dataset id)."""
        con.execute(PUT_INDEX.format(value="zeroblob(?)"), (dataset_id, len(data)))
        if not data:
            return
        view = memoryview(data)
        with con.blobopen("applied_index", "data", dataset_id) as blob:
            for start in range(0, len(view), PIECE):
                blob.write(view[start:start + PIECE])
