"""Alerts POSTed to a webhook: JSON, signed with HMAC-SHA256, retried with exponential backoff.

One task sends, one delivery at a time, from a bounded queue: whoever raises an alert only puts it in the
queue (never waits), a full queue drops the delivery (and counts it), and a webhook that hangs or refuses
holds up nothing but its own queue.

The signature header (the README shows how to check it):

    X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body, so a receiver can refuse old deliveries replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import attrs
import httpx
import structlog
import trio

from .. import __version__

log = structlog.get_logger("gateway.monitoring")

HEADER = "X-Gateway-Signature"
FIRST_DELAY, MAX_DELAY = 1.0, 300.0  # seconds: the backoff between two attempts doubles up to this


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300.0) -> bool:
    """Whether `header` signs `body` with `secret` and its timestamp is within `tolerance` seconds of `now`:
    what a receiver checks (the tests check deliveries with it)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): 1, 2, 4, ... up to MAX_DELAY."""
    return min(FIRST_DELAY * 2 ** (attempt - 1), MAX_DELAY)


@attrs.define
class WebhookStats:
    delivered: int = 0
    failed: int = 0  # deliveries given up after every attempt
    dropped: int = 0  # deliveries dropped because the queue was full
    attempts: int = 0
    last_error: str | None = None


class Webhook:
    def __init__(self, url: str, secret: str, timeout: float, attempts: int, queue: int,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.url, self._secret, self.timeout, self.attempts = url, secret, timeout, attempts
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](queue)
        self._transport = transport
        self.stats = WebhookStats()

    def post(self, event: str, alert: dict[str, Any]) -> None:
        """Queue a delivery of `alert` ("raised", "resolved", ...); never waits."""
        payload = {"event": event, "alert": alert, "source": "ocpp-gateway", "version": __version__}
        try:
            self._send.send_nowait(payload)
        except trio.WouldBlock:
            self.stats.dropped += 1
            if str(self.stats.dropped).strip("0") == "1":  # the 1st, 10th, 100th...: said, not flooded
                log.warning("alert webhook queue full: deliveries dropped", dropped=self.stats.dropped,
                            change=event, alert=alert.get("alertId"))

    @property
    def waiting(self) -> int:
        return self._send.statistics().current_buffer_used

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
            async for payload in self._receive:
                await self._deliver(client, payload)

    async def _deliver(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        for attempt in range(1, self.attempts + 1):
            self.stats.attempts += 1
            headers = {"Content-Type": "application/json", HEADER: sign(self._secret, body, int(time.time())),
                       "User-Agent": f"ocpp-gateway/{__version__}"}
            error: str
            with trio.move_on_after(self.timeout) as scope:  # whatever httpx does, an attempt ends here
                try:
                    response = await client.post(self.url, content=body, headers=headers)
                    if response.status_code < 300:
                        self.stats.delivered += 1
                        return
                    error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:200]
            if scope.cancelled_caught:
                error = f"no answer within {self.timeout:g} s"
            self.stats.last_error = error
            if attempt < self.attempts:
                await trio.sleep(backoff(attempt))
        self.stats.failed += 1
        log.warning("alert webhook delivery given up", alert=payload["alert"].get("alertId"),
                    attempts=self.attempts, error=self.stats.last_error)
