"""Trained models in PostgreSQL: the SQLite model store (:mod:`sqlite_models`) over a
:class:`~hlops.server.pg_store.PgStore`, plus what several processes need.

**Once per model version.** Every server process runs a trainer, and each looks at every
project when it starts and whenever it is kicked. :meth:`PgModels.project_lock` holds a
session advisory lock on the project while its models are refreshed (read the training
set's signature, train if it changed, save): a second process waits for it, then reads the
signature the first one saved, finds the model up to date and trains nothing. So each
change of an output's annotations gives one new model version, whatever the number of
processes. The ``models`` table is created by the schema migrations (:mod:`pg_schema`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hlops.server.sqlite_models import SqliteModels

TRAINING_LOCK = 0x686C  # first key of the two-key advisory locks of projects being trained


class PgModels(SqliteModels):
    def __init__(self, store: Any):
        self.store = store

    @contextmanager
    def project_lock(self, project_id: int) -> Iterator[None]:
        with self.store._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (TRAINING_LOCK, project_id % (1 << 31)))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (TRAINING_LOCK, project_id % (1 << 31)))
