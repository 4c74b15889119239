"""Settings of the reference server: who may call it, where it keeps its data, and the
test-only knobs.

API keys never leave this module in clear: :func:`key_digest` turns each one into the
SHA-256 hex digest the server compares and stores, and nothing here prints or logs a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hlops.errors import SettingsError

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_INDEX_BYTES = 256 * 1024 * 1024  # the body of PUT /datasets/{id}/last_applied/index
MAX_ROWS = 10_000
_ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def key_digest(key: str) -> str:
    """The SHA-256 hex digest of an API key: what the server stores and compares."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FaultConfig:
    """Test-only fault injection; everything off by default.

    - ``rate``: the share (0..1) of counted requests answered with a fault status, drawn
      from a ``random.Random(seed)`` so a run is repeatable;
    - ``statuses``: the statuses a fault answers with (one drawn per fault);
    - ``fail_nth``: request numbers (1-based, counted since start or the last stats reset)
      that fail whatever ``rate`` says;
    - ``phase``: ``before`` answers without processing the request; ``after`` processes and
      commits it, then answers the fault status instead (a lost response);
    - ``retry_after``: the ``Retry-After`` seconds a fault 429 carries (0 allowed).
    """

    rate: float = 0.0
    statuses: tuple[int, ...] = (503,)
    seed: int | None = None
    fail_nth: tuple[int, ...] = ()
    phase: Literal["before", "after"] = "before"
    retry_after: int = 1

    @property
    def active(self) -> bool:
        return self.rate > 0 or bool(self.fail_nth)

    def checked(self) -> FaultConfig:
        """This config, or a :class:`SettingsError` saying what is wrong with it."""
        if not 0.0 <= self.rate <= 1.0:
            raise SettingsError(f"fault rate must be between 0 and 1, got {self.rate}")
        if not self.statuses:
            raise SettingsError("fault statuses must name at least one status")
        for status in self.statuses:
            if not 400 <= status <= 599:
                raise SettingsError(f"fault status must be a 4xx or 5xx code, got {status}")
        if any(n < 1 for n in self.fail_nth):
            raise SettingsError("fail-nth counts requests from 1")
        if self.phase not in ("before", "after"):
            raise SettingsError(f"fault phase must be 'before' or 'after', got {self.phase!r}")
        if self.retry_after < 0:
            raise SettingsError("fault Retry-After must be >= 0 seconds")
        return self

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied (the body of ``POST /_test/faults``)."""
        clean = dict(changes)
        if "statuses" in clean:
            clean["statuses"] = tuple(int(s) for s in clean["statuses"])
        if "fail_nth" in clean:
            clean["fail_nth"] = tuple(int(n) for n in clean["fail_nth"])
        return replace(self, **clean).checked()


@dataclass(frozen=True)
class Settings:
    """Everything :func:`hlops.server.app.create_app` needs besides the store.

    ``keys`` maps a key digest (:func:`key_digest`) to its organisation's name; keys that
    share a name belong to the same organisation.
    """

    keys: dict[str, str] = field(default_factory=dict)
    rate_limit: float | None = None  # requests per second per key; test-only
    faults: FaultConfig = field(default_factory=FaultConfig)
    request_log: Path | None = None  # JSONL; test-only
    test_endpoints: bool = False  # the hidden /_test/* routes
    max_body_bytes: int = MAX_BODY_BYTES
    max_index_bytes: int = MAX_INDEX_BYTES  # the last-applied index's own body limit
    max_rows: int = MAX_ROWS


def parse_keys(lines: list[str], source: str = "keys file") -> list[tuple[str, str | None]]:
    """``key [org-name]`` per line; blank lines and ``#`` comments are skipped.

    Error messages give the line number, never the line (it holds a key).
    """
    out: list[tuple[str, str | None]] = []
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) > 2:
            raise SettingsError(f"{source}:{n}: expected `key [org-name]`")
        org = parts[1] if len(parts) == 2 else None
        if org is not None and not _ORG_NAME.match(org):
            raise SettingsError(
                f"{source}:{n}: an organisation name is 1-100 letters, digits, `_.@-`"
            )
        out.append((parts[0], org))
    return out


def read_keys_file(path: str | Path) -> list[tuple[str, str | None]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read keys file {path}: {exc.strerror}") from None
    return parse_keys(text.splitlines(), str(path))


def key_map(keys: list[tuple[str, str | None]]) -> dict[str, str]:
    """Key digest -> organisation name. A key without a name gets its own organisation,
    named after the first 12 hex digits of its digest (stable across restarts)."""
    out: dict[str, str] = {}
    for key, org in keys:
        if len(key) < 8:
            raise SettingsError("an API key must be at least 8 characters long")
        if any(c.isspace() for c in key):
            raise SettingsError("an API key cannot contain whitespace")
        digest = key_digest(key)
        out[digest] = org or f"org-{digest[:12]}"
    return out
