"""/api/tenant: the tenant tree and its quotas (docs/api.md section 7), in the EVCS envelope.

A caller sees and manages its tenant and those below it (the store answers a tenant outside that as one
that does not exist: 404). Reading needs the viewer role, changing needs admin: an admin of a tenant creates
its children and manages the tenants below it; a tenant's enabled state, expiry, type and quotas are set
from above it, never by its own users.
"""

from __future__ import annotations

import re
from typing import Any

from quart import request

from .. import clock
from ..store.scope import current as current_scope
from ..store.tenants import QUOTAS, TYPES, Tenants
from . import params
from .errors import ApiError, evcs
from .routes import ADMIN, VIEWER, Routes
from .schemas import PAGING, enveloped, list_of, op, query, record
from .services import services

routes = Routes("tenant_api", __name__, "/api/tenant")

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,31}")
# Body field -> (column, longest text); a text may be null but for tenantName.
_TEXTS = {"tenantName": ("name", 100), "contactPerson": ("contact_name", 100), "contactPhone": ("contact_phone", 40),
          "contactEmail": ("contact_email", 200), "address": ("address", 200)}
_LIMITS = {"maxUsers": "max_users", "maxStations": "max_stations", "maxChargers": "max_chargers",
           "maxChildren": "max_children"}
_BODY = ("tenantCode", "parentId", "tenantType", "expireTime", "status", *_TEXTS, *_LIMITS)
_ID = "<int(max=9223372036854775807):tenant_id>"

TENANT = record(
    "id:int parentId:int? tenantCode:str tenantName:str tenantType:str contactPerson:str? contactPhone:str? "
    "contactEmail:str? address:str? expireTime:time? status:int maxUsers:int? maxStations:int? maxChargers:int? "
    "maxChildren:int? createdAt:time updatedAt:time",
    "A tenant: tenantType platform (the tenant 1 only), operator or partner; status 1 enabled, 0 disabled (its "
    "users cannot sign in; its chargers keep being answered); expireTime: after it, as if disabled. Quotas: null "
    "is no limit; users, stations and chargers count over the tenant and every tenant below it, maxChildren its "
    "direct children.")
TREE = {"allOf": [TENANT, {"type": "object", "properties": {"children": {"type": "array", "items": {}}},
                           "required": ["children"]}], "description": "A tenant with its children, nested"}
STATUS = {"type": "integer", "enum": [0, 1]}
LIMIT = {"type": ["integer", "null"], "minimum": 0}
TEXT = {"type": ["string", "null"]}
BODY = {"type": "object", "additionalProperties": False, "properties": {
    "tenantCode": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$"},
    "parentId": {"type": "integer"},
    "tenantName": {"type": "string", "minLength": 1, "maxLength": 100},
    "tenantType": {"type": "string", "enum": ["operator", "partner", "platform"]},
    "contactPerson": TEXT, "contactPhone": TEXT, "contactEmail": TEXT, "address": TEXT,
    "expireTime": {"type": ["string", "null"], "format": "date-time"},
    "status": STATUS, **{name: LIMIT for name in _LIMITS}}}
QUOTA_BODY = {"type": "object", "additionalProperties": False, "properties": {name: LIMIT for name in _LIMITS}}
USAGE = record(
    "tenantId:int tenantCode:str maxUsers:int? usedUsers:int maxStations:int? usedStations:int maxChargers:int? "
    "usedChargers:int maxChildren:int? usedChildren:int",
    "used*: users, stations and registry chargers of the tenant and every tenant below it; its direct children")
CHECK = record("tenantId:int kind:str allowed:bool message:str?",
               "allowed false: one more would exceed a quota (message says which)")


def _tenants() -> Tenants:
    return services().chargers.store.tenants


def tenant_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "parentId": row["parent_id"], "tenantCode": row["code"], "tenantName": row["name"],
            "tenantType": row["type"], "contactPerson": row["contact_name"], "contactPhone": row["contact_phone"],
            "contactEmail": row["contact_email"], "address": row["address"], "expireTime": row["expires_at"],
            "status": row["enabled"], **{name: row[column] for name, column in _LIMITS.items()},
            "createdAt": row["created_at"], "updatedAt": row["updated_at"]}


def _tree_view(node: dict[str, Any]) -> dict[str, Any]:
    return {**tenant_view(node), "children": [_tree_view(child) for child in node["children"]]}


def _not_found(tenant_id: int) -> ApiError:
    return ApiError(404, "not_found", f"tenant {tenant_id} is not known")


def _check_code(code: Any) -> str:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise params.bad("tenantCode must be 2 to 32 characters: letters, digits, _ or -, starting with a letter "
                         "or digit (users log in as name@tenantCode)")
    return code


def _status(value: Any) -> int:
    if type(value) is not int or value not in (0, 1):
        raise params.bad(f"status must be 0 (disabled) or 1 (enabled), not {value!r}")
    return value


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    fields = {}
    for name, column in _LIMITS.items():
        if name in body:
            value = body[name]
            if value is not None and (type(value) is not int or not 0 <= value < 2**31):
                raise params.bad(f"{name} must be a whole number from 0, or null for no limit, not {value!r}")
            fields[column] = value
    return fields


def _fields(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a tenant body sets (current None: a new tenant, whose code and name are required), checked."""
    params.only(body, _BODY)
    fields: dict[str, Any] = {}
    if current is None:
        fields["code"] = _check_code(body.get("tenantCode"))
        if body.get("tenantName") is None:
            raise params.bad("tenantName is required")
    else:
        if "tenantCode" in body and str(body["tenantCode"]).lower() != current["code"].lower():
            raise params.bad("tenantCode cannot change: the tenant's users log in with it")
        if "parentId" in body and body["parentId"] != current["parent_id"]:
            raise params.bad("parentId cannot change: a tenant stays where it was created")
    for name, (column, longest) in _TEXTS.items():
        if name not in body:
            continue
        value = body[name]
        if value is None and name != "tenantName":
            fields[column] = None
        elif not isinstance(value, str) or not value.strip() or len(value) > longest:
            raise params.bad(f"{name} must be a string of 1 to {longest} characters"
                             + ("" if name == "tenantName" else ", or null"))
        else:
            fields[column] = value
    if "tenantType" in body:
        if body["tenantType"] not in TYPES:
            raise params.bad(f"tenantType must be one of {', '.join(TYPES)}, not {body['tenantType']!r}")
        fields["type"] = body["tenantType"]
    elif current is None:
        fields["type"] = "operator"
    if current is None and fields["type"] == "platform":
        raise params.bad("tenantType platform is the platform's own: a new tenant is an operator or a partner")
    if "expireTime" in body:
        value = body["expireTime"]
        moment = clock.parse(value) if isinstance(value, str) else None
        if value is not None and moment is None:
            raise params.bad(f"expireTime must be an ISO 8601 time such as 2027-01-01T00:00:00Z, or null, not "
                             f"{value!r}")
        fields["expires_at"] = None if moment is None else clock.iso(moment)
    if "status" in body:
        fields["enabled"] = _status(body["status"])
    fields.update(_limits(body))
    return fields


def _outcome(tenant_id: int, result: tuple[str, Any]) -> Any:
    """The answer to a change: the tenant, or the error the store's outcome says."""
    kind, value = result
    if kind == "missing":
        raise _not_found(tenant_id)
    if kind == "forbidden":
        raise ApiError(403, "forbidden", value)
    if kind == "taken":
        raise ApiError(409, "conflict", f"tenant code {value!r} is taken already", tenantCode=value)
    if kind == "refused":
        raise ApiError(409, "conflict", value)
    return value


async def _tenant(tenant_id: int) -> dict[str, Any]:
    row = await _tenants().get(tenant_id)
    if row is None:
        raise _not_found(tenant_id)
    return row


# ---- reading ------------------------------------------------------------------------------

FILTERS = [query("parentId", "only the direct children of this tenant", {"type": "integer"}),
           query("tenantType", "only tenants of this type", {"type": "string", "enum": list(TYPES)}),
           query("status", "only enabled (1) or disabled (0) tenants", STATUS),
           query("q", "only tenants whose code or name holds this text", {"type": "string"})]


def _filters() -> tuple[int | None, str | None, int | None, str | None]:
    type_ = request.args.get("tenantType") or None
    if type_ is not None and type_ not in TYPES:
        raise params.bad(f"tenantType must be one of {', '.join(TYPES)}, not {type_!r}")
    status = params.integer("status")
    return (params.integer("parentId"), type_, None if status is None else _status(status),
            request.args.get("q") or None)


@routes.route("/page", role=VIEWER, get=op(
    "tenants", "The tenants the caller sees (its own and those below it), a page at a time, by id",
    enveloped(record("total:int page:int size:int", records=list_of(TENANT))), errors=("400",),
    query=PAGING + FILTERS))
async def tenants_page() -> Any:
    number, size = params.paging()
    result = await _tenants().page(*_filters(), number, size)
    return evcs({**result, "records": [tenant_view(t) for t in result["records"]]})


@routes.route("/list", role=VIEWER, get=op(
    "tenants", "Every tenant the caller sees (its own and those below it), by id", enveloped(list_of(TENANT)),
    errors=("400",), query=FILTERS))
async def tenants_list() -> Any:
    return evcs([tenant_view(t) for t in await _tenants().list(*_filters())])


@routes.route("/tree", role=VIEWER, get=op(
    "tenants", "The caller's tenant (the one it acts as) with every tenant below it, nested", enveloped(TREE)))
async def tree() -> Any:
    return evcs(_tree_view(await _tenants().tree()))


@routes.route("/check-code", role=VIEWER, get=op(
    "tenants", "Whether a tenant code is free (codes are unique over the gateway: users log in as name@code)",
    enveloped(record("tenantCode:str available:bool")), errors=("400",),
    query=[query("tenantCode", "the code", {"type": "string"}, required=True),
           query("excludeId", "a tenant whose own code this may be", {"type": "integer"})]))
async def check_code() -> Any:
    code = _check_code(request.args.get("tenantCode"))
    taken = await _tenants().code_taken(code, params.integer("excludeId"))
    return evcs({"tenantCode": code, "available": not taken})


@routes.route(f"/{_ID}", role=VIEWER, get=op("tenants", "One tenant", enveloped(TENANT), errors=("404",)))
async def tenant(tenant_id: int) -> Any:
    return evcs(tenant_view(await _tenant(tenant_id)))


@routes.route("/<int(max=9223372036854775807):parent_id>/children", role=VIEWER, get=op(
    "tenants", "The direct children of a tenant", enveloped(list_of(TENANT)), errors=("404",)))
async def children(parent_id: int) -> Any:
    rows = await _tenants().children(parent_id)
    if rows is None:
        raise _not_found(parent_id)
    return evcs([tenant_view(t) for t in rows])


# ---- changing -----------------------------------------------------------------------------

@routes.route("", role=ADMIN, post=op(
    "tenants", "Create a tenant below the caller's (or below parentId, a tenant the caller sees)",
    enveloped(TENANT), status="201", errors=("400", "404", "409"), body={**BODY, "required": ["tenantCode", "tenantName"]},
    description="409: the code is taken, or the parent's maxChildren is reached. tenantType defaults to operator."))
async def create() -> Any:
    body = await params.json_object()
    fields = _fields(body, None)
    parent_id = body.get("parentId", current_scope().tenant_id)
    if type(parent_id) is not int or not 0 < parent_id < 2**63:
        raise params.bad(f"parentId must be a tenant id, not {parent_id!r}")
    row = _outcome(parent_id, await _tenants().create(parent_id, fields, clock.iso()))
    return evcs(tenant_view(row), "tenant created", 201)


@routes.route(f"/{_ID}", role=ADMIN, put=op(
    "tenants", "Change the given fields of a tenant", enveloped(TENANT), errors=("400", "404"), body=BODY,
    description="tenantCode and parentId cannot change. 403: status, expireTime, tenantType and the quotas of the "
                "caller's own tenant are set from above it."))
async def update(tenant_id: int) -> Any:
    fields = _fields(await params.json_object(), await _tenant(tenant_id))
    return evcs(tenant_view(_outcome(tenant_id, await _tenants().update(tenant_id, fields, clock.iso()))))


@routes.route(f"/{_ID}/status", role=ADMIN, put=op(
    "tenants", "Enable (1) or disable (0) a tenant: a disabled tenant's users (and those of the tenants below it) "
               "cannot sign in or use their tokens; its chargers keep being answered",
    enveloped(TENANT), errors=("400", "404"),
    query=[query("status", "1 enabled, 0 disabled (or the body {status})", STATUS)],
    body={"type": "object", "properties": {"status": STATUS}}, body_required=False))
async def set_status(tenant_id: int) -> Any:
    status = params.integer("status")
    if status is None:
        body = await params.json_object()
        if "status" not in body:
            raise params.bad("status is required (?status=0|1, or the body {\"status\": 0|1})")
        status = body["status"]
    fields = {"enabled": _status(status)}
    return evcs(tenant_view(_outcome(tenant_id, await _tenants().update(tenant_id, fields, clock.iso()))))


@routes.route(f"/{_ID}", role=ADMIN, delete=op(
    "tenants", "Delete a tenant that has no users, stations, chargers or child tenants", enveloped({"type": "null"}),
    errors=("404", "409"), description="409 says what it still has. The platform, and the caller's own tenant, "
                                       "cannot be deleted (403)."))
async def delete(tenant_id: int) -> Any:
    _outcome(tenant_id, await _tenants().delete(tenant_id))
    return evcs(None, "tenant deleted")


# ---- quotas -------------------------------------------------------------------------------

@routes.route(f"/quota/usage/{_ID}", role=VIEWER, get=op(
    "tenants", "A tenant's quotas and how much of each it uses", enveloped(USAGE), errors=("404",)))
async def quota_usage(tenant_id: int) -> Any:
    usage = await _tenants().usage(tenant_id)
    if usage is None:
        raise _not_found(tenant_id)
    tenant = usage["tenant"]
    out: dict[str, Any] = {"tenantId": tenant["id"], "tenantCode": tenant["code"]}
    for kind in QUOTAS:
        out[f"max{kind.title()}"] = usage[kind]["limit"]
        out[f"used{kind.title()}"] = usage[kind]["used"]
    return evcs(out)


@routes.route(f"/quota/{_ID}", role=ADMIN, put=op(
    "tenants", "Set a tenant's quotas (those given; null: no limit)", enveloped(TENANT), errors=("400", "404"),
    body=QUOTA_BODY, description="403 for the caller's own tenant: quotas are set from above. A quota below what "
                                 "is used already refuses only what would be added."))
async def set_quota(tenant_id: int) -> Any:
    body = await params.json_object()
    unknown = sorted(set(body) - set(_LIMITS))
    if unknown or not body:
        raise params.bad(f"the body sets one or more of {', '.join(_LIMITS)} (a whole number, or null for no "
                         "limit)" + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    fields = _limits(body)
    return evcs(tenant_view(_outcome(tenant_id, await _tenants().update(tenant_id, fields, clock.iso()))))


def _quota_check(kind: str, path: str, what: str, name: str = "tenant_id") -> None:
    async def check(**ids: int) -> Any:
        tenant_id = ids[name]
        found, refusal = await _tenants().check(tenant_id, kind)
        if not found:
            raise _not_found(tenant_id)
        return evcs({"tenantId": tenant_id, "kind": kind, "allowed": refusal is None, "message": refusal})

    check.__name__ = f"check_{kind}"
    routes.route(f"/quota/check/{path}/<int(max=9223372036854775807):{name}>", role=VIEWER, get=op(
        "tenants", f"Whether {what} would fit the quotas (the tenant's, and for users, stations and chargers those "
                   "of the tenants above it)", enveloped(CHECK), errors=("404",)))(check)


_quota_check("children", "create-child", "one more child tenant of this parent", "parent_id")
_quota_check("stations", "add-station", "one more station in this tenant")
_quota_check("chargers", "add-charger", "one more charger in this tenant")
_quota_check("users", "add-user", "one more user in this tenant")
