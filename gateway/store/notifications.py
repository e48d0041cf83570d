"""Firmware, diagnostics, log, security-event, certificate and data-transfer reports."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


def _add(conn: sqlite3.Connection, cp_id: str, action: str, status: str | None, payload: dict[str, Any], *,
         at: str, request_id: int | None = None, timestamp: str | None = None) -> int:
    cur = conn.execute(
        """INSERT INTO notifications (charge_point_id, action, status, request_id, timestamp, payload, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (cp_id, action, status, request_id, timestamp, json.dumps(payload, ensure_ascii=False), at),
    )
    return cur.fetchone()[0]


def _list(conn: sqlite3.Connection, cp_id: str, action: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM notifications WHERE charge_point_id = ?"
    args: list[Any] = [cp_id]
    if action:
        sql += " AND action = ?"
        args.append(action)
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    return [dict(r, payload=json.loads(r["payload"])) for r in rows]


def _shape(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row, payload=json.loads(row["payload"]))


def _page(conn: sqlite3.Connection, cp_id: str, action: str | None = None, page: int = 1, size: int = 50,
          *, scope: Scope) -> dict:
    """Newest first."""
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.add("action = ?", action)
    return page_of(conn, "notifications", filters, "id DESC", page, size, _shape)


class Notifications(Table, committed=dict(add=_add, list=_list, page=_page)):
    pass
