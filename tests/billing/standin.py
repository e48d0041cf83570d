"""A stand-in for Alipay and WeChat Pay, and forgers of their callbacks, for tests.

Written from the providers' specifications with `cryptography`, independently of gateway.billing.alipay and
gateway.billing.wechat (never imported here), so a shared misreading of a spec cannot make both sides agree:

- Alipay: requests are signed over the sorted non-empty k=v pairs without `sign` (sign_type included);
  notifications over the same without `sign` and `sign_type`; answers over the raw text of the response node,
  which Alipay writes with escaped slashes ("https:\\/\\/...").
- WeChat Pay v3: requests are signed over "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n", answers and callbacks
  over "TIMESTAMP\\nNONCE\\nBODY\\n", SHA256withRSA (PKCS#1 v1.5); callback resources are AES-256-GCM encrypted
  with the APIv3 key.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import string
import threading
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BEIJING = timezone(timedelta(hours=8))  # China has no daylight saving time
APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
MCHID = "1900000001"
APPID = "wx0000000000000001"
_ALNUM = string.ascii_letters + string.digits


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@attrs.frozen
class ProviderKeys:
    """Every key and id of one merchant at both providers, freshly generated."""

    app_private: rsa.RSAPrivateKey  # our Alipay app key: signs our requests
    app_public: rsa.RSAPublicKey
    alipay_private: rsa.RSAPrivateKey  # Alipay's key: signs answers and notifications
    alipay_public: rsa.RSAPublicKey
    merchant_private: rsa.RSAPrivateKey  # our WeChat Pay merchant API key: signs our requests
    merchant_public: rsa.RSAPublicKey
    merchant_serial: str
    platform_private: rsa.RSAPrivateKey  # WeChat Pay's platform key: signs answers and callbacks
    platform_public: rsa.RSAPublicKey
    platform_serial: str
    apiv3_key: bytes = attrs.field(repr=False)
    app_id: str = APP_ID
    seller_id: str = SELLER_ID
    mchid: str = MCHID
    appid: str = APPID

    @classmethod
    def generate(cls) -> ProviderKeys:
        app, ali, merchant, platform = (new_rsa_key() for _ in range(4))
        return cls(
            app_private=app,
            app_public=app.public_key(),
            alipay_private=ali,
            alipay_public=ali.public_key(),
            merchant_private=merchant,
            merchant_public=merchant.public_key(),
            merchant_serial=secrets.token_hex(20).upper(),
            platform_private=platform,
            platform_public=platform.public_key(),
            platform_serial=secrets.token_hex(20).upper(),
            apiv3_key=_random(32).encode("ascii"),
        )


# --- signing, test side ---------------------------------------------------------------------------------------------


def rsa_sign(key: rsa.RSAPrivateKey, data: bytes, algorithm: hashes.HashAlgorithm | None = None) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), algorithm or hashes.SHA256())).decode("ascii")


def rsa_verifies(key: rsa.RSAPublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def alipay_content(params: dict[str, str], *, without: tuple[str, ...] = ("sign", "sign_type")) -> str:
    """Alipay's text to sign: parameters with a value, minus `without`, sorted by name, as k=v joined by &."""
    pairs = sorted((k, v) for k, v in params.items() if k not in without and v)
    return "&".join(k + "=" + v for k, v in pairs)


def fen(text: str) -> int:
    if not re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", text):
        raise ValueError(text)
    return int(Decimal(text) * 100)


def yuan_text(amount: int) -> str:
    return str((Decimal(amount) / 100).quantize(Decimal("0.01")))


def alipay_answer(node_name: str, node: dict[str, Any], key: rsa.RSAPrivateKey | None) -> bytes:
    """An Alipay answer body; the signature covers the node's raw text, slashes escaped as Alipay writes them."""
    raw = json.dumps(node, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
    if key is None:
        return ('{"%s":%s}' % (node_name, raw)).encode()
    return ('{"%s":%s,"sign":"%s"}' % (node_name, raw, rsa_sign(key, raw.encode()))).encode()


def wechat_headers(key: rsa.RSAPrivateKey, serial: str, body: bytes, *, timestamp: int | str | None = None,
                   nonce: str | None = None, signature: str | None = None) -> dict[str, str]:
    """Wechatpay-* headers signing `body` as WeChat Pay signs answers and callbacks."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = _random(32) if nonce is None else nonce
    if signature is None:
        signature = rsa_sign(key, ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n")
    return {
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": signature,
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


# --- forged callbacks -----------------------------------------------------------------------------------------------


def alipay_notification(
    private_key: rsa.RSAPrivateKey, *, sign_type: str = "RSA2", **fields: str | None
) -> dict[str, str]:
    """A trade_status_sync notification form (values decoded), signed with `private_key`.

    sign_type "RSA" signs with SHA-1, as Alipay's legacy RSA does. A field given as None is left out.
    """
    now = datetime.now(BEIJING)
    form: dict[str, str | None] = {
        "notify_time": now.strftime("%Y-%m-%d %H:%M:%S"),
        "notify_type": "trade_status_sync",
        "notify_id": secrets.token_hex(16),
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": sign_type,
        "app_id": APP_ID,
        "seller_id": SELLER_ID,
        "auth_app_id": APP_ID,
        "buyer_id": "2088102177846880",
        "trade_no": now.strftime("%Y%m%d") + _random(20, string.digits),
        "out_trade_no": "T" + secrets.token_hex(8),
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.34",
        "receipt_amount": fields.get("total_amount") or "12.34",
        "subject": "充电 charging",
        "gmt_create": (now - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "gmt_payment": now.strftime("%Y-%m-%d %H:%M:%S"),
    }
    form.update(fields)
    clean = {k: v for k, v in form.items() if v is not None}
    algorithm = hashes.SHA1() if sign_type == "RSA" else hashes.SHA256()
    clean["sign"] = rsa_sign(private_key, alipay_content(clean).encode("utf-8"), algorithm)
    return clean


def wechat_notification(
    platform_private_key: rsa.RSAPrivateKey,
    serial: str,
    apiv3_key: bytes,
    event_type: str,
    resource_plain: dict[str, Any],
    *,
    timestamp: int | str | None = None,
    nonce: str | None = None,
    event_id: str | None = None,
    signature: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """A WeChat Pay v3 callback: (headers, body), resource encrypted with `apiv3_key`, body signed."""
    original = "transaction" if event_type.startswith("TRANSACTION.") else "refund"
    gcm_nonce = _random(12)
    plain = json.dumps(resource_plain, ensure_ascii=False).encode()
    ciphertext = AESGCM(apiv3_key).encrypt(gcm_nonce.encode(), plain, original.encode())
    envelope = {
        "id": event_id or str(uuid.uuid4()),
        "create_time": datetime.now(BEIJING).isoformat(timespec="seconds"),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功" if original == "transaction" else "退款状态改变",
        "resource": {
            "original_type": original,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": original,
            "nonce": gcm_nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = wechat_headers(platform_private_key, serial, body, timestamp=timestamp, nonce=nonce, signature=signature)
    headers["Content-Type"] = "application/json"
    return headers, body


def wechat_transaction(out_trade_no: str, total: int, *, trade_state: str = "SUCCESS",
                       transaction_id: str | None = None) -> dict[str, Any]:
    """The plain resource of a TRANSACTION.SUCCESS callback."""
    return {
        "mchid": MCHID,
        "appid": APPID,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id or "4200" + _random(24, string.digits),
        "trade_type": "NATIVE",
        "trade_state": trade_state,
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": datetime.now(BEIJING).isoformat(timespec="seconds"),
        "payer": {"openid": "o" + _random(27)},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }


def wechat_refund(out_trade_no: str, out_refund_no: str, refund: int, total: int, *, refund_status: str = "SUCCESS",
                  refund_id: str | None = None, transaction_id: str | None = None) -> dict[str, Any]:
    """The plain resource of a REFUND.SUCCESS (or ABNORMAL / CLOSED) callback."""
    return {
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id or "4200" + _random(24, string.digits),
        "out_refund_no": out_refund_no,
        "refund_id": refund_id or "5030" + _random(25, string.digits),
        "refund_status": refund_status,
        "success_time": datetime.now(BEIJING).isoformat(timespec="seconds"),
        "user_received_account": "支付用户零钱",
        "amount": {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund},
    }


# --- the stand-in server --------------------------------------------------------------------------------------------


@attrs.frozen
class Received:
    """One request the stand-in got, and whether its signature verified."""

    method: str
    path: str  # with the query, as sent
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def biz(self) -> dict[str, Any]:
        return json.loads(self.form["biz_content"])

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class Trade:
    out_trade_no: str
    total: int  # fen
    subject: str
    status: str  # Alipay WAIT_BUYER_PAY / TRADE_SUCCESS / TRADE_CLOSED; WeChat NOTPAY / SUCCESS / REFUND
    pay_url: str
    trade_no: str | None = None
    refunded: int = 0
    refunds: dict[str, dict[str, Any]] = attrs.Factory(dict)  # out_request_no -> the answer given
    expiry: str | None = None  # Alipay timeout_express / time_expire, WeChat time_expire, as sent


class StandIn:
    """Alipay at `/gateway.do` and WeChat Pay at `/v3/...` on 127.0.0.1, in a background thread."""

    def __init__(self, keys: ProviderKeys):
        self.keys = keys
        self.requests: list[Received] = []
        self.alipay_trades: dict[str, Trade] = {}
        self.wechat_trades: dict[str, Trade] = {}
        # knobs a test may turn
        self.alipay_key: rsa.RSAPrivateKey | None = keys.alipay_private  # signs Alipay answers; None = unsigned
        self.platform_key: rsa.RSAPrivateKey = keys.platform_private  # signs WeChat answers
        self.platform_serial: str = keys.platform_serial  # the Wechatpay-Serial of answers
        self.tamper: Callable[[bytes], bytes] | None = None  # alters an answer body after it was signed
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # alters an answer before signing
        self.wechat_refund_status = "PROCESSING"  # what a refund answer says
        self.wechat_clock_offset = 0  # seconds added to the Wechatpay-Timestamp of answers
        # API name (alipay.trade.close, wechat close, wechat refund...) -> (code, message): answered as a
        # business failure, correctly signed, until removed
        self.refuse: dict[str, tuple[str, str]] = {}
        self.delay = 0.0  # seconds every answer waits: longer than the gateway's timeout, it times out
        self.wechat_refund_states: dict[str, str] = {}  # out_refund_no -> what a refund query answers now
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def alipay_url(self) -> str:
        return self.url + "/gateway.do"

    def start(self) -> StandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(  # a short poll interval: stop() waits for at most one
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="payment-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pay(self, out_trade_no: str) -> None:
        """The buyer pays: Alipay and/or WeChat queries now answer TRADE_SUCCESS / SUCCESS. A closed trade
        cannot be paid (ValueError), as the providers' cashiers refuse it."""
        with self.lock:
            found = False
            for trades in (self.alipay_trades, self.wechat_trades):
                if out_trade_no in trades and trades[out_trade_no].status in ("TRADE_CLOSED", "CLOSED"):
                    raise ValueError(f"trade {out_trade_no!r} is closed: it cannot be paid")
            if out_trade_no in self.alipay_trades:
                trade = self.alipay_trades[out_trade_no]
                trade.status = "TRADE_SUCCESS"
                trade.trade_no = datetime.now(BEIJING).strftime("%Y%m%d") + _random(20, string.digits)
                found = True
            if out_trade_no in self.wechat_trades:
                trade = self.wechat_trades[out_trade_no]
                trade.status, trade.trade_no = "SUCCESS", "4200" + _random(24, string.digits)
                found = True
        if not found:
            raise KeyError(f"no trade {out_trade_no!r} at the stand-in")

    # --- hooks for more APIs (tests/billing/standin_bills.py) ---

    def extra_alipay_methods(self) -> dict[str, Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]]:
        return {}

    def extra_wechat_route(self, method: str, path: str, query: dict[str, str],
                           body: bytes) -> tuple[int, dict[str, Any]] | None:
        return None

    def raw_route(self, method: str, path: str, headers: dict[str, str],
                  body: bytes) -> tuple[bool, int, dict[str, str], bytes] | None:
        """An answer that is not an API answer (a file download), or None."""
        return None

    def received(self, prefix: str = "") -> list[Received]:
        """The requests received so far whose path starts with `prefix`."""
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    # --- Alipay ---

    def alipay(self, body: bytes) -> tuple[bool, int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        keys = self.keys
        content = alipay_content(form, without=("sign",)).encode("utf-8")  # requests: sign_type is signed too
        verified = (
            form.get("sign_type") == "RSA2"
            and form.get("app_id") == keys.app_id
            and form.get("charset") == "utf-8"
            and rsa_verifies(keys.app_public, content, form.get("sign", ""))
        )
        method = form.get("method", "")
        if not verified:
            node = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
                    "sub_msg": "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"}
            return False, 200, {}, alipay_answer("error_response", node, self.alipay_key)
        if not _recent_beijing(form.get("timestamp", "")):
            node = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-timestamp",
                    "sub_msg": "非法的时间戳参数"}
            return True, 200, {}, alipay_answer("error_response", node, self.alipay_key)
        handlers = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.refund": self._refund,
            "alipay.trade.close": self._close,
            "alipay.trade.fastpay.refund.query": self._refund_query,
        }
        handlers |= self.extra_alipay_methods()
        if method not in handlers:
            node = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method",
                    "sub_msg": "不存在的方法名"}
            return True, 200, {}, alipay_answer("error_response", node, self.alipay_key)
        with self.lock:
            if method in self.refuse:
                node = _alipay_failure(*self.refuse[method])
            else:
                node = handlers[method](json.loads(form["biz_content"]), form)
        if self.rewrite is not None:
            node = self.rewrite(node)
        return True, 200, {}, alipay_answer(method.replace(".", "_") + "_response", node, self.alipay_key)

    def _precreate(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        no = biz["out_trade_no"]
        trade = self.alipay_trades.get(no)
        if trade is not None and trade.status != "WAIT_BUYER_PAY":
            return _alipay_failure("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if trade is None:
            trade = Trade(no, fen(biz["total_amount"]), biz["subject"], "WAIT_BUYER_PAY",
                          "https://qr.alipay.com/bax0" + _random(20).lower(),
                          expiry=biz.get("timeout_express") or biz.get("time_expire"))
            self.alipay_trades[no] = trade
        return {"code": "10000", "msg": "Success", "out_trade_no": no, "qr_code": trade.pay_url}

    def _query(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        no = biz["out_trade_no"]
        trade = self.alipay_trades.get(no)
        if trade is None:
            return _alipay_failure("ACQ.TRADE_NOT_EXIST", "交易不存在") | {"out_trade_no": no}
        node = {"code": "10000", "msg": "Success", "out_trade_no": no, "buyer_logon_id": "159****5620",
                "trade_status": trade.status, "total_amount": yuan_text(trade.total)}
        if trade.trade_no:
            node["trade_no"] = trade.trade_no
        return node

    def _refund(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        no, request_no, amount = biz["out_trade_no"], biz["out_request_no"], fen(biz["refund_amount"])
        trade = self.alipay_trades.get(no)
        if trade is None:
            return _alipay_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if request_no in trade.refunds:  # a retry: the same refund, no new money moves
            answer = {k: v for k, v in trade.refunds[request_no].items() if k != "refund_amount_text"}
            return answer | {"fund_change": "N", "refund_fee": yuan_text(trade.refunded)}
        if trade.status != "TRADE_SUCCESS":
            return _alipay_failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if amount > trade.total - trade.refunded:
            return _alipay_failure("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        trade.refunded += amount
        if trade.refunded == trade.total:
            trade.status = "TRADE_CLOSED"
        node = {"code": "10000", "msg": "Success", "buyer_logon_id": "159****5620", "fund_change": "Y",
                "gmt_refund_pay": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"), "out_trade_no": no,
                "refund_fee": yuan_text(trade.refunded), "trade_no": trade.trade_no}
        trade.refunds[request_no] = node | {"refund_amount_text": yuan_text(amount)}
        return node

    def _close(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        no = biz["out_trade_no"]
        trade = self.alipay_trades.get(no)
        if trade is None:  # Alipay knows a precreated trade only once it was scanned; ours are all "scanned"
            return _alipay_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status not in ("WAIT_BUYER_PAY", "TRADE_CLOSED"):
            return _alipay_failure("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": trade.trade_no or "2026" + _random(24, string.digits)}

    def _refund_query(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        no, request_no = biz["out_trade_no"], biz["out_request_no"]
        trade = self.alipay_trades.get(no)
        if trade is None:
            return _alipay_failure("ACQ.TRADE_NOT_EXIST", "交易不存在")
        node: dict[str, Any] = {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": trade.trade_no}
        done = trade.refunds.get(request_no)
        if done is not None:  # a refund Alipay made: its amount and REFUND_SUCCESS
            node |= {"out_request_no": request_no, "total_amount": yuan_text(trade.total),
                     "refund_amount": done["refund_amount_text"], "refund_status": "REFUND_SUCCESS"}
        return node

    # --- WeChat Pay ---

    def wechat(
        self, method: str, path: str, body: bytes, authorization: str
    ) -> tuple[bool, int, dict[str, str], bytes]:
        verified = self._wechat_auth_ok(method, path, body, authorization)
        if not verified:
            status, doc = 401, {"code": "SIGN_ERROR", "message": "签名错误"}
        else:
            with self.lock:
                status, doc = self._wechat_route(method, path, body)
            if status == 204:  # WeChat's close answers no content, signed all the same
                stamp = int(time.time()) + self.wechat_clock_offset
                headers = wechat_headers(self.platform_key, self.platform_serial, b"", timestamp=stamp)
                return verified, 204, headers, b""
            if self.rewrite is not None:
                doc = self.rewrite(doc)
        data = json.dumps(doc, ensure_ascii=False).encode()
        stamp = int(time.time()) + self.wechat_clock_offset
        headers = wechat_headers(self.platform_key, self.platform_serial, data, timestamp=stamp)
        headers["Request-ID"] = str(uuid.uuid4())
        headers["Content-Type"] = "application/json"
        return verified, status, headers, data

    def _wechat_auth_ok(self, method: str, path: str, body: bytes, authorization: str) -> bool:
        scheme, _, rest = authorization.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if fields.get("mchid") != self.keys.mchid or fields.get("serial_no") != self.keys.merchant_serial:
            return False
        ts = fields.get("timestamp", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return False
        message = b"\n".join([method.encode(), path.encode(), ts.encode(), fields.get("nonce_str", "").encode(), body])
        return rsa_verifies(self.keys.merchant_public, message + b"\n", fields.get("signature", ""))

    def _wechat_route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        split = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(split.query))
        what = {"/v3/pay/transactions/native": "native", "/v3/refund/domestic/refunds": "refund"}.get(split.path)
        if what is None:
            what = "close" if split.path.endswith("/close") else "refund query" if "/refunds/" in split.path \
                else "query"
        if what in self.refuse:
            code, message = self.refuse[what]
            return 400, {"code": code, "message": message}
        extra = self.extra_wechat_route(method, split.path, query, body)
        if extra is not None:
            return extra
        if method == "POST" and split.path == "/v3/pay/transactions/native":
            return self._native(json.loads(body))
        prefix = "/v3/pay/transactions/out-trade-no/"
        if method == "POST" and split.path.startswith(prefix) and split.path.endswith("/close"):
            return self._wechat_close(urllib.parse.unquote(split.path[len(prefix):-len("/close")]), json.loads(body))
        refunds = "/v3/refund/domestic/refunds/"
        if method == "GET" and split.path.startswith(refunds):
            return self._wechat_refund_query(urllib.parse.unquote(split.path[len(refunds):]))
        if method == "GET" and split.path.startswith(prefix):
            return self._wechat_query(urllib.parse.unquote(split.path[len(prefix):]), query.get("mchid"))
        if method == "POST" and split.path == "/v3/refund/domestic/refunds":
            return self._wechat_refund(json.loads(body))
        return 404, {"code": "NOT_FOUND", "message": "no such API at the stand-in"}

    def _native(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if doc.get("appid") != self.keys.appid or doc.get("mchid") != self.keys.mchid:
            return 400, {"code": "APPID_MCHID_NOT_MATCH", "message": "appid和mch_id不匹配"}
        total = doc.get("amount", {}).get("total")
        if not isinstance(total, int) or total <= 0 or not doc.get("notify_url") or not doc.get("description"):
            return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
        no = doc["out_trade_no"]
        trade = self.wechat_trades.get(no)
        if trade is not None and trade.status != "NOTPAY":
            return 403, {"code": "ORDERPAID", "message": "该订单已支付"}
        if trade is None:
            expiry = doc.get("time_expire")
            if expiry is not None and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", expiry):
                return 400, {"code": "PARAM_ERROR", "message": "time_expire 格式错误"}
            trade = Trade(no, total, doc["description"], "NOTPAY", "weixin://wxpay/bizpayurl?pr=" + _random(7),
                          expiry=expiry)
            self.wechat_trades[no] = trade
        return 200, {"code_url": trade.pay_url}

    def _wechat_close(self, no: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if doc.get("mchid") != self.keys.mchid:
            return 400, {"code": "PARAM_ERROR", "message": "mchid与请求不一致"}
        trade = self.wechat_trades.get(no)
        if trade is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        if trade.status in ("SUCCESS", "REFUND"):
            return 400, {"code": "ORDERPAID", "message": "订单已支付"}
        trade.status = "CLOSED"
        return 204, {}

    def _wechat_refund_query(self, request_no: str) -> tuple[int, dict[str, Any]]:
        for trade in self.wechat_trades.values():
            if request_no in trade.refunds:
                answer = dict(trade.refunds[request_no])
                answer["status"] = self.wechat_refund_states.get(request_no, answer["status"])
                return 200, answer
        return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}

    def _wechat_query(self, no: str, mchid: str | None) -> tuple[int, dict[str, Any]]:
        if mchid != self.keys.mchid:
            return 400, {"code": "PARAM_ERROR", "message": "mchid与请求不一致"}
        trade = self.wechat_trades.get(no)
        if trade is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        doc: dict[str, Any] = {"appid": self.keys.appid, "mchid": self.keys.mchid, "out_trade_no": no,
                               "trade_type": "NATIVE", "trade_state": trade.status, "trade_state_desc": trade.status,
                               "amount": {"total": trade.total, "currency": "CNY"}}
        if trade.trade_no:
            doc["transaction_id"] = trade.trade_no
            doc["amount"] |= {"payer_total": trade.total, "payer_currency": "CNY"}
        return 200, doc

    def _wechat_refund(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        trade = self.wechat_trades.get(doc.get("out_trade_no", ""))
        if trade is None:
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
        request_no, amount = doc["out_refund_no"], doc["amount"]
        if request_no in trade.refunds:
            return 200, trade.refunds[request_no]
        if trade.status not in ("SUCCESS", "REFUND"):
            return 400, {"code": "INVALID_REQUEST", "message": "订单未支付"}
        if amount.get("total") != trade.total or amount.get("currency") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "订单金额与之前请求不一致"}
        if not isinstance(amount.get("refund"), int) or not 0 < amount["refund"] <= trade.total - trade.refunded:
            return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
        trade.refunded += amount["refund"]
        trade.status = "REFUND"
        answer = {"refund_id": "5030" + _random(25, string.digits), "out_refund_no": request_no,
                  "transaction_id": trade.trade_no, "out_trade_no": trade.out_trade_no, "channel": "ORIGINAL",
                  "user_received_account": "支付用户零钱",
                  "create_time": datetime.now(BEIJING).isoformat(timespec="seconds"),
                  "status": self.wechat_refund_status,
                  "amount": {"total": trade.total, "refund": amount["refund"], "payer_total": trade.total,
                             "payer_refund": amount["refund"], "currency": "CNY"}}
        trade.refunds[request_no] = answer
        return 200, answer


def _alipay_failure(sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}


def _recent_beijing(text: str) -> bool:
    """Alipay's timestamp: Beijing wall-clock time, "YYYY-MM-DD HH:MM:SS", near now."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return False
    return abs((datetime.now(BEIJING) - moment).total_seconds()) < 600


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        standin: StandIn = self.server.standin  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if standin.delay:
            time.sleep(standin.delay)
        headers = {k: v for k, v in self.headers.items()}
        raw = standin.raw_route(self.command, self.path, headers, body)
        if raw is not None:
            verified, status, extra, answer = raw
        elif urllib.parse.urlsplit(self.path).path == "/gateway.do" and self.command == "POST":
            verified, status, extra, answer = standin.alipay(body)
            extra["Content-Type"] = "application/json;charset=utf-8"
        elif self.path.startswith("/v3/"):
            verified, status, extra, answer = standin.wechat(self.command, self.path, body,
                                                             self.headers.get("Authorization", ""))
        else:
            verified, status, extra, answer = False, 404, {"Content-Type": "text/plain"}, b"not here"
        with standin.lock:
            standin.requests.append(Received(self.command, self.path, headers, body, verified))
        if standin.tamper is not None:
            answer = standin.tamper(answer)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server accepts connections (the kernel does) but never answers: for timeout tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def closed_url() -> str:
    """A URL nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
