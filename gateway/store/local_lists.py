"""Local authorization lists sent to each charger, with their versions and the answers."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


def _next_version(conn: sqlite3.Connection, cp_id: str) -> int:
    row = conn.execute("SELECT MAX(list_version) FROM local_lists WHERE charge_point_id = ?", (cp_id,)).fetchone()
    return (row[0] or 0) + 1


def _record_sent(conn: sqlite3.Connection, cp_id: str, version: int | None, update_type: str, entries: list,
                 request_id: str, at: str) -> int:
    """Record a list as being sent; with no version, take the next one (in the same job, so two
    lists sent at once never get the same version)."""
    if version is None:
        version = _next_version(conn, cp_id)
    conn.execute(
        """INSERT INTO local_lists (charge_point_id, list_version, update_type, entries, status, request_id, sent_at)
           VALUES (?, ?, ?, ?, 'pending', ?, ?)""",
        (cp_id, version, update_type, json.dumps(entries, ensure_ascii=False), request_id, at),
    )
    return version


def _set_status(conn: sqlite3.Connection, request_id: str, status: str) -> None:
    conn.execute("UPDATE local_lists SET status = ? WHERE request_id = ?", (status, request_id))


def _list(conn: sqlite3.Connection, cp_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM local_lists WHERE charge_point_id = ? ORDER BY id DESC", (cp_id,))
    return [dict(r, entries=json.loads(r["entries"])) for r in rows]


def _page(conn: sqlite3.Connection, cp_id: str, page: int = 1, size: int = 50, *, scope: Scope) -> dict:
    """Newest first."""
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    return page_of(conn, "local_lists", filters, "id DESC", page, size,
                lambda r: dict(r, entries=json.loads(r["entries"])))


class LocalLists(Table, committed=dict(
        next_version=_next_version, record_sent=_record_sent, set_status=_set_status, list=_list, page=_page)):
    pass
