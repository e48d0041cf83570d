"""Alipay and WeChat Pay end to end: the gateway runs for real, a charger makes the order, the stand-in
(tests/billing/standin.py) plays both providers, and callbacks arrive over HTTP as the providers send them.

Covered: signed payment creation, valid callbacks, every refusal (nothing changes, the callback is kept as
refused with its reason), replays, refunds, a missed callback recovered by a query, callbacks surviving a stop
between arrival and processing, reconciliation, idempotency keys and an unreachable provider.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway import clock
from tests.billing.fixtures import provider_config
from tests.billing.standin import (
    ProviderKeys,
    alipay_content,
    alipay_notification,
    closed_url,
    rsa_verifies,
    wechat_headers,
    wechat_notification,
    wechat_refund,
    wechat_transaction,
    yuan_text,
)
from tests.conftest import Gateway, started
from tests.helpers import BOOT, assert_error, charger
from tests.waiting import until

FORM = "application/x-www-form-urlencoded; charset=utf-8"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_charger_numbers = itertools.count(1)


# provider_keys, other_key and standin come from tests/billing/fixtures.py, billing_config and gw (a gateway
# with both providers) from tests/integration/conftest.py.


# ---- helpers -----------------------------------------------------------------------------------------------------

def data(r) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


async def order_detail(http, order_id: int) -> dict[str, Any]:
    return data(await http.get(f"/api/order/{order_id}"))


async def completed_order(gw: Gateway, http) -> dict[str, Any]:
    """A charger charges 12.345 kWh and stops; the order closes (status 1) with a price."""
    n = next(_charger_numbers)
    cp_id = f"CP-PAY-{n}"
    start_at = f"2026-03-02T02:{n % 60:02d}:00Z"  # 10:xx in Shanghai: the day rate
    async with charger(gw.ocpp_port, cp_id) as cp:
        await cp.result("BootNotification", BOOT)
        started_tx = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                                                          "timestamp": start_at})
        tx_id = started_tx["transactionId"]
        await cp.result("StopTransaction", {"transactionId": tx_id, "meterStop": 13345, "idTag": "TAG1",
                                            "timestamp": start_at.replace("T02:", "T03:")})

    async def closed() -> dict[str, Any] | None:
        r = await http.get("/api/order/by-session", params={"transactionId": tx_id})
        return r.json()["data"] if r.status_code == 200 and r.json()["data"]["status"] == 1 else None
    order = await until(closed)
    assert order["totalAmount"] and order["totalAmount"] > 0, order
    return order


async def create_payment(http, order_id: int, channel: str, key: str | None = None) -> tuple[dict, dict]:
    headers = {"Idempotency-Key": key} if key else {}
    r = await http.post("/api/payment/create", json={"orderId": order_id, "channel": channel}, headers=headers)
    body = data(r)
    return body["payment"], body["order"]


async def awaiting(gw: Gateway, http, channel: str) -> tuple[dict, dict]:
    """(order, payment): a priced order awaiting payment through `channel`, opened at the stand-in."""
    order = await completed_order(gw, http)
    payment, order = await create_payment(http, order["id"], channel)
    assert payment["status"] == "CREATED" and payment["payUrl"], payment
    assert order["status"] == 10
    return order, payment


async def callbacks(http) -> list[dict[str, Any]]:
    return data(await http.get("/api/payment/callbacks"))  # newest first


def alipay_form(provider_keys: ProviderKeys, payment: dict, signer: RSAPrivateKey | None = None, **fields: Any) -> dict:
    fields.setdefault("out_trade_no", payment["tradeNo"])
    fields.setdefault("total_amount", yuan_text(payment["amount"]))
    return alipay_notification(signer or provider_keys.alipay_private, **fields)


async def post_alipay(http, form: dict[str, str] | bytes, path: str = "/api/payment/callback/alipay"):
    body = form if isinstance(form, bytes) else urllib.parse.urlencode(form).encode("ascii")
    return await http.post(path, content=body, headers={"Content-Type": FORM})


def wechat_pay_event(provider_keys: ProviderKeys, payment: dict, *, signer: RSAPrivateKey | None = None,
                     serial: str | None = None, apiv3_key: bytes | None = None, event_type: str = "TRANSACTION.SUCCESS",
                     plain: dict | None = None, **options: Any) -> tuple[dict[str, str], bytes]:
    if plain is None:
        plain = wechat_transaction(payment["tradeNo"], payment["amount"])
    return wechat_notification(signer or provider_keys.platform_private, serial or provider_keys.platform_serial,
                               apiv3_key or provider_keys.apiv3_key, event_type, plain, **options)


async def post_wechat(http, headers: dict[str, str], body: bytes, path: str = "/api/payment/callback/wechat"):
    # A connection of its own: the gateway drops the connection after its 204 answer (see
    # test_wechat_success_answer_keeps_the_connection_usable), which would break the next request on `http`.
    async with httpx.AsyncClient(base_url=http.base_url, timeout=10) as own:
        return await own.post(path, content=body, headers=headers)


async def post_wechat_refund(http, keys: ProviderKeys, payment: dict[str, Any], plain: dict[str, Any],
                             event_type: str = "REFUND.SUCCESS"):
    """A WeChat Pay refund notification about `payment`, its resource `plain` (wechat_refund)."""
    return await post_wechat(http, *wechat_pay_event(keys, payment, event_type=event_type, plain=plain),
                             path="/api/payment/callback/wechat/refund")


def to_status(history: list[dict], status: int) -> list[dict]:
    """The changes to `status` (notes that leave the status as it is are not changes)."""
    return [h for h in history if h["toStatus"] == status and h["fromStatus"] != status]


async def assert_unchanged(http, order: dict, payment: dict, history_len: int) -> None:
    detail = await order_detail(http, order["id"])
    assert detail["status"] == 10, detail
    assert detail["paidAmount"] == 0
    assert len(detail["history"]) == history_len, detail["history"]
    [now] = [p for p in detail["payments"] if p["id"] == payment["id"]]
    assert now["status"] == "CREATED" and now["paidAt"] is None and now["providerTradeNo"] is None, now


# ---- creating a payment, and a valid callback ------------------------------------------------------------------

async def test_alipay_payment_created_signed_and_paid_by_a_valid_callback(gw, standin, provider_keys):
    async with gw.http() as http:
        order = await completed_order(gw, http)
        payment, after = await create_payment(http, order["id"], "alipay")
        assert after["status"] == 10
        assert payment["status"] == "CREATED" and payment["channel"] == "alipay"
        assert payment["amount"] == order["totalAmount"] and payment["tradeNo"].startswith("PAY-")
        # The stand-in got one precreate, signed with our app key (RSA2, sign_type signed too), for our trade.
        [call] = standin.received("/gateway.do")
        assert call.verified
        form = call.form
        assert form["method"] == "alipay.trade.precreate" and form["sign_type"] == "RSA2"
        assert form["app_id"] == provider_keys.app_id and form["notify_url"].endswith("/callback/alipay")
        assert rsa_verifies(provider_keys.app_public, alipay_content(form, without=("sign",)).encode(), form["sign"])
        assert call.biz["out_trade_no"] == payment["tradeNo"]
        assert call.biz["total_amount"] == yuan_text(order["totalAmount"])
        assert payment["payUrl"] == standin.alipay_trades[payment["tradeNo"]].pay_url

        standin.pay(payment["tradeNo"])
        trade_no = standin.alipay_trades[payment["tradeNo"]].trade_no
        r = await post_alipay(http, alipay_form(provider_keys, payment, trade_no=trade_no))
        assert r.status_code == 200 and r.text == "success"

        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["paidAmount"] == order["totalAmount"]
        [paid] = detail["payments"]
        assert paid["status"] == "PAID" and paid["providerTradeNo"] == trade_no and paid["paidAt"]
        [entry] = to_status(detail["history"], 11)
        assert entry["fromStatus"] == 10
        assert "alipay callback" in entry["cause"] and payment["tradeNo"] in entry["cause"]
        [cb] = await callbacks(http)
        assert (cb["channel"], cb["kind"], cb["status"], cb["tradeNo"]) == (
            "alipay", "payment", "processed", payment["tradeNo"])
        assert cb["notifyId"] and cb["processedAt"]
        assert len(standin.received()) == 1  # verifying a callback calls nobody


async def test_wechat_payment_created_signed_and_paid_by_a_valid_callback(gw, standin, provider_keys):
    async with gw.http() as http:
        order = await completed_order(gw, http)
        payment, after = await create_payment(http, order["id"], "wechat")
        assert after["status"] == 10 and payment["status"] == "CREATED" and payment["channel"] == "wechat"
        [call] = standin.received("/v3/pay/transactions/native")
        assert call.verified and call.method == "POST"
        assert call.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 ")
        sent = call.json()
        assert (sent["mchid"], sent["appid"], sent["out_trade_no"]) == (provider_keys.mchid, provider_keys.appid,
                                                                        payment["tradeNo"])
        assert sent["amount"] == {"total": order["totalAmount"], "currency": "CNY"}
        assert payment["payUrl"] == standin.wechat_trades[payment["tradeNo"]].pay_url
        assert payment["payUrl"].startswith("weixin://")

        standin.pay(payment["tradeNo"])
        transaction_id = standin.wechat_trades[payment["tradeNo"]].trade_no
        plain = wechat_transaction(payment["tradeNo"], payment["amount"], transaction_id=transaction_id)
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, plain=plain))
        assert r.status_code == 204 and r.content == b""

        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["paidAmount"] == order["totalAmount"]
        [paid] = detail["payments"]
        assert paid["status"] == "PAID" and paid["providerTradeNo"] == transaction_id
        [entry] = to_status(detail["history"], 11)
        assert "wechat callback" in entry["cause"] and payment["tradeNo"] in entry["cause"]
        [cb] = await callbacks(http)
        assert (cb["channel"], cb["status"], cb["tradeNo"]) == ("wechat", "processed", payment["tradeNo"])
        assert len(standin.received()) == 1


# ---- refused callbacks change nothing ------------------------------------------------------------------------------

def _alipay_tampered(provider_keys, payment, other):
    form = alipay_form(provider_keys, payment)
    form["total_amount"] = "0.01"  # after signing
    return form


ALIPAY_REFUSALS: dict[str, tuple[Callable[..., dict | bytes], str]] = {
    "forged signature": (lambda keys, p, other: alipay_form(keys, p, signer=other), "signature does not verify"),
    "amount tampered after signing": (_alipay_tampered, "signature does not verify"),
    "signed with a wrong total_amount": (lambda keys, p, other: alipay_form(keys, p, total_amount="0.01"),
                                         "total_amount"),
    "wrong app_id": (lambda keys, p, other: alipay_form(keys, p, app_id="2021000000009999"), "app_id"),
    "wrong seller_id": (lambda keys, p, other: alipay_form(keys, p, seller_id="2088000000009999"), "seller_id"),
    "unknown out_trade_no": (lambda keys, p, other: alipay_form(keys, p, out_trade_no="PAY-20000101-999999"),
                             "unknown trade"),
    "sign_type RSA (SHA-1 downgrade)": (lambda keys, p, other: alipay_form(keys, p, sign_type="RSA"), "RSA2"),
    "no sign at all": (lambda keys, p, other: {k: v for k, v in alipay_form(keys, p).items() if k != "sign"},
                       "no sign"),
    "not a form": (lambda keys, p, other: b"this is not a form at all", "not a UTF-8 form"),
    "bad UTF-8": (lambda keys, p, other: b"notify_id=\xff\xfe&out_trade_no=" + p["tradeNo"].encode(),
                  "not a UTF-8 form"),
    "a field repeated": (lambda keys, p, other: urllib.parse.urlencode(alipay_form(keys, p)).encode()
                         + b"&total_amount=0.01", "repeated"),
}


@pytest.mark.parametrize("case", ALIPAY_REFUSALS)
async def test_alipay_callback_refused_changes_nothing(gw, standin, provider_keys, other_key, case):
    build, reason = ALIPAY_REFUSALS[case]
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        history_len = len((await order_detail(http, order["id"]))["history"])
        calls = len(standin.received())
        r = await post_alipay(http, build(provider_keys, payment, other_key))
        assert r.status_code == 200 and r.text == "fail"  # Alipay reads the body; anything but "success" is a no
        await assert_unchanged(http, order, payment, history_len)
        [cb] = await callbacks(http)
        assert cb["status"] == "refused" and cb["processedAt"], cb
        assert reason in cb["reason"], cb["reason"]
        assert len(standin.received()) == calls
        # The refusal poisoned nothing: the genuine notification still pays the order.
        r = await post_alipay(http, alipay_form(provider_keys, payment))
        assert r.text == "success"
        assert (await order_detail(http, order["id"]))["status"] == 11


def _wechat_tampered(provider_keys, payment, other):
    headers, body = wechat_pay_event(provider_keys, payment)
    doc = json.loads(body)
    doc["id"] = doc["id"][:-1] + ("0" if doc["id"][-1] != "0" else "1")
    return headers, json.dumps(doc, ensure_ascii=False).encode()


def _wechat_plain(provider_keys, payment, **changes):
    plain = wechat_transaction(payment["tradeNo"], payment["amount"])
    for name, value in changes.items():
        if name == "total":
            plain["amount"]["total"] = value
        else:
            plain[name] = value
    return wechat_pay_event(provider_keys, payment, plain=plain)


def _wechat_signed_body(provider_keys, body: bytes):
    headers = wechat_headers(provider_keys.platform_private, provider_keys.platform_serial, body)
    return {**headers, "Content-Type": "application/json"}, body


def _wechat_without(provider_keys, payment, header):
    headers, body = wechat_pay_event(provider_keys, payment)
    return {k: v for k, v in headers.items() if k != header}, body


WECHAT_REFUSALS: dict[str, tuple[Callable[..., tuple[dict, bytes]], str]] = {
    "forged signature": (lambda keys, p, other: wechat_pay_event(keys, p, signer=other), "does not verify"),
    "body tampered after signing": (_wechat_tampered, "does not verify"),
    "signed with a wrong amount.total": (lambda keys, p, other: _wechat_plain(keys, p, total=p["amount"] - 1),
                                         "amount.total"),
    "wrong mchid": (lambda keys, p, other: _wechat_plain(keys, p, mchid="1900009999"), "mchid"),
    "wrong appid": (lambda keys, p, other: _wechat_plain(keys, p, appid="wx9999999999999999"), "appid"),
    "unknown out_trade_no": (lambda keys, p, other: _wechat_plain(keys, p, out_trade_no="PAY-20000101-999999"),
                             "unknown trade"),
    "trade_state not SUCCESS": (lambda keys, p, other: _wechat_plain(keys, p, trade_state="NOTPAY"), "trade_state"),
    "timestamp 300 s old": (lambda keys, p, other: wechat_pay_event(keys, p, timestamp=int(time.time()) - 300),
                            "Wechatpay-Timestamp"),
    "timestamp 10 min old": (lambda keys, p, other: wechat_pay_event(keys, p, timestamp=int(time.time()) - 600),
                             "Wechatpay-Timestamp"),
    "timestamp 300 s ahead": (lambda keys, p, other: wechat_pay_event(keys, p, timestamp=int(time.time()) + 302),
                              "Wechatpay-Timestamp"),
    "unknown Wechatpay-Serial": (lambda keys, p, other: wechat_pay_event(keys, p, serial="5157F09EFDC096DE15EBE8"),
                                 "unknown Wechatpay-Serial"),
    "WECHATPAY/SIGNTEST/ probe": (lambda keys, p, other: wechat_pay_event(
        keys, p, signature="WECHATPAY/SIGNTEST/" + "QUJD" * 86 + "QQ=="), "SIGNTEST"),
    "no Wechatpay-Signature": (lambda keys, p, other: _wechat_without(keys, p, "Wechatpay-Signature"),
                               "missing Wechatpay-Signature"),
    "malformed JSON, correctly signed": (lambda keys, p, other: _wechat_signed_body(keys, b'{"id": "x", "event_'),
                                         "not JSON"),
    "wrong APIv3 key": (lambda keys, p, other: wechat_pay_event(keys, p, apiv3_key=b"0123456789abcdef0123456789abcdef"),
                        "does not decrypt"),
}


@pytest.mark.parametrize("case", WECHAT_REFUSALS)
async def test_wechat_callback_refused_changes_nothing(gw, standin, provider_keys, other_key, case):
    build, reason = WECHAT_REFUSALS[case]
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        history_len = len((await order_detail(http, order["id"]))["history"])
        calls = len(standin.received())
        headers, body = build(provider_keys, payment, other_key)
        r = await post_wechat(http, headers, body)
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/json")
        answer = r.json()
        assert answer["code"] == "FAIL" and isinstance(answer["message"], str) and answer["message"]
        await assert_unchanged(http, order, payment, history_len)
        [cb] = await callbacks(http)
        assert cb["status"] == "refused" and cb["processedAt"], cb
        assert reason in cb["reason"], cb["reason"]
        await trio.sleep(0.05)  # whatever the refusal might have set off
        assert len(standin.received()) == calls  # no outgoing call: nothing fetched (certificates or otherwise)
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment))
        assert r.status_code == 204
        assert (await order_detail(http, order["id"]))["status"] == 11


# ---- replays ---------------------------------------------------------------------------------------------------------

async def test_alipay_replayed_notification_is_a_duplicate_and_changes_nothing_twice(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        form = alipay_form(provider_keys, payment)
        first = await post_alipay(http, form)
        second = await post_alipay(http, form)  # Alipay retries until it reads "success"
        assert first.text == "success" and second.text == "success"
        newest, oldest = await callbacks(http)
        assert oldest["status"] == "processed" and newest["status"] == "duplicate"
        assert newest["notifyId"] == oldest["notifyId"] == form["notify_id"]
        # Another notification of the same trade (a new notify_id) is processed but changes nothing either.
        again = await post_alipay(http, alipay_form(provider_keys, payment, trade_no=form["trade_no"]))
        assert again.text == "success"
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["paidAmount"] == payment["amount"]
        assert len(to_status(detail["history"], 11)) == 1


async def test_wechat_replayed_event_is_a_duplicate_and_changes_nothing_twice(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        plain = wechat_transaction(payment["tradeNo"], payment["amount"])
        headers, body = wechat_pay_event(provider_keys, payment, plain=plain)
        event_id = json.loads(body)["id"]
        assert (await post_wechat(http, headers, body)).status_code == 204
        assert (await post_wechat(http, headers, body)).status_code == 204  # the same delivery again
        # WeChat's own redelivery: the same event id, newly signed.
        redelivered = wechat_pay_event(provider_keys, payment, plain=plain, event_id=event_id)
        assert redelivered[1] != body
        r = await post_wechat(http, *redelivered)
        assert r.status_code == 204 and r.content == b""
        statuses = [(c["status"], c["notifyId"]) for c in await callbacks(http)]
        assert statuses == [("duplicate", event_id), ("duplicate", event_id), ("processed", event_id)]
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and len(to_status(detail["history"], 11)) == 1


# ---- refunds ---------------------------------------------------------------------------------------------------------

async def pay_by_callback(http, standin, provider_keys, payment: dict) -> None:
    """The buyer pays `payment` at the stand-in and its provider's callback arrives."""
    standin.pay(payment["tradeNo"])
    if payment["channel"] == "alipay":
        trade = standin.alipay_trades[payment["tradeNo"]]
        assert (await post_alipay(http, alipay_form(provider_keys, payment, trade_no=trade.trade_no))).text == "success"
    else:
        trade = standin.wechat_trades[payment["tradeNo"]]
        plain = wechat_transaction(payment["tradeNo"], payment["amount"], transaction_id=trade.trade_no)
        assert (await post_wechat(http, *wechat_pay_event(provider_keys, payment, plain=plain))).status_code == 204


async def paid_at_provider(gw, http, standin, provider_keys, channel: str) -> tuple[dict, dict]:
    """An order paid through `channel`: the buyer paid at the stand-in, and its callback arrived."""
    order, payment = await awaiting(gw, http, channel)
    await pay_by_callback(http, standin, provider_keys, payment)
    assert (await order_detail(http, order["id"]))["status"] == 11
    return order, payment


async def test_alipay_refund_is_signed_settles_at_once_and_is_not_repeated(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        r = await http.post("/api/payment/refund", json={"orderId": order["id"], "reason": "charger fault"})
        body = data(r)
        assert r.json()["message"] == "refund succeeded"
        refund = body["refund"]
        assert refund["status"] == "SUCCESS" and refund["amount"] == payment["amount"]
        assert refund["refundNo"].startswith("REF-") and body["order"]["status"] == 13
        [call] = [c for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.refund"]
        assert call.verified
        assert call.biz["out_trade_no"] == payment["tradeNo"]
        assert call.biz["out_request_no"] == refund["refundNo"]
        assert call.biz["refund_amount"] == yuan_text(payment["amount"])

        detail = await order_detail(http, order["id"])
        moves = [(h["fromStatus"], h["toStatus"]) for h in detail["history"]]
        assert moves[-3:] == [(10, 11), (11, 12), (12, 13)]
        assert detail["refundedAmount"] == payment["amount"]
        assert detail["payments"][0]["status"] == "REFUNDED"

        # Asked again, by trade number this time: the same refund, no second call, no second refund.
        again = data(await http.post("/api/payment/refund", json={"tradeNo": payment["tradeNo"]}))
        assert again["refund"]["refundNo"] == refund["refundNo"] and again["refund"]["status"] == "SUCCESS"
        refunds = [c for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.refund"]
        assert len(refunds) == 1
        assert standin.alipay_trades[payment["tradeNo"]].refunded == payment["amount"]
        detail = await order_detail(http, order["id"])
        assert len(detail["refunds"]) == 1 and len(to_status(detail["history"], 13)) == 1


async def test_wechat_refund_processing_then_settled_by_the_refund_success_callback(gw, standin, provider_keys):
    assert standin.wechat_refund_status == "PROCESSING"  # WeChat's usual first answer
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        r = await http.post("/api/payment/refund", json={"orderId": order["id"]})
        body = data(r)
        assert r.json()["message"] == "refund processing"
        refund = body["refund"]
        assert refund["status"] == "PROCESSING" and body["order"]["status"] == 12
        [call] = standin.received("/v3/refund/domestic/refunds")
        assert call.verified
        sent = call.json()
        assert sent["out_trade_no"] == payment["tradeNo"] and sent["out_refund_no"] == refund["refundNo"]
        assert sent["amount"] == {"refund": payment["amount"], "total": payment["amount"], "currency": "CNY"}

        # Asked again while it is processing: the same refund number again, which WeChat answers idempotently.
        again = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        assert again["refund"]["refundNo"] == refund["refundNo"]
        assert all(c.json()["out_refund_no"] == refund["refundNo"]
                   for c in standin.received("/v3/refund/domestic/refunds"))
        assert standin.wechat_trades[payment["tradeNo"]].refunded == payment["amount"]

        plain = wechat_refund(payment["tradeNo"], refund["refundNo"], payment["amount"], payment["amount"])
        r = await post_wechat_refund(http, provider_keys, payment, plain)
        assert r.status_code == 204
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and detail["refundedAmount"] == payment["amount"]
        [settled] = detail["refunds"]
        assert settled["status"] == "SUCCESS" and settled["providerRefundId"] == plain["refund_id"]
        assert detail["payments"][0]["status"] == "REFUNDED"
        moves = [(h["fromStatus"], h["toStatus"]) for h in detail["history"]]
        assert moves[-3:] == [(10, 11), (11, 12), (12, 13)]
        assert "wechat callback" in detail["history"][-1]["cause"]
        [cb] = [c for c in await callbacks(http) if c["kind"] == "refund"]
        assert cb["status"] == "processed"

        calls = len(standin.received("/v3/refund/domestic/refunds"))
        done = data(await http.post("/api/payment/refund", json={"tradeNo": payment["tradeNo"]}))
        assert done["refund"]["status"] == "SUCCESS" and done["order"]["status"] == 13
        assert len(standin.received("/v3/refund/domestic/refunds")) == calls


async def test_wechat_refund_abnormal_callback_leaves_the_order_refunding(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        refund = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))["refund"]
        plain = wechat_refund(payment["tradeNo"], refund["refundNo"], payment["amount"], payment["amount"],
                              refund_status="ABNORMAL")
        r = await post_wechat_refund(http, provider_keys, payment, plain, "REFUND.ABNORMAL")
        assert r.status_code == 204  # received and recorded: WeChat need not repeat it
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 12 and detail["refundedAmount"] == 0
        [abnormal] = detail["refunds"]
        assert abnormal["status"] == "ABNORMAL"
        assert detail["payments"][0]["status"] == "PAID"
        assert not to_status(detail["history"], 13)
        today = datetime.now(SHANGHAI).date().isoformat()
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today}))
        assert [m["kind"] for m in report["mismatches"]] == ["refund_failed"]


async def test_wechat_refund_callback_with_a_wrong_amount_is_refused(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        refund = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))["refund"]
        plain = wechat_refund(payment["tradeNo"], refund["refundNo"], payment["amount"] - 1, payment["amount"])
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, event_type="REFUND.SUCCESS", plain=plain))
        assert r.status_code == 400 and r.json()["code"] == "FAIL"
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 12 and detail["refunds"][0]["status"] == "PROCESSING"


# ---- a missed callback, recovered by a query ---------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_query_applies_a_payment_whose_callback_never_came(gw, standin, channel):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, channel)
        before = data(await http.get(f"/api/payment/query/{payment['tradeNo']}"))
        assert before["payment"]["status"] == "CREATED" and before["provider"]["paid"] is False
        standin.pay(payment["tradeNo"])
        result = data(await http.get(f"/api/payment/query/{payment['tradeNo']}"))
        assert result["provider"]["paid"] is True and result["provider"]["amount"] == payment["amount"]
        assert result["payment"]["status"] == "PAID"
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11
        [entry] = to_status(detail["history"], 11)
        assert f"{channel} query" in entry["cause"]
        # Asking again applies nothing twice.
        data(await http.get(f"/api/payment/query/{payment['tradeNo']}"))
        assert len(to_status((await order_detail(http, order["id"]))["history"], 11)) == 1
        assert (await callbacks(http)) == []


# ---- a stop between a callback's arrival and its processing ---------------------------------------------------------

async def test_callback_stored_before_a_stop_is_processed_once_after_restart(nursery, billing_config, standin,
                                                                              provider_keys):
    async with started(nursery, billing_config) as first, first.http() as http:
        order, payment = await awaiting(first, http, "alipay")
        standin.pay(payment["tradeNo"])
        form = alipay_form(provider_keys, payment, trade_no=standin.alipay_trades[payment["tradeNo"]].trade_no)
        body = urllib.parse.urlencode(form).encode("ascii")
        headers = {"Host": f"127.0.0.1:{first.http_port}", "Content-Type": FORM, "Content-Length": str(len(body)),
                   "User-Agent": "Mozilla/4.0"}
        # What the route commits first, on arrival; then the gateway goes away before processing it.
        await first.store.payments.store_callback("alipay", "payment", headers, body, "127.0.0.1", clock.iso())
        [cb] = await callbacks(http)
        assert cb["status"] == "received" and cb["processedAt"] is None
        assert (await order_detail(http, order["id"]))["status"] == 10

    async with started(nursery, billing_config) as second, second.http() as http:
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["payments"][0]["status"] == "PAID"
        [entry] = to_status(detail["history"], 11)
        assert "alipay callback" in entry["cause"]
        [cb] = await callbacks(http)
        assert cb["status"] == "processed" and cb["notifyId"] == form["notify_id"]
        processed_at = cb["processedAt"]

    async with started(nursery, billing_config) as third, third.http() as http:
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and len(to_status(detail["history"], 11)) == 1
        [cb] = await callbacks(http)
        assert cb["status"] == "processed" and cb["processedAt"] == processed_at  # not processed again
        # Alipay's own retry of it, arriving now, is a duplicate.
        assert (await post_alipay(http, form)).text == "success"
        assert (await callbacks(http))[0]["status"] == "duplicate"
        assert len(to_status((await order_detail(http, order["id"]))["history"], 11)) == 1


async def test_wechat_callback_is_judged_by_its_arrival_not_its_late_processing(nursery, billing_config, provider_keys):
    ten_minutes_ago = time.time() - 600
    async with started(nursery, billing_config) as first, first.http() as http:
        order, payment = await awaiting(first, http, "wechat")
        headers, body = wechat_pay_event(provider_keys, payment, timestamp=int(ten_minutes_ago))
        # Live, a 10-minute-old timestamp is refused...
        r = await post_wechat(http, headers, body)
        assert r.status_code == 400 and r.json()["code"] == "FAIL"
        assert (await callbacks(http))[0]["status"] == "refused"
        assert (await order_detail(http, order["id"]))["status"] == 10
        # ...but one that arrived 10 minutes ago, fresh then, and was stored before a stop, is good.
        arrived = clock.iso(datetime.fromtimestamp(ten_minutes_ago, timezone.utc))
        stored = {"Host": f"127.0.0.1:{first.http_port}", "Content-Length": str(len(body)), **headers}
        await first.store.payments.store_callback("wechat", "payment", stored, body, "127.0.0.1", arrived)

    async with started(nursery, billing_config) as second, second.http() as http:
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11
        assert len(to_status(detail["history"], 11)) == 1
        newest, refused = await callbacks(http)
        assert newest["status"] == "processed" and newest["receivedAt"] == arrived
        assert refused["status"] == "refused" and "Wechatpay-Timestamp" in refused["reason"]


# ---- reconciliation --------------------------------------------------------------------------------------------------

async def test_reconciliation_balanced_then_reports_a_missed_payment(gw, standin, provider_keys):
    today = datetime.now(SHANGHAI).date().isoformat()
    async with gw.http() as http:
        paid_order, paid = await paid_at_provider(gw, http, standin, provider_keys, "alipay")
        r = await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today})
        [report] = data(r)
        assert r.json()["message"] == "balanced"
        assert report["balanced"] is True and report["mismatches"] == []
        assert (report["channel"], report["day"], report["timezone"]) == ("alipay", today, "Asia/Shanghai")
        assert report["providerQueried"] is True
        assert (report["payments"], report["paid"], report["paidAmount"]) == (1, 1, paid["amount"])
        queried = [c.biz["out_trade_no"] for c in standin.received("/gateway.do")
                   if c.form["method"] == "alipay.trade.query"]
        assert queried == [paid["tradeNo"]]

        # The buyer pays a second order at Alipay; its callback never comes and nobody queries it.
        order, missed = await awaiting(gw, http, "alipay")
        standin.pay(missed["tradeNo"])
        r = await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today})
        [report] = data(r)
        assert r.json()["message"] == "mismatches found" and report["balanced"] is False
        [mismatch] = report["mismatches"]
        assert mismatch["kind"] == "missed_payment" and mismatch["tradeNo"] == missed["tradeNo"]
        assert mismatch["orderNo"] == order["orderNo"]
        assert (await order_detail(http, order["id"]))["status"] == 10  # reporting changes nothing

        stored = data(await http.get("/api/reconciliation/daily/alipay", params={"date": today}))
        assert stored == report  # the report kept, not one computed again
        assert stored["generatedAt"] == report["generatedAt"]


# ---- creating payments: idempotency, an unreachable provider ---------------------------------------------------------

async def test_idempotency_key_answers_the_same_payment_and_calls_the_provider_once(gw, standin):
    async with gw.http() as http:
        order = await completed_order(gw, http)
        first, _ = await create_payment(http, order["id"], "alipay", key="pay-once-1")
        second, after = await create_payment(http, order["id"], "alipay", key="pay-once-1")
        assert second["tradeNo"] == first["tradeNo"] and second["payUrl"] == first["payUrl"]
        assert after["status"] == 10
        assert len(standin.received("/gateway.do")) == 1
        # The same key for another channel is someone's mistake, not a new payment.
        r = await http.post("/api/payment/create", json={"orderId": order["id"], "channel": "wechat"},
                            headers={"Idempotency-Key": "pay-once-1"})
        assert_error(r, 409, "conflict")
        assert standin.received("/v3/") == []
        assert len((await order_detail(http, order["id"]))["payments"]) == 1


async def test_unreachable_provider_fails_the_payment_and_a_later_create_works(nursery, tmp_path, provider_keys,
                                                                                standin):
    down = provider_config(tmp_path, provider_keys, standin, alipay_url=closed_url() + "/gateway.do")
    async with started(nursery, down) as first, first.http() as http:
        plain_order = await completed_order(first, http)
        keyed_order = await completed_order(first, http)
        r = await http.post("/api/payment/create", json={"orderId": plain_order["id"], "channel": "alipay"})
        body = assert_error(r, 502, "provider_error")
        assert body["code"] == 502 and body["data"] is None  # the EVCS envelope
        r = await http.post("/api/payment/create", json={"orderId": keyed_order["id"], "channel": "alipay"},
                            headers={"Idempotency-Key": "retry-me"})
        assert_error(r, 502, "provider_error")
        for order in (plain_order, keyed_order):
            detail = await order_detail(http, order["id"])
            assert detail["status"] == 10
            [failed] = detail["payments"]
            assert failed["status"] == "FAILED" and failed["payUrl"] is None and failed["note"]
        failed_trade = (await order_detail(http, keyed_order["id"]))["payments"][0]["tradeNo"]
    assert standin.received() == []

    # The provider is reachable again.
    async with started(nursery, provider_config(tmp_path, provider_keys, standin)) as second, second.http() as http:
        payment, order = await create_payment(http, plain_order["id"], "alipay")
        assert payment["status"] == "CREATED" and payment["payUrl"] and order["status"] == 10
        retried, order = await create_payment(http, keyed_order["id"], "alipay", key="retry-me")
        assert retried["tradeNo"] == failed_trade  # the same payment, opened this time
        assert retried["status"] == "CREATED" and retried["payUrl"] and order["status"] == 10
        assert {c.biz["out_trade_no"] for c in standin.received("/gateway.do")} == {payment["tradeNo"], failed_trade}
        assert (await post_alipay(http, alipay_form(provider_keys, retried))).text == "success"
        assert (await order_detail(http, keyed_order["id"]))["status"] == 11


# ---- more refunds, concurrency, reconciliation after refunds ---------------------------------------------------------

async def alipay_refund_with_a_lost_answer(gw, http, standin, keys: ProviderKeys) -> tuple[dict, dict]:
    """A paid Alipay order refunded at Alipay, whose answer is altered on the way: the signature fails, the
    gateway cannot trust it (502). The order and its payment."""
    order, payment = await paid_at_provider(gw, http, standin, keys, "alipay")
    standin.tamper = lambda answer: answer.replace(b'"fund_change":"Y"', b'"fund_change":"N"')
    r = await http.post("/api/payment/refund", json={"orderId": order["id"]})
    standin.tamper = None
    assert_error(r, 502, "provider_error")
    return order, payment


async def test_alipay_refund_retried_after_a_lost_answer_moves_the_money_once(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await alipay_refund_with_a_lost_answer(gw, http, standin, provider_keys)
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 12 and detail["refunds"][0]["status"] == "PROCESSING"
        assert standin.alipay_trades[payment["tradeNo"]].refunded == payment["amount"]  # the money did move
        # The retry asks with the same refund number: Alipay answers fund_change N, refunded in total: settled.
        body = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        assert body["refund"]["status"] == "SUCCESS" and body["order"]["status"] == 13
        calls = [c.biz for c in standin.received("/gateway.do") if c.form["method"] == "alipay.trade.refund"]
        assert len(calls) == 2 and calls[0]["out_request_no"] == calls[1]["out_request_no"]
        assert standin.alipay_trades[payment["tradeNo"]].refunded == payment["amount"]
        detail = await order_detail(http, order["id"])
        assert len(detail["refunds"]) == 1 and detail["refundedAmount"] == payment["amount"]
        assert [(h["fromStatus"], h["toStatus"]) for h in detail["history"]][-2:] == [(11, 12), (12, 13)]


async def test_wechat_refund_answered_success_at_once_then_its_callback_changes_nothing(gw, standin, provider_keys):
    standin.wechat_refund_status = "SUCCESS"
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, "wechat")
        body = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))
        refund = body["refund"]
        assert refund["status"] == "SUCCESS" and body["order"]["status"] == 13
        plain = wechat_refund(payment["tradeNo"], refund["refundNo"], payment["amount"], payment["amount"])
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, event_type="REFUND.SUCCESS", plain=plain))
        assert r.status_code == 204
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and len(to_status(detail["history"], 13)) == 1
        assert detail["refundedAmount"] == payment["amount"]


async def test_concurrent_copies_of_one_notification_are_applied_once(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        form = alipay_form(provider_keys, payment)
        answers: list[str] = []

        async def deliver() -> None:
            answers.append((await post_alipay(http, form)).text)

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(deliver)
        assert answers == ["success"] * 6
        statuses = sorted(c["status"] for c in await callbacks(http))
        assert statuses == ["duplicate"] * 5 + ["processed"]
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and len(to_status(detail["history"], 11)) == 1


@pytest.mark.parametrize("channel", ["alipay", "wechat"])
async def test_reconciliation_balanced_after_a_refund(gw, standin, provider_keys, channel):
    today = datetime.now(SHANGHAI).date().isoformat()
    async with gw.http() as http:
        order, payment = await paid_at_provider(gw, http, standin, provider_keys, channel)
        refund = data(await http.post("/api/payment/refund", json={"orderId": order["id"]}))["refund"]
        if channel == "wechat":
            plain = wechat_refund(payment["tradeNo"], refund["refundNo"], payment["amount"], payment["amount"])
            r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, event_type="REFUND.SUCCESS",
                                                          plain=plain))
            assert r.status_code == 204
        assert (await order_detail(http, order["id"]))["status"] == 13
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": channel, "day": today}))
        assert report["balanced"] is True, report["mismatches"]
        assert (report["paid"], report["paidAmount"], report["refundedAmount"]) == (
            1, payment["amount"], payment["amount"])



async def test_alipay_refund_notification_settles_a_refund_whose_answer_was_lost(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await alipay_refund_with_a_lost_answer(gw, http, standin, provider_keys)
        [refund] = (await order_detail(http, order["id"]))["refunds"]
        trade = standin.alipay_trades[payment["tradeNo"]]
        amount = yuan_text(payment["amount"])
        common = {"trade_no": trade.trade_no, "trade_status": "TRADE_CLOSED", "out_biz_no": refund["refundNo"]}
        # A refund notification with the wrong refund_fee is refused...
        wrong = alipay_form(provider_keys, payment, refund_fee="0.01", **common)
        assert (await post_alipay(http, wrong, "/api/payment/callback/alipay/refund")).text == "fail"
        assert "refund_fee" in (await callbacks(http))[0]["reason"]
        assert (await order_detail(http, order["id"]))["status"] == 12
        # ...the right one settles the refund.
        right = alipay_form(provider_keys, payment, refund_fee=amount, **common)
        assert (await post_alipay(http, right, "/api/payment/callback/alipay/refund")).text == "success"
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 13 and detail["refunds"][0]["status"] == "SUCCESS"
        assert detail["payments"][0]["status"] == "REFUNDED"
        assert "alipay callback" in detail["history"][-1]["cause"]


async def test_query_does_not_apply_a_payment_of_another_amount(gw, standin):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        standin.pay(payment["tradeNo"])
        standin.rewrite = lambda node: {**node, "total_amount": "0.01"} if "trade_status" in node else node
        result = data(await http.get(f"/api/payment/query/{payment['tradeNo']}"))
        assert result["provider"]["paid"] is True and result["provider"]["amount"] == 1
        assert "mismatch" in result["provider"]
        assert result["payment"]["status"] == "CREATED"
        assert (await order_detail(http, order["id"]))["status"] == 10


async def test_order_paid_through_both_channels_is_paid_once_and_reported(gw, standin, provider_keys):
    today = datetime.now(SHANGHAI).date().isoformat()
    async with gw.http() as http:
        # Closing trades fails at both providers (their systems are down), so both codes stay payable.
        standin.refuse = {"alipay.trade.close": ("ACQ.SYSTEM_ERROR", "系统错误"), "close": ("SYSTEM_ERROR", "系统错误")}
        order, by_alipay = await awaiting(gw, http, "alipay")
        by_wechat, _ = await create_payment(http, order["id"], "wechat")  # the payer switched channels
        assert by_wechat["tradeNo"] != by_alipay["tradeNo"] and by_wechat["status"] == "CREATED"
        for payment in (by_alipay, by_wechat):
            standin.pay(payment["tradeNo"])
        assert (await post_alipay(http, alipay_form(provider_keys, by_alipay))).text == "success"
        assert (await post_wechat(http, *wechat_pay_event(provider_keys, by_wechat))).status_code == 204
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 11 and detail["paidAmount"] == by_alipay["amount"]
        assert len(to_status(detail["history"], 11)) == 1
        assert sorted(p["status"] for p in detail["payments"]) == ["PAID", "PAID"]  # the money arrived twice
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "wechat", "day": today}))
        assert [m["kind"] for m in report["mismatches"]] == ["double_payment"]



async def test_payment_for_a_cancelled_order_is_recorded_and_reported(gw, standin, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "alipay")
        standin.pay(payment["tradeNo"])  # paid just before the cancel: too late to close the trade
        assert data(await http.post(f"/api/order/{order['id']}/cancel", json={"reason": "left"}))["status"] == 2
        # The money arrived all the same: Alipay is told so, the payment is recorded, the order stays cancelled.
        assert (await post_alipay(http, alipay_form(provider_keys, payment))).text == "success"
        detail = await order_detail(http, order["id"])
        assert detail["status"] == 2 and detail["payments"][0]["status"] == "PAID"
        today = datetime.now(SHANGHAI).date().isoformat()
        [report] = data(await http.post("/api/reconciliation/execute", json={"channel": "alipay", "day": today}))
        assert [m["kind"] for m in report["mismatches"]] == ["payment_without_paid_order"]


async def test_wechat_timestamp_just_inside_five_minutes_is_accepted(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        r = await post_wechat(http, *wechat_pay_event(provider_keys, payment, timestamp=int(time.time()) - 290))
        assert r.status_code == 204
        assert (await order_detail(http, order["id"]))["status"] == 11


# ---- found broken once ---------------------------------------------------------------------------------------------------------

async def test_wechat_success_answer_keeps_the_connection_usable(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        headers, body = wechat_pay_event(provider_keys, payment)
        r = await http.post("/api/payment/callback/wechat", content=body, headers=headers)
        assert r.status_code == 204 and r.content == b""
        # The same keep-alive connection, as a provider's HTTP client reuses it, serves the next request.
        assert (await order_detail(http, order["id"]))["status"] == 11


HUGE_TIMESTAMP = "1" * 5000  # digits only; more than int() converts (4300 digits) since Python 3.11


async def test_wechat_callback_with_an_absurd_timestamp_is_refused(gw, provider_keys):
    async with gw.http() as http:
        order, payment = await awaiting(gw, http, "wechat")
        # the platform serial is public: every callback carries it
        headers, body = wechat_pay_event(provider_keys, payment)
        headers["Wechatpay-Timestamp"] = HUGE_TIMESTAMP
        r = await post_wechat(http, headers, body)
        assert r.status_code == 400 and r.json()["code"] == "FAIL"
        [cb] = await callbacks(http)
        assert cb["status"] == "refused" and "Wechatpay-Timestamp" in cb["reason"]
        assert (await order_detail(http, order["id"]))["status"] == 10


async def test_gateway_starts_again_after_a_callback_with_an_absurd_timestamp(nursery, billing_config, provider_keys):
    async with started(nursery, billing_config) as first, first.http() as http:
        order, payment = await awaiting(first, http, "wechat")
        headers, body = wechat_pay_event(provider_keys, payment)
        headers["Wechatpay-Timestamp"] = HUGE_TIMESTAMP
        await post_wechat(http, headers, body)
    with trio.fail_after(15):
        async with started(nursery, billing_config) as second, second.http() as http:
            assert (await order_detail(http, order["id"]))["status"] == 10
            assert (await callbacks(http))[0]["status"] == "refused"
