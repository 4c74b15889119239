"""Cross-document rules: names, references between projects and datasets, dependency levels.

A single document is checked by its model (:mod:`hlops.models`); what needs several documents
is checked here, on validated models, without any file access:

- names are unique per kind (across files); ``renamed_from`` does not name a resource that is
  still declared, and two resources are not renamed from the same name;
- every ``dataset.field`` reference names a declared, present dataset and one of its fields
  (else: the nearest names);
- an input's sources all have one type (its declared ``data_type``, if given) and come from
  different datasets;
- an output's ``from`` fields have the type its task needs (``categorical`` for
  classification, ``character_offsets`` for tagging) and belong to a dataset the project's
  inputs read;
- a tagging output's ``input`` is a text input of the project, reading the dataset its spans
  come from.

Problems are returned as :class:`RefProblem` (kind, name, attribute path, message); the
loader turns the attribute path into a file position. Documents that failed validation, and
names that may be declared in files that could not be parsed, are *unverifiable*: references
to them are not reported, so one broken file does not cascade into a page of errors.

It also answers two questions the rest of hlops asks: which text field a span field points
into (:func:`span_texts`) and in which order resources can be created (:func:`levels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hlops.models import Dataset, Project, nearest, split_reference

CLASSIFICATION_TASKS = ("classification", "multilabel_classification")


@dataclass(frozen=True)
class Declared:
    """A validated resource and where its document starts (``path:line:col``, for messages
    that point at another declaration)."""

    model: Dataset | Project
    where: str


@dataclass(frozen=True)
class RefProblem:
    kind: str
    name: str
    at: tuple[Any, ...]
    message: str
    index: int = 0  # which declaration of (kind, name), for duplicates


@dataclass
class _Context:
    datasets: dict[str, Dataset]
    unverifiable: frozenset[str]
    problems: list[RefProblem] = field(default_factory=list)


def check(
    declared: Sequence[Declared], unverifiable: Iterable[str] = ()
) -> tuple[dict[str, Dataset], dict[str, Project], list[RefProblem]]:
    """Check ``declared`` (in declaration order). Returns the datasets and projects by name
    (the first declaration of a duplicated name wins) and every problem found.

    ``unverifiable``: dataset names that may exist but could not be checked (their document
    failed validation, or sits in a file that could not be parsed)."""
    problems: list[RefProblem] = []
    by_kind: dict[str, dict[str, Declared]] = {"Dataset": {}, "Project": {}}
    counts: dict[tuple[str, str], int] = {}
    for item in declared:
        kind, name = item.model.kind, item.model.name
        index = counts.get((kind, name), 0)
        counts[(kind, name)] = index + 1
        first = by_kind[kind].get(name)
        if first is not None:
            problems.append(RefProblem(kind, name, ("name",), (
                f"{kind} {name!r} is declared twice (first at {first.where}) — names are unique "
                f"per kind; rename one of them"), index))
            continue
        by_kind[kind][name] = item
    datasets = {n: d.model for n, d in by_kind["Dataset"].items()}
    projects = {n: d.model for n, d in by_kind["Project"].items()}
    for kind, items in by_kind.items():
        problems += _check_renames(kind, items)
    ctx = _Context(datasets, frozenset(unverifiable), problems)
    for project in projects.values():
        if project.ensure == "present":
            _check_project(ctx, project)
    return datasets, projects, ctx.problems  # type: ignore[return-value]


def _check_renames(kind: str, items: Mapping[str, Declared]) -> list[RefProblem]:
    problems = []
    renamed: dict[str, str] = {}
    for name, item in items.items():
        old = item.model.renamed_from
        if old is None:
            continue
        if old in items and items[old].model.ensure == "present":
            problems.append(RefProblem(kind, name, ("renamed_from",), (
                f"renamed_from {old!r}, but a {kind} {old!r} is still declared (at "
                f"{items[old].where}) — remove that declaration, or this renamed_from")))
        elif old in renamed:
            problems.append(RefProblem(kind, name, ("renamed_from",), (
                f"{kind} {renamed[old]!r} is also renamed from {old!r} — only one resource can "
                "take over the old one")))
        else:
            renamed[old] = name
    return problems


def _resolve(ctx: _Context, project: Project, at: tuple, ref: str, role: str) -> str | None:
    """The data type of ``ref``, or None (unknown, reported or unverifiable)."""
    ds_name, field_name = split_reference(ref)
    dataset = ctx.datasets.get(ds_name)
    if dataset is None:
        if ds_name in ctx.unverifiable:
            return None
        known = sorted(ctx.datasets)
        guess = nearest(ds_name, known)
        hint = (f"did you mean {guess[0]!r}?" if guess else
                "declared datasets: " + ", ".join(known) if known else
                "no dataset is declared; add a manifest with `kind: Dataset`")
        ctx.problems.append(RefProblem("Project", project.name, at, (
            f"{role} reads from dataset {ds_name!r}, which no manifest declares — {hint}")))
        return None
    if dataset.ensure == "absent":
        ctx.problems.append(RefProblem("Project", project.name, at, (
            f"{role} reads from dataset {ds_name!r}, which is declared `ensure: absent` — "
            "remove this source, or keep the dataset")))
        return None
    types = dataset.field_types()
    if field_name not in types:
        guess = nearest(field_name, types)
        hint = f"did you mean {guess[0]!r}?" if guess else "fields: " + ", ".join(types)
        ctx.problems.append(RefProblem("Project", project.name, at, (
            f"dataset {ds_name!r} has no field {field_name!r} — {hint}")))
        return None
    return types[field_name]


def _check_project(ctx: _Context, project: Project) -> None:
    input_types: dict[str, str | None] = {}
    input_datasets: dict[str, set[str]] = {}
    complete = True  # every input source resolved (else "which inputs read" is unknown)
    for name, spec in project.inputs.items():
        role = f"input {name!r}"
        seen: dict[str, str] = {}  # dataset -> reference
        first_type: tuple[str, str] | None = None
        for i, ref in enumerate(spec.from_):
            at = ("inputs", name, "from", i) if len(spec.from_) > 1 else ("inputs", name, "from")
            ds_name = split_reference(ref)[0]
            if ds_name in seen:
                ctx.problems.append(RefProblem("Project", project.name, at, (
                    f"{role} reads dataset {ds_name!r} twice ({seen[ds_name]} and {ref}) — an "
                    "input reads at most one field per dataset")))
                continue
            seen[ds_name] = ref
            data_type = _resolve(ctx, project, at, ref, role)
            if data_type is None:
                complete = complete and ds_name in ctx.datasets
                continue
            if spec.data_type is not None and data_type != spec.data_type:
                ctx.problems.append(RefProblem("Project", project.name, ("inputs", name, "data_type"), (
                    f"{role} is declared {spec.data_type} but {ref} is a {data_type} field — "
                    f"remove data_type (it is taken from the field), or read a {spec.data_type} "
                    "field")))
            elif first_type is None:
                first_type = (ref, data_type)
            elif data_type != first_type[1]:
                ctx.problems.append(RefProblem("Project", project.name, at, (
                    f"{role} reads fields of different types: {first_type[0]} is "
                    f"{first_type[1]}, {ref} is {data_type} — all sources of an input must have "
                    "the same type")))
        input_types[name] = spec.data_type or (first_type[1] if first_type else None)
        input_datasets[name] = set(seen)
    read_by_inputs = set().union(*input_datasets.values()) if input_datasets else set()
    for name, output in project.outputs.items():
        _check_output(ctx, project, name, output, input_types, input_datasets,
                      read_by_inputs if complete else None)


def _check_output(ctx, project, name, output, input_types, input_datasets, read_by_inputs):
    role = f"output {name!r}"
    tagging = output.task_type == "sequence_tagging"
    wanted = "character_offsets" if tagging else "categorical"
    for i, ref in enumerate(output.from_):
        at = ("outputs", name, "from", i) if len(output.from_) > 1 else ("outputs", name, "from")
        data_type = _resolve(ctx, project, at, ref, role)
        ds_name = split_reference(ref)[0]
        if data_type is not None and data_type != wanted:
            fix = "list `labels` instead" if not output.labels else "remove this source"
            ctx.problems.append(RefProblem("Project", project.name, at, (
                f"{role} is a {output.task_type} output, so its labels come from a {wanted} "
                f"field, but {ref} is {data_type} — point `from` at a {wanted} field, or "
                f"{fix}")))
        elif data_type is not None and read_by_inputs is not None and ds_name not in read_by_inputs:
            ctx.problems.append(RefProblem("Project", project.name, at, (
                f"{role} reads labels from dataset {ds_name!r}, which none of this project's "
                f"inputs read — add an input from {ds_name!r}, or remove this source")))
        elif data_type is not None and tagging and output.input in input_datasets and (
            ds_name not in input_datasets[output.input]
        ):
            ctx.problems.append(RefProblem("Project", project.name, at, (
                f"{role} reads spans from dataset {ds_name!r} but input {output.input!r} does "
                f"not read {ds_name!r} — spans point into the text of the same datapoint")))
    if tagging and output.input is not None:
        at = ("outputs", name, "input")
        if output.input not in input_types:
            guess = nearest(output.input, input_types)
            hint = f"did you mean {guess[0]!r}?" if guess else "inputs: " + ", ".join(input_types)
            ctx.problems.append(RefProblem("Project", project.name, at, (
                f"{role} points into input {output.input!r}, which this project does not have — "
                f"{hint}")))
        elif input_types[output.input] not in (None, "text"):
            ctx.problems.append(RefProblem("Project", project.name, at, (
                f"{role} points into input {output.input!r}, a {input_types[output.input]} "
                "input — a sequence_tagging output needs a text input")))


def input_types(project: Project, datasets: Mapping[str, Dataset]) -> dict[str, str | None]:
    """Input name -> data type (declared, else the first source field's type)."""
    out: dict[str, str | None] = {}
    for name, spec in project.inputs.items():
        data_type = spec.data_type
        for ref in spec.from_:
            if data_type is not None:
                break
            ds_name, field_name = split_reference(ref)
            dataset = datasets.get(ds_name)
            if dataset is not None:
                data_type = dataset.field_types().get(field_name)
        out[name] = data_type
    return out


def span_texts(
    dataset: Dataset, projects: Iterable[Project]
) -> dict[str, str]:
    """Span field -> the text field its spans point into, for one dataset.

    A ``character_offsets`` field points into the text field read (from this dataset) by the
    input of a tagging output whose ``from`` is that span field; failing that, into the
    dataset's only ``text`` field, or else its field named ``text`` (the seed's dataset has
    two text fields, ``text`` and ``external_id``). A span field with none of these has no
    text to check its spans against (only ``start < end`` is checked). Projects are taken in name order, so the
    answer does not depend on file order.
    """
    types = dataset.field_types()
    out: dict[str, str] = {}
    for project in sorted(projects, key=lambda p: p.name):
        for output in project.outputs.values():
            if output.task_type != "sequence_tagging" or output.input not in project.inputs:
                continue
            text_field = None
            for ref in project.inputs[output.input].from_:
                ds_name, field_name = split_reference(ref)
                if ds_name == dataset.name and types.get(field_name) == "text":
                    text_field = field_name
            for ref in output.from_:
                ds_name, field_name = split_reference(ref)
                if ds_name == dataset.name and text_field and types.get(field_name) == "character_offsets":
                    out.setdefault(field_name, text_field)
    texts = [name for name, t in types.items() if t == "text"]
    fallback = texts[0] if len(texts) == 1 else ("text" if "text" in texts else None)
    for name, data_type in types.items():
        if data_type == "character_offsets" and name not in out and fallback:
            out[name] = fallback
    return out


def levels(
    datasets: Mapping[str, Dataset], projects: Mapping[str, Project]
) -> list[list[tuple[str, str]]]:
    """Dependency levels: every resource after the ones it reads. Create level by level
    (each level's work may run in parallel); delete in reverse order.

    Today that is two levels, datasets then projects (projects never read projects), but the
    graph is computed, not assumed, so a new kind only has to say what it reads."""
    deps: dict[tuple[str, str], set[tuple[str, str]]] = {("Dataset", n): set() for n in datasets}
    for name, project in projects.items():
        reads = {split_reference(ref)[0] for spec in project.inputs.values() for ref in spec.from_}
        reads |= {split_reference(ref)[0] for out in project.outputs.values() for ref in out.from_}
        deps[("Project", name)] = {("Dataset", d) for d in reads if d in datasets}
    out: list[list[tuple[str, str]]] = []
    done: set[tuple[str, str]] = set()
    while len(done) < len(deps):
        level = sorted(n for n, d in deps.items() if n not in done and d <= done)
        if not level:  # a cycle cannot happen with today's kinds; keep going regardless
            level = sorted(n for n in deps if n not in done)
        out.append(level)
        done.update(level)
    return out
