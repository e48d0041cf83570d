"""Tenants in the store: the migration of a database from before them, subtrees, quotas, standing."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store.db import NUMBERED_LATE, Database, connect, migrate, migration_files
from gateway.store.scope import EVERYTHING, PLATFORM, Scope, acting_as
from gateway.store.tenants import Tenants, chain, quota_refusal, standing, subtree_ids, used
from gateway.store.users import split_identifier

AT = "2026-01-01T00:00:00.000Z"


def _old_database(path: str) -> sqlite3.Connection:
    """A database as the gateway left it before tenants: every migration then known applied by user_version."""
    conn = connect(path)
    for number, _name, sql in migration_files():
        if number not in NUMBERED_LATE:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO users (username, password_hash, role, created_at, updated_at, session_stamp) "
                 "VALUES ('admin', 'h1', 'admin', ?, ?, 's1'), ('ops', 'h2', 'operator', ?, ?, 's2')", (AT,) * 4)
    conn.execute("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
                 "VALUES (2, 'script', 'abc', 'gw_abc', ?)", (AT,))
    return conn


def _tenant(conn: sqlite3.Connection, code: str, parent: int, **quotas: int) -> int:
    columns = ", ".join(["code", "name", "type", "parent_id", "created_at", "updated_at", *quotas])
    values = (code, code.title(), "operator", parent, AT, AT, *quotas.values())
    return conn.execute(f"INSERT INTO tenants ({columns}) VALUES ({', '.join('?' * len(values))})", values).lastrowid


@pytest.fixture
def conn(tmp_path):
    conn = connect(str(tmp_path / "t.db"))
    migrate(conn)
    yield conn
    conn.close()


def test_a_database_from_before_tenants_migrates_to_the_platform(tmp_path):
    conn = _old_database(str(tmp_path / "old.db"))
    highest = max(n for n, _name, _sql in migration_files())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == highest  # what hid the late migrations
    assert migrate(conn) == highest
    platform = dict(conn.execute("SELECT * FROM tenants").fetchone())
    assert (platform["id"], platform["code"], platform["type"], platform["parent_id"]) == (1, "platform", "platform", None)
    users = [tuple(r) for r in conn.execute("SELECT id, tenant_id, username, password_hash, role, session_stamp "
                                            "FROM users ORDER BY id")]
    assert users == [(1, 1, "admin", "h1", "admin", "s1"), (2, 1, "ops", "h2", "operator", "s2")]
    assert [tuple(r) for r in conn.execute("SELECT user_id, token_hash FROM api_tokens")] == [(2, "abc")]
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # names are unique per tenant now, not over the gateway
    other = _tenant(conn, "acme", PLATFORM)
    conn.execute("INSERT INTO users (tenant_id, username, password_hash, role, created_at, updated_at) "
                 "VALUES (?, 'admin', 'h3', 'admin', ?, ?)", (other, AT, AT))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO users (tenant_id, username, password_hash, role, created_at, updated_at) "
                     "VALUES (?, 'admin', 'h4', 'admin', ?, ?)", (other, AT, AT))
    # the account's tokens still go with it
    conn.execute("DELETE FROM users WHERE id = 2")
    assert conn.execute("SELECT COUNT(*) FROM api_tokens").fetchone()[0] == 0
    # and opening it again applies nothing
    assert migrate(conn) == highest
    assert conn.execute("SELECT COUNT(*) FROM tenants").fetchone()[0] == 2
    conn.close()


def test_the_ledger_records_every_migration_once(conn):
    numbers = [r[0] for r in conn.execute("SELECT number FROM schema_migrations ORDER BY number")]
    assert numbers == [n for n, _name, _sql in migration_files()]


def test_subtree_and_chain(conn):
    a = _tenant(conn, "a", PLATFORM)
    a1 = _tenant(conn, "a1", a)
    a11 = _tenant(conn, "a11", a1)
    b = _tenant(conn, "b", PLATFORM)
    assert subtree_ids(conn, a) == {a, a1, a11}
    assert subtree_ids(conn, a11) == {a11}
    assert subtree_ids(conn, PLATFORM) == {PLATFORM, a, a1, a11, b}
    assert subtree_ids(conn, 999) == frozenset()
    assert [t["id"] for t in chain(conn, a11)] == [a11, a1, a, PLATFORM]
    assert chain(conn, 999) == []


def _user(conn: sqlite3.Connection, tenant: int, name: str) -> None:
    conn.execute("INSERT INTO users (tenant_id, username, password_hash, role, created_at, updated_at) "
                 "VALUES (?, ?, 'h', 'viewer', ?, ?)", (tenant, name, AT, AT))


def test_quotas_count_the_subtree_and_are_checked_up_the_tree(conn):
    a = _tenant(conn, "a", PLATFORM, max_users=3, max_children=1)
    a1 = _tenant(conn, "a1", a, max_users=5)
    assert quota_refusal(conn, a1, "users") is None
    _user(conn, a, "x")
    _user(conn, a1, "y")
    _user(conn, a1, "z")
    assert used(conn, a, "users") == 3 and used(conn, a1, "users") == 2
    # a1's own quota (5) has room, a's (3, counting a1's users) has none
    why = quota_refusal(conn, a1, "users")
    assert why is not None and "'a'" in why and "at most 3" in why and "has 3" in why
    assert quota_refusal(conn, a, "users") is not None
    # children: direct children of the tenant, its own limit only
    assert used(conn, a, "children") == 1
    assert "at most 1 child tenant" in quota_refusal(conn, a, "children")
    assert quota_refusal(conn, a1, "children") is None
    assert quota_refusal(conn, PLATFORM, "stations") is None  # no limit


def test_standing():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    platform = {"id": 1, "code": "platform", "enabled": 1, "expires_at": None}
    ops = {"id": 2, "code": "ops", "enabled": 1, "expires_at": "2026-07-01T00:00:00Z"}
    sub = {"id": 3, "code": "sub", "enabled": 1, "expires_at": None}
    assert standing([sub, ops, platform], now) is None
    assert standing([{**sub, "enabled": 0}, ops, platform], now) == "the tenant 'sub' is disabled"
    assert "expired at 2026-05-31" in standing([{**sub, "expires_at": "2026-05-31T00:00:00Z"}, ops, platform], now)
    assert standing([sub, {**ops, "enabled": 0}, platform], now) == \
        "the tenant 'ops', which 'sub' is under, is disabled"
    assert standing([], now) == "the tenant of this account no longer exists"


def test_a_login_identifier_names_a_tenant_after_its_last_at():
    assert split_identifier("alice@acme") == ("alice", "acme")
    assert split_identifier("ann@example.com@acme") == ("ann@example.com", "acme")
    assert split_identifier("admin") == ("admin", None)
    assert split_identifier("@acme") == ("@acme", None) and split_identifier("alice@") == ("alice@", None)


async def test_the_subtree_kept_in_memory_is_forgotten_on_every_change(tmp_path):
    db = Database(str(tmp_path / "t.db"))
    await db.open()
    try:
        tenants = Tenants(db)
        assert await tenants.subtree(PLATFORM) == {PLATFORM}
        kind, acme = await tenants.create(PLATFORM, {"code": "acme", "name": "Acme", "type": "operator"}, AT)
        assert kind == "ok" and await tenants.subtree(PLATFORM) == {PLATFORM, acme["id"]}
        with acting_as(Scope(acme["id"], await tenants.subtree(acme["id"]))):
            kind, east = await tenants.create(acme["id"], {"code": "east", "name": "East", "type": "partner"}, AT)
            assert kind == "ok"
            assert await tenants.subtree(acme["id"]) == {acme["id"], east["id"]}
            # the platform is not acme's to see, let alone to place a tenant below
            assert await tenants.get(PLATFORM) is None
            assert await tenants.create(PLATFORM, {"code": "x1", "name": "X", "type": "operator"}, AT) == \
                ("missing", None)
            assert (await tenants.delete(acme["id"]))[0] == "forbidden"  # its own: from above only
        with acting_as(EVERYTHING):
            assert await tenants.delete(east["id"]) == ("ok", None)
        assert await tenants.subtree(acme["id"]) == {acme["id"]}
    finally:
        await db.close()
        await trio.sleep(0)


LIMIT = st.one_of(st.none(), st.integers(0, 3))
_migrated: list[sqlite3.Connection] = []


def _fresh() -> sqlite3.Connection:
    """A new migrated database in memory (migrated once, copied after)."""
    if not _migrated:
        _migrated.append(connect(":memory:"))
        migrate(_migrated[0])
    conn = connect(":memory:")
    _migrated[0].backup(conn)
    return conn


@settings(max_examples=60, deadline=None)
@given(parents=st.lists(st.integers(0, 6), min_size=1, max_size=6),
       user_limits=st.lists(LIMIT, min_size=7, max_size=7), child_limits=st.lists(LIMIT, min_size=7, max_size=7),
       attempts=st.lists(st.tuples(st.sampled_from(["users", "children"]), st.integers(0, 6)), max_size=30))
def test_quotas_against_a_model_of_the_tree(parents, user_limits, child_limits, attempts):
    """Adding only what quota_refusal lets in never exceeds a quota of any tenant (users over its subtree,
    children its own), and a refusal always names a tenant whose quota is exactly full."""
    conn = _fresh()
    ids = [PLATFORM]
    parent_of: dict[int, int | None] = {PLATFORM: None}
    for n, p in enumerate(parents):  # tenant n + 1 below one made before it
        parent = ids[p % len(ids)]
        ids.append(_tenant(conn, f"t{n}", parent))
        parent_of[ids[-1]] = parent
    for tenant, users, children in zip(ids, user_limits, child_limits):
        conn.execute("UPDATE tenants SET max_users = ?, max_children = ? WHERE id = ?", (users, children, tenant))
    limits = {t: (u, c) for t, u, c in zip(ids, user_limits, child_limits)}
    before = {t: used(conn, t, "children") for t in ids}  # the tree made before its quotas were set

    def above(t: int) -> list[int]:  # the tenant and those above it, by the model
        out = []
        while t is not None:
            out.append(t)
            t = parent_of[t]
        return out

    users = {t: 0 for t in ids}  # accounts of each tenant itself
    for n, (kind, pick) in enumerate(attempts):
        tenant = ids[pick % len(ids)]
        why = quota_refusal(conn, tenant, kind)
        if kind == "users":
            in_subtree = {t: sum(users[s] for s in users if t in above(s)) for t in ids}
            full = [t for t in above(tenant) if limits[t][0] is not None and in_subtree[t] >= limits[t][0]]
            assert (why is None) == (not full), (why, full)
            if why is None:
                _user(conn, tenant, f"u{n}")
                users[tenant] += 1
        else:
            children = sum(1 for t, p in parent_of.items() if p == tenant)
            full = limits[tenant][1] is not None and children >= limits[tenant][1]
            assert (why is None) == (not full), why
            if why is None:
                child = _tenant(conn, f"c{n}", tenant)
                ids.append(child)
                parent_of[child] = tenant
                limits[child] = (None, None)
                users[child] = 0
    for t in ids:
        max_users, max_children = limits[t]
        assert max_users is None or used(conn, t, "users") <= max_users
        assert max_children is None or used(conn, t, "children") <= max(max_children, before.get(t, 0))
        assert used(conn, t, "users") == sum(users[s] for s in users if t in above(s))
    conn.close()
