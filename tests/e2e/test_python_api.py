"""The Python API (hlops.api) end to end, in process, with the embedded server: load ->
plan -> apply, then the seed's steps 4 and 5 (predict, export, annotations) as functions
that return values and raise HlopsError subclasses."""

from __future__ import annotations

import json
import shutil

import pytest

import hlops.api as hl
from hlops.errors import ManifestError, SettingsError
from support.cli import REPO

SENTIMENT = "Sentiment classification project"


@pytest.fixture
def conn(tmp_path):
    with hl.connect(local=True, home=tmp_path / ".hlops") as conn:
        yield conn


def test_plan_apply_predict_export_import(tmp_path, conn):
    example = tmp_path / "sentiment"
    shutil.copytree(REPO / "examples" / "projects" / "sentiment", example)
    shutil.copytree(REPO / "schema", tmp_path.parent / "schema", dirs_exist_ok=True)
    config = hl.load(example)

    result = hl.plan(config, conn)
    assert [(c.kind, c.action.value) for c in result.plan.changes] == [("dataset", "create"), ("project", "create")]
    report = hl.apply(result, conn)
    assert report.ok and len(report.by_status("done")) == 2
    assert not hl.plan(hl.load(example), conn).plan.has_changes

    answer = hl.predict(conn, SENTIMENT, texts=["The sound quality was so disappointing"], n_best=3, wait=True)
    (item,) = answer
    assert item["data"] == {"text": "The sound quality was so disappointing"}
    (prediction,) = item["predictions"]
    assert prediction["output"] == "sentiment" and prediction["task_type"] == "classification"
    assert {v["label"] for v in prediction["value"]} == {"positive", "negative", "neutral"}
    assert sum(v["confidence"] for v in prediction["value"]) == pytest.approx(1, abs=1e-3)

    out = tmp_path / "labelled.jsonl"
    n = hl.export(conn, SENTIMENT, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    source = [json.loads(line) for line in (example / "data" / "tickets.jsonl").read_text().splitlines()]
    assert n == len(rows) == sum(1 for row in source if row.get("sentiment"))

    unlabelled = next(row for row in source if not row.get("sentiment"))
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"key": unlabelled["external_id"], "output": "sentiment", "value": "neutral"}) + "\n")
    before = hl.annotation_summary(conn, SENTIMENT)["outputs"][0]["annotated"]
    imported = hl.import_annotations(conn, SENTIMENT, labels)
    assert imported.imported == 1 and not imported.skipped
    assert hl.annotation_summary(conn, SENTIMENT)["outputs"][0]["annotated"] == before + 1
    assert hl.export(conn, SENTIMENT, out) == n + 1


def test_errors_are_hlops_errors(tmp_path, conn):
    with pytest.raises(SettingsError, match="no project named 'nope'"):
        hl.predict(conn, "nope", texts=["x"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "1", "output": "sentiment"\n')
    with pytest.raises(ManifestError) as info:
        hl.import_annotations(conn, "nope", bad)
    assert "bad.jsonl:1:" in str(info.value)
