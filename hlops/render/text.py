"""The terminal rendering of a Plan, in the shape Terraform users read every day."""

from __future__ import annotations


import click

from hlops.plan import Action, Plan, ResourceChange
from hlops.render.values import (
    ACTION_PHRASE,
    cost_line,
    data_line,
    resource_lines,
    is_pruned,
    is_text_block,
    show,
    text_diff,
    value_suffix,
)

COLOURS = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.NOOP: None,
}


class _Out:
    def __init__(self, color: bool):
        self.color = color
        self.lines: list[str] = []

    def style(self, text: str, fg: str | None = None, bold: bool = False) -> str:
        if not self.color or (fg is None and not bold):
            return text
        return click.style(text, fg=fg, bold=bold)

    def add(self, text: str = "") -> None:
        self.lines.append(text)


def render(plan: Plan, color: bool = False, show_noop: bool = False) -> str:
    out = _Out(color)
    changed = [c for c in plan.changes if c.has_changes]
    if not changed:
        out.add(out.style("No changes.", bold=True) + " The remote matches the manifests.")
        if not plan.unmanaged and not plan.notes:
            return "\n".join(out.lines) + "\n"
        out.add()
    else:
        out.add("hlops will perform the following actions:")
        out.add()
    for change in plan.changes:
        if (change.has_changes or show_noop) and not is_pruned(change):
            _resource(out, change)
    pruned = [c for c in plan.changes if is_pruned(c)]
    if pruned:
        out.add(out.style("── Pruned (--prune) " + "─" * 50, "red", bold=True))
        out.add(
            out.style("Owned by this repository (hlops.yaml `owns`) and declared by no manifest:", bold=True)
            + f" {len(pruned)} resource{'s' if len(pruned) != 1 else ''} will be destroyed."
        )
        out.add()
        for change in pruned:
            _resource(out, change)
        out.add(out.style("─" * 70, "red", bold=True))
        out.add()
    if plan.unmanaged:
        out.add(out.style("Remote resources no manifest declares", bold=True) + " (left alone):")
        for address in plan.unmanaged:
            out.add(f"  ? {address}")
        out.add()
    for note in plan.notes:
        out.add(f"Note: {note}")
        out.add()
    _warnings(out, plan)
    if not changed:
        return "\n".join(out.lines).rstrip("\n") + "\n"
    summary = plan.summary
    out.add(out.style(summary.line, bold=True))
    if summary.rows_add or summary.rows_change or summary.rows_remove:
        out.add(
            f"Datapoints: {summary.rows_add:,} to add, {summary.rows_change:,} to change, "
            f"{summary.rows_remove:,} to remove."
        )
    return "\n".join(out.lines) + "\n"


def _resource(out: _Out, change: ResourceChange) -> None:
    action = change.action
    colour = COLOURS[action]
    phrase = ACTION_PHRASE[action]
    if action == Action.UPDATE and change.renamed_from:
        phrase = f"will be renamed from {change.renamed_from!r}" + (
            " and updated in place" if len(change.changes) > 1 or change.data else ""
        )
    if action == Action.UPDATE and not change.changes and change.data:
        phrase = "will have its datapoints updated"
    out.add(out.style(f"  # {change.address} {phrase}", bold=True))
    for note in change.notes:
        out.add(f"  # ({note})")
    symbol = action.symbol if action != Action.NOOP else " "
    out.add(out.style(f"{symbol:>3} {change.kind} {show(change.name)} {{", colour))
    if action in (Action.CREATE, Action.DELETE):
        sign, colour_, value = ("+", "green", change.after) if action == Action.CREATE else ("-", "red", change.before)
        for line in resource_lines(value):
            out.add(out.style(f"      {sign} {line}", colour_))
    else:
        for attr in change.changes:
            sign = {"add": "+", "remove": "-", "change": "~"}[attr.kind]
            tail = out.style("  # forces replacement", "magenta") if attr.forces_replace else ""
            if is_text_block(attr):
                out.add(out.style(f"      ~ {attr.dotted}:", "yellow"))
                for line in text_diff(attr.before, attr.after, attr.dotted):
                    fg = "green" if line.startswith("+") else "red" if line.startswith("-") else None
                    out.add("          " + out.style(line, fg))
                continue
            if attr.kind == "change":
                text = f"      {sign} {attr.dotted}: {show(attr.before)} -> {show(attr.after)}"
            else:
                text = f"      {sign} {attr.dotted}{value_suffix(attr)}"
            out.add(out.style(text, {"+": "green", "-": "red", "~": "yellow"}[sign]) + tail)
    if change.data is not None and (change.data.has_changes or action == Action.CREATE):
        out.add(out.style(f"      ~ datapoints: {data_line(change.data)}", "yellow"))
        cost = cost_line(change.data)
        if cost:
            out.add(f"          ({cost})")
        if change.data.key is None:
            out.add("          (no key: rows are matched by content, an edited row shows as remove + add)")
        for what, keys in change.data.examples.items():
            if keys:
                out.add(f"          e.g. {what}: {', '.join(show(k) for k in keys)}")
    out.add(out.style("    }", colour))
    for reason in change.replace_reasons:
        out.add(out.style(f"    replaced because {reason}", "magenta"))
    for loss in change.data_loss:
        out.add(out.style(f"    ! data loss: {loss}", "red", bold=True))
    if change.prevent_destroy and change.destroys:
        out.add(out.style("    ! lifecycle.prevent_destroy is set: apply will refuse this", "red", bold=True))
    out.add()


def _warnings(out: _Out, plan: Plan) -> None:
    lossy = plan.destructive()
    if lossy:
        out.add(
            out.style(
                f"Warning: {len(lossy)} change{'s' if len(lossy) != 1 else ''} destroy data "
                f"({', '.join(c.address for c in lossy)}); apply needs --allow-data-loss.",
                "red",
                bold=True,
            )
        )
    protected = plan.protected()
    if protected:
        out.add(
            out.style(
                "Error: lifecycle.prevent_destroy protects "
                + ", ".join(c.address for c in protected)
                + "; apply will refuse this plan.",
                "red",
                bold=True,
            )
        )
    if lossy or protected:
        out.add()
