"""Trained models, training sets and the labelled-data export in SQLite (issue 9).

Used by :mod:`hlops.server.training` (background training) and :mod:`hlops.server.routes_ml`
(``POST /projects/{id}/predict``, ``GET /projects/{id}/export``). It reads the tables of
:class:`~hlops.server.sqlite_store.SqliteStore` through the store's own read and write
transactions, and owns one table of its own, created on first use:

``models`` -- one row per (project, output): the model that serves predictions
(``Model.to_bytes()``, NULL when the output fell below 10 annotated datapoints), its
integer ``version`` (+1 per trained model, never reused), the ``signature`` of the
training set it was trained on (see :meth:`SqliteModels.training_set`), how many examples
it learnt from, its metrics and when it was trained. The row references the project and
the output with ``ON DELETE CASCADE``, so a model dies with its project (a delete, or a
replacement: a new project id) -- with no code on the delete paths.

Nothing here parses a datapoint unless its text is needed; a training-set *signature*
reads only the stored SHA-256 of each annotated datapoint, so checking whether a model is
up to date costs one index scan of the output's annotations.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson

from hlops.server.sqlite_common import chunks, marks, now

MODELS_DDL = """
CREATE TABLE IF NOT EXISTS models (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    output_id INTEGER NOT NULL REFERENCES project_io(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,             -- +1 per trained model of this output, never reused
    model BLOB,                           -- hlops.server.ml Model.to_bytes(); NULL: none serves
    fingerprint TEXT,                     -- Model.version (content digest) of that model
    signature TEXT,                       -- training-set signature it was trained on
    trained_on INTEGER NOT NULL DEFAULT 0,
    metrics TEXT,                         -- JSON: Model.metrics
    trained_at TEXT,
    PRIMARY KEY (project_id, output_id)
)
"""
SIGNATURE_FORMAT = "hlops-trainset-1"  # bump when the signature or the text composition changes


@dataclass(frozen=True)
class ProjectSpec:
    """What training, predictions and the export need of a project."""

    id: int
    inputs: list[dict]
    outputs: list[dict]
    #: dataset id -> {input name: field name of that dataset the input reads}
    input_fields: dict[int, dict[str, str]] = field(default_factory=dict)

    def values(self, dataset_id: int, data: dict) -> dict[str, Any]:
        """Input name -> the datapoint's value (None when it has none)."""
        names = self.input_fields.get(dataset_id, {})
        return {i["name"]: data.get(names[i["name"]]) if i["name"] in names else None for i in self.inputs}


@dataclass(frozen=True)
class ModelRow:
    version: int
    has_model: bool
    fingerprint: str | None
    signature: str | None
    trained_on: int
    metrics: dict | None
    trained_at: str | None


@dataclass
class TrainingSet:
    """An output's annotated datapoints, ordered by datapoint id. ``signature`` identifies
    the set (the output's spec, the taxonomy, each datapoint's id, stored hash and
    annotation) without reading any datapoint's data; ``examples`` (``(input values,
    annotation value)``) are filled only when asked for."""

    output: dict
    count: int
    labels: list[str]
    signature: str
    examples: list[tuple[dict[str, Any], Any]] | None = None


class SqliteModels:
    """The model store over a :class:`~hlops.server.sqlite_store.SqliteStore`."""

    def __init__(self, store: Any):
        self.store = store
        with store._write() as con:
            con.execute(MODELS_DDL)

    @property
    def closed(self) -> bool:
        return bool(getattr(self.store, "_closed", False))

    def project_lock(self, project_id: int) -> AbstractContextManager:
        """Held while a project's models are refreshed: nothing beyond the trainer's own
        thread lock, as one SQLite file has one server process."""
        return nullcontext()

    # ------------------------------------------------------------------ projects

    def project(self, org: int, project_id: int) -> ProjectSpec:
        """The project of ``org`` (else :class:`NotFound`)."""
        with self.store._read() as con:
            self.store._project_row(con, org, project_id)
            return self._spec(con, project_id)

    def project_any(self, project_id: int) -> ProjectSpec | None:
        """The project, whoever owns it (background training), or None when it is gone."""
        with self.store._read() as con:
            if con.execute("SELECT 1 FROM projects WHERE id = ?", (project_id,)).fetchone() is None:
                return None
            return self._spec(con, project_id)

    def _spec(self, con: sqlite3.Connection, project_id: int) -> ProjectSpec:
        inputs, outputs = self.store._io(con, [project_id])[project_id]
        ids = sorted({s["field_id"] for i in inputs for s in i["data_sources"]})
        names: dict[int, tuple[int, str]] = {}
        for part in chunks(ids):
            for r in con.execute(f"SELECT id, dataset_id, name FROM fields WHERE id IN ({marks(len(part))})", tuple(part)):
                names[r["id"]] = (r["dataset_id"], r["name"])
        input_fields: dict[int, dict[str, str]] = {}
        for inp in inputs:
            for src in inp["data_sources"]:
                if src["field_id"] in names:
                    dataset_id, name = names[src["field_id"]]
                    input_fields.setdefault(dataset_id, {})[inp["name"]] = name
        return ProjectSpec(project_id, inputs, outputs, input_fields)

    def project_ids_after(self, after: int) -> list[int]:
        with self.store._read() as con:
            return [r[0] for r in con.execute("SELECT id FROM projects WHERE id > ? ORDER BY id", (after,))]

    def projects_reading(self, dataset_ids: set[int]) -> set[int]:
        """The projects that read (an input or an output source) a field of these datasets."""
        out: set[int] = set()
        with self.store._read() as con:
            for part in chunks(sorted(dataset_ids)):
                out.update(r[0] for r in con.execute(
                    "SELECT DISTINCT ps.project_id FROM project_sources ps JOIN fields f ON f.id = ps.field_id "
                    f"WHERE f.dataset_id IN ({marks(len(part))})",
                    tuple(part),
                ))
        return out

    # ------------------------------------------------------------------ annotations

    def annotated_counts(self, project_id: int) -> dict[int, int]:
        """Output id -> annotated datapoints."""
        with self.store._read() as con:
            return dict(con.execute(
                "SELECT output_id, count(*) FROM annotations WHERE project_id = ? GROUP BY output_id", (project_id,)
            ).fetchall())

    def training_set(self, spec: ProjectSpec, output: dict, *, with_examples: bool, min_count: int = 0) -> TrainingSet:
        """The output's training set (its examples only with ``with_examples``, and only
        when it has at least ``min_count`` datapoints). One read snapshot."""
        with self.store._read() as con:
            labels = self._taxonomy(con, output)
            rows = con.execute(
                "SELECT a.datapoint_id, a.dataset_id, a.value, d.hash FROM annotations a "
                "JOIN datapoints d ON d.dataset_id = a.dataset_id AND d.id = a.datapoint_id "
                "WHERE a.project_id = ? AND a.output_id = ? ORDER BY a.datapoint_id",
                (spec.id, output["id"]),
            ).fetchall()
            values = [orjson.loads(r["value"]) for r in rows]
            seen = set(labels)
            extra: set[str] = set()
            for v in values:  # labels annotated but neither listed nor in a source field
                for name in _labels_of(output["task_type"], v):
                    if name not in seen:
                        extra.add(name)
            labels = labels + sorted(extra)
            digest = hashlib.sha256(orjson.dumps([
                SIGNATURE_FORMAT, output["task_type"], output.get("input"), labels,
                sorted((i["name"], i["data_type"], bool(i.get("display_only"))) for i in spec.inputs),
                sorted((d, sorted(f.items())) for d, f in spec.input_fields.items()),
            ]))
            for r in rows:
                digest.update(struct.pack("<q", r["datapoint_id"]))
                digest.update(bytes(r["hash"]))
                digest.update(r["value"].encode() + b"\0")
            result = TrainingSet(output, len(rows), labels, digest.hexdigest())
            if with_examples and len(rows) >= min_count:
                result.examples = []
                by_dataset: dict[int, list[int]] = {}
                for r in rows:
                    by_dataset.setdefault(r["dataset_id"], []).append(r["datapoint_id"])
                data: dict[int, tuple[int, bytes]] = {}
                for dataset_id, ids in by_dataset.items():
                    for part in chunks(ids):
                        for d in con.execute(
                            f"SELECT id, data FROM datapoints WHERE dataset_id = ? AND id IN ({marks(len(part))})",
                            (dataset_id, *part),
                        ):
                            data[d["id"]] = (dataset_id, d["data"])
                for r, value in zip(rows, values):
                    dataset_id, raw = data[r["datapoint_id"]]
                    result.examples.append((spec.values(dataset_id, orjson.loads(raw)), value))
            return result

    def _taxonomy(self, con: sqlite3.Connection, output: dict) -> list[str]:
        """The output's labels: listed ones in their order, then those of its source
        fields (sorted)."""
        listed = [lb["name"] for lb in output.get("labels") or []]
        found = [name for name in self.store._source_labels(con, output) if name not in set(listed)]
        return listed + found

    # ------------------------------------------------------------------ models

    def model_rows(self, project_id: int) -> dict[int, ModelRow]:
        with self.store._read() as con:
            return {
                r["output_id"]: ModelRow(
                    r["version"], bool(r["has_model"]), r["fingerprint"], r["signature"], r["trained_on"],
                    orjson.loads(r["metrics"]) if r["metrics"] else None, r["trained_at"],
                )
                for r in con.execute(
                    "SELECT output_id, version, model IS NOT NULL AS has_model, fingerprint, signature, trained_on, "
                    "metrics, trained_at FROM models WHERE project_id = ?",
                    (project_id,),
                )
            }

    def model_version(self, project_id: int, output_id: int) -> int | None:
        """The version of the model serving the output, or None."""
        with self.store._read() as con:
            row = con.execute(
                "SELECT version FROM models WHERE project_id = ? AND output_id = ? AND model IS NOT NULL",
                (project_id, output_id),
            ).fetchone()
        return None if row is None else row[0]

    def model_bytes(self, project_id: int, output_id: int) -> tuple[int, bytes] | None:
        with self.store._read() as con:
            row = con.execute(
                "SELECT version, model FROM models WHERE project_id = ? AND output_id = ? AND model IS NOT NULL",
                (project_id, output_id),
            ).fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def save_model(
        self, project_id: int, output_id: int, blob: bytes, fingerprint: str, signature: str, trained_on: int,
        metrics: dict,
    ) -> int | None:
        """Store a newly trained model as the output's next version; None when the project
        or the output is gone meanwhile."""
        try:
            with self.store._write() as con:
                row = con.execute(
                    "INSERT INTO models(project_id, output_id, version, model, fingerprint, signature, trained_on, "
                    "metrics, trained_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(project_id, output_id) DO UPDATE SET version = models.version + 1, "
                    "model = excluded.model, fingerprint = excluded.fingerprint, signature = excluded.signature, "
                    "trained_on = excluded.trained_on, metrics = excluded.metrics, trained_at = excluded.trained_at "
                    "RETURNING version",
                    (project_id, output_id, blob, fingerprint, signature, trained_on, orjson.dumps(metrics).decode(), now()),
                ).fetchone()
        except self.store.IntegrityError:  # the project (or output) was deleted while training
            return None
        return row[0]

    def set_signature(self, project_id: int, output_id: int, signature: str | None) -> None:
        """The serving model is still right for a changed training set (same examples as
        the model sees them), or (None) must be retrained."""
        with self.store._write() as con:
            con.execute(
                "UPDATE models SET signature = ? WHERE project_id = ? AND output_id = ?",
                (signature, project_id, output_id),
            )

    def drop_model(self, project_id: int, output_id: int) -> None:
        """No model serves the output any more (it fell below the minimum); the version
        counter stays."""
        with self.store._write() as con:
            con.execute(
                "UPDATE models SET model = NULL, fingerprint = NULL, signature = NULL, trained_on = 0, metrics = NULL, "
                "trained_at = NULL WHERE project_id = ? AND output_id = ? AND model IS NOT NULL",
                (project_id, output_id),
            )

    # ------------------------------------------------------------------ export

    def export_page(self, spec: ProjectSpec, after: int, limit: int) -> tuple[list[dict], int | None]:
        """Up to ``limit`` annotated datapoints with ids above ``after``, by id, each
        ``{datapoint_id, inputs, outputs}`` (every input and output named, null when
        missing); and the cursor of the next page (None: done). One read snapshot; per
        output one range of the annotations' primary key, so a page costs the same at any
        depth."""
        with self.store._read() as con:
            fetched: dict[str, list[sqlite3.Row]] = {}
            ids: set[int] = set()
            for out in spec.outputs:
                rows = con.execute(
                    "SELECT datapoint_id, dataset_id, value FROM annotations WHERE project_id = ? AND output_id = ? "
                    "AND datapoint_id > ? ORDER BY datapoint_id LIMIT ?",
                    (spec.id, out["id"], after, limit),
                ).fetchall()
                fetched[out["name"]] = rows
                ids.update(r["datapoint_id"] for r in rows)
            if not ids:
                return [], None
            page = sorted(ids)[:limit]
            last = page[-1]
            dataset_of: dict[int, int] = {}
            values: dict[str, dict[int, Any]] = {}
            for name, rows in fetched.items():
                values[name] = {}
                for r in rows:
                    if r["datapoint_id"] <= last:
                        values[name][r["datapoint_id"]] = r["value"]
                        dataset_of[r["datapoint_id"]] = r["dataset_id"]
            by_dataset: dict[int, list[int]] = {}
            for dp in page:
                by_dataset.setdefault(dataset_of[dp], []).append(dp)
            data: dict[int, dict] = {}
            for dataset_id, dps in by_dataset.items():
                for part in chunks(dps):
                    for d in con.execute(
                        f"SELECT id, data FROM datapoints WHERE dataset_id = ? AND id IN ({marks(len(part))})",
                        (dataset_id, *part),
                    ):
                        data[d["id"]] = orjson.loads(d["data"])
        items = []
        for dp in page:
            outputs = {}
            for out in spec.outputs:
                raw = values[out["name"]].get(dp)
                outputs[out["name"]] = None if raw is None else orjson.loads(raw)
            items.append({
                "datapoint_id": dp,
                "inputs": spec.values(dataset_of[dp], data.get(dp, {})),
                "outputs": outputs,
            })
        return items, last


def _labels_of(task_type: str, value: Any) -> list[str]:
    if task_type == "classification":
        return [value] if isinstance(value, str) else []
    if task_type == "multilabel_classification":
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    return [s["label"] for s in value if isinstance(s, dict) and isinstance(s.get("label"), str)] if isinstance(value, list) else []
