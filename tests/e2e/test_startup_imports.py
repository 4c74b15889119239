"""What a command imports is part of its start-up cost (issue 14: ~0.4-1 s of CPU a run
before any work). Pinned here as properties, not timings: the client never imports the
server (FastAPI, uvicorn), a no-op plan never imports DeepDiff (nothing differs) nor
multiprocessing (no split pass), and
`hlops validate --no-data` imports neither numpy, the datapoint engine nor requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support.cli import REPO

HEAVY = ("fastapi", "uvicorn", "starlette", "sqlalchemy", "deepdiff", "numpy", "requests")

# Runs `hlops ARGS` in this interpreter, then writes the top-level modules it imported.
PROBE = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["hlops", *sys.argv[2:]]
try:
    runpy.run_module("hlops", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}, f)
"""


def _imported(tmp_path, *args: str, server=None) -> tuple[int, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    env.update({"NO_COLOR": "1", "HLOPS_HOME": str(tmp_path / ".hlops")})
    if server is not None:
        env.update({"HLOPS_BASE_URL": server.url, "HLOPS_API_KEY": server.api_key})
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=REPO, env=env,
                   capture_output=True, text=True, timeout=120, check=False)
    seen = json.loads(out.read_text())
    return seen["code"], set(seen["modules"])


def _tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    (tree / "data" / "rows.jsonl").write_text("".join(
        json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n" for i in range(20)))
    (tree / "dataset.yaml").write_text(
        "kind: Dataset\nname: startup\nkey: id\nfields: {id: text, text: text}\n"
        "data: data/rows.jsonl\n")
    return tree


def test_validate_without_data_imports_no_engine(tmp_path):
    code, modules = _imported(tmp_path, "validate", str(_tree(tmp_path)), "--no-data")
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_a_no_op_plan_imports_neither_the_server_nor_deepdiff(server, tmp_path):
    from support.cli import run_hlops

    tree = _tree(tmp_path)
    env = {"HLOPS_HOME": str(tmp_path / ".hlops")}
    assert run_hlops("apply", str(tree), "--auto-approve", server=server, env=env).code == 0
    code, modules = _imported(tmp_path, "plan", str(tree), server=server)
    assert code == 0  # no changes
    # nor the process pool of a split local pass (a 20-row file is read in this process)
    assert not modules & {"fastapi", "uvicorn", "starlette", "sqlalchemy", "deepdiff", "multiprocessing"}, modules
