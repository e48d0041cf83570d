"""Reconciliation against the providers' daily bills through a running gateway: one bill request per day, a refund
made in the merchant console and another system's trade reported, the CSV export, the fall-back to trade-by-trade
queries when there is no bill, and the daily run catching up the days missed while stopped."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Iterator

import pytest

from tests.billing.standin import BEIJING, ProviderKeys
from tests.billing.standin_bills import BillStandIn, Entry
from tests.conftest import started
from tests.helpers import assert_error
from tests.integration.test_billing_providers import (
    data,
    paid_at_provider,
)
from tests.waiting import until


@pytest.fixture
def standin(provider_keys: ProviderKeys) -> Iterator[BillStandIn]:
    with BillStandIn(provider_keys) as running:
        yield running


def today() -> str:
    return datetime.now(BEIJING).date().isoformat()  # the provider's day (billing.timezone is Asia/Shanghai here)


def bill_requests(standin: BillStandIn, channel: str) -> int:
    if channel == "alipay":
        return sum(1 for r in standin.received("/gateway.do")
                   if r.form.get("method") == "alipay.data.dataservice.bill.downloadurl.query")
    return len(standin.received("/v3/bill/tradebill"))


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_console_refund_and_foreign_trade_are_reported_from_the_bill_and_exported(gw, standin, provider_keys, channel):
    async with gw.http() as http:
        _, payment = await paid_at_provider(gw, http, standin, provider_keys, channel)
        now = datetime.now(BEIJING)
        standin.add(channel, Entry("refund", payment["tradeNo"], "T1", 100, now, refund_no="CONSOLE-1",
                                   refund_id="5030000000000000000000000001"))
        standin.add(channel, Entry("payment", "=HYPERLINK(\"http://x\")", "T2", 777, now))
        queries_before = len(standin.received())
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": channel, "day": today()}))
        assert report["source"] == "bill" and report["billError"] is None
        assert bill_requests(standin, channel) == 1
        assert not [r for r in standin.received()[queries_before:] if "query" in r.path + r.form.get("method", "")
                    and "bill" not in r.path + r.form.get("method", "")]  # no trade-by-trade queries
        kinds = sorted((m["kind"], m["tradeNo"], m["providerAmount"]) for m in report["mismatches"])
        assert kinds == [("refund_elsewhere", payment["tradeNo"], 100), ("unknown_trade", '=HYPERLINK("http://x")', 777)]
        assert report["bill"]["paidAmount"] == payment["amount"] + 777

        r = await http.get(f"/api/reconciliation/daily/{channel}", params={"date": today(), "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted((row["kind"], row["tradeNo"], row["providerAmount"]) for row in rows) == [
            ("refund_elsewhere", payment["tradeNo"], "100"),
            ("unknown_trade", "'=HYPERLINK(\"http://x\")", "777")]  # never a formula in a spreadsheet
        assert all(row["channel"] == channel and row["day"] == today() for row in rows)

        assert_error(await http.get(f"/api/reconciliation/daily/{channel}", params={"format": "xls"}), 400,
                     "bad_request")


async def test_without_a_bill_each_trade_is_asked_instead(gw, standin, provider_keys):
    async with gw.http() as http:
        _, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        standin.not_ready.add(("wechat", date.fromisoformat(today())))
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today()}))
        assert report["source"] == "queries"
        assert "NO_STATEMENT_EXIST" in report["billError"]
        assert report["balanced"], report["mismatches"]
        assert len(standin.received(f"/v3/pay/transactions/out-trade-no/{payment['tradeNo']}")) >= 1


async def _stored(http, channel: str, day: date) -> dict:
    """The stored report of a day, once the daily run has made it (a computed one says source "ours")."""
    async def stored() -> dict | None:
        report = data(await http.get(f"/api/reconciliation/daily/{channel}", params={"date": day.isoformat()}))
        return report if report["source"] != "ours" else None
    return await until(stored, timeout=20)


async def test_the_daily_run_catches_up_the_days_missed_while_stopped(nursery, billing_config, standin):
    yesterday = datetime.now(BEIJING).date() - timedelta(days=1)  # billing.timezone is Asia/Shanghai here
    billing_config.billing.reconcile_channels = ["alipay"]
    async with started(nursery, billing_config) as first:  # reconcile_at "" (tests/conftest.py): no daily run
        async with first.http() as http:
            for done in (yesterday - timedelta(days=2), yesterday + timedelta(days=10)):  # a later day run by hand
                data(await http.post("/api/reconciliation/execute", json={"channel": "alipay",
                                                                         "day": done.isoformat()}))
        await first.stop()
    assert bill_requests(standin, "alipay") == 2

    billing_config.billing.reconcile_at = "00:00"  # always passed: yesterday is due
    async with started(nursery, billing_config) as second:
        async with second.http() as http:
            for missed in (yesterday - timedelta(days=1), yesterday):
                assert (await _stored(http, "alipay", missed))["source"] == "bill"
    assert bill_requests(standin, "alipay") == 4  # one per missed day, none for the days done before
