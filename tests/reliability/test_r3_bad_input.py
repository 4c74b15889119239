"""R3 -- bad input: generated invalid manifests and data files, bad flags and missing files
make ``hlops plan`` / ``hlops apply`` exit 1 with a located message and no traceback, and
make no API call at all (the live server's request count does not move).

Every mutation here makes its input invalid *by construction* (a required key removed, an
unknown key, a value of a type nothing coerces, a dangling reference, a duplicate name or
key, a file that is not there, YAML or JSON that cannot parse, a span out of range...), so
an exit code other than 1 is a bug: invalid input accepted. Each case must be located:
a problem line ``path:line:col: message`` (or ``path: message``) naming the file the
mutation broke (or, for a broken reference, the file holding the reference).

Cases run in-process through click's runner against a real server subprocess (a few ms
each); a sample runs through the real ``python -m hlops`` subprocess.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import EXAMPLE_NAMES, EXAMPLES, FULL, org_server, run_inprocess
from ruamel.yaml import YAML
from support.cli import run_hlops

MANIFEST_EXAMPLES = 3000 if FULL else 560
DATA_EXAMPLES = 2000 if FULL else 450
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
PROBLEM = re.compile(r"^(?:Error: )?(?P<path>[^\s:][^:]*?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<msg>\S.*)$")
KNOWN_KEYS = {"kind", "name", "description", "ensure", "renamed_from", "lifecycle", "fields", "key", "data",
              "prune_data", "inputs", "outputs", "guidelines", "users", "review_existing_annotations", "from",
              "from_", "display_only", "data_type", "task_type", "labels", "input", "email", "role"}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("r3")
    srv = org_server(base / "server", orgs=2)
    rig = {"srv": srv, "tree": compact_tree(base / "tree"), "home": base / "home", "counts": {}}
    try:
        yield rig
    finally:
        srv.close()


def compact_tree(tree: Path) -> Path:
    """The examples, each with its manifests merged into one comment-free ``all.yaml``
    (the loader's YAML parsing is most of a case's cost; relative paths stay valid)."""
    for name in EXAMPLE_NAMES:
        shutil.copytree(EXAMPLES / name, tree / name, ignore=shutil.ignore_patterns("*.yaml"))
        docs = []
        for path in sorted((EXAMPLES / name).glob("*.yaml")):
            if path.name != "hlops.yaml":
                docs += yaml_docs(path)
        (tree / name / "all.yaml").write_bytes(dump(docs))
    return tree


# --------------------------------------------------------------------------- checking


@dataclass
class Case:
    what: str
    file: Path  # the file the mutation changed
    content: bytes  # its new content
    located_in: tuple[Path, ...]  # where a problem must be reported
    example: str


def problem_files(err: str, cwd: Path) -> list[tuple[Path, int]]:
    out = []
    for line in err.splitlines():
        m = PROBLEM.match(line)
        if m:
            out.append(((cwd / m["path"]).resolve(), int(m["line"] or 0)))
    return out


def check_case(rig, case: Case, command: str, real: bool = False) -> list[str]:
    """Write the case, run the command, restore the file; the problems (empty: fine)."""
    srv, tree = rig["srv"], rig["tree"]
    original = case.file.read_bytes()
    before = rig.get("calls")
    if before is None:
        before = srv.stats()["total"]
    try:
        case.file.write_bytes(case.content)
        args = [command, case.example] + (["--auto-approve"] if command == "apply" else [])
        if real:
            result = run_hlops(*args, server=srv, cwd=tree, env={"HLOPS_HOME": str(rig["home"])})
        else:
            result = run_inprocess(args, srv.url, srv.api_key, rig["home"], tree)
    finally:
        case.file.write_bytes(original)
    rig["calls"] = srv.stats()["total"]  # the next case's "before" (one stats call a case)
    return judge(result.code, result.out, result.err, tree, case.located_in, rig["calls"] - before, case.what)


def judge(code: int, out: str, err: str, cwd: Path, located_in, calls: int, what: str) -> list[str]:
    problems = []
    if code != 1:
        problems.append(f"exit {code}, not 1")
    if "Traceback" in out + err or "internal error" in err:
        problems.append("a traceback or an internal error")
    if calls:
        problems.append(f"{calls} API call(s) before validation passed")
    if located_in:
        wanted = {p.resolve() for p in located_in}
        found = problem_files(err, cwd)
        if not any(path in wanted for path, _ in found):
            problems.append(f"no problem located in {sorted(str(p.relative_to(cwd)) for p in wanted)}")
    return [f"{what}: {p}\n--- stderr\n{err[-1500:]}" for p in problems]


def tally(rig, key: str, ok: bool) -> None:
    tried, passed = rig["counts"].get(key, (0, 0))
    rig["counts"][key] = (tried + 1, passed + int(ok))


# --------------------------------------------------------------------------- manifests

JUNK = st.one_of(
    st.integers(-5, 10**6), st.lists(st.integers(0, 9), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y", "zz"]), st.integers(0, 9), min_size=1, max_size=2),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10).filter(lambda f: f != int(f)),
)
NOT_A_STRING = JUNK  # no str here: nothing coerces these to a name, a type or a path
IDENT = st.text(string.ascii_lowercase + "_", min_size=3, max_size=12).filter(lambda s: s not in KNOWN_KEYS)


_PARSED: dict[Path, list] = {}


def yaml_docs(path: Path) -> list:
    """The documents of a file (parsed once; a fresh copy each time)."""
    if path not in _PARSED:
        _PARSED[path] = list(YAML(typ="safe", pure=True).load_all(path.read_text(encoding="utf-8")))
    return copy.deepcopy(_PARSED[path])


def dump(docs: list, block: bool = True) -> bytes:
    """YAML text of ``docs``: block style, or (``block=False``, 100x faster to write) JSON's
    flow style, which is YAML too."""
    if not block:
        return "".join("---\n" + json.dumps(d, indent=1, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump_all(docs, out)
    return out.getvalue().encode("utf-8")


def manifests(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*.yaml") if p.name != "hlops.yaml")


DATASET_OPS = ["drop name", "drop kind", "bad kind", "unknown key", "fields junk", "field type unknown",
               "key unknown", "data missing", "name junk", "description junk", "lifecycle junk", "duplicate doc",
               "field entry junk", "data junk"]
PROJECT_OPS = ["drop name", "drop kind", "bad kind", "unknown key", "input dangling dataset", "input dangling field",
               "task type unknown", "users junk", "review junk", "guidelines missing", "inputs junk",
               "outputs junk", "duplicate doc", "output unknown key", "email invalid", "role unknown"]
TEXT_OPS = ["unclosed flow", "tab indent", "unclosed quote", "stray colon", "bad indent"]


@st.composite
def manifest_case(draw, tree: Path) -> Case:
    path = draw(st.sampled_from(manifests(tree)))
    example = path.relative_to(tree).parts[0]
    if draw(st.integers(0, 4)) == 0:  # a YAML syntax error
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        # only where a top-level key or a document starts: inside a multi-line (quoted)
        # scalar the same text would be part of a string, and valid
        starts = [i for i, line in enumerate(lines) if re.match(r"^([A-Za-z_][\w-]*:|---)", line)] + [len(lines)]
        op = draw(st.sampled_from(TEXT_OPS))
        at = len(lines) if op == "unclosed quote" else draw(st.sampled_from(starts))  # no later quote closes it
        bad = {"unclosed flow": "oops: {a: [1, 2\n", "tab indent": "\tname: tabbed\n",
               "unclosed quote": 'description: "never closed\n', "stray colon": ": : :\n",
               "bad indent": "kind: Dataset\n   name: over-indented\n  x: y\n"}[op]
        content = "".join(lines[:at] + [bad] + lines[at:])
        return Case(f"{path.relative_to(tree)} +{op!r} at line {at + 1}", path, content.encode(), (path,), example)
    docs = yaml_docs(path)
    i = draw(st.integers(0, len(docs) - 1))
    doc = docs[i]
    kind = doc.get("kind")
    op = draw(st.sampled_from(DATASET_OPS if kind == "Dataset" else PROJECT_OPS))
    located = (path,)
    if op == "drop name":
        del doc["name"]
    elif op == "drop kind":
        del doc["kind"]
    elif op == "bad kind":
        doc["kind"] = draw(st.sampled_from(["Datasett", "Projekt", "Settings", "Model", "DATASET", "", "kind"]))
    elif op == "unknown key":
        doc[draw(IDENT)] = draw(st.one_of(JUNK, st.text(max_size=5)))
    elif op == "fields junk":
        doc["fields"] = draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2)))
    elif op == "field type unknown":
        field = draw(st.sampled_from(sorted(doc["fields"])))
        doc["fields"][field] = draw(st.sampled_from(["txt", "string", "category", "offsets", "int", "Text", "label"]))
    elif op == "field entry junk":
        field = draw(st.sampled_from(sorted(doc["fields"])))
        doc["fields"][field] = {"data_type": "text", draw(IDENT): 1}
    elif op == "key unknown":
        doc["key"] = draw(IDENT.filter(lambda s: s not in doc["fields"]))
    elif op == "data missing":
        doc["data"] = f"data/missing-{draw(IDENT)}.jsonl"
    elif op == "data junk":
        doc["data"] = draw(st.one_of(st.integers(1), st.dictionaries(st.just("rows"), st.integers(), min_size=1)))
    elif op == "name junk":
        doc["name"] = draw(NOT_A_STRING)
    elif op == "description junk":
        doc["description"] = draw(st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                                            st.dictionaries(st.just("x"), st.integers(), min_size=1)))
    elif op == "lifecycle junk":
        doc["lifecycle"] = draw(st.sampled_from([{"prevent_destroy": [1]}, {"prevent_destroy": {"a": 1}},
                                                 {"ignore_changes": 5}, {"nope": True}, 7]))
    elif op == "duplicate doc":
        docs.append(json.loads(json.dumps(doc)))
    elif op == "input dangling dataset":
        name = draw(st.sampled_from(sorted(doc["inputs"])))
        doc["inputs"][name] = f"no-such-dataset-{draw(IDENT)}.text"
    elif op == "input dangling field":
        name = draw(st.sampled_from(sorted(doc["inputs"])))
        entry = doc["inputs"][name]
        ref = entry if isinstance(entry, str) else entry["from"]
        ref = ref if isinstance(ref, str) else ref[0]
        doc["inputs"][name] = ref.rsplit(".", 1)[0] + f".nofield_{draw(IDENT)}"
    elif op == "task type unknown":
        name = draw(st.sampled_from(sorted(doc["outputs"])))
        doc["outputs"][name]["task_type"] = draw(st.sampled_from(["classify", "tagging", "regression", "", "multi"]))
    elif op == "output unknown key":
        name = draw(st.sampled_from(sorted(doc["outputs"])))
        doc["outputs"][name][draw(IDENT)] = 1
    elif op == "users junk":
        doc["users"] = draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2)))
    elif op == "email invalid":
        doc["users"] = [draw(st.sampled_from(["no-at-sign", "a@", "@b.co", "two@@b.co", "a b@c.d"]))]
    elif op == "role unknown":
        doc["users"] = [{"email": "x@example.com", "role": draw(st.sampled_from(["boss", "Owner ", "root", ""]))}]
    elif op == "review junk":
        doc["review_existing_annotations"] = draw(st.sampled_from([[1], {"a": 1}, "maybe", 7]))
    elif op == "guidelines missing":
        doc["guidelines"] = f"missing-{draw(IDENT)}.md"
    elif op == "inputs junk":
        doc["inputs"] = draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2)))
    elif op == "outputs junk":
        doc["outputs"] = draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2)))
    return Case(f"{path.relative_to(tree)} doc {i}: {op}", path, dump(docs, block=draw(st.integers(0, 3)) == 0), located, example)


# --------------------------------------------------------------------------- data files

DATA = {  # example -> (data file, key field, text fields, the span field and its text)
    "sentiment": ("data/tickets.jsonl", "external_id", ["text"], ("entities", "text")),
    "entities": ("data/snippets.jsonl", "snippet_id", ["text"], ("entities", "text")),
    "multilabel": ("data/tickets.json", "ticket_id", ["subject", "body"], None),
    "two-datasets": ("data/emails.jsonl", "message_id", ["subject", "body"], None),
}
JSONL_OPS = ["truncate line", "unknown field", "text junk", "key missing", "key duplicate", "not an object",
             "span reversed", "span out of range", "invalid utf-8", "categorical junk"]
CSV_OPS = ["extra cell", "unknown column", "key duplicate", "missing cells", "invalid utf-8"]


@st.composite
def data_case(draw, tree: Path) -> Case:
    kind = draw(st.sampled_from(["jsonl", "jsonl", "json", "csv"]))
    if kind == "csv":
        return draw(csv_case(tree))
    example = draw(st.sampled_from([e for e, spec in DATA.items() if spec[0].endswith("." + kind)]))
    rel, key, texts, span = DATA[example]
    path = tree / example / rel
    raw = path.read_bytes()
    if kind == "json":
        rows = json.loads(raw)
    else:
        rows = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    i = draw(st.integers(0, len(rows) - 1))
    op = draw(st.sampled_from(JSONL_OPS if span else [o for o in JSONL_OPS if not o.startswith("span")]))
    row = rows[i]
    lines_out: list | None = None
    if op == "truncate line":
        if kind == "json":
            text = raw.decode()
            cut = draw(st.integers(1, len(text) - 2))
            return Case(f"{path.relative_to(tree)} cut at {cut}", path, text[:cut].encode(), (path,), example)
        line = json.dumps(row)
        lines_out = [json.dumps(r) for r in rows]
        lines_out[i] = line[: draw(st.integers(1, len(line) - 1))]
    elif op == "unknown field":
        row[draw(IDENT)] = "x"
    elif op == "text junk":
        row[draw(st.sampled_from(texts))] = draw(st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                                                          st.dictionaries(st.just("x"), st.integers(), min_size=1),
                                                          st.booleans()))
    elif op == "categorical junk":
        cat = next((f for f in row if f not in texts and f != key and (not span or f != span[0])), None)
        if cat is None:
            op, row[key] = "key missing", None
        else:
            row[cat] = draw(st.one_of(st.lists(st.integers(), min_size=1, max_size=2), st.dictionaries(st.just("x"), st.integers(), min_size=1)))
    elif op == "key missing":
        if draw(st.booleans()):
            row.pop(key)
        else:
            row[key] = None
    elif op == "key duplicate":
        j = draw(st.integers(0, len(rows) - 1).filter(lambda j: j != i))
        row[key] = rows[j][key]
    elif op == "not an object":
        rows[i] = draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=5)))
    elif op in ("span reversed", "span out of range"):
        length = len(str(row.get(span[1]) or ""))
        if op == "span reversed":
            row[span[0]] = [{"start": 3, "end": draw(st.integers(0, 3)), "label": "X"}]
        else:
            row[span[0]] = [{"start": 0, "end": length + draw(st.integers(1, 50)), "label": "X"}]
    elif op == "invalid utf-8":
        text = (json.dumps(rows, ensure_ascii=False) if kind == "json" else "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)).encode()
        at = text.index(b'"', draw(st.integers(0, len(text) // 2))) + 1  # inside a string
        return Case(f"{path.relative_to(tree)} invalid utf-8 at {at}", path, text[:at] + b"\xff\xfe" + text[at:], (path,), example)
    if lines_out is None:
        if kind == "json":
            content = ("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n").encode()
        else:
            content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    else:
        content = ("\n".join(lines_out) + "\n").encode()
    return Case(f"{path.relative_to(tree)} row {i}: {op}", path, content, (path,), example)


@st.composite
def csv_case(draw, tree: Path) -> Case:
    import csv

    path = tree / "two-datasets" / "data" / "chats.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    i = draw(st.integers(0, len(body) - 1))
    op = draw(st.sampled_from(CSV_OPS))
    if op == "extra cell":
        body[i] = body[i] + [draw(st.text(string.ascii_letters, max_size=5))]
    elif op == "missing cells":
        body[i] = body[i][: draw(st.integers(1, len(header) - 1))]
    elif op == "unknown column":
        header = header + [draw(IDENT)]
        body = [r + ["x"] for r in body]
    elif op == "key duplicate":
        j = draw(st.integers(0, len(body) - 1).filter(lambda j: j != i))
        body[i] = [body[j][0]] + body[i][1:]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    content = out.getvalue().encode()
    if op == "invalid utf-8":
        at = content.index(b"Customer", draw(st.integers(0, len(content) // 2)))
        content = content[:at] + b"\xff" + content[at:]
    return Case(f"{path.relative_to(tree)} row {i}: {op}", path, content, (path,), "two-datasets")


# --------------------------------------------------------------------------- the tests


def _fuzz(rig, record, item_key: str, strategy, examples: int, real: bool = False) -> None:
    failures: list[str] = []

    @settings(max_examples=examples, **FUZZ)
    @given(data=st.data())
    def run(data):
        case = data.draw(strategy(rig["tree"]))
        command = data.draw(st.sampled_from(["plan", "apply"]))
        problems = check_case(rig, case, command, real)
        tally(rig, item_key, not problems)
        if problems:
            failures.extend(problems)
        assert not problems, problems[0]

    try:
        run()
    finally:
        tried, passed = rig["counts"].get(item_key, (0, 0))
        record("R3", cases=tried, passed=passed, inputs=item_key)
    assert not failures


def test_invalid_manifests_exit_1_located_without_calls(rig, record):
    _fuzz(rig, record, "manifests", manifest_case, MANIFEST_EXAMPLES)


def test_invalid_data_files_exit_1_located_without_calls(rig, record):
    _fuzz(rig, record, "data files", data_case, DATA_EXAMPLES)


def test_generated_cases_through_the_real_cli(rig, record):
    """A sample of the same generators through ``python -m hlops`` (a subprocess)."""
    both = lambda tree: st.one_of(manifest_case(tree), data_case(tree))  # noqa: E731
    _fuzz(rig, record, "real CLI sample", both, 24 if FULL else 4, real=True)


# --------------------------------------------------------------------------- flags and files

# (arguments, environment, text the message must hold); run in the compact tree's root
BAD_INVOCATIONS = [
    (["plan", "sentiment", "--nope"], {}, "No such option"),
    (["apply", "sentiment", "--auto-approve", "--parallelism", "0"], {}, "must be 1 or more"),
    (["apply", "sentiment", "--auto-approve", "--parallelism", "many"], {}, "--parallelism"),
    (["plan", "sentiment", "--parallelism", "2"], {}, "No such option"),
    (["plan", "sentiment", "--json", "--markdown"], {}, "exclusive"),
    (["plan", "sentiment", "--target", "nonsense"], {}, "nonsense"),
    (["plan", "sentiment", "--target", "widget/x"], {}, "widget/x"),
    (["apply", "sentiment", "--auto-approve", "--target", "dataset"], {}, "dataset"),
    (["destroy", "sentiment", "--auto-approve", "--target", "/x"], {}, "/x"),
    (["plan", "sentiment", "-o", "no-such-dir/plan.json"], {}, "no-such-dir"),
    (["plan", "sentiment", "-o", "sentiment"], {}, "sentiment"),
    (["plan", "no-such-dir"], {}, "no-such-dir: no such file or directory"),
    (["apply", "no-such-plan.json", "--auto-approve"], {}, "no-such-plan.json"),
    (["plan", "empty"], {}, "no manifests"),
    (["plan", "sentiment/data/tickets.jsonl"], {}, "not a manifest"),
    (["apply", "corrupt-plan.json", "--auto-approve"], {}, "not a saved plan"),
    (["apply", "wrong-plan.json", "--auto-approve"], {}, "not a valid saved plan"),
    (["apply", "future-plan.json", "--auto-approve"], {}, "not supported"),
    (["apply", "corrupt-plan.json", "--auto-approve", "--target", "dataset/x"], {}, "--target"),
    (["plan", "sentiment", "--local", "--base-url", "http://127.0.0.1:9"], {}, "--local"),
    (["plan", "sentiment"], {"HLOPS_BASE_URL": "ftp://example.com"}, "not an http(s) URL"),
    (["plan", "sentiment"], {"HLOPS_API_KEY": ""}, "no API key"),
    (["plan", "bad-settings"], {}, "hlops.yaml"),
    (["apply", "sentiment"], {}, "--auto-approve"),  # no terminal, no approval: refused before planning? see below
    (["validate", "no-such-dir"], {}, "no-such-dir"),
    (["serve", "--port", "70000"], {}, "--port"),
]


@pytest.fixture(scope="module")
def flag_tree(rig):
    tree = rig["tree"]
    (tree / "empty").mkdir(exist_ok=True)
    (tree / "corrupt-plan.json").write_text('{"format_version": "1", "changes": [')
    (tree / "wrong-plan.json").write_text('{"format_version": "1", "changes": 5}')
    (tree / "future-plan.json").write_text('{"format_version": "99", "changes": []}')
    bad = tree / "bad-settings"
    shutil.copytree(tree / "sentiment", bad, dirs_exist_ok=True)
    (bad / "hlops.yaml").write_text("owns: 5\nparallelism: many\n")
    return tree


def _invocation_ids():
    return [" ".join(a)[:60] + (" " + ",".join(f"{k}={v}" for k, v in e.items()) if e else "") for a, e, _ in BAD_INVOCATIONS]


@pytest.mark.parametrize("args, env, needle", BAD_INVOCATIONS, ids=_invocation_ids())
def test_bad_flags_and_missing_files(rig, flag_tree, record, args, env, needle):
    srv = rig["srv"]
    before = srv.stats()["total"]
    if args[:2] == ["apply", "sentiment"] and len(args) == 2:
        # no --auto-approve and no terminal: this one plans first (the plan is what one
        # approves), then refuses -- reads only, nothing written
        writes_before = srv.stats()["writes"]
        result = run_inprocess(args, srv.url, srv.api_key, rig["home"], flag_tree, env)
        writes = srv.stats()["writes"] - writes_before
        problems = judge(result.code, result.out, result.err, flag_tree, (), 0, " ".join(args))
        if needle not in result.err:
            problems.append(f"{needle!r} not in the message")
        record("R3", cases=1, passed=int(not problems), inputs="flags and files")
        assert not problems, problems
        assert writes == 0
        return
    result = run_inprocess(args, srv.url, srv.api_key, rig["home"], flag_tree, env)
    problems = judge(result.code, result.out, result.err, flag_tree, (), srv.stats()["total"] - before, " ".join(args))
    if needle not in result.err + (result.out if args[0] == "validate" else ""):
        problems.append(f"{' '.join(args)}: {needle!r} not in the message:\n{result.err[-800:]}")
    record("R3", cases=1, passed=int(not problems), inputs="flags and files")
    assert not problems, "\n".join(problems)


def test_bad_flags_through_the_real_cli(rig, flag_tree, record):
    """A few of the same through ``python -m hlops``: exit 1 also from the real entry point."""
    srv = rig["srv"]
    failures = []
    picked = [BAD_INVOCATIONS[i] for i in ((0, 1, 5, 9, 15, 21) if FULL else (5, 9, 15))]
    for args, env, needle in picked:
        before = srv.stats()["total"]
        result = run_hlops(*args, server=srv, cwd=flag_tree, env={"HLOPS_HOME": str(rig["home"]), **env})
        failures += judge(result.code, result.out, result.err, flag_tree, (), srv.stats()["total"] - before, " ".join(args))
        if needle not in result.err:
            failures.append(f"{' '.join(args)}: {needle!r} not in the message")
    record("R3", cases=len(picked), passed=len(picked) - len(failures), inputs="flags and files (real CLI)")
    assert not failures, "\n".join(failures)
