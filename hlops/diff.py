"""Desired vs actual -> resource changes. Pure: no I/O, no clock, no randomness.

Key-set arithmetic decides the action (desired − actual = create, actual − desired = unmanaged
or pruned, both = compare); DeepDiff compares the attributes of what exists on both sides,
in the comparable shape the kinds produce, so server-managed values never show up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hlops.errors import PlanError
from hlops.plan import Action, AttributeChange, ResourceChange
from hlops.provider import Actual, Kind, RemoteState, provider_class


# The note that marks a delete made by --prune (renderers show those in a section of their own).
PRUNE_NOTE = "pruned: owned by this repository (hlops.yaml `owns`) and declared by no manifest"


@dataclass(frozen=True)
class Desired:
    """One resource as the manifests want it."""

    kind: str
    name: str
    comparable: dict[str, Any] | None  # None when ensure: absent
    renamed_from: str | None = None
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()
    source: str | None = None

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def absent(self) -> bool:
        return self.comparable is None


@dataclass(frozen=True)
class Options:
    prune: bool = False  # delete owned remote resources that no manifest declares
    destroy: bool = False  # `hlops destroy`: delete everything declared
    owns: Any = None  # models.Ownership, or None = owns nothing
    targets: tuple[str, ...] = ()  # only these addresses (and what they need)


# --------------------------------------------------------------------------- attributes


def attribute_changes(
    before: dict[str, Any], after: dict[str, Any]
) -> list[tuple[tuple[str, ...], Any, Any, str]]:
    """Every changed attribute as ``(path, before, after, op)`` with op ``add``, ``remove``
    or ``change``; a change inside a list shows as a change of the whole list.

    Equal sides (the common case: a no-op plan) are answered without DeepDiff, which is
    imported only when something differs (it costs ~0.2 s of start-up, numpy aside)."""
    if _same(before, after):
        return []
    from deepdiff import DeepDiff

    diff = DeepDiff(before, after, view="tree", verbose_level=2)
    seen: dict[tuple[str, ...], tuple[Any, Any, str]] = {}
    for report_type, report in diff.items():
        for level in report:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            key = tuple(str(p) for p in path[:cut])
            if key in seen:
                continue
            op = "change"
            if cut == len(path):
                op = {"dictionary_item_added": "add", "dictionary_item_removed": "remove"}.get(
                    report_type, "change"
                )
            seen[key] = (_get(before, key), _get(after, key), op)
    return sorted((k, b, a, op) for k, (b, a, op) in seen.items())


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down: where this is True DeepDiff finds no
    difference (it reports ``1`` against ``1.0`` or ``True`` as a type change, which ``==``
    would not); False sends the pair to DeepDiff."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) in _LEAVES and a == b


_LEAVES = (str, int, float, bool, type(None))


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def apply_ignore_changes(
    desired: dict[str, Any], actual: dict[str, Any], paths: Iterable[str]
) -> dict[str, Any]:
    """``desired`` with the remote value kept at every ignored path (so it's left alone)."""
    import copy

    out = copy.deepcopy(desired)
    for dotted in paths:
        parts = _split_path(dotted)
        remote = _get(actual, parts)
        parent = out
        for part in parts[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
            if parent is None:
                break
        if isinstance(parent, dict):
            if remote is None and _get(actual, parts[:-1]) is not None:
                parent.pop(parts[-1], None)
            elif remote is not None:
                parent[parts[-1]] = copy.deepcopy(remote)
    return out


def _split_path(dotted: str) -> tuple[str, ...]:
    return tuple(p for p in dotted.split(".") if p)


# --------------------------------------------------------------------------- resources


def diff(
    desired: list[Desired],
    actual: list[Actual],
    state: RemoteState,
    options: Options = Options(),
    kinds: Mapping[str, Kind] | None = None,
) -> tuple[list[ResourceChange], list[str]]:
    """The changes that take ``actual`` to ``desired``, and the unmanaged remote addresses.

    ``kinds`` are the provider's (default: the default provider's); ``state`` is only asked
    for :meth:`~hlops.provider.RemoteState.dependents`. Changes come in dependency order
    (kind levels); destroying a resource forces the replacement of every declared resource
    that the state says depends on it (Humanloop: a dataset's readers).
    """
    kinds = kinds if kinds is not None else provider_class().kinds
    remote = {a.address: a for a in actual}
    changes: dict[str, ResourceChange] = {}
    claimed: set[str] = set()  # remote addresses matched to a declaration

    for d in desired:
        r = remote.get(d.address)
        if d.renamed_from and not d.absent:
            old = remote.get(f"{d.kind}/{d.renamed_from}")
            if old is not None and r is not None:
                raise PlanError(
                    f"{d.address} declares renamed_from: {d.renamed_from!r}, but both "
                    f"{d.renamed_from!r} and {d.name!r} exist remotely; delete one of them or "
                    "drop renamed_from"
                )
            r = r or old
        if r is not None:
            claimed.add(r.address)
        changes[d.address] = _change_for(d, r, options, kinds)

    unmanaged = sorted(a for a in remote if a not in claimed)
    for address in unmanaged:
        a = remote[address]
        owned = options.owns is not None and options.owns.owns(a.name)
        if options.prune and owned and not _filtered_out(address, options):
            changes[address] = _delete(a, kinds, prevent=False, notes=(PRUNE_NOTE,))

    changes = _cascade_replacements(changes, state, kinds)
    ordered = sorted(changes.values(), key=lambda c: (kinds[c.kind].level, c.name))
    if options.targets:
        ordered = _select_targets(ordered, options.targets)
    return ordered, [a for a in unmanaged if a not in changes]


def _change_for(d: Desired, r: Actual | None, options: Options, kinds: Mapping[str, Kind]) -> ResourceChange:
    kind = kinds[d.kind]
    common = dict(
        kind=d.kind,
        name=d.name,
        prevent_destroy=d.prevent_destroy,
        source=d.source,
    )
    if options.destroy or d.absent:
        if r is None:
            return ResourceChange(action=Action.NOOP, notes=("already absent",), **common)
        return _delete(r, kinds, prevent=d.prevent_destroy, source=d.source)
    if r is None:
        return ResourceChange(
            action=Action.CREATE,
            after=d.comparable,
            depends_on=tuple(sorted(kind.depends_on(d.comparable))),
            **common,
        )
    after = apply_ignore_changes(d.comparable, r.comparable, d.ignore_changes)
    changes = []
    reasons = []
    for path, before_value, after_value, op in attribute_changes(r.comparable, after):
        reason = kind.replace_reason(path, before_value, after_value, op)
        if reason:
            reasons.append(reason)
        changes.append(
            AttributeChange(
                path=path, before=before_value, after=after_value, op=op, forces_replace=bool(reason)
            )
        )
    action = Action.REPLACE if reasons else (Action.UPDATE if changes else Action.NOOP)
    return ResourceChange(
        action=action,
        before=r.comparable,
        after=after,
        changes=tuple(changes),
        replace_reasons=tuple(reasons),
        data_loss=(tuple(kind.loss(r.raw)) if action == Action.REPLACE
                   else _change_loss(kind, r, after) if action == Action.UPDATE else ()),
        remote_id=r.id,
        remote_version=r.version,
        renamed_from=r.name if r.name != d.name else None,
        depends_on=tuple(sorted(kind.depends_on(after))),
        **common,
    )


def _change_loss(kind: Kind, r: Actual, after: dict) -> tuple[str, ...]:
    """What an in-place update loses, for a kind that says (the optional ``change_loss``)."""
    hook = getattr(kind, "change_loss", None)
    return tuple(hook(r.raw, r.comparable, after)) if hook is not None else ()


def _delete(r: Actual, kinds: Mapping[str, Kind], prevent: bool, source: str | None = None,
            notes: tuple[str, ...] = ()) -> ResourceChange:
    return ResourceChange(
        kind=r.kind,
        name=r.name,
        action=Action.DELETE,
        before=r.comparable,
        data_loss=tuple(kinds[r.kind].loss(r.raw)),
        remote_id=r.id,
        remote_version=r.version,
        prevent_destroy=prevent,
        source=source,
        notes=notes,
    )


def _cascade_replacements(
    changes: dict[str, ResourceChange],
    state: RemoteState,
    kinds: Mapping[str, Kind],
) -> dict[str, ResourceChange]:
    """A resource that is deleted or replaced takes with it what depends on it (a dataset
    its field ids): every such resource is replaced too (or, if it is being deleted anyway,
    just deleted)."""
    out = dict(changes)
    address_by_id = {
        (c.kind, c.remote_id): a for a, c in changes.items() if c.remote_id is not None
    }
    for change in changes.values():
        if not change.destroys or change.remote_id is None:
            continue
        how = "replaced" if change.action == Action.REPLACE else "deleted"
        for kind, raw in state.dependents(change.kind, change.remote_id):
            address = address_by_id.get((kind, raw["id"]))
            if address is None:
                raise PlanError(
                    f"{change.address} would be {how}, but {kind} {raw['name']!r}, which no "
                    f"manifest declares, reads it; declare that {kind} (or delete it) first"
                )
            current = out[address]
            if current.action in (Action.DELETE, Action.REPLACE):
                continue
            out[address] = current.model_copy(
                update={
                    "action": Action.REPLACE,
                    "replace_reasons": (
                        *current.replace_reasons,
                        f"it reads {change.kind} {change.name!r}, which is {how}",
                    ),
                    "data_loss": tuple(kinds[kind].loss(raw)),
                }
            )
    return out


def _filtered_out(address: str, options: Options) -> bool:
    return bool(options.targets) and address not in options.targets


def _select_targets(changes: list[ResourceChange], targets: tuple[str, ...]) -> list[ResourceChange]:
    """Only the targeted resources and what they depend on (like `terraform -target`)."""
    by_address = {c.address: c for c in changes}
    unknown = [t for t in targets if t not in by_address]
    if unknown:
        known = ", ".join(sorted(by_address)) or "none"
        raise PlanError(f"--target {unknown[0]} matches no resource (known: {known})")
    wanted: set[str] = set()
    stack = list(targets)
    while stack:
        address = stack.pop()
        if address in wanted:
            continue
        wanted.add(address)
        change = by_address.get(address)
        if change:
            stack.extend(d for d in change.depends_on if d in by_address)
    return [c for c in changes if c.address in wanted]
