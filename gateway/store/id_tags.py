"""The id-tag table that answers Authorize and StartTransaction."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of


def _get(conn: sqlite3.Connection, id_tag: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM id_tags WHERE id_tag = ?", (id_tag,)).fetchone()
    return dict(row) if row else None


def _put(conn: sqlite3.Connection, id_tag: str, status: str = "Accepted", expiry_date: str | None = None,
         parent_id_tag: str | None = None, *, at: str) -> None:
    conn.execute(
        """INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id_tag) DO UPDATE SET status = excluded.status, expiry_date = excluded.expiry_date,
               parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at""",
        (id_tag, status, expiry_date, parent_id_tag, at, at),
    )


def _delete(conn: sqlite3.Connection, id_tag: str) -> bool:
    return conn.execute("DELETE FROM id_tags WHERE id_tag = ?", (id_tag,)).rowcount == 1


def _all(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM id_tags ORDER BY id_tag")]


def _list(conn: sqlite3.Connection, status: str | None = None, page: int = 1, size: int = 50) -> dict:
    filters = Filters()
    filters.add("status = ?", status)
    return page_of(conn, "id_tags", filters, "id_tag", page, size)


class IdTags(Table, committed=dict(get=_get, put=_put, delete=_delete, all=_all, list=_list)):
    pass
