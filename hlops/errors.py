"""Every error hlops raises on purpose. Only the CLI turns them into messages and exit codes.

::

    HlopsError                      anything hlops reports without a traceback
    ├── ManifestError               one or more located problems in manifests or data files
    │   └── DataStopped             ... found by a streamed apply after the rows before them were sent
    ├── SettingsError               a bad flag, environment variable or hlops.yaml value
    ├── ApiError                    the API answered with an error (status, detail)
    │   ├── AuthError               401: missing or unknown API key
    │   ├── NotFoundError           404
    │   ├── ConflictError           409: duplicate name, resource in use
    │   ├── PreconditionFailed      412: If-Match did not match the current version
    │   └── RateLimited             429 that outlived the retries
    ├── TransportError              the API could not be reached, or timed out
    ├── PlanError                   a plan that cannot be built or applied as asked
    │   ├── StalePlanError          a saved plan whose resources changed since it was made
    │   ├── DataLossRefused         the plan destroys data and --allow-data-loss was not given
    │   └── PreventDestroyError     the plan destroys a resource with prevent_destroy
    ├── ApplyError                  an apply that finished with failed steps (has the report)
    └── Unsupported                 a command the configured provider does not support

Messages never contain an API key or a datapoint's content (the tests grep for canaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HlopsError(Exception):
    """Base of every error hlops reports to a user."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located problem: ``path:line:col: message``. ``line``/``col`` are 1-based; 0
    means unknown (a whole-file problem)."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}: {self.message}"
        return f"{self.path}: {self.message}"


class ManifestError(HlopsError):
    """Manifests or data files with problems; ``problems`` holds every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.col, p.message))
        n = len(self.problems)
        super().__init__(
            "\n".join(str(p) for p in self.problems)
            + f"\n{n} problem{'s' if n != 1 else ''} found."
        )


class DataStopped(ManifestError):
    """A streamed apply found problems in a data file after it had sent the rows before
    them (``rows_sent``); nothing at or after the first broken row was sent."""

    def __init__(self, problems: list[Problem], rows_sent: int):
        super().__init__(problems)
        self.rows_sent = rows_sent
        self.args = (str(self) + "\n" + (
            f"The rows are checked as they are sent: {rows_sent:,} rows before the first "
            "problem were written, nothing after it, and no last-applied record. Fix the file "
            "and run apply again: it sends only the rows still missing."
            if rows_sent else
            "The rows are checked as they are sent: none was written. Fix the file and run "
            "apply again."
        ),)


class SettingsError(HlopsError):
    """A bad command-line flag, environment variable or hlops.yaml setting."""


class ApiError(HlopsError):
    """The API answered with an error status."""

    def __init__(self, status: int, detail: Any, method: str = "", path: str = ""):
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}HTTP {status}: {_detail_text(detail)}")


class AuthError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class PreconditionFailed(ApiError):
    pass


class RateLimited(ApiError):
    pass


class TransportError(HlopsError):
    """The API could not be reached (connection refused, reset, timeout)."""


class PlanError(HlopsError):
    """A plan that cannot be built or applied as asked."""


class StalePlanError(PlanError):
    """A saved plan whose resources changed since it was made; ``resources`` names them."""

    def __init__(self, resources: list[str], why: str = "changed since the plan was made"):
        self.resources = resources
        super().__init__(
            "the saved plan is stale: "
            + ", ".join(resources)
            + f" {why}. Run `hlops plan` again and review the new plan."
        )


class DataLossRefused(PlanError):
    def __init__(self, resources: list[str]):
        self.resources = resources
        super().__init__(
            "the plan destroys data in "
            + ", ".join(resources)
            + "; review it and pass --allow-data-loss to go ahead."
        )


class PreventDestroyError(PlanError):
    def __init__(self, resources: list[str]):
        self.resources = resources
        super().__init__(
            "the plan would destroy "
            + ", ".join(resources)
            + ", which the manifests protect with lifecycle.prevent_destroy; remove that "
            "setting first if this is really meant."
        )


class Interrupted(HlopsError):
    """The user interrupted an apply (Ctrl-C): the calls in flight were finished and no new
    one was sent, so nothing is half-sent; the next apply finishes the job."""

    exit_code = 130


class ApplyError(HlopsError):
    """An apply that finished with failures; ``report`` says what was done, failed, skipped."""

    def __init__(self, report: Any, message: str):
        self.report = report
        super().__init__(message)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", ()))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        more = f" (and {len(detail) - 5} more)" if len(detail) > 5 else ""
        return "; ".join(parts) + more
    return str(detail)


class Unsupported(HlopsError):
    """A command (or option) the configured provider does not support; says what instead."""
