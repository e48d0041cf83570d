"""What a browser on the live stream costs a charger: a charger's Heartbeat round trip with nobody watching,
with a browser that reads the stream, and with one more that opens it and never reads.

    python -m gateway.benchmark.live [--calls 2000] [--db /tmp/live-bench.db]

Runs a gateway in this process (its database writer in its own), one charger speaking OCPP-J over a socket,
and prints the round trips (p50, p99) and what the stuck browser was told it lost.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio
import trio_websocket

from ..app import run_gateway
from ..config import load
from ..ocpp.connection import Connection, Role


async def _round_trips(port: int, calls: int) -> list[float]:
    conn = Connection(Role.CHARGER, strict=False)
    async with trio_websocket.open_websocket("127.0.0.1", port, "/ocpp/BENCH-LIVE", use_ssl=False,
                                             subprotocols=["ocpp1.6"]) as ws:
        times = []
        for i in range(calls + 1):
            out = conn.send_call("Heartbeat" if i else "BootNotification",
                                 {} if i else {"chargePointVendor": "bench", "chargePointModel": "live"})
            started = time.perf_counter()
            await ws.send_message(out.text)
            conn.receive(await ws.get_message())
            conn.forget(out.unique_id)
            if i:
                times.append((time.perf_counter() - started) * 1000)
        return times


async def _reader(http_port: int, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=None) as http:
        async with http.stream("GET", "/api/live", headers={"Accept": "text/event-stream"}) as response:
            task_status.started()
            async for _ in response.aiter_bytes():
                pass


async def _stuck(http_port: int) -> trio.SocketStream:
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", http_port))
    stream = trio.SocketStream(sock)
    await stream.send_all(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    return stream


def _summary(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100)
    return {"p50_ms": round(cuts[49], 3), "p99_ms": round(cuts[98], 3), "calls": len(times)}


async def measure(calls: int, db: str, buffer: int) -> dict[str, object]:
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": db,
                                           "console": {"live_buffer": buffer}, "billing": {"reconcile_at": ""},
                                           "log_level": "warning",  # one charger as fast as it goes: no rate cap
                                           "charger": {"max_calls_per_second": 1_000_000.0}})
    shutdown = trio.Event()
    results: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_gateway, config, shutdown)
        results["nobody watching"] = _summary(await _round_trips(running.ocpp_port, calls))
        async with trio.open_nursery() as readers:
            await readers.start(_reader, running.http_port)
            results["a browser reading"] = _summary(await _round_trips(running.ocpp_port, calls))
            stuck = await _stuck(running.http_port)
            results["a browser reading, another never reading"] = _summary(
                await _round_trips(running.ocpp_port, calls))
            received = b""
            with trio.move_on_after(10):
                while b"event: lost" not in received or not re.search(rb"event: lost\ndata: \{.*?\}\n", received):
                    received += await stuck.receive_some(65536)
            lost = re.search(rb"event: lost\ndata: (\{.*?\})\n", received)
            results["lost by the stuck browser"] = json.loads(lost.group(1))["count"] if lost else 0
            await stuck.aclose()
            readers.cancel_scope.cancel()
        shutdown.set()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--buffer", type=int, default=1000, help="console.live_buffer")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "live-bench.db")
        print(json.dumps(trio.run(measure, args.calls, db, args.buffer), indent=2))


if __name__ == "__main__":
    main()
