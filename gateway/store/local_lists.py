"""Local authorization lists sent to each charger, with their versions and the answers."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import Database


def _next_version(conn: sqlite3.Connection, cp_id: str) -> int:
    row = conn.execute("SELECT MAX(list_version) FROM local_lists WHERE charge_point_id = ?", (cp_id,)).fetchone()
    return (row[0] or 0) + 1


def _record(conn: sqlite3.Connection, cp_id: str, version: int, update_type: str, entries: list, status: str,
            request_id: str, at: str) -> None:
    conn.execute(
        """INSERT INTO local_lists (charge_point_id, list_version, update_type, entries, status, request_id, sent_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (cp_id, version, update_type, json.dumps(entries, ensure_ascii=False), status, request_id, at),
    )


def _list(conn: sqlite3.Connection, cp_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM local_lists WHERE charge_point_id = ? ORDER BY id DESC", (cp_id,))
    return [dict(r, entries=json.loads(r["entries"])) for r in rows]


class LocalLists:
    def __init__(self, db: Database):
        self._db = db

    async def next_version(self, cp_id: str) -> int:
        return await self._db.run(_next_version, cp_id)

    async def record(self, cp_id: str, version: int, update_type: str, entries: list, status: str,
                     request_id: str, at: str) -> None:
        await self._db.run(_record, cp_id, version, update_type, entries, status, request_id, at)

    async def list(self, cp_id: str) -> list[dict[str, Any]]:
        return await self._db.run(_list, cp_id)
