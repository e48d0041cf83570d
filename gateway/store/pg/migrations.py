"""The PostgreSQL schema: schemas/postgresql/NNN_name.sql, numbered as SQLite's migrations, in the same ledger.

024_baseline.sql is the schema as SQLite's 001 to 024 leave it; every later migration has the number of its
SQLite twin (a change that concerns PostgreSQL alone takes a number of its own). Nodes that start together
take turns: the first migrates while the others wait on an advisory lock.
"""

from __future__ import annotations


import structlog

from ..db import read_migrations
from .connection import Connection

log = structlog.get_logger("gateway.store")

MIGRATION_LOCK = 0x6761746577  # pg_advisory_lock key: "gatew"
BASELINE = 24  # the SQLite migrations 024_baseline.sql stands for: 1 to 24


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every PostgreSQL migration, in order: schemas/postgresql/, or the wheel's copy."""
    return read_migrations("postgresql", "migrations_postgresql")


def applied(conn: Connection) -> set[int]:
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return set()
    return {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}


def migrate(conn: Connection) -> int:
    """Apply every migration the ledger does not list, each in its own transaction; the highest applied."""
    conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (number BIGINT PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TEXT NOT NULL)")
        done = applied(conn)
        for number, name, sql in migration_files():
            if number in done:
                continue
            with conn.raw.transaction():
                conn.raw.execute(sql.encode())  # bytes: the file is run as it is, without parameters
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, "
                             "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))", (number, name))
            log.info("migration applied", migration=name)
            done.add(number)
        return max(done, default=0)
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
