"""Every HTTP route declared once: its handler, the least role that may call it, and its OpenAPI
operations, side by side.

    routes = Routes("records_api", __name__, "/api")

    @routes.route("/chargers", role=VIEWER, get=op("chargers", "Chargers, a page at a time", ...))
    async def chargers() -> Any: ...

The keyword arguments name the methods served (get, post, put, patch, delete), each with its
operation. app.authenticate() reads the role of the route a request matched, and openapi.document()
lists the operations, so neither can drift from what is served.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Callable, Union

import attrs
from quart import Blueprint

from .services import Limits

Schema = dict[str, Any]
# An operation, or one built from the configured limits when the document is made.
Operation = Union[Schema, Callable[[Limits], Schema]]
METHODS = ("get", "put", "post", "patch", "delete")  # the order operations are listed in


class Role(enum.Enum):
    """Who may call a route; each role may do what the ones before it may (accounts.ROLES)."""

    PUBLIC = "public"  # anyone: the payment providers (they prove themselves by signature), chargers, login
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


PUBLIC, VIEWER, OPERATOR, ADMIN = Role


@attrs.frozen
class Route:
    rule: str  # in full, as Quart matches it: /api/transactions/<int:transaction_id>
    endpoint: str  # blueprint.function, as request.url_rule names it
    role: Role
    operations: dict[str, Operation]  # method (lower case) -> its OpenAPI operation
    websocket: bool = False
    commands: bool = False  # its GET changes something too: it sends a command to a charger

    def changes(self, method: str) -> bool:
        """Whether a request of `method` (any case) changes something: every method but GET, HEAD and
        OPTIONS, and a GET that sends a command (a HEAD too: it runs the GET's handler); the audit log
        records exactly these."""
        method = method.upper()
        return method not in ("GET", "HEAD", "OPTIONS") or (self.commands and method in ("GET", "HEAD"))

    @property
    def path(self) -> str:
        """The OpenAPI path: /api/transactions/{transaction_id}."""
        return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", self.rule)


class Routes:
    """The routes of one blueprint, in the order the document lists them."""

    def __init__(self, name: str, import_name: str, url_prefix: str = "", *, commands: bool = False):
        self.blueprint = Blueprint(name, import_name, url_prefix=url_prefix or None)
        self.prefix = url_prefix
        self.commands = commands  # every route's GET sends a command to a charger (Route.commands)
        self.declared: list[Route] = []

    def route(self, rule: str, *, role: Role, endpoint: str | None = None, websocket: bool = False,
              commands: bool | None = None, **operations: Operation) -> Callable:
        """Serve the decorated handler at `rule` for the methods named, to `role` and above; `commands`:
        its GET sends a command to a charger (default: as the Routes say)."""
        if not isinstance(role, Role):  # a route without an explicit role must not load
            raise TypeError(f"{rule}: role must be one of {', '.join(r.name for r in Role)}, not {role!r}")
        unknown = set(operations) - set(METHODS)
        if unknown or not operations:
            raise TypeError(f"{rule}: name the methods served ({', '.join(METHODS)}), each with its operation")
        if websocket and set(operations) != {"get"}:
            raise TypeError(f"{rule}: a WebSocket route is a GET")

        def declare(handler: Callable) -> Callable:
            name = endpoint or handler.__name__
            if websocket:
                self.blueprint.add_websocket(rule, name, handler)
            else:
                self.blueprint.add_url_rule(rule, name, handler, methods=[m.upper() for m in operations])
            self.declared.append(Route(self.prefix + rule, f"{self.blueprint.name}.{name}", role,
                                       dict(operations), websocket,
                                       self.commands if commands is None else commands))
            return handler

        return declare


def unrouted_role(method: str, path: str) -> Role:
    """The role asked of a request no declared route takes (an unknown path: 404, a method the path does
    not serve: 405, OPTIONS): answered by the path's prefix, as the routes there are, so that a client
    without the role learns nothing of what exists there."""
    if path in ("/health", "/web", "/docs", "/api/auth/login") or path.startswith(("/ocpp/", "/api/payment/callback/",
                                                                                       "/api/cloudcharge/")):
        return PUBLIC
    if path.startswith("/api/auth/"):
        return VIEWER
    if path.startswith("/firmware/"):  # signed firmware files, fetched by chargers (their address is the secret)
        return PUBLIC
    if path.startswith(("/api/certificates/authority", "/api/certificates/firmware-signer")) or (
            path.startswith("/api/certificates/") and method not in ("GET", "HEAD", "OPTIONS")
            and (path.endswith(("/revoke", "/install")) or "/installed/" in path)):
        return ADMIN  # the certificate authority, and what changes which certificates a charger trusts
    if path.startswith("/api/tenant/audit-log/"):  # the audit log: a tenant's admins
        return ADMIN
    if path.endswith("/security") and method not in ("GET", "HEAD"):
        return ADMIN
    if (path == "/api/tenant" or path.startswith("/api/tenant/")) and method not in ("GET", "HEAD", "OPTIONS"):
        return ADMIN  # tenants and their quotas are an admin's to change
    if path.startswith(("/api/monitoring/logs/", "/api/v1/monitoring/logs/")):  # the platform's own log
        return ADMIN
    if path.startswith("/api/ocpp/") and not path.startswith(("/api/ocpp/connections", "/api/ocpp/status/")):
        return OPERATOR
    if method not in ("GET", "HEAD", "OPTIONS") or path.startswith("/api/payment/callbacks/"):
        return OPERATOR
    return VIEWER
