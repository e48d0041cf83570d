"""Alert rules, pure: what the records and the machine say now in, the alerts' transitions out.

    snapshot (records + machine) --conditions()--> Condition per rule and subject that holds now
    conditions + the open alerts  --transitions()--> Raise | Clear | Return | Resolve

A condition is one rule holding for one subject (a charger, a connector, a transaction, a payment
channel, the disk, the writer). One alert is open per rule and subject. When its condition ends, an
alert of a rule that resolves itself is resolved (its history says so); one of a rule that waits for a
person is marked cleared and stays open until someone resolves it; if the condition comes back first,
it is marked returned. Nothing here knows Trio, sockets or SQL; the time is passed in.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Union

import attrs

from .. import clock

# Every rule, in the order the configuration, the README and the API list them.
CHARGER_OFFLINE = "charger_offline"
CONNECTOR_FAULTED = "connector_faulted"
TRANSACTION_OPEN = "transaction_open"
PROTOCOL_VIOLATIONS = "protocol_violations"
CALLBACK_REFUSED = "payment_callback_refused"
RECONCILIATION_MISMATCH = "reconciliation_mismatch"
DISK_SPACE = "disk_space"
WRITER_RESTARTS = "writer_restarts"
WRITER_BEHIND = "writer_behind"
RULES = (CHARGER_OFFLINE, CONNECTOR_FAULTED, TRANSACTION_OPEN, PROTOCOL_VIOLATIONS, CALLBACK_REFUSED,
         RECONCILIATION_MISMATCH, DISK_SPACE, WRITER_RESTARTS, WRITER_BEHIND)
# What each rule's threshold counts (the README's table says the same).
UNITS = {CHARGER_OFFLINE: "minutes offline", CONNECTOR_FAULTED: "minutes Faulted", TRANSACTION_OPEN: "hours open",
         PROTOCOL_VIOLATIONS: "violations in the window", CALLBACK_REFUSED: "refused callbacks in the window",
         RECONCILIATION_MISMATCH: "mismatches in the latest report", DISK_SPACE: "percent free (alert below)",
         WRITER_RESTARTS: "writer restarts in the window", WRITER_BEHIND: "batches handed over and not committed"}


@attrs.frozen
class Rule:
    """One rule's settings (config.AlertRule has the same fields)."""

    enabled: bool = True
    threshold: float = 0.0
    window_minutes: float = 60.0
    auto_resolve: bool = True
    severity: str = "warning"


@attrs.frozen
class Condition:
    """`rule` holds for `subject` now: `value` crossed `threshold`."""

    rule: str
    subject: str
    message: str
    value: float
    threshold: float
    charge_point_id: str | None = None


@attrs.frozen
class OpenAlert:
    id: int
    rule: str
    subject: str
    cleared: bool = False  # its condition ended and it waits for a person


@attrs.frozen
class Raise:
    condition: Condition


@attrs.frozen
class Clear:
    """The condition ended; the alert waits for a person."""
    alert_id: int
    note: str


@attrs.frozen
class Return:
    """The condition of a cleared alert that waits for a person holds again."""
    alert_id: int
    condition: Condition


@attrs.frozen
class Resolve:
    """The condition ended and the rule resolves itself."""
    alert_id: int
    note: str


Transition = Union[Raise, Clear, Return, Resolve]


@attrs.frozen
class Snapshot:
    """What the records and the machine say at `now` (gathered by the checker, one query per check)."""

    now: datetime
    offline: list[tuple[str, str]] = attrs.Factory(list)  # (charge point id, disconnected at)
    faulted: list[tuple[str, int, str, str | None]] = attrs.Factory(list)  # (cp, connector, since, error code)
    open_transactions: list[tuple[int, str, int | None, str]] = attrs.Factory(list)  # (id, cp, connector, started)
    violations: dict[str, int] = attrs.Factory(dict)  # charge point id -> violations in the window
    refused_callbacks: dict[str, int] = attrs.Factory(dict)  # channel -> refused in the window
    mismatches: dict[str, tuple[str, int]] = attrs.Factory(dict)  # channel -> (day, mismatches) of its latest report
    disk_free_percent: float | None = None  # None: not measured
    writer_restarts: int | None = None  # in the window; None: no writer process
    writer_behind: int | None = None


def _age(now: datetime, since: str) -> timedelta | None:
    moment = clock.parse(since)
    return None if moment is None else now - moment


def conditions(snapshot: Snapshot, rules: Mapping[str, Rule]) -> list[Condition]:
    """The conditions that hold in `snapshot` under the enabled rules' thresholds."""
    now, found = snapshot.now, []

    def on(rule: str) -> Rule | None:
        settings = rules.get(rule)
        return settings if settings is not None and settings.enabled else None

    if rule := on(CHARGER_OFFLINE):
        for cp_id, since in snapshot.offline:
            age = _age(now, since)
            if age is not None and age >= timedelta(minutes=rule.threshold):
                minutes = age.total_seconds() / 60
                found.append(Condition(CHARGER_OFFLINE, cp_id, f"charger {cp_id} offline since {since} "
                                       f"({minutes:.1f} min)", round(minutes, 3), rule.threshold, cp_id))
    if rule := on(CONNECTOR_FAULTED):
        for cp_id, connector, since, error in snapshot.faulted:
            age = _age(now, since)
            if age is not None and age >= timedelta(minutes=rule.threshold):
                found.append(Condition(CONNECTOR_FAULTED, f"{cp_id}/{connector}",
                                       f"connector {connector} of {cp_id} Faulted since {since}"
                                       + (f" ({error})" if error and error != "NoError" else ""),
                                       round(age.total_seconds() / 60, 3), rule.threshold, cp_id))
    if rule := on(TRANSACTION_OPEN):
        for tx_id, cp_id, connector, started in snapshot.open_transactions:
            age = _age(now, started)
            if age is not None and age >= timedelta(hours=rule.threshold):
                hours = age.total_seconds() / 3600
                found.append(Condition(TRANSACTION_OPEN, f"transaction {tx_id}",
                                       f"transaction {tx_id} on {cp_id} connector {connector} open for {hours:.1f} h "
                                       "without a stop", round(hours, 3), rule.threshold, cp_id))
    if rule := on(PROTOCOL_VIOLATIONS):
        for cp_id, count in snapshot.violations.items():
            if count >= max(rule.threshold, 1):
                found.append(Condition(PROTOCOL_VIOLATIONS, cp_id, f"charger {cp_id} sent {count} protocol "
                                       f"violation(s) in {rule.window_minutes:g} min", count, rule.threshold, cp_id))
    if rule := on(CALLBACK_REFUSED):
        for channel, count in snapshot.refused_callbacks.items():
            if count >= max(rule.threshold, 1):
                found.append(Condition(CALLBACK_REFUSED, channel, f"{count} {channel} payment callback(s) refused "
                                       f"in {rule.window_minutes:g} min", count, rule.threshold))
    if rule := on(RECONCILIATION_MISMATCH):
        for channel, (day, count) in snapshot.mismatches.items():
            if count >= max(rule.threshold, 1):
                found.append(Condition(RECONCILIATION_MISMATCH, f"{channel} {day}", f"the {channel} reconciliation "
                                       f"of {day} found {count} mismatch(es)", count, rule.threshold))
    if (rule := on(DISK_SPACE)) and snapshot.disk_free_percent is not None:
        if snapshot.disk_free_percent < rule.threshold:
            found.append(Condition(DISK_SPACE, "disk", f"{snapshot.disk_free_percent:.1f} % of the database's "
                                   f"disk is free (alert below {rule.threshold:g} %)",
                                   round(snapshot.disk_free_percent, 2), rule.threshold))
    if (rule := on(WRITER_RESTARTS)) and snapshot.writer_restarts is not None:
        if snapshot.writer_restarts >= max(rule.threshold, 1):
            found.append(Condition(WRITER_RESTARTS, "writer", f"the writer process restarted "
                                   f"{snapshot.writer_restarts} time(s) in {rule.window_minutes:g} min",
                                   snapshot.writer_restarts, rule.threshold))
    if (rule := on(WRITER_BEHIND)) and snapshot.writer_behind is not None:
        if snapshot.writer_behind >= max(rule.threshold, 1):
            found.append(Condition(WRITER_BEHIND, "writer", f"the writer process is {snapshot.writer_behind} "
                                   "batch(es) behind", snapshot.writer_behind, rule.threshold))
    return found


def transitions(holding: Iterable[Condition], open_alerts: Iterable[OpenAlert],
                rules: Mapping[str, Rule]) -> list[Transition]:
    """What changes: an alert raised for each condition without an open one, and the open alerts of the
    enabled rules whose condition ended resolved (or cleared, for a rule that waits for a person).
    A disabled rule's open alerts are left as they are."""
    now_holding = {(c.rule, c.subject): c for c in holding}
    out: list[Transition] = []
    seen: set[tuple[str, str]] = set()
    for alert in open_alerts:
        key = (alert.rule, alert.subject)
        seen.add(key)
        rule = rules.get(alert.rule)
        if rule is None or not rule.enabled:
            continue
        condition = now_holding.get(key)
        if condition is not None:
            if alert.cleared:
                out.append(Return(alert.id, condition))
        elif rule.auto_resolve:
            out.append(Resolve(alert.id, "the condition cleared"))
        elif not alert.cleared:
            out.append(Clear(alert.id, "the condition cleared; waiting for a person to resolve it"))
    out.extend(Raise(c) for key, c in now_holding.items() if key not in seen)
    return out


class Window:
    """Events counted over a sliding window from running totals (violations per charger, writer restarts):
    observe(now, totals) -> how much each total grew within the last `minutes`. Totals seen first are the
    base: what happened before the gateway started is not counted."""

    def __init__(self, minutes: float):
        self.span = timedelta(minutes=minutes)
        self._samples: deque[tuple[datetime, dict[str, int]]] = deque()

    def observe(self, now: datetime, totals: Mapping[str, int]) -> dict[str, int]:
        self._samples.append((now, dict(totals)))
        # Keep the newest sample at or before the window's start as the base.
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.span:
            self._samples.popleft()
        base = self._samples[0][1]
        return {key: total - base.get(key, 0) for key, total in totals.items() if total - base.get(key, 0) > 0}


def alert_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alert as the API and the webhook show it."""
    return {"alertId": row["id"], "rule": row["rule"], "subject": row["subject"],
            "chargePointId": row["charge_point_id"], "severity": row["severity"], "status": row["status"],
            "message": row["message"], "value": row["value"], "threshold": row["threshold"],
            "autoResolve": bool(row["auto_resolve"]), "raisedAt": row["raised_at"], "clearedAt": row["cleared_at"],
            "acknowledgedAt": row["acknowledged_at"], "acknowledgedBy": row["acknowledged_by"],
            "resolvedAt": row["resolved_at"], "resolvedBy": row["resolved_by"], "updatedAt": row["updated_at"]}
