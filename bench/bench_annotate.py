"""Benchmark of the annotation web app's queue, against the API calls it stands on, in one run.

A classification project over N datapoints (``review_existing_annotations: true``), ten
annotated through the API and a model trained (``POST /_test/train``); then, signed in:

(a) **Ranking**: the first pick after a new model version (a skip, then the next page) scores the first
    10,000 datapoints still needing labels (``hlops/server/web/queue.py``). Timed against
    ``POST /projects/{id}/predict`` of the same 10,000 texts (the model's own work for that
    many rows, plus JSON) -- alternating, each page load after a retrain. Goal: the page
    within 2x of that predict.
(b) **Labelling loop**: post the form, follow to the next page (a pick, a lease, a
    suggestion from the model), K times; against ``POST /projects/{id}/annotations`` of
    the same datapoints with the API key. Reported per annotation, with the ratio.

    .venv/bin/python bench/bench_annotate.py --rows 20000

Results go to ``bench/results/annotate.json`` (ratios, absolute figures, command, date, machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "web")]

from support.server import ServerProcess  # noqa: E402
from web_helpers import csrf_of, shown_datapoint  # noqa: E402

WORDS = (
    "the quick brown fox jumps over a lazy dog please refund this item I love it so much "
    "sound quality of these headphones was disappointing camera battery delivery late great"
).split()
SCORED = 10_000


def setup(srv: ServerProcess, n: int) -> tuple[int, list[int]]:
    rnd = random.Random(3)
    rows = [{"text": " ".join(rnd.choices(WORDS, k=12)), "label": rnd.choice(["pos", "neg", "meh"])} for _ in range(n)]
    r = srv.call("POST", "/datasets", json={"name": "bench", "fields": [{"name": "text", "data_type": "text"},
                                                                      {"name": "label", "data_type": "categorical"}]})
    ds = r.json()
    ids: list[int] = []
    for i in range(0, n, 10_000):
        ids += srv.call("PUT", f"/datasets/{ds['id']}", json={"data": rows[i:i + 10_000]}).json()["datapoint_ids"]
    fields = {f["name"]: f["id"] for f in ds["fields"]}
    p = srv.call("POST", "/projects", json={
        "name": "bench", "review_existing_annotations": True,
        "inputs": [{"name": "text", "data_type": "text", "data_sources": [{"field_id": fields["text"]}]}],
        "outputs": [{"name": "label", "task_type": "classification", "data_sources": [{"field_id": fields["label"]}]}],
        "users": [{"email": "bench@example.com", "role": "owner"}],
    }).json()
    for dp, row in zip(ids[:10], rows[:10]):
        srv.call("POST", f"/projects/{p['id']}/annotations", json={"datapoint_id": dp, "output": "label", "value": row["label"]})
    srv.call("POST", "/_test/train", params={"timeout": 300})
    return p["id"], ids


def sign_in(srv: ServerProcess) -> requests.Session:
    token = srv.call("POST", "/users/tokens", json={"email": "bench@example.com"}).json()["token"]
    s = requests.Session()
    page = s.get(srv.url + "/app/sign-in")
    s.post(srv.url + "/app/sign-in", data={"csrf": csrf_of(page.text), "token": token})
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3, help="retrains timed for (a)")
    ap.add_argument("--loop", type=int, default=30, help="annotations timed for (b)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "annotate.json")
    args = ap.parse_args()
    n = args.rows
    with ServerProcess() as srv:
        pid, ids = setup(srv, n)
        texts = [dp["data"]["text"] for dp in srv.call(
            "GET", f"/datasets/{srv.call('GET', '/datasets').json()['items'][0]['id']}/datapoints",
            params={"limit": 10_000}).json()["items"]][:SCORED]
        s = sign_in(srv)
        page_s, predict_s = [], []
        page = s.get(f"{srv.url}/app/projects/{pid}")  # leases one datapoint (dataset order or ranked)
        for round_ in range(args.rounds):
            # a new model version: annotate one more through the API, retrain
            srv.call("POST", f"/projects/{pid}/annotations",
                     json={"datapoint_id": ids[10 + round_], "output": "label", "value": "pos"})
            srv.call("POST", "/_test/train", params={"timeout": 300})
            t = time.perf_counter()  # skip the leased one: the next page picks (and ranks) again
            page = s.post(f"{srv.url}/app/projects/{pid}/skip",
                          data={"csrf": csrf_of(page.text), "datapoint_id": shown_datapoint(page.text)})
            page_s.append(time.perf_counter() - t)
            assert shown_datapoint(page.text) is not None and "least confident first" in page.text
            t = time.perf_counter()
            r = srv.call("POST", f"/projects/{pid}/predict", json={"data": [{"text": x} for x in texts]})
            predict_s.append(time.perf_counter() - t)
            assert r.status_code == 200

        loop_s = []
        page = s.get(f"{srv.url}/app/projects/{pid}")
        for _ in range(args.loop):
            dp = shown_datapoint(page.text)
            t = time.perf_counter()
            page = s.post(f"{srv.url}/app/projects/{pid}/annotate",
                          data={"csrf": csrf_of(page.text), "datapoint_id": dp, "o:label": "pos"})
            loop_s.append(time.perf_counter() - t)
            assert page.status_code == 200 and shown_datapoint(page.text) != dp
        api_s = []
        for dp in ids[-args.loop:]:
            t = time.perf_counter()
            r = srv.call("POST", f"/projects/{pid}/annotations", json={"datapoint_id": dp, "output": "label", "value": "neg"})
            api_s.append(time.perf_counter() - t)
            assert r.status_code == 200

    page_med, predict_med = statistics.median(page_s), statistics.median(predict_s)
    loop_med, api_med = statistics.median(loop_s), statistics.median(api_s)
    result = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "rows": n,
        "ranking": {
            "scored": min(SCORED, n),
            "first_page_after_retrain_s": round(page_med, 3),
            "first_page_runs_s": [round(x, 3) for x in page_s],
            "predict_same_texts_s": round(predict_med, 3),
            "predict_runs_s": [round(x, 3) for x in predict_s],
            "ratio_page_vs_predict": round(page_med / predict_med, 3),
            "goal": "<= 2 (page vs predict)",
        },
        "labelling_loop": {
            "annotations": args.loop,
            "form_post_and_next_page_ms": round(loop_med * 1000, 1),
            "api_annotate_ms": round(api_med * 1000, 1),
            "ratio_vs_api": round(loop_med / api_med, 2),
            "note": "median per annotation; a retrain in the background makes the next page rank again",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
