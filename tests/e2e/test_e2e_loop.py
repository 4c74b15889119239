"""The Terraform loop against the real server: apply, change one thing, plan shows exactly
that, apply converges, plan is clean again, and a second apply writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.cli import REPO, run_hlops
from support.postgres import BOTH

FIXTURE = Path(__file__).parent / "fixtures" / "shop"
EXAMPLES = sorted(p for p in (REPO / "examples" / "projects").iterdir() if p.is_dir())


@pytest.fixture
def shop(tmp_path):
    work = tmp_path / "shop"
    shutil.copytree(FIXTURE, work)
    return work


def hl(server, *args, cwd=None, **kw):
    return run_hlops(*args, server=server, cwd=cwd, env={"HLOPS_HOME": str(cwd / ".hlops") if cwd else ""}, **kw)


def apply_clean(server, path, *extra):
    """Apply, then check the next plan is clean (exit 0)."""
    result = hl(server, "apply", str(path), "--auto-approve", *extra, cwd=path.parent)
    assert result.code == 0, result
    again = hl(server, "plan", str(path), cwd=path.parent)
    assert again.code == 0, again
    assert "No changes." in again.out
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("store", BOTH, indirect=True)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_applies_and_then_plans_clean(fresh_server, example, tmp_path):
    work = tmp_path / example.name
    shutil.copytree(example, work)
    shutil.copytree(REPO / "schema", tmp_path.parent / "schema", dirs_exist_ok=True)
    first = hl(fresh_server, "plan", str(work), cwd=tmp_path)
    assert first.code == 2, first
    apply_clean(fresh_server, work)
    before = fresh_server.stats()
    second = hl(fresh_server, "apply", str(work), "--auto-approve", cwd=tmp_path)
    assert second.code == 0, second
    assert "Nothing to do." in second.out
    after = fresh_server.stats()
    assert after["writes"] == before["writes"], "a second apply of an applied directory wrote something"


# (edit to make, text the plan must show, summary line, extra apply flags)
SCENARIOS = {
    "add a label": (
        ("project.yaml", "labels: [price, quality, delivery]", "labels: [price, quality, delivery, service]"),
        ['~ project "shop-sentiment" {', "+ outputs.topic.labels.service"],
        "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.",
        (),
    ),
    "edit guidelines": (
        ("guidelines.md", "Read the whole review", "Read the whole review twice"),
        ["~ guidelines:", "-Read the whole review before choosing a rating.", "+Read the whole review twice before choosing a rating."],
        "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.",
        (),
    ),
    "add a field": (
        ("dataset.yaml", "  rating: categorical\n", "  rating: categorical\n  lang: categorical\n"),
        ['~ dataset "shop-reviews" {', '+ fields.lang: {data_type: "categorical"}'],
        "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.",
        (),
    ),
    "change a user's role": (
        ("project.yaml", "  - ana@example.com\n", "  - {email: ana@example.com, role: admin}\n"),
        ['~ users.ana@example.com: "annotator" -> "admin"'],
        "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.",
        (),
    ),
    "rename a description": (
        ("project.yaml", "description: How do customers feel?", "description: How do our customers feel?"),
        ['~ description: "How do customers feel?" -> "How do our customers feel?"'],
        "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.",
        (),
    ),
    "change a field's type": (
        ("dataset.yaml", "  notes: text", "  notes: categorical"),
        ['-/+ dataset "shop-reviews" {', "replaced because field 'notes' changes type from text to categorical",
         "! data loss: destroys 40 datapoints"],
        None,  # the project must follow: checked below
        ("--allow-data-loss",),
    ),
    "remove an output": (
        ("project.yaml", "  topic:\n    task_type: classification\n    labels: [price, quality, delivery]\n", ""),
        ['-/+ project "shop-sentiment" {', "- outputs.topic", "# forces replacement",
         "replaced because output 'topic' is removed", "! data loss: destroys 30 annotations"],
        "Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy.",
        ("--allow-data-loss",),
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_one_change_plans_exactly_and_converges(fresh_server, shop, name):
    (file, old, new), expected, summary, flags = SCENARIOS[name]
    apply_clean(fresh_server, shop)
    edit(shop / file, old, new)
    plan = hl(fresh_server, "plan", str(shop), cwd=shop.parent)
    assert plan.code == 2, plan
    for line in expected:
        assert line in plan.out, f"{line!r} missing from:\n{plan.out}"
    if summary:
        assert summary in plan.out, plan.out
    if flags:  # destructive: refused without the flag, nothing written
        before = fresh_server.stats()["writes"]
        refused = hl(fresh_server, "apply", str(shop), "--auto-approve", cwd=shop.parent)
        assert refused.code == 1, refused
        assert "--allow-data-loss" in refused.err
        assert fresh_server.stats()["writes"] == before
    apply_clean(fresh_server, shop, *flags)


def test_field_type_change_replaces_the_readers_too(fresh_server, shop):
    apply_clean(fresh_server, shop)
    edit(shop / "dataset.yaml", "  notes: text", "  notes: categorical")
    plan = hl(fresh_server, "plan", str(shop), "--json", cwd=shop.parent)
    assert plan.code == 2, plan
    doc = json.loads(plan.out)
    actions = {c["kind"] + "/" + c["name"]: c["action"] for c in doc["changes"]}
    assert actions == {"dataset/shop-reviews": "replace", "project/shop-sentiment": "replace"}
    project = next(c for c in doc["changes"] if c["kind"] == "project")
    assert "it reads dataset 'shop-reviews', which is replaced" in project["replace_reasons"]
    apply_clean(fresh_server, shop, "--allow-data-loss")


def test_add_datapoints_sends_only_the_new_rows(fresh_server, shop):
    apply_clean(fresh_server, shop)
    with (shop / "data" / "reviews.jsonl").open("a") as f:
        for i in range(5):
            f.write(json.dumps({"review_id": f"new{i}", "text": f"New review {i}", "rating": "good"}) + "\n")
    plan = hl(fresh_server, "plan", str(shop), cwd=shop.parent)
    assert plan.code == 2, plan
    assert "+5 to add, ~0 to change" in plan.out
    assert "Datapoints: 5 to add, 0 to change, 0 to remove." in plan.out
    apply_clean(fresh_server, shop)
    dataset = fresh_server.call("GET", "/datasets", params={"name": "shop-reviews"}).json()["items"][0]
    assert dataset["datapoint_count"] == 45


def test_stale_saved_plan_is_refused_and_writes_nothing(fresh_server, shop):
    apply_clean(fresh_server, shop)
    edit(shop / "project.yaml", "How do customers feel?", "Feelings")
    saved = shop.parent / "plan.json"
    plan = hl(fresh_server, "plan", str(shop), "-o", str(saved), cwd=shop.parent)
    assert plan.code == 2, plan
    project = fresh_server.call("GET", "/projects", params={"name": "shop-sentiment"}).json()["items"][0]
    r = fresh_server.call("PATCH", f"/projects/{project['id']}", json={"guidelines": "edited in the web app"})
    assert r.status_code == 200, r.text
    before = fresh_server.stats()["writes"]
    stale = hl(fresh_server, "apply", str(saved), "--auto-approve", cwd=shop.parent)
    assert stale.code == 1, stale
    assert "stale" in stale.err and "project/shop-sentiment" in stale.err
    assert fresh_server.stats()["writes"] == before


def test_fresh_saved_plan_applies(fresh_server, shop):
    apply_clean(fresh_server, shop)
    edit(shop / "project.yaml", "How do customers feel?", "Feelings")
    saved = shop.parent / "plan.json"
    assert hl(fresh_server, "plan", str(shop), "-o", str(saved), cwd=shop.parent).code == 2
    assert "api_key" not in saved.read_text().lower() and fresh_server.api_key not in saved.read_text()
    # like `terraform apply PLANFILE`: the reviewed plan is the approval, no prompt (no TTY here)
    applied = hl(fresh_server, "apply", str(saved), cwd=shop.parent)
    assert applied.code == 0, applied
    assert hl(fresh_server, "plan", str(shop), cwd=shop.parent).code == 0


def test_prevent_destroy_holds_even_with_allow_data_loss(fresh_server, shop):
    edit(shop / "dataset.yaml", "data: data/reviews.jsonl\n", "data: data/reviews.jsonl\nlifecycle: {prevent_destroy: true}\n")
    apply_clean(fresh_server, shop)
    edit(shop / "dataset.yaml", "  notes: text", "  notes: categorical")
    before = fresh_server.stats()["writes"]
    refused = hl(fresh_server, "apply", str(shop), "--auto-approve", "--allow-data-loss", cwd=shop.parent)
    assert refused.code == 1, refused
    assert "prevent_destroy" in refused.err
    assert fresh_server.stats()["writes"] == before


def test_apply_without_a_terminal_or_auto_approve_refuses(fresh_server, shop):
    result = hl(fresh_server, "apply", str(shop), cwd=shop.parent, input="yes\n")
    assert result.code == 1, result
    assert "--auto-approve" in result.err
    assert fresh_server.stats()["writes"] == 0


def test_destroy_deletes_what_the_manifests_declare(fresh_server, shop):
    apply_clean(fresh_server, shop)
    refused = hl(fresh_server, "destroy", str(shop), "--auto-approve", cwd=shop.parent)
    assert refused.code == 1 and "--allow-data-loss" in refused.err, refused
    done = hl(fresh_server, "destroy", str(shop), "--auto-approve", "--allow-data-loss", cwd=shop.parent)
    assert done.code == 0, done
    assert fresh_server.call("GET", "/datasets").json()["items"] == []
    assert fresh_server.call("GET", "/projects").json()["items"] == []


def test_duplicate_key_in_the_data_is_located_and_nothing_is_called(fresh_server, shop):
    rows = (shop / "data" / "reviews.jsonl").read_text().splitlines()
    (shop / "data" / "reviews.jsonl").write_text("\n".join([*rows, rows[1]]) + "\n")
    before = fresh_server.stats()["total"]
    for command in ("plan", "apply"):
        result = hl(fresh_server, command, str(shop), "--auto-approve" if command == "apply" else "--no-color", cwd=shop.parent)
        assert result.code == 1, result
        assert "shop/data/reviews.jsonl:41:1: duplicate key: line 2 has the same 'review_id'" in result.err
        assert "Traceback" not in result.err
    assert fresh_server.stats()["total"] == before
