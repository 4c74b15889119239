"""The `hlops` command line: the only place that reads the environment, prints, and picks
exit codes. Each command lives in a module of this package and registers itself on `main`.

Exit codes: 0 success (for `plan`/`drift`: no changes), 2 changes present (`plan`,
`drift`), 1 any error — including bad flags (click's own usage errors are mapped to 1 so
that 2 keeps meaning "changes", as with `terraform plan -detailed-exitcode`).
"""

from __future__ import annotations

import importlib

from hlops.cli.app import main

# Each module adds its commands to `main` when imported.
COMMAND_MODULES = (
    "hlops.cli.serve",
    "hlops.cli.validate",
    "hlops.cli.plan",
    "hlops.cli.gitops",
    "hlops.cli.predict",
    "hlops.cli.web",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != name:
                raise


_load_commands()

__all__ = ["main"]
