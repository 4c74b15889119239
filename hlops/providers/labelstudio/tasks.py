"""A dataset row as a Label Studio task, and the task's canonical hash. Pure.

A task's ``data`` holds one key per project input that reads this dataset (the input's
name, which the label config's ``value="$<input>"`` refers to) and :data:`KEY_FIELD`, the
row's key (the dataset's ``key`` field, normalised as text by :mod:`hlops.canonical`), so
tasks are matched to rows by key. Existing labels — an output's ``from`` field of this
dataset: ``categorical`` for (multilabel) classification, ``character_offsets`` for
sequence tagging — become a ``result`` list; with ``review_existing_annotations: true``
they are *predictions* (annotators review them), else *annotations* (count at once).

A task's hash is :func:`hlops.canonical.row_hash` of the canonical JSON of
``{"data": ..., "labels": result}`` — the part hlops owns — so tasks diff by key and hash
like datapoints; annotations made in Label Studio afterwards do not change it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hlops.canonical import canonical_json, key_text, normalise_row, row_hash
from hlops.models import Dataset, Project, split_reference

KEY_FIELD = "hlops_key"
MODEL_VERSION = "hlops"


def _source(refs: tuple[str, ...], dataset: str) -> str | None:
    for ref in refs:
        name, field = split_reference(ref)
        if name == dataset:
            return field
    return None


def field_types(dataset: Dataset) -> dict[str, str]:
    return {name: spec.data_type for name, spec in dataset.fields.items()}


def row_key(dataset: Dataset, normalised: Mapping[str, Any]) -> str:
    """The row's key: its ``key`` field as text, or its hash when the dataset has no key."""
    return key_text(normalised, dataset.key, row_hash(normalised)) or row_hash(normalised)


def task_data(project: Project, dataset: Dataset, normalised: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {KEY_FIELD: row_key(dataset, normalised)}
    for name, spec in project.inputs.items():
        field = _source(spec.from_, dataset.name)
        if field is not None and normalised.get(field) is not None:
            data[name] = normalised[field]
    return data


def label_result(project: Project, dataset: Dataset, normalised: Mapping[str, Any]) -> list[dict]:
    """The row's existing labels as one Label Studio ``result`` list (every output)."""
    from hlops.providers.labelstudio.label_config import target_input

    result: list[dict] = []
    for name, output in project.outputs.items():
        field = _source(output.from_, dataset.name)
        value = normalised.get(field) if field else None
        if value is None:
            continue
        if output.task_type == "sequence_tagging":
            text_field = _source(project.inputs[output.input].from_, dataset.name) if output.input in project.inputs else None
            text = normalised.get(text_field) or "" if text_field else ""
            for span in value:
                result.append({
                    "from_name": name, "to_name": output.input, "type": "labels",
                    "value": {"start": span["start"], "end": span["end"],
                              "text": text[span["start"]:span["end"]], "labels": [span["label"]]},
                })
        else:
            choices = value if isinstance(value, list) else [value]
            result.append({
                "from_name": name, "to_name": target_input(project), "type": "choices",
                "value": {"choices": [str(c) for c in choices]},
            })
    return result


def labels_from_rows(project: Project, dataset: Dataset, rows: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Output name -> the label values its ``from`` field holds in ``rows`` (an output may
    list no ``labels`` and take them from the data; the label config needs them all)."""
    out: dict[str, set[str]] = {}
    types = field_types(dataset)
    for row in rows:
        normalised = normalise_row(row, types)
        for region in label_result(project, dataset, normalised):
            value = region["value"]
            out.setdefault(region["from_name"], set()).update(value.get("choices") or value.get("labels") or ())
    return out


def task_payload(project: Project, dataset: Dataset, row: Mapping[str, Any]) -> dict[str, Any]:
    """The import payload of one data-file row: ``data``, and its labels as predictions or
    annotations per ``review_existing_annotations``; ``meta.hlops_hash`` is its hash."""
    normalised = normalise_row(row, field_types(dataset))
    data = task_data(project, dataset, normalised)
    result = label_result(project, dataset, normalised)
    payload: dict[str, Any] = {"data": data, "meta": {"hlops_hash": task_hash(data, result)}}
    if result:
        key = "predictions" if project.review_existing_annotations else "annotations"
        entry: dict[str, Any] = {"result": result}
        if key == "predictions":
            entry["model_version"] = MODEL_VERSION
        payload[key] = [entry]
    return payload


def task_hash(data: Mapping[str, Any], result: list[dict] | None = None) -> str:
    """The canonical hash of what hlops owns of a task: its data and its imported labels."""
    return row_hash({"data": dict(data), "labels": _sorted(result or [])})


def _sorted(result: list[dict]) -> list[dict]:
    return sorted(result, key=lambda r: canonical_json(r))
