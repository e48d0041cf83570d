"""The gateway's own log, kept: the newest lines in a ring in memory (logs/realtime) and every line in a table
(logs/search), written in batches by one task, never per line.

`tee` is a structlog processor (gateway/logs.py puts it in the chain, after the level and the time): it
copies the line into the ring, which costs a dict copy and a deque append, and the flusher writes what the
ring gained since its last write. Lines are what the log already says, which never holds a secret; as a
second guard, a field whose name says it holds one is masked here too.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import deque
from typing import Any, Iterable, MutableMapping

import structlog
import trio

from .. import clock
from ..store.health import StoreUnavailable
from ..store.logbook import LEVELS, rule

log = structlog.get_logger("gateway.monitoring")

SECRET_WORDS = ("password", "secret", "token", "authorization", "private_key", "apiv3_key", "cookie")
CHARGER_KEYS = ("cp", "cp_id", "charge_point_id", "chargePointId")
_OWN = {"timestamp", "level", "event", *CHARGER_KEYS}
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


_secret_keys: dict[str, bool] = {}  # key -> whether its name says it holds a secret (keys are the code's own)


def _is_secret(key: str) -> bool:
    secret = _secret_keys.get(key)
    if secret is None:
        secret = _secret_keys[key] = any(word in key.lower() for word in SECRET_WORDS)
    return secret


def line_of(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """One log line as kept: {at, level, logger, event, chargePointId, fields} (seq is added by the ring)."""
    level = event_dict.get("level") or method_name
    if level not in LEVEL_RANK:
        level = {"warn": "warning", "exception": "error", "fatal": "critical"}.get(level, "info")
    fields = {}
    cp = None
    for key, value in event_dict.items():
        if key in _OWN:
            if cp is None and key in CHARGER_KEYS and value is not None:
                cp = str(value)
        else:
            fields[key] = "***" if _is_secret(key) else value
    if fields.get("exc_info"):
        fields = structlog.processors.format_exc_info(logger, method_name, fields)
    return {"at": event_dict.get("timestamp") or clock.iso(), "level": level,
            "logger": getattr(logger, "name", None), "event": str(event_dict.get("event", "")),
            "chargePointId": cp, "fields": fields}


class LogRing:
    """The newest lines, each with its sequence number; appended from any thread (deque and count are atomic)."""

    def __init__(self, size: int = 2000, level: str = "debug"):
        self.lines: deque[dict[str, Any]] = deque(maxlen=size)
        self.rank = LEVEL_RANK[level]
        self._seq = itertools.count(1)

    def configure(self, size: int, level: str) -> None:
        if size != self.lines.maxlen:
            self.lines = deque(self.lines, maxlen=size)
        self.rank = LEVEL_RANK[level]

    def add(self, line: dict[str, Any]) -> None:
        if LEVEL_RANK.get(line["level"], 1) >= self.rank:
            line["seq"] = next(self._seq)
            self.lines.append(line)

    def since(self, seq: int) -> list[dict[str, Any]]:
        """The lines after `seq`, oldest first."""
        lines = list(self.lines)
        start = len(lines)
        while start > 0 and lines[start - 1]["seq"] > seq:
            start -= 1
        return lines[start:]

    @property
    def last(self) -> int:
        lines = self.lines
        return lines[-1]["seq"] if lines else 0


RING = LogRing()  # the process's log: structlog is configured once per process


def tee(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The structlog processor: keep a copy of the line, pass the line on unchanged."""
    try:
        RING.add(line_of(logger, method_name, event_dict))
    except Exception:  # noqa: BLE001  the log must never fail the caller
        logging.getLogger("gateway.monitoring").exception("a log line could not be kept")
    return event_dict


def matches(line: dict[str, Any], level: str | None, logger: str | None, cp_id: str | None, text: str | None) -> bool:
    """The search's rules (store/logbook.py's _search), for the lines in memory."""
    if level is not None and LEVEL_RANK.get(line["level"], 1) < LEVEL_RANK[level]:
        return False
    if logger is not None and not (line["logger"] == logger or (line["logger"] or "").startswith(logger + ".")):
        return False
    if cp_id is not None and line["chargePointId"] != cp_id:
        return False
    if text:
        low = text.lower()
        if low not in line["event"].lower() and low not in _json(line["fields"]).lower():
            return False
    return True


def _json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, default=str)


def rows(lines: Iterable[dict[str, Any]]) -> list[tuple]:
    return [(line["at"], line["level"], line["logger"], line["event"], line["chargePointId"], _json(line["fields"]))
            for line in lines]


async def keep(store: Any, ring: LogRing, flush_interval: float, retention_days: float, max_rows: int) -> None:
    """Write what the ring gained to the table every `flush_interval` seconds, in one job; the table is pruned by
    age and count by the store's retention (its rule is registered here). A line the ring lost before it was
    written (more than its size between two writes) is not kept. While the store fails, the lines wait in the
    ring."""
    store.retention.rules.add(rule(retention_days, max_rows))
    cursor = ring.last
    while True:
        await trio.sleep(flush_interval)
        lines = ring.since(cursor)
        if lines:
            try:
                await store.log_lines.add(rows(lines))
            except StoreUnavailable:
                continue
            cursor = lines[-1]["seq"]
