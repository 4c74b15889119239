"""Shared fixtures. Keep this small; helpers live in ``tests/support/``."""

from __future__ import annotations

import pytest

from support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A reference server subprocess with a fresh DB, shared by one test module.
    ``.url``, ``.api_key``, ``.other_key``, ``.call()``, ``.stats()`` -- see support/server.py."""
    with ServerProcess(tmp_path_factory.mktemp("server")) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path):
    """A reference server subprocess of its own, for one test."""
    with ServerProcess(tmp_path / "server") as srv:
        yield srv
