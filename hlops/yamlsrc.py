"""YAML text -> plain Python values, with the source position of every node.

Why not ruamel's round-trip objects: we need a position for *every* node (scalars too, to
point at a bad value), our own scalar rules (timestamps stay text: no manifest key is a date;
`${VAR}` interpolation applied to string scalars only, after parsing, so a variable can
never inject YAML), duplicate keys reported with both lines, and every failure turned into a
located :class:`~hlops.errors.Problem` instead of an exception. So we let a parser *compose*
(parse into nodes with marks) and build the values ourselves.

Which parser: libyaml's (PyYAML's C ``CParser``), with ruamel's YAML 1.2 scalar resolvers
registered on it so every node gets the tag ruamel's round-trip composer would give it,
when the C extension is there; it composes ~30x faster (600 manifest documents: 1.0 s ->
0.03 s of CPU, most of a no-op plan over 300 datasets + 300 projects). Text with a
construct the two read differently (tags, anchors, tabs...: ``_UNCOMMON``), and any text
libyaml refuses, is composed by ruamel (pure Python, the reference): its messages and marks
are the ones the located errors are written for.

Each value comes with a :class:`Src` tree: the position of the value, of its key when it sits
in a mapping, and the `Src` of its children. Positions are 1-based (line, column).

Interpolation: ``${NAME}`` is replaced by the environment variable NAME (an error names it
when unset), ``${NAME:-default}`` falls back to ``default`` when NAME is unset or empty, and
``$${...}`` is a literal ``${...}``. Only string values are interpolated, never keys.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import resolver as _ruamel_resolver
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

try:  # libyaml through PyYAML: the fast composer (see the module docstring)
    import yaml as _pyyaml
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML is a dependency; its C part may be absent
    _pyyaml = _CParser = None

from hlops.errors import Problem

MAX_DEPTH = 64
MAX_NODES = 1_000_000  # per file, aliases expanded; a guard against "billion laughs"

_TAG = "tag:yaml.org,2002:"

if _CParser is not None and _pyyaml.__with_libyaml__:
    class _Resolver12(_pyyaml.resolver.BaseResolver):
        """PyYAML's resolver machinery with ruamel's YAML 1.2 implicit tags (same regexes)."""

    for _versions, _tag, _regexp, _first in _ruamel_resolver.implicit_resolvers:
        if (1, 2) in _versions:
            _Resolver12.add_implicit_resolver(_tag, _regexp, _first)

    class _FastComposer(_CParser, _Resolver12):
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _Resolver12.__init__(self)

    _SCALAR: tuple[type, ...] = (ScalarNode, _pyyaml.nodes.ScalarNode)
    _SEQUENCE: tuple[type, ...] = (SequenceNode, _pyyaml.nodes.SequenceNode)
    _MAPPING: tuple[type, ...] = (MappingNode, _pyyaml.nodes.MappingNode)
else:  # pragma: no cover - without libyaml every text goes through ruamel
    _FastComposer = None
    _SCALAR, _SEQUENCE, _MAPPING = (ScalarNode,), (SequenceNode,), (MappingNode,)
_VAR = re.compile(r"\$\$\{|\$\{([^}\n]*)\}|\$\{")
# What the two composers read differently (found by tests/manifests/test_yaml_composers.py):
# directives, tags, anchors and aliases, tabs, a `...` document end, the YAML 1.1 line
# breaks and a BOM inside the text. Text with none of them takes the fast path.
_UNCOMMON = re.compile("[%!&*\t\x85\u2028\u2029\ufeff]|^\\.\\.\\.", re.M)
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(slots=True)
class Src:
    """Where a value was written. ``key_line``/``key_col`` are 0 for a value not in a mapping
    (a document, a list item). ``children`` maps keys (mappings) or holds items (lists)."""

    line: int
    col: int
    key_line: int = 0
    key_col: int = 0
    children: dict[Any, Src] | list[Src] | None = None
    raw: str | None = None  # the scalar as written (for messages: `1.10`, not 1.1)
    tag: str | None = None  # "str", "int", "float", "bool", "null", "timestamp", "map", "seq"
    bad: bool = False  # a problem was already reported here (e.g. an unset ${VAR})
    flow: bool = False  # a mapping or list written inline: {a: 1} / [1, 2]

    @property
    def key_pos(self) -> tuple[int, int]:
        return (self.key_line, self.key_col) if self.key_line else (self.line, self.col)

    def child(self, step: Any) -> Src | None:
        if isinstance(self.children, dict):
            return self.children.get(step)
        if isinstance(self.children, list) and isinstance(step, int):
            if 0 <= step < len(self.children):
                return self.children[step]
        return None


@dataclass
class Document:
    value: Any
    src: Src


@dataclass
class ParsedFile:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    broken: bool = False  # parsing stopped early: later documents were not read


class _Builder:
    def __init__(self, display: str, env: Mapping[str, str]):
        self.display = display
        self.env = env
        self.problems: list[Problem] = []
        self.nodes = 0  # nodes built so far, aliases counted at their expanded size
        self.memo: dict[int, tuple[Any, Src, int]] = {}  # an anchored node, built once
        # libyaml's nodes carry no anchor name: an alias is the same node object met again,
        # so every collection is remembered (a scalar met again is just built again)
        self.shared = False

    def problem(self, line: int, col: int, message: str) -> None:
        self.problems.append(Problem(self.display, line, col, message))

    def build(self, node: Any, stack: tuple[int, ...] = ()) -> tuple[Any, Src]:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if id(node) in stack:
            self.problem(line, col, "this alias refers to itself — a YAML anchor cannot contain "
                         "its own alias")
            return None, Src(line, col, tag="null", bad=True)
        if id(node) in self.memo:  # an alias: share the value, count its expanded size
            value, src, size = self.memo[id(node)]
            self.nodes += size
            if self.nodes > MAX_NODES:
                raise _TooBig(line, col)
            return value, dataclasses.replace(src)
        before = self.nodes
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(line, col)
        value, src = self._build(node, stack, line, col)
        if getattr(node, "anchor", None) or (self.shared and not isinstance(node, _SCALAR)):
            self.memo[id(node)] = (value, src, self.nodes - before)
        return value, src

    def _build(self, node: Any, stack: tuple[int, ...], line: int, col: int) -> tuple[Any, Src]:
        if len(stack) > MAX_DEPTH:
            self.problem(line, col, f"nested more than {MAX_DEPTH} levels deep — manifests are "
                         "only a few levels deep; check the indentation")
            return None, Src(line, col, tag="null")
        stack = (*stack, id(node))
        if isinstance(node, _SCALAR):
            return self.scalar(node, line, col)
        if isinstance(node, _SEQUENCE):
            ok = self.check_tag(node, "seq", line, col)
            items, srcs = [], []
            for item in node.value:
                value, src = self.build(item, stack)
                items.append(value)
                srcs.append(src)
            return items, Src(line, col, children=srcs, tag="seq", bad=not ok,
                              flow=bool(node.flow_style))
        if isinstance(node, _MAPPING):
            ok = self.check_tag(node, "map", line, col)
            value, src = self.mapping(node, line, col, stack)
            src.bad, src.flow = not ok, bool(node.flow_style)
            return value, src
        self.problem(line, col, "unsupported YAML node")  # pragma: no cover - defensive
        return None, Src(line, col)

    def mapping(self, node: MappingNode, line: int, col: int, stack) -> tuple[dict, Src]:
        out: dict[Any, Any] = {}
        srcs: dict[Any, Src] = {}
        merged: list[tuple[dict, dict]] = []
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key_node.tag == _TAG + "merge" or (
                isinstance(key_node, _SCALAR) and key_node.value == "<<" and not key_node.style
            ):
                value, src = self.build(value_node, stack)
                parts = value if isinstance(value, list) else [value]
                part_srcs = src.children if isinstance(value, list) else [src]
                for part, part_src in zip(parts, part_srcs or []):
                    if not isinstance(part, dict):
                        self.problem(kline, kcol, "`<<` merges a mapping (or a list of mappings) "
                                     "into this one — the alias here is not a mapping")
                        continue
                    merged.append((part, part_src.children or {}))
                continue
            if not isinstance(key_node, _SCALAR):
                self.problem(kline, kcol, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            value, src = self.build(value_node, stack)
            src.key_line, src.key_col = kline, kcol
            if isinstance(value_node, _SCALAR) and value_node.value == "" and src.tag == "null":
                src.line, src.col = kline, kcol  # `key:` with nothing after it
            if key in srcs:
                first = srcs[key].key_line
                self.problem(kline, kcol, f"duplicate key {key!r} — it is already set on line "
                             f"{first}; keep one of them")
                continue
            out[key] = value
            srcs[key] = src
        for part, part_srcs in merged:  # explicit keys win over merged ones
            for key, value in part.items():
                if key not in out:
                    out[key] = value
                    srcs[key] = part_srcs.get(key) or Src(line, col)
        return out, Src(line, col, children=srcs, tag="map")

    def check_tag(self, node: Any, expected: str, line: int, col: int) -> bool:
        tag = node.tag or ""
        if tag != _TAG + expected and (tag.startswith("!") or tag.startswith("tag:")):
            self.problem(line, col, f"unsupported YAML tag {_short_tag(tag)} — remove it")
            return False
        return True

    def scalar(self, node: ScalarNode, line: int, col: int) -> tuple[Any, Src]:
        tag, text = node.tag or "", node.value
        if node.style == ">" and "\a" in text:
            text = text.replace("\a", "")  # ruamel's round-trip fold marks (YAML has no literal BEL)
        kind = tag[len(_TAG):] if tag.startswith(_TAG) else tag
        src = Src(line, col, raw=text, tag=kind)
        if kind == "str":
            before = len(self.problems)
            value = self.interpolate(text, node, line, col)
            src.bad = len(self.problems) > before
            return value, src
        if kind == "null":
            return None, src
        if kind == "bool":
            if text.lower() in ("true", "false"):
                return text.lower() == "true", src
        elif kind == "int":
            try:
                return int(text.replace("_", ""), 0), src
            except ValueError:
                try:
                    return int(text.replace("_", ""), 10), src
                except ValueError:
                    pass
        elif kind == "float":
            try:
                lowered = text.lower().replace("_", "")
                if lowered in (".inf", "+.inf", "-.inf", ".nan"):
                    return float(lowered.replace(".", "")), src
                return float(lowered), src
            except ValueError:
                pass
        elif kind == "timestamp":
            src.tag = "str"  # no manifest value is a date: keep what was written
            return text, src
        else:
            self.problem(line, col, f"unsupported YAML tag {_short_tag(tag)} — remove it")
            src.bad = True
            return text, src
        self.problem(line, col, f"{text!r} is not a valid {kind} for the tag {_short_tag(tag)} "
                     "— remove the tag or fix the value")
        src.bad = True
        return text, src

    def interpolate(self, text: str, node: ScalarNode, line: int, col: int) -> str:
        if "$" not in text:
            return text
        one_line = node.start_mark.line == node.end_mark.line
        quote = 1 if node.style in ("'", '"') else 0

        def at(offset: int) -> tuple[int, int]:
            return (line, col + quote + offset) if one_line and (not node.style or node.style in ("'", '"')) else (line, col)

        def replace(match: re.Match) -> str:
            token = match.group(0)
            if token == "$${":
                return "${"
            if match.group(1) is None:
                self.problem(*at(match.start()), "unterminated ${ — write ${NAME}, or $${ for a "
                             "literal ${")
                return token
            name, sep, default = match.group(1).partition(":-")
            if not _VAR_NAME.match(name):
                self.problem(*at(match.start()), f"{token!r} is not a valid variable reference — "
                             "write ${NAME} with letters, digits and _, or $${...} for a literal")
                return token
            value = self.env.get(name)
            if value is None or (sep and value == ""):
                if sep:
                    return default
                self.problem(*at(match.start()), f"environment variable {name} is not set — set "
                             f"it, give a default with ${{{name}:-default}}, or write $${{{name}}} "
                             "for a literal")
                return token
            return value

        return _VAR.sub(replace, text)


class _TooBig(Exception):
    def __init__(self, line: int, col: int):
        self.line, self.col = line, col


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _syntax_message(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    hint = "check the syntax of this line"
    if "'\\t'" in problem or "\t" in problem:
        return "a tab character where YAML expects indentation — indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        hint = "a value with ': ' in it needs quotes, or this line is indented wrongly"
    elif "expected <block end>" in problem:
        hint = "check the indentation: this line does not line up with the lines above it"
    elif "could not find expected ':'" in problem:
        hint = "a key needs ': ' (colon and space) after it; a value spanning lines needs " \
               "quotes or `|`"
    elif "undefined alias" in problem:
        hint = "define the anchor (&name) before using the alias (*name)"
    elif "quoted scalar" in context:
        return "YAML syntax error: this quote is never closed — close it at the end of the value"
    elif problem.startswith("expected ',' or") and exc.context_mark is not None:
        opened = exc.context_mark.line + 1
        hint = f"a bracket opened on line {opened} is not closed, or a ',' is missing"
    elif "expected the node content" in problem:
        hint = "a value is missing, or a bracket is not closed"
    elif "did not find expected" in problem:
        hint = "check the indentation and that brackets and quotes are closed"
    elif "block sequence entries are not allowed" in problem:
        hint = "a `- item` list must start on its own line, indented under its key"
    what = problem or context or "invalid YAML"
    return f"YAML syntax error: {what} — {hint}"


def parse(text: str, display: str, env: Mapping[str, str]) -> ParsedFile:
    """Every document of ``text`` (empty documents skipped) and every problem found."""
    if text.startswith("\ufeff"):
        text = text[1:]
    fast = _fast_compose(text)
    if fast is not None:
        out = ParsedFile()
        builder = _Builder(display, env)
        builder.shared = True
        try:
            for node in fast:
                _add_document(out, builder, node)
        except _TooBig as exc:
            _too_big(builder, exc)
            out.broken = True
        except (ValueError, TypeError, RecursionError):
            return parse_reference(text, display, env)
        out.problems = builder.problems
        return out
    return parse_reference(text, display, env)


def parse_reference(text: str, display: str, env: Mapping[str, str]) -> ParsedFile:
    """:func:`parse` by ruamel's composer alone (the reference the fast path must equal)."""
    out = ParsedFile()
    builder = _Builder(display, env)
    if text.startswith("\ufeff"):
        text = text[1:]
    yaml = YAML(typ="rt")
    try:
        for node in yaml.compose_all(text):
            _add_document(out, builder, node)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context or ""
        if exc.context_mark is not None and (
            "quoted scalar" in context or "could not find expected ':'" in (exc.problem or "")
        ):
            mark = exc.context_mark  # the quote never closed, the key without ': '...
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        builder.problem(line, col, _syntax_message(exc))
        out.broken = True
    except _TooBig as exc:
        _too_big(builder, exc)
        out.broken = True
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        builder.problem(1, 1, f"could not read this YAML ({type(exc).__name__}) — check the "
                        "file's syntax")
        out.broken = True
    out.problems = builder.problems
    return out


def _fast_compose(text: str) -> list | None:
    """Every document's node by libyaml, or None: no libyaml; text with a construct the two
    composers read differently (``_UNCOMMON``), whose reading ruamel decides; or text libyaml
    refuses (ruamel then reports where and why)."""
    if _FastComposer is None or _UNCOMMON.search(text):
        return None
    try:
        return list(_pyyaml.compose_all(text, Loader=_FastComposer))
    except Exception:  # noqa: BLE001 - any refusal: the reference composer decides
        return None


def _add_document(out: ParsedFile, builder: _Builder, node: Any) -> None:
    if node is None:
        return
    if isinstance(node, _SCALAR) and node.tag == _TAG + "null" and node.value in ("", "~"):
        return  # an empty document (only comments, or `---` twice)
    value, src = builder.build(node)
    out.documents.append(Document(value, src))


def _too_big(builder: _Builder, exc: _TooBig) -> None:
    builder.problem(exc.line, exc.col, f"more than {MAX_NODES:,} YAML nodes (aliases "
                    "expanding?) — put large data in a data file")
