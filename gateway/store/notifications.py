"""Firmware, diagnostics, log, security-event, certificate and data-transfer reports."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import Database
from .paging import Filters, page


def _add(conn: sqlite3.Connection, cp_id: str, action: str, status: str | None, request_id: int | None,
         timestamp: str | None, payload: dict[str, Any], at: str) -> int:
    cur = conn.execute(
        """INSERT INTO notifications (charge_point_id, action, status, request_id, timestamp, payload, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (cp_id, action, status, request_id, timestamp, json.dumps(payload, ensure_ascii=False), at),
    )
    return cur.lastrowid


def _list(conn: sqlite3.Connection, cp_id: str, action: str | None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM notifications WHERE charge_point_id = ?"
    args: list[Any] = [cp_id]
    if action:
        sql += " AND action = ?"
        args.append(action)
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    return [dict(r, payload=json.loads(r["payload"])) for r in rows]


def _shape(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row, payload=json.loads(row["payload"]))


def _page(conn: sqlite3.Connection, cp_id: str, action: str | None, number: int, size: int) -> dict:
    filters = Filters()
    filters.add("charge_point_id = ?", cp_id)
    filters.add("action = ?", action)
    return page(conn, "notifications", filters, "id DESC", number, size, _shape)


class Notifications:
    def __init__(self, db: Database):
        self._db = db

    async def add(self, cp_id: str, action: str, status: str | None, payload: dict[str, Any], *,
                  at: str, request_id: int | None = None, timestamp: str | None = None) -> int:
        return await self._db.run(_add, cp_id, action, status, request_id, timestamp, payload, at)

    async def list(self, cp_id: str, action: str | None = None) -> list[dict[str, Any]]:
        return await self._db.run(_list, cp_id, action)

    async def page(self, cp_id: str, action: str | None = None, page: int = 1, size: int = 50) -> dict:
        """Newest first."""
        return await self._db.run(_page, cp_id, action, page, size)
