"""Transactions and their meter values."""

from __future__ import annotations

import enum
import sqlite3
from typing import Any

from ..jsontext import to_json
from .writer.rows import meter_values
from .calls import Table, appended, committed
from .paging import Filters, page as page_of
from .registry import charger_where
from .scope import Scope


# A MeterValues' meterValue (or a StopTransaction's transactionData) as the charger sent it:
# [{"timestamp": ..., "sampledValue": [{"value": ..., "measurand": ...}, ...]}, ...]
MeterValue = list[dict[str, Any]]


class StopOutcome(str, enum.Enum):
    CLOSED = "closed"  # an open transaction of this charger was closed
    RECORDED_UNKNOWN = "recorded_unknown"  # never seen starting: recorded from the stop alone
    ALREADY_STOPPED = "already_stopped"  # a repeated stop: the first one is kept
    OTHER_CHARGER = "other_charger"  # the id belongs to another charger: left untouched
    NOT_RECORDED = "not_recorded"  # never seen, and its id beyond MAX_RECORDED_ID: not kept under it


# A stop for a transaction never seen starting is kept under the charger's id, and ids handed out
# afterwards continue above it (AUTOINCREMENT). An id beyond 32 bits would push every later
# transaction beyond what many chargers can hold, and 2**63 - 1 would leave none to hand out.
MAX_RECORDED_ID = 2**31 - 1


def _start(conn: sqlite3.Connection, cp_id: str, connector_id: int, id_tag: str, id_tag_status: str,
           meter_start: int | None, timestamp: str | None, reservation_id: int | None,
           at: str, remote_start_request_id: str | None = None) -> int:
    """Insert and commit a transaction; return its id (always > 0, never reused)."""
    if timestamp is not None:
        # A charger that missed our answer sends the same StartTransaction again: while that
        # transaction is open it is the same session, so it gets the same id (and the same order),
        # never a second transaction. Once stopped, an identical start (a charger whose clock is
        # not set and whose meter starts at 0) is a new session.
        same = conn.execute(
            """SELECT id FROM transactions WHERE charge_point_id = ? AND start_timestamp = ? AND connector_id = ?
                   AND id_tag = ? AND meter_start IS NOT DISTINCT FROM ? AND stopped_at IS NULL ORDER BY id DESC LIMIT 1""",
            (cp_id, timestamp, connector_id, id_tag, meter_start)).fetchone()
        if same is not None:
            return same[0]
    cur = conn.execute(
        """INSERT INTO transactions (charge_point_id, connector_id, id_tag, id_tag_status, meter_start,
                                     start_timestamp, reservation_id, remote_start_request_id, started_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (cp_id, connector_id, id_tag, id_tag_status, meter_start, timestamp, reservation_id,
         remote_start_request_id, at),
    )
    transaction_id = cur.fetchone()[0]
    if reservation_id is not None:  # the reservation is used up by this transaction
        conn.execute(
            "UPDATE reservations SET status = 'Used', transaction_id = ?, updated_at = ? "
            "WHERE id = ? AND charge_point_id = ?",
            (transaction_id, at, reservation_id, cp_id),
        )
    return transaction_id


def _stop(conn: sqlite3.Connection, cp_id: str, transaction_id: int, meter_stop: int | None,
          timestamp: str | None, reason: str | None, id_tag: str | None, at: str) -> StopOutcome:
    row = conn.execute(
        "SELECT charge_point_id, meter_start, stopped_at FROM transactions WHERE id = ?", (transaction_id,)
    ).fetchone()
    if row is None:
        # A transaction from before a restart of ours, or one we never heard start.
        if transaction_id > MAX_RECORDED_ID:
            return StopOutcome.NOT_RECORDED
        conn.execute(
            """INSERT INTO transactions (id, charge_point_id, meter_stop, stop_timestamp, stop_reason,
                                         stop_id_tag, id_tag, stopped_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (transaction_id, cp_id, meter_stop, timestamp, reason, id_tag, id_tag, at),
        )
        return StopOutcome.RECORDED_UNKNOWN
    if row["charge_point_id"] != cp_id:
        return StopOutcome.OTHER_CHARGER
    if row["stopped_at"] is not None:
        return StopOutcome.ALREADY_STOPPED
    energy = None
    if meter_stop is not None and row["meter_start"] is not None:
        energy = meter_stop - row["meter_start"]
        if not -2**63 <= energy < 2**63:  # two extreme readings: the difference is no energy anyone used
            energy = None
    conn.execute(
        """UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, stop_reason = ?, stop_id_tag = ?,
                                   stopped_at = ?, energy_wh = ?
           WHERE id = ?""",
        (meter_stop, timestamp, reason, id_tag, at, energy, transaction_id),
    )
    return StopOutcome.CLOSED


def _stop_with_data(conn: sqlite3.Connection, cp_id: str, transaction_id: int, meter_stop: int | None,
                    timestamp: str | None, reason: str | None, id_tag: str | None,
                    transaction_data: MeterValue, at: str) -> StopOutcome:
    """Record a StopTransaction and its transactionData. What the charger said before the stop is committed
    before it (after_appended): billing prices the session from the meter values as soon as the stop is recorded."""
    result = _stop(conn, cp_id, transaction_id, meter_stop, timestamp, reason, id_tag, at)
    if transaction_data and result not in (StopOutcome.OTHER_CHARGER, StopOutcome.NOT_RECORDED):
        connector = conn.execute("SELECT connector_id FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
        meter_values(conn, [(cp_id, connector[0] if connector else None, transaction_id, "StopTransaction",
                                     at, to_json(transaction_data))])
    return result


def _get(conn: sqlite3.Connection, transaction_id: int, *, scope: Scope) -> dict[str, Any] | None:
    where, args = charger_where(scope, "charge_point_id")
    row = conn.execute(f"SELECT * FROM transactions WHERE id = ? AND {where}", (transaction_id, *args)).fetchone()
    return dict(row) if row else None


def _list(conn: sqlite3.Connection, cp_id: str | None = None, state: str | None = None, since: str | None = None,
          until: str | None = None, page: int = 1, size: int = 50, *, scope: Scope) -> dict:
    filters = Filters()
    filters.within(charger_where(scope, "charge_point_id"))
    filters.add("charge_point_id = ?", cp_id)
    filters.clauses += {"open": ["stopped_at IS NULL"], "closed": ["stopped_at IS NOT NULL"]}.get(state, [])
    # A transaction recorded from its stop alone has no start: its stop places it in time.
    filters.add("COALESCE(started_at, stopped_at) >= ?", since)
    filters.add("COALESCE(started_at, stopped_at) < ?", until)
    return page_of(conn, "transactions", filters, "id DESC", page, size)


def _count_open(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM transactions WHERE stopped_at IS NULL").fetchone()[0]


def _meter_value_rows(cp_id: str, connector_id: int | None, transaction_id: int | None, meter_value: MeterValue,
                      at: str) -> list[tuple]:
    """Queue a MeterValues message's values; they are committed with the next batch, not before the
    charger's answer (ARCHITECTURE.md: frames and meter values are batched, transaction starts and
    stops are not). Raises StoreUnavailable, keeping nothing, while the file fails the appender:
    the charger is told to send them again rather than told they were kept."""
    return [(cp_id, connector_id, transaction_id, "MeterValues", at, to_json(meter_value))] if meter_value else []


def _samples(conn: sqlite3.Connection, transaction_id: int, *, scope: Scope) -> list[dict[str, Any]]:
    where, args = charger_where(scope, "charge_point_id")
    return [dict(r) for r in conn.execute(
        f"SELECT * FROM meter_values WHERE transaction_id = ? AND {where} ORDER BY id", (transaction_id, *args)
    )]


class Transactions(Table, committed=dict(start=_start, get=_get, list=_list, count_open=_count_open)):
    stop = committed(_stop_with_data, after_appended=True)
    add_meter_values = appended("meter_values", _meter_value_rows)
    samples = committed(_samples, after_appended=True)
