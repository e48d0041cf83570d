"""The OCPP port: a trio-websocket server at ws://host:port/ocpp/{chargePointId}."""

from __future__ import annotations

from functools import partial

import structlog
import trio
import trio_websocket

from .handshake import HandshakeRefused
from .service import ChargerService
from .transport import TrioWebSocketTransport

log = structlog.get_logger("gateway.listener")


async def serve_ocpp(service: ChargerService, host: str, port: int,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen for chargers; report the bound port through task_status."""

    async def on_request(request: trio_websocket.WebSocketRequest) -> None:
        remote = request.remote
        where = f"{remote.address}:{remote.port}" if hasattr(remote, "address") else str(remote)
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            cp_id, subprotocol = await service.admit(request.path, request.proposed_subprotocols,
                                                     headers.get("authorization"), where)
        except HandshakeRefused as refused:
            log.warning("handshake refused", remote=where, path=request.path[:200],
                        status=refused.status, reason=refused.reason)
            extra = [(b"WWW-Authenticate", b'Basic realm="ocpp"')] if refused.status == 401 else []
            await request.reject(refused.status, extra_headers=extra, body=refused.reason.encode())
            return
        ws = await request.accept(subprotocol=subprotocol)
        await service.serve(TrioWebSocketTransport(ws), cp_id, subprotocol)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(trio_websocket.serve_websocket, on_request, host, port, None,
                    max_message_size=service.config.max_frame_bytes,
                    connect_timeout=service.config.handshake_timeout)
        )
        log.info("listening for chargers", url=f"ws://{host}:{server.port}/ocpp/{{chargePointId}}")
        task_status.started(server.port)
