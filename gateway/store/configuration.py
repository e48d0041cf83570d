"""The charger's configuration snapshot (GetConfiguration answers, accepted ChangeConfiguration)."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .registry import charger_where
from .scope import Scope


def _replace(conn: sqlite3.Connection, cp_id: str, keys: list[dict[str, Any]], unknown: list[str],
             complete: bool, at: str) -> None:
    """Store a GetConfiguration answer; keys the charger says it does not know are dropped."""
    if complete:  # an answer to "all keys" is the whole truth
        conn.execute("DELETE FROM configuration WHERE charge_point_id = ?", (cp_id,))
    conn.executemany("DELETE FROM configuration WHERE charge_point_id = ? AND key = ?",
                     [(cp_id, key) for key in unknown if isinstance(key, str)])
    conn.executemany(
        """INSERT INTO configuration (charge_point_id, key, value, readonly, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (charge_point_id, key) DO UPDATE SET value = excluded.value,
               readonly = excluded.readonly, updated_at = excluded.updated_at""",
        [(cp_id, k["key"], k.get("value"), int(bool(k["readonly"])) if "readonly" in k else None, at)
         for k in keys if isinstance(k, dict) and isinstance(k.get("key"), str)],
    )


def _set(conn: sqlite3.Connection, cp_id: str, key: str, value: str, at: str) -> None:
    conn.execute(
        """INSERT INTO configuration (charge_point_id, key, value, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (charge_point_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
        (cp_id, key, value, at),
    )


def _get(conn: sqlite3.Connection, cp_id: str, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = charger_where(scope, "charge_point_id")
    rows = conn.execute(
        f"SELECT key, value, readonly, updated_at FROM configuration WHERE charge_point_id = ? AND {where} ORDER BY key",
        (cp_id, *args))
    return [{**dict(r), "readonly": None if r["readonly"] is None else bool(r["readonly"])} for r in rows]


class Configuration(Table, committed=dict(replace=_replace, set=_set, get=_get)):
    pass
