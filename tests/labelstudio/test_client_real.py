"""The client and the generated configs against a real Label Studio (one per module)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import requests

from hlops.errors import ApiError, AuthError
from hlops.manifest import load
from hlops.providers.labelstudio.client import LabelStudioClient
from hlops.providers.labelstudio.label_config import compare, label_config, labels_in_use
from hlops.providers.labelstudio.tasks import KEY_FIELD, labels_from_rows, task_hash, task_payload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "projects"


@pytest.fixture(scope="module")
def client(label_studio):
    return LabelStudioClient(label_studio.url, label_studio.token)


def rows(example: str, name: str) -> list[dict]:
    path = next((EXAMPLES / example / "data").iterdir())
    if path.suffix == ".json":
        return orjson.loads(path.read_bytes())
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_legacy_token_works_a_wrong_one_is_refused(label_studio, client):
    assert client.whoami()["email"] == label_studio.username
    with pytest.raises(AuthError) as info:
        LabelStudioClient(label_studio.url, "not-the-token").list_projects()
    assert "not-the-token" not in str(info.value)


def test_personal_access_token_is_exchanged_for_a_bearer_access_token(label_studio, client):
    refresh = requests.post(label_studio.url + "/api/token/", headers=label_studio.headers).json()["token"]
    pat = LabelStudioClient(label_studio.url, refresh)
    assert pat.whoami()["email"] == label_studio.username
    assert pat._auth_header().startswith("Bearer ")
    assert refresh not in repr(pat)


@pytest.mark.parametrize("example", ["sentiment", "multilabel", "entities"])
def test_label_studio_accepts_the_generated_config_and_tasks(client, example):
    config = load(EXAMPLES / example, check_data=False)
    (proj,) = config.projects.values()
    (dataset,) = [d for d in config.datasets.values()
                  if any(ref.startswith(d.name + ".") for i in proj.inputs.values() for ref in i.from_)]
    data = rows(example, dataset.name)
    xml = label_config(proj, labels_from_rows(proj, dataset, data))
    created = client.create_project({"title": f"{example}-test", "label_config": xml,
                                     "expert_instruction": "read me"})
    try:
        assert not compare(xml, client.get_project(created["id"])["label_config"])
        payloads = [task_payload(proj, dataset, r) for r in data]
        assert client.import_tasks(created["id"], payloads) == len(payloads)
        back = list(client.iter_tasks(created["id"], page_size=7))
        assert len(back) == len(payloads)
        sent = {p["data"][KEY_FIELD]: p["meta"]["hlops_hash"] for p in payloads}
        labels = "predictions" if proj.review_existing_annotations else "annotations"
        got = {}
        for t in back:
            result = [r for entry in t[labels] for r in entry["result"]]
            clean = [{k: r[k] for k in ("from_name", "to_name", "type", "value")} for r in result]
            got[t["data"][KEY_FIELD]] = task_hash(t["data"], clean)
            assert t["meta"]["hlops_hash"] == sent[t["data"][KEY_FIELD]]
        assert got == sent  # the hash recomputed from what Label Studio gives back
    finally:
        client.delete_project(created["id"])


def test_what_label_studio_refuses_when_annotations_use_a_label_or_control(client):
    """PATCH (the serializer, non-strict) accepts removing a used *label* — the annotations
    keep a label the config no longer has — while POST /validate (strict) refuses it; a used
    *control* removed is refused by both."""
    old = ('<View><Text name="text" value="$text"/><Choices name="s" toName="text" '
           'choice="single"><Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices></View>')
    p = client.create_project({"title": "refuse", "label_config": old})
    try:
        region = {"from_name": "s", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}
        client.import_tasks(p["id"], [{"data": {"text": "x"}, "annotations": [{"result": [region]}]}])
        # Annotations imported inline are not counted in the project summary Label Studio
        # validates a new config against: it would accept any change. One made by the API is.
        assert client.call("GET", f"/api/projects/{p['id']}/summary")["created_labels"] == {}
        client.validate_label_config(p["id"], old.replace('<Choice value="a"/>', ""))
        (task,) = client.iter_tasks(p["id"])
        client.create_annotation(task["id"], [region])
        used = labels_in_use([a["result"] for a in client.list_annotations(task["id"])])
        assert used == {"s": {"a"}}
        without_a = old.replace('<Choice value="a"/>', "")
        assert [c.label for c in compare(old, without_a).refused(used)] == ["a"]
        with pytest.raises(ApiError) as info:
            client.validate_label_config(p["id"], without_a)
        assert info.value.status == 400
        without_b = old.replace('<Choice value="b"/>', "")
        assert compare(old, without_b).refused(used) == []
        client.validate_label_config(p["id"], without_b)
        client.patch_project(p["id"], {"label_config": without_a})  # accepted: data loss
        assert '"a"' not in client.get_project(p["id"])["label_config"]
        no_control = '<View><Text name="text" value="$text"/><Choices name="other" toName="text"><Choice value="z"/></Choices></View>'
        assert [c.what for c in compare(old, no_control).refused(used)] == ["control"]
        for attempt in (client.validate_label_config, lambda i, x: client.patch_project(i, {"label_config": x})):
            with pytest.raises(ApiError) as info:
                attempt(p["id"], no_control)
            assert info.value.status == 400
    finally:
        client.delete_project(p["id"])


def test_update_delete_predictions_and_bulk_delete(client):
    xml = ('<View><Text name="text" value="$text"/><Choices name="s" toName="text">'
           '<Choice value="a"/></Choices></View>')
    p = client.create_project({"title": "crud", "label_config": xml})
    try:
        client.import_tasks(p["id"], [{"data": {"text": f"t{i}"}} for i in range(12)], batch=5)
        tasks = list(client.iter_tasks(p["id"], page_size=5))
        assert len(tasks) == 12
        client.update_task(tasks[0]["id"], {"text": "edited"})
        client.create_prediction(tasks[1]["id"], [{"from_name": "s", "to_name": "text",
                                 "type": "choices", "value": {"choices": ["a"]}}], score=0.5)
        assert len(client.list_predictions(tasks[1]["id"])) == 1
        client.create_annotation(tasks[2]["id"], [{"from_name": "s", "to_name": "text",
                                 "type": "choices", "value": {"choices": ["a"]}}])
        client.delete_task(tasks[3]["id"])
        assert client.delete_tasks(p["id"], [t["id"] for t in tasks[4:8]]) == 4
        left = {t["id"]: t for t in client.iter_tasks(p["id"])}
        assert len(left) == 7 and left[tasks[0]["id"]]["data"]["text"] == "edited"
        assert len(client.export_tasks(p["id"])) == 7
    finally:
        client.delete_project(p["id"])


def test_members_are_the_one_organisation(label_studio, client):
    me = client.whoami()
    members = client.list_memberships(me["active_organization"])
    assert [m["user"]["email"] if isinstance(m["user"], dict) else m["user"] for m in members] in (
        [label_studio.username], [me["id"]])
