"""Files -> a checked :class:`Config`: the only module that reads manifests from disk.

``load(paths)`` reads a file, a directory tree, or several of them, and either returns a
:class:`Config` or raises :class:`~hlops.errors.ManifestError` with *every* problem found,
each located ``path:line:col``:

1. find the files: ``*.yaml``/``*.yml`` below each directory (sorted; hidden directories
   and files, ``.hlops/``, and ``hlops.yaml``/``hlops.yml`` skipped — the latter is the
   settings file, read only at the root);
2. parse each file's documents with positions (:mod:`hlops.yamlsrc`), interpolating
   ``${ENV_VAR}``;
3. validate each document by its ``kind`` (:mod:`hlops.models`), turning pydantic errors into
   located sentences (:mod:`hlops.explain`);
4. check what spans documents (:mod:`hlops.refs`);
5. read ``guidelines: x.md`` files, resolve data paths relative to their manifest, and (unless
   ``check_data=False``) stream every data file once to check its rows
   (:mod:`hlops.datafile`).

The root of the tree (``Config.root``) is the directory given (or the file's directory;
with several paths, their common directory). Settings come from ``hlops.yaml`` at the root
only: there is no search upwards, so what a command reads is exactly what it was pointed at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hlops import datafile, refs
from hlops.errors import ManifestError, Problem
from hlops.explain import explain, walk
from hlops.models import KINDS, Dataset, Project, Settings, nearest
from hlops.yamlsrc import Src, parse

SETTINGS_FILES = ("hlops.yaml", "hlops.yml")
MANIFEST_SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = (".hlops", "node_modules", "__pycache__")
_GUESS_KIND = {"fields": "Dataset", "data": "Dataset", "key": "Dataset",
               "inputs": "Project", "outputs": "Project", "guidelines": "Project"}
_SETTINGS_KEYS = ("base_url", "owns", "parallelism")
_NAME_LINE = re.compile(r"^\s*name:\s*[\"']?(.+?)[\"']?\s*(?:#.*)?$", re.M)


@dataclass(frozen=True)
class Location:
    """Where something was written; ``line``/``col`` 1-based (0: the whole file)."""

    path: str
    line: int
    col: int

    def problem(self, message: str) -> Problem:
        return Problem(self.path, self.line, self.col, message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}" if self.line else self.path


@dataclass
class _Doc:
    kind: str
    name: str
    file: Path  # absolute
    display: str
    src: Src
    value: dict


@dataclass
class Config:
    """The manifests of a tree, validated. Resources are looked up by name."""

    root: Path
    settings: Settings
    datasets: dict[str, Dataset]
    projects: dict[str, Project]
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows checked per dataset
    _docs: dict[tuple[str, str], _Doc] = field(default_factory=dict, repr=False)
    _guidelines: dict[str, str] = field(default_factory=dict, repr=False)
    _data: dict[str, Path] = field(default_factory=dict, repr=False)
    _settings_display: str = ""

    def location(self, kind: str, name: str, attr_path: tuple = ()) -> Location:
        """Where ``kind`` ``name`` (or one of its attributes, e.g.
        ``("outputs", "sentiment", "labels", 0)``) was declared. Without ``attr_path``: its
        ``name:``. An attribute that was not written points at the nearest enclosing node."""
        doc = self._docs[(kind, name)]
        path = tuple("from" if step == "from_" else step for step in attr_path) or ("name",)
        return Location(doc.display, *point(doc.src, path))

    def data_path(self, dataset_name: str) -> Path | None:
        """The resolved data file of a dataset (None: inline data, or no data)."""
        return self._data.get(dataset_name)

    def inline_rows(self, dataset_name: str) -> Iterator[tuple[int, int, Any]]:
        """``(line, col, row)`` of a dataset's inline ``data:`` list."""
        doc = self._docs[("Dataset", dataset_name)]
        rows = doc.value.get("data")
        node = doc.src.child("data")
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            item = node.child(i) if node else None
            yield (item.line, item.col, row) if item else (doc.src.line, doc.src.col, row)

    def guidelines(self, project_name: str) -> str | None:
        """A project's guidelines as markdown text (read from its file, or inline)."""
        return self._guidelines.get(project_name, self.projects[project_name].guidelines)

    def levels(self) -> list[list[tuple[str, str]]]:
        """Dependency levels: create level by level, delete in reverse."""
        return refs.levels(self.datasets, self.projects)

    def span_texts(self, dataset_name: str) -> dict[str, str]:
        """Span field -> the text field its spans point into (see :func:`refs.span_texts`)."""
        return refs.span_texts(self.datasets[dataset_name], self.projects.values())

    def input_types(self, project_name: str) -> dict[str, str | None]:
        """Input name -> data type, resolved from the source fields."""
        return refs.input_types(self.projects[project_name], self.datasets)

    def source_file(self, kind: str, name: str) -> Path:
        """The manifest file that declares a resource."""
        return self._docs[(kind, name)].file


def point(src: Src, at: tuple) -> tuple[int, int]:
    """(line, col) to show for attribute path ``at`` of a document: the deepest node written
    along it; a scalar's value, or a mapping's or list's key (``outputs:`` rather than its
    first entry)."""
    node, _ = walk(src, at)
    if node.children is None:
        return node.line, node.col  # a scalar (also a short form standing for a mapping)
    return node.key_pos


def display_path(path: Path | str) -> str:
    return datafile.display_path(path)


def is_guidelines_path(text: str) -> bool:
    """``guidelines:`` names a file when it is one line ending in ``.md``."""
    stripped = text.strip()
    return "\n" not in stripped and stripped.lower().endswith((".md", ".markdown"))


# --------------------------------------------------------------------------- discovery


def _discover(paths: list[Path], problems: list[Problem]) -> tuple[Path, list[Path], Path | None]:
    """(root, manifest files, settings file) for the given paths."""
    files: list[Path] = []
    dirs: list[Path] = []
    explicit_settings = None
    for path in paths:
        if not path.exists():
            problems.append(Problem(display_path(path), 0, 0, "no such file or directory"))
            continue
        if path.is_dir():
            dirs.append(path)
            found = list(_walk(path))
            if not found:
                problems.append(Problem(display_path(path), 0, 0, "no manifests (*.yaml, *.yml) "
                                        "in this directory (to start from what exists remotely: "
                                        "`hlops pull --all` writes it here as manifests)"))
            files += found
        elif path.name in SETTINGS_FILES:
            explicit_settings = path
            dirs.append(path.parent)
        elif path.suffix.lower() not in MANIFEST_SUFFIXES:
            problems.append(Problem(display_path(path), 0, 0, "not a manifest — manifests are "
                                    ".yaml or .yml files (data files are named by `data:`)"))
        else:
            files.append(path)
            dirs.append(path.parent)
    root = Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path.cwd()
    settings = explicit_settings
    if settings is None:
        candidates = [root / name for name in SETTINGS_FILES if (root / name).is_file()]
        if len(candidates) > 1:
            problems.append(Problem(display_path(candidates[1]), 0, 0, "both hlops.yaml and "
                                    "hlops.yml exist — keep one settings file"))
        settings = candidates[0] if candidates else None
    unique = list(dict.fromkeys(files))
    return root, unique, settings


def _walk(directory: Path) -> Iterator[Path]:
    for here, subdirs, names in os.walk(directory):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(names):
            if name.startswith(".") or name in SETTINGS_FILES:
                continue
            if name.lower().endswith(MANIFEST_SUFFIXES):
                yield Path(here) / name


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(display_path(path), 0, 0, f"cannot read: {exc.strerror}"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(Problem(display_path(path), line, col, "not valid UTF-8 — save the file "
                                "as UTF-8"))
        return None


# --------------------------------------------------------------------------- documents


def _validate_document(value: Any, src: Src, display: str, problems: list[Problem],
                       failed: set[str]) -> tuple[str, Any] | None:
    """(kind, model) for a valid document; else its problems are added."""

    def add(line: int, col: int, message: str) -> None:
        problems.append(Problem(display, line, col, message))

    if not isinstance(value, dict):
        what = "a list" if isinstance(value, list) else "a single value"
        add(src.line, src.col, f"a manifest document must be a mapping with `kind:` (Dataset "
            f"or Project), got {what}")
        return None
    kind = value.get("kind")
    name = value.get("name")
    if isinstance(name, str) and kind != "Project":
        failed.add(name)  # a dataset that may exist; removed below if the document is valid
    if kind is None:
        if any(k in value for k in _SETTINGS_KEYS) and not any(k in value for k in _GUESS_KIND):
            add(src.line, src.col, "settings (base_url, owns, parallelism) belong in hlops.yaml "
                "at the root of the tree, not in a manifest — move them there")
            return None
        guesses = sorted({_GUESS_KIND[k] for k in value if k in _GUESS_KIND})
        hint = (f"add `kind: {guesses[0]}`" if len(guesses) == 1 else
                "add `kind: Dataset` or `kind: Project`")
        add(src.line, src.col, f"this document has no `kind` — {hint}")
        return None
    if not isinstance(kind, str) or kind not in KINDS:
        node = src.child("kind") or src
        guess = nearest(str(kind), KINDS)
        shown = repr(kind) if isinstance(kind, str) else str(kind)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        add(node.line, node.col, f"unknown kind {shown} — {hint}(kinds: {', '.join(KINDS)})")
        return None
    model_cls = KINDS[kind]
    collected: list[tuple[tuple, str]] = []
    try:
        model = model_cls.model_validate(value, context={"problems": collected})
    except ValidationError as exc:
        for line, col, message in explain(exc.errors(), src, model_cls, kind):
            add(line, col, message)
        return None
    if collected:
        for at, message in collected:
            add(*point(src, at), message)
        return None
    if _has_bad(src):
        return None  # its ${VAR}/tag problems are reported; do not check references from it
    if kind == "Dataset":
        failed.discard(model.name)
    return kind, model


def _has_bad(src: Src) -> bool:
    if src.bad:
        return True
    children = src.children.values() if isinstance(src.children, dict) else src.children or ()
    return any(_has_bad(child) for child in children)


def _load_settings(path: Path | None, env: Mapping[str, str],
                   problems: list[Problem]) -> Settings:
    if path is None:
        return Settings()
    text = _read_text(path, problems)
    if text is None:
        return Settings()
    display = display_path(path)
    parsed = parse(text, display, env)
    problems += parsed.problems
    docs = parsed.documents
    if not docs:
        return Settings()
    if len(docs) > 1:
        problems.append(Problem(display, docs[1].src.line, docs[1].src.col, "hlops.yaml holds "
                                "one document — move resources into manifests"))
    value, src = docs[0].value, docs[0].src
    if isinstance(value, dict) and "kind" in value:
        problems.append(Problem(display, src.line, src.col, "hlops.yaml holds settings "
                                "(base_url, owns, parallelism), not resources — move this "
                                "document into another .yaml file"))
        return Settings()
    if not isinstance(value, dict):
        problems.append(Problem(display, src.line, src.col, "hlops.yaml must be a mapping of "
                                "settings (base_url, owns, parallelism)"))
        return Settings()
    try:
        return Settings.model_validate(value)
    except ValidationError as exc:
        for line, col, message in explain(exc.errors(), src, Settings, "hlops.yaml"):
            problems.append(Problem(display, line, col, message))
        return Settings()


def load_settings(directory: Path, env: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``directory``'s ``hlops.yaml`` alone (defaults without one), for a
    directory that holds no manifest yet (``hlops pull --all`` into an empty directory).
    Raises ManifestError with every problem of the file."""
    problems: list[Problem] = []
    candidates = [directory / name for name in SETTINGS_FILES if (directory / name).is_file()]
    if len(candidates) > 1:
        problems.append(Problem(display_path(candidates[1]), 0, 0, "both hlops.yaml and "
                                "hlops.yml exist — keep one settings file"))
    settings = _load_settings(candidates[0] if candidates else None,
                              os.environ if env is None else env, problems)
    if problems:
        raise ManifestError(problems)
    return settings


# --------------------------------------------------------------------------- load


def load(paths: str | Path | Iterable[str | Path], *, check_data: bool = True,
         env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and cross-check manifests; stream and check their data files.

    Raises ManifestError with every problem. ``env`` replaces ``os.environ`` for
    ``${VAR}`` interpolation (tests)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    env = os.environ if env is None else env
    problems: list[Problem] = []
    root, files, settings_path = _discover([Path(p) for p in paths], problems)
    settings = _load_settings(settings_path, env, problems)

    declared: list[refs.Declared] = []
    docs: list[_Doc] = []
    unverifiable: set[str] = set()
    for path in files:
        text = _read_text(path, problems)
        if text is None:
            unverifiable.update(_names_in(path))
            continue
        display = display_path(path)
        parsed = parse(text, display, env)
        problems += parsed.problems
        if parsed.broken:
            unverifiable.update(m.group(1) for m in _NAME_LINE.finditer(text))
        for document in parsed.documents:
            result = _validate_document(document.value, document.src, display, problems,
                                        unverifiable)
            if result is None:
                continue
            kind, model = result
            name_node = document.src.child("name") or document.src
            where = f"{display}:{name_node.line}:{name_node.col}"
            declared.append(refs.Declared(model, where))
            docs.append(_Doc(kind, model.name, path.absolute(), display, document.src,
                             document.value))

    datasets, projects, ref_problems = refs.check(declared, unverifiable)
    first_docs: dict[tuple[str, str], _Doc] = {}
    doc_lists: dict[tuple[str, str], list[_Doc]] = {}
    for doc in docs:
        first_docs.setdefault((doc.kind, doc.name), doc)
        doc_lists.setdefault((doc.kind, doc.name), []).append(doc)
    config = Config(root=root.absolute(), settings=settings, datasets=datasets,
                    projects=projects, files=[f.absolute() for f in files], _docs=first_docs)
    for rp in ref_problems:
        doc = doc_lists[(rp.kind, rp.name)][rp.index]
        problems.append(Problem(doc.display, *point(doc.src, rp.at), rp.message))

    _read_guidelines(config, problems)
    _resolve_data(config, problems, check_data)
    problems += _provider_problems(config)
    if problems:
        raise ManifestError(_unique(problems))
    return config


def _provider_problems(config: Config) -> list[Problem]:
    """What the provider hlops.yaml names cannot represent, at the manifests' lines."""
    from hlops.provider import provider_class

    def locate(manifest_kind: str, name: str, at: tuple = ()) -> tuple[str, int, int]:
        doc = config._docs.get((manifest_kind, name))
        if doc is None:
            return ("", 0, 0)
        return (doc.display, *point(doc.src, tuple(at)))

    return list(provider_class(config.settings.provider).validate(config, locate))


def _names_in(path: Path) -> set[str]:
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return set()
    return {m.group(1) for m in _NAME_LINE.finditer(text)}


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _read_guidelines(config: Config, problems: list[Problem]) -> None:
    for name, project in config.projects.items():
        text = project.guidelines
        if text is None or not is_guidelines_path(text):
            continue
        doc = config._docs[("Project", name)]
        path = (doc.file.parent / text.strip())
        where = config.location("Project", name, ("guidelines",))
        if not path.is_file():
            problems.append(where.problem(
                f"guidelines file {text.strip()!r} not found (looked for "
                f"{display_path(path)}) — create it, or write the guidelines inline"))
            continue
        try:
            config._guidelines[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(where.problem(f"guidelines file {text.strip()!r} is not valid UTF-8 — "
                                          "save it as UTF-8"))
        except OSError as exc:
            problems.append(where.problem(f"cannot read guidelines file {text.strip()!r}: "
                                          f"{exc.strerror}"))


def _inline_located(config: Config, name: str) -> Iterator[tuple]:
    """Inline rows with a locator for each field's value (for messages)."""
    node = config._docs[("Dataset", name)].src.child("data")
    for i, (line, col, row) in enumerate(config.inline_rows(name)):
        item = node.child(i) if node else None

        def position(field, item=item, at=(line, col)):
            child = item.child(field) if item is not None and field is not None else None
            return (child.line, child.col) if child is not None else at

        yield line, col, row, position


def _resolve_data(config: Config, problems: list[Problem], check: bool) -> None:
    for name, dataset in config.datasets.items():
        if dataset.ensure != "present" or dataset.data is None:
            continue
        fields, key = dataset.field_types(), dataset.key
        texts = config.span_texts(name)
        if isinstance(dataset.data, list):
            _, found = datafile.check_inline(_inline_located(config, name), fields, key, texts,
                                             config.location("Dataset", name).path)
            problems += found
            config.rows[name] = len(dataset.data)
            continue
        doc = config._docs[("Dataset", name)]
        where = config.location("Dataset", name, ("data",))
        written = dataset.data.strip()
        path = Path(os.path.normpath(doc.file.parent / written))
        if datafile.format_of(path) is None:
            problems.append(where.problem(
                f"data file {written!r} has an unsupported extension — use .jsonl, .json or "
                ".csv"))
            continue
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            problems.append(where.problem(
                f"data file {written!r} {what} (looked for {display_path(path)}) — data paths "
                "are relative to the manifest"))
            continue
        config._data[name] = path
        if check:
            try:
                rows, found = datafile.check_data(path, fields, key, span_texts=texts)
            except OSError as exc:
                problems.append(where.problem(f"cannot read data file {written!r}: {exc.strerror}"))
                continue
            problems += found
            config.rows[name] = rows
