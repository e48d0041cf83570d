"""Reconciliation: every disagreement between payments, refunds, orders and the provider, for one
channel and one day (in the billing time zone), each reported once with its kind.

The provider's side is its daily trade bill (bills.py), one download per day compared line by line (pure:
`compare_bill`); only when there is no bill is each trade queried, a few at a time within a deadline (`_ask`).
`run_daily` reconciles the day before every day and catches up the days missed while the gateway was stopped;
`as_csv` exports a report."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

import attrs
import structlog
import trio

from .. import clock
from ..orderstates import SETTLED_PAYMENTS, PaymentStatus, RefundStatus
from ..store.db import StoreClosed
from . import bills
from .bills import BEIJING, Bill, BillLine
from .errors import ProviderError
from .payments import PaymentService

Row = dict[str, Any]
log = structlog.get_logger("gateway.billing")


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
                      "orderNo": order["order_no"] if order else None, "refundNo": None, "providerAmount": None,
                      "ourAmount": None, "detail": detail})

    for p in data["payments"]:
        order = orders.get(p["order_id"])
        settled = p["status"] in SETTLED_PAYMENTS
        # Money we hold that the order did not take: paid twice, or paid after it was cancelled.
        if p["status"] == PaymentStatus.PAID and p["id"] != order["paid_payment_id"]:
            if order["paid_payment_id"] is not None:
                report("double_payment", p, order, f"the order was paid by another payment too: refund {p['trade_no']}")
            else:
                report("payment_without_paid_order", p, order,
                       f"payment is PAID but the order is in status {order['status']}: refund it or fix the order")
        if p["amount"] != order["total_amount"]:
            report("amount_mismatch", p, order, f"payment {p['amount']} vs order total {order['total_amount']}")
        payment_refunds = refunds.get(p["id"], [])
        if (p["status"] == PaymentStatus.REFUNDED
                and not any(r["status"] == RefundStatus.SUCCESS for r in payment_refunds)):
            report("refund_mismatch", p, order, "payment marked refunded without a successful refund")
        failed = (RefundStatus.ABNORMAL, RefundStatus.CLOSED, RefundStatus.FAILED)
        if any(r["status"] in failed for r in payment_refunds) and p["status"] == PaymentStatus.PAID:
            report("refund_failed", p, order, "a refund failed at the provider; the order is still refunding")
        stale = [r for r in payment_refunds
                 if r["status"] == RefundStatus.PROCESSING and r["created_at"] < stale_before]
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


# A payment our clock puts just before midnight may be completed just after it on the provider's: each of our
# payments is expected in the bill of the day its completion falls on, shifted back by this margin, or in the
# bill of the day before; so each is looked for once, in the right pair of bills.
MIDNIGHT_MARGIN = timedelta(minutes=15)


def bill_window(day: date) -> tuple[str, str]:
    """[since, until) in UTC text of our completions expected in `day`'s bill (or the one before it)."""
    start = datetime.combine(day, time(0), BEIJING) - MIDNIGHT_MARGIN
    return clock.iso(start), clock.iso(start + timedelta(days=1))


def compare_bill(bill: Bill, previous: list[BillLine], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """Every disagreement between a provider's bill and our records, each once, as {kind, tradeNo, refundNo,
    providerAmount, ourAmount, detail}. Pure.

    `ours` holds our payments named by the bill or completed in its window (`bill_window`), their refunds, and
    the ids of our refunds settled in that window (`settled_refund_ids`); `previous` is the day before's bill,
    where a payment completed near midnight may be instead.
    """
    payments = {p["trade_no"]: p for p in ours["payments"]}
    refunds = {r["refund_no"]: r for r in ours["refunds"]}
    found: list[dict[str, Any]] = []

    def report(kind: str, trade_no: str, detail: str, *, refund_no: str | None = None,
               theirs: int | None = None, mine: int | None = None) -> None:
        found.append({"kind": kind, "tradeNo": trade_no, "orderNo": None, "refundNo": refund_no,
                      "providerAmount": theirs, "ourAmount": mine, "detail": detail})

    for line in bill.lines:
        payment = payments.get(line.out_trade_no)
        if line.kind == "payment":
            if payment is None or payment["channel"] != bill.channel:
                report("unknown_trade", line.out_trade_no, f"the bill has a payment of {line.amount} "
                       f"({line.provider_trade_no}) that is none of our {bill.channel} trades", theirs=line.amount)
            elif payment["status"] not in SETTLED_PAYMENTS:
                report("missed_payment", line.out_trade_no, f"the provider was paid {line.amount} but ours is "
                       f"{payment['status']}: its callback was missed", theirs=line.amount, mine=payment["amount"])
            elif line.amount != payment["amount"]:
                report("bill_amount_mismatch", line.out_trade_no, f"the bill says {line.amount}, ours "
                       f"{payment['amount']}", theirs=line.amount, mine=payment["amount"])
            continue
        refund = refunds.get(line.refund_no) if line.refund_no else None
        if refund is None or payment is None or refund["payment_id"] != payment["id"]:
            report("refund_elsewhere", line.out_trade_no, f"a refund of {line.amount} ({line.refund_no or 'no number'})"
                   " that the gateway did not make: made in the merchant console?", refund_no=line.refund_no,
                   theirs=line.amount)
        elif refund["status"] != RefundStatus.SUCCESS:
            report("missed_refund", line.out_trade_no, f"the provider refunded {line.amount} but ours is "
                   f"{refund['status']}: its notice was missed", refund_no=line.refund_no, theirs=line.amount,
                   mine=refund["amount"])
        elif line.amount != refund["amount"]:
            report("refund_amount_mismatch", line.out_trade_no, f"the bill refunds {line.amount}, ours "
                   f"{refund['amount']}", refund_no=line.refund_no, theirs=line.amount, mine=refund["amount"])

    billed = {(x.kind, x.out_trade_no, x.refund_no) for x in (*bill.lines, *previous)}
    since, until = bill_window(bill.day)
    for p in ours["payments"]:
        if (p["channel"] == bill.channel and p["status"] in SETTLED_PAYMENTS and since <= (p["paid_at"] or "") < until
                and ("payment", p["trade_no"], None) not in billed):
            report("missing_from_bill", p["trade_no"], f"ours is {p['status']} since {p['paid_at']} but no bill "
                   "has it: a payment the provider does not know", mine=p["amount"])
    by_id = {p["id"]: p for p in ours["payments"]}
    for r in ours["refunds"]:
        payment = by_id[r["payment_id"]]
        if r["id"] in ours["settled_refund_ids"] and ("refund", payment["trade_no"], r["refund_no"]) not in billed:
            report("refund_missing_from_bill", payment["trade_no"], f"our refund settled at {r['settled_at']} "
                   "is in no bill", refund_no=r["refund_no"], mine=r["amount"])
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


async def fetch_bill(service: PaymentService, channel: str, day: date) -> Bill:
    """Download and read a day's trade bill: one request for the link, one for the file (each on a worker
    thread with its time-out); BillNotReady, BillError or ProviderError when it cannot be had."""
    text = day.isoformat()
    if channel == "alipay":
        timeout = service.settings.alipay.timeout
        url = await service._provider(timeout, service.alipay.bill_url, text)
        data = await service._provider(timeout * 3, bills.fetch, url, timeout * 3, "Alipay bill download")
        return bills.parse_alipay_zip(data, day)
    timeout = service.settings.wechat.timeout
    link = await service._provider(timeout, service.wechat.trade_bill, text)
    data = await service._provider(timeout * 3, service.wechat.download, link["download_url"])
    bills.check_sha1(data, link["hash_type"], link["hash_value"])
    return bills.parse_wechat(data, day)


async def _against_bill(service: PaymentService, channel: str, day: date) -> tuple[dict[str, Any], list[dict]]:
    """The bill's totals and its mismatches with our records (the bill is kept for the next day's run)."""
    bill = await fetch_bill(service, channel, day)
    store = service.store.bills
    await store.save(channel, day.isoformat(), [attrs.asdict(line) for line in bill.lines], bill.totals(),
                     clock.iso())
    previous = [BillLine(**row) for row in await store.lines(channel, (day - timedelta(days=1)).isoformat()) or []]
    since, until = bill_window(day)
    ours = await store.ours(channel, [line.out_trade_no for line in bill.lines], since, until)
    return bill.totals(), compare_bill(bill, previous, ours)


async def reconcile(service: PaymentService, channel: str, day: date, ask_provider: bool) -> dict[str, Any]:
    """A day's report for one channel. With `ask_provider`, the provider's bill for the day is compared line by
    line; when it cannot be had, each of our trades is asked about instead (bounded: `_ask`)."""
    since, until = window(day, service.settings.tz)
    data = await service.store.payments.for_reconciliation(channel, since, until)
    provider = bill_totals = bill_error = None
    bill_mismatches: list[dict[str, Any]] = []
    if ask_provider and channel in ("alipay", "wechat") and channel in service.settings.channels():
        try:
            bill_totals, bill_mismatches = await _against_bill(service, channel, day)
        except ProviderError as exc:
            bill_error = str(exc)
            log.warning("reconciliation: no bill, asking trade by trade", channel=channel, day=str(day),
                        reason=bill_error)
            provider = await _ask(service, data["payments"])
    stale_before = clock.iso(clock.now() - timedelta(days=1))
    # a refund the bill shows done is reported as missed_refund, not again as pending
    settled = {m["tradeNo"] for m in bill_mismatches if m["kind"] == "missed_refund"}
    mismatches = [m for m in compare(data, provider, channel, stale_before)
                  if not (m["kind"] == "refund_pending" and m["tradeNo"] in settled)] + bill_mismatches
    if channel != "manual":  # orders paid with no payment at all are reported once, on the manual channel
        mismatches = [m for m in mismatches if m["kind"] != "paid_order_without_payment"]
    paid = [p for p in data["payments"] if p["status"] in SETTLED_PAYMENTS]
    ours = {p["id"] for p in data["payments"]}
    return {
        "channel": channel, "day": day.isoformat(), "timezone": str(service.settings.tz), "since": since,
        "until": until, "generatedAt": clock.iso(), "providerQueried": provider is not None or bill_totals is not None,
        "source": "bill" if bill_totals is not None else "queries" if provider is not None else "ours",
        "bill": bill_totals, "billError": bill_error,
        "payments": len(data["payments"]), "paid": len(paid), "paidAmount": sum(p["amount"] for p in paid),
        "refundedAmount": sum(r["amount"] for r in data["refunds"] if r["status"] == RefundStatus.SUCCESS
                              and r["payment_id"] in ours and since <= r["settled_at"] < until),
        "mismatches": mismatches, "balanced": not mismatches,
    }


async def execute(service: PaymentService, channel: str, day: date) -> dict[str, Any]:
    """Reconcile a day asking the provider (its bill), and keep the report."""
    report = await reconcile(service, channel, day, ask_provider=True)
    await service.store.payments.save_report(channel, day.isoformat(), report, clock.iso())
    return report


# ---- the daily run ---------------------------------------------------------------------------------------------------

CATCH_UP_DAYS = 31  # at most this many missed days are caught up at start (WeChat keeps bills for 3 months)


def due_days(now: datetime, at: time, last: date | None) -> list[date]:
    """The days to reconcile now: the day before today once `at` has passed (else the day before that), and
    every day after `last` up to it, at most CATCH_UP_DAYS; only the latest one when nothing was ever done."""
    latest = now.date() - timedelta(days=1 if now.time() >= at else 2)
    if last is None or last >= latest:
        return [] if last is not None else [latest]
    first = max(last + timedelta(days=1), latest - timedelta(days=CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


def next_run(now: datetime, at: time) -> datetime:
    """The next moment the wall clock of `now`'s zone shows `at` (tomorrow's if it has passed today)."""
    today = datetime.combine(now.date(), at, now.tzinfo)
    return today if today > now else datetime.combine(now.date() + timedelta(days=1), at, now.tzinfo)


async def run_daily(service: PaymentService, at: time, channels: list[str]) -> None:
    """Reconcile every configured channel of `channels` each day at `at` (billing time zone), catching up the
    days missed while stopped first. A failing run is logged and retried the next day; it never stops the gateway."""
    wanted = [c for c in channels if c in service.settings.channels()]
    while True:
        now = clock.now().astimezone(service.settings.tz)
        latest = due_days(now, at, None)[0]
        for channel in wanted:
            try:
                last = await service.store.bills.last_reconciled_day(channel, latest.isoformat())
            except StoreClosed:
                return
            except Exception as exc:  # the database locked or failing: tried again at the next run
                log.error("reconciliation failed", channel=channel, error=repr(exc)[:300])
                continue
            for day in due_days(now, at, date.fromisoformat(last) if last else None):
                try:
                    report = await execute(service, channel, day)
                    log.info("reconciliation done", channel=channel, day=str(day), source=report["source"],
                             mismatches=len(report["mismatches"]))
                except StoreClosed:
                    return
                except Exception as exc:  # one bad day must not end the schedule
                    log.error("reconciliation failed", channel=channel, day=str(day), error=repr(exc)[:300])
                    break
        wake = next_run(clock.now().astimezone(service.settings.tz), at)
        await trio.sleep_until(trio.current_time() + max(0.0, (wake - clock.now()).total_seconds()))


# ---- export -----------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("kind", "tradeNo", "orderNo", "refundNo", "providerAmount", "ourAmount", "detail")


def as_csv(report: dict[str, Any]) -> str:
    """A report's mismatches as CSV (amounts in minor units), one line each, for a spreadsheet. A text cell that
    a spreadsheet would run as a formula (=, +, -, @ first) is quoted with a leading apostrophe: trade numbers in
    a provider's bill are not ours to trust."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("channel", "day", *CSV_COLUMNS))
    for m in report["mismatches"]:
        cells = [m.get(c) for c in CSV_COLUMNS]
        writer.writerow([report["channel"], report["day"],
                         *("'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in cells)])
    return out.getvalue()
