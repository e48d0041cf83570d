"""WeChat Pay API v3: callback signatures and resources, and the client against the stand-in."""

from __future__ import annotations

import base64
import json
import time

import attrs
import pytest
import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.billing.errors import CallbackRefused, ProviderError
from gateway.billing.wechat import (
    TradeNotFound,
    WechatClient,
    WechatEvent,
    WechatSettings,
    decrypt_resource,
    parse_event,
    verify_signature,
)
from tests.billing.standin import (
    closed_url,
    rsa_sign,
    silent_server,
    wechat_notification,
    wechat_refund,
    wechat_transaction,
)

NOW = 1_700_000_000


def notification(keys, event_type="TRANSACTION.SUCCESS", plain=None, **options):
    plain = plain if plain is not None else wechat_transaction("ORDER-1", 1234)
    options.setdefault("timestamp", NOW)
    return wechat_notification(
        keys.platform_private, keys.platform_serial, keys.apiv3_key, event_type, plain, **options
    )


def platform(keys) -> dict:
    return {keys.platform_serial: keys.platform_public}


def refused(headers, body, keys, now=NOW) -> str:
    with pytest.raises(CallbackRefused) as caught:
        verify_signature(headers, body, keys, now)
    return caught.value.reason


# --- callback signatures --------------------------------------------------------------------------------------------


def test_valid_callback_verifies_and_decrypts(provider_keys):
    plain = wechat_transaction("ORDER-1", 1234, transaction_id="4200000001")
    headers, body = notification(provider_keys, plain=plain, event_id="EV-1")
    verify_signature(headers, body, platform(provider_keys), NOW)
    event = parse_event(body)
    assert (event.id, event.event_type, event.resource_type) == ("EV-1", "TRANSACTION.SUCCESS", "encrypt-resource")
    assert event.summary == "支付成功"
    assert event.resource["associated_data"] == "transaction" and len(event.resource["nonce"]) == 12
    assert decrypt_resource(event.resource, provider_keys.apiv3_key) == plain


def test_refund_callback_decrypts(provider_keys):
    plain = wechat_refund("ORDER-1", "R1", 300, 1234)
    headers, body = notification(provider_keys, "REFUND.SUCCESS", plain)
    verify_signature(headers, body, platform(provider_keys), NOW)
    resource = parse_event(body).resource
    assert resource["associated_data"] == "refund"
    assert decrypt_resource(resource, provider_keys.apiv3_key)["amount"]["refund"] == 300


def test_header_names_are_case_insensitive(provider_keys):
    headers, body = notification(provider_keys)
    verify_signature({k.lower(): v for k, v in headers.items()}, body, platform(provider_keys), NOW)
    verify_signature({k.upper(): v for k, v in headers.items()}, body, platform(provider_keys), NOW)


def test_signed_message_is_timestamp_nonce_body_lines(provider_keys):
    # hand-built: "1700000000\nNONCE\n{...}\n" signed by the platform key
    body = b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{}}'
    signature = rsa_sign(provider_keys.platform_private, b"1700000000\nNONCE\n" + body + b"\n")
    headers = {"Wechatpay-Serial": provider_keys.platform_serial, "Wechatpay-Signature": signature,
               "Wechatpay-Timestamp": "1700000000", "Wechatpay-Nonce": "NONCE"}
    verify_signature(headers, body, platform(provider_keys), NOW)


def test_public_key_id_serials_work(provider_keys):
    headers, body = wechat_notification(provider_keys.platform_private, "PUB_KEY_ID_0114232134912410000000000000",
                                        provider_keys.apiv3_key, "TRANSACTION.SUCCESS", {}, timestamp=NOW)
    keys = {"PUB_KEY_ID_0114232134912410000000000000": provider_keys.platform_public}
    verify_signature(headers, body, keys, NOW)


@pytest.mark.parametrize("name", ["Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"])
def test_missing_header_refused(provider_keys, name):
    headers, body = notification(provider_keys)
    del headers[name]
    assert refused(headers, body, platform(provider_keys)) == f"missing {name} header"


def test_unknown_serial_refused_without_any_outgoing_call(provider_keys, standin):
    headers, body = notification(provider_keys)
    headers["Wechatpay-Serial"] = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    assert "unknown Wechatpay-Serial '5157F09EFDC096DE15EBE81A47057A7232F1B8E1'" in refused(
        headers, body, platform(provider_keys)
    )
    assert standin.requests == []


def test_unknown_serial_is_checked_before_the_signature(provider_keys):
    headers, body = notification(provider_keys, signature="WECHATPAY/SIGNTEST/!!not base64!!", timestamp="soon")
    headers["Wechatpay-Serial"] = "OTHER"
    assert "unknown Wechatpay-Serial" in refused(headers, body, platform(provider_keys))


def test_signtest_probe_refused(provider_keys):
    # WeChat's probe carries a real-looking signature after the prefix; a verifier must not wave it through
    headers, body = notification(provider_keys, signature="WECHATPAY/SIGNTEST/" + base64.b64encode(bytes(256)).decode())
    assert "SIGNTEST" in refused(headers, body, platform(provider_keys))


@pytest.mark.parametrize("offset", [300, -300, 301, -3600, 10**9])
def test_timestamp_300_s_away_refused(provider_keys, offset):
    headers, body = notification(provider_keys, timestamp=NOW + offset)
    assert "Wechatpay-Timestamp is" in refused(headers, body, platform(provider_keys))


@pytest.mark.parametrize("offset", [299, -299, 0])
def test_timestamp_within_299_s_accepted(provider_keys, offset):
    headers, body = notification(provider_keys, timestamp=NOW + offset)
    verify_signature(headers, body, platform(provider_keys), NOW)


def test_arrival_time_judges_the_timestamp(provider_keys):
    # a callback stored on arrival and verified an hour later (after a restart) passes with its arrival time
    headers, body = notification(provider_keys, timestamp=NOW)
    verify_signature(headers, body, platform(provider_keys), NOW + 10)
    assert "off" in refused(headers, body, platform(provider_keys), now=NOW + 3600)


@pytest.mark.parametrize("bad", ["1700000000.5", "-1700000000", "17e8", "abc", " 1700000000", "１７"])
def test_timestamp_not_an_integer_refused(provider_keys, bad):
    headers, body = notification(provider_keys)
    headers["Wechatpay-Timestamp"] = bad
    assert "is not an integer" in refused(headers, body, platform(provider_keys))


@pytest.mark.parametrize("bad", ["not base64!", "QUJD=X", "签名"])
def test_signature_not_base64_refused(provider_keys, bad):
    headers, body = notification(provider_keys, signature=bad)
    assert "not valid base64" in refused(headers, body, platform(provider_keys))


def test_tampered_body_refused(provider_keys):
    headers, body = notification(provider_keys)
    for altered in (body.replace(b"TRANSACTION.SUCCESS", b"REFUND.SUCCESS"), body + b" ", body[:-1]):
        assert "does not verify" in refused(headers, altered, platform(provider_keys))


def test_tampered_nonce_refused(provider_keys):
    headers, body = notification(provider_keys)
    headers["Wechatpay-Nonce"] += "x"
    assert "does not verify" in refused(headers, body, platform(provider_keys))


def test_signature_by_another_key_refused(provider_keys, other_key):
    headers, body = wechat_notification(other_key, provider_keys.platform_serial, provider_keys.apiv3_key,
                                        "TRANSACTION.SUCCESS", {}, timestamp=NOW)
    assert "does not verify" in refused(headers, body, platform(provider_keys))


# --- events and resources -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff", b"[]", b'"x"', b"null"])
def test_non_json_or_non_object_body_refused(body):
    with pytest.raises(CallbackRefused, match="is not (a )?JSON"):
        parse_event(body)


@pytest.mark.parametrize("missing", ["id", "event_type", "resource"])
def test_event_without_essentials_refused(provider_keys, missing):
    _, body = notification(provider_keys)
    doc = json.loads(body)
    del doc[missing]
    with pytest.raises(CallbackRefused, match=f"no {missing}"):
        parse_event(json.dumps(doc).encode())


def test_event_optional_fields():
    event = parse_event(b'{"id":"E","event_type":"REFUND.ABNORMAL","resource":{"a":1}}')
    assert event == WechatEvent(id="E", event_type="REFUND.ABNORMAL", resource_type=None, summary=None,
                                resource={"a": 1})


def test_wrong_apiv3_key_refused(provider_keys):
    _, body = notification(provider_keys)
    other = b"0123456789abcdef0123456789abcdef"
    with pytest.raises(CallbackRefused, match="does not decrypt") as caught:
        decrypt_resource(parse_event(body).resource, other)
    assert provider_keys.apiv3_key.decode() not in caught.value.reason and other.decode() not in caught.value.reason


@pytest.mark.parametrize(
    "change",
    [
        {"associated_data": "refund"},
        {"associated_data": None},
        {"nonce": "AAAAAAAAAAAA"},
        {"ciphertext": base64.b64encode(b"\x00" * 40).decode()},
    ],
)
def test_altered_resource_refused(provider_keys, change):
    _, body = notification(provider_keys)
    resource = parse_event(body).resource | change
    with pytest.raises(CallbackRefused, match="does not decrypt"):
        decrypt_resource(resource, provider_keys.apiv3_key)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"algorithm": "AEAD_AES_128_GCM"}, "not supported"),
        ({"algorithm": None}, "not supported"),
        ({"nonce": None}, "lacks nonce"),
        ({"ciphertext": 42}, "lacks nonce"),
        ({"ciphertext": "not base64!"}, "cannot be decrypted"),
        ({"nonce": ""}, "cannot be decrypted"),
    ],
)
def test_malformed_resource_refused(provider_keys, change, match):
    _, body = notification(provider_keys)
    with pytest.raises(CallbackRefused, match=match):
        decrypt_resource(parse_event(body).resource | change, provider_keys.apiv3_key)


@pytest.mark.parametrize("plain", [b"not json", b"[1, 2]"])
def test_resource_that_is_not_a_json_object_refused(provider_keys, plain):
    ciphertext = AESGCM(provider_keys.apiv3_key).encrypt(b"abcdefghijkl", plain, b"transaction")
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": "abcdefghijkl", "associated_data": "transaction",
                "ciphertext": base64.b64encode(ciphertext).decode()}
    with pytest.raises(CallbackRefused, match="not"):
        decrypt_resource(resource, provider_keys.apiv3_key)


def test_resource_without_associated_data(provider_keys):
    ciphertext = AESGCM(provider_keys.apiv3_key).encrypt(b"abcdefghijkl", b'{"a":1}', None)
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": "abcdefghijkl", "associated_data": "",
                "ciphertext": base64.b64encode(ciphertext).decode()}
    assert decrypt_resource(resource, provider_keys.apiv3_key) == {"a": 1}


# --- settings -------------------------------------------------------------------------------------------------------


def test_settings_need_a_32_byte_apiv3_key_and_never_show_it(wechat_settings):
    assert wechat_settings.apiv3_key.decode() not in repr(wechat_settings)
    for bad in (b"short", wechat_settings.apiv3_key.decode(), wechat_settings.apiv3_key + b"x"):
        with pytest.raises(ValueError, match="32-byte") as caught:
            attrs.evolve(wechat_settings, apiv3_key=bad)
        assert wechat_settings.apiv3_key.decode() not in str(caught.value)


# --- the client against the stand-in --------------------------------------------------------------------------------


def test_authorization_header(wechat_settings, provider_keys):
    # WeChat's documented example request: GET /v3/certificates at 1554208460 with nonce 593BEC0C...
    client = WechatClient(wechat_settings, now=lambda: 1554208460.9, nonce=lambda: "593BEC0C930BF1AFEB40B4A08C8FB242")
    header = client.authorization("GET", "/v3/certificates", "")
    message = b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    signature = rsa_sign(provider_keys.merchant_private, message)
    assert header == (
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        f'signature="{signature}",timestamp="1554208460",serial_no="{provider_keys.merchant_serial}"'
    )
    provider_keys.merchant_public.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())


def test_native(wechat_settings, standin):
    answer = WechatClient(wechat_settings).native("ORDER-1", 1234, "充电 CP1")
    assert answer["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    [request] = standin.requests
    assert request.verified and (request.method, request.path) == ("POST", "/v3/pay/transactions/native")
    assert request.json() == {
        "appid": "wx0000000000000001", "mchid": "1900000001", "description": "充电 CP1", "out_trade_no": "ORDER-1",
        "notify_url": "https://gateway.example/api/payment/callback/wechat",
        "amount": {"total": 1234, "currency": "CNY"},
    }
    assert request.headers["Accept"] == "application/json" and request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000001",')


def test_query_before_and_after_payment(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 500, "x")
    assert client.query("ORDER-1") == {"trade_state": "NOTPAY", "amount_total": 500, "transaction_id": None}
    standin.pay("ORDER-1")
    answer = client.query("ORDER-1")
    assert answer["trade_state"] == "SUCCESS" and answer["amount_total"] == 500 and answer["transaction_id"]
    request = standin.requests[-1]
    assert request.verified and request.method == "GET" and request.body == b""
    assert request.path == "/v3/pay/transactions/out-trade-no/ORDER-1?mchid=1900000001"


def test_query_quotes_the_order_number(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("A*B|C", 1, "x")
    assert client.query("A*B|C")["trade_state"] == "NOTPAY"  # signed over the quoted path, as sent
    assert standin.requests[-1].path == "/v3/pay/transactions/out-trade-no/A%2AB%7CC?mchid=1900000001"


def test_query_of_unknown_order_is_trade_not_found(wechat_settings, standin):
    with pytest.raises(TradeNotFound, match="ORDER_NOT_EXIST"):
        WechatClient(wechat_settings).query("NOPE")
    assert issubclass(TradeNotFound, ProviderError)


def test_refund(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 1000, "x")
    standin.pay("ORDER-1")
    answer = client.refund("ORDER-1", "R1", 300, 1000, "overcharged")
    assert answer["status"] == "PROCESSING" and answer["refund_id"]
    request = standin.requests[-1]
    assert request.verified and (request.method, request.path) == ("POST", "/v3/refund/domestic/refunds")
    assert request.json() == {
        "out_trade_no": "ORDER-1", "out_refund_no": "R1", "reason": "overcharged",
        "notify_url": "https://gateway.example/api/payment/callback/wechat/refund",
        "amount": {"refund": 300, "total": 1000, "currency": "CNY"},
    }
    assert client.refund("ORDER-1", "R1", 300, 1000, "overcharged") == answer  # a retry: the same refund
    client.refund("ORDER-1", "R2", 700, 1000, "")
    assert "reason" not in standin.requests[-1].json()


def test_refund_of_unpaid_order_is_a_provider_error(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 1000, "x")
    with pytest.raises(ProviderError, match="HTTP 400 INVALID_REQUEST") as caught:
        client.refund("ORDER-1", "R1", 100, 1000, "")
    assert not isinstance(caught.value, TradeNotFound)


@pytest.mark.parametrize("amount", [0, -1, True, 1.5])
def test_bad_amounts_are_refused_before_any_call(wechat_settings, standin, amount):
    client = WechatClient(wechat_settings)
    with pytest.raises(ValueError):
        client.native("ORDER-1", amount, "x")
    with pytest.raises(ValueError):
        client.refund("ORDER-1", "R1", amount, 100, "")
    assert standin.requests == []


def test_request_signed_with_a_wrong_merchant_key_is_refused(wechat_settings, standin, other_key):
    client = WechatClient(attrs.evolve(wechat_settings, private_key=other_key))
    with pytest.raises(ProviderError, match="HTTP 401 SIGN_ERROR") as caught:
        client.query("ORDER-1")
    assert not isinstance(caught.value, TradeNotFound)
    assert [r.verified for r in standin.requests] == [False]


def test_answer_with_unknown_serial_is_refused(wechat_settings, standin):
    standin.platform_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    with pytest.raises(ProviderError, match="unknown Wechatpay-Serial"):
        WechatClient(wechat_settings).native("ORDER-1", 100, "x")
    assert len(standin.requests) == 1  # our call only: nothing fetched to learn the serial


def test_answer_signed_with_a_wrong_key_is_refused(wechat_settings, standin, other_key):
    standin.platform_key = other_key
    with pytest.raises(ProviderError, match="does not verify"):
        WechatClient(wechat_settings).native("ORDER-1", 100, "x")


def test_tampered_answer_is_refused(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 100, "x")
    standin.tamper = lambda body: body.replace(b"NOTPAY", b"SUCCESS")
    with pytest.raises(ProviderError, match="does not verify"):
        client.query("ORDER-1")


def test_unverified_not_found_is_not_trade_not_found(wechat_settings, standin):
    standin.tamper = lambda body: body + b" "
    with pytest.raises(ProviderError, match="HTTP 404 ORDER_NOT_EXIST.*unverified answer") as caught:
        WechatClient(wechat_settings).query("NOPE")
    assert not isinstance(caught.value, TradeNotFound)


@pytest.mark.parametrize("offset", [-400, 400])
def test_answer_with_a_stale_timestamp_is_refused(wechat_settings, standin, offset):
    standin.wechat_clock_offset = offset
    with pytest.raises(ProviderError, match=f"Wechatpay-Timestamp is {-offset} s off"):
        WechatClient(wechat_settings).native("ORDER-1", 100, "x")


def test_our_clock_far_off_is_refused_by_wechat(wechat_settings, standin):
    with pytest.raises(ProviderError, match="HTTP 401 SIGN_ERROR"):
        WechatClient(wechat_settings, now=lambda: time.time() + 400).native("ORDER-1", 100, "x")


def test_signed_answer_about_another_order_is_refused(wechat_settings, standin):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 100, "x")
    standin.rewrite = lambda doc: doc | {"out_trade_no": "ORDER-2", "trade_state": "SUCCESS"}
    with pytest.raises(ProviderError, match="another order"):
        client.query("ORDER-1")


@pytest.mark.parametrize(
    "doc, match",
    [({}, "no trade_state"), ({"trade_state": "SUCCESS", "amount": {"total": "5"}}, "amount.total"),
     ({"trade_state": "SUCCESS", "amount": {"total": -5}}, "amount.total")],
)
def test_malformed_query_answers_refused(wechat_settings, standin, doc, match):
    client = WechatClient(wechat_settings)
    client.native("ORDER-1", 100, "x")
    standin.rewrite = lambda _: doc
    with pytest.raises(ProviderError, match=match):
        client.query("ORDER-1")


def test_answer_not_signed_over_its_body_is_refused_before_parsing(wechat_settings, standin):
    standin.tamper = lambda _: b"<html>502 Bad Gateway</html>"
    with pytest.raises(ProviderError, match="does not verify"):
        WechatClient(wechat_settings).native("ORDER-1", 100, "x")


def test_signed_answer_that_is_not_an_object_is_refused(wechat_settings, standin):
    standin.rewrite = lambda _: ["code_url"]
    with pytest.raises(ProviderError, match="not a JSON object"):
        WechatClient(wechat_settings).native("ORDER-1", 100, "x")


def test_unreachable_api_is_a_provider_error_at_once(wechat_settings):
    client = WechatClient(attrs.evolve(wechat_settings, base_url=closed_url()))
    started = time.monotonic()
    with pytest.raises(ProviderError, match="could not reach 127.0.0.1"):
        client.native("ORDER-1", 100, "x")
    assert time.monotonic() - started < 2


def test_silent_api_times_out(wechat_settings):
    with silent_server() as url:
        client = WechatClient(attrs.evolve(wechat_settings, base_url=url, timeout=0.3))
        started = time.monotonic()
        with pytest.raises(ProviderError, match="no answer from 127.0.0.1 within 0.3 s"):
            client.query("ORDER-1")
        assert time.monotonic() - started < 2


async def test_client_runs_in_a_worker_thread(wechat_settings: WechatSettings, standin):
    client = WechatClient(wechat_settings)
    answer = await trio.to_thread.run_sync(client.native, "ORDER-1", 100, "x")
    assert answer["code_url"]
