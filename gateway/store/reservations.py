"""Reservations: ids, expiry, the charger's answer, and the transaction that used them."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


def _create(conn: sqlite3.Connection, reservation_id: int | None, cp_id: str, connector_id: int, id_tag: str,
            parent_id_tag: str | None, expiry_date: str, request_id: str, at: str) -> int:
    """Record a reservation as requested; with no id, a new one (above every id given so far: ids are also chosen
    by callers, so the next is counted from them, not from a sequence)."""
    cur = conn.execute(
        """INSERT INTO reservations (id, charge_point_id, connector_id, id_tag, parent_id_tag, expiry_date, status,
                                     request_id, created_at, updated_at)
           VALUES (coalesce(?, (SELECT coalesce(max(id), 0) + 1 FROM reservations)), ?, ?, ?, ?, ?, 'Requested', ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET charge_point_id = excluded.charge_point_id,
               connector_id = excluded.connector_id, id_tag = excluded.id_tag,
               parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date,
               status = 'Requested', transaction_id = NULL, request_id = excluded.request_id,
               updated_at = excluded.updated_at
           RETURNING id""",
        (reservation_id, cp_id, connector_id, id_tag, parent_id_tag, expiry_date, request_id, at, at),
    )
    return cur.fetchone()[0]


def _set_status(conn: sqlite3.Connection, reservation_id: int, status: str, at: str) -> None:
    conn.execute("UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?", (status, at, reservation_id))


def _get(conn: sqlite3.Connection, reservation_id: int, *, scope: Scope) -> dict[str, Any] | None:
    where, args = charger_where(scope, "charge_point_id")
    row = conn.execute(f"SELECT * FROM reservations WHERE id = ? AND {where}", (reservation_id, *args)).fetchone()
    return dict(row) if row else None


def _list(conn: sqlite3.Connection, cp_id: str | None = None, status: str | None = None, page: int = 1,
          size: int = 50, *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.add("status = ?", status)
    return page_of(conn, "reservations", filters, "id DESC", page, size)


class Reservations(Table, committed=dict(create=_create, set_status=_set_status, get=_get, list=_list)):
    pass
