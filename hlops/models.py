"""The manifest language: pydantic models for `Dataset`, `Project` and the `hlops.yaml` settings.

Every model is frozen and forbids unknown keys; the JSON Schema editors use
(`schema/hlops.schema.json`, `hlops schema`) is generated from these classes, so every
`description=` here is also the hover text a user sees in an editor.

Short forms are accepted where they read naturally. They are expanded *while validating*
(a ``BeforeValidator``), so a validated model always holds the long form and code that reads
it never has to care which form was written; the JSON Schema still offers both forms
(``json_schema_input_type``):

- a field may be just its type (``text: text``) or ``{data_type, description}``;
- an input may be just its source (``text: support-tickets.text``), a list of sources, or an
  object ``{from, description, display_only, data_type}``;
- ``from`` may be one ``dataset.field`` reference or a list of them;
- a label may be just its name or ``{name, description}``;
- a user may be just an e-mail (role ``annotator``) or ``{email, role}``.

Rules that involve several keys of one document (a ``key`` that is not a field, an output
without labels, ...) are model validators here; they raise ``PydanticCustomError`` of type
``hlops`` whose context ``at`` is the attribute path the problem is about, so the loader can
point at the exact YAML node. Rules across documents (references, types across datasets) live
in :mod:`hlops.refs`; data files are checked while streaming by :mod:`hlops.datafile`.

This module is pure: no file, network or environment access.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hlops.names import EMAIL_PATTERN, FIELD_NAME_PATTERN, NAME_PATTERN

DataType = Literal["text", "categorical", "character_offsets"]
TaskType = Literal["classification", "multilabel_classification", "sequence_tagging"]
Role = Literal["annotator", "owner", "admin"]
Ensure = Literal["present", "absent"]

DATA_TYPES: tuple[str, ...] = ("text", "categorical", "character_offsets")
TASK_TYPES: tuple[str, ...] = ("classification", "multilabel_classification", "sequence_tagging")
ROLES: tuple[str, ...] = ("annotator", "owner", "admin")
DEFAULT_ROLE: Role = "annotator"

REFERENCE_PATTERN = r"^\S(?:.*\S)?\.[A-Za-z_][A-Za-z0-9_\-]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=FIELD_NAME_PATTERN)
]
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
# "dataset.field"; the dataset part may itself contain dots, the field part may not.
Reference = Annotated[
    str,
    StringConstraints(pattern=REFERENCE_PATTERN),
    Field(description="A dataset field, written `dataset-name.field-name`."),
]


def hlops_error(message: str, *at: Any) -> PydanticCustomError:
    """A validation error the loader reports at attribute path ``at`` of the model.

    ``message`` is final text: pydantic only substitutes ``{at}``, the one context key."""
    return PydanticCustomError("hlops", message, {"at": at})


def nearest(word: str, choices: Any, n: int = 1) -> list[str]:
    """The closest of ``choices`` to ``word`` (difflib), case-insensitive matches first."""
    choices = [str(c) for c in choices]
    exact = [c for c in choices if c.lower() == str(word).lower()]
    if exact:
        return exact[:n]
    return difflib.get_close_matches(str(word), choices, n=n, cutoff=0.6)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def split_reference(ref: str) -> tuple[str, str]:
    """``"support-tickets.text"`` -> ``("support-tickets", "text")`` (split at the last dot)."""
    dataset, _, field = ref.rpartition(".")
    return dataset, field


def text_or_none(value: Any) -> str | None:
    """Empty and missing text are the same thing for comparison."""
    if value is None:
        return None
    value = str(value)
    return value if value.strip() else None


# --------------------------------------------------------------------------- short forms


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _short(key: str, what: str, *, allow_list: bool = False):
    """A before-validator expanding a scalar short form ``value`` into ``{key: value}``."""

    def expand(value: Any) -> Any:
        if isinstance(value, str) or (allow_list and isinstance(value, list)):
            return {key: value}
        if isinstance(value, dict) or isinstance(value, BaseModel):
            return value
        raise PydanticCustomError("short_form", what)

    return expand


FromList = Annotated[
    tuple[Reference, ...],
    BeforeValidator(_as_list, json_schema_input_type=Union[Reference, list[Reference]]),
]


class Lifecycle(_Model):
    """How hlops may change a resource over time."""

    prevent_destroy: bool = Field(
        False,
        description="Refuse any plan that deletes or replaces this resource, even with "
        "--allow-data-loss.",
    )
    ignore_changes: Annotated[
        tuple[str, ...],
        BeforeValidator(_as_list, json_schema_input_type=Union[str, list[str]]),
    ] = Field(
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
    lifecycle: Lifecycle = Field(
        default_factory=Lifecycle,
        description="`prevent_destroy` and `ignore_changes`.",
    )

    # Attributes that `lifecycle.ignore_changes` may name (first segment of the path).
    IGNORABLE: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[tuple[tuple[Any, ...], str]]:
        """Every rule of this document that its fields alone cannot express, as
        ``(attribute path, message)``. Empty for a valid resource."""
        out: list[tuple[tuple[Any, ...], str]] = []
        if self.renamed_from is not None and self.renamed_from == self.name:
            out.append((("renamed_from",), (
                f"renamed_from is the resource's own name {self.name!r} — write the old name, "
                "or remove renamed_from")))
        if self.ensure == "absent" and self.lifecycle.prevent_destroy:
            out.append((("ensure",), (
                "ensure: absent deletes this resource but lifecycle.prevent_destroy forbids "
                "it — remove prevent_destroy first if the deletion is meant")))
        for i, path in enumerate(self.lifecycle.ignore_changes):
            head = path.split(".", 1)[0]
            if head not in self.IGNORABLE:
                guess = nearest(head, self.IGNORABLE)
                hint = f"did you mean {guess[0]!r}?" if guess else "attributes: " + ", ".join(
                    self.IGNORABLE
                )
                out.append((("lifecycle", "ignore_changes", i), (
                    f"ignore_changes names unknown attribute {path!r} — {hint}")))
        return out

    def _raise_or_collect(self, info: ValidationInfo) -> Any:
        """Raise the first problem — or, when the loader validates with
        ``context={"problems": []}``, add them all to that list so none is hidden."""
        problems = self.problems()
        if problems:
            sink = (info.context or {}).get("problems") if info.context else None
            if sink is None:
                at, message = problems[0]
                raise hlops_error(message, *at)
            sink.extend(problems)
        return self


# --------------------------------------------------------------------------- datasets


class FieldSpec(_Model):
    """A dataset field, long form."""

    data_type: DataType = Field(
        description="`text`, `categorical` (a label per datapoint) or `character_offsets` "
        "(spans `{start, end, label}` into a text)."
    )
    description: str | None = Field(None, description="Shown in the web app.")


FieldEntry = Annotated[
    FieldSpec,
    BeforeValidator(
        _short("data_type", "expected a data type (text, categorical or character_offsets) "
               "or {data_type, description}"),
        json_schema_input_type=Union[DataType, FieldSpec],
    ),
]


def _data_shape(value: Any) -> Any:
    """One clear error for `data` instead of one per member of the union."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                raise hlops_error(
                    "an inline datapoint must be a mapping of field name to value, e.g. "
                    "`- {text: Great service!}`",
                    i,
                )
        return value
    raise hlops_error(
        "`data` must be the path of a data file (.jsonl, .json or .csv) or a list of "
        "datapoints"
    )


class Dataset(_Resource):
    """A set of typed fields and its datapoints."""

    kind: Literal["Dataset"] = Field(description="`Dataset`.")
    fields: dict[FieldName, FieldEntry] = Field(
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
    data: Annotated[
        str | list[dict[str, Any]] | None, BeforeValidator(_data_shape)
    ] = Field(
        None,
        description="A data file (`.jsonl`, `.json` or `.csv`, relative to this manifest) "
        "or a short inline list of datapoints.",
    )
    prune_data: bool = Field(
        False,
        description="Delete remote datapoints that are not in `data` (counted as data loss "
        "when they carry annotations). Off by default: hlops only adds and updates rows.",
    )

    IGNORABLE: ClassVar[tuple[str, ...]] = ("description", "fields", "key", "data")

    def field_types(self) -> dict[str, str]:
        """Field name -> data type."""
        return {name: spec.data_type for name, spec in self.fields.items()}

    def field_description(self, name: str) -> str | None:
        return self.fields[name].description

    def comparable(self) -> dict[str, Any]:
        """The dataset's comparable shape, the same for every provider (its ``Kind.desired``):
        ``{"name", "description", "key", "fields": {name: {"data_type", "description"}}}``."""
        return {
            "name": self.name,
            "description": text_or_none(self.description),
            "key": self.key,
            "fields": {
                name: {"data_type": data_type, "description": text_or_none(self.field_description(name))}
                for name, data_type in self.field_types().items()
            },
        }

    def problems(self) -> list[tuple[tuple[Any, ...], str]]:
        out = super().problems()
        if self.ensure == "present" and not self.fields:
            out.append((("fields",), (
                "a dataset needs at least one field — add `fields:` with e.g. `text: text`")))
        if self.key is not None and self.fields and self.key not in self.fields:
            guess = nearest(self.key, self.fields)
            hint = f"did you mean {guess[0]!r}?" if guess else "fields: " + ", ".join(self.fields)
            out.append((("key",), f"key {self.key!r} is not a field of this dataset — {hint}"))
        if self.prune_data and self.data is None:
            out.append((("prune_data",), (
                "prune_data without data would delete every datapoint — set `data` (use "
                "`data: []` to really empty the dataset), or remove prune_data")))
        return out

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Dataset:
        return self._raise_or_collect(info)


# --------------------------------------------------------------------------- projects


class Input(_Model):
    """A project input, long form."""

    from_: FromList = Field(
        alias="from",
        description="The dataset field(s) this input reads: `dataset.field`, or a list to "
        "read from several datasets (one field per dataset, all of the same type).",
    )
    description: str | None = Field(None, description="Shown to annotators.")
    display_only: bool = Field(
        False, description="Shown to annotators but not used by the model."
    )
    data_type: DataType | None = Field(
        None,
        description="Optional: taken from the source field; if given it must match it.",
    )


InputEntry = Annotated[
    Input,
    BeforeValidator(
        _short("from", "expected a source `dataset.field`, a list of them, or "
               "{from, description, display_only}", allow_list=True),
        json_schema_input_type=Union[Reference, list[Reference], Input],
    ),
]


class Label(_Model):
    """An output label, long form."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The label as annotators see it and the model predicts it."
    )
    description: str | None = Field(None, description="When to use this label.")


LabelEntry = Annotated[
    Label,
    BeforeValidator(
        _short("name", "expected a label name or {name, description}"),
        json_schema_input_type=Union[str, Label],
    ),
]


class Output(_Model):
    """What annotators label and the model learns."""

    task_type: TaskType = Field(
        description="`classification` (one label), `multilabel_classification` or "
        "`sequence_tagging` (spans of a text input)."
    )
    description: str | None = Field(None, description="Shown to annotators.")
    from_: FromList = Field(
        (),
        alias="from",
        description="Field(s) holding existing labels: a `categorical` field for "
        "classification, a `character_offsets` field for sequence_tagging.",
    )
    labels: tuple[LabelEntry, ...] = Field(
        (),
        description="The label taxonomy, as names or `{name, description}`. Labels can be "
        "added in place; removing one replaces the project.",
    )
    input: FieldName | None = Field(
        None, description="sequence_tagging only: the text input its spans point into."
    )

    def label_map(self) -> dict[str, str | None]:
        """Label name -> description."""
        return {label.name: label.description for label in self.labels}

    @model_validator(mode="after")
    def _check(self) -> Output:
        if self.task_type == "sequence_tagging" and not self.input:
            raise hlops_error(
                "a sequence_tagging output needs `input`: the name of the text input its "
                "spans point into",
                "task_type",
            )
        if self.task_type != "sequence_tagging" and self.input:
            raise hlops_error(
                "`input` is only for sequence_tagging outputs — remove it, or set "
                "task_type: sequence_tagging",
                "input",
            )
        if not self.from_ and not self.labels:
            raise hlops_error(
                "an output needs its labels — list them under `labels`, or point `from` at a "
                "field holding existing annotations",
                "task_type",
            )
        seen: set[str] = set()
        for i, label in enumerate(self.labels):
            if label.name in seen:
                raise hlops_error(
                    f"label {label.name!r} is listed twice — list each label once", "labels", i
                )
            seen.add(label.name)
        return self


class User(_Model):
    """A team member, long form."""

    email: Email = Field(description="The e-mail of the user's Humanloop account.")
    role: Role = Field(DEFAULT_ROLE, description="`annotator` (default), `owner` or `admin`.")


UserEntry = Annotated[
    User,
    BeforeValidator(
        _short("email", "expected an e-mail or {email, role}"),
        json_schema_input_type=Union[Email, User],
    ),
]


class Project(_Resource):
    """A labelling project: inputs read from dataset fields, outputs to annotate and train."""

    kind: Literal["Project"] = Field(description="`Project`.")
    inputs: dict[FieldName, InputEntry] = Field(
        default_factory=dict,
        description="Input name -> its source (`dataset.field`, or a list of them) or "
        "`{from, description, display_only}`.",
    )
    outputs: dict[FieldName, Output] = Field(
        default_factory=dict,
        description="Output name -> `{task_type, labels | from, description, input}`.",
    )
    guidelines: str | None = Field(
        None,
        description="Annotator guidelines: inline markdown, or the path of a `.md` file "
        "relative to this manifest (a single line ending in `.md`).",
    )
    users: tuple[UserEntry, ...] = Field(
        (),
        description="Team members: e-mails (role annotator) or `{email, role}` with role "
        "annotator, owner or admin.",
    )
    review_existing_annotations: bool = Field(
        True,
        description="false: labels already in the outputs' source fields count as "
        "annotations at once (warm start); true: annotators review them first.",
    )

    IGNORABLE: ClassVar[tuple[str, ...]] = (
        "description", "inputs", "outputs", "guidelines", "users", "review_existing_annotations"
    )

    def input_map(self) -> dict[str, Input]:
        """Input name -> :class:`Input`."""
        return dict(self.inputs)

    def user_roles(self) -> dict[str, str]:
        """E-mail -> role."""
        return {user.email: user.role for user in self.users}

    def problems(self) -> list[tuple[tuple[Any, ...], str]]:
        out = super().problems()
        if self.ensure == "present":
            if not self.inputs:
                out.append((("inputs",), (
                    "a project needs at least one input — add `inputs:` with e.g. "
                    "`text: my-dataset.text`")))
            elif all(spec.display_only for spec in self.inputs.values()):
                out.append((("inputs",), (
                    "every input is display_only, so the model has nothing to learn from — "
                    "make at least one input not display_only")))
            if not self.outputs:
                out.append((("outputs",), (
                    "a project needs at least one output — add `outputs:` with a task_type "
                    "and labels")))
        seen: dict[str, int] = {}
        for i, user in enumerate(self.users):
            folded = user.email.lower()
            if folded in seen:
                out.append((("users", i), (
                    f"user {user.email!r} is listed twice (also item {seen[folded] + 1}) — "
                    "list each user once")))
            seen.setdefault(folded, i)
        return out

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Project:
        return self._raise_or_collect(info)


Manifest = Annotated[Union[Dataset, Project], Field(discriminator="kind")]
KINDS: dict[str, type[Dataset] | type[Project]] = {"Dataset": Dataset, "Project": Project}


# --------------------------------------------------------------------------- settings


class Ownership(_Model):
    """Which remote names this repository owns."""

    prefixes: tuple[Annotated[str, StringConstraints(min_length=1, max_length=200)], ...] = Field(
        (), description="Names starting with one of these (an empty prefix would own everything: refused)."
    )
    names: tuple[Name, ...] = Field((), description="These exact names.")

    def owns(self, name: str) -> bool:
        return name in self.names or any(name.startswith(p) for p in self.prefixes)

    @property
    def empty(self) -> bool:
        return not self.prefixes and not self.names


class Settings(_Model):
    """`hlops.yaml` at the root of a manifest tree (not a manifest: it has no `kind`)."""

    provider: str = Field(
        "humanloop",
        description="The backend these manifests are applied to (a registered provider: "
        "see docs/providers.md); default humanloop.",
    )
    base_url: str | None = Field(
        None,
        description="The API's base URL; HLOPS_BASE_URL and --base-url override it.",
    )
    owns: Ownership = Field(
        default_factory=Ownership,
        description="Which remote names this repository owns: `hlops plan` lists unowned "
        "remote resources, `--prune` deletes only owned ones that no manifest declares.",
    )
    parallelism: int | None = Field(
        None, ge=1, le=64, description="How many API calls apply runs at once (1-64)."
    )

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        from hlops.provider import PROVIDERS

        if value not in PROVIDERS:
            close = nearest(value, sorted(PROVIDERS))
            hint = f" — did you mean {close[0]!r}?" if close else ""
            message = f"unknown provider {value!r}{hint} (known: {', '.join(sorted(PROVIDERS))})"
            raise PydanticCustomError(
                "hlops",
                message.replace("{", "{{").replace("}", "}}"),
                {"at": ()},
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise PydanticCustomError(
                "hlops",
                "base_url must be an http(s) URL — e.g. https://api.humanloop.com",
                {"at": ()},
            )
        return value.rstrip("/") if value else value


# --------------------------------------------------------------------------- JSON Schema


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document (a Dataset or a Project), for editors."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Manifest).json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hlops manifest",
        "description": "One YAML document of an hlops manifest: a Dataset or a Project. "
        "Generated from hlops/models.py by `hlops schema`; do not edit.",
        **schema,
    }


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of `hlops.yaml`."""
    schema = Settings.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "hlops.yaml, the settings at the root of a manifest tree. Generated "
        "from hlops/models.py by `hlops schema --settings`; do not edit.",
        **schema,
    }
