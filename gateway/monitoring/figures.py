"""The figures monitoring shows, each read from one source that /metrics exposes too (FiguresCollector):
the machine (psutil), the gateway's own counters (frames, commits, command round trips, the writer) and the
state of each service. Pure helpers (rates, histogram quantiles, the worst state) are tested alone."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import sqlite3
import sys
import time
from collections import deque
from importlib import metadata
from typing import Any, Iterable, Iterator, Sequence

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .. import __version__
from ..store.pg.connection import is_url

UP, DEGRADED, DOWN, DISABLED = "up", "degraded", "down", "disabled"
_RANK = {UP: 0, DISABLED: 0, DEGRADED: 1, DOWN: 2}
QUANTILES = (0.5, 0.9, 0.99)
LIBRARIES = ("trio", "trio-websocket", "hypercorn", "quart", "quart-trio", "structlog", "ocpp", "prometheus-client",
             "psutil", "httpx", "cryptography")


def worst(states: Iterable[str]) -> str:
    """The state of a whole made of parts: down if one is down, else degraded if one is, else up."""
    return max(states, key=lambda s: _RANK[s], default=UP).replace(DISABLED, UP)


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a Prometheus histogram, as histogram_quantile() estimates it: `buckets` are
    (upper bound, cumulative count), ascending, the last one +Inf; linear within a bucket; the highest
    finite bound when the quantile falls in +Inf. None when there are no observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def disk(path: str) -> dict[str, Any] | None:
    """The disk the database is on: total, used and free bytes, and free percent; None for :memory: and for a
    PostgreSQL server (its disk is the server's to watch)."""
    if path == ":memory:" or is_url(path):
        return None
    where = os.path.dirname(os.path.abspath(path)) or "."
    usage = shutil.disk_usage(where)
    return {"path": where, "totalBytes": usage.total, "usedBytes": usage.used, "freeBytes": usage.free,
            "freePercent": round(100 * usage.free / usage.total, 2) if usage.total else 0.0}


class System:
    """This process and its machine, through psutil: read when asked (an API call or a scrape)."""

    def __init__(self, db_path: str):
        self.db_path = db_path
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call starts the measure
        self.started = self.process.create_time()

    def uptime(self) -> float:
        return round(time.time() - self.started, 3)

    def figures(self) -> dict[str, Any]:
        p = self.process
        with p.oneshot():
            memory, cpu_times = p.memory_info(), p.cpu_times()
            open_files = p.num_fds() if hasattr(p, "num_fds") else len(p.open_files())
            threads = p.num_threads()
            cpu_percent = p.cpu_percent(None)
        machine = psutil.virtual_memory()
        try:
            load = list(os.getloadavg())
        except OSError:
            load = None
        try:
            limit = p.rlimit(psutil.RLIMIT_NOFILE)[0] if hasattr(psutil, "RLIMIT_NOFILE") else None
        except (OSError, AttributeError):
            limit = None
        return {
            "cpu": {"processPercent": cpu_percent, "processSeconds": round(cpu_times.user + cpu_times.system, 3),
                    "machinePercent": psutil.cpu_percent(None), "cores": psutil.cpu_count() or 1, "loadAverage": load},
            "memory": {"processRssBytes": memory.rss, "processVmsBytes": memory.vms,
                       "machineTotalBytes": machine.total, "machineAvailableBytes": machine.available,
                       "machineUsedPercent": machine.percent},
            "openFiles": {"open": open_files, "limit": limit},
            "threads": threads,
            "disk": disk(self.db_path),
            "uptimeSeconds": self.uptime(),
            "startedAt": self.started,
        }


class Rates:
    """Counters sampled now and then (each check, each API call); rates over the last `span` seconds."""

    def __init__(self, span: float = 60.0):
        self.span = span
        self.samples: deque[tuple[float, dict[str, float]]] = deque()

    def sample(self, now: float, counters: dict[str, float]) -> None:
        self.samples.append((now, dict(counters)))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.span:
            self.samples.popleft()

    def rates(self) -> tuple[float, dict[str, float]]:
        """(seconds measured over, counter -> growth); (0, {}) before two samples."""
        if len(self.samples) < 2:
            return 0.0, {}
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        return t1 - t0, {k: v - first.get(k, 0.0) for k, v in last.items()}


@functools.cache
def _libraries() -> dict[str, str]:
    """The installed versions, read once: they do not change while the process runs."""
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return libraries


def versions(schema_version: int) -> dict[str, Any]:
    libraries = dict(_libraries())
    return {"gateway": __version__, "python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "sqlite": sqlite3.sqlite_version, "schemaVersion": schema_version, "platform": _platform(),
            "libraries": libraries}


@functools.cache
def _platform() -> str:
    return platform.platform()


class FiguresCollector:
    """The monitor's figures in /metrics: the same functions the API reads."""

    def __init__(self, monitor: Any):  # monitor.Monitor
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        m = self.monitor
        s = m.system.figures()
        yield GaugeMetricFamily("gateway_process_cpu_percent", "CPU used by the gateway's process since the last "
                                "reading, percent of one core", value=s["cpu"]["processPercent"])
        yield CounterMetricFamily("gateway_process_cpu_seconds", "CPU time of the gateway's process (user + system)",
                                  value=s["cpu"]["processSeconds"])
        yield GaugeMetricFamily("gateway_process_resident_memory_bytes", "Resident memory of the gateway's process",
                                value=s["memory"]["processRssBytes"])
        yield GaugeMetricFamily("gateway_process_open_files", "File descriptors the gateway's process holds",
                                value=s["openFiles"]["open"])
        yield GaugeMetricFamily("gateway_uptime_seconds", "Seconds since the gateway's process started",
                                value=s["uptimeSeconds"])
        if s["disk"] is not None:
            yield GaugeMetricFamily("gateway_disk_free_bytes", "Free bytes on the database's disk",
                                    value=s["disk"]["freeBytes"])
            yield GaugeMetricFamily("gateway_disk_free_percent", "Free percent of the database's disk",
                                    value=s["disk"]["freePercent"])
        db = m.store.db
        yield CounterMetricFamily("gateway_db_commits", "Batches the database thread committed", value=db.commits)
        yield CounterMetricFamily("gateway_db_commit_seconds", "Time those batches took, BEGIN to COMMIT",
                                  value=db.commit_seconds)
        writer = m.writer()
        yield CounterMetricFamily("gateway_writer_restarts", "Writer processes started again after one ended",
                                  value=writer["restarts"])
        yield GaugeMetricFamily("gateway_writer_behind_batches", "Batches handed to the writer, not yet committed",
                                value=writer["behindBatches"])
        business = m.business_figures
        for name, key, doc in (("gateway_chargers_online", "chargersOnline", "Chargers the records mark online"),
                               ("gateway_sessions_running", "sessionsRunning", "Transactions started, not stopped"),
                               ("gateway_sessions_today", "sessionsToday", "Transactions stopped today"),
                               ("gateway_energy_today_wh", "energyTodayWh", "Energy of the transactions stopped today"),
                               ("gateway_revenue_today", "revenueToday", "Revenue of the orders stopped today, in "
                                                                         "minor units (not cancelled)")):
            if business is not None:
                yield GaugeMetricFamily(name, doc + ("" if "today" not in name else " (billing.timezone's day)"),
                                        value=business[key])
        active = GaugeMetricFamily("gateway_alerts_active", "Alerts open or acknowledged, by rule and severity",
                                   labels=["rule", "severity"])
        for (rule, severity), count in sorted(m.active_alerts.items()):
            active.add_metric([rule, severity], count)
        yield active
        if m.webhook is not None:
            stats = m.webhook.stats
            family = CounterMetricFamily("gateway_alert_webhook_deliveries", "Alert webhook deliveries by outcome",
                                         labels=["outcome"])
            for outcome in ("delivered", "failed", "dropped"):
                family.add_metric([outcome], getattr(stats, outcome))
            yield family
