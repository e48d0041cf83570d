"""Payments, refunds, provider callbacks and reconciliation reports.

Every change that touches a payment and its order is one job, so the two never disagree
after a crash; the order's own rules are applied through orders.transition.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

from ..orderstates import (ALLOWED_FROM, OPEN_REFUNDS, PAYABLE, REFUND_STATES, SETTLED_PAYMENTS, CallbackStatus,
                           ClosePayment, CloseState, Effect, OrderStatus, Outcome, Pay, PaymentStatus, ProviderRefund,
                           RefundStatus, SettleRefund)
from .calls import COMMITTED, Table, committed, durability
from .orders import _history, transition
from .registry import charger_where
from .scope import EVERYTHING, PLATFORM, Scope

Row = dict[str, Any]


class PaymentChange(NamedTuple):
    """What a change of a payment found and did, the payment and its order as they are now."""
    outcome: Outcome
    payment: Row | None
    order: Row | None


class RefundChange(NamedTuple):
    outcome: Outcome
    refund: Row | None


class RefundStart(NamedTuple):
    """A refund started (or the one that answers for it), and its payment; TOO_MUCH carries
    {"remaining"} instead of a refund."""
    outcome: Outcome
    refund: Row | None
    payment: Row | None


def _marks(values: tuple) -> str:
    """The placeholders of an IN list of bound values."""
    return ",".join("?" * len(values))


def _one(conn: sqlite3.Connection, sql: str, args: tuple) -> Row | None:
    row = conn.execute(sql, args).fetchone()
    return dict(row) if row else None


def _of_scope(scope: Scope, column: str = "order_id") -> tuple[str, tuple[int, ...]]:
    """A condition keeping the payments or refunds of orders of the caller's scope (an order belongs to its
    charger's tenant)."""
    where, args = charger_where(scope, "charge_point_id")
    return ("TRUE", ()) if where == "TRUE" else (f"{column} IN (SELECT id FROM orders WHERE {where})", args)


def _payment_row(conn: sqlite3.Connection, column: str, value: Any) -> Row | None:
    assert column in ("id", "trade_no", "idempotency_key")
    return _one(conn, f"SELECT * FROM payments WHERE {column} = ?", (value,))


def _payment(conn: sqlite3.Connection, column: str, value: Any, *, scope: Scope) -> Row | None:
    assert column in ("id", "trade_no", "idempotency_key")
    where, args = _of_scope(scope)
    return _one(conn, f"SELECT * FROM payments WHERE {column} = ? AND {where}", (value, *args))


def _order(conn: sqlite3.Connection, order_id: int) -> Row | None:
    return _one(conn, "SELECT * FROM orders WHERE id = ?", (order_id,))


def _keyed_or_missing(conn: sqlite3.Connection, order_id: int, key: str | None) -> PaymentChange | None:
    """The answer when the idempotency key was used before, or the order does not exist; else None."""
    if key is not None:
        existing = _payment_row(conn, "idempotency_key", key)
        if existing is not None:
            return PaymentChange(Outcome.EXISTING, existing, _order(conn, existing["order_id"]))
    if _order(conn, order_id) is None:
        return PaymentChange(Outcome.MISSING, None, None)
    return None


def _create(conn: sqlite3.Connection, order_id: int, channel: str, key: str | None, created_by: str | None,
            day: str, at: str, expires_at: str | None = None) -> PaymentChange:
    """CREATED, EXISTING, CONFLICT or MISSING.

    An order that is completed moves to awaiting payment; one already awaiting payment may get
    another payment (the payer switched channels: the other channels' open trades are closed). An
    open, unexpired payment of the same channel, or one made with the same idempotency key, is
    handed back instead of a second one; never an open one of an order that can no longer be paid."""
    found = _keyed_or_missing(conn, order_id, key)
    if found is not None:
        if (found.outcome is Outcome.EXISTING and found.payment["status"] == PaymentStatus.CREATED
                and found.order["status"] not in PAYABLE):
            # a live payment link for a cancelled or paid order: never
            return PaymentChange(Outcome.CONFLICT, None, found.order)
        return found
    order = _order(conn, order_id)
    if order["status"] not in PAYABLE:
        return PaymentChange(Outcome.CONFLICT, None, order)
    # An open trade past its expiry was closed by the provider: it is not handed out again.
    conn.execute("UPDATE payments SET status = ?, close_state = ?, close_note = 'expired unpaid', "
                 "updated_at = ? WHERE order_id = ? AND status = ? AND expires_at <= ?",
                 (PaymentStatus.CLOSED, CloseState.CLOSED, at, order_id, PaymentStatus.CREATED, at))
    if key is None:
        open_one = _one(conn, "SELECT * FROM payments WHERE order_id = ? AND channel = ? AND status = ? "
                              "AND close_state IS NULL ORDER BY id DESC LIMIT 1",
                        (order_id, channel, PaymentStatus.CREATED))
        if open_one is not None:
            return PaymentChange(Outcome.EXISTING, open_one, order)
    if order["status"] == OrderStatus.COMPLETED:
        _, order = transition(conn, order_id, OrderStatus.AWAITING_PAYMENT, ALLOWED_FROM[OrderStatus.AWAITING_PAYMENT],
                              f"payment requested ({channel})", at)
    cur = conn.execute(
        """INSERT INTO payments (order_id, channel, amount, currency, idempotency_key, created_by, created_at,
                                 updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (order_id, channel, order["total_amount"], order["currency"], key, created_by, at, at,
         None if channel == "manual" else expires_at))
    payment_id = cur.fetchone()[0]
    trade_no = f"PAY-{day}-{payment_id:06d}"
    conn.execute("UPDATE payments SET trade_no = ? WHERE id = ?", (trade_no, payment_id))
    _close_open_trades(conn, order_id, f"replaced by {channel} payment {trade_no}", at, keep_channel=channel)
    return PaymentChange(Outcome.CREATED, _payment_row(conn, "id", payment_id), order)


def _close_open_trades(conn: sqlite3.Connection, order_id: int, cause: str, at: str,
                       keep_channel: str | None = None) -> int:
    """Mark the order's open provider trades (other than `keep_channel`'s) to be closed at the
    provider, each with a line in the order's history; the payment service's closer does it."""
    rows = conn.execute("SELECT id, trade_no, channel FROM payments WHERE order_id = ? AND status = ? "
                        "AND channel != 'manual' AND channel IS DISTINCT FROM ? AND close_state IS NULL",
                        (order_id, PaymentStatus.CREATED, keep_channel)).fetchall()
    if not rows:
        return 0
    order = _order(conn, order_id)
    for payment_id, trade_no, channel in rows:
        conn.execute("UPDATE payments SET close_state = ?, close_note = ?, updated_at = ? WHERE id = ?",
                     (CloseState.PENDING, f"to be closed: {cause}", at, payment_id))
        _history(conn, order_id, order["status"], order["status"],
                 f"{channel} trade {trade_no} to be closed at the provider: {cause}", at)
    return len(rows)


def _closing(conn: sqlite3.Connection, new_only: bool) -> list[Row]:
    """Trades waiting to be closed at the provider (`new_only`: those not tried yet)."""
    sql = "SELECT * FROM payments WHERE close_state = ?" + (" AND close_attempts = 0" if new_only else "")
    return [dict(r) for r in conn.execute(sql + " ORDER BY id LIMIT 200", (CloseState.PENDING,))]


def _close_outcome(conn: sqlite3.Connection, payment_id: int, closed: bool, note: str, max_attempts: int,
                   at: str) -> Row | None:
    """The provider closed the trade (it can no longer be paid), or the attempt failed: tried again
    later, up to `max_attempts`, then left `failed` with the last error for an operator to see."""
    payment = _payment_row(conn, "id", payment_id)
    if payment is None or payment["close_state"] != CloseState.PENDING:
        return payment
    if closed:  # paid meanwhile: stays paid
        status = PaymentStatus.CLOSED if payment["status"] == PaymentStatus.CREATED else payment["status"]
        return _update(conn, payment_id, {"status": status, "close_state": CloseState.CLOSED, "close_note": note}, at)
    attempts = payment["close_attempts"] + 1
    state = CloseState.FAILED if attempts >= max_attempts else CloseState.PENDING
    return _update(conn, payment_id, {"close_attempts": attempts, "close_state": state,
                                      "close_note": f"close attempt {attempts} of {max_attempts} failed: {note}"}, at)


def _update(conn: sqlite3.Connection, payment_id: int, fields: dict[str, Any], at: str) -> Row | None:
    sets = {**fields, "updated_at": at}
    conn.execute(f"UPDATE payments SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                 (*sets.values(), payment_id))
    return _payment_row(conn, "id", payment_id)


def mark_paid(conn: sqlite3.Connection, payment_id: int, provider_trade_no: str | None, cause: str,
              at: str) -> PaymentChange:
    """CHANGED, SAME, ORDER_ALREADY_PAID, ORDER_NOT_PAYABLE or MISSING. The money arrived either way,
    so the payment is recorded as paid even when its order can no longer take it (it was
    cancelled): reconciliation reports that one for a refund."""
    payment = _payment_row(conn, "id", payment_id)
    if payment is None:
        return PaymentChange(Outcome.MISSING, None, None)
    if payment["status"] in SETTLED_PAYMENTS:
        return PaymentChange(Outcome.SAME, payment, _order(conn, payment["order_id"]))
    payment = _update(conn, payment_id, {"status": PaymentStatus.PAID, "paid_at": at, "provider_trade_no":
                                         provider_trade_no or payment["provider_trade_no"]}, at)
    if payment["close_state"] == CloseState.PENDING:  # paid before it could be closed: nothing left to close
        payment = _update(conn, payment_id, {"close_state": CloseState.CLOSED,
                                             "close_note": "paid before it was closed"}, at)
    result, order = transition(conn, payment["order_id"], OrderStatus.PAID, ALLOWED_FROM[OrderStatus.PAID],
                               f"{cause}: {payment['trade_no']}", at,
                               {"paid_amount": payment["amount"], "paid_payment_id": payment_id})
    if result is Outcome.CHANGED:
        _close_open_trades(conn, order["id"], f"order paid by {payment['trade_no']}", at)
        return PaymentChange(Outcome.CHANGED, payment, order)
    # Paid twice (two channels), or after the order was cancelled: the order keeps what it was; the
    # money is on record here and in the order's history, for a refund (reconciliation reports it too).
    _history(conn, order["id"], order["status"], order["status"],
             f"money received that the order did not take: {payment['channel']} payment {payment['trade_no']} "
             f"of {payment['amount']} ({cause}) while the order is {OrderStatus(order['status']).word}: refund it", at)
    return PaymentChange(Outcome.ORDER_ALREADY_PAID if result is Outcome.SAME else Outcome.ORDER_NOT_PAYABLE,
                         payment, order)


def _close_payment(conn: sqlite3.Connection, payment_id: int, at: str) -> Outcome:
    payment = _payment_row(conn, "id", payment_id)
    if payment is None or payment["status"] != PaymentStatus.CREATED:
        return Outcome.SAME
    _update(conn, payment_id, {"status": PaymentStatus.CLOSED}, at)
    return Outcome.CHANGED


def _paid_manually(conn: sqlite3.Connection, order_id: int, created_by: str | None, note: str | None,
                   key: str | None, from_completed: bool, day: str, at: str) -> PaymentChange:
    """The operator took the money (cash, a card terminal): a manual payment, paid, in one job.
    `from_completed`: a completed order goes through awaiting payment on the way."""
    found = _keyed_or_missing(conn, order_id, key)
    if found is not None:
        return found
    order = _order(conn, order_id)
    if order["status"] == OrderStatus.PAID and key is None:
        return PaymentChange(Outcome.SAME, None, order)
    if not (order["status"] == OrderStatus.AWAITING_PAYMENT
            or (from_completed and order["status"] == OrderStatus.COMPLETED)):
        return PaymentChange(Outcome.CONFLICT, None, order)
    result, payment, order = _create(conn, order_id, "manual", key, created_by, day, at)
    if note:
        _update(conn, payment["id"], {"note": note}, at)
    return mark_paid(conn, payment["id"], None, "paid (manual)", at)


def _fail_unopened(conn: sqlite3.Connection, payment_id: int, note: str, at: str) -> Row | None:
    """The provider could not open the trade; a concurrent attempt that did open it wins."""
    conn.execute("UPDATE payments SET status = ?, note = ?, updated_at = ? "
                 "WHERE id = ? AND status = ? AND pay_url IS NULL",
                 (PaymentStatus.FAILED, note, at, payment_id, PaymentStatus.CREATED))
    return _payment_row(conn, "id", payment_id)


def _committed(conn: sqlite3.Connection, payment_id: int) -> int:
    """What the payment's refunds have taken or may still take: all but the given-up ones."""
    return conn.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status != ?",
                        (payment_id, RefundStatus.CANCELLED)).fetchone()[0]


def _sync_refunds(conn: sqlite3.Connection, payment_id: int, cause: str, at: str) -> None:
    """The one home of the refund rules for a payment and its order, after any refund changed:
    the payment is REFUNDED once its successful refunds cover it (PAID before); the order that took
    it is refunding while any of its refunds is open, refunded when they cover the whole amount,
    else paid with the refunded part in refunded_amount: between these three (REFUND_STATES) the
    refunds decide. A payment the order did not take changes only the order's history."""
    payment = _payment_row(conn, "id", payment_id)
    refunded, open_count = conn.execute(
        f"SELECT COALESCE(SUM(CASE WHEN status = ? THEN amount END), 0), "
        f"COUNT(CASE WHEN status IN ({_marks(OPEN_REFUNDS)}) THEN 1 END) "
        f"FROM refunds WHERE payment_id = ?", (RefundStatus.SUCCESS, *OPEN_REFUNDS, payment_id)).fetchone()
    status = PaymentStatus.REFUNDED if refunded >= payment["amount"] else PaymentStatus.PAID
    if payment["status"] != status:
        _update(conn, payment_id, {"status": status}, at)
    order = _order(conn, payment["order_id"])
    if order["paid_payment_id"] != payment_id:
        _history(conn, order["id"], order["status"], order["status"],
                 f"{cause} (payment {payment['trade_no']}, which the order did not take)", at)
        return
    if order["status"] not in REFUND_STATES:
        return
    target = (OrderStatus.REFUNDING if open_count else OrderStatus.REFUNDED if refunded >= payment["amount"]
              else OrderStatus.PAID)
    result, _ = transition(conn, order["id"], target, REFUND_STATES, cause, at, {"refunded_amount": refunded})
    if result is Outcome.SAME:
        if order["refunded_amount"] != refunded:
            conn.execute("UPDATE orders SET refunded_amount = ?, updated_at = ? WHERE id = ?", (refunded, at, order["id"]))
        _history(conn, order["id"], order["status"], order["status"], cause, at)


def _start_refund(conn: sqlite3.Connection, payment_id: int, amount: int | None, reason: str | None, day: str,
                  at: str) -> RefundStart:
    """CREATED, PENDING, DONE, TOO_MUCH, CONFLICT or MISSING.

    `amount` None is what is left to refund. The sum of the payment's refunds (all but the given-up
    ones) is checked against its amount here, in the job that inserts: parallel refunds cannot
    exceed it. With nothing left, the newest open refund (PENDING) or the last one (DONE) is
    the answer; TOO_MUCH carries {"remaining"} instead of a refund."""
    payment = _payment_row(conn, "id", payment_id)
    if payment is None:
        return RefundStart(Outcome.MISSING, None, None)
    if payment["status"] not in SETTLED_PAYMENTS:
        return RefundStart(Outcome.CONFLICT, None, payment)
    order = _order(conn, payment["order_id"])
    taken = order["paid_payment_id"] == payment_id
    if taken and order["status"] not in REFUND_STATES:
        return RefundStart(Outcome.CONFLICT, None, payment)
    remaining = payment["amount"] - _committed(conn, payment_id)
    if amount is None and remaining <= 0:
        pending = _one(conn, f"SELECT * FROM refunds WHERE payment_id = ? AND status IN ({_marks(OPEN_REFUNDS)}) "
                             "ORDER BY id DESC LIMIT 1", (payment_id, *OPEN_REFUNDS))
        if pending is not None:
            return RefundStart(Outcome.PENDING, pending, payment)
        return RefundStart(Outcome.DONE, _one(conn, "SELECT * FROM refunds WHERE payment_id = ? ORDER BY id DESC "
                                                    "LIMIT 1", (payment_id,)), payment)
    if amount is None:
        amount = remaining
    if amount > remaining:
        return RefundStart(Outcome.TOO_MUCH, {"remaining": max(remaining, 0)}, payment)
    cur = conn.execute(
        """INSERT INTO refunds (payment_id, order_id, amount, reason, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?) RETURNING id""", (payment_id, payment["order_id"], amount, reason, at, at))
    refund_id = cur.fetchone()[0]
    refund_no = f"REF-{day}-{refund_id:06d}"
    conn.execute("UPDATE refunds SET refund_no = ? WHERE id = ?", (refund_no, refund_id))
    _sync_refunds(conn, payment_id, f"refund {refund_no} of {amount} requested: {reason or 'no reason given'}", at)
    return RefundStart(Outcome.CREATED, _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,)), payment)


def settle_refund(conn: sqlite3.Connection, refund_id: int, status: str, provider_refund_id: str | None,
                  cause: str, at: str) -> RefundChange:
    """A refund's word from the provider (or the operator, for manual ones). SUCCESS settles it
    whatever it was before (a late success after ABNORMAL, a failure or a give-up: the money moved);
    ABNORMAL, CLOSED and FAILED only an open one, which stays open for the operator to retry or
    give up."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return RefundChange(Outcome.MISSING, None)
    if refund["status"] == status or refund["status"] == RefundStatus.SUCCESS:
        return RefundChange(Outcome.SAME, refund)
    if status != RefundStatus.SUCCESS and refund["status"] not in (RefundStatus.PROCESSING, RefundStatus.ABNORMAL):
        return RefundChange(Outcome.SAME, refund)
    conn.execute("UPDATE refunds SET status = ?, provider_refund_id = COALESCE(?, provider_refund_id), "
                 "settled_at = ?, updated_at = ? WHERE id = ?",
                 (RefundStatus(status), provider_refund_id, at if status == RefundStatus.SUCCESS else None, at,
                  refund_id))
    _sync_refunds(conn, refund["payment_id"], f"{cause}: {refund['refund_no']}", at)
    return RefundChange(Outcome.CHANGED, _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,)))


def _refund_not_done(conn: sqlite3.Connection, refund_id: int, note: str, refused: bool, at: str) -> Row | None:
    """The provider refused the refund (FAILED: the operator retries or gives up), or could not be
    asked (it stays PROCESSING with the note; asking again uses the same refund number)."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None or refund["status"] != RefundStatus.PROCESSING:
        return refund
    conn.execute("UPDATE refunds SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                 (RefundStatus.FAILED if refused else RefundStatus.PROCESSING, note, at, refund_id))
    if refused:
        _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} refused by the provider: {note}", at)
    return _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


def _retry_refund(conn: sqlite3.Connection, refund_id: int, who: str, at: str) -> RefundChange:
    """An operator asks again (same refund number): FAILED or ABNORMAL back to PROCESSING."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return RefundChange(Outcome.MISSING, None)
    if refund["status"] not in (RefundStatus.PROCESSING, RefundStatus.FAILED, RefundStatus.ABNORMAL):
        return RefundChange(Outcome.CONFLICT, refund)
    conn.execute("UPDATE refunds SET status = ?, note = NULL, updated_at = ? WHERE id = ?",
                 (RefundStatus.PROCESSING, at, refund_id))
    _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} asked again by {who}", at)
    return RefundChange(Outcome.CHANGED, _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,)))


def _give_up_refund(conn: sqlite3.Connection, refund_id: int, who: str, at: str) -> RefundChange:
    """An operator gives a failed refund up: CANCELLED, its amount refundable again, and the order
    back to paid (11), or refunded (13) if other refunds cover it."""
    refund = _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))
    if refund is None:
        return RefundChange(Outcome.MISSING, None)
    if refund["status"] == RefundStatus.CANCELLED:
        return RefundChange(Outcome.SAME, refund)
    if refund["status"] not in (RefundStatus.FAILED, RefundStatus.ABNORMAL, RefundStatus.CLOSED):
        return RefundChange(Outcome.CONFLICT, refund)
    conn.execute("UPDATE refunds SET status = ?, updated_at = ? WHERE id = ?", (RefundStatus.CANCELLED, at, refund_id))
    _sync_refunds(conn, refund["payment_id"], f"refund {refund['refund_no']} given up by {who}", at)
    return RefundChange(Outcome.CHANGED, _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,)))


def _record_provider_refund(conn: sqlite3.Connection, payment_id: int, refund_no: str, amount: int | None,
                            refunded_total: int | None, provider_refund_id: str | None, cause: str, at: str) -> Outcome:
    """A successful refund we did not ask for (started in the merchant console), learnt from its
    notice: recorded as it is, since the money moved. `refunded_total` (Alipay's refund_fee: the
    trade's refunds so far) gives the amount when the notice has no amount of its own."""
    if _one(conn, "SELECT id FROM refunds WHERE refund_no = ?", (refund_no,)) is not None:
        return Outcome.SAME
    payment = _payment_row(conn, "id", payment_id)
    if amount is None:
        done = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? AND status = ?",
                            (payment_id, RefundStatus.SUCCESS)).fetchone()[0]
        amount = (refunded_total or 0) - done
    if amount <= 0:
        return Outcome.NOTHING_NEW
    conn.execute(
        """INSERT INTO refunds (refund_no, payment_id, order_id, amount, status, provider_refund_id, reason, source,
                                created_at, settled_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'started at the provider', 'provider', ?, ?, ?)""",
        (refund_no, payment_id, payment["order_id"], amount, RefundStatus.SUCCESS, provider_refund_id, at, at, at))
    _sync_refunds(conn, payment_id, f"{cause}: refund {refund_no} of {amount} started at the provider", at)
    return Outcome.CHANGED


def _set_refund_provider_id(conn: sqlite3.Connection, refund_id: int, provider_refund_id: str, at: str) -> Row | None:
    conn.execute("UPDATE refunds SET provider_refund_id = ?, updated_at = ? WHERE id = ?",
                 (provider_refund_id, at, refund_id))
    return _one(conn, "SELECT * FROM refunds WHERE id = ?", (refund_id,))


# ---- provider callbacks ----------------------------------------------------------------

def _store_callback(conn: sqlite3.Connection, channel: str, kind: str, headers: dict[str, str], body: bytes,
                    remote_addr: str | None, at: str) -> int:
    cur = conn.execute(
        """INSERT INTO payment_callbacks (channel, kind, headers, body, remote_addr, received_at)
           VALUES (?, ?, ?, ?, ?, ?) RETURNING id""", (channel, kind, json.dumps(headers), body, remote_addr, at))
    return cur.fetchone()[0]


def _callback(conn: sqlite3.Connection, callback_id: int) -> Row | None:
    row = _one(conn, "SELECT * FROM payment_callbacks WHERE id = ?", (callback_id,))
    if row is not None:
        row["headers"] = json.loads(row["headers"])
    return row


def _callback_visible(conn: sqlite3.Connection, callback_id: int, *, scope: Scope) -> Row | None:
    """A provider's callback: the platform's (its merchant accounts), like every record of the providers."""
    return _callback(conn, callback_id) if scope.sees(PLATFORM) else None


def _pending_callbacks(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM payment_callbacks WHERE status = ? ORDER BY id",
                                       (CallbackStatus.RECEIVED,))]


def _finish(conn: sqlite3.Connection, callback_id: int, status: str, notify_id: str | None, trade_no: str | None,
            reason: str | None, at: str) -> None:
    conn.execute("UPDATE payment_callbacks SET status = ?, notify_id = ?, trade_no = ?, reason = ?, "
                 "processed_at = ? WHERE id = ?", (status, notify_id, trade_no, reason, at, callback_id))


def _apply_callback(conn: sqlite3.Connection, callback_id: int, notify_id: str, trade_no: str | None,
                    effect: Effect, at: str) -> CallbackStatus:
    """Apply a verified callback's effect and mark it processed, in one transaction; a callback
    whose notify id was processed before is marked duplicate and changes nothing."""
    callback = _callback(conn, callback_id)
    if callback["status"] != CallbackStatus.RECEIVED:
        return CallbackStatus(callback["status"])  # processed before a restart could tell the provider
    earlier = conn.execute("SELECT 1 FROM payment_callbacks WHERE channel = ? AND notify_id = ? "
                           "AND status = ? AND id != ?",
                           (callback["channel"], notify_id, CallbackStatus.PROCESSED, callback_id))
    if earlier.fetchone():
        _finish(conn, callback_id, CallbackStatus.DUPLICATE, notify_id, trade_no, "already processed", at)
        return CallbackStatus.DUPLICATE
    via = f"({callback['channel']} callback)"
    match effect:
        case Pay():
            result = mark_paid(conn, effect.payment_id, effect.provider_trade_no, f"paid {via}", at).outcome
        case SettleRefund():
            result = settle_refund(conn, effect.refund_id, effect.status, effect.provider_refund_id,
                                   f"refund {effect.status} {via}", at).outcome
        case ClosePayment():
            result = _close_payment(conn, effect.payment_id, at)
        case ProviderRefund():
            result = _record_provider_refund(conn, effect.payment_id, effect.refund_no, effect.amount,
                                             effect.refunded_total, effect.provider_refund_id,
                                             f"refund notice {via}", at)
        case _:
            result = Outcome.NOTHING_TO_DO
    # The record keeps the effect and its outcome in words: "pay: changed", "refund: same", ...
    _finish(conn, callback_id, CallbackStatus.PROCESSED, notify_id, trade_no, f"{effect.kind}: {result}", at)
    return CallbackStatus.PROCESSED


def _refuse(conn: sqlite3.Connection, callback_id: int, notify_id: str | None, trade_no: str | None, reason: str,
            at: str, budget: int | None = None) -> None:
    _finish(conn, callback_id, CallbackStatus.REFUSED, notify_id, trade_no, reason, at)
    if budget is not None:
        _within_budget(conn, budget)


def _within_budget(conn: sqlite3.Connection, budget: int) -> int:
    """Refused callbacks (anyone may send one) are kept within `budget` bytes, the oldest dropped
    first; accepted ones are not counted and never dropped."""
    return conn.execute(
        """DELETE FROM payment_callbacks WHERE id IN (
               SELECT id FROM (SELECT id, SUM(length(body) + length(headers)) OVER (ORDER BY id DESC) AS kept
                               FROM payment_callbacks WHERE status = ?) AS running
               WHERE kept > ?)""", (CallbackStatus.REFUSED, budget)).rowcount


# ---- reading ---------------------------------------------------------------------------

def _of_order(conn: sqlite3.Connection, order_id: int) -> tuple[list[Row], list[Row]]:
    payments = [dict(r) for r in conn.execute("SELECT * FROM payments WHERE order_id = ? ORDER BY id", (order_id,))]
    refunds = [dict(r) for r in conn.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,))]
    return payments, refunds


def _refund(conn: sqlite3.Connection, column: str, value: Any) -> Row | None:
    return _refund_visible(conn, column, value, scope=EVERYTHING)


def _refund_visible(conn: sqlite3.Connection, column: str, value: Any, *, scope: Scope) -> Row | None:
    assert column in ("id", "refund_no")
    where, args = _of_scope(scope)
    return _one(conn, f"SELECT * FROM refunds WHERE {column} = ? AND {where}", (value, *args))


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
                                                                    OR (status = ? AND created_at < ?)))
           ORDER BY id""",
        (channel, since, until, since, until, since, until, since, until, RefundStatus.PROCESSING, until))]
    order_ids = sorted({p["order_id"] for p in payments})
    marks = ",".join("?" * len(order_ids))
    orders, refunds = [], []
    if order_ids:  # "IN ()" is SQLite's alone
        orders = [dict(r) for r in conn.execute(f"SELECT * FROM orders WHERE id IN ({marks})", order_ids)]
        refunds = [dict(r) for r in conn.execute(f"SELECT * FROM refunds WHERE order_id IN ({marks})", order_ids)]
    paid_without_payment = [dict(r) for r in conn.execute(
        f"""SELECT o.* FROM orders o WHERE o.status IN ({_marks(REFUND_STATES)})
             AND o.id IN (SELECT order_id FROM order_history WHERE to_status = ? AND at >= ? AND at < ?)
             AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id
                                                       AND p.status IN ({_marks(SETTLED_PAYMENTS)}))""",
        (*REFUND_STATES, OrderStatus.PAID, since, until, *SETTLED_PAYMENTS))]
    return {"payments": payments, "orders": orders, "refunds": refunds,
            "paid_without_payment": paid_without_payment}


def _save_report(conn: sqlite3.Connection, channel: str, day: str, report: dict[str, Any], at: str) -> int:
    return conn.execute("INSERT INTO reconciliation_reports (channel, day, created_at, report) VALUES (?, ?, ?, ?) "
                        "RETURNING id", (channel, day, at, json.dumps(report))).fetchone()[0]


def _latest_report(conn: sqlite3.Connection, channel: str, day: str, *, scope: Scope) -> dict[str, Any] | None:
    """The platform's (reconciliation compares its merchant accounts' bills with its records)."""
    if not scope.sees(PLATFORM):
        return None
    row = conn.execute("SELECT report FROM reconciliation_reports WHERE channel = ? AND day = ? "
                       "ORDER BY id DESC LIMIT 1", (channel, day)).fetchone()
    return json.loads(row[0]) if row else None


def _prune_refused(conn: sqlite3.Connection, before: str) -> int:
    """Refused callbacks are kept for inspection a while, then dropped: anyone may send one."""
    return conn.execute("DELETE FROM payment_callbacks WHERE status = ? AND received_at < ?",
                        (CallbackStatus.REFUSED, before)).rowcount


def _callbacks(conn: sqlite3.Connection, limit: int, *, scope: Scope) -> list[Row]:
    if not scope.sees(PLATFORM):
        return []
    return [dict(r) for r in conn.execute(
        "SELECT id, channel, kind, remote_addr, received_at, status, notify_id, trade_no, reason, processed_at "
        "FROM payment_callbacks ORDER BY id DESC LIMIT ?", (limit,))]


class Payments(Table, committed=dict(
        create=_create, close_outcome=_close_outcome, refund_not_done=_refund_not_done, retry_refund=_retry_refund,
        give_up_refund=_give_up_refund, update=_update, mark_paid=mark_paid, fail_unopened=_fail_unopened,
        set_refund_provider_id=_set_refund_provider_id, prune_refused=_prune_refused, close=_close_payment,
        start_refund=_start_refund, settle_refund=settle_refund, refund=_refund_visible, of_order=_of_order, callback=_callback_visible,
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
