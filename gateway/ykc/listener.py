"""The YKC port: piles connect over plain TCP and log in with their pile code (config `ykc`)."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Callable

import structlog
import trio

from ..chargepoint.boundary import ConnectionLimits
from ..billing.tariffs import Tariff
from .session import YkcSession

if TYPE_CHECKING:
    from ..chargepoint.service import ChargerService

log = structlog.get_logger("gateway.ykc")


async def serve_ykc(service: ChargerService, host: str, port: int, tz: tzinfo, tariff_of: Callable[[str], Tariff],
                    idle_timeout: float, limits: ConnectionLimits | None = None,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen for YKC piles; report the bound port through task_status. Each connection runs in its own
    fault boundary, counted by `limits` with the OCPP connections."""
    limits = limits or ConnectionLimits(total=1 << 30, per_address=1 << 30)

    async def on_connection(stream: trio.SocketStream) -> None:
        try:
            remote = stream.socket.getpeername()[:2]
        except OSError:  # reset before it was accepted
            await trio.aclose_forcefully(stream)
            return
        with limits.hold(remote[0]) as refusal:
            if refusal is not None:  # the pile's protocol has no way to say why: closed at once
                await trio.aclose_forcefully(stream)
                return
            session = YkcSession(service, stream, f"{remote[0]}:{remote[1]}", tz, tariff_of, idle_timeout)
            try:
                await session.run()
            except Exception:  # one pile's failure (a bug, the database) never stops the listener
                log.exception("pile connection failed", cp=session.cp_id or None, remote=session.transport.remote)

    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, listeners)
        bound = listeners[0].socket.getsockname()[1]
        log.info("listening for YKC piles", address=f"{host}:{bound}")
        task_status.started(bound)
