"""label_config generation and semantic comparison, pure (no Label Studio needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from hlops.manifest import load
from hlops.models import Project
from hlops.providers.labelstudio.label_config import (
    LabelConfigError, compare, label_config, labels_in_use, parse,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "projects"


def project(outputs: dict, inputs: dict | None = None) -> Project:
    return Project.model_validate({
        "kind": "Project", "name": "p",
        "inputs": inputs or {"text": "d.text"}, "outputs": outputs,
    })


def test_classification_is_single_choices_over_the_first_model_input():
    p = project({"sentiment": {"task_type": "classification", "labels": ["pos", "neg"]}},
                {"meta": {"from": "d.meta", "display_only": True}, "text": "d.text"})
    parsed = parse(label_config(p))
    assert parsed.objects == {"meta": ("Text", "$meta"), "text": ("Text", "$text")}
    c = parsed.controls["sentiment"]
    assert (c.tag, c.to_name, dict(c.attrs)["choice"], c.label_values()) == (
        "Choices", "text", "single", ["pos", "neg"])


def test_multilabel_is_multiple_choices_and_spans_are_labels_over_their_input():
    p = project({
        "topics": {"task_type": "multilabel_classification",
                   "labels": [{"name": "billing", "description": "Invoices."}]},
        "entities": {"task_type": "sequence_tagging", "input": "text", "labels": ["PER"]},
    })
    parsed = parse(label_config(p))
    assert dict(parsed.controls["topics"].attrs)["choice"] == "multiple"
    assert parsed.controls["topics"].labels == (("billing", (("hint", "Invoices."),)),)
    assert (parsed.controls["entities"].tag, parsed.controls["entities"].to_name) == ("Labels", "text")


def test_labels_from_data_are_added_after_the_listed_ones():
    p = project({"s": {"task_type": "classification", "from": "d.s", "labels": ["b"]}})
    assert parse(label_config(p, {"s": ["c", "a", "b"]})).controls["s"].label_values() == ["b", "a", "c"]


def test_compare_reports_added_removed_and_changed_labels_with_their_risk():
    old = label_config(project({"s": {"task_type": "classification", "labels": ["a", "b"]}}))
    new = label_config(project({"s": {"task_type": "classification",
                                      "labels": [{"name": "a", "description": "A!"}, "c"]}}))
    diff = compare(old, new)
    by = {(c.op, c.label): c for c in diff.changes}
    assert set(by) == {("-", "b"), ("~", "a"), ("+", "c")}
    assert by[("-", "b")].loses_annotations and by[("-", "b")].refused_if_used
    assert not by[("+", "c")].loses_annotations and not by[("~", "a")].loses_annotations
    assert diff.loses_annotations
    assert diff.refused({"s": {"a"}}) == []             # b unused: Label Studio accepts
    assert diff.refused({"s": {"b"}}) == [by[("-", "b")]]


def test_compare_ignores_layout_and_attribute_order_and_sees_control_changes():
    a = '<View><Text name="t" value="$t"/><Choices name="s" toName="t" choice="single"><Choice value="x"/></Choices></View>'
    b = '<View>\n <Header value="hi"/>\n <Text value="$t" name="t"/>\n <Choices choice="single" toName="t" name="s">\n  <Choice value="x"/>\n </Choices>\n</View>'
    assert not compare(a, b)
    c = a.replace('choice="single"', 'choice="multiple"')
    (change,) = compare(a, c).changes
    assert (change.what, change.op, change.loses_annotations) == ("control", "~", False)
    d = a.replace("<Choices", "<Labels").replace("</Choices>", "</Labels>").replace("Choice ", "Label ")
    assert any(ch.what == "control" and ch.loses_annotations for ch in compare(a, d).changes)
    gone = compare(a, '<View><Text name="t" value="$t"/></View>').changes
    assert [(ch.what, ch.op, ch.refused_if_used) for ch in gone] == [("control", "-", True)]


def test_not_xml_is_a_clear_error():
    with pytest.raises(LabelConfigError, match="not XML"):
        parse("<View><Text")


def test_labels_in_use_from_annotation_results():
    results = [[{"from_name": "s", "value": {"choices": ["a"]}}],
               [{"from_name": "e", "value": {"start": 0, "end": 1, "labels": ["PER"]}}]]
    assert labels_in_use(results) == {"s": {"a"}, "e": {"PER"}}


@pytest.mark.parametrize("example", ["sentiment", "multilabel", "entities"])
def test_examples_generate_a_config_that_compares_equal_to_itself(example):
    config = load(EXAMPLES / example, check_data=False)
    for p in config.projects.values():
        xml = label_config(p)
        assert not compare(xml, xml)
        assert set(parse(xml).controls) == set(p.outputs)


label = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)
@given(st.lists(label, min_size=1, max_size=6, unique=True),
       st.sampled_from(["classification", "multilabel_classification", "sequence_tagging"]))
def test_round_trip_labels_and_a_removed_label_is_the_only_change(labels, task_type):
    out = {"task_type": task_type, "labels": labels}
    if task_type == "sequence_tagging":
        out["input"] = "text"
    xml = label_config(project({"o": out}))
    assert parse(xml).controls["o"].label_values() == labels
    if len(labels) > 1:
        fewer = label_config(project({"o": {**out, "labels": labels[1:]}}))
        (change,) = compare(xml, fewer).changes
        assert (change.op, change.label) == ("-", labels[0])
