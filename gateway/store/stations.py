"""Stations: the sites an operator runs, each with the number of registry chargers placed there.

A station belongs to a tenant (stations.tenant_id): the caller reads and changes the stations of its scope
(scope.py), and creates them in its acting tenant, within that tenant's quota. A change that could clash (a
code taken, chargers placed at a station being deleted, the last place of a quota) is checked in the same job
that makes it, so nothing can slip in between.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page
from .scope import Scope
from .tenants import quota_refusal

FIELDS = ("code", "name", "address", "city", "latitude", "longitude", "opening_hours", "enabled")
# Every station with the count of registry chargers placed there.
_COUNTED = ("(SELECT s.*, (SELECT COUNT(*) FROM charger_registry r WHERE r.station_id = s.id) AS charger_count "
            "FROM stations s) AS s")


def _get(conn: sqlite3.Connection, station_id: int, *, scope: Scope) -> dict[str, Any] | None:
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT * FROM {_COUNTED} WHERE id = ? AND {where}", (station_id, *args)).fetchone()
    return dict(row) if row else None


def _code_holder(conn: sqlite3.Connection, tenant_id: int, code: str, exclude_id: int | None = None) -> int | None:
    """The id of the station of `tenant_id` that has `code` (other than `exclude_id`), if any."""
    row = conn.execute("SELECT id FROM stations WHERE tenant_id = ? AND code = ? AND id IS DISTINCT FROM ?",
                       (tenant_id, code, exclude_id)).fetchone()
    return row[0] if row else None


def _holder(conn: sqlite3.Connection, code: str, exclude_id: int | None = None, *, scope: Scope) -> int | None:
    """The id of the station of the acting tenant that has `code` (other than `exclude_id`), if any."""
    return _code_holder(conn, scope.tenant_id, code, exclude_id)


def _create(conn: sqlite3.Connection, fields: dict[str, Any], at: str,
            *, scope: Scope) -> tuple[dict[str, Any] | None, int | None, str | None]:
    """(the new station, None, None); (None, the id of the station holding its code already, None); or
    (None, None, why the acting tenant's quota has no place for one more)."""
    taken = _code_holder(conn, scope.tenant_id, fields["code"])
    if taken is not None:
        return None, taken, None
    refusal = quota_refusal(conn, scope.tenant_id, "stations")
    if refusal is not None:
        return None, None, refusal
    columns = {**{k: fields.get(k) for k in FIELDS if k in fields}, "tenant_id": scope.tenant_id,
               "created_at": at, "updated_at": at}
    cur = conn.execute(f"INSERT INTO stations ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                       "RETURNING id", tuple(columns.values()))
    return _get(conn, cur.fetchone()[0], scope=scope), None, None


def _update(conn: sqlite3.Connection, station_id: int, fields: dict[str, Any],
            at: str, *, scope: Scope) -> tuple[dict[str, Any] | None, int | None]:
    """Set the given fields: (the station as it is now, None; None when missing or outside the scope), or
    (None, the id of the station of its tenant holding the new code already)."""
    current = _get(conn, station_id, scope=scope)
    if current is None:
        return None, None
    if "code" in fields:
        taken = _code_holder(conn, current["tenant_id"], fields["code"], station_id)
        if taken is not None:
            return None, taken
    sets = {**{k: v for k, v in fields.items() if k in FIELDS}, "updated_at": at}
    conn.execute(f"UPDATE stations SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                 (*sets.values(), station_id))
    return _get(conn, station_id, scope=scope), None


def _delete(conn: sqlite3.Connection, station_id: int, *, scope: Scope) -> tuple[bool, list[str]]:
    """(whether it existed within the scope, the charge point ids of the chargers placed there); deleted only
    if none are."""
    where, args = scope.where("tenant_id")
    if conn.execute(f"SELECT 1 FROM stations WHERE id = ? AND {where}", (station_id, *args)).fetchone() is None:
        return False, []
    placed = [r[0] for r in conn.execute(
        "SELECT charge_point_id FROM charger_registry WHERE station_id = ? ORDER BY charge_point_id", (station_id,))]
    if not placed:
        conn.execute("DELETE FROM stations WHERE id = ?", (station_id,))
    return True, placed


def _list(conn: sqlite3.Connection, city: str | None, enabled: int | None, q: str | None,
          number: int, size: int, *, scope: Scope) -> dict[str, Any]:
    """A page of stations, by id; q: in the code, name or address (case-insensitive for ASCII letters)."""
    filters = Filters()
    where, args = scope.where("tenant_id")
    filters.clauses.append(where)
    filters.args.extend(args)
    filters.add("city = ?", city)
    filters.add("enabled = ?", enabled)
    if q:  # instr, not LIKE: a % or _ in q is a character like any other
        filters.clauses.append("(instr(lower(code), lower(?)) > 0 OR instr(lower(name), lower(?)) > 0 "
                               "OR instr(lower(coalesce(address, '')), lower(?)) > 0)")
        filters.args.extend([q, q, q])
    return page(conn, _COUNTED, filters, "id", number, size)


def _count(conn: sqlite3.Connection, enabled: int | None, *, scope: Scope) -> dict[str, int]:
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(enabled), 0) FROM stations WHERE {where} "
                       "AND enabled IS NOT DISTINCT FROM coalesce(?, enabled)", (*args, enabled)).fetchone()
    return {"total": row[0], "enabled": row[1], "disabled": row[0] - row[1]}


def _located(conn: sqlite3.Connection, *, scope: Scope) -> list[dict[str, Any]]:
    """The enabled stations with coordinates: what `nearby` measures distances to."""
    where, args = scope.where("tenant_id")
    return [dict(r) for r in conn.execute(
        f"SELECT * FROM {_COUNTED} WHERE {where} AND enabled = 1 AND latitude IS NOT NULL "
        "AND longitude IS NOT NULL ORDER BY id", args)]


class Stations(Table, committed=dict(get=_get, create=_create, update=_update, delete=_delete, list=_list,
                                     count=_count, located=_located, holder=_holder)):
    pass
