"""Two gateway nodes on one PostgreSQL, measured (docs/benchmarks.md, "Two nodes"):

    python -m gateway.cluster.bench --db postgresql://USER@HOST/DATABASE [--commands 300] [--seconds 20]
    python -m gateway.cluster.bench --db /tmp/single.db     # one node on a SQLite file, the same figures

- the round trip of a command through the node that holds the charger and through the other node (Reset,
  sent one at a time, the two routes taken in turn; a charger that answers at once);
- MeterValues per second through both nodes at once into the one database (gateway.benchmark.loadgen, half
  the chargers on each node), and how many of the acknowledged messages the database holds afterwards.

The database should be empty (a fresh one: the figures count its meter values). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx
import trio

from ..benchmark.loadgen import percentile
from ..benchmark.runner import SAMPLES_PER_MESSAGE, Process, _drain, _responder, loadgen
from ..store.stats import meter_value_messages


@asynccontextmanager
async def node(db: str, node_id: str) -> AsyncIterator[tuple[int, int]]:
    """`gateway serve` as node `node_id`, with its production defaults; yields (ocpp port, http port)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway", "serve", "--http", "127.0.0.1:0", "--ocpp", "127.0.0.1:0", "--db", db,
         "--log-json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "GATEWAY_LOG_LEVEL": "info", "GATEWAY_CLUSTER_NODE_ID": node_id, "GATEWAY_CONFIG": ""})
    process = Process(proc)
    try:
        started = await process.event("gateway started", stream="stderr")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, proc.stderr)
            yield int(started["ocpp"].rsplit(":", 1)[1]), int(started["http"].rsplit(":", 1)[1])
            nursery.cancel_scope.cancel()
    finally:
        await process.stop()


async def round_trips(same: int, other: int, cp_id: str, count: int) -> dict[str, Any]:
    """Reset sent `count` times through each node's HTTP port, in turn; the latencies' p50 and p99 in ms."""
    taken: dict[str, list[float]] = {"same_node": [], "other_node": []}
    async with httpx.AsyncClient(timeout=30) as http:
        for port in (same, other):  # the other node must know the charger is connected
            with trio.fail_after(30):
                while (await http.get(f"http://127.0.0.1:{port}/api/ocpp/reset/{cp_id}",
                                      params={"type": "Soft"})).status_code != 200:
                    await trio.sleep(0.1)
        for _ in range(count):
            for name, port in (("same_node", same), ("other_node", other)):
                started = time.perf_counter()
                r = await http.get(f"http://127.0.0.1:{port}/api/ocpp/reset/{cp_id}", params={"type": "Soft"})
                taken[name].append(time.perf_counter() - started)
                if r.status_code != 200:
                    raise RuntimeError(f"reset through {name} answered {r.status_code}: {r.text}")
    out = {}
    for name, latencies in taken.items():
        latencies.sort()
        out[name] = {"commands": len(latencies), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                     "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}
    return out


async def meter_values(ocpp_ports: tuple[int, int], chargers: int, seconds: float) -> dict[str, Any]:
    """Both nodes loaded at once, half the chargers each."""
    loads = [await loadgen("throughput", "--url", f"ws://127.0.0.1:{port}/ocpp", "-n", max(1, chargers // 2),
                           "--prefix", f"BENCH-{i}-", "--seconds", seconds) for i, port in enumerate(ocpp_ports)]
    results = [await load.event("done", timeout=seconds + 120) for load in loads]
    for load in loads:
        await load.stop()
    return {"per_node": results, "rate": round(sum(r["rate"] for r in results), 1),
            "acked_total": sum(r["acked_total"] for r in results)}


async def run_single(db: str, commands: int, chargers: int, seconds: float) -> dict[str, Any]:
    """The same figures of one gateway on a SQLite file, for beside the two nodes'."""
    async with node(db, "single") as (ocpp, http):
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(_responder, ocpp, "BENCH-CMD", ready)
            await ready.wait()
            trips = await round_trips(http, http, "BENCH-CMD", commands)
            nursery.cancel_scope.cancel()
        load = await loadgen("throughput", "--url", f"ws://127.0.0.1:{ocpp}/ocpp", "-n", chargers,
                             "--prefix", "BENCH-", "--seconds", seconds)
        result = await load.event("done", timeout=seconds + 120)
        await load.stop()
    persisted = meter_value_messages(db, SAMPLES_PER_MESSAGE)
    return {"round_trip": {"same_node": trips["same_node"]},
            "meter_values": {"rate": result["rate"], "acked_total": result["acked_total"], "persisted": persisted,
                             "lost": result["acked_total"] - persisted}, "cpus": os.cpu_count()}


async def run(db: str, commands: int, chargers: int, seconds: float) -> dict[str, Any]:
    async with node(db, "bench-a") as (ocpp_a, http_a), node(db, "bench-b") as (ocpp_b, http_b):
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(_responder, ocpp_a, "BENCH-CMD", ready)
            await ready.wait()
            trips = await round_trips(http_a, http_b, "BENCH-CMD", commands)
            nursery.cancel_scope.cancel()
        throughput = await meter_values((ocpp_a, ocpp_b), chargers, seconds)
    # Both nodes stopped cleanly: every batch shipped. Counted without parallel workers: the meter_values view
    # reads through a function that cannot run in one.
    os.environ["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " -c max_parallel_workers_per_gather=0").strip()
    persisted = meter_value_messages(db, SAMPLES_PER_MESSAGE)
    return {"round_trip": trips, "meter_values": {**throughput, "persisted": persisted,
                                                  "lost": throughput["acked_total"] - persisted},
            "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.cluster.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="postgresql://... (an empty database), or a new SQLite file")
    parser.add_argument("--commands", type=int, default=300, help="commands through each node")
    parser.add_argument("--chargers", type=int, default=50, help="chargers sending MeterValues, over both nodes")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long they send")
    args = parser.parse_args(argv)
    two = args.db.startswith(("postgresql://", "postgres://"))  # else one node on a SQLite file, to compare
    print(json.dumps(trio.run(run if two else run_single, args.db, args.commands, args.chargers, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
