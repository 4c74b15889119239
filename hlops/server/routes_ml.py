"""Models on the reference server (issue 9): ``POST /projects/{id}/predict`` [seed],
``GET /projects/{id}/export`` [seed, path ext], the model status in the annotation summary,
and the background :class:`~hlops.server.training.Trainer` behind them.

:func:`install_ml` adds all of it to an app made by :func:`hlops.server.app.create_app`:
two routes, ``app.state.model_status``, and a small ASGI middleware that starts the
trainer with the first request and *kicks* it after every successful write (inside the
gate, so it sees the route's real answer: a replayed idempotent write is no new write).

Decisions (docs/api.md, docs/models.md):

- predict answers ``409`` while any output of the project has fewer than 10 annotated
  datapoints, saying how many more it needs and how to add them;
- with 10 or more but no model yet (the background training has not got there, or a
  ``--local`` server just started), the request trains it itself -- synchronously, sharing
  the trainer's per-project lock, so it never trains twice -- and then answers. A model that
  exists but predates the newest annotations keeps serving until its retrain is stored;
- a request row names input values; unknown input names, values of the wrong type and a row
  without any of the inputs the model reads are ``422`` located at ``["body", "data", i,
  name]`` (the value is never repeated); display-only inputs (the seed sends
  ``external_id``) are accepted and echoed, never read by the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query
from pydantic import Field, WithJsonSchema
from starlette.responses import Response, StreamingResponse

from hlops import canonical
from hlops.server import schemas as S
from hlops.server.app import ProjectId, org_id
from hlops.server.config import Settings
from hlops.server.sqlite_models import ProjectSpec, SqliteModels
from hlops.server.store import Conflict, Invalid, TooLarge
from hlops.server.training import MIN_EXAMPLES, Trainer, model_inputs, model_text, text_inputs_of

EXPORT_PAGE = 1000  # datapoints read per page of an export (memory stays flat)
MAX_PROBLEMS = 50
NDJSON = "application/x-ndjson"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# ---------------------------------------------------------------------- schemas


# Documented like a datapoint; checked by _check_rows (located messages that never repeat a value).
ROW_SCHEMA = {
    "type": "object",
    "additionalProperties": {"anyOf": [
        {"type": "string"}, {"type": "integer"}, {"type": "null"},
        {"type": "array", "items": {
            "type": "object", "required": ["start", "end", "label"], "additionalProperties": False,
            "properties": {"start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 1},
                           "label": {"type": "string", "minLength": 1}},
        }},
    ]},
}
Row = Annotated[dict[str, Any], WithJsonSchema(ROW_SCHEMA)]


class PredictIn(S._In):
    data: list[Row] = Field(
        description="Rows to predict: input name -> value (text: a string, or an integer held as its string). "
        "At most 10,000 rows (413 above). Display-only inputs are accepted and echoed."
    )
    n_best: Annotated[int, Field(ge=1, le=1000, description="Labels per output (classification and multilabel; "
                                 "tagging always answers its one best set of spans).")] = 1


class LabelScore(S._Out):
    label: str
    confidence: float


class SpanScore(S._Out):
    start: int
    end: int
    label: str
    confidence: float


class Prediction(S._Out):
    output: str
    task_type: S.TaskType
    value: list[LabelScore] | list[SpanScore] = Field(
        description="classification: the `n_best` most probable labels (confidences over the whole taxonomy sum "
        "to 1); multilabel: every label with confidence >= 0.5, padded to `n_best`; tagging: character spans."
    )


class PredictedRow(S._Out):
    data: dict[str, Any] = Field(description="The request's row, as sent.")
    predictions: list[Prediction]


class ExportRow(S._Out):
    datapoint_id: int
    inputs: dict[str, Any] = Field(description="Every input of the project: the datapoint's value, or null.")
    outputs: dict[str, Any] = Field(description="Every output of the project: the annotation, or null.")


class TrainWait(S._Out):
    idle: bool


# ---------------------------------------------------------------------- installing


class TrainingKicks:
    """ASGI middleware: start the trainer on the first request; kick it after each write
    answered 2xx (before the answer goes out, so a client that reads the summary next sees
    the retrain queued)."""

    def __init__(self, app: Any, trainer: Trainer):
        self.app = app
        self.trainer = trainer

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.trainer.start()
        method = scope["method"]
        if method not in WRITE_METHODS:
            return await self.app(scope, receive, send)
        path = scope["path"]

        async def observed(message: dict) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                self.trainer.kick(method, path)
            await send(message)

        await self.app(scope, receive, observed)


def install_ml(app: FastAPI, store: Any, settings: Settings, *, trainer: Trainer | None = None) -> Trainer:
    """Add training, predictions and the export to ``app`` (call before the gate is added,
    so the kicks run inside it)."""
    trainer = trainer or Trainer(store.Models(store))
    app.state.trainer = trainer
    app.state.model_status = trainer.status
    _routes(app, trainer, settings)
    if settings.test_endpoints:
        _test_routes(app, trainer)
    app.add_middleware(TrainingKicks, trainer=trainer)
    return trainer


# ---------------------------------------------------------------------- routes


def _routes(app: FastAPI, trainer: Trainer, settings: Settings) -> None:
    # Routes go on the app itself, not through include_router: recent FastAPI versions
    # include a router as one lazy entry, and the gate reads route paths for its counts.
    models = trainer.models
    tags = ["models"]

    @app.post(
        "/projects/{project_id}/predict", response_model=list[PredictedRow], tags=tags,
        responses={409: {"model": S.ErrorOut, "description": "An output has fewer than 10 annotated datapoints"}},
    )
    def predict(project_id: ProjectId, body: PredictIn, org: int = Depends(org_id)) -> Response:
        """Predict every output of the project for each row [seed]. Trains a first model in
        the request when one is due but not trained yet."""
        if len(body.data) > settings.max_rows:
            raise TooLarge(f"at most {settings.max_rows:,} rows per prediction request, got {len(body.data):,}")
        spec = models.project(org, project_id)
        rows = body.data
        values = _check_rows(spec, rows)
        counts = models.annotated_counts(project_id)
        short = [(o["name"], counts.get(o["id"], 0)) for o in spec.outputs if counts.get(o["id"], 0) < MIN_EXAMPLES]
        if short:
            raise Conflict(_not_enough(project_id, short))
        served = {}
        for output in spec.outputs:
            model = trainer.model(project_id, output["id"])
            if model is None:
                trainer.ensure(project_id)
                model = trainer.model(project_id, output["id"])
            if model is None:
                why = trainer.error(project_id, output["id"]) or "no model could be trained"
                raise Conflict(f"output {output['name']!r} has no model: {why}")
            served[output["name"]] = model
        names = model_inputs(spec.inputs)
        per_output = []
        for output in spec.outputs:
            texts = [model_text(output, names, v) for v in values]
            per_output.append((output, served[output["name"]].predict(texts, n_best=body.n_best)))
        answer = [
            {
                "data": row,
                "predictions": [
                    {"output": o["name"], "task_type": o["task_type"], "value": preds[i]} for o, preds in per_output
                ],
            }
            for i, row in enumerate(rows)
        ]
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.get(
        "/projects/{project_id}/export", response_model=list[ExportRow], tags=tags,
        responses={200: {"content": {NDJSON: {"schema": {"$ref": "#/components/schemas/ExportRow"}}},
                         "description": "A JSON array, or (`format=jsonl`) one JSON object per line."}},
    )
    def export(
        project_id: ProjectId, org: int = Depends(org_id),
        format: Annotated[Literal["json", "jsonl"], Query(description="`json` (an array) or `jsonl` (a line per datapoint).")] = "json",
    ) -> Response:
        """Every annotated datapoint with its inputs and outputs, by datapoint id, streamed
        page by page from the database [seed, path ext]."""
        spec = models.project(org, project_id)
        media = NDJSON if format == "jsonl" else "application/json"
        return StreamingResponse(_export_stream(models, spec, format == "jsonl"), media_type=media)


def _test_routes(app: FastAPI, trainer: Trainer) -> None:
    @app.post("/_test/train", include_in_schema=False, response_model=TrainWait)
    def train_now(timeout: float = 60.0) -> dict:
        """Test-only: skip the debounce and wait until no training is queued or running."""
        return {"idle": trainer.flush(min(max(timeout, 0.0), 300.0))}


# ---------------------------------------------------------------------- helpers


def _check_rows(spec: ProjectSpec, rows: list[dict]) -> list[dict[str, Any]]:
    """Each row's input values, normalised; a 422 listing every problem (up to 50)."""
    inputs = {i["name"]: i for i in spec.inputs}
    names = model_inputs(spec.inputs)
    read = list(dict.fromkeys(n for o in spec.outputs for n in text_inputs_of(o, names)))
    problems: list[dict] = []
    out = []
    for i, row in enumerate(rows):
        values: dict[str, Any] = {}
        before = len(problems)
        for name, value in row.items():
            inp = inputs.get(name)
            if inp is None:
                known = ", ".join(repr(n) for n in inputs)
                problems.append({"loc": ["body", "data", i, name], "msg": f"the project has no input {name!r}; its inputs: {known}", "type": "unknown_input"})
                continue
            try:
                values[name] = canonical.normalise_value(inp["data_type"], value)
            except canonical.InvalidValue as exc:
                problems.append({"loc": ["body", "data", i, name, *exc.loc], "msg": exc.msg, "type": exc.type})
        if len(problems) == before and not any(values.get(n) is not None for n in read):
            problems.append({
                "loc": ["body", "data", i], "type": "missing",
                "msg": "the row has no value for the input(s) the model reads: " + ", ".join(repr(n) for n in read),
            })
        out.append(values)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS + 1
            problems = problems[: MAX_PROBLEMS - 1] + [{"loc": ["body", "data"], "msg": f"and {rest} more problems", "type": "too_many"}]
        raise Invalid(problems)
    return out


def _not_enough(project_id: int, short: list[tuple[str, int]]) -> str:
    parts = "; ".join(f"output {name!r} has {n} (annotate {MIN_EXAMPLES - n} more)" for name, n in short)
    return (
        f"no model yet: a model trains once an output has at least {MIN_EXAMPLES} annotated datapoints; {parts}. "
        f"Annotate with POST /projects/{project_id}/annotations or `hlops annotations import`, or warm-start from "
        "labels already in the data (review_existing_annotations: false)"
    )


def _export_stream(models: SqliteModels, spec: ProjectSpec, jsonl: bool) -> Iterator[bytes]:
    """The export, a page of datapoints per chunk. Each page is read in one step of the
    iterator (Starlette runs each step in a worker thread: a read never spans two)."""
    after, first = 0, True
    if not jsonl:
        yield b"["
    while True:
        items, after_next = models.export_page(spec, after, EXPORT_PAGE)
        if not items:
            break
        if jsonl:
            yield b"".join(orjson.dumps(item) + b"\n" for item in items)
        else:
            chunk = b",".join(b"\n" + orjson.dumps(item) for item in items)
            yield chunk if first else b"," + chunk
            first = False
        if after_next is None:
            break
        after = after_next
    if not jsonl:
        yield b"\n]\n"
