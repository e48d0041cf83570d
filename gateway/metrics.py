"""Prometheus metrics of one gateway (its own registry, so tests can run several)."""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import clock
from .ocpp.actions import ALL_ACTIONS
from .ocpp.errors import ErrorCode
from .store.health import PARTS, StorageHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values are bounded: a charger inventing action names must not create new series.
ACTION_LABELS = ALL_ACTIONS | {"binary", "unreadable", "oversized"}
ERROR_CODES = {code.value for code in ErrorCode}


class FrameCounts:
    """Frames by (direction, action) as plain integers, read when scraped.

    Every frame is counted, twice per message: a dict update takes a third of the time of a
    Counter's increment (which takes a lock); the event loop is the only writer.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("ocpp_frames", "OCPP-J frames by direction and action",
                                     labels=["direction", "action"])
        for labels, count in list(self.counts.items()):
            family.add_metric(labels, count)
        yield family


class StorageMetrics:
    """The store's health when scraped: whether each part is degraded, and the storage errors it met."""

    def __init__(self, health: StorageHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        degraded = GaugeMetricFamily("gateway_storage_degraded", "1 while the database file fails this part "
                                     "(locked, full, read-only, damaged); /health says why", labels=["part"])
        errors = CounterMetricFamily("gateway_storage_errors", "Storage errors met (locked, full, read-only, "
                                     "damaged), by part", labels=["part"])
        faults = dict(self.health.faults)
        for part in PARTS:
            degraded.add_metric([part], int(part in faults))
            errors.add_metric([part], self.health.errors[part])
        yield degraded
        yield errors


class ConnectionMetrics:
    """The connection caps when scraped: connections open on every listener, the cap, and those refused."""

    def __init__(self, limits: Any) -> None:  # chargepoint.boundary.ConnectionLimits
        self.limits = limits

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("gateway_connections_open", "TCP connections held on all listeners",
                                value=self.limits.open)
        yield GaugeMetricFamily("gateway_connections_max", "The cap on them (max_connections)", value=self.limits.total)
        yield CounterMetricFamily("gateway_connections_refused", "Connections answered 503 over a cap (in total or "
                                  "per address)", value=self.limits.refused)


class RetentionMetrics:
    """The database's size and rows (as last measured, after each retention cycle) and what retention did."""

    def __init__(self, retention: Any) -> None:  # store.retention.Retention
        self.retention = retention

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        retention, stats = self.retention, self.retention.stats
        if stats is not None:
            yield GaugeMetricFamily("gateway_db_bytes", "Size of the database file", value=stats["bytes"])
            yield GaugeMetricFamily("gateway_db_free_bytes", "Free pages inside the database file",
                                    value=stats["freeBytes"])
            yield GaugeMetricFamily("gateway_db_wal_bytes", "Size of its write-ahead log", value=stats["walBytes"])
            rows = GaugeMetricFamily("gateway_db_rows", "Rows of the tables that grow", labels=["table"])
            for table, count in stats["rows"].items():
                rows.add_metric([table], count)
            yield rows
        if retention.next_run is not None:
            yield GaugeMetricFamily("gateway_retention_next_run_timestamp_seconds", "When the next retention "
                                    "cycle starts (Unix time)", value=clock.parse(retention.next_run).timestamp())
        deleted = CounterMetricFamily("gateway_retention_rows", "Rows deleted (meter values: thinned) by retention "
                                      "since start, by table", labels=["table"])
        for table, count in dict(retention.deleted).items():
            deleted.add_metric([table], count)
        yield deleted
        yield GaugeMetricFamily("gateway_retention_longest_batch_seconds", "The longest job a retention batch gave "
                                "the database thread since start", value=retention.longest_batch)


class LiveMetrics:
    """The live stream's readers and what their full buffers lost (gateway/events.py's Hub)."""

    def __init__(self, hub: Any):
        self.hub = hub

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("gateway_live_readers", "Browsers reading the live stream (GET /api/live)",
                                value=self.hub.readers)
        yield CounterMetricFamily("gateway_live_events_lost", "Events a live-stream reader's full buffer could not "
                                  "hold (a browser that does not read)", value=self.hub.live_lost)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.chargers_connected = Gauge("ocpp_chargers_connected", "Chargers with an open WebSocket",
                                        registry=self.registry)
        self.transactions_open = Gauge("ocpp_transactions_open", "Transactions started and not stopped",
                                       registry=self.registry)
        self.frames = FrameCounts()
        self.registry.register(self.frames)
        self.call_errors = Counter("ocpp_callerrors", "CALLERRORs by direction (in: from chargers) and code",
                                   ["direction", "code"], registry=self.registry)
        self.commands = Counter("ocpp_commands", "Commands sent to chargers by action and outcome",
                                ["action", "outcome"], registry=self.registry)
        self.command_latency = Histogram(
            "ocpp_command_latency_seconds", "Time from sending a command to the charger's answer", ["action"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry)

    def watch_storage(self, health: StorageHealth) -> None:
        self.registry.register(StorageMetrics(health))

    def watch_retention(self, retention: Any) -> None:
        self.registry.register(RetentionMetrics(retention))

    def watch_connections(self, limits: Any) -> None:
        self.registry.register(ConnectionMetrics(limits))

    def watch_live(self, hub: Any) -> None:
        self.registry.register(LiveMetrics(hub))

    def frame(self, direction: str, message_type: int | None, action: str | None, code: str | None = None) -> None:
        key = (direction, action if action in ACTION_LABELS else "unknown")
        counts = self.frames.counts
        counts[key] = counts.get(key, 0) + 1
        if message_type == 4:
            self.call_errors.labels(direction, code if code in ERROR_CODES else "unknown").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
