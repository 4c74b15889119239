"""`hlops serve`: run the reference server in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hlops.cli.app import main
from hlops.errors import SettingsError

TEST_ONLY = "[test-only] "


def _statuses(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter("a comma-separated list of HTTP statuses, e.g. 503,429") from None
    if not out:
        raise click.BadParameter("name at least one status")
    return out


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port (the URL is printed).")
@click.option("--db", envvar="HLOPS_DB_URL", default=".hlops/server.db", show_default=True, help="A SQLite database file (created if missing), or a PostgreSQL URL (postgresql://user@host/dbname; the schema is created or migrated at start). Default: $HLOPS_DB_URL, else the file.")
@click.option("--api-key", "api_keys", multiple=True, metavar="KEY", help="An API key; each key is one organisation. Repeatable. Default: $HLOPS_API_KEY.")
@click.option("--keys-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="One `key [org-name]` per line (`#` comments); keys naming the same org share it.")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the URL here once the server accepts connections.")
@click.option("--sync", type=click.Choice(["normal", "full"]), default="normal", show_default=True, help="SQLite synchronous mode: normal survives a killed process, full also a power cut (PostgreSQL: its own settings).")
@click.option("--max-index-bytes", type=click.IntRange(min=1), help="Body limit of PUT /datasets/{id}/last_applied/index, in bytes (default 256 MiB; other bodies: 32 MiB).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning", show_default=True)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help=TEST_ONLY + "Requests per second per key; more get 429 with Retry-After.")
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0, help=TEST_ONLY + "Share of requests answered with a fault status.")
@click.option("--fault-statuses", default="503", callback=_statuses, show_default=True, help=TEST_ONLY + "Fault statuses, comma-separated (e.g. 503,429).")
@click.option("--fault-seed", type=int, help=TEST_ONLY + "Seed of the fault draws (repeatable runs).")
@click.option("--fault-retry-after", type=click.IntRange(min=0), default=1, show_default=True, help=TEST_ONLY + "Retry-After seconds of a fault 429.")
@click.option("--fail-nth", type=click.IntRange(min=1), multiple=True, help=TEST_ONLY + "Fail exactly the Nth counted request. Repeatable.")
@click.option("--fault-phase", type=click.Choice(["before", "after"]), default="before", show_default=True, help=TEST_ONLY + "before: fail without processing; after: process and commit, then fail (a lost response).")
@click.option("--request-log", type=click.Path(dir_okay=False, path_type=Path), help=TEST_ONLY + "Append one JSON line per request (time, org, method, path, status).")
@click.option("--test-endpoints", is_flag=True, help=TEST_ONLY + "Enable the hidden /_test/* routes (stats, faults).")
def serve_command(
    host, port, db, api_keys, keys_file, ready_file, sync, max_index_bytes, log_level, rate_limit, fault_rate,
    fault_statuses, fault_seed, fault_retry_after, fail_nth, fault_phase, request_log, test_endpoints,
):
    """Run the reference server (the Humanloop API with hlops's extensions).

    Options marked [test-only] make the server misbehave on purpose, so tests can prove a
    client copes; they are off by default. See docs/server.md.
    """
    from hlops.server.config import MAX_INDEX_BYTES, FaultConfig, Settings, key_map, read_keys_file
    from hlops.server.run import serve

    keys: list[tuple[str, str | None]] = [(k, None) for k in api_keys]
    if keys_file:
        keys += read_keys_file(keys_file)
    if not keys and os.environ.get("HLOPS_API_KEY"):
        keys.append((os.environ["HLOPS_API_KEY"], None))
    if not keys:
        raise SettingsError("give at least one --api-key or a --keys-file (or set HLOPS_API_KEY)")
    faults = FaultConfig(
        rate=fault_rate, statuses=fault_statuses, seed=fault_seed, fail_nth=tuple(fail_nth),
        phase=fault_phase, retry_after=fault_retry_after,
    ).checked()
    settings = Settings(
        keys=key_map(keys), rate_limit=rate_limit, faults=faults, request_log=request_log,
        test_endpoints=test_endpoints, max_index_bytes=max_index_bytes or MAX_INDEX_BYTES,
    )

    def announce(url: str) -> None:
        click.echo(f"hlops reference server listening on {url}", err=True)

    try:
        serve(host, port, db, settings=settings, sync=sync, ready_file=ready_file, announce=announce, log_level=log_level)
    except OSError as exc:
        raise SettingsError(f"cannot start the server on {host}:{port}: {exc.strerror or exc}") from None
