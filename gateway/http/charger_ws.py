"""Chargers configured for the original server connect on the HTTP port: ws://host:8080/ocpp/{id}."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Response, websocket

from ..chargepoint.boundary import handshake_failed
from ..chargepoint.handshake import HandshakeRefused
from ..chargepoint.transport import QuartTransport
from ..proxies import peer
from .routes import PUBLIC, Routes
from .schemas import ref
from .services import services

routes = Routes("charger_ws", __name__)
log = structlog.get_logger("gateway.listener")
_REFUSAL = {"text/html": {"schema": {"type": "string", "description": "the reason, a sentence"}}}


@routes.route("/ocpp/<path:rest>", role=PUBLIC, websocket=True, get={  # chargers are not API users
    "tags": ["charger-socket"],
    "security": [],
    "summary": "Charger WebSocket (OCPP 1.6J), for chargers set up for the original server",
    "description": "The same as the OCPP port's ws://host:9000/ocpp/{chargePointId}. Subprotocol ocpp1.6; "
                   "a charger offering none is accepted unless charger.require_subprotocol is set.",
    "parameters": [
        {"name": "Upgrade", "in": "header", "required": True, "schema": {"const": "websocket"}},
        {"name": "Sec-WebSocket-Protocol", "in": "header", "schema": {"type": "string", "example": "ocpp1.6"}},
    ],
    "responses": {
        "101": {"description": "Switching Protocols: the charger's OCPP-J session (the header is left out "
                               "when the charger offered no subprotocol)",
                "headers": {"Sec-WebSocket-Protocol": {"schema": {"type": "string", "const": "ocpp1.6"}}}},
        "400": {"description": "refused: the id is blank, too long (48), not UTF-8 or has control characters, "
                               "or the subprotocols offered lack ocpp1.6; bad_request (JSON) for a plain "
                               "HTTP request",
                "content": {**_REFUSAL, "application/json": {"schema": ref("Error")}}},
        "404": {"description": "refused: the URL does not end with a charge point id", "content": _REFUSAL},
        "405": {"$ref": "#/components/responses/MethodNotAllowed"},
    },
})
async def charger_socket(rest: str) -> Any:
    service = services().chargers
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
