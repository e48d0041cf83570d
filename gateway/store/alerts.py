"""Alerts: raised, cleared, acknowledged and resolved, each change in the alert's history.

One alert per rule and subject is open (open or acknowledged) at a time: a partial unique index keeps it
so. An alert about a charger belongs to the charger's tenant; one about no charger (the disk, the writer,
a payment channel) is the platform's.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

from .calls import Table
from .paging import Filters, page
from .scope import Scope

OPEN_STATES = ("open", "acknowledged")
# Every alert with its tenant: the registry's for a charger's, the platform's otherwise (scope.where coalesces).
_SCOPED = ("(SELECT a.*, r.tenant_id AS tenant_id FROM alerts a "
           "LEFT JOIN charger_registry r ON r.charge_point_id = a.charge_point_id) AS a")


def _source(scope: Scope) -> tuple[str, str, tuple[int, ...]]:
    """The alerts the caller may see: (FROM, WHERE, its parameters); no join for a caller who sees them all."""
    if scope.tenants is None:
        return "alerts a", "TRUE", ()
    where, args = scope.where("a.tenant_id")
    return _SCOPED, where, args


def _open(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every open alert, for the checker (which serves every tenant)."""
    return [dict(r) for r in conn.execute(
        "SELECT id, rule, subject, severity, cleared_at IS NOT NULL AS cleared FROM alerts "
        "WHERE status != 'resolved'")]


def _history(conn: sqlite3.Connection, alert_id: int, at: str, event: str, by: str | None, note: str | None) -> None:
    conn.execute("INSERT INTO alert_history (alert_id, at, event, by, note) VALUES (?, ?, ?, ?, ?)",
                 (alert_id, at, event, by, note))


def _row(conn: sqlite3.Connection, alert_id: int) -> dict[str, Any]:
    return dict(conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())


def _apply(conn: sqlite3.Connection, changes: Iterable[tuple[str, dict[str, Any]]],
           at: str) -> list[tuple[str, dict[str, Any]]]:
    """Apply the checker's transitions, each (event, fields): raised {rule, subject, charge_point_id, severity,
    message, value, threshold, auto_resolve}, or cleared / returned / resolved {id, note, (message, value)}.
    Returns (event, the alert as it is now) for each change made (a change already made is skipped)."""
    done = []
    for event, f in changes:
        if event == "raised":
            cur = conn.execute(
                "INSERT INTO alerts (rule, subject, charge_point_id, severity, status, message, value, threshold, "
                "auto_resolve, raised_at, updated_at) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (f["rule"], f["subject"], f["charge_point_id"], f["severity"], f["message"], f["value"],
                 f["threshold"], int(f["auto_resolve"]), at, at))
            row = cur.fetchone()
            if row is None:
                continue
            alert_id = row[0]
            _history(conn, alert_id, at, "raised", None, f["message"])
        else:
            alert_id = f["id"]
            if event == "resolved":
                cur = conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, cleared_at = "
                                   "coalesce(cleared_at, ?), updated_at = ? WHERE id = ? AND status != 'resolved'",
                                   (at, at, at, alert_id))
            elif event == "cleared":
                cur = conn.execute("UPDATE alerts SET cleared_at = ?, updated_at = ? WHERE id = ? "
                                   "AND status != 'resolved' AND cleared_at IS NULL", (at, at, alert_id))
            else:  # returned
                cur = conn.execute("UPDATE alerts SET cleared_at = NULL, message = ?, value = ?, updated_at = ? "
                                   "WHERE id = ? AND status != 'resolved' AND cleared_at IS NOT NULL",
                                   (f["message"], f["value"], at, alert_id))
            if not cur.rowcount:
                continue
            _history(conn, alert_id, at, event, None, f["note"])
        done.append((event, _row(conn, alert_id)))
    return done


def _get(conn: sqlite3.Connection, alert_id: int, *, scope: Scope) -> dict[str, Any] | None:
    """The alert with its history, if the caller may see it."""
    source, where, args = _source(scope)
    row = conn.execute(f"SELECT a.* FROM {source} WHERE a.id = ? AND {where}", (alert_id, *args)).fetchone()
    if row is None:
        return None
    history = [dict(h) for h in conn.execute(
        "SELECT at, event, by, note FROM alert_history WHERE alert_id = ? ORDER BY id", (alert_id,))]
    return {**dict(row), "history": history}


def _act(conn: sqlite3.Connection, alert_id: int, action: str, by: str, note: str | None, at: str, *,
         scope: Scope) -> tuple[dict[str, Any] | None, str | None]:
    """Acknowledge or resolve an alert as `by`: (the alert now, None), (None, None) when the caller may not see
    it, or (the alert, why not) when it cannot be done (resolved already, acknowledged already)."""
    alert = _get(conn, alert_id, scope=scope)
    if alert is None:
        return None, None
    if alert["status"] == "resolved":
        return alert, f"alert {alert_id} is resolved already"
    if action == "acknowledge":
        if alert["status"] == "acknowledged":
            return alert, f"alert {alert_id} is acknowledged already (by {alert['acknowledged_by']})"
        conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, "
                     "updated_at = ? WHERE id = ?", (at, by, at, alert_id))
        _history(conn, alert_id, at, "acknowledged", by, note)
    else:
        conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ?, updated_at = ? "
                     "WHERE id = ?", (at, by, at, alert_id))
        _history(conn, alert_id, at, "resolved", by, note)
    return _get(conn, alert_id, scope=scope), None


def _list(conn: sqlite3.Connection, status: str | None, rule: str | None, severity: str | None,
          cp_id: str | None, since: str | None, until: str | None, number: int, size: int, *,
          scope: Scope) -> dict[str, Any]:
    """A page of alerts, newest first; status "active" means open or acknowledged."""
    filters = Filters()
    source, where, args = _source(scope)
    filters.clauses.append(where)
    filters.args.extend(args)
    if status == "active":
        filters.clauses.append("a.status != 'resolved'")
    else:
        filters.add("a.status = ?", status)
    filters.add("a.rule = ?", rule)
    filters.add("a.severity = ?", severity)
    filters.add("a.charge_point_id = ?", cp_id)
    filters.add("a.raised_at >= ?", since)
    filters.add("a.raised_at < ?", until)
    return page(conn, source, filters, "a.id DESC", number, size)


def _statistics(conn: sqlite3.Connection, since: str | None, *, scope: Scope) -> dict[str, Any]:
    """Alerts by status, and the active ones by severity and rule; raised since `since` (None: ever)."""
    source, where, args = _source(scope)
    if since is not None:  # a covering index scan without it
        where, args = f"{where} AND a.raised_at >= ?", (*args, since)
    rows = conn.execute(f"SELECT a.status, a.severity, a.rule, COUNT(*) FROM {source} WHERE {where} GROUP BY 1, 2, 3",
                        args).fetchall()
    by_status = {"open": 0, "acknowledged": 0, "resolved": 0}
    by_severity: dict[str, int] = {"critical": 0, "warning": 0, "info": 0}
    by_rule: dict[str, int] = {}
    for status, severity, rule, count in rows:
        by_status[status] += count
        if status != "resolved":
            by_severity[severity] += count
            by_rule[rule] = by_rule.get(rule, 0) + count
    return {"total": sum(by_status.values()), "active": by_status["open"] + by_status["acknowledged"],
            "byStatus": by_status, "activeBySeverity": by_severity, "activeByRule": by_rule}


class Alerts(Table, committed=dict(open=_open, apply=_apply, get=_get, act=_act, list=_list,
                                   statistics=_statistics)):
    pass
