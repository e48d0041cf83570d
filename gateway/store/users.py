"""HTTP API accounts, their API tokens, and gateway-wide settings such as the token-signing key."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def _get(conn: sqlite3.Connection, username: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    return dict(row) if row else None


def _by_id(conn: sqlite3.Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return dict(row) if row else None


_NEW_STAMP = "lower(hex(randomblob(16)))"


def _put(conn: sqlite3.Connection, username: str, password_hash: str, role: str, at: str) -> None:
    """Create the account, or set its password and role; a new password ends its login tokens."""
    conn.execute(
        f"""INSERT INTO users (username, password_hash, role, created_at, updated_at, session_stamp)
            VALUES (?, ?, ?, ?, ?, {_NEW_STAMP})
            ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
                updated_at = excluded.updated_at,
                session_stamp = CASE WHEN users.password_hash = excluded.password_hash THEN users.session_stamp
                                     ELSE excluded.session_stamp END""",
        (username, password_hash, role, at, at),
    )


def _end_sessions(conn: sqlite3.Connection, username: str) -> bool:
    """End every login token of the account (a new session stamp)."""
    return conn.execute(f"UPDATE users SET session_stamp = {_NEW_STAMP} WHERE username = ?",
                        (username,)).rowcount == 1


def _remove(conn: sqlite3.Connection, username: str) -> bool:
    return conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 1


def _list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT id, username, role, created_at, updated_at FROM users ORDER BY id")]


def _add_token(conn: sqlite3.Connection, user_id: int, name: str, token_hash: str, prefix: str, at: str) -> int:
    return conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, name, token_hash, prefix, at),
    ).lastrowid


def _token_user(conn: sqlite3.Connection, token_hash: str, at: str) -> dict[str, Any] | None:
    row = conn.execute(
        """SELECT users.* FROM api_tokens JOIN users ON users.id = api_tokens.user_id
           WHERE token_hash = ? AND revoked_at IS NULL""", (token_hash,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (at, token_hash))
    return dict(row)


def _revoke_hash(conn: sqlite3.Connection, token_hash: str, at: str) -> bool:
    """Revoke the API token with this hash."""
    return conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                        (at, token_hash)).rowcount == 1


def _tokens(conn: sqlite3.Connection, user_id: int | None) -> list[dict[str, Any]]:
    sql = """SELECT api_tokens.id, users.username, name, prefix, api_tokens.created_at, last_used_at, revoked_at
             FROM api_tokens JOIN users ON users.id = api_tokens.user_id"""
    args: tuple = ()
    if user_id is not None:
        sql += " WHERE user_id = ?"
        args = (user_id,)
    return [dict(r) for r in conn.execute(sql + " ORDER BY api_tokens.id", args)]


def _revoke(conn: sqlite3.Connection, token_id: int, user_id: int | None, at: str) -> bool:
    sql = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
    args: list[Any] = [at, token_id]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    return conn.execute(sql, args).rowcount == 1


def _setting(conn: sqlite3.Connection, key: str, default: str) -> str:
    """The stored value, or `default` stored now (the first caller's value wins)."""
    conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, default))
    return conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]


class Users(Table, committed=dict(
        count=_count, get=_get, by_id=_by_id, put=_put, end_sessions=_end_sessions, remove=_remove, list=_list,
        add_token=_add_token, token_user=_token_user, tokens=_tokens, revoke=_revoke, revoke_hash=_revoke_hash,
        setting=_setting)):
    pass
