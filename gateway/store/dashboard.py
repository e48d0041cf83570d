"""The dashboard's figures, read from the records the gateway keeps, each within the caller's tenant scope.

The rules are those of the records' own statistics, so one figure never means two things:
- a session is a transaction, on the day (or hour) it started by the gateway's clock (`started_at`), with
  its metered energy (`energy_wh`), as in GET /api/charger/statistics;
- money is the orders' (created in the period), as in GET /api/order/statistics: `paid` the money received
  for them (every paid payment), `refunded` the refunds that succeeded, `revenue` = paid - refunded;
  `amount` what the orders not cancelled were priced at;
- time charging over time online is the registry's (registry._busy).

Periods come as [since, until) in UTC text (the site's days are cut by the caller); a charger's tenant is its
registry entry's (a charger without one is the platform's), a station's its own.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from ..chargepoint import evcs_status as evcs
from ..orderstates import OrderStatus, RefundStatus
from . import registry
from .calls import Table, committed
from .scope import Scope

Row = dict[str, Any]
Window = tuple[str, str, str]  # (label, since, until): a site day, or any period

CANCELLED = int(OrderStatus.CANCELLED)  # a cancelled order's session is not sold: no energy, no amount due


def _tenant(scope: Scope, alias: str) -> tuple[str, str, tuple[int, ...]]:
    """(a join naming the charger's registry entry `r`, a condition, its parameters) keeping the rows of
    table `alias` whose charger the caller may see; no join at all when it sees every tenant."""
    where, args = scope.where("r.tenant_id")
    if not args:
        return "", "1", ()
    return f" LEFT JOIN charger_registry r ON r.charge_point_id = {alias}.charge_point_id", where, args


def _days_cte(windows: Sequence[Window]) -> tuple[str, tuple[str, ...]]:
    rows = ", ".join("(?, ?, ?)" for _ in windows)
    return f"WITH w(label, lo, hi) AS (VALUES {rows})", tuple(v for window in windows for v in window)


# Money of the orders joined as `o`: what each received (paid payments) and got back (refunds that succeeded).
_RECEIVED = "(SELECT COALESCE(SUM(p.amount), 0) FROM payments p WHERE p.order_id = o.id AND p.paid_at IS NOT NULL)"
_REFUNDED = ("(SELECT COALESCE(SUM(f.amount), 0) FROM payments p JOIN refunds f ON f.payment_id = p.id "
             "WHERE p.order_id = o.id AND f.status = ?)")


def _sessions(conn: sqlite3.Connection, windows: Sequence[Window], *, scope: Scope) -> dict[str, Row]:
    """label -> {sessions, energyWh} of the transactions started in each window (every window answered)."""
    join, where, args = _tenant(scope, "t")
    cte, bounds = _days_cte(windows)
    out = {label: {"sessions": 0, "energyWh": 0} for label, _, _ in windows}
    for label, count, energy in conn.execute(
            f"""{cte} SELECT w.label, COUNT(*), COALESCE(SUM(t.energy_wh), 0)
                FROM w JOIN transactions t ON t.started_at >= w.lo AND t.started_at < w.hi{join}
                WHERE {where} GROUP BY w.label""", (*bounds, *args)):
        out[label] = {"sessions": count, "energyWh": energy}
    return out


def _money(conn: sqlite3.Connection, windows: Sequence[Window], *, scope: Scope) -> dict[str, Row]:
    """label -> {orders, energyWh, amount, paid, refunded, revenue} of the orders created in each window."""
    join, where, args = _tenant(scope, "o")
    cte, bounds = _days_cte(windows)
    out = {label: {"orders": 0, "energyWh": 0, "amount": 0, "paid": 0, "refunded": 0, "revenue": 0}
           for label, _, _ in windows}
    for label, orders, energy, amount, paid, refunded in conn.execute(
            f"""{cte} SELECT w.label, COUNT(*),
                       COALESCE(SUM(CASE WHEN o.status != {CANCELLED} THEN o.energy_wh END), 0),
                       COALESCE(SUM(CASE WHEN o.status != {CANCELLED} THEN o.total_amount END), 0),
                       COALESCE(SUM({_RECEIVED}), 0), COALESCE(SUM({_REFUNDED}), 0)
                FROM w JOIN orders o ON o.created_at >= w.lo AND o.created_at < w.hi{join}
                WHERE {where} GROUP BY w.label""", (*bounds, RefundStatus.SUCCESS, *args)):
        out[label] = {"orders": orders, "energyWh": energy, "amount": amount, "paid": paid, "refunded": refunded,
                      "revenue": paid - refunded}
    return out


def _chargers(conn: sqlite3.Connection, *, scope: Scope) -> list[Row]:
    """The registry's chargers the caller may see, with their live EVCS status and connectors."""
    where, args = scope.where("r.tenant_id")
    return registry._details(conn, conn.execute(f"{registry._SELECT} WHERE {where} ORDER BY r.id", args).fetchall())


def _status(conn: sqlite3.Connection, *, scope: Scope) -> Row:
    """Chargers and connectors by EVCS status now (offline, idle, charging, fault), and per station."""
    chargers = _chargers(conn, scope=scope)
    names = list(evcs.NAMES.values())
    by_status = dict.fromkeys(names, 0)
    connectors = dict.fromkeys(names, 0)
    stations: dict[Any, Row] = {}
    for cp in chargers:
        name = evcs.NAMES[cp["status_code"]]
        by_status[name] += 1
        for c in cp["connectors"]:
            connectors[evcs.NAMES[c["status_code"]]] += 1
        group = stations.setdefault(cp["station_id"], {"stationId": cp["station_id"],
                                                       "stationName": cp["station_name"], "total": 0,
                                                       **dict.fromkeys(names, 0)})
        group["total"] += 1
        group[name] += 1
    return {"total": len(chargers), "online": len(chargers) - by_status["offline"], "byStatus": by_status,
            "connectors": {"total": sum(connectors.values()), **connectors},
            "byStation": sorted(stations.values(), key=lambda s: (s["stationId"] is None, s["stationId"] or 0))}


def _quarters(conn: sqlite3.Connection, since: str, until: str, *, scope: Scope) -> list[tuple[str, int, int, int]]:
    """(UTC hour 'YYYY-MM-DDTHH', quarter 0-3, sessions, energyWh) of the transactions started in [since, until):
    every zone's offset is a whole number of quarter hours, so each quarter lies in one local hour."""
    join, where, args = _tenant(scope, "t")
    return [tuple(r) for r in conn.execute(
        f"""SELECT substr(t.started_at, 1, 13), CAST(substr(t.started_at, 15, 2) AS INTEGER) / 15, COUNT(*),
                   COALESCE(SUM(t.energy_wh), 0)
            FROM transactions t{join} WHERE t.started_at >= ? AND t.started_at < ? AND {where}
            GROUP BY 1, 2""", (since, until, *args))]


def _recent(conn: sqlite3.Connection, limit: int, *, scope: Scope) -> list[Row]:
    """The newest orders, with the charger's registry id and station, and the money received and refunded."""
    where, args = scope.where("r.tenant_id")
    return [dict(r) for r in conn.execute(
        f"""SELECT o.*, r.id AS charger_id, r.station_id, s.name AS station_name,
                   {_RECEIVED} AS received, {_REFUNDED} AS refunded
            FROM orders o LEFT JOIN charger_registry r ON r.charge_point_id = o.charge_point_id
                          LEFT JOIN stations s ON s.id = r.station_id
            WHERE {where} ORDER BY o.id DESC LIMIT ?""", (RefundStatus.SUCCESS, *args, limit))]


def _by_station(conn: sqlite3.Connection, since: str, until: str, *, scope: Scope) -> list[Row]:
    """Every station the caller may see with its city, chargers, and the sessions, energy and order money of
    the chargers placed there now, over [since, until), by station id."""
    where, args = scope.where("s.tenant_id")
    stations = {r["id"]: {"stationId": r["id"], "stationCode": r["code"], "stationName": r["name"],
                          "city": r["city"], "chargers": r["chargers"], "sessions": 0, "energyWh": 0, "orders": 0,
                          "amount": 0, "paid": 0, "refunded": 0, "revenue": 0}
                for r in conn.execute(
                    f"""SELECT s.id, s.code, s.name, s.city,
                               (SELECT COUNT(*) FROM charger_registry r WHERE r.station_id = s.id) AS chargers
                        FROM stations s WHERE {where} ORDER BY s.id""", args)}
    for station_id, sessions, energy in conn.execute(
            """SELECT r.station_id, COUNT(*), COALESCE(SUM(t.energy_wh), 0)
               FROM transactions t JOIN charger_registry r ON r.charge_point_id = t.charge_point_id
               WHERE t.started_at >= ? AND t.started_at < ? AND r.station_id IS NOT NULL
               GROUP BY r.station_id""", (since, until)):
        if station_id in stations:
            stations[station_id].update(sessions=sessions, energyWh=energy)
    for station_id, orders, amount, paid, refunded in conn.execute(
            f"""SELECT r.station_id, COUNT(*),
                       COALESCE(SUM(CASE WHEN o.status != {CANCELLED} THEN o.total_amount END), 0),
                       COALESCE(SUM({_RECEIVED}), 0), COALESCE(SUM({_REFUNDED}), 0)
                FROM orders o JOIN charger_registry r ON r.charge_point_id = o.charge_point_id
                WHERE o.created_at >= ? AND o.created_at < ? AND r.station_id IS NOT NULL
                GROUP BY r.station_id""", (RefundStatus.SUCCESS, since, until)):
        if station_id in stations:
            stations[station_id].update(orders=orders, amount=amount, paid=paid, refunded=refunded,
                                        revenue=paid - refunded)
    return list(stations.values())


def _utilization(conn: sqlite3.Connection, since: str, until: str, *, scope: Scope) -> list[Row]:
    """Each charger the caller may see, by registry id: seconds online and charging over [since, until)."""
    out = []
    for cp in _chargers(conn, scope=scope):
        online, charging = registry._busy(conn, cp["charge_point_id"], since, until)
        out.append({"chargerId": cp["id"], "chargePointId": cp["charge_point_id"], "name": cp["name"],
                    "stationId": cp["station_id"], "stationName": cp["station_name"],
                    "statusCode": cp["status_code"], "onlineSeconds": online, "chargingSeconds": charging})
    return out


class Dashboard(Table, committed=dict(sessions=_sessions, money=_money, status=_status, quarters=_quarters,
                                      recent=_recent, by_station=_by_station)):
    # reads the frame log's connect and disconnect events: waits for the frames recorded before the call
    utilization = committed(_utilization, after_appended=True)
