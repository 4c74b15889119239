"""R1 -- crash at every call: an apply SIGKILLed right after any call converges on the next
run, with no duplicate resource and no duplicate or missing datapoint.

A loopback proxy in front of the reference server counts the answers; armed with ``k``, it
relays answer ``k``, SIGKILLs the apply process and forwards nothing more (``when="before"``:
the server did call ``k`` but the answer is never relayed -- a crash with a lost response).
With ``--parallelism 1`` the server has then seen exactly ``k`` calls. Every ``k`` from 1
to the number of calls of a fault-free apply is tried, each in an organisation of its own
(the server isolates them), then apply runs again, ``plan`` must exit 0, and the state must
equal the manifests (names, datapoint counts, every row's key and hash).

On PostgreSQL (``store`` = ``postgresql``, a database of its own) the default run does the
random kills; the sweep of every call runs there with ``HLOPS_RELIABILITY_FULL=1``.

The killed applies are children forked from a pre-imported hlops (``zygote.py``) -- real
processes, real SIGKILL, without paying the interpreter start-up each time; a few kills
at random points hit a plain ``python -m hlops`` subprocess with the default parallelism.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from killing_proxy import KillingProxy
from rel_support import FULL, Org, cli_env, expected_state, make_examples, org_server, run_inprocess, spawn, state_problems, write_bulk
from zygote import Zygote

from support.postgres import BOTH, db_url_for, drop_database

ORGS = 400 if FULL else 120
STORES = BOTH


@pytest.fixture(scope="module")
def rig(tmp_path_factory, store):
    base = tmp_path_factory.mktemp("r1")
    url = db_url_for(store)
    srv = org_server(base / "server", orgs=ORGS, db_url=url)
    proxy = KillingProxy(srv.url)
    zyg = Zygote()
    rig = {"base": base, "srv": srv, "proxy": proxy, "zygote": zyg, "next_org": 2}
    try:
        yield rig
    finally:
        zyg.close()
        proxy.close()
        srv.close()
        if url:
            drop_database(url)


def fresh_org(rig) -> Org:
    i = rig["next_org"]
    rig["next_org"] += 1
    return Org(rig["srv"].url, rig["srv"].org_keys[i])


def trees(rig) -> dict[str, list[Path]]:
    if "trees" not in rig:
        rig["trees"] = _trees(rig["base"])
    return rig["trees"]


def _trees(base: Path) -> dict[str, list[Path]]:
    examples = make_examples(base / "examples")
    bulk = [write_bulk(base / "bulk" / "bulk")]
    out = {"examples": examples, "bulk": bulk}
    if FULL:
        out["examples+bulk"] = examples + bulk
    return out


def apply_args(paths: list[Path], parallelism: int | None) -> list[str]:
    args = ["apply", *map(str, paths), "--auto-approve"]
    return args + (["--parallelism", str(parallelism)] if parallelism else [])


def killed_run(rig, org: Org, paths, home: Path, k: int, when: str, parallelism: int | None, real: bool = False,
               extra_env: dict | None = None) -> tuple[int, int | None]:
    """Start an apply as ``org`` and SIGKILL it at answer ``k``. Returns (exit code, the
    answer it was killed at)."""
    proxy, base = rig["proxy"], rig["base"]
    proxy.reset()
    log = base / "killed.log"
    if real:
        proc = spawn(apply_args(paths, parallelism), proxy.url, org.key, home, base, log)
        proxy.arm(proc.pid, k, when)
        code = proc.wait(120)
    else:
        env = cli_env(proxy.url, org.key, home, extra_env)
        pid = rig["zygote"].start(apply_args(paths, parallelism), env, base, log)
        proxy.arm(pid, k, when)
        code = rig["zygote"].wait()
    killed_at = proxy.killed_at
    proxy.frozen.set()  # whatever the dead client still had in flight reaches the server, or not;
    proxy.drain()  # either way it is over before the next run starts
    proxy.reset()
    return code, killed_at


def converge(rig, org: Org, paths, home: Path, expected: dict, extra_env: dict | None = None) -> tuple[list[str], int]:
    """Apply again, plan (exit 0), and compare the state; returns (problems, calls of the
    rerun)."""
    proxy = rig["proxy"]
    proxy.reset()
    again = run_inprocess(apply_args(paths, None), proxy.url, org.key, home, rig["base"], extra_env)
    calls = proxy.answers
    problems = [] if again.code == 0 else [f"the rerun failed: {again}"]
    plan = run_inprocess(["plan", *map(str, paths)], proxy.url, org.key, home, rig["base"], extra_env)
    if plan.code != 0:
        problems.append(f"plan after the rerun exits {plan.code}: {plan}")
    problems += state_problems(org, expected)
    return problems, calls


def cleanup(org: Org) -> None:
    """Keep the server's database small: drop what this organisation holds."""
    for p in org.all("/projects"):
        org.call("DELETE", f"/projects/{p['id']}")
    for d in org.all("/datasets"):
        org.call("DELETE", f"/datasets/{d['id']}", params={"force": "true"})


def baseline(rig, paths, home: Path, parallelism: int | None, extra_env: dict | None = None) -> list[str]:
    """The calls of a fault-free apply (method and path), in order."""
    org = fresh_org(rig)
    proxy = rig["proxy"]
    proxy.reset()
    env = cli_env(proxy.url, org.key, home, extra_env)
    rig["zygote"].start(apply_args(paths, parallelism), env, rig["base"], rig["base"] / "baseline.log")
    code = rig["zygote"].wait()
    assert code == 0, (rig["base"] / "baseline.log").read_text()[-3000:]
    calls = [f"{x.method} {x.path}" for x in proxy.calls()]
    cleanup(org)
    return calls


def sweep(rig, name: str, paths: list[Path], when: str, record, extra_env: dict | None = None) -> None:
    expected = expected_state(paths)
    home = rig["base"] / f"home-{name}"
    calls = baseline(rig, paths, home, 1, extra_env)
    n = len(calls)
    assert sum(c.startswith("PUT ") for c in calls) >= (3 if "bulk" in name else 1)
    failures, rerun_calls = [], []
    started = time.monotonic()
    for k in range(1, n + 1):
        org = fresh_org(rig)
        code, killed_at = killed_run(rig, org, paths, home, k, when, 1, extra_env=extra_env)
        if code != -9 or killed_at != k:
            failures.append(f"k={k} ({calls[k - 1]}): not killed there (exit {code}, at {killed_at})")
            continue
        problems, rerun = converge(rig, org, paths, home, expected, extra_env)
        rerun_calls.append(rerun)
        if problems:
            failures.append(f"k={k} (killed after {calls[k - 1]}): " + "; ".join(problems))
        if "bulk" in name:
            cleanup(org)
    record("R1", cases=n, passed=n - len(failures), tree=name, kill=when, calls=n,
           puts=sum(c.startswith("PUT ") for c in calls), rerun_calls_max=max(rerun_calls, default=0),
           seconds=round(time.monotonic() - started, 1))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["examples", "bulk", "examples+bulk"])
def test_kill_after_every_call_converges(rig, name, record, store):
    if store == "postgresql" and not FULL:
        pytest.skip("on PostgreSQL the sweep runs with HLOPS_RELIABILITY_FULL=1 (the default run kills at random points)")
    paths = trees(rig).get(name)
    if paths is None:
        pytest.skip("the combined tree runs with HLOPS_RELIABILITY_FULL=1")
    sweep(rig, name, paths, "after", record)


def test_kill_after_every_call_of_a_streamed_apply_converges(rig, record, store):
    """The bulk tree streamed (rows checked, hashed and sent in one pass, as a data file of
    8 MB or more would be, HLOPS_STREAM_MIN_BYTES=0): killed after the create, after any
    batch or before the record, the rerun (streamed again when the dataset is still empty,
    else a digest diff) converges."""
    if store == "postgresql" and not FULL:
        pytest.skip("on PostgreSQL the sweep runs with HLOPS_RELIABILITY_FULL=1 (the default run kills at random points)")
    sweep(rig, "bulk-streamed", trees(rig)["bulk"], "after", record, {"HLOPS_STREAM_MIN_BYTES": "0"})


@pytest.mark.parametrize("name", ["examples", "bulk"])
def test_kill_with_a_lost_answer_converges(rig, name, record):
    """The server did call k, the client never heard of it and dies."""
    if not FULL:
        pytest.skip("runs with HLOPS_RELIABILITY_FULL=1 (the default run kills with lost answers at random points)")
    sweep(rig, name, trees(rig)[name], "before", record)


def test_random_kills_with_default_parallelism(rig, record, store):
    """Kills at random points of an apply with four calls in flight (the answers after the
    kill point still reach the server: lost answers), some in a plain subprocess."""
    t = trees(rig)
    paths = t["examples"] + t["bulk"]
    expected = expected_state(paths)
    home = rig["base"] / "home-random"
    n = len(baseline(rig, paths, home, None))
    rng = random.Random(2024)
    runs = 12 if FULL else 4
    failures = []
    for i in range(runs):
        k = rng.randint(1, n)
        org = fresh_org(rig)
        real = i < 2
        code, killed_at = killed_run(rig, org, paths, home, k, rng.choice(["after", "before"]), None, real=real)
        if code != -9:
            failures.append(f"k={k}: not killed (exit {code})")
            continue
        problems, _ = converge(rig, org, paths, home, expected)
        if problems:
            failures.append(f"k={k}{' (subprocess)' if real else ''}: " + "; ".join(problems))
        cleanup(org)
    record("R1", cases=runs, passed=runs - len(failures), tree="examples+bulk", kill="random", calls=n, parallelism=4,
           store=store)
    assert not failures, "\n".join(failures)
