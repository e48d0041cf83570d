"""WeChat Pay API v3: signing requests, verifying answers and callbacks, decrypting callback resources.

Offline-verifiable: signatures are checked only against the platform keys in `WechatSettings`; an unknown
serial is refused, never fetched (a downloaded certificate would be trusted on the word of whoever answers).
Calls block (stdlib urllib); the payment service runs them in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Mapping

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

from gateway.billing.alipay import TradeNotFound
from gateway.billing.errors import CallbackRefused, ProviderError, ProviderRefused

__all__ = [
    "TradeNotFound",
    "WechatClient",
    "WechatEvent",
    "WechatSettings",
    "decrypt_resource",
    "parse_event",
    "verify_signature",
]

MAX_SKEW = 300  # seconds: WeChat's own limit for a signed timestamp
MAX_ANSWER = 1 << 20
SIGNTEST = "WECHATPAY/SIGNTEST/"  # WeChat's probe: a merchant that accepts it does not verify signatures
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"


def _apiv3_key(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("apiv3_key must be the 32-byte APIv3 key (bytes)")  # never echo the value


@attrs.frozen
class WechatSettings:
    mchid: str
    appid: str
    merchant_serial: str  # serial of our merchant API certificate
    private_key: RSAPrivateKey  # our merchant API private key: signs requests
    apiv3_key: bytes = attrs.field(repr=False, validator=_apiv3_key)  # decrypts callback resources
    platform_keys: Mapping[str, RSAPublicKey]  # platform cert serial or "PUB_KEY_ID_..." -> public key
    base_url: str  # https://api.mch.weixin.qq.com
    notify_url: str
    timeout: float = 10.0
    fetch_certificates: bool = False  # platform_keys also holds the downloaded certificates (certs.py keeps them)


def verify_signature(headers: Mapping[str, str], body: bytes, keys: Mapping[str, RSAPublicKey], now: float) -> None:
    """Check the Wechatpay-* signature of a callback or an answer; CallbackRefused says why it fails.

    `now` is the epoch time the message arrived (a stored callback is judged by its arrival, not its processing).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    values = []
    for name in ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"):
        value = lower.get(name.lower())
        if not value:
            raise CallbackRefused(f"missing {name} header")
        values.append(value)
    serial, signature, timestamp, nonce = values
    key = keys.get(serial)
    if key is None:  # refused before the signature is looked at, and nothing is fetched
        raise CallbackRefused(f"unknown Wechatpay-Serial {serial[:64]!r}: no such platform key configured")
    if signature.startswith(SIGNTEST):
        raise CallbackRefused("WeChat Pay signature-verification probe (WECHATPAY/SIGNTEST/) refused")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):  # epoch seconds, not a bignum
        raise CallbackRefused(f"Wechatpay-Timestamp {timestamp[:20]!r} is not an integer")
    if abs(now - int(timestamp)) >= MAX_SKEW:
        raise CallbackRefused(f"Wechatpay-Timestamp is {int(now) - int(timestamp)} s off (limit {MAX_SKEW} s)")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise CallbackRefused("Wechatpay-Signature is not valid base64") from None
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(raw, message, PKCS1v15(), SHA256())
    except InvalidSignature:
        raise CallbackRefused(f"signature does not verify with platform key {serial[:64]!r}") from None


@attrs.frozen
class WechatEvent:
    id: str
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED...
    resource_type: str | None
    summary: str | None
    resource: Mapping[str, Any]  # the encrypted resource object as received


def parse_event(body: bytes) -> WechatEvent:
    """The envelope of a (verified) callback; CallbackRefused if it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRefused("WeChat Pay callback body is not JSON") from None
    if not isinstance(doc, dict):
        raise CallbackRefused("WeChat Pay callback body is not a JSON object")
    for name in ("id", "event_type"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise CallbackRefused(f"WeChat Pay callback has no {name}")
    if not isinstance(doc.get("resource"), dict):
        raise CallbackRefused("WeChat Pay callback has no resource")
    optional = {k: doc[k] if isinstance(doc.get(k), str) else None for k in ("resource_type", "summary")}
    return WechatEvent(id=doc["id"], event_type=doc["event_type"], resource=doc["resource"], **optional)


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: bytes) -> dict:
    """The plain JSON object inside an AEAD_AES_256_GCM resource; CallbackRefused on any failure."""
    plain = decrypt_bytes(resource, apiv3_key)
    try:
        result = json.loads(plain)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRefused("WeChat Pay resource decrypts to something that is not JSON") from None
    if not isinstance(result, dict):
        raise CallbackRefused("WeChat Pay resource decrypts to something that is not a JSON object")
    return result


def decrypt_bytes(resource: Mapping[str, Any], apiv3_key: bytes) -> bytes:
    """The plain bytes inside an AEAD_AES_256_GCM resource (a callback's, or an encrypted certificate)."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise CallbackRefused(f"WeChat Pay resource algorithm {str(resource.get('algorithm'))[:30]!r} not supported")
    nonce, ciphertext, associated = (resource.get(k) for k in ("nonce", "ciphertext", "associated_data"))
    if not isinstance(nonce, str) or not isinstance(ciphertext, str) or not isinstance(associated, (str, type(None))):
        raise CallbackRefused("WeChat Pay resource lacks nonce or ciphertext")
    try:
        plain = AESGCM(apiv3_key).decrypt(
            nonce.encode(), base64.b64decode(ciphertext, validate=True), (associated or "").encode() or None
        )
    except InvalidTag:
        raise CallbackRefused("WeChat Pay resource does not decrypt (wrong APIv3 key, or it was altered)") from None
    except (binascii.Error, ValueError, OverflowError) as e:
        raise CallbackRefused(f"WeChat Pay resource cannot be decrypted: {type(e).__name__}") from None
    return plain


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # a payment API that redirects is misconfigured; following it would resend a signed request elsewhere
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _nonce() -> str:
    return secrets.token_hex(16).upper()  # 32 characters, WeChat's maximum


@attrs.frozen
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class WechatClient:
    """Native-QR payments and refunds; every answer's signature is verified before any field is used."""

    def __init__(
        self, settings: WechatSettings, now: Callable[[], float] = time.time, nonce: Callable[[], str] = _nonce
    ):
        self.settings = settings
        self._now = now
        self._nonce = nonce

    def native(self, out_trade_no: str, amount: int, description: str, time_expire: str | None = None) -> dict:
        """POST /v3/pay/transactions/native -> {"code_url"}; `time_expire` (RFC 3339) ends the trade unpaid."""
        _positive(amount)
        s = self.settings
        body = {
            "appid": s.appid,
            "mchid": s.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": s.notify_url,
            "amount": {"total": amount, "currency": "CNY"},
        }
        if time_expire is not None:
            body["time_expire"] = time_expire
        doc = self._call("native", "POST", "/v3/pay/transactions/native", body)
        code_url = doc.get("code_url")
        if not isinstance(code_url, str) or not code_url:
            raise ProviderError("WeChat Pay native: the answer has no code_url")
        return {"code_url": code_url}

    def query(self, out_trade_no: str) -> dict:
        """GET the order -> {"trade_state", "amount_total" (fen) or None, "transaction_id" or None}; TradeNotFound."""
        path = (
            f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(out_trade_no, safe='')}"
            f"?mchid={urllib.parse.quote(self.settings.mchid, safe='')}"
        )
        doc = self._call("query", "GET", path, None)
        if doc.get("out_trade_no") not in (None, out_trade_no) or doc.get("mchid") not in (None, self.settings.mchid):
            raise ProviderError("WeChat Pay query: the answer is about another order")  # a replayed answer
        state = doc.get("trade_state")
        if not isinstance(state, str) or not state:
            raise ProviderError("WeChat Pay query: the answer has no trade_state")
        amount = doc.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ProviderError(f"WeChat Pay query: amount.total {str(total)[:30]!r} is not an amount in fen")
        transaction_id = doc.get("transaction_id")
        return {
            "trade_state": state,
            "amount_total": total,
            "transaction_id": transaction_id if isinstance(transaction_id, str) and transaction_id else None,
        }

    def refund(self, out_trade_no: str, out_refund_no: str, refund: int, total: int, reason: str) -> dict:
        """POST /v3/refund/domestic/refunds -> {"status" (usually PROCESSING), "refund_id" or None}.

        The outcome arrives later as a REFUND.* callback; repeating an out_refund_no is idempotent at WeChat.
        """
        _positive(refund)
        _positive(total)
        body: dict[str, Any] = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no}
        if reason:
            body["reason"] = reason
        if self.settings.notify_url:  # refund results go to the payment callback's /refund sibling
            body["notify_url"] = self.settings.notify_url.rstrip("/") + "/refund"
        body["amount"] = {"refund": refund, "total": total, "currency": "CNY"}
        doc = self._call("refund", "POST", "/v3/refund/domestic/refunds", body)
        if doc.get("out_refund_no") not in (None, out_refund_no):
            raise ProviderError("WeChat Pay refund: the answer is about another refund")
        status = doc.get("status")
        if not isinstance(status, str) or not status:
            raise ProviderError("WeChat Pay refund: the answer has no status")
        refund_id = doc.get("refund_id")
        return {"status": status, "refund_id": refund_id if isinstance(refund_id, str) and refund_id else None}

    def close(self, out_trade_no: str) -> dict:
        """POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close -> {"closed": True} (WeChat answers 204).
        ProviderRefused when it cannot be closed (ORDERPAID)."""
        path = f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(out_trade_no, safe='')}/close"
        self._call("close", "POST", path, {"mchid": self.settings.mchid})
        return {"closed": True}

    def refund_query(self, out_refund_no: str) -> dict:
        """GET /v3/refund/domestic/refunds/{out_refund_no} -> {"status" (SUCCESS, PROCESSING, ABNORMAL, CLOSED),
        "amount" (fen refunded), "refund_id"}; TradeNotFound when WeChat has no such refund."""
        path = f"/v3/refund/domestic/refunds/{urllib.parse.quote(out_refund_no, safe='')}"
        doc = self._call("refund query", "GET", path, None)
        if doc.get("out_refund_no") not in (None, out_refund_no):
            raise ProviderError("WeChat Pay refund query: the answer is about another refund")
        status = doc.get("status")
        if not isinstance(status, str) or not status:
            raise ProviderError("WeChat Pay refund query: the answer has no status")
        amount = doc.get("amount") if isinstance(doc.get("amount"), dict) else {}
        refund = amount.get("refund")
        if isinstance(refund, bool) or not isinstance(refund, int) or refund < 0:
            raise ProviderError(f"WeChat Pay refund query: amount.refund {str(refund)[:30]!r} is not an amount in fen")
        refund_id = doc.get("refund_id")
        return {"status": status, "amount": refund,
                "refund_id": refund_id if isinstance(refund_id, str) and refund_id else None}
    def trade_bill(self, day: str) -> dict:
        """GET /v3/bill/tradebill (bill_type ALL) -> {"download_url", "hash_type", "hash_value"}.

        bills.BillNotReady when WeChat Pay has no bill for the day (yet).
        """
        from gateway.billing.bills import BillNotReady  # bills imports nothing from here: no cycle at run time

        path = f"/v3/bill/tradebill?bill_date={urllib.parse.quote(day, safe='')}&bill_type=ALL"
        try:
            doc = self._call("tradebill", "GET", path, None)
        except ProviderError as e:
            if "NO_STATEMENT_EXIST" in str(e) or "STATEMENT_CREATING" in str(e):
                raise BillNotReady(str(e)) from None
            raise
        fields = {k: doc.get(k) for k in ("download_url", "hash_type", "hash_value")}
        if not all(isinstance(v, str) and v for v in fields.values()):
            raise ProviderError("WeChat Pay tradebill: the answer lacks download_url, hash_type or hash_value")
        return fields

    def download(self, url: str) -> bytes:
        """A bill file at `download_url`: a signed GET (the file itself is unsigned: check its hash)."""
        from gateway.billing.bills import read_bounded

        base, target = urllib.parse.urlsplit(self.settings.base_url), urllib.parse.urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):  # never sign a request for another host
            raise ProviderError(f"WeChat Pay download: {target.netloc[:60]!r} is not the API host")
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {"Authorization": self.authorization("GET", path, ""), "Accept": "*/*",
                   "User-Agent": "ocpp-gateway"}
        request = urllib.request.Request(base.scheme + "://" + base.netloc + path, method="GET", headers=headers)
        try:
            with _opener.open(request, timeout=self.settings.timeout) as answer:
                return read_bounded(answer, "WeChat Pay download")
        except urllib.error.HTTPError as e:
            e.close()
            raise ProviderError(f"WeChat Pay download: HTTP {e.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as e:
            raise ProviderError(f"WeChat Pay download failed: {getattr(e, 'reason', e)}") from None

    def certificates(self) -> list:
        """GET /v3/certificates -> the platform certificates (certs.PlatformCert), answer verified and decrypted."""
        from gateway.billing.certs import read_certificates

        path = "/v3/certificates"
        headers = {"Authorization": self.authorization("GET", path, ""), "Accept": "application/json",
                   "User-Agent": "ocpp-gateway"}
        answer = self._send("certificates", "GET", path, None, headers)
        if not 200 <= answer.status < 300:
            raise ProviderError(f"WeChat Pay certificates failed: HTTP {answer.status}")
        return read_certificates(answer.headers, answer.body, self.settings.apiv3_key, self.settings.platform_keys,
                                 self._now())

    def authorization(self, method: str, path: str, body: str) -> str:
        """The Authorization header for one request (path with its query, exactly as sent)."""
        s = self.settings
        timestamp, nonce = str(int(self._now())), self._nonce()
        message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()
        signature = base64.b64encode(s.private_key.sign(message, PKCS1v15(), SHA256())).decode("ascii")
        return (
            f'{AUTH_SCHEME} mchid="{s.mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{s.merchant_serial}"'
        )

    def _call(self, what: str, method: str, path: str, body: Mapping[str, Any] | None) -> dict:
        """Send one signed request; the verified JSON answer of a 2xx, else ProviderError."""
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": self.authorization(method, path, text),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "ocpp-gateway",  # WeChat Pay refuses requests without one
        }
        answer = self._send(what, method, path, text.encode() if body is not None else None, headers)
        why = ""  # why the answer's signature failed, if it did
        try:
            verify_signature(answer.headers, answer.body, self.settings.platform_keys, self._now())
        except CallbackRefused as e:
            if 200 <= answer.status < 300:
                raise ProviderError(f"WeChat Pay {what}: answer refused: {e.reason}") from None
            why = e.reason
        try:
            doc = json.loads(answer.body) if answer.body else {}
        except (ValueError, UnicodeDecodeError):
            doc = None
        if 200 <= answer.status < 300:
            if not isinstance(doc, dict):
                raise ProviderError(f"WeChat Pay {what}: the answer is not a JSON object")
            return doc
        detail = ""
        if isinstance(doc, dict) and doc.get("code"):
            detail = f" {str(doc.get('code'))[:60]}: {str(doc.get('message') or '')[:200]}"
        if why:  # an error page of a proxy, or someone else: say so rather than trust it
            raise ProviderError(f"WeChat Pay {what} failed: HTTP {answer.status}{detail} (unverified answer: {why})")
        if what == "query" and answer.status == 404 and isinstance(doc, dict) and doc.get("code") == "ORDER_NOT_EXIST":
            raise TradeNotFound(f"WeChat Pay {what} failed: HTTP 404{detail}")
        if what == "refund query" and answer.status == 404:
            raise TradeNotFound(f"WeChat Pay {what} failed: HTTP 404{detail}")
        if 400 <= answer.status < 500 and answer.status not in (401, 408, 429):  # a verified business error
            raise ProviderRefused(f"WeChat Pay {what} failed: HTTP {answer.status}{detail}")
        raise ProviderError(f"WeChat Pay {what} failed: HTTP {answer.status}{detail}")

    def _send(self, what: str, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> _Answer:
        url = self.settings.base_url.rstrip("/") + path
        host = urllib.parse.urlsplit(url).hostname or url[:60]
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            try:
                with _opener.open(request, timeout=self.settings.timeout) as answer:
                    return _Answer(answer.status, dict(answer.headers.items()), _read(answer, what, host))
            except urllib.error.HTTPError as e:  # a non-2xx answer: still an answer, with WeChat's code and message
                with e:
                    return _Answer(e.code, dict(e.headers.items()) if e.headers else {}, _read(e, what, host))
        except urllib.error.URLError as e:
            raise ProviderError(f"WeChat Pay {what}: could not reach {host}: {e.reason}") from None
        except TimeoutError:
            limit = self.settings.timeout
            raise ProviderError(f"WeChat Pay {what}: no answer from {host} within {limit:g} s") from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise ProviderError(f"WeChat Pay {what}: the call to {host} failed: {type(e).__name__}: {e}") from None


def _read(answer: Any, what: str, host: str) -> bytes:
    raw = answer.read(MAX_ANSWER + 1)
    if len(raw) > MAX_ANSWER:
        raise ProviderError(f"WeChat Pay {what}: the answer from {host} is too large")
    return raw


def _positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive integer number of fen, not {amount!r}")
