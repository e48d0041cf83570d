"""Which clock a session is priced on: the charger's, unless it is implausible, else the gateway's.

Chargers connect without credentials by default and many lose their clock on a power cut, so a
StartTransaction dated 1970 or 0001 is ordinary. A charger's time is believed only when it is not
before the charger was first seen and is within the tolerance of the gateway's receive time;
otherwise the receive time is used and the order says so (the charger's time is kept beside it).
Times without a zone are UTC, as OCPP exchanges times (clock.parse).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from .. import clock

CHARGER, GATEWAY, OPERATOR = "charger", "gateway", "operator"


@attrs.frozen
class SessionTime:
    at: datetime | None  # what the session is priced on; None: no time known
    text: str | None  # the same as stored: the charger's or the gateway's text
    source: str | None  # CHARGER | GATEWAY; None with at
    reason: str | None = None  # why the charger's time was not used, for the order's note


def _age(delta: timedelta) -> str:
    hours = abs(delta) / timedelta(hours=1)
    return f"{abs(delta).days:,} days" if hours >= 48 else f"{hours:,.1f} hours"  # whole days, rounded down


def session_time(what: str, charger: str | None, received: str | None, first_seen: str | None,
                 tolerance: timedelta | None) -> SessionTime:
    """The `what` ("start" or "stop") time of a session. tolerance None: the charger's clock is trusted."""
    sent, heard = clock.parse(charger) if charger else None, clock.parse(received) if received else None
    if sent is None:
        if heard is None:
            return SessionTime(None, None, None)
        why = f"the charger sent no {what} time" if not charger else f"the charger's {what} time {charger!r} is unreadable"
        return SessionTime(heard, received, GATEWAY, why)
    if tolerance is None:
        return SessionTime(sent, charger, CHARGER)
    registered = clock.parse(first_seen) if first_seen else None
    why = None
    if registered is not None and sent < registered:
        why = f"the charger's {what} time {charger} is before it was first seen ({first_seen})"
    elif heard is not None and abs(sent - heard) > tolerance:
        side = "before" if sent < heard else "after"
        why = f"the charger's {what} time {charger} is {_age(sent - heard)} {side} the gateway received it"
    if why is None:
        return SessionTime(sent, charger, CHARGER)
    return SessionTime(heard, received if heard else None, GATEWAY if heard else None, why)
