"""The OCPP port: a trio-websocket server at ws://host:port/ocpp/{chargePointId}."""

from __future__ import annotations

import ssl
from functools import partial

import structlog
import trio
import trio_websocket

from ..proxies import peer
from .handshake import HandshakeRefused
from .service import ChargerService
from .transport import TrioWebSocketTransport

log = structlog.get_logger("gateway.listener")


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """TLS 1.2+ for the wss:// listener; with a client CA, chargers may present certificates (profile 3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # profile 2 chargers present none; profile 3 must
    return context


def _peer_common_name(request: trio_websocket.WebSocketRequest) -> str | None:
    # trio-websocket does not expose the TLS stream; the verified peer certificate is on it.
    stream = getattr(request._connection, "_stream", None)
    cert = stream.getpeercert() if isinstance(stream, trio.SSLStream) else None
    for rdn in (cert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return value
    return None


async def serve_ocpp(service: ChargerService, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen for chargers (wss:// with an ssl_context); report the bound port through task_status."""

    async def on_request(request: trio_websocket.WebSocketRequest) -> None:
        remote = request.remote
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        address = str(getattr(remote, "address", remote))
        client = peer(address, headers, service.trusted_proxies)
        where = f"{address}:{remote.port}" if client.address == address and hasattr(remote, "port") else client.address
        try:
            cp_id, subprotocol = await service.admit(
                request.path, request.proposed_subprotocols, headers.get("authorization"), client.address,
                tls=ssl_context is not None or client.https,
                client_cn=_peer_common_name(request) if ssl_context else None)
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
            partial(trio_websocket.serve_websocket, on_request, host, port, ssl_context,
                    max_message_size=service.config.max_frame_bytes,
                    connect_timeout=service.config.handshake_timeout)
        )
        scheme = "wss" if ssl_context else "ws"
        log.info("listening for chargers", url=f"{scheme}://{host}:{server.port}/ocpp/{{chargePointId}}")
        task_status.started(server.port)
