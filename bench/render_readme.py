"""Rewrite the table of README.md's "Measured" section from bench/results/*.json.

    .venv/bin/python bench/render_readme.py           # rewrite the marked block
    .venv/bin/python bench/render_readme.py --check   # exit 1 when README is not up to date

The block sits between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``; nothing in it
is typed by hand: each row is read from one results file (a file that is missing leaves its
rows out). The wire rows (bench/bench_wire.py, issue 14) come first, then the figures of
bench_datapoints.py, bench_validate.py, bench_server.py and bench_quality.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"
BEGIN, END = "<!-- bench:begin (bench/render_readme.py writes this table from bench/results/) -->", "<!-- bench:end -->"


def load(name: str) -> dict | None:
    try:
        return json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def yes(met: bool | None) -> str:
    return "" if met is None else (" **yes**" if met else " **not yet**")


def wire_rows(w: dict) -> list[str]:
    n, rows = w["rows"], []
    size = f"{n:,} rows ({w['file_bytes'] / 1e6:.0f} MB JSONL)"
    when = f"`bench_wire.py`, {w['date'][:10]}, load {w['machine']['loadavg_before'][0]}"
    if "apply" in w:
        a = w["apply"]
        rows.append(f"| first `hlops apply` of {size} vs. a loop of 10k-row PUTs ({when}) | "
                    f"{a['ratio_throughput']}× its throughput ({a['seconds']['hlops']} s vs. {a['seconds']['baseline']} s; "
                    f"{a['hlops'][0]['calls']} calls) | ≥ 1.0×{yes(a['met'])} |")
    if "plan" in w:
        p = w["plan"]
        rows.append(f"| `hlops plan` after 1% of {n:,} rows changed vs. a bare paginated download | "
                    f"{p['ratio_time']}× ({p['seconds']['hlops']} s vs. {p['seconds']['baseline']} s; "
                    f"{p['hlops'][0]['calls']} calls vs. {p['baseline'][0]['calls']}) | ≤ 0.3×{yes(p['met'])} |")
    if "noop" in w:
        o = w["noop"]
        r = o["resources"]
        rows.append(f"| no-op `hlops plan`, {r['datasets']} datasets + {r['projects']} projects vs. an Ansible `uri` playbook | "
                    f"{o['ratio_time']}× ({o['seconds']['hlops']} s vs. {o['seconds']['baseline']} s; "
                    f"{o['calls']['hlops']} calls vs. {o['calls']['baseline']}; list pages: {o['calls']['list_pages']}) | "
                    f"≤ 0.1×, calls = list pages{yes(o['met'] and o['calls']['hlops'] <= o['calls']['list_pages'])} |")
    if "local" in w:
        lp = w["local"]
        s = lp["seconds"]
        rows.append(f"| local pass of a changed {n:,}-row file (`hlops plan`, remote already equal) vs. the orjson floor | "
                    f"{lp['ratio_cpu']}× in CPU seconds ({s['hlops_cpu']} s), {lp['ratio_time']}× in wall time "
                    f"({s['hlops']} s vs. {s['baseline']} s on one core; start-up alone {s['validate_no_data']} s) | "
                    f"≤ 1.5× per core{yes(lp['met'])} |")
    rss = w.get("rss", {})
    if "max_tree_peak_rss_mb" in rss:
        parts = [f"{k} {v['tree_peak_rss_mb']:.0f}" + (f" ({v['at_tenth_rows']['tree_peak_rss_mb']:.0f} at {n // 10:,})"
                                                       if "at_tenth_rows" in v else "")
                 for k, v in rss.items() if isinstance(v, dict)]
        rows.append(f"| peak RSS of those CLI runs (process tree), MB | {', '.join(parts)} | "
                    f"≤ {rss['goal_mb']} MB, flat in rows{yes(rss.get('met'))} |")
    return rows


def datapoint_rows(d: dict) -> list[str]:
    runs = d.get("runs", {})
    if not runs:
        return []
    n = max(runs, key=int)
    r, rows = runs[n], []
    label = f"{int(n):,}"
    if "p1_ratio_cold" in r:
        rows.append(f"| no-op plan of {label} rows vs. a bare paginated download (`bench_datapoints.py`) | "
                    f"{r.get('p1_ratio_cold_last_applied', '–')}× on a fresh clone (the last-applied record); "
                    f"{r['p1_ratio_warm']}× with the summary cache; {r['p1_ratio_cold']}× with neither | ≤ 0.3× |")
    if "p2_ratio_apply_throughput" in r:
        rows.append(f"| first apply of {label} rows vs. a loop of 10k-row PUTs (inner functions) | "
                    f"{r['p2_ratio_apply_throughput']}× its throughput | ≥ 0.9× |")
    if "p3_ratio_bytes" in r:
        rows.append(f"| re-apply after changing 1% of {label} rows | {r['p3_ratio_bytes']}× the changed rows' JSON sent | ≤ 1.2× |")
    rss = r.get("peak_rss_mb", {})
    if {"plan_cold", "first_apply_process"} <= rss.keys():
        rows.append(f"| peak RSS of plan / apply at {label} rows (inner functions) | {rss['plan_cold']:.0f} MB "
                    f"(+{rss.get('plan_cold_workers', 0):.0f} MB per worker of the split pass) / {rss['first_apply_process']:.0f} MB"
                    + (f" ({rss['reapply_1pct_process']:.0f} MB for the 1% re-apply)" if "reapply_1pct_process" in rss else "")
                    + " | ≤ 300 MB, flat in rows |")
    return rows


def validate_rows(v: dict) -> list[str]:
    big = [r for r in v.get("runs", []) if r.get("format") == "jsonl"]
    if not big:
        return []
    r = max(big, key=lambda r: r["rows"])
    small = min(big, key=lambda r: r["rows"])
    return [f"| `hlops validate` of {r['rows']:,} rows (`bench_validate.py`) | {r['peak_rss_mb']:.0f} MB peak RSS "
            f"({small['peak_rss_mb']:.0f} MB at {small['rows']:,}) | flat in rows |"]


def server_rows(s: dict) -> list[str]:
    return [f"| server ingest vs. bare SQLite inserts into the same tables (`bench_server.py`, {s['rows']:,} rows) | "
            f"{s['ingest']['ratio_vs_same_ddl']}× | ≥ 0.5× |"]


def quality_rows(q: dict) -> list[str]:
    rows = []
    c, t = q.get("classification"), q.get("sequence_tagging")
    if c:
        rows.append(f"| sentiment classifier, held-out rows (`bench_quality.py`) | accuracy {c['model']['accuracy']:.2f} "
                    f"vs. {c['majority_baseline']['accuracy']:.2f} majority class | clearly above |")
    if t:
        m, b = t["model"], t["dictionary_baseline"]
        rows.append(f"| entity tagger, held-out rows | span F1 {m['span_f1']:.2f} vs. {b['span_f1']:.2f} exact-match "
                    f"dictionary ({m['unseen_recall']:.2f} recall on unseen entities) | above |")
    return rows


def labelstudio_rows(ls: dict) -> list[str]:
    """The largest run of ``bench_labelstudio.py`` that measured hlops (keys: task counts)."""
    runs = [(int(n), r) for n, r in ls.items() if n.isdigit() and "hlops" in r]
    if not runs:
        return []
    n, r = max(runs, key=lambda nr: nr[0])
    h, sdk, ratio = r["hlops"], r["sdk"], r["ratios"]
    when = f"`bench_labelstudio.py`, {r['when'][:10]}"
    apply_ratio, noop_ratio = ratio["hlops_apply_vs_sdk_import"], ratio["hlops_noop_plan_vs_sdk_read"]
    return [
        f"| Label Studio: first `hlops apply` of {n:,} tasks vs. a `label-studio-sdk` import loop ({when}) | "
        f"{apply_ratio:.2f}× its throughput ({h['apply_s']:.1f} s vs. {sdk['import_s']:.1f} s) | ≥ 1.0×{yes(apply_ratio >= 1.0)} |",
        f"| Label Studio: no-op `hlops plan` of {n:,} tasks vs. the SDK reading every task | "
        f"{noop_ratio:.3f}× ({h['noop_plan_s']:.2f} s vs. {sdk['read_s']:.1f} s) | ≤ 0.3×{yes(noop_ratio <= 0.3)} |",
    ]


def table() -> str:
    rows = ["| what | figure | goal |", "|---|---|---|"]
    for name, fn in (("wire", wire_rows), ("datapoints", datapoint_rows), ("validate", validate_rows),
                     ("server", server_rows), ("quality", quality_rows),
                     ("labelstudio", labelstudio_rows)):
        data = load(name)
        if data is not None:
            rows += fn(data)
    return "\n".join([BEGIN, *rows, END])


def render(text: str) -> str:
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + table() + rest.split(END, 1)[1]
    raise SystemExit(f"README.md has no block between {BEGIN!r} and {END!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only say whether README.md is up to date")
    args = ap.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        print("README.md is up to date" if new == text else "README.md's table is not the results' (run bench/render_readme.py)")
        return 0 if new == text else 1
    README.write_text(new)
    print("rewrote README.md's table from bench/results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
