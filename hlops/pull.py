"""Remote -> manifests: `hlops pull` and `hlops import`.

- :func:`pull` refreshes what a manifest tree declares from the remote: each declared
  resource that exists is compared in the comparable shape of its kind, and only the
  attributes that differ are rewritten in place (:mod:`hlops.writeback`, ruamel round-trip:
  comments and layout stay); a guidelines file is rewritten when its text differs; a data
  file is rewritten from the remote datapoints when the digest comparison finds a
  difference (rows still present keep their place and, in ``.jsonl``, their exact line).
  With ``undeclared=True`` remote resources no manifest declares (those the tree owns, when
  ``hlops.yaml`` says what it owns) are written as new files, like :func:`import_resources`.
- :func:`import_resources` writes chosen remote resources (``dataset/x``, ``project/y``) as
  new manifests in a directory, with the datasets a project reads, its guidelines in a
  ``.md`` file when long or multi-line, and the datapoints in ``data/<name>.jsonl``.

What stays as declared: names (a pending ``renamed_from`` is a change the manifests ask for),
``ensure: absent`` declarations, attributes under ``lifecycle.ignore_changes`` (they are the
web app's), and declared resources that do not exist remotely (apply creates them).

Nothing is written until everything is computed; files are replaced atomically
(write + rename); ``dry_run`` computes the same report and writes nothing. After writing,
the tree is loaded again and compared with the remote: a resource that still differs is
reported (a pull followed by a plan shows no changes).

Memory: a data file being rewritten needs the remote rows of that dataset in memory (their
canonical JSON, keyed by key or hash); new data files are streamed.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from hlops import canonical
from hlops.diff import apply_ignore_changes
from hlops.errors import HlopsError, PlanError
from hlops.manifest import Config, display_path, load
from hlops.models import Ownership
from hlops.planner import dataset_renames, desired_state
from hlops.provider import DataSpec, Provider, RemoteState
from hlops.writeback import (
    Context,
    detect_indent,
    flow_map,
    guidelines_need_file,
    new_document,
    text,
    update_document,
)

INLINE_ROWS = 50  # inline `data:` that grows past this many rows moves to a data file


@dataclass
class FileWrite:
    """One file pull writes: a manifest, a guidelines file or a data file."""

    path: Path
    role: str  # "manifest" | "guidelines" | "data"
    created: bool
    what: list[str] = field(default_factory=list)  # "project/x: description, users" ...
    before: str | None = None  # text files: for --dry-run diffs
    after: str | None = None
    rows: int = 0  # data files
    sensitive: bool = False  # its diff would show datapoints: never printed
    writer: Callable[[Path], int] | None = field(default=None, repr=False)

    def diff(self) -> str:
        """A unified diff of a text file (empty for data files and anything holding rows)."""
        if self.sensitive or self.after is None:
            return ""
        name = display_path(self.path)
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{name}" if self.before is not None else "/dev/null",
                tofile=f"b/{name}",
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": display_path(self.path),
            "role": self.role,
            "created": self.created,
            "what": self.what,
            **({"rows": self.rows} if self.role == "data" else {}),
        }


@dataclass
class PullReport:
    files: list[FileWrite] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)  # addresses refreshed or written
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # declared and equal already
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "files": [f.to_json() for f in self.files],
            "resources": self.resources,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


# --------------------------------------------------------------------------- files


class _YamlFile:
    def __init__(self, path: Path, source: str | None):
        self.path = path
        self.source = source
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096
        self.yaml.indent(*detect_indent(source or ""))
        self.docs: list[Any] = list(self.yaml.load_all(source)) if source is not None else []
        self.what: list[str] = []
        self.sensitive = False

    def doc_at(self, line: int, col: int) -> CommentedMap:
        """The document whose ``name:`` value sits at ``line``:``col`` (1-based)."""
        for doc in self.docs:
            if isinstance(doc, CommentedMap) and "name" in doc:
                if tuple(doc.lc.value("name")) == (line - 1, col - 1):
                    return doc
        raise PlanError(f"{display_path(self.path)}:{line}: cannot find this document again to update it")

    def dump(self) -> str:
        out = io.StringIO()
        if self.docs:
            self.yaml.dump_all(self.docs, out)
        return out.getvalue()


class _Files:
    """Every file a pull will write, computed in memory first."""

    def __init__(self) -> None:
        self.yaml: dict[Path, _YamlFile] = {}
        self.texts: dict[Path, FileWrite] = {}
        self.data: dict[Path, FileWrite] = {}
        self.reserved: set[Path] = set()

    def manifest(self, path: Path) -> _YamlFile:
        path = path.absolute()
        if path not in self.yaml:
            self.yaml[path] = _YamlFile(path, path.read_text(encoding="utf-8"))
        return self.yaml[path]

    def new_manifest(self, path: Path, doc: CommentedMap, what: str) -> None:
        yf = _YamlFile(path.absolute(), None)
        yf.yaml.indent(2, 4, 2)
        yf.docs.append(doc)
        yf.what.append(what)
        self.yaml[path.absolute()] = yf

    def text(self, path: Path, content: str, what: str) -> None:
        path = path.absolute()
        before = path.read_text(encoding="utf-8") if path.is_file() else None
        self.texts[path] = FileWrite(path, "guidelines", before is None, [what], before, content)

    def data_file(self, path: Path, writer: Callable[[Path], int], what: str, rows: int) -> None:
        path = path.absolute()
        self.data[path] = FileWrite(path, "data", not path.exists(), [what], rows=rows, writer=writer)

    def unique(self, directory: Path, stem: str, suffix: str) -> Path:
        """A path in ``directory`` that neither exists nor is planned."""
        directory = directory.absolute()
        for n in range(1, 10_000):
            candidate = directory / f"{stem}{'' if n == 1 else f'-{n}'}{suffix}"
            if not candidate.exists() and candidate not in self.reserved and candidate not in self.yaml:
                self.reserved.add(candidate)
                return candidate
        raise PlanError(f"no free file name for {stem}{suffix} in {display_path(directory)}")

    def changes(self) -> list[FileWrite]:
        out = []
        for yf in self.yaml.values():
            after = yf.dump()
            if after != yf.source:
                out.append(FileWrite(yf.path, "manifest", yf.source is None, yf.what, yf.source, after, sensitive=yf.sensitive))
        out += [w for w in self.texts.values() if w.after != w.before]
        out += list(self.data.values())
        return sorted(out, key=lambda w: str(w.path))

    @staticmethod
    def write(changes: list[FileWrite]) -> None:
        for w in changes:
            w.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = w.path.with_name(f".{w.path.name}.hlops-tmp")
            try:
                if w.writer is not None:
                    w.rows = w.writer(tmp)
                else:
                    tmp.write_text(w.after or "", encoding="utf-8")
                os.replace(tmp, w.path)
            finally:
                tmp.unlink(missing_ok=True)


def slug(name: str) -> str:
    """A file name for a resource name: lower case, dashes, at most 60 characters."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-") or "resource"


# --------------------------------------------------------------------------- datapoints


def _remote_rows(provider: Provider, raw: dict) -> Iterator[dict[str, Any]]:
    return provider.remote_rows(raw)


def _ordered(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: row[name] for name in fields if name in row}


def _jsonl_line(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


def _stream_new(provider: Provider, raw: dict, fields: list[str]) -> Callable[[Path], int]:
    def write(path: Path) -> int:
        n = 0
        with path.open("wb") as out:
            for row in _remote_rows(provider, raw):
                out.write(_jsonl_line(_ordered(row, fields)))
                n += 1
        return n

    return write


class _RemoteRows:
    """The remote datapoints of one dataset, by key (or hash), in id order."""

    def __init__(self, provider: Provider, raw: dict, fields: dict[str, str], key: str | None):
        self.rows: dict[str, list[tuple[str, bytes]]] = {}
        names = list(fields)
        for row in _remote_rows(provider, raw):
            h = canonical.row_hash(row)
            k = canonical.key_text(row, key, h) or h
            self.rows.setdefault(k, []).append((h, orjson.dumps(_ordered(row, names))))

    def take(self, key: str) -> tuple[str, bytes] | None:
        found = self.rows.get(key)
        if not found:
            return None
        item = found.pop(0)
        if not found:
            del self.rows[key]
        return item

    def rest(self) -> Iterator[bytes]:
        for items in self.rows.values():
            for _, data in items:
                yield data


def _local(path: Path, fmt: str, fields: dict[str, str], key: str | None, config: Config, name: str) -> Iterator[tuple[str, str, bytes | None]]:
    """``(key, hash, original line or None)`` of each local row, in file order."""
    if fmt == "jsonl":
        with path.open("rb") as handle:
            for i, line in enumerate(handle):
                if i == 0 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                if not line.strip():
                    continue
                norm = canonical.normalise_row(orjson.loads(line), fields)
                h = canonical.row_hash(norm)
                yield canonical.key_text(norm, key, h) or h, h, line if line.endswith(b"\n") else line + b"\n"
        return
    if fmt == "json":
        elements = _json_lines(path)
        if elements is not None:  # one element per line: keep each unchanged line as written
            for line in elements:
                norm = canonical.normalise_row(orjson.loads(line), fields)
                h = canonical.row_hash(norm)
                yield canonical.key_text(norm, key, h) or h, h, line
            return
    from hlops.datafile import iter_normalised

    for _, norm in iter_normalised(config, name):
        h = canonical.row_hash(norm)
        yield canonical.key_text(norm, key, h) or h, h, None


def _json_lines(path: Path) -> list[bytes] | None:
    """The elements of a JSON array written one per line (``[``, ``  {...},`` ... ``]``),
    each as written (indent kept, comma dropped); None for any other layout."""
    lines = [ln.rstrip(b"\r\n") for ln in path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")]
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2 or lines[0].strip() != b"[" or lines[-1].strip() != b"]":
        return None
    out = []
    for i, line in enumerate(lines[1:-1]):
        last = i == len(lines) - 3
        body = line.rstrip()
        if not last:
            if not body.endswith(b","):
                return None
            body = body[:-1]
        try:
            if not isinstance(orjson.loads(body), dict):
                return None
        except orjson.JSONDecodeError:
            return None
        out.append(body)
    return out


def _merged(remote: _RemoteRows, local: Iterable[tuple[str, str, bytes | None]]) -> Iterator[tuple[bytes, bytes | None]]:
    """``(row JSON, original line)``: the local order for rows still there (the original
    line when the row is unchanged), then the remote rows the file did not have."""
    for k, h, line in local:
        found = remote.take(k)
        if found is None:
            continue  # gone remotely
        rh, data = found
        yield data, line if rh == h else None
    for data in remote.rest():
        yield data, None


def _writer(fmt: str, rows: Callable[[], Iterator[tuple[bytes, bytes | None]]], fields: dict[str, str], first: bytes) -> Callable[[Path], int]:
    """Write ``rows`` in ``fmt``; new or changed rows follow the style of the file's ``first``
    line (line ending; for JSON Lines, ``", "`` separators as Python's json writes them)."""
    crlf = first.endswith(b"\r\n")
    spaced = b'": ' in first
    newline = b"\r\n" if crlf else b"\n"

    def styled(data: bytes) -> bytes:
        if not spaced:
            return data
        return json.dumps(orjson.loads(data), ensure_ascii=False).encode("utf-8")

    def write(path: Path) -> int:
        n = 0
        with path.open("wb") as out:
            if fmt == "jsonl":
                for data, line in rows():
                    out.write(line if line is not None else styled(data) + newline)
                    n += 1
            elif fmt == "json":
                out.write(b"[")
                for data, line in rows():
                    out.write((b"," + newline if n else newline) + (line if line is not None else b"  " + styled(data)))
                    n += 1
                out.write(newline + b"]" + newline if n else b"]" + newline)
            else:
                buffer = io.StringIO()
                sheet = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
                sheet.writerow(list(fields))
                for data, _ in rows():
                    row = orjson.loads(data)
                    sheet.writerow([_cell(row.get(name)) for name in fields])
                    n += 1
                    if buffer.tell() > 1 << 20:
                        out.write(buffer.getvalue().encode("utf-8"))
                        buffer.seek(0)
                        buffer.truncate()
                out.write(buffer.getvalue().encode("utf-8"))
        return n

    return write


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


# --------------------------------------------------------------------------- pull


class _Puller:
    def __init__(self, provider: Provider, state: RemoteState, data: bool, cache_dir: Path | None):
        self.provider = provider
        self.kinds = provider.kinds
        self.state = state
        self.data = data
        self.cache_dir = cache_dir
        self.files = _Files()
        self.report = PullReport()

    # ---------------------------------------------------------------- declared

    def refresh(self, config: Config) -> None:
        desired = desired_state(config, self.kinds)
        for d in desired:
            model = (config.datasets if d.kind == "dataset" else config.projects)[d.name]
            raw = self.state.by_name(d.kind, d.name)
            if raw is None and d.renamed_from:
                raw = self.state.by_name(d.kind, d.renamed_from)
            if raw is None:
                if not d.absent:
                    self.report.skipped.append(f"{d.address}: not found remotely (apply creates it)")
                continue
            if d.absent:
                self.report.skipped.append(
                    f"{d.address}: declared `ensure: absent` but it exists remotely; left as declared (apply deletes it)"
                )
                continue
            remote = self.state.comparable(d.kind, raw)
            remote["name"] = d.name  # the declared name stays (a pending rename is kept)
            target = apply_ignore_changes(remote, d.comparable, d.ignore_changes)
            touched = False
            if target != d.comparable:
                self._update(config, d, model, target)
                touched = True
                if d.kind == "project":
                    for ref in sorted(self.kinds["project"].depends_on(target)):
                        if ref.partition("/")[2] not in config.datasets:
                            self.report.warnings.append(
                                f"{d.address} now reads {ref}, which no manifest declares: write it with "
                                f"`hlops import {ref} --to {display_path(config.root)}`"
                            )
            if d.kind == "dataset" and self.data and model.data is not None and not _ignored("data", d.ignore_changes):
                touched |= self._refresh_data(config, d.name, raw, target)
            (self.report.resources if touched else self.report.unchanged).append(d.address)

    def _update(self, config: Config, d: Any, model: Any, target: dict[str, Any]) -> None:
        manifest_kind = self.kinds[d.kind].manifest_kind
        path = config.source_file(manifest_kind, d.name)
        where = config.location(manifest_kind, d.name)
        yf = self.files.manifest(path)
        doc = yf.doc_at(where.line, where.col)

        def write_guidelines(relative: str | None, content: str) -> str:
            if relative is None:
                target_path = self.files.unique(path.parent, slug(d.name), ".md")
                relative = target_path.name
            self.files.text(path.parent / relative, content, f"guidelines of {d.address}")
            return relative

        edits = update_document(d.kind, doc, d.comparable, target, Context(model, write_guidelines))
        if edits.attributes:
            yf.what.append(f"{d.address}: {', '.join(edits.attributes)}")
        self.report.warnings += [f"{d.address}: {w}" for w in edits.warnings]

    def _refresh_data(self, config: Config, name: str, raw: dict, target: dict[str, Any]) -> bool:
        from hlops.datafile import row_source

        fields = {n: spec["data_type"] for n, spec in target["fields"].items()}
        key = target["key"]
        path = config.data_path(name)
        spec = DataSpec(fields, key, row_source(config, name), display_path(path) if path else None, True)
        change = self.provider.plan_data(raw, spec, cache_dir=self.cache_dir)
        if not (change.add or change.change or change.remove):
            return False
        summary = (
            f"datapoints of dataset/{name}: {change.remote_rows:,} rows ({change.remove:,} added from the "
            f"remote, {change.change:,} changed, {change.add:,} no longer there)"
        )
        if path is None:  # inline rows
            self._inline_data(config, name, fields, raw, summary)
            return True
        from hlops.datareaders import format_of

        fmt = format_of(path) or "jsonl"
        with path.open("rb") as handle:
            first = handle.readline()
            if first.strip() == b"[":  # a JSON array: the style of its first element
                first = first[:-1] + handle.readline()

        def rows() -> Iterator[tuple[bytes, bytes | None]]:
            remote = _RemoteRows(self.provider, raw, fields, key)
            return _merged(remote, _local(path, fmt, fields, key, config, name))

        self.files.data_file(path, _writer(fmt, rows, fields, first), summary, change.remote_rows)
        return True

    def _inline_data(self, config: Config, name: str, fields: dict[str, str], raw: dict, summary: str) -> None:
        manifest_path = config.source_file("Dataset", name)
        where = config.location("Dataset", name)
        yf = self.files.manifest(manifest_path)
        doc = yf.doc_at(where.line, where.col)
        rows = [_ordered(r, list(fields)) for r in _remote_rows(self.provider, raw)]
        if len(rows) <= INLINE_ROWS:
            doc["data"] = CommentedSeq([flow_map({k: _yaml_value(v) for k, v in r.items()}) for r in rows])
            yf.sensitive = True
        else:
            data_path = self.files.unique(manifest_path.parent / "data", slug(name), ".jsonl")
            doc["data"] = os.path.relpath(data_path, manifest_path.parent)
            self.files.data_file(data_path, _stream_new(self.provider, raw, list(fields)), summary, len(rows))
        yf.what.append(summary)

    # ---------------------------------------------------------------- new files

    def write_new(self, addresses: list[str], directory: Path, declared: set[str], relative_to: Path | None = None) -> None:
        """New manifests for ``addresses`` in ``directory``, adding the datasets a project
        reads that are neither declared nor listed."""
        wanted = list(dict.fromkeys(addresses))
        for address in list(wanted):
            kind, _, name = address.partition("/")
            if kind != "project":
                continue
            raw = self.state.by_name("project", name)
            comparable = self.state.comparable("project", raw)
            for ref in self.kinds["project"].depends_on(comparable):
                if ref not in declared and ref not in wanted:
                    wanted.insert(0, ref)
                    self.report.warnings.append(f"also writing {ref}, which {address} reads")
        for address in wanted:
            kind, _, name = address.partition("/")
            raw = self.state.by_name(kind, name)
            comparable = self.state.comparable(kind, raw)
            path = self.files.unique(directory, slug(name), ".yaml")
            data_ref = guidelines_ref = None
            count = self.provider.row_count(raw) if kind == "dataset" else 0
            if kind == "dataset" and self.data and count:
                fields = list(comparable["fields"])
                data_path = self.files.unique(directory / "data", slug(name), ".jsonl")
                data_ref = os.path.relpath(data_path, directory)
                self.files.data_file(
                    data_path, _stream_new(self.provider, raw, fields),
                    f"datapoints of {address}: {count:,} rows", count,
                )
            if kind == "project" and guidelines_need_file(comparable["guidelines"]):
                g_path = self.files.unique(directory, slug(name), ".md")
                self.files.text(g_path, comparable["guidelines"], f"guidelines of {address}")
                guidelines_ref = g_path.name
            doc = new_document(kind, comparable, data=data_ref, guidelines=guidelines_ref)
            self.files.new_manifest(path, doc, address)
            self.report.resources.append(address)

    # ---------------------------------------------------------------- finish

    def finish(self, dry_run: bool) -> PullReport:
        changes = self.files.changes()
        self.report.files = changes
        self.report.dry_run = dry_run
        if not dry_run:
            _Files.write(changes)
        return self.report


def _ignored(attribute: str, paths: Iterable[str]) -> bool:
    return any(p.split(".", 1)[0] == attribute for p in paths)


def _yaml_value(value: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return flow_map({k: _yaml_value(v) for k, v in value.items()})
    return value


def _remote_addresses(state: RemoteState, owns: Ownership, declared: set[tuple[str, str]]) -> list[str]:
    """``kind/name`` of the remote resources not in ``declared`` (only those ``owns`` owns,
    when it names any): datasets first, each kind in the remote's order."""
    out = []
    for kind in ("dataset", "project"):
        for name in state.names(kind):
            if (kind, name) in declared:
                continue
            if owns.empty or owns.owns(name):
                out.append(f"{kind}/{name}")
    return out


def _owned_undeclared(config: Config, state: RemoteState) -> list[str]:
    declared = {(d.kind, d.renamed_from or d.name) for d in desired_state(config)} | {
        (d.kind, d.name) for d in desired_state(config)
    }
    return _remote_addresses(state, config.settings.owns, declared)


def pull(
    config: Config,
    provider: Provider,
    *,
    paths: list[Path] | None = None,
    undeclared: bool = False,
    data: bool = True,
    dry_run: bool = False,
    cache_dir: Path | None = None,
) -> PullReport:
    """Refresh the manifests of ``config`` from the remote (see the module docstring)."""
    provider.require("pull")
    state = provider.read(dataset_renames(config))
    puller = _Puller(provider, state, data, cache_dir)
    puller.refresh(config)
    if undeclared:
        extra = _owned_undeclared(config, state)
        if extra:
            declared = {f"{k}/{n}" for k, items in (("dataset", config.datasets), ("project", config.projects)) for n in items}
            puller.write_new(extra, config.root, declared)
    report = puller.finish(dry_run)
    if not dry_run and report.changed:
        report.warnings += verify(paths or [config.root], provider)
    return report


def pull_all(
    provider: Provider,
    directory: Path,
    *,
    owns: Ownership | None = None,
    data: bool = True,
    dry_run: bool = False,
) -> PullReport:
    """Onboarding from an existing organisation (``hlops pull --all`` in a directory with
    no manifest, like ``deck gateway dump``): every remote resource -- only those ``owns``
    owns, when it names any, plus the datasets their projects read -- written as new
    manifests in ``directory``, datapoints to ``data/<name>.jsonl``, long guidelines to
    ``<name>.md``. Afterwards ``hlops plan DIRECTORY`` shows no changes."""
    if has_manifests(directory):
        raise PlanError(f"{display_path(directory)} already holds manifests: `hlops pull --all` refreshes them "
                        "and adds what they do not declare")
    provider.require("pull")
    state = provider.read()
    puller = _Puller(provider, state, data, None)
    puller.write_new(_remote_addresses(state, owns or Ownership(), set()), directory, set())
    report = puller.finish(dry_run)
    if not dry_run and report.changed:
        report.warnings += verify([directory], provider)
    return report


def import_resources(
    provider: Provider,
    addresses: list[str],
    directory: Path,
    *,
    tree: Path | None = None,
    data: bool = True,
    dry_run: bool = False,
) -> PullReport:
    """Write remote resources (``kind/name``) as new manifests in ``directory``.

    ``tree`` (default ``directory``) is the manifest tree they join: what it already
    declares is refused (use :func:`pull`), and a project's datasets it declares are not
    written again."""
    provider.require("import")
    state = provider.read()
    tree = tree or directory
    declared = declared_names(tree) if has_manifests(tree) else set()
    problems = []
    for address in addresses:
        kind, sep, name = address.partition("/")
        if not sep or kind not in provider.kinds:
            problems.append(f"{address!r} is not KIND/NAME (kinds: dataset, project)")
        elif address in declared:
            problems.append(f"{address} is already declared in {display_path(tree)}; refresh it with `hlops pull`")
        elif state.by_name(kind, name) is None:
            names = sorted(state.names(kind))
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" — did you mean {kind}/{close[0]}?" if close else ""
            problems.append(f"{address} does not exist remotely{hint}")
    if problems:
        raise PlanError("; ".join(problems))
    puller = _Puller(provider, state, data, None)
    puller.write_new(addresses, directory, declared)
    report = puller.finish(dry_run)
    if not dry_run and report.changed:
        if directory.absolute().is_relative_to(tree.absolute()):
            paths = [tree]
        else:
            paths = [tree, directory] if has_manifests(tree) else [directory]
        report.warnings += verify(paths, provider)
    return report


def declared_names(tree: Path) -> set[str]:
    """``kind/name`` of every document under ``tree``, read without checking the tree: an
    import is how a tree that reads an undeclared dataset is mended."""
    from hlops.manifest import _walk
    from hlops.yamlsrc import parse

    files = [tree] if tree.is_file() else list(_walk(tree))
    out = set()
    for path in files:
        try:
            parsed = parse(path.read_text(encoding="utf-8"), display_path(path), os.environ)
        except (OSError, UnicodeDecodeError):
            continue
        for doc in parsed.documents:
            value = doc.value
            if isinstance(value, dict) and value.get("kind") in ("Dataset", "Project") and isinstance(value.get("name"), str):
                out.add(f"{value['kind'].lower()}/{value['name']}")
    return out


def has_manifests(path: Path) -> bool:
    if path.is_file():
        return True
    if not path.is_dir():
        return False
    return any(
        p.suffix in (".yaml", ".yml")
        and p.name not in ("hlops.yaml", "hlops.yml")
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
        for p in path.rglob("*.y*ml")
    )


def verify(paths: list[Path], provider: Provider) -> list[str]:
    """Load the tree again and compare what it declares with the remote: what a pull wrote
    must read back as the remote (datapoints excepted: written from the remote rows)."""
    try:
        config = load(paths)
    except HlopsError as exc:
        return [f"the manifests written do not load: {str(exc).splitlines()[0]}"]
    state = provider.read(dataset_renames(config))
    out = []
    for d in desired_state(config, provider.kinds):
        if d.absent:
            continue
        raw = state.by_name(d.kind, d.name) or (state.by_name(d.kind, d.renamed_from) if d.renamed_from else None)
        if raw is None:
            continue
        remote = state.comparable(d.kind, raw)
        remote["name"] = d.name
        target = apply_ignore_changes(remote, d.comparable, d.ignore_changes)
        if target != d.comparable:
            out.append(f"{d.address} still differs from the remote after the pull (a bug in hlops: please report it)")
    return out


__all__ = ["FileWrite", "PullReport", "has_manifests", "import_resources", "pull", "pull_all", "slug", "verify"]
