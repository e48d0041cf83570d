"""UTC time in the one text form the gateway stores and answers with."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


_last: tuple[int, str] = (-1, "")


def iso(moment: datetime | None = None) -> str:
    """2025-08-14T01:23:00.731Z: sortable as text, as OCPP and the API expect."""
    global _last
    if moment is None:  # the hot path: every frame is stamped; reuse the text within a millisecond
        ms = time.time_ns() // 1_000_000
        if ms != _last[0]:
            stamp = datetime.fromtimestamp(ms / 1000, timezone.utc)
            _last = (ms, stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        return _last[1]
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime | None:
    """Parse an ISO 8601 time from a charger or the database; None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    if moment.tzinfo is None:  # a charger that omits the zone means UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment
