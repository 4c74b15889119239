"""Every example validates, alone and together, and the loader's public API answers on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hlops.cli import main
from hlops.datafile import iter_normalised, row_source
from hlops.manifest import load

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "projects"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
SCHEMA_LINE = "# yaml-language-server: $schema="


def test_there_are_four_examples():
    assert [p.name for p in EXAMPLE_DIRS] == ["entities", "multilabel", "sentiment", "two-datasets"]


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_validates(example: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["validate", str(example.relative_to(REPO))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Valid: ")


def test_all_examples_validate_together(monkeypatch: pytest.MonkeyPatch):
    """Names do not collide across examples: they can all be applied to one server."""
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["validate", "examples/projects"])
    assert result.exit_code == 0, result.output
    assert result.output == "Valid: 5 datasets, 4 projects in 7 files, 550 datapoints checked.\n"


def test_validate_json_output(monkeypatch: pytest.MonkeyPatch):
    import json

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["validate", "--json", "examples/projects/sentiment"])
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert out["valid"] is True and out["datapoints"] == {"sentiment-support-tickets": 200}


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_files(example: Path):
    yamls = sorted(example.glob("*.yaml"))
    assert yamls
    for path in yamls:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(SCHEMA_LINE), path
        schema = (path.parent / first[len(SCHEMA_LINE):]).resolve()
        assert schema.is_file(), (path, schema)
        expected = "hlops-settings.schema.json" if path.name == "hlops.yaml" else "hlops.schema.json"
        assert schema.name == expected
    assert (example / "guidelines.md").is_file()
    config = load(example)
    for name in config.datasets:
        assert config.rows[name] >= 50


def test_sentiment_example_api():
    config = load(EXAMPLES / "sentiment", env={})
    assert config.root == EXAMPLES / "sentiment"
    assert config.settings.owns.owns("sentiment-support-tickets")
    assert set(config.datasets) == {"sentiment-support-tickets"}
    ds = config.datasets["sentiment-support-tickets"]
    assert ds.key == "external_id"
    assert ds.field_types() == {"text": "text", "sentiment": "categorical",
                                "external_id": "text", "entities": "character_offsets"}
    assert ds.field_description("sentiment") == "positive, negative or neutral"
    assert config.data_path("sentiment-support-tickets") == EXAMPLES / "sentiment/data/tickets.jsonl"
    project = config.projects["Sentiment classification project"]
    assert project.user_roles() == {"owner@example.com": "annotator", "lead@example.com": "admin",
                                    "annotator1@example.com": "annotator"}
    assert project.input_map()["external_id"].display_only is True
    assert project.input_map()["text"].from_ == ("sentiment-support-tickets.text",)
    assert config.input_types("Sentiment classification project") == {
        "text": "text", "external_id": "text"}
    assert config.guidelines("Sentiment classification project").startswith("# Sentiment guidelines")
    assert config.levels() == [[("Dataset", "sentiment-support-tickets")],
                               [("Project", "Sentiment classification project")]]
    loc = config.location("Project", "Sentiment classification project", ("outputs", "sentiment"))
    assert (Path(loc.path).name, loc.line, loc.col) == ("project.yaml", 13, 3)
    loc = config.location("Dataset", "sentiment-support-tickets")
    assert (loc.line, loc.col) == (4, 7)
    rows = list(iter_normalised(config, "sentiment-support-tickets"))
    assert len(rows) == 200 and rows[0][0] == 1
    assert isinstance(rows[0][1]["external_id"], str)  # numbers in a text field become text
    assert sum(1 for _ in row_source(config, "sentiment-support-tickets")()) == 200
    labelled = sum(1 for _, row in rows if "sentiment" in row)
    assert 0.65 < labelled / len(rows) < 0.85


def test_env_interpolation_in_example():
    config = load(EXAMPLES / "sentiment", env={"HLOPS_EXAMPLE_OWNER": "me@example.org"})
    roles = config.projects["Sentiment classification project"].user_roles()
    assert "me@example.org" in roles


def test_entities_offsets_point_at_entities():
    config = load(EXAMPLES / "entities")
    assert config.span_texts("entities-news-snippets") == {"entities": "text"}
    seen = set()
    for _, row in iter_normalised(config, "entities-news-snippets"):
        for span in row.get("entities", ()):
            piece = row["text"][span["start"]:span["end"]]
            assert piece == piece.strip() and piece[-1].isalnum() and piece[0].isalnum(), piece
            seen.add(span["label"])
    assert seen == {"PERSON", "ORG", "LOC", "PRODUCT"}


def test_two_datasets_example():
    config = load(EXAMPLES / "two-datasets")
    project = config.projects["Inbox intent"]
    assert project.input_map()["body"].from_ == ("inbox-emails.body", "inbox-chats.body")
    lines = [line for line, _ in iter_normalised(config, "inbox-chats")]
    assert lines[:3] == [2, 4, 6]  # CSV records spanning two lines keep their first line
