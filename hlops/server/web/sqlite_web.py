"""The web app's storage (:class:`hlops.server.web.store.WebStore`) in the server's SQLite
file: five small tables next to the main schema, created on first start.

- ``web_tokens``: personal tokens by SHA-256 digest, one per (organisation, e-mail);
- ``web_sessions``: signed-in browsers by session-id digest, with their CSRF token;
- ``web_leases``: who is labelling which datapoint of a project, until when (one per
  datapoint; an expired lease is free to take);
- ``web_skips``: datapoints a person skipped (they come last in that person's queue);
- ``web_annotators``: who last annotated an (output, datapoint) through the web app.

Project rows cascade: deleting a project deletes its leases, skips and annotators.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import orjson

from hlops.server.sqlite_common import chunks, marks, now
from hlops.server.store import Invalid, NotFound
from hlops.server.web.store import Candidate, Identity, Session

DDL = """
CREATE TABLE IF NOT EXISTS web_tokens (
    digest TEXT PRIMARY KEY,              -- sha256 hex of the token (tokens are never stored)
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    email TEXT NOT NULL,                  -- lower-cased
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS web_tokens_email ON web_tokens (org_id, email);
CREATE TABLE IF NOT EXISTS web_sessions (
    digest TEXT PRIMARY KEY,              -- sha256 hex of the session id
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    email TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_leases (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    datapoint_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (project_id, datapoint_id)
);
CREATE INDEX IF NOT EXISTS web_leases_email ON web_leases (project_id, email);
CREATE TABLE IF NOT EXISTS web_skips (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    datapoint_id INTEGER NOT NULL,
    PRIMARY KEY (project_id, email, datapoint_id)
);
CREATE TABLE IF NOT EXISTS web_annotators (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    output_id INTEGER NOT NULL,
    datapoint_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    at TEXT NOT NULL,
    seq INTEGER NOT NULL,                 -- order of writes (history for "undo")
    PRIMARY KEY (project_id, output_id, datapoint_id)
);
CREATE INDEX IF NOT EXISTS web_annotators_email ON web_annotators (project_id, email, seq);
"""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqliteWeb:
    """The web app's tables over a :class:`~hlops.server.sqlite_store.SqliteStore`."""

    def __init__(self, store: Any):
        self.store = store
        with store._write() as con:
            for statement in DDL.split(";"):
                if statement.strip():
                    con.execute(statement)

    # ------------------------------------------------------------------ tokens

    def issue_token(self, org: int, email: str) -> str:
        token = "hlt_" + secrets.token_urlsafe(32)
        with self.store._write() as con:
            con.execute("DELETE FROM web_tokens WHERE org_id = ? AND email = ?", (org, email.lower()))
            con.execute(
                "INSERT INTO web_tokens(digest, org_id, email, created_at) VALUES (?, ?, ?, ?)",
                (digest(token), org, email.lower(), now()),
            )
        return token

    def token_identity(self, token: str) -> Identity | None:
        with self.store._read() as con:
            row = con.execute("SELECT org_id, email FROM web_tokens WHERE digest = ?", (digest(token),)).fetchone()
        return None if row is None else Identity(row[0], row[1])

    # ------------------------------------------------------------------ sessions

    def create_session(self, identity: Identity, ttl: float) -> tuple[str, str]:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.store._write() as con:
            con.execute("DELETE FROM web_sessions WHERE expires < ?", (time.time(),))
            con.execute(
                "INSERT INTO web_sessions(digest, org_id, email, csrf, expires) VALUES (?, ?, ?, ?, ?)",
                (digest(session_id), identity.org, identity.email, csrf, time.time() + ttl),
            )
        return session_id, csrf

    def session(self, session_id: str) -> Session | None:
        with self.store._read() as con:
            row = con.execute(
                "SELECT org_id, email, csrf, expires FROM web_sessions WHERE digest = ?", (digest(session_id),)
            ).fetchone()
        if row is None or row["expires"] < time.time():
            return None
        return Session(Identity(row["org_id"], row["email"]), row["csrf"], row["expires"])

    def end_session(self, session_id: str) -> None:
        with self.store._write() as con:
            con.execute("DELETE FROM web_sessions WHERE digest = ?", (digest(session_id),))

    # ------------------------------------------------------------------ the queue

    @staticmethod
    def _datasets(con: Any, project_id: int) -> list[int]:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT f.dataset_id FROM project_sources ps JOIN fields f ON f.id = ps.field_id "
            "JOIN project_io io ON io.id = ps.io_id WHERE ps.project_id = ? AND io.kind = 'input' ORDER BY 1",
            (project_id,),
        )]

    @staticmethod
    def _outputs(con: Any, project_id: int) -> int:
        return con.execute(
            "SELECT count(*) FROM project_io WHERE project_id = ? AND kind = 'output'", (project_id,)
        ).fetchone()[0]

    def candidates(self, org: int, project_id: int, exclude: set[int], limit: int) -> list[Candidate]:
        """Up to ``limit`` datapoints lacking an annotation of some output, in dataset order
        (dataset id, then datapoint id), leaving out ``exclude``."""
        out: list[Candidate] = []
        with self.store._read() as con:
            self.store._project_row(con, org, project_id)
            n_outputs = self._outputs(con, project_id)
            for dataset_id in self._datasets(con, project_id):
                after = 0
                while len(out) < limit:
                    rows = con.execute(
                        "SELECT d.dataset_id, d.id, d.data FROM datapoints d WHERE d.dataset_id = ? AND d.id > ? "
                        "AND (SELECT count(*) FROM annotations a WHERE a.project_id = ? AND a.dataset_id = d.dataset_id "
                        "AND a.datapoint_id = d.id) < ? ORDER BY d.id LIMIT ?",
                        (dataset_id, after, project_id, n_outputs, limit + len(exclude)),
                    ).fetchall()
                    if not rows:
                        break
                    after = rows[-1]["id"]
                    out += [Candidate(r["dataset_id"], r["id"], orjson.loads(r["data"])) for r in rows if r["id"] not in exclude]
                if len(out) >= limit:
                    break
        return out[:limit]

    def unannotated(self, project_id: int, ids: list[int]) -> set[int]:
        """Those of ``ids`` still lacking an annotation of some output."""
        found: set[int] = set()
        with self.store._read() as con:
            n_outputs = self._outputs(con, project_id)
            for part in chunks(ids):
                done = {r[0] for r in con.execute(
                    f"SELECT datapoint_id FROM annotations WHERE project_id = ? AND datapoint_id IN ({marks(len(part))}) "
                    "GROUP BY datapoint_id HAVING count(*) >= ?",
                    (project_id, *part, n_outputs),
                )}
                found.update(i for i in part if i not in done)
        return found

    def datapoint(self, org: int, project_id: int, datapoint_id: int) -> Candidate:
        with self.store._read() as con:
            self.store._project_row(con, org, project_id)
            for dataset_id in self._datasets(con, project_id):
                row = con.execute(
                    "SELECT dataset_id, id, data FROM datapoints WHERE dataset_id = ? AND id = ?", (dataset_id, datapoint_id)
                ).fetchone()
                if row is not None:
                    return Candidate(row["dataset_id"], row["id"], orjson.loads(row["data"]))
        raise NotFound(f"datapoint {datapoint_id} not found in this project")

    def annotations_of(self, project_id: int, datapoint_id: int) -> dict[str, Any]:
        """Output name -> the datapoint's current annotation value."""
        with self.store._read() as con:
            return {
                r["name"]: orjson.loads(r["value"])
                for r in con.execute(
                    "SELECT io.name, a.value FROM annotations a JOIN project_io io ON io.id = a.output_id "
                    "WHERE a.project_id = ? AND a.datapoint_id = ?",
                    (project_id, datapoint_id),
                )
            }

    def take_lease(self, project_id: int, datapoint_id: int, email: str, ttl: float) -> bool:
        """Lease the datapoint to ``email`` (dropping their other lease in the project);
        False when someone else holds an unexpired lease on it."""
        stamp = time.time()
        with self.store._write() as con:
            held = con.execute(
                "SELECT email, expires FROM web_leases WHERE project_id = ? AND datapoint_id = ?", (project_id, datapoint_id)
            ).fetchone()
            if held is not None and held["email"] != email and held["expires"] >= stamp:
                return False
            con.execute("DELETE FROM web_leases WHERE project_id = ? AND email = ?", (project_id, email))
            con.execute(
                "INSERT INTO web_leases(project_id, datapoint_id, email, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(project_id, datapoint_id) DO UPDATE SET email = excluded.email, expires = excluded.expires",
                (project_id, datapoint_id, email, stamp + ttl),
            )
        return True

    def leased_by_others(self, project_id: int, email: str) -> set[int]:
        with self.store._read() as con:
            return {r[0] for r in con.execute(
                "SELECT datapoint_id FROM web_leases WHERE project_id = ? AND email != ? AND expires >= ?",
                (project_id, email, time.time()),
            )}

    def my_lease(self, project_id: int, email: str) -> int | None:
        with self.store._read() as con:
            row = con.execute(
                "SELECT datapoint_id FROM web_leases WHERE project_id = ? AND email = ? AND expires >= ?",
                (project_id, email, time.time()),
            ).fetchone()
        return None if row is None else row[0]

    def skip(self, project_id: int, email: str, datapoint_id: int) -> None:
        with self.store._write() as con:
            con.execute(
                "INSERT OR IGNORE INTO web_skips(project_id, email, datapoint_id) VALUES (?, ?, ?)",
                (project_id, email, datapoint_id),
            )
            con.execute("DELETE FROM web_leases WHERE project_id = ? AND email = ?", (project_id, email))

    def skipped(self, project_id: int, email: str) -> set[int]:
        with self.store._read() as con:
            return {r[0] for r in con.execute(
                "SELECT datapoint_id FROM web_skips WHERE project_id = ? AND email = ?", (project_id, email)
            )}

    def check_annotation(self, org: int, project_id: int, body: dict) -> None:
        """Raise what :meth:`Store.annotate` would for ``body``, writing nothing (so a
        form with several outputs is checked whole before any of it is saved)."""
        with self.store._read() as con:
            self.store._project_row(con, org, project_id)
            inputs, outputs = self.store._io(con, [project_id])[project_id]
            output = next((o for o in outputs if o["name"] == body["output"]), None)
            if output is None:
                raise Invalid.one(("form", body["output"]), "the project has no such output", "unknown_output")
            dp = self.store._project_datapoint(con, project_id, body["datapoint_id"])
            self.store._check_value(con, output, inputs, dp, body["value"])

    # ------------------------------------------------------------------ who annotated

    def record_annotator(self, project_id: int, output: str, datapoint_id: int, email: str) -> None:
        with self.store._write() as con:
            row = con.execute(
                "SELECT id FROM project_io WHERE project_id = ? AND kind = 'output' AND name = ?", (project_id, output)
            ).fetchone()
            if row is None:
                return
            seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM web_annotators").fetchone()[0]
            con.execute(
                "INSERT INTO web_annotators(project_id, output_id, datapoint_id, email, at, seq) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(project_id, output_id, datapoint_id) DO UPDATE SET email = excluded.email, at = excluded.at, "
                "seq = excluded.seq",
                (project_id, row[0], datapoint_id, email, now(), seq),
            )
            con.execute(
                "DELETE FROM web_skips WHERE project_id = ? AND email = ? AND datapoint_id = ?",
                (project_id, email, datapoint_id),
            )

    def history(self, project_id: int, email: str, limit: int) -> list[int]:
        """The datapoints ``email`` annotated in the project, the latest first."""
        with self.store._read() as con:
            return [r[0] for r in con.execute(
                "SELECT datapoint_id FROM web_annotators WHERE project_id = ? AND email = ? "
                "GROUP BY datapoint_id ORDER BY max(seq) DESC LIMIT ?",
                (project_id, email, limit),
            )]

    # ------------------------------------------------------------------ progress

    def totals(self, org: int, project_id: int) -> int:
        """Datapoints in the datasets the project's inputs read."""
        with self.store._read() as con:
            self.store._project_row(con, org, project_id)
            ids = self._datasets(con, project_id)
            if not ids:
                return 0
            return con.execute(
                f"SELECT coalesce(sum(datapoint_count), 0) FROM datasets WHERE id IN ({marks(len(ids))})", ids
            ).fetchone()[0]

    def by_annotator(self, project_id: int) -> dict[str, dict[str, int]]:
        """E-mail -> output name -> annotations they made in the web app that still stand
        (a later annotation through the API or a deleted datapoint no longer counts)."""
        out: dict[str, dict[str, int]] = {}
        with self.store._read() as con:
            for r in con.execute(
                "SELECT w.email, io.name, count(*) FROM web_annotators w "
                "JOIN annotations a ON a.project_id = w.project_id AND a.output_id = w.output_id "
                "AND a.datapoint_id = w.datapoint_id AND a.source = 'user' AND a.updated_at <= w.at "
                "JOIN project_io io ON io.id = w.output_id WHERE w.project_id = ? GROUP BY w.email, io.name",
                (project_id,),
            ):
                out.setdefault(r[0], {})[r[1]] = r[2]
        return out

    def source_values(self, project_id: int, dp: Candidate) -> dict[str, Any]:
        """Output name -> the datapoint's value in that output's source field (the labels
        an annotator reviews), for the outputs that have one."""
        out: dict[str, Any] = {}
        with self.store._read() as con:
            for r in con.execute(
                "SELECT io.name, f.name AS field FROM project_sources ps JOIN project_io io ON io.id = ps.io_id "
                "JOIN fields f ON f.id = ps.field_id WHERE ps.project_id = ? AND io.kind = 'output' "
                "AND f.dataset_id = ? ORDER BY io.position, ps.position",
                (project_id, dp.dataset_id),
            ):
                value = dp.data.get(r["field"])
                if value is not None and r["name"] not in out:
                    out[r["name"]] = value
        return out

    def source_labels(self, project_id: int) -> dict[str, list[str]]:
        """Output name -> the labels found in its source fields (a scan of their datasets)."""
        with self.store._read() as con:
            _, outputs = self.store._io(con, [project_id])[project_id]
            return {o["name"]: self.store._source_labels(con, o) for o in outputs if o["data_sources"]}
