"""The providers' bills as read, and what reconciliation needs of ours to compare them with."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable

from .calls import Table

Row = dict[str, Any]
_LINE_COLUMNS = ("kind", "out_trade_no", "provider_trade_no", "amount", "settlement", "fee", "refund_no",
                 "provider_refund_no", "at")


def _save_bill(conn: sqlite3.Connection, channel: str, day: str, lines: list[Row], totals: dict[str, int],
               at: str) -> int:
    """Keep a day's bill, replacing one read before (a bill downloaded again is the same bill, or a corrected one)."""
    conn.execute("DELETE FROM provider_bills WHERE channel = ? AND day = ?", (channel, day))
    bill_id = conn.execute("INSERT INTO provider_bills (channel, day, fetched_at, totals) VALUES (?, ?, ?, ?) "
                           "RETURNING id", (channel, day, at, json.dumps(totals))).fetchone()[0]
    conn.executemany(
        f"INSERT INTO provider_bill_lines (bill_id, {', '.join(_LINE_COLUMNS)}) VALUES (?{', ?' * len(_LINE_COLUMNS)})",
        [(bill_id, *(line[c] for c in _LINE_COLUMNS)) for line in lines])
    return bill_id


def _bill_lines(conn: sqlite3.Connection, channel: str, day: str) -> list[Row] | None:
    """The stored lines of a day's bill, or None when it was never read."""
    bill = conn.execute("SELECT id FROM provider_bills WHERE channel = ? AND day = ?", (channel, day)).fetchone()
    if bill is None:
        return None
    return [dict(r) for r in conn.execute(
        f"SELECT {', '.join(_LINE_COLUMNS)} FROM provider_bill_lines WHERE bill_id = ? ORDER BY id", (bill[0],))]


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _ours(conn: sqlite3.Connection, channel: str, trade_nos: list[str], since: str, until: str) -> dict[str, Any]:
    """Our payments named by a bill (any day) or completed in [since, until), with their refunds; and the
    refunds settled in [since, until)."""
    payments: dict[int, Row] = {}
    for chunk in _chunks(sorted(set(trade_nos))):
        for r in conn.execute(f"SELECT * FROM payments WHERE trade_no IN ({','.join('?' * len(chunk))})", chunk):
            payments[r["id"]] = dict(r)
    for r in conn.execute("SELECT * FROM payments WHERE channel = ? AND status IN ('PAID', 'REFUNDED') "
                          "AND paid_at >= ? AND paid_at < ?", (channel, since, until)):
        payments[r["id"]] = dict(r)
    settled = [dict(r) for r in conn.execute(
        """SELECT r.* FROM refunds r JOIN payments p ON p.id = r.payment_id
           WHERE p.channel = ? AND r.status = 'SUCCESS' AND r.settled_at >= ? AND r.settled_at < ?""",
        (channel, since, until))]
    for r in settled:
        if r["payment_id"] not in payments:
            row = conn.execute("SELECT * FROM payments WHERE id = ?", (r["payment_id"],)).fetchone()
            payments[row["id"]] = dict(row)
    ids = sorted(payments)
    refunds: list[Row] = []
    for chunk in _chunks(ids):
        refunds += [dict(r) for r in conn.execute(
            f"SELECT * FROM refunds WHERE payment_id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk)]
    return {"payments": [payments[i] for i in ids], "refunds": refunds, "settled_refund_ids": [r["id"] for r in settled]}


def _last_day(conn: sqlite3.Connection, channel: str, up_to: str) -> str | None:
    """The latest day up to `up_to` (YYYY-MM-DD) with a kept report."""
    row = conn.execute("SELECT MAX(day) FROM reconciliation_reports WHERE channel = ? AND day <= ?",
                       (channel, up_to)).fetchone()
    return row[0]


class Bills(Table, committed=dict(save=_save_bill, lines=_bill_lines, ours=_ours, last_reconciled_day=_last_day)):
    pass
