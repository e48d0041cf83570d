#!/usr/bin/env python3
"""A year of a 100-charger site, and how fast the dashboard (and monitoring) routes answer on it.

    .venv/bin/python scripts/year_site.py generate --db /tmp/year.db      # about a minute
    .venv/bin/python scripts/year_site.py measure --db /tmp/year.db       # starts a gateway on it
    .venv/bin/python scripts/year_site.py all --db /tmp/year.db           # both (generate only if missing)

`generate` writes the history straight into a database file made by the store's own migrations: stations in
a few cities, the chargers' registry entries, sessions (transactions, their orders, payments and the odd
refund), the status notifications around each session, meter values every few minutes of each session, and
the frame log the gateway keeps (frames.retention_days, 30): each session's frames and the chargers' connect
and disconnect events. Sessions follow a day's profile in the site's zone (Asia/Shanghai), so the hours of the
day, the trends and the ranking have shapes to show, and end at the moment the script runs (the last ones
still charging). Random but seeded: the same seed gives the same site.

`measure` starts `gateway serve` on the file (another process, as in production), reads its /openapi.json,
and calls every GET route without path parameters under /api/dashboard, /api/order/statistics/city,
/api/monitoring and /api/v1/monitoring (so routes added there later are measured with no change here), plus
the variants below, each `--repeat` times after a warm-up, one request at a time. It prints p50, p99 and the
largest, in milliseconds, as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.store.db import migrate  # noqa: E402  (the store's own migrations)

ZONE = ZoneInfo("Asia/Shanghai")
CITIES = ["Shanghai", "Hangzhou", "Suzhou", "Nanjing"]
# The share of a day's sessions starting in each local hour: quiet nights, a morning, a lunch and an evening peak.
PROFILE = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 4.5, 4, 3.5, 4, 4.2, 3.5, 3.2, 3.5, 4.5, 5.5, 6, 5.5, 4.5, 3, 2]
PRICE_FEN_PER_KWH = 125  # energy and service together
PREFIXES = ("/api/dashboard/", "/api/order/statistics/city", "/api/monitoring/", "/api/v1/monitoring/")
# Variants of the routes found in the document: the periods an operator picks most.
VARIANTS = ["/api/dashboard/charging-trend?days=30", "/api/dashboard/revenue-trend?days=30",
            "/api/dashboard/charging-trend?days=366", "/api/dashboard/station-ranking?by=revenue",
            "/api/dashboard/station-ranking?by=sessions&days=366", "/api/dashboard/charger-utilization?days=7",
            "/api/dashboard/order-period-distribution?days=366", "/api/dashboard/recent-orders?limit=100",
            "/api/order/statistics/city?days=366"]
# Routes with a path parameter, measured when the document has their template.
TEMPLATED = {"/api/monitoring/services/{name}/health": "/api/monitoring/services/database/health"}


def iso(ms: int) -> str:
    """Epoch milliseconds in the gateway's text form (gateway.clock.iso)."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- generate -----------------------------------------------------------------------------------

class Site:
    def __init__(self, conn: sqlite3.Connection, rng: random.Random, chargers: int, days: int,
                 meter_minutes: float, frames_days: int, sessions_per_day: float):
        self.conn, self.rng = conn, rng
        self.now_ms = int(time.time() * 1000)
        self.first_day = datetime.now(ZONE).date() - timedelta(days=days - 1)
        self.chargers, self.days = chargers, days
        self.meter_ms = int(meter_minutes * 60_000)
        self.frames_since = self.now_ms - frames_days * 86_400_000
        self.sessions_per_day = sessions_per_day
        self.counts: dict[str, int] = {}

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if rows:
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                  rows)
            self.counts[table] = self.counts.get(table, 0) + len(rows)

    def places(self) -> list[tuple[str, int, float]]:
        """Stations and registry entries; (charge point id, connectors, power kW) of each charger."""
        start = iso(self.now_ms - self.days * 86_400_000)
        stations = max(1, self.chargers // 10)
        self.insert("stations", ("id", "code", "name", "city", "latitude", "longitude", "created_at", "updated_at"),
                    [(s + 1, f"ST{s + 1:03d}", f"Station {s + 1}", CITIES[s % len(CITIES)],
                      31 + self.rng.random(), 121 + self.rng.random(), start, start) for s in range(stations)])
        chargers = []
        for n in range(self.chargers):
            dc = n % 5 < 3  # three in five are 60 kW DC chargers, the others 7 kW AC
            cp_id = f"CP{n + 1:04d}"
            chargers.append((cp_id, 2, 60.0 if dc else 7.0))
            connectors = json.dumps([{"connectorNo": c, "type": "GBT-DC" if dc else "GBT-AC",
                                      "powerKw": 60 if dc else 7} for c in (1, 2)])
            self.insert("charger_registry", ("id", "charge_point_id", "station_id", "name", "connectors", "created_at",
                                             "updated_at"),
                        [(n + 1, cp_id, n % stations + 1, f"Charger {n + 1}", connectors, start, start)])
        return chargers

    def sessions_of(self, cp_id: str, connector: int, power_kw: float) -> list[tuple[int, int, int]]:
        """(start ms, stop ms, energy Wh) of one connector's sessions over the year, one after another."""
        out: list[tuple[int, int, int]] = []
        free_from = 0
        weights = PROFILE
        for d in range(self.days):
            day = self.first_day + timedelta(days=d)
            midnight = int(datetime(day.year, day.month, day.day, tzinfo=ZONE).timestamp() * 1000)
            season = 1 + 0.15 * math.sin(2 * math.pi * d / 365)
            weekend = 0.85 if day.weekday() >= 5 else 1.0
            count = _poisson(self.rng, self.sessions_per_day / 2 * season * weekend)
            hours = sorted(self.rng.choices(range(24), weights=weights, k=count))
            for hour in hours:
                start = midnight + hour * 3_600_000 + self.rng.randrange(3_600_000)
                if start < free_from or start >= self.now_ms:
                    continue
                minutes = self.rng.uniform(20, 70) if power_kw > 20 else self.rng.uniform(60, 300)
                stop = start + int(minutes * 60_000)
                energy = int(power_kw * 1000 * minutes / 60 * self.rng.uniform(0.55, 0.95))
                out.append((start, stop, energy))
                free_from = stop + 120_000
        return out

    def history(self, chargers: list[tuple[str, int, float]]) -> None:
        """Every session of every connector, numbered and written in the order they happened, as a gateway
        writes them (so each table and index is laid out in time order, as in production)."""
        power = {cp_id: kw for cp_id, _, kw in chargers}
        sessions = sorted((start, stop, energy, cp_id, connector)
                          for cp_id, connectors, kw in chargers for connector in range(1, connectors + 1)
                          for start, stop, energy in self.sessions_of(cp_id, connector, kw))
        payment_id = 0
        meters = {cp_id: 0 for cp_id, _, _ in chargers}
        last_status: dict[tuple[str, int], tuple[str, str]] = {}
        txs, orders, payments, refunds, statuses, sets, frames = [], [], [], [], [], [], []
        for tx_id, (start, stop, energy, cp_id, connector) in enumerate(sessions, 1):
            order_id = tx_id
            running = stop > self.now_ms
            meter_start = meters[cp_id]
            meters[cp_id] += energy
            started, stopped = iso(start), None if running else iso(stop)
            txs.append((tx_id, cp_id, connector, f"TAG{self.rng.randrange(5000):04d}", "Accepted", meter_start,
                        started, started, None if running else meter_start + energy, stopped,
                        None if running else "Local", stopped, None if running else energy))
            amount = None if running else round(energy * PRICE_FEN_PER_KWH / 1000)
            fate = self.rng.random()
            status = 0 if running else (11 if fate < 0.95 else 1 if fate < 0.975 else 2 if fate < 0.99 else 13)
            paid = amount if status in (11, 13) else 0
            day = datetime.fromtimestamp(start / 1000, ZONE).strftime("%Y%m%d")
            orders.append((order_id, f"ORD-{day}-{order_id:06d}", f"tx-{tx_id}", tx_id, cp_id, connector,
                           "standard", "CNY", status, started, stopped, meter_start,
                           None if running else meter_start + energy, None if running else energy,
                           amount, paid, amount if status == 13 else 0, started, stopped or started))
            if paid:
                payment_id += 1
                paid_at = stop + 90_000
                payments.append((paid_at, payment_id, f"PAY-{day}-{payment_id:06d}", order_id,
                                 self.rng.choice(("alipay", "wechat")), paid, "CNY",
                                 "REFUNDED" if status == 13 else "PAID", iso(stop + 30_000), iso(paid_at), iso(paid_at)))
                if status == 13:
                    refunds.append((stop + 86_400_000, payment_id, order_id, paid, "SUCCESS",
                                    iso(stop + 86_400_000), iso(stop + 86_400_000), iso(stop + 86_400_000)))
            changes = [(start - 60_000, "Preparing"), (start, "Charging")]
            if not running:
                changes += [(stop, "Finishing"), (stop + 60_000, "Available")]
            for at, state in changes:
                if at < self.now_ms:
                    statuses.append((at, cp_id, connector, state, "NoError", iso(at), iso(at)))
                    last_status[cp_id, connector] = (state, iso(at))
            kw = power[cp_id]
            for at in range(start + self.meter_ms, min(stop, self.now_ms), self.meter_ms):
                so_far = meter_start + energy * (at - start) // (stop - start)
                value = json.dumps([{"timestamp": iso(at), "sampledValue": [
                    {"value": str(so_far), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": f"{kw * 0.8:.1f}", "measurand": "Power.Active.Import", "unit": "kW"}]}])
                sets.append((at, cp_id, connector, tx_id, "MeterValues", iso(at), value))
                if at >= self.frames_since:
                    frames += _exchange(at, cp_id, "MeterValues", value)
            if start >= self.frames_since:
                frames += _exchange(start, cp_id, "StartTransaction", f'{{"connectorId":{connector}}}')
                for at, state in changes:
                    if at < self.now_ms:
                        frames += _exchange(at, cp_id, "StatusNotification", f'{{"status":"{state}"}}')
                if not running:
                    frames += _exchange(stop, cp_id, "StopTransaction", f'{{"transactionId":{tx_id}}}')
        for cp_id, _, _ in chargers:
            frames += self.connections(cp_id)
        self.insert("transactions", ("id", "charge_point_id", "connector_id", "id_tag", "id_tag_status",
                                     "meter_start", "start_timestamp", "started_at", "meter_stop", "stop_timestamp",
                                     "stop_reason", "stopped_at", "energy_wh"), txs)
        self.insert("orders", ("id", "order_no", "session_id", "transaction_id", "charge_point_id", "connector_id",
                               "tariff", "currency", "status", "started_at", "stopped_at", "meter_start",
                               "meter_stop", "energy_wh", "total_amount", "paid_amount", "refunded_amount",
                               "created_at", "updated_at"), orders)
        payments.sort()  # paid in the order they were paid, numbered in the order they were made
        self.insert("payments", ("id", "trade_no", "order_id", "channel", "amount", "currency", "status",
                                 "created_at", "paid_at", "updated_at"), [p[1:] for p in payments])
        refunds.sort()
        self.insert("refunds", ("payment_id", "order_id", "amount", "status", "created_at", "settled_at",
                                "updated_at"), [r[1:] for r in refunds])
        statuses.sort()
        self.insert("status_notifications", ("charge_point_id", "connector_id", "status", "error_code",
                                             "timestamp", "received_at"), [r[1:] for r in statuses])
        sets.sort(key=lambda r: r[0])
        self.insert("meter_value_sets", ("charge_point_id", "connector_id", "transaction_id", "source",
                                         "received_at", "meter_value"), [r[1:] for r in sets])
        frames.sort(key=lambda r: r[0])
        self.insert("frames", ("at", "charge_point_id", "direction", "message_type", "unique_id", "action", "body"),
                    frames)
        for cp_id, connectors, _ in chargers:
            self.live(cp_id, connectors, {c: last_status[cp_id, c] for c in range(1, connectors + 1)
                                          if (cp_id, c) in last_status})

    def connections(self, cp_id: str) -> list[tuple]:
        """Connect and disconnect events within the frame log's retention: a drop every few days, back within
        minutes; the last three chargers are offline now."""
        events = [(iso(self.frames_since), cp_id, "event", None, None, "connect", "{}")]
        at = self.frames_since
        while True:
            at += int(self.rng.expovariate(1 / (3 * 86_400_000)))
            back = at + self.rng.randrange(60_000, 1_800_000)
            if back >= self.now_ms:
                break
            events += [(iso(at), cp_id, "event", None, None, "disconnect", "{}"),
                       (iso(back), cp_id, "event", None, None, "connect", "{}")]
            at = back
        if self.offline(cp_id):
            events.append((iso(self.now_ms - 7_200_000), cp_id, "event", None, None, "disconnect", "{}"))
        return events

    def offline(self, cp_id: str) -> bool:
        return int(cp_id[2:]) > self.chargers - 3

    def live(self, cp_id: str, connectors: int, last: dict[int, tuple[str, str]]) -> None:
        """The charger's row and its connectors' last reports; one charger in twenty-five has a faulted connector."""
        now = iso(self.now_ms)
        online = not self.offline(cp_id)
        self.insert("charge_points", ("id", "registration_status", "vendor", "model", "online", "first_seen",
                                      "last_seen", "connected_at", "disconnected_at"),
                    [(cp_id, "Accepted", "Acme", "DC60", int(online), iso(self.frames_since), now,
                      iso(self.frames_since), None if online else iso(self.now_ms - 7_200_000))])
        rows = []
        for c in range(1, connectors + 1):
            state, at = last.get(c, ("Available", now))
            if c == 2 and int(cp_id[2:]) % 25 == 0:
                state = "Faulted"
            rows.append((cp_id, c, state, "GroundFailure" if state == "Faulted" else "NoError", at, at))
        self.insert("connectors", ("charge_point_id", "connector_id", "status", "error_code", "timestamp",
                                   "updated_at"), rows)


def _exchange(ms: int, cp_id: str, action: str, body: str) -> list[tuple]:
    """A CALL from the charger and our CALLRESULT, as the frame log keeps them."""
    at = iso(ms)
    uid = f"{cp_id}-{ms}-{action[:4]}"
    return [(at, cp_id, "in", 2, uid, action, f'[2,"{uid}","{action}",{body}]'),
            (at, cp_id, "out", 3, uid, action, f'[3,"{uid}",{{}}]')]


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(args: argparse.Namespace) -> None:
    path = Path(args.db)
    if path.exists():
        raise SystemExit(f"{path} exists: remove it first, or measure it")
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    site = Site(conn, random.Random(args.seed), args.chargers, args.days, args.meter_minutes, args.frames_days,
                args.sessions_per_day)
    site.history(site.places())
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("ANALYZE")
    conn.close()
    seconds = time.perf_counter() - began
    counts = ", ".join(f"{table} {count:,}" for table, count in site.counts.items())
    print(f"generated {path} in {seconds:.0f} s: {path.stat().st_size / 2**20:,.0f} MiB; {counts}")


# ---- measure -------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(args: argparse.Namespace) -> None:
    import httpx

    http_port, ocpp_port = _free_port(), _free_port()
    env = {**os.environ, "GATEWAY_BILLING_TIMEZONE": "Asia/Shanghai", "GATEWAY_BILLING_RECONCILE_AT": ""}
    gateway = subprocess.Popen([str(ROOT / ".venv/bin/gateway"), "serve", "--db", args.db, "--http",
                                f"127.0.0.1:{http_port}", "--ocpp", f"127.0.0.1:{ocpp_port}"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
            for _ in range(600):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("the gateway did not start")
            document = http.get("/openapi.json").json()
            paths = [p for p, item in document["paths"].items() if "get" in item and "{" not in p
                     and p.startswith(PREFIXES)]
            paths += [TEMPLATED[p] for p in document["paths"] if p in TEMPLATED]
            paths += [v for v in VARIANTS if v.split("?")[0] in document["paths"]]
            rows = []
            for path in paths:
                for _ in range(args.warmup):
                    http.get(path)
                times, size = [], 0
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    r = http.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    if r.status_code != 200:
                        raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")
                    size = len(r.content)
                times.sort()
                rows.append((path, statistics.median(times), times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)],
                             times[-1], size))
                print(f"{path}: p50 {rows[-1][1]:.1f} ms, p99 {rows[-1][2]:.1f} ms", file=sys.stderr, flush=True)
    finally:
        gateway.send_signal(signal.SIGINT)
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
    print(f"\n{args.repeat} calls each after {args.warmup} to warm up, one at a time, {date.today()}:\n")
    print("| route | p50 ms | p99 ms | max ms | answer bytes |\n| --- | --- | --- | --- | --- |")
    for path, p50, p99, top, size in rows:
        print(f"| `{path}` | {p50:.1f} | {p99:.1f} | {top:.1f} | {size:,} |")
    over = [path for path, _, p99, _, _ in rows if p99 >= args.target]
    print(f"\np99 under {args.target:g} ms: {len(rows) - len(over)} of {len(rows)}" +
          (f"; over: {', '.join(over)}" if over else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("generate", "measure", "all"))
    parser.add_argument("--db", required=True, help="the database file")
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sessions-per-day", type=float, default=8.0, help="per charger (two connectors), on average")
    parser.add_argument("--meter-minutes", type=float, default=5.0, help="minutes between meter values")
    parser.add_argument("--frames-days", type=int, default=30, help="the frame log kept (frames.retention_days)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--target", type=float, default=50.0, help="p99 target, ms")
    args = parser.parse_args()
    if args.step == "generate" or (args.step == "all" and not Path(args.db).exists()):
        generate(args)
    if args.step in ("measure", "all"):
        measure(args)


if __name__ == "__main__":
    main()
