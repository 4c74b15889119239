"""`hlops validate` and `hlops schema`: check manifests offline; print the JSON Schema.

`validate` never touches the network. It prints every problem as
``path:line:col: what is wrong — what would be right`` followed by a count, and exits 1;
or a one-line summary and exits 0. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hlops.cli.app import main
from hlops.cli.common import plural
from hlops.errors import ManifestError
from hlops.manifest import display_path, load
from hlops.models import manifest_schema, settings_schema


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-data", is_flag=True, help="Do not read data files (manifests only).")
def validate(paths: tuple[Path, ...], as_json: bool, no_data: bool) -> None:
    """Check manifests and their data files, offline. PATHS: files or directories
    (default: the current directory). Exit 0 when everything is valid, 1 otherwise."""
    try:
        config = load(list(paths) or [Path(".")], check_data=not no_data)
    except ManifestError as exc:
        problems = exc.problems
        if as_json:
            click.echo(json.dumps({
                "valid": False,
                "problems": [
                    {"path": p.path, "line": p.line, "col": p.col, "message": p.message}
                    for p in problems
                ],
            }, indent=2, ensure_ascii=False))
        else:
            for problem in problems:
                click.echo(str(problem))
            click.echo(f"{plural(len(problems), 'problem')} found.")
        sys.exit(1)  # not ctx.exit: the root group runs click with standalone_mode=False
    rows = sum(config.rows.values())
    if as_json:
        click.echo(json.dumps({
            "valid": True,
            "problems": [],
            "root": display_path(config.root),
            "files": [display_path(f) for f in config.files],
            "datasets": sorted(config.datasets),
            "projects": sorted(config.projects),
            "datapoints": config.rows,
        }, indent=2, ensure_ascii=False))
        return
    checked = "" if no_data else f", {plural(rows, 'datapoint')} checked"
    click.echo(
        f"Valid: {plural(len(config.datasets), 'dataset')}, "
        f"{plural(len(config.projects), 'project')} in {plural(len(config.files), 'file')}"
        f"{checked}."
    )


@main.command()
@click.option("--settings", is_flag=True, help="The schema of hlops.yaml instead.")
def schema(settings: bool) -> None:
    """Print the JSON Schema of a manifest document (for editors: yaml-language-server)."""
    click.echo(schema_text(settings))


def schema_text(settings: bool = False) -> str:
    """The committed form of the schema (schema/*.json), generated from the models."""
    value = settings_schema() if settings else manifest_schema()
    return json.dumps(value, indent=2, ensure_ascii=False)
