"""Datapoints at scale: hlops' plan/apply of N rows against the local reference server.

    .venv/bin/python bench/bench_datapoints.py --rows 100000      # CI smoke size
    .venv/bin/python bench/bench_datapoints.py --rows 1000000     # the committed figures
    .venv/bin/python bench/bench_datapoints.py --rows 1000000 --only p1   # P1 alone

One run, one server subprocess (its own temporary database), ratios measured side by side:

- P1  no-op plan of N rows (cold summary cache without and with the dataset's last-applied
      record, then warm) vs a bare paginated download of every datapoint with `requests`
      (goal <= 0.3x the time; plan peak RSS <= 300 MB);
- P2  first apply of N rows vs a hand-written loop of 10k-row `PUT`s with `requests`, each
      into its own empty dataset of the same server (goal >= 0.9x its rows/s);
- P3  re-apply after changing 1% of the rows: request bytes sent vs the changed rows'
      canonical JSON (goal <= 1.2x);
- peak RSS of plan and of apply (each measured in a fresh child process with
  `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the process's high-water mark; the RSS of
  the child right after its imports is reported too).

hlops is driven through `hlops.data.plan_data` / `apply_data` (what `hlops plan/apply` call
for a dataset's data), with rows read by `hlops.datafile.CheckedFile` — the same parsing,
checking and normalising the CLI's row source does, the summary pass split between worker
processes for a big file (`HLOPS_WORKERS` applies). Baselines are deliberately lean: the upload loop
sends the file's lines as they are (no parsing), the download decodes pages with orjson.

Results are merged into bench/results/datapoints.json under the row count, so the 100k and
1M runs sit side by side; with ``--only``, the parts measured replace theirs in the saved
run of that row count and the other figures are kept. The machine is shared: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIELDS = {"external_id": "text", "text": "text", "sentiment": "categorical"}
KEY = "external_id"
WORDS = ("the", "order", "arrived", "late", "and", "support", "was", "great", "slow", "refund",
         "broken", "screen", "thanks", "again", "never", "app", "crashes", "when", "I", "login")
RESULTS = ROOT / "bench" / "results" / "datapoints.json"
PARTS = ("p1", "p2", "p3", "cli")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- data


def make_file(path: Path, n: int, seed: int = 7) -> int:
    """N rows of ~130 bytes of JSONL (like the calibration file in design.md)."""
    rnd = random.Random(seed)
    labels = ("positive", "negative", "neutral")
    with open(path, "w") as fh:
        for i in range(n):
            text = " ".join(rnd.choice(WORDS) for _ in range(14))
            fh.write(json.dumps({"external_id": f"t-{i:08d}", "text": text, "sentiment": labels[i % 3]}) + "\n")
    return path.stat().st_size


def change_one_percent(src: Path, dst: Path) -> int:
    """Copy ``src`` with every 100th row's text edited; returns the bytes of the changed
    rows' canonical JSON (what must be sent, at the least)."""
    from hlops import canonical

    changed = 0
    with open(src) as fin, open(dst, "w") as fout:
        for i, line in enumerate(fin):
            if i % 100 == 0:
                row = json.loads(line)
                row["text"] = row["text"][::-1]
                line = json.dumps(row) + "\n"
                changed += len(canonical.canonical_json(canonical.normalise_row(row, FIELDS)))
            fout.write(line)
    return changed


# --------------------------------------------------------------------------- server


class Server:
    """The reference server in a subprocess, from the test support when it exists."""

    def __init__(self, base_url: str | None):
        self.external = base_url
        self.proc = None
        self.url = base_url or ""
        self.api_key = os.environ.get("HLOPS_API_KEY", "bench")

    def __enter__(self) -> Server:
        if self.external:
            return self
        from tests.support.server import ServerProcess  # the server engineer's harness

        self.proc = ServerProcess()
        self.proc.__enter__()
        self.url, self.api_key = self.proc.url, self.proc.api_key
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.__exit__(*exc)


def session(api_key: str):
    import requests

    s = requests.Session()
    s.headers.update({"X-API-KEY": api_key, "Content-Type": "application/json"})
    return s


def create_dataset(s, url: str, name: str) -> int:
    body = {"name": name, "key": KEY, "fields": [{"name": k, "data_type": v} for k, v in FIELDS.items()]}
    r = s.post(f"{url}/datasets", data=json.dumps(body))
    r.raise_for_status()
    return r.json()["id"]


# --------------------------------------------------------------------------- baselines


def small_request_ms(s, url: str, n: int = 20) -> float:
    """Latency of a small request on a kept-alive connection (GET /health)."""
    s.get(f"{url}/health")
    t0 = time.perf_counter()
    for _ in range(n):
        s.get(f"{url}/health")
    return round((time.perf_counter() - t0) / n * 1000, 1)


def baseline_upload(s, url: str, dataset_id: int, path: Path) -> dict:
    """The hand-written loop: 10k lines a PUT, sent as they are."""
    t0 = time.perf_counter()
    rows = 0
    with open(path, "rb") as fh:
        while True:
            lines = [ln.rstrip(b"\n") for _, ln in zip(range(10_000), fh)]
            if not lines:
                break
            r = s.put(f"{url}/datasets/{dataset_id}", data=b'{"data":[' + b",".join(lines) + b"]}")
            r.raise_for_status()
            rows += len(lines)
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def baseline_download(s, url: str, dataset_id: int) -> dict:
    """A bare paginated download of every datapoint."""
    import orjson

    t0 = time.perf_counter()
    n = nbytes = 0
    cursor = None
    while True:
        params = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = s.get(f"{url}/datasets/{dataset_id}/datapoints", params=params)
        r.raise_for_status()
        nbytes += len(r.content)
        page = orjson.loads(r.content)
        n += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return {"rows": n, "seconds": round(time.perf_counter() - t0, 2), "bytes": nbytes}


# --------------------------------------------------------------------------- hlops (child)


def child_main(spec: dict) -> None:
    """Run in a fresh process: plan (and apply) one dataset; print one JSON line."""
    from hlops.providers.humanloop.client import Client
    from hlops.providers.humanloop.data import apply_data, plan_data
    from hlops.datafile import CheckedFile

    rss_start = rss_mb()
    client = Client(spec["url"], os.environ["HLOPS_API_KEY"])
    path = spec["path"]
    # the rows of a dataset's data file as `hlops plan/apply` read them (RowSource): checked,
    # the summary pass split between processes, re-read by apply through `unchecked`
    rows = CheckedFile(path, FIELDS, KEY, {}, path)
    if not spec.get("unchecked", True):  # apply re-reading through the checks
        file = rows

        def rows():
            return file()

        rows.checked_file = file.checked_file

    out: dict = {"rss_after_imports_mb": round(rss_start, 1)}
    t0 = time.perf_counter()
    # with "record": the dataset's last-applied record, read as `hlops plan` reads it (its
    # remote read lists the datasets); timed with the plan
    record = (client.request("GET", f"/datasets/{spec['dataset_id']}").get("last_applied")
              if spec.get("record") else None)
    change = plan_data(
        client, spec["dataset_id"], spec["remote_count"], FIELDS, KEY, rows,
        prune=False, source=path, cache_dir=Path(spec["cache_dir"]), last_applied=record,
    )
    out["plan_seconds"] = round(time.perf_counter() - t0, 2)
    out["plan_rss_mb"] = round(rss_mb(), 1)
    # the summary pass's worker processes (forked children; the largest one's peak)
    out["plan_workers_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out["change"] = {k: getattr(change, k) for k in (
        "local_rows", "remote_rows", "add", "change", "remove", "unchanged", "unmatched_remote",
        "bytes_to_send", "calls", "estimated_seconds", "buckets", "remote_rows_read", "decided_by")}
    out["plan_calls"] = client.calls.total
    if spec["mode"] == "apply":
        before = client.calls.bytes_sent
        t1 = time.perf_counter()
        report = apply_data(client, spec["dataset_id"], change, FIELDS, KEY, rows, prune=False,
                            parallelism=spec["parallelism"], cache_dir=Path(spec["cache_dir"]))
        out["apply_seconds"] = round(time.perf_counter() - t1, 2)
        out["apply_rss_mb"] = round(rss_mb(), 1)
        out["report"] = report.to_dict()
        out["client_bytes_sent"] = client.calls.bytes_sent - before
    print(json.dumps(out))


def cli_measures(tmp: Path, data: Path, url: str, api_key: str, n: int, args) -> dict:
    """`hlops plan` (no-op, cold then warm cache) on the dataset P1 uses, and a first
    `hlops apply --auto-approve` of the same file on a fresh server."""
    hlops = str(Path(sys.executable).with_name("hlops"))
    home = tmp / "cli-home"

    def manifest(name: str) -> Path:
        d = tmp / f"cli-{name}"
        d.mkdir(exist_ok=True)
        (d / "rows.jsonl").unlink(missing_ok=True)
        (d / "rows.jsonl").symlink_to(data)
        fields = "".join(f"  {k}: {v}\n" for k, v in FIELDS.items())
        (d / "dataset.yaml").write_text(
            f"kind: Dataset\nname: {name}\nkey: {KEY}\nfields:\n{fields}data: rows.jsonl\n")
        return d

    def run(cwd: Path, base_url: str, key: str, *argv: str) -> tuple[float, int]:
        env = {**os.environ, "HLOPS_BASE_URL": base_url, "HLOPS_API_KEY": key, "HLOPS_HOME": str(home)}
        t0 = time.perf_counter()
        proc = subprocess.run([hlops, *argv], cwd=cwd, env=env, capture_output=True, text=True)
        seconds = round(time.perf_counter() - t0, 2)
        if proc.returncode not in (0, 2):
            raise SystemExit(f"hlops {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
        return seconds, proc.returncode

    out: dict = {}
    d = manifest(f"bench-hlops-{n}")
    out["plan_noop_cold_cache_seconds"], code = run(d, url, api_key, "plan", ".")
    out["plan_noop_exit_code"] = code
    out["plan_noop_warm_cache_seconds"], _ = run(d, url, api_key, "plan", ".")
    with Server(args.base_url) as fresh:
        d2 = manifest(f"bench-cli-{n}")
        out["apply_first_seconds"], _ = run(d2, fresh.url, fresh.api_key, "apply", ".", "--auto-approve",
                                            "--parallelism", str(args.parallelism))
        out["apply_first_rows_per_s"] = round(n / out["apply_first_seconds"])
    return out


def workers() -> int:
    """Worker processes of the summary pass (HLOPS_WORKERS, else the CPUs)."""
    from hlops.data.parallel import workers

    return workers()


def goals(res: dict) -> dict:
    """The issue's goals, for the parts a run record holds."""
    out = {}
    rss = res.get("peak_rss_mb", {})
    if "p1_ratio_cold" in res:
        out["p1_time_ratio_le_0.3"] = res["p1_ratio_cold"] <= 0.3
        out["p1_time_ratio_le_0.3_warm_cache"] = res["p1_ratio_warm"] <= 0.3
        if "p1_ratio_cold_last_applied" in res:
            out["p1_time_ratio_le_0.3_cold_last_applied"] = res["p1_ratio_cold_last_applied"] <= 0.3
        out["p1_rss_le_300mb"] = max(rss["plan_cold"], rss["plan_warm"]) <= 300
        if "plan_cold_workers" in rss:
            n = res.get("machine", {}).get("summary_workers", 1)
            out["p1_rss_le_300mb_with_workers"] = rss["plan_cold"] + n * rss["plan_cold_workers"] <= 300
    if "p2_ratio_apply_throughput" in res:
        out["p2_throughput_ratio_ge_0.9"] = res["p2_ratio_apply_throughput"] >= 0.9
    if "p3_ratio_bytes" in res:
        out["p3_bytes_ratio_le_1.2"] = res["p3_ratio_bytes"] <= 1.2
    return out


def run_child(spec: dict, api_key: str) -> dict:
    env = {**os.environ, "HLOPS_API_KEY": api_key, "BENCH_CHILD": json.dumps(spec)}
    if "workers" in spec:
        env["HLOPS_WORKERS"] = str(spec["workers"])
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({spec['mode']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the timed comparisons")
    ap.add_argument("--base-url", help="use a running server (HLOPS_API_KEY) instead of starting one")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help="skip the measures through `hlops plan/apply`")
    ap.add_argument("--only", choices=PARTS, action="append",
                    help="measure only this part (repeatable); saved figures of the others are kept")
    args = ap.parse_args()
    parts = set(args.only or PARTS)
    n = args.rows
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="hlops-bench-") as tmp, Server(args.base_url) as server:
        tmp = Path(tmp)
        data = tmp / "rows.jsonl"
        size = make_file(data, n)
        changed_file = tmp / "rows-1pct.jsonl"
        changed_json = change_one_percent(data, changed_file)
        s = session(server.api_key)
        url = server.url
        res: dict = {"rows": n, "file_bytes": size}
        print(f"{n:,} rows, {size / 1e6:.0f} MB of JSONL; server {url}", file=sys.stderr)

        res["server_small_request_ms"] = small_request_ms(s, url)
        hl_runs: list = []
        if "p2" in parts:
            # P2: first upload. Each upload goes to a server started afresh (empty database, same
            # settings), and repetitions alternate which one goes first.
            base_runs, hl_runs, checked_runs = [], [], []
            for rep in range(args.reps):
                order = ("base", "hlops", "checked") if rep % 2 == 0 else ("checked", "hlops", "base")
                for who in order:
                    with Server(args.base_url) as fresh:
                        fs = session(fresh.api_key)
                        ds_new = create_dataset(fs, fresh.url, f"bench-{who}-{n}-{rep}")
                        if who == "base":
                            base_runs.append(baseline_upload(fs, fresh.url, ds_new, data))
                            print("P2 baseline", base_runs[-1], file=sys.stderr)
                        else:
                            run = run_child({"url": fresh.url, "dataset_id": ds_new, "remote_count": 0,
                                             "path": str(data), "cache_dir": str(tmp / f"cache-p2-{who}-{rep}"),
                                             "parallelism": args.parallelism, "mode": "apply",
                                             "unchecked": who == "hlops"}, fresh.api_key)
                            run["rows_per_s"] = round(n / run["apply_seconds"])
                            (hl_runs if who == "hlops" else checked_runs).append(run)
                            print(f"P2 {who}", run, file=sys.stderr)
            best_base = max(r["rows_per_s"] for r in base_runs)
            best_hl = max(hl_runs, key=lambda r: r["rows_per_s"])
            res["p2_baseline_put_loop"] = base_runs
            res["p2_hlops_first_apply"] = hl_runs
            # each repetition's hlops run against the baseline run next to it in time (the
            # machine's load drifts): the median of these paired ratios is the headline figure
            paired = [round(h["rows_per_s"] / b["rows_per_s"], 3) for h, b in zip(hl_runs, base_runs)]
            res["p2_ratio_apply_throughput_paired"] = paired
            res["p2_ratio_apply_throughput"] = round(statistics.median(paired), 3)
            res["p2_ratio_apply_throughput_best_vs_best"] = round(best_hl["rows_per_s"] / best_base, 3)
            res["p2_hlops_first_apply_rereading_with_checks"] = checked_runs
            res["p2_ratio_apply_throughput_rereading_with_checks"] = round(statistics.median(
                c["rows_per_s"] / b["rows_per_s"] for c, b in zip(checked_runs, base_runs)), 3)
            res["p2_ratio_plan_plus_apply_throughput"] = round(
                max(n / (r["plan_seconds"] + r["apply_seconds"]) for r in hl_runs) / best_base, 3)

        # the dataset P1 and P3 work on: uploaded by hlops into the long-lived server, which
        # notes its last-applied record (only for a data file older than the racy window)
        ds = create_dataset(s, url, f"bench-hlops-{n}")
        spec = {"url": url, "dataset_id": ds, "remote_count": 0, "path": str(data),
                "cache_dir": str(tmp / "cache"), "parallelism": args.parallelism}
        time.sleep(2.1)
        res["setup_upload"] = run_child({**spec, "mode": "apply"}, server.api_key)
        res["setup_upload_noted_last_applied"] = bool(s.get(f"{url}/datasets/{ds}").json().get("last_applied"))

        if "p1" in parts:
            # P1: no-op plan vs a bare download
            downloads = [baseline_download(s, url, ds) for _ in range(args.reps)]
            res["p1_baseline_download"] = downloads
            print("P1 baseline", downloads, file=sys.stderr)
            time.sleep(2.1)  # the data file must be older than the cache's racy window
            # cold (no summary cache): without the record, split between processes (the
            # default) and in one process; with the dataset's last-applied record; alternating
            colds, colds_one, colds_record = [], [], []
            variants = ((colds, "split", {}), (colds_one, "one", {"workers": 1}),
                        (colds_record, "record", {"record": True}))
            for i in range(args.reps):
                for runs, tag, extra in variants[:: 1 if i % 2 == 0 else -1]:
                    runs.append(run_child({**spec, **extra, "mode": "plan", "remote_count": n,
                                           "cache_dir": str(tmp / f"cache-cold-{tag}-{len(runs)}")},
                                          server.api_key))
            assert all(r["change"]["decided_by"] == "last_applied" for r in colds_record), colds_record
            assert all(r["change"]["decided_by"] == "digest" for r in colds + colds_one)
            cold = min(colds, key=lambda r: r["plan_seconds"])
            warm = run_child({**spec, "mode": "plan", "remote_count": n, "cache_dir": str(tmp / "cache-cold-split-0")}, server.api_key)
            os.utime(data)  # same bytes, new mtime/ctime: a fresh checkout
            touched = run_child({**spec, "mode": "plan", "remote_count": n, "cache_dir": str(tmp / "cache-cold-split-0")}, server.api_key)
            res["p1_hlops_noop_plan_cold_cache"] = colds
            res["p1_hlops_noop_plan_warm_cache"] = warm
            res["p1_hlops_noop_plan_touched_file"] = touched
            dl = min(d["seconds"] for d in downloads)
            res["p1_ratio_cold"] = round(cold["plan_seconds"] / dl, 3)
            res["p1_ratio_warm"] = round(warm["plan_seconds"] / dl, 3)
            res["p1_ratio_touched"] = round(touched["plan_seconds"] / dl, 3)
            res["p1_hlops_noop_plan_cold_cache_one_process"] = colds_one
            res["p1_ratio_cold_one_process"] = round(min(r["plan_seconds"] for r in colds_one) / dl, 3)
            res["p1_hlops_noop_plan_cold_last_applied"] = colds_record
            res["p1_ratio_cold_last_applied"] = round(min(r["plan_seconds"] for r in colds_record) / dl, 3)
            digest = s.get(f"{url}/datasets/{ds}/digest", params={"key": KEY, "buckets": cold["change"]["buckets"]})
            res["p1_noop_digest_bytes"] = len(digest.content)
            print("P1 cold", colds, "\nP1 cold, record", colds_record, "\nP1 warm", warm,
                  "\nP1 touched", touched, file=sys.stderr)

        # the same through the CLI (process start, manifest loading with its own check of
        # the data file, the remote read, then plan_data/apply_data)
        if "cli" in parts and not args.no_cli:
            res["cli"] = cli_measures(tmp, data, url, server.api_key, n, args)
            print("CLI", res["cli"], file=sys.stderr)

        if "p3" in parts:
            # P3: 1% of rows changed
            time.sleep(2.1)
            p3 = run_child({**spec, "mode": "apply", "remote_count": n, "path": str(changed_file),
                            "cache_dir": str(tmp / "cache-p3")}, server.api_key)
            res["p3_hlops_reapply_1pct"] = p3
            res["p3_changed_rows_json_bytes"] = changed_json
            res["p3_ratio_bytes"] = round(p3["client_bytes_sent"] / changed_json, 3)
            print("P3", p3, file=sys.stderr)
            after = run_child({**spec, "mode": "plan", "remote_count": n, "path": str(changed_file),
                               "cache_dir": str(tmp / "cache-p3")}, server.api_key)
            res["p3_plan_after_reapply_has_changes"] = any(
                after["change"][k] for k in ("add", "change", "remove"))

    rss = {}
    if "p1" in parts:
        rss.update(plan_cold=cold["plan_rss_mb"], plan_warm=warm["plan_rss_mb"],
                   plan_cold_workers=max(c["plan_workers_rss_mb"] for c in colds),
                   child_after_imports=cold["rss_after_imports_mb"])
    if "p2" in parts:
        rss["first_apply_process"] = max(r["apply_rss_mb"] for r in hl_runs)
    if "p3" in parts:
        rss["reapply_1pct_process"] = p3["apply_rss_mb"]
    res["peak_rss_mb"] = rss
    res["command"] = " ".join([Path(sys.executable).name, "bench/bench_datapoints.py", *sys.argv[1:]])
    res["date"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "summary_workers": workers(),
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    res["goals"] = goals(res)
    print(json.dumps(res, indent=1))
    if not args.no_save:
        try:
            all_runs = json.loads(args.out.read_text())
        except (OSError, ValueError):
            all_runs = {}
        runs = all_runs.setdefault("runs", {})
        if parts != set(PARTS):  # a partial run: keep the saved figures of the other parts
            saved = runs.get(str(n), {})
            res = {**saved, **res, "peak_rss_mb": {**saved.get("peak_rss_mb", {}), **rss},
                   "parts_of_last_run": sorted(parts)}
            res["goals"] = goals(res)
        runs[str(n)] = res
        all_runs["about"] = __doc__.strip().splitlines()[0]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(all_runs, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if os.environ.get("BENCH_CHILD"):
        child_main(json.loads(os.environ["BENCH_CHILD"]))
    else:
        main()
