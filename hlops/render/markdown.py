"""A Plan as a pull-request comment: a summary table, then every change by risk, each in a
collapsible block. Counts for datapoints, never their content, never a secret.

A comment is limited to 65,536 characters on GitHub: :func:`render_parts` splits a long plan
into numbered parts that each stand alone (each repeats the title and the summary).
"""

from __future__ import annotations

import html
import re

from hlops.plan import Action, Plan, ResourceChange
from hlops.render.values import ACTION_PHRASE, cost_line, data_line, flatten, is_text_block, risk_key, show, text_diff, value_suffix

LIMIT = 65_000
MARKER = "<!-- hlops-plan -->"


def render(plan: Plan, title: str = "hlops plan") -> str:
    """The whole plan as one markdown document (may exceed a comment's limit)."""
    return "\n".join([_head(plan, title), *_blocks(plan), _tail(plan)])


def render_parts(plan: Plan, title: str = "hlops plan", limit: int = LIMIT) -> list[str]:
    """The plan as one or more comments, each under ``limit`` characters."""
    blocks = _blocks(plan)
    tail = _tail(plan)
    parts: list[list[str]] = [[]]
    budget = limit - len(_head(plan, title, part=(99, 99))) - len(tail) - 200
    size = 0
    for block in blocks:
        if len(block) > budget:
            block = block[: budget - 200] + "\n\n… (cut: this change is too long for one comment)\n</details>\n"
        if size + len(block) > budget and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append(block)
        size += len(block) + 1
    total = len(parts)
    if total == 1:
        return [render(plan, title)]
    return [
        "\n".join([_head(plan, title, part=(i + 1, total)), *blocks_, tail])
        for i, blocks_ in enumerate(parts)
    ]


def _head(plan: Plan, title: str, part: tuple[int, int] | None = None) -> str:
    s = plan.summary
    suffix = f" (part {part[0]} of {part[1]})" if part else ""
    lines = [MARKER, f"### {html.escape(title)}{suffix}", ""]
    if not plan.has_changes:
        lines.append("**No changes.** The remote matches the manifests.")
    lines += [
        "| to add | to change | to replace | to destroy | data loss | rows +/~/- |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {s.add} | {s.change} | {s.replace} | {s.destroy} | "
        f"{'⚠️ ' + str(s.data_loss) if s.data_loss else 0} | "
        f"{s.rows_add:,} / {s.rows_change:,} / {s.rows_remove:,} |",
        "",
        f"`{s.line}`",
        "",
    ]
    if s.data_loss:
        lossy = ", ".join(f"`{c.address}`" for c in plan.destructive())
        lines += [f"> **⚠️ Data loss:** {lossy}. Apply needs `--allow-data-loss`.", ""]
    protected = plan.protected()
    if protected:
        names = ", ".join(f"`{c.address}`" for c in protected)
        lines += [f"> **⛔ prevent_destroy** protects {names}: apply will refuse this plan.", ""]
    return "\n".join(lines)


def _tail(plan: Plan) -> str:
    lines = []
    if plan.unmanaged:
        lines += ["", "<details><summary>Remote resources no manifest declares (left alone)</summary>", ""]
        lines += [f"- `{a}`" for a in plan.unmanaged]
        lines += ["", "</details>"]
    lines += ["", f"<sub>plan `{plan.id}` · hlops {plan.hlops_version}</sub>", ""]
    return "\n".join(lines)


def _blocks(plan: Plan) -> list[str]:
    changes = sorted((c for c in plan.changes if c.has_changes), key=risk_key)
    return [_block(c) for c in changes]


def _block(change: ResourceChange) -> str:
    symbol = change.action.symbol
    flag = " ⚠️ data loss" if change.data_loss else ""
    phrase = ACTION_PHRASE[change.action]
    if change.renamed_from:
        phrase = f"will be renamed from `{change.renamed_from}`"
    lines = [
        f"<details><summary><code>{html.escape(symbol)}</code> <b>{html.escape(change.address)}</b> {html.escape(phrase)}{flag}</summary>",
        "",
    ]
    for reason in change.replace_reasons:
        lines.append(f"- replaced because {_md(reason)}")
    for loss in change.data_loss:
        lines.append(f"- **data loss:** {_md(loss)}")
    for note in change.notes:
        lines.append(f"- {_md(note)}")
    if change.replace_reasons or change.data_loss or change.notes:
        lines.append("")
    diff_lines: list[str] = []
    text_blocks: list[tuple[str, list[str]]] = []
    if change.action == Action.CREATE:
        diff_lines = [f"+ {'.'.join(p)}: {show(v)}" for p, v in flatten(change.after or {}) if p[0] != "name"]
    elif change.action == Action.DELETE:
        diff_lines = [f"- {'.'.join(p)}: {show(v)}" for p, v in flatten(change.before or {}) if p[0] != "name"]
    else:
        for attr in change.changes:
            if is_text_block(attr):
                text_blocks.append((attr.dotted, text_diff(attr.before, attr.after, attr.dotted)))
                continue
            mark = "  # forces replacement" if attr.forces_replace else ""
            if attr.kind == "change":
                diff_lines.append(f"~ {attr.dotted}: {show(attr.before)} -> {show(attr.after)}{mark}")
            else:
                sign = "+" if attr.kind == "add" else "-"
                diff_lines.append(f"{sign} {attr.dotted}{value_suffix(attr)}{mark}")
    if diff_lines:
        lines += [*_fenced(diff_lines), ""]
    for name, text in text_blocks:
        lines += [f"`{name}`:", "", *_fenced(text), ""]
    if change.data is not None and (change.data.has_changes or change.action == Action.CREATE):
        lines.append(f"- datapoints: {_md(data_line(change.data))}")
        cost = cost_line(change.data)
        if cost:
            lines.append(f"- {cost}")
        lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


def _fenced(lines: list[str]) -> list[str]:
    """A ```diff block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}diff", *lines, fence]


def _md(text: str) -> str:
    return html.escape(text).replace("|", "\\|")
