"""/api/charger in the EVCS envelope: the charger registry, each charger's live state, start and stop by
connector, reset, taking a charger out of service; the offline and fault lists and statistics."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

from quart import Response, jsonify, request

from .. import clock
from ..billing.charging import StartRequest, start_charging, stop_charging
from ..chargepoint import evcs_status as evcs
from ..chargepoint.errors import CommandError
from ..chargepoint.handshake import check_id
from ..store.store import Store
from . import params
from .billing_api import _SESSION_ID, _detail, _remote
from .errors import ApiError, evcs as envelope
from .routes import OPERATOR, VIEWER, Routes
from .schemas import ORDER_DETAIL, PAGING, enveloped, list_of, op, param, query, record
from .services import services

routes = Routes("charger_api", __name__, "/api/charger")

BUSINESS = 2003  # the EVCS business error: the charger cannot take the command now
OPERATOR_STATUSES = ("in_service", "maintenance", "retired")
_FIELDS = ("chargePointId", "chargerName", "stationId", "connectors", "tenantId")

# ---- OpenAPI shapes --------------------------------------------------------------------------

CONNECTOR = record("connectorNo:int type:str? powerKw:num? ocppStatus:str? errorCode:str? info:str? "
                   "vendorErrorCode:str? statusCode:int statusName:str updatedAt:time?")
CHARGER = record(
    "chargerId:int chargePointId:str tenantId:int stationId:int? stationName:str? chargerName:str? enabled:bool "
    "operatorStatus:str adopted:bool online:bool onlineSince:time? offlineSince:time? lastSeen:time? "
    "registrationStatus:str? statusCode:int statusName:str createdAt:time updatedAt:time",
    "statusCode: 0 offline, 1 idle, 2 charging, 3 fault", connectors=list_of(CONNECTOR),
    device=record("vendor:str? model:str? serialNumber:str? firmwareVersion:str?"))
COMMANDED = record("", **CHARGER["properties"], changeAvailability={
    "type": ["object", "null"], "description": "ChangeAvailability (connector 0) sent to the connected charger, "
    "and its answer (status, or the failure: NotConnected, CallTimeout, CallErrorReceived); null when offline",
    "properties": {"requestId": {"type": ["string", "null"]}, "status": {"type": "string"}}})
CONNECTORS_BODY = {"type": "array", "items": {"type": "object", "required": ["connectorNo"], "properties": {
    "connectorNo": {"type": "integer", "minimum": 1}, "type": {"type": ["string", "null"], "maxLength": 32},
    "powerKw": {"type": ["number", "null"], "exclusiveMinimum": 0}}}}
BODY = {"type": "object", "properties": {
    "chargePointId": {"type": "string"}, "chargerName": {"type": ["string", "null"], "maxLength": 100},
    "stationId": {"type": ["integer", "null"]}, "connectors": CONNECTORS_BODY,
    "tenantId": {"type": "integer", "description": "the tenant the charger belongs to: the caller's own or one "
                                                   "below it (default: the acting tenant)"}}}
PAGE = enveloped(record("total:int page:int size:int", records=list_of(CHARGER)))
FILTERS = PAGING + [
    query("stationId", "only chargers placed at this station", {"type": "integer"}),
    query("statusCode", "only chargers in this status: 0 offline, 1 idle, 2 charging, 3 fault",
          {"type": "integer", "enum": [0, 1, 2, 3]}),
    query("chargePointId", "only this charge point id", {"type": "string"}),
    query("q", "in the charge point id or name", {"type": "string"}),
    query("enabled", "only enabled (true) or disabled (false) chargers", {"type": "boolean"})]
BUSINESS_ERROR = {"description": "2003: the charger or connector is offline, charging, faulted, disabled or not in "
                  "service (data.currentStatus its statusCode)", "content": {"application/json": {"schema": record(
                      "code:int message:str timestamp:time path:str",
                      data=record("chargerId:int currentStatus:int", orderId={"type": "integer"}))}}}


def _with_business_error(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["409"] = BUSINESS_ERROR
    return operation


# ---- helpers ---------------------------------------------------------------------------------

def _store() -> Store:
    return services().chargers.store


def charger_view(cp: dict[str, Any]) -> dict[str, Any]:
    online = bool(cp["online"])
    return {
        "chargerId": cp["id"], "chargePointId": cp["charge_point_id"], "tenantId": cp["tenant_id"],
        "stationId": cp["station_id"], "stationName": cp["station_name"], "chargerName": cp["name"],
        "connectors": [{**params.camel(c), "statusName": evcs.NAMES[c["status_code"]]} for c in cp["connectors"]],
        "enabled": bool(cp["enabled"]), "operatorStatus": cp["operator_status"], "adopted": bool(cp["adopted"]),
        "online": online, "onlineSince": cp["connected_at"] if online else None,
        "offlineSince": None if online else cp["disconnected_at"], "lastSeen": cp["last_seen"],
        "registrationStatus": cp["registration_status"],
        "statusCode": cp["status_code"], "statusName": evcs.NAMES[cp["status_code"]],
        "device": {"vendor": cp["vendor"], "model": cp["model"],
                   "serialNumber": cp["serial_number"] or cp["charge_box_serial_number"],
                   "firmwareVersion": cp["firmware_version"]},
        "createdAt": cp["created_at"], "updatedAt": cp["updated_at"]}


async def _charger(charger_id: int) -> dict[str, Any]:
    cp = await _store().registry.get(charger_id) if charger_id < 2**63 else None
    if cp is None:
        raise ApiError(404, "not_found", f"charger {charger_id} is not registered")
    return cp


def _name(body: dict[str, Any]) -> str | None:
    name = body.get("chargerName")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 100):
        raise params.bad("chargerName must be a string of 1 to 100 characters")
    return name


def _station(body: dict[str, Any]) -> int | None:
    station = body.get("stationId")
    if station is not None and (type(station) is not int or not 0 < station < 2**63):
        raise params.bad("stationId must be a station's id (a positive integer)")
    return station


def _tenant(body: dict[str, Any]) -> int | None:
    tenant = body.get("tenantId")
    if tenant is not None and (type(tenant) is not int or not 0 < tenant < 2**63):
        raise params.bad("tenantId must be a tenant's id (a positive integer)")
    return tenant


def _placement_refused(outcome: str, station_id: int | None, tenant_id: int | None, detail: Any = None) -> ApiError:
    """The answer to a registry change the store refused (registry._placement, the tenant's quota)."""
    if outcome == "no_tenant":
        return ApiError(404, "not_found", f"tenant {tenant_id} is not known")
    if outcome == "other_tenant":
        return params.bad(f"station {station_id} belongs to another tenant than the charger")
    if outcome == "quota":
        return ApiError(409, "quota_exceeded", detail)
    return _no_station(station_id)


def _connectors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The declared connectors: [{connectorNo, type, powerKw}], connector numbers 1 and up, each once."""
    given = body.get("connectors", [])
    if not isinstance(given, list):
        raise params.bad("connectors must be a list of {connectorNo, type?, powerKw?}")
    out: dict[int, dict[str, Any]] = {}
    for item in given:
        if not isinstance(item, dict):
            raise params.bad("connectors must be a list of {connectorNo, type?, powerKw?}")
        params.only(item, ["connectorNo", "type", "powerKw"])
        no, kind, power = item.get("connectorNo"), item.get("type"), item.get("powerKw")
        if type(no) is not int or not 0 < no < 2**31:
            raise params.bad("connectorNo must be a positive integer (connector 0 is the charger as a whole)")
        if no in out:
            raise params.bad(f"connector {no} is given twice")
        if kind is not None and (not isinstance(kind, str) or not 0 < len(kind) <= 32):
            raise params.bad("a connector's type must be a string of 1 to 32 characters, e.g. CCS2")
        if power is not None and (type(power) not in (int, float) or not math.isfinite(power) or not 0 < power <= 10000):
            raise params.bad("powerKw must be a number of kilowatts above 0 and at most 10000")
        out[no] = {"connectorNo": no, "type": kind, "powerKw": power}
    return [out[no] for no in sorted(out)]


def _no_station(station_id: int | None) -> ApiError:
    return ApiError(404, "not_found", f"station {station_id} is not known")


def _business(cp: dict[str, Any], message: str, current: int, order_id: int | None = None) -> Response:
    data: dict[str, Any] = {"chargerId": cp["id"], "currentStatus": current}
    if order_id is not None:
        data["orderId"] = order_id
    response = jsonify({"code": BUSINESS, "message": message, "data": data, "timestamp": clock.iso(),
                        "path": request.path})
    response.status_code = 409
    return response


# ---- the registry ----------------------------------------------------------------------------

def _list_op(summary: str) -> dict[str, Any]:
    return op("registry", summary, PAGE, errors=("400",), query=FILTERS)


async def _list() -> Any:
    page, size = params.paging()
    status = params.integer("statusCode", low=0, high=3)
    result = await _store().registry.page(
        params.integer("stationId", low=1), status, request.args.get("chargePointId") or None,
        request.args.get("q") or None, params.flag("enabled", None), page, size)
    return envelope({**result, "records": [charger_view(cp) for cp in result["records"]]})


@routes.route("", role=VIEWER, get=_list_op("Registered chargers with their live state, by chargerId"))
async def chargers() -> Any:
    return await _list()


@routes.route("/page", role=VIEWER, get=_list_op("The same as GET /api/charger"))
async def chargers_page() -> Any:
    return await _list()


@routes.route("/list", role=VIEWER, get=_list_op("The same as GET /api/charger"))
async def chargers_list() -> Any:
    return await _list()


@routes.route("", role=OPERATOR, endpoint="register", post=op(
    "registry", "Register a charger (before it first connects)", enveloped(CHARGER), errors=("400", "404", "409"),
    status="201", body={**BODY, "required": ["chargePointId"]},
    description="chargePointId follows the WebSocket handshake's rules; one registered already, or one that "
                "looks the same (case, width, accents), is a 409 naming it (not naming a charger of a tenant "
                "the caller does not see). The charger belongs to tenantId (the acting tenant by default; 404 "
                "for a tenant outside the caller's), within the tenant's quota of chargers (409 "
                "quota_exceeded); a station given must be of the same tenant (400)."))
async def register() -> Any:
    body = await params.json_object()
    params.only(body, _FIELDS)
    raw = body.get("chargePointId")
    if not isinstance(raw, str):
        raise params.bad("chargePointId is required: the id the charger connects with")
    try:
        cp_id = check_id(raw)
    except ValueError as bad:
        raise params.bad(str(bad)) from None
    name, station, connectors, tenant = _name(body), _station(body), _connectors(body), _tenant(body)
    outcome, found = await _store().registry.create(cp_id, name, station, connectors, clock.iso(), tenant)
    if outcome == "exists" and found is None:  # a charger of a tenant the caller does not see: not named
        raise ApiError(409, "conflict", f"charge point id {cp_id!r} is in use: choose another id")
    if outcome == "exists":
        raise ApiError(409, "conflict", f"charge point {found!r} is registered already" if found == cp_id else
                       f"charge point id {cp_id!r} looks like the registered charger {found!r}", existing=found)
    if outcome != "created":
        raise _placement_refused(outcome, station, tenant, found)
    return envelope(charger_view(found), "charger registered", 201)


async def _update(charger_id: int, body: dict[str, Any]) -> Any:
    params.only(body, ["chargerId", *_FIELDS])
    cp = await _charger(charger_id)
    if "chargePointId" in body and body["chargePointId"] != cp["charge_point_id"]:
        raise params.bad("chargePointId cannot be changed: register the new id and delete this charger")
    changes: dict[str, Any] = {}
    if "chargerName" in body:
        changes["name"] = _name(body)
    if "stationId" in body:
        changes["station_id"] = _station(body)
    if "connectors" in body:
        changes["connectors"] = _connectors(body)
    if "tenantId" in body:
        changes["tenant_id"] = _tenant(body)
        if changes["tenant_id"] is None:
            raise params.bad("tenantId cannot be null: a charger belongs to a tenant")
    outcome, updated = await _store().registry.update(charger_id, changes, clock.iso())
    if outcome == "not_found":  # deleted meanwhile
        raise ApiError(404, "not_found", f"charger {charger_id} is not registered")
    if outcome != "updated":
        raise _placement_refused(outcome, changes.get("station_id", cp["station_id"]), changes.get("tenant_id"),
                                 updated)
    return envelope(charger_view(updated), "charger updated")


@routes.route("", role=OPERATOR, endpoint="update", put=op(
    "registry", "Change a charger's name, station, connectors or tenant (chargerId in the body)",
    enveloped(CHARGER), errors=("400", "404", "409"), body={**BODY, "required": ["chargerId"],
                                 "properties": {"chargerId": {"type": "integer"}, **BODY["properties"]}}))
async def update() -> Any:
    body = await params.json_object()
    charger_id = body.get("chargerId")
    if type(charger_id) is not int or charger_id < 1:
        raise params.bad("chargerId is required: the registered charger's id")
    return await _update(charger_id, body)


@routes.route("/<int:charger_id>", role=OPERATOR, put=op(
    "registry", "Change a charger's name, station, connectors or tenant", enveloped(CHARGER),
    errors=("400", "404", "409"), body=BODY,
    description="tenantId moves the charger, and its history, to another tenant of the caller's scope (404 "
                "outside it; 409 quota_exceeded when that tenant has no place for it); it leaves its station "
                "unless stationId names one of the new tenant."))
async def update_one(charger_id: int) -> Any:
    body = await params.json_object()
    if "chargerId" in body and body["chargerId"] != charger_id:
        raise params.bad("chargerId in the body is not the one in the path")
    return await _update(charger_id, body)


@routes.route("/<int:charger_id>", role=VIEWER, get=op(
    "registry", "One charger with its live state", enveloped(CHARGER), errors=("404",)))
async def charger(charger_id: int) -> Any:
    return envelope(charger_view(await _charger(charger_id)))


@routes.route("/<int:charger_id>", role=OPERATOR, delete=op(
    "registry", "Remove a charger from the registry; its history stays, and a connected charger stays "
                "connected", enveloped({"type": "null"}), errors=("404",)))
async def delete(charger_id: int) -> Any:
    await _charger(charger_id)
    await _store().registry.delete(charger_id)
    return envelope(None, "charger deleted")


# ---- lists and statistics --------------------------------------------------------------------

@routes.route("/offline", role=VIEWER, get=op(
    "registry", "Registered chargers not connected now", enveloped(list_of(record(
        "", **CHARGER["properties"], offlineSeconds={"type": ["number", "null"],
                                                     "description": "since the charger was last seen; null: never"})))))
async def offline() -> Any:
    now = clock.now()
    out = []
    for cp in await _store().registry.offline():
        since = clock.parse(cp["disconnected_at"] or cp["last_seen"] or "")
        out.append({**charger_view(cp), "offlineSeconds": round((now - since).total_seconds(), 3) if since else None})
    return envelope(out)


@routes.route("/fault", role=VIEWER, get=op(
    "registry", "One row per faulted connector (0: the charger as a whole) of a connected charger",
    enveloped(list_of(record("chargerId:int chargePointId:str stationId:int? connectorNo:int ocppStatus:str "
                             "errorCode:str? info:str? vendorErrorCode:str? since:time?")))))
async def fault() -> Any:
    return envelope([params.camel(f) for f in await _store().registry.faults()])


@routes.route("/statistics", role=VIEWER, get=op(
    "registry", "Chargers by status and station now; sessions, energy and utilisation over a period",
    enveloped(record(
        "total:int sessions:int energyWh:int utilisation:num since:time until:time",
        byStatus=record("offline:int idle:int charging:int fault:int"),
        byStation=list_of(record("stationId:int? stationName:str? total:int online:int")))),
    errors=("400",), query=[param("since"), param("until"),
                            query("stationId", "only chargers placed at this station", {"type": "integer"})],
    description="Period: until defaults to now, since to 24 hours before until. sessions: transactions that "
                "started in the period (gateway clock); energyWh their metered energy. utilisation: seconds "
                "charging (any connector in Charging, SuspendedEV, SuspendedEVSE, Finishing or Preparing) over "
                "seconds online (the frame log's connects and disconnects), 0 when never online."))
async def statistics() -> Any:
    until = params.time("until") or clock.iso()
    since = params.time("since") or clock.iso(clock.parse(until) - timedelta(days=1))
    if since >= until:
        raise params.bad("since must be before until")
    stats = await _store().registry.statistics(since, until, params.integer("stationId", low=1))
    return envelope({"total": stats["total"], "byStatus": stats["by_status"],
                     "byStation": [params.camel(s) for s in stats["by_station"]], "sessions": stats["sessions"],
                     "energyWh": stats["energy_wh"], "utilisation": round(stats["utilisation"], 6),
                     "since": since, "until": until})


# ---- commands --------------------------------------------------------------------------------

def _connector(cp: dict[str, Any], connector_no: int) -> dict[str, Any]:
    for c in cp["connectors"]:
        if c["connector_no"] == connector_no:
            return c
    raise ApiError(404, "not_found", f"charger {cp['id']} has no connector {connector_no} (neither declared nor "
                                     "reported)")


async def _order_of_connector(cp: dict[str, Any], connector_no: int) -> tuple[int | None, dict[str, Any] | None]:
    """The connector's open transaction, and its order if billing is on and has one."""
    tx = await _store().registry.open_transaction(cp["charge_point_id"], connector_no)
    billing = services().billing
    if tx is None or billing is None:
        return tx, None
    return tx, await billing.orders.store.orders.find("transaction_id", tx)


def _billing_off() -> ApiError:
    return ApiError(404, "not_found", "billing is switched off (billing.enabled = false)")


@routes.route("/<int:charger_id>/connectors/<int:connector_no>/start", role=OPERATOR, post=_with_business_error(op(
    "registry", "Open an order and start charging on this connector, as POST /api/order/start does",
    enveloped(record("", **ORDER_DETAIL["properties"], remoteStart=record("requestId:str status:str"))),
    errors=("400", "404c"), status="201", query=[param("timeoutSeconds")],
    description="Refused with 2003 (HTTP 409), before anything is sent, when the charger or connector is offline, "
                "charging, faulted, disabled or not in service. Without a sessionId one is made: "
                "chg-{chargerId}-{connectorNo}-{uuid}.",
    body={"type": "object", "required": ["idTag"], "properties": {
        "idTag": {"type": "string", "minLength": 1, "maxLength": 20},
        "sessionId": {"type": "string", "minLength": 1, "maxLength": 64}}})))
async def start(charger_id: int, connector_no: int) -> Any:
    timeout = params.timeout()
    billing = services().billing
    if billing is None:
        raise _billing_off()
    body = await params.json_object()
    params.only(body, ["idTag", "sessionId"])
    id_tag, session_id = body.get("idTag"), body.get("sessionId")
    if not isinstance(id_tag, str) or not 0 < len(id_tag) <= 20:
        raise params.bad("idTag is required: a string of 1 to 20 characters")
    if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id)
                                   or session_id.startswith("tx-")):  # /api/order/start's rule
        raise params.bad("sessionId must be 1 to 64 printable ASCII characters without spaces, not starting with tx-")
    cp = await _charger(charger_id)
    connector = _connector(cp, connector_no)
    if not cp["enabled"] or cp["operator_status"] != "in_service":
        why = "disabled" if not cp["enabled"] else f"{cp['operator_status'].replace('_', ' ')}, not in service"
        return _business(cp, f"charger {charger_id} is {why}", cp["status_code"])
    if connector["status_code"] == evcs.OFFLINE or cp["charge_point_id"] not in services().chargers.registry:
        return _business(cp, f"charger {charger_id} is offline", evcs.OFFLINE)
    if connector["status_code"] == evcs.FAULT or cp["status_code"] == evcs.FAULT:
        return _business(cp, f"connector {connector_no} of charger {charger_id} is faulted", evcs.FAULT)
    tx, order = await _order_of_connector(cp, connector_no)
    if connector["status_code"] == evcs.CHARGING or tx is not None:
        return _business(cp, f"connector {connector_no} of charger {charger_id} is charging", evcs.CHARGING,
                         order["id"] if order else None)
    session_id = session_id or f"chg-{charger_id}-{connector_no}-{uuid.uuid4().hex}"
    started = await start_charging(billing.orders, services().commands,
                                   StartRequest(session_id, cp["charge_point_id"], id_tag, connector_no), timeout)
    answer = {**await _detail(started.order), "remoteStart": _remote(started.remote_start) if started.created else None}
    return envelope(answer, started.message, 201 if started.created else 200)


@routes.route("/<int:charger_id>/connectors/<int:connector_no>/stop", role=OPERATOR, post=op(
    "registry", "Stop the connector's open transaction's order, as POST /api/order/stop does",
    enveloped(record("", **ORDER_DETAIL["properties"], remoteStop=record("requestId:str status:str"))),
    errors=("404", "409", "502", "504"), query=[param("timeoutSeconds")]))
async def stop(charger_id: int, connector_no: int) -> Any:
    billing = services().billing
    if billing is None:
        raise _billing_off()
    cp = await _charger(charger_id)
    tx, order = await _order_of_connector(cp, connector_no) if connector_no < 2**31 else (None, None)
    if order is None:
        raise ApiError(409, "conflict", f"connector {connector_no} of charger {charger_id} has no open transaction"
                       + (" with an order" if tx is not None else ""))
    stopped = await stop_charging(billing.orders, services().commands, order, params.timeout)
    return envelope({**await _detail(stopped.order), "remoteStop": _remote(stopped.remote_stop)}, stopped.message)


@routes.route("/<int:charger_id>/reset", role=OPERATOR, post=op(
    "registry", "Reset the charger (Soft by default)", enveloped(record("requestId:str status:str")),
    errors=("400", "404c", "502", "504"), query=[
        query("type", "Soft or Hard", {"type": "string", "enum": ["Soft", "Hard"], "default": "Soft"}),
        param("timeoutSeconds")]))
async def reset(charger_id: int) -> Any:
    kind = request.args.get("type") or "Soft"
    if kind not in ("Soft", "Hard"):
        raise params.bad(f"type must be Soft or Hard, not {kind[:20]!r}")
    timeout = params.timeout()
    cp = await _charger(charger_id)
    sent = await services().commands.send(cp["charge_point_id"], "Reset", {"type": kind}, timeout)
    return envelope({"requestId": sent.request_id, "status": sent.result.get("status")})


async def _set(charger_id: int, changes: dict[str, Any], message: str) -> Any:
    """Store the flag; then, if the charger is connected, tell it (ChangeAvailability, connector 0) whether it
    may serve: Operative only when enabled and in service."""
    timeout = params.timeout()
    await _charger(charger_id)
    _, cp = await _store().registry.update(charger_id, changes, clock.iso())
    if cp is None:
        raise ApiError(404, "not_found", f"charger {charger_id} is not registered")
    answer = None
    if cp["charge_point_id"] in services().chargers.registry:
        kind = "Operative" if cp["enabled"] and cp["operator_status"] == "in_service" else "Inoperative"
        try:
            sent = await services().commands.send(cp["charge_point_id"], "ChangeAvailability",
                                                  {"connectorId": 0, "type": kind}, timeout)
            answer = {"requestId": sent.request_id, "status": sent.result.get("status")}
        except CommandError as exc:  # the flag is kept: it is applied again when the charger reconnects
            answer = {"requestId": exc.request_id, "status": type(exc).__name__}
        cp = await _charger(charger_id)
    return envelope({**charger_view(cp), "changeAvailability": answer}, message)


async def _argument(name: str) -> Any:
    """A value given as ?name= or in the body {name: ...}."""
    if name in request.args:
        return request.args[name]
    body = await params.json_object()
    params.only(body, [name])
    if name not in body:
        raise params.bad(f"{name} is required (?{name}= or a body {{\"{name}\": ...}})")
    return body[name]


@routes.route("/<int:charger_id>/enable", role=OPERATOR, put=op(
    "registry", "Enable or disable a charger; a connected one is sent ChangeAvailability", enveloped(COMMANDED),
    errors=("400", "404"), query=[query("enabled", "true or false (or a body {enabled})", {"type": "boolean"}),
                                  param("timeoutSeconds")],
    body={"type": "object", "properties": {"enabled": {"type": "boolean"}}}, body_required=False))
async def enable(charger_id: int) -> Any:
    value = await _argument("enabled")
    if isinstance(value, str):
        value = {"true": True, "1": True, "false": False, "0": False}.get(value.lower(), value)
    if not isinstance(value, bool):
        raise params.bad("enabled must be true or false")
    return await _set(charger_id, {"enabled": int(value)}, "charger enabled" if value else "charger disabled")


@routes.route("/<int:charger_id>/status", role=OPERATOR, put=op(
    "registry", "Set the operator status; a connected charger is sent ChangeAvailability", enveloped(COMMANDED),
    errors=("400", "404"), query=[query("status", "in_service, maintenance or retired (or a body {status})",
                                        {"type": "string", "enum": list(OPERATOR_STATUSES)}), param("timeoutSeconds")],
    body={"type": "object", "properties": {"status": {"type": "string", "enum": list(OPERATOR_STATUSES)}}},
    body_required=False))
async def set_status(charger_id: int) -> Any:
    value = await _argument("status")
    if value not in OPERATOR_STATUSES:
        raise params.bad(f"status must be one of {', '.join(OPERATOR_STATUSES)}")
    return await _set(charger_id, {"operator_status": value}, f"charger {value.replace('_', ' ')}")
