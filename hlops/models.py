"""The manifest language: pydantic models for `Dataset`, `Project` and the `hlops.yaml` settings.

Every model is frozen and forbids unknown keys; the JSON Schema editors use
(`schema/hlops.schema.json`, `hlops schema`) is generated from these classes, so every
`description=` here is also the hover text a user sees in an editor.

Short forms are accepted where they read naturally and are normalised by accessors, never
by mutating the model:

- a field may be just its type (``text: text``) or ``{data_type, description}``;
- an input may be just its source (``text: support-tickets.text``) or an object;
- ``from`` may be one ``dataset.field`` reference or a list of them;
- a label may be just its name or ``{name, description}``;
- a user may be just an e-mail (role ``annotator``) or ``{email, role}``.

Cross-document rules (references, types across datasets) live in :mod:`hlops.refs`;
data files are checked while streaming by :mod:`hlops.datafile`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DataType = Literal["text", "categorical", "character_offsets"]
TaskType = Literal["classification", "multilabel_classification", "sequence_tagging"]
Role = Literal["annotator", "owner", "admin"]
Ensure = Literal["present", "absent"]

DEFAULT_ROLE: Role = "annotator"

# Resource names: printable, no leading/trailing space, no newline. Dots are allowed in
# dataset names (a reference splits at the *last* dot), never in field names.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s/](?:[^\n\r\t/]*[^\s/])?$"),
]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
# "dataset.field"; the dataset part may itself contain dots, the field part may not.
Reference = Annotated[
    str,
    StringConstraints(pattern=r"^\S(?:.*\S)?\.[A-Za-z_][A-Za-z0-9_\-]*$"),
    Field(description="A dataset field, written `dataset-name.field-name`."),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def split_reference(ref: str) -> tuple[str, str]:
    """``"support-tickets.text"`` -> ``("support-tickets", "text")`` (split at the last dot)."""
    dataset, _, field = ref.rpartition(".")
    return dataset, field


class Lifecycle(_Model):
    prevent_destroy: bool = Field(
        False,
        description="Refuse any plan that deletes or replaces this resource, even with "
        "--allow-data-loss.",
    )
    ignore_changes: tuple[str, ...] = Field(
        (),
        description="Attribute paths whose remote value is left alone (e.g. `guidelines`, "
        "`users`, `outputs.sentiment.labels`): edits made in the web app are not reverted.",
    )


class _Resource(_Model):
    name: Name = Field(description="Unique per organisation and kind; hlops matches by name.")
    description: str | None = Field(None, description="Free text shown in the web app.")
    ensure: Ensure = Field(
        "present",
        description="`absent` deletes the resource (a plan marks it as data loss).",
    )
    renamed_from: Name | None = Field(
        None,
        description="The resource's previous name: renames it in place instead of "
        "destroy + create, keeping its id, datapoints and annotations.",
    )
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)


# --------------------------------------------------------------------------- datasets


class FieldSpec(_Model):
    data_type: DataType = Field(
        description="`text`, `categorical` (a label per datapoint) or `character_offsets` "
        "(spans `{start, end, label}` into a text)."
    )
    description: str | None = None


class Dataset(_Resource):
    """A set of typed fields and its datapoints."""

    kind: Literal["Dataset"]
    fields: dict[FieldName, DataType | FieldSpec] = Field(
        default_factory=dict,
        description="Field name -> data type (or `{data_type, description}`). Fields can be "
        "added in place; changing a type or removing a field replaces the dataset.",
    )
    key: FieldName | None = Field(
        None,
        description="The field that identifies a datapoint across runs (unique per "
        "datapoint). Without it, datapoints are matched by content and an edit shows as "
        "remove + add.",
    )
    data: str | list[dict[str, Any]] | None = Field(
        None,
        description="A data file (`.jsonl`, `.json` or `.csv`, relative to this manifest) "
        "or a short inline list of datapoints.",
    )
    prune_data: bool = Field(
        False,
        description="Delete remote datapoints that are not in `data` (counted as data loss "
        "when they carry annotations). Off by default: hlops only adds and updates rows.",
    )

    def field_types(self) -> dict[str, str]:
        """Field name -> data type, whichever form each field was written in."""
        return {
            name: spec if isinstance(spec, str) else spec.data_type
            for name, spec in self.fields.items()
        }

    def field_description(self, name: str) -> str | None:
        spec = self.fields[name]
        return None if isinstance(spec, str) else spec.description

    @model_validator(mode="after")
    def _present_needs_fields(self) -> Dataset:
        if self.ensure == "present" and not self.fields:
            raise ValueError("a dataset needs at least one field under `fields`")
        if self.key is not None and self.fields and self.key not in self.fields:
            known = ", ".join(self.fields)
            raise ValueError(f"key {self.key!r} is not a field of this dataset (fields: {known})")
        return self


# --------------------------------------------------------------------------- projects


class Input(_Model):
    from_: tuple[Reference, ...] = Field(
        alias="from",
        description="The dataset field(s) this input reads: `dataset.field`, or a list to "
        "read from several datasets.",
    )
    description: str | None = None
    display_only: bool = Field(
        False, description="Shown to annotators but not used by the model."
    )
    data_type: DataType | None = Field(
        None,
        description="Optional: taken from the source field; if given it must match it.",
    )

    _from_list = field_validator("from_", mode="before")(_as_list)


class Label(_Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None


class Output(_Model):
    task_type: TaskType = Field(
        description="`classification` (one label), `multilabel_classification` or "
        "`sequence_tagging` (spans of a text input)."
    )
    description: str | None = None
    from_: tuple[Reference, ...] = Field(
        (),
        alias="from",
        description="Field(s) holding existing labels: a `categorical` field for "
        "classification, a `character_offsets` field for sequence_tagging.",
    )
    labels: tuple[str | Label, ...] = Field(
        (),
        description="The label taxonomy, as names or `{name, description}`. Labels can be "
        "added in place; removing one replaces the project.",
    )
    input: str | None = Field(
        None, description="sequence_tagging only: the text input its spans point into."
    )

    _from_list = field_validator("from_", mode="before")(_as_list)

    def label_map(self) -> dict[str, str | None]:
        """Label name -> description, whichever form each label was written in."""
        out: dict[str, str | None] = {}
        for label in self.labels:
            if isinstance(label, str):
                out[label] = None
            else:
                out[label.name] = label.description
        return out

    @model_validator(mode="after")
    def _check_shape(self) -> Output:
        if self.task_type == "sequence_tagging" and not self.input:
            raise ValueError("a sequence_tagging output needs `input`: the text input its spans point into")
        if self.task_type != "sequence_tagging" and self.input:
            raise ValueError("`input` is only for sequence_tagging outputs")
        if not self.from_ and not self.labels:
            raise ValueError(
                "an output needs its labels: list them under `labels`, or point `from` at a "
                "field holding existing annotations"
            )
        names = [label if isinstance(label, str) else label.name for label in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label {dupes[0]!r} is listed twice")
        return self


class User(_Model):
    email: Email
    role: Role = DEFAULT_ROLE


class Project(_Resource):
    """A labelling project: inputs read from dataset fields, outputs to annotate and train."""

    kind: Literal["Project"]
    inputs: dict[FieldName, Reference | Input] = Field(
        default_factory=dict,
        description="Input name -> its source (`dataset.field`) or `{from, description, "
        "display_only}`.",
    )
    outputs: dict[FieldName, Output] = Field(default_factory=dict)
    guidelines: str | None = Field(
        None,
        description="Annotator guidelines: inline markdown, or the path of a `.md` file "
        "relative to this manifest.",
    )
    users: tuple[Email | User, ...] = Field(
        (),
        description="Team members: e-mails (role annotator) or `{email, role}` with role "
        "annotator, owner or admin.",
    )
    review_existing_annotations: bool = Field(
        True,
        description="false: labels already in the outputs' source fields count as "
        "annotations at once (warm start); true: annotators review them first.",
    )

    def input_map(self) -> dict[str, Input]:
        """Input name -> :class:`Input`, whichever form each input was written in."""
        return {
            name: Input.model_validate({"from": spec}) if isinstance(spec, str) else spec
            for name, spec in self.inputs.items()
        }

    def user_roles(self) -> dict[str, str]:
        """E-mail -> role, whichever form each user was written in."""
        out: dict[str, str] = {}
        for user in self.users:
            if isinstance(user, str):
                out[user] = DEFAULT_ROLE
            else:
                out[user.email] = user.role
        return out

    @model_validator(mode="after")
    def _present_needs_io(self) -> Project:
        if self.ensure == "present":
            if not self.inputs:
                raise ValueError("a project needs at least one input under `inputs`")
            if not self.outputs:
                raise ValueError("a project needs at least one output under `outputs`")
        emails = [u if isinstance(u, str) else u.email for u in self.users]
        dupes = sorted({e for e in emails if emails.count(e) > 1})
        if dupes:
            raise ValueError(f"user {dupes[0]!r} is listed twice")
        return self


Manifest = Annotated[Union[Dataset, Project], Field(discriminator="kind")]
KINDS = {"Dataset": Dataset, "Project": Project}


# --------------------------------------------------------------------------- settings


class Ownership(_Model):
    prefixes: tuple[str, ...] = Field((), description="Names starting with one of these.")
    names: tuple[Name, ...] = Field((), description="These exact names.")

    def owns(self, name: str) -> bool:
        return name in self.names or any(name.startswith(p) for p in self.prefixes)

    @property
    def empty(self) -> bool:
        return not self.prefixes and not self.names


class Settings(_Model):
    """`hlops.yaml` at the root of a manifest tree."""

    base_url: str | None = Field(
        None,
        description="The API's base URL; HLOPS_BASE_URL and --base-url override it.",
    )
    owns: Ownership = Field(
        default_factory=Ownership,
        description="Which remote names this repository owns: `hlops plan` lists unowned "
        "remote resources, `--prune` deletes only owned ones that no manifest declares.",
    )
    parallelism: int | None = Field(None, ge=1, le=64)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.humanloop.com")
        return value.rstrip("/") if value else value
