"""The audit log: every request that changes something, recorded once by a hook; /api/tenant/audit-log to
read it (docs/api.md section 11).

What changes something is the route's to say (Route.changes): every method but GET, HEAD and OPTIONS, and
the GETs of the routes that send a command to a charger. Refused requests are recorded too, with the status
they got: an attempt is part of the record. A user of a tenant acting in a tenant below its own (a
platform user choosing a tenant with X-Tenant-Id) is recorded for its reads as well ("read" records),
which is what the cross-layer statistic counts; reads of the audit log itself are not (looking at the
statistic would change it).

No secret reaches a record: the summary is the query and the body with every secret-like field's value
replaced (`redact`, the one rule), and neither the headers nor the credentials are ever read.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable
from urllib.parse import parse_qsl

import structlog
from quart import Quart, Response, g, request
from quart_trio.wrappers import TrioRequest

from .. import clock
from ..store.audit import AuditLog
from ..store.scope import PLATFORM
from ..store.scope import current as current_scope
from . import params
from .errors import CALLBACKS, evcs
from .routes import ADMIN, Route, Routes
from .schemas import PAGING, enveloped, list_of, op, param, query, record
from .services import services

routes = Routes("audit_api", __name__, "/api/tenant/audit-log")
_OWN = f"{routes.blueprint.name}."  # the endpoints of the audit log's own routes
log = structlog.get_logger("gateway.http")

REDACTED = "[redacted]"
MAX_TEXT = 200  # characters of a text value kept in a summary
MAX_ITEMS = 50  # entries of an object or list kept in a summary
MAX_DEPTH = 6
MAX_SUMMARY = 8192  # characters of a summary; a larger one keeps its shape, not its content
# A field whose name holds one of these (letters and digits only, lower case) holds a secret: passwords,
# tokens, keys (an AuthorizationKey, a private key, an API key), secrets, signatures, card data, PINs.
_SECRET = re.compile(r"pass|pwd|secret|token|sign|key|credential|auth|cookie|card|cvv|cvc|iban|pin$|pincode")
ANONYMOUS = "anonymous"
CLOUDCHARGE = "/api/cloudcharge/"


def secret_name(name: str) -> bool:
    """Whether a field named `name` holds a secret (the one redaction rule). A bare "key" is a configuration
    key's name, not a secret: its "value" is one when the key's name is (see `redact`)."""
    folded = re.sub(r"[^a-z0-9]", "", name.lower())
    return folded != "key" and _SECRET.search(folded) is not None


def redact(value: Any, depth: int = 0) -> Any:
    """`value` (parsed JSON, a query or a form) with every secret-like field's value replaced by REDACTED,
    texts cut to MAX_TEXT characters, objects and lists to MAX_ITEMS entries, nesting to MAX_DEPTH. A text
    holding a JSON object or list (a query parameter, a form field) is read as what it holds.

    {"key": "AuthorizationKey", "value": "..."} (ChangeConfiguration, by body or query) hides the value."""
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        named = value.get("key")
        hidden_value = isinstance(named, str) and secret_name(named)
        return {str(k): REDACTED if secret_name(str(k)) or (hidden_value and k == "value") else redact(v, depth + 1)
                for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list):
        return [redact(v, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, str):
        if value[:1] in ("{", "["):  # JSON in a text (a query parameter, a form field): its fields count
            try:
                inner = json.loads(value)
            except ValueError:
                pass
            else:
                return redact(inner, depth + 1)
        if len(value) > MAX_TEXT:
            return value[:MAX_TEXT] + "..."
    return value


def parsed_body(content_type: str, raw: bytes) -> Any:
    """What a request body says: JSON, a form (as an object), or only its size and type."""
    if not raw.strip():
        return None
    if "form-urlencoded" in content_type:
        try:
            return _pairs(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            pass
    else:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return {"bytes": len(raw), "contentType": content_type[:100]}


def _pairs(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query or form pairs as an object; a name given more than once holds the list of its values."""
    out: dict[str, Any] = {}
    for name, value in items:
        if name in out:
            out[name] = [*out[name], value] if isinstance(out[name], list) else [out[name], value]
        else:
            out[name] = value
    return out


def summary(query: dict[str, Any], body: Any, body_read: bool = True) -> str:
    """The summary of a request, as JSON text: its query and its body, redacted."""
    made: dict[str, Any] = {}
    if query:
        made["query"] = redact(query)
    if not body_read:
        made["body"] = "(not read: the request was answered without reading it)"
    elif body is not None:
        made["body"] = redact(body)
    text = _json(made)
    if len(text) > MAX_SUMMARY:
        text = _json({"truncated": len(text), **{k: _shape(v) for k, v in made.items()}})
    return text


def _shape(value: Any) -> Any:
    """The field names of an object, and nothing else: what a summary too large keeps."""
    return sorted(value)[:MAX_ITEMS] if isinstance(value, dict) else type(value).__name__


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=str)


def _text(value: str, longest: int = 200) -> str:
    """Text as the database takes it (no lone surrogate), and short."""
    return value[:longest].encode("utf-8", "backslashreplace").decode("utf-8")


def action_name(endpoint: str) -> str:
    """The short name of a route's action: station_api.create -> station.create."""
    group, _, name = endpoint.partition(".")
    return f"{group.removesuffix('_api')}.{name}"


class AuditedRequest(TrioRequest):
    """A request that knows whether its body was read: the audit log summarises the body the gateway read,
    and never waits for one it did not (a request refused before its body mattered is answered at once,
    whenever its body arrives)."""

    body_read = False

    async def get_data(self, *args: Any, **kwargs: Any) -> Any:
        data = await super().get_data(*args, **kwargs)
        self.body_read = True
        return data


async def _body() -> tuple[bool, Any]:
    """(whether the body was read, what it says): the body the handler read, or none."""
    if not getattr(request, "body_read", False):
        return False, None
    return True, parsed_body(request.content_type or "", await request.get_data())  # kept: no wait


async def _error_code(response: Response) -> str | None:
    if response.status_code < 400 or not response.is_json:
        return None
    try:
        answer = await response.get_json()
    except Exception:  # noqa: BLE001 - whatever the answer, the record is written
        return None
    if isinstance(answer, dict):
        code = answer.get("error", answer.get("code"))
        return None if code is None else _text(str(code), 64)
    return None


async def _logged_in(response: Response) -> tuple[str, int] | None:
    """(user name, tenant) of the account an answer says was logged in ({data: {userInfo}}), if any."""
    if response.status_code >= 300 or not response.is_json:
        return None
    answer = await response.get_json()
    data = answer.get("data") if isinstance(answer, dict) else None
    info = data.get("userInfo") if isinstance(data, dict) else None
    if isinstance(info, dict) and isinstance(info.get("username"), str) and type(info.get("tenantId")) is int:
        return info["username"], info["tenantId"]
    return None


async def entry(route: Route, response: Response) -> dict[str, Any] | None:
    """The record of the request being answered, or None when it is not one to record."""
    principal = getattr(g, "principal", None)
    user_tenant = getattr(principal, "tenant_id", PLATFORM) if principal is not None else None
    # The tenant acted in: the request's scope; a caller refused before it was entered (X-Tenant-Id naming
    # no tenant of its own) in its own tenant; an unauthenticated caller, the platform.
    entered = getattr(g, "scope", None)
    acting = entered.tenant_id if entered is not None else user_tenant if user_tenant is not None \
        else current_scope().tenant_id
    if route.changes(request.method):
        kind = "change"
    elif principal is not None and user_tenant != acting and request.method in ("GET", "HEAD") \
            and not route.endpoint.startswith(_OWN):
        kind = "read"  # a tenant above reads a tenant below (not the audit log: a look would change it)
    else:
        return None
    received, body = await _body()
    claimed = body.get("identifier", body.get("username")) if isinstance(body, dict) else None
    if principal is not None:
        who = principal.username
    elif (account := await _logged_in(response)) is not None:  # a login that succeeded: its account
        who, user_tenant = account
        acting = user_tenant
    elif request.path.startswith(CALLBACKS):  # the payment provider: /api/payment/callback/<provider>/...
        who = request.path[len(CALLBACKS):].split("/", 1)[0]
    elif request.path.startswith(CLOUDCHARGE):  # a charger reporting over signed HTTP: the charger it names
        charger = body.get("cpId") if isinstance(body, dict) else None
        who = f"cloudcharge:{charger}" if isinstance(charger, str) and charger else "cloudcharge"
    elif isinstance(claimed, str) and claimed:
        who = claimed  # the account a refused login names (a claim: user_tenant_id NULL)
    else:
        who = ANONYMOUS
    peer = getattr(g, "peer", None)
    return {"at": clock.iso(), "kind": kind, "username": _text(who, 100), "user_tenant_id": user_tenant,
            "tenant_id": acting, "address": peer.address if peer is not None else request.remote_addr,
            "method": request.method, "route": route.path, "action": action_name(route.endpoint),
            "target": _json({k: v[:MAX_TEXT] if isinstance(v, str) else v for k, v in (request.view_args or {}).items()}),
            "summary": summary(_pairs(request.args.items(multi=True)), body, received or not request.content_length),
            "status": response.status_code, "error": await _error_code(response)}


def install(app: Quart, groups: Iterable[Routes]) -> None:
    """Record every request to a declared route that changes something (and the cross-layer reads), once,
    as its answer leaves: queued with the next batch, never waited for."""
    declared = {route.endpoint: route for group in groups for route in group.declared if not route.websocket}

    @app.after_request
    async def audit(response: Response) -> Response:
        rule = request.url_rule
        if rule is None or request.routing_exception is not None or rule.endpoint not in declared:
            return response
        try:
            made = await entry(declared[rule.endpoint], response)
            if made is not None:
                _audit_log().record(made)
        except Exception:  # noqa: BLE001 - the answer is given whatever happens to its record
            log.exception("audit record failed", path=request.path, method=request.method)
        return response


def _audit_log() -> AuditLog:
    return services().chargers.store.audit


# ---- reading --------------------------------------------------------------------------------------

RECORD = record(
    "id:int at:time kind:str username:str userTenantId:int? tenantId:int address:str? method:str route:str "
    "action:str target:obj summary:obj status:int error:str?",
    "One audited request: who (username, its tenant; null when not authenticated), the tenant acted in, "
    "from which address, the route and its short action name, the target (the route's parameters), the "
    "summary (query and body, secrets replaced by \"[redacted]\"), the HTTP status and error code answered")
RANGE = [param("since"), param("until")]
KIND = {"type": "string", "enum": ["change", "read"]}


def record_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "at": row["at"], "kind": row["kind"], "username": row["username"],
            "userTenantId": row["user_tenant_id"], "tenantId": row["tenant_id"], "address": row["address"],
            "method": row["method"], "route": row["route"], "action": row["action"],
            "target": json.loads(row["target"]), "summary": json.loads(row["summary"]), "status": row["status"],
            "error": row["error"]}


@routes.route("/page", role=ADMIN, get=op(
    "audit", "Audit records, newest first, a page at a time",
    enveloped(record("total:int page:int size:int", records=list_of(RECORD))), errors=("400",),
    query=PAGING + RANGE + [
        query("username", "only this user's records (exactly)", {"type": "string"}),
        query("tenantId", "only the records of requests acting in this tenant", {"type": "integer"}),
        query("action", "only this action (GET .../actions lists them)", {"type": "string"}),
        query("target", "only requests to this target: a route parameter's value, exactly (a charger's "
                        "id, an order number, a station id)", {"type": "string"}),
        query("kind", "change (every request that changes something) or read (a tenant above reading "
                      "a tenant below)", KIND)],
    description="Admins only; a tenant's admins see the records of requests acting in their tenant and the "
                "tenants below it. Records cannot be changed or deleted; audit.retention_days bounds how "
                "long they are kept."))
async def audit_page() -> Any:
    number, size = params.paging()
    kind = request.args.get("kind") or None
    if kind not in (None, "change", "read"):
        raise params.bad(f"kind must be change or read, not {kind!r}")
    result = await _audit_log().page(request.args.get("username") or None, params.integer("tenantId"),
                                     request.args.get("action") or None, request.args.get("target") or None,
                                     kind, params.time("since"), params.time("until"), number, size)
    return evcs({**result, "records": [record_view(r) for r in result["records"]]})


@routes.route("/actions", role=ADMIN, get=op(
    "audit", "The actions recorded, each with its number of records (most first)",
    enveloped(list_of(record("action:str count:int"))), errors=("400",), query=RANGE))
async def audit_actions() -> Any:
    return evcs(await _audit_log().actions(params.time("since"), params.time("until")))


@routes.route("/statistics/cross-layer", role=ADMIN, get=op(
    "audit", "How often users of one tenant read or changed the data of another (a tenant below theirs)",
    enveloped(list_of(record("userTenantId:int tenantId:int reads:int changes:int total:int users:int "
                             "lastAt:time"))), errors=("400",), query=RANGE,
    description="One row per (the users' tenant, the tenant acted in) that differ, most requests first: "
                "reads and changes counted apart, users: how many different users."))
async def audit_cross_layer() -> Any:
    rows = await _audit_log().cross_layer(params.time("since"), params.time("until"))
    return evcs([{"userTenantId": r["user_tenant_id"], "tenantId": r["tenant_id"], "reads": r["reads"],
                  "changes": r["changes"], "total": r["total"], "users": r["users"], "lastAt": r["last_at"]}
                 for r in rows])
