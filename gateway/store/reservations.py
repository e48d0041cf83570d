"""Reservations: ids, expiry, the charger's answer, and the transaction that used them."""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import Database
from .paging import Filters, page


def _create(conn: sqlite3.Connection, reservation_id: int | None, cp_id: str, connector_id: int, id_tag: str,
            parent_id_tag: str | None, expiry_date: str, request_id: str, at: str) -> int:
    cur = conn.execute(
        """INSERT INTO reservations (id, charge_point_id, connector_id, id_tag, parent_id_tag, expiry_date, status,
                                     request_id, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'Requested', ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET charge_point_id = excluded.charge_point_id,
               connector_id = excluded.connector_id, id_tag = excluded.id_tag,
               parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date,
               status = 'Requested', transaction_id = NULL, request_id = excluded.request_id,
               updated_at = excluded.updated_at""",
        (reservation_id, cp_id, connector_id, id_tag, parent_id_tag, expiry_date, request_id, at, at),
    )
    return reservation_id if reservation_id is not None else cur.lastrowid


def _set_status(conn: sqlite3.Connection, reservation_id: int, status: str, at: str) -> None:
    conn.execute("UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?", (status, at, reservation_id))


def _get(conn: sqlite3.Connection, reservation_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
    return dict(row) if row else None


def _list(conn: sqlite3.Connection, cp_id: str | None, status: str | None, number: int, size: int) -> dict:
    filters = Filters()
    filters.add("charge_point_id = ?", cp_id)
    filters.add("status = ?", status)
    return page(conn, "reservations", filters, "id DESC", number, size)


class Reservations:
    def __init__(self, db: Database):
        self._db = db

    async def create(self, reservation_id: int | None, cp_id: str, connector_id: int, id_tag: str,
                     parent_id_tag: str | None, expiry_date: str, request_id: str, at: str) -> int:
        """Record a reservation as requested; with no id, a new one that was never handed out."""
        return await self._db.run(_create, reservation_id, cp_id, connector_id, id_tag, parent_id_tag,
                                  expiry_date, request_id, at)

    async def set_status(self, reservation_id: int, status: str, at: str) -> None:
        await self._db.run(_set_status, reservation_id, status, at)

    async def get(self, reservation_id: int) -> dict[str, Any] | None:
        return await self._db.run(_get, reservation_id)

    async def list(self, cp_id: str | None = None, status: str | None = None, page: int = 1,
                   size: int = 50) -> dict:
        return await self._db.run(_list, cp_id, status, page, size)
