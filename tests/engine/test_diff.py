"""The pure middle: kinds' comparable shapes, attribute diffs, actions, cascades, renders."""

from __future__ import annotations

import pytest

from hlops.diff import Actual, Desired, Options, apply_ignore_changes, attribute_changes, diff
from hlops.errors import PlanError
from hlops.providers.humanloop.kinds import DATASET, PROJECT
from hlops.providers.humanloop.kinds.base import RemoteIndex
from hlops.models import Ownership
from hlops.plan import Action, Plan
from hlops.render import json as render_json
from hlops.render import markdown, text

FIELDS = [
    {"id": 1, "name": "text", "data_type": "text"},
    {"id": 2, "name": "sentiment", "data_type": "categorical"},
    {"id": 3, "name": "external_id", "data_type": "text"},
]


def raw_dataset(**over):
    raw = {"id": 10, "name": "tickets", "description": None, "key": "external_id",
           "fields": FIELDS, "datapoint_count": 5, "version": 3}
    raw.update(over)
    return raw


def raw_project(**over):
    raw = {
        "id": 20, "name": "sentiment", "description": None, "guidelines": "Be kind.\n",
        "review_existing_annotations": False, "annotation_count": 12, "version": 7,
        "inputs": [{"id": 1, "name": "text", "data_type": "text", "description": None,
                    "display_only": False, "data_sources": [{"field_id": 1}]}],
        "outputs": [{"id": 2, "name": "sentiment", "task_type": "classification", "description": None,
                     "data_sources": [{"field_id": 2}], "labels": [], "input": None}],
        "users": [{"email": "a@example.com", "role": "annotator"}],
    }
    raw.update(over)
    return raw


def state(datasets=(), projects=()):
    index = RemoteIndex()
    for d in datasets:
        index.add_dataset(d)
    for p in projects:
        index.projects[p["id"]] = p
    actual = [Actual("dataset", d["name"], d["id"], d["version"], DATASET.actual(d, index), d) for d in datasets]
    actual += [Actual("project", p["name"], p["id"], p["version"], PROJECT.actual(p, index), p) for p in projects]
    return index, actual


def desired_of(index, actual, **kinds_over):
    """The desired state equal to the remote one, with edits applied by the caller."""
    return [Desired(a.kind, a.name, _copy(a.comparable)) for a in actual]


def _copy(value):
    import copy
    return copy.deepcopy(value)


def test_same_state_is_a_noop():
    index, actual = state([raw_dataset()], [raw_project()])
    changes, unmanaged = diff(desired_of(index, actual), actual, index)
    assert [c.action for c in changes] == [Action.NOOP, Action.NOOP]
    assert unmanaged == []
    assert not Plan(changes=tuple(changes)).has_changes


def test_added_label_is_an_update_and_removed_label_a_replace():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = desired_of(index, actual)
    desired[1].comparable["outputs"]["sentiment"]["labels"]["mixed"] = None
    (ds, proj), _ = diff(desired, actual, index)
    assert proj.action == Action.UPDATE
    assert [c.dotted for c in proj.changes] == ["outputs.sentiment.labels.mixed"]
    assert proj.changes[0].kind == "add"

    index, actual = state([raw_dataset()], [raw_project(outputs=[{**raw_project()["outputs"][0], "labels": [{"name": "mixed"}]}])])
    desired = desired_of(index, actual)
    del desired[1].comparable["outputs"]["sentiment"]["labels"]["mixed"]
    (ds, proj), _ = diff(desired, actual, index)
    assert proj.action == Action.REPLACE
    assert proj.replace_reasons == ("output 'sentiment' loses label 'mixed'",)
    assert proj.data_loss == ("destroys 12 annotations and the model trained on them",)


def test_field_type_change_replaces_dataset_and_cascades_to_readers():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = desired_of(index, actual)
    desired[0].comparable["fields"]["sentiment"]["data_type"] = "text"
    (ds, proj), _ = diff(desired, actual, index)
    assert ds.action == Action.REPLACE
    assert "field 'sentiment' changes type from categorical to text" in ds.replace_reasons
    assert ds.data_loss == ("destroys 5 datapoints",)
    assert proj.action == Action.REPLACE
    assert proj.replace_reasons == ("it reads dataset 'tickets', which is replaced",)


def test_undeclared_reader_blocks_a_dataset_replacement():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = [Desired("dataset", "tickets", _copy(actual[0].comparable))]
    desired[0].comparable["fields"].pop("sentiment")
    with pytest.raises(PlanError, match="no manifest declares"):
        diff(desired, actual, index)


def test_create_delete_and_unmanaged():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = [
        Desired("dataset", "tickets", None),  # ensure: absent
        Desired("project", "sentiment", None),
        Desired("dataset", "new", {"name": "new", "description": None, "key": None, "fields": {"t": {"data_type": "text", "description": None}}}),
    ]
    changes, unmanaged = diff(desired, actual, index)
    actions = {c.address: c.action for c in changes}
    assert actions == {"dataset/new": Action.CREATE, "dataset/tickets": Action.DELETE, "project/sentiment": Action.DELETE}
    assert unmanaged == []
    index, actual = state([raw_dataset(), raw_dataset(id=11, name="team-b-other")])
    changes, unmanaged = diff([Desired("dataset", "tickets", _copy(actual[0].comparable))], actual, index)
    assert unmanaged == ["dataset/team-b-other"]


def test_prune_deletes_only_owned_names():
    index, actual = state([raw_dataset(), raw_dataset(id=11, name="team-a-x", fields=[]), raw_dataset(id=12, name="other", fields=[])])
    desired = [Desired("dataset", "tickets", _copy(actual[0].comparable))]
    changes, unmanaged = diff(desired, actual, index, Options(prune=True, owns=Ownership(prefixes=("team-a-",))))
    assert {c.address: c.action for c in changes} == {"dataset/tickets": Action.NOOP, "dataset/team-a-x": Action.DELETE}
    assert unmanaged == ["dataset/other"]


def test_rename_in_place_keeps_the_id_and_projects_follow():
    index = RemoteIndex()
    d = raw_dataset()
    index.add_dataset(d, planned_name="tickets-v2")
    p = raw_project()
    index.projects[p["id"]] = p
    actual = [Actual("dataset", "tickets", 10, 3, DATASET.actual(d, index), d),
              Actual("project", "sentiment", 20, 7, PROJECT.actual(p, index), p)]
    after = _copy(actual[0].comparable) | {"name": "tickets-v2"}
    desired = [Desired("dataset", "tickets-v2", after, renamed_from="tickets"),
               Desired("project", "sentiment", _copy(actual[1].comparable))]
    (ds, proj), unmanaged = diff(desired, actual, index)
    assert ds.action == Action.UPDATE and ds.remote_id == 10 and ds.renamed_from == "tickets"
    assert [c.dotted for c in ds.changes] == ["name"]
    assert proj.action == Action.NOOP  # reads tickets-v2.text both sides
    assert unmanaged == []


def test_ignore_changes_keeps_remote_values():
    before = {"guidelines": "remote", "users": {"a@x.io": "owner"}}
    after = {"guidelines": "local", "users": {"b@x.io": "annotator"}}
    kept = apply_ignore_changes(after, before, ["guidelines", "users"])
    assert kept == before
    assert attribute_changes(before, kept) == []


def test_targets_include_dependencies():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = desired_of(index, actual)
    desired[0].comparable["description"] = "x"
    desired[1].comparable["description"] = "y"
    changes, _ = diff(desired, actual, index, Options(targets=("project/sentiment",)))
    assert [c.address for c in changes] == ["dataset/tickets", "project/sentiment"]
    with pytest.raises(PlanError, match="matches no resource"):
        diff(desired, actual, index, Options(targets=("project/nope",)))


def test_renderers_show_the_same_plan():
    index, actual = state([raw_dataset()], [raw_project()])
    desired = desired_of(index, actual)
    desired[1].comparable["guidelines"] = "Be kind.\nBe precise.\n"
    desired[1].comparable["users"]["a@example.com"] = "owner"
    changes, _ = diff(desired, actual, index)
    plan = Plan(changes=tuple(changes))
    out = text.render(plan)
    assert "~ project \"sentiment\" {" in out
    assert "~ users.a@example.com: \"annotator\" -> \"owner\"" in out
    assert "+Be precise." in out
    assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in out
    md = markdown.render(plan)
    assert "<details><summary>" in md and "+Be precise." in md
    again = Plan.from_json(__import__("json").loads(render_json.render(plan)))
    assert again == plan


def test_equal_sides_skip_deepdiff_but_type_changes_still_show():
    same = {"a": [1, {"b": "x"}], "c": None, "d": 1.5, "e": True}
    assert attribute_changes(same, {"a": [1, {"b": "x"}], "c": None, "d": 1.5, "e": True}) == []
    assert attribute_changes({"a": 1}, {"a": 1.0}) == [(("a",), 1, 1.0, "change")]
    assert attribute_changes({"a": 1}, {"a": True}) == [(("a",), 1, True, "change")]
    assert attribute_changes({"a": [1]}, {"a": (1,)}) == [(("a",), [1], (1,), "change")]
