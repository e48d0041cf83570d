"""The dashboard's figures, read from the records the gateway keeps, each within the caller's tenant scope.

The rules are those of the records' own statistics, so one figure never means two things:
- a session is a transaction, on the day (or hour) it started by the gateway's clock (`started_at`), with
  its metered energy (`energy_wh`), as in GET /api/charger/statistics;
- orders are counted on the day they were created, `amount` being what those not cancelled were priced at;
- money on the day it moved, as the daily reconciliation counts it: `paid` the payments paid in the period,
  `refunded` the refunds that succeeded (settled) in it, `revenue` = paid - refunded, each the order's
  whose charger it was;
- time charging over time online is the registry's (registry._busy).

Periods come as [since, until) in UTC text (the site's days are cut by the caller); a charger's tenant is its
registry entry's (a charger without one is the platform's), a station's its own.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from .. import clock
from ..chargepoint import evcs_status as evcs
from ..orderstates import OrderStatus, RefundStatus
from . import registry
from .calls import Table, committed
from .scope import Scope

Row = dict[str, Any]
Window = tuple[str, str, str]  # (label, since, until): a site day, an hour of one, or any period

CANCELLED = int(OrderStatus.CANCELLED)  # a cancelled order's session is not sold: no energy, no amount due


def _tenant(scope: Scope, alias: str) -> tuple[str, str, tuple[int, ...]]:
    """(a join naming the charger's registry entry `r`, a condition, its parameters) keeping the rows of
    table `alias` whose charger the caller may see; no join at all when it sees every tenant."""
    where, args = scope.where("r.tenant_id")
    if not args:
        return "", "TRUE", ()
    return f" LEFT JOIN charger_registry r ON r.charge_point_id = {alias}.charge_point_id", where, args


# Money of the orders joined as `o`: what each received (paid payments) and got back (refunds that succeeded);
# for the few orders listed one by one (the period sums read the payments and refunds by time instead).
_RECEIVED = "(SELECT COALESCE(SUM(p.amount), 0) FROM payments p WHERE p.order_id = o.id AND p.paid_at IS NOT NULL)"
_REFUNDED = ("(SELECT COALESCE(SUM(f.amount), 0) FROM payments p JOIN refunds f ON f.payment_id = p.id "
             "WHERE p.order_id = o.id AND f.status = ?)")


def _per_window(conn: sqlite3.Connection, windows: Sequence[Window], sums: dict[str, str], table: str, when: str,
                *, scope: Scope, condition: str = "TRUE", args: tuple = (), via_order: bool = False) -> dict[str, Row]:
    """label -> {name: sum} over the rows `x` of `table` whose `when` lies in a window of that label (windows
    may share one: the hours of many days), and `condition` holds; every label answered. One query per
    window, each one range of a covering index: nothing is sorted. via_order: the rows' charger is their
    order's (refunds; a payment carries its own, 024)."""
    charger = "o" if via_order else "x"
    join, where, scoped = _tenant(scope, charger)
    if via_order and join:
        join = f" JOIN orders o ON o.id = x.order_id{join}"
    query = (f"SELECT {', '.join(f'COALESCE({expr}, 0)' for expr in sums.values())} FROM {table} x{join} "
             f"WHERE x.{when} >= ? AND x.{when} < ? AND {condition} AND {where}")
    out = {label: dict.fromkeys(sums, 0) for label, _, _ in windows}
    for label, since, until in windows:
        totals = out[label]
        for name, value in zip(sums, conn.execute(query, (since, until, *args, *scoped)).fetchone()):
            totals[name] += value
    return out


def _sessions(conn: sqlite3.Connection, windows: Sequence[Window], *, scope: Scope) -> dict[str, Row]:
    """label -> {sessions, energyWh} of the transactions started in each window (every window answered)."""
    return _per_window(conn, windows, {"sessions": "COUNT(*)", "energyWh": "SUM(x.energy_wh)"},
                       "transactions", "started_at", scope=scope)


QUARTER = 900  # seconds
# The quarter hour a transaction started in, as seconds since the epoch // 900: the expression of the index
# transactions_started_quarter (024), written exactly as there.
_QUARTER = f"CAST(strftime('%s', started_at) AS INTEGER) / {QUARTER}"


def _by_quarter(conn: sqlite3.Connection, since: str, until: str, *, scope: Scope) -> dict[int, Row]:
    """Quarter hour (seconds since the epoch // 900) -> {sessions, energyWh} of the transactions started in it
    and in [since, until); quarters with none are left out. Every zone is offset from UTC by whole quarter
    hours, so a quarter lies within one hour of the site's day: the caller adds the quarters up by the site's
    hours. One pass over the period's range of an index in quarter order: nothing sorted, one query instead
    of one per hour."""
    first, last = (int(clock.parse(t).timestamp()) // QUARTER for t in (since, until))
    join, where, scoped = _tenant(scope, "x")
    return {quarter: {"sessions": sessions, "energyWh": energy} for quarter, sessions, energy in conn.execute(
        f"SELECT {_QUARTER} AS quarter, COUNT(*), COALESCE(SUM(x.energy_wh), 0) "
        f"FROM transactions x{join} "
        f"WHERE {_QUARTER} BETWEEN ? AND ? AND x.started_at >= ? AND x.started_at < ? AND {where} GROUP BY quarter",
        (first, last, since, until, *scoped))}


def _money(conn: sqlite3.Connection, windows: Sequence[Window], *, scope: Scope) -> dict[str, Row]:
    """label -> {orders, energyWh, amount} of the orders created in each window and {paid, refunded, revenue}
    of the money that moved in it (every window answered)."""
    sold = f"CASE WHEN x.status != {CANCELLED} THEN x.{{}} END"
    orders = _per_window(conn, windows, {"orders": "COUNT(*)", "energyWh": f"SUM({sold.format('energy_wh')})",
                                         "amount": f"SUM({sold.format('total_amount')})"},
                         "orders", "created_at", scope=scope)
    paid = _per_window(conn, windows, {"paid": "SUM(x.amount)"}, "payments", "paid_at", scope=scope)
    refunded = _per_window(conn, windows, {"refunded": "SUM(x.amount)"}, "refunds", "settled_at", scope=scope,
                           condition="x.status = ?", args=(RefundStatus.SUCCESS,), via_order=True)
    return {label: {**orders[label], **paid[label], **refunded[label],
                    "revenue": paid[label]["paid"] - refunded[label]["refunded"]} for label, _, _ in windows}


def _refunded_by_charger(conn: sqlite3.Connection, since: str, until: str) -> dict[str, int]:
    """charge point id -> the refunds settled in [since, until), each its order's charger's (a few a day)."""
    return dict(conn.execute(
        "SELECT o.charge_point_id, SUM(x.amount) FROM refunds x JOIN orders o ON o.id = x.order_id "
        "WHERE x.status = ? AND x.settled_at >= ? AND x.settled_at < ? GROUP BY 1",
        (RefundStatus.SUCCESS, since, until)).fetchall())


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
    the chargers placed there now, over [since, until), by station id (the stations are the caller's, so
    are the chargers placed there). The sums are made per charger and added up per station here."""
    where, args = scope.where("s.tenant_id")
    stations = {r["id"]: {"stationId": r["id"], "stationCode": r["code"], "stationName": r["name"],
                          "city": r["city"], "chargers": r["chargers"], "sessions": 0, "energyWh": 0, "orders": 0,
                          "amount": 0, "paid": 0, "refunded": 0, "revenue": 0}
                for r in conn.execute(
                    f"""SELECT s.id, s.code, s.name, s.city,
                               (SELECT COUNT(*) FROM charger_registry r WHERE r.station_id = s.id) AS chargers
                        FROM stations s WHERE {where} ORDER BY s.id""", args)}
    placed = {cp_id: station_id for cp_id, station_id in conn.execute(
        "SELECT charge_point_id, station_id FROM charger_registry WHERE station_id IS NOT NULL") if station_id in stations}
    refunds = _refunded_by_charger(conn, since, until)
    for cp_id, station_id in placed.items():  # per charger: one range of an index each (022, 024), nothing sorted
        station = stations[station_id]
        sessions, energy = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(energy_wh), 0) FROM transactions WHERE charge_point_id = ? "
            "AND started_at >= ? AND started_at < ?", (cp_id, since, until)).fetchone()
        orders, amount = conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN status != {CANCELLED} THEN total_amount END), 0) FROM orders "
            "WHERE charge_point_id = ? AND created_at >= ? AND created_at < ?", (cp_id, since, until)).fetchone()
        paid, = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM payments WHERE charge_point_id = ? "
                             "AND paid_at >= ? AND paid_at < ?", (cp_id, since, until)).fetchone()
        refunded = refunds.get(cp_id, 0)
        station["sessions"] += sessions
        station["energyWh"] += energy
        station["orders"] += orders
        station["amount"] += amount
        station["paid"] += paid
        station["refunded"] += refunded
        station["revenue"] += paid - refunded
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


class Dashboard(Table, committed=dict(sessions=_sessions, by_quarter=_by_quarter, money=_money, status=_status,
                                      recent=_recent, by_station=_by_station)):
    # reads the frame log's connect and disconnect events: waits for the frames recorded before the call
    utilization = committed(_utilization, after_appended=True)
