"""Fixtures of the GitOps tests (helpers: gitops_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.cli import REPO


@pytest.fixture
def connect(tmp_path):
    """``connect(server)`` -> an hlops.api Connection to a test server (closed at the end)."""
    from hlops import api

    opened = []

    def make(server, other: bool = False):
        conn = api.connect(base_url=server.url, api_key=server.other_key if other else server.api_key)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        conn.close()


@pytest.fixture
def copy_example(tmp_path):
    """``copy_example("sentiment")`` -> a copy of the example under tmp_path (with the schema
    directory where the examples' relative `$schema` comments expect it)."""

    def make(name: str, dest: Path | None = None) -> Path:
        target = dest or tmp_path / "repo" / name
        shutil.copytree(REPO / "examples" / "projects" / name, target)
        schema = target.parent.parent / "schema"
        if not schema.exists():
            shutil.copytree(REPO / "schema", schema)
        return target

    return make
