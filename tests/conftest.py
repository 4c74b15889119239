"""Shared fixtures. Keep this small; helpers live in ``tests/support/``.

``server`` and ``fresh_server`` run on SQLite, except in tests/server/ and in modules that
set ``STORES = BOTH``: there they are parametrised over ``store`` (``sqlite``, ``postgresql``),
each PostgreSQL server on a database of its own (``support/postgres.py``; skipped with "no
PostgreSQL" when there is none, failed under ``CI=true``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import postgres
from support.server import ServerProcess

from support.postgres import BOTH


@pytest.fixture(scope="module")
def store(request) -> str:
    """The store the module's servers use; parametrised by ``pytest_generate_tests``."""
    return getattr(request, "param", "sqlite")


def pytest_generate_tests(metafunc):
    """Parametrise ``store`` over both stores for tests/server/ and for modules that set
    ``STORES``."""
    if "store" in metafunc.fixturenames:
        stores = getattr(metafunc.module, "STORES", None)
        if stores is None and Path(metafunc.module.__file__).parent.name == "server":
            stores = BOTH
        if stores:
            metafunc.parametrize("store", stores, indirect=True, scope="module")


@pytest.fixture(scope="module")
def server(tmp_path_factory, store):
    """A reference server subprocess with a fresh DB, shared by one test module.
    ``.url``, ``.api_key``, ``.other_key``, ``.call()``, ``.stats()`` -- see support/server.py."""
    url = postgres.db_url_for(store)
    try:
        with ServerProcess(tmp_path_factory.mktemp("server"), db_url=url) as srv:
            yield srv
    finally:
        if url:
            postgres.drop_database(url)


@pytest.fixture
def fresh_server(tmp_path, store):
    """A reference server subprocess of its own, for one test."""
    url = postgres.db_url_for(store)
    try:
        with ServerProcess(tmp_path / "server", db_url=url) as srv:
            yield srv
    finally:
        if url:
            postgres.drop_database(url)
