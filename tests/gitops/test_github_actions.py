"""examples/github-actions/hlops-pr.sh, run here as the workflow runs it: against the real
reference server, with a stub of the GitHub API (tests/gitops/github_stub.py) in place of
api.github.com. The hlops side is real: the plan comment, the apply of the saved plan, the
refusal of a stale one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from github_stub import MAX_BODY, GitHubStub
from support.cli import REPO

SCRIPT = REPO / "examples" / "github-actions" / "hlops-pr.sh"
SHOP = REPO / "tests" / "e2e" / "fixtures" / "shop"
TOKEN = "ghs_stubtoken_0123456789"

pytestmark = pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="the script needs jq and curl")


class Repo:
    """A checkout: manifests under ./manifests, the script run from its root."""

    def __init__(self, root: Path, server, github: GitHubStub):
        self.root = root
        self.server = server
        self.github = github
        self.manifests = root / "manifests"
        shutil.copytree(SHOP, self.manifests)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.manifests / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def run(self, mode: str, **env: str) -> subprocess.CompletedProcess:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("HLOPS_", "GITHUB_", "PR_"))}
        full.update({
            "HLOPS": f"{sys.executable} -m hlops",
            "HLOPS_DIR": "manifests",
            "HLOPS_HOME": str(self.root / ".hlops"),
            "HLOPS_BASE_URL": self.server.url,
            "HLOPS_API_KEY": self.server.api_key,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_REPOSITORY": self.github.repo,
            "GITHUB_TOKEN": TOKEN,
            "NO_COLOR": "1",
            **env,
        })
        result = subprocess.run(["bash", str(SCRIPT), mode], cwd=self.root, env=full, capture_output=True, text=True, timeout=300)
        for secret in (TOKEN, self.server.api_key):
            assert secret not in result.stdout + result.stderr, "a secret reached the job log"
        return result

    def plan(self, pr: int, sha: str) -> subprocess.CompletedProcess:
        result = self.run("plan", PR_NUMBER=str(pr), PR_HEAD_SHA=sha)
        self.github.pulls.setdefault(pr, {})["head_sha"] = sha
        return result

    def merge(self, pr: int, merge_sha: str, **env: str) -> subprocess.CompletedProcess:
        self.github.pulls[pr]["merge_sha"] = merge_sha
        return self.run("apply", GITHUB_SHA=merge_sha, **env)

    def saved_plan(self) -> dict:
        return json.loads((self.root / "hlops-out" / "plan.json").read_text())


@pytest.fixture
def github():
    stub = GitHubStub(TOKEN)
    yield stub
    stub.close()


@pytest.fixture
def repo(tmp_path, fresh_server, github):
    return Repo(tmp_path / "checkout", fresh_server, github)


def plan_comments(github: GitHubStub, pr: int):
    return [c for c in github.on(pr) if c.body.startswith("<!-- hlops-plan -->")]


def no_secrets(github: GitHubStub, server) -> None:
    for c in github.comments.values():
        assert TOKEN not in c.body and server.api_key not in c.body


def big_guidelines(words: str) -> str:
    return "".join(f"Rule {i}: {words}, then check the whole text again before saving.\n" for i in range(1500))


def add_big_projects(repo: Repo, words: str) -> None:
    for i in range(3):
        (repo.manifests / f"big-{i}.md").write_text(big_guidelines(words))
        (repo.manifests / f"big-{i}.yaml").write_text(
            f"kind: Project\nname: shop-big-{i}\ninputs: {{text: shop-reviews.text}}\n"
            f"outputs: {{o: {{task_type: classification, labels: [a, b]}}}}\nguidelines: big-{i}.md\n"
        )


def test_plan_comments_on_the_pr_and_the_merge_applies_the_reviewed_plan(repo, github):
    server = repo.server
    add_big_projects(repo, "read carefully")
    first = repo.plan(1, "a1")
    assert first.returncode == 0, first.stderr
    [comment] = plan_comments(github, 1)
    assert "### hlops plan: manifests" in comment.body and "<!-- hlops-sha: a1 -->" in comment.body
    plan_id = repo.saved_plan()["plan_id"]
    assert f"<!-- hlops-plan-id: {plan_id} -->" in comment.body
    expected = (repo.root / "hlops-out" / "md" / "plan-1.md").read_text()
    assert comment.body == expected  # what the script posts is hlops' markdown, tagged
    assert "| 5 | 0 | 0 | 0 | 0 | +40 / ~0 / -0 |" in comment.body

    # A second push edits the same comment instead of adding one.
    repo.edit("project.yaml", "How do customers feel?", "How do our customers feel?")
    second = repo.plan(1, "a2")
    assert second.returncode == 0, second.stderr
    [again] = plan_comments(github, 1)
    assert again.id == comment.id and "<!-- hlops-sha: a2 -->" in again.body

    # Merged: the plan on main is the reviewed one, so it is applied (a dataset another team
    # created meanwhile is left alone and does not make the plan stale).
    assert server.call("POST", "/datasets", json={"name": "team-b-other", "fields": [{"name": "t", "data_type": "text"}]}).status_code == 201
    writes = server.stats()["writes"]
    merged = repo.merge(1, "m1")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert server.stats()["writes"] > writes
    applied = [c for c in github.on(1) if c.body.startswith("<!-- hlops-apply -->")]
    assert len(applied) == 1 and "✅ hlops applied plan" in applied[0].body

    # A plan too long for one comment: several marked comments, each under GitHub's limit.
    add_big_projects(repo, "read very carefully")
    big = repo.plan(2, "b1")
    assert big.returncode == 0, big.stderr
    parts = plan_comments(github, 2)
    assert len(parts) >= 3
    for i, part in enumerate(parts, 1):
        assert len(part.body) <= MAX_BODY
        assert f"(part {i} of {len(parts)})" in part.body and "<!-- hlops-sha: b1 -->" in part.body
    # Fewer parts on the next push: the same comments are edited, the extra ones deleted.
    for i in (1, 2):
        (repo.manifests / f"big-{i}.md").write_text(big_guidelines("read carefully"))
    smaller = repo.plan(2, "b2")
    assert smaller.returncode == 0, smaller.stderr
    now = plan_comments(github, 2)
    assert 1 <= len(now) < len(parts) and [c.id for c in now] == [c.id for c in parts[: len(now)]]
    assert all("<!-- hlops-sha: b2 -->" in c.body for c in now)
    no_secrets(github, server)


def applied(repo: Repo) -> None:
    """Main as it stands: the shop applied (in-process: the script is not the point here)."""
    from hlops import api

    config = api.load(repo.manifests)
    with api.connect(base_url=repo.server.url, api_key=repo.server.api_key) as conn:
        api.apply(api.plan(config, conn, manifests=[repo.manifests]), conn)


def test_a_stale_plan_is_refused_on_merge_and_can_be_approved_by_id(repo, github):
    server = repo.server
    applied(repo)

    repo.edit("project.yaml", "How do customers feel?", "Feelings")
    assert repo.plan(2, "b1").returncode == 0
    reviewed = repo.saved_plan()["plan_id"]
    # Someone edits the project in the web app after the review.
    project = server.call("GET", "/projects", params={"name": "shop-sentiment"}).json()["items"][0]
    assert server.call("PATCH", f"/projects/{project['id']}", json={"guidelines": "Edited in the UI."}).status_code == 200
    writes = server.stats()["writes"]
    refused = repo.merge(2, "m2")
    assert refused.returncode == 1
    assert server.stats()["writes"] == writes, "a refused apply wrote something"
    assert "refusing to apply" in refused.stderr and reviewed in refused.stderr
    [note] = [c for c in github.on(2) if c.body.startswith("<!-- hlops-apply -->")]
    fresh = re.search(r"to apply it after review, run the hlops workflow by hand with `plan_id: ([0-9a-f]+)`", note.body).group(1)
    assert fresh != reviewed and "⛔ hlops apply refused" in note.body and "`guidelines`:" in note.body

    # A maintainer reviews the new plan and runs the workflow with its id.
    wrong = repo.run("apply", GITHUB_SHA="m2", HLOPS_APPROVED_PLAN_ID="0123456789ab")
    assert wrong.returncode == 1 and server.stats()["writes"] == writes
    approved = repo.run("apply", GITHUB_SHA="m2", HLOPS_APPROVED_PLAN_ID=fresh)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    project = server.call("GET", f"/projects/{project['id']}").json()
    assert project["description"] == "Feelings" and project["guidelines"] != "Edited in the UI."

    # A push that no pull request reviewed is not applied.
    repo.edit("project.yaml", "Feelings", "Unreviewed")
    writes = server.stats()["writes"]
    direct = repo.run("apply", GITHUB_SHA="d1")
    assert direct.returncode == 1 and "not the merge of a pull request" in direct.stderr
    assert server.stats()["writes"] == writes
    no_secrets(github, server)


def test_data_loss_needs_the_label_and_errors_are_commented(repo, github):
    applied(repo)
    nothing = repo.run("apply", GITHUB_SHA="m0")
    assert nothing.returncode == 0 and "no changes to apply" in nothing.stderr
    repo.edit("project.yaml", "    labels: [price, quality, delivery]\n", "    labels: [price, quality]\n")
    assert repo.plan(2, "b1").returncode == 0
    [comment] = plan_comments(github, 2)
    assert "[!CAUTION]" in comment.body and "**Data loss:**" in comment.body
    refused = repo.merge(2, "m2")
    assert refused.returncode == 1
    assert "--allow-data-loss" in [c for c in github.on(2) if "hlops-apply" in c.body][-1].body
    github.pulls[2]["labels"] = ["hlops:allow-data-loss"]
    assert repo.merge(2, "m2").returncode == 0

    (repo.manifests / "project.yaml").write_text("kind: Project\nname: broken\ninputs: {text: nowhere.text}\n")
    failed = repo.plan(3, "c1")
    assert failed.returncode == 1
    [error] = plan_comments(github, 3)
    assert "failed" in error.body and "project.yaml" in error.body
    no_secrets(github, repo.server)
