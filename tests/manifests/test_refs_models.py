"""Pure parts: short forms, accessors, cross-document rules, dependency levels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hlops import refs
from hlops.models import Dataset, Ownership, Project, Settings, split_reference
from hlops.yamlsrc import parse


def ds(name="t", **kw):
    return Dataset.model_validate({"kind": "Dataset", "name": name,
                                   "fields": kw.pop("fields", {"text": "text", "label": "categorical"}), **kw})


def pj(name="p", **kw):
    base = {"kind": "Project", "name": name, "inputs": {"text": "t.text"},
            "outputs": {"o": {"task_type": "classification", "labels": ["a"]}}}
    return Project.model_validate({**base, **kw})


def test_short_and_long_forms_read_the_same():
    short = pj(users=["a@example.com"], inputs={"text": "t.text"})
    long = pj(users=[{"email": "a@example.com", "role": "annotator"}],
              inputs={"text": {"from": ["t.text"]}})
    assert short == long
    assert short.user_roles() == {"a@example.com": "annotator"}
    assert short.outputs["o"].label_map() == {"a": None}
    assert ds().field_types() == {"text": "text", "label": "categorical"}


def test_models_alone_raise_their_first_rule():
    with pytest.raises(ValidationError, match="key 'nope' is not a field"):
        ds(key="nope")
    assert split_reference("a.b.c") == ("a.b", "c")
    assert Ownership(prefixes=("team-",)).owns("team-x")
    assert Settings(base_url="https://x.example/").base_url == "https://x.example"


def test_levels_put_datasets_first():
    datasets = {"t": ds("t"), "u": ds("u")}
    projects = {"p": pj("p"), "q": pj("q", inputs={"x": ["t.text", "u.text"]})}
    assert refs.levels(datasets, projects) == [[("Dataset", "t"), ("Dataset", "u")],
                                                [("Project", "p"), ("Project", "q")]]


def test_span_texts_rules():
    two_texts = ds(fields={"body": "text", "title": "text", "spans": "character_offsets"})
    assert refs.span_texts(two_texts, []) == {}
    tagging = pj(inputs={"title": "t.title"}, outputs={"o": {
        "task_type": "sequence_tagging", "input": "title", "from": "t.spans"}})
    assert refs.span_texts(two_texts, [tagging]) == {"spans": "title"}
    seed_like = ds(fields={"text": "text", "external_id": "text", "spans": "character_offsets"})
    assert refs.span_texts(seed_like, []) == {"spans": "text"}


def test_unverifiable_datasets_are_not_reported():
    declared = [refs.Declared(pj(), "m.yaml:1:1")]
    _, _, problems = refs.check(declared, unverifiable={"t"})
    assert problems == []
    _, _, problems = refs.check(declared)
    assert "which no manifest declares" in problems[0].message


def test_interpolation_rules():
    env = {"A": "x", "EMPTY": ""}
    doc = parse("a: ${A}-$${A}-${EMPTY:-d}-${NOPE:-n}-$5\n", "m.yaml", env).documents[0]
    assert doc.value == {"a": "x-${A}-d-n-$5"}
    parsed = parse("a: 'q ${NOPE}'\n", "m.yaml", env)
    assert [(p.line, p.col) for p in parsed.problems] == [(1, 7)]


def test_yaml_scalars_merges_and_positions():
    text = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\nd: 2024-01-02\nf: 1.10\nn: ~\n"
    doc = parse(text, "m.yaml", {}).documents[0]
    assert doc.value["m"] == {"y": 2, "x": 1}
    assert doc.value["d"] == "2024-01-02" and doc.value["f"] == 1.1 and doc.value["n"] is None
    assert doc.src.child("f").raw == "1.10"
    assert (doc.src.child("m").key_line, doc.src.child("m").child("y").line) == (2, 4)
