"""Rows → task payloads and hashes, pure."""

from __future__ import annotations

from hlops.models import Dataset, Project
from hlops.providers.labelstudio.tasks import KEY_FIELD, task_hash, task_payload

DATASET = Dataset.model_validate({
    "kind": "Dataset", "name": "d", "key": "id",
    "fields": {"id": "text", "text": "text", "sentiment": "categorical",
               "spans": "character_offsets"},
})


def project(review: bool) -> Project:
    return Project.model_validate({
        "kind": "Project", "name": "p", "inputs": {"body": "d.text"},
        "outputs": {"sentiment": {"task_type": "classification", "from": "d.sentiment",
                                  "labels": ["pos"]},
                    "ents": {"task_type": "sequence_tagging", "input": "body", "from": "d.spans",
                             "labels": ["PER"]}},
        "review_existing_annotations": review,
    })


ROW = {"id": 7, "text": "Ann met Bo", "sentiment": "pos",
       "spans": [{"start": 8, "end": 10, "label": "PER"}, {"start": 0, "end": 3, "label": "PER"}]}


def test_data_holds_the_inputs_and_the_key_as_text():
    payload = task_payload(project(True), DATASET, ROW)
    assert payload["data"] == {KEY_FIELD: "7", "body": "Ann met Bo"}


def test_existing_labels_are_predictions_when_reviewed_else_annotations():
    reviewed = task_payload(project(True), DATASET, ROW)
    assert "annotations" not in reviewed and reviewed["predictions"][0]["model_version"] == "hlops"
    result = task_payload(project(False), DATASET, ROW)["annotations"][0]["result"]
    spans = [r["value"] for r in result if r["type"] == "labels"]
    assert [(s["start"], s["end"], s["text"]) for s in spans] == [(0, 3, "Ann"), (8, 10, "Bo")]
    (choice,) = [r for r in result if r["type"] == "choices"]
    assert (choice["to_name"], choice["value"]) == ("body", {"choices": ["pos"]})


def test_hash_ignores_span_order_and_int_vs_text_but_sees_an_edit():
    a = task_payload(project(True), DATASET, ROW)["meta"]["hlops_hash"]
    b = task_payload(project(True), DATASET, {**ROW, "id": "7", "spans": ROW["spans"][::-1]})
    assert b["meta"]["hlops_hash"] == a
    c = task_payload(project(True), DATASET, {**ROW, "text": "Ann met Bo!"})
    assert c["meta"]["hlops_hash"] != a
    assert task_hash({"x": 1}) == task_hash({"x": 1}, [])


def test_a_row_without_labels_has_no_label_entries():
    payload = task_payload(project(False), DATASET, {"id": "1", "text": "hi"})
    assert set(payload) == {"data", "meta"}
