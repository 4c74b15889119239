"""Projects, annotations and the warm start in SQLite (a mixin of :class:`SqliteStore`).

**Warm start.** A project with ``review_existing_annotations: false`` treats the values
already in its outputs' source fields as annotations (source ``dataset``): they are copied
when the project is created (or the flag is turned off, or an output gains a source), and
whenever datapoints are written to those fields later. A ``user`` annotation is never
overwritten by one from the dataset. The copy is done by SQL (``json_extract``) inside the
write's transaction, so no datapoint is parsed in Python for it.

**Annotation counts.** Each datapoint row carries how many annotations it has (over all
projects and outputs), so a row digest reports it without a join; every path that adds or
removes annotations keeps it right.
"""

from __future__ import annotations

import sqlite3
from itertools import groupby
from typing import Any

import orjson

from hlops import canonical
from hlops.server.project_rules import Problems, check_io, normalise_io, normalise_users, patch_io
from hlops.server.sqlite_common import check_version, chunks, int_cursor, marks, now, page_of
from hlops.server.store import Conflict, Invalid, NotFound, Page

TASK_VALUE_SQL = {
    # SQL turning a source field's JSON value into the annotation's JSON value
    "classification": "json_quote({v})",
    "multilabel_classification": "json_array({v})",
    "sequence_tagging": "{v}",
}


class ProjectsMixin:
    """Needs ``_read()``, ``_write()``, ``_answer()`` and ``_fields()``."""

    # ------------------------------------------------------------------ reading helpers

    @staticmethod
    def _project_row(con: sqlite3.Connection, org: int, project_id: int) -> sqlite3.Row:
        row = con.execute("SELECT * FROM projects WHERE id = ? AND org_id = ?", (project_id, org)).fetchone()
        if row is None:
            raise NotFound(f"project {project_id} not found")
        return row

    @staticmethod
    def _org_fields(con: sqlite3.Connection, org: int, ids: set[int]) -> dict[int, dict]:
        """Field id -> ``{dataset_id, dataset, name, data_type}`` for the ids the
        organisation owns (others are simply absent)."""
        out: dict[int, dict] = {}
        wanted = sorted(i for i in ids if type(i) is int and 0 < i < 1 << 63)
        for part in chunks(wanted):
            for r in con.execute(
                "SELECT f.id, f.dataset_id, d.name AS dataset, f.name, f.data_type FROM fields f "
                f"JOIN datasets d ON d.id = f.dataset_id WHERE d.org_id = ? AND f.id IN ({marks(len(part))})",
                (org, *part),
            ):
                out[r["id"]] = dict(r)
        return out

    @staticmethod
    def _io(con: sqlite3.Connection, project_ids: list[int]) -> dict[int, tuple[list[dict], list[dict]]]:
        """Project id -> (inputs, outputs) in the API's shape, with ids."""
        out: dict[int, tuple[list[dict], list[dict]]] = {p: ([], []) for p in project_ids}
        for part in chunks(project_ids):
            sources: dict[int, list[dict]] = {}
            for s in con.execute(
                f"SELECT io_id, field_id FROM project_sources WHERE project_id IN ({marks(len(part))}) "
                "ORDER BY io_id, position",
                tuple(part),
            ):
                sources.setdefault(s["io_id"], []).append({"field_id": s["field_id"]})
            for r in con.execute(
                f"SELECT * FROM project_io WHERE project_id IN ({marks(len(part))}) ORDER BY project_id, position",
                tuple(part),
            ):
                item = {"id": r["id"], "name": r["name"], **orjson.loads(r["spec"]), "data_sources": sources.get(r["id"], [])}
                out[r["project_id"]][0 if r["kind"] == "input" else 1].append(_ordered(item, r["kind"]))
        return out

    def _projects_json(self, con: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[dict]:
        ids = [r["id"] for r in rows]
        io = self._io(con, ids)
        counts: dict[int, int] = {}
        for part in chunks(ids):
            counts.update(con.execute(
                f"SELECT project_id, count(*) FROM annotations WHERE project_id IN ({marks(len(part))}) GROUP BY project_id",
                tuple(part),
            ).fetchall())
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "description": r["description"],
                "inputs": io[r["id"]][0],
                "outputs": io[r["id"]][1],
                "guidelines": r["guidelines"],
                "users": orjson.loads(r["users"]),
                "review_existing_annotations": bool(r["review_existing"]),
                "annotation_count": counts.get(r["id"], 0),
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
                "version": r["version"],
            }
            for r in rows
        ]

    def _project_out(self, con: sqlite3.Connection, org: int, project_id: int) -> dict:
        return self._projects_json(con, [self._project_row(con, org, project_id)])[0]

    # ------------------------------------------------------------------ projects

    def create_project(self, org: int, spec: dict, idem: Any) -> dict:
        problems = Problems()
        inputs, outputs = normalise_io(spec["inputs"], spec["outputs"])
        users = normalise_users(spec.get("users") or [], problems)
        with self._write() as con:
            fields = self._org_fields(con, org, _source_ids(inputs + outputs))
            check_io(inputs, outputs, fields, problems)
            problems.raise_any()
            self._names_lock(con, org)
            if con.execute("SELECT 1 FROM projects WHERE org_id = ? AND name = ?", (org, spec["name"])).fetchone():
                raise Conflict(f"a project named {spec['name']!r} already exists")
            stamp = now()
            project_id = con.execute(
                "INSERT INTO projects(org_id, name, description, guidelines, users, review_existing, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (
                    org, spec["name"], spec.get("description"), spec.get("guidelines"),
                    orjson.dumps(users).decode(), spec.get("review_existing_annotations", True), stamp, stamp,
                ),
            ).lastrowid
            for kind, items in (("input", inputs), ("output", outputs)):
                for position, item in enumerate(items):
                    self._insert_io(con, project_id, kind, position, item)
            if not spec.get("review_existing_annotations", True):
                self._warm_start_project(con, project_id)
            return self._answer(con, org, idem, self._project_out(con, org, project_id))

    @staticmethod
    def _insert_io(con: sqlite3.Connection, project_id: int, kind: str, position: int, item: dict) -> None:
        spec = {k: v for k, v in item.items() if k not in ("id", "name", "data_sources")}
        io_id = con.execute(
            "INSERT INTO project_io(project_id, kind, name, position, spec) VALUES (?, ?, ?, ?, ?)",
            (project_id, kind, item["name"], position, orjson.dumps(spec).decode()),
        ).lastrowid
        ProjectsMixin._set_sources(con, project_id, io_id, item["data_sources"])

    @staticmethod
    def _set_sources(con: sqlite3.Connection, project_id: int, io_id: int, sources: list[dict]) -> None:
        con.execute("DELETE FROM project_sources WHERE io_id = ?", (io_id,))
        con.executemany(
            "INSERT INTO project_sources(io_id, field_id, project_id, position) VALUES (?, ?, ?, ?)",
            [(io_id, s["field_id"], project_id, i) for i, s in enumerate(sources)],
        )

    def list_projects(self, org: int, name: str | None, page: Page) -> dict:
        after = int_cursor(page.after)
        sql, args = "SELECT * FROM projects WHERE org_id = ? AND id > ?", [org, after]
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY id LIMIT ?", (*args, page.limit + 1)).fetchall()
            rows, next_cursor = page_of(rows, page.limit, lambda r: r["id"])
            return {"items": self._projects_json(con, rows), "next_cursor": next_cursor}

    def get_project(self, org: int, project_id: int) -> dict:
        with self._read() as con:
            return self._project_out(con, org, project_id)

    def patch_project(self, org: int, project_id: int, patch: dict, if_match: int | None, idem: Any) -> dict:
        problems = Problems()
        with self._write() as con:
            row = self._project_row(con, org, project_id)
            check_version(row["version"], if_match)
            current = self._projects_json(con, [row])[0]
            desired_in = desired_out = None
            if patch.get("inputs") is not None or patch.get("outputs") is not None:
                desired_in, desired_out = normalise_io(patch.get("inputs") or [], patch.get("outputs") or [])
                desired_in = desired_in if patch.get("inputs") is not None else None
                desired_out = desired_out if patch.get("outputs") is not None else None
            fields = self._org_fields(con, org, _source_ids((desired_in or []) + (desired_out or []) + current["inputs"] + current["outputs"]))
            io = patch_io(current["inputs"], current["outputs"], desired_in, desired_out, fields, problems)
            sets: dict[str, Any] = {}
            for attr, column in (("name", "name"), ("description", "description"), ("guidelines", "guidelines")):
                if attr in patch and patch[attr] != current[attr]:
                    sets[column] = patch[attr]
            if patch.get("users") is not None:
                users = normalise_users(patch["users"], problems)
                if users != current["users"]:
                    sets["users"] = orjson.dumps(users).decode()
            review = current["review_existing_annotations"]
            if patch.get("review_existing_annotations") is not None and patch["review_existing_annotations"] != review:
                review = patch["review_existing_annotations"]
                sets["review_existing"] = review
            problems.raise_any()
            if "name" in sets:
                self._names_lock(con, org)
            if "name" in sets and con.execute(
                "SELECT 1 FROM projects WHERE org_id = ? AND name = ? AND id != ?", (org, sets["name"], project_id)
            ).fetchone():
                raise Conflict(f"a project named {sets['name']!r} already exists")
            if not sets and not io.changed:
                return self._answer(con, org, idem, current)
            if sets:
                con.execute(
                    f"UPDATE projects SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                    (*sets.values(), project_id),
                )
            if io.changed:
                self._write_io(con, project_id, "input", io.inputs)
                self._write_io(con, project_id, "output", io.outputs)
            con.execute(
                "UPDATE projects SET version = version + 1, updated_at = ? WHERE id = ?", (now(), project_id)
            )
            if not review and ("review_existing" in sets or io.new_sources):
                self._warm_start_project(con, project_id)
            return self._answer(con, org, idem, self._project_out(con, org, project_id))

    def _write_io(self, con: sqlite3.Connection, project_id: int, kind: str, items: list[dict]) -> None:
        for position, item in enumerate(items):
            if "id" not in item:
                self._insert_io(con, project_id, kind, position, item)
                continue
            spec = {k: v for k, v in item.items() if k not in ("id", "name", "data_sources")}
            con.execute(
                "UPDATE project_io SET position = ?, spec = ? WHERE id = ?",
                (position, orjson.dumps(spec).decode(), item["id"]),
            )
            self._set_sources(con, project_id, item["id"], item["data_sources"])

    def delete_project(self, org: int, project_id: int, if_match: int | None, idem: Any) -> dict:
        with self._write() as con:
            row = self._project_row(con, org, project_id)
            check_version(row["version"], if_match)
            self._delete_project_rows(con, project_id)
            return self._answer(con, org, idem, {"id": project_id})

    @staticmethod
    def _delete_project_rows(con: sqlite3.Connection, project_id: int) -> None:
        """Delete a project with its inputs, outputs and annotations, keeping the
        datapoints' annotation counts right."""
        con.execute(
            "UPDATE datapoints SET annotations = annotations - c.n FROM ("
            "  SELECT dataset_id, datapoint_id, count(*) AS n FROM annotations WHERE project_id = ? "
            "  GROUP BY dataset_id, datapoint_id) AS c "
            "WHERE datapoints.dataset_id = c.dataset_id AND datapoints.id = c.datapoint_id",
            (project_id,),
        )
        con.execute("DELETE FROM projects WHERE id = ?", (project_id,))

    # ------------------------------------------------------------------ annotations

    def annotate(self, org: int, project_id: int, body: dict, if_match: int | None, idem: Any) -> dict:
        with self._write() as con:
            row = self._project_row(con, org, project_id)
            check_version(row["version"], if_match)
            inputs, outputs = self._io(con, [project_id])[project_id]
            output = next((o for o in outputs if o["name"] == body["output"]), None)
            if output is None:
                known = ", ".join(repr(o["name"]) for o in outputs)
                raise Invalid.one(("body", "output"), f"the project has no output {body['output']!r}; its outputs: {known}", "unknown_output")
            dp = self._project_datapoint(con, project_id, body["datapoint_id"])
            value = self._check_value(con, output, inputs, dp, body["value"])
            stamp = now()
            raw = orjson.dumps(value).decode()
            existed = con.execute(
                "SELECT 1 FROM annotations WHERE project_id = ? AND output_id = ? AND datapoint_id = ?",
                (project_id, output["id"], dp["id"]),
            ).fetchone()
            con.execute(
                "INSERT INTO annotations(project_id, output_id, dataset_id, datapoint_id, value, source, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'user', ?, ?) ON CONFLICT(project_id, output_id, datapoint_id) DO UPDATE SET "
                "value = excluded.value, source = 'user', updated_at = excluded.updated_at",
                (project_id, output["id"], dp["dataset_id"], dp["id"], raw, stamp, stamp),
            )
            if not existed:
                con.execute(
                    "UPDATE datapoints SET annotations = annotations + 1 WHERE dataset_id = ? AND id = ?",
                    (dp["dataset_id"], dp["id"]),
                )
            ann = con.execute(
                "SELECT created_at, updated_at FROM annotations WHERE project_id = ? AND output_id = ? AND datapoint_id = ?",
                (project_id, output["id"], dp["id"]),
            ).fetchone()
            result = {
                "project_id": project_id,
                "datapoint_id": dp["id"],
                "output": output["name"],
                "value": value,
                "source": "user",
                "created_at": ann["created_at"],
                "updated_at": ann["updated_at"],
            }
            return self._answer(con, org, idem, result)

    @staticmethod
    def _project_datapoint(con: sqlite3.Connection, project_id: int, datapoint_id: int) -> sqlite3.Row:
        """The datapoint, if it is in a dataset the project reads (else 404)."""
        dataset_ids = [r[0] for r in con.execute(
            "SELECT DISTINCT f.dataset_id FROM project_sources ps JOIN fields f ON f.id = ps.field_id "
            "WHERE ps.project_id = ?",
            (project_id,),
        )]
        for dataset_id in dataset_ids:
            dp = con.execute(
                "SELECT dataset_id, id, data FROM datapoints WHERE dataset_id = ? AND id = ?", (dataset_id, datapoint_id)
            ).fetchone()
            if dp is not None:
                return dp
        raise NotFound(f"datapoint {datapoint_id} not found in the datasets this project reads")

    def _check_value(self, con: sqlite3.Connection, output: dict, inputs: list[dict], dp: sqlite3.Row, value: Any) -> Any:
        """The annotation value, validated for the output's task type (the error messages
        never repeat the value)."""
        task = output["task_type"]
        labels = {lb["name"] for lb in output["labels"]}
        closed = not output["data_sources"]  # labels only from the list: nothing else is allowed

        def check_label(name: Any, loc: tuple) -> None:
            if not isinstance(name, str) or not name:
                raise Invalid.one(loc, "a label must be a non-empty string", "string_type")
            if closed and name not in labels:
                raise Invalid.one(loc, f"not one of the labels of output {output['name']!r}", "unknown_label")

        if task == "classification":
            check_label(value, ("body", "value"))
            return value
        if task == "multilabel_classification":
            if not isinstance(value, list):
                raise Invalid.one(("body", "value"), "a multilabel annotation is a list of labels", "list_type")
            for i, name in enumerate(value):
                check_label(name, ("body", "value", i))
            if len(set(value)) != len(value):
                raise Invalid.one(("body", "value"), "a label is listed twice", "duplicate")
            return sorted(value)
        try:
            spans = canonical.normalise_value("character_offsets", value)
        except canonical.InvalidValue as exc:
            raise Invalid.one(("body", "value", *exc.loc), exc.msg, exc.type) from None
        for i, span in enumerate(spans):
            check_label(span["label"], ("body", "value", i, "label"))
        text = self._input_text(con, output["input"], inputs, dp)
        if text is None:
            raise Invalid.one(("body", "value"), f"the datapoint has no text for input {output['input']!r}", "missing")
        problem = canonical.check_spans_within(spans, text)
        if problem:
            raise Invalid.one(("body", "value"), "a span runs past the end of its text", "span_bounds")
        return spans

    @staticmethod
    def _input_text(con: sqlite3.Connection, input_name: str, inputs: list[dict], dp: sqlite3.Row) -> str | None:
        inp = next((i for i in inputs if i["name"] == input_name), None)
        if inp is None:
            return None
        data = orjson.loads(dp["data"])
        for src in inp["data_sources"]:
            f = con.execute("SELECT name, dataset_id FROM fields WHERE id = ?", (src["field_id"],)).fetchone()
            if f is not None and f["dataset_id"] == dp["dataset_id"]:
                value = data.get(f["name"])
                return value if isinstance(value, str) else None
        return None

    def annotation_summary(self, org: int, project_id: int) -> dict:
        with self._read() as con:
            self._project_row(con, org, project_id)
            _, outputs = self._io(con, [project_id])[project_id]
            counts: dict[int, dict[str, int]] = {}
            for r in con.execute(
                "SELECT output_id, source, count(*) FROM annotations WHERE project_id = ? GROUP BY output_id, source",
                (project_id,),
            ):
                counts.setdefault(r[0], {})[r[1]] = r[2]
            annotated = con.execute(
                "SELECT count(DISTINCT datapoint_id), count(*) FROM annotations WHERE project_id = ?", (project_id,)
            ).fetchone()
            items = []
            for out in outputs:
                by = counts.get(out["id"], {})
                items.append({
                    "id": out["id"],
                    "name": out["name"],
                    "task_type": out["task_type"],
                    "annotated": sum(by.values()),
                    "by_source": {"user": by.get("user", 0), "dataset": by.get("dataset", 0)},
                    "source_labels": self._source_labels(con, out),
                })
        return {
            "project_id": project_id,
            "annotated_datapoints": annotated[0],
            "annotation_count": annotated[1],
            "outputs": items,
        }

    @staticmethod
    def _source_labels(con: sqlite3.Connection, output: dict) -> list[str]:
        """The labels found in the output's source fields (a scan of their datasets)."""
        seen: set[str] = set()
        for src in output["data_sources"]:
            f = con.execute("SELECT name, dataset_id, data_type FROM fields WHERE id = ?", (src["field_id"],)).fetchone()
            if f is None:
                continue
            path = _json_path(f["name"])
            if f["data_type"] == "character_offsets":
                sql = (
                    "SELECT DISTINCT json_extract(j.value, '$.label') FROM datapoints, "
                    "json_each(CAST(datapoints.data AS TEXT), ?) AS j WHERE datapoints.dataset_id = ?"
                )
            else:
                sql = (
                    "SELECT DISTINCT json_extract(CAST(data AS TEXT), ?) FROM datapoints WHERE dataset_id = ?"
                )
            seen.update(r[0] for r in con.execute(sql, (path, f["dataset_id"])) if isinstance(r[0], str))
        return sorted(seen)

    # ------------------------------------------------------------------ warm start

    def _warm_start_project(self, con: sqlite3.Connection, project_id: int) -> None:
        dataset_ids = [r[0] for r in con.execute(
            "SELECT DISTINCT f.dataset_id FROM project_sources ps JOIN fields f ON f.id = ps.field_id "
            "JOIN project_io io ON io.id = ps.io_id WHERE ps.project_id = ? AND io.kind = 'output'",
            (project_id,),
        )]
        for dataset_id in dataset_ids:
            self._warm_start(con, dataset_id, None, project_id=project_id)

    def _warm_start(
        self, con: sqlite3.Connection, dataset_id: int, ids: list[int] | None, *,
        refresh: bool = False, project_id: int | None = None,
    ) -> None:
        """Copy source-field values of ``dataset_id``'s datapoints (``ids``, or all) into
        ``dataset`` annotations of every warm-started project reading them (or only
        ``project_id``). ``refresh``: the datapoints were rewritten, so a ``dataset``
        annotation whose source value is gone is deleted too."""
        sql = (
            "SELECT ps.project_id, ps.io_id, io.spec, f.name FROM project_sources ps "
            "JOIN project_io io ON io.id = ps.io_id JOIN projects p ON p.id = ps.project_id "
            "JOIN fields f ON f.id = ps.field_id "
            "WHERE io.kind = 'output' AND p.review_existing = 0 AND f.dataset_id = ?"
        )
        args: list[Any] = [dataset_id]
        if project_id is not None:
            sql += " AND ps.project_id = ?"
            args.append(project_id)
        targets = con.execute(sql + " ORDER BY ps.project_id, ps.io_id, ps.position", args).fetchall()
        if not targets:
            return
        stamp = now()
        id_parts = [None] if ids is None else list(chunks(ids))
        for (pid, output_id), group in groupby(targets, key=lambda t: (t[0], t[1])):
            group = list(group)
            task = orjson.loads(group[0]["spec"])["task_type"]
            paths = [_json_path(t["name"]) for t in group]
            value = "coalesce(" + ", ".join("json_extract(CAST(data AS TEXT), ?)" for _ in paths) + ")"
            if len(paths) == 1:
                value = "json_extract(CAST(data AS TEXT), ?)"
            for part in id_parts:
                where, where_args = "dataset_id = ?", [dataset_id]
                if part is not None:
                    where += f" AND id IN ({marks(len(part))})"
                    where_args += list(part)
                con.execute(
                    "INSERT INTO annotations(project_id, output_id, dataset_id, datapoint_id, value, source, created_at, updated_at) "
                    f"SELECT ?, ?, dataset_id, id, {TASK_VALUE_SQL[task].format(v=value)}, 'dataset', ?, ? "
                    f"FROM datapoints WHERE {where} AND {value} IS NOT NULL "
                    "ON CONFLICT(project_id, output_id, datapoint_id) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at WHERE annotations.source = 'dataset' AND annotations.value != excluded.value",
                    (pid, output_id, *paths, stamp, stamp, *where_args, *paths),
                )
                if refresh:
                    con.execute(
                        "DELETE FROM annotations WHERE project_id = ? AND output_id = ? AND source = 'dataset' "
                        f"AND dataset_id = ? AND datapoint_id IN (SELECT id FROM datapoints WHERE {where} AND {value} IS NULL)",
                        (pid, output_id, dataset_id, *where_args, *paths),
                    )
        for part in id_parts:
            where, where_args = "dataset_id = ?", [dataset_id]
            if part is not None:
                where += f" AND id IN ({marks(len(part))})"
                where_args += list(part)
            con.execute(
                "UPDATE datapoints SET annotations = (SELECT count(*) FROM annotations a "
                "WHERE a.dataset_id = datapoints.dataset_id AND a.datapoint_id = datapoints.id) "
                f"WHERE {where}",
                where_args,
            )


def _source_ids(items: list[dict]) -> set[int]:
    return {s["field_id"] for item in items for s in item["data_sources"]}


def _json_path(field_name: str) -> str:
    """A JSON path to a top-level member (field names are identifiers: no quoting issues)."""
    return '$."' + field_name.replace('"', "") + '"'


def _ordered(item: dict, kind: str) -> dict:
    keys = (
        ("id", "name", "data_type", "description", "display_only", "data_sources") if kind == "input"
        else ("id", "name", "description", "task_type", "data_sources", "labels", "input")
    )
    return {k: item.get(k) for k in keys}
