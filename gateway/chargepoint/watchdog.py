"""One task watches every session: pings the chargers, closes the ones gone silent."""

from __future__ import annotations

import trio

from .registry import Registry
from .session import NORMAL, Session
from .transport import Closed


async def _ping(session: Session) -> None:
    try:
        await session.transport.ping()
    except Closed:
        session.close(None, "connection lost")
        return
    except Exception as exc:  # whatever one socket raises ends that connection, never the watchdog of all
        session.log.warning("ping failed", error=repr(exc)[:300])
        session.close(None, "ping failed")
        return
    session.last_activity = trio.current_time()


async def watch(registry: Registry, ping_interval: float, idle_limit: float) -> None:
    """Forever: ping every charger that can be pinged, then close those silent past `idle_limit`.

    A frame or a pong counts as a sign of life; `ping_interval` 0 sends no pings.
    """
    period = min(ping_interval or idle_limit, idle_limit / 2)
    while True:
        await trio.sleep(period)
        if ping_interval:
            with trio.move_on_after(period):  # a pong later than this counts as none
                async with trio.open_nursery() as nursery:
                    for session in registry:
                        if session.transport.can_ping and not session.closed:
                            nursery.start_soon(_ping, session)
        now = trio.current_time()
        for session in registry:
            idle = now - session.last_activity
            if idle > idle_limit:
                session.log.warning("silent charger", idle_seconds=round(idle))
                session.close(NORMAL, f"no frame or pong for {idle:.0f} s")
