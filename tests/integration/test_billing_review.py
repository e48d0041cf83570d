"""The billing review's changes, each against a real gateway over HTTP, with the stand-in Alipay and WeChat Pay
(tests/billing/standin.py) where a provider is involved:

1. a second payment the order did not take is refunded apart (the order keeps its own payment);
2. money received after the order was cancelled is recorded, reported, and can be refunded;
3. /api/order/{id}/refunding asked again after a provider failure asks the provider again, same refund number;
4. an order that costs nothing is never sent to a provider; the manual channel pays it;
5. provider callbacks are capped at 64 KiB;
6. reconciliation refuses days out of range and reports refunds stuck in progress;
7. an /api/order/start order whose transaction never came is cancelled by the billing sweep;
8. /api/order/stop stops the charging of a cancelled order;
9. manual payments through /api/payment/create: idempotent by key, and paying a completed order at once;
10. a payment whose channel is no longer configured cannot be refunded (400, nothing changes).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from gateway import clock
from gateway.billing import orders as billing_orders
from gateway.billing.orders import OrderBook
from gateway.billing.settings import from_config as billing_settings
from gateway.config import AlipayConfig
from tests.billing.fixtures import provider_config
from tests.billing.standin import closed_url, wechat_refund, yuan_text
from tests.conftest import started
from tests.helpers import BOOT, charger
from tests.integration.test_billing_orders import (
    START, STOP, ok, refused, start_after_remote_start, stop_tx,
)
from tests.integration.test_billing_providers import (
    SHANGHAI, awaiting, callbacks, completed_order, create_payment, data, order_detail,
    paid_at_provider, pay_by_callback, post_wechat_refund, to_status,
)
from tests.responder import answering
from tests.waiting import until

_numbers = itertools.count(1)


def today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def moves(detail: dict) -> list[tuple[int | None, int]]:
    return [(h["fromStatus"], h["toStatus"]) for h in detail["history"]]


def refund_calls(standin, channel: str) -> list[dict]:
    """What the stand-in was asked to refund: Alipay biz_content, or the WeChat request body."""
    if channel == "alipay":
        return [c.biz for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.refund"]
    return [c.json() for c in standin.received("/v3/refund/domestic/refunds")]


async def wechat_refund_success(http, provider_keys, payment: dict, refund_no: str) -> None:
    plain = wechat_refund(payment["tradeNo"], refund_no, payment["amount"], payment["amount"])
    r = await post_wechat_refund(http, provider_keys, payment, plain)
    assert r.status_code == 204, r.text


async def db_execute(gw, sql: str, *args: Any) -> int:
    def run(conn) -> int:
        return conn.execute(sql, args).rowcount
    return await gw.store.db.run(run)


# ---- 1. a second payment, which the order did not take, is refunded apart --------------------------------------

@pytest.mark.parametrize("wechat_answer", ["PROCESSING", "SUCCESS"])
async def test_a_second_payment_is_refunded_apart_and_the_order_keeps_its_own(gw, standin, provider_keys, wechat_answer):
    standin.wechat_refund_status = wechat_answer
    standin.refuse["alipay.trade.close"] = ("ACQ.SYSTEM_ERROR", "系统错误")  # the first code stays payable
    async with gw.http() as http:
        order, by_alipay = await awaiting(gw, http, "alipay")
        by_wechat, _ = await create_payment(http, order["id"], "wechat")  # the payer switched channels
        await pay_by_callback(http, standin, provider_keys, by_alipay)
        await pay_by_callback(http, standin, provider_keys, by_wechat)  # ...and paid twice
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["paidAmount"] == by_alipay["amount"]
        assert detail["paidPaymentId"] == by_alipay["id"]  # the order took the first payment
        assert {p["tradeNo"]: p["status"] for p in detail["payments"]} == {
            by_alipay["tradeNo"]: "PAID", by_wechat["tradeNo"]: "PAID"}
        history_before = detail["history"]

        # The second payment is refunded by its trade number: only that one, the order stays paid.
        r = await http.post("/api/payment/refund", json={"tradeNo": by_wechat["tradeNo"], "reason": "paid twice"})
        body = data(r)
        refund = body["refund"]
        assert refund["paymentId"] == by_wechat["id"] and refund["amount"] == by_wechat["amount"]
        assert refund["status"] == wechat_answer and body["order"]["status"] == 11
        [call] = refund_calls(standin, "wechat")
        assert call["out_trade_no"] == by_wechat["tradeNo"] and call["out_refund_no"] == refund["refundNo"]
        assert call["notify_url"].endswith("/api/payment/callback/wechat/refund")
        assert refund_calls(standin, "alipay") == []
        if wechat_answer == "PROCESSING":
            await wechat_refund_success(http, provider_keys, by_wechat, refund["refundNo"])

        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["refundedAmount"] == 0
        assert detail["paidAmount"] == by_alipay["amount"] and detail["paidPaymentId"] == by_alipay["id"]
        assert {p["tradeNo"]: p["status"] for p in detail["payments"]} == {
            by_alipay["tradeNo"]: "PAID", by_wechat["tradeNo"]: "REFUNDED"}
        [settled] = detail["refunds"]
        assert settled["status"] == "SUCCESS" and settled["refundNo"] == refund["refundNo"]
        assert moves(detail)[:len(history_before)] == moves({"history": history_before})
        added = detail["history"][len(history_before):]
        assert added and all((h["fromStatus"], h["toStatus"]) == (11, 11) for h in added), added
        assert any(by_wechat["tradeNo"] in h["cause"] for h in added), added  # the request is noted
        assert any(refund["refundNo"] in h["cause"] for h in added), added  # and its success
        assert not to_status(detail["history"], 12)

        # Then the order itself is refunded: its own (Alipay) payment, 11 -> 12 -> 13.
        if wechat_answer == "PROCESSING":
            r = await http.post(f"/api/order/{order['id']}/refunding", json={"reason": "charger fault"})
            assert ok(r)["status"] == 13
        else:
            r = await http.post("/api/payment/refund", json={"orderId": order["id"]})
            assert data(r)["refund"]["paymentId"] == by_alipay["id"] and data(r)["order"]["status"] == 13
        [alipay_call] = refund_calls(standin, "alipay")
        assert alipay_call["out_trade_no"] == by_alipay["tradeNo"]
        assert alipay_call["refund_amount"] == yuan_text(by_alipay["amount"])
        assert len(refund_calls(standin, "wechat")) == 1  # the WeChat payment is not refunded twice
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and detail["refundedAmount"] == by_alipay["amount"]
        assert moves(detail)[-2:] == [(11, 12), (12, 13)]
        assert sorted(p["status"] for p in detail["payments"]) == ["REFUNDED", "REFUNDED"]
        assert standin.alipay_trades[by_alipay["tradeNo"]].refunded == by_alipay["amount"]
        assert standin.wechat_trades[by_wechat["tradeNo"]].refunded == by_wechat["amount"]


# ---- 2. money received after the order was cancelled -------------------------------------------------------------

@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_a_payment_after_the_order_was_cancelled_is_reported_then_refunded(gw, standin, provider_keys, channel):
    standin.wechat_refund_status = "SUCCESS"
    # Closing the trade at the cancel fails at both providers, so the code stays payable.
    standin.refuse.update({"alipay.trade.close": ("ACQ.SYSTEM_ERROR", "系统错误"), "close": ("SYSTEM_ERROR", "系统错误")})
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, channel)
        assert data(await http.post(f"/api/order/{order['id']}/cancel", json={"reason": "left"}))["status"] == 2
        await pay_by_callback(http, standin, provider_keys, payment)  # the money arrived all the same
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 2 and detail["paidPaymentId"] is None
        [paid] = detail["payments"]
        assert paid["status"] == "PAID"
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": channel, "day": today()}))
        [mismatch] = report["mismatches"]
        assert mismatch["kind"] == "payment_without_paid_order" and mismatch["tradeNo"] == payment["tradeNo"]

        history_before = len(detail["history"])
        r = await http.post("/api/payment/refund", json={"tradeNo": payment["tradeNo"], "reason": "cancelled"})
        body = data(r)  # not a 409: this money must go back
        assert body["refund"]["status"] == "SUCCESS" and body["refund"]["amount"] == payment["amount"]
        assert body["order"]["status"] == 2
        [call] = refund_calls(standin, channel)
        assert call["out_trade_no"] == payment["tradeNo"]
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 2 and detail["refundedAmount"] == 0 and detail["paidAmount"] == 0
        assert detail["payments"][0]["status"] == "REFUNDED"
        added = detail["history"][history_before:]
        assert added and all((h["fromStatus"], h["toStatus"]) == (2, 2) for h in added), added
        assert any(payment["tradeNo"] in h["cause"] for h in added)
        # Asked again: the same refund, no second call to the provider.
        again = data(await http.post("/api/payment/refund", json={"tradeNo": payment["tradeNo"]}))
        assert again["refund"]["refundNo"] == body["refund"]["refundNo"]
        assert len(refund_calls(standin, channel)) == 1


# ---- 3. /refunding asked again after a provider failure asks the provider again --------------------------------

def _break_alipay_refund_answer(answer: bytes) -> bytes:
    return answer.replace(b'"fund_change":"Y"', b'"fund_change":"N"')  # after signing: the signature fails


def _break_wechat_refund_answer(answer: bytes) -> bytes:
    return answer.replace(b'"out_refund_no"', b'"out_refund_no" ', 1)  # after signing: the signature fails


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_refunding_again_after_a_tampered_answer_asks_with_the_same_refund_number(gw, standin, provider_keys, channel):
    standin.wechat_refund_status = "SUCCESS"
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, channel)
        standin.tamper = _break_alipay_refund_answer if channel == "alipay" else _break_wechat_refund_answer
        r = await http.post(f"/api/order/{order['id']}/refunding")
        standin.tamper = None
        refused(r, 502, "provider_error")
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 12
        [refund] = detail["refunds"]
        assert refund["status"] == "PROCESSING"
        assert detail["payments"][0]["status"] == "PAID"

        r = await http.post(f"/api/order/{order['id']}/refunding")
        assert ok(r)["status"] == 13
        calls = refund_calls(standin, channel)
        number = "out_request_no" if channel == "alipay" else "out_refund_no"
        assert [c[number] for c in calls] == [refund["refundNo"], refund["refundNo"]]
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and detail["refundedAmount"] == payment["amount"]
        [settled] = detail["refunds"]
        assert settled["refundNo"] == refund["refundNo"] and settled["status"] == "SUCCESS"
        assert detail["payments"][0]["status"] == "REFUNDED"
        assert moves(detail)[-2:] == [(11, 12), (12, 13)]
        trade = (standin.alipay_trades if channel == "alipay" else standin.wechat_trades)[payment["tradeNo"]]
        assert trade.refunded == payment["amount"]  # the money moved once


async def test_refunding_again_after_an_unreachable_provider_asks_it_again(nursery, tmp_path, provider_keys, standin):
    async with started(nursery, provider_config(tmp_path, provider_keys, standin)) as first, first.http() as http:
        order, payment = await paid_at_provider(first, http, standin, provider_keys, "alipay")
    down = provider_config(tmp_path, provider_keys, standin, alipay_url=closed_url() + "/gateway.do")
    async with started(nursery, down) as second, second.http() as http:
        refused(await http.post(f"/api/order/{order['id']}/refunding", json={"reason": "fault"}),
                502, "provider_error")
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 12
        [refund] = detail["refunds"]
        assert refund["status"] == "PROCESSING"
    assert refund_calls(standin, "alipay") == []
    async with started(nursery, provider_config(tmp_path, provider_keys, standin)) as third, third.http() as http:
        assert ok(await http.post(f"/api/order/{order['id']}/refunding"))["status"] == 13
        [call] = refund_calls(standin, "alipay")
        assert call["out_request_no"] == refund["refundNo"] and call["out_trade_no"] == payment["tradeNo"]
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and [r["status"] for r in detail["refunds"]] == ["SUCCESS"]
        assert detail["refundedAmount"] == payment["amount"]


# ---- 4. an order that costs nothing ------------------------------------------------------------------------------

async def zero_order(gw, http) -> dict:
    """A session that used no energy (meterStart == meterStop): completed, priced at 0."""
    n = next(_numbers)
    async with charger(gw.ocpp_port, f"CP-ZERO-{n}") as cp:
        await cp.result("BootNotification", BOOT)
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 5000,
                                                   "timestamp": "2026-03-02T02:00:00Z"}))["transactionId"]
        await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 5000, "idTag": "TAG1",
                                            "timestamp": "2026-03-02T02:10:00Z"})

    async def closed() -> dict | None:
        r = await http.get("/api/order/by-session", params={"transactionId": tx})
        return r.json()["data"] if r.status_code == 200 and r.json()["data"]["status"] == 1 else None
    return await until(closed)


async def test_an_order_that_costs_nothing_is_not_sent_to_a_provider_and_manual_pays_it(gw, standin):
    async with gw.http() as http:
        order = await zero_order(gw, http)
        assert order["totalAmount"] == 0 and order["energyWh"] == 0
        for channel in ("alipay", "wechat"):
            r = await http.post("/api/payment/create", json={"orderId": order["id"], "channel": channel})
            body = refused(r, 409, "conflict")
            assert order["orderNo"] in body["message"]
        assert standin.received() == []  # no provider request made
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 1 and detail["payments"] == []
        assert moves(detail) == [(None, 0), (0, 1)]

        payment, after = await create_payment(http, order["id"], "manual")
        assert payment["status"] == "PAID" and payment["amount"] == 0 and after["status"] == 11
        detail = await order_detail(http, order["id"])
        assert moves(detail) == [(None, 0), (0, 1), (1, 10), (10, 11)]
        assert detail["paidPaymentId"] == payment["id"]
        assert standin.received() == []


# ---- 5. callbacks over 64 KiB ----------------------------------------------------------------------------------

CALLBACK_PATHS = ["/api/payment/callback/alipay", "/api/payment/callback/alipay/refund",
                  "/api/payment/callback/wechat", "/api/payment/callback/wechat/refund"]
LIMIT = 64 * 1024


def _content_type(path: str) -> str:
    return "application/x-www-form-urlencoded; charset=utf-8" if "alipay" in path else "application/json"


async def post_raw(http, path: str, content: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=http.base_url, timeout=10) as own:  # the answer may end the connection
        return await own.post(path, content=content, headers={"Content-Type": _content_type(path)})


async def _chunks(body: bytes):
    for start in range(0, len(body), 8192):
        yield body[start:start + 8192]


@pytest.mark.parametrize("sent", ["with-length", "chunked"])
@pytest.mark.parametrize("path", CALLBACK_PATHS)
async def test_a_callback_over_64_kib_is_a_413_and_nothing_is_stored(gw, path, sent):
    body = b"x" * (LIMIT + 1)
    async with gw.http() as http:
        r = await post_raw(http, path, body if sent == "with-length" else _chunks(body))
        assert r.status_code == 413, r.text
        answer = r.json()  # the providers' failure reply, not the EVCS envelope
        assert answer == {"code": "FAIL", "message": answer["message"]} and "65536" in answer["message"]
        assert await callbacks(http) == []
        # Exactly 64 KiB is still received (and refused as the nonsense it is): the limit is not lower.
        r = await post_raw(http, path, b"y" * LIMIT)
        assert r.status_code != 413, r.text
        [cb] = await callbacks(http)
        assert cb["status"] == "refused"


# ---- 6. reconciliation: days out of range, refunds stuck in progress ------------------------------------------

@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
async def test_reconciliation_days_out_of_range_are_a_400(gw, day):
    async with gw.http() as http:
        refused(await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": day}),
                400, "bad_request")
        refused(await http.post("/api/reconciliation/execute", json={"day": day}), 400, "bad_request")
        refused(await http.get("/api/reconciliation/daily/alipay", params={"date": day}), 400, "bad_request")
        refused(await http.get("/api/reconciliation/daily/manual", params={"date": day}), 400, "bad_request")
        # a day in range is answered
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today()}))
        assert report["balanced"] is True


async def test_a_refund_in_progress_for_more_than_a_day_is_reported_pending(gw, standin, provider_keys):
    assert standin.wechat_refund_status == "PROCESSING"
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        refund = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))["refund"]
        assert refund["status"] == "PROCESSING"
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today()}))
        assert report["mismatches"] == []  # in progress for a moment: nothing to report

        two_days_ago = clock.iso(clock.now() - timedelta(days=2))
        assert await db_execute(gw, "UPDATE refunds SET created_at = ? WHERE refund_no = ?",
                                two_days_ago, refund["refundNo"]) == 1
        r = await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today()})
        [report] = data(r)
        assert report["balanced"] is False and r.json()["message"] == "mismatches found"
        [mismatch] = report["mismatches"]
        assert mismatch["kind"] == "refund_pending"
        assert mismatch["tradeNo"] == payment["tradeNo"] and mismatch["orderNo"] == order["orderNo"]
        assert refund["refundNo"] in mismatch["detail"]
        stored = data(await http.get("/api/reconciliation/daily/wechat", params={"date": today()}))
        assert stored == report
        assert (await order_detail(http, order["id"]))["status"] == 12  # reporting changes nothing


# ---- 7. an /api/order/start order that never gets a transaction ---------------------------------------------------

async def test_an_order_start_order_without_a_transaction_is_cancelled_by_the_sweep(gw, monkeypatch):
    async with answering(gw.ocpp_port, "CP-WAIT") as cp, gw.http() as http:
        # The charger accepts the remote start, and never starts.
        created = ok(await http.post("/api/order/start", json={"sessionId": "S-WAIT", "cpId": "CP-WAIT",
                                                                "idTag": "TAG1"}), 201)
        assert created["remoteStart"]["status"] == "Accepted" and created["status"] == 0
        assert cp.actions() == ["RemoteStartTransaction"]
        # A charging order (status 0 as well, with its transaction) on another charger.
        async with charger(gw.ocpp_port, "CP-RUN") as other:
            await other.result("BootNotification", BOOT)
            tx = (await other.result("StartTransaction", {"connectorId": 1, "idTag": "TAG2", "meterStart": 0,
                                                          "timestamp": START}))["transactionId"]

            async def opened() -> dict | None:
                r = await http.get("/api/order/by-session", params={"transactionId": tx})
                return r.json()["data"] if r.status_code == 200 else None
            charging = await until(opened)

            # The app's OrderBook is not reachable from the test's Gateway: the same class on the same store.
            book = OrderBook(gw.store, billing_settings(gw.config.billing), gw.running.chargers.events)
            await book.sweep()  # within the waiting time: nothing happens
            assert (await order_detail(http, created["id"]))["status"] == 0

            monkeypatch.setattr(billing_orders, "WAITING_ORDER_SECONDS", 0)
            await trio.sleep(0.01)
            await book.sweep()
            detail = await order_detail(http, created["id"])
            assert detail["status"] == 2
            assert moves(detail) == [(None, 0), (0, 2)]
            assert detail["history"][-1]["cause"] == "no transaction started for this order"
            after = await order_detail(http, charging["id"])
            assert after["status"] == 0 and moves(after) == [(None, 0)]  # it has a transaction: left alone
            await book.sweep()  # again: one change
            assert len((await order_detail(http, created["id"]))["history"]) == 2


# ---- 8. /api/order/stop on a cancelled order that is still charging ---------------------------------------------

async def test_order_stop_of_a_cancelled_order_still_charging_sends_a_remote_stop(gw):
    async with answering(gw.ocpp_port, "CP-STOP") as cp, gw.http() as http:
        start_after_remote_start(cp)
        created = ok(await http.post("/api/order/start", json={"sessionId": "S-STOP", "cpId": "CP-STOP",
                                                                "idTag": "TAG1"}), 201)

        async def linked() -> dict | None:
            detail = await order_detail(http, created["id"])
            return detail if detail["transactionId"] is not None else None
        tx = (await until(linked))["transactionId"]
        assert ok(await http.post(f"/api/order/{created['id']}/cancel", json={"reason": "wrong car"}))["status"] == 2

        r = await http.post("/api/order/stop", json={"sessionId": "S-STOP"})
        answer = ok(r)
        assert answer["remoteStop"] is not None and answer["remoteStop"]["status"] == "Accepted", r.json()
        assert r.json()["message"] != "order already stopped"
        assert [(a, p) for _, a, p in cp.received] == [
            ("RemoteStartTransaction", {"idTag": "TAG1"}), ("RemoteStopTransaction", {"transactionId": tx})]
        assert answer["status"] == 2

        await stop_tx(cp, tx, 9000, at=STOP, reason="Remote")

        async def stopped() -> dict | None:
            detail = await order_detail(http, created["id"])
            return detail if detail["stoppedAt"] is not None else None
        detail = await until(stopped)
        assert detail["status"] == 2
        r = await http.post("/api/order/stop", json={"orderId": created["id"]})
        assert ok(r)["remoteStop"] is None and r.json()["message"] == "order already stopped"
        assert cp.actions() == ["RemoteStartTransaction", "RemoteStopTransaction"]


# ---- 9. manual payments through /api/payment/create -------------------------------------------------------------

async def test_manual_create_with_an_idempotency_key_twice_is_one_payment(gw, standin):
    async with gw.http() as http:
        order, _ = await awaiting(gw, http, "alipay")  # awaiting payment, an Alipay QR open
        first, after = await create_payment(http, order["id"], "manual", key="cash-1")
        assert first["status"] == "PAID" and first["channel"] == "manual" and after["status"] == 11
        second, after = await create_payment(http, order["id"], "manual", key="cash-1")
        assert second["id"] == first["id"] and second["tradeNo"] == first["tradeNo"] and second["status"] == "PAID"
        assert after["status"] == 11
        detail = await order_detail(http, order["id"])
        assert len(to_status(detail["history"], 11)) == 1
        assert [p["channel"] for p in detail["payments"]].count("manual") == 1
        assert detail["paidPaymentId"] == first["id"] and detail["paidAmount"] == first["amount"]
        # Without a key, a second manual payment of a paid order is refused.
        r = await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "manual"})
        refused(r, 409, "conflict")
        assert len((await order_detail(http, order["id"]))["payments"]) == 2  # the Alipay one and the manual one


async def test_manual_create_pays_a_completed_order(gw, standin):
    async with gw.http() as http:
        order = await completed_order(gw, http)
        assert order["status"] == 1
        payment, after = await create_payment(http, order["id"], "manual", key="cash-2")
        assert payment["status"] == "PAID" and payment["amount"] == order["totalAmount"] and after["status"] == 11
        detail = await order_detail(http, order["id"])
        assert moves(detail) == [(None, 0), (0, 1), (1, 10), (10, 11)]
        again, _ = await create_payment(http, order["id"], "manual", key="cash-2")
        assert again["id"] == payment["id"]
        assert moves(await order_detail(http, order["id"])) == moves(detail)
        assert standin.received() == []


# ---- 10. a refund through a channel that is no longer configured -----------------------------------------------

async def test_a_refund_through_a_channel_no_longer_configured_is_a_400_and_changes_nothing(
        nursery, tmp_path, provider_keys, standin):
    async with started(nursery, provider_config(tmp_path, provider_keys, standin)) as first, first.http() as http:
        order, payment = await paid_at_provider(first, http, standin, provider_keys, "alipay")
    without_alipay = provider_config(tmp_path, provider_keys, standin)
    without_alipay.billing.alipay = AlipayConfig()  # the [billing.alipay] section emptied
    async with started(nursery, without_alipay) as second, second.http() as http:
        before = await order_detail(http, order["id"])
        assert before["status"] == 11
        for path, body in (("/api/payment/refund", {"orderId": order["id"]}),
                           ("/api/payment/refund", {"tradeNo": payment["tradeNo"]}),
                           (f"/api/order/{order['id']}/refunding", None)):
            answer = refused(await http.post(path, json=body), 400, "bad_request")
            assert "alipay" in answer["message"]
        after = await order_detail(http, order["id"])
        assert after == before  # nothing changed: no refund, no history, same status
        assert after["refunds"] == [] and after["payments"][0]["status"] == "PAID"
    assert refund_calls(standin, "alipay") == []


# ---- found in review: reconciliation after a payment the order did not take was refunded -----------------------

async def test_a_refunded_payment_of_a_cancelled_order_is_no_longer_reported(gw, standin, provider_keys):
    standin.refuse["alipay.trade.close"] = ("ACQ.SYSTEM_ERROR", "系统错误")  # the code stays payable after the cancel
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        data(await http.post(f"/api/order/{order['id']}/cancel"))
        await pay_by_callback(http, standin, provider_keys, payment)
        assert data(await http.post("/api/payment/refund", json={"tradeNo": payment["tradeNo"]}))[
            "refund"]["status"] == "SUCCESS"
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today()}))
        assert report["mismatches"] == []


async def paid_twice_wechat_refunded(gw, http, standin, provider_keys) -> tuple[dict, dict]:
    """An order paid by Alipay and by WeChat, the WeChat money given back: (Alipay, WeChat payment)."""
    standin.wechat_refund_status = "SUCCESS"
    standin.refuse["alipay.trade.close"] = ("ACQ.SYSTEM_ERROR", "系统错误")  # the first code stays payable
    order, by_alipay = await awaiting(gw, http, "alipay")
    by_wechat, _ = await create_payment(http, order["id"], "wechat")
    await pay_by_callback(http, standin, provider_keys, by_alipay)
    await pay_by_callback(http, standin, provider_keys, by_wechat)
    data(await http.post("/api/payment/refund", json={"tradeNo": by_wechat["tradeNo"]}))
    return by_alipay, by_wechat


async def test_a_second_payment_refunded_apart_is_no_longer_a_double_payment(gw, standin, provider_keys):
    async with gw.http() as http:
        await paid_twice_wechat_refunded(gw, http, standin, provider_keys)
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today()}))
        assert [m["kind"] for m in report["mismatches"]] == []


async def test_a_channels_report_counts_only_its_own_refunds(gw, standin, provider_keys):
    async with gw.http() as http:
        _, by_wechat = await paid_twice_wechat_refunded(gw, http, standin, provider_keys)
        [alipay] = data(await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today()}))
        [wechat] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today()}))
        assert wechat["refundedAmount"] == by_wechat["amount"]
        assert alipay["refundedAmount"] == 0  # no Alipay payment was refunded
