"""hlops.writeback without a server: what it writes reads back as the same comparable shape,
whatever the text; updates touch only what differs."""

from __future__ import annotations

import io

import pytest
from ruamel.yaml import YAML

from hlops.manifest import load
from hlops.planner import desired_state
from hlops.writeback import Context, detect_indent, new_document, update_document

TRICKY = [
    "true", "123", "null", "~", "yes", "1.5e3", "${HOME}", "$${HOME}", "$$${X}", "a: b", "- x", "#x", "x #y",
    " leading space", "trailing space ", "multi\nline\n", "no final newline\nhere", "  indented first\nline\n",
    "blank\n\n\nlines\n", "ends with README.md", "ünïcode ✓", "quotes ' and \"", "tab\there", "{not: a map}",
    "[not, a, list]", "'single'", "@mention", "%percent", "*star", "&amp", "!bang", "`tick`", "|pipe", ">fold",
    "trailing \nspace\n", "crlf\r\nline\r\n", "only\n", "two trailing\n\n", "bell\x07", "\u2028sep",
]


def comparable_dataset(description):
    return {"name": "wb-ds", "description": description, "key": "id",
            "fields": {"id": {"data_type": "text", "description": None},
                       "text": {"data_type": "text", "description": description}}}


def comparable_project(text):
    return {
        "name": "wb-project", "description": text, "guidelines": None, "review_existing_annotations": False,
        "inputs": {"text": {"data_type": "text", "description": text, "display_only": False, "from": ["wb-ds.text"]},
                   "id": {"data_type": "text", "description": None, "display_only": True, "from": ["wb-ds.id"]}},
        "outputs": {"o": {"task_type": "classification", "description": text, "from": [],
                          "labels": {"plain": None, text.strip() or "x": text, "with desc": "why"}, "input": None}},
        "users": {"a@example.com": "annotator", "b@example.com": "owner"},
    }


def dump(docs) -> str:
    y = YAML(typ="rt")
    y.width = 4096
    y.indent(2, 4, 2)
    out = io.StringIO()
    y.dump_all(docs, out)
    return out.getvalue()


@pytest.mark.parametrize("value", TRICKY)
def test_new_documents_read_back_as_written(tmp_path, value):
    ds, pj = comparable_dataset(value), comparable_project(value)
    (tmp_path / "m.yaml").write_text(dump([new_document("dataset", ds), new_document("project", pj)]))
    config = load(tmp_path, env={"HOME": "/nope"})
    got = {d.kind: d.comparable for d in desired_state(config)}
    want_ds = dict(ds, description=value if value.strip() else None)
    assert got["dataset"] == want_ds
    assert got["project"] == pj


def test_updates_touch_only_what_differs(tmp_path):
    source = (
        "kind: Project   # c0\n"
        "name: wb-project\n"
        "description: 'quoted stays'   # c1\n"
        "inputs:\n"
        "  text: wb-ds.text            # c2\n"
        "  id: {from: wb-ds.id, display_only: true}\n"
        "outputs:\n"
        "  o:\n"
        "    task_type: classification\n"
        "    labels:\n"
        "    - plain                   # c3\n"
        "    - {name: with desc, description: \"why\"}\n"
        "users: [a@example.com, {email: b@example.com, role: owner}]\n"
        "review_existing_annotations: false\n"
    )
    (tmp_path / "ds.yaml").write_text("kind: Dataset\nname: wb-ds\nkey: id\nfields: {id: text, text: text}\n")
    (tmp_path / "m.yaml").write_text(source)
    config = load(tmp_path)
    current = next(d.comparable for d in desired_state(config) if d.kind == "project")
    target = {**current, "outputs": {"o": {**current["outputs"]["o"], "labels": {"plain": "now described", "with desc": "why", "new": None}}},
              "users": {"a@example.com": "annotator", "b@example.com": "owner", "c@example.com": "admin"}}
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(*detect_indent(source))
    doc = y.load(source)
    edits = update_document("project", doc, current, target, Context(config.projects["wb-project"], lambda p, t: "x.md"))
    assert edits.attributes == ["outputs.o", "users"]
    out = io.StringIO()
    y.dump(doc, out)
    text = out.getvalue()
    assert text.splitlines()[:6] == source.splitlines()[:6]
    assert "- {name: plain, description: now described}" in text and "# c3" in text
    assert "- new\n" in text and "{email: c@example.com, role: admin}" in text
    (tmp_path / "m.yaml").write_text(text)
    assert next(d.comparable for d in desired_state(load(tmp_path)) if d.kind == "project") == target


@pytest.mark.parametrize("source, expected", [
    ("a:\n  b: 1\nc:\n  - x\n", (2, 4, 2)),
    ("a:\n    b: 1\nc:\n- x\n", (4, 2, 0)),
    ("users:\n- a\nfields:\n   t: text\n", (3, 2, 0)),
    ("kind: Dataset\n", (2, 4, 2)),
])
def test_indentation_is_read_from_the_file(source, expected):
    assert detect_indent(source) == expected
