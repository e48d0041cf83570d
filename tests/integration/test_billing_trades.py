"""Payments that cannot leak: a trade's life cycle at the provider (expiry, closing, retried closes),
refunds as the providers have them (partial, several, failed, retried, given up, ABNORMAL then settled,
started in the merchant console, queried), one provider call however many ask at once, and a callback
intake that anyone may post to but nobody can fill.

The gateway runs for real; the stand-in (tests/billing/standin.py) plays both providers, signing and
checking as they do.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import trio

from gateway import clock
from gateway.config import Config
from gateway.http.accounts import hash_password
from tests.billing.standin import StandIn, wechat_refund, wechat_transaction, yuan_text
from tests.conftest import started
from tests.helpers import assert_error
from tests.integration.test_billing_providers import (
    alipay_form,
    awaiting,
    callbacks,
    completed_order,
    create_payment,
    data,
    order_detail,
    paid_at_provider,
    post_alipay,
    post_wechat,
    post_wechat_refund,
    wechat_pay_event,
)
from tests.waiting import until



@pytest.fixture
def billing_config(billing_config: Config) -> Config:
    """Both providers, with trades that expire and closes that are retried at once."""
    billing_config.billing.trade_expiry_minutes = 7
    billing_config.billing.close_retry_seconds = 0.05  # failed closes are tried again at once: the test need not wait
    billing_config.billing.close_attempts = 3
    return billing_config


async def payment_of(http, order_id: int, trade_no: str) -> dict[str, Any]:
    [payment] = [p for p in (await order_detail(http, order_id))["payments"] if p["tradeNo"] == trade_no]
    return payment


async def _paid(http, order_id: int, trade_no: str) -> bool:
    return (await payment_of(http, order_id, trade_no))["status"] == "PAID"


async def wait_close(http, order_id: int, trade_no: str, state: str) -> dict[str, Any]:
    async def closed() -> dict[str, Any] | None:
        payment = await payment_of(http, order_id, trade_no)
        return payment if payment["closeState"] == state else None
    return await until(closed, timeout=10)


def close_calls(standin: StandIn, trade_no: str) -> list:
    alipay = [c for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.close"
              and c.biz["out_trade_no"] == trade_no]
    wechat = [c for c in standin.received(f"/v3/pay/transactions/out-trade-no/{trade_no}/close")]
    return alipay + wechat


def refund_calls(standin: StandIn) -> list:
    return ([c for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.refund"]
            + standin.received("/v3/refund/domestic/refunds"))


async def refund(http, **body: Any) -> httpx.Response:
    return await http.post("/api/payment/refund", json=body)


# ---- the trade life cycle --------------------------------------------------------------------------------------------

async def test_every_qr_trade_carries_an_expiry_to_the_provider(gw, standin):
    async with gw.http() as http:
        before = datetime.now(timezone.utc)
        _, by_alipay = await awaiting(gw, http, "alipay")
        _, by_wechat = await awaiting(gw, http, "wechat")
        after = datetime.now(timezone.utc)
    assert standin.alipay_trades[by_alipay["tradeNo"]].expiry == "7m"  # billing.trade_expiry_minutes
    expiry = standin.wechat_trades[by_wechat["tradeNo"]].expiry
    moment = datetime.fromisoformat(expiry)
    assert moment.utcoffset() == timedelta(hours=8)  # RFC 3339 in Beijing time, as WeChat Pay writes it
    assert before + timedelta(minutes=7) - timedelta(seconds=1) <= moment <= after + timedelta(minutes=7)
    assert by_wechat["expiresAt"] and by_alipay["expiresAt"]


@pytest.mark.parametrize("status", ["cancelled", "paid", "refunded"])
async def test_a_payment_for_an_order_that_cannot_be_paid_is_refused_not_its_old_link(gw, standin, status):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        if status == "cancelled":
            assert data(await http.post(f"/api/order/{order['id']}/cancel"))["status"] == 2
        else:
            assert data(await http.post(f"/api/order/{order['id']}/paid", json={"note": "cash"}))["status"] == 11
            if status == "refunded":
                assert data(await refund(http, orderId=order["id"]))["order"]["status"] == 13
        for channel in ("alipay", "wechat", "manual"):
            r = await http.post("/api/payment/create", json={"orderId": order["id"], "channel": channel})
            body = assert_error(r, 409, "conflict")
            assert status in body["message"], body
            assert payment["payUrl"] not in r.text
        assert len(standin.received("/v3/pay/transactions/native")) == 0


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_cancelling_an_order_closes_its_trade_at_the_provider(gw, standin, channel):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, channel)
        assert data(await http.post(f"/api/order/{order['id']}/cancel"))["status"] == 2
        closed = await wait_close(http, order["id"], payment["tradeNo"], "closed")
        assert closed["status"] == "CLOSED" and closed["closeAttempts"] == 0
        [call] = close_calls(standin, payment["tradeNo"])
        assert call.verified  # signed as the provider checks it
        with pytest.raises(ValueError, match="closed"):  # the QR code can no longer be paid
            standin.pay(payment["tradeNo"])
        history = (await order_detail(http, order["id"]))["history"]
        assert any(payment["tradeNo"] in h["cause"] and "order cancelled" in h["cause"] for h in history)


async def test_a_cash_payment_or_another_channel_closes_the_open_trades(gw, standin):
    async with gw.http() as http:
        order, by_alipay = await awaiting(gw, http, "alipay")
        by_wechat, _ = await create_payment(http, order["id"], "wechat")  # the payer switched channels
        await wait_close(http, order["id"], by_alipay["tradeNo"], "closed")
        assert (await payment_of(http, order["id"], by_wechat["tradeNo"]))["closeState"] is None
        assert standin.wechat_trades[by_wechat["tradeNo"]].status == "NOTPAY"
        assert data(await http.post(f"/api/order/{order['id']}/paid", json={"note": "cash"}))["status"] == 11
        await wait_close(http, order["id"], by_wechat["tradeNo"], "closed")
        assert standin.wechat_trades[by_wechat["tradeNo"]].status == "CLOSED"
        assert standin.alipay_trades[by_alipay["tradeNo"]].status == "TRADE_CLOSED"


async def test_a_close_that_fails_is_retried_a_bounded_number_of_times_and_shown(gw, standin):
    standin.refuse["alipay.trade.close"] = ("ACQ.SYSTEM_ERROR", "系统繁忙")
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        await http.post(f"/api/order/{order['id']}/cancel")
        failed = await wait_close(http, order["id"], payment["tradeNo"], "failed")
        assert failed["closeAttempts"] == 3 and failed["status"] == "CREATED"  # billing.close_attempts
        assert "ACQ.SYSTEM_ERROR" in failed["closeNote"] and "3 of 3" in failed["closeNote"]
        assert len(close_calls(standin, payment["tradeNo"])) == 3


async def test_a_close_that_failed_is_closed_by_a_later_attempt(nursery, billing_config, standin):
    billing_config.billing.close_attempts = 1_000_000  # never given up while the test looks
    standin.refuse["alipay.trade.close"] = ("ACQ.SYSTEM_ERROR", "系统繁忙")
    async with started(nursery, billing_config) as gw, gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        await http.post(f"/api/order/{order['id']}/cancel")
        # recorded once its refusal was answered
        await until(lambda: close_calls(standin, payment["tradeNo"]), timeout=10)
        del standin.refuse["alipay.trade.close"]
        closed = await wait_close(http, order["id"], payment["tradeNo"], "closed")
        assert closed["status"] == "CLOSED" and closed["closeAttempts"] >= 1
        assert standin.alipay_trades[payment["tradeNo"]].status == "TRADE_CLOSED"


async def test_a_trade_paid_before_it_could_be_closed_is_recorded_in_the_orders_history(gw, standin):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        standin.pay(payment["tradeNo"])  # the payer paid; the callback has not come yet
        await http.post(f"/api/order/{order['id']}/cancel")
        await until(lambda: _paid(http, order["id"], payment["tradeNo"]), timeout=10)
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 2
        [note] = [h for h in detail["history"] if "money received" in h["cause"]]
        assert payment["tradeNo"] in note["cause"] and str(payment["amount"]) in note["cause"]
        assert "cancelled" in note["cause"] and "refund it" in note["cause"]


async def test_parallel_creates_for_one_order_ask_the_provider_once(gw, standin):
    async with gw.http() as http:
        order = await completed_order(gw, http)
        answers: list[dict] = []

        async def create() -> None:
            answers.append(data(await http.post("/api/payment/create",
                                                json={"orderId": order["id"], "channel": "alipay"}))["payment"])

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(create)
        assert len({a["tradeNo"] for a in answers}) == 1 and len({a["payUrl"] for a in answers}) == 1
        assert len(standin.received("/gateway.do")) == 1


# ---- refunds -----------------------------------------------------------------------------------------------------------

async def test_partial_refunds_up_to_the_paid_amount_each_with_its_own_number(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        total = payment["amount"]
        first = data(await refund(http, tradeNo=payment["tradeNo"], amount=500, reason="short session"))
        assert first["refund"]["status"] == "SUCCESS" and first["refund"]["amount"] == 500
        # Paid, partly refunded: back to 11 with the refunded part shown.
        assert first["order"]["status"] == 11 and first["order"]["refundedAmount"] == 500
        [call] = refund_calls(standin)
        assert call.biz["refund_amount"] == "5.00" and call.biz["out_request_no"] == first["refund"]["refundNo"]
        assert standin.alipay_trades[payment["tradeNo"]].refunded == 500

        too_much = assert_error(await refund(http, tradeNo=payment["tradeNo"], amount=total), 409, "conflict")
        assert str(total - 500) in too_much["message"]
        rest = data(await refund(http, tradeNo=payment["tradeNo"]))  # no amount: what is left
        assert rest["refund"]["amount"] == total - 500 and rest["refund"]["refundNo"] != first["refund"]["refundNo"]
        assert rest["order"]["status"] == 13 and rest["order"]["refundedAmount"] == total
        assert standin.alipay_trades[payment["tradeNo"]].refunded == total
        assert_error(await refund(http, tradeNo=payment["tradeNo"], amount=1), 409, "conflict")
        detail = await order_detail(http, order["id"])
        assert detail["payments"][0]["status"] == "REFUNDED" and len(detail["refunds"]) == 2
        assert [(h["fromStatus"], h["toStatus"]) for h in detail["history"] if h["fromStatus"] != h["toStatus"]][-4:] \
            == [(11, 12), (12, 11), (11, 12), (12, 13)]


@pytest.mark.parametrize("body, named", [
    ({"amount": 1, "amout": 2}, "amout"),
    ({"amount": 1, "refundAll": True, "currency": "CNY"}, "currency, refundAll"),
])
async def test_unknown_refund_fields_are_a_400_naming_them(gw, standin, provider_keys, body, named):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        error = assert_error(await refund(http, tradeNo=payment["tradeNo"], **body), 400, "bad_request")
        assert named in error["message"]
        for amount in (0, -5, 1.5, "100", True):
            assert_error(await refund(http, tradeNo=payment["tradeNo"], amount=amount), 400, "bad_request")
        assert refund_calls(standin) == [] and (await order_detail(http, order["id"]))["status"] == 11


async def test_a_wechat_partial_refund_is_refunding_until_its_callback_then_paid_again(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        body = data(await refund(http, orderId=order["id"], amount=300))
        assert body["refund"]["status"] == "PROCESSING" and body["order"]["status"] == 12
        [call] = refund_calls(standin)
        assert call.json()["amount"] == {"refund": 300, "total": payment["amount"], "currency": "CNY"}
        plain = wechat_refund(payment["tradeNo"], body["refund"]["refundNo"], 300, payment["amount"])
        r = await post_wechat_refund(http, provider_keys, payment, plain)
        assert r.status_code == 204
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["refundedAmount"] == 300
        assert detail["payments"][0]["status"] == "PAID"


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_parallel_refunds_of_one_trade_ask_the_provider_once(gw, standin, provider_keys, channel):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, channel)
        answers: list[httpx.Response] = []

        async def ask() -> None:
            answers.append(await refund(http, tradeNo=payment["tradeNo"]))

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(ask)
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        assert len({r.json()["data"]["refund"]["refundNo"] for r in answers}) == 1
        assert len(refund_calls(standin)) == 1
        assert len((await order_detail(http, order["id"]))["refunds"]) == 1


async def test_a_refused_refund_is_failed_then_given_up_back_to_paid_or_retried_with_its_number(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        standin.refuse["alipay.trade.refund"] = ("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
        r = await refund(http, tradeNo=payment["tradeNo"], reason="fault")
        assert "SELLER_BALANCE_NOT_ENOUGH" in assert_error(r, 502, "provider_error")["message"]
        detail = await order_detail(http, order["id"])
        [failed] = detail["refunds"]
        assert failed["status"] == "FAILED" and "SELLER_BALANCE_NOT_ENOUGH" in failed["note"]
        assert detail["status"] == 12  # refunding, until the operator acts
        # Asked again through the order: the same failed refund, no new number, no call.
        calls = len(refund_calls(standin))
        data(await http.post(f"/api/order/{order['id']}/refunding"))
        assert len(refund_calls(standin)) == calls and len((await order_detail(http, order["id"]))["refunds"]) == 1

        given_up = data(await http.post(f"/api/payment/refund/{failed['refundNo']}/give-up"))
        assert given_up["refund"]["status"] == "CANCELLED" and given_up["order"]["status"] == 11
        assert given_up["order"]["refundedAmount"] == 0
        assert_error(await http.post(f"/api/payment/refund/{failed['refundNo']}/retry"), 409, "conflict")

        # A new refund, refused too, then retried once the balance is there: the same refund number.
        assert_error(await refund(http, tradeNo=payment["tradeNo"]), 502, "provider_error")
        [_, second] = (await order_detail(http, order["id"]))["refunds"]
        assert second["status"] == "FAILED"
        del standin.refuse["alipay.trade.refund"]
        retried = data(await http.post(f"/api/payment/refund/{second['refundNo']}/retry"))
        assert retried["refund"]["refundNo"] == second["refundNo"] and retried["refund"]["status"] == "SUCCESS"
        assert retried["order"]["status"] == 13
        assert standin.alipay_trades[payment["tradeNo"]].refunded == payment["amount"]


async def test_a_wechat_abnormal_refund_is_settled_by_its_later_success(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        made = data(await refund(http, orderId=order["id"]))["refund"]
        abnormal = wechat_refund(payment["tradeNo"], made["refundNo"], payment["amount"], payment["amount"],
                                 refund_status="ABNORMAL")
        r = await post_wechat_refund(http, provider_keys, payment, abnormal, "REFUND.ABNORMAL")
        assert r.status_code == 204
        assert (await order_detail(http, order["id"]))["refunds"][0]["status"] == "ABNORMAL"
        # /refunding again does not send WeChat a second refund under a new number.
        data(await http.post(f"/api/order/{order['id']}/refunding"))
        assert len(refund_calls(standin)) == 1
        success = wechat_refund(payment["tradeNo"], made["refundNo"], payment["amount"], payment["amount"])
        r = await post_wechat_refund(http, provider_keys, payment, success)
        assert r.status_code == 204
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and detail["refundedAmount"] == payment["amount"]
        [settled] = detail["refunds"]
        assert settled["status"] == "SUCCESS" and settled["refundNo"] == made["refundNo"]


async def test_the_refund_query_asks_the_provider_and_applies_its_answer(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        made = data(await refund(http, orderId=order["id"]))["refund"]
        asked = data(await http.get(f"/api/payment/refund/{made['refundNo']}"))
        assert asked["provider"]["status"] == "PROCESSING" and asked["refund"]["status"] == "PROCESSING"
        standin.wechat_refund_states[made["refundNo"]] = "SUCCESS"  # the callback was lost
        asked = data(await http.get(f"/api/payment/refund/{made['refundNo']}"))
        assert asked["provider"] == {"status": "SUCCESS", "amount": payment["amount"],
                                     "refundId": standin.wechat_trades[payment["tradeNo"]].refunds[
                                         made["refundNo"]]["refund_id"]}
        assert asked["refund"]["status"] == "SUCCESS"
        assert (await order_detail(http, order["id"]))["status"] == 13
        [query] = [c for c in standin.received("/v3/refund/domestic/refunds/") if c.method == "GET"][-1:]
        assert query.verified
        assert_error(await http.get("/api/payment/refund/REF-20000101-999999"), 404, "not_found")


async def test_an_alipay_refund_query_reads_the_refund_it_names(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        made = data(await refund(http, orderId=order["id"], amount=100))["refund"]
        asked = data(await http.get(f"/api/payment/refund/{made['refundNo']}"))
        assert asked["provider"]["status"] == "SUCCESS" and asked["provider"]["amount"] == 100
        [query] = [c for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.fastpay.refund.query"]
        assert query.verified and query.biz["out_request_no"] == made["refundNo"]


async def test_refunds_started_in_the_merchant_console_are_recorded_from_their_notice(gw, standin, provider_keys):
    async with gw.http() as http:
        order, by_wechat = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        plain = wechat_refund(by_wechat["tradeNo"], "CONSOLE-0001", 300, by_wechat["amount"])
        r = await post_wechat_refund(http, provider_keys, by_wechat, plain)
        assert r.status_code == 204, r.text
        detail = await order_detail(http, order["id"])
        [console] = detail["refunds"]
        assert (console["refundNo"], console["amount"], console["status"], console["source"]) == (
            "CONSOLE-0001", 300, "SUCCESS", "provider")
        assert detail["status"] == 11 and detail["refundedAmount"] == 300

        other, by_alipay = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        trade = standin.alipay_trades[by_alipay["tradeNo"]]
        form = alipay_form(provider_keys, by_alipay, trade_no=trade.trade_no, out_biz_no="CONSOLE-0002",
                           refund_fee=yuan_text(by_alipay["amount"]), trade_status="TRADE_CLOSED")
        assert (await post_alipay(http, form, "/api/payment/callback/alipay/refund")).text == "success"
        detail = await order_detail(http, other["id"])
        assert detail["status"] == 13 and detail["refunds"][0]["amount"] == by_alipay["amount"]
        assert detail["payments"][0]["status"] == "REFUNDED"


# ---- callbacks -------------------------------------------------------------------------------------------------------

async def test_a_genuinely_signed_callback_that_is_refused_shows_its_trade_number(gw, standin, provider_keys):
    async with gw.http() as http:
        _, payment = await awaiting(gw, http, "wechat")
        plain = wechat_transaction(payment["tradeNo"], 1)  # signed by WeChat, but not our amount
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, plain=plain))
        assert r.status_code == 400
        _, by_alipay = await awaiting(gw, http, "alipay")
        assert (await post_alipay(http, alipay_form(provider_keys, by_alipay, app_id="2021000000009999"))).text == "fail"
        wechat_cb, alipay_cb = (await callbacks(http))[1], (await callbacks(http))[0]
        assert wechat_cb["status"] == "refused" and wechat_cb["tradeNo"] == payment["tradeNo"]
        assert alipay_cb["status"] == "refused" and alipay_cb["tradeNo"] == by_alipay["tradeNo"]
        assert wechat_cb["notifyId"] and alipay_cb["notifyId"]


async def test_one_raw_callback_is_readable_by_an_operator_not_a_viewer(nursery, billing_config, provider_keys, standin):
    billing_config.admin_password = "s3cret-pass"
    async with started(nursery, billing_config) as gw, gw.http() as http:
        await gw.store.users.put("val", await hash_password("password-val"), "viewer", clock.iso())
        await gw.store.users.put("oscar", await hash_password("password-oscar"), "operator", clock.iso())
        viewer, operator = httpx.BasicAuth("val", "password-val"), httpx.BasicAuth("oscar", "password-oscar")
        form = {"notify_id": "x", "out_trade_no": "PAY-1"}
        r = await http.post("/api/payment/callback/alipay", content=urllib.parse.urlencode(form),
                            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "session=s"})
        assert r.text == "fail"
        [listed] = data(await http.get("/api/payment/callbacks", auth=viewer))
        assert (await http.get(f"/api/payment/callbacks/{listed['id']}", auth=viewer)).status_code == 403
        raw = data(await http.get(f"/api/payment/callbacks/{listed['id']}", auth=operator))
        assert raw["body"] == urllib.parse.urlencode(form) and raw["bodyEncoding"] == "utf-8"
        assert raw["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        assert "cookie" not in {k.lower() for k in raw["headers"]}
        assert raw["status"] == "refused" and raw["reason"]
        assert_error(await http.get("/api/payment/callbacks/999999", auth=operator), 404, "not_found")


async def test_refused_callbacks_from_one_address_are_rate_limited(nursery, billing_config, provider_keys, standin):
    billing_config.billing.callback_refusals_per_minute = 5
    async with started(nursery, billing_config) as gw, gw.http() as http:
        _, payment = await awaiting(gw, http, "alipay")
        forged = alipay_form(provider_keys, payment, signer=provider_keys.app_private)  # a valid key, but not Alipay's
        for _ in range(5):
            assert (await post_alipay(http, forged)).text == "fail"
        r = await post_alipay(http, forged)
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
        assert r.json() == {"code": "FAIL", "message": "too many refused payment callbacks from this address: "
                                                       "try again in a minute"}
        assert len(await callbacks(http)) == 5  # the sixth was neither stored nor verified


async def test_refused_callbacks_are_kept_within_their_budget_accepted_ones_never_dropped(
        nursery, billing_config, provider_keys, standin):
    billing_config.billing.refused_callbacks_max_bytes = 20_000
    async with started(nursery, billing_config) as gw, gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        standin.pay(payment["tradeNo"])
        assert (await post_alipay(http, alipay_form(provider_keys, payment))).text == "success"
        filler = "x" * 4000
        for n in range(30):
            assert (await post_alipay(http, {"notify_id": str(n), "padding": filler})).text == "fail"
        kept = await callbacks(http)
        refused = [c for c in kept if c["status"] == "refused"]
        sizes = [len((data(await http.get(f"/api/payment/callbacks/{c['id']}")))["body"]) for c in refused]
        assert sum(sizes) <= 20_000 and 3 <= len(refused) < 30
        assert [c["id"] for c in refused] == sorted(c["id"] for c in refused)[::-1][:len(refused)]
        assert max(c["id"] for c in refused) == max(c["id"] for c in kept)  # the newest are the ones kept
        assert [c["status"] for c in kept if c["status"] != "refused"] == ["processed"]
        assert (await order_detail(http, order["id"]))["status"] == 11
