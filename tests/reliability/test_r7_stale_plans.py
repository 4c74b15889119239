"""R7 -- stale plans: a saved plan whose resources changed since it was made is refused, and
nothing is written.

Each case applies the sentiment and entities examples in an organisation of its own, makes
one local edit (so the saved plan has something to do), saves the plan (``plan -o``), then
changes something behind the plan's back -- through the API like a colleague in the web
app, or in the files -- and applies the saved plan. It must exit 1 saying the plan is stale,
and the proxy in front of the server must see no write. A control case (nothing changed
since) must apply, so the refusals are not vacuous.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from killing_proxy import KillingProxy
from rel_support import EXAMPLES, Org, is_write, org_server, run_inprocess
from support.cli import run_hlops


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


def append_row(tree: Path, uid: str = "news-new", text: str = "A new snippet.") -> None:
    with (tree / "entities" / "data" / "snippets.jsonl").open("a") as f:
        f.write(json.dumps({"snippet_id": uid, "text": text, "source": "blog"}) + "\n")


def dataset(org: Org, name: str) -> dict:
    return org.get("/datasets", name=name)["items"][0]


def project(org: Org, name: str) -> dict:
    return org.get("/projects", name=name)["items"][0]


# name -> (local edit before the plan, change after the plan); both take (tree, org)
CASES = {
    "project config edited via the API": (
        lambda t, o: edit(t / "sentiment" / "project.yaml", "Is a support message", "Is this support message"),
        lambda t, o: o.call("PATCH", f"/projects/{project(o, 'Sentiment classification project')['id']}",
                            json={"guidelines": "edited in the web app"}),
    ),
    "dataset config edited via the API": (
        lambda t, o: edit(t / "entities" / "snippets.yaml", "News sentences", "News lines"),
        lambda t, o: o.call("PATCH", f"/datasets/{dataset(o, 'entities-news-snippets')['id']}", json={"description": "web"}),
    ),
    "datapoints added via the API": (
        lambda t, o: append_row(t),
        lambda t, o: o.call("PUT", f"/datasets/{dataset(o, 'entities-news-snippets')['id']}",
                            json={"data": [{"snippet_id": "web-1", "text": "Added in the web app.", "source": "blog"}]}),
    ),
    "datapoints changed via the API": (
        lambda t, o: append_row(t),
        lambda t, o: o.call("PATCH", f"/datasets/{dataset(o, 'entities-news-snippets')['id']}/datapoints", json={"data": [
            {"id": o.get(f"/datasets/{dataset(o, 'entities-news-snippets')['id']}/datapoints", limit=1)["items"][0]["id"],
             "data": {"snippet_id": "news-1000", "text": "Changed in the web app.", "source": "blog"}}]}),
    ),
    "datapoints deleted via the API": (
        lambda t, o: append_row(t),
        lambda t, o: o.call("POST", f"/datasets/{dataset(o, 'entities-news-snippets')['id']}/datapoints/delete", json={
            "ids": [o.get(f"/datasets/{dataset(o, 'entities-news-snippets')['id']}/datapoints", limit=1)["items"][0]["id"]]}),
    ),
    "resource deleted": (
        lambda t, o: edit(t / "entities" / "snippets.yaml", "News sentences", "News lines"),
        lambda t, o: o.call("DELETE", f"/projects/{project(o, 'Named entities')['id']}"),
    ),
    "resource renamed via the API": (
        lambda t, o: edit(t / "sentiment" / "project.yaml", "Is a support message", "Is this support message"),
        lambda t, o: o.call("PATCH", f"/projects/{project(o, 'Sentiment classification project')['id']}",
                            json={"name": "renamed in the web app"}),
    ),
    "resource created with a planned name": (
        lambda t, o: (t / "entities" / "extra.yaml").write_text(
            "kind: Dataset\nname: planned-name\nfields:\n  text: text\n"),
        lambda t, o: o.call("POST", "/datasets", json={"name": "planned-name", "fields": [{"name": "text", "data_type": "text"}]}),
    ),
    "data file edited": (
        lambda t, o: append_row(t),
        lambda t, o: edit(t / "entities" / "data" / "snippets.jsonl", "Apple opened a new office", "Apple closed an office"),
    ),
    "data file row added": (
        lambda t, o: append_row(t),
        lambda t, o: append_row(t, "news-newer", "Another one."),
    ),
    "manifest edited": (
        lambda t, o: edit(t / "entities" / "snippets.yaml", "News sentences", "News lines"),
        lambda t, o: edit(t / "entities" / "snippets.yaml", "News lines", "News paragraphs"),
    ),
    "annotations added to a project the plan replaces": (
        lambda t, o: edit(t / "entities" / "snippets.yaml", "      - {name: PRODUCT, description: A named product or model.}\n", ""),
        lambda t, o: [o.call("POST", f"/projects/{project(o, 'Named entities')['id']}/annotations", json={
            "datapoint_id": dp["id"], "output": "entities", "value": [{"start": 0, "end": 4, "label": "ORG"}]})
            for dp in o.get(f"/datasets/{dataset(o, 'entities-news-snippets')['id']}/datapoints", limit=5)["items"]],
    ),
}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("r7")
    srv = org_server(base / "server", orgs=len(CASES) + 6)
    proxy = KillingProxy(srv.url)
    rig = {"base": base, "srv": srv, "proxy": proxy, "next": 2, "results": {}}
    try:
        yield rig
    finally:
        proxy.close()
        srv.close()


def setup_case(rig, name: str) -> tuple[Path, Org, Path]:
    i = rig["next"]
    rig["next"] += 1
    org = Org(rig["srv"].url, rig["srv"].org_keys[i])
    work = rig["base"] / f"case-{i}"
    for example in ("sentiment", "entities"):
        shutil.copytree(EXAMPLES / example, work / example)
    paths = [str(work / "sentiment"), str(work / "entities")]
    applied = run_inprocess(["apply", *paths, "--auto-approve"], org.url, org.key, work / ".hlops", work)
    assert applied.code == 0, applied
    return work, org, work / "plan.json"


def plan_saved(rig, work: Path, org: Org, saved: Path) -> None:
    paths = [str(work / "sentiment"), str(work / "entities")]
    planned = run_inprocess(["plan", *paths, "-o", str(saved)], org.url, org.key, work / ".hlops", work)
    assert planned.code == 2, planned


def apply_saved(rig, work: Path, org: Org, saved: Path, real: bool = False):
    """``apply plan.json --auto-approve --allow-data-loss``, as a CI job would run it (the
    flag must not turn a stale plan's unseen data loss into an accepted one)."""
    proxy = rig["proxy"]
    proxy.reset()
    args = ["apply", str(saved), "--auto-approve", "--allow-data-loss"]
    if real:
        result = run_hlops(*args, cwd=work,
                           env={"HLOPS_BASE_URL": proxy.url, "HLOPS_API_KEY": org.key, "HLOPS_HOME": str(work / ".hlops")})
    else:
        result = run_inprocess(args, proxy.url, org.key, work / ".hlops", work)
    writes = [f"{x.method} {x.path}" for x in proxy.calls(answered_only=False) if is_write(x.method, x.path)]
    return result, writes


@pytest.mark.parametrize("name", list(CASES))
def test_a_stale_saved_plan_is_refused_and_writes_nothing(rig, record, name):
    local_edit, change = CASES[name]
    work, org, saved = setup_case(rig, name)
    local_edit(work, org)
    plan_saved(rig, work, org, saved)
    done = change(work, org)
    for r in done if isinstance(done, list) else [done] if done is not None else []:
        assert r.status_code < 300, r.text
    result, writes = apply_saved(rig, work, org, saved, real=name == "resource deleted")
    problems = []
    if result.code != 1:
        problems.append(f"exit {result.code}")
    if "stale" not in result.err:
        problems.append("the message does not say the plan is stale")
    if writes:
        problems.append(f"wrote {writes}")
    if "Traceback" in result.err:
        problems.append("a traceback")
    record("R7", cases=1, passed=int(not problems), change=name)
    assert not problems, f"{name}: {problems}\n{result}"


def test_control_a_fresh_saved_plan_applies(rig, record):
    """Nothing changed since the plan: it applies (so the refusals above are not vacuous)."""
    work, org, saved = setup_case(rig, "control")
    CASES["project config edited via the API"][0](work, org)
    append_row(work)
    plan_saved(rig, work, org, saved)
    result, writes = apply_saved(rig, work, org, saved)
    ok = result.code == 0 and len(writes) >= 2
    record("R7", cases=1, passed=int(ok), change="none (control)")
    assert ok, (result, writes)


def test_control_a_fresh_destructive_saved_plan_applies(rig, record):
    """A saved plan that destroys annotations, nothing changed since: it applies (with
    --allow-data-loss) -- its data loss survives the JSON round trip unchanged."""
    work, org, saved = setup_case(rig, "control, destructive")
    edit(work / "sentiment" / "project.yaml", "    description: Sentiment of the text\n",
         "    description: Sentiment of the text\n    labels: [positive, negative, neutral]\n")
    edit(work / "sentiment" / "project.yaml", "    from: sentiment-support-tickets.sentiment   # existing labels: positive, negative, neutral\n", "")
    plan_saved(rig, work, org, saved)
    assert json.loads(saved.read_text())["summary"]["data_loss"] == 1
    result, writes = apply_saved(rig, work, org, saved)
    ok = result.code == 0 and any(w.startswith("DELETE /projects/") for w in writes)
    record("R7", cases=1, passed=int(ok), change="none (control, destructive plan)")
    assert ok, (result, writes)
