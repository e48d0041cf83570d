"""How fast /api/monitoring answers on a year of a 100-charger site.

    .venv/bin/python scripts/bench_monitoring.py [--days 365] [--chargers 100] [--requests 200] [--db PATH]

Generates the site's records in a temporary database (transactions and orders, 6 sessions a charger a
day; alerts raised and resolved; a full kept log), starts the gateway on it, asks every monitoring route
`--requests` times one after another, and prints each route's p50 and p99 in milliseconds (a Markdown
table for docs/benchmarks.md). The records are written straight into the file, as a fixture is.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import trio

from gateway import clock
from gateway.app import run_gateway
from gateway.config import load
from gateway.store.db import migrate

ROUTES = ("overview", "versions", "services/health", "services/database/health", "metrics/system",
          "metrics/performance", "metrics/business", "alerts", "alerts?status=active", "alerts/statistics",
          "alerts/1", "logs/realtime", "logs/search", "logs/search?level=warning&q=timeout",
          "logs/search?chargePointId=CP042")


def generate(path: Path, days: int, chargers: int, seed: int = 1) -> dict[str, int]:
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    migrate(conn)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=days)
    iso = clock.iso
    ids = [f"CP{n:03d}" for n in range(chargers)]
    with conn:
        conn.executemany("INSERT INTO charge_points (id, first_seen, online, disconnected_at) VALUES (?, ?, 0, ?)",
                         [(cp, iso(start), iso(now - timedelta(hours=rnd.random() * 5))) for cp in ids])
        conn.executemany("INSERT INTO charger_registry (charge_point_id, created_at, updated_at) VALUES (?, ?, ?)",
                         [(cp, iso(start), iso(start)) for cp in ids])
    tx, orders, tx_id = [], [], 0
    for day in range(days + 1):
        for cp in ids:
            for _ in range(6):
                tx_id += 1
                began = start + timedelta(days=day, seconds=rnd.randrange(86400))
                ended = began + timedelta(minutes=rnd.randrange(10, 180))
                if ended > now:
                    continue
                energy = rnd.randrange(1000, 60000)
                tx.append((tx_id, cp, rnd.randrange(1, 3), "TAG", 0, iso(began), iso(began), energy, iso(ended),
                           iso(ended), energy))
                orders.append((f"tx-{tx_id}", tx_id, cp, 11, "standard", "CNY", iso(began), iso(ended), energy,
                               energy * 150 // 1000, iso(began), iso(ended)))
    with conn:
        conn.executemany("INSERT INTO transactions (id, charge_point_id, connector_id, id_tag, meter_start, "
                         "start_timestamp, started_at, meter_stop, stop_timestamp, stopped_at, energy_wh) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tx)
        conn.executemany("INSERT INTO orders (session_id, transaction_id, charge_point_id, status, tariff, currency, "
                         "started_at, stopped_at, energy_wh, total_amount, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
    alerts, history = [], []
    for n in range(days * 50):
        at = start + timedelta(seconds=rnd.randrange(days * 86400))
        cp = rnd.choice(ids)
        alerts.append((n + 1, "charger_offline", f"{cp}#{n}", cp, "warning", "resolved", f"charger {cp} offline",
                       12.0, 10.0, 1, iso(at), iso(at + timedelta(minutes=30)), iso(at + timedelta(minutes=30))))
        history += [(n + 1, iso(at), "raised", "charger offline"),
                    (n + 1, iso(at + timedelta(minutes=30)), "resolved", "the condition cleared")]
    with conn:
        conn.executemany("INSERT INTO alerts (id, rule, subject, charge_point_id, severity, status, message, value, "
                         "threshold, auto_resolve, raised_at, resolved_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", alerts)
        conn.executemany("INSERT INTO alert_history (alert_id, at, event, note) VALUES (?, ?, ?, ?)", history)
    lines = []
    for n in range(500_000):
        at = now - timedelta(seconds=(500_000 - n) * 1.2)
        level = rnd.choices(("info", "warning", "error"), (90, 9, 1))[0]
        cp = rnd.choice(ids)
        lines.append((iso(at), level, "gateway.charger", "call timeout" if level != "info" else "status", cp,
                      json.dumps({"connector": 1, "n": n})))
    with conn:
        conn.executemany("INSERT INTO log_lines (at, level, logger, event, charge_point_id, fields) "
                         "VALUES (?, ?, ?, ?, ?, ?)", lines)
    conn.execute("ANALYZE")
    conn.close()
    return {"transactions": len(tx), "orders": len(orders), "alerts": len(alerts), "log_lines": len(lines)}


async def measure(db: Path, requests: int) -> dict[str, tuple[float, float]]:
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(db),
                                           "db_check_max_mb": 0, "billing": {"timezone": "Asia/Shanghai",
                                                                             "reconcile_at": ""}})
    results = {}
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        running = await nursery.start(run_gateway, config, shutdown)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.http_port}", timeout=30) as http:
            for route in ROUTES:
                url = "/api/monitoring/" + route
                assert (await http.get(url)).status_code == 200, url  # and warm
                times = []
                for _ in range(requests):
                    began = time.perf_counter()
                    r = await http.get(url)
                    times.append((time.perf_counter() - began) * 1000)
                    assert r.status_code == 200
                times.sort()
                results[route] = (statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))])
        shutdown.set()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", type=Path, help="keep the generated site here, and use it again if it exists")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "site.db"
        if not db.exists():
            began = time.perf_counter()
            counts = generate(db, args.days, args.chargers)
            print(f"generated in {time.perf_counter() - began:.0f} s: {counts}, {db.stat().st_size >> 20} MiB")
        results = trio.run(measure, db, args.requests)
    print("\n| route (/api/monitoring/...) | p50 ms | p99 ms |\n| --- | --- | --- |")
    for route, (p50, p99) in results.items():
        print(f"| `{route}` | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
