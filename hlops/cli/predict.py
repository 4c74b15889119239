"""`hlops predict`, `hlops export`, `hlops annotations import|summary`: the seed's steps 4
and 5 (models trained from annotations, the labelled data), see docs/models.md.

Arguments and files are checked before any API call (:mod:`hlops.labelfiles`); the work is the provider's (:class:`hlops.provider.Labelled`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from hlops.cli.app import main
from hlops.cli.common import color_option, connection_options, open_connection, output_file, plural, positive_int, use_color

MAX_TEXT_COLUMN = 60


def _connect(local: bool, base_url: str | None, api_key: str | None) -> Any:
    return open_connection(local, base_url, api_key)


def _labelled(conn: Any, capability: str) -> Any:
    """The provider's labelled-data operations, after checking it supports ``capability``."""
    conn.provider.require(capability)
    return conn.provider.labelled()


def _bar(total: int | None, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------------- predict


@main.command("predict")
@click.argument("project")
@click.option("--text", "texts", multiple=True, metavar="TEXT", help="A text to predict (repeatable).")
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file of rows (.jsonl, .json or .csv), each an object of input name -> value.")
@click.option("--input-name", metavar="NAME", help="The input --text fills (default: the project's first text input that is not display-only).")
@click.option("--n-best", type=int, default=1, show_default=True, callback=positive_int, help="Labels per output, most probable first.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@click.option("--wait/--no-wait", default=None, help="First wait until the models are trained on every annotation (default: with --local only).")
@color_option
@connection_options
def predict_command(project, texts, input_file, input_name, n_best, as_json, wait, no_color, local, base_url, api_key):
    """Predict with the model of PROJECT (its name): labels and confidences per output.

    A model trains once each output has 10 annotated datapoints; before that this fails with
    what is missing."""
    from hlops import labelfiles

    if bool(texts) == bool(input_file):
        raise click.UsageError("give --text (one or more) or --input FILE")
    if input_file and input_name:
        raise click.UsageError("--input-name goes with --text; the rows of --input name their inputs")
    lines: list[int] | None = None
    rows: list[dict] = []
    if input_file:
        numbered = labelfiles.read_input_rows(input_file)
        lines = [line for line, _ in numbered]
        rows = [row for _, row in numbered]
    with _connect(local, base_url, api_key) as conn:
        labelled = _labelled(conn, "predict")
        proj = labelled.find_project(project)
        shown = input_name or labelled.default_input(proj)
        if texts:
            if shown not in {i["name"] for i in proj["inputs"]}:
                names = ", ".join(i["name"] for i in proj["inputs"])
                raise click.BadParameter(f"project {project!r} has no input {shown!r} (its inputs: {names})", param_hint="--input-name")
            rows = [{shown: t} for t in texts]
        if conn.local if wait is None else wait:
            said = []

            def waiting(_summary: dict) -> None:
                if not said:
                    click.echo("Waiting for the model to train on the latest annotations...", err=True)
                    said.append(True)

            labelled.wait_for_models(proj, on_wait=waiting)
        answer = labelled.predict(proj, rows, n_best, lines=lines, source=str(input_file or ""))
    if as_json:
        import orjson

        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(render_predictions(answer, shown, use_color(no_color)))


def render_predictions(answer: list[dict], text_input: str, color: bool = False) -> str:
    """The table: one block per row, a line per label (or span)."""
    width = min(MAX_TEXT_COLUMN, max(20, shutil.get_terminal_size((100, 20)).columns - 50))
    table: list[tuple[str, str, str, str]] = []
    for item in answer:
        text = item["data"].get(text_input)
        text = "" if text is None else str(text)
        first = True
        for pred in item["predictions"]:
            entries = _entries(pred, text) or [("(none)", "")]
            for n, (label, confidence) in enumerate(entries):
                table.append((_clip(text, width) if first else "", pred["output"] if n == 0 else "", label, confidence))
                first = False
    header = ("TEXT", "OUTPUT", "PREDICTION", "CONFIDENCE")
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    if color:
        lines[0] = click.style(lines[0], bold=True)
    for row in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _entries(pred: dict, text: str) -> list[tuple[str, str]]:
    out = []
    for v in pred["value"]:
        if "start" in v:
            surface = text[v["start"]:v["end"]].replace("\n", " ")
            out.append((f"{v['label']} {_clip(surface, 30)!r} [{v['start']}:{v['end']}]", f"{v['confidence']:.2f}"))
        else:
            out.append((v["label"], f"{v['confidence']:.2f}"))
    return out


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------- export


def _export_target(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    if str(value) == "-":
        return value
    return output_file(ctx, param, value)


@main.command("export")
@click.argument("project")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), callback=_export_target,
              help="The file to write (.jsonl, .json or .csv; `-`: standard output).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "csv"]), help="Default: from the extension of -o (jsonl for `-`).")
@connection_options
def export_command(project, out, fmt, local, base_url, api_key):
    """Download the labelled data of PROJECT: every annotated datapoint with its inputs and
    outputs (`{datapoint_id, inputs, outputs}`; in a CSV a column per input and output,
    lists as JSON)."""
    from hlops import labelfiles

    fmt = labelfiles.export_format(out, fmt)
    to_stdout = str(out) == "-"
    with _connect(local, base_url, api_key) as conn:
        labelled = _labelled(conn, "export")
        proj = labelled.find_project(project)
        total = None
        if sys.stderr.isatty():
            total = labelled.summary(proj)["annotated_datapoints"]
        bar = _bar(total, "export", "rows")
        try:
            n = labelled.export(
                proj, None if to_stdout else out, fmt,
                progress=(lambda done: bar.update(done - bar.n)) if bar is not None else None,
                stdout=sys.stdout.buffer,
            )
        finally:
            if bar is not None:
                bar.close()
    if not to_stdout:
        click.echo(f"Exported {n:,} annotated datapoint{'s' if n != 1 else ''} of {project!r} to {out} ({fmt}).", err=True)


# ---------------------------------------------------------------------- annotations


@main.group("annotations")
def annotations_group() -> None:
    """Annotations of a project: import them, see their counts and the model."""


@annotations_group.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=int, default=8, show_default=True, callback=positive_int, help="Annotations sent at a time.")
@connection_options
def import_command(project, file, workers, local, base_url, api_key):
    """Load annotations made elsewhere into PROJECT.

    FILE (.jsonl, .json or .csv) has one row per annotation: {"key": ..., "output": ...,
    "value": ...} -- the datapoint by its dataset's key (add "dataset": NAME when the project
    reads several datasets with the same key), or by "datapoint_id". The value is a label
    (classification), a list of labels (multilabel) or a list of {start, end, label} spans
    (tagging). The file is checked in full before anything is written (a datapoint named twice
    for one output is refused); an import replaces a datapoint's earlier annotation."""
    from hlops import labelfiles

    source, rows = labelfiles.read_annotations(file)
    with _connect(local, base_url, api_key) as conn:
        labelled = _labelled(conn, "annotations")
        proj = labelled.find_project(project)
        resolved = labelled.resolve_annotations(proj, source, rows)
        bar = _bar(len(resolved), "import", "rows")
        try:
            report = labelled.import_annotations(
                proj, source, resolved, workers=workers,
                progress=(lambda done: bar.update(done - bar.n)) if bar is not None else None,
            )
        finally:
            if bar is not None:
                bar.close()
        found = labelled.summary(proj)
    n = report.imported
    click.echo(f"Imported {plural(n, 'annotation')} ({plural(len(report.datapoints), 'datapoint')}) into {project!r}; "
               f"skipped {plural(len(report.skipped), 'row')}.")
    for problem in report.skipped[:50]:
        click.echo(f"  {problem}", err=True)
    if len(report.skipped) > 50:
        click.echo(f"  ... and {len(report.skipped) - 50} more", err=True)
    click.echo(_summary_lines(found))
    if report.skipped:
        sys.exit(1)


@annotations_group.command("summary")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@connection_options
def summary_command(project, as_json, local, base_url, api_key):
    """Annotation counts of PROJECT per output, and the state of each output's model."""
    with _connect(local, base_url, api_key) as conn:
        labelled = _labelled(conn, "annotations")
        found = labelled.summary(labelled.find_project(project))
    if as_json:
        import orjson

        click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(_summary_lines(found))


def _summary_lines(found: dict) -> str:
    lines = []
    for out in found["outputs"]:
        model = out["model"]
        state = model["status"]
        if model.get("version"):
            state += f", version {model['version']} trained on {model.get('trained_on', 0):,}"
            metrics = model.get("metrics") or {}
            score = next(((k, metrics[k]) for k in ("accuracy", "micro_f1", "span_f1") if k in metrics), None)
            if score:
                state += f" ({score[0]} {score[1]:.3f}, {metrics.get('evaluation', '')})"
        elif model["status"] == "untrained":
            state += f" (needs {max(0, 10 - out['annotated'])} more)"
        if model.get("error"):
            state += f": {model['error']}"
        lines.append(f"  {out['name']} ({out['task_type']}): {out['annotated']:,} annotated; model {state}")
    return "\n".join(lines)
