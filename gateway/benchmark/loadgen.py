"""The load generator: many charger connections, lean on purpose so it is not the bottleneck.

Frames are prepared text with only the unique id formatted in; answers are
matched by slicing out the unique id, not by parsing the whole JSON. It talks
to any OCPP 1.6J server URL (`{url}/{chargerId}`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
import trio
import trio_websocket

METER_VALUES = json.dumps({"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
    {"value": "1520", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    {"value": "7040", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "unit": "W"},
    {"value": "229", "context": "Sample.Periodic", "measurand": "Voltage", "unit": "V"},
    {"value": "30.7", "context": "Sample.Periodic", "measurand": "Current.Import", "unit": "A"},
    {"value": "33", "context": "Sample.Periodic", "measurand": "Temperature", "unit": "Celsius"},
]}]}, separators=(",", ":"))
BOOT = '{"chargePointVendor":"Bench","chargePointModel":"LoadGen"}'
STATUS = '{"connectorId":1,"status":"Available","errorCode":"NoError"}'


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def _uid(text: str) -> str:
    """The unique id of an answer frame: [3,"<id>",...] or [4,"<id>",...]."""
    start = text.index('"') + 1
    return text[start:text.index('"', start)]


@attrs.define
class Result:
    acked: int = 0
    errors: int = 0
    latencies: list[float] = attrs.field(factory=list)

    def summary(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {"acked": self.acked, "errors": self.errors, "seconds": round(seconds, 3),
                "rate": round(self.acked / seconds, 1) if seconds else 0.0,
                "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
                "p99_ms": round(percentile(ordered, 0.99) * 1000, 2)}


class Conn:
    """One charger connection sending CALLs one after another (OCPP-J allows one in flight)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, name: str):
        self.ws = ws
        self.name = name
        self.n = 0

    async def call(self, action: str, payload_text: str) -> str:
        self.n += 1
        uid = f"{self.name}-{self.n}"
        await self.ws.send_message(f'[2,"{uid}","{action}",{payload_text}]')
        while True:
            answer = await self.ws.get_message()
            if answer[1] == "3" or answer[1] == "4":  # a reply (a CALL from the server is ignored)
                if _uid(answer) == uid:
                    return answer


async def _open(url: str, name: str, nursery: trio.Nursery) -> Conn:
    ws = await trio_websocket.connect_websocket_url(nursery, f"{url.rstrip('/')}/{name}",
                                                    subprotocols=["ocpp1.6"], message_queue_size=4)
    return Conn(ws, name)


async def hold(url: str, count: int, prefix: str, hold_seconds: float, concurrency: int = 200) -> dict[str, Any]:
    """Connect `count` chargers, boot them, report, then keep them open (heartbeating) for a while."""
    started = time.perf_counter()
    booted = 0
    errors = 0
    limiter = trio.CapacityLimiter(concurrency)
    all_booted = trio.Event()
    conns: list[Conn] = []

    async def one(i: int, nursery: trio.Nursery) -> None:
        nonlocal booted, errors
        async with limiter:
            try:
                conn = await _open(url, f"{prefix}{i}", nursery)
                answer = json.loads(await conn.call("BootNotification", BOOT))
                await conn.call("StatusNotification", STATUS)
            except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed):
                errors += 1
                return
        conns.append(conn)
        booted += 1
        if booted + errors == count:
            all_booted.set()
        interval = float(answer[2].get("interval") or 60)
        while True:
            await trio.sleep(interval)
            await conn.call("Heartbeat", "{}")

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i, nursery)
        await all_booted.wait()
        boot_seconds = time.perf_counter() - started
        print(json.dumps({"event": "booted", "booted": booted, "errors": errors,
                          "seconds": round(boot_seconds, 2)}), flush=True)
        await trio.sleep(hold_seconds)
        nursery.cancel_scope.cancel()
    return {"booted": booted, "errors": errors, "boot_seconds": round(boot_seconds, 2)}


async def throughput(url: str, count: int, prefix: str, seconds: float, rate: float | None = None) -> dict[str, Any]:
    """`count` chargers send MeterValues as fast as answers come (or at `rate` per second in all).

    After `seconds` no new message is sent and every one in flight is waited for, so `sent`
    equals `acked` + `errors` at the end: what the server persisted can be checked against it.
    """
    result = Result()
    ready = trio.Event()
    stop = trio.Event()
    opened = 0
    sent = 0
    gap = count / rate if rate else 0.0  # seconds between a connection's messages

    async def one(i: int, nursery: trio.Nursery) -> None:
        nonlocal opened, sent
        conn = await _open(url, f"{prefix}{i}", nursery)
        await conn.call("BootNotification", BOOT)
        opened += 1
        if opened == count:
            ready.set()
        await ready.wait()
        next_at = trio.current_time() + (gap * i / count if gap else 0)
        while not stop.is_set():
            started = time.perf_counter()
            sent += 1
            answer = await conn.call("MeterValues", METER_VALUES)
            if answer[1] == "3":
                result.acked += 1
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1
            if gap:
                next_at += gap
                await trio.sleep_until(next_at)
        await conn.ws.aclose()

    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as senders:
            for i in range(count):
                senders.start_soon(one, i, connections)
            await ready.wait()
            began = time.perf_counter()
            await trio.sleep(seconds)
            elapsed = time.perf_counter() - began
            window = Result(result.acked, result.errors, list(result.latencies))
            stop.set()
        connections.cancel_scope.cancel()
    return {**window.summary(elapsed), "sent_total": sent, "acked_total": result.acked,
            "errors_total": result.errors}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="gateway loadgen")
    parser.add_argument("mode", choices=["hold", "throughput"])
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", "--count", type=int, default=10)
    parser.add_argument("--prefix", default="LOAD-")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="messages per second in all (throughput)")
    args = parser.parse_args(argv)
    if args.mode == "hold":
        result = trio.run(hold, args.url, args.count, args.prefix, args.seconds)
    else:
        result = trio.run(throughput, args.url, args.count, args.prefix, args.seconds, args.rate)
    print(json.dumps({"event": "done", **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
