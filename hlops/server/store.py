"""The storage interface of the reference server, and the errors every store raises.

Routes (``app.py``) stay thin: they parse a request, call one method of a :class:`Store`,
and turn its answer (plain JSON-ready dicts) or its :class:`StoreError` into a response.
The default store is SQLite (``sqlite_store.py``); the PostgreSQL store (``pg_store.py``)
implements the same protocol, sharing the SQLite store's logic. Every method takes the caller's organisation id first and answers
:class:`NotFound` for anything of another organisation, so isolation is the store's job
and cannot be forgotten by a route.

Writes take ``idem``: when given, the store saves the answer under that Idempotency-Key
*in the same transaction* as the write, so a write and the record of its answer are
committed together (a crash between the two cannot make a retry apply it twice). Only
successful answers are recorded: a failed write changed nothing, so its retry runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

JSON = dict[str, Any]


class StoreError(Exception):
    """An answer other than success; ``detail`` is safe to show (no datapoint values)."""

    status = 400

    def __init__(self, detail: Any):
        super().__init__(detail if isinstance(detail, str) else "invalid request")
        self.detail = detail


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class VersionMismatch(StoreError):
    status = 412


class TooLarge(StoreError):
    status = 413


class Invalid(StoreError):
    """422 in FastAPI's shape: ``detail`` is a list of ``{loc, msg, type}``."""

    status = 422

    def __init__(self, items: list[JSON]):
        super().__init__(items)

    @classmethod
    def one(cls, loc: tuple[Any, ...], msg: str, type_: str = "value_error") -> Invalid:
        return cls([{"loc": list(loc), "msg": msg, "type": type_}])


@dataclass(frozen=True)
class Idem:
    """An Idempotency-Key and the request it belongs to; ``status`` is the success status
    the route will answer, stored with the body."""

    key: str
    method: str
    path: str
    status: int = 200
    fingerprint: str = ""  # SHA-256 of method, path, query and body: a reused key must match


@dataclass(frozen=True)
class Replay:
    """A stored answer for an Idempotency-Key."""

    method: str
    path: str
    status: int
    body: bytes
    etag: str | None
    fingerprint: str | None = None


@dataclass(frozen=True)
class Page:
    """A slice of a list: ``after`` is the decoded cursor (``None`` for the first page)."""

    after: Any = None
    limit: int = 100


class Store(Protocol):
    """What the routes need from storage. Results are JSON-ready dicts in the API's
    shapes (see ``schemas.py``); lists answer ``{"items": [...], "next_cursor": ...}`` with
    ``next_cursor`` the *decoded* cursor value (the route encodes it)."""

    # -- organisations and idempotency
    def ensure_orgs(self, keys: dict[str, str]) -> dict[str, int]: ...
    def idem_lookup(self, org: int, key: str) -> Replay | None: ...

    # -- datasets
    def create_dataset(self, org: int, spec: JSON, rows: list[Any], idem: Idem | None) -> JSON: ...
    def append_datapoints(
        self, org: int, dataset_id: int, rows: list[Any], if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def list_datasets(self, org: int, name: str | None, page: Page, include_digest: bool = False) -> JSON: ...
    def get_dataset(self, org: int, dataset_id: int) -> JSON: ...
    def patch_dataset(
        self, org: int, dataset_id: int, patch: JSON, if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def delete_dataset(
        self, org: int, dataset_id: int, force: bool, if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def list_datapoints(self, org: int, dataset_id: int, fields: list[str] | None, page: Page) -> JSON: ...
    def patch_datapoints(
        self, org: int, dataset_id: int, items: list[Any], if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def delete_datapoints(
        self, org: int, dataset_id: int, ids: list[int], if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def digest_buckets(self, org: int, dataset_id: int, key: str | None, buckets: int) -> JSON: ...
    def digest_rows(
        self, org: int, dataset_id: int, key: str | None, buckets: int | None, bucket: int | None, page: Page
    ) -> JSON: ...
    def digest_rows_of(
        self, org: int, dataset_id: int, key: str | None, buckets: int, which: list[int], page: Page
    ) -> JSON: ...
    def digest_rows_by_key(self, org: int, dataset_id: int, keys: list[str]) -> JSON: ...
    def put_applied_index(self, org: int, dataset_id: int, data: bytes, idem: Idem | None) -> None: ...
    def get_applied_index(self, org: int, dataset_id: int, start: int = 0, stop: int | None = None) -> tuple[bytes, int]: ...

    # -- projects
    def create_project(self, org: int, spec: JSON, idem: Idem | None) -> JSON: ...
    def list_projects(self, org: int, name: str | None, page: Page) -> JSON: ...
    def get_project(self, org: int, project_id: int) -> JSON: ...
    def patch_project(
        self, org: int, project_id: int, patch: JSON, if_match: int | None, idem: Idem | None
    ) -> JSON: ...
    def delete_project(self, org: int, project_id: int, if_match: int | None, idem: Idem | None) -> JSON: ...
    def annotate(self, org: int, project_id: int, body: JSON, if_match: int | None, idem: Idem | None) -> JSON: ...
    def annotation_summary(self, org: int, project_id: int) -> JSON: ...

    def close(self) -> None: ...
