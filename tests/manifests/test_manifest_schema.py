"""The committed JSON Schemas are what the models generate, and the examples satisfy them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from hlops.cli import main
from hlops.cli.validate import schema_text

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = {"hlops.schema.json": False, "hlops-settings.schema.json": True}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_up_to_date(name: str):
    committed = (REPO / "schema" / name).read_text(encoding="utf-8")
    generated = schema_text(settings=SCHEMAS[name]) + "\n"
    assert committed == generated, (
        f"schema/{name} is out of date: run `hlops schema{' --settings' if SCHEMAS[name] else ''}"
        f" > schema/{name}`")


def test_schema_command_prints_the_schema():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "hlops manifest"


def _documents(path: Path):
    return [doc for doc in YAML(typ="safe", pure=True).load_all(path.read_text(encoding="utf-8")) if doc]


def test_examples_satisfy_the_schema():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    manifest = jsonschema_rs.validator_for(json.loads((REPO / "schema/hlops.schema.json").read_text()))
    settings = jsonschema_rs.validator_for(
        json.loads((REPO / "schema/hlops-settings.schema.json").read_text()))
    checked = 0
    for path in sorted((REPO / "examples/projects").rglob("*.yaml")):
        validator = settings if path.name == "hlops.yaml" else manifest
        for doc in _documents(path):
            errors = [e.message for e in validator.iter_errors(doc)]
            assert not errors, (path, errors)
            checked += 1
    assert checked >= 12


def test_schema_rejects_what_the_loader_rejects():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(json.loads((REPO / "schema/hlops.schema.json").read_text()))
    good = {"kind": "Dataset", "name": "t", "fields": {"text": "text"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "descripton": "typo"})
    assert not validator.is_valid({**good, "kind": "Datset"})
    assert not validator.is_valid({**good, "fields": {"text": "txt"}})
    project = {"kind": "Project", "name": "p", "inputs": {"text": "t.text"},
               "outputs": {"o": {"task_type": "classification", "labels": ["a"]}},
               "users": ["a@example.com", {"email": "b@example.com", "role": "admin"}]}
    assert validator.is_valid(project)
    assert not validator.is_valid({**project, "users": [{"email": "b@example.com", "role": "boss"}]})
