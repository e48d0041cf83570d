"""Charging profiles sent per charger and connector, with the answers and what was cleared."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


def _record(conn: sqlite3.Connection, cp_id: str, connector_id: int, profile: dict, status: str,
            request_id: str, at: str) -> None:
    if status == "Accepted":
        # An installed profile with the same id, or the same stack level and purpose on the same
        # connector, is replaced by the new one (OCPP 1.6, 5.16.3).
        conn.execute(
            """UPDATE charging_profiles SET cleared_at = ?
               WHERE charge_point_id = ? AND cleared_at IS NULL
                 AND (profile_id = ? OR (connector_id = ? AND stack_level = ? AND purpose = ?))""",
            (at, cp_id, profile.get("chargingProfileId"), connector_id, profile.get("stackLevel"),
             profile.get("chargingProfilePurpose")),
        )
    conn.execute(
        """INSERT INTO charging_profiles (charge_point_id, connector_id, profile_id, stack_level, purpose, profile,
                                          status, request_id, sent_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (cp_id, connector_id, profile.get("chargingProfileId"), profile.get("stackLevel"),
         profile.get("chargingProfilePurpose"), json.dumps(profile, ensure_ascii=False), status, request_id, at),
    )


def _clear(conn: sqlite3.Connection, cp_id: str, profile_id: int | None, connector_id: int | None,
           purpose: str | None, stack_level: int | None, at: str) -> int:
    """Mark as cleared what ClearChargingProfile with these criteria removes (OCPP 1.6, 5.5)."""
    sql = "UPDATE charging_profiles SET cleared_at = ? WHERE charge_point_id = ? AND cleared_at IS NULL"
    args: list[Any] = [at, cp_id]
    if profile_id is not None:
        sql += " AND profile_id = ?"
        args.append(profile_id)
    else:
        for column, value in (("connector_id", connector_id), ("purpose", purpose), ("stack_level", stack_level)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
    return conn.execute(sql, args).rowcount


def _list(conn: sqlite3.Connection, cp_id: str, active_only: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT * FROM charging_profiles WHERE charge_point_id = ?"
    if active_only:
        sql += " AND cleared_at IS NULL AND status = 'Accepted'"
    rows = conn.execute(sql + " ORDER BY id DESC", (cp_id,))
    return [dict(r, profile=json.loads(r["profile"])) for r in rows]


def _page(conn: sqlite3.Connection, cp_id: str, active_only: bool = False, page: int = 1, size: int = 50,
          *, scope: Scope) -> dict:
    """Newest first."""
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    if active_only:
        filters.clauses.append("cleared_at IS NULL AND status = 'Accepted'")
    return page_of(conn, "charging_profiles", filters, "id DESC", page, size,
                lambda r: dict(r, profile=json.loads(r["profile"])))


class ChargingProfiles(Table, committed=dict(record=_record, clear=_clear, list=_list, page=_page)):
    pass
