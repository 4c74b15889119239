"""The PostgreSQL store's schema, versioned: created and migrated when a server starts.

``meta.schema_version`` names the last migration applied. A server applies the missing
steps of :data:`MIGRATIONS` in order, each in the one transaction that also records it,
under an advisory lock (several processes starting at once migrate once). A database of a
*newer* schema than this build knows is refused with :class:`SchemaTooNew`: an older
server must not write tables it does not understand.

The tables mirror the SQLite store's (``sqlite_store.SCHEMA``) column for column; the
differences are PostgreSQL's types (``bigint`` ids, ``bytea`` hashes and data, ``boolean``
flags), a sequence for datapoint ids, and :data:`RESERVE_IDS`.
"""

from __future__ import annotations

import psycopg

from hlops.errors import SettingsError

SCHEMA_LOCK = 0x686C6F7073  # advisory lock key of migrations ("hlops")
IDS_LOCK = 0x686C6F7074  # advisory lock key of datapoint id reservations

V1 = """
CREATE TABLE orgs (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE api_keys (
    key_digest text PRIMARY KEY,          -- sha256 hex of the key; keys are never stored
    org_id bigint NOT NULL REFERENCES orgs(id)
);
CREATE TABLE datasets (
    id bigserial PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs(id),
    name text NOT NULL,
    description text,
    key_field text,
    datapoint_count bigint NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 1,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    last_applied text,
    UNIQUE (org_id, name)
);
CREATE TABLE fields (
    id bigserial PRIMARY KEY,
    dataset_id bigint NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name text NOT NULL,
    data_type text NOT NULL,
    description text,
    position integer NOT NULL,
    UNIQUE (dataset_id, name)
);
CREATE SEQUENCE datapoint_ids;
CREATE TABLE datapoints (
    dataset_id bigint NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    id bigint NOT NULL,
    point bigint NOT NULL,
    key text,
    hash bytea NOT NULL,
    data bytea NOT NULL,                  -- canonical JSON, UTF-8
    annotations integer NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset_id, id)
);
CREATE INDEX datapoints_bucket ON datapoints (dataset_id, (point & 255), id, point);
CREATE UNIQUE INDEX datapoints_key ON datapoints (dataset_id, key) WHERE key IS NOT NULL;
CREATE TABLE projects (
    id bigserial PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs(id),
    name text NOT NULL,
    description text,
    guidelines text,
    users text NOT NULL,
    review_existing boolean NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE project_io (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('input', 'output')),
    name text NOT NULL,
    position integer NOT NULL,
    spec text NOT NULL,
    UNIQUE (project_id, kind, name)
);
CREATE TABLE project_sources (
    io_id bigint NOT NULL REFERENCES project_io(id) ON DELETE CASCADE,
    field_id bigint NOT NULL REFERENCES fields(id),
    project_id bigint NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (io_id, field_id)
);
CREATE INDEX project_sources_field ON project_sources (field_id);
CREATE INDEX project_sources_project ON project_sources (project_id);
CREATE TABLE annotations (
    project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    output_id bigint NOT NULL,
    dataset_id bigint NOT NULL,
    datapoint_id bigint NOT NULL,
    value text NOT NULL,
    source text NOT NULL CHECK (source IN ('user', 'dataset')),
    created_at text NOT NULL,
    updated_at text NOT NULL,
    PRIMARY KEY (project_id, output_id, datapoint_id),
    FOREIGN KEY (dataset_id, datapoint_id) REFERENCES datapoints(dataset_id, id) ON DELETE CASCADE
);
CREATE INDEX annotations_datapoint ON annotations (dataset_id, datapoint_id);
CREATE TABLE idempotency (
    org_id bigint NOT NULL,
    key text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    status integer NOT NULL,
    body bytea NOT NULL,
    etag text,
    created double precision NOT NULL,
    fingerprint text,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created);
-- Reserve n consecutive datapoint ids (answers the last): the sequence is advanced by n
-- under a short advisory lock, so concurrent writers never interleave their ranges.
CREATE FUNCTION hlops_reserve_ids(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE last bigint;
BEGIN
    PERFORM pg_advisory_lock(%(ids_lock)s);
    last := setval('datapoint_ids', nextval('datapoint_ids') + n - 1);
    PERFORM pg_advisory_unlock(%(ids_lock)s);
    RETURN last;
END $$;
""" % {"ids_lock": IDS_LOCK}

# The model store's table (hlops.server.pg_models): a step of its own, as in SQLite it is
# created on first use; a database made at version 1 gains it when a newer server starts.
V2 = """
CREATE TABLE models (
    project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    output_id bigint NOT NULL REFERENCES project_io(id) ON DELETE CASCADE,
    version bigint NOT NULL,
    model bytea,
    fingerprint text,
    signature text,
    trained_on bigint NOT NULL DEFAULT 0,
    metrics text,
    trained_at text,
    PRIMARY KEY (project_id, output_id)
);
"""

# The XOR of each dataset's stored hashes (hlops.server.roots), kept by every datapoint
# write, valid when hash_xor_version = version: datasets made before, or written since by a
# process of an older build still running, are computed from the datapoints when needed
# and stored by the dataset's next write.
V3 = """
ALTER TABLE datasets ADD COLUMN hash_xor bytea;
ALTER TABLE datasets ADD COLUMN hash_xor_version bigint;
"""

# The part index covers the row digest (hlops.server.pg_digest): a bucket's rows are read
# from the index (an index-only scan once the rows are all-visible), not the table's data.
V4 = """
DROP INDEX IF EXISTS datapoints_bucket;
CREATE INDEX datapoints_part ON datapoints (dataset_id, (point & 255), id) INCLUDE (point, key, hash, annotations);
"""

# The datasets' last-applied indexes (hlops.server.sqlite_applied): a client's opaque blob,
# one row a dataset, in a table of its own so that no read of a dataset row loads it.
V5 = """
CREATE TABLE applied_index (
    dataset_id bigint PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    data bytea NOT NULL
);
"""

MIGRATIONS = {1: V1, 2: V2, 3: V3, 4: V4, 5: V5}
SCHEMA_VERSION = max(MIGRATIONS)


class SchemaTooNew(SettingsError):
    """The database was migrated by a newer hlops than this one."""


def schema_version(conn: psycopg.Connection) -> int:
    """The schema version of the database (0: no hlops tables yet)."""
    exists = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database up to ``target`` (autocommit connection); answer the version
    found before. Refuses a database newer than this build."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database's hlops schema is version {found}, newer than this hlops knows "
                f"({SCHEMA_VERSION}): upgrade hlops, or point --db at another database"
            )
        if found == 0:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name text PRIMARY KEY, value text NOT NULL)")
        for step in range(found + 1, target + 1):
            conn.execute(MIGRATIONS[step])
            conn.execute(
                "INSERT INTO meta(name, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(step),),
            )
    return found
