"""When each call of a first `hlops apply --auto-approve` of N new rows is answered, from the
server's request log (issue 14, part F in docs/performance.md).

    .venv/bin/python bench/apply_timeline.py --rows 200000 --runs after,after
    .venv/bin/python bench/apply_timeline.py --runs before,after,after,before --before /tmp/old

(``/tmp/old/hlops``: an export of the older commit, ``git archive <commit> hlops``.)

Each run: a fresh `hlops serve --request-log` (tests/support/server.py), a fresh
`HLOPS_HOME`, ``HLOPS_STREAM_MIN_BYTES=0`` (the streamed apply whatever N), one tree per
run holding the same data file (hard links made before the first run and 2.5 s old by then,
so no file is racy: hlops reads a racy file once more for its record). A ``before`` run
puts ``--before`` first on ``PYTHONPATH`` (byte-compile it first: under
PYTHONDONTWRITEBYTECODE each process would compile it again). Prints per run the load, the
wall and CPU seconds of the process, the PUTs' span and every other call's answer time
(seconds since the process started).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.server import ServerProcess  # noqa: E402

HLOPS = str(Path(sys.executable).with_name("hlops"))


def write_rows(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            row = {"id": f"r{i}", "text": f"ticket {i}: some words of text here {i * 7919 % 10007}",
                   "label": ["pos", "neg"][i % 2]}
            f.write(json.dumps(row) + "\n")


def one_run(root: Path, n: int, which: str, before: Path | None) -> str:
    tree, log = root / f"tree{n}", root / f"log{n}.jsonl"
    log.unlink(missing_ok=True)  # the server appends
    with ServerProcess(root / f"srv{n}", request_log=log) as srv:
        env = {**os.environ, "HLOPS_API_KEY": srv.api_key, "HLOPS_BASE_URL": srv.url,
               "HLOPS_HOME": str(root / f"home{n}"), "HLOPS_STREAM_MIN_BYTES": "0"}
        env.pop("PYTHONPATH", None)
        if which == "before":
            env["PYTHONPATH"] = str(before)
        load = open("/proc/loadavg").read().split()[0]
        t0, c0 = time.time(), os.times()
        done = subprocess.run([HLOPS, "apply", str(tree), "--auto-approve"], env=env,
                              capture_output=True, text=True)
        t1, c1 = time.time(), os.times()
        if done.returncode != 0:
            raise SystemExit(done.stderr + done.stdout)
    calls = [json.loads(line) for line in open(log)]
    puts = [c["time"] - t0 for c in calls if c["method"] == "PUT"]
    others = [f"{c['method']} {c['path']} {c['time'] - t0:.3f}" for c in calls if c["method"] != "PUT"]
    cpu = c1.children_user - c0.children_user + c1.children_system - c0.children_system
    return (f"{which}: load {load}, exit {t1 - t0:.2f} s, CPU {cpu:.2f} s, {len(calls)} calls, "
            f"{len(puts)} PUTs answered {puts[0]:.3f}-{puts[-1]:.3f} s; " + "; ".join(others))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--runs", default="after", help="comma-separated: before | after")
    ap.add_argument("--before", type=Path, help="a directory holding an older hlops package")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hlops-apply-timeline"))
    args = ap.parse_args()
    runs = args.runs.split(",")
    if "before" in runs and args.before is None:
        ap.error("--before is needed for a 'before' run")
    args.dir.mkdir(parents=True, exist_ok=True)
    data = args.dir / f"rows-{args.rows}.jsonl"
    if not data.exists():
        write_rows(data, args.rows)
    for n in range(len(runs)):
        (args.dir / f"tree{n}" / "data").mkdir(parents=True, exist_ok=True)
        linked = args.dir / f"tree{n}" / "data" / "rows.jsonl"
        if linked.exists():
            linked.unlink()
        os.link(data, linked)
        (args.dir / f"tree{n}" / "dataset.yaml").write_text(
            f"kind: Dataset\nname: timeline{n}\nkey: id\n"
            "fields: {id: text, text: text, label: categorical}\ndata: data/rows.jsonl\n")
    time.sleep(2.5)  # none racy
    for n, which in enumerate(runs):
        for name in (f"srv{n}", f"home{n}"):
            subprocess.run(["rm", "-rf", str(args.dir / name)], check=True)
        print(one_run(args.dir, n, which, args.before), flush=True)


if __name__ == "__main__":
    main()
