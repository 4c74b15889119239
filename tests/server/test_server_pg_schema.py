"""The PostgreSQL store's schema: created at start, an older one upgraded, a newer one
refused with a clear error; ``HLOPS_DB_URL`` selects the store like ``--db``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest

from hlops.server.pg_schema import SCHEMA_VERSION, migrate, schema_version
from support.postgres import drop_database, fresh_database, require_url
from support.server import REPO, ServerProcess

STORES = ("postgresql",)


@pytest.fixture
def url(store):
    require_url()
    url = fresh_database()
    yield url
    drop_database(url)


def test_an_older_schema_is_upgraded_at_start(url, tmp_path):
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, target=1)  # what a build before the models table made
        assert schema_version(conn) == 1
        assert conn.execute("SELECT to_regclass('models')").fetchone()[0] is None
    with ServerProcess(tmp_path, db_url=url) as srv:
        assert srv.call("GET", "/datasets").status_code == 200
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('models')").fetchone()[0] == "models"


def test_version_4_is_given_the_applied_index_table(url, tmp_path):
    """Version 5 adds the datasets' last-applied indexes, deleted with their dataset."""
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, target=4)
        assert conn.execute("SELECT to_regclass('applied_index')").fetchone()[0] is None
    with ServerProcess(tmp_path, db_url=url) as srv:
        ds = srv.call("POST", "/datasets", json={"name": "d", "fields": [{"name": "t", "data_type": "text"}]}).json()
        path = f"/datasets/{ds['id']}/last_applied/index"
        r = srv.call("PUT", path, data=bytes(range(256)), headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204 and srv.call("GET", path).content == bytes(range(256))
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema_version(conn) == SCHEMA_VERSION >= 5
        assert conn.execute("SELECT dataset_id FROM applied_index").fetchall() == [(ds["id"],)]
        conn.execute("DELETE FROM datasets")
        assert conn.execute("SELECT count(*) FROM applied_index").fetchone()[0] == 0


def test_a_newer_schema_is_refused_with_a_clear_error(url, tmp_path):
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("UPDATE meta SET value = %s WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 5),))
    keys = tmp_path / "keys.txt"
    keys.write_text("hlk_test_key_123456 org-a\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HLOPS_DB_URL": url}
    r = subprocess.run(
        [sys.executable, "-m", "hlops", "serve", "--port", "0", "--keys-file", str(keys)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert r.returncode != 0
    assert f"schema is version {SCHEMA_VERSION + 5}, newer than this hlops knows ({SCHEMA_VERSION})" in r.stderr
    assert "Traceback" not in r.stderr and url not in r.stderr
    with psycopg.connect(url, autocommit=True) as conn:  # nothing was touched
        assert schema_version(conn) == SCHEMA_VERSION + 5


def test_hlops_db_url_selects_postgresql(url, tmp_path):
    srv = ServerProcess(tmp_path, start=False, extra_args=[])
    cmd = srv.command()
    i = cmd.index("--db")
    del cmd[i:i + 2]  # no --db: the environment names the database
    env = {**os.environ, "PYTHONPATH": str(REPO), "HLOPS_DB_URL": url}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if srv.ready_file.exists():
                break
            proc.poll()
            assert proc.returncode is None
            time.sleep(0.02)
        srv.url = srv.ready_file.read_text().strip()
        r = srv.call("POST", "/datasets", json={"name": "via-env", "fields": [{"name": "t", "data_type": "text"}]})
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(10)
    assert not (tmp_path / ".hlops" / "server.db").exists()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT name FROM datasets").fetchall() == [("via-env",)]


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("hlk_test_key_123456 org-a\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "hlops", "serve", "--port", "0", "--keys-file", str(keys),
         "--db", "postgresql://nobody@127.0.0.1:1/none"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )
    assert r.returncode == 1
    assert "cannot connect to the PostgreSQL database" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / ".hlops").exists()
