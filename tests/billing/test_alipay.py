"""Alipay RSA2: signing strings, notifications, amounts, and the client against the stand-in."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta, timezone

import attrs
import pytest
import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from gateway.billing.alipay import (
    AlipayClient,
    AlipayNotice,
    AlipaySettings,
    TradeNotFound,
    parse_notice,
    raw_members,
    sign,
    signing_string,
    to_minor,
    verify_notification,
    yuan,
)
from gateway.billing.errors import CallbackRefused, ProviderError
from tests.billing.standin import (
    alipay_answer,
    alipay_content,
    alipay_notification,
    closed_url,
    rsa_sign,
    silent_server,
)

# --- signing strings ------------------------------------------------------------------------------------------------

# Alipay's documented request example (common parameters of a call), sorted by hand.
DOC_PARAMS = {
    "app_id": "2014072300007148",
    "method": "alipay.mobile.public.menu.add",
    "charset": "GBK",
    "sign_type": "RSA2",
    "timestamp": "2014-07-24 03:07:50",
    "biz_content": '{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"}]}',
    "version": "1.0",
    "sign": "whatever",
}


def test_signing_string_drops_sign_and_sign_type_and_sorts():
    assert signing_string(DOC_PARAMS) == (
        "app_id=2014072300007148"
        '&biz_content={"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"}]}'
        "&charset=GBK&method=alipay.mobile.public.menu.add&timestamp=2014-07-24 03:07:50&version=1.0"
    )


def test_request_signing_string_keeps_sign_type():
    assert signing_string(DOC_PARAMS, request=True) == (
        "app_id=2014072300007148"
        '&biz_content={"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"}]}'
        "&charset=GBK&method=alipay.mobile.public.menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0"
    )


def test_signing_string_drops_empty_values_sorts_by_ascii_and_keeps_values_raw():
    params = {"b": "2", "a": "1", "empty": "", "Zeta": "z", "_x": "u", "c": "a=b&c d+e%20"}
    # ASCII order: uppercase before "_" before lowercase; values are not URL-encoded
    assert signing_string(params) == "Zeta=z&_x=u&a=1&b=2&c=a=b&c d+e%20"
    assert signing_string({}) == ""


def test_sign_is_sha256_rsa_pkcs1v15_of_the_signing_string(provider_keys):
    # PKCS#1 v1.5 is deterministic: the test-side signer must produce the very same bytes
    expected = rsa_sign(provider_keys.app_private, alipay_content(DOC_PARAMS).encode("utf-8"))
    assert sign(DOC_PARAMS, provider_keys.app_private) == expected
    raw = base64.b64decode(expected)
    provider_keys.app_public.verify(raw, signing_string(DOC_PARAMS).encode(), padding.PKCS1v15(), hashes.SHA256())


# --- notifications --------------------------------------------------------------------------------------------------


def test_valid_notification_verifies(provider_keys):
    form = alipay_notification(provider_keys.alipay_private, out_trade_no="O1", total_amount="12.34")
    verify_notification(form, provider_keys.alipay_public)


def test_notification_with_chinese_and_url_like_values_verifies(provider_keys):
    form = alipay_notification(provider_keys.alipay_private, subject="充电 2 kWh & more", body="a=b&c=d")
    verify_notification(form, provider_keys.alipay_public)


def test_empty_field_added_after_signing_is_ignored(provider_keys):
    form = alipay_notification(provider_keys.alipay_private) | {"fund_bill_list": ""}
    verify_notification(form, provider_keys.alipay_public)


def refused(form, key) -> str:
    with pytest.raises(CallbackRefused) as caught:
        verify_notification(form, key)
    return caught.value.reason


def test_forged_signature_refused(provider_keys):
    form = alipay_notification(provider_keys.alipay_private)
    form["sign"] = base64.b64encode(bytes(256)).decode()
    assert "does not verify" in refused(form, provider_keys.alipay_public)


@pytest.mark.parametrize("field, value", [("total_amount", "0.01"), ("trade_status", "TRADE_SUCCESS "), ("extra", "1")])
def test_tampered_notification_refused(provider_keys, field, value):
    form = alipay_notification(provider_keys.alipay_private, total_amount="12.34")
    form[field] = value
    assert "does not verify" in refused(form, provider_keys.alipay_public)


def test_notification_signed_with_another_key_refused(provider_keys, other_key):
    form = alipay_notification(other_key)
    assert "does not verify" in refused(form, provider_keys.alipay_public)
    # the app's own key is not Alipay's either
    assert "does not verify" in refused(alipay_notification(provider_keys.app_private), provider_keys.alipay_public)


def test_sha1_rsa_downgrade_refused_even_when_the_signature_is_genuine(provider_keys):
    form = alipay_notification(provider_keys.alipay_private, sign_type="RSA")
    # a genuine SHA-1 signature by Alipay's key: refused for the algorithm, not for a mismatch
    provider_keys.alipay_public.verify(
        base64.b64decode(form["sign"]), alipay_content(form).encode(), padding.PKCS1v15(), hashes.SHA1()
    )
    reason = refused(form, provider_keys.alipay_public)
    assert "RSA (SHA-1)" in reason and "downgrade" in reason


@pytest.mark.parametrize("sign_type", [None, "", "rsa2", "MD5", "HMAC-SHA256"])
def test_other_or_missing_sign_type_refused(provider_keys, sign_type):
    form = alipay_notification(provider_keys.alipay_private, sign_type=sign_type or "RSA2")
    if sign_type is None:
        del form["sign_type"]
    else:
        form["sign_type"] = sign_type
    assert "only RSA2" in refused(form, provider_keys.alipay_public)


@pytest.mark.parametrize("value", [None, ""])
def test_missing_sign_refused(provider_keys, value):
    form = alipay_notification(provider_keys.alipay_private)
    if value is None:
        del form["sign"]
    else:
        form["sign"] = value
    assert refused(form, provider_keys.alipay_public) == "Alipay notification has no sign"


@pytest.mark.parametrize("bad", ["not base64!", "QUJD=X", "签名"])
def test_sign_that_is_not_base64_refused(provider_keys, bad):
    form = alipay_notification(provider_keys.alipay_private)
    form["sign"] = bad
    assert "base64" in refused(form, provider_keys.alipay_public)


# --- parse_notice ---------------------------------------------------------------------------------------------------


def test_parse_payment_notice(provider_keys):
    form = alipay_notification(
        provider_keys.alipay_private, out_trade_no="O1", total_amount="12.3", trade_no="2024010122001", notify_id="n1",
        gmt_payment="2024-01-01 12:00:00",
    )
    assert parse_notice(form) == AlipayNotice(
        notify_id="n1", notify_type="trade_status_sync", app_id="2021000000000001", seller_id="2088000000000001",
        out_trade_no="O1", trade_no="2024010122001", trade_status="TRADE_SUCCESS", total_amount=1230,
        refund_fee=None, out_biz_no=None, gmt_payment="2024-01-01 12:00:00",
    )


def test_parse_refund_notice():
    form = {"notify_id": "n2", "notify_type": "trade_status_sync", "app_id": "A", "out_trade_no": "O1",
            "trade_status": "TRADE_CLOSED", "total_amount": "12.34", "refund_fee": "12.34", "out_biz_no": "R1",
            "seller_id": "", "trade_no": ""}
    notice = parse_notice(form)
    assert (notice.refund_fee, notice.out_biz_no, notice.total_amount) == (1234, "R1", 1234)
    assert notice.seller_id is None and notice.trade_no is None and notice.gmt_payment is None  # "" means absent


@pytest.mark.parametrize("missing", ["notify_id", "notify_type", "app_id", "out_trade_no"])
def test_parse_notice_needs_ids(provider_keys, missing):
    form = alipay_notification(provider_keys.alipay_private, **{missing: None})
    with pytest.raises(CallbackRefused, match=missing):
        parse_notice(form)


@pytest.mark.parametrize("field", ["total_amount", "refund_fee"])
@pytest.mark.parametrize("bad", ["12.345", "-1.00", "1e3", "abc", "12,34", " 12.34"])
def test_parse_notice_refuses_bad_amounts(field, bad):
    form = {"notify_id": "n", "notify_type": "trade_status_sync", "app_id": "A", "out_trade_no": "O", field: bad}
    with pytest.raises(CallbackRefused, match=field):
        parse_notice(form)


# --- amounts --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "minor, text", [(0, "0.00"), (1, "0.01"), (10, "0.10"), (99, "0.99"), (100, "1.00"), (1234, "12.34"),
                    (10000000000, "100000000.00")]
)
def test_yuan_and_back(minor, text):
    assert yuan(minor) == text
    assert to_minor(text) == minor


@pytest.mark.parametrize("text, minor", [("12.3", 1230), ("12", 1200), ("0.1", 10), ("007.00", 700), ("0", 0)])
def test_to_minor_short_forms(text, minor):
    assert to_minor(text) == minor


@pytest.mark.parametrize(
    "bad", ["", "12.345", "12.340", "-1", "-0.01", "+1", "1e3", "1E-2", " 1", "1 ", "1.", ".5", "NaN", "Infinity",
            "1_000", "1,00", "１２", "0x10", "12.3.4"]
)
def test_to_minor_refuses(bad):
    with pytest.raises(ValueError):
        to_minor(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "12", None])
def test_yuan_refuses(bad):
    with pytest.raises(ValueError):
        yuan(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_yuan_round_trips(minor):
    assert to_minor(yuan(minor)) == minor


# --- raw answer members ---------------------------------------------------------------------------------------------


def test_raw_members_keep_the_exact_text():
    text = ' { "a_response" : {"qr_code":"https:\\/\\/qr.alipay.com\\/x", "n": 1.50 } ,"sign":"S+/="}\n'
    assert raw_members(text) == {"a_response": '{"qr_code":"https:\\/\\/qr.alipay.com\\/x", "n": 1.50 }',
                                 "sign": '"S+/="'}


@pytest.mark.parametrize("bad", ["", "[]", '{"a":1,"a":2}', '{"a":1} x', '{"a" 1}', '{"a":1,}', "{'a':1}"])
def test_raw_members_refuse(bad):
    with pytest.raises(ValueError):
        raw_members(bad)


# --- the client against the stand-in --------------------------------------------------------------------------------


def test_precreate(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    answer = client.precreate("ORDER-1", 1234, "充电 CP1")
    assert answer["out_trade_no"] == "ORDER-1"
    assert answer["qr_code"].startswith("https://qr.alipay.com/")  # sent as "https:\/\/..."; verified over that text
    [request] = standin.requests
    assert request.verified and request.method == "POST" and request.path == "/gateway.do"
    form = request.form
    assert {k: form[k] for k in ("app_id", "method", "format", "charset", "sign_type", "version", "notify_url")} == {
        "app_id": "2021000000000001", "method": "alipay.trade.precreate", "format": "JSON", "charset": "utf-8",
        "sign_type": "RSA2", "version": "1.0", "notify_url": "https://gateway.example/api/payment/callback/alipay",
    }
    assert request.biz == {"out_trade_no": "ORDER-1", "total_amount": "12.34", "subject": "充电 CP1"}
    assert standin.alipay_trades["ORDER-1"].total == 1234


def test_timestamp_is_beijing_time(alipay_settings, standin):
    moment = datetime.now(timezone.utc).replace(microsecond=0)
    AlipayClient(alipay_settings, now=lambda: moment).precreate("ORDER-1", 1, "x")
    assert standin.requests[0].form["timestamp"] == (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def test_empty_notify_url_is_omitted(alipay_settings, standin):
    AlipayClient(attrs.evolve(alipay_settings, notify_url="")).precreate("ORDER-1", 1, "x")
    assert "notify_url" not in standin.requests[0].form


def test_query_before_and_after_payment(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 500, "x")
    assert client.query("ORDER-1") == {"trade_status": "WAIT_BUYER_PAY", "total_amount": 500, "trade_no": None}
    standin.pay("ORDER-1")
    answer = client.query("ORDER-1")
    assert answer["trade_status"] == "TRADE_SUCCESS" and answer["total_amount"] == 500 and answer["trade_no"]
    assert all(r.verified for r in standin.requests)


def test_query_of_unknown_trade_is_trade_not_found(alipay_settings, standin):
    with pytest.raises(TradeNotFound, match="ACQ.TRADE_NOT_EXIST"):
        AlipayClient(alipay_settings).query("NOPE")
    assert issubclass(TradeNotFound, ProviderError)


def test_refund_and_its_retry(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 1000, "x")
    standin.pay("ORDER-1")
    first = client.refund("ORDER-1", 300, "R1", "overcharged")
    assert first["fund_change"] is True and first["refund_fee"] == 300 and first["trade_no"]
    assert standin.requests[-1].biz == {"out_trade_no": "ORDER-1", "refund_amount": "3.00", "out_request_no": "R1",
                                        "refund_reason": "overcharged"}
    assert client.refund("ORDER-1", 300, "R1", "overcharged")["fund_change"] is False  # same request: no new money
    second = client.refund("ORDER-1", 700, "R2", "")
    assert second == {"fund_change": True, "refund_fee": 1000, "trade_no": first["trade_no"]}  # refund_fee: in total
    assert "refund_reason" not in standin.requests[-1].biz
    assert client.query("ORDER-1")["trade_status"] == "TRADE_CLOSED"


def test_refund_of_unpaid_trade_is_a_provider_error(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 1000, "x")
    with pytest.raises(ProviderError, match="ACQ.TRADE_STATUS_ERROR") as caught:
        client.refund("ORDER-1", 100, "R1", "")
    assert not isinstance(caught.value, TradeNotFound)


@pytest.mark.parametrize("amount", [0, -1, True, 1.5])
def test_bad_amounts_are_refused_before_any_call(alipay_settings, standin, amount):
    client = AlipayClient(alipay_settings)
    with pytest.raises(ValueError):
        client.precreate("ORDER-1", amount, "x")
    with pytest.raises(ValueError):
        client.refund("ORDER-1", amount, "R1", "")
    assert standin.requests == []


def test_request_signed_with_a_wrong_app_key_is_refused_by_alipay(alipay_settings, standin, other_key):
    client = AlipayClient(attrs.evolve(alipay_settings, private_key=other_key))
    with pytest.raises(ProviderError, match="isv.invalid-signature"):
        client.precreate("ORDER-1", 100, "x")
    assert [r.verified for r in standin.requests] == [False]
    assert standin.alipay_trades == {}


def test_answer_signed_with_a_wrong_key_is_refused(alipay_settings, standin, other_key):
    standin.alipay_key = other_key
    with pytest.raises(ProviderError, match="does not verify"):
        AlipayClient(alipay_settings).precreate("ORDER-1", 100, "x")
    assert standin.requests[0].verified  # the stand-in took our request; its answer is what is refused


def test_tampered_answer_is_refused(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 100, "x")
    standin.tamper = lambda body: body.replace(b"WAIT_BUYER_PAY", b"TRADE_SUCCESS")
    with pytest.raises(ProviderError, match="does not verify"):
        client.query("ORDER-1")


def test_tampered_error_answer_is_not_trade_not_found(alipay_settings, standin):
    standin.tamper = lambda body: body.replace("交易不存在".encode(), b"gone")
    with pytest.raises(ProviderError, match="does not verify") as caught:
        AlipayClient(alipay_settings).query("NOPE")
    assert not isinstance(caught.value, TradeNotFound)


def test_unsigned_answer_is_refused(alipay_settings, standin):
    standin.alipay_key = None
    with pytest.raises(ProviderError, match="not signed"):
        AlipayClient(alipay_settings).precreate("ORDER-1", 100, "x")


def test_signed_answer_about_another_trade_is_refused(alipay_settings, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 100, "x")
    standin.rewrite = lambda node: node | {"out_trade_no": "ORDER-2", "trade_status": "TRADE_SUCCESS"}
    with pytest.raises(ProviderError, match="another trade"):
        client.query("ORDER-1")


def test_answer_with_a_second_node_is_refused(alipay_settings, provider_keys, standin):
    client = AlipayClient(alipay_settings)
    client.precreate("ORDER-1", 100, "x")
    node = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER-1", "trade_status": "TRADE_SUCCESS",
            "total_amount": "1.00"}
    signed = alipay_answer("alipay_trade_query_response", node, provider_keys.alipay_private)
    standin.tamper = lambda body: body[:-1] + b"," + signed[1:-1] + b"}"  # two query nodes, two signs
    with pytest.raises(ProviderError, match="twice"):
        client.query("ORDER-1")


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b'{"other":1}', b"\xff\xfe"])
def test_garbage_answer_is_a_provider_error(alipay_settings, standin, body):
    standin.tamper = lambda _: body
    with pytest.raises(ProviderError, match="alipay.trade.precreate"):
        AlipayClient(alipay_settings).precreate("ORDER-1", 100, "x")


def test_unreachable_gateway_is_a_provider_error_at_once(alipay_settings):
    client = AlipayClient(attrs.evolve(alipay_settings, gateway_url=closed_url() + "/gateway.do"))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="could not reach 127.0.0.1"):
        client.query("ORDER-1")
    assert time.monotonic() - started < 2


def test_silent_gateway_times_out(alipay_settings):
    with silent_server() as url:
        client = AlipayClient(attrs.evolve(alipay_settings, gateway_url=url + "/gateway.do", timeout=0.3))
        started = time.monotonic()
        with pytest.raises(ProviderError, match="no answer from 127.0.0.1 within 0.3 s"):
            client.query("ORDER-1")
        assert time.monotonic() - started < 2


def test_error_messages_hold_no_key_material(alipay_settings, standin, other_key):
    standin.alipay_key = other_key
    with pytest.raises(ProviderError) as caught:
        AlipayClient(alipay_settings).precreate("ORDER-1", 100, "x")
    sent_sign = standin.requests[0].form["sign"]
    assert sent_sign not in str(caught.value) and "PRIVATE" not in str(caught.value)


async def test_client_runs_in_a_worker_thread(alipay_settings: AlipaySettings, standin):
    client = AlipayClient(alipay_settings)
    answer = await trio.to_thread.run_sync(client.precreate, "ORDER-1", 100, "x")
    assert answer["out_trade_no"] == "ORDER-1"
