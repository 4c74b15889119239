"""The seed tutorial's calls (../shared/seed/) answer with the seed's shapes."""

from __future__ import annotations

import json

SEED_DATASET = {
    "name": "Extraction dataset",
    "description": "With existing examples for review.",
    "fields": [
        {"name": "text", "data_type": "text"},
        {"name": "sentiment", "data_type": "categorical"},
        {"name": "external_id", "data_type": "text"},
        {"name": "entities", "data_type": "character_offsets"},
    ],
    "data": [
        {
            "text": "Hi Apple! Please can you refund this item?",
            "sentiment": "neutral",
            "external_id": 1233456432354,
            "entities": [{"start": 3, "end": 8, "label": "ORG"}],
        },
        {
            "text": "Amazon, I love this so much!",
            "sentiment": "positive",
            "external_id": 1233456432355,
            "entities": [{"start": 0, "end": 6, "label": "ORG"}],
        },
    ],
}


def field_id(name: str, fields: list[dict]) -> int:
    """The seed's own helper."""
    return [field for field in fields if field["name"] == name][0]["id"]


def seed_project(fields: list[dict], name: str = "Sentiment classification project") -> dict:
    return {
        "name": name,
        "inputs": [
            {
                "name": "text",
                "data_type": "text",
                "description": "Text to classify.",
                "data_sources": [{"field_id": field_id("text", fields)}],
            },
            {
                "name": "external_id",
                "data_type": "text",
                "description": "The ID from your system.",
                "display_only": True,
                "data_sources": [{"field_id": field_id("external_id", fields)}],
            },
        ],
        "outputs": [
            {
                "name": "sentiment",
                "description": "Sentiment of the text",
                "task_type": "classification",
                "data_sources": [{"field_id": field_id("sentiment", fields)}],
            }
        ],
        "guidelines": "Insert your markdown annotator guidelines here",
        "users": ["owner@example.com"],
        "review_existing_annotations": False,
    }


def test_seed_tutorial(fresh_server):
    srv = fresh_server
    headers = {"Content-Type": "application/json", **srv.headers()}
    # Step 2, exactly as the seed sends it: json.dumps + data=
    r = srv.call("POST", "/datasets", data=json.dumps(SEED_DATASET), headers=headers)
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert isinstance(dataset["id"], int)
    assert [(f["name"], f["data_type"]) for f in dataset["fields"]] == [
        (f["name"], f["data_type"]) for f in SEED_DATASET["fields"]
    ]
    assert all(isinstance(f["id"], int) for f in dataset["fields"])
    assert dataset["datapoint_count"] == 2 and dataset["version"] == 1
    assert len(dataset["datapoint_ids"]) == 2
    assert r.headers["ETag"] == '"1"'

    # Step 3
    r = srv.call("POST", "/projects", data=json.dumps(seed_project(dataset["fields"])), headers=headers)
    assert r.status_code == 201, r.text
    project = r.json()
    assert isinstance(project["id"], int)
    assert [i["name"] for i in project["inputs"]] == ["text", "external_id"]
    assert all(isinstance(i["id"], int) for i in project["inputs"] + project["outputs"])
    assert project["inputs"][1]["display_only"] is True
    assert project["inputs"][0]["data_sources"] == [{"field_id": field_id("text", dataset["fields"])}]
    out = project["outputs"][0]
    assert (out["name"], out["task_type"], out["labels"]) == ("sentiment", "classification", [])
    assert project["users"] == [{"email": "owner@example.com", "role": "annotator"}]
    assert project["review_existing_annotations"] is False

    # the warm start: both existing sentiment labels became annotations
    assert project["annotation_count"] == 2
    summary = srv.call("GET", f"/projects/{project['id']}/annotations/summary").json()
    (s,) = summary["outputs"]
    assert s["annotated"] == 2 and s["by_source"] == {"user": 0, "dataset": 2}
    assert s["source_labels"] == ["neutral", "positive"]
    assert (s["model"]["status"], s["model"]["version"]) == ("untrained", 0)  # < 10 annotated

    # the number came back as text, canonical
    items = srv.call("GET", f"/datasets/{dataset['id']}/datapoints").json()["items"]
    assert [it["data"]["external_id"] for it in items] == ["1233456432354", "1233456432355"]
    rows = srv.call("GET", f"/datasets/{dataset['id']}/digest").json()["items"]
    assert [r["annotations"] for r in rows] == [1, 1]


def test_review_existing_true_leaves_suggestions(fresh_server):
    srv = fresh_server
    dataset = srv.call("POST", "/datasets", json=SEED_DATASET).json()
    body = seed_project(dataset["fields"]) | {"review_existing_annotations": True}
    project = srv.call("POST", "/projects", json=body).json()
    assert project["annotation_count"] == 0
    summary = srv.call("GET", f"/projects/{project['id']}/annotations/summary").json()
    assert summary["outputs"][0]["annotated"] == 0
    assert summary["outputs"][0]["source_labels"] == ["neutral", "positive"]
