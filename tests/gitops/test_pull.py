"""`hlops pull` / `hlops import`: remote -> manifests, comments kept, then a plan is clean."""

from __future__ import annotations

import json
import shutil

import pytest

from gitops_helpers import EXAMPLES, apply_path, plan_of
from support.cli import run_hlops

from hlops import api
from hlops.pull import import_resources, pull


def remote(conn, kind, name):
    return next(conn.client.paginate(f"/{kind}s", name=name))


def no_changes(path, conn, cache):
    plan = plan_of(path, conn, cache).plan
    changed = [c.address for c in plan.changes if c.has_changes]
    assert not changed, f"the plan after a pull still changes {changed}"


def strip_ids(items):
    return [{k: v for k, v in item.items() if k != "id"} for item in items]


def edit_everything(conn, config):
    """Edits a person could make in the web app, to every resource of an example."""
    c = conn.client
    for name, ds in config.datasets.items():
        raw = remote(conn, "dataset", name)
        fields = strip_ids(raw["fields"])
        fields.append({"name": "reviewed_by", "data_type": "categorical", "description": "Who checked it (${USER})"})
        c.request("PATCH", f"/datasets/{raw['id']}", body={"description": "Edited: true", "fields": fields})
        text_field = next(f for f, t in ds.field_types().items() if t == "text" and f != ds.key)
        c.request("PUT", f"/datasets/{raw['id']}", body={"data": [
            {ds.key: "added-in-ui-1", text_field: "Added in the web app: ünïcode, \"quotes\", a\nnew line", "reviewed_by": "ana"},
        ]})
        first = next(c.paginate(f"/datasets/{raw['id']}/datapoints", limit=1))
        c.request("PATCH", f"/datasets/{raw['id']}/datapoints", body={"data": [
            {"id": first["id"], "data": dict(first["data"], **{text_field: first["data"][text_field] + " (edited)"})}
        ]})
    for name in config.projects:
        raw = remote(conn, "project", name)
        outputs = strip_ids(raw["outputs"])
        outputs[0]["labels"] = outputs[0]["labels"] + [{"name": "added-label", "description": None}]
        users = raw["users"] + [{"email": "new.person@example.com", "role": "owner"}]
        c.request("PATCH", f"/projects/{raw['id']}", body={
            "description": "Changed in the UI\nover two lines",
            "guidelines": (raw["guidelines"] or "") + "\nOne more rule, added in the web app.\n",
            "outputs": outputs,
            "users": users,
        })


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_pull_then_plan_shows_no_changes_for_every_example(server, connect, copy_example, example, tmp_path):
    work = copy_example(example.name)
    conn = connect(server)
    cache = tmp_path / "cache"
    apply_path(work, conn, cache)
    report = pull(api.load(work), conn.provider, paths=[work], cache_dir=cache)
    assert not report.files, "a pull right after an apply writes nothing"
    edit_everything(conn, api.load(work))
    assert plan_of(work, conn, cache).plan.has_changes
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    report = pull(api.load(work), conn.provider, paths=[work], cache_dir=cache)
    assert not report.warnings, report.warnings
    no_changes(work, conn, cache)
    written = {w.path for w in report.files}
    for path, content in before.items():
        if path not in written:
            assert path.read_bytes() == content, f"{path} changed but is not in the report"
    assert any(w.role == "data" for w in report.files)
    # A second pull has nothing left to do.
    again = pull(api.load(work), conn.provider, paths=[work], cache_dir=cache)
    assert not again.files


def test_a_comment_survives_a_pull_that_updates_its_line(server, connect, tmp_path):
    work = tmp_path / "tree"
    work.mkdir()
    manifest = work / "tree.yaml"
    manifest.write_text(
        "# Top comment: keep me\n"
        "kind: Dataset\n"
        "name: pull-comments-ds   # the dataset's name\n"
        "description: First words   # a comment on the line pull rewrites\n"
        "fields:\n"
        "  # a comment above a field\n"
        "  text: text            # the text\n"
        "  label: {data_type: categorical, description: 'single quoted'}  # flow style\n"
        "---\n"
        "# Second document\n"
        "kind: Project\n"
        "name: pull-comments-project\n"
        "inputs:\n"
        "  text: pull-comments-ds.text     # short form\n"
        "outputs:\n"
        "  label:\n"
        "    task_type: classification\n"
        "    labels: [a, b]              # flow list\n"
        "users:\n"
        "- ${PULL_TEST_OWNER:-boss@example.com}   # interpolated\n"
        "- {email: helper@example.com, role: annotator}\n"
    )
    conn = connect(server)
    apply_path(work, conn, tmp_path / "cache")
    ds = remote(conn, "dataset", "pull-comments-ds")
    conn.client.request("PATCH", f"/datasets/{ds['id']}", body={"description": "Better words"})
    pj = remote(conn, "project", "pull-comments-project")
    outputs = strip_ids(pj["outputs"])
    outputs[0]["labels"].append({"name": "c", "description": None})
    users = [u if u["email"] != "helper@example.com" else {**u, "role": "admin"} for u in pj["users"]]
    conn.client.request("PATCH", f"/projects/{pj['id']}", body={"outputs": outputs, "users": users})
    report = pull(api.load(work), conn.provider, paths=[work])
    assert [w.path.name for w in report.files] == ["tree.yaml"]
    text = manifest.read_text()
    # The new value is written in place; the comment keeps its column.
    assert "description: Better words  # a comment on the line pull rewrites\n" in text
    for kept in ("# Top comment: keep me", "# the dataset's name", "# a comment above a field", "# the text",
                 "label: {data_type: categorical, description: 'single quoted'}  # flow style",
                 "# Second document", "text: pull-comments-ds.text     # short form",
                 "- ${PULL_TEST_OWNER:-boss@example.com}   # interpolated"):
        assert kept in text, f"{kept!r} lost:\n{text}"
    assert "labels: [a, b, c]           # flow list" in text
    assert "- {email: helper@example.com, role: admin}" in text
    no_changes(work, conn, tmp_path / "cache")


def test_pending_renames_ignored_attributes_and_absent_resources_stay_as_declared(server, connect, tmp_path):
    work = tmp_path / "tree"
    work.mkdir()
    (work / "a.yaml").write_text(
        "kind: Dataset\nname: pull-keep-ds\nfields: {text: text}\n---\n"
        "kind: Project\nname: pull-keep-project\ninputs: {text: pull-keep-ds.text}\n"
        "outputs: {o: {task_type: classification, labels: [x]}}\nguidelines: Be nice.\n"
        "lifecycle: {ignore_changes: [guidelines]}\n"
    )
    conn = connect(server)
    apply_path(work, conn, tmp_path / "cache")
    pj = remote(conn, "project", "pull-keep-project")
    conn.client.request("PATCH", f"/projects/{pj['id']}", body={"guidelines": "Edited in the UI", "description": "new"})
    (work / "a.yaml").write_text(
        (work / "a.yaml").read_text().replace("name: pull-keep-ds\n", "name: pull-keep-ds-v2\nrenamed_from: pull-keep-ds\n")
        .replace("pull-keep-ds.text", "pull-keep-ds-v2.text")
        + "---\nkind: Dataset\nname: pull-keep-gone\nensure: absent\n---\nkind: Dataset\nname: pull-keep-new\nfields: {t: text}\n"
    )
    report = pull(api.load(work), conn.provider, paths=[work])
    text = (work / "a.yaml").read_text()
    assert "name: pull-keep-ds-v2\nrenamed_from: pull-keep-ds\n" in text
    assert "guidelines: Be nice." in text and "description: new" in text
    assert any("pull-keep-new: not found remotely" in s for s in report.skipped)
    plan = plan_of(work, conn, tmp_path / "cache").plan
    assert {c.address: c.action.value for c in plan.changes if c.has_changes} == {
        "dataset/pull-keep-ds-v2": "update", "dataset/pull-keep-new": "create"}


def test_import_writes_a_project_with_its_dataset_data_and_guidelines(server, connect, tmp_path):
    conn = connect(server)
    c = conn.client
    ds = c.request("POST", "/datasets", body={
        "name": "Import Me: Tickets", "description": "yes", "key": "id",
        "fields": [{"name": "id", "data_type": "text"}, {"name": "text", "data_type": "text", "description": "The ${body}"},
                   {"name": "tag", "data_type": "categorical"}, {"name": "spans", "data_type": "character_offsets"}],
        "data": [{"id": str(i), "text": f"row {i} ünïcode\nline", "tag": "a" if i % 2 else None,
                  "spans": [{"start": 0, "end": 3, "label": "X"}] if i == 3 else None} for i in range(30)],
    }, create=True)
    c.request("POST", "/projects", body={
        "name": "Import Me: Project", "description": None, "guidelines": "# Rules\n\n- one\n- two\n",
        "review_existing_annotations": False,
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": f["id"]} for f in ds["fields"] if f["name"] == "text"]}],
        "outputs": [{"name": "tag", "task_type": "classification",
                     "data_sources": [{"field_id": f["id"]} for f in ds["fields"] if f["name"] == "tag"],
                     "labels": [{"name": "a", "description": "The a's"}, {"name": "true", "description": None}]},
                    {"name": "spans", "task_type": "sequence_tagging", "input": "text",
                     "data_sources": [{"field_id": f["id"]} for f in ds["fields"] if f["name"] == "spans"], "labels": []}],
        "users": ["x@example.com", {"email": "y@example.com", "role": "owner"}],
    }, create=True)
    out = tmp_path / "imported"
    dry = import_resources(conn.provider, ["project/Import Me: Project"], out, dry_run=True)
    assert not out.exists() and len(dry.files) == 4
    report = import_resources(conn.provider, ["project/Import Me: Project"], out)
    names = sorted(str(w.path.relative_to(out)) for w in report.files)
    assert names == ["data/import-me-tickets.jsonl", "import-me-project.md", "import-me-project.yaml", "import-me-tickets.yaml"]
    assert any("also writing dataset/Import Me: Tickets" in w for w in report.warnings)
    assert not [w for w in report.warnings if "still differs" in w]
    project_yaml = (out / "import-me-project.yaml").read_text()
    assert "guidelines: import-me-project.md" in project_yaml and "- x@example.com" in project_yaml
    assert len((out / "data" / "import-me-tickets.jsonl").read_text().splitlines()) == 30
    no_changes(out, conn, tmp_path / "cache")
    with pytest.raises(Exception, match="already declared"):
        import_resources(conn.provider, ["dataset/Import Me: Tickets"], out)
    with pytest.raises(Exception, match="did you mean dataset/Import Me: Tickets"):
        import_resources(conn.provider, ["dataset/Import Me: Tickets!"], tmp_path / "elsewhere")


def test_pull_all_writes_owned_undeclared_resources_only(server, connect, tmp_path):
    conn = connect(server)
    for name in ("pullall-team-x", "pullall-other"):
        conn.client.request("POST", "/datasets", body={"name": name, "fields": [{"name": "t", "data_type": "text"}]}, create=True)
    work = tmp_path / "tree"
    work.mkdir()
    (work / "hlops.yaml").write_text("owns: {prefixes: [pullall-team-]}\n")
    (work / "a.yaml").write_text("kind: Dataset\nname: pullall-team-declared\nfields: {t: text}\n")
    apply_path(work, conn, tmp_path / "cache")
    report = pull(api.load(work), conn.provider, paths=[work], undeclared=True)
    assert report.resources == ["dataset/pullall-team-x"]
    assert (work / "pullall-team-x.yaml").read_text() == "kind: Dataset\nname: pullall-team-x\nfields:\n  t: text\n"
    assert not (work / "pullall-other.yaml").exists()


def test_pull_and_import_from_the_command_line(fresh_server, tmp_path, copy_example):
    work = copy_example("two-datasets")
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    assert run_hlops("apply", str(work), "--auto-approve", server=fresh_server, cwd=tmp_path, env=env).code == 0
    ds = fresh_server.call("GET", "/datasets", params={"name": "inbox-chats"}).json()["items"][0]
    assert fresh_server.call("PATCH", f"/datasets/{ds['id']}", json={"description": "Chats, edited"}).status_code == 200
    dry = run_hlops("pull", str(work), "--dry-run", server=fresh_server, cwd=tmp_path, env=env)
    assert dry.code == 2, dry
    assert "+description: Chats, edited" in dry.out and "Would update" in dry.out
    done = run_hlops("pull", str(work), "--json", server=fresh_server, cwd=tmp_path, env=env)
    assert done.code == 0, done
    assert json.loads(done.out)["files"][0]["path"].endswith("chats.yaml")
    assert run_hlops("plan", str(work), server=fresh_server, cwd=tmp_path, env=env).code == 0
    out = tmp_path / "imported"
    imported = run_hlops("import", "project/Inbox intent", "--to", str(out), server=fresh_server, cwd=tmp_path, env=env)
    assert imported.code == 0, imported
    assert "Created" in imported.out
    shutil.rmtree(work)
    assert run_hlops("plan", str(out), server=fresh_server, cwd=tmp_path, env=env).code == 0
    assert fresh_server.api_key not in dry.out + dry.err + done.out + imported.out + imported.err


def test_a_project_reading_an_undeclared_dataset_says_what_to_import(server, connect, tmp_path):
    conn = connect(server)
    c = conn.client
    work = tmp_path / "tree"
    work.mkdir()
    (work / "a.yaml").write_text(
        "kind: Dataset\nname: pull-reads-a\nfields: {text: text}\n---\n"
        "kind: Project\nname: pull-reads-project\ninputs: {text: pull-reads-a.text}\n"
        "outputs: {o: {task_type: classification, labels: [x]}}\n"
    )
    apply_path(work, conn, tmp_path / "cache")
    other = c.request("POST", "/datasets", body={"name": "pull-reads-b", "fields": [{"name": "body", "data_type": "text"}]}, create=True)
    pj = remote(conn, "project", "pull-reads-project")
    inputs = strip_ids(pj["inputs"]) + [{"name": "body", "data_type": "text", "display_only": True,
                                         "data_sources": [{"field_id": other["fields"][0]["id"]}]}]
    c.request("PATCH", f"/projects/{pj['id']}", body={"inputs": inputs})
    report = pull(api.load(work), conn.provider, paths=[work])
    assert any("now reads dataset/pull-reads-b" in w and "hlops import dataset/pull-reads-b" in w for w in report.warnings)
    import_resources(conn.provider, ["dataset/pull-reads-b"], work)
    no_changes(work, conn, tmp_path / "cache")


def test_pull_all_into_an_empty_directory_writes_the_organisation(fresh_server, tmp_path):
    """Onboarding from an existing organisation (like `deck gateway dump`): two examples
    applied, then `hlops pull --all` into an empty directory writes every resource with its
    data file and guidelines; the written tree validates and plans clean, and a second
    `pull --all` writes nothing."""
    examples = [p for p in EXAMPLES if p.name in ("sentiment", "entities")]
    for example in examples:
        work = tmp_path / example.name
        shutil.copytree(example, work)
        assert run_hlops("apply", str(work), "--auto-approve", server=fresh_server, cwd=tmp_path).code == 0
    target = tmp_path / "org"
    result = run_hlops("pull", "--all", str(target), server=fresh_server, cwd=tmp_path)
    assert result.code == 0, result
    assert "Wrote 8 files for 4 resources." in result.out, result
    assert not result.err, result
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == [
        "data/entities-news-snippets.jsonl", "data/sentiment-support-tickets.jsonl",
        "entities-news-snippets.yaml", "named-entities.md", "named-entities.yaml",
        "sentiment-classification-project.md", "sentiment-classification-project.yaml",
        "sentiment-support-tickets.yaml",
    ]
    rows = (target / "data" / "sentiment-support-tickets.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 200 and all(json.loads(r)["external_id"] for r in rows)
    original = (EXAMPLES[0].parent / "sentiment" / "guidelines.md").read_text(encoding="utf-8")
    assert (target / "sentiment-classification-project.md").read_text(encoding="utf-8").strip() == original.strip()
    checked = run_hlops("validate", str(target), cwd=tmp_path)
    assert checked.code == 0 and "2 datasets, 2 projects" in checked.out, checked
    planned = run_hlops("plan", str(target), "--json", server=fresh_server, cwd=tmp_path)
    assert planned.code == 0, planned
    assert not json.loads(planned.out)["unmanaged"]
    again = run_hlops("pull", "--all", str(target), server=fresh_server, cwd=tmp_path)
    assert again.code == 0 and "Nothing to write" in again.out, again


def test_pull_all_into_an_empty_directory_keeps_to_what_hlops_yaml_owns(fresh_server, tmp_path):
    """An empty directory with only hlops.yaml: only the owned resources are written (and
    the datasets their projects read); a broken hlops.yaml is a located error, nothing written."""
    work = tmp_path / "sentiment"
    shutil.copytree(next(p for p in EXAMPLES if p.name == "sentiment"), work)
    assert run_hlops("apply", str(work), "--auto-approve", server=fresh_server, cwd=tmp_path).code == 0
    target = tmp_path / "team"
    target.mkdir()
    (target / "hlops.yaml").write_text("owns: {names: [Sentiment classification project]}\n")
    result = run_hlops("pull", "--all", str(target), "--no-data", server=fresh_server, cwd=tmp_path)
    assert result.code == 0, result
    assert "also writing dataset/sentiment-support-tickets" in result.err
    assert sorted(p.name for p in target.iterdir()) == [
        "hlops.yaml", "sentiment-classification-project.md", "sentiment-classification-project.yaml",
        "sentiment-support-tickets.yaml",
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "hlops.yaml").write_text("owns: {prefixes: ['']}\n")
    failed = run_hlops("pull", "--all", str(broken), server=fresh_server, cwd=tmp_path)
    assert failed.code == 1 and "hlops.yaml:1:" in failed.err and "Traceback" not in failed.err, failed
    assert sorted(p.name for p in broken.iterdir()) == ["hlops.yaml"]
