"""`python -m gateway.benchmark.ykc`: YKC piles held, and real-time frames per second, against the gateway.

The gateway runs as an operator runs it (its own process, production defaults, every frame in the frame
log) with the YKC listener on; the simulated piles (gateway/simulator/ykc_pile.py) run in this process.

- held: N piles connect, log in, fetch their billing model, heartbeat every 10 s; memory per pile
  and the time until every one has its billing model.
- throughput: M piles start a session with a card (0x31/0x32: a transaction each) and send real-time
  data (0x13) as fast as the gateway takes it; each is kept as the session's meter values (four sampled
  values). Frames per second is what the gateway counted in over the window (its frame counter in
  /metrics), its CPU per frame from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from ..simulator.ykc_pile import PileOptions, SimulatedPile
from .runner import Process, _drain, cpu_seconds, children_cpu_seconds, rss_kib


async def _gateway(db: str) -> tuple[Process, int, int]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway", "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0", "--db", db,
         "--log-json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "GATEWAY_LOG_LEVEL": "info", "GATEWAY_YKC": "127.0.0.1:0"})
    process = Process(proc)
    listening = await process.event("listening for YKC piles", stream="stderr")
    started = await process.event("gateway started", stream="stderr")
    return process, int(listening["address"].rsplit(":", 1)[1]), int(started["http"].rsplit(":", 1)[1])


async def _frames_in(http: httpx.AsyncClient) -> float:
    """The gateway's count of frames received (every YKC frame counts once)."""
    text = (await http.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ocpp_frames_total{") and 'direction="in"' in line)


async def _piles(nursery: trio.Nursery, port: int, count: int, first: int, **options: Any) -> list[SimulatedPile]:
    piles = [SimulatedPile(PileOptions(pile=f"32{first + n:012d}", **options)) for n in range(count)]
    for pile in piles:
        nursery.start_soon(pile.run, "127.0.0.1", port)
    return piles


async def held(count: int, workdir: Path) -> dict[str, Any]:
    gw, port, _http = await _gateway(str(workdir / f"ykc-held-{count}.db"))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, gw.proc.stderr)
            await trio.sleep(1)
            baseline = rss_kib(gw.pid)
            began = time.perf_counter()
            piles = await _piles(nursery, port, count, 1, heartbeat=10.0, realtime_interval=300.0)
            while sum(p.model is not None for p in piles) < count:
                await trio.sleep(0.05)
            seconds = time.perf_counter() - began
            await trio.sleep(2)
            rss = rss_kib(gw.pid)
            nursery.cancel_scope.cancel()
        return {"piles": count, "ready_seconds": round(seconds, 2), "rss_baseline_kib": baseline, "rss_held_kib": rss,
                "kib_per_pile": round((rss - baseline) / count, 1)}
    finally:
        await gw.stop()


async def throughput(count: int, seconds: float, workdir: Path) -> dict[str, Any]:
    gw, port, http_port = await _gateway(str(workdir / "ykc-throughput.db"))
    try:
        async with trio.open_nursery() as nursery, httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                                                   timeout=60) as http:
            nursery.start_soon(_drain, gw.proc.stderr)
            piles = await _piles(nursery, port, count, 500_000, heartbeat=10.0, realtime_interval=0.0,
                                 card="00000000D14B0A54")
            while sum(p.guns[1].charging for p in piles) < count:
                await trio.sleep(0.05)
            await trio.sleep(2)  # warm up
            frames, sent = await _frames_in(http), sum(p.realtime_sent for p in piles)
            cpu = cpu_seconds(gw.pid) + children_cpu_seconds(gw.pid)
            began = time.perf_counter()
            await trio.sleep(seconds)
            elapsed = time.perf_counter() - began
            frames = await _frames_in(http) - frames
            sent = sum(p.realtime_sent for p in piles) - sent
            cpu = cpu_seconds(gw.pid) + children_cpu_seconds(gw.pid) - cpu
            nursery.cancel_scope.cancel()
        return {"piles": count, "seconds": round(elapsed, 1), "frames_in_per_second": round(frames / elapsed),
                "realtime_sent_per_second": round(sent / elapsed), "gateway_cpu_percent": round(100 * cpu / elapsed),
                "cpu_us_per_frame": round(1e6 * cpu / frames) if frames else None}
    finally:
        await gw.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", type=int, action="append", help="piles to hold (repeatable; default 1000)")
    parser.add_argument("--throughput-piles", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    args = parser.parse_args(argv)

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            results: dict[str, Any] = {"held": []}
            for count in args.held or [1000]:
                results["held"].append(await held(count, Path(tmp)))
            results["throughput"] = await throughput(args.throughput_piles, args.seconds, Path(tmp))
            return results

    print(json.dumps(trio.run(run), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
