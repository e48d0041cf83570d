"""Which store the tests run on: SQLite files (the default) or PostgreSQL (GATEWAY_TEST_DB=postgresql).

On SQLite, each test's database file starts as a copy of one migrated once per test process: migrating afresh
(25 migrations, each its own transaction) was a third of a test gateway's start.

With PostgreSQL, each test process (one per xdist worker) starts one throwaway server (tests/pg.py) and
migrates a template database once; every database a test asks for is a copy of it (CREATE DATABASE ...
TEMPLATE, a few milliseconds), dropped some tests later once nothing is connected to it (a module's gateway
may outlive many tests). Tests that only make sense on a SQLite file (backup,
restore, compaction, the doctor's file checks, the disk budget) are marked `sqlite_only` with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path

import psycopg
import pytest

ENV = "GATEWAY_TEST_DB"
BACKEND = os.environ.get(ENV, "sqlite").strip().lower() or "sqlite"
POSTGRESQL = BACKEND in ("postgresql", "postgres", "pg")
KEEP = 20  # databases kept before the oldest ones nobody is connected to are dropped (about 10 MB each)

_server: dict[str, str] = {}
_made: deque[str] = deque()
_given: dict[str, str] = {}  # tmp_path / name -> its database's URL: a gateway started again finds its records
_names = itertools.count(1)
_sqlite_template: list[Path] = []


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Mark a test (or, as `pytestmark`, a module) that needs a SQLite file: skipped on PostgreSQL."""
    return pytest.mark.skipif(POSTGRESQL, reason=f"SQLite only: {reason}")


def store_free(reason: str) -> pytest.MarkDecorator:
    """Mark a test that opens no database: the SQLite pass runs it, and on PostgreSQL it would only repeat itself."""
    return pytest.mark.skipif(POSTGRESQL, reason=f"opens no database: {reason}")


def _admin():
    return psycopg.connect(_server["url"].rsplit("/", 1)[0] + "/postgres", autocommit=True)


def _start() -> None:
    from tests import pg
    from gateway.store.pg.connection import Connection, connect
    from gateway.store.pg.migrations import migrate

    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(pg.server("gateway_template"))
    except pg.Unavailable as exc:
        stack.close()
        pytest.skip(str(exc))
    atexit.register(stack.close)
    conn = connect(url)
    try:
        migrate(Connection(conn))
    finally:
        conn.close()
    _server["url"] = url


def database(tmp_path: Path, name: str = "gateway.db") -> str:
    """Where a test's gateway keeps its records: tmp_path / name, or a fresh PostgreSQL database's URL (the same
    one when asked again for the same tmp_path and name)."""
    if not POSTGRESQL:
        path = tmp_path / name
        if not path.exists() and path.parent.is_dir():
            shutil.copyfile(_migrated_sqlite(), path)
        return str(path)
    key = str(tmp_path / name)
    if key in _given:
        return _given[key]
    if "url" not in _server:
        _start()
    db = f"test_{os.getpid()}_{next(_names)}"
    with _admin() as admin:
        for old in list(_made)[:-KEEP]:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{old}"')  # refused while a gateway still uses it
            except psycopg.errors.ObjectInUse:
                continue
            _made.remove(old)
            for given in [k for k, url in _given.items() if url.endswith("/" + old)]:
                del _given[given]
        admin.execute(f'CREATE DATABASE "{db}" TEMPLATE gateway_template')
    _made.append(db)
    _given[key] = _server["url"].rsplit("/", 1)[0] + "/" + db
    return _given[key]


def _migrated_sqlite() -> Path:
    """A SQLite file with every migration applied, made once per test process."""
    if not _sqlite_template:
        from gateway.store.db import migrate
        from gateway.store.writer.connection import connect

        folder = Path(tempfile.mkdtemp(prefix="gateway-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.db"
        conn = connect(str(path))
        try:
            migrate(conn)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        _sqlite_template.append(path)
    return _sqlite_template[0]


def read(db: str, sql: str, params: tuple = ()) -> list[dict]:
    """Rows read by a connection of the test's own (never the gateway's), on either backend; `?` parameters."""
    if db.startswith("postgresql://"):
        from gateway.store.pg.connection import Connection, connect
        raw = connect(db)
        try:
            return [dict(zip(r.keys(), r)) for r in Connection(raw).execute(sql, params).fetchall()]
        finally:
            raw.close()
    import sqlite3
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()
