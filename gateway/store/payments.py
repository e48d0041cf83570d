"""Payments, refunds, provider callbacks and reconciliation reports.

Every change that touches a payment and its order is one job, so the two never disagree
after a crash; the order's own rules are applied through orders.transition.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import Database
from .orders import _history, transition

Row = dict[str, Any]


def _one(conn: sqlite3.Connection, sql: str, args: tuple) -> Row | None:
    row = conn.execute(sql, args).fetchone()
    return dict(row) if row else None


def _payment(conn: sqlite3.Connection, column: str, value: Any) -> Row | None:
    assert column in ("id", "trade_no", "idempotency_key")
    return _one(conn, f"SELECT * FROM payments WHERE {column} = ?", (value,))


def _order(conn: sqlite3.Connection, order_id: int) -> Row | None:
    return _one(conn, "SELECT * FROM orders WHERE id = ?", (order_id,))


def _keyed_or_missing(conn: sqlite3.Connection, order_id: int, key: str | None) -> tuple | None:
    """The answer when the idempotency key was used before, or the order does not exist; else None."""
    if key is not None:
        existing = _payment(conn, "idempotency_key", key)
        if existing is not None:
            return "existing", existing, _order(conn, existing["order_id"])
    if _order(conn, order_id) is None:
        return "missing", None, None
    return None


def _create(conn: sqlite3.Connection, order_id: int, channel: str, key: str | None, created_by: str | None,
            day: str, at: str) -> tuple[str, Row | None, Row | None]:
    """("created" | "existing" | "conflict" | "missing", payment, order).

    An order that is completed moves to awaiting payment; one already awaiting payment may get
    another payment (the payer switched channels). An open payment of the same channel, or one
    made with the same idempotency key, is handed back instead of a second one."""
    found = _keyed_or_missing(conn, order_id, key)
    if found is not None:
        return found
    order = _order(conn, order_id)
    if key is None:
        open_one = _one(conn, "SELECT * FROM payments WHERE order_id = ? AND channel = ? AND status = 'CREATED' "
                              "ORDER BY id DESC LIMIT 1", (order_id, channel))
        if open_one is not None:
            return "existing", open_one, order
    if order["status"] == 1:
        _, order = transition(conn, order_id, 10, (1,), f"payment requested ({channel})", at)
    elif order["status"] != 10:
        return "conflict", None, order
    cur = conn.execute(
        """INSERT INTO payments (order_id, channel, amount, currency, idempotency_key, created_by, created_at,
                                 updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (order_id, channel, order["total_amount"], order["currency"], key, created_by, at, at))
    conn.execute("UPDATE payments SET trade_no = ? WHERE id = ?", (f"PAY-{day}-{cur.lastrowid:06d}", cur.lastrowid))
    return "created", _payment(conn, "id", cur.lastrowid), order


def _update(conn: sqlite3.Connection, payment_id: int, fields: dict[str, Any], at: str) -> Row | None:
    sets = {**fields, "updated_at": at}
    conn.execute(f"UPDATE payments SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                 (*sets.values(), payment_id))
    return _payment(conn, "id", payment_id)


def mark_paid(conn: sqlite3.Connection, payment_id: int, provider_trade_no: str | None, cause: str,
              at: str) -> tuple[str, Row | None, Row | None]:
    """("changed" | "same" | "order_not_payable", payment, order). The money arrived either way,
    so the payment is recorded as paid even when its order can no longer take it (it was
    cancelled): reconciliation reports that one for a refund."""
    payment = _payment(conn, "id", payment_id)
    if payment is None:
        return "missing", None, None
    if payment["status"] in ("PAID", "REFUNDED"):
        return "same", payment, _order(conn, payment["order_id"])
    payment = _update(conn, payment_id, {"status": "PAID", "paid_at": at, "provider_trade_no":
                                         provider_trade_no or payment["provider_trade_no"]}, at)
    result, order = transition(conn, payment["order_id"], 11, (10,), f"{cause}: {payment['trade_no']}", at,
                               {"paid_amount": payment["amount"], "paid_payment_id": payment_id})
    if result == "same":  # paid twice (two channels): the order keeps the first; reconciliation reports it
        return "order_already_paid", payment, order
    return ("changed" if result == "changed" else "order_not_payable"), payment, order


def _close_payment(conn: sqlite3.Connection, payment_id: int, at: str) -> str:
    payment = _payment(conn, "id", payment_id)
    if payment is None or payment["status"] != "CREATED":
        return "same"
    _update(conn, payment_id, {"status": "CLOSED"}, at)
    return "changed"


def _paid_manually(conn: sqlite3.Connection, order_id: int, created_by: str | None, note: str | None,
                   key: str | None, from_completed: bool, day: str, at: str) -> tuple[str, Row | None, Row | None]:
    """The operator took the money (cash, a card terminal): a manual payment, paid, in one job.
    `from_completed`: a completed order goes through awaiting payment on the way."""
    found = _keyed_or_missing(conn, order_id, key)
    if found is not None:
        return found
    order = _order(conn, order_id)
    if order["status"] == 11 and key is None:
        return "same", None, order
    if not (order["status"] == 10 or (from_completed and order["status"] == 1)):
        return "conflict", None, order
    result, payment, order = _create(conn, order_id, "manual", key, created_by, day, at)
    if note:
        _update(conn, payment["id"], {"note": note}, at)
    return mark_paid(conn, payment["id"], None, "paid (manual)", at)


def _fail_unopened(conn: sqlite3.Connection, payment_id: int, note: str, at: str) -> Row | None:
    """The provider could not open the trade; a concurrent attempt that did open it wins."""
    conn.execute("UPDATE payments SET status = 'FAILED', note = ?, updated_at = ? "
                 "WHERE id = ? AND status = 'CREATED' AND pay_url IS NULL", (note, at, payment_id))
    return _payment(conn, "id", payment_id)


def _start_refund(conn: sqlite3.Connection, payment_id: int, reason: str | None, day: str,
                  at: str) -> tuple[str, Row | None, Row | None]:
    """("created" | "pending" | "done" | "conflict" | "missing", refund, payment). Full refunds only."""
    payment = _payment(conn, "id", payment_id)
    if payment is None:
        return "missing", None, None
    last = _one(conn, "SELECT * FROM refunds WHERE payment_id = ? ORDER BY id DESC LIMIT 1", (payment_id,))
    if payment["status"] == "REFUNDED":
        return "done", last, payment
    if last is not None and last["status"] == "PROCESSING":
        return "pending", last, payment
    if payment["status"] != "PAID":
        return "conflict", None, payment
    order = _order(conn, payment["order_id"])
    if order["paid_payment_id"] == payment_id:
        if order["status"] == 11:
            transition(conn, order["id"], 12, (11,), f"refund requested: {reason or 'no reason given'}", at)
        elif order["status"] != 12:
            return "conflict", None, payment
    else:  # money the order did not take (a second payment, or one after it was cancelled): refunded apart
        _history(conn, order["id"], order["status"], order["status"],
                 f"refund of payment {payment['trade_no']}, which the order did not take, requested", at)
    cur = conn.execute(
        """INSERT INTO refunds (payment_id, order_id, amount, reason, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)""", (payment_id, payment["order_id"], payment["amount"], reason, at, at))
    conn.execute("UPDATE refunds SET refund_no = ? WHERE id = ?", (f"REF-{day}-{cur.lastrowid:06d}", cur.lastrowid))
    return "created", _one(conn, "SELECT * FROM refunds WHERE id = ?", (cur.lastrowid,)), payment


def settle_refund(conn: sqlite3.Connection, refund_id: int, status: str, provider_refund_id: str | None,
                  cause: str, at: str) -> tuple[str, Row | None]:
    """A refund's final word: SUCCESS refunds the payment and its order (12 -> 13); ABNORMAL and
    CLOSED leave the order refunding, for an operator to retry or settle by hand."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return "missing", None
    if refund["status"] != "PROCESSING":
        return "same", refund
    conn.execute("UPDATE refunds SET status = ?, provider_refund_id = COALESCE(?, provider_refund_id), "
                 "settled_at = ?, updated_at = ? WHERE id = ?", (status, provider_refund_id, at, at, refund_id))
    if status == "SUCCESS":
        _update(conn, refund["payment_id"], {"status": "REFUNDED"}, at)
        order = _order(conn, refund["order_id"])
        if order["paid_payment_id"] == refund["payment_id"]:
            transition(conn, refund["order_id"], 13, (12,), f"{cause}: {refund['refund_no']}", at,
                       {"refunded_amount": refund["amount"]})
        else:
            _history(conn, order["id"], order["status"], order["status"], f"{cause}: {refund['refund_no']} "
                     "(a payment the order did not take)", at)
    return "changed", _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _set_refund_provider_id(conn: sqlite3.Connection, refund_id: int, provider_refund_id: str, at: str) -> Row | None:
    conn.execute("UPDATE refunds SET provider_refund_id = ?, updated_at = ? WHERE id = ?",
                 (provider_refund_id, at, refund_id))
    return _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


# ---- provider callbacks ----------------------------------------------------------------

def _store_callback(conn: sqlite3.Connection, channel: str, kind: str, headers: dict[str, str], body: bytes,
                    remote_addr: str | None, at: str) -> int:
    cur = conn.execute(
        """INSERT INTO payment_callbacks (channel, kind, headers, body, remote_addr, received_at)
           VALUES (?, ?, ?, ?, ?, ?)""", (channel, kind, json.dumps(headers), body, remote_addr, at))
    return cur.lastrowid


def _callback(conn: sqlite3.Connection, callback_id: int) -> Row | None:
    row = _one(conn, "SELECT * FROM payment_callbacks WHERE id = ?", (callback_id,))
    if row is not None:
        row["headers"] = json.loads(row["headers"])
    return row


def _pending_callbacks(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM payment_callbacks WHERE status = 'received' ORDER BY id")]


def _finish(conn: sqlite3.Connection, callback_id: int, status: str, notify_id: str | None, trade_no: str | None,
            reason: str | None, at: str) -> None:
    conn.execute("UPDATE payment_callbacks SET status = ?, notify_id = ?, trade_no = ?, reason = ?, "
                 "processed_at = ? WHERE id = ?", (status, notify_id, trade_no, reason, at, callback_id))


def _apply_callback(conn: sqlite3.Connection, callback_id: int, notify_id: str, trade_no: str | None,
                    effect: tuple, at: str) -> str:
    """Apply a verified callback's effect and mark it processed, in one transaction; a callback
    whose notify id was processed before is marked duplicate and changes nothing."""
    callback = _callback(conn, callback_id)
    if callback["status"] != "received":
        return callback["status"]  # processed before a restart could tell the provider
    earlier = conn.execute("SELECT 1 FROM payment_callbacks WHERE channel = ? AND notify_id = ? "
                           "AND status = 'processed' AND id != ?", (callback["channel"], notify_id, callback_id))
    if earlier.fetchone():
        _finish(conn, callback_id, "duplicate", notify_id, trade_no, "already processed", at)
        return "duplicate"
    kind, *args = effect
    if kind == "pay":
        result, _, _ = mark_paid(conn, args[0], args[1], f"paid ({callback['channel']} callback)", at)
    elif kind == "refund":
        result, _ = settle_refund(conn, args[0], args[1], args[2], f"refund {args[1]} ({callback['channel']} callback)",
                                  at)
    elif kind == "close":
        result = _close_payment(conn, args[0], at)
    else:
        result = "nothing to do"
    _finish(conn, callback_id, "processed", notify_id, trade_no, f"{kind}: {result}", at)
    return "processed"


def _refuse(conn: sqlite3.Connection, callback_id: int, notify_id: str | None, trade_no: str | None, reason: str,
            at: str) -> None:
    _finish(conn, callback_id, "refused", notify_id, trade_no, reason, at)


# ---- reading ---------------------------------------------------------------------------

def _of_order(conn: sqlite3.Connection, order_id: int) -> tuple[list[Row], list[Row]]:
    payments = [dict(r) for r in conn.execute("SELECT * FROM payments WHERE order_id = ? ORDER BY id", (order_id,))]
    refunds = [dict(r) for r in conn.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,))]
    return payments, refunds


def _refund(conn: sqlite3.Connection, column: str, value: Any) -> Row | None:
    assert column in ("id", "refund_no")
    return _one(conn, f"SELECT * FROM refunds WHERE {column} = ?", (value,))


def _for_reconciliation(conn: sqlite3.Connection, channel: str, since: str, until: str) -> dict[str, list[Row]]:
    """The channel's payments created, paid or refunded in [since, until) or with a refund still
    in progress, their orders and refunds, and the orders marked paid in that window that have no
    paid payment at all."""
    payments = [dict(r) for r in conn.execute(
        """SELECT * FROM payments WHERE channel = ? AND ((created_at >= ? AND created_at < ?)
                                                       OR (paid_at >= ? AND paid_at < ?)
                                                       OR id IN (SELECT payment_id FROM refunds
                                                                 WHERE (created_at >= ? AND created_at < ?)
                                                                    OR (settled_at >= ? AND settled_at < ?)
                                                                    OR (status = 'PROCESSING' AND created_at < ?)))
           ORDER BY id""",
        (channel, since, until, since, until, since, until, since, until, until))]
    order_ids = sorted({p["order_id"] for p in payments})
    marks = ",".join("?" * len(order_ids))
    orders = [dict(r) for r in conn.execute(f"SELECT * FROM orders WHERE id IN ({marks})", order_ids)]
    refunds = [dict(r) for r in conn.execute(f"SELECT * FROM refunds WHERE order_id IN ({marks})", order_ids)]
    paid_without_payment = [dict(r) for r in conn.execute(
        """SELECT o.* FROM orders o WHERE o.status IN (11, 12, 13)
             AND o.id IN (SELECT order_id FROM order_history WHERE to_status = 11 AND at >= ? AND at < ?)
             AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status IN ('PAID', 'REFUNDED'))""",
        (since, until))]
    return {"payments": payments, "orders": orders, "refunds": refunds,
            "paid_without_payment": paid_without_payment}


def _save_report(conn: sqlite3.Connection, channel: str, day: str, report: dict[str, Any], at: str) -> int:
    return conn.execute("INSERT INTO reconciliation_reports (channel, day, created_at, report) VALUES (?, ?, ?, ?)",
                        (channel, day, at, json.dumps(report))).lastrowid


def _latest_report(conn: sqlite3.Connection, channel: str, day: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT report FROM reconciliation_reports WHERE channel = ? AND day = ? "
                       "ORDER BY id DESC LIMIT 1", (channel, day)).fetchone()
    return json.loads(row[0]) if row else None


def _prune_refused(conn: sqlite3.Connection, before: str) -> int:
    """Refused callbacks are kept for inspection a while, then dropped: anyone may send one."""
    return conn.execute("DELETE FROM payment_callbacks WHERE status = 'refused' AND received_at < ?",
                        (before,)).rowcount


def _callbacks(conn: sqlite3.Connection, limit: int) -> list[Row]:
    return [dict(r) for r in conn.execute(
        "SELECT id, channel, kind, remote_addr, received_at, status, notify_id, trade_no, reason, processed_at "
        "FROM payment_callbacks ORDER BY id DESC LIMIT ?", (limit,))]


class Payments:
    def __init__(self, db: Database):
        self._db = db

    async def create(self, order_id: int, channel: str, key: str | None, created_by: str | None, day: str,
                     at: str) -> tuple[str, Row | None, Row | None]:
        return await self._db.run(_create, order_id, channel, key, created_by, day, at)

    async def get(self, column: str, value: Any) -> Row | None:
        """By "id", "trade_no" or "idempotency_key"."""
        return await self._db.run(_payment, column, value)

    async def update(self, payment_id: int, fields: dict[str, Any], at: str) -> Row | None:
        return await self._db.run(_update, payment_id, fields, at)

    async def mark_paid(self, payment_id: int, provider_trade_no: str | None, cause: str,
                        at: str) -> tuple[str, Row | None, Row | None]:
        return await self._db.run(mark_paid, payment_id, provider_trade_no, cause, at)

    async def paid_manually(self, order_id: int, created_by: str | None, note: str | None, day: str, at: str, *,
                            key: str | None = None, from_completed: bool = False) -> tuple[str, Row | None, Row | None]:
        return await self._db.run(_paid_manually, order_id, created_by, note, key, from_completed, day, at)

    async def fail_unopened(self, payment_id: int, note: str, at: str) -> Row | None:
        return await self._db.run(_fail_unopened, payment_id, note, at)

    async def set_refund_provider_id(self, refund_id: int, provider_refund_id: str, at: str) -> Row | None:
        return await self._db.run(_set_refund_provider_id, refund_id, provider_refund_id, at)

    async def prune_refused(self, before: str) -> int:
        return await self._db.run(_prune_refused, before)

    async def close(self, payment_id: int, at: str) -> str:
        return await self._db.run(_close_payment, payment_id, at)

    async def start_refund(self, payment_id: int, reason: str | None, day: str,
                           at: str) -> tuple[str, Row | None, Row | None]:
        return await self._db.run(_start_refund, payment_id, reason, day, at)

    async def settle_refund(self, refund_id: int, status: str, provider_refund_id: str | None, cause: str,
                            at: str) -> tuple[str, Row | None]:
        return await self._db.run(settle_refund, refund_id, status, provider_refund_id, cause, at)

    async def refund(self, column: str, value: Any) -> Row | None:
        return await self._db.run(_refund, column, value)

    async def of_order(self, order_id: int) -> tuple[list[Row], list[Row]]:
        return await self._db.run(_of_order, order_id)

    async def store_callback(self, channel: str, kind: str, headers: dict[str, str], body: bytes,
                             remote_addr: str | None, at: str) -> int:
        """Committed before it is processed: a crash in between loses nothing."""
        return await self._db.run(_store_callback, channel, kind, headers, body, remote_addr, at)

    async def callback(self, callback_id: int) -> Row | None:
        return await self._db.run(_callback, callback_id)

    async def pending_callbacks(self) -> list[int]:
        return await self._db.run(_pending_callbacks)

    async def apply_callback(self, callback_id: int, notify_id: str, trade_no: str | None, effect: tuple,
                             at: str) -> str:
        return await self._db.run(_apply_callback, callback_id, notify_id, trade_no, effect, at)

    async def refuse_callback(self, callback_id: int, notify_id: str | None, trade_no: str | None, reason: str,
                              at: str) -> None:
        await self._db.run(_refuse, callback_id, notify_id, trade_no, reason, at)

    async def callbacks(self, limit: int = 100) -> list[Row]:
        return await self._db.run(_callbacks, limit)

    async def for_reconciliation(self, channel: str, since: str, until: str) -> dict[str, list[Row]]:
        return await self._db.run(_for_reconciliation, channel, since, until)

    async def save_report(self, channel: str, day: str, report: dict[str, Any], at: str) -> int:
        return await self._db.run(_save_report, channel, day, report, at)

    async def latest_report(self, channel: str, day: str) -> dict[str, Any] | None:
        return await self._db.run(_latest_report, channel, day)
