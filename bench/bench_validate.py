"""Benchmark: `hlops validate` on a large data file runs in constant memory.

    .venv/bin/python bench/bench_validate.py --rows 1000000

Generates a dataset of N rows (~130 bytes each, like the calibration in design.md: a text,
a categorical label, a unique key, spans into the text) as JSONL, CSV and a JSON array, and
runs ``python -m hlops validate`` on each in a child process, also at N/10 rows and with
``--no-data`` (the interpreter and manifest alone). For each run it records the wall time and
the child's peak RSS (``os.wait4`` rusage: that child only), next to the file size.

Constant memory means: the peak RSS at N rows is the same as at N/10 rows (the duplicate-key
index spills to temporary files past 262,144 keys, so it does not grow either).
Writes bench/results/validate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
WORDS = ("refund order late parcel great love broken screen battery support agent helpful "
         "terrible quick delivery price quality app crash login thanks please never again "
         "works perfectly disappointed charger box").split()
ORGS = ("Apple", "Amazon", "Sony", "IKEA", "Dyson")
MANIFEST = """\
kind: Dataset
name: bench
key: id
fields:
  id: text
  text: text
  sentiment: categorical
  entities: character_offsets
data: {data}
---
kind: Project
name: bench-project
inputs:
  text: bench.text
outputs:
  sentiment: {{task_type: classification, from: bench.sentiment}}
  entities: {{task_type: sequence_tagging, input: text, from: bench.entities}}
"""


def rows(n: int, seed: int = 1):
    rng = random.Random(seed)
    for i in range(n):
        org = rng.choice(ORGS)
        text = f"Hi {org}! " + " ".join(rng.choices(WORDS, k=rng.randint(6, 12)))
        row = {"id": f"id-{i:08d}", "text": text,
               "sentiment": rng.choice(("positive", "negative", "neutral", None))}
        if rng.random() < 0.5:
            row["entities"] = [{"start": 3, "end": 3 + len(org), "label": "ORG"}]
        yield row


def write(directory: Path, fmt: str, n: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"data.{fmt}"
    with open(path, "wb") as f:
        if fmt == "jsonl":
            for row in rows(n):
                f.write(orjson.dumps(row) + b"\n")
        elif fmt == "json":
            f.write(b"[\n")
            for i, row in enumerate(rows(n)):
                f.write((b",\n" if i else b"") + orjson.dumps(row))
            f.write(b"\n]\n")
        else:
            f.write(b"id,text,sentiment,entities\n")
            for row in rows(n):
                spans = row.get("entities")
                cells = [row["id"], row["text"], row["sentiment"] or "",
                         '"' + orjson.dumps(spans).decode().replace('"', '""') + '"' if spans else ""]
                f.write((",".join(cells) + "\n").encode())
    (directory / "manifest.yaml").write_text(MANIFEST.format(data=path.name))
    return path


def measure(args: list[str]) -> dict:
    """Run ``python -m hlops ...`` in a child; its wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hlops", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"hlops {' '.join(args)} exited {code}:\n{output.decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "output": output.decode().strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv,json")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/validate.json")
    opts = parser.parse_args()
    results, baseline = [], None
    with tempfile.TemporaryDirectory(prefix="hlops-bench-") as tmp:
        for fmt in opts.formats.split(","):
            for n in (opts.rows // 10, opts.rows):
                directory = Path(tmp) / f"{fmt}-{n}"
                t = time.perf_counter()
                path = write(directory, fmt, n)
                generated = time.perf_counter() - t
                if baseline is None:  # the interpreter and the manifests, no data read
                    baseline = measure(["validate", "--no-data", str(directory)])
                run = measure(["validate", str(directory)])
                result = {"format": fmt, "rows": n, "file_mb": round(path.stat().st_size / 2**20, 1),
                          **run, "rows_per_second": int(n / run["seconds"]),
                          "generate_seconds": round(generated, 1)}
                print(json.dumps(result), flush=True)
                results.append(result)
                path.unlink()
    by = {(r["format"], r["rows"]): r for r in results}
    growth = {fmt: round(by[(fmt, opts.rows)]["peak_rss_mb"] - by[(fmt, opts.rows // 10)]["peak_rss_mb"], 1)
              for fmt in opts.formats.split(",")}
    report = {
        "command": f"python bench/bench_validate.py --rows {opts.rows}",
        "what": "hlops validate on one dataset (key, text, categorical, spans) in a child "
                "process; peak RSS from os.wait4 of that child",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "baseline_no_data": {k: v for k, v in baseline.items() if k != "output"},
        "runs": [{k: v for k, v in r.items() if k != "output"} for r in results],
        "rss_growth_mb_from_tenth_to_full": growth,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["rss_growth_mb_from_tenth_to_full"]))


if __name__ == "__main__":
    main()
