"""Run the reliability and security suite (issue 7) and publish its figures.

    .venv/bin/python bench/reliability.py            # the default, bounded run (~4-6 min on 2 cores)
    .venv/bin/python bench/reliability.py --full     # the bigger runs (HLOPS_RELIABILITY_FULL=1)
    .venv/bin/python bench/reliability.py --render   # only re-render docs/reliability.md from the JSON

The default run's results go to ``bench/results/reliability.json``, the full run's to
``bench/results/reliability-full.json``; the page shows both tables when both exist.

It runs ``pytest tests/reliability`` plus the ``tests/server`` modules the suite builds on
(schemathesis, protocol, isolation, durability) with the ``rel_plugin`` plugin; the tests
themselves write one JSON line per figure (the ``record`` fixture) and the plugin one per
outcome, into a temporary file named by ``HLOPS_RELIABILITY_RECORD``. This script folds
those lines into ``bench/results/reliability.json`` and renders the table of
``docs/reliability.md`` from it: nothing in the table is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "reliability.json"
RESULTS_FULL = REPO / "bench" / "results" / "reliability-full.json"  # --full
DOC = REPO / "docs" / "reliability.md"
# the tests/server modules the suite builds on (R4, R5, R8), found by how their names end
SERVER_MODULES = sorted(str(p.relative_to(REPO)) for end in ("schemathesis", "protocol", "isolation", "durability")
                        for p in (REPO / "tests" / "server").glob(f"test_*{end}.py"))

ITEMS = {
    "R1": ("Crash at every call", "SIGKILL the apply right after call k, for every k; apply again: plan clean, no duplicate resource, no missing or duplicate datapoint"),
    "R2": ("Storms", "20% injected 503/429 (Retry-After), also lost answers (fault after commit): apply converges, calls <= 1.5x fault-free, no unsafe retry (proved from the wire log)"),
    "R3": ("Bad input", "generated invalid manifests and data files, bad flags, missing files: exit 1, a located message, no traceback, no API call"),
    "R4": ("Server robustness", "schemathesis over /openapi.json; hostile bodies, queries, ids, headers: 4xx, never 5xx, no schema violation"),
    "R5": ("Isolation", "every id operation with another organisation's key and ids: 404 like a missing id; no listing shows another organisation's names"),
    "R6": ("Leaks", "canary API key, datapoint text and keys through success and failure paths: absent from every output, file, saved plan, log and exception"),
    "R7": ("Stale plans", "a saved plan whose resources changed since (eleven kinds of change): refused, nothing written"),
    "R8": ("Durability", "the server SIGKILLed during an apply's upload: no acknowledged row lost, none twice; the next apply completes the rest"),
}


def run_suite(full: bool, extra: list[str]) -> tuple[list[dict], dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
        record = Path(tmp.name)
    env = dict(os.environ, HLOPS_RELIABILITY_RECORD=str(record))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests" / "reliability"), str(REPO), env.get("PYTHONPATH", "")])
    if full:
        env["HLOPS_RELIABILITY_FULL"] = "1"
    cmd = [sys.executable, "-m", "pytest", "tests/reliability", *SERVER_MODULES, "-p", "rel_plugin",
           "-p", "no:cacheprovider", "-q", "-n", "0", "--timeout", "1800" if full else "600", *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    seconds = time.monotonic() - started
    lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    record.unlink()
    return lines, {"pytest_exit": proc.returncode, "seconds": round(seconds, 1),
                   "command": " ".join(["python", "-m", "pytest", *cmd[3:]])}


def fold(lines: list[dict]) -> dict:
    """Per item: tests passed/failed, cases tried/passed, and the raw figures."""
    items: dict[str, dict] = {k: {"tests": 0, "tests_passed": 0, "cases": 0, "passed": 0, "figures": [],
                                  "server_tests": 0, "server_tests_passed": 0, "server_stats": []} for k in ITEMS}
    for line in lines:
        it = items.get(line.get("item"))
        if it is None:
            continue
        kind = line.get("kind")
        if kind == "outcome":
            if line["outcome"] == "skipped":
                it["skipped"] = it.get("skipped", 0) + 1
                continue
            server = line["test"].startswith("tests/server/")
            it["server_tests" if server else "tests"] += 1
            if line["outcome"] == "passed":
                it["server_tests_passed" if server else "tests_passed"] += 1
        elif kind == "server-stats":
            it["server_stats"].append(line)
        else:
            it["cases"] += line["cases"]
            it["passed"] += line["passed"]
            it["figures"].append({k: v for k, v in line.items() if k not in ("item", "time")})
    for it in items.values():
        it["server_requests"] = sum(s.get("requests") or 0 for s in it["server_stats"])
        it["server_errors"] = sum(s.get("server_errors") or 0 for s in it["server_stats"])
    return items


# --------------------------------------------------------------------------- key figures


def figures_r1(f: list[dict]) -> str:
    parts = []
    for x in f:
        if x.get("kill") == "random":
            parts.append(f"{x['cases']} random kills at parallelism {x.get('parallelism')} (of {x['calls']} calls)")
        else:
            parts.append(f"{x['tree']}: every k of {x['calls']} calls ({x['puts']} PUT batches), kill {x['kill']} the answer,"
                         f" rerun <= {x['rerun_calls_max']} calls")
    return "; ".join(parts)


def figures_r2(f: list[dict]) -> str:
    storms = [x for x in f if x.get("fault_free_calls")]
    lost = [x for x in f if x.get("scenario") == "lost create answers"]
    out = []
    for scenario in ("first apply", "change apply"):
        xs = [x for x in storms if x["scenario"] == scenario]
        if xs:
            out.append(f"{scenario}: {xs[0]['fault_free_calls']} calls fault-free, "
                       f"{min(x['calls'] for x in xs)}-{max(x['calls'] for x in xs)} in storms "
                       f"(ratio <= {max(x['ratio'] for x in xs):.2f}, {sum(x['faults'] for x in xs)} faults injected)")
    if lost:
        out.append(f"{len(lost)} scripted lost-answer sequences on a create")
    return "; ".join(out)


def figures_r3(f: list[dict]) -> str:
    by: dict[str, int] = defaultdict(int)
    for x in f:
        by[x.get("inputs", "?")] += x["cases"]
    return ", ".join(f"{n:,} {k}" for k, n in by.items())


def figures_r4(f: list[dict], it: dict) -> str:
    by: dict[str, int] = defaultdict(int)
    for x in f:
        by[x.get("requests", "?")] += x["cases"]
    parts = [f"{n:,} {k}" for k, n in by.items() if "server's count" not in k]
    if it["server_stats"]:
        parts.append(f"tests/server: {it['server_tests_passed']}/{it['server_tests']} tests, "
                     f"{it['server_requests']:,} requests (schemathesis included), {it['server_errors']} 5xx")
    return "; ".join(parts)


def figures_generic(key: str):
    def render(f: list[dict], it: dict | None = None) -> str:
        by: dict[str, list] = defaultdict(lambda: [0, 0])
        for x in f:
            by[str(x.get(key, "?"))][0] += x["cases"]
            by[str(x.get(key, "?"))][1] += x["passed"]
        text = "; ".join(f"{k}: {p}/{n}" for k, (n, p) in by.items())
        if it is not None and it["server_tests"]:
            text += f"; tests/server: {it['server_tests_passed']}/{it['server_tests']} tests"
        return text
    return render


def figures_r8(f: list[dict], it: dict) -> str:
    parts = [f"{x['scenario']} (parallelism {x['parallelism']}): {x['acked_rows']:,} rows in {x['acked_batches']} acknowledged "
             f"batches, {x['rows_after_restart']:,} after the restart" for x in f]
    if it["server_tests"]:
        parts.append(f"tests/server: {it['server_tests_passed']}/{it['server_tests']} tests")
    return "; ".join(parts)


def key_figures(name: str, it: dict) -> str:
    f = it["figures"]
    if name == "R1":
        return figures_r1(f)
    if name == "R2":
        return figures_r2(f)
    if name == "R3":
        return figures_r3(f)
    if name == "R4":
        return figures_r4(f, it)
    if name == "R5":
        return figures_generic("checks")(f, it)
    if name == "R6":
        runs = sum(x["runs"] for x in f if isinstance(x.get("runs"), int))
        files = sum(x.get("files", 0) for x in f)
        return f"{runs} CLI runs (stdout + stderr) and {files} files written grepped; Python API errors checked"
    if name == "R7":
        return figures_generic("change")(f)
    if name == "R8":
        return figures_r8(f, it)
    return ""


# --------------------------------------------------------------------------- the document

HEADER = """# Reliability and security: the figures

Users run hlops from CI against the only copy of their labelled data. The suite in
`tests/reliability/` (issue 7) proves, in every default `pytest` run, that a killed apply
converges on the next run, that storms of errors are weathered without an unsafe retry,
that bad input changes nothing, and that nothing leaks. This page is **generated** by
`bench/reliability.py` from the suite's own results (`bench/results/reliability.json`);
do not edit it by hand.

Reproduce:

```
.venv/bin/python bench/reliability.py          # default bounds (what `pytest` runs)
.venv/bin/python bench/reliability.py --full   # bigger runs (HLOPS_RELIABILITY_FULL=1)
```
"""

HOW = """
## How each item is tested

- **R1** (`test_r1_crash.py`): a loopback proxy (`killing_proxy.py`) in front of the
  reference server counts the answers; armed with k it relays answer k, SIGKILLs the apply
  and forwards nothing more, so with `--parallelism 1` the server has seen exactly k calls.
  Every k from 1 to the number of calls of a fault-free apply is tried in an organisation
  of its own, then apply runs again, `plan` must exit 0, and every dataset's rows (key and
  hash, from the digest) must equal the data files'. The killed applies are children forked
  from a pre-imported hlops (`zygote.py`: real processes, real SIGKILL, no interpreter
  start-up per k); a few random kills hit a plain `python -m hlops` with default parallelism.
- **R2** (`test_r2_storms.py`): the server's seeded fault injector answers 20% of the calls
  503 or 429 (with `Retry-After`), before or after doing the work (a lost answer). The
  proxy's wire log (method, path, query, Idempotency-Key, body digest, status, replayed)
  proves that a named create sent again carries the same key (replayed by the server) or
  follows a lookup by name that answered after the previous attempt and did not list it;
  that no key is processed twice and no write is re-sent under a new key. Calls must stay
  within 1.5x the fault-free count; when the random draw injected more than 20% of the calls
  (it happens: one seed of the full run drew 31%), no fault may cost more than two calls.
- **R3** (`test_r3_bad_input.py`): hypothesis mutations that make the input invalid by
  construction (required key removed, unknown key, uncoercible value, dangling reference,
  duplicate name or key, missing file, YAML/JSON that cannot parse, spans out of range,
  invalid UTF-8...); each run of `plan`/`apply` against a live server must exit 1 with a
  problem located in the broken file and leave the server's request count unchanged.
  Data files of 8 MB and more are the one exception to "no API call": they are checked
  right after the remote's listing (read-only GETs), so that a file whose bytes its
  dataset's last-applied record vouches for is not read again; a broken one is still
  reported, located, before any write.
- **R4** (`test_r4_server.py`, plus `tests/server/`'s schemathesis run over every operation of
  `/openapi.json` with valid and invalid data, and its protocol tests: malformed JSON, wrong
  content types, body limits).
- **R5** (`test_r5_isolation.py` + `tests/server/`'s isolation tests): the operations come
  from `/openapi.json`, so a new route is covered the day it exists.
- **R6** (`test_r6_leaks.py`): canaries (an API key, a string in every datapoint's text,
  one in every key) through plan/apply/destroy, saved plans, markdown, JSON, a 401, invalid
  data (with `HLOPS_DEBUG=1`), a 422 and a raced 409 mid-upload, a stale plan, a transport
  error; then every stdout/stderr, every file written (`.hlops/` included) and the server's
  logs are grepped.
- **R7** (`test_r7_stale_plans.py`), **R8** (`test_r8_durability.py` +
  `tests/server/`'s durability test).

Mutation checks (by hand, on a copy of the repository): the R1 sweep fails when apply
skips the datapoints of a dataset that already exists; R2 fails when a create is re-sent
without the lookup; R6 fails when the client puts the key in a 401 message; R3 and R7 failed
before the fixes below. A test that cannot fail would be a defect.

## Found by the suite, and fixed

- `hlops/apply.py`: a create whose answer was lost was looked up and re-sent once; a second
  lost answer failed the apply (R2 storms). Now looked up and re-sent as often as the client
  retries (`test_a_create_with_lost_answers_is_looked_up_each_time`).
- `hlops/api.py`: a saved plan that replaces a project was applied although annotations had
  been added since (they do not move the project's version): `apply plan.json
  --allow-data-loss` destroyed annotations the reviewed plan never showed. The plan's data
  loss is now part of what must not change (R7, `annotations added to a project the plan
  replaces`).
- `hlops/cli/`: `--target` with a malformed address cost two API calls before failing, and
  an unwritable `plan -o` path was an internal error after planning; both are now usage
  errors before any call (R3, `test_bad_flags_and_missing_files`).
- `hlops/server/`: unknown and repeated query parameters were accepted and ignored (a typo
  like `?limt=5` silently listed the default page); they are now a located 422. schemathesis's
  negative cases found it, only when another module ran first (R4, `tests/server`).
- `hlops/client.py`: an unreachable server cost ~34 s of connection retries (8, with
  back-off) before the error; now 2 until the server has first answered (~1 s), the full
  budget after (a server restarting under an apply is still waited for: R8,
  `tests/e2e/test_client_reach.py`).
- `tests/server/test_server_schemathesis.py`: a generated garbage `Transfer-Encoding` header is
  answered by uvicorn's HTTP parser (plain-text 400) before the application sees it; such
  cases are set aside (framing headers cannot have a documented answer).

## Known and open

- A rerun started while the killed run's last create is still being processed by the server
  (milliseconds) can fail with 409 on that name; the run after it converges. R1 waits for the
  killed client's forwarded calls to finish before rerunning.
"""


def render(data: dict, full: dict | None = None) -> str:
    parts = [HEADER, "## The table (default bounds: every `pytest` run)", "", *table(data)]
    if full is not None:
        parts += ["", "## The table with `--full` (HLOPS_RELIABILITY_FULL=1)", "", *table(full)]
    parts += [HOW, *details(data)]
    return "\n".join(parts).rstrip() + "\n"


def table(data: dict) -> list[str]:
    items = data["items"]
    rows = ["| Item | What is checked | Cases tried | Passed | Tests (passed/run) | Key figures |",
            "|---|---|---:|---:|---:|---|"]
    for name, (title, what) in ITEMS.items():
        it = items[name]
        tests = f"{it['tests_passed']}/{it['tests']}" + (f" ({it['skipped']} skipped: full run)" if it.get("skipped") else "")
        if it["server_tests"]:
            tests += f" + {it['server_tests_passed']}/{it['server_tests']} (tests/server)"
        rows.append(f"| **{name}** {title} | {what} | {it['cases']:,} | {it['passed']:,} | {tests} | {key_figures(name, it)} |")
    meta = data["meta"]
    verdict = "all passed" if all(items[n]["cases"] == items[n]["passed"] and items[n]["tests"] == items[n]["tests_passed"]
                                  and items[n]["server_tests"] == items[n]["server_tests_passed"] for n in ITEMS) else "**FAILURES**"
    run = (f"Run of {meta['date']} at commit `{meta['commit']}` ({'full' if meta['full'] else 'default'} bounds, "
           f"{meta['seconds']:.0f} s on {meta['cpus']} cores, Python {meta['python']}): {verdict}; pytest exit {meta['pytest_exit']}.")
    failed = [r["test"] for r in data["records"] if r.get("kind") == "outcome" and r["outcome"] == "failed"]
    if failed:
        run += " Failed: " + ", ".join(f"`{t}`" for t in failed) + "."
    return [run, "", *rows]


def details(data: dict) -> list[str]:
    items = data["items"]
    details = ["", "## Details (default bounds)", ""]
    for name in ITEMS:
        f = items[name]["figures"]
        if not f:
            continue
        details.append(f"**{name}**")
        details.append("")
        for x in f:
            label = x.get("test", "").split("::", 1)[-1]
            extra = ", ".join(f"{k}={v}" for k, v in x.items() if k not in ("test", "cases", "passed", "full", "by_status"))
            details.append(f"- `{label}`: {x['passed']}/{x['cases']}" + (f" ({extra})" if extra else ""))
        details.append("")
    return details


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the bigger runs (HLOPS_RELIABILITY_FULL=1)")
    parser.add_argument("--render", action="store_true", help="only render docs/reliability.md from the JSON")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -x)")
    args = parser.parse_args()
    target = RESULTS_FULL if args.full else RESULTS
    if args.render:
        data = json.loads(target.read_text())
        data["items"] = fold(data["records"])
    else:
        lines, meta = run_suite(args.full, args.pytest_args)
        data = {
            "meta": {**meta, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
                     "full": args.full, "cpus": os.cpu_count(), "python": platform.python_version(),
                     "platform": platform.platform()},
            "items": fold(lines),
            "records": lines,
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
    default = json.loads(RESULTS.read_text()) if RESULTS.exists() else data
    default["items"] = fold(default["records"])
    full = None
    if RESULTS_FULL.exists():
        full = json.loads(RESULTS_FULL.read_text())
        full["items"] = fold(full["records"])
    DOC.write_text(render(default, full))
    items = data["items"]
    for name in ITEMS:
        it = items[name]
        print(f"{name}: {it['passed']:,}/{it['cases']:,} cases, tests {it['tests_passed']}/{it['tests']}"
              + (f" + {it['server_tests_passed']}/{it['server_tests']} (tests/server)" if it["server_tests"] else ""))
    print(f"wrote {target.relative_to(REPO)} and {DOC.relative_to(REPO)}")
    return 0 if args.render or data["meta"]["pytest_exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
