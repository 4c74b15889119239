"""What the annotation web app needs from storage, beyond :class:`hlops.server.store.Store`.

Kept apart from the main protocol so that another store (PostgreSQL) can add it on its own:
personal tokens, sessions, leases, skips and who annotated what. The SQLite implementation
is :class:`hlops.server.web.sqlite_web.SqliteWeb`. Tokens and session ids are stored only
as SHA-256 digests (both are 256-bit random values, so a plain digest cannot be reversed);
every method that reads a project takes the organisation first, like the main store.

Annotations themselves are *not* here: the web app writes them with
:meth:`hlops.server.store.Store.annotate`, the call behind ``POST /projects/{id}/annotations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Identity:
    """Who a token or a session belongs to: an e-mail in an organisation."""

    org: int
    email: str


@dataclass(frozen=True)
class Session:
    identity: Identity
    csrf: str
    expires: float


@dataclass(frozen=True)
class Candidate:
    """A datapoint a project still needs annotations for."""

    dataset_id: int
    id: int
    data: dict[str, Any]


class WebStore(Protocol):
    # -- personal tokens (hashed); issuing one replaces the e-mail's earlier token
    def issue_token(self, org: int, email: str) -> str: ...
    def token_identity(self, token: str) -> Identity | None: ...

    # -- sessions (hashed ids), each with its CSRF token
    def create_session(self, identity: Identity, ttl: float) -> tuple[str, str]: ...
    def session(self, session_id: str) -> Session | None: ...
    def end_session(self, session_id: str) -> None: ...

    # -- the queue
    def candidates(self, org: int, project_id: int, exclude: set[int], limit: int) -> list[Candidate]: ...
    def unannotated(self, project_id: int, ids: list[int]) -> set[int]: ...
    def datapoint(self, org: int, project_id: int, datapoint_id: int) -> Candidate: ...
    def annotations_of(self, project_id: int, datapoint_id: int) -> dict[str, Any]: ...
    def take_lease(self, project_id: int, datapoint_id: int, email: str, ttl: float) -> bool: ...
    def leased_by_others(self, project_id: int, email: str) -> set[int]: ...
    def my_lease(self, project_id: int, email: str) -> int | None: ...
    def skip(self, project_id: int, email: str, datapoint_id: int) -> None: ...
    def skipped(self, project_id: int, email: str) -> set[int]: ...
    def source_values(self, project_id: int, dp: Candidate) -> dict[str, Any]: ...
    def source_labels(self, project_id: int) -> dict[str, list[str]]: ...

    def check_annotation(self, org: int, project_id: int, body: dict[str, Any]) -> None: ...

    # -- who annotated (the annotation itself is written by Store.annotate)
    def record_annotator(self, project_id: int, output: str, datapoint_id: int, email: str) -> None: ...
    def history(self, project_id: int, email: str, limit: int) -> list[int]: ...

    # -- progress
    def totals(self, org: int, project_id: int) -> int: ...
    def by_annotator(self, project_id: int) -> dict[str, dict[str, int]]: ...
