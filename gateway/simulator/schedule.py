"""Charging profiles as a charger applies them: the limit in force and the composite schedule (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import clock

VOLTS = 230.0
PHASES = 3


def to_unit(limit: float, unit: str, wanted: str, phases: int = PHASES) -> float:
    if unit == wanted:
        return limit
    return limit * VOLTS * phases if wanted == "W" else limit / (VOLTS * phases)


def _start(profile: dict[str, Any], now: datetime, tx_start: datetime | None) -> datetime:
    schedule = profile["chargingSchedule"]
    if profile.get("chargingProfileKind") == "Relative" and tx_start is not None:
        return tx_start
    return clock.parse(schedule.get("startSchedule", "")) or now


def _limit_at(profile: dict[str, Any], moment: datetime, now: datetime, tx_start: datetime | None,
              unit: str) -> float | None:
    start = _start(profile, now, tx_start)
    schedule = profile["chargingSchedule"]
    offset = (moment - start).total_seconds()
    duration = schedule.get("duration")
    if offset < 0 or (duration is not None and offset >= duration):
        return None
    for name in ("validFrom", "validTo"):
        edge = clock.parse(profile.get(name, "")) if profile.get(name) else None
        if edge is not None and ((name == "validFrom" and moment < edge) or (name == "validTo" and moment >= edge)):
            return None
    limit = None
    for period in sorted(schedule["chargingSchedulePeriod"], key=lambda p: p["startPeriod"]):
        if period["startPeriod"] <= offset:
            limit = to_unit(float(period["limit"]), schedule["chargingRateUnit"], unit,
                            period.get("numberPhases", PHASES))
    return limit


def limit_at(profiles: list[tuple[int, dict[str, Any]]], connector_id: int, moment: datetime, now: datetime,
             tx_start: datetime | None, unit: str = "W", lowest_stack: bool = False) -> float | None:
    """The limit in force: the highest stack level per purpose; TxProfile beats TxDefaultProfile;
    ChargePointMaxProfile caps everything (OCPP 1.6, 3.13). `lowest_stack`: the planted bug that takes the
    lowest stack level instead."""
    def best(purpose: str, connectors: tuple[int, ...]) -> float | None:
        found = [(p["stackLevel"], _limit_at(p, moment, now, tx_start, unit))
                 for c, p in profiles if c in connectors and p["chargingProfilePurpose"] == purpose]
        found = [f for f in found if f[1] is not None]
        return (min(found) if lowest_stack else max(found))[1] if found else None

    tx = best("TxProfile", (connector_id,)) if tx_start is not None else None
    if tx is None:
        tx = best("TxDefaultProfile", (connector_id,))
        if tx is None:
            tx = best("TxDefaultProfile", (0,))
    cap = best("ChargePointMaxProfile", (0,))
    limits = [v for v in (tx, cap) if v is not None]
    return min(limits) if limits else None


def composite(profiles: list[tuple[int, dict[str, Any]]], connector_id: int, duration: int, now: datetime,
              tx_start: datetime | None, unit: str = "A", lowest_stack: bool = False) -> dict[str, Any] | None:
    """GetCompositeSchedule: the limits from now on for `duration` seconds, one period per change."""
    edges = {0}
    for _c, profile in profiles:
        start = _start(profile, now, tx_start)
        for period in profile["chargingSchedule"]["chargingSchedulePeriod"]:
            edges.add(int((start - now).total_seconds()) + period["startPeriod"])
        if profile["chargingSchedule"].get("duration") is not None:
            edges.add(int((start - now).total_seconds()) + profile["chargingSchedule"]["duration"])
    periods: list[dict[str, Any]] = []
    for edge in sorted(e for e in edges if 0 <= e < duration):
        limit = limit_at(profiles, connector_id, now + timedelta(seconds=edge), now, tx_start, unit, lowest_stack)
        if limit is None:
            continue
        rounded = round(limit, 1)
        if not periods or periods[-1]["limit"] != rounded:
            periods.append({"startPeriod": edge, "limit": rounded})
    if not periods:
        return None
    return {"duration": duration, "startSchedule": clock.iso(now), "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods}
