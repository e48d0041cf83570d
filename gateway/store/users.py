"""HTTP API accounts, their API tokens, and gateway-wide settings such as the token-signing key.

An account belongs to a tenant (the platform, id 1, unless said otherwise); its name is unique within
the tenant. Every account read here comes with its tenant's code and name, and with `tenants`: its tenant
and those above it (tenants.chain), from which the HTTP layer tells whether it may sign in.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .scope import PLATFORM, Scope
from .tenants import chain, quota_refusal

_ACCOUNT = ("SELECT u.*, t.code AS tenant_code, t.name AS tenant_name FROM users u "
            "LEFT JOIN tenants t ON t.id = u.tenant_id")


def _account(conn: sqlite3.Connection, row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {**dict(row), "tenants": chain(conn, row["tenant_id"])}


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def _get(conn: sqlite3.Connection, username: str, tenant_id: int = PLATFORM) -> dict[str, Any] | None:
    return _account(conn, conn.execute(f"{_ACCOUNT} WHERE u.username = ? AND u.tenant_id = ?",
                                       (username, tenant_id)).fetchone())


def _by_id(conn: sqlite3.Connection, user_id: int) -> dict[str, Any] | None:
    return _account(conn, conn.execute(f"{_ACCOUNT} WHERE u.id = ?", (user_id,)).fetchone())


def split_identifier(identifier: str) -> tuple[str, str | None]:
    """"alice@acme" -> ("alice", "acme"); a bare name -> (name, None)."""
    name, at, code = identifier.rpartition("@")
    return (name, code) if at and name and code else (identifier, None)


def _login(conn: sqlite3.Connection, identifier: str) -> dict[str, Any] | None:
    """The account a login names: name@code is the account `name` of the tenant `code` (any case); a bare
    name, or a name@code where no tenant has that code, is an account of the platform."""
    name, code = split_identifier(identifier)
    if code is not None:
        tenant = conn.execute("SELECT id FROM tenants WHERE code = ?", (code,)).fetchone()
        if tenant is not None:
            return _get(conn, name, tenant[0])
    return _get(conn, identifier, PLATFORM)


_NEW_STAMP = "lower(hex(randomblob(16)))"


def _put(conn: sqlite3.Connection, username: str, password_hash: str, role: str, at: str,
         tenant_id: int = PLATFORM) -> str | None:
    """Create the account in the tenant, or set its password and role; a new password ends its login tokens.
    Returns why a new account is refused (the tenant has no such tenant, or its users quota is full), else None."""
    exists = conn.execute("SELECT 1 FROM users WHERE username = ? AND tenant_id = ?", (username, tenant_id)).fetchone()
    if exists is None:
        if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone() is None:
            return f"no tenant {tenant_id}"
        refusal = quota_refusal(conn, tenant_id, "users")
        if refusal is not None:
            return refusal
    conn.execute(
        f"""INSERT INTO users (tenant_id, username, password_hash, role, created_at, updated_at, session_stamp)
            VALUES (?, ?, ?, ?, ?, ?, {_NEW_STAMP})
            ON CONFLICT (tenant_id, username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
                updated_at = excluded.updated_at,
                session_stamp = CASE WHEN users.password_hash = excluded.password_hash THEN users.session_stamp
                                     ELSE excluded.session_stamp END""",
        (tenant_id, username, password_hash, role, at, at),
    )
    return None


def _end_sessions(conn: sqlite3.Connection, username: str, tenant_id: int = PLATFORM) -> bool:
    """End every login token of the account (a new session stamp)."""
    return conn.execute(f"UPDATE users SET session_stamp = {_NEW_STAMP} WHERE username = ? AND tenant_id = ?",
                        (username, tenant_id)).rowcount == 1


def _remove(conn: sqlite3.Connection, username: str, tenant_id: int = PLATFORM) -> bool:
    return conn.execute("DELETE FROM users WHERE username = ? AND tenant_id = ?", (username, tenant_id)).rowcount == 1


def _list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, u.tenant_id, t.code AS tenant_code "
        "FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id ORDER BY u.id")]


def _add_token(conn: sqlite3.Connection, user_id: int, name: str, token_hash: str, prefix: str, at: str) -> int:
    return conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (user_id, name, token_hash, prefix, at),
    ).fetchone()[0]


def _token_user(conn: sqlite3.Connection, token_hash: str, at: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"""{_ACCOUNT} JOIN api_tokens ON u.id = api_tokens.user_id
           WHERE token_hash = ? AND revoked_at IS NULL""", (token_hash,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (at, token_hash))
    return _account(conn, row)


def _revoke_hash(conn: sqlite3.Connection, token_hash: str, at: str) -> bool:
    """Revoke the API token with this hash."""
    return conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                        (at, token_hash)).rowcount == 1


def _tokens(conn: sqlite3.Connection, user_id: int | None, *, scope: Scope) -> list[dict[str, Any]]:
    """The tokens of one account, or (None) of every account of the caller's scope."""
    where, args = scope.where("users.tenant_id")
    sql = f"""SELECT api_tokens.id, users.username, name, prefix, api_tokens.created_at, last_used_at, revoked_at
              FROM api_tokens JOIN users ON users.id = api_tokens.user_id WHERE {where}"""
    if user_id is not None:
        sql += " AND user_id = ?"
        args = (*args, user_id)
    return [dict(r) for r in conn.execute(sql + " ORDER BY api_tokens.id", args)]


def _revoke(conn: sqlite3.Connection, token_id: int, user_id: int | None, at: str, *, scope: Scope) -> bool:
    """Revoke a token of one account, or (None) of any account of the caller's scope."""
    where, scoped = scope.where("tenant_id")
    sql = (f"UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL "
           f"AND user_id IN (SELECT id FROM users WHERE {where})")
    args: list[Any] = [at, token_id, *scoped]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    return conn.execute(sql, args).rowcount == 1


def _setting(conn: sqlite3.Connection, key: str, default: str) -> str:
    """The stored value, or `default` stored now (the first caller's value wins)."""
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, default))
    return conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]


class Users(Table, committed=dict(
        count=_count, get=_get, by_id=_by_id, login=_login, put=_put, end_sessions=_end_sessions, remove=_remove, list=_list,
        add_token=_add_token, token_user=_token_user, tokens=_tokens, revoke=_revoke, revoke_hash=_revoke_hash,
        setting=_setting)):
    pass
