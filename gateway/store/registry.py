"""The charger registry (charger_registry, 014): the chargers the operator knows by a numeric id, joined
with what the gateway knows of each live (charge_points, connectors, status_notifications).

A registry entry is keyed by its charge point id; the charger's history (transactions, orders, frames)
keeps pointing at that id, so deleting an entry loses none of it.

A charger belongs to the tenant of its registry entry (charger_registry.tenant_id), and so does its history:
every record named by a charge point id is scoped through `charger_where` (a charger the registry does not
hold is the platform's). A charger adopted when it connects is the platform's until the platform (or a
tenant above the one it goes to) assigns it with `tenant_id`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any, Callable

from .. import clock
from ..chargepoint import evcs_status as evcs
from ..chargepoint.handshake import id_key  # pure: the one home of the id rules
from .calls import COMMITTED, Table, committed, durability
from .scope import PLATFORM, Scope, current as current_scope
from .tenants import quota_refusal

Row = dict[str, Any]

_SELECT = """SELECT r.*, s.name AS station_name, cp.online, cp.connected_at, cp.disconnected_at, cp.last_seen,
                    cp.registration_status, cp.vendor, cp.model, cp.serial_number, cp.charge_box_serial_number,
                    cp.firmware_version, cp.id AS seen
             FROM charger_registry r LEFT JOIN stations s ON s.id = r.station_id
                                     LEFT JOIN charge_points cp ON cp.id = r.charge_point_id"""


def charger_where(scope: Scope, column: str) -> tuple[str, tuple[int, ...]]:
    """An SQL condition keeping the rows whose `column` (a charge point id) names a charger the caller may see,
    and its parameters: ("TRUE", ()) when it sees every tenant, so the gateway's own reads pay nothing. A charger
    the registry does not hold is the platform's. The tenant's chargers are read once, by the registry's
    index by tenant."""
    if scope.tenants is None:
        return "TRUE", ()
    ids = tuple(sorted(scope.tenants))
    # "|| ''": a filter on each row, not an index lookup by charger: the index that gives a list its order (by
    # time, by id) stays the one read, so a page stops early instead of sorting every record of the tenant.
    sql = (f"({column} || '') IN (SELECT charge_point_id FROM charger_registry "
           f"WHERE tenant_id IN ({', '.join('?' * len(ids))}))")
    if PLATFORM in scope.tenants:
        sql = f"({sql} OR {column} NOT IN (SELECT charge_point_id FROM charger_registry))"
    return sql, ids


def _details(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Row]:
    """Registry rows with their connectors (declared and reported, connector 0 apart) and EVCS statuses:
    one query for the connectors however many chargers."""
    chargers = {row["charge_point_id"]: dict(row) for row in rows}
    reported: dict[str, dict[int, Row]] = {cp_id: {} for cp_id in chargers}
    ids = json.dumps(list(chargers))
    for c in conn.execute("SELECT * FROM connectors WHERE charge_point_id IN (SELECT value FROM json_each(?))",
                          (ids,)):
        reported[c["charge_point_id"]][c["connector_id"]] = dict(c)
    for cp_id, cp in chargers.items():
        online = bool(cp["online"])
        declared = {c["connectorNo"]: c for c in json.loads(cp["connectors"])}
        whole = reported[cp_id].pop(0, None)
        connectors = []
        for no in sorted(set(declared) | set(reported[cp_id])):
            d, r = declared.get(no, {}), reported[cp_id].get(no) or {}
            code = evcs.connector_status(online, r.get("status"), r.get("error_code"))
            connectors.append({"connector_no": no, "type": d.get("type"), "power_kw": d.get("powerKw"),
                               "ocpp_status": r.get("status"), "error_code": r.get("error_code"),
                               "info": r.get("info"), "vendor_error_code": r.get("vendor_error_code"),
                               "status_code": code, "updated_at": r.get("updated_at")})
        cp["connectors"] = connectors
        cp["whole"] = whole  # connector 0: the charger as a whole
        cp["status_code"] = evcs.charger_status(
            online, (whole["status"], whole["error_code"]) if whole else None, (c["status_code"] for c in connectors))
    return list(chargers.values())


def _filtered(conn: sqlite3.Connection, scope: Scope, station_id: int | None = None,
              charge_point_id: str | None = None, q: str | None = None, enabled: bool | None = None,
              status_code: int | None = None) -> list[Row]:
    where, scoped = scope.where("r.tenant_id")
    clauses, args = [where], list(scoped)
    for clause, value in (("r.station_id = ?", station_id), ("r.charge_point_id = ?", charge_point_id),
                          ("r.enabled = ?", None if enabled is None else int(enabled))):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # lower() on both sides: LIKE ignores ASCII case in SQLite, not in PostgreSQL
        clauses.append("(lower(r.charge_point_id) LIKE lower(?) ESCAPE '\\' OR lower(r.name) LIKE lower(?) ESCAPE '\\')")
        args += [pattern, pattern]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = _details(conn, conn.execute(f"{_SELECT}{where} ORDER BY r.id", args).fetchall())
    return [r for r in rows if status_code is None or r["status_code"] == status_code]


def _page(conn: sqlite3.Connection, station_id: int | None = None, status_code: int | None = None,
          charge_point_id: str | None = None, q: str | None = None, enabled: bool | None = None,
          page: int = 1, size: int = 50, *, scope: Scope) -> Row:
    """A page of chargers by id. The status is computed, not stored, so the filtered list is paged here
    (a registry holds thousands of chargers at most)."""
    rows = _filtered(conn, scope, station_id, charge_point_id, q, enabled, status_code)
    start = (page - 1) * size
    return {"records": rows[start:start + size], "total": len(rows), "page": page, "size": size}


def _get(conn: sqlite3.Connection, charger_id: int, *, scope: Scope) -> Row | None:
    where, args = scope.where("r.tenant_id")
    rows = conn.execute(f"{_SELECT} WHERE r.id = ? AND {where}", (charger_id, *args)).fetchall()
    return _details(conn, rows)[0] if rows else None


def _visible(conn: sqlite3.Connection, cp_id: str, *, scope: Scope) -> bool:
    """Whether the charger is the caller's to see, read and command (any charger outside a request)."""
    if scope.tenants is None:
        return True
    where, args = charger_where(scope, "?")
    return conn.execute(f"SELECT {where}", (cp_id, *args)).fetchone()[0] == 1


def _placement(conn: sqlite3.Connection, scope: Scope, tenant_id: int, station_id: int | None) -> str | None:
    """Why a charger of `tenant_id` cannot be placed at `station_id` (None: no station) by the caller, or None:
    "no_tenant" (a tenant outside the caller's scope, as if it did not exist), "no_station" (likewise), or
    "other_tenant" (a station of another tenant than the charger's)."""
    if not scope.sees(tenant_id):
        return "no_tenant"
    if station_id is None:
        return None
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT tenant_id FROM stations WHERE id = ? AND {where}", (station_id, *args)).fetchone()
    if row is None:
        return "no_station"
    return None if row[0] == tenant_id else "other_tenant"


def _create(conn: sqlite3.Connection, cp_id: str, name: str | None, station_id: int | None,
            connectors: list[Row], at: str, tenant_id: int | None = None, *, scope: Scope) -> tuple[str, Any]:
    """("created", charger); ("exists", the registered id it is or looks like; None when that charger is
    outside the caller's scope); ("no_tenant" | "no_station" | "other_tenant", None) (see _placement); or
    ("quota", why the tenant has no place for one more charger).

    The charger belongs to `tenant_id` (the acting tenant when None). A charger adopted when it connected
    unregistered (the platform's) is registered by this call by a caller who sees the platform's chargers:
    the operator's fields replace the empty ones it was adopted with, and it is no longer marked adopted."""
    tenant = scope.tenant_id if tenant_id is None else tenant_id
    key = id_key(cp_id)
    adopted = None
    for known, was_adopted, known_id, owner in conn.execute(
            "SELECT charge_point_id, adopted, id, tenant_id FROM charger_registry"):
        if known == cp_id and was_adopted and scope.sees(owner):
            adopted = known_id
        elif known == cp_id or id_key(known) == key:
            return "exists", known if scope.sees(owner) else None
    refused = _placement(conn, scope, tenant, station_id)
    if refused is not None:
        return refused, None
    refusal = quota_refusal(conn, tenant, "chargers")  # an adopted charger counted nowhere yet but the platform
    if refusal is not None and (adopted is None or tenant != PLATFORM):
        return "quota", refusal
    if adopted is not None:
        conn.execute("UPDATE charger_registry SET station_id = ?, name = ?, connectors = ?, adopted = 0, tenant_id = ?, "
                     "updated_at = ? WHERE id = ?", (station_id, name, json.dumps(connectors), tenant, at, adopted))
        return "created", _get(conn, adopted, scope=scope)
    charger_id = conn.execute(
        "INSERT INTO charger_registry (charge_point_id, tenant_id, station_id, name, connectors, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (cp_id, tenant, station_id, name, json.dumps(connectors), at, at)).fetchone()[0]
    return "created", _get(conn, charger_id, scope=scope)


_COLUMNS = {"name": "name", "station_id": "station_id", "connectors": "connectors", "enabled": "enabled",
            "operator_status": "operator_status", "tenant_id": "tenant_id"}


def _update(conn: sqlite3.Connection, charger_id: int, changes: Row, at: str, *, scope: Scope) -> tuple[str, Any]:
    """Change the named fields (name, station_id, connectors, enabled, operator_status, tenant_id):
    ("updated", charger), ("not_found", None) (also outside the caller's scope), ("no_tenant" | "no_station" |
    "other_tenant", None) (see _placement) or ("quota", why the tenant it moves to has no place for it).

    A charger moves to another tenant of the caller's scope with tenant_id; it leaves its station unless the
    station moves with it in the same change."""
    where, args = scope.where("tenant_id")
    row = conn.execute(f"SELECT tenant_id, station_id FROM charger_registry WHERE id = ? AND {where}",
                       (charger_id, *args)).fetchone()
    if row is None:
        return "not_found", None
    tenant = changes.get("tenant_id", row["tenant_id"])
    if tenant != row["tenant_id"]:
        changes = {"station_id": None, **changes}
        refusal = quota_refusal(conn, tenant, "chargers") if scope.sees(tenant) else None
        if refusal is not None:
            return "quota", refusal
    if "station_id" in changes or tenant != row["tenant_id"]:
        refused = _placement(conn, scope, tenant, changes.get("station_id", row["station_id"]))
        if refused is not None:
            return refused, None
    values = {_COLUMNS[k]: json.dumps(v) if k == "connectors" else v for k, v in changes.items()}
    sets = "".join(f"{column} = ?, " for column in values)
    conn.execute(f"UPDATE charger_registry SET {sets}updated_at = ? WHERE id = ?", (*values.values(), at, charger_id))
    return "updated", _get(conn, charger_id, scope=scope)


def _delete(conn: sqlite3.Connection, charger_id: int, *, scope: Scope) -> bool:
    where, args = scope.where("tenant_id")
    return conn.execute(f"DELETE FROM charger_registry WHERE id = ? AND {where}", (charger_id, *args)).rowcount > 0


def _offline(conn: sqlite3.Connection, *, scope: Scope) -> list[Row]:
    return [r for r in _filtered(conn, scope) if not r["online"]]


def _faults(conn: sqlite3.Connection, *, scope: Scope) -> list[Row]:
    """One row per faulted connector (0 included) of a connected charger, `since` the first of the
    StatusNotifications in a row that reported the fault."""
    out = []
    for cp in _filtered(conn, scope):
        if not cp["online"]:
            continue
        whole = cp["whole"]
        candidates = ([{"connector_no": 0, "ocpp_status": whole["status"], **whole}] if whole else []) + cp["connectors"]
        for c in candidates:
            if not evcs.is_fault(c["ocpp_status"], c["error_code"]):
                continue
            since = conn.execute(
                """SELECT MIN(received_at) FROM status_notifications WHERE charge_point_id = ? AND connector_id = ?
                   AND id > COALESCE((SELECT MAX(id) FROM status_notifications WHERE charge_point_id = ?
                       AND connector_id = ? AND status != 'Faulted' AND COALESCE(error_code, 'NoError') = 'NoError'), 0)""",
                (cp["charge_point_id"], c["connector_no"], cp["charge_point_id"], c["connector_no"])).fetchone()[0]
            out.append({"charger_id": cp["id"], "charge_point_id": cp["charge_point_id"], "station_id": cp["station_id"],
                        "connector_no": c["connector_no"], "ocpp_status": c["ocpp_status"],
                        "error_code": c["error_code"], "info": c["info"], "vendor_error_code": c["vendor_error_code"],
                        "since": since})
    return out


def _open_transaction(conn: sqlite3.Connection, cp_id: str, connector_no: int) -> int | None:
    row = conn.execute("SELECT MAX(id) FROM transactions WHERE charge_point_id = ? AND connector_id = ? "
                       "AND stopped_at IS NULL", (cp_id, connector_no)).fetchone()
    return row[0]


def _time(text: str | None) -> datetime | None:
    return clock.parse(text) if text else None


def _busy(conn: sqlite3.Connection, cp_id: str, since: str, until: str) -> tuple[float, float]:
    """(seconds online, seconds charging while online) of one charger over [since, until).

    Online: from the frame log's connect and disconnect events (kept frames.retention_days; a period
    older than that counts as offline). Charging: from the StatusNotifications (gateway receipt time),
    a connector counting from a report of a charging status (Charging, SuspendedEV, SuspendedEVSE,
    Finishing, Preparing) to its next report; the charger is charging while any connector is, and
    only while it is online."""
    start, end = clock.parse(since), clock.parse(until)
    # The state at `since` is the last change before it; only the changes within the period are read after it
    # (indexes 022: a period costs what it holds, not the charger's whole history).
    last = conn.execute(
        "SELECT action FROM frames WHERE charge_point_id = ? AND direction = 'event' AND action IN ('connect', "
        "'disconnect') AND at < ? ORDER BY at DESC, id DESC LIMIT 1", (cp_id, since)).fetchone()
    events = conn.execute(
        "SELECT at, action FROM frames WHERE charge_point_id = ? AND direction = 'event' "
        "AND action IN ('connect', 'disconnect') AND at >= ? AND at < ? ORDER BY at, id", (cp_id, since, until))
    online = evcs.spans(last is not None and last[0] == "connect",
                        [(clock.parse(at), a == "connect") for at, a in events], start, end)
    charging = []
    connector_no = 0
    while True:  # the connectors that ever reported, one index step each
        connector_no = conn.execute("SELECT MIN(connector_id) FROM status_notifications WHERE charge_point_id = ? "
                                    "AND connector_id > ?", (cp_id, connector_no)).fetchone()[0]
        if connector_no is None:
            break
        earlier = conn.execute(
            "SELECT status FROM status_notifications WHERE charge_point_id = ? AND connector_id = ? "
            "AND received_at < ? ORDER BY received_at DESC, id DESC LIMIT 1", (cp_id, connector_no, since)).fetchone()
        reports = conn.execute(
            "SELECT received_at, status FROM status_notifications WHERE charge_point_id = ? AND connector_id = ? "
            "AND received_at >= ? AND received_at < ? ORDER BY received_at, id", (cp_id, connector_no, since, until))
        charging += evcs.spans(earlier is not None and earlier[0] in evcs.CHARGING_STATUSES,
                               [(clock.parse(at), s in evcs.CHARGING_STATUSES) for at, s in reports], start, end)
    return evcs.seconds(online), evcs.seconds(evcs.overlap(online, evcs.union(charging)))


def _statistics(conn: sqlite3.Connection, since: str, until: str, station_id: int | None = None,
                *, scope: Scope) -> Row:
    """Counts by status and station now; sessions (transactions started in [since, until), by the gateway's
    clock) and their energy; utilisation = seconds charging / seconds online of the chargers over the
    period (_busy says how each is counted), 0 when none was online."""
    chargers = _filtered(conn, scope, station_id)
    by_status = {name: 0 for name in evcs.NAMES.values()}
    stations: dict[Any, Row] = {}
    for cp in chargers:
        by_status[evcs.NAMES[cp["status_code"]]] += 1
        group = stations.setdefault(cp["station_id"], {"station_id": cp["station_id"],
                                                       "station_name": cp["station_name"], "total": 0, "online": 0})
        group["total"] += 1
        group["online"] += bool(cp["online"])
    ids = json.dumps([cp["charge_point_id"] for cp in chargers])
    sessions, energy = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(energy_wh), 0) FROM transactions WHERE started_at >= ? AND started_at < ? "
        "AND charge_point_id IN (SELECT value FROM json_each(?))", (since, until, ids)).fetchone()
    online = charging = 0.0
    for cp in chargers:
        up, busy = _busy(conn, cp["charge_point_id"], since, until)
        online += up
        charging += busy
    return {"total": len(chargers), "by_status": by_status,
            "by_station": sorted(stations.values(), key=lambda s: (s["station_id"] is None, s["station_id"] or 0)),
            "sessions": sessions, "energy_wh": energy, "online_seconds": online, "charging_seconds": charging,
            "utilisation": charging / online if online else 0}


class ChargerRegistry(Table, committed=dict(
        page=_page, get=_get, create=_create, offline=_offline, faults=_faults, open_transaction=_open_transaction,
        visible=_visible)):
    # Set by the Store: the chargers' table keeps in memory who is out of service, and forgets it on a change.
    _changed: Callable[[], None] = staticmethod(lambda: None)

    @durability(COMMITTED)
    async def update(self, charger_id: int, changes: dict[str, Any], at: str) -> tuple[str, dict[str, Any] | None]:
        """Committed: see _update."""
        try:
            return await self._db.run(_update, charger_id, changes, at, scope=current_scope())
        finally:
            self._changed()

    @durability(COMMITTED)
    async def delete(self, charger_id: int) -> bool:
        """Committed: see _delete (the history stays)."""
        try:
            return await self._db.run(_delete, charger_id, scope=current_scope())
        finally:
            self._changed()

    # reads the frame log's connect and disconnect events: waits for the frames recorded before the call
    statistics = committed(_statistics, after_appended=True)
