"""A generated day of 1,000 trades per channel, with every kind of disagreement between our records and the
provider's bill planted at known trades: reconciliation reports each one exactly once, and nothing else.

Our side is written through the store's own functions into a fresh database; the provider's side is the
stand-in's bill (tests/billing/standin_bills.py), downloaded and read the way the gateway does in production.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import trio

from tests.backend import database
from gateway import clock
from gateway.billing.payments import PaymentService
from gateway.billing.reconcile import reconcile
from gateway.billing.settings import BillingSettings
from gateway.store.store import open_store
from tests.billing.standin import BEIJING
from tests.billing.standin_bills import BillStandIn, Entry, fee_of, provider_no

DAY = date(2026, 2, 10)
TRADES = 1000
# planted disagreements: trade index -> kind
PLANTED = {
    5: "missed_payment", 105: "missed_payment", 505: "missed_payment",  # paid at the provider, ours never told
    15: "bill_amount_mismatch", 615: "bill_amount_mismatch",
    25: "missing_from_bill", 725: "missing_from_bill", 925: "missing_from_bill",  # ours paid, the provider no
    35: "refund_elsewhere", 435: "refund_elsewhere",  # partial refunds made in the merchant console
    45: "missed_refund", 845: "missed_refund",  # our refund still PROCESSING, the bill has it done
    55: "refund_amount_mismatch",
    65: "refund_missing_from_bill", 365: "refund_missing_from_bill",
}
UNKNOWN = 3  # bill payments of trades that are none of ours


def at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BEIJING)


@pytest.fixture
def standin(provider_keys):
    with BillStandIn(provider_keys) as running:
        yield running


async def _generate(store, standin: BillStandIn, channel: str) -> dict[tuple[str, str], int]:
    """Write the day on both sides; return the expected (kind, tradeNo) counts."""
    expected: Counter = Counter()
    limiter = trio.CapacityLimiter(64)  # many store jobs in flight: the writer batches them

    async def trade(i: int) -> None:
        async with limiter:
            kind = PLANTED.get(i)
            amount = 100 + (i * 37) % 5000
            when = at(DAY, 0, 20) + timedelta(seconds=i * 79)  # 00:20 to 22:17, Beijing
            bill_at = when + timedelta(seconds=2)
            if i == 995:  # ours just before midnight: expected in the next day's bill, found in this one
                when, bill_at = at(DAY, 23, 55), at(DAY, 23, 55, 3)
            elif i == 996:  # ours just after midnight, the provider's just before: in the stored previous bill
                when, bill_at = at(DAY, 0, 0, 5), at(DAY - timedelta(days=1), 23, 59, 59)
            elif i == 997:  # ours just before midnight of the day before, the provider's just after
                when, bill_at = at(DAY - timedelta(days=1), 23, 50), at(DAY, 0, 0, 1)
            elif i == 998:  # ours at 23:50, the provider's after midnight: the next day's business
                when, bill_at = at(DAY, 23, 50), at(DAY + timedelta(days=1), 0, 0, 2)
            stamp, day8 = clock.iso(when), when.strftime("%Y%m%d")
            order, _ = await store.orders.create_external(f"gen-{channel}-{i}", "CP-GEN", 1, "TAG", "standard",
                                                          "CNY", day8, stamp)
            await store.orders.close(order["id"], {"total_amount": amount, "energy_wh": 1000,
                                                   "started_at": stamp, "stopped_at": stamp}, "closed", stamp)
            _, payment, _ = await store.payments.create(order["id"], channel, None, None, day8, stamp)
            trade_no, their_no = payment["trade_no"], provider_no(channel)
            if kind != "missed_payment":
                await store.payments.mark_paid(payment["id"], their_no, f"paid ({channel} callback)", stamp)
            if kind != "missing_from_bill":
                billed = amount + 1 if kind == "bill_amount_mismatch" else amount
                standin.add(channel, Entry("payment", trade_no, their_no, billed, bill_at))
            if kind:
                expected[(kind, trade_no)] += 1
            refund_at = when + timedelta(hours=1)
            if kind == "refund_elsewhere":
                standin.add(channel, Entry("refund", trade_no, their_no, amount // 3, refund_at,
                                           refund_no=f"CONSOLE-{i}", refund_id=f"5030{i:025d}"))
            elif i % 10 == 3 or kind in ("missed_refund", "refund_amount_mismatch", "refund_missing_from_bill"):
                _, refund, _ = await store.payments.start_refund(payment["id"], None, "generated", day8,
                                                                 clock.iso(refund_at))
                if kind != "missed_refund":
                    await store.payments.settle_refund(refund["id"], "SUCCESS", f"5030{i:025d}", "refunded",
                                                       clock.iso(refund_at))
                if kind != "refund_missing_from_bill":
                    refunded = amount - 1 if kind == "refund_amount_mismatch" else amount
                    standin.add(channel, Entry("refund", trade_no, their_no, refunded, refund_at + timedelta(seconds=2),
                                               refund_no=refund["refund_no"], refund_id=f"5030{i:025d}"))

    async with trio.open_nursery() as nursery:
        for i in range(TRADES):
            nursery.start_soon(trade, i)
    for n in range(UNKNOWN):  # another system's trades on the same merchant account
        standin.add(channel, Entry("payment", f"OTHER-{n}", provider_no(channel), 500 + n, at(DAY, 12, n)))
        expected[("unknown_trade", f"OTHER-{n}")] += 1
    return expected


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_a_day_of_1000_trades_reports_each_planted_mismatch_exactly_once(
        tmp_path: Path, standin, alipay_settings, wechat_settings, channel):
    settings = BillingSettings(tariffs={}, default_tariff="standard", charger_tariffs={},
                               tz=ZoneInfo("Asia/Shanghai"), currency="CNY", alipay=alipay_settings,
                               wechat=wechat_settings)
    async with open_store(database(tmp_path, "gateway.db")) as store:
        expected = await _generate(store, standin, channel)
        service = PaymentService(store, settings, orders=None)
        await reconcile(service, channel, DAY - timedelta(days=1), ask_provider=True)  # keeps that day's bill
        report = await reconcile(service, channel, DAY, ask_provider=True)

    assert report["source"] == "bill", report["billError"]
    got = Counter((m["kind"], m["tradeNo"]) for m in report["mismatches"])
    assert got == expected  # every planted one, once, and nothing else
    assert len(expected) == len(PLANTED) + UNKNOWN
    by_trade = {m["tradeNo"]: m for m in report["mismatches"]}
    for m in report["mismatches"]:
        if m["kind"] in ("missed_payment", "unknown_trade", "refund_elsewhere", "bill_amount_mismatch"):
            assert m["providerAmount"] is not None  # the provider's figure is shown
    # the bill's figures, summed here from the stand-in's own entries
    entries = standin.entries[(channel, DAY)]
    pays = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    assert report["bill"] == {
        "payments": len(pays), "paidAmount": sum(e.amount for e in pays),
        "refunds": len(refunds), "refundedAmount": sum(e.amount for e in refunds),
        "fees": sum(fee_of(e.amount) for e in pays) - sum(fee_of(e.amount) for e in refunds),
        "settlement": sum(e.amount for e in pays) - sum(e.amount for e in refunds)}
    assert len(pays) == TRADES - 3 - 1 - 1 + UNKNOWN  # minus missing_from_bill, 996 (day before), 998 (day after)
    assert by_trade  # the report names the trades
