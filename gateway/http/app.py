"""The Quart-Trio application and its Hypercorn server."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Sequence

import trio
from hypercorn.trio import serve
from quart import Response, g, jsonify, request
from quart.asgi import ASGIHTTPConnection
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from .. import __version__, clock
from ..billing.orders import OrderBook
from ..billing.payments import PaymentService
from ..chargepoint.boundary import ConnectionLimits
from ..chargepoint.commands import CommandService
from ..chargepoint.service import ChargerService
from ..metrics import CONTENT_TYPE
from ..proxies import peer
from . import auth_api, billing_api, charger_ws, commands_api, errors, hypercorn_limits, ocpp_api, openapi, records_api
from . import console
from .auth import Auth, required_role
from .errors import CALLBACKS, ApiError
from .sameorigin import SAFE_METHODS, cross_site, host_allowed, host_name


class _HTTPConnection(TrioASGIHTTPConnection):
    """quart-trio cancels a request as soon as Hypercorn signals the client's disconnect, and Hypercorn
    signals it from inside its own handling of a finished keep-alive request: cancelled there, the
    connection is neither closed nor reused, and the client's next request on it waits forever.
    Here a disconnect only stops reading; the request finishes on its own."""

    async def handle_messages(self, nursery: trio.Nursery, request: Any, receive: Any) -> None:  # type: ignore
        await ASGIHTTPConnection.handle_messages(self, request, receive)


class _App(QuartTrio):
    asgi_http_class = _HTTPConnection


PROTECTED_MODE = ("protected mode: no account exists, so only clients on this machine may use the API. "
                  "Set GATEWAY_ADMIN_PASSWORD (or admin_password in config.toml) or run "
                  "`gateway user add NAME --role admin`, then authenticate.")


def create_app(chargers: ChargerService, commands: CommandService, auth: Auth,
               max_body_bytes: int = 1_048_576, billing: tuple[OrderBook, PaymentService] | None = None,
               max_page_size: int = 500, trusted_proxies: Sequence[str] = (),
               allowed_hosts: Sequence[str] = ()) -> QuartTrio:
    allowed = frozenset(host_name(host) for host in allowed_hosts)  # "gw.example.com:8443" names gw.example.com
    app = _App("gateway")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes  # larger bodies: 413
    app.config["MAX_PAGE_SIZE"] = max_page_size  # larger page sizes: 400
    app.config["CHARGERS"] = chargers
    app.config["COMMANDS"] = commands
    app.config["AUTH"] = auth
    app.config["BILLING"] = billing
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    errors.install(app)

    @app.after_request
    async def close_after_unread_body(response: Response) -> Response:
        if response.status_code == 413:  # the body was not read: this connection cannot be reused
            response.headers["Connection"] = "close"
        return response

    @app.before_request
    async def authenticate() -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        g.peer = peer(request.remote_addr, headers, trusted_proxies)
        role = required_role(request.method, request.path)
        # Payment providers and load balancers call with names of their own; chargers use the WebSocket.
        if request.path != "/health" and not request.path.startswith(CALLBACKS):
            if not host_allowed(headers.get("host"), allowed):
                raise ApiError(421, "misdirected_request",
                               f"this gateway does not answer to the name {headers.get('host', '')[:200]!r}: use "
                               "its address, or add the name to http_allowed_hosts (a web page whose DNS name "
                               "points here must not reach the API)")
            if request.method not in SAFE_METHODS or role in ("operator", "admin"):  # it changes something
                why = cross_site(headers, headers.get("host"))
                if why:
                    raise ApiError(403, "forbidden", f"{why}: refused because it would change something; "
                                   "use the gateway's own pages (/web) or a client such as curl")
        if role is None:
            return
        principal = await auth.principal(request.headers, g.peer)
        if principal is None:
            if await auth.accounts() == 0:
                raise ApiError(403, "forbidden", PROTECTED_MODE)
            raise ApiError(401, "unauthorized", "authenticate: HTTP Basic (curl -u user:password), "
                           "a token from POST /api/auth/login, or an API token, as Authorization: Bearer",
                           headers={"WWW-Authenticate": 'Basic realm="gateway"'})
        if not principal.may(role):
            raise ApiError(403, "forbidden", f"this needs the {role} role; {principal.username} is {principal.role}")
        g.principal = principal

    app.register_blueprint(auth_api.bp)
    app.register_blueprint(ocpp_api.bp)
    app.register_blueprint(commands_api.bp)
    app.register_blueprint(records_api.bp)
    app.register_blueprint(charger_ws.bp)
    app.register_blueprint(console.bp)
    billing_api.install(app)

    @app.get("/health")
    async def health() -> Any:
        # Degraded is still 200: the gateway answers chargers and serves what it has, and a 503 would
        # make a supervisor restart it (or a balancer drop it), which mends no disk. Monitors read
        # "status" and "reasons", or gateway_storage_degraded in /metrics.
        reasons = chargers.store.health.reasons()
        body = {"status": "degraded" if reasons else "ok", "version": __version__, "time": clock.iso(),
                "chargersConnected": len(chargers.registry)}
        if reasons:
            body["reasons"] = reasons
        return jsonify(body)

    @app.get("/metrics")
    async def metrics() -> Response:
        chargers.metrics.chargers_connected.set(len(chargers.registry))
        chargers.metrics.transactions_open.set(await chargers.store.transactions.count_open())
        return Response(chargers.metrics.render(), content_type=CONTENT_TYPE)

    @app.get("/openapi.json")
    async def openapi_json() -> Any:
        return jsonify(openapi.document())

    @app.get("/docs")
    async def docs() -> Response:
        return Response(openapi.docs_page(), content_type="text/html; charset=utf-8")

    return app


async def serve_http(app: QuartTrio, host: str, port: int, max_frame_bytes: int,
                     shutdown: trio.Event, limits: ConnectionLimits | None = None,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until `shutdown` is set; report the bound port through task_status."""
    hypercorn_limits.install()
    config = hypercorn_limits.GatewayConfig()
    config.connection_limits = limits
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.websocket_max_message_size = max_frame_bytes  # enforced as the frame arrives (hypercorn_limits)
    # Hypercorn's default of 100 reset 12-27 % of 600 simultaneous requests; the kernel caps this at
    # net.core.somaxconn (4096 by default since Linux 5.4).
    config.backlog = 4096
    # Left at Hypercorn's defaults, which already bound a slow client: request headers must be complete
    # within keep_alive_timeout (5 s) of the connection or of the previous answer, and within
    # h11_max_incomplete_size (16 KiB); bodies within Quart's BODY_TIMEOUT (http_body_timeout, run_gateway).
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 3

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
