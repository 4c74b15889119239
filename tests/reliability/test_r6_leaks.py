"""R6 -- leaks: the API key and datapoint content never appear in anything a run produces.

A recognisable canary API key (registered on the server), a canary in the text of every
datapoint, and a canary in every datapoint's key go through the real CLI on success and
failure paths: plan as text, JSON, markdown (and ``--markdown-dir``), saved plans, apply
(text and JSON reports), a saved plan refused as stale, destroy, an unknown key (401),
invalid data files (also with ``HLOPS_DEBUG=1`` tracebacks), a 422 from the server in the
middle of an upload, a 409 whose detail lists the conflicting keys (a row raced in just before
the upload), and a transport error (the server gone). Then everything is grepped: every
stdout and stderr, every file written under the working directories (``.hlops/`` caches
included), the saved plans, and the server's own logs (its request log included). Keys may
appear only where ``--show-data`` asked for them. The Python API's exceptions are checked
too: ``str``, ``repr``, and the apply report.
"""

from __future__ import annotations

import json
import os

import pytest
from killing_proxy import KillingProxy
from rel_support import BAD_KEY, CANARY_ID, CANARY_KEY, CANARY_TEXT, Org, run_inprocess, write_leaky
from support.cli import run_hlops
from support.server import ServerProcess

SECRETS = {"the API key": CANARY_KEY, "the unknown API key": BAD_KEY, "datapoint text": CANARY_TEXT}
write_tree = write_leaky


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("r6")
    srv = ServerProcess(base / "server", request_log=base / "server" / "requests.jsonl", start=False)
    srv.keys_file.write_text(f"{CANARY_KEY} org-canary\n{srv.other_key} org-other\n")
    srv.api_key = CANARY_KEY
    srv.start()
    proxy = KillingProxy(srv.url)
    work = base / "work"
    rig = {"base": base, "srv": srv, "proxy": proxy, "work": work, "runs": [], "tree": write_tree(work / "leaky")}
    try:
        yield rig
    finally:
        proxy.close()
        srv.close()


def hl(rig, what: str, *args: str, key: str = CANARY_KEY, expect: tuple[int, ...] = (0, 2), env: dict | None = None,
       show_data: bool = False, real: bool = False):
    """``hlops ARGS`` in-process (``real``: through ``python -m hlops``), recorded for the grep."""
    cwd = rig["work"]
    if real:
        result = run_hlops(*args, cwd=cwd, env={"HLOPS_BASE_URL": rig["proxy"].url, "HLOPS_API_KEY": key,
                                                "HLOPS_HOME": str(cwd / ".hlops"), **(env or {})})
    else:
        result = run_inprocess(list(args), rig["proxy"].url, key, cwd / ".hlops", cwd, env)
    rig["runs"].append((what + (" [subprocess]" if real else ""), result, show_data))
    assert result.code in expect, f"{what}: {result}"
    return result


def grep(text: str, allow_keys: bool = False) -> list[str]:
    found = [name for name, canary in SECRETS.items() if canary in text]
    if not allow_keys and CANARY_ID in text:
        found.append("a datapoint's key (without --show-data)")
    return found


def test_nothing_a_run_produces_holds_a_secret(rig, record, transport_error_run):
    srv, proxy, work, tree = rig["srv"], rig["proxy"], rig["work"], rig["tree"]
    t = str(tree)
    # failures before anything exists
    hl(rig, "plan, unknown key", "plan", t, key=BAD_KEY, expect=(1,))
    hl(rig, "apply, unknown key", "apply", t, "--auto-approve", key=BAD_KEY, expect=(1,), real=True)
    for broken in ("unknown field", "wrong type", "duplicate key", "span out of range"):
        bad = write_tree(work / f"broken-{broken.replace(' ', '-')}", broken=broken)
        hl(rig, f"plan, invalid data ({broken})", "plan", str(bad), expect=(1,))
        hl(rig, f"apply, invalid data ({broken}), HLOPS_DEBUG", "apply", str(bad), "--auto-approve", expect=(1,),
           env={"HLOPS_DEBUG": "1"}, real=broken == "wrong type")
    # plans of every shape
    hl(rig, "plan", "plan", t)
    hl(rig, "plan --json", "plan", t, "--json", real=True)
    hl(rig, "plan --markdown", "plan", t, "--markdown", "--markdown-dir", str(work / "md"))
    hl(rig, "plan -o", "plan", t, "-o", str(work / "saved.json"))
    hl(rig, "plan --show-data", "plan", t, "--show-data", "-o", str(work / "saved-show-data.json"), show_data=True)
    # a 422 from the server on the first upload batch
    state = {"armed": True}

    def inject_422(ex):
        if ex.method == "PUT" and state["armed"]:
            state["armed"] = False
            srv.set_faults(fail_nth=[1], statuses=[422], phase="before")  # numbered from here: this PUT

    proxy.before_forward = inject_422
    hl(rig, "apply, 422 during the upload", "apply", t, "--auto-approve", "--parallelism", "1", expect=(1,))
    proxy.before_forward = None
    srv.set_faults(fail_nth=[], statuses=[503])
    assert not state["armed"]
    # a 409 listing the conflicting keys: a row with one of the keys is raced in before the upload
    org = Org(srv.url, CANARY_KEY)
    ds = org.get("/datasets", name="leaky")["items"][0]
    state["armed"] = True

    def race_a_row(ex):
        if ex.method == "PUT" and state["armed"]:
            state["armed"] = False
            r = org.call("PUT", f"/datasets/{ds['id']}", json={"data": [
                {"uid": f"{CANARY_ID}-{i}", "text": f"raced {CANARY_TEXT}", "mood": "up", "spans": []} for i in range(3)]})
            assert r.status_code == 200, r.text

    proxy.before_forward = race_a_row
    hl(rig, "apply, 409 during the upload", "apply", t, "--auto-approve", "--parallelism", "1", expect=(1,), real=True)
    proxy.before_forward = None
    # the saved plan is stale now; then converge, re-plan, apply a fresh saved plan, destroy
    hl(rig, "apply a stale saved plan", "apply", str(work / "saved.json"), "--auto-approve", expect=(1,), real=True)
    hl(rig, "apply --json", "apply", t, "--auto-approve", "--json", "--allow-data-loss")
    (tree / "rows.jsonl").open("a").write(json.dumps({"uid": f"{CANARY_ID}-new", "text": f"late {CANARY_TEXT}",
                                                       "mood": "up", "spans": []}) + "\n")
    hl(rig, "plan -o (fresh)", "plan", t, "-o", str(work / "saved2.json"))
    hl(rig, "apply a saved plan", "apply", str(work / "saved2.json"), "--auto-approve")
    hl(rig, "destroy", "destroy", t, "--auto-approve", "--allow-data-loss")
    # the transport error, run in the background since the session started (conftest.py)
    background = transport_error_run["proc"]
    out, err = background.communicate(timeout=120)
    from support.cli import Result

    rig["runs"].append(("apply, transport error (server unreachable) [subprocess]", Result(background.returncode, out, err), False))
    assert background.returncode == 1 and "cannot reach" in err, err
    files_elsewhere = [p for p in transport_error_run["work"].rglob("*") if p.is_file() and p.suffix != ".jsonl"]

    srv.stop()  # flush the server's logs
    leaks = []
    for what, result, show_data in rig["runs"]:
        for stream, text in (("stdout", result.out), ("stderr", result.err)):
            for found in grep(text, allow_keys=show_data):
                leaks.append(f"{what}: {stream} holds {found}")
            if "Traceback" in text and "HLOPS_DEBUG" not in what:
                leaks.append(f"{what}: a traceback in {stream}")
    files = [p for p in work.rglob("*") if p.is_file() and p.suffix not in (".jsonl",) and p.name != "saved-show-data.json"]
    files += [p for p in srv.dir.iterdir() if p.is_file() and p.suffix in (".log", ".jsonl")]
    files += [p for p in files_elsewhere if p.suffix != ".yaml"]
    for path in files:
        if path.parent.name.startswith(("leaky", "broken")) and path.suffix == ".yaml":
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for found in grep(text):
            leaks.append(f"{path} holds {found}")
    for found in grep((work / "saved-show-data.json").read_text(), allow_keys=True):
        leaks.append(f"saved-show-data.json holds {found}")
    checked = len(rig["runs"]) * 2 + len(files) + 1
    record("R6", cases=checked, passed=checked - len(leaks), runs=len(rig["runs"]), files=len(files) + 1)
    assert not leaks, "\n".join(leaks)
    # not vacuous: the canaries are where they belong
    assert CANARY_KEY in srv.keys_file.read_text() and CANARY_TEXT in (tree / "rows.jsonl").read_text()
    assert any(CANARY_ID in r.out for w, r, s in rig["runs"] if s), "--show-data showed no key"
    assert any("HTTP 422" in r.err for w, r, s in rig["runs"] if "422" in w)
    assert any("409" in r.err for w, r, s in rig["runs"] if "409" in w)
    srv.start()


def test_python_api_errors_hold_no_secret(rig, record, tmp_path):
    """``str``/``repr`` of the Python API's objects and errors, on the same paths."""
    from hlops import api
    from hlops.providers.humanloop.client import ClientOptions
    from hlops.errors import HlopsError

    srv = rig["srv"]
    if not srv.running:
        srv.start()
    tree = write_tree(tmp_path / "leaky")
    texts, checked = [], 0

    def capture(fn):
        nonlocal checked
        checked += 1
        try:
            value = fn()
        except HlopsError as exc:
            texts.append((fn.__name__, f"{exc}\n{exc!r}\n{exc.args!r}"))
            report = getattr(exc, "report", None)
            if report is not None:
                texts.append((fn.__name__ + " report", json.dumps(report.to_json(), default=str)))
            return None
        texts.append((fn.__name__, repr(value)))
        return value

    os.environ.pop("HLOPS_API_KEY", None)
    good = capture(lambda: api.connect(base_url=srv.url, api_key=CANARY_KEY))
    texts.append(("client", repr(good.client) + repr(vars(good.client).get("options"))))
    config = api.load(tree)

    def plan_with_unknown_key():
        return api.plan(config, api.connect(base_url=srv.url, api_key=BAD_KEY), cache_dir=tmp_path / "cache")

    def plan_unreachable():
        conn = api.connect(base_url="http://127.0.0.1:9", api_key=CANARY_KEY, options=ClientOptions(retries=0))
        return api.plan(config, conn, cache_dir=tmp_path / "cache")

    def load_invalid():
        return api.load(write_tree(tmp_path / "bad", broken="wrong type"))

    def apply_with_a_422():
        result = api.plan(config, good, cache_dir=tmp_path / "cache")
        srv.set_faults(fail_nth=[3], statuses=[422])  # numbered from here: create, digest, PUT
        try:
            return api.apply(result, good, parallelism=1)
        finally:
            srv.set_faults(fail_nth=[], statuses=[503])

    for fn in (plan_with_unknown_key, plan_unreachable, load_invalid, apply_with_a_422):
        capture(fn)
    leaks = [f"{what}: holds {found}" for what, text in texts for found in grep(text)]
    record("R6", cases=checked + 1, passed=checked + 1 - len(leaks), runs="python api")
    assert not leaks, "\n".join(leaks)
    assert any("422" in text for _, text in texts), texts
