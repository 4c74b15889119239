"""Options shared by the commands that talk to the API, as reusable decorators."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hlops.errors import SettingsError


def plural(n: int, word: str) -> str:
    """``1 file``, ``1,204 files``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--local, --base-url, --api-key: how to reach the API."""

    @click.option(
        "--local",
        is_flag=True,
        help="Start the embedded reference server (data in .hlops/local.db, key in .hlops/api-key).",
    )
    @click.option(
        "--base-url",
        metavar="URL",
        help="API base URL (default: HLOPS_BASE_URL, hlops.yaml base_url, https://api.humanloop.com).",
    )
    @click.option(
        "--api-key",
        metavar="KEY",
        help="API key (default: HLOPS_API_KEY). Prefer the variable: flags show up in process lists.",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def color_option(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--no-color", is_flag=True, help="No colours (also: NO_COLOR set, or not a terminal).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def use_color(no_color: bool, stream: Any = None) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def open_connection(local: bool, base_url: str | None, api_key: str | None, settings: Any = None) -> Any:
    from hlops import api

    if local and (base_url or api_key):
        raise SettingsError("--local runs the embedded server: drop --base-url/--api-key, or drop --local")
    return api.connect(base_url=base_url, api_key=api_key, local=local, settings=settings)


def confirm(auto_approve: bool, what: str) -> None:
    """Ask for 'yes' on a terminal; refuse without one unless --auto-approve."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise SettingsError(
            f"refusing to {what} without confirmation: stdin is not a terminal. Review the plan, "
            "then pass --auto-approve"
        )
    click.echo(f"\nDo you want to {what}? Only 'yes' will be accepted.", err=True)
    answer = click.prompt("  Enter a value", default="", show_default=False, err=True)
    if answer.strip() != "yes":
        raise click.Abort()


def positive_int(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value is not None and value < 1:
        raise click.BadParameter("must be 1 or more")
    return value


def target_addresses(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """``--target KIND/NAME``, checked before anything is read: a typo costs no API call."""
    if not values:
        return values
    from hlops.models import KINDS as MANIFEST_KINDS

    KINDS = {k.lower() for k in MANIFEST_KINDS}  # addresses are "kind/name", kind in lower case
    for value in values:
        kind, sep, name = value.partition("/")
        if not sep or kind not in KINDS or not name.strip():
            raise click.BadParameter(
                f"{value!r} is not KIND/NAME with KIND one of {', '.join(sorted(KINDS))} "
                "(e.g. dataset/support-tickets)"
            )
    return values


def output_file(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A file to write at the end (``-o plan.json``), checked before anything is read."""
    if value is None:
        return value
    if value.is_dir():
        raise click.BadParameter(f"{value} is a directory; name a file, e.g. {value}/plan.json")
    parent = value.parent if str(value.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"{parent} is not a directory (it must exist)")
    if not os.access(parent, os.W_OK) or (value.exists() and not os.access(value, os.W_OK)):
        raise click.BadParameter(f"{value} is not writable")
    return value
