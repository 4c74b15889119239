"""R2 -- storms: with 20% of the calls answered 503 or 429 (with ``Retry-After``), apply
converges, makes at most 1.5x the calls of a fault-free apply, and retries nothing that was
not safe to retry (when a random draw injects more than 20%, the bound is that no fault
costs more than two calls).

The faults come from the reference server's seeded injector; with ``phase="after"`` the
server does the work and commits it, *then* answers the fault (a lost response). The loopback
proxy in front of it logs every call on the wire (method, path, query, Idempotency-Key,
body digest, status, ``Idempotency-Replayed``), and :func:`unsafe_retries` proves from that
log that:

- a named create (``POST /datasets``, ``POST /projects``) sent again is either the same
  request with the same Idempotency-Key (the server replays it) or comes after a lookup by
  name (``GET ...?name=``) that answered 200 *after* the previous attempt and did not list
  the name;
- every write carries an Idempotency-Key, a key is never used for two different requests,
  and no key was processed twice (at most one non-replayed 2xx per key);
- no other write was sent twice under different keys (a blind re-send).

Two applies are stormed: the first apply of the examples plus a 25,000-row dataset (creates
and three upload batches), and a change apply (rows added, changed and pruned, a keyless
dataset grown, descriptions edited: PATCHes and deletes).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from killing_proxy import Exchange, KillingProxy
from rel_support import FULL, Org, expected_state, is_write, make_tree, org_server, run_inprocess, state_problems
from support.cli import run_hlops

CREATES = ("/datasets", "/projects")
RATE = 0.2
BOUND = 1.5

# (phase, seed, Retry-After seconds): each storms a first apply, then (seed + 1000) a change
# apply of the same organisation
STORMS = [("before", 11, 1), ("after", 13, 0)]
if FULL:
    STORMS += [(phase, seed, seed % 2) for phase in ("before", "after") for seed in range(100, 108)]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("r2")
    srv = org_server(base / "server", orgs=8 + len(STORMS))
    proxy = KillingProxy(srv.url, keep_bodies=True)
    tree = make_tree(base / "a")
    changed = edit_tree(tree, base / "b")
    rig = {"base": base, "srv": srv, "proxy": proxy, "a": tree, "b": changed, "next": 2,
           "expected_a": expected_state(tree), "expected_b": expected_state(changed)}
    try:
        yield rig
    finally:
        proxy.close()
        srv.close()


def edit_tree(tree: list[Path], target: Path) -> list[Path]:
    """A copy of the tree with data added, changed and pruned, and descriptions edited."""
    src = tree[0].parent
    shutil.copytree(src, target)
    bulk = target / "bulk"
    rows = [json.loads(line) for line in (bulk / "rows.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = rows[200:]  # 200 removed
    for row in rows[:500]:
        row["colour"] = "violet"  # 500 changed
    rows += [{"uid": f"n{i:05d}", "text": f"new row {i}", "colour": "red"} for i in range(1000)]
    (bulk / "rows.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    text = (bulk / "bulk.yaml").read_text()
    text = text.replace("data: rows.jsonl\n", "data: rows.jsonl\nprune_data: true\n", 1)
    (bulk / "bulk.yaml").write_text(text.replace("generated rows for", "generated (and edited) rows for", 1))
    with (target / "notes" / "notes.jsonl").open("a") as f:
        for i in range(20):
            f.write(json.dumps({"note": f"late note {i}", "tag": "blue"}) + "\n")
    sentiment = target / "sentiment" / "project.yaml"
    sentiment.write_text(sentiment.read_text().replace("Is a support message", "Is this support message", 1))
    return [target / p.name for p in tree]


def fresh(rig) -> Org:
    i = rig["next"]
    rig["next"] += 1
    return Org(rig["srv"].url, rig["srv"].org_keys[i])


def quiet(rig) -> None:
    rig["srv"].set_faults(rate=0.0, fail_nth=[], phase="before", statuses=[503])


def storm(rig, phase: str, seed: int, retry_after: int) -> None:
    rig["srv"].reset_stats()
    rig["srv"].set_faults(rate=RATE, statuses=[503, 429], seed=seed, phase=phase, retry_after=retry_after)


def cli_apply(rig, org: Org, paths: list[Path], *extra: str):
    home = rig["base"] / f"home-{org.key[-6:]}"
    return run_hlops("apply", *map(str, paths), "--auto-approve", *extra, cwd=rig["base"],
                     env={"HLOPS_BASE_URL": rig["proxy"].url, "HLOPS_API_KEY": org.key, "HLOPS_HOME": str(home)})


def plan_code(rig, org: Org, paths: list[Path]) -> int:
    home = rig["base"] / f"home-{org.key[-6:]}"
    return run_inprocess(["plan", *map(str, paths)], rig["srv"].url, org.key, home, rig["base"]).code


def names_in(exchange: Exchange) -> set[str]:
    try:
        return {item["name"] for item in json.loads(exchange.response)["items"]}
    except (ValueError, KeyError, TypeError):
        return set()


def unsafe_retries(exchanges: list[Exchange]) -> list[str]:
    """Every retry in the log that was not safe (see the module docstring)."""
    problems = []
    xs = sorted(exchanges, key=lambda x: x.started)
    attempts: dict[tuple, list[Exchange]] = defaultdict(list)
    for x in xs:
        if x.method != "POST" or x.path not in CREATES:
            continue
        name = json.loads(x.body)["name"]
        prior = attempts[(x.path, name)]
        if prior and not any(p.idempotency_key == x.idempotency_key for p in prior):
            last = prior[-1]
            since = max(last.started, last.answered)
            lookups = [y for y in xs if y.method == "GET" and y.path == x.path and y.status == 200
                       and parse_qs(y.query).get("name") == [name] and y.started >= since and y.answered <= x.started]
            if not lookups:
                problems.append(f"POST {x.path} {name!r} sent again (new key) without a lookup by name")
            elif name in names_in(lookups[-1]):
                problems.append(f"POST {x.path} {name!r} sent again although the lookup found it")
        prior.append(x)
    by_key: dict[str | None, list[Exchange]] = defaultdict(list)
    by_request: dict[tuple, set] = defaultdict(set)
    for x in xs:
        if not is_write(x.method, x.path):
            continue
        by_key[x.idempotency_key].append(x)
        if not (x.method == "POST" and x.path in CREATES):
            by_request[(x.method, x.path, x.query, x.body_sha)].add(x.idempotency_key)
    for key, group in by_key.items():
        if key is None:
            problems += [f"{x.method} {x.path} sent without an Idempotency-Key" for x in group]
            continue
        if len({(g.method, g.path, g.query, g.body_sha) for g in group}) > 1:
            problems.append(f"Idempotency-Key {key} used for different requests")
        processed = [g for g in group if 200 <= g.status < 300 and not g.replayed]
        if len(processed) > 1:
            problems.append(f"{group[0].method} {group[0].path}: key {key} processed {len(processed)} times")
    for (method, path, _, _), keys in by_request.items():
        if len(keys) > 1:
            problems.append(f"{method} {path}: the same request sent under {len(keys)} keys (a blind re-send)")
    return problems


def fault_free_calls(rig) -> dict[str, int]:
    """Calls of a fault-free first apply of tree A, then of the change apply to tree B."""
    if "free" not in rig:
        quiet(rig)
        org = fresh(rig)
        counts = {}
        for scenario, paths, extra in (("first apply", rig["a"], ()), ("change apply", rig["b"], ("--allow-data-loss",))):
            rig["proxy"].reset()
            result = cli_apply(rig, org, paths, *extra)
            assert result.code == 0, result
            counts[scenario] = rig["proxy"].answers
        rig["free"] = counts
    return rig["free"]


def run_storm(rig, record, org: Org, scenario: str, paths, expected, phase, seed, retry_after, *extra) -> list[str]:
    """Apply ``paths`` as ``org`` under a storm; the problems found (empty: all good)."""
    free = fault_free_calls(rig)[scenario]
    proxy = rig["proxy"]
    proxy.reset()
    storm(rig, phase, seed, retry_after)
    result = cli_apply(rig, org, paths, *extra)
    stats = rig["srv"].stats()
    quiet(rig)
    log = proxy.calls(answered_only=False)
    calls = len(log)
    faults = sum(1 for x in log if b"injected fault" in x.response)
    problems = [] if result.code == 0 else [f"the stormed apply failed: {result}"]
    if calls != stats["total"]:
        problems.append(f"the proxy saw {calls} calls, the server counted {stats['total']}")
    # The bound is for a 20% storm. Faults are drawn at random, so a run can be hit harder
    # (seed 104 injected 15 faults in 48 calls, 31%): then the bound that must hold is that
    # the client does not amplify -- each fault costs at most two calls (the retry, and for a
    # create the lookup by name before it is sent again).
    if faults <= RATE * calls and calls > BOUND * free:
        problems.append(f"{calls} calls > {BOUND} x {free} (fault-free) in a storm of {faults / calls:.0%}")
    if calls - free > 2 * faults:
        problems.append(f"{calls - free} extra calls for {faults} faults: more than two calls a fault")
    if not faults:
        problems.append("no fault was injected: the storm did not blow")
    problems += unsafe_retries(log)
    problems += state_problems(org, expected)
    if plan_code(rig, org, paths) != 0:
        problems.append("plan after the storm shows changes")
    record("R2", cases=1, passed=int(not problems), scenario=scenario, phase=phase, seed=seed,
           retry_after=retry_after, calls=calls, fault_free_calls=free, faults=faults,
           ratio=round(calls / free, 3), fault_share=round(faults / calls, 3),
           create_faults=sum(1 for x in log if x.method == "POST" and x.path in CREATES and x.status >= 500))
    return [f"{scenario}: {p}" for p in problems]


@pytest.mark.parametrize("phase, seed, retry_after", STORMS)
def test_applies_weather_a_storm(rig, record, phase, seed, retry_after):
    """A first apply under a storm, then a change apply of the same organisation under
    another storm."""
    org = fresh(rig)
    problems = run_storm(rig, record, org, "first apply", rig["a"], rig["expected_a"], phase, seed, retry_after)
    if not problems:
        problems = run_storm(rig, record, org, "change apply", rig["b"], rig["expected_b"], phase, seed + 1000,
                             retry_after, "--allow-data-loss")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_blind_create():
    """unsafe_retries is not vacuous: a create re-sent under a new key with no lookup, a key
    processed twice, a write without a key are all reported."""
    body = json.dumps({"name": "x"}).encode()

    def ex(n, method, path, key, status, query="", replayed=False, response=b"", body=body):
        return Exchange(n, method, path, query, key, str(hash(body)), body, status, replayed, True, n, n + 0.5, response)

    blind = [ex(1, "POST", "/datasets", "k1", 503), ex(2, "POST", "/datasets", "k2", 201)]
    assert unsafe_retries(blind) == ["POST /datasets 'x' sent again (new key) without a lookup by name"]
    looked = [ex(1, "POST", "/datasets", "k1", 503),
              ex(2, "GET", "/datasets", None, 200, "limit=1000&name=x", response=b'{"items": []}'),
              ex(3, "POST", "/datasets", "k2", 201)]
    assert unsafe_retries(looked) == []
    found = looked[:1] + [ex(2, "GET", "/datasets", None, 200, "name=x", response=b'{"items": [{"name": "x"}]}'), looked[2]]
    assert unsafe_retries(found) == ["POST /datasets 'x' sent again although the lookup found it"]
    twice = [ex(1, "PUT", "/datasets/1", "k", 200), ex(2, "PUT", "/datasets/1", "k", 200)]
    assert unsafe_retries(twice) == ["PUT /datasets/1: key k processed 2 times"]
    assert unsafe_retries([ex(1, "PUT", "/datasets/1", "k", 200), ex(2, "PUT", "/datasets/1", "k", 200, replayed=True)]) == []
    resend = [ex(1, "PUT", "/datasets/1", "k", 503), ex(2, "PUT", "/datasets/1", "j", 200)]
    assert unsafe_retries(resend) == ["PUT /datasets/1: the same request sent under 2 keys (a blind re-send)"]
    assert unsafe_retries([ex(1, "PATCH", "/projects/1", None, 200)]) == ["PATCH /projects/1 sent without an Idempotency-Key"]


@pytest.mark.parametrize("phase, fail_nth, expected", [
    # the create's answer is a 503 twice in a row: look up, send again, look up, send again
    ("before", [3, 5], ["POST /datasets 503", "GET /datasets?name 200", "POST /datasets 503",
                        "GET /datasets?name 200", "POST /datasets 201"]),
    # the create is committed, its answer lost: the lookup finds it, nothing is sent again
    ("after", [3], ["POST /datasets 503", "GET /datasets?name 200"]),
    # ... and the lookup's own answer is lost too (a read: simply retried)
    ("after", [3, 4], ["POST /datasets 503", "GET /datasets?name 503", "GET /datasets?name 200"]),
], ids=["lost-twice", "committed", "committed-lookup-lost"])
def test_a_create_with_lost_answers_is_looked_up_each_time(rig, record, phase, fail_nth, expected):
    """Found by the storms: after one ambiguous answer the create was looked up and re-sent
    once, and a second ambiguous answer failed the apply."""
    notes = [p for p in rig["a"] if p.name == "notes"]
    org = fresh(rig)
    proxy = rig["proxy"]
    quiet(rig)
    proxy.reset()
    rig["srv"].reset_stats()
    rig["srv"].set_faults(fail_nth=fail_nth, phase=phase)
    result = cli_apply(rig, org, notes)
    quiet(rig)
    log = proxy.calls(answered_only=False)
    wire = [f"{x.method} {x.path}{'?name' if 'name=' in x.query else ''} {x.status}" for x in log]
    expected_state_ = {"datasets": {k: v for k, v in rig["expected_a"]["datasets"].items() if k == "reliability-notes"},
                       "projects": set()}
    problems = ([] if result.code == 0 else [str(result)]) + unsafe_retries(log) + state_problems(org, expected_state_)
    record("R2", cases=1, passed=int(not problems and wire[2:2 + len(expected)] == expected), scenario="lost create answers",
           phase=phase, fail_nth=fail_nth, calls=len(log))
    assert not problems, "\n".join(problems)
    assert wire[:2] == ["GET /datasets 200", "GET /projects 200"]
    assert wire[2:2 + len(expected)] == expected, wire
