"""Prometheus metrics of one gateway (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .ocpp.actions import ALL_ACTIONS
from .ocpp.errors import ErrorCode

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values are bounded: a charger inventing action names must not create new series.
ACTION_LABELS = ALL_ACTIONS | {"binary", "unreadable", "oversized"}
ERROR_CODES = {code.value for code in ErrorCode}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.chargers_connected = Gauge("ocpp_chargers_connected", "Chargers with an open WebSocket",
                                        registry=self.registry)
        self.transactions_open = Gauge("ocpp_transactions_open", "Transactions started and not stopped",
                                       registry=self.registry)
        self.frames = Counter("ocpp_frames", "OCPP-J frames by direction and action",
                              ["direction", "action"], registry=self.registry)
        self.call_errors = Counter("ocpp_callerrors", "CALLERRORs by direction (in: from chargers) and code",
                                   ["direction", "code"], registry=self.registry)
        self.commands = Counter("ocpp_commands", "Commands sent to chargers by action and outcome",
                                ["action", "outcome"], registry=self.registry)
        self.command_latency = Histogram(
            "ocpp_command_latency_seconds", "Time from sending a command to the charger's answer", ["action"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry)
        self._frame_counters: dict[tuple[str, str], Counter] = {}

    def frame(self, direction: str, message_type: int | None, action: str | None, code: str | None = None) -> None:
        key = (direction, action if action in ACTION_LABELS else "unknown")
        counter = self._frame_counters.get(key)
        if counter is None:  # labels() takes a lock and builds a key: once per series, not per frame
            counter = self._frame_counters[key] = self.frames.labels(*key)
        counter.inc()
        if message_type == 4:
            self.call_errors.labels(direction, code if code in ERROR_CODES else "unknown").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
