"""What monitoring reads from the records: the alert rules' conditions, and today's business figures.

Both are one job each, run by a periodic task or a request: never per frame.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .scope import Scope

CANCELLED = 2  # orderstates.OrderStatus.CANCELLED: a cancelled order earns nothing


def _conditions(conn: sqlite3.Connection, callbacks_since: str, *, scope: Scope) -> dict[str, Any]:
    """The records the alert rules look at: offline chargers (not retired nor disabled in the registry), Faulted
    connectors, open transactions, violation totals per charger, refused callbacks per channel since
    `callbacks_since`, and the mismatches of each channel's latest reconciliation report."""
    where, args = scope.where("r.tenant_id")
    offline = [tuple(r) for r in conn.execute(
        "SELECT c.id, c.disconnected_at FROM charge_points c LEFT JOIN charger_registry r ON r.charge_point_id = c.id "
        f"WHERE c.online = 0 AND c.disconnected_at IS NOT NULL AND coalesce(r.enabled, 1) = 1 "
        f"AND coalesce(r.operator_status, 'in_service') != 'retired' AND {where}", args)]
    faulted = [tuple(r) for r in conn.execute(
        "SELECT k.charge_point_id, k.connector_id, k.updated_at, k.error_code FROM connectors k "
        f"LEFT JOIN charger_registry r ON r.charge_point_id = k.charge_point_id WHERE k.status = 'Faulted' AND {where}",
        args)]
    open_transactions = [tuple(r) for r in conn.execute(
        "SELECT t.id, t.charge_point_id, t.connector_id, t.started_at FROM transactions t "
        "LEFT JOIN charger_registry r ON r.charge_point_id = t.charge_point_id "
        f"WHERE t.stopped_at IS NULL AND t.started_at IS NOT NULL AND {where}", args)]
    violations = {r[0]: r[1] for r in conn.execute(
        "SELECT v.charge_point_id, SUM(v.count) FROM violations v "
        f"LEFT JOIN charger_registry r ON r.charge_point_id = v.charge_point_id WHERE {where} GROUP BY 1", args)}
    refused = {r[0]: r[1] for r in conn.execute(
        "SELECT channel, COUNT(*) FROM payment_callbacks WHERE status = 'refused' AND received_at >= ? GROUP BY 1",
        (callbacks_since,))}
    mismatches = {}
    for channel, day, report in conn.execute(
            "SELECT channel, day, report FROM reconciliation_reports WHERE id IN "
            "(SELECT MAX(id) FROM reconciliation_reports GROUP BY channel)"):
        try:
            mismatches[channel] = (day, len(json.loads(report).get("mismatches") or []))
        except (ValueError, AttributeError, TypeError):
            continue
    return {"offline": offline, "faulted": faulted, "open_transactions": open_transactions,
            "violations": violations, "refused_callbacks": refused, "mismatches": mismatches}


def _business(conn: sqlite3.Connection, day_start: str, day_end: str, *, scope: Scope) -> dict[str, int]:
    """Chargers online and sessions running now, and the energy (Wh) of the transactions and the revenue (minor units) of the
    orders (not cancelled) that stopped in [day_start, day_end)."""
    where, args = scope.where("r.tenant_id")
    online = conn.execute(
        "SELECT COUNT(*) FROM charge_points c LEFT JOIN charger_registry r ON r.charge_point_id = c.id "
        f"WHERE c.online = 1 AND {where}", args).fetchone()[0]
    running = conn.execute(
        "SELECT COUNT(*) FROM transactions t LEFT JOIN charger_registry r ON r.charge_point_id = t.charge_point_id "
        f"WHERE t.stopped_at IS NULL AND {where}", args).fetchone()[0]
    sessions, energy = conn.execute(
        "SELECT COUNT(*), coalesce(SUM(t.energy_wh), 0) FROM transactions t "
        "LEFT JOIN charger_registry r ON r.charge_point_id = t.charge_point_id "
        f"WHERE t.stopped_at >= ? AND t.stopped_at < ? AND {where}", (day_start, day_end, *args)).fetchone()
    revenue = conn.execute(
        "SELECT coalesce(SUM(o.total_amount), 0) FROM orders o "
        "LEFT JOIN charger_registry r ON r.charge_point_id = o.charge_point_id "
        f"WHERE o.stopped_at >= ? AND o.stopped_at < ? AND o.status != ? AND {where}",
        (day_start, day_end, CANCELLED, *args)).fetchone()[0]
    return {"chargersOnline": online, "sessionsRunning": running, "sessionsToday": sessions, "energyTodayWh": energy,
            "revenueToday": revenue}


def _schema_version(conn: sqlite3.Connection) -> int:
    """The number of the newest migration applied (the ledger's: both engines keep it)."""
    return conn.execute("SELECT coalesce(max(number), 0) FROM schema_migrations").fetchone()[0]


class Monitoring(Table, committed=dict(conditions=_conditions, business=_business, schema_version=_schema_version)):
    pass
