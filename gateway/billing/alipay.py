"""Alipay open-platform protocol (RSA2): signing requests, verifying answers and notifications.

Offline-verifiable: every check uses only the keys in `AlipaySettings`; nothing is fetched to verify.
Calls block (stdlib urllib); the payment service runs them in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256

from gateway.billing.errors import CallbackRefused, ProviderError, ProviderRefused

BEIJING = ZoneInfo("Asia/Shanghai")  # Alipay reads request timestamps as Beijing time
MAX_ANSWER = 1 << 20  # no Alipay answer we use comes near 1 MiB; a bigger one is not Alipay
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")


class TradeNotFound(ProviderError):
    """Alipay (or WeChat Pay) says the trade does not exist (ACQ.TRADE_NOT_EXIST / ORDER_NOT_EXIST)."""


@attrs.frozen
class AlipaySettings:
    app_id: str
    seller_id: str  # the merchant's Alipay user id (PID, 2088...)
    private_key: RSAPrivateKey  # our app private key: signs requests
    alipay_public_key: RSAPublicKey  # verifies notifications and answers
    gateway_url: str  # e.g. https://openapi.alipay.com/gateway.do
    notify_url: str  # where Alipay posts notifications ("" = omit)
    timeout: float = 10.0
    # certificate mode (gateway/billing/certs.py): the SNs requests carry, and the one answers must name
    app_cert_sn: str | None = None
    alipay_root_cert_sn: str | None = None
    alipay_cert_sn: str | None = None


def yuan(minor: int) -> str:
    """1234 -> "12.34": Alipay's amount text for an amount in fen."""
    if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
        raise ValueError(f"amount must be a non-negative integer number of fen, not {minor!r}")
    return f"{minor // 100}.{minor % 100:02d}"


def to_minor(text: str) -> int:
    """Alipay's "12.34" -> 1234 fen ("12.3" -> 1230, "12" -> 1200); ValueError on a sign, exponent, 3 decimals..."""
    if not isinstance(text, str) or not _AMOUNT.fullmatch(text):
        raise ValueError(f"not an amount in yuan with at most 2 decimals: {text!r}")
    return int(Decimal(text) * 100)  # exact: the pattern allows at most 2 decimals


def signing_string(params: Mapping[str, str], *, request: bool = False) -> str:
    """Sorted k=v pairs joined by &, without sign, sign_type and empty values (Alipay's notification rule).

    request=True keeps sign_type: Alipay signs requests over it too (only `sign` is left out there).
    """
    dropped = {"sign"} if request else {"sign", "sign_type"}
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in dropped and params[k] not in ("", None))


def sign(params: Mapping[str, str], key: RSAPrivateKey, *, request: bool = False) -> str:
    """base64 SHA256withRSA (PKCS#1 v1.5) of `signing_string(params)`."""
    text = signing_string(params, request=request).encode("utf-8")
    return base64.b64encode(key.sign(text, PKCS1v15(), SHA256())).decode("ascii")


def _rsa2_ok(data: bytes, signature: str, key: RSAPublicKey) -> bool | None:
    """True/False for a (mis)matching signature; None when it is not base64 at all."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        key.verify(raw, data, PKCS1v15(), SHA256())
    except InvalidSignature:
        return False
    return True


def verify_notification(form: Mapping[str, str], key: RSAPublicKey) -> None:
    """Check an asynchronous notification's RSA2 signature; CallbackRefused says why it fails."""
    signature = form.get("sign")
    if not signature:
        raise CallbackRefused("Alipay notification has no sign")
    sign_type = form.get("sign_type")
    if sign_type == "RSA":
        raise CallbackRefused("Alipay notification signed with sign_type RSA (SHA-1): a downgrade, only RSA2 accepted")
    if sign_type != "RSA2":
        raise CallbackRefused(f"Alipay notification sign_type {str(sign_type)[:20]!r} refused: only RSA2 accepted")
    ok = _rsa2_ok(signing_string(form).encode("utf-8"), signature, key)
    if ok is None:
        raise CallbackRefused("Alipay notification sign is not valid base64")
    if not ok:
        raise CallbackRefused("Alipay notification signature does not verify with the Alipay public key")


@attrs.frozen
class AlipayNotice:
    notify_id: str
    notify_type: str
    app_id: str
    seller_id: str | None
    out_trade_no: str
    trade_no: str | None
    trade_status: str | None
    total_amount: int | None  # fen
    refund_fee: int | None  # fen, present on refund notifications: the total refunded so far
    out_biz_no: str | None  # our refund request number, on refund notifications
    gmt_payment: str | None


def parse_notice(form: Mapping[str, str]) -> AlipayNotice:
    """The fields billing uses from a (verified) notification; CallbackRefused on missing ids or bad amounts."""

    def opt(name: str) -> str | None:
        return form.get(name) or None

    def need(name: str) -> str:
        value = opt(name)
        if value is None:
            raise CallbackRefused(f"Alipay notification has no {name}")
        return value

    def amount(name: str) -> int | None:
        value = opt(name)
        if value is None:
            return None
        try:
            return to_minor(value)
        except ValueError:
            raise CallbackRefused(f"Alipay notification {name} is not an amount: {value[:30]!r}") from None

    return AlipayNotice(
        notify_id=need("notify_id"),
        notify_type=need("notify_type"),
        app_id=need("app_id"),
        seller_id=opt("seller_id"),
        out_trade_no=need("out_trade_no"),
        trade_no=opt("trade_no"),
        trade_status=opt("trade_status"),
        total_amount=amount("total_amount"),
        refund_fee=amount("refund_fee"),
        out_biz_no=opt("out_biz_no"),
        gmt_payment=opt("gmt_payment"),
    )


_WS = re.compile(r"[ \t\n\r]*")


def raw_members(text: str) -> dict[str, str]:
    """The top-level members of a JSON object, each as its exact raw text (Alipay signs the raw node text).

    ValueError if `text` is not one JSON object, or names a member twice (which node was signed?).
    """
    decoder = json.JSONDecoder()
    i = _WS.match(text).end()
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _WS.match(text, i + 1).end()
    members: dict[str, str] = {}
    if text[i : i + 1] == "}":
        return members
    while True:
        if text[i : i + 1] != '"':
            raise ValueError("expected a member name")
        name, i = json.decoder.scanstring(text, i + 1)
        i = _WS.match(text, i).end()
        if text[i : i + 1] != ":":
            raise ValueError("expected ':'")
        i = _WS.match(text, i + 1).end()
        _, end = decoder.raw_decode(text, i)
        if name in members:
            raise ValueError(f"member {name!r} appears twice")
        members[name] = text[i:end]
        i = _WS.match(text, end).end()
        if text[i : i + 1] == ",":
            i = _WS.match(text, i + 1).end()
        elif text[i : i + 1] == "}":
            if _WS.match(text, i + 1).end() != len(text):
                raise ValueError("text after the object")
            return members
        else:
            raise ValueError("expected ',' or '}'")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # a payment API that redirects is misconfigured; following it would resend a signed request elsewhere
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _beijing_now() -> datetime:
    return datetime.now(BEIJING)


def _failure(node: Mapping[str, Any]) -> str:
    parts = [f"code {node.get('code')}", str(node.get("msg") or "")]
    if node.get("sub_code"):
        parts.append(f"{node.get('sub_code')}: {node.get('sub_msg') or ''}")
    return ", ".join(p for p in parts if p)


class AlipayClient:
    """alipay.trade.* calls; every answer's signature is verified before any field is used."""

    def __init__(self, settings: AlipaySettings, now: Callable[[], datetime] = _beijing_now):
        self.settings = settings
        self._now = now

    def precreate(self, out_trade_no: str, amount: int, subject: str, expires_minutes: int | None = None) -> dict:
        """A QR-code order (alipay.trade.precreate) -> {"qr_code", "out_trade_no"}.

        `expires_minutes`: sent as timeout_express ("30m"); Alipay closes the trade unpaid after it."""
        _positive(amount)
        biz = {"out_trade_no": out_trade_no, "total_amount": yuan(amount), "subject": subject}
        if expires_minutes is not None:
            biz["timeout_express"] = f"{int(expires_minutes)}m"
        node = self._call("alipay.trade.precreate", biz, notify=True)
        qr_code = node.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code:
            raise ProviderError("Alipay alipay.trade.precreate: the answer has no qr_code")
        _same_trade("alipay.trade.precreate", node, out_trade_no)
        return {"qr_code": qr_code, "out_trade_no": out_trade_no}

    def query(self, out_trade_no: str) -> dict:
        """alipay.trade.query -> {"trade_status", "total_amount" (fen), "trade_no" or None}; TradeNotFound."""
        method = "alipay.trade.query"
        node = self._call(method, {"out_trade_no": out_trade_no})
        _same_trade(method, node, out_trade_no)
        status = node.get("trade_status")
        if not isinstance(status, str) or not status:
            raise ProviderError(f"Alipay {method}: the answer has no trade_status")
        return {
            "trade_status": status,
            "total_amount": _answer_amount(method, node, "total_amount"),
            "trade_no": node.get("trade_no") or None,
        }

    def refund(self, out_trade_no: str, amount: int, out_request_no: str, reason: str) -> dict:
        """alipay.trade.refund -> {"fund_change": bool, "refund_fee" (fen, refunded IN TOTAL on the trade), "trade_no"}.

        Repeating an out_request_no is idempotent at Alipay and answers fund_change False: the money moved before.
        """
        _positive(amount)
        method = "alipay.trade.refund"
        biz = {"out_trade_no": out_trade_no, "refund_amount": yuan(amount), "out_request_no": out_request_no}
        if reason:
            biz["refund_reason"] = reason
        node = self._call(method, biz)
        _same_trade(method, node, out_trade_no)
        fund_change = node.get("fund_change")
        if fund_change not in ("Y", "N"):
            raise ProviderError(f"Alipay {method}: fund_change is {str(fund_change)[:10]!r}, not Y or N")
        return {
            "fund_change": fund_change == "Y",
            "refund_fee": _answer_amount(method, node, "refund_fee"),
            "trade_no": node.get("trade_no") or None,
        }

    def close(self, out_trade_no: str) -> dict:
        """alipay.trade.close -> {"closed": True}; a trade nobody scanned does not exist at Alipay yet,
        which is as good as closed. ProviderRefused when it cannot be closed (paid already)."""
        method = "alipay.trade.close"
        try:
            node = self._call(method, {"out_trade_no": out_trade_no})
        except TradeNotFound:
            return {"closed": True}
        _same_trade(method, node, out_trade_no)
        return {"closed": True}

    def refund_query(self, out_trade_no: str, out_request_no: str) -> dict:
        """alipay.trade.fastpay.refund.query -> {"status": "SUCCESS" | "PROCESSING" | "NOT_FOUND",
        "amount" (fen) or None}. Alipay answers a refund it never made with no refund fields."""
        method = "alipay.trade.fastpay.refund.query"
        node = self._call(method, {"out_trade_no": out_trade_no, "out_request_no": out_request_no})
        _same_trade(method, node, out_trade_no)
        if node.get("out_request_no") not in (None, out_request_no):
            raise ProviderError(f"Alipay {method}: the answer is about another refund")
        if not node.get("refund_amount"):
            return {"status": "NOT_FOUND", "amount": None}
        amount = _answer_amount(method, node, "refund_amount")
        # refund_status is REFUND_SUCCESS once the money moved (absent in older answers, which mean the same)
        done = node.get("refund_status") in (None, "", "REFUND_SUCCESS")
        return {"status": "SUCCESS" if done else "PROCESSING", "amount": amount}
    def bill_url(self, day: str) -> str:
        """alipay.data.dataservice.bill.downloadurl.query for a day's trade bill -> its download URL (valid 30 s).

        bills.BillNotReady when Alipay has no bill for the day (yet).
        """
        from gateway.billing.bills import BillNotReady  # bills imports nothing from here: no cycle at run time

        method = "alipay.data.dataservice.bill.downloadurl.query"
        try:
            node = self._call(method, {"bill_type": "trade", "bill_date": day})
        except ProviderError as e:
            if "bill_not_exist" in str(e):
                raise BillNotReady(str(e)) from None
            raise
        url = node.get("bill_download_url")
        if not isinstance(url, str) or not url:
            raise ProviderError(f"Alipay {method}: the answer has no bill_download_url")
        return url

    def _call(self, method: str, biz: Mapping[str, str], *, notify: bool = False) -> dict:
        """POST one signed request; the verified success node of the answer, or ProviderError."""
        s = self.settings
        moment = self._now()
        moment = moment.astimezone(BEIJING) if moment.tzinfo else moment  # naive: already Beijing time
        params = {
            "app_id": s.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify and s.notify_url:
            params["notify_url"] = s.notify_url
        if s.app_cert_sn:  # certificate mode
            params["app_cert_sn"], params["alipay_root_cert_sn"] = s.app_cert_sn, s.alipay_root_cert_sn or ""
        params["sign"] = sign(params, s.private_key, request=True)
        text = self._post(method, urllib.parse.urlencode(params).encode("ascii"))
        return self._verified_node(method, text)

    def _post(self, method: str, body: bytes) -> str:
        host = urllib.parse.urlsplit(self.settings.gateway_url).hostname or self.settings.gateway_url[:60]
        request = urllib.request.Request(
            self.settings.gateway_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8", "Accept": "application/json"},
        )
        try:
            with _opener.open(request, timeout=self.settings.timeout) as answer:
                raw = answer.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as e:
            e.close()
            raise ProviderError(f"Alipay {method}: {host} answered HTTP {e.code}") from None
        except urllib.error.URLError as e:
            raise ProviderError(f"Alipay {method}: could not reach {host}: {e.reason}") from None
        except TimeoutError:
            raise ProviderError(f"Alipay {method}: no answer from {host} within {self.settings.timeout:g} s") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise ProviderError(f"Alipay {method}: the call to {host} failed: {type(e).__name__}: {e}") from None
        if len(raw) > MAX_ANSWER:
            raise ProviderError(f"Alipay {method}: the answer from {host} is too large")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProviderError(f"Alipay {method}: the answer is not UTF-8 text") from None

    def _verified_node(self, method: str, text: str) -> dict:
        try:
            members = raw_members(text)
            node_name = method.replace(".", "_") + "_response"
            raw_node = members.get(node_name) or members.get("error_response")  # gateway-level errors
            if raw_node is None:
                raise ValueError(f"no {node_name}")
            node = json.loads(raw_node)
            signature = json.loads(members["sign"]) if "sign" in members else None
            signer = json.loads(members["alipay_cert_sn"]) if "alipay_cert_sn" in members else None
        except ValueError as e:
            raise ProviderError(f"Alipay {method}: the answer is not what Alipay sends ({e})") from None
        if not isinstance(node, dict) or not isinstance(signature, (str, type(None))):
            raise ProviderError(f"Alipay {method}: the answer is not what Alipay sends")
        failed = "" if node.get("code") == "10000" else f" ({_failure(node)})"
        if not signature:
            raise ProviderError(f"Alipay {method}: the answer is not signed{failed}")
        if not _rsa2_ok(raw_node.encode("utf-8"), signature, self.settings.alipay_public_key):
            raise ProviderError(
                f"Alipay {method}: the answer's signature does not verify with the Alipay public key"
                " (wrong alipay_public_key, or the answer was altered)"
            )
        if self.settings.alipay_cert_sn and signer not in (None, self.settings.alipay_cert_sn):
            raise ProviderError(
                f"Alipay {method}: the answer was signed with Alipay certificate {str(signer)[:40]}, not the configured "
                f"one ({self.settings.alipay_cert_sn}): download the new Alipay public certificate (alipay_cert)")
        if failed:
            error = ProviderError  # a system error (code 20000, ACQ.SYSTEM_ERROR): worth asking again
            if node.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                error = TradeNotFound
            elif node.get("code") == "40004" and node.get("sub_code") != "ACQ.SYSTEM_ERROR":
                error = ProviderRefused  # "Business Failed": the same request gets the same answer
            raise error(f"Alipay {method} failed: {_failure(node)}")
        return node


def _positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive integer number of fen, not {amount!r}")


def _same_trade(method: str, node: Mapping[str, Any], out_trade_no: str) -> None:
    # a signed answer about another trade (a replayed one) must not settle ours
    if node.get("out_trade_no") not in (None, out_trade_no):
        raise ProviderError(f"Alipay {method}: the answer is about another trade")


def _answer_amount(method: str, node: Mapping[str, Any], name: str) -> int:
    value = node.get(name)
    try:
        return to_minor(value)  # type: ignore[arg-type]
    except ValueError:
        raise ProviderError(f"Alipay {method}: {name} in the answer is not an amount: {str(value)[:30]!r}") from None
