"""The id-tag table that answers Authorize and StartTransaction.

An id tag belongs to a tenant (023): the operator's routes read and change the tags of the caller's scope and
create them in the acting tenant. A tag is valid on the chargers of its own tenant and of the tenants below it,
never on another branch's: a card of operator A starts nothing on operator B's charger (`for_charger`, the one
home of that rule, read by the charger's own messages, which run outside any request).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .scope import PLATFORM, Scope

# The tenants above a charger's, nearest first (depth 0: its own); a charger the registry does not hold is the
# platform's. The depth bound only guards against a cycle a broken table could hold.
_ABOVE_CHARGER = """WITH RECURSIVE above (id, depth) AS (
    SELECT coalesce((SELECT tenant_id FROM charger_registry WHERE charge_point_id = ?), ?), 0
    UNION ALL
    SELECT t.parent_id, above.depth + 1 FROM tenants t JOIN above ON t.id = above.id
    WHERE t.parent_id IS NOT NULL AND above.depth < 64)"""


def _named(conn: sqlite3.Connection, id_tag: str, scope: Scope) -> dict[str, Any] | None:
    """The tag of this id the caller names: its acting tenant's if it has one, else the one of the tenant
    below it with the lowest id (the same id may be handed out in several tenants)."""
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT * FROM id_tags WHERE id_tag = ? AND {where} ORDER BY tenant_id != ?, tenant_id "
                       "LIMIT 1", (id_tag, *args, scope.tenant_id)).fetchone()
    return dict(row) if row else None


def _get(conn: sqlite3.Connection, id_tag: str, *, scope: Scope) -> dict[str, Any] | None:
    return _named(conn, id_tag, scope)


def _put(conn: sqlite3.Connection, id_tag: str, status: str = "Accepted", expiry_date: str | None = None,
         parent_id_tag: str | None = None, *, at: str, scope: Scope) -> None:
    """Change the tag the caller names (see _named), or add it to the acting tenant."""
    known = _named(conn, id_tag, scope)
    tenant = known["tenant_id"] if known else scope.tenant_id
    conn.execute(
        """INSERT INTO id_tags (tenant_id, id_tag, status, expiry_date, parent_id_tag, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (tenant_id, id_tag) DO UPDATE SET status = excluded.status, expiry_date = excluded.expiry_date,
               parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at""",
        (tenant, id_tag, status, expiry_date, parent_id_tag, at, at),
    )


def _delete(conn: sqlite3.Connection, id_tag: str, *, scope: Scope) -> bool:
    known = _named(conn, id_tag, scope)
    return known is not None and conn.execute("DELETE FROM id_tags WHERE tenant_id = ? AND id_tag = ?",
                                              (known["tenant_id"], id_tag)).rowcount == 1


def _all(conn: sqlite3.Connection, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = scope.where("tenant_id")
    return [dict(r) for r in conn.execute(f"SELECT * FROM id_tags WHERE {where} ORDER BY id_tag, tenant_id", args)]


def _list(conn: sqlite3.Connection, status: str | None = None, page: int = 1, size: int = 50,
          *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(scope.where("tenant_id"))
    filters.add("status = ?", status)
    return page_of(conn, "id_tags", filters, "id_tag, tenant_id", page, size)


def _for_charger(conn: sqlite3.Connection, id_tag: str, cp_id: str) -> tuple[dict[str, Any] | None, bool]:
    """(the tag valid on the charger: of the charger's tenant or, failing that, of the nearest tenant above
    it; None), and whether the gateway knows a tag of that id at all (in another branch of tenants: not
    valid here, which is not the same as unknown). One job, so Authorize costs one round trip as before."""
    rows = conn.execute("SELECT * FROM id_tags WHERE id_tag = ?", (id_tag,)).fetchall()
    if not rows:
        return None, False
    if len(rows) == 1 and rows[0]["tenant_id"] == PLATFORM:  # above every charger: a single site's only case
        return dict(rows[0]), True
    depth = {r[0]: r[1] for r in conn.execute(f"{_ABOVE_CHARGER} SELECT id, depth FROM above", (cp_id, PLATFORM))}
    valid = sorted((depth[r["tenant_id"]], r["tenant_id"]) for r in rows if r["tenant_id"] in depth)
    return (next(dict(r) for r in rows if r["tenant_id"] == valid[0][1]) if valid else None), True


def _valid_on(conn: sqlite3.Connection, cp_id: str) -> list[dict[str, Any]]:
    """Every tag valid on the charger (see _for_charger; the nearest tenant's where an id is in several), by
    id: what a full local list sends it."""
    rows = conn.execute(f"""{_ABOVE_CHARGER}
        SELECT i.*, above.depth FROM id_tags i JOIN above ON above.id = i.tenant_id
        ORDER BY i.id_tag, above.depth""", (cp_id, PLATFORM)).fetchall()
    nearest: dict[str, dict[str, Any]] = {}
    for row in rows:
        nearest.setdefault(row["id_tag"], dict(row))
    return list(nearest.values())


class IdTags(Table, committed=dict(get=_get, put=_put, delete=_delete, all=_all, list=_list,
                                   for_charger=_for_charger, valid_on=_valid_on)):
    pass
