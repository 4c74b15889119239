"""The reference server: the seed's Humanloop API with the provisioning extensions.

- :func:`hlops.server.app.create_app` -- the FastAPI app over a store;
- :class:`hlops.server.sqlite_store.SqliteStore` -- the default store;
- :class:`hlops.server.pg_store.PgStore` -- PostgreSQL, several processes on one database;
- :func:`hlops.server.run.serve` / :func:`hlops.server.run.start_in_thread` -- run it.

See docs/server.md (running, knobs, storage, durability) and docs/api.md (the API).
"""

from hlops.server.run import BackgroundServer, serve, start_in_thread

__all__ = ["BackgroundServer", "serve", "start_in_thread"]
