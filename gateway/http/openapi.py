"""The OpenAPI 3.1 document of the whole HTTP surface, and the /docs page that renders it.

Each route's operation is declared beside its handler (routes.py), so the document lists exactly the
routes served; the shortcut routes come from commands_api.SHORTCUTS, the generic call's actions from
CENTRAL_ACTIONS, the OCPP payloads from the 1.6 schemas, and the limits from the configuration.
tests/integration/test_openapi.py holds the paths against the app's url_map and schemas/openapi.json
against this module (`gateway openapi > schemas/openapi.json`).
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any, Sequence

from .. import __version__
from ..ocpp.actions import CENTRAL_ACTIONS
from ..store.chargers import DEVICE_FIELDS
from . import params
from .ocpp_api import RENAMED
from .records_api import ID_TAG_STATUSES
from .routes import METHODS, Routes
from .schemas import (ERRORS, NOT_CONNECTED, ORDER, ORDER_DETAIL, PAYMENT, REFUND, REPORT, Schema, kind,
                      list_of, ocpp_schema, optional, paged, param, record, ref)
from .services import Limits

# ---- shared components -------------------------------------------------------------

ERROR = {**record(
    "error:str message:str path:str timestamp:time",
    "The one error envelope (docs/api.md section 3). error: bad_request, not_found, not_connected, "
    "method_not_allowed, conflict, call_error, timeout, internal_error, ... Some errors add context: "
    "cpId and lastSeen (not_connected), field and errorCode (a payload failing its 1.6 schema), "
    "errorCode, errorDescription and errorDetails (call_error), timeoutSeconds and sent (timeout), action "
    "and requestId.",
    cpId=kind("str"), lastSeen=kind("time?"), action=kind("str"), requestId=kind("str?"),
    field=kind("str"), errorCode=kind("str"), errorDescription=kind("str"), errorDetails=kind("any"),
    timeoutSeconds=kind("num"), sent=kind("bool"),
), "required": ["error", "message", "path", "timestamp"]}  # the rest is context only some errors add


def _query(limits: Limits) -> dict[str, Schema]:
    """The query parameters many routes share, with the configured limits."""
    return {
        "timeoutSeconds": {"description": f"seconds to wait for the charger's answer; values above "
                                          f"{params.TIMEOUT_MAX:g} are taken as {params.TIMEOUT_MAX:g}",
                           "schema": {"type": "number", "exclusiveMinimum": 0, "default": params.TIMEOUT_DEFAULT}},
        "wait": {"description": "false: answer at once (CommandStarted) once the command is checked and sent; "
                                "its answer is recorded (GET /api/commands/{request_id}). Also 1/0, yes/no",
                 "schema": {"type": "boolean", "default": True}},
        "page": {"description": "page number, from 1", "schema": {"type": "integer", "minimum": 1, "default": 1}},
        "size": {"description": "records per page",
                 "schema": {"type": "integer", "minimum": 1, "maximum": limits.max_page_size,
                            "default": min(params.PAGE_SIZE_DEFAULT, limits.max_page_size)}},
        "cpId": {"description": "only this charger's records", "schema": {"type": "string"}},
        "since": {"description": "from this time on (inclusive)", "schema": {"type": "string", "format": "date-time"}},
        "until": {"description": "before this time (exclusive)", "schema": {"type": "string", "format": "date-time"}},
    }


_PATH: dict[str, Schema] = {
    "cp_id": {"description": "the charge point id, as the charger connected with", "schema": {"type": "string"}},
    "action": {"description": "the OCPP 1.6 central-system action (an unknown one is a 400)",
               "schema": {"type": "string", "enum": sorted(CENTRAL_ACTIONS)}},
    "station_id": {"description": "the station id", "schema": {"type": "integer", "minimum": 0}},
    "transaction_id": {"description": "the transaction id", "schema": {"type": "integer", "minimum": 0}},
    "reservation_id": {"description": "the reservation id", "schema": {"type": "integer", "minimum": 0}},
    "request_id": {"description": "the command's requestId (its OCPP unique id)", "schema": {"type": "string"}},
    "id_tag": {"description": "the id tag (IdToken: 1 to 20 characters)", "schema": {"type": "string"}},
    "token_id": {"description": "the API token's id", "schema": {"type": "integer", "minimum": 0}},
    "order_ref": {"description": "the order id, or its number (ORD-20260210-000123)", "schema": {"type": "string"}},
    "trade_no": {"description": "our payment number (PAY-...), the out_trade_no the provider knows",
                 "schema": {"type": "string"}},
    "refund_no": {"description": "the refund number (REF-..., or the merchant console's), the out_refund_no / "
                               "out_request_no the provider knows", "schema": {"type": "string"}},
    "callback_id": {"description": "the callback's id, as /api/payment/callbacks lists it",
                    "schema": {"type": "integer", "minimum": 0}},
    "channel": {"description": "the payment channel", "schema": {"type": "string",
                                                                 "enum": ["manual", "alipay", "wechat"]}},
    "charger_id": {"description": "the registered charger's id (chargerId)", "schema": {"type": "integer", "minimum": 0}},
    "connector_no": {"description": "the connector number, from 1", "schema": {"type": "integer", "minimum": 0}},
    "tenant_id": {"description": "the tenant id", "schema": {"type": "integer", "minimum": 0}},
    "parent_id": {"description": "the parent tenant's id", "schema": {"type": "integer", "minimum": 0}},
    "alert_id": {"description": "the alert's id", "schema": {"type": "integer", "minimum": 0}},
    "name": {"description": "the service: database, writer, listener_ocpp, listener_http, listener_ocpp_tls, "
                            "payments_alipay, payments_wechat, disk, alerts, webhook", "schema": {"type": "string"}},
    "rest": {"description": "the charge point id, URL-encoded; the gateway takes the last path segment, "
                            "so /ocpp/site/CP1 connects as CP1", "schema": {"type": "string"}},
}
_PATH.update({  # the certificate routes (certificate_api.py)
    "serial": {"description": "the certificate's serial number, hexadecimal", "schema": {"type": "string"}},
    "certificate_id": {"description": "the installed certificate's id", "schema": {"type": "integer", "minimum": 0}},
    "firmware_id": {"description": "the signed firmware file's id", "schema": {"type": "integer", "minimum": 0}},
    "sha256": {"description": "the file's SHA-256, hexadecimal", "schema": {"type": "string"}},
})



# ---- success shapes ------------------------------------------------------------------

CONNECTION = record("chargePointId:str status:str? currentTransactionId:int? lastSeen:time? online:bool "
                    "vendor:str? model:str? firmwareVersion:str?",
                    connectors={"type": "object", "additionalProperties": {"type": "string"},
                                 "description": "connector id -> its last status (connector 0 excluded)"})
VIOLATION = record("action:str kind:str code:str path:str message:str count:int firstSeen:time lastSeen:time")
STATUS = record("", **CONNECTION["properties"], **{
    "device": {**record(" ".join(f"{RENAMED.get(f, f)}:str?" for f in DEVICE_FIELDS)),
               "additionalProperties": True,
               "description": "BootNotification's fields, and any the charger added (customData, ...)"},
    **record("bootedAt:time? registrationStatus:str? securityProfile:int connectedAt:time? disconnectedAt:time? "
             "disconnectReason:str?")["properties"],
    "connectorDetails": list_of(record("connectorId:int status:str errorCode:str? info:str? vendorId:str? "
                                       "vendorErrorCode:str? timestamp:str? updatedAt:time")),
    "violations": list_of(ref("Violation")),
})
STATUS["required"].remove("violations")  # left out of list pages, where nobody reads them
CONFIGURATION_KEY = record("key:str value:str? readonly:bool? updatedAt:time")

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "Health": optional(record(
        "status:str version:str time:time chargersConnected:int",
        "status: ok, or degraded while the database cannot be written (still HTTP 200: the gateway runs on); "
        "reasons then says which part fails and why",
        reasons=list_of({"type": "string"})), "reasons"),
    "Connection": CONNECTION,
    "ChargerStatus": STATUS,
    "Charger": record("", **STATUS["properties"], configuration=list_of(ref("ConfigurationKey"))),
    "ConfigurationKey": CONFIGURATION_KEY,
    "Violation": VIOLATION,
    "ViolationRecord": record("chargePointId:str example:str?", **VIOLATION["properties"]),
    "LocalList": record("id:int chargePointId:str listVersion:int updateType:str entries:list status:str? "
                        "requestId:str sentAt:time"),
    "ChargingProfile": record("id:int chargePointId:str connectorId:int profileId:int stackLevel:int? "
                              "purpose:str? profile:obj status:str? requestId:str sentAt:time clearedAt:time?"),
    "Notification": record("id:int chargePointId:str action:str status:str? requestId:int? timestamp:str? "
                           "payload:obj receivedAt:time"),
    "Transaction": record("id:int chargePointId:str connectorId:int? idTag:str? idTagStatus:str? meterStart:int? "
                          "startTimestamp:str? reservationId:int? startedAt:time? meterStop:int? "
                          "stopTimestamp:str? stopReason:str? stopIdTag:str? stoppedAt:time? energyWh:int? "
                          "remoteStartRequestId:str?",
                          "startTimestamp and stopTimestamp are the charger's clock, as sent; startedAt and "
                          "stoppedAt the gateway's"),
    "MeterValue": record("id:int chargePointId:str connectorId:int? transactionId:int? timestamp:str value:str "
                         "measurand:str? phase:str? unit:str? context:str? location:str? format:str? source:str "
                         "receivedAt:time",
                         "One sampled value. id is the message it came in (MeterValues, or StopTransaction's "
                         "transactionData): the values of one message share it and come in the order sent"),
    "Frame": record("id:int at:time chargePointId:str direction:str messageType:int? uniqueId:str? action:str? "
                    "body:str?"),
    "Command": record("id:int requestId:str chargePointId:str action:str payload:obj outcome:str result:obj? "
                      "errorCode:str? errorDescription:str? errorDetails:any sentAt:time finishedAt:time? "
                      "latencyMs:num?"),
    "Reservation": record("id:int chargePointId:str connectorId:int idTag:str parentIdTag:str? expiryDate:str "
                          "status:str transactionId:int? requestId:str? createdAt:time updatedAt:time "
                          "effectiveStatus:str"),
    "IdTag": record("idTag:str status:str expiryDate:time? parentIdTag:str? createdAt:time updatedAt:time "
                    "effectiveStatus:str"),
    "CommandStarted": {**record("requestId:str cpId:str", "wait=false: the command was checked and sent; its "
                                                            "answer is recorded", action=kind("str"),
                                listVersion=kind("int"), reservationId=kind("int")),
                       "required": ["requestId", "cpId"]},
}
for _name in ("ChargerStatus", "Transaction", "Command", "Reservation", "IdTag", "LocalList", "ChargingProfile",
              "Notification"):
    SCHEMAS[f"{_name}Page"] = paged(_name)
SCHEMAS["TransactionWithMeterValues"] = record("", **SCHEMAS["Transaction"]["properties"],
                                               meterValues=list_of(ref("MeterValue")))
SCHEMAS["FramePage"] = record("nextBefore:int?", "nextBefore: pass it as before= for the next, older page",
                              records=list_of(ref("Frame")))

ID_TAG_FIELDS = {
    "status": {"type": "string", "enum": list(ID_TAG_STATUSES), "default": "Accepted"},
    "expiryDate": {"type": ["string", "null"], "format": "date-time"},
    "parentIdTag": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
}
SCHEMAS["IdTagCreate"] = {"type": "object", "required": ["idTag"], "properties": {
    "idTag": {"type": "string", "minLength": 1, "maxLength": 20}, **ID_TAG_FIELDS}}
SCHEMAS["IdTagChange"] = {"type": "object", "properties": ID_TAG_FIELDS}
SCHEMAS.update({"Order": ORDER, "OrderDetail": ORDER_DETAIL, "Payment": PAYMENT, "Refund": REFUND,
                "ReconciliationReport": REPORT})

TAGS = [
    ("gateway", "Health, metrics and this documentation"),
    ("ocpp", "The seed-compatible GET API (docs/api.md section 1)"),
    ("shortcuts", "Everyday commands: GET with the payload in the query, or POST with it as the body"),
    ("call", "Every central-system action (docs/api.md section 2)"),
    ("chargers", "Records: chargers and what they reported"),
    ("transactions", "Records: transactions and meter values"),
    ("frames", "Records: the frame log"),
    ("live", "The live stream: what happens, as it happens (server-sent events, docs/api.md section 14)"),
    ("commands", "Records: commands sent and their answers"),
    ("reservations", "Records: reservations"),
    ("id-tags", "The id-tag table that Authorize and StartTransaction are answered from"),
    ("auth", "Logging in and API tokens, in the EVCS envelope {code, message, data, timestamp, path}"),
    ("audit", "The audit log: every request that changes something (x-audited operations), in the EVCS envelope"),
    ("orders", "Orders, one per charging session, in the EVCS envelope"),
    ("payments", "Payments, refunds and the providers' callbacks, in the EVCS envelope (callbacks excepted)"),
    ("reconciliation", "Mismatches between payments, refunds, orders and the providers"),
    ("stations", "Stations: the sites an operator runs, in the EVCS envelope"),
    ("registry", "The charger registry (/api/charger): live state, commands per connector, in the EVCS envelope"),
    ("tenants", "Tenants (/api/tenant): the platform and the operators and partners below it, their quotas; in the "
                "EVCS envelope"),
    ("monitoring", "The gateway's health, figures, alerts and own log (/api/monitoring, also /api/v1/monitoring), "
                   "in the EVCS envelope"),
    ("charger-socket", "Where chargers connect"),
    ("cloudcharge", "Chargers reporting over HMAC-signed HTTP requests (/api/cloudcharge), in the EVCS envelope"),
    ("certificates", "The certificate authority, chargers' certificates and signed firmware (security extension)"),
    ("storage", "The database's size and rows, and its retention, in the EVCS envelope"),
]


def _paths(routes: Sequence[Routes], limits: Limits) -> dict[str, dict[str, Schema]]:
    """Every declared operation, by path in the order declared, by method in METHODS' order; a copy,
    with the path's parameters put first."""
    paths: dict[str, dict[str, Schema]] = {}
    for group in routes:
        for route in group.declared:
            item = paths.setdefault(route.path, {})
            for method, operation in route.operations.items():
                item[method] = copy.deepcopy(operation(limits) if callable(operation) else operation)
                if route.changes(method) and not route.websocket:  # each call leaves one audit record
                    item[method]["x-audited"] = True
    for path in paths:
        paths[path] = item = {method: paths[path][method] for method in METHODS if method in paths[path]}
        names = re.findall(r"{(\w+)}", path)
        for operation in item.values():
            operation["parameters"] = [param(f"path.{n}") for n in names] + operation.get("parameters", [])
            if not operation["parameters"]:
                del operation["parameters"]
    return paths


def document(limits: Limits = Limits(), routes: Sequence[Routes] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call) of `routes` (the app's), stating `limits` (by
    default the configuration's defaults: the document kept in schemas/)."""
    if routes is None:
        from .app import ROUTES as routes  # app.py serves this document, so it is imported here
    ocpp = {f"{action}{kind.title()}": ocpp_schema(action, kind)
            for action in sorted(CENTRAL_ACTIONS) for kind in ("request", "response")}
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "OCPP 1.6J gateway HTTP API",
            "version": __version__,
            "description": "Every answer is JSON unless said otherwise; times are UTC ISO 8601 with a Z. Errors "
                           "use one envelope (components.schemas.Error). Commands wait for the charger's answer "
                           "(timeoutSeconds) unless wait=false. An account sees its tenant's records and those of "
                           "the tenants below it; the header X-Tenant-Id: <id> makes a request act as one of the "
                           "tenants below (404 for any other).",
        },
        "tags": [{"name": name, "description": description} for name, description in TAGS],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": _paths(routes, limits),
        "components": {
            "schemas": {**SCHEMAS, **ocpp},
            "parameters": {**{name: {"name": name, "in": "query", **spec} for name, spec in _query(limits).items()},
                           **{f"path.{name}": {"name": name, "in": "path", "required": True, **spec}
                              for name, spec in _PATH.items()}},
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "an account's user name and password"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a login token (POST /api/auth/login) or an API token (gw_...)"},
            },
            "responses": {name: {"description": description,
                                 "content": {"application/json": {"schema": ref("Error")}}}
                          for name, description in (*ERRORS.values(), NOT_CONNECTED)},
        },
    })


def docs_page() -> str:
    return resources.files(__package__).joinpath("static", "docs.html").read_text("utf-8")
