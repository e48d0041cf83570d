"""What `gateway doctor` asks of a database file, without the gateway running: each raises sqlite3.Error
when the file cannot answer (the doctor says why in words)."""

from __future__ import annotations

import sqlite3

from .writer.connection import connect


class CannotOpen(sqlite3.Error):
    """The file could not be opened at all (its cause says why)."""


def writable(path: str) -> int:
    """Whether the file takes a write (one that changes nothing, undone); its PRAGMA auto_vacuum (2: incremental)."""
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise CannotOpen(str(exc)) from exc
    try:
        conn.execute("PRAGMA busy_timeout = 2000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("ROLLBACK")
        return conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        conn.close()


def accounts(path: str) -> int:
    """How many HTTP API accounts the file holds (read only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()
