"""The EVCS status of a charger and of its connectors (0 offline, 1 idle, 2 charging, 3 fault), and how
long a charger was online and charging over a period: pure, from what the store keeps.

A connector is offline if its charger is; fault if its last StatusNotification said Faulted or carried an
errorCode other than NoError; charging if it said Charging, SuspendedEV, SuspendedEVSE, Finishing or
Preparing (a session is in hand: the connector is not free for another); else idle, also when it has not
reported yet. A charger is offline if not connected; else fault if connector 0 or any connector is fault;
else charging if any connector is; else idle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

OFFLINE, IDLE, CHARGING, FAULT = 0, 1, 2, 3
NAMES = {OFFLINE: "offline", IDLE: "idle", CHARGING: "charging", FAULT: "fault"}
CHARGING_STATUSES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Preparing"})

Span = tuple[datetime, datetime]


def is_fault(ocpp_status: str | None, error_code: str | None) -> bool:
    return ocpp_status == "Faulted" or (error_code is not None and error_code != "NoError")


def connector_status(online: bool, ocpp_status: str | None, error_code: str | None) -> int:
    """A connector's EVCS status from its charger's connection and its last StatusNotification (None: none)."""
    if not online:
        return OFFLINE
    if is_fault(ocpp_status, error_code):
        return FAULT
    return CHARGING if ocpp_status in CHARGING_STATUSES else IDLE


def charger_status(online: bool, whole: tuple[str | None, str | None] | None, connectors: Iterable[int]) -> int:
    """A charger's EVCS status: `whole` is connector 0's (status, errorCode) if it reported one,
    `connectors` the EVCS statuses of the others."""
    if not online:
        return OFFLINE
    codes = set(connectors)
    if (whole is not None and is_fault(*whole)) or FAULT in codes:
        return FAULT
    return CHARGING if CHARGING in codes else IDLE


# ---- time online and charging over a period ------------------------------------------------------

def spans(at_start: bool, changes: Sequence[tuple[datetime, bool]], since: datetime, until: datetime) -> list[Span]:
    """The parts of [since, until) in which a state held: `at_start` is the state at `since`, `changes`
    the (time, state) changes after it in time order (those outside the period are ignored)."""
    out: list[Span] = []
    start = since if at_start else None
    for moment, state in changes:
        moment = min(max(moment, since), until)
        if state and start is None:
            start = moment
        elif not state and start is not None:
            if moment > start:
                out.append((start, moment))
            start = None
    if start is not None and until > start:
        out.append((start, until))
    return out


def union(many: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged, in time order."""
    out: list[Span] = []
    for start, end in sorted(many):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def seconds(spans_: Iterable[Span]) -> float:
    return sum((end - start).total_seconds() for start, end in spans_)


def overlap(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Where two lists of disjoint spans overlap."""
    out = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if end > start:
                out.append((start, end))
    return union(out)
