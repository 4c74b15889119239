"""Label Studio at scale: the baseline hlops's labelstudio provider will be compared with.

    .venv/bin/python bench/bench_labelstudio.py --tasks 2000      # a smoke size
    .venv/bin/python bench/bench_labelstudio.py --tasks 100000    # the issue's size (quiet machine)

Needs ``bash .ci/labelstudio.sh`` (Label Studio and label-studio-sdk in .venv-labelstudio).
One run starts one real Label Studio (tests/support/labelstudio.py) and measures, side by
side:

- ``sdk``: a hand-written ``label-studio-sdk`` loop — ``projects.import_tasks`` in batches
  of 5,000, then ``tasks.list(project=, page_size=1000)`` over every task — run by the Label
  Studio venv's Python (the SDK is never a dependency of hlops);
- ``client``: the same with hlops's own :class:`LabelStudioClient` (import, then
  ``GET /api/tasks?fields=all`` and ``fields=task_only`` pages), and one export
  (``GET /api/projects/{id}/export``), each into/from its own project;

- ``hlops``: ``hlops apply`` of the same tasks (a generated manifest tree, ``provider:
  labelstudio``), then ``hlops plan`` (no-op), each a whole CLI process timed from outside;

tasks/s for each. Goals: hlops_apply_vs_sdk_import >= 1.0 (SDK import seconds / hlops apply
seconds), hlops_noop_plan_vs_sdk_read <= 0.3 (no-op plan seconds / SDK read-all seconds).
Results merge into bench/results/labelstudio.json under the task count. The machine is
shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = ('<View><Text name="text" value="$text"/><Choices name="s" toName="text">'
          '<Choice value="a"/><Choice value="b"/></Choices></View>')


def tasks(n: int) -> list[dict]:
    return [{"data": {"hlops_key": f"k{i}", "text": f"task number {i} " + "lorem ipsum " * 8}}
            for i in range(n)]


def sdk_baseline(url: str, token: str, n: int) -> dict:
    """Runs inside .venv-labelstudio (label-studio-sdk installed there)."""
    from label_studio_sdk.client import LabelStudio

    ls = LabelStudio(base_url=url, api_key=token, timeout=600)
    project = ls.projects.create(title="sdk-baseline", label_config=CONFIG)
    all_tasks = tasks(n)
    began = time.perf_counter()
    for i in range(0, n, 5000):
        ls.projects.import_tasks(id=project.id, request=all_tasks[i:i + 5000])
    imported = time.perf_counter() - began
    began = time.perf_counter()
    seen = sum(1 for _ in ls.tasks.list(project=project.id, page_size=1000))
    read = time.perf_counter() - began
    assert seen == n, (seen, n)
    return {"import_s": imported, "read_s": read,
            "import_tasks_per_s": n / imported, "read_tasks_per_s": n / read}


def client_figures(url: str, token: str, n: int) -> dict:
    sys.path.insert(0, str(REPO))
    from hlops.providers.labelstudio.client import LabelStudioClient

    c = LabelStudioClient(url, token)
    out: dict = {}
    project = c.create_project({"title": "client-bench", "label_config": CONFIG})
    began = time.perf_counter()
    c.import_tasks(project["id"], tasks(n))
    out["import_s"] = time.perf_counter() - began
    for fields in ("all", "task_only"):
        began = time.perf_counter()
        seen = sum(1 for _ in c.iter_tasks(project["id"], fields=fields))
        out[f"read_{fields}_s"] = time.perf_counter() - began
        assert seen == n, (fields, seen, n)
    began = time.perf_counter()
    assert len(c.export_tasks(project["id"])) == n
    out["export_s"] = time.perf_counter() - began
    for key in [k for k in out if k.endswith("_s")]:
        out[key.replace("_s", "_tasks_per_s")] = n / out[key]
    out["calls"] = c.calls
    return out


def hlops_figures(url: str, token: str, n: int, work: Path) -> dict:
    """hlops's first apply of ``n`` tasks and its no-op plan, each a whole CLI process
    (start-up, manifest load, data check, calls) timed from outside."""
    import os

    tree = work / "hlops-tree"
    (tree / "data").mkdir(parents=True)
    (tree / "hlops.yaml").write_text("provider: labelstudio\nowns:\n  names: [bench-rows, hlops-bench]\n")
    (tree / "manifests.yaml").write_text(
        "kind: Dataset\nname: bench-rows\nkey: hlops_key\nfields:\n  hlops_key: text\n  text: text\n"
        "data: data/rows.jsonl\n---\nkind: Project\nname: hlops-bench\ninputs:\n  text: bench-rows.text\n"
        "outputs:\n  s:\n    task_type: classification\n    labels: [a, b]\n")
    with open(tree / "data" / "rows.jsonl", "w") as f:
        for t in tasks(n):
            f.write(json.dumps(t["data"]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    env.update({"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": token, "NO_COLOR": "1"})
    hlops = [str(REPO / ".venv" / "bin" / "python"), "-m", "hlops"]
    out: dict = {}
    for name, args, want in (("apply", ["apply", ".", "--auto-approve"], 0), ("noop_plan", ["plan", "."], 0)):
        began = time.perf_counter()
        proc = subprocess.run(hlops + args, cwd=tree, env=env, capture_output=True, text=True)
        out[f"{name}_s"] = time.perf_counter() - began
        assert proc.returncode == want, (name, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    out["apply_tasks_per_s"] = n / out["apply_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--sdk-baseline", nargs=2, metavar=("URL", "TOKEN"))
    args = parser.parse_args()
    if args.sdk_baseline:
        print(json.dumps(sdk_baseline(*args.sdk_baseline, args.tasks)))
        return

    sys.path.insert(0, str(REPO / "tests"))
    from support.labelstudio import LabelStudioProcess, find_label_studio, migrated_template

    exe = find_label_studio()
    if exe is None:
        sys.exit("no Label Studio: run `bash .ci/labelstudio.sh` first")
    work = Path(tempfile.mkdtemp(prefix="bench-ls-"))
    with LabelStudioProcess(exe, migrated_template(exe, work), work / "ls") as ls:
        python = exe.parent / "python"
        sdk = json.loads(subprocess.run(
            [str(python), __file__, "--tasks", str(args.tasks), "--sdk-baseline", ls.url, ls.token],
            check=True, capture_output=True, text=True).stdout)
        client = client_figures(ls.url, ls.token, args.tasks)
        provider = hlops_figures(ls.url, ls.token, args.tasks, work)
        startup = ls.startup_seconds
    result = {
        "command": " ".join([".venv/bin/python", "bench/bench_labelstudio.py", "--tasks", str(args.tasks)]),
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "startup_s": startup, "sdk": sdk, "client": client, "hlops": provider,
        "ratios": {"hlops_apply_vs_sdk_import": sdk["import_s"] / provider["apply_s"],
                   "hlops_noop_plan_vs_sdk_read": provider["noop_plan_s"] / sdk["read_s"],
                   "client_import_vs_sdk": sdk["import_s"] / client["import_s"],
                   "client_read_all_vs_sdk": client["read_all_s"] / sdk["read_s"]},
        "note": "shared 2-core machine",
    }
    path = REPO / "bench" / "results" / "labelstudio.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[str(args.tasks)] = result
    path.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
