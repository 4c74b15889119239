"""The root click group, and the error handling every command shares."""

from __future__ import annotations

import os
import sys
import traceback

import click

from hlops import __version__
from hlops.errors import HlopsError


class HlopsGroup(click.Group):
    """Maps every failure to a one-line (or located, multi-line) message and exit code 1.

    - usage errors (unknown flag, missing argument): click's message, exit 1 (not 2);
    - :class:`HlopsError`: its message, its ``exit_code``;
    - anything else is a bug: one line saying so; the traceback only with HLOPS_DEBUG=1.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            # Outside standalone mode click *returns* the code of ctx.exit(n); exit with it.
            sys.exit(rv if isinstance(rv, int) else 0)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(1)
        except HlopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("HLOPS_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"Error: internal error ({type(exc).__name__}); this is a bug in hlops. "
                "Run again with HLOPS_DEBUG=1 for the traceback.",
                err=True,
            )
            sys.exit(1)


@click.group(cls=HlopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hlops")
def main() -> None:
    """Project-as-code for the Humanloop API: manifests in git, `plan`, `apply`."""
