"""Every command sent to a charger, with its answer or error and its latency."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import Table
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


def _begin(conn: sqlite3.Connection, request_id: str, cp_id: str, action: str, payload: dict, at: str) -> None:
    """Note a command as sent (rides on the next commit; finish() always lands after it)."""
    conn.execute(
        "INSERT INTO commands (request_id, charge_point_id, action, payload, sent_at) VALUES (?, ?, ?, ?, ?)",
        (request_id, cp_id, action, json.dumps(payload, ensure_ascii=False), at),
    )


def _finish(conn: sqlite3.Connection, request_id: str, outcome: str, result: dict | None,
            error: tuple[str, str, dict] | None, at: str, latency_ms: float) -> None:
    """Note the command's outcome. Like begin(), it rides on the next commit instead of holding
    the operator's answer for one: every later read sees it (one connection, jobs in order)."""
    code, description, details = error or (None, None, None)
    conn.execute(
        """UPDATE commands SET outcome = ?, result = ?, error_code = ?, error_description = ?,
                               error_details = ?, finished_at = ?, latency_ms = ?
           WHERE request_id = ?""",
        (outcome, json.dumps(result, ensure_ascii=False) if result is not None else None, code, description,
         json.dumps(details, ensure_ascii=False) if details is not None else None, at, latency_ms, request_id),
    )


def _shape(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("payload", "result", "error_details"):
        if out[key] is not None:
            out[key] = json.loads(out[key])
    return out


def _list(conn: sqlite3.Connection, cp_id: str | None = None, action: str | None = None, page: int = 1,
          size: int = 50, *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.add("action = ?", action)
    return page_of(conn, "commands", filters, "id DESC", page, size, _shape)


def _get(conn: sqlite3.Connection, request_id: str, *, scope: Scope) -> dict[str, Any] | None:
    where, args = charger_where(scope, "charge_point_id")
    row = conn.execute(f"SELECT * FROM commands WHERE request_id = ? AND {where}", (request_id, *args)).fetchone()
    return _shape(row) if row else None


class Commands(Table, committed=dict(list=_list, get=_get), batched=dict(begin=_begin, finish=_finish)):
    pass
