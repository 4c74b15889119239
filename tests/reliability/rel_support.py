"""Shared by the reliability suite: the manifest tree every scenario applies (the examples
plus a generated dataset big enough for several upload batches), a server with many
organisations (a fresh one per scenario, no restart), running the CLI in-process or as a
killable subprocess, and the convergence check (the server's state equals the manifests).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from click.testing import CliRunner

from hlops import canonical
from support.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "projects"
EXAMPLE_NAMES = ("sentiment", "entities", "multilabel", "two-datasets")
FULL = os.environ.get("HLOPS_RELIABILITY_FULL", "") not in ("", "0")  # the bigger runs
BULK_ROWS = 25_000  # > 2 x 10,000: three PUT batches
BULK_NAME = "reliability-bulk"
# R6's canaries: an API key, the text of every datapoint, every datapoint's key
TOKEN = secrets.token_hex(6)
CANARY_KEY = f"hlk_CANARYKEY_{TOKEN}"
BAD_KEY = f"hlk_CANARYBAD_{TOKEN}"  # an API key no server knows
CANARY_TEXT = f"CanaryText{TOKEN}"
CANARY_ID = f"CanaryId{TOKEN}"
LABELS = ("red", "green", "blue", "amber")
WORDS = ("alpha", "bravo", "delta", "echo", "kilo", "lima", "oscar", "tango", "zulu", "étoile", "naïve")


# --------------------------------------------------------------------------- the tree


READ_POSTS = ("/digest/rows", "/digest/keys")  # POST paths that only read (docs/api.md): not writes


def is_write(method: str, path: str) -> bool:
    """Whether a call on the wire may change the server's state."""
    return method != "GET" and not (method == "POST" and path.endswith(READ_POSTS))


def write_bulk(directory: Path, rows: int = BULK_ROWS, seed: int = 7, name: str = BULK_NAME) -> Path:
    """A dataset of ``rows`` generated rows keyed by ``uid`` (three upload batches at the
    default 25,000), and a project reading it."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with (directory / "rows.jsonl").open("w", encoding="utf-8") as f:
        for i in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            f.write(json.dumps({"uid": f"u{i:06d}", "text": f"{text} #{i}", "colour": rng.choice(LABELS)},
                               ensure_ascii=False) + "\n")
    (directory / "bulk.yaml").write_text(
        f"kind: Dataset\nname: {name}\ndescription: generated rows for the reliability suite\n"
        "key: uid\nfields:\n  uid: text\n  text: text\n  colour: categorical\ndata: rows.jsonl\n"
        "---\n"
        f"kind: Project\nname: {name} colours\n"
        f"inputs:\n  text: {{from: {name}.text}}\n"
        f"outputs:\n  colour: {{task_type: classification, from: {name}.colour}}\n"
        "users: [bulk@example.com]\n",
        encoding="utf-8",
    )
    return directory


def write_keyless(directory: Path, rows: int = 300, seed: int = 8, name: str = "reliability-notes") -> Path:
    """A small dataset without a key: its datapoints are identified by their hash, so a
    batch applied twice shows up as duplicates (a keyed dataset would answer 409)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with (directory / "notes.jsonl").open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"note": f"note {i} {rng.choice(WORDS)}", "tag": rng.choice(LABELS)}) + "\n")
    (directory / "notes.yaml").write_text(
        f"kind: Dataset\nname: {name}\ndescription: keyless\n"
        "fields:\n  note: text\n  tag: categorical\ndata: notes.jsonl\n",
        encoding="utf-8",
    )
    return directory


def make_examples(root: Path) -> list[Path]:
    """The examples copied under ``root``, and the keyless dataset; the paths an apply is
    given."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in EXAMPLE_NAMES:
        shutil.copytree(EXAMPLES / name, root / name, dirs_exist_ok=True)
        paths.append(root / name)
    return paths + [write_keyless(root / "notes")]


def make_tree(root: Path, bulk_rows: int = BULK_ROWS) -> list[Path]:
    """The examples, the keyless dataset and the generated big one under ``root``."""
    return make_examples(root) + [write_bulk(root / "bulk", bulk_rows)]


def write_leaky(root: Path, rows: int = 120, broken: str | None = None) -> Path:
    """R6's tree: canaries in every datapoint's text and key (``broken``: one row invalid,
    with a canary in the invalid part)."""
    root.mkdir(parents=True, exist_ok=True)
    data = [{"uid": f"{CANARY_ID}-{i}", "text": f"message {i}: {CANARY_TEXT} says hello", "mood": ("up", "down")[i % 2],
             "spans": [{"start": 0, "end": 7, "label": "WORD"}]} for i in range(rows)]
    if broken == "unknown field":
        data[5]["secret_field"] = CANARY_TEXT
    elif broken == "wrong type":
        data[7]["mood"] = [CANARY_TEXT, CANARY_TEXT]
    elif broken == "duplicate key":
        data[9]["uid"] = data[3]["uid"]
    elif broken == "span out of range":
        data[4]["spans"] = [{"start": 2, "end": 9999, "label": CANARY_TEXT}]
    with (root / "rows.jsonl").open("w") as f:
        for row in data:
            f.write(json.dumps(row) + "\n")
    (root / "leaky.yaml").write_text(
        "kind: Dataset\nname: leaky\nkey: uid\nfields:\n  uid: text\n  text: text\n  mood: categorical\n"
        "  spans: character_offsets\ndata: rows.jsonl\n---\n"
        "kind: Project\nname: leaky project\ninputs:\n  text: leaky.text\n"
        "outputs:\n  mood: {task_type: classification, from: leaky.mood}\n"
        "  spans: {task_type: sequence_tagging, input: text, from: leaky.spans}\n"
        "users: [leak@example.com]\nreview_existing_annotations: false\n")
    return root


# --------------------------------------------------------------------------- servers


def org_server(directory: Path, orgs: int = 2, **knobs) -> ServerProcess:
    """A started ServerProcess whose keys file declares ``orgs`` organisations; their keys
    are ``srv.org_keys`` (``[0]`` is ``srv.api_key``, ``[1]`` ``srv.other_key``).
    ``db_url=`` runs it on that PostgreSQL database."""
    srv = ServerProcess(directory, start=False, **knobs)
    keys = [srv.api_key, srv.other_key] + ["hlk_r_" + secrets.token_hex(16) for _ in range(max(0, orgs - 2))]
    srv.keys_file.write_text("".join(f"{k} org-{i}\n" for i, k in enumerate(keys)))
    srv.org_keys = keys
    srv.start()
    return srv


@dataclass
class Org:
    """One organisation of a server: its key, and calls made as it (never through the proxy)."""

    url: str
    key: str

    def get(self, path: str, **params) -> dict:
        r = requests.get(self.url + path, params=params, headers={"X-API-KEY": self.key}, timeout=60)
        r.raise_for_status()
        return r.json()

    def call(self, method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url + path, headers={"X-API-KEY": self.key, **(headers or {})},
                                timeout=60, **kw)

    def all(self, path: str, limit: int = 1000, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            q = {"limit": limit, **params}
            if cursor:
                q["cursor"] = cursor
            page = self.get(path, **q)
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


# --------------------------------------------------------------------------- running hlops


def cli_env(url: str, key: str, home: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HLOPS_")}
    env.update({"HLOPS_BASE_URL": url, "HLOPS_API_KEY": key, "HLOPS_HOME": str(home),
                "NO_COLOR": "1", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env.update(extra or {})
    return env


def spawn(args: list[str], url: str, key: str, home: Path, cwd: Path, log: Path) -> subprocess.Popen:
    """``hlops ARGS`` in a subprocess (to be killed); its output goes to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "hlops", *args], cwd=cwd, env=cli_env(url, key, home),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


def run_inprocess(args: list[str], url: str, key: str, home: Path, cwd: Path, env: dict | None = None) -> Run:
    """``hlops ARGS`` through click's runner in this process (no interpreter start-up)."""
    from hlops.cli import main

    environ = {"HLOPS_BASE_URL": url, "HLOPS_API_KEY": key, "HLOPS_HOME": str(home), "NO_COLOR": "1",
               "HLOPS_DEBUG": None, **(env or {})}
    with chdir(cwd):
        result = CliRunner().invoke(main, args, env=environ, catch_exceptions=True)
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        err += "".join(traceback.format_exception(result.exception))
    return Run(result.exit_code, result.stdout, err)


@contextmanager
def chdir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- convergence


def expected_state(paths: list[Path]) -> dict:
    """What the manifests declare: dataset name -> Counter of (key, hash) of its rows,
    and the project names. Rows are read with the loader and hashed with hlops.canonical
    (the server stores the same hash)."""
    from hlops.api import load
    from hlops.datafile import iter_normalised

    config = load(paths)
    datasets = {}
    for name, ds in config.datasets.items():
        rows: Counter = Counter()
        for _line, row in iter_normalised(config, name):
            h = canonical.row_hash(row)
            rows[(canonical.key_text(row, ds.key, h), h)] += 1
        datasets[name] = rows
    return {"datasets": datasets, "projects": set(config.projects)}


def state_problems(org: Org, expected: dict) -> list[str]:
    """Every way the organisation's state differs from ``expected``: missing, extra or
    duplicated resources, missing, extra or duplicated datapoints."""
    problems = []
    for kind, want in (("datasets", set(expected["datasets"])), ("projects", expected["projects"])):
        names = Counter(item["name"] for item in org.all(f"/{kind}"))
        dups = sorted(n for n, c in names.items() if c > 1)
        if dups:
            problems.append(f"duplicate {kind}: {dups}")
        if set(names) != want:
            problems.append(f"{kind}: missing {sorted(want - set(names))}, extra {sorted(set(names) - want)}")
    by_name = {d["name"]: d for d in org.all("/datasets")}
    for name, rows in expected["datasets"].items():
        ds = by_name.get(name)
        if ds is None:
            continue
        got = Counter((r["key"], r["hash"]) for r in org.all(f"/datasets/{ds['id']}/digest", limit=10_000))
        if ds["datapoint_count"] != sum(rows.values()):
            problems.append(f"{name}: {ds['datapoint_count']} datapoints, the data file has {sum(rows.values())}")
        if got != rows:
            missing, extra = rows - got, got - rows
            dup = sum(c - 1 for c in got.values() if c > 1)
            problems.append(f"{name}: {sum(missing.values())} missing, {sum(extra.values())} extra, {dup} duplicated datapoints")
    return problems
