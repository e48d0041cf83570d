"""The audit log: who changed what, in which tenant, from where, with what result (docs/api.md section 11).

A record is appended (`record`: handed to the writer beside the frames, so neither its answer nor the
next request's database jobs wait for it; a clean stop writes every record handed over). Nothing updates
a record (the table refuses it) and no route deletes one: the oldest go by `rule`
(gateway/store/retention.py, in small batches, as the frame log's do). Readers see the records of the
tenants in their scope: a record belongs to
the tenant acted in.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table, appended, committed
from .paging import Filters, page
from .retention import Rule
from .scope import Scope
from .writer.rows import AUDIT_COLUMNS as COLUMNS  # the writer process writes them



def _record_rows(entry: dict[str, Any]) -> list[tuple]:
    """The row of one record (its COLUMNS; target and summary as JSON text)."""
    return [tuple(entry.get(c) for c in COLUMNS)]


def _filters(scope: Scope, since: str | None, until: str | None) -> Filters:
    filters = Filters()
    where, args = scope.where("tenant_id")
    filters.clauses.append(where)
    filters.args.extend(args)
    filters.add("at >= ?", since)
    filters.add("at < ?", until)
    return filters


def _page(conn: sqlite3.Connection, username: str | None, tenant_id: int | None, action: str | None,
          target: str | None, kind: str | None, since: str | None, until: str | None, number: int, size: int,
          *, scope: Scope) -> dict[str, Any]:
    """A page of records, newest first; target: one of the route's parameter values, exactly."""
    filters = _filters(scope, since, until)
    filters.add("username = ?", username)
    filters.add("tenant_id = ?", tenant_id)
    filters.add("action = ?", action)
    filters.add("kind = ?", kind)
    filters.add("EXISTS (SELECT 1 FROM json_each(audit_log.target) WHERE CAST(value AS TEXT) = ?)", target)
    return page(conn, "audit_log", filters, "at DESC, id DESC", number, size)


def _actions(conn: sqlite3.Connection, since: str | None, until: str | None, *, scope: Scope) -> list[dict[str, Any]]:
    """Each action recorded, with how many records it has (most first, then by name)."""
    filters = _filters(scope, since, until)
    return [dict(r) for r in conn.execute(
        f"SELECT action, COUNT(*) AS count FROM audit_log{filters.where} GROUP BY action "
        "ORDER BY count DESC, action", filters.args)]


def _cross_layer(conn: sqlite3.Connection, since: str | None, until: str | None,
                 *, scope: Scope) -> list[dict[str, Any]]:
    """For each (user's tenant, tenant acted in) that differ: how many reads and changes, and by how many
    users; most first."""
    filters = _filters(scope, since, until)
    filters.clauses.append("user_tenant_id IS NOT NULL AND user_tenant_id != tenant_id")
    return [dict(r) for r in conn.execute(
        "SELECT user_tenant_id, tenant_id, SUM(kind = 'read') AS reads, SUM(kind = 'change') AS changes, "
        f"COUNT(*) AS total, COUNT(DISTINCT username) AS users, MAX(at) AS last_at FROM audit_log{filters.where} "
        "GROUP BY user_tenant_id, tenant_id ORDER BY total DESC, user_tenant_id, tenant_id", filters.args)]


def rule(retention_days: float) -> Rule:
    """The retention's rule for the records: older than `retention_days` deleted (0: kept for ever)."""
    return Rule("audit_log", "at", retention_days)


class AuditLog(Table):
    record = appended("audit_log", _record_rows)
    # Readers first wait for the records appended before them.
    page = committed(_page, after_appended=True)
    actions = committed(_actions, after_appended=True)
    cross_layer = committed(_cross_layer, after_appended=True)
