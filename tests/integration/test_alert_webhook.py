"""The alert webhook against test HTTP servers: a receiver that checks the signature itself (HMAC-SHA256,
computed here with hashlib, not with the gateway's code), and webhooks that hang or refuse, which must
never hold up a charger."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from functools import partial
from pathlib import Path

import attrs
import h11
import trio

from gateway.monitoring.webhook import HEADER, Webhook
from tests.conftest import started
from tests.helpers import BOOT, charger, status
from tests.integration.test_monitoring import monitoring_config
from tests.waiting import until

SECRET = "the webhook key"


@attrs.define
class Receiver:
    """A minimal HTTP server: keeps each request's headers and body, answers `status` (None: never answers)."""

    status: int | None = 204
    received: list[tuple[dict[str, str], bytes]] = attrs.Factory(list)
    port: int = 0

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        headers: dict[str, str] = {}
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        self.received.append((headers, body))
        if self.status is None:
            await trio.sleep_forever()
        await stream.send_all(conn.send(h11.Response(status_code=self.status, headers=[("content-length", "0")])))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        await stream.aclose()


def signed_correctly(headers: dict[str, str], body: bytes) -> bool:
    """The README's recipe: t and v1 from the header, HMAC-SHA256(secret, t + "." + body), recent t."""
    parts = dict(item.split("=", 1) for item in headers[HEADER.lower()].split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def webhook_config(tmp_path: Path, url: str, **alerts: object):
    return monitoring_config(tmp_path, webhook_url=url, webhook_secret=SECRET, **alerts)


async def test_the_webhook_receives_each_alert_raised_and_resolved_correctly_signed(nursery, tmp_path):
    receiver = Receiver()
    await receiver.serve(nursery)
    async with started(nursery, webhook_config(tmp_path, f"http://127.0.0.1:{receiver.port}/hook")) as gw:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "WH1") as cp:
            await cp.result("BootNotification", BOOT)
            await cp.result("StatusNotification", status(1, "Faulted"))
            await monitor.check()
            await until(lambda: len(receiver.received) == 1)
            await cp.result("StatusNotification", status(1, "Available"))
            await monitor.check()
            await until(lambda: len(receiver.received) == 2)
        async with gw.http() as http:
            for path in ("/metrics", "/api/monitoring/services/health", "/api/monitoring/alerts"):
                assert SECRET not in (await http.get(path)).text
    for headers, body in receiver.received:
        assert headers["content-type"] == "application/json"
        assert signed_correctly(headers, body)
        assert not signed_correctly(headers, body + b" ")  # the signature covers the body
    raised, resolved = (json.loads(body) for _, body in receiver.received)
    assert raised["event"] == "raised" and resolved["event"] == "resolved"
    assert raised["alert"]["rule"] == "connector_faulted" and raised["alert"]["subject"] == "WH1/1"
    assert resolved["alert"]["alertId"] == raised["alert"]["alertId"] and resolved["alert"]["status"] == "resolved"


async def _refusing_port() -> int:
    """A port nothing listens on: bound, then closed."""
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def _chargers_keep_being_answered(gw, rounds: int = 20) -> None:
    """Alerts raised again and again while a charger's heartbeats must each be answered: a webhook that never
    answers or refuses must not hold up either (receive() fails the test after 5 s without an answer)."""
    monitor = gw.running.monitor
    async with charger(gw.ocpp_port, "SLOW1") as cp:
        await cp.result("BootNotification", BOOT)
        for n in range(rounds):
            await cp.result("StatusNotification", status(1 + n % 2, "Faulted"))
            await monitor.check()  # raises, or resolves the other connector's
            await cp.result("StatusNotification", status(1 + n % 2, "Available"))
            assert "currentTime" in await cp.result("Heartbeat", {})


async def test_a_hanging_webhook_never_delays_a_charger(nursery, tmp_path):
    receiver = Receiver(status=None)  # reads the request, never answers
    await receiver.serve(nursery)
    config = webhook_config(tmp_path, f"http://127.0.0.1:{receiver.port}/hook", webhook_timeout=30.0,
                            webhook_queue=5)
    async with started(nursery, config) as gw:
        await _chargers_keep_being_answered(gw)
        stats = gw.running.monitor.webhook.stats
        assert stats.delivered == 0 and len(receiver.received) == 1  # still waiting for the first answer
        assert stats.dropped > 0  # the queue is bounded: what does not fit is dropped, nothing waits


async def test_a_refusing_webhook_is_retried_with_backoff_and_never_delays_a_charger(nursery, tmp_path):
    config = webhook_config(tmp_path, f"http://127.0.0.1:{await _refusing_port()}/hook", webhook_attempts=3)
    async with started(nursery, config) as gw:
        await _chargers_keep_being_answered(gw, rounds=5)
        stats = gw.running.monitor.webhook.stats
        await until(lambda: stats.attempts >= 2)  # the first delivery tried again after a backoff
        assert stats.delivered == 0 and "ConnectError" in stats.last_error


async def test_an_erroring_webhook_counts_as_failed_after_its_attempts(nursery):
    receiver = Receiver(status=500)
    await receiver.serve(nursery)
    hook = Webhook(f"http://127.0.0.1:{receiver.port}/hook", SECRET, 5.0, 3, 10)
    nursery.start_soon(hook.run)
    hook.post("raised", {"alertId": 1})
    await until(lambda: hook.stats.failed == 1, timeout=30)  # after backoffs of 1 s and 2 s
    assert len(receiver.received) == 3 and hook.stats.last_error == "HTTP 500"
    assert all(signed_correctly(h, b) for h, b in receiver.received)



async def test_an_alert_resolved_by_a_person_is_sent_too(nursery, tmp_path):
    receiver = Receiver()
    await receiver.serve(nursery)
    config = webhook_config(tmp_path, f"http://127.0.0.1:{receiver.port}/hook", connector_faulted={"auto_resolve": False})
    async with started(nursery, config) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "WH2") as cp:
            await cp.result("BootNotification", BOOT)
            await cp.result("StatusNotification", status(1, "Faulted"))
            [(_, row)] = await gw.running.monitor.check()
        r = await http.post(f"/api/monitoring/alerts/{row['id']}/resolve", json={"note": "fixed"})
        assert r.status_code == 200
        await until(lambda: len(receiver.received) == 2)
    [raised, resolved] = [json.loads(body) for _, body in receiver.received]
    assert raised["event"] == "raised" and resolved["event"] == "resolved"
    assert resolved["alert"]["alertId"] == row["id"] and resolved["alert"]["resolvedBy"]
    assert all(signed_correctly(h, b) for h, b in receiver.received)
