"""`hlops users token EMAIL` and `hlops open PROJECT`: the annotation web app (docs/annotate.md)."""

from __future__ import annotations

import threading

import click

from hlops.cli.app import main
from hlops.cli.common import connection_options, open_connection


@main.group("users")
def users_group() -> None:
    """The people of your projects."""


@users_group.command("token")
@click.argument("email")
@connection_options
def token_command(email, local, base_url, api_key):
    """Issue a personal token for EMAIL (listed in a project's users): it signs in to the
    annotation web app. The token is printed on stdout once; a new one replaces the last."""
    from hlops import api

    with open_connection(local, base_url, api_key) as conn:
        found = api.user_token(conn, email)
        where = api.sign_in_url(conn)
    projects = ", ".join(f"{p['name']} ({p['role']})" for p in found["projects"])
    click.echo(f"Token for {found['email']}, who works on: {projects}.", err=True)
    click.echo(f"Sign in at {where}" + (" (while `hlops open --local` runs)" if local else ""), err=True)
    click.echo(found["token"])


@main.command("open")
@click.argument("project")
@click.option("--browser", is_flag=True, help="Also open the page in your web browser.")
@connection_options
def open_command(project, browser, local, base_url, api_key):
    """Print the address of PROJECT's labelling page (and, with --browser, open it).

    With --local the embedded server keeps serving the page until you press Ctrl-C.
    """
    from hlops import api

    with open_connection(local, base_url, api_key) as conn:
        url = api.project_url(conn, project)
        click.echo(f"Navigate to {url}")
        if browser:
            import webbrowser

            webbrowser.open(url)
        if local:
            click.echo("Serving the local project; sign in with a token from `hlops users token EMAIL --local`. "
                       "Press Ctrl-C to stop.", err=True)
            idle = threading.Event()
            try:
                # a timed wait: the kernel may deliver Ctrl-C's SIGINT to one of the server's
                # threads, and an untimed wait in the main thread would then never run
                # Python's handler (the page kept serving; seen under load)
                while not idle.wait(0.25):
                    pass
            except KeyboardInterrupt:
                click.echo("Stopped.", err=True)
