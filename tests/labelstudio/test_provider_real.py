"""The Label Studio provider through the real CLI against a real Label Studio (one per
module): the examples applied and re-planned clean, a label added and removed, 20,000 tasks
and a 1% change, a killed apply rerun, the unsupported commands."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from hlops.providers.labelstudio.client import LabelStudioClient
from support.cli import REPO, run_hlops

EXAMPLES = REPO / "examples" / "projects"


def ls_env(ls) -> dict:
    return {"LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.token}


def hl(ls, *args, cwd):
    return run_hlops(*args, env=ls_env(ls), cwd=cwd)


def copy_example(name: str, tmp_path: Path, strip_users: bool = True) -> Path:
    work = tmp_path / name
    shutil.copytree(EXAMPLES / name, work)
    settings = work / "hlops.yaml"
    settings.write_text(settings.read_text() + "provider: labelstudio\n")
    if strip_users:
        for f in work.glob("*.yaml"):
            text = f.read_text()
            f.write_text(re.sub(r"^users:.*?(?=^\S)", "", text, flags=re.S | re.M))
    if name == "sentiment":  # its labels come from the data, which this provider refuses
        f = work / "project.yaml"
        f.write_text(f.read_text().replace(
            "    from: sentiment-support-tickets.sentiment",
            "    from: sentiment-support-tickets.sentiment\n    labels: [positive, negative, neutral]"))
    return work


@pytest.fixture(scope="module")
def client(label_studio):
    return LabelStudioClient(label_studio.url, label_studio.token)


def project_named(client, title):
    return next(p for p in client.list_projects() if p["title"] == title)


def test_sentiment_applies_and_replans_clean(label_studio, client, tmp_path):
    work = copy_example("sentiment", tmp_path)
    first = hl(label_studio, "plan", ".", cwd=work)
    assert first.code == 2, first
    applied = hl(label_studio, "apply", ".", "--auto-approve", cwd=work)
    assert applied.code == 0, applied
    again = hl(label_studio, "plan", ".", cwd=work)
    assert again.code == 0, again
    project = project_named(client, "Sentiment classification project")
    rows = [orjson.loads(x) for x in (work / "data" / "tickets.jsonl").read_bytes().splitlines() if x.strip()]
    tasks = list(client.iter_tasks(project["id"]))
    assert len(tasks) == len(rows)
    # review_existing_annotations: false -> the existing labels are annotations
    labelled = [r for r in rows if r.get("sentiment")]
    assert sum(t["total_annotations"] for t in tasks) == len(labelled)
    assert "<!-- hlops:" in project["label_config"]
    # an edit in Label Studio's UI (here: its API) is drift, and the next apply undoes it
    assert hl(label_studio, "drift", ".", cwd=work).code == 0
    client.patch_project(project["id"], {"expert_instruction": "edited by hand"})
    drift = hl(label_studio, "drift", ".", cwd=work)
    assert drift.code == 2, drift
    assert "guidelines" in drift.out
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    assert hl(label_studio, "drift", ".", cwd=work).code == 0


def test_a_second_tree_reusing_a_dataset_name_is_refused(label_studio, client, tmp_path):
    work = copy_example("sentiment", tmp_path)
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    project_file = work / "project.yaml"
    project_file.write_text(project_file.read_text().replace(
        "name: Sentiment classification project", "name: Another sentiment project"))
    # the new project is created (the dataset has no change to make); the next plan sees
    # two projects reading one dataset and refuses, naming both
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    result = hl(label_studio, "plan", ".", cwd=work)
    assert result.code == 1, result
    assert "is read by 2 Label Studio projects" in result.err, result
    assert "'Sentiment classification project'" in result.err and "Traceback" not in result.err
    assert (project_named(client, "Another sentiment project").get("task_number") or 0) == 0
    client.delete_project(project_named(client, "Another sentiment project")["id"])


def test_entities_applies_with_predictions_and_replans_clean(label_studio, client, tmp_path):
    work = copy_example("entities", tmp_path)
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    again = hl(label_studio, "plan", ".", cwd=work)
    assert again.code == 0, again
    project = project_named(client, "Named entities")
    tasks = list(client.iter_tasks(project["id"]))
    assert sum(t["total_predictions"] for t in tasks) > 0
    assert sum(t["total_annotations"] for t in tasks) == 0


def test_users_are_refused_at_their_line(label_studio, tmp_path):
    work = copy_example("entities", tmp_path, strip_users=False)
    result = hl(label_studio, "plan", ".", cwd=work)
    assert result.code == 1, result
    assert re.search(r"snippets\.yaml:\d+:\d+: users: Label Studio's open-source edition", result.err + result.out), result
    assert "Traceback" not in result.err


def test_label_added_then_removed_with_annotations(label_studio, client, tmp_path):
    work = copy_example("sentiment", tmp_path)
    project_file = work / "project.yaml"
    text = project_file.read_text()
    # its own names: dataset names are unique in a Label Studio instance
    text = text.replace("name: Sentiment classification project", "name: Sentiment labels")
    text = text.replace("sentiment-support-tickets", "label-tickets")
    project_file.write_text(text)
    dataset_file = work / "dataset.yaml"
    dataset_file.write_text(dataset_file.read_text().replace("sentiment-support-tickets", "label-tickets"))
    settings = work / "hlops.yaml"
    settings.write_text(settings.read_text().replace("Sentiment classification project", "Sentiment labels"))
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    project_file.write_text(text.replace("labels: [positive, negative, neutral]",
                                         "labels: [positive, negative, neutral, mixed]"))
    plan = hl(label_studio, "plan", ".", cwd=work)
    assert plan.code == 2, plan
    assert re.search(r"~ project \"Sentiment labels\"", plan.out), plan
    assert "1 to change, 0 to replace" in plan.out
    assert "mixed" in plan.out
    assert hl(label_studio, "apply", ".", "--auto-approve", cwd=work).code == 0
    assert hl(label_studio, "plan", ".", cwd=work).code == 0
    assert "mixed" in project_named(client, "Sentiment labels")["label_config"]
    # removing "neutral" while annotations exist (the imported labels) is data loss
    project_file.write_text(text.replace("labels: [positive, negative, neutral]",
                                         "labels: [positive, negative, mixed]"))
    plan = hl(label_studio, "plan", ".", cwd=work)
    assert plan.code == 2, plan
    assert "neutral" in plan.out and "annotation" in plan.out
    refused = hl(label_studio, "apply", ".", "--auto-approve", cwd=work)
    assert refused.code == 1, refused
    assert "allow-data-loss" in refused.err + refused.out
    assert "neutral" in project_named(client, "Sentiment labels")["label_config"]
    allowed = hl(label_studio, "apply", ".", "--auto-approve", "--allow-data-loss", cwd=work)
    assert allowed.code == 0, allowed
    config = project_named(client, "Sentiment labels")["label_config"]
    assert 'value="neutral"' not in config.split("<!--")[0]
    assert hl(label_studio, "plan", ".", cwd=work).code == 0


def test_unsupported_commands_say_so(label_studio, tmp_path):
    work = copy_example("sentiment", tmp_path)
    for args, what in ((("pull", "--all", "."), "hlops pull"),
                       (("plan", ".", "--local"), "--local"),
                       (("export", "Sentiment classification project", "-o", "out.jsonl"), "hlops export")):
        # export reads no hlops.yaml: the provider comes from HLOPS_PROVIDER
        result = run_hlops(*args, env={**ls_env(label_studio), "HLOPS_PROVIDER": "labelstudio"}, cwd=work)
        assert result.code == 1, (args, result)
        assert "not supported by the labelstudio provider" in result.err, (args, result)
        assert what in result.err
        assert "Traceback" not in result.err


# --------------------------------------------------------------------------- many tasks


def big_tree(tmp_path: Path, n: int, name: str) -> Path:
    work = tmp_path / name
    (work / "data").mkdir(parents=True)
    (work / "hlops.yaml").write_text(f"provider: labelstudio\nowns:\n  names: [{name}-rows, {name}]\n")
    (work / "dataset.yaml").write_text(
        f"kind: Dataset\nname: {name}-rows\nkey: id\nfields:\n  id: text\n  text: text\n"
        "data: data/rows.jsonl\n---\n"
        f"kind: Project\nname: {name}\ninputs:\n  text: {name}-rows.text\n"
        "outputs:\n  topic:\n    task_type: classification\n    labels: [a, b]\n")
    write_rows(work, n, changed=0)
    return work


def write_rows(work: Path, n: int, changed: int) -> None:
    with open(work / "data" / "rows.jsonl", "wb") as f:
        for i in range(n):
            text = f"row {i} text" + (" changed" if i < changed else "")
            f.write(orjson.dumps({"id": str(i), "text": text}) + b"\n")


@pytest.mark.slow
def test_20k_tasks_then_a_one_percent_change_sends_only_the_changes(label_studio, client, tmp_path):
    work = big_tree(tmp_path, 20_000, "Twenty thousand")
    applied = hl(label_studio, "apply", ".", "--auto-approve", "--json", cwd=work)
    assert applied.code == 0, applied
    pid = project_named(client, "Twenty thousand")["id"]
    assert client.get_project(pid)["task_number"] == 20_000
    noop = hl(label_studio, "plan", ".", "--json", cwd=work)
    assert noop.code == 0, noop
    assert "last_applied" in noop.out  # no task read
    write_rows(work, 20_000, changed=200)
    plan = hl(label_studio, "plan", ".", "--json", cwd=work)
    assert plan.code == 2, plan
    data = next(c["data"] for c in orjson.loads(plan.out)["changes"] if c["kind"] == "dataset")
    assert (data["add"], data["change"], data["remove"]) == (0, 200, 0)
    again = hl(label_studio, "apply", ".", "--auto-approve", "--json", cwd=work)
    assert again.code == 0, again
    report = orjson.loads(again.out)["report"]
    # 200 PATCHes + the project record (dataset step's record, the applied record)
    assert 200 <= report["writes"] <= 205, report
    tasks = list(client.iter_tasks(pid, page_size=5000, fields="task_only"))
    assert len(tasks) == 20_000
    assert sum(t["data"]["text"].endswith("changed") for t in tasks) == 200
    assert hl(label_studio, "plan", ".", cwd=work).code == 0


@pytest.mark.slow
def test_a_killed_apply_reruns_to_the_exact_state(label_studio, client, tmp_path):
    work = big_tree(tmp_path, 12_000, "Killed apply")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    env.update(ls_env(label_studio))
    proc = subprocess.Popen([sys.executable, "-m", "hlops", "apply", ".", "--auto-approve"],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    pid = None
    while time.monotonic() < deadline:
        projects = [p for p in client.list_projects() if p["title"] == "Killed apply"]
        if projects and (projects[0].get("task_number") or 0) >= 5000:
            pid = projects[0]["id"]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert pid is not None
    assert client.get_project(pid)["task_number"] < 12_000
    rerun = hl(label_studio, "apply", ".", "--auto-approve", cwd=work)
    assert rerun.code == 0, rerun
    tasks = list(client.iter_tasks(pid, page_size=5000, fields="task_only"))
    keys = [t["data"]["hlops_key"] for t in tasks]
    assert len(keys) == len(set(keys)) == 12_000
    assert hl(label_studio, "plan", ".", cwd=work).code == 0
