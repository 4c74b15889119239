"""Request and response models of the reference server: they make its OpenAPI.

Small bodies (projects, dataset patches, annotations) are validated by these models.
Datapoint-carrying bodies (``POST /datasets``, ``PUT /datasets/{id}``, the datapoint
PATCH/delete) are read raw and checked in one fast pass (``hlops/server/bodies.py``); their
models here only *document* them -- and the dataset settings part of ``POST /datasets`` is
still validated by :class:`DatasetSettings`.

Request models forbid unknown keys (a typo is a 422, not silently ignored). Response models
describe exactly what the server sends; schemathesis checks every answer against them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

from hlops.names import EMAIL_PATTERN, FIELD_NAME_PATTERN, NAME_PATTERN

MAX_ID = 2**63 - 1
MAX_NOTE_BYTES = 4096  # a dataset's last_applied note, as compact JSON
DataType = Literal["text", "categorical", "character_offsets"]
TaskType = Literal["classification", "multilabel_classification", "sequence_tagging"]
Role = Literal["annotator", "owner", "admin"]

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# The manifest language's rules (hlops.names): printable, no surrounding space. No text holds
# a NUL (U+0000): PostgreSQL's text cannot, so neither store takes one (a 422, not the 500
# PostgreSQL's refusal was); datapoint values may (their JSON escapes it).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=FIELD_NAME_PATTERN)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(max_length=100_000, pattern=NO_NUL)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Guidelines = Annotated[str, StringConstraints(max_length=1_000_000, pattern=NO_NUL)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- datapoints


class Span(_In):
    """A ``character_offsets`` value: ``0 <= start < end``."""

    start: Annotated[int, Field(ge=0)]
    end: Annotated[int, Field(ge=1)]
    label: LabelName


DatapointValue = str | int | list[Span] | None
Datapoint = Annotated[
    dict[FieldName, DatapointValue],
    Field(
        description="Field name -> value. `text` and `categorical` take a string (or an integer, "
        "held as its string); `character_offsets` a list of spans; null means no value."
    ),
]


class FieldIn(_In):
    name: FieldName
    data_type: DataType
    description: Text | None = None


class DatasetSettings(_In):
    """The part of ``POST /datasets`` besides ``data``."""

    name: Name
    description: Text | None = None
    key: FieldName | None = Field(
        None, description="The field identifying a datapoint: unique, required in every datapoint."
    )
    fields: Annotated[list[FieldIn], Field(min_length=1, max_length=1000)]


class DatasetCreate(DatasetSettings):
    data: Annotated[list[Datapoint], Field(max_length=10_000)] | None = Field(
        None, description="Datapoints, at most 10,000 per request (more through PUT)."
    )


class DatasetAppend(_In):
    data: Annotated[list[Datapoint], Field(max_length=10_000)]


class DatasetPatch(_In):
    name: Name | None = None
    description: Text | None = None
    key: FieldName | None = Field(None, description="null removes the key (datapoints are then keyed by hash).")
    fields: Annotated[list[FieldIn], Field(min_length=1, max_length=1000)] | None = Field(
        None, description="The full list of fields: existing ones (same type) plus new ones."
    )
    last_applied: dict[str, Any] | None = Field(
        None,
        description="A client's note about its last apply (a JSON object of at most 4 KB; null "
        "clears it). Returned as is; setting it changes neither `version` nor `updated_at`.",
    )

    @field_validator("last_applied")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_NOTE_BYTES:
            raise ValueError(f"last_applied is limited to {MAX_NOTE_BYTES:,} bytes of JSON")
        return value


class DatapointReplace(_In):
    id: Id
    data: Datapoint


class DatapointsPatch(_In):
    data: Annotated[list[DatapointReplace], Field(max_length=10_000)]


class DatapointsDelete(_In):
    ids: Annotated[list[Id], Field(max_length=10_000)]


# --------------------------------------------------------------------------- projects


class Source(_In):
    field_id: Id


class InputIn(_In):
    name: FieldName
    data_type: DataType
    description: Text | None = None
    display_only: bool = False
    data_sources: Annotated[list[Source], Field(min_length=1, max_length=100)]


class LabelIn(_In):
    name: LabelName
    description: Text | None = None


class OutputIn(_In):
    name: FieldName
    description: Text | None = None
    task_type: TaskType
    data_sources: Annotated[list[Source], Field(max_length=100)] = []
    labels: Annotated[list[LabelName | LabelIn], Field(max_length=1000)] = []
    input: FieldName | None = Field(None, description="sequence_tagging only: the text input its spans point into.")


class UserIn(_In):
    email: Email
    role: Role = "annotator"


class ProjectCreate(_In):
    name: Name
    description: Text | None = None
    inputs: Annotated[list[InputIn], Field(min_length=1, max_length=100)]
    outputs: Annotated[list[OutputIn], Field(min_length=1, max_length=100)]
    guidelines: Guidelines | None = None
    users: Annotated[list[Email | UserIn], Field(max_length=1000)] = []
    review_existing_annotations: bool = True


class ProjectPatch(_In):
    name: Name | None = None
    description: Text | None = None
    guidelines: Guidelines | None = None
    users: Annotated[list[Email | UserIn], Field(max_length=1000)] | None = None
    review_existing_annotations: bool | None = None
    inputs: Annotated[list[InputIn], Field(min_length=1, max_length=100)] | None = Field(
        None, description="The full list: existing inputs plus new ones."
    )
    outputs: Annotated[list[OutputIn], Field(min_length=1, max_length=100)] | None = Field(
        None, description="The full list: existing outputs plus new ones."
    )


class AnnotationIn(_In):
    datapoint_id: Id
    output: FieldName
    value: Annotated[
        LabelName | list[LabelName] | list[Span],
        Field(description="classification: a label; multilabel: a list of labels; sequence_tagging: a list of spans."),
    ]


# --------------------------------------------------------------------------- answers


class FieldOut(_Out):
    id: int
    name: str
    data_type: DataType
    description: str | None


class Dataset(_Out):
    id: int
    name: str
    description: str | None
    key: str | None
    fields: list[FieldOut]
    datapoint_count: int
    created_at: str
    updated_at: str
    version: int
    last_applied: dict[str, Any] | None = Field(
        None, description="The note `PATCH /datasets/{id}` set last (null: none) [ext]."
    )


class DatasetWrite(Dataset):
    datapoint_ids: list[int] = Field(description="The new datapoints' ids, in the order sent.")


class DatapointsDeleted(Dataset):
    deleted: int


class DatasetDeleted(_Out):
    id: int
    deleted_projects: list[int] = Field(description="Projects deleted with it (`force=true`).")


class ListedDigest(_Out):
    key: str | None = Field(description="The key the dataset's datapoints are bucketed by (null: their hash).")
    count: int = Field(description="Its datapoints (= `datapoint_count`).")
    hash: str = Field(description="Hex XOR of every datapoint's hash: the digest at `buckets=1` (64 zeros when empty).")


class DatasetListed(Dataset):
    digest: ListedDigest | None = Field(None, description="Only with `include=digest` [ext].")


class DatasetPage(_Out):
    items: list[DatasetListed]
    next_cursor: str | None


class DatapointOut(_Out):
    id: int
    data: dict[str, Any]


class DatapointPage(_Out):
    items: list[DatapointOut]
    next_cursor: str | None


class Bucket(_Out):
    bucket: int
    count: int
    hash: str = Field(description="XOR of the bucket's datapoint hashes (64 hex digits).")


class DigestBuckets(_Out):
    key: str | None
    buckets: int
    datapoint_count: int
    version: int
    items: list[Bucket]


class DigestRow(_Out):
    id: int
    key: str | None = Field(description="The key text (the hash when the dataset has no key).")
    hash: str
    annotations: int = Field(description="Annotations that would be lost with this datapoint.")


class DigestRows(_Out):
    items: list[DigestRow]
    next_cursor: str | None


class DigestRowsOf(_In):
    """Which buckets' rows to read (``POST /datasets/{id}/digest/rows``) [ext]."""

    buckets: int = Field(ge=1, le=65_536, description="The digest level N: a power of two <= 65,536.")
    which: list[int] = Field(
        min_length=1, max_length=65_536,
        description="Buckets of that level (each 0 <= i < N, each once) whose rows are wanted.",
    )
    key: str | None = Field(None, max_length=100, pattern=NO_NUL, description="Key field (default: the dataset's key).")


MAX_KEYS = 10_000  # keys of one POST /datasets/{id}/digest/keys
# a stored key holds no NUL (rows.prepare); the route says so in a 422 of type key_nul
KeyText = Annotated[str, WithJsonSchema({"type": "string", "pattern": NO_NUL})]


class DigestKeys(_In):
    """Whose rows to read (``POST /datasets/{id}/digest/keys``) [ext]."""

    keys: list[KeyText] = Field(
        min_length=1, max_length=MAX_KEYS,
        description="Values of the dataset's key field (1 to 10,000; one not found is left out of the answer).",
    )


class SourceOut(_Out):
    field_id: int


class InputOut(_Out):
    id: int
    name: str
    data_type: DataType
    description: str | None
    display_only: bool
    data_sources: list[SourceOut]


class LabelOut(_Out):
    name: str
    description: str | None


class OutputOut(_Out):
    id: int
    name: str
    description: str | None
    task_type: TaskType
    data_sources: list[SourceOut]
    labels: list[LabelOut]
    input: str | None


class UserOut(_Out):
    email: str
    role: Role


class Project(_Out):
    id: int
    name: str
    description: str | None
    inputs: list[InputOut]
    outputs: list[OutputOut]
    guidelines: str | None
    users: list[UserOut]
    review_existing_annotations: bool
    annotation_count: int
    created_at: str
    updated_at: str
    version: int


class ProjectPage(_Out):
    items: list[Project]
    next_cursor: str | None


class ProjectDeleted(_Out):
    id: int


class Annotation(_Out):
    project_id: int
    datapoint_id: int
    output: str
    value: Any
    source: Literal["user", "dataset"]
    created_at: str
    updated_at: str


class ModelStatus(_Out):
    status: Literal["untrained", "training", "ready", "failed"] = Field(
        description="`untrained` (< 10 annotated datapoints), `training` (a (re)train is queued or running; a "
        "previous model still serves), `ready` (trained on the current annotations), `failed` (see `error`)."
    )
    version: int = Field(description="The serving model's version (+1 per trained model); 0: none.")
    trained_on: int = Field(0, description="Annotated datapoints the serving model learnt from.")
    trained_at: str | None = None
    metrics: dict[str, Any] | None = Field(None, description="The model's metrics (docs/models.md).")
    error: str | None = Field(None, description="Why the last training failed (`failed` only).")


class BySource(_Out):
    user: int
    dataset: int


class OutputSummary(_Out):
    id: int
    name: str
    task_type: TaskType
    annotated: int = Field(description="Datapoints annotated for this output.")
    by_source: BySource
    source_labels: list[str] = Field(description="Labels found in the output's source fields.")
    model: ModelStatus


class AnnotationSummary(_Out):
    project_id: int
    annotated_datapoints: int
    annotation_count: int
    outputs: list[OutputSummary]


class Health(_Out):
    status: Literal["ok"]
    version: str


class ErrorOut(_Out):
    detail: str


class ValidationItem(_Out):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(_Out):
    detail: list[ValidationItem]
