"""/api/cloudcharge: HMAC-SHA256 signatures checked (key, time window, replays) and what is reported kept
in the same records as a charger's own messages: a session reported over it becomes a transaction with
its order, priced. Billing: the default tariff standard of 150 fen/kWh from 06:00 to 22:00 (UTC here)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import pytest

from gateway.http.cloudcharge_api import SignatureRefused, Signatures, signature
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger
from tests.waiting import until

KEY = "a-shared-secret-of-the-platform"


def signed(path: str, body: dict[str, Any], key: str = KEY, at: float | None = None,
           nonce: str | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() if at is None else at))
    nonce = nonce or secrets.token_hex(8)
    # computed here from the rule as documented, not with the gateway's function
    mac = hmac.new(key.encode(), f"{timestamp}\n{nonce}\nPOST\n{path}\n".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"X-Timestamp": timestamp, "X-Nonce": nonce, "X-Signature": mac, "Content-Type": "application/json"}


def test_the_signature_rule():
    assert signature(b"k", "1", "nonce-01", "post", "/p", b"{}") == hmac.new(
        b"k", b"1\nnonce-01\nPOST\n/p\n{}", hashlib.sha256).hexdigest()


def test_window_and_replays_are_enforced():
    checks = Signatures(b"k", 300)
    sig = signature(b"k", "1000", "nonce-01", "POST", "/p", b"{}")
    checks.check("1000", "nonce-01", sig, "POST", "/p", b"{}", now=1200)
    with pytest.raises(SignatureRefused, match="used already") as refused:
        checks.check("1000", "nonce-01", sig, "POST", "/p", b"{}", now=1201)
    assert refused.value.status == 409
    late = signature(b"k", "1000", "nonce-02", "POST", "/p", b"{}")
    with pytest.raises(SignatureRefused, match="301 s old"):
        checks.check("1000", "nonce-02", late, "POST", "/p", b"{}", now=1301)
    with pytest.raises(SignatureRefused, match="does not match"):
        checks.check("1000", "nonce-03", late, "POST", "/p", b'{"x":1}', now=1000)
    with pytest.raises(SignatureRefused, match="not configured"):
        Signatures(b"", 300).check("1000", "nonce-03", late, "POST", "/p", b"{}", now=1000)
    # a nonce is forgotten only once its timestamp is out of the window anyway
    checks.check("1800", "nonce-04", signature(b"k", "1800", "nonce-04", "POST", "/p", b"{}"), "POST", "/p", b"{}",
                 now=1800)
    assert "nonce-01" not in checks._seen


async def test_a_session_reported_over_cloudcharge_is_a_priced_order(nursery, tmp_path):
    config = make_config(tmp_path)
    config.cloudcharge_key = KEY
    # One price all day: the session is priced on the gateway's clock when the charger's times are before it
    # was first seen (as here), so the time of day the test runs at must not change the amount.
    config.billing.tariffs = {"flat": {"periods": [{"start": "00:00", "end": "00:00", "price": 150}],
                                       "service_fee": 0}}
    config.billing.default_tariff = "flat"
    async with started(nursery, config) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "CC-1") as cp:  # known to the gateway
            await cp.result("BootNotification", BOOT)

        async def post(route: str, body: dict[str, Any], **sign: Any) -> Any:
            path = f"/api/cloudcharge/{route}"
            raw, headers = signed(path, {"cpId": "CC-1", **body}, **sign)
            return await http.post(path, content=raw, headers=headers)

        r = await post("heartbeat", {})
        assert r.status_code == 200 and r.json()["data"]["cpId"] == "CC-1", r.text
        assert (await post("status", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"})).status_code == 200
        day = time.strftime("%Y-%m-%d", time.gmtime())
        r = await post("start", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": f"{day}T08:00:00Z"})
        assert r.status_code == 200, r.text
        tx = r.json()["data"]["transactionId"]
        assert r.json()["data"]["idTagStatus"] == "Accepted"
        r = await post("stop", {"transactionId": tx, "meterStop": 13345, "timestamp": f"{day}T09:00:00Z",
                                "reason": "Local"})
        assert r.status_code == 200, r.text

        async def closed() -> Any:
            order = await gw.store.orders.find("transaction_id", tx)
            return order if order and order["stopped_at"] else None
        order = await until(closed)
        # 12345 Wh at 150 fen/kWh: 1851.75 → 1852 fen
        assert (order["energy_wh"], order["total_amount"]) == (12345, 1852)
        [connector] = (await gw.store.chargers.get("CC-1"))["connectors"]
        assert (connector["connector_id"], connector["status"]) == (1, "Preparing")


async def test_unsigned_stale_replayed_and_unknown_requests_are_refused(nursery, tmp_path):
    config = make_config(tmp_path)
    config.cloudcharge_key = KEY
    async with started(nursery, config) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "CC-1") as cp:
            await cp.result("BootNotification", BOOT)
        path = "/api/cloudcharge/heartbeat"
        raw, headers = signed(path, {"cpId": "CC-1"})
        assert (await http.post(path, content=raw, headers=headers)).status_code == 200
        replay = await http.post(path, content=raw, headers=headers)
        assert replay.status_code == 409 and replay.json()["code"] == 409 and "used already" in replay.json()["message"]
        raw, headers = signed(path, {"cpId": "CC-1"}, key="another-key")
        assert (await http.post(path, content=raw, headers=headers)).status_code == 403
        raw, headers = signed(path, {"cpId": "CC-1"}, at=time.time() - 3600)
        stale = await http.post(path, content=raw, headers=headers)
        assert stale.status_code == 403 and "old" in stale.json()["message"]
        assert (await http.post(path, json={"cpId": "CC-1"})).status_code == 403
        raw, headers = signed(path, {"cpId": "NOBODY"})
        assert (await http.post(path, content=raw, headers=headers)).status_code == 404
        path = "/api/cloudcharge/start"
        raw, headers = signed(path, {"cpId": "CC-1", "connectorId": "one", "idTag": "T", "meterStart": 0,
                                     "timestamp": "2026-01-01T00:00:00Z"})
        bad = await http.post(path, content=raw, headers=headers)
        assert bad.status_code == 400 and "connectorId" in bad.text
