"""UTC time in the one text form the gateway stores and answers with."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None = None) -> str:
    """2025-08-14T01:23:00.731Z: sortable as text, as OCPP and the API expect."""
    moment = (moment or now()).astimezone(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime | None:
    """Parse an ISO 8601 time from a charger or the database; None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    if moment.tzinfo is None:  # a charger that omits the zone means UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment
