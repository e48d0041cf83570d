"""Chargers configured for the original server connect on the HTTP port: ws://host:8080/ocpp/{id}."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint, Response, current_app, websocket

from ..chargepoint.boundary import handshake_failed
from ..chargepoint.handshake import HandshakeRefused
from ..chargepoint.transport import QuartTransport
from ..proxies import peer

bp = Blueprint("charger_ws", __name__)
log = structlog.get_logger("gateway.listener")


@bp.websocket("/ocpp/<path:rest>")
async def charger_socket(rest: str) -> Any:
    service = current_app.config["CHARGERS"]
    raw = websocket.scope.get("raw_path") or websocket.path.encode()
    target = raw.decode("latin-1")
    client = peer(websocket.remote_addr, {k.lower(): v for k, v in websocket.headers.items()},
                  service.trusted_proxies)
    try:
        cp_id, subprotocol = await service.admit(target, websocket.requested_subprotocols,
                                                 websocket.headers.get("Authorization"), client.address,
                                                 tls=client.https)
    except HandshakeRefused as refused:
        log.warning("handshake refused", remote=client.address, path=target[:200],
                    status=refused.status, reason=refused.reason)
        return _refusal(refused)
    except Exception as exc:  # the gateway's own failure (the database): this handshake only
        return _refusal(handshake_failed(exc, client.address, target))
    await websocket.accept(subprotocol=subprotocol)
    # The real object, not the context-local proxy: commands send from other tasks.
    await service.serve(QuartTransport(websocket._get_current_object()), cp_id, subprotocol)
    return None


def _refusal(refused: HandshakeRefused) -> Response:
    """Answered instead of the upgrade."""
    response = Response(refused.reason, refused.status, content_type="text/plain; charset=utf-8")
    if refused.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
    return response
