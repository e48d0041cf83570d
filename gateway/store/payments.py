"""Payments, refunds, provider callbacks and reconciliation reports.

Every change that touches a payment and its order is one job, so the two never disagree
after a crash; the order's own rules are applied through orders.transition.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .calls import COMMITTED, Table, committed, durability
from .orders import _history, transition

Row = dict[str, Any]
_STATUS_WORDS = {0: "charging", 1: "completed", 2: "cancelled", 10: "awaiting payment", 11: "paid",
                 12: "refunding", 13: "refunded"}
# Refunds that are not settled: the order stays refunding (12) while one of its payment's is open.
OPEN_REFUNDS = ("PROCESSING", "ABNORMAL", "CLOSED", "FAILED")


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
            day: str, at: str, expires_at: str | None = None) -> tuple[str, Row | None, Row | None]:
    """("created" | "existing" | "conflict" | "missing", payment, order).

    An order that is completed moves to awaiting payment; one already awaiting payment may get
    another payment (the payer switched channels: the other channels' open trades are closed). An
    open, unexpired payment of the same channel, or one made with the same idempotency key, is
    handed back instead of a second one; never an open one of an order that can no longer be paid."""
    found = _keyed_or_missing(conn, order_id, key)
    if found is not None:
        if found[0] == "existing" and found[1]["status"] == "CREATED" and found[2]["status"] not in (1, 10):
            return "conflict", None, found[2]  # a live payment link for a cancelled or paid order: never
        return found
    order = _order(conn, order_id)
    if order["status"] not in (1, 10):
        return "conflict", None, order
    # An open trade past its expiry was closed by the provider: it is not handed out again.
    conn.execute("UPDATE payments SET status = 'CLOSED', close_state = 'closed', close_note = 'expired unpaid', "
                 "updated_at = ? WHERE order_id = ? AND status = 'CREATED' AND expires_at <= ?", (at, order_id, at))
    if key is None:
        open_one = _one(conn, "SELECT * FROM payments WHERE order_id = ? AND channel = ? AND status = 'CREATED' "
                              "AND close_state IS NULL ORDER BY id DESC LIMIT 1", (order_id, channel))
        if open_one is not None:
            return "existing", open_one, order
    if order["status"] == 1:
        _, order = transition(conn, order_id, 10, (1,), f"payment requested ({channel})", at)
    cur = conn.execute(
        """INSERT INTO payments (order_id, channel, amount, currency, idempotency_key, created_by, created_at,
                                 updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (order_id, channel, order["total_amount"], order["currency"], key, created_by, at, at,
         None if channel == "manual" else expires_at))
    trade_no = f"PAY-{day}-{cur.lastrowid:06d}"
    conn.execute("UPDATE payments SET trade_no = ? WHERE id = ?", (trade_no, cur.lastrowid))
    _close_open_trades(conn, order_id, f"replaced by {channel} payment {trade_no}", at, keep_channel=channel)
    return "created", _payment(conn, "id", cur.lastrowid), order


def _close_open_trades(conn: sqlite3.Connection, order_id: int, cause: str, at: str,
                       keep_channel: str | None = None) -> int:
    """Mark the order's open provider trades (other than `keep_channel`'s) to be closed at the
    provider, each with a line in the order's history; the payment service's closer does it."""
    rows = conn.execute("SELECT id, trade_no, channel FROM payments WHERE order_id = ? AND status = 'CREATED' "
                        "AND channel != 'manual' AND channel IS NOT ? AND close_state IS NULL",
                        (order_id, keep_channel)).fetchall()
    if not rows:
        return 0
    order = _order(conn, order_id)
    for payment_id, trade_no, channel in rows:
        conn.execute("UPDATE payments SET close_state = 'pending', close_note = ?, updated_at = ? WHERE id = ?",
                     (f"to be closed: {cause}", at, payment_id))
        _history(conn, order_id, order["status"], order["status"],
                 f"{channel} trade {trade_no} to be closed at the provider: {cause}", at)
    return len(rows)


def _closing(conn: sqlite3.Connection, new_only: bool) -> list[Row]:
    """Trades waiting to be closed at the provider (`new_only`: those not tried yet)."""
    sql = "SELECT * FROM payments WHERE close_state = 'pending'" + (" AND close_attempts = 0" if new_only else "")
    return [dict(r) for r in conn.execute(sql + " ORDER BY id LIMIT 200")]


def _close_outcome(conn: sqlite3.Connection, payment_id: int, closed: bool, note: str, max_attempts: int,
                   at: str) -> Row | None:
    """The provider closed the trade (it can no longer be paid), or the attempt failed: tried again
    later, up to `max_attempts`, then left `failed` with the last error for an operator to see."""
    payment = _payment(conn, "id", payment_id)
    if payment is None or payment["close_state"] != "pending":
        return payment
    if closed:
        status = "CLOSED" if payment["status"] == "CREATED" else payment["status"]  # paid meanwhile: stays paid
        return _update(conn, payment_id, {"status": status, "close_state": "closed", "close_note": note}, at)
    attempts = payment["close_attempts"] + 1
    state = "failed" if attempts >= max_attempts else "pending"
    return _update(conn, payment_id, {"close_attempts": attempts, "close_state": state,
                                      "close_note": f"close attempt {attempts} of {max_attempts} failed: {note}"}, at)


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
    if payment["close_state"] == "pending":  # paid before it could be closed: nothing left to close
        payment = _update(conn, payment_id, {"close_state": "closed", "close_note": "paid before it was closed"}, at)
    result, order = transition(conn, payment["order_id"], 11, (10,), f"{cause}: {payment['trade_no']}", at,
                               {"paid_amount": payment["amount"], "paid_payment_id": payment_id})
    if result == "changed":
        _close_open_trades(conn, order["id"], f"order paid by {payment['trade_no']}", at)
        return "changed", payment, order
    # Paid twice (two channels), or after the order was cancelled: the order keeps what it was; the
    # money is on record here and in the order's history, for a refund (reconciliation reports it too).
    _history(conn, order["id"], order["status"], order["status"],
             f"money received that the order did not take: {payment['channel']} payment {payment['trade_no']} "
             f"of {payment['amount']} ({cause}) while the order is {_STATUS_WORDS.get(order['status'], order['status'])}"
             ": refund it", at)
    return ("order_already_paid" if result == "same" else "order_not_payable"), payment, order


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


def _committed(conn: sqlite3.Connection, payment_id: int) -> int:
    """What the payment's refunds have taken or may still take: all but the given-up ones."""
    return conn.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status != 'CANCELLED'",
                        (payment_id,)).fetchone()[0]


def _sync_refunds(conn: sqlite3.Connection, payment_id: int, cause: str, at: str) -> None:
    """The one home of the refund rules for a payment and its order, after any refund changed:
    the payment is REFUNDED once its successful refunds cover it (PAID before); the order that took
    it is refunding (12) while any of its refunds is open, refunded (13) when they cover the whole
    amount, else paid (11) with the refunded part in refunded_amount. A payment the order did not
    take changes only the order's history."""
    payment = _payment(conn, "id", payment_id)
    refunded, open_count = conn.execute(
        f"SELECT COALESCE(SUM(CASE WHEN status = 'SUCCESS' THEN amount END), 0), "
        f"COUNT(CASE WHEN status IN ({','.join('?' * len(OPEN_REFUNDS))}) THEN 1 END) "
        f"FROM refunds WHERE payment_id = ?", (*OPEN_REFUNDS, payment_id)).fetchone()
    status = "REFUNDED" if refunded >= payment["amount"] else "PAID"
    if payment["status"] != status:
        _update(conn, payment_id, {"status": status}, at)
    order = _order(conn, payment["order_id"])
    if order["paid_payment_id"] != payment_id:
        _history(conn, order["id"], order["status"], order["status"],
                 f"{cause} (payment {payment['trade_no']}, which the order did not take)", at)
        return
    if order["status"] not in (11, 12, 13):
        return
    target = 12 if open_count else 13 if refunded >= payment["amount"] else 11
    result, _ = transition(conn, order["id"], target, (11, 12, 13), cause, at, {"refunded_amount": refunded})
    if result == "same":
        if order["refunded_amount"] != refunded:
            conn.execute("UPDATE orders SET refunded_amount = ?, updated_at = ? WHERE id = ?", (refunded, at, order["id"]))
        _history(conn, order["id"], order["status"], order["status"], cause, at)


def _start_refund(conn: sqlite3.Connection, payment_id: int, amount: int | None, reason: str | None, day: str,
                  at: str) -> tuple[str, Row | None, Row | None]:
    """("created" | "pending" | "done" | "too_much" | "conflict" | "missing", refund, payment).

    `amount` None is what is left to refund. The sum of the payment's refunds (all but the given-up
    ones) is checked against its amount here, in the job that inserts: parallel refunds cannot
    exceed it. With nothing left, the newest open refund ("pending") or the last one ("done") is
    the answer; "too_much" carries {"remaining"} instead of a refund."""
    payment = _payment(conn, "id", payment_id)
    if payment is None:
        return "missing", None, None
    if payment["status"] not in ("PAID", "REFUNDED"):
        return "conflict", None, payment
    order = _order(conn, payment["order_id"])
    taken = order["paid_payment_id"] == payment_id
    if taken and order["status"] not in (11, 12, 13):
        return "conflict", None, payment
    remaining = payment["amount"] - _committed(conn, payment_id)
    if amount is None and remaining <= 0:
        pending = _one(conn, f"SELECT * FROM refunds WHERE payment_id = ? AND status IN "
                             f"({','.join('?' * len(OPEN_REFUNDS))}) ORDER BY id DESC LIMIT 1",
                       (payment_id, *OPEN_REFUNDS))
        if pending is not None:
            return "pending", pending, payment
        return "done", _one(conn, "SELECT * FROM refunds WHERE payment_id = ? ORDER BY id DESC LIMIT 1",
                            (payment_id,)), payment
    if amount is None:
        amount = remaining
    if amount > remaining:
        return "too_much", {"remaining": max(remaining, 0)}, payment
    cur = conn.execute(
        """INSERT INTO refunds (payment_id, order_id, amount, reason, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?)""", (payment_id, payment["order_id"], amount, reason, at, at))
    refund_no = f"REF-{day}-{cur.lastrowid:06d}"
    conn.execute("UPDATE refunds SET refund_no = ? WHERE id = ?", (refund_no, cur.lastrowid))
    _sync_refunds(conn, payment_id, f"refund {refund_no} of {amount} requested: {reason or 'no reason given'}", at)
    return "created", _one(conn, "SELECT * FROM refunds WHERE id = ?", (cur.lastrowid,)), payment


def settle_refund(conn: sqlite3.Connection, refund_id: int, status: str, provider_refund_id: str | None,
                  cause: str, at: str) -> tuple[str, Row | None]:
    """A refund's word from the provider (or the operator, for manual ones). SUCCESS settles it
    whatever it was before (a late success after ABNORMAL, a failure or a give-up: the money moved);
    ABNORMAL, CLOSED and FAILED only an open one, which stays open for the operator to retry or
    give up."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return "missing", None
    if refund["status"] == status or refund["status"] == "SUCCESS":
        return "same", refund
    if status != "SUCCESS" and refund["status"] not in ("PROCESSING", "ABNORMAL"):
        return "same", refund
    conn.execute("UPDATE refunds SET status = ?, provider_refund_id = COALESCE(?, provider_refund_id), "
                 "settled_at = ?, updated_at = ? WHERE id = ?",
                 (status, provider_refund_id, at if status == "SUCCESS" else None, at, refund_id))
    _sync_refunds(conn, refund["payment_id"], f"{cause}: {refund['refund_no']}", at)
    return "changed", _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _refund_not_done(conn: sqlite3.Connection, refund_id: int, note: str, refused: bool, at: str) -> Row | None:
    """The provider refused the refund (FAILED: the operator retries or gives up), or could not be
    asked (it stays PROCESSING with the note; asking again uses the same refund number)."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None or refund["status"] != "PROCESSING":
        return refund
    conn.execute("UPDATE refunds SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                 ("FAILED" if refused else "PROCESSING", note, at, refund_id))
    if refused:
        _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} refused by the provider: {note}", at)
    return _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _retry_refund(conn: sqlite3.Connection, refund_id: int, who: str, at: str) -> tuple[str, Row | None]:
    """An operator asks again (same refund number): FAILED or ABNORMAL back to PROCESSING."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return "missing", None
    if refund["status"] not in ("PROCESSING", "FAILED", "ABNORMAL"):
        return "conflict", refund
    conn.execute("UPDATE refunds SET status = 'PROCESSING', note = NULL, updated_at = ? WHERE id = ?", (at, refund_id))
    _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} asked again by {who}", at)
    return "changed", _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _give_up_refund(conn: sqlite3.Connection, refund_id: int, who: str, at: str) -> tuple[str, Row | None]:
    """An operator gives a failed refund up: CANCELLED, its amount refundable again, and the order
    back to paid (11), or refunded (13) if other refunds cover it."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return "missing", None
    if refund["status"] == "CANCELLED":
        return "same", refund
    if refund["status"] not in ("FAILED", "ABNORMAL", "CLOSED"):
        return "conflict", refund
    conn.execute("UPDATE refunds SET status = 'CANCELLED', updated_at = ? WHERE id = ?", (at, refund_id))
    _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} given up by {who}", at)
    return "changed", _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _record_provider_refund(conn: sqlite3.Connection, payment_id: int, refund_no: str, amount: int | None,
                            refunded_total: int | None, provider_refund_id: str | None, cause: str, at: str) -> str:
    """A successful refund we did not ask for (started in the merchant console), learnt from its
    notice: recorded as it is, since the money moved. `refunded_total` (Alipay's refund_fee: the
    trade's refunds so far) gives the amount when the notice has no amount of its own."""
    if _one(conn, "SELECT id FROM refunds WHERE refund_no = ?", (refund_no,)) is not None:
        return "same"
    payment = _payment(conn, "id", payment_id)
    if amount is None:
        done = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status = 'SUCCESS'",
                            (payment_id,)).fetchone()[0]
        amount = (refunded_total or 0) - done
    if amount <= 0:
        return "nothing new refunded"
    conn.execute(
        """INSERT INTO refunds (refund_no, payment_id, order_id, amount, status, provider_refund_id, reason, source,
                                created_at, settled_at, updated_at)
           VALUES (?, ?, ?, ?, 'SUCCESS', ?, 'started at the provider', 'provider', ?, ?, ?)""",
        (refund_no, payment_id, payment["order_id"], amount, provider_refund_id, at, at, at))
    _sync_refunds(conn, payment_id, f"{cause}: refund {refund_no} of {amount} started at the provider", at)
    return "changed"


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
    elif kind == "provider_refund":
        result = _record_provider_refund(conn, *args, f"refund notice ({callback['channel']} callback)", at)
    else:
        result = "nothing to do"
    _finish(conn, callback_id, "processed", notify_id, trade_no, f"{kind}: {result}", at)
    return "processed"


def _refuse(conn: sqlite3.Connection, callback_id: int, notify_id: str | None, trade_no: str | None, reason: str,
            at: str, budget: int | None = None) -> None:
    _finish(conn, callback_id, "refused", notify_id, trade_no, reason, at)
    if budget is not None:
        _within_budget(conn, budget)


def _within_budget(conn: sqlite3.Connection, budget: int) -> int:
    """Refused callbacks (anyone may send one) are kept within `budget` bytes, the oldest dropped
    first; accepted ones are not counted and never dropped."""
    return conn.execute(
        """DELETE FROM payment_callbacks WHERE id IN (
               SELECT id FROM (SELECT id, SUM(length(body) + length(headers)) OVER (ORDER BY id DESC) AS kept
                               FROM payment_callbacks WHERE status = 'refused')
               WHERE kept > ?)""", (budget,)).rowcount


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


class Payments(Table, committed=dict(
        create=_create, close_outcome=_close_outcome, refund_not_done=_refund_not_done, retry_refund=_retry_refund,
        give_up_refund=_give_up_refund, update=_update, mark_paid=mark_paid, fail_unopened=_fail_unopened,
        set_refund_provider_id=_set_refund_provider_id, prune_refused=_prune_refused, close=_close_payment,
        start_refund=_start_refund, settle_refund=settle_refund, refund=_refund, of_order=_of_order, callback=_callback,
        pending_callbacks=_pending_callbacks, apply_callback=_apply_callback, for_reconciliation=_for_reconciliation,
        save_report=_save_report, latest_report=_latest_report)):
    @durability(COMMITTED)
    async def close_open_trades(self, order_id: int, cause: str, at: str) -> int:
        """Committed: see _close_open_trades (every channel's trades)."""
        return await self._db.run(_close_open_trades, order_id, cause, at)

    closing = committed(_closing, new_only=False)
    get = committed(_payment, doc='By "id", "trade_no" or "idempotency_key".')

    @durability(COMMITTED)
    async def paid_manually(self, order_id: int, created_by: str | None, note: str | None, day: str, at: str, *,
                            key: str | None = None, from_completed: bool = False) -> tuple[str, Row | None, Row | None]:
        """Committed: see _paid_manually."""
        return await self._db.run(_paid_manually, order_id, created_by, note, key, from_completed, day, at)

    store_callback = committed(_store_callback, doc="Committed before it is processed: a crash in between loses nothing.")
    refuse_callback = committed(_refuse, budget=None)
    callbacks = committed(_callbacks, limit=100)
