"""What the doctor (gateway/ops/doctor.py) asks of a PostgreSQL server: whether it answers and takes writes,
how far its schema is migrated, and how many accounts it holds. A connection of its own, closed at once."""

from __future__ import annotations

from typing import Any

import psycopg

from .connection import connect, redact


class Unreachable(RuntimeError):
    """The server cannot be used: the message says why (without the password)."""


def _connect(url: str) -> psycopg.Connection:
    try:
        return connect(url, connect_timeout=5)
    except psycopg.Error as exc:
        raise Unreachable(f"{redact(url)} cannot be reached: {str(exc).strip().splitlines()[0]}") from None


def state(url: str) -> dict[str, Any]:
    """{server: its version, read_only, migrated: the highest migration applied (None: none yet)}."""
    conn = _connect(url)
    try:
        version = conn.execute("SHOW server_version").fetchone()[0]
        read_only = conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        migrated = None
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is not None:
            migrated = conn.execute("SELECT max(number) FROM schema_migrations").fetchone()[0]
        return {"server": version, "read_only": read_only, "migrated": migrated}
    finally:
        conn.close()


def accounts(url: str) -> int:
    conn = _connect(url)
    try:
        if conn.execute("SELECT to_regclass('users')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()
