"""`hlops plan`, `hlops apply`, `hlops destroy`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from hlops.cli.app import main
from hlops.cli.common import (
    color_option,
    confirm,
    connection_options,
    open_connection,
    output_file,
    positive_int,
    target_addresses,
    use_color,
)
from hlops.errors import ApplyError

# The engine (deepdiff, numpy, requests...) is imported inside the commands, so that
# `hlops --help` and `hlops validate` start fast.

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

paths_argument = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


def plan_shape_options(func: Any) -> Any:
    func = click.option("--target", "targets", multiple=True, metavar="KIND/NAME", callback=target_addresses, help="Only this resource (and what it depends on). Repeatable.")(func)
    func = click.option("--prune", is_flag=True, help="Also delete remote resources this repo owns (hlops.yaml `owns`) that no manifest declares.")(func)
    return func


def _paths(paths: tuple[Path, ...]) -> list[Path]:
    return list(paths) or [Path(".")]


@main.command("plan")
@paths_argument
@plan_shape_options
@click.option("-o", "--out", type=click.Path(path_type=Path), callback=output_file, help="Save the plan (JSON) for `hlops apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (docs/plan-format.md).")
@click.option("--markdown", is_flag=True, help="Print the plan as markdown for a pull-request comment (several parts, if long, separated by blank lines; see --markdown-dir).")
@click.option("--markdown-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", callback=lambda ctx, param, value: markdown_directory(value), help="Also write the markdown comment(s) to DIR/plan-1.md, plan-2.md ... (one file per part, each under 65,000 characters); older plan-*.md in DIR are removed.")
@click.option("--title", default="hlops plan", show_default=True, help="The markdown heading.")
@click.option("--show-data", is_flag=True, help="Show a few example keys of the datapoints that change (never their content; not in markdown).")
@color_option
@connection_options
def plan_command(paths, targets, prune, out, as_json, markdown, markdown_dir, title, show_data, no_color, local, base_url, api_key):
    """Show what apply would change. Exit 0: no changes, 2: changes, 1: error."""
    from hlops import api

    if as_json and markdown:
        raise click.UsageError("--json and --markdown are exclusive")
    paths = _paths(paths)
    config = api.load(paths, check_data=False)  # the plan checks data before any API call
    with open_connection(local, base_url, api_key, config.settings) as conn:
        result = api.plan(config, conn, prune=prune, targets=targets, show_data=show_data, manifests=paths)
    plan = result.plan
    if out:
        api.save_plan(plan, out)
    _print_plan(plan, as_json, markdown, no_color, title)
    if markdown_dir:
        written = write_markdown_parts(_markdown_parts(plan, title), markdown_dir)
        click.echo(f"Wrote {len(written)} markdown part{'s' if len(written) != 1 else ''} to {markdown_dir}/", err=True)
    if out and not as_json:
        click.echo(f"Saved the plan to {out}; apply it with: hlops apply {out}", err=True)
    sys.exit(EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES)


def markdown_directory(value: Path | None) -> Path | None:
    """``--markdown-dir DIR``, checked before anything is read (created at the end)."""
    if value is None:
        return value
    existing = value
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise click.BadParameter(f"{existing} is not a directory", param_hint="--markdown-dir")
    if not os.access(existing, os.W_OK):
        raise click.BadParameter(f"{existing} is not writable", param_hint="--markdown-dir")
    return value


def write_markdown_parts(parts: list[str], directory: Path, stem: str = "plan") -> list[Path]:
    """``DIR/plan-1.md`` ... one file per part; stale ``plan-*.md`` of a longer run removed."""
    from hlops.errors import SettingsError

    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"{stem}-*.md"):
            old.unlink()
        for i, part in enumerate(parts, 1):
            path = directory / f"{stem}-{i}.md"
            path.write_text(part, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise SettingsError(f"cannot write the markdown to {directory}: {exc.strerror}") from None
    return written


def _markdown_parts(plan: Any, title: str) -> list[str]:
    from hlops.render.markdown import render_parts

    return render_parts(plan, title)


def _print_plan(plan: Any, as_json: bool, markdown: bool, no_color: bool, title: str = "hlops plan") -> None:
    from hlops import api

    if as_json:
        click.echo(api.render_json(plan), nl=False)
    elif markdown:
        click.echo("\n\n".join(_markdown_parts(plan, title)), nl=False)
    else:
        click.echo(api.render_text(plan, color=use_color(no_color)), nl=False)


@main.command("apply")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@plan_shape_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (for scripts and CI; a saved plan never asks).")
@click.option("--allow-data-loss", is_flag=True, help="Allow changes that destroy datapoints, annotations or models.")
@click.option("--parallelism", default=4, show_default=True, callback=positive_int, help="Independent calls in flight at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the report as JSON.")
@color_option
@connection_options
def apply_command(paths, targets, prune, auto_approve, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key):
    """Make the remote match the manifests (or apply a saved plan: `hlops apply plan.json`)."""
    from hlops import api

    if len(paths) == 1 and api.is_saved_plan(paths[0]):
        if targets or prune:
            raise click.UsageError("--target/--prune belong to `hlops plan` when applying a saved plan")
        _apply_saved(paths[0], allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key)
        return
    _plan_and_apply(_paths(paths), targets, prune, False, auto_approve, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key)


@main.command("destroy")
@paths_argument
@click.option("--target", "targets", multiple=True, metavar="KIND/NAME", callback=target_addresses, help="Only this resource. Repeatable.")
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@click.option("--allow-data-loss", is_flag=True, help="Required when anything destroyed holds data.")
@click.option("--parallelism", default=4, show_default=True, callback=positive_int)
@click.option("--json", "as_json", is_flag=True)
@color_option
@connection_options
def destroy_command(paths, targets, auto_approve, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key):
    """Delete every resource the manifests declare."""
    _plan_and_apply(_paths(paths), targets, False, True, auto_approve, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key)


def _plan_and_apply(paths, targets, prune, destroy, auto_approve, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key):
    from hlops import api
    from hlops.apply import check_allowed

    config = api.load(paths, check_data=False)  # the plan checks data before any API call
    with open_connection(local, base_url, api_key, config.settings) as conn:
        # --auto-approve: no one reads the counts before the apply, so the rows of a new or
        # remote-empty dataset may be checked, counted and sent in one pass (api.plan)
        result = api.plan(config, conn, prune=prune, destroy=destroy, targets=targets, manifests=paths,
                          stream_data=auto_approve and not destroy)
        plan = result.plan
        if not as_json:
            click.echo(api.render_text(plan, color=use_color(no_color)), nl=False)
        if not plan.has_changes:
            if as_json:
                _echo_json(plan, None)
            else:
                click.echo("Nothing to do.")
            return
        check_allowed(plan, allow_data_loss)
        confirm(auto_approve, "destroy these resources" if destroy else "apply these changes")
        _run(lambda on_event: api.apply(result, conn, allow_data_loss=allow_data_loss, parallelism=parallelism, on_event=on_event), plan, as_json, no_color)


def _apply_saved(path, allow_data_loss, parallelism, as_json, no_color, local, base_url, api_key):
    from hlops import api
    from hlops.apply import check_allowed

    saved = api.read_saved_plan(path)
    if not as_json:
        click.echo(api.render_text(saved, color=use_color(no_color)), nl=False)
    if not saved.has_changes:
        click.echo("The saved plan has no changes; nothing to do.") if not as_json else _echo_json(saved, None)
        return
    check_allowed(saved, allow_data_loss)
    # Like `terraform apply PLANFILE`: the saved plan is what was reviewed and approved, so it
    # is applied without asking (--auto-approve is accepted and changes nothing); a plan that
    # went stale since is refused by apply_saved before any write.
    settings = api.load(list(saved.manifests), check_data=False).settings if saved.manifests else None
    with open_connection(local, base_url, api_key, settings) as conn:
        _run(lambda on_event: api.apply_saved(saved, conn, allow_data_loss=allow_data_loss, parallelism=parallelism, on_event=on_event), saved, as_json, no_color)


def _run(action, plan: Any, as_json: bool, no_color: bool) -> None:
    from hlops.cli.progress import EventPrinter

    printer = EventPrinter(enabled=not as_json, color=use_color(no_color, sys.stderr))
    try:
        report = action(printer)
    except ApplyError as exc:
        printer.close()
        if as_json:
            _echo_json(plan, exc.report)
        else:
            click.echo(printer.summary(exc.report), err=True)
        raise
    printer.close()
    if as_json:
        _echo_json(plan, report)
    else:
        click.echo(printer.summary(report))


def _echo_json(plan: Any, report: Any) -> None:
    import orjson

    body = {"plan": plan.to_json(), "report": report.to_json() if report is not None else None}
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
