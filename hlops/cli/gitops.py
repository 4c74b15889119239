"""`hlops pull`, `hlops import`, `hlops drift`: the way back from the remote to the code.

- ``pull [PATH...]`` refreshes the manifests from the remote (in place, comments kept);
  ``--all`` also writes the owned remote resources no manifest declares as new files --
  in a directory with no manifest yet, the whole organisation (onboarding).
- ``import KIND/NAME... --to DIR`` writes chosen remote resources as new manifests.
- ``drift [PATH...]`` is read-only: exit 0 when the remote matches, 2 when it drifted.

See docs/gitops.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hlops.cli.app import main
from hlops.cli.common import color_option, connection_options, open_connection, use_color

EXIT_SAME, EXIT_ERROR, EXIT_DIFFERENT = 0, 1, 2


def _paths(paths: tuple[Path, ...]) -> list[Path]:
    return list(paths) or [Path(".")]


def _markdown_directory(value: Path | None) -> Path | None:
    from hlops.cli.plan import markdown_directory

    return markdown_directory(value)


def _cache_dir() -> Path:
    from hlops.local import local_home

    return local_home() / "cache"


# --------------------------------------------------------------------------- pull


@main.command("pull")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--all", "undeclared", is_flag=True, help="Also write remote resources no manifest declares as new files at the tree's root (only those hlops.yaml `owns`, when it names any). In an empty directory: every remote resource, the way to start from an existing organisation.")
@click.option("--no-data", is_flag=True, help="Leave data files alone (and write no data file for new datasets).")
@click.option("--dry-run", is_flag=True, help="Write nothing: show which files would change (and a diff of the manifests and guidelines). Exit 2 if any would.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@color_option
@connection_options
def pull_command(paths, undeclared, no_data, dry_run, as_json, no_color, local, base_url, api_key):
    """Update the manifests from what exists remotely, keeping their comments and layout.

    Only values that differ are rewritten; guidelines files and data files are rewritten
    when their content differs. Names, `ensure: absent` and `lifecycle.ignore_changes`
    attributes stay as declared. Afterwards `hlops plan` shows no changes."""
    from hlops import api
    from hlops.pull import has_manifests, pull

    paths = _paths(paths)
    if undeclared and len(paths) == 1 and not has_manifests(paths[0]):
        report = _pull_into_empty(paths[0], no_data, dry_run, local, base_url, api_key)
    else:
        config = api.load(paths)
        with open_connection(local, base_url, api_key, config.settings) as conn:
            report = pull(config, conn.provider, paths=paths, undeclared=undeclared, data=not no_data, dry_run=dry_run, cache_dir=_cache_dir())
    _print_report(report, as_json, no_color, "pull")
    sys.exit(EXIT_DIFFERENT if dry_run and report.changed else EXIT_SAME)


def _pull_into_empty(directory: Path, no_data: bool, dry_run: bool, local, base_url, api_key):
    """`hlops pull --all` where no manifest is yet: write the organisation (what its
    hlops.yaml owns, when there is one that names any) as new manifests."""
    from hlops.errors import ManifestError, Problem
    from hlops.manifest import display_path, load_settings
    from hlops.pull import pull_all

    if directory.exists() and not directory.is_dir():
        raise ManifestError([Problem(display_path(directory), 0, 0, "not a directory: `hlops pull --all` writes manifests into a directory")])
    settings = load_settings(directory) if directory.is_dir() else None
    with open_connection(local, base_url, api_key, settings) as conn:
        return pull_all(conn.provider, directory, owns=settings.owns if settings else None,
                        data=not no_data, dry_run=dry_run)


@main.command("import")
@click.argument("addresses", nargs=-1, required=True, metavar="KIND/NAME...")
@click.option("--to", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Where to write the new manifests.")
@click.option("--tree", type=click.Path(path_type=Path), help="The manifest tree they join (default: --to): what it declares is not written again.")
@click.option("--no-data", is_flag=True, help="Do not download datapoints (the dataset is written without `data`).")
@click.option("--dry-run", is_flag=True, help="Write nothing: show which files would be written.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@color_option
@connection_options
def import_command(addresses, directory, tree, no_data, dry_run, as_json, no_color, local, base_url, api_key):
    """Write remote resources as new manifests: `hlops import dataset/tickets "project/My project" --to manifests/`.

    A project brings the datasets it reads (unless the tree declares them). Datapoints go
    to DIR/data/<name>.jsonl, long or multi-line guidelines to DIR/<name>.md."""
    from hlops import api
    from hlops.pull import has_manifests, import_resources

    from hlops.errors import ManifestError

    settings = None
    if has_manifests(tree or directory):
        try:  # for hlops.yaml's base_url; a tree that doesn't load yet is what import may mend
            settings = api.load(tree or directory, check_data=False).settings
        except ManifestError:
            pass
    with open_connection(local, base_url, api_key, settings) as conn:
        report = import_resources(conn.provider, list(addresses), directory, tree=tree, data=not no_data, dry_run=dry_run)
    _print_report(report, as_json, no_color, "import")
    sys.exit(EXIT_SAME)


def _print_report(report, as_json: bool, no_color: bool, verb: str) -> None:
    import orjson

    from hlops.manifest import display_path

    if as_json:
        click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    color = use_color(no_color)
    style = (lambda t, **k: click.style(t, **k)) if color else (lambda t, **k: t)
    would = "Would write" if report.dry_run else "Wrote"
    for w in report.files:
        action = ("create" if w.created else "update") if report.dry_run else ("Created" if w.created else "Updated")
        head = f"{'Would ' + action if report.dry_run else action} {display_path(w.path)}"
        click.echo(style(head, bold=True) + (": " + "; ".join(w.what) if w.what else ""))
        if report.dry_run:
            diff = w.diff()
            if diff:
                for line in diff.splitlines():
                    fg = "green" if line.startswith("+") else "red" if line.startswith("-") else None
                    click.echo("    " + (style(line, fg=fg) if fg else line))
            elif w.sensitive:
                click.echo("    (diff not shown: it holds datapoints)")
    for line in report.skipped:
        click.echo(f"Skipped {line}")
    for line in report.warnings:
        click.echo(style(f"Warning: {line}", fg="yellow"), err=True)
    n_files = len(report.files)
    if not n_files:
        click.echo("Nothing to write: the manifests already say what exists remotely." if verb == "pull" else "Nothing to write.")
        return
    click.echo(
        f"{would} {n_files} file{'s' if n_files != 1 else ''} for {len(report.resources)} "
        f"resource{'s' if len(report.resources) != 1 else ''}."
        + ("" if report.dry_run else " `hlops plan` should now show no changes for them.")
    )


# --------------------------------------------------------------------------- drift


@main.command("drift")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", is_flag=True, help="Print the difference as a markdown plan (for an issue or a comment).")
@click.option("--markdown-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", callback=lambda ctx, param, value: _markdown_directory(value), help="Also write the markdown to DIR/drift-1.md ...")
@color_option
@connection_options
def drift_command(paths, as_json, markdown, markdown_dir, no_color, local, base_url, api_key):
    """Check whether the remote still matches the manifests; changes nothing.

    Exit 0: no drift; 2: drift (reported); 1: error. Owned remote resources no manifest
    declares (hlops.yaml `owns`) count as drift."""
    import orjson

    from hlops import api
    from hlops.drift import drift_report, render_text
    from hlops.render.markdown import render_parts

    if as_json and markdown:
        raise click.UsageError("--json and --markdown are exclusive")
    paths = _paths(paths)
    config = api.load(paths)
    with open_connection(local, base_url, api_key, config.settings) as conn:
        conn.provider.require("drift")
        result = api.plan(config, conn, manifests=paths)
    owns = config.settings.owns
    owned = [a for a in result.plan.unmanaged if not owns.empty and owns.owns(a.split("/", 1)[1])]
    report = drift_report(result.plan, owned)
    parts = None
    if markdown or markdown_dir:
        title = "hlops drift: the remote no longer matches the manifests" if report.drifted else "hlops drift: no drift"
        parts = render_parts(result.plan, title=title, marker="<!-- hlops-drift -->")
    if as_json:
        click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    elif markdown:
        click.echo("\n\n".join(parts), nl=False)
    else:
        click.echo(render_text(report), nl=False)
    if markdown_dir:
        from hlops.cli.plan import write_markdown_parts

        write_markdown_parts(parts, markdown_dir, stem="drift")
    sys.exit(EXIT_DIFFERENT if report.drifted else EXIT_SAME)
