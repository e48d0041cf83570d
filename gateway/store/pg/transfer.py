"""`gateway migrate --from data/gateway.db --to postgresql://...`: a SQLite site's records into PostgreSQL.

Every table of the PostgreSQL schema that the SQLite file also has is copied (the columns both have), parents
before the tables that point at them, with COPY, in one transaction: a copy that fails leaves the server as it
was. Then every id sequence is set past the highest id copied, so new rows never take a copied id. The server's
database must hold no records yet (a fresh one: the gateway's migrations are applied first), and the file must
have every SQLite migration the PostgreSQL schema stands for (run the gateway on it once if it is older).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..db import migration_files
from .connection import Connection, connect, redact
from .migrations import BASELINE, migrate as migrate_server

CHUNK = 5000  # rows read from the file at a time


class TransferError(RuntimeError):
    """The copy cannot be made: the message says why; nothing was written."""


def _tables(conn: Connection) -> list[str]:
    """The schema's tables (partitioned ones as a whole, not their partitions), parents first."""
    names = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.relname != 'schema_migrations' ORDER BY c.relname")]
    parents: dict[str, set[str]] = {name: set() for name in names}
    for child, parent in conn.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
            "WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"):
        if child in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(name for name, needs in parents.items() if not needs - set(ordered))
        if not ready:
            raise TransferError(f"the tables {sorted(parents)} point at each other")
        ordered.extend(ready)
        for name in ready:
            del parents[name]
    return ordered


def _columns(conn: Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position", (table,))]


def _sequences(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(column, sequence) for each column of `table` that takes its value from a sequence."""
    found = []
    for column in _columns(conn, table):
        seq = conn.execute("SELECT pg_get_serial_sequence(?, ?)", (table, column)).fetchone()[0]
        if seq:
            found.append((column, seq))
    return found


def transfer(source: str, url: str) -> dict[str, Any]:
    """Copy the SQLite file `source` into the PostgreSQL database at `url`; {tables: {name: rows}, sequences}."""
    if not Path(source).is_file():
        raise TransferError(f"{source} is not a file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        src.row_factory = None
        try:
            migrated = {r[0] for r in src.execute("SELECT number FROM schema_migrations")}
        except sqlite3.Error as exc:
            raise TransferError(f"{source} is not a gateway database ({exc})") from None
        missing = [name for number, name, _ in migration_files() if number <= BASELINE and number not in migrated]
        if missing:
            raise TransferError(f"{source} lacks the migrations {', '.join(missing)}: start the gateway on it once "
                                "(it migrates the file), stop it, then copy")
        try:
            dst = Connection(connect(url))
        except Exception as exc:
            raise TransferError(f"cannot connect to {redact(url)}: {exc}") from None
        try:
            migrate_server(dst)
            return _copy(src, dst)
        finally:
            dst.raw.close()
    finally:
        src.close()


def _copy(src: sqlite3.Connection, dst: Connection) -> dict[str, Any]:
    present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    copied: dict[str, int] = {}
    sequences: dict[str, int] = {}
    with dst.raw.transaction():
        tables = _tables(dst)
        for table in tables:
            if table == "tenants":
                continue  # the platform's row, made by the schema, is the file's too: checked below
            if dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                raise TransferError(f"the database already holds records ({table}): copy into an empty one")
        if dst.execute("SELECT count(*) FROM tenants").fetchone()[0] > 1:
            raise TransferError("the database already holds records (tenants): copy into an empty one")
        dst.execute("DELETE FROM tenants")
        for table in tables:
            if table not in present:
                continue
            have = {r[1] for r in src.execute(f'PRAGMA table_info("{table}")')}
            columns = [c for c in _columns(dst, table) if c in have]
            order = " ORDER BY id" if "id" in columns else ""  # a parent tenant before its children
            rows = src.execute(f"SELECT {', '.join(columns)} FROM {table}{order}")
            count = 0
            while chunk := rows.fetchmany(CHUNK):
                dst.copy_rows(table, columns, chunk)
                count += len(chunk)
            copied[table] = count
        for table in tables:
            for column, seq in _sequences(dst, table):
                top = dst.execute(f"SELECT max({column}) FROM {table}").fetchone()[0]
                if top is not None:
                    dst.execute("SELECT setval(?, ?)", (seq, top))
                    sequences[seq] = top
    return {"tables": copied, "sequences": sequences}

