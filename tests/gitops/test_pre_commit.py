"""The pre-commit hooks this repository offers run `hlops validate` as declared."""

from __future__ import annotations

import re
import shlex

from ruamel.yaml import YAML

from support.cli import REPO, run_hlops


def test_pre_commit_hooks_run_hlops_validate(tmp_path):
    hooks = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"hlops-validate", "hlops-validate-manifests"}
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        staged = ["manifests/project.yaml", "manifests/guidelines.md"]
        staged += ["manifests/data/rows.jsonl", "data/x.csv"] if hook["id"] == "hlops-validate" else []
        assert all(re.search(hook["files"], f) for f in staged)
        assert not re.search(hook["files"], "src/main.py")
        entry = shlex.split(hook["entry"])
        assert entry[0] == "hlops"
        # pre-commit runs `entry args...`: with a user's args, as documented.
        ok = run_hlops(*entry[1:], "examples/projects", cwd=REPO)
        assert ok.code == 0 and ok.out.startswith("Valid:"), ok
        bad = tmp_path / hook["id"]
        bad.mkdir()
        (bad / "a.yaml").write_text("kind: Project\nname: p\ninputs: {text: nowhere.text}\noutputs: {o: {task_type: classification, labels: [x]}}\n")
        failed = run_hlops(*entry[1:], str(bad), cwd=tmp_path)
        assert failed.code == 1 and "a.yaml:3:" in failed.out, failed
