"""The markdown plan (PR comments): golden files, risk order, splitting, and no secrets."""

from __future__ import annotations

import json
import re

import pytest

from gitops_helpers import EXAMPLES, check_golden, plan_of
from gitops_plans import big_plan, dataset_shape, project_shape
from support.cli import REPO, run_hlops

from hlops.diff import PRUNE_NOTE
from hlops.plan import Action, AttributeChange, DataChange, Plan, ResourceChange
from hlops.render import markdown, text


def balanced(part: str) -> None:
    """Every <details> closed, every code fence closed, in this part alone."""
    assert part.count("<details>") == part.count("</details>"), part[-500:]
    fence = None
    for line in part.split("\n"):
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
    assert fence is None, "a code fence is left open"


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_create_plans_match_their_golden_files(server, connect, example, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # paths in the plan are relative to the working directory
    path = example.relative_to(REPO)
    plan = plan_of(path, connect(server), tmp_path / "cache").plan.model_copy(update={"hlops_version": "X.Y.Z"})
    assert [c.action for c in plan.changes] == [Action.CREATE] * len(plan.changes)
    parts = markdown.render_parts(plan, title=f"hlops plan: {example.name}")
    assert len(parts) == 1
    balanced(parts[0])
    check_golden(f"create-{example.name}.md", parts[0])
    check_golden(f"create-{example.name}.txt", text.render(plan, color=False))


def test_a_plan_over_the_limit_splits_into_parts_that_stand_alone():
    plan = big_plan().model_copy(update={"hlops_version": "X.Y.Z"})
    whole = markdown.render(plan)
    assert len(whole) > 4 * markdown.LIMIT
    parts = markdown.render_parts(plan)
    n = len(parts)
    assert n > 1
    for i, part in enumerate(parts, 1):
        check_golden(f"split/part-{i}.md", part)
        assert len(part) <= markdown.LIMIT
        assert part.startswith(markdown.MARKER + "\n")
        assert f"### hlops plan (part {i} of {n})" in part
        assert "| to add | to change |" in part and "`Plan: 1 to add, 241 to change, 1 to replace, 1 to destroy.`" in part
        assert f"<!-- hlops-plan-id: {plan.id} -->" in part
        balanced(part)
    # Every change is shown once, whole, except the one too long for any comment.
    summaries = [line for part in parts for line in part.split("\n") if line.startswith("<details><summary><code>")]
    assert len(summaries) == len(plan.changes) == len(set(summaries))
    cut = [p for p in parts if "more lines of this change not shown" in p]
    assert len(cut) == 1 and "project/team-a-handbook" in cut[0]
    for change in plan.changes:
        if change.name != "team-a-handbook":
            block = markdown._block(change)
            assert sum(block in part for part in parts) == 1, change.address
    # The pruned delete has its own section; the unmanaged list comes last.
    assert sum("#### 🗑️ Pruned" in p for p in parts) == 1
    assert "remote resources no manifest declares" in parts[-1]
    assert "… and 20 more" in parts[-1]


def test_a_small_limit_still_gives_valid_parts():
    plan = big_plan(projects=30, huge_guidelines_lines=300)
    parts = markdown.render_parts(plan, limit=6_000)
    assert len(parts) > 3
    for part in parts:
        assert len(part) <= 6_000
        balanced(part)


# --------------------------------------------------------------------------- order, sections


def test_changes_are_sorted_by_risk_and_pruned_deletes_have_their_own_section():
    ds = dataset_shape
    changes = (
        ResourceChange(kind="dataset", name="a-created", action=Action.CREATE, after=ds("a-created")),
        ResourceChange(kind="dataset", name="b-updated", action=Action.UPDATE, before=ds("b-updated"),
                       after=ds("b-updated") | {"description": "x"},
                       changes=(AttributeChange(path=("description",), after="x", op="change"),)),
        ResourceChange(kind="dataset", name="c-deleted", action=Action.DELETE, before=ds("c-deleted")),
        ResourceChange(kind="dataset", name="d-replaced", action=Action.REPLACE, before=ds("d-replaced"), after=ds("d-replaced"),
                       replace_reasons=("field 'text' is removed",)),
        ResourceChange(kind="project", name="e-lossy-update", action=Action.UPDATE,
                       before=project_shape("e", {}), after=project_shape("e", {}),
                       data=DataChange(remove=3, remove_annotated=2, prune=True, local_rows=1, remote_rows=4),
                       data_loss=("removes 2 datapoints carrying annotations",)),
        ResourceChange(kind="dataset", name="f-pruned", action=Action.DELETE, before=ds("f-pruned"), notes=(PRUNE_NOTE,)),
    )
    md = markdown.render(Plan(changes=changes, prune=True))
    order = [m.group(1) for m in re.finditer(r"<b><code>(\w+/[\w-]+)</code></b>", md)]
    assert order == ["project/e-lossy-update", "dataset/d-replaced", "dataset/c-deleted", "dataset/b-updated",
                     "dataset/a-created", "dataset/f-pruned"]
    assert md.index("#### Changes") < md.index("#### 🗑️ Pruned") < md.index("dataset/f-pruned</code>")
    assert "`--prune` deletes 1 resource" in md
    out = text.render(Plan(changes=changes, prune=True))
    assert out.index("# dataset/c-deleted") < out.index("Pruned (--prune)") < out.index("# dataset/f-pruned")


def test_mentions_and_html_in_names_are_neutralised():
    name = "@everyone <script>x</script>"
    plan = Plan(changes=(ResourceChange(kind="dataset", name=name, action=Action.CREATE, after=dataset_shape(name)),))
    md = markdown.render(plan)
    assert "<script>" not in md and "@everyone" not in md.replace("&#64;everyone", "")


# --------------------------------------------------------------------------- no secrets, no rows


CANARY_TEXT = "CANARY-ROW-7f3e9b1c"
CANARY_KEY_VALUE = "canary-key-5d2a"


def test_no_datapoint_content_or_api_key_in_any_plan_output(fresh_server, tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    (work / "ds.yaml").write_text(
        "kind: Dataset\nname: canary-ds\nkey: id\nfields: {id: text, text: text, label: categorical}\n"
        "data: rows.jsonl\nprune_data: true\n---\n"
        "kind: Project\nname: canary-project\ninputs: {text: canary-ds.text}\n"
        "outputs: {label: {task_type: classification, from: canary-ds.label}}\nreview_existing_annotations: false\n"
    )
    rows = [{"id": f"{CANARY_KEY_VALUE}-{i}", "text": f"{CANARY_TEXT} row {i}", "label": "pos"} for i in range(20)]
    (work / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    applied = run_hlops("apply", str(work), "--auto-approve", server=fresh_server, cwd=tmp_path, env=env)
    assert applied.code == 0, applied
    # Change, add and remove rows (the removed ones carry annotations: data loss).
    rows = [dict(r, text=r["text"] + " edited") if i < 5 else r for i, r in enumerate(rows[:15])]
    rows.append({"id": f"{CANARY_KEY_VALUE}-new", "text": f"{CANARY_TEXT} new", "label": "neg"})
    (work / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    outputs = []
    for flags in (["--markdown", "--markdown-dir", str(tmp_path / "md")], ["--json"], ["--show-data"], ["-o", str(tmp_path / "plan.json")]):
        result = run_hlops("plan", str(work), *flags, server=fresh_server, cwd=tmp_path, env=env)
        assert result.code == 2, result
        outputs += [result.out, result.err]
    outputs += [p.read_text() for p in (tmp_path / "md").glob("*.md")]
    outputs.append((tmp_path / "plan.json").read_text())
    refused = run_hlops("apply", str(tmp_path / "plan.json"), "--auto-approve", server=fresh_server, cwd=tmp_path, env=env)
    assert refused.code == 1 and "--allow-data-loss" in refused.err
    outputs += [refused.out, refused.err]
    joined = "\n".join(outputs)
    assert "+1 to add, ~5 to change, -5 to remove" in joined
    assert CANARY_TEXT not in joined
    assert fresh_server.api_key not in joined
    md = (tmp_path / "md" / "plan-1.md").read_text()
    assert CANARY_KEY_VALUE not in md, "example keys belong to the terminal (--show-data), not to comments"
