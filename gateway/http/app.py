"""The Quart-Trio application and its Hypercorn server."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Callable, Sequence

import trio
from hypercorn.trio import serve
from quart import Response, g, jsonify, request
from quart.asgi import ASGIHTTPConnection
from quart.routing import QuartRule
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from .. import __version__, clock
from ..chargepoint.boundary import ConnectionLimits
from ..metrics import CONTENT_TYPE
from ..proxies import peer
from ..store import scope
from . import auth_api, billing_api, charger_ws, commands_api, errors, hypercorn_limits, ocpp_api, openapi, records_api
from . import audit_api, certificate_api, charger_api, cloudcharge_api, console, dashboard_api, monitoring_api
from . import live_api, station_api, storage_api, tenant_api
from . import charger_test_api, charger_test_reports_api
from .errors import CALLBACKS, ApiError
from .routes import ADMIN, OPERATOR, PUBLIC, VIEWER, Role, Routes, unrouted_role
from .sameorigin import SAFE_METHODS, cross_site, host_allowed, host_name
from .schemas import op, ref
from .accounts import Principal
from .services import Services
from .services import services as current_services  # create_app() takes a `services`


class _HTTPConnection(TrioASGIHTTPConnection):
    """quart-trio cancels a request as soon as Hypercorn signals the client's disconnect, and Hypercorn
    signals it from inside its own handling of a finished keep-alive request: cancelled there, the
    connection is neither closed nor reused, and the client's next request on it waits forever.
    Here a disconnect only stops reading; the request finishes on its own."""

    async def handle_messages(self, nursery: trio.Nursery, request: Any, receive: Any) -> None:  # type: ignore
        await ASGIHTTPConnection.handle_messages(self, request, receive)
        # An answer that lasts as long as its client (the live stream) ends when the client goes.
        request.gone = True
        when_gone = getattr(request, "when_gone", None)
        if when_gone is not None:
            when_gone()


class _Rule(QuartRule):
    """A route whose URL builder (url_for's) is made when first used, which the gateway never does: Werkzeug
    makes two per route as it is added, by generating and compiling Python code, most of the time a
    gateway takes to start (measured: 0.27 s of CPU a start, 0.2 of it here; 0.094 s with these)."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        built: list[Callable[..., tuple[str, str]]] = []

        def build(rule: _Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not built:
                built.append(QuartRule._compile_builder(rule, append_unknown).__get__(rule, None))
            return built[0](*args, **kwargs)
        return build


class _App(QuartTrio):
    asgi_http_class = _HTTPConnection
    url_rule_class = _Rule
    request_class = audit_api.AuditedRequest  # knows whether its body was read (the audit log's summary)
    services: Services  # what the handlers work with (services.services())


TENANT_HEADER = "X-Tenant-Id"  # a user may act as a tenant below its own (the console's tenant switcher)

PROTECTED_MODE = ("protected mode: no account exists, so only clients on this machine may use the API. "
                  "Set GATEWAY_ADMIN_PASSWORD (or admin_password in config.toml) or run "
                  "`gateway user add NAME --role admin`, then authenticate.")


gateway = Routes("gateway", __name__)


@gateway.route("/health", role=PUBLIC, get=op("gateway", "Liveness and version", ref("Health"), public=True))
async def health() -> Any:
    # Degraded is still 200: the gateway answers chargers and serves what it has, and a 503 would
    # make a supervisor restart it (or a balancer drop it), which mends no disk. Monitors read
    # "status" and "reasons", or gateway_storage_degraded in /metrics.
    chargers = current_services().chargers
    reasons = chargers.store.health.reasons()
    body = {"status": "degraded" if reasons else "ok", "version": __version__, "time": clock.iso(),
            "chargersConnected": len(chargers.registry)}
    if reasons:
        body["reasons"] = reasons
    return jsonify(body)


@gateway.route("/metrics", role=VIEWER, get=op("gateway", "Prometheus metrics (text format)", {"type": "string"},
                                               media="text/plain"))
async def metrics() -> Response:
    chargers = current_services().chargers
    chargers.metrics.chargers_connected.set(len(chargers.registry))
    chargers.metrics.transactions_open.set(await chargers.store.transactions.count_open())
    if current_services().monitor is not None:  # the figures /api/monitoring shows, read now
        await current_services().monitor.refresh()
    return Response(chargers.metrics.render(), content_type=CONTENT_TYPE)


@gateway.route("/openapi.json", role=VIEWER, get=op("gateway", "This OpenAPI document", {"type": "object"}))
async def openapi_json() -> Any:
    return jsonify(openapi.document(current_services().limits))


# The page itself holds nothing but its script: it reads /openapi.json with the console's login (or Basic).
@gateway.route("/docs", role=PUBLIC, get=op("gateway", "This document, rendered (self-contained HTML)",
                                            {"type": "string"}, media="text/html", public=True))
async def docs() -> Response:
    return Response(openapi.docs_page(), content_type="text/html; charset=utf-8")


# Every route the app serves, in the order the OpenAPI document lists them.
ROUTES: tuple[Routes, ...] = (gateway, console.routes, charger_ws.routes, auth_api.routes, ocpp_api.routes,
                              ocpp_api.catalogue,
                              commands_api.routes, records_api.routes, *billing_api.ROUTES, station_api.routes,
                              charger_api.routes, tenant_api.routes, audit_api.routes, *dashboard_api.ROUTES,
                              *monitoring_api.ROUTES, cloudcharge_api.routes, *certificate_api.ROUTES,
                              storage_api.routes, charger_test_api.routes, charger_test_reports_api.routes,
                              live_api.routes)


def create_app(services: Services, trusted_proxies: Sequence[str] = (),
               allowed_hosts: Sequence[str] = ()) -> QuartTrio:
    allowed = frozenset(host_name(host) for host in allowed_hosts)  # "gw.example.com:8443" names gw.example.com
    roles: dict[str, Role] = {route.endpoint: route.role for group in ROUTES for route in group.declared}
    app = _App("gateway", static_folder=None)  # no /static: every page is served by a declared route
    app.services = services
    app.config["MAX_CONTENT_LENGTH"] = services.limits.max_body_bytes  # larger bodies: 413
    app.config["JSON_SORT_KEYS"] = False
    app.config["CLOUDCHARGE"] = cloudcharge_api.Signatures(b"", 300.0)  # none taken until run_gateway sets the key
    app.json.sort_keys = False
    errors.install(app)

    @app.after_request
    async def close_after_unread_body(response: Response) -> Response:
        if response.status_code == 413:  # the body was not read: this connection cannot be reused
            response.headers["Connection"] = "close"
        return response

    def required_role() -> Role:
        """The role the matched route was declared with; a request no route takes (404, 405) and OPTIONS
        are asked what the routes under their path ask."""
        rule = request.url_rule
        if rule is None or request.routing_exception is not None or request.method == "OPTIONS":
            return unrouted_role(request.method, request.path)
        return roles[rule.endpoint]

    @app.before_request
    async def authenticate() -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        g.peer = peer(request.remote_addr, headers, trusted_proxies)
        role = required_role()
        # Payment providers and load balancers call with names of their own; chargers use the WebSocket.
        if request.path != "/health" and not request.path.startswith(CALLBACKS):
            if not host_allowed(headers.get("host"), allowed):
                raise ApiError(421, "misdirected_request",
                               f"this gateway does not answer to the name {headers.get('host', '')[:200]!r}: use "
                               "its address, or add the name to http_allowed_hosts (a web page whose DNS name "
                               "points here must not reach the API)")
            if request.method not in SAFE_METHODS or role in (OPERATOR, ADMIN):  # it changes something
                why = cross_site(headers, headers.get("host"))
                if why:
                    raise ApiError(403, "forbidden", f"{why}: refused because it would change something; "
                                   "use the gateway's own pages (/web) or a client such as curl")
        if role is PUBLIC:
            return
        auth = services.auth
        principal = await auth.principal(request.headers, g.peer)
        if principal is None:
            if await auth.accounts() == 0:
                raise ApiError(403, "forbidden", PROTECTED_MODE)
            raise ApiError(401, "unauthorized", "authenticate: HTTP Basic (curl -u user:password), "
                           "a token from POST /api/auth/login, or an API token, as Authorization: Bearer",
                           headers={"WWW-Authenticate": 'Basic realm="gateway"'})
        g.principal = principal  # also when refused below: the audit log names who was refused
        if not principal.may(role.value):
            raise ApiError(403, "forbidden", f"this needs the {role.value} role; {principal.username} is "
                           f"{principal.role}")
        g.scope = await acting_scope(principal, headers.get(TENANT_HEADER.lower()))
        scope.enter(g.scope)

    async def acting_scope(principal: Principal, named: str | None) -> scope.Scope:
        """The tenant the request acts as: the principal's own, or one below it named by X-Tenant-Id (the
        console's tenant switcher); another tenant is answered as one that does not exist."""
        acting = principal.tenant_id
        tenants = services.chargers.store.tenants
        if named is not None and named.strip() not in ("", str(acting)):
            try:
                wanted = int(named)
            except ValueError:
                raise ApiError(400, "bad_request", f"{TENANT_HEADER} must be a tenant id (an integer), not "
                               f"{named[:40]!r}") from None
            if wanted not in await tenants.subtree(acting):
                raise ApiError(404, "not_found", f"no such tenant {wanted}")
            acting = wanted
        return scope.Scope(acting, None if acting == scope.PLATFORM else await tenants.subtree(acting))

    for group in ROUTES:
        app.register_blueprint(group.blueprint)
    billing_api.install(app)
    audit_api.install(app, ROUTES)  # every request that changes something, recorded once as it is answered
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
