"""Helpers for the GitOps tests: golden files, in-process plans against the real server."""

from __future__ import annotations

import os
from pathlib import Path

from support.cli import REPO

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p for p in (REPO / "examples" / "projects").iterdir() if p.is_dir())
UPDATE = bool(os.environ.get("HLOPS_UPDATE_GOLDEN"))


def check_golden(name: str, text: str) -> None:
    """``text`` equals ``golden/<name>``; HLOPS_UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with HLOPS_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (HLOPS_UPDATE_GOLDEN=1 to update)"


def plan_of(path, conn, cache_dir, **kw):
    """The frozen Plan of the manifests at ``path`` (in-process, through hlops.api)."""
    from hlops import api

    config = api.load(path)
    return api.plan(config, conn, manifests=[path], cache_dir=cache_dir, **kw)


def apply_path(path, conn, cache_dir, **kw):
    from hlops import api

    result = plan_of(path, conn, cache_dir, **{k: v for k, v in kw.items() if k in ("prune", "targets")})
    if result.plan.has_changes:
        api.apply(result, conn, allow_data_loss=kw.get("allow_data_loss", False))
    return result
