#!/usr/bin/env python
"""A year of a 20-charger site in the gateway's database, with the default retention: how large the file gets.

The site (defaults): 20 chargers of one connector, each charging 4 sessions a day of 2 hours on average (a
busy site: 8 hours a day), a MeterValues every minute while charging (the energy register, power, current
on three phases and the state of charge), a Heartbeat every minute (the default heartbeat_interval), five
StatusNotifications and an Authorize per session, and a few commands a day. The rows are the ones the
gateway writes (gateway/store/writer/rows.py and the same columns elsewhere), day by day; after each day
the retention cycle runs as the gateway runs it (gateway/store/retention.py, rules from app.py) with that
day's end as its clock. The frame log keeps 30 days, so frames are written only for the year's last days
(retention + 5): earlier ones would be deleted anyway, and writing 28 million frames to delete them would
measure nothing more.

    .venv/bin/python scripts/disk_budget.py [--days 365] [--out bench/disk_budget.json]

Prints, and writes as JSON: the file's size at the end and at its largest, bytes per table (dbstat),
rows per table, the pruning cycles' times and their longest batch, and query times on the result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import clock, logs  # noqa: E402
from gateway.app import _keep  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.store import retention as retention_module  # noqa: E402
from gateway.store.orders import _READINGS  # noqa: E402
from gateway.store.store import open_store  # noqa: E402
from gateway.store.writer.connection import insert_rows  # noqa: E402
from gateway.store.writer.rows import frames, meter_values  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _mv(at: datetime, wh: int, power: int, soc: int) -> list[dict]:
    stamp = clock.iso(at)
    amps = f"{power / 690:.1f}"
    return [{"timestamp": stamp, "sampledValue": [
        {"value": str(wh), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
         "location": "Outlet", "unit": "Wh"},
        {"value": str(power), "context": "Sample.Periodic", "measurand": "Power.Active.Import", "location": "Outlet",
         "unit": "W"},
        *({"value": amps, "context": "Sample.Periodic", "measurand": "Current.Import", "phase": phase,
           "location": "Outlet", "unit": "A"} for phase in ("L1", "L2", "L3")),
        {"value": str(soc), "context": "Sample.Periodic", "measurand": "SoC", "location": "EV", "unit": "Percent"}]}]


def _frame(at: datetime, cp: str, direction: str, message: list) -> tuple:
    kind, unique = message[0], message[1]
    action = message[2] if kind == 2 else None
    return (clock.iso(at), cp, direction, kind, unique, action, json.dumps(message, separators=(",", ":")))


class Site:
    def __init__(self, chargers: int, sessions: int, hours: float, seed: int = 24):
        self.random = random.Random(seed)
        self.chargers = [f"SITE-{i:02d}" for i in range(1, chargers + 1)]
        self.sessions, self.hours = sessions, hours
        self.register = {cp: self.random.randrange(1_000_000) for cp in self.chargers}
        self.next_tx = 1

    def day(self, day: datetime, with_frames: bool) -> dict[str, list]:
        out: dict[str, list] = {"tx": [], "mv": [], "status": [], "frames": [], "commands": []}
        for cp in self.chargers:
            busy_until = day
            for _ in range(self.sessions):
                minutes = max(10, int(self.random.expovariate(1 / (self.hours * 60))))
                start = max(busy_until, day + timedelta(minutes=self.random.randrange(0, 24 * 60 - minutes)))
                if start + timedelta(minutes=minutes) >= day + timedelta(days=1):
                    continue
                busy_until = start + timedelta(minutes=minutes + 5)
                self._session(out, cp, start, minutes, with_frames)
            if with_frames:
                for minute in range(24 * 60):  # Heartbeats
                    at = day + timedelta(minutes=minute, seconds=self.random.random() * 59)
                    uid = str(uuid.uuid4())
                    out["frames"].append(_frame(at, cp, "in", [2, uid, "Heartbeat", {}]))
                    out["frames"].append(_frame(at, cp, "out", [3, uid, {"currentTime": clock.iso(at)}]))
            for n in range(2):  # a couple of commands a day: configuration reads, a trigger
                at = day + timedelta(hours=self.random.uniform(0, 23))
                out["commands"].append((str(uuid.uuid4()), cp, "GetConfiguration" if n else "TriggerMessage",
                                        json.dumps({"key": ["HeartbeatInterval"]} if n else
                                                   {"requestedMessage": "StatusNotification"}),
                                        "answered", json.dumps({"status": "Accepted"}), clock.iso(at),
                                        clock.iso(at + timedelta(milliseconds=180)), 180.0))
        # As the gateway receives them: in time order, the chargers interleaved.
        out["mv"].sort(key=lambda row: row[4])
        out["frames"].sort(key=lambda row: row[0])
        out["status"].sort(key=lambda row: row[5])
        return out

    def _session(self, out: dict[str, list], cp: str, start: datetime, minutes: int, with_frames: bool) -> None:
        tx, self.next_tx = self.next_tx, self.next_tx + 1
        meter_start = self.register[cp]
        power = self.random.choice((3700, 7400, 11000, 22000))
        soc = self.random.randrange(10, 60)
        wh = meter_start
        for minute in range(1, minutes):
            at = start + timedelta(minutes=minute)
            wh += power // 60
            value = _mv(at, wh, power, min(100, soc + minute // 4))
            out["mv"].append((cp, 1, tx, "MeterValues", clock.iso(at), json.dumps(value, separators=(",", ":"))))
            if with_frames:
                uid = str(uuid.uuid4())
                out["frames"].append(_frame(at, cp, "in", [2, uid, "MeterValues",
                                                           {"connectorId": 1, "transactionId": tx, "meterValue": value}]))
                out["frames"].append(_frame(at, cp, "out", [3, uid, {}]))
        stop = start + timedelta(minutes=minutes)
        wh += power // 60
        self.register[cp] = wh
        out["tx"].append((tx, cp, 1, "TAG-%04d" % self.random.randrange(500), "Accepted", meter_start, clock.iso(start),
                          clock.iso(start), wh, clock.iso(stop), "Local", clock.iso(stop), wh - meter_start))
        for state, at in (("Preparing", start - timedelta(seconds=40)), ("Charging", start),
                          ("SuspendedEV", stop - timedelta(minutes=2)), ("Finishing", stop),
                          ("Available", stop + timedelta(seconds=30))):
            out["status"].append((cp, 1, state, "NoError", clock.iso(at), clock.iso(at)))
            if with_frames:
                uid = str(uuid.uuid4())
                out["frames"].append(_frame(at, cp, "in", [2, uid, "StatusNotification", {
                    "connectorId": 1, "errorCode": "NoError", "status": state, "timestamp": clock.iso(at)}]))
                out["frames"].append(_frame(at, cp, "out", [3, uid, {}]))


def _write(conn: sqlite3.Connection, day: dict[str, list]) -> None:
    insert_rows(conn, "transactions", "id, charge_point_id, connector_id, id_tag, id_tag_status, meter_start, "
                "start_timestamp, started_at, meter_stop, stop_timestamp, stop_reason, stopped_at, energy_wh", day["tx"])
    meter_values(conn, day["mv"])
    insert_rows(conn, "status_notifications", "charge_point_id, connector_id, status, error_code, timestamp, "
                "received_at", day["status"])
    insert_rows(conn, "commands", "request_id, charge_point_id, action, payload, outcome, result, sent_at, "
                "finished_at, latency_ms", day["commands"])
    if day["frames"]:
        frames(conn, day["frames"])


def _bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _timed(conn: sqlite3.Connection, sql: str, args: tuple, runs: int = 20) -> float:
    """Median milliseconds of the query, fetched whole (the first run, which warms the cache, left out)."""
    conn.execute(sql, args).fetchall()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(sql, args).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def queries(path: str, chargers: list[str]) -> dict[str, float]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        last = conn.execute("SELECT max(id) FROM transactions").fetchone()[0]
        old = conn.execute("SELECT min(id) FROM transactions").fetchone()[0]
        end = conn.execute("SELECT max(at) FROM frames").fetchone()[0]
        day_before = clock.iso(clock.parse(end) - timedelta(days=1))
        return {
            "pricing readings of a recent session (orders._READINGS)": _timed(conn, _READINGS, (last,)),
            "pricing readings of a thinned session, 11 months old": _timed(conn, _READINGS, (old,)),
            "a session's meter values (meter_values view)": _timed(
                conn, "SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY id", (last,)),
            "a charger's frames of the last day": _timed(
                conn, "SELECT * FROM frames WHERE charge_point_id = ? AND at >= ? ORDER BY at, id LIMIT 5000",
                (chargers[0], day_before)),
            "the newest 50 frames of the site": _timed(conn, "SELECT * FROM frames ORDER BY at DESC, id DESC LIMIT 50", ()),
            "a page of a charger's transactions": _timed(
                conn, "SELECT * FROM transactions WHERE charge_point_id = ? ORDER BY id DESC LIMIT 50", (chargers[3],)),
            "energy by charger over the year": _timed(
                conn, "SELECT charge_point_id, sum(energy_wh) FROM transactions GROUP BY charge_point_id", (), runs=5),
        }
    finally:
        conn.close()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda share: round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)  # noqa: E731
    return {"jobs": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 2)}


async def simulate(args: argparse.Namespace) -> dict:
    config = load(None, env={}, overrides={"db": args.db})
    site = Site(args.chargers, args.sessions, args.hours)
    retention_module.PAUSE = 0  # the gateway pauses 20 ms between batches; here only their work is timed
    jobs: dict[str, list[float]] = {}  # every job's own time, by table (and "vacuum"), in ms
    took = retention_module.Retention._took

    def timed(self, name: str, seconds: float) -> None:
        jobs.setdefault(name, []).append(seconds * 1000)
        took(self, name, seconds)
    retention_module.Retention._took = timed
    cycles, largest, written = [], 0, {"meter_values": 0, "frames": 0}
    frames_from = args.days - (config.frames.retention_days + 5)
    async with open_store(args.db, check_max_mb=0, retention_days=0) as store:  # as app.py: frames are a rule
        _keep(store, config)
        await store.db.run(lambda conn: conn.executemany(
            "INSERT INTO charge_points (id, first_seen, vendor, model) VALUES (?, ?, 'Vendor', 'Model')",
            [(cp, clock.iso(START)) for cp in site.chargers]))
        for n in range(args.days):
            day = START + timedelta(days=n)
            rows = site.day(day, with_frames=n >= frames_from)
            written["meter_values"] += len(rows["mv"])
            written["frames"] += len(rows["frames"])
            await store.db.run(_write, rows)
            store.retention.longest_batch = 0.0
            started = time.perf_counter()
            report = await store.retention.prune(day + timedelta(days=1))
            cycles.append({"day": n + 1, "seconds": time.perf_counter() - started,
                           "longest_batch_ms": store.retention.longest_batch * 1000,
                           "deleted": sum(report["deleted"].values()), "thinned": report["thinned"]})
            largest = max(largest, _bytes(args.db))
            if (n + 1) % 30 == 0:
                print(f"day {n + 1}: {_bytes(args.db) / 2**20:.0f} MiB", file=sys.stderr)
        stats = await store.retention.refresh_stats()
    conn = sqlite3.connect(args.db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall())
    finally:
        conn.close()
    busy = [c for c in cycles if c["deleted"] or c["thinned"]]
    return {
        "site": {"chargers": args.chargers, "sessions_per_day": args.sessions, "mean_session_hours": args.hours,
                 "days": args.days},
        "retention": {"frames_days": config.frames.retention_days, "commands_days": config.retention.commands_days,
                      "meter_values_full_days": config.retention.meter_values_full_days,
                      "meter_values_every_minutes": config.retention.meter_values_every_minutes},
        "written": written,
        "file_bytes": os.path.getsize(args.db),
        "largest_bytes": largest,
        "rows": stats["rows"],
        "bytes_by_table": {k: v for k, v in tables.items() if v >= 1 << 20},
        "pruning": {"cycles": len(busy),
                    "median_seconds": round(statistics.median(c["seconds"] for c in busy), 3) if busy else 0,
                    "max_seconds": round(max((c["seconds"] for c in busy), default=0), 3),
                    "longest_batch_ms": round(max((c["longest_batch_ms"] for c in cycles), default=0), 2),
                    "job_ms": {part: _percentiles(samples) for part, samples in sorted(jobs.items())},
                    "median_rows_per_cycle": statistics.median(c["deleted"] + c["thinned"] for c in busy) if busy else 0},
        "queries_ms": queries(args.db, site.chargers),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--chargers", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=4, help="sessions per charger per day")
    parser.add_argument("--hours", type=float, default=2.0, help="mean session length")
    parser.add_argument("--db", help="database file to make (default: a temporary one, deleted)")
    parser.add_argument("--out", default="bench/disk_budget.json")
    args = parser.parse_args()
    logs.configure("console", "warning")
    folder = None
    if args.db is None:
        folder = tempfile.mkdtemp(prefix="disk-budget-")
        args.db = str(Path(folder, "gateway.db"))
    try:
        result = trio.run(simulate, args)
    finally:
        if folder is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(args.db + suffix).unlink(missing_ok=True)
            os.rmdir(folder)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
