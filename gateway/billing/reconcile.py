"""Reconciliation: every disagreement between payments, refunds, orders and the provider, for one
channel and one day (in the billing time zone)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import trio

from .. import clock
from .payments import PaymentService

Row = dict[str, Any]


def window(day: date, tz: Any) -> tuple[str, str]:
    """[since, until) in UTC text for a local day."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return clock.iso(start), clock.iso(end)


def compare(data: dict[str, list[Row]], provider: dict[str, dict[str, Any]] | None,
            channel: str, stale_before: str) -> list[dict[str, Any]]:
    """The mismatches, each {kind, tradeNo, orderNo, detail}. Pure: `provider` is the provider's
    view of each trade number (or None when it was not asked); refunds in progress since before
    `stale_before` are reported."""
    orders = {o["id"]: o for o in data["orders"]}
    refunds: dict[int, list[Row]] = {}
    for r in data["refunds"]:
        refunds.setdefault(r["payment_id"], []).append(r)
    found: list[dict[str, Any]] = []

    def report(kind: str, payment: Row | None, order: Row | None, detail: str) -> None:
        found.append({"kind": kind, "tradeNo": payment["trade_no"] if payment else None,
                      "orderNo": order["order_no"] if order else None, "detail": detail})

    for p in data["payments"]:
        order = orders.get(p["order_id"])
        settled = p["status"] in ("PAID", "REFUNDED")
        # Money we hold that the order did not take: paid twice, or paid after it was cancelled.
        if p["status"] == "PAID" and p["id"] != order["paid_payment_id"]:
            if order["paid_payment_id"] is not None:
                report("double_payment", p, order, f"the order was paid by another payment too: refund {p['trade_no']}")
            else:
                report("payment_without_paid_order", p, order,
                       f"payment is PAID but the order is in status {order['status']}: refund it or fix the order")
        if p["amount"] != order["total_amount"]:
            report("amount_mismatch", p, order, f"payment {p['amount']} vs order total {order['total_amount']}")
        payment_refunds = refunds.get(p["id"], [])
        if p["status"] == "REFUNDED" and not any(r["status"] == "SUCCESS" for r in payment_refunds):
            report("refund_mismatch", p, order, "payment marked refunded without a successful refund")
        if any(r["status"] in ("ABNORMAL", "CLOSED", "FAILED") for r in payment_refunds) and p["status"] == "PAID":
            report("refund_failed", p, order, "a refund failed at the provider; the order is still refunding")
        stale = [r for r in payment_refunds if r["status"] == "PROCESSING" and r["created_at"] < stale_before]
        if stale:
            report("refund_pending", p, order, f"refund {stale[0]['refund_no']} has been in progress since "
                                               f"{stale[0]['created_at']}: ask again (/refunding) or settle it")
        if provider is not None and p["channel"] == channel and channel != "manual":
            theirs = provider.get(p["trade_no"], {})
            if "error" in theirs:
                report("provider_unreachable", p, order, theirs["error"])
            elif theirs.get("paid") and not settled:
                report("missed_payment", p, order, f"the provider reports {theirs['state']} but ours is {p['status']}")
            elif settled and not theirs.get("paid") and theirs.get("state") not in ("REFUND", "TRADE_CLOSED"):
                report("unconfirmed_payment", p, order,
                       f"ours is {p['status']} but the provider reports {theirs.get('state')}")
            elif theirs.get("paid") and theirs.get("amount") != p["amount"]:
                report("amount_mismatch", p, order, f"provider amount {theirs.get('amount')} vs ours {p['amount']}")
    for order in data["paid_without_payment"]:
        report("paid_order_without_payment", None, order, f"order is in status {order['status']} with no paid payment")
    return found


QUERIES_AT_ONCE = 4
QUERY_DEADLINE = 60.0  # seconds for all of a day's provider queries: what is left is reported unreachable


async def _ask(service: PaymentService, payments: list[Row]) -> dict[str, dict[str, Any]]:
    """The provider's view of every trade, a few queries at a time, within one deadline."""
    answers: dict[str, dict[str, Any]] = {p["trade_no"]: {"error": "not asked: the deadline passed"}
                                          for p in payments}
    limiter = trio.CapacityLimiter(QUERIES_AT_ONCE)

    async def ask(payment: Row) -> None:
        async with limiter:
            answers[payment["trade_no"]] = await service.provider_state(payment)

    with trio.move_on_after(QUERY_DEADLINE):
        async with trio.open_nursery() as nursery:
            for payment in payments:
                nursery.start_soon(ask, payment)
    return answers


async def reconcile(service: PaymentService, channel: str, day: date, ask_provider: bool) -> dict[str, Any]:
    since, until = window(day, service.settings.tz)
    data = await service.store.payments.for_reconciliation(channel, since, until)
    provider = None
    if ask_provider and channel in ("alipay", "wechat") and channel in service.settings.channels():
        provider = await _ask(service, data["payments"])
    stale_before = clock.iso(clock.now() - timedelta(days=1))
    mismatches = compare(data, provider, channel, stale_before)
    if channel != "manual":  # orders paid with no payment at all are reported once, on the manual channel
        mismatches = [m for m in mismatches if m["kind"] != "paid_order_without_payment"]
    paid = [p for p in data["payments"] if p["status"] in ("PAID", "REFUNDED")]
    ours = {p["id"] for p in data["payments"]}
    return {
        "channel": channel, "day": day.isoformat(), "timezone": str(service.settings.tz), "since": since,
        "until": until, "generatedAt": clock.iso(), "providerQueried": provider is not None,
        "payments": len(data["payments"]), "paid": len(paid), "paidAmount": sum(p["amount"] for p in paid),
        "refundedAmount": sum(r["amount"] for r in data["refunds"] if r["status"] == "SUCCESS"
                              and r["payment_id"] in ours and since <= r["settled_at"] < until),
        "mismatches": mismatches, "balanced": not mismatches,
    }
