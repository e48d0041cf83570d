"""The OCPP port: a trio-websocket server at ws://host:port/ocpp/{chargePointId}."""

from __future__ import annotations

import ssl
from contextvars import ContextVar

import structlog
import trio
import trio_websocket

from ..proxies import peer
from .boundary import ConnectionLimits, connection_failed, handshake_failed, refuse_connection, stream_socket
from .handshake import HandshakeRefused
from .service import ChargerService
from .transport import TrioWebSocketTransport

log = structlog.get_logger("gateway.listener")
_peer: ContextVar[tuple[str, int]] = ContextVar("peer")  # the client's address, taken as it was accepted


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """TLS 1.2+ for the wss:// listener; with a client CA, chargers may present certificates (profile 3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # profile 2 chargers present none; profile 3 must
    return context


def _peer_certificate(request: trio_websocket.WebSocketRequest) -> dict:
    # trio-websocket does not expose the TLS stream; the verified peer certificate is on it.
    stream = getattr(request._connection, "_stream", None)
    return (stream.getpeercert() if isinstance(stream, trio.SSLStream) else None) or {}


def _peer_common_name(request: trio_websocket.WebSocketRequest) -> str | None:
    for rdn in _peer_certificate(request).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return value
    return None


def _peer_serial(request: trio_websocket.WebSocketRequest) -> str | None:
    """The verified client certificate's serial number, lower-case hex without leading zeros."""
    serial = _peer_certificate(request).get("serialNumber")
    return format(int(serial, 16), "x") if serial else None


def _listener_port(listener: trio.SocketListener | trio.SSLListener) -> int:
    inner = listener.transport_listener if isinstance(listener, trio.SSLListener) else listener
    return inner.socket.getsockname()[1]


async def serve_ocpp(service: ChargerService, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                     limits: ConnectionLimits | None = None,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen for chargers (wss:// with an ssl_context); report the bound port through task_status.

    Every connection runs inside its own fault boundary (`on_connection`), counted by `limits`."""
    limits = limits or ConnectionLimits(total=1 << 30, per_address=1 << 30)  # run_gateway passes the real ones

    async def on_request(request: trio_websocket.WebSocketRequest) -> None:
        remote = _peer.get()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        client = peer(remote[0], headers, service.trusted_proxies)
        where = f"{remote[0]}:{remote[1]}" if client.address == remote[0] else client.address
        try:
            cp_id, subprotocol = await service.admit(
                request.path, request.proposed_subprotocols, headers.get("authorization"), client.address,
                tls=ssl_context is not None or client.https,
                client_cn=_peer_common_name(request) if ssl_context else None,
                client_serial=_peer_serial(request) if ssl_context else None)
        except HandshakeRefused as refused:
            log.warning("handshake refused", remote=where, path=request.path[:200],
                        status=refused.status, reason=refused.reason)
            await _reject(request, refused)
            return
        except Exception as exc:  # the gateway's own failure (the database): this handshake only
            await _reject(request, handshake_failed(exc, where, request.path))
            return
        try:
            ws = await request.accept(subprotocol=subprotocol)
            await service.serve(TrioWebSocketTransport(ws, where), cp_id, subprotocol)
        except Exception as exc:  # logged here, where the charger is known
            connection_failed(exc, where, cp_id)

    async def on_connection(stream: trio.SocketStream | trio.SSLStream) -> None:
        try:
            remote = stream_socket(stream).getpeername()[:2]
        except OSError:  # reset before it was accepted
            await trio.aclose_forcefully(stream)
            return
        with limits.hold(remote[0]) as refusal:
            if refusal is not None:
                await refuse_connection(stream, refusal)
                return
            _peer.set(remote)  # the handshake handler runs in this task: it sees the address taken here
            try:
                # trio-websocket's own per-connection routine (the handshake, then on_request): its public
                # serve_websocket runs it in the listener's nursery, where any exception ends the process.
                await server._handle_connection(stream)
            except Exception as exc:
                connection_failed(exc, f"{remote[0]}:{remote[1]}")

    # trio's default backlog is the most the system allows (net.core.somaxconn).
    listeners: list = await trio.open_tcp_listeners(port, host=host)
    if ssl_context is not None:
        listeners = [trio.SSLListener(listener, ssl_context, https_compatible=True) for listener in listeners]
    server = trio_websocket.WebSocketServer(on_request, listeners, max_message_size=service.config.max_frame_bytes,
                                            connect_timeout=service.config.handshake_timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, listeners)
        bound = _listener_port(listeners[0])
        scheme = "wss" if ssl_context else "ws"
        log.info("listening for chargers", url=f"{scheme}://{host}:{bound}/ocpp/{{chargePointId}}")
        task_status.started(bound)


async def _reject(request: trio_websocket.WebSocketRequest, refused: HandshakeRefused) -> None:
    extra = [(b"WWW-Authenticate", b'Basic realm="ocpp"')] if refused.status == 401 else []
    await request.reject(refused.status, extra_headers=extra, body=refused.reason.encode())
