"""YKC piles' sessions: the serial the gateway issued, the transaction it became, the pile's record."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table
from .scope import Scope

_TENANT = ("coalesce((SELECT r.tenant_id FROM charger_registry r WHERE r.charge_point_id = y.charge_point_id), 1)")


def _sees(conn: sqlite3.Connection, cp_id: str, scope: Scope) -> bool:
    """Whether the charger `cp_id` is one of the scope's (the chargers' own loops see every one)."""
    row = conn.execute("SELECT tenant_id FROM charger_registry WHERE charge_point_id = ?", (cp_id,)).fetchone()
    return scope.sees(row[0] if row else None)


def _issue(conn: sqlite3.Connection, serial: str, cp_id: str, gun: int, id_tag: str, at: str, *,
           scope: Scope) -> None:
    """A serial sent with a remote start, before the pile hears of it."""
    if not _sees(conn, cp_id, scope):
        return
    conn.execute("INSERT INTO ykc_sessions (serial, charge_point_id, gun, id_tag, created_at) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (serial, cp_id, gun, id_tag, at))


def _started(conn: sqlite3.Connection, serial: str, cp_id: str, gun: int, transaction_id: int, at: str, *,
             scope: Scope) -> None:
    """The serial's session is transaction `transaction_id`."""
    if not _sees(conn, cp_id, scope):
        return
    conn.execute("INSERT INTO ykc_sessions (serial, charge_point_id, gun, transaction_id, created_at) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET transaction_id = excluded.transaction_id",
                 (serial, cp_id, gun, transaction_id, at))


def _get(conn: sqlite3.Connection, serial: str, *, scope: Scope) -> dict[str, Any] | None:
    where, params = scope.where(_TENANT)
    row = conn.execute(f"SELECT * FROM ykc_sessions y WHERE serial = ? AND {where}", (serial, *params)).fetchone()
    return dict(row) if row else None


def _by_transaction(conn: sqlite3.Connection, transaction_id: int, *, scope: Scope) -> dict[str, Any] | None:
    where, params = scope.where(_TENANT)
    row = conn.execute(f"SELECT * FROM ykc_sessions y WHERE transaction_id = ? AND {where}",
                       (transaction_id, *params)).fetchone()
    return dict(row) if row else None


def _recorded(conn: sqlite3.Connection, serial: str, cp_id: str, gun: int, stop_reason: int, stop_reason_text: str,
              record: str, at: str, *, scope: Scope) -> bool:
    """Keep the pile's transaction record; False when it was kept already (a pile sends it again until acknowledged)."""
    if not _sees(conn, cp_id, scope):
        return False
    conn.execute("INSERT INTO ykc_sessions (serial, charge_point_id, gun, created_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT DO NOTHING",
                 (serial, cp_id, gun, at))
    cur = conn.execute("UPDATE ykc_sessions SET stop_reason = ?, stop_reason_text = ?, record = ?, recorded_at = ? "
                       "WHERE serial = ? AND record IS NULL", (stop_reason, stop_reason_text, record, at, serial))
    return cur.rowcount == 1


class YkcSessions(Table, committed=dict(issue=_issue, started=_started, get=_get, by_transaction=_by_transaction,
                                        recorded=_recorded)):
    pass
