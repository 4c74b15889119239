"""Comparable shapes back to YAML: the manifest side of `hlops pull` and `hlops import`.

Two jobs, both on ruamel round-trip documents (``CommentedMap``), so that whatever is not
changed keeps its comments, quotes, flow or block style and key order:

- :func:`new_document` writes a resource in the shape a person would: short forms where
  they say everything (``text: text``, ``text: tickets.text``, ``labels: [a, b]``, a bare
  e-mail for an annotator), defaults left out;
- :func:`update_document` changes an existing document only where the remote differs from
  what it declares, attribute by attribute and entry by entry (a field, an input, an output,
  a label, a user), and keeps the form written where it can still say the new value.

Which values differ is decided on the comparable shapes (the provider's kinds), never on YAML
text, so short forms, ``${VAR}`` references and ordering never count as differences; a value
that really changes is written in place of the old one (an interpolated ``${VAR}`` replaced
this way is reported). Strings are escaped for the loader's interpolation (``${`` is written
``$${``). Guidelines files are written through a callback: this module touches no file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from hlops.manifest import is_guidelines_path

DATASET_KEYS = ("kind", "name", "renamed_from", "description", "ensure", "key", "fields", "data", "prune_data", "lifecycle")
PROJECT_KEYS = (
    "kind", "name", "renamed_from", "description", "ensure", "inputs", "outputs", "guidelines", "users",
    "review_existing_annotations", "lifecycle",
)
FLOW_WIDTH = 90  # a mapping or list that fits in this many characters is written inline
INLINE_GUIDELINES = 80  # longer (or multi-line) guidelines go to a .md file


@dataclass
class Edits:
    """What :func:`update_document` changed, for the report."""

    attributes: list[str] = field(default_factory=list)  # dotted paths
    warnings: list[str] = field(default_factory=list)

    def add(self, path: str) -> None:
        if path not in self.attributes:
            self.attributes.append(path)


# --------------------------------------------------------------------------- scalars


def text(value: str) -> Any:
    """A string as the manifest loader will read it back: ``${`` escaped, several lines as a
    literal block."""
    value = value.replace("${", "$${")
    if ("\n" in value.rstrip("\n") or value.endswith("\n")) and _block_safe(value):
        return LiteralScalarString(value)
    return value  # ruamel quotes it (double quotes with escapes) when it must


def _block_safe(value: str) -> bool:
    """Whether a literal block scalar reads back as exactly ``value``: no carriage return or
    other control character (a block normalises line breaks and cannot escape)."""
    return all(ch == "\n" or ch == "\t" or (ch.isprintable() and ch not in "\u2028\u2029\ufeff") for ch in value)


def flow_map(items: dict[str, Any]) -> CommentedMap:
    m = CommentedMap(items)
    m.fa.set_flow_style()
    return m


def flow_seq(items: list[Any]) -> CommentedSeq:
    s = CommentedSeq(items)
    s.fa.set_flow_style()
    return s


def block_seq(items: list[Any]) -> CommentedSeq:
    s = CommentedSeq(items)
    s.fa.set_block_style()
    return s


def _width(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(str(k)) + 2 + _width(v) for k, v in value.items()) + 2
    if isinstance(value, (list, tuple)):
        return sum(_width(v) + 2 for v in value) + 2
    return len(str(value)) + 2


def _fits(value: Any) -> bool:
    return _width(value) <= FLOW_WIDTH and not any(
        isinstance(v, str) and "\n" in v for v in (value.values() if isinstance(value, dict) else value)
    )


def _map(items: dict[str, Any]) -> CommentedMap:
    """Inline when short, block otherwise."""
    if _fits(items):
        return flow_map(items)
    return CommentedMap(items)


def _seq(items: list[Any]) -> CommentedSeq:
    if _fits(items) and not any(isinstance(i, dict) for i in items):
        return flow_seq(items)
    return block_seq(items)


def _refs(refs: list[str], like: Any = None) -> Any:
    """One reference as a scalar, several as a list (a list stays a list)."""
    if len(refs) == 1 and not isinstance(like, list):
        return refs[0]
    return flow_seq(list(refs)) if _fits(refs) else block_seq(list(refs))


def set_key(m: CommentedMap, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set ``m[key]``; a new key goes after the last present key that precedes it in
    ``order`` (at the end when none does)."""
    if key in m:
        m[key] = value
        return
    position = len(m)
    if key in order:
        before = order[: order.index(key)]
        keys = list(m.keys())
        present = [i for i, k in enumerate(keys) if k in before]
        position = present[-1] + 1 if present else 0
        if not present and keys and keys[0] == "kind":
            position = 1
    m.insert(position, key, value)


def set_or_drop(m: CommentedMap, key: str, value: Any, order: tuple[str, ...] = ()) -> None:
    """``value`` None removes the key."""
    if value is None:
        if key in m:
            del m[key]
    else:
        set_key(m, key, value, order)


# --------------------------------------------------------------------------- new documents


def field_value(spec: dict[str, Any]) -> Any:
    if spec.get("description") is None:
        return spec["data_type"]
    return _map({"data_type": spec["data_type"], "description": text(spec["description"])})


def input_value(spec: dict[str, Any]) -> Any:
    refs = list(spec["from"])
    if spec.get("description") is None and not spec.get("display_only"):
        return _refs(refs)
    out: dict[str, Any] = {"from": _refs(refs)}
    if spec.get("description") is not None:
        out["description"] = text(spec["description"])
    if spec.get("display_only"):
        out["display_only"] = True
    return _map(out)


def label_value(name: str, description: str | None) -> Any:
    if description is None:
        return text(name)
    return flow_map({"name": text(name), "description": text(description)})


def labels_value(labels: dict[str, str | None]) -> CommentedSeq:
    return _seq([label_value(n, d) for n, d in labels.items()])


def output_value(spec: dict[str, Any]) -> CommentedMap:
    out = CommentedMap()
    out["task_type"] = spec["task_type"]
    if spec.get("description") is not None:
        out["description"] = text(spec["description"])
    if spec.get("input"):
        out["input"] = spec["input"]
    if spec.get("from"):
        out["from"] = _refs(list(spec["from"]))
    if spec.get("labels"):
        out["labels"] = labels_value(spec["labels"])
    return out


def user_value(email: str, role: str) -> Any:
    if role == "annotator":
        return text(email)
    return flow_map({"email": text(email), "role": role})


def new_document(
    kind: str,
    comparable: dict[str, Any],
    *,
    data: str | None = None,
    guidelines: str | None = None,
) -> CommentedMap:
    """A new manifest document for a remote resource. ``data`` is the data file path to
    write in it; ``guidelines`` the guidelines file path (None: inline, if any)."""
    doc = CommentedMap()
    if kind == "dataset":
        doc["kind"] = "Dataset"
        doc["name"] = text(comparable["name"])
        if comparable.get("description") is not None:
            doc["description"] = text(comparable["description"])
        if comparable.get("key"):
            doc["key"] = comparable["key"]
        doc["fields"] = CommentedMap({n: field_value(s) for n, s in comparable["fields"].items()})
        if data is not None:
            doc["data"] = data
        return doc
    doc["kind"] = "Project"
    doc["name"] = text(comparable["name"])
    if comparable.get("description") is not None:
        doc["description"] = text(comparable["description"])
    doc["inputs"] = CommentedMap({n: input_value(s) for n, s in comparable["inputs"].items()})
    doc["outputs"] = CommentedMap({n: output_value(s) for n, s in comparable["outputs"].items()})
    if guidelines is not None:
        doc["guidelines"] = guidelines
    elif comparable.get("guidelines") is not None:
        doc["guidelines"] = text(comparable["guidelines"])
    if comparable.get("users"):
        doc["users"] = block_seq([user_value(e, r) for e, r in comparable["users"].items()])
    if comparable.get("review_existing_annotations") is False:
        doc["review_existing_annotations"] = False
    return doc


def guidelines_need_file(value: str | None) -> bool:
    """Guidelines that read better (or can only be read back) from a ``.md`` file."""
    if value is None or "\r" in value:  # a file is read with universal newlines
        return False
    return "\n" in value or len(value) > INLINE_GUIDELINES or is_guidelines_path(value)


# --------------------------------------------------------------------------- updates


@dataclass
class Context:
    """What an update needs besides the document: the validated model (for interpolated
    values such as e-mails written with ``${VAR}``), the raw manifest value, and how to write
    a guidelines file (``write_guidelines(relative path or None, text) -> path written``)."""

    model: Any
    write_guidelines: Callable[[str | None, str], str]


def update_document(
    kind: str, doc: CommentedMap, current: dict[str, Any], target: dict[str, Any], ctx: Context
) -> Edits:
    """Make ``doc`` declare ``target`` where it now declares ``current`` (comparable shapes
    of the same resource). Only what differs is touched."""
    edits = Edits()
    if kind == "dataset":
        _scalar(doc, "description", current, target, DATASET_KEYS, edits)
        _scalar(doc, "key", current, target, DATASET_KEYS, edits, plain=True)
        if current["fields"] != target["fields"]:
            _named(doc, "fields", current["fields"], target["fields"], field_value, _update_field, DATASET_KEYS, edits)
        return edits
    _scalar(doc, "description", current, target, PROJECT_KEYS, edits)
    if current["review_existing_annotations"] != target["review_existing_annotations"]:
        if target["review_existing_annotations"] and "review_existing_annotations" not in doc:
            pass  # the default
        else:
            set_key(doc, "review_existing_annotations", target["review_existing_annotations"], PROJECT_KEYS)
        edits.add("review_existing_annotations")
    if current["guidelines"] != target["guidelines"]:
        _guidelines(doc, target["guidelines"], ctx, edits)
    if current["inputs"] != target["inputs"]:
        _named(doc, "inputs", current["inputs"], target["inputs"], input_value, _update_input, PROJECT_KEYS, edits)
    if current["outputs"] != target["outputs"]:
        _named(doc, "outputs", current["outputs"], target["outputs"], output_value, _update_output, PROJECT_KEYS, edits)
    if current["users"] != target["users"]:
        _users(doc, target["users"], ctx, edits)
    return edits


def _scalar(doc, key, current, target, order, edits, plain=False) -> None:
    if current[key] == target[key]:
        return
    value = target[key]
    if value is not None and not plain:
        value = text(value)
    _warn_var(doc, key, edits)
    set_or_drop(doc, key, value, order)
    edits.add(key)


def _warn_var(m: Any, key: Any, edits: Edits, where: str | None = None) -> None:
    if isinstance(m, dict) and isinstance(m.get(key), str) and re.search(r"(?<!\$)\$\{", m[key]):
        edits.warnings.append(
            f"{where or key}: replaced a value written with ${{...}} by the remote value"
        )


def _named(doc, key, current: dict, target: dict, make, update, order, edits: Edits) -> None:
    """A mapping of named entries (fields, inputs, outputs): drop what is gone, update what
    differs, append what is new; untouched entries keep their text and comments."""
    m = doc.get(key)
    if not isinstance(m, CommentedMap):
        set_key(doc, key, CommentedMap({n: make(s) for n, s in target.items()}), order)
        edits.add(key)
        return
    for name in [n for n in m if n not in target]:
        del m[name]
        edits.add(f"{key}.{name}")
    for name, spec in target.items():
        if name not in m:
            m[name] = make(spec)
            edits.add(f"{key}.{name}")
        elif current.get(name) != spec:
            m[name] = update(m[name], current.get(name) or {}, spec, f"{key}.{name}", edits)
            edits.add(f"{key}.{name}")


def _update_field(node: Any, current: dict, spec: dict, where: str, edits: Edits) -> Any:
    if not isinstance(node, CommentedMap):
        return field_value(spec)
    if current.get("data_type") != spec["data_type"]:
        node["data_type"] = spec["data_type"]
    if current.get("description") != spec["description"]:
        _warn_var(node, "description", edits, f"{where}.description")
        set_or_drop(node, "description", text(spec["description"]) if spec["description"] is not None else None)
    return node


def _update_input(node: Any, current: dict, spec: dict, where: str, edits: Edits) -> Any:
    if not isinstance(node, CommentedMap):
        return input_value(spec)
    if current.get("from") != spec["from"]:
        node["from"] = _refs(list(spec["from"]), node.get("from"))
    if current.get("description") != spec["description"]:
        _warn_var(node, "description", edits, f"{where}.description")
        set_or_drop(node, "description", text(spec["description"]) if spec["description"] is not None else None)
    if current.get("display_only") != spec["display_only"]:
        if spec["display_only"] or "display_only" in node:
            node["display_only"] = spec["display_only"]
    if "data_type" in node and node["data_type"] != spec["data_type"]:
        node["data_type"] = spec["data_type"]
    return node


def _update_output(node: Any, current: dict, spec: dict, where: str, edits: Edits) -> Any:
    if not isinstance(node, CommentedMap):
        return output_value(spec)
    order = ("task_type", "description", "input", "from", "labels")
    if current.get("task_type") != spec["task_type"]:
        node["task_type"] = spec["task_type"]
    if current.get("description") != spec["description"]:
        _warn_var(node, "description", edits, f"{where}.description")
        set_or_drop(node, "description", text(spec["description"]) if spec["description"] is not None else None, order)
    if current.get("input") != spec["input"]:
        set_or_drop(node, "input", spec["input"], order)
    if current.get("from") != spec["from"]:
        set_or_drop(node, "from", _refs(list(spec["from"]), node.get("from")) if spec["from"] else None, order)
    if current.get("labels") != spec["labels"]:
        labels = node.get("labels")
        if not spec["labels"]:
            set_or_drop(node, "labels", None)
        elif isinstance(labels, CommentedSeq):
            _update_list(labels, spec["labels"], _label_name, _update_label, label_value, current.get("labels") or {})
        else:
            set_key(node, "labels", labels_value(spec["labels"]), order)
    return node


def _label_name(item: Any, index: int) -> str:
    return str(item["name"]) if isinstance(item, dict) else str(item)


def _update_label(item: Any, name: str, description: str | None) -> Any:
    if isinstance(item, CommentedMap):
        set_or_drop(item, "description", text(description) if description is not None else None)
        return item
    return label_value(name, description)


def _update_list(
    seq: CommentedSeq,
    target: dict[str, Any],
    name_of: Callable[[Any, int], str],
    update: Callable[[Any, str, Any], Any],
    make: Callable[[str, Any], Any],
    current: dict[str, Any] | None = None,
) -> None:
    """A list of named items (labels, users): drop items gone, update items whose value
    differs (``current`` maps a name to its value now; None: compare by ``update``), append
    new ones in ``target``'s order."""
    names = [name_of(item, i) for i, item in enumerate(seq)]
    for i in reversed(range(len(seq))):
        if names[i] not in target:
            del seq[i]
            del names[i]
    for i, name in enumerate(names):
        if current is None or current.get(name) != target[name]:
            seq[i] = update(seq[i], name, target[name])
    for name, value in target.items():
        if name not in names:
            seq.append(make(name, value))


def _guidelines(doc: CommentedMap, value: str | None, ctx: Context, edits: Edits) -> None:
    written = doc.get("guidelines")
    if isinstance(written, str) and is_guidelines_path(written):
        if value is None or "\r" not in value:
            ctx.write_guidelines(written.strip(), value or "")  # the file changes, not the manifest
            edits.add("guidelines")
            return
        # A guidelines file is read with universal newlines: a carriage return can't survive it.
        edits.warnings.append(f"guidelines: the remote text has carriage returns, written inline instead of in {written.strip()}")
        written = None
    if value is None:
        set_or_drop(doc, "guidelines", None)
    elif "\r" not in value and (is_guidelines_path(value) or (written is None and guidelines_need_file(value))):
        # New long guidelines get a file; one line ending in .md could only be read as a path.
        set_key(doc, "guidelines", ctx.write_guidelines(None, value), PROJECT_KEYS)
    else:
        _warn_var(doc, "guidelines", edits)
        set_key(doc, "guidelines", text(value), PROJECT_KEYS)
    edits.add("guidelines")


def _users(doc: CommentedMap, target: dict[str, str], ctx: Context, edits: Edits) -> None:
    seq = doc.get("users")
    if not isinstance(seq, CommentedSeq) or not seq:
        set_or_drop(doc, "users", block_seq([user_value(e, r) for e, r in target.items()]) if target else None, PROJECT_KEYS)
        edits.add("users")
        return
    # The model holds each item's e-mail as loaded (``${VAR}`` resolved), in the same order.
    loaded = [u.email for u in ctx.model.users] if len(ctx.model.users) == len(seq) else None

    def name_of(item: Any, i: int) -> str:
        if loaded is not None:
            return loaded[i]
        return str(item["email"]) if isinstance(item, dict) else str(item)

    current = {name_of(item, i): u.role for i, (item, u) in enumerate(zip(seq, ctx.model.users))} if loaded else None

    def update(item: Any, email: str, role: str) -> Any:
        if isinstance(item, CommentedMap):
            item["role"] = role
            return item
        return item if role == "annotator" else flow_map({"email": item, "role": role})

    _update_list(seq, target, name_of, update, user_value, current)
    if not seq:
        del doc["users"]
    edits.add("users")


# --------------------------------------------------------------------------- layout


def detect_indent(source: str) -> tuple[int, int, int]:
    """``(mapping, sequence, offset)`` for ruamel's ``indent()``, as written in ``source``:
    how far a nested key is indented, and where a block list's dash sits under its key."""
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping, offset = 2, None
    found_mapping = False
    for prev, line in zip(lines, lines[1:]):
        if not prev.rstrip().endswith(":"):
            continue
        parent = len(prev) - len(prev.lstrip())
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith("- ") and indent >= parent:  # a list under its key
            if offset is None:
                offset = indent - parent
        elif indent <= parent:
            continue
        elif not found_mapping:
            mapping, found_mapping = indent - parent, True
        if offset is not None and found_mapping:
            break
    if offset is None:
        offset = mapping
    return mapping, offset + 2, offset
