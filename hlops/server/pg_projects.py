"""Projects, annotations and the warm start in PostgreSQL: the SQLite logic
(:mod:`sqlite_projects`) with row locks and ``jsonb``.

- In a write transaction the project's row is read ``FOR NO KEY UPDATE`` (``If-Match`` across
  processes, as for datasets).
- The warm start and the source labels read datapoints' JSON with ``jsonb`` operators
  (``convert_from(data, 'UTF8')::jsonb -> field``); a JSON ``null`` counts as no value,
  as ``json_extract`` answers SQL NULL for it in SQLite.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import orjson

from hlops.server.pg_common import PgCon
from hlops.server.sqlite_common import chunks, now
from hlops.server.sqlite_projects import ProjectsMixin
from hlops.server.store import NotFound

DOC = "convert_from(data, 'UTF8')::jsonb"
TASK_VALUE_SQL = {
    # SQL turning a source field's jsonb value into the annotation's JSON text
    "classification": "({v})::text",
    "multilabel_classification": "jsonb_build_array({v})::text",
    "sequence_tagging": "({v})::text",
}


class PgProjectsMixin(ProjectsMixin):
    @staticmethod
    def _project_row(con: PgCon, org: int, project_id: int) -> Any:
        lock = " FOR NO KEY UPDATE" if con.writing else ""
        row = con.raw(f"SELECT * FROM projects WHERE id = %s AND org_id = %s{lock}", (project_id, org)).fetchone()
        if row is None:
            raise NotFound(f"project {project_id} not found")
        return row

    @staticmethod
    def _source_labels(con: PgCon, output: dict) -> list[str]:
        seen: set[str] = set()
        for src in output["data_sources"]:
            f = con.raw("SELECT name, dataset_id, data_type FROM fields WHERE id = %s", (src["field_id"],)).fetchone()
            if f is None:
                continue
            if f["data_type"] == "character_offsets":
                sql = (
                    "SELECT DISTINCT e ->> 'label' FROM (SELECT d.j -> %(f)s::text AS v FROM "
                    f"(SELECT {DOC} AS j FROM datapoints WHERE dataset_id = %(d)s) AS d) AS s, "
                    "jsonb_array_elements(CASE WHEN jsonb_typeof(s.v) = 'array' THEN s.v ELSE '[]'::jsonb END) AS e "
                    "WHERE jsonb_typeof(e -> 'label') = 'string'"
                )
            else:
                sql = (
                    f"SELECT DISTINCT j ->> %(f)s::text FROM (SELECT {DOC} AS j FROM datapoints "
                    "WHERE dataset_id = %(d)s) AS d WHERE jsonb_typeof(j -> %(f)s::text) = 'string'"
                )
            seen.update(r[0] for r in con.raw(sql, {"f": f["name"], "d": f["dataset_id"]}))
        return sorted(seen)

    def _warm_start(
        self, con: PgCon, dataset_id: int, ids: list[int] | None, *,
        refresh: bool = False, project_id: int | None = None,
    ) -> None:
        sql = (
            "SELECT ps.project_id, ps.io_id, io.spec, f.name FROM project_sources ps "
            "JOIN project_io io ON io.id = ps.io_id JOIN projects p ON p.id = ps.project_id "
            "JOIN fields f ON f.id = ps.field_id "
            "WHERE io.kind = 'output' AND NOT p.review_existing AND f.dataset_id = %s"
        )
        args: list[Any] = [dataset_id]
        if project_id is not None:
            sql += " AND ps.project_id = %s"
            args.append(project_id)
        targets = con.raw(sql + " ORDER BY ps.project_id, ps.io_id, ps.position", args).fetchall()
        if not targets:
            return
        stamp = now()
        id_parts: list[Any] = [None] if ids is None else [list(p) for p in chunks(ids, 50_000)]
        for (pid, output_id), group in groupby(targets, key=lambda t: (t[0], t[1])):
            group = list(group)
            task = orjson.loads(group[0]["spec"])["task_type"]
            names = [t["name"] for t in group]
            value = "coalesce(" + ", ".join("nullif(j -> %s::text, 'null'::jsonb)" for _ in names) + ")"
            for part in id_parts:
                where, where_args = "dataset_id = %s", [dataset_id]
                if part is not None:
                    where += " AND id = ANY(%s)"
                    where_args.append(part)
                docs = f"(SELECT dataset_id, id, {DOC} AS j FROM datapoints WHERE {where}) AS d"
                con.raw(
                    "INSERT INTO annotations(project_id, output_id, dataset_id, datapoint_id, value, source, created_at, updated_at) "
                    f"SELECT %s, %s, dataset_id, id, {TASK_VALUE_SQL[task].format(v=value)}, 'dataset', %s, %s "
                    f"FROM {docs} WHERE {value} IS NOT NULL "
                    "ON CONFLICT (project_id, output_id, datapoint_id) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at WHERE annotations.source = 'dataset' AND annotations.value != excluded.value",
                    (pid, output_id, *names, stamp, stamp, *where_args, *names),
                )
                if refresh:
                    con.raw(
                        "DELETE FROM annotations WHERE project_id = %s AND output_id = %s AND source = 'dataset' "
                        f"AND dataset_id = %s AND datapoint_id IN (SELECT id FROM {docs} WHERE {value} IS NULL)",
                        (pid, output_id, dataset_id, *where_args, *names),
                    )
        for part in id_parts:
            where, where_args = "dataset_id = %s", [dataset_id]
            if part is not None:
                where += " AND id = ANY(%s)"
                where_args.append(part)
            con.raw(
                "UPDATE datapoints SET annotations = (SELECT count(*) FROM annotations a "
                "WHERE a.dataset_id = datapoints.dataset_id AND a.datapoint_id = datapoints.id) "
                f"WHERE {where}",
                where_args,
            )
