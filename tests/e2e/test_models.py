"""Seed steps 4 and 5 against the real server (issue 9): the examples applied with the CLI,
annotations through the API and `hlops annotations import`, a model per output trained by
the server, `POST /projects/{id}/predict` in the seed's shape, the labelled data exported.

One server and one apply for the module; the hidden ``POST /_test/train`` skips the
trainer's debounce and waits until it is idle, so the tests never sleep on a timer.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from support.cli import REPO, run_hlops

EXAMPLES = REPO / "examples" / "projects"
SENTIMENT = "Sentiment classification project"
TOPICS = "Ticket topics"
ENTITIES = "Named entities"
SEED_TEXTS = [  # the seed's prediction request, as sent (external_id a number)
    {"text": "The sound quality of these headphones were so disappointing", "external_id": 1754535653},
    {"text": "OMG! if only my phone camera could be this good", "external_id": 1711535653},
]


def hl(server, work: Path, *args, **kw):
    return run_hlops(*args, server=server, cwd=work, env={"HLOPS_HOME": str(work / ".hlops")}, **kw)


def rows_of(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def work(server, tmp_path_factory):
    """The sentiment (annotators review the existing labels: no warm start, so the model
    waits for 10 annotations), multilabel and entities examples, applied in one go."""
    root = tmp_path_factory.mktemp("models")
    for name in ("sentiment", "multilabel", "entities"):
        shutil.copytree(EXAMPLES / name, root / name)
    shutil.copytree(REPO / "schema", root.parent / "schema", dirs_exist_ok=True)
    project = root / "sentiment" / "project.yaml"
    text = project.read_text()
    assert "review_existing_annotations: false" in text
    project.write_text(text.replace("review_existing_annotations: false", "review_existing_annotations: true"))
    result = hl(server, root, "apply", "sentiment", "multilabel", "entities", "--auto-approve")
    assert result.code == 0, result
    return root


def project(server, name: str) -> dict:
    (found,) = server.call("GET", "/projects", params={"name": name}).json()["items"]
    return found


def datapoints(server, dataset: str) -> list[dict]:
    (ds,) = server.call("GET", "/datasets", params={"name": dataset}).json()["items"]
    return server.call("GET", f"/datasets/{ds['id']}/datapoints", params={"limit": 1000}).json()["items"]


def annotate(server, pid: int, dp: int, output: str, value) -> None:
    r = server.call("POST", f"/projects/{pid}/annotations", json={"datapoint_id": dp, "output": output, "value": value})
    assert r.status_code == 200, r.text


def train(server) -> None:
    r = server.call("POST", "/_test/train")
    assert r.status_code == 200 and r.json() == {"idle": True}, r.text


def model_of(server, pid: int, output: str) -> dict:
    summary = server.call("GET", f"/projects/{pid}/annotations/summary").json()
    return next(o for o in summary["outputs"] if o["name"] == output)["model"]


def predict(server, pid: int, rows: list[dict], **extra):
    return server.call("POST", f"/projects/{pid}/predict", json={"data": rows, **extra})


# ---------------------------------------------------------------------- the seed's flow


def test_seed_flow_annotate_ten_predict_export_retrain(server, work):
    p = project(server, SENTIMENT)
    pid = p["id"]
    labelled = [dp for dp in datapoints(server, "sentiment-support-tickets") if dp["data"].get("sentiment")]
    taxonomy = {"positive", "negative", "neutral"}

    # 409 before 10, saying how many more and how
    r = predict(server, pid, SEED_TEXTS)
    assert r.status_code == 409, r.text
    assert "annotate 10 more" in r.json()["detail"] and "hlops annotations import" in r.json()["detail"]
    assert model_of(server, pid, "sentiment")["status"] == "untrained"

    # 5 through the API ...
    for dp in labelled[:5]:
        annotate(server, pid, dp["id"], "sentiment", dp["data"]["sentiment"])
    r = predict(server, pid, SEED_TEXTS)
    assert r.status_code == 409 and "has 5 (annotate 5 more)" in r.json()["detail"]

    # ... and 5 with `hlops annotations import`, by the dataset's key
    file = work / "more.jsonl"
    file.write_text("".join(
        json.dumps({"key": dp["data"]["external_id"], "output": "sentiment", "value": dp["data"]["sentiment"]}) + "\n"
        for dp in labelled[5:10]
    ))
    result = hl(server, work, "annotations", "import", SENTIMENT, str(file))
    assert result.code == 0, result
    assert "Imported 5 annotations (5 datapoints)" in result.out and "skipped 0 rows" in result.out

    # the seed's prediction request: labels of the taxonomy, confidences summing to 1
    r = predict(server, pid, SEED_TEXTS, n_best=3)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [item["data"] for item in answer] == SEED_TEXTS
    for item in answer:
        (pred,) = item["predictions"]
        assert pred["output"] == "sentiment" and pred["task_type"] == "classification"
        assert {v["label"] for v in pred["value"]} == taxonomy
        assert abs(sum(v["confidence"] for v in pred["value"]) - 1) < 1e-4
        assert [v["confidence"] for v in pred["value"]] == sorted((v["confidence"] for v in pred["value"]), reverse=True)
    one = predict(server, pid, SEED_TEXTS[:1]).json()[0]["predictions"][0]["value"]
    assert len(one) == 1 and one[0]["label"] in taxonomy  # n_best defaults to 1

    train(server)
    model = model_of(server, pid, "sentiment")
    assert model["status"] == "ready" and model["version"] == 1 and model["trained_on"] == 10
    assert model["metrics"]["train_size"] == 10

    # export: exactly the annotated rows, JSON and JSONL
    expected = {
        dp["id"]: {"datapoint_id": dp["id"],
                   "inputs": {"text": dp["data"]["text"], "external_id": dp["data"]["external_id"]},
                   "outputs": {"sentiment": dp["data"]["sentiment"]}}
        for dp in labelled[:10]
    }
    r = server.call("GET", f"/projects/{pid}/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == sorted(expected.values(), key=lambda row: row["datapoint_id"])
    r = server.call("GET", f"/projects/{pid}/export", params={"format": "jsonl"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in r.text.splitlines()] == sorted(expected.values(), key=lambda row: row["datapoint_id"])

    # retraining as annotations grow: a new version, deterministic, on every annotation
    for dp in labelled[10:15]:
        annotate(server, pid, dp["id"], "sentiment", dp["data"]["sentiment"])
    assert model_of(server, pid, "sentiment")["status"] == "training"  # queued before the answer went out
    train(server)
    model = model_of(server, pid, "sentiment")
    assert model["status"] == "ready" and model["version"] == 2 and model["trained_on"] == 15
    train(server)  # nothing changed: no new version
    assert model_of(server, pid, "sentiment")["version"] == 2

    # the CLI: export as CSV (the 15 rows), predict as a table and as JSON
    out = work / "labelled.csv"
    result = hl(server, work, "export", SENTIMENT, "-o", str(out))
    assert result.code == 0, result
    assert "Exported 15 annotated datapoints" in result.err
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["datapoint_id"] for row in table] == [str(dp["id"]) for dp in labelled[:15]]
    assert table[0] == {"datapoint_id": str(labelled[0]["id"]), "text": labelled[0]["data"]["text"],
                        "external_id": labelled[0]["data"]["external_id"], "sentiment": labelled[0]["data"]["sentiment"]}
    result = hl(server, work, "predict", SENTIMENT, "--text", SEED_TEXTS[0]["text"], "--text", SEED_TEXTS[1]["text"], "--n-best", "2")
    assert result.code == 0, result
    header, *lines = result.out.splitlines()
    assert header.split() == ["TEXT", "OUTPUT", "PREDICTION", "CONFIDENCE"] and len(lines) == 4
    assert lines[0].startswith("The sound quality") and lines[0].split()[-2] in taxonomy
    rows = work / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in SEED_TEXTS))
    result = hl(server, work, "predict", SENTIMENT, "--input", str(rows), "--json")
    assert result.code == 0, result
    assert [item["data"] for item in json.loads(result.out)] == SEED_TEXTS


# ---------------------------------------------------------------------- other task types


def test_multilabel_predict_shape_and_falling_below_ten(server, work):
    pid = project(server, TOPICS)["id"]
    taxonomy = ["billing", "shipping", "returns", "account", "technical", "product_question"]
    points = datapoints(server, "topics-support-tickets")
    for i, dp in enumerate(points[:12]):
        labels = sorted({taxonomy[i % 6], taxonomy[(i * 5 + 2) % 6]}) if i % 4 else []
        annotate(server, pid, dp["id"], "topics", labels)
    r = predict(server, pid, [{"subject": "Refund", "body": "I was charged twice, please refund me"}, {"body": "The app crashes"}], n_best=3)
    assert r.status_code == 200, r.text
    for item in r.json():
        (pred,) = item["predictions"]
        assert pred["task_type"] == "multilabel_classification"
        confidences = [v["confidence"] for v in pred["value"]]
        assert len(pred["value"]) >= 3 and {v["label"] for v in pred["value"]} <= set(taxonomy)
        assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
        assert all(c >= 0.5 for c in confidences[3:])  # beyond n_best: only labels the model predicts
    # deleting annotated datapoints takes the output below 10: no model serves it
    (ds,) = server.call("GET", "/datasets", params={"name": "topics-support-tickets"}).json()["items"]
    r = server.call("POST", f"/datasets/{ds['id']}/datapoints/delete", json={"ids": [dp["id"] for dp in points[:3]]})
    assert r.status_code == 200, r.text
    assert predict(server, pid, [{"body": "x"}]).status_code == 409
    result = hl(server, work, "predict", TOPICS, "--text", "x")
    assert result.code == 1 and "HTTP 409" in result.err and "output 'topics' has 9 (annotate 1 more)" in result.err, result
    train(server)
    assert model_of(server, pid, "topics") == {"status": "untrained", "version": 0, "trained_on": 0, "trained_at": None, "metrics": None}


def test_tagging_predicts_spans(server, work):
    pid = project(server, ENTITIES)["id"]
    points = [dp for dp in datapoints(server, "entities-news-snippets") if dp["data"].get("entities")]
    for dp in points[:20]:
        annotate(server, pid, dp["id"], "entities", dp["data"]["entities"])
    text = "Lena Fischer from Microsoft said the PlayStation 5 will ship to Lagos in March."
    r = predict(server, pid, [{"text": text, "source": "blog"}], n_best=4)
    assert r.status_code == 200, r.text
    ((pred,),) = [item["predictions"] for item in r.json()]
    assert pred["output"] == "entities" and pred["task_type"] == "sequence_tagging"
    assert pred["value"], "no span found in a sentence like the training ones"
    for span in pred["value"]:
        assert set(span) == {"start", "end", "label", "confidence"}
        assert 0 <= span["start"] < span["end"] <= len(text)
        assert span["label"] in {"PERSON", "ORG", "LOC", "PRODUCT"} and 0 < span["confidence"] <= 1
    assert {"start": 18, "end": 27, "label": "ORG"} in [{k: s[k] for k in ("start", "end", "label")} for s in pred["value"]]


# ---------------------------------------------------------------------- errors


def test_predict_refuses_bad_rows_and_other_organisations(server, work):
    pid = project(server, SENTIMENT)["id"]
    r = predict(server, pid, [{"txt": "typo"}, {"text": 1.5}, {"external_id": "only display-only"}, {"text": "fine"}])
    assert r.status_code == 422, r.text
    locs = {tuple(item["loc"]): item["msg"] for item in r.json()["detail"]}
    assert set(locs) == {("body", "data", 0, "txt"), ("body", "data", 1, "text"), ("body", "data", 2)}
    assert "only display-only" not in r.text and "1.5" not in r.text  # values never echoed
    assert predict(server, pid, [{"text": "x"}], n_best=0).status_code == 422
    assert predict(server, pid, [{"text": "x"}], extra=1).status_code == 422
    assert server.call("POST", f"/projects/{pid}/predict", json={"data": [{"text": "x"}]}, other=True).status_code == 404
    assert server.call("GET", f"/projects/{pid}/export", other=True).status_code == 404
    assert server.call("GET", f"/projects/{pid}/export", params={"format": "xml"}).status_code == 422
    result = hl(server, work, "predict", "No such project", "--text", "x")
    assert result.code == 1 and "no project named 'No such project'" in result.err, result
    result = hl(server, work, "predict", SENTIMENT, "--text", "x", "--input-name", "nope")
    assert result.code == 1 and "has no input 'nope' (its inputs: text, external_id)" in result.err, result


def test_import_checks_the_file_before_any_call(server, work):
    bad = work / "bad.jsonl"
    bad.write_text(
        '{"key": "1233456432354", "output": "sentiment", "value": "positive"}\n'
        '{"key": "x", "output": "sentiment"\n'
        '{"key": "x", "datapoint_id": 3, "output": "sentiment", "value": "positive"}\n'
        '{"key": "x", "output": "sentiment", "value": "positive", "labels": 1}\n'
    )
    before = server.stats()["total"]
    result = hl(server, work, "annotations", "import", SENTIMENT, str(bad))
    assert result.code == 1, result
    assert "bad.jsonl:2:" in result.err and "bad.jsonl:3:1: a row names its datapoint by exactly one" in result.err
    assert "bad.jsonl:4:" in result.err and "unknown member 'labels'" in result.err
    assert "Traceback" not in result.err
    assert server.stats()["total"] == before, "a file that fails validation cost an API call"

    # checked against the project (reads only): unknown key, unknown output, duplicates
    unknown = work / "unknown.jsonl"
    unknown.write_text(
        '{"key": "no-such-key", "output": "sentiment", "value": "positive"}\n'
        '{"key": "1233456432354", "output": "mood", "value": "positive"}\n'
    )
    before = server.stats()["writes"]
    result = hl(server, work, "annotations", "import", SENTIMENT, str(unknown))
    assert result.code == 1, result
    assert "unknown.jsonl:2:1: the project has no output 'mood'" in result.err
    dupes = work / "dupes.jsonl"
    dupes.write_text(
        '{"key": "no-such-key", "output": "sentiment", "value": "positive"}\n'
        '{"key": 1233456432354, "output": "sentiment", "value": "positive"}\n'
        '{"key": "1233456432354", "output": "sentiment", "value": "negative"}\n'
    )
    result = hl(server, work, "annotations", "import", SENTIMENT, str(dupes))
    assert result.code == 1, result
    assert "dupes.jsonl:1:1: no datapoint with key 'no-such-key'" in result.err
    assert "dupes.jsonl:3:1: key '1233456432354' is annotated for output 'sentiment' again (first at line 2)" in result.err
    assert server.stats()["writes"] == before

    # rows the server refuses are skipped, located; the others are imported
    spans = work / "spans.jsonl"
    spans.write_text(
        '{"key": "news-1000", "output": "entities", "value": [{"start": 0, "end": 12, "label": "PERSON"}]}\n'
        '{"key": "news-1001", "output": "entities", "value": [{"start": 0, "end": 500, "label": "ORG"}]}\n'
    )
    result = hl(server, work, "annotations", "import", ENTITIES, str(spans))
    assert result.code == 1, result
    assert "Imported 1 annotation (1 datapoint)" in result.out and "skipped 1 row." in result.out
    assert "spans.jsonl:2:1: key 'news-1001': HTTP 422: a span runs past the end of its text" in result.err


def test_a_model_dies_with_its_project(server, work):
    """Deleting a project (or replacing it: delete + create) deletes its models."""
    pid = project(server, SENTIMENT)["id"]

    def models_of(project_id: int) -> int:
        db = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM models WHERE project_id = ?", (project_id,)).fetchone()[0]
        finally:
            db.close()

    # self-contained (the seed-flow test trains it too): ten annotations, then a model
    labelled = [dp for dp in datapoints(server, "sentiment-support-tickets") if dp["data"].get("sentiment")]
    for dp in labelled[:10]:
        annotate(server, pid, dp["id"], "sentiment", dp["data"]["sentiment"])
    train(server)
    assert models_of(pid) == 1
    assert server.call("DELETE", f"/projects/{pid}").status_code == 200
    assert models_of(pid) == 0


# ---------------------------------------------------------------------- --local


def test_local_warm_start_predict_and_export(tmp_path):
    """The example as it is (warm start: ~160 labels count at once) with the embedded
    server: each command starts it anew, so predict trains (or waits for) the model."""
    shutil.copytree(EXAMPLES / "sentiment", tmp_path / "sentiment")
    shutil.copytree(REPO / "schema", tmp_path.parent / "schema", dirs_exist_ok=True)
    local = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    result = run_hlops("apply", "sentiment", "--local", "--auto-approve", cwd=tmp_path, env=local)
    assert result.code == 0, result
    result = run_hlops("predict", SENTIMENT, "--local", "--json", "--n-best", "3",
                       "--text", SEED_TEXTS[0]["text"], "--text", SEED_TEXTS[1]["text"], cwd=tmp_path, env=local)
    assert result.code == 0, result
    answer = json.loads(result.out)
    assert [item["data"] for item in answer] == [{"text": row["text"]} for row in SEED_TEXTS]
    first = answer[0]["predictions"][0]["value"]
    assert first[0]["label"] == "negative"  # "so disappointing"
    assert {v["label"] for v in first} == {"positive", "negative", "neutral"}
    out = tmp_path / "labelled.json"
    result = run_hlops("export", SENTIMENT, "--local", "-o", str(out), cwd=tmp_path, env=local)
    assert result.code == 0, result
    exported = json.loads(out.read_text())
    labelled = [row for row in rows_of(EXAMPLES / "sentiment" / "data" / "tickets.jsonl") if row.get("sentiment")]
    assert [row["outputs"]["sentiment"] for row in exported] == [row["sentiment"] for row in labelled]
    assert [row["inputs"]["external_id"] for row in exported] == [str(row["external_id"]) for row in labelled]
