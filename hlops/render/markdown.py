"""A Plan as a pull-request comment.

Layout of one comment (a *part*)::

    <!-- hlops-plan -->                       the marker a CI script finds its comments by
    ### hlops plan (part 1 of 2)              the title; "(part i of n)" only when split
    | to add | to change | ... |              the summary table, in every part
    > ⚠️ data loss / ⛔ prevent_destroy / 🗑️ prune callouts
    #### Changes                              every change, most risky first: data loss,
    <details>…</details>                        then replaces, deletes, updates, creates
    #### 🗑️ Pruned …                           deletes made by --prune, a section of their own
    <details>remote resources no manifest declares</details>     (last part only)
    <sub>plan `id` · hlops 0.1.0 · part 1 of 2</sub>
    <!-- hlops-plan-id: 3f2a9c1e0b7d -->

What never appears: a datapoint's content (datapoint changes are counts), example keys
(``--show-data`` is for the terminal), an API key (a plan never holds one).

GitHub refuses a comment over 65,536 characters: :func:`render_parts` splits a long plan
into numbered parts under :data:`LIMIT`, each standing alone (marker, title, summary,
footer). A part holds whole ``<details>`` blocks; a single block too long for a part is cut
at a line, with its code fence and ``<details>`` closed and a note of what was left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from hlops.plan import Action, Plan, ResourceChange
from hlops.render.values import (
    ACTION_PHRASE,
    cost_line,
    data_line,
    resource_lines,
    is_pruned,
    is_text_block,
    risk_key,
    show,
    text_diff,
    value_suffix,
)

LIMIT = 65_000
MARKER = "<!-- hlops-plan -->"
ID_MARKER = "<!-- hlops-plan-id: {id} -->"
MAX_LISTED = 50  # addresses listed in a callout or the unmanaged list before "… and N more"
CUT_NOTE = (
    "… {n:,} more line{s} of this change not shown: the comment limit is {limit:,} characters. "
    "`hlops plan` prints the whole change."
)

Section = tuple[str, list[str]]  # (heading, blocks)


def render(plan: Plan, title: str = "hlops plan", marker: str = MARKER) -> str:
    """The whole plan as one markdown document (may exceed a comment's limit)."""
    sections = _sections(plan)
    body = [block for heading, blocks in sections for block in (heading, *blocks)]
    unmanaged = _unmanaged(plan)
    return "\n".join([_head(plan, title, marker), *body, *([unmanaged] if unmanaged else []), _foot(plan)])


def render_parts(
    plan: Plan, title: str = "hlops plan", limit: int = LIMIT, marker: str = MARKER
) -> list[str]:
    """The plan as one or more comments, each at most ``limit`` characters."""
    whole = render(plan, title, marker)
    if len(whole) <= limit:
        return [whole]
    unmanaged = _unmanaged(plan)
    sections = _sections(plan)
    # Room for the body of one part, with the longest head and foot a part can have.
    room = limit - len(_head(plan, title, marker, (999, 999))) - len(_foot(plan, (999, 999))) - 2
    longest_heading = max((len(_continued(h)) + 1 for h, _ in sections), default=0)
    if room - longest_heading < 2_000:
        raise ValueError(f"limit {limit} leaves no room for the plan's changes")
    parts: list[list[str]] = [[]]
    used = 0
    for heading, blocks in sections:
        headed = False  # this section's heading is in the current part
        for i, block in enumerate(blocks):
            block = _cut(block, room - longest_heading - 1, limit)
            need = len(block) + 1 + (0 if headed else longest_heading)
            if used and used + need > room:
                parts.append([])
                used, headed = 0, False
            if not headed:
                label = heading if i == 0 else _continued(heading)
                parts[-1].append(label)
                used += len(label) + 1
                headed = True
            parts[-1].append(block)
            used += len(block) + 1
    if unmanaged:  # last, in a part of its own if it does not fit
        if used + len(unmanaged) + 1 > room:
            parts.append([])
        parts[-1].append(unmanaged)
    total = len(parts)
    return [
        "\n".join([_head(plan, title, marker, (i, total)), *body, _foot(plan, (i, total))])
        for i, body in enumerate(parts, 1)
    ]


def _continued(heading: str) -> str:
    return heading.rstrip("\n") + " (continued)\n"


# --------------------------------------------------------------------------- pieces


def _head(plan: Plan, title: str, marker: str, part: tuple[int, int] | None = None) -> str:
    s = plan.summary
    suffix = f" (part {part[0]} of {part[1]})" if part else ""
    lines = [marker, f"### {_md(title)}{suffix}", ""]
    if not plan.has_changes:
        lines += ["**No changes.** The remote matches the manifests.", ""]
    loss = f"⚠️ {s.data_loss}" if s.data_loss else "0"
    lines += [
        "| to add | to change | to replace | to destroy | data loss | datapoints +/~/- |",
        "|---:|---:|---:|---:|---:|:---:|",
        f"| {s.add} | {s.change} | {s.replace} | {s.destroy} | {loss} | "
        f"+{s.rows_add:,} / ~{s.rows_change:,} / -{s.rows_remove:,} |",
        "",
        f"`{s.line}`",
        "",
    ]
    lossy = plan.destructive()
    if lossy:
        lines += [
            f"> [!CAUTION]\n> **Data loss:** this plan destroys datapoints, annotations or models "
            f"in {_addresses(c.address for c in lossy)}. Apply needs `--allow-data-loss`.",
            "",
        ]
    protected = plan.protected()
    if protected:
        lines += [
            f"> [!CAUTION]\n> **prevent_destroy** protects {_addresses(c.address for c in protected)}: "
            "apply will refuse this plan.",
            "",
        ]
    pruned = [c for c in plan.changes if is_pruned(c)]
    if pruned:
        lines += [
            f"> [!WARNING]\n> **`--prune` deletes {len(pruned)} resource{_s(len(pruned))}** that "
            f"this repository owns (hlops.yaml `owns`) and no manifest declares: "
            f"{_addresses(c.address for c in pruned)}. See *Pruned* below.",
            "",
        ]
    for note in plan.notes:
        lines += [f"> {_md(note)}", ""]
    if plan.targets:
        lines += [f"Only {_addresses(plan.targets)} (`--target`) and what they depend on.", ""]
    return "\n".join(lines)


def _foot(plan: Plan, part: tuple[int, int] | None = None) -> str:
    where = f" · part {part[0]} of {part[1]}" if part else ""
    version = f" · hlops {plan.hlops_version}" if plan.hlops_version else ""
    return "\n".join(
        [f"<sub>plan `{plan.id}`{version}{where}</sub>", ID_MARKER.format(id=plan.id), ""]
    )


def _unmanaged(plan: Plan) -> str:
    if not plan.unmanaged:
        return ""
    n = len(plan.unmanaged)
    lines = [
        "",
        f"<details><summary>{n} remote resource{_s(n)} no manifest declares (left alone)</summary>",
        "",
    ]
    lines += [f"- `{_tick(a)}`" for a in plan.unmanaged[:MAX_LISTED]]
    if n > MAX_LISTED:
        lines.append(f"- … and {n - MAX_LISTED:,} more")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _sections(plan: Plan) -> list[Section]:
    changed = sorted((c for c in plan.changes if c.has_changes), key=risk_key)
    main = [_block(c) for c in changed if not is_pruned(c)]
    pruned = [_block(c) for c in changed if is_pruned(c)]
    out: list[Section] = []
    if main:
        out.append(("#### Changes\n", main))
    if pruned:
        out.append((
            "#### 🗑️ Pruned — owned by this repository, declared by no manifest (`--prune`)\n",
            pruned,
        ))
    return out


def _block(change: ResourceChange) -> str:
    flag = " ⚠️ <b>data loss</b>" if change.data_loss else ""
    if change.prevent_destroy and change.destroys:
        flag += " ⛔ <b>prevent_destroy</b>"
    phrase = ACTION_PHRASE[change.action]
    if change.renamed_from:
        phrase = f"will be renamed from <code>{_code(change.renamed_from)}</code>"
        if len(change.changes) > 1 or (change.data and change.data.has_changes):
            phrase += " and updated in place"
    elif change.action == Action.UPDATE and not change.changes and change.data:
        phrase = "will have its datapoints updated"
    symbol = change.action.symbol
    lines = [
        f"<details><summary><code>{symbol}</code> <b><code>{_code(change.address)}</code></b> "
        f"{phrase}{flag}</summary>",
        "",
    ]
    bullets = [f"replaced because {_md(r)}" for r in change.replace_reasons]
    bullets += [f"**data loss:** {_md(loss)}" for loss in change.data_loss]
    bullets += [_md(n) for n in change.notes]
    if change.source:
        bullets.append(f"declared at `{_tick(change.source)}`")
    lines += [f"- {b}" for b in bullets]
    if bullets:
        lines.append("")
    diff_lines: list[str] = []
    text_blocks: list[tuple[str, list[str]]] = []
    if change.action in (Action.CREATE, Action.DELETE):
        sign, value = ("+", change.after) if change.action == Action.CREATE else ("-", change.before)
        diff_lines = [f"{sign} {line}" for line in resource_lines(value)]
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
        lines += [f"`{_tick(name)}`:", "", *_fenced(text), ""]
    data = change.data
    if data is not None and (data.has_changes or change.action == Action.CREATE):
        lines.append(f"- datapoints: {_md(data_line(data))}")
        cost = cost_line(data)
        if cost:
            lines.append(f"- {_md(cost)}")
        lines += [f"- {_md(n)}" for n in data.notes]
        if data.remove_annotated:
            lines.append(f"- **{data.remove_annotated:,} of the rows removed carry annotations**")
        lines.append("")
    lines += ["</details>", ""]
    return "\n".join(lines)


def _cut(block: str, room: int, limit: int = LIMIT) -> str:
    """``block`` itself when it fits in ``room`` characters; else its first lines, with an
    open code fence closed, a note of what was left out, and ``</details>``."""
    if len(block) <= room:
        return block
    lines = block.split("\n")
    reserve = len(CUT_NOTE) + 200
    kept: list[str] = []
    used = 0
    fence: str | None = None
    for line in lines[:-2]:  # the last lines are </details> and a blank
        closing = f"\n{fence}" if fence else ""
        if used + len(line) + 1 + len(closing) + reserve > room:
            break
        kept.append(line)
        used += len(line) + 1
        fence = _fence_state(line, fence)
    left = len(lines) - 2 - len(kept)
    if fence:
        kept.append(fence)
    kept += [
        "",
        "> " + CUT_NOTE.format(n=left, s=_s(left), limit=limit),
        "",
        "</details>",
        "",
    ]
    return "\n".join(kept)


_FENCE = re.compile(r"^(`{3,})")


def _fence_state(line: str, fence: str | None) -> str | None:
    """The fence open after ``line`` (None: outside code)."""
    match = _FENCE.match(line)
    if fence is None:
        return match.group(1) if match else None
    return None if line.strip() == fence else fence


def _fenced(lines: list[str]) -> list[str]:
    """A ```diff block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}diff", *lines, fence]


def _addresses(addresses: Sequence[str] | object) -> str:
    items = list(addresses)  # type: ignore[call-overload]
    shown = ", ".join(f"`{_tick(a)}`" for a in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f" and {len(items) - MAX_LISTED:,} more"
    return shown


def _md(text: str) -> str:
    """Text for markdown outside code: HTML escaped, table pipes escaped, no @mentions."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("@", "&#64;")


def _code(text: str) -> str:
    """Text inside an HTML <code> element: escaped, no @mention."""
    return html.escape(text, quote=False).replace("@", "&#64;")


def _tick(text: str) -> str:
    """Text inside a markdown `code span` (shown as written: no escaping but the backtick
    that would end it)."""
    return text.replace("`", "'")


def _s(n: int) -> str:
    return "" if n == 1 else "s"
