"""Tenants: the platform (id 1) and the operators and partners below it, in a tree, with their quotas.

A tenant sees and manages itself and the tenants below it: every job function here that reads or changes
tenants takes the caller's `scope`, and a tenant outside it is answered as one that does not exist.
Who may change what of a tenant it sees (governing: the tenant's enabled state, expiry, type and quotas are
set from above it, never by the tenant itself) is decided in the same job as the change.

Quotas (NULL: no limit): users, stations and chargers count over the tenant's whole subtree, so a tenant
cannot escape its quota through children it creates; max_children counts its direct children.
`quota_refusal` is checked in the job that inserts, so two creates racing for the last place cannot both
have it (the database thread runs one job at a time).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Callable

from .. import clock
from .calls import COMMITTED, Table, durability
from .paging import Filters, page
from .scope import PLATFORM, Scope
from .scope import current as current_scope

Row = dict[str, Any]

TYPES = ("platform", "operator", "partner")
QUOTAS = ("users", "stations", "chargers", "children")
# kind -> (the tenant's column holding its limit, the table counted, its tenant column, the words for one, for more)
_COUNTED: dict[str, tuple[str, str, str, str, str]] = {
    "users": ("max_users", "users", "tenant_id", "user", "users"),
    "stations": ("max_stations", "stations", "tenant_id", "station", "stations"),
    "chargers": ("max_chargers", "charger_registry", "tenant_id", "charger", "chargers"),
    "children": ("max_children", "tenants", "parent_id", "child tenant", "child tenants"),
}
FIELDS = ("name", "type", "contact_name", "contact_phone", "contact_email", "address", "expires_at", "enabled",
          "max_users", "max_stations", "max_chargers", "max_children")
# Set from above the tenant only: a tenant cannot enable itself, extend its expiry or raise its quotas.
GOVERNED = ("type", "expires_at", "enabled", "max_users", "max_stations", "max_chargers", "max_children")

# UNION, not UNION ALL: each tenant once, whatever the rows say (a parent never changes, so there is no cycle)
_SUBTREE = "WITH RECURSIVE sub(id) AS (SELECT ? UNION SELECT t.id FROM tenants t JOIN sub ON t.parent_id = sub.id) "


# ---- plain functions, for use inside any job --------------------------------------------------

def subtree_ids(conn: sqlite3.Connection, tenant_id: int) -> frozenset[int]:
    """The tenant and every tenant below it (empty when it does not exist)."""
    return frozenset(r[0] for r in conn.execute(_SUBTREE + "SELECT sub.id FROM sub JOIN tenants t ON t.id = sub.id",
                                                (tenant_id,)))


def chain(conn: sqlite3.Connection, tenant_id: int) -> list[Row]:
    """The tenant and those above it, up to the platform (the tenant first; empty when it does not exist)."""
    rows = conn.execute(
        "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION ALL SELECT t.parent_id, up.depth + 1 FROM tenants t "
        "JOIN up ON t.id = up.id WHERE t.parent_id IS NOT NULL AND up.depth < 64) "
        "SELECT t.* FROM up JOIN tenants t ON t.id = up.id ORDER BY up.depth", (tenant_id,))
    return [dict(r) for r in rows]


def used(conn: sqlite3.Connection, tenant_id: int, kind: str) -> int:
    """How much of the quota `kind` the tenant uses: its direct children, or the users, stations or
    registry chargers of its whole subtree."""
    _column, table, tenant_column, _one, _many = _COUNTED[kind]
    if kind == "children":
        return conn.execute("SELECT COUNT(*) FROM tenants WHERE parent_id = ?", (tenant_id,)).fetchone()[0]
    return conn.execute(_SUBTREE + f"SELECT COUNT(*) FROM {table} WHERE {tenant_column} IN (SELECT id FROM sub)",
                        (tenant_id,)).fetchone()[0]


def quota_refusal(conn: sqlite3.Connection, tenant_id: int, kind: str) -> str | None:
    """Why one more `kind` ("users", "stations", "chargers", "children") in the tenant would exceed a quota
    (its own, or, but for children, that of a tenant above it), or None when it fits. Run it in the job that
    inserts, so that nothing can be inserted between the count and the insert."""
    column, _table, _tenant_column, one, many = _COUNTED[kind]
    tenants = chain(conn, tenant_id)
    for level, tenant in enumerate(tenants):
        limit = tenant[column]
        if limit is None or (kind == "children" and level > 0):
            continue
        count = used(conn, tenant["id"], kind)
        if count + 1 > limit:
            where = "" if kind == "children" else " (with the tenants below it)"
            above = "" if level == 0 else f", which {_name(tenants[0])} is under,"
            return (f"quota exceeded: tenant {_name(tenant)}{above} may have at most {limit} "
                    f"{one if limit == 1 else many}{where} and has {count}")
    return None


def _name(tenant: Row) -> str:
    return f"{tenant['code']!r}"


def standing(tenants: list[Row], now: datetime) -> str | None:
    """Why the users of tenants[0] may not sign in (it, or a tenant above it, is disabled or has expired),
    or None when they may. `tenants`: the tenant and those above it, as chain() gives them."""
    if not tenants:
        return "the tenant of this account no longer exists"
    for level, tenant in enumerate(tenants):
        whose = f"the tenant {_name(tenant)}" if level == 0 else \
            f"the tenant {_name(tenant)}, which {_name(tenants[0])} is under,"
        if not tenant["enabled"]:
            return f"{whose} is disabled"
        expires = clock.parse(tenant["expires_at"]) if tenant["expires_at"] else None
        if expires is not None and expires <= now:
            return f"{whose} expired at {tenant['expires_at']}"
    return None


# ---- job functions ------------------------------------------------------------------------

def _visible(conn: sqlite3.Connection, tenant_id: int, scope: Scope) -> Row | None:
    where, params = scope.where("t.id")
    row = conn.execute(f"SELECT t.* FROM tenants t WHERE t.id = ? AND {where}", (tenant_id, *params)).fetchone()
    return dict(row) if row else None


def _subtree(conn: sqlite3.Connection, tenant_id: int) -> frozenset[int]:
    return subtree_ids(conn, tenant_id)


def _get(conn: sqlite3.Connection, tenant_id: int, *, scope: Scope) -> Row | None:
    """The tenant, if the caller sees it."""
    return _visible(conn, tenant_id, scope)


def _by_code(conn: sqlite3.Connection, code: str) -> Row | None:
    """The tenant of this code (any case), for logging in: users name it as alice@code."""
    row = conn.execute("SELECT * FROM tenants WHERE code = ?", (code,)).fetchone()
    return dict(row) if row else None


def _code_taken(conn: sqlite3.Connection, code: str, exclude_id: int | None) -> bool:
    """Whether another tenant (than `exclude_id`) has this code: codes are unique over the whole gateway,
    since users log in with them."""
    return conn.execute("SELECT 1 FROM tenants WHERE code = ? AND id IS DISTINCT FROM ?", (code, exclude_id)).fetchone() is not None


def _filters(scope: Scope, parent_id: int | None, type_: str | None, enabled: int | None,
             q: str | None) -> Filters:
    filters = Filters()
    where, params = scope.where("id")
    filters.clauses.append(where)
    filters.args.extend(params)
    filters.add("parent_id = ?", parent_id)
    filters.add("type = ?", type_)
    filters.add("enabled = ?", enabled)
    if q:
        filters.clauses.append("(instr(lower(code), lower(?)) > 0 OR instr(lower(name), lower(?)) > 0)")
        filters.args.extend([q, q])
    return filters


def _page(conn: sqlite3.Connection, parent_id: int | None, type_: str | None, enabled: int | None, q: str | None,
          number: int, size: int, *, scope: Scope) -> Row:
    """A page of the tenants the caller sees, by id; q: in the code or name."""
    return page(conn, "tenants", _filters(scope, parent_id, type_, enabled, q), "id", number, size)


def _list(conn: sqlite3.Connection, parent_id: int | None, type_: str | None, enabled: int | None,
          q: str | None, *, scope: Scope) -> list[Row]:
    """Every tenant the caller sees, by id."""
    filters = _filters(scope, parent_id, type_, enabled, q)
    return [dict(r) for r in conn.execute(f"SELECT * FROM tenants{filters.where} ORDER BY id", filters.args)]


def _children(conn: sqlite3.Connection, parent_id: int, *, scope: Scope) -> list[Row] | None:
    """The direct children of a tenant the caller sees (None: it sees no such tenant)."""
    if _visible(conn, parent_id, scope) is None:
        return None
    return [dict(r) for r in conn.execute("SELECT * FROM tenants WHERE parent_id = ? ORDER BY id", (parent_id,))]


def _tree(conn: sqlite3.Connection, *, scope: Scope) -> Row:
    """The caller's tenant with every tenant below it, nested: {..., children: [...]}."""
    root = scope.tenant_id
    rows = {r["id"]: {**dict(r), "children": []} for r in conn.execute(
        _SUBTREE + "SELECT t.* FROM tenants t WHERE t.id IN (SELECT id FROM sub) ORDER BY t.id", (root,))}
    for row in rows.values():
        if row["id"] != root and row["parent_id"] in rows:
            rows[row["parent_id"]]["children"].append(row)
    return rows[root]


def _governs(scope: Scope, tenant: Row) -> bool:
    """Whether the caller sets the tenant from above (the platform's own settings are the platform's)."""
    return tenant["id"] != scope.tenant_id or tenant["id"] == PLATFORM


def _create(conn: sqlite3.Connection, parent_id: int, fields: Row, at: str, *, scope: Scope) -> tuple[str, Any]:
    """("ok", the tenant), ("missing", None) when the caller sees no such parent, ("taken", code) or
    ("refused", why: the parent's quota of children is full)."""
    parent = _visible(conn, parent_id, scope)
    if parent is None:
        return "missing", None
    if _code_taken(conn, fields["code"], None):
        return "taken", fields["code"]
    refusal = quota_refusal(conn, parent_id, "children")
    if refusal is not None:
        return "refused", refusal
    columns = {**{k: fields[k] for k in FIELDS if k in fields}, "code": fields["code"], "parent_id": parent_id,
               "created_at": at, "updated_at": at}
    cur = conn.execute(f"INSERT INTO tenants ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                       "RETURNING id", tuple(columns.values()))
    # below a tenant the caller sees, so the caller's (a new tenant is not in the scope it started with)
    return "ok", dict(conn.execute("SELECT * FROM tenants WHERE id = ?", (cur.fetchone()[0],)).fetchone())


def _update(conn: sqlite3.Connection, tenant_id: int, fields: Row, at: str, *, scope: Scope) -> tuple[str, Any]:
    """("ok", the tenant as it is now), ("missing", None), or ("forbidden", why) for a governed field
    (type, expiry, enabled, quotas) of the caller's own tenant."""
    tenant = _visible(conn, tenant_id, scope)
    if tenant is None:
        return "missing", None
    governed = sorted(set(fields) & set(GOVERNED))
    if governed and not _governs(scope, tenant):
        return "forbidden", (f"{', '.join(governed)} of tenant {_name(tenant)} can be changed only from a tenant "
                             "above it")
    if tenant_id == PLATFORM and ("enabled" in fields and not fields["enabled"] or "expires_at" in fields
                                  and fields["expires_at"] is not None or fields.get("type", "platform") != "platform"):
        return "forbidden", "the platform is always enabled, never expires and stays of type platform"
    if tenant_id != PLATFORM and fields.get("type") == "platform":
        return "forbidden", "only the platform is of type platform"
    sets = {**{k: v for k, v in fields.items() if k in FIELDS}, "updated_at": at}
    conn.execute(f"UPDATE tenants SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), tenant_id))
    return "ok", _visible(conn, tenant_id, scope)


def _delete(conn: sqlite3.Connection, tenant_id: int, *, scope: Scope) -> tuple[str, Any]:
    """("ok", None), ("missing", None), ("forbidden", why) for the platform or the caller's own tenant, or
    ("refused", why) while it has users, stations, registry chargers or child tenants."""
    tenant = _visible(conn, tenant_id, scope)
    if tenant is None:
        return "missing", None
    if tenant_id == PLATFORM or not _governs(scope, tenant):
        return "forbidden", (f"tenant {_name(tenant)} can be deleted only from a tenant above it"
                             if tenant_id != PLATFORM else "the platform cannot be deleted")
    held = []
    for kind, table, column in (("users", "users", "tenant_id"), ("stations", "stations", "tenant_id"),
                                ("chargers", "charger_registry", "tenant_id"), ("child tenants", "tenants", "parent_id")):
        count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (tenant_id,)).fetchone()[0]
        if count:
            held.append(f"{count} {kind if count > 1 else kind[:-1]}")
    if held:
        return "refused", (f"tenant {_name(tenant)} still has {', '.join(held)}: delete or move them first")
    conn.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
    return "ok", None


def _usage(conn: sqlite3.Connection, tenant_id: int, *, scope: Scope) -> Row | None:
    """{kind: {used, limit}} for each quota of a tenant the caller sees (None: it sees no such tenant)."""
    tenant = _visible(conn, tenant_id, scope)
    if tenant is None:
        return None
    return {"tenant": tenant, **{kind: {"used": used(conn, tenant_id, kind), "limit": tenant[_COUNTED[kind][0]]}
                                 for kind in QUOTAS}}


def _check(conn: sqlite3.Connection, tenant_id: int, kind: str, *, scope: Scope) -> tuple[bool, str | None]:
    """(whether the caller sees the tenant, why one more `kind` would exceed a quota or None)."""
    if _visible(conn, tenant_id, scope) is None:
        return False, None
    return True, quota_refusal(conn, tenant_id, kind)


class Tenants(Table, committed=dict(
        get=_get, by_code=_by_code, code_taken=_code_taken, page=_page, list=_list, children=_children, tree=_tree,
        usage=_usage, check=_check)):
    """The tenant tree; `subtree` is kept in memory (asked on every request) and forgotten on every change."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._subtrees: dict[int, frozenset[int]] = {}
        self._generation = 0  # how many changes so far: a subtree read across a change is not kept

    @durability(COMMITTED)
    async def subtree(self, tenant_id: int) -> frozenset[int]:
        """The tenant and every tenant below it (empty when it does not exist)."""
        ids = self._subtrees.get(tenant_id)
        if ids is None:
            generation = self._generation
            ids = await self._db.run(_subtree, tenant_id)
            if generation == self._generation:
                self._subtrees[tenant_id] = ids
        return ids

    def _forget(self) -> None:
        """Drop what is kept in memory: the tenants changed."""
        self._generation += 1
        self._subtrees.clear()

    async def _change(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await self._db.run(fn, *args, scope=current_scope())
        finally:
            self._forget()

    @durability(COMMITTED)
    async def create(self, parent_id: int, fields: Row, at: str) -> tuple[str, Any]:
        """Committed: see _create."""
        return await self._change(_create, parent_id, fields, at)

    @durability(COMMITTED)
    async def update(self, tenant_id: int, fields: Row, at: str) -> tuple[str, Any]:
        """Committed: see _update."""
        return await self._change(_update, tenant_id, fields, at)

    @durability(COMMITTED)
    async def delete(self, tenant_id: int) -> tuple[str, Any]:
        """Committed: see _delete."""
        return await self._change(_delete, tenant_id)

