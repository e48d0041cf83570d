"""Opening the SQLite file, taking its write lock, and inserting many rows at once.

Standard library only: the store's database thread (gateway/store/db.py) and the writer process (process.py) both
use it.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import time
from pathlib import Path

# Rows per INSERT statement: a batch is cut into these sizes (binary decomposition), so a few
# statement texts, each prepared once and kept in the connection's cache, insert any number of rows.
INSERT_SIZES = (128, 64, 32, 16, 8, 4, 2, 1)
# How long a writer waits for the other one (thread or process) to commit, and how often it looks.
LOCK_TIMEOUT = 10.0
LOCK_POLL = 0.0002


# Extra PRAGMAs for every connection the gateway opens, "name=value;name=value": to tune SQLite, or to try
# how a gateway behaves when its disk fills (max_page_count=1) or turns read-only (query_only=1).
PRAGMAS_ENV = "GATEWAY_SQLITE_PRAGMAS"
PRAGMA = re.compile(r"\s*([a-z_]+)\s*=\s*(-?\d+|[A-Za-z]+)\s*")


def extra_pragmas(text: str | None = None) -> list[str]:
    """The statements for GATEWAY_SQLITE_PRAGMAS (ValueError names what is not a "name=value")."""
    text = os.environ.get(PRAGMAS_ENV, "") if text is None else text
    statements = []
    for part in filter(str.strip, text.split(";")):
        m = PRAGMA.fullmatch(part)
        if m is None:
            raise ValueError(f"{PRAGMAS_ENV}: {part.strip()!r} is not name=value (a number or a word)")
        statements.append(f"PRAGMA {m.group(1)} = {m.group(2)}")
    return statements


# SQLite's primary result codes that mean the file cannot be used now, not that a statement is wrong:
# retried, and reported as the store being degraded (health.py), with the words an operator needs.
STORAGE_FAULTS = {
    sqlite3.SQLITE_BUSY: "the database is locked by another process",
    sqlite3.SQLITE_LOCKED: "the database is locked by another process",
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error",
    sqlite3.SQLITE_CORRUPT: "the database file is damaged",
    sqlite3.SQLITE_NOTADB: "the file is not a SQLite database",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_PROTOCOL: "the database is locked by another process",
}


def storage_fault(exc: BaseException) -> str | None:
    """Why the file cannot be used ("the disk is full (database or disk is full)"), or None for other errors."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None or code & 0xFF not in STORAGE_FAULTS:
        return None
    return f"{STORAGE_FAULTS[code & 0xFF]} ({exc})"


def connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    if path != ":memory:":
        # Before the first table is made, so that a new file can give freed pages back (retention.py);
        # on an existing file it changes nothing until `gateway compact` rewrites it.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit the charger was told about survives a power cut.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 5000")
    # A statement that inserts many rows keeps a journal of its own (to undo itself alone); in
    # memory it costs no file writes, which halved the write calls under load.
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA foreign_keys = ON")
    for statement in extra_pragmas():
        conn.execute(statement)
    return conn


def begin_immediate(conn: sqlite3.Connection, timeout: float | None = None) -> None:
    """Start a write transaction, waiting for the file's other writer in small steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries: a command's write would wait
    several milliseconds for a commit of meter values that took one. The connection's busy_timeout
    is set to 0 once it is set up (see `for_writing`); in WAL mode this is the only statement of a
    write transaction that can find the file busy. Waits up to `timeout` (LOCK_TIMEOUT) seconds.
    """
    deadline = time.monotonic() + (LOCK_TIMEOUT if timeout is None else timeout)
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:  # any BUSY_*
                raise
        time.sleep(LOCK_POLL)


def for_writing(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Hand lock waits to `begin_immediate` from now on (after connecting and migrating)."""
    conn.execute("PRAGMA busy_timeout = 0")
    return conn


@functools.lru_cache(maxsize=None)
def _insert_sql(table: str, columns: str, rows: int) -> str:
    one = "(" + ", ".join("?" * (columns.count(",") + 1)) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rows)


def insert_rows(conn: sqlite3.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    """Insert many rows in a handful of multi-row statements.

    One statement per row (executemany) hands the GIL over and back for every row; a statement of
    up to 128 rows binds them in C and lets SQLite insert them all in one step, without the JSON
    round trip that json_each needs.
    """
    width = columns.count(",") + 1
    start = 0
    for size in INSERT_SIZES:
        while len(rows) - start >= size:
            chunk = rows[start:start + size]
            if any(len(row) != width for row in chunk):  # a short row and a long one would shift silently
                raise ValueError(f"rows for {table} must have {width} values each")
            conn.execute(_insert_sql(table, columns, size), [value for row in chunk for value in row])
            start += size
