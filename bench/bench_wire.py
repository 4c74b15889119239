"""The whole CLI at the speed of the wire (issue 14): every row of the issue's table beside
its baseline, in one run, against `hlops serve` on loopback started here.

    bash bench/peers/setup.sh                                   # once: the Ansible peer's venv
    .venv/bin/python bench/bench_wire.py --rows 50000 --resources 30     # a small proof
    .venv/bin/python bench/bench_wire.py                        # 1,000,000 rows, 300 + 300
    .venv/bin/python bench/bench_wire.py --only noop --repeat 3
    .venv/bin/python bench/bench_wire.py --profile bench/profiles --rows 200000 --resources 100

What is timed is always a whole process, start to exit (`hlops plan` / `hlops apply` /
`hlops validate` as a subprocess, a fresh `HLOPS_HOME` each time: no summary cache), and
for the baselines the loop or the playbook that does the same work:

- apply    first `hlops apply --auto-approve` of N new rows vs a hand-written loop of
           10k-row PUTs with requests (each into a server started afresh); goal >= 1.0x its
           throughput;
- plan     `hlops plan` after 1% of the N rows changed (every 100th row: spread over the
           file; the dataset applied by hlops, so it has its last-applied record) vs a bare
           paginated download of every datapoint; goal <= 0.3x its time;
- noop     no-op `hlops plan` over R datasets (20 rows each) + R projects vs an Ansible
           `uri` playbook doing the same idempotent check (bench/peers/noop_check.yml, one
           GET per resource by name + compare); goal <= 0.1x, calls = list pages only;
- local    the local pass of a changed N-row file: `hlops plan` of that file against a
           remote that already holds exactly its rows, uploaded by the PUT loop (so no
           last-applied record vouches for the file: the plan must summarise it; it makes a
           handful of small calls besides, counted) vs the orjson floor measured here
           (parse + canonical JSON with OPT_SORT_KEYS + SHA-256 of row and key, one core);
           goal <= 1.5x the floor per core used (CPU seconds of the process tree, workers
           included, are reported beside the wall time); `hlops validate` (the checks
           alone, no hashing) and `hlops validate --no-data` (start-up and manifests) too;
- rss      the hlops runs of apply, plan and local once more at N/10: peak RSS flat in rows
           (goal <= 200 MB). Every CLI run records its peak RSS: `ru_maxrss` from `wait4`
           of that process (its largest process: the CLI or one of its forked workers) and
           the sum of the tree's RSS polled from /proc every 50 ms.

Baseline and hlops runs alternate (their order flips each repetition) so a shared
machine's drift hits both; after a part's setup writes (the plan part's first apply, the
local part's PUT loop) the bench waits until the server is idle (`settle`: its checkpoint
thread copies a big upload's WAL into the database), so no measured run shares the cores
with that; ratios are medians of the paired runs. API calls come from the
server's `/_test/stats` (docs/server.md), reset before each run. Results:
bench/results/wire.json (with --only, the parts measured replace theirs in the saved file
of the same N and R); README's table is rendered from the results by bench/render_readme.py.
With --profile DIR the hlops runs of apply, plan and noop go under `py-spy record
--subprocesses` instead (no figures saved): DIR gets each profile as a flame graph and its
top functions as text (docs/performance.md). Before measuring, hlops and the venv's
site-packages are byte-compiled (`byte_compile`; `--no-compile` skips it), so no run pays
for compiling sources (a `uv pip install` without `--compile-bytecode` under
PYTHONDONTWRITEBYTECODE=1 otherwise costs every process ~0.6 s of CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(BENCH)]

import bench_datapoints as dp  # noqa: E402  (the data, the PUT loop, the download)
from support.server import ServerProcess  # noqa: E402

RESULTS = BENCH / "results" / "wire.json"
PARTS = ("apply", "plan", "noop", "local", "rss")
PEERS = BENCH / ".venv-peers"
PLAYBOOK = BENCH / "peers" / "noop_check.yml"
HLOPS = str(Path(sys.executable).with_name("hlops"))
SMALL_ROWS = 20  # rows of each dataset of the no-op part
RSS_GOAL_MB = 200


# --------------------------------------------------------------------------- processes


def tree_rss_mb(pid: int) -> float:
    """Sum of VmRSS over ``pid`` and its descendants (0 when it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


def run_process(argv: list[str], *, cwd: Path, env: dict, ok=(0,), server: ServerProcess | None = None,
                wrap: list[str] | None = None, keep_output: bool = False) -> dict:
    """Run ``argv`` to its exit; wall seconds, exit code, CPU seconds and peak RSS of its
    process tree, and the API calls the server counted meanwhile."""
    if server is not None:
        server.reset_stats()
    cmd = [*(wrap or []), *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        peak, done = [0.0], threading.Event()

        def poll() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            out.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"{out.read()[-2000:].decode(errors='replace')}\n{err.read()[-3000:].decode(errors='replace')}")
        out.seek(0)
        tail = out.read()[-4000:].decode(errors="replace") if keep_output else ""
    run = {"seconds": round(seconds, 3), "exit": proc.returncode,
           "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "tree_peak_rss_mb": round(peak[0], 1)}
    if keep_output:
        run["output_tail"] = tail
    if server is not None:
        stats = server.stats()
        run["calls"] = stats["total"]
        run["calls_by_path"] = dict(sorted(stats["by_path"].items(), key=lambda kv: -kv[1]))
    return run


def settle(server: ServerProcess, quiet: float = 0.05, window: float = 0.5, limit: float = 90.0) -> float:
    """Wait until the server is idle: less than ``quiet`` CPU seconds (all its threads) in a
    ``window``, at most ``limit`` seconds. A setup's writes leave it busy for a while (its
    checkpoint thread copies the WAL of a 1M-row upload into the database); a measured run
    must not share the two cores with that. Returns the seconds waited."""
    def cpu() -> float:
        try:
            with open(f"/proc/{server.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return 0.0
    t0 = time.perf_counter()
    last = cpu()
    while time.perf_counter() - t0 < limit:
        time.sleep(window)
        now = cpu()
        if now - last < quiet:
            break
        last = now
    return round(time.perf_counter() - t0, 2)


class Cli:
    """`hlops` against one server, a fresh HLOPS_HOME per run (no summary cache)."""

    def __init__(self, tmp: Path, profile_dir: Path | None = None):
        self.tmp, self.profile_dir, self.count = tmp, profile_dir, 0

    def run(self, server: ServerProcess, cwd: Path, *args: str, ok=(0, 2), tag: str = "") -> dict:
        self.count += 1
        home = self.tmp / f"home-{self.count}"
        env = {**os.environ, "HLOPS_BASE_URL": server.url, "HLOPS_API_KEY": server.api_key,
               "HLOPS_HOME": str(home)}
        wrap = None
        if self.profile_dir is not None and tag:
            wrap = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--idle", "--rate", "200",
                    "--format", "raw", "-o", str(self.profile_dir / f"{tag}.txt"), "--"]
            ok = (*ok, 0)  # py-spy exits 0 whatever the CLI's exit
        run = run_process([HLOPS, *args], cwd=cwd, env=env, ok=ok, server=server, wrap=wrap)
        shutil.rmtree(home, ignore_errors=True)
        run["argv"] = ["hlops", *args]
        return run


def timed(fn, *args, server: ServerProcess | None = None) -> dict:
    """A baseline in this process: wall seconds and the calls the server counted."""
    if server is not None:
        server.reset_stats()
    t0 = time.perf_counter()
    out = fn(*args)
    run = {"seconds": round(time.perf_counter() - t0, 3), **(out if isinstance(out, dict) else {})}
    if server is not None:
        run["calls"] = server.stats()["total"]
    return run


def alternate(repeat: int, first, second) -> tuple[list, list]:
    """``repeat`` pairs of runs, the order flipping each time."""
    a, b = [], []
    for i in range(repeat):
        if i % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def median(runs: list[dict], key: str = "seconds") -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def paired(num: list[dict], den: list[dict]) -> float:
    """Median of the paired ratios num[i] / den[i] of wall seconds."""
    return round(statistics.median(n["seconds"] / d["seconds"] for n, d in zip(num, den)), 3)


# --------------------------------------------------------------------------- manifests


def dataset_dir(root: Path, name: str, data: Path) -> Path:
    """A manifest directory with one dataset whose data file is ``data`` (a symlink)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "rows.jsonl").unlink(missing_ok=True)
    (root / "rows.jsonl").symlink_to(data)
    fields = "".join(f"  {k}: {v}\n" for k, v in dp.FIELDS.items())
    (root / "dataset.yaml").write_text(f"kind: Dataset\nname: {name}\nkey: {dp.KEY}\nfields:\n{fields}data: rows.jsonl\n")
    return root


def many_resources(root: Path, count: int) -> dict:
    """``count`` datasets (``SMALL_ROWS`` rows each) and ``count`` projects reading them, as
    hlops manifests; returns the same declarations for the Ansible peer."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    datasets, projects, docs = [], [], []
    for i in range(count):
        ds, pr = f"wire-ds-{i:04d}", f"wire-project-{i:04d}"
        with open(root / "data" / f"{ds}.jsonl", "w") as fh:
            for j in range(SMALL_ROWS):
                fh.write(json.dumps({"external_id": f"{i}-{j}", "text": f"message {j} of set {i}",
                                     "sentiment": ("positive", "negative", "neutral")[j % 3]}) + "\n")
        desc, guide = f"Support messages, set {i}.", f"Label the sentiment of set {i}."
        docs.append(f"kind: Dataset\nname: {ds}\ndescription: {desc}\nkey: {dp.KEY}\nfields:\n"
                    + "".join(f"  {k}: {v}\n" for k, v in dp.FIELDS.items()) + f"data: data/{ds}.jsonl\n")
        docs.append(f"kind: Project\nname: {pr}\ndescription: {desc}\ninputs:\n  text: {ds}.text\n"
                    f"outputs:\n  sentiment:\n    task_type: classification\n    from: {ds}.sentiment\n"
                    f"guidelines: {guide}\nreview_existing_annotations: false\n")
        datasets.append({"name": ds, "description": desc, "key": dp.KEY, "rows": SMALL_ROWS,
                         "fields": [{"name": k, "data_type": v} for k, v in dp.FIELDS.items()]})
        projects.append({"name": pr, "description": desc, "guidelines": guide,
                         "inputs": ["text"], "outputs": ["sentiment"]})
    (root / "resources.yaml").write_text("---\n".join(docs))
    return {"datasets": datasets, "projects": projects}


# --------------------------------------------------------------------------- baselines


def orjson_floor(path: Path) -> dict:
    """The least a local pass can do in Python, on one core: parse each line, canonical
    JSON (sorted keys, compact, UTF-8), SHA-256 of the row and of its key."""
    sha, loads, dumps, opt = hashlib.sha256, orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
    xor = rows = 0
    with open(path, "rb") as fh:
        for line in fh:
            row = loads(line)
            digest = sha(dumps(row, option=opt)).digest()
            point = sha(str(row[dp.KEY]).encode()).digest()
            xor ^= int.from_bytes(digest[:8], "little") ^ int.from_bytes(point[:8], "little")
            rows += 1
    return {"rows": rows, "check": xor & 0xFFFF}


def ansible_check(server: ServerProcess, tmp: Path, declared: dict) -> dict:
    """The peer playbook, one run, as a process (its own venv's ansible-playbook)."""
    playbook = PEERS / "bin" / "ansible-playbook"
    if not playbook.exists():
        raise SystemExit(f"no {playbook}: run `bash bench/peers/setup.sh` first")
    resources = tmp / "ansible-resources.json"
    resources.write_text(json.dumps(declared))
    env = {**os.environ, "HLOPS_API_KEY": server.api_key, "ANSIBLE_HOME": str(tmp / "ansible-home"),
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
           "ANSIBLE_PYTHON_INTERPRETER": str(PEERS / "bin" / "python")}
    run = run_process([str(playbook), "-i", "localhost,", str(PLAYBOOK), "-e", f"@{resources}",
                       "-e", f"base_url={server.url}"], cwd=tmp, env=env, server=server, keep_output=True)
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*?skipped=(\d+)", run.pop("output_tail"))
    if recap is None or recap.group(2) != "0":
        raise SystemExit(f"the playbook's run was not a no-op: {recap.group(0) if recap else 'no recap'}")
    run["recap"] = recap.group(0)
    run["argv"] = ["ansible-playbook", "-i", "localhost,", "bench/peers/noop_check.yml",
                   "-e", "@resources.json", "-e", "base_url=URL"]
    return run


def ansible_version() -> str:
    try:
        out = subprocess.run([str(PEERS / "bin" / "ansible-playbook"), "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


# --------------------------------------------------------------------------- the parts


def part_apply(cli: Cli, tmp: Path, n: int, data: Path, repeat: int, baseline: bool = True) -> dict:
    def base() -> dict:
        with ServerProcess() as srv:
            s = dp.session(srv.api_key)
            return timed(lambda: dp.baseline_upload(s, srv.url, dp.create_dataset(s, srv.url, f"wire-base-{n}"), data),
                         server=srv)

    def ours() -> dict:
        with ServerProcess() as srv:
            d = dataset_dir(tmp / f"m-apply-{n}", f"wire-apply-{n}", data)
            run = cli.run(srv, d, "apply", ".", "--auto-approve", ok=(0,), tag=f"apply-{n}")
            rows = srv.call("GET", "/datasets", params={"name": f"wire-apply-{n}"}).json()["items"][0]["datapoint_count"]
            assert rows == n, f"hlops apply left {rows} rows, not {n}"
            return run

    if not baseline:
        return {"hlops": [ours()]}
    base_runs, hl_runs = alternate(repeat, base, ours)
    return {"baseline": base_runs, "hlops": hl_runs, "baseline_what": "10k-row PUTs with requests (create included)",
            "ratio_throughput": paired(base_runs, hl_runs), "goal": ">= 1.0", "met": paired(base_runs, hl_runs) >= 1.0,
            "seconds": {"baseline": median(base_runs), "hlops": median(hl_runs)},
            "rows_per_s": {"baseline": round(n / median(base_runs)), "hlops": round(n / median(hl_runs))}}


def part_plan(cli: Cli, srv: ServerProcess, tmp: Path, n: int, data: Path, changed: Path, repeat: int,
              baseline: bool = True) -> dict:
    """The dataset applied by hlops (its last-applied record noted), then planned from the
    file with 1% of its rows changed."""
    name = f"wire-plan-{n}"
    setup = cli.run(srv, dataset_dir(tmp / f"m-plan-setup-{n}", name, data), "apply", ".", "--auto-approve", ok=(0,))
    setup["settled_seconds"] = settle(srv)
    ds = srv.call("GET", "/datasets", params={"name": name}).json()["items"][0]
    d = dataset_dir(tmp / f"m-plan-{n}", name, changed)
    s = dp.session(srv.api_key)

    def ours() -> dict:
        run = cli.run(srv, d, "plan", ".", "--json", ok=(2,), tag=f"plan-{n}")
        return run

    if not baseline:
        return {"hlops": [ours()], "setup_apply": setup}
    base_runs, hl_runs = alternate(repeat, lambda: timed(dp.baseline_download, s, srv.url, ds["id"], server=srv), ours)
    ratio = paired(hl_runs, base_runs)
    return {"baseline": base_runs, "hlops": hl_runs, "setup_apply": setup,
            "setup_noted_last_applied": bool(ds.get("last_applied")),
            "baseline_what": "paginated GET /datasets/{id}/datapoints?limit=1000, orjson",
            "changed_rows": n // 100, "ratio_time": ratio, "goal": "<= 0.3", "met": ratio <= 0.3,
            "seconds": {"baseline": median(base_runs), "hlops": median(hl_runs)}}


def part_local(cli: Cli, srv: ServerProcess, tmp: Path, n: int, changed: Path, repeat: int,
               baseline: bool = True) -> dict:
    """`hlops plan` of the changed file against a remote that holds exactly its rows (no
    record: uploaded by the PUT loop), beside the orjson floor."""
    name = f"wire-local-{n}"
    s = dp.session(srv.api_key)
    dp.baseline_upload(s, srv.url, dp.create_dataset(s, srv.url, name), changed)
    settled = settle(srv)
    d = dataset_dir(tmp / f"m-local-{n}", name, changed)

    def ours() -> dict:
        return cli.run(srv, d, "plan", ".", "--json", ok=(0,), tag=f"local-{n}")

    if not baseline:
        return {"hlops": [ours()]}
    floors, hl_runs = alternate(repeat, lambda: timed(orjson_floor, changed), ours)
    validate = [cli.run(srv, d, "validate", ".", ok=(0,)) for _ in range(repeat)]
    startup = [cli.run(srv, d, "validate", ".", "--no-data", ok=(0,)) for _ in range(repeat)]
    wall = paired(hl_runs, floors)
    cpu = round(statistics.median(h["cpu_seconds"] / f["seconds"] for h, f in zip(hl_runs, floors)), 3)
    # the same without the start-up (imports, manifests), as `hlops validate --no-data` spends it
    cpu_pass = round(statistics.median((h["cpu_seconds"] - median(startup, "cpu_seconds")) / f["seconds"]
                                       for h, f in zip(hl_runs, floors)), 3)
    return {"baseline": floors, "hlops": hl_runs, "hlops_validate": validate, "hlops_validate_no_data": startup,
            "ratio_cpu_without_startup": cpu_pass, "setup_settled_seconds": settled,
            "baseline_what": "orjson.loads + orjson.dumps(OPT_SORT_KEYS) + SHA-256 of row and key, one core, in the bench process",
            "ratio_time": wall, "ratio_cpu": cpu, "goal": "<= 1.5 per core used (CPU seconds / floor)",
            "met": cpu <= 1.5, "seconds": {"baseline": median(floors), "hlops": median(hl_runs),
                                           "hlops_cpu": median(hl_runs, "cpu_seconds"),
                                           "validate": median(validate), "validate_no_data": median(startup)}}


def part_noop(cli: Cli, tmp: Path, count: int, repeat: int, baseline: bool = True) -> dict:
    root = tmp / f"m-noop-{count}"
    declared = many_resources(root, count)
    with ServerProcess() as srv:
        setup = cli.run(srv, root, "apply", ".", "--auto-approve", ok=(0,))
        check = cli.run(srv, root, "plan", ".", ok=(0,))  # a no-op, else the comparison is void
        if not baseline:
            return {"hlops": [cli.run(srv, root, "plan", ".", ok=(0,), tag=f"noop-{count}")], "setup_apply": setup}
        ans_runs, hl_runs = alternate(repeat, lambda: ansible_check(srv, tmp, declared),
                                      lambda: cli.run(srv, root, "plan", ".", ok=(0,), tag=f"noop-{count}"))
    ratio = paired(hl_runs, ans_runs)
    return {"resources": {"datasets": count, "projects": count, "rows_each": SMALL_ROWS},
            "baseline": ans_runs, "hlops": hl_runs, "setup_apply": setup, "first_plan_exit": check["exit"],
            "baseline_what": f"Ansible uri playbook ({ansible_version()}): GET by name + compare per resource",
            "ratio_time": ratio, "goal": "<= 0.1; calls = list pages only", "met": ratio <= 0.1,
            "seconds": {"baseline": median(ans_runs), "hlops": median(hl_runs)},
            "calls": {"baseline": ans_runs[0]["calls"], "hlops": hl_runs[0]["calls"],
                      "list_pages": 2 * -(-count // 1000)}}


def rss_summary(res: dict) -> dict:
    """Peak RSS of every CLI run at N and at N/10 (the largest process, and the tree)."""
    out: dict = {"goal_mb": RSS_GOAL_MB}
    for part in ("apply", "plan", "local", "noop"):
        if part in res:
            out[part] = {"peak_rss_mb": max(r["peak_rss_mb"] for r in res[part]["hlops"]),
                         "tree_peak_rss_mb": max(r["tree_peak_rss_mb"] for r in res[part]["hlops"])}
    tenth = res.get("rss_tenth", {})
    for part, runs in tenth.get("runs", {}).items():
        if part in out:
            out[part]["at_tenth_rows"] = {"peak_rss_mb": runs["hlops"][0]["peak_rss_mb"],
                                          "tree_peak_rss_mb": runs["hlops"][0]["tree_peak_rss_mb"]}
    peaks = [v["tree_peak_rss_mb"] for v in out.values() if isinstance(v, dict)]
    if peaks:
        out["max_tree_peak_rss_mb"] = max(peaks)
        out["met"] = max(peaks) <= RSS_GOAL_MB
    return out


# --------------------------------------------------------------------------- profiles


def _frame(f: str) -> tuple[str, str]:
    """``func (path:line)`` -> (``func``, a short path: from ``hlops/`` or a package on)."""
    func, _, where = f.partition(" (")
    path = where.rsplit(":", 1)[0]
    for cut in ("/site-packages/", "/wt14/", "/main/", "/lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
            break
    return func, path


def top_lines(raw: Path, limit: int = 15, rate: int = 200) -> str:
    """py-spy's raw output (collapsed stacks ``frame;frame;... count``, idle samples
    included) as tables of the CLI's main thread, whose samples are its wall time: self
    time per function, and inclusive time per hlops function, in % of the main thread's
    samples; the share spent importing modules, and the samples of other threads (the
    upload and read pools, mostly waiting), on their own lines."""
    own, incl, main, other, imports = Counter(), Counter(), 0, 0, 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[0][0] != "<module>":  # a pool thread (its stack starts in threading.py)
            other += count
            continue
        main += count
        if any(func == "_find_and_load" for func, _ in frames):
            imports += count
        own[f"{frames[-1][0]} ({frames[-1][1]})"] += count
        for label in {f"{func} ({path})" for func, path in frames if path.startswith("hlops/") and func != "<module>"}:
            incl[label] += count
    pct = lambda c: f"{100 * c / max(main, 1):5.1f}"  # noqa: E731
    lines = [f"{raw.stem}: main thread {main} samples = {main / rate:.1f} s at {rate} Hz (idle included); "
             f"importing modules {pct(imports).strip()}%; other threads {other} samples",
             "", "self %  function (main thread)"]
    lines += [f"{pct(c)}  {f}" for f, c in own.most_common(limit)]
    lines += ["", "total % hlops function (main thread, inclusive)"]
    lines += [f"{pct(c)}  {f}" for f, c in incl.most_common(limit + 10)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def byte_compile() -> dict:
    """Byte-compile hlops and this venv's site-packages (``compileall``: what ``pip install``
    does at install, ``uv pip install`` only with ``--compile-bytecode``), so that no CLI run
    compiles Python sources at import. Without it, under ``PYTHONDONTWRITEBYTECODE=1``
    (which never writes the ``.pyc`` files), every hlops process compiles its ~400 modules:
    ~0.6 s of CPU a run, 2-3x hlops' whole start-up, which is not what is measured here."""
    import compileall
    import sysconfig

    t = time.perf_counter()
    dirs = [ROOT / "hlops", Path(sysconfig.get_paths()["purelib"])]
    ok = all(compileall.compile_dir(str(d), quiet=1, workers=0) for d in dirs)
    return {"dirs": [str(d) for d in dirs], "ok": ok, "seconds": round(time.perf_counter() - t, 2),
            "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--resources", type=int, default=300, help="datasets (and as many projects) of the no-op part")
    ap.add_argument("--only", choices=PARTS, action="append", help="this part only (repeatable)")
    ap.add_argument("--repeat", type=int, default=1, help="pairs of baseline and hlops runs (medians)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the hlops runs of apply, plan, noop into DIR")
    ap.add_argument("--no-compile", action="store_true", help="do not byte-compile hlops and site-packages first")
    args = ap.parse_args()
    parts = set(args.only or PARTS) - ({"local", "rss"} if args.profile else set())
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
        args.repeat = 1
    compiled = None if args.no_compile else byte_compile()
    n, load_before = args.rows, os.getloadavg()
    res: dict = {"rows": n, "resources": args.resources, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="hlops-wire-") as tmp:
        tmp = Path(tmp)
        cli = Cli(tmp, args.profile)
        files = {}
        for rows in ({n, n // 10} if "rss" in parts else {n}):
            data, changed = tmp / f"rows-{rows}.jsonl", tmp / f"rows-{rows}-1pct.jsonl"
            size = dp.make_file(data, rows)
            dp.change_one_percent(data, changed)
            files[rows] = (data, changed)
            if rows == n:
                res["file_bytes"] = size
        data, changed = files[n]
        print(f"{n:,} rows, {res['file_bytes'] / 1e6:.0f} MB; parts {sorted(parts)}", file=sys.stderr)
        if "apply" in parts:
            res["apply"] = part_apply(cli, tmp, n, data, args.repeat)
            print("apply", res["apply"].get("ratio_throughput"), file=sys.stderr)
        if parts & {"plan", "local", "rss"}:
            with ServerProcess() as srv:
                if "plan" in parts:
                    res["plan"] = part_plan(cli, srv, tmp, n, data, changed, args.repeat)
                    print("plan", res["plan"].get("ratio_time"), file=sys.stderr)
                if "local" in parts:
                    res["local"] = part_local(cli, srv, tmp, n, changed, args.repeat)
                    print("local", res["local"]["ratio_time"], res["local"]["ratio_cpu"], file=sys.stderr)
                if "rss" in parts:
                    small = n // 10
                    d10, c10 = files[small]
                    res["rss_tenth"] = {"rows": small, "runs": {
                        "apply": part_apply(cli, tmp, small, d10, 1, baseline=False),
                        "plan": part_plan(cli, srv, tmp, small, d10, c10, 1, baseline=False),
                        "local": part_local(cli, srv, tmp, small, c10, 1, baseline=False)}}
        if "noop" in parts:
            res["noop"] = part_noop(cli, tmp, args.resources, args.repeat, baseline=not args.profile)
            print("noop", res["noop"].get("ratio_time"), file=sys.stderr)
        if args.profile:
            (args.profile / "runs.json").write_text(json.dumps(res, indent=1) + "\n")
            for raw in sorted(args.profile.glob("*.txt")):
                if not raw.name.endswith(".top.txt"):
                    raw.with_suffix(".top.txt").write_text(top_lines(raw))
                    print(raw.with_suffix(".top.txt").read_text())
            return

    res["command"] = " ".join([".venv/bin/python", "bench/bench_wire.py", *sys.argv[1:]])
    res["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                      "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                               capture_output=True, text=True).stdout.strip(),
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                      "byte_compiled": compiled}
    for part in parts:  # each part says which run made it (a merged file holds several)
        key = "rss_tenth" if part == "rss" else part
        if key in res:
            res[key]["made_by"] = {"command": res["command"], "date": res["date"], "commit": res["machine"]["commit"]}
    if args.only:  # keep the saved figures of the other parts, for the same N and R
        try:
            saved = json.loads(args.out.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("rows") == n and saved.get("resources") == args.resources:
            res = {**saved, **res, "parts_of_last_run": sorted(parts)}
    res["rss"] = rss_summary(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k].get("ratio_throughput", res[k].get("ratio_time")) for k in PARTS if k in res
                      and isinstance(res[k], dict) and k != "rss"}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
