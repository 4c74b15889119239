"""Mutated manifests and data files never produce a traceback: `load()` returns a Config or
raises ManifestError, and `hlops validate` exits 0 or 1 with located messages.

Mutations are drawn by hypothesis from valid examples: structural (delete / rename / retype /
insert keys, wrap values) on the parsed documents, and textual (drop, duplicate or re-indent
lines, insert YAML-significant characters, truncate) on the text; plus byte mutations of data
files. ``max_examples`` is bounded so the whole of tests/manifests stays well under a minute.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from hlops.cli import main
from hlops.errors import ManifestError
from hlops.manifest import Config, load

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "projects"
SEEDS = sorted(p for p in EXAMPLES.rglob("*.yaml"))
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

JUNK_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from([
        "", " ", "${HLOPS_FUZZ_UNSET}", "$${X}", "${", "a.b.c", "x.md", "data.jsonl", "../x.csv",
        "classification", "sequence_tagging", "text", "categorical", "character_offsets",
        "present", "absent", "a@b.co", "Dataset", "Project", "\t", "null", "~", "-", "{", "[",
    ]),
)
JUNK_VALUES = st.recursive(JUNK_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
YAML_CHARS = st.sampled_from(list(":-{}[]\"'&*!#|>%@`,?\t\n $\\") + ["  ", "---\n", "...\n", "\ufeff"])


@pytest.fixture(scope="module")
def tree():
    """A scratch copy of the examples; each hypothesis example rewrites one file and then
    puts it back."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "projects"
        shutil.copytree(EXAMPLES, target)
        yield target


def _check(paths) -> None:
    try:
        result = load(paths, env={})
    except ManifestError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message and "Traceback" not in problem.message
            assert problem.line >= 0 and problem.col >= 0
    else:
        assert isinstance(result, Config)


def _with(tree: Path, rel: Path, content: bytes, run) -> None:
    path = tree / rel
    original = path.read_bytes()
    try:
        path.write_bytes(content)
        run(path)
    finally:
        path.write_bytes(original)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _get(value, path):
    for step in path:
        value = value[step]
    return value


@FUZZ
@given(data=st.data())
def test_structural_mutations_never_crash(tree: Path, data: st.DataObject):
    rel = data.draw(st.sampled_from(SEEDS)).relative_to(EXAMPLES)
    yaml = YAML(typ="safe", pure=True)
    docs = [d for d in yaml.load_all((tree / rel).read_text(encoding="utf-8"))]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(docs) - 1))
        paths = list(_paths(docs[i]))
        path = data.draw(st.sampled_from(paths))
        op = data.draw(st.sampled_from(["delete", "retype", "rename", "insert", "wrap"]))
        if not path:
            docs[i] = data.draw(JUNK_VALUES) if op == "retype" else docs[i]
            continue
        parent, step = _get(docs[i], path[:-1]), path[-1]
        if op == "delete":
            del parent[step]
        elif op == "retype":
            parent[step] = data.draw(JUNK_VALUES)
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=12))] = parent.pop(step)
        elif op == "insert" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=12))] = data.draw(JUNK_VALUES)
        elif op == "wrap":
            parent[step] = data.draw(st.sampled_from([[parent[step]], {"value": parent[step]}]))
    out = io.StringIO()
    dumper = YAML(typ="safe", pure=True)
    dumper.dump_all(docs, out)
    _with(tree, rel, out.getvalue().encode("utf-8"), lambda path: _check(path.parent))


@FUZZ
@given(data=st.data())
def test_text_mutations_never_crash(tree: Path, data: st.DataObject):
    rel = data.draw(st.sampled_from(SEEDS)).relative_to(EXAMPLES)
    lines = (tree / rel).read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "indent", "dedent", "tab", "insert", "cut"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = " " * data.draw(st.integers(1, 3)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "tab":
            lines[i] = "\t" + lines[i].lstrip(" ")
        elif op == "insert":
            at = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + data.draw(YAML_CHARS) + lines[i][at:]
        elif op == "cut":
            lines = lines[:i] + [lines[i][: data.draw(st.integers(0, len(lines[i])))]]
    _with(tree, rel, "".join(lines).encode("utf-8"), lambda path: _check(path.parent))


DATA_FILES = sorted(p for p in EXAMPLES.rglob("data/*") if p.is_file())


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_data_file_mutations_never_crash(tree: Path, data: st.DataObject):
    rel = data.draw(st.sampled_from(DATA_FILES)).relative_to(EXAMPLES)
    content = bytearray((tree / rel).read_bytes()[:3000])  # a prefix: a few rows are enough
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(content)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        junk = data.draw(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b",", b"\n", b":", b"\xff",
                                          b"null", b"-1", b"1e999", b'""', b"\r\n", b"\x00"]))
        if op == "insert":
            content[at:at] = junk
        elif op == "delete":
            del content[at: at + data.draw(st.integers(1, 20))]
        else:
            content[at: at + len(junk)] = junk
    _with(tree, rel, bytes(content), lambda path: _check(tree / rel.parts[0]))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200))
def test_arbitrary_text_through_the_cli(tmp_path_factory, text: str):
    directory = tmp_path_factory.mktemp("cli")
    (directory / "m.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(directory)])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
