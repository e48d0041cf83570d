"""The OpenAPI 3.1 document of the whole HTTP surface, and the /docs page that renders it.

The shortcut routes come from commands_api.SHORTCUTS, the generic call's actions from
CENTRAL_ACTIONS, and the OCPP payloads from the 1.6 schemas, so those cannot drift from the
code. tests/integration/test_openapi.py holds the paths against the app's url_map and
schemas/openapi.json against this module (`gateway openapi > schemas/openapi.json`).
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

from .. import __version__
from ..ocpp.actions import CENTRAL_ACTIONS
from ..ocpp.validation import load_schema
from ..store.chargers import DEVICE_FIELDS
from . import params
from .commands_api import SHORTCUTS
from .ocpp_api import RENAMED
from .records_api import ID_TAG_STATUSES

Schema = dict[str, Any]

# ---- schema helpers ----------------------------------------------------------------

_KINDS: dict[str, Schema] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "num": {"type": "number"},
    "bool": {"type": "boolean"}, "time": {"type": "string", "format": "date-time"},
    "obj": {"type": "object"}, "list": {"type": "array"}, "any": {},
}


def _kind(spec: str) -> Schema:
    """'int' -> integer; 'int?' -> integer or null; 'any' -> anything."""
    nullable = spec.endswith("?")
    schema = dict(_KINDS[spec.rstrip("?")])
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


def _record(spec: str, doc: str | None = None, **more: Schema) -> Schema:
    """An object whose fields are all present: 'id:int chargePointId:str stoppedAt:time?' plus schemas."""
    props = {name: _kind(kind) for name, kind in (pair.split(":") for pair in spec.split())}
    props.update(more)
    return {"type": "object", "properties": props, "required": list(props), **({"description": doc} if doc else {})}


def _optional(schema: Schema, *names: str) -> Schema:
    """A record whose fields `names` may be left out."""
    schema["required"] = [name for name in schema["required"] if name not in names]
    return schema


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def _paged(name: str) -> Schema:
    return _record("total:int page:int size:int", records=_list(_ref(name)))


def ocpp_schema(action: str, kind: str) -> Schema:
    """A 1.6 schema as an OpenAPI schema: its own definitions inlined, its dialect markers dropped."""
    raw = load_schema(action, kind)
    definitions = raw.get("definitions", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(value) for value in node] if isinstance(node, list) else node

    return inline({k: v for k, v in raw.items() if k not in ("$schema", "$id", "id", "definitions")})


# ---- shared components -------------------------------------------------------------

ERROR = {**_record(
    "error:str message:str path:str timestamp:time",
    "The one error envelope (API.md section 3). error: bad_request, not_found, not_connected, "
    "method_not_allowed, conflict, call_error, timeout, internal_error, ... Some errors add context: "
    "cpId and lastSeen (not_connected), field and errorCode (a payload failing its 1.6 schema), "
    "errorCode, errorDescription and errorDetails (call_error), timeoutSeconds and sent (timeout), action "
    "and requestId.",
    cpId=_kind("str"), lastSeen=_kind("time?"), action=_kind("str"), requestId=_kind("str?"),
    field=_kind("str"), errorCode=_kind("str"), errorDescription=_kind("str"), errorDetails=_kind("any"),
    timeoutSeconds=_kind("num"), sent=_kind("bool"),
), "required": ["error", "message", "path", "timestamp"]}  # the rest is context only some errors add

ERRORS = {
    "400": ("BadRequest", "bad_request: a parameter is missing or malformed, the body is not a JSON object, "
                          "or the payload fails the 1.6 schema (field names it)"),
    "401": ("Unauthorized", "unauthorized: no credentials or wrong ones (once an account exists)"),
    "403": ("Forbidden", "forbidden: the role is too low (ChangeConfiguration of SecurityProfile or "
                         "AuthorizationKey and the certificate actions need admin), protected mode (no account "
                         "exists yet) refuses a client that is not on this machine, or a browser says a request "
                         "that would change something comes from another site (Origin, Sec-Fetch-Site)"),
    "421": ("MisdirectedRequest", "misdirected_request: the Host header names none of the gateway's names "
                                  "(loopback names, IP addresses, the http address, http_allowed_hosts)"),
    "429": ("TooManyRequests", "too_many_requests: too many failed logins (or HTTP Basic attempts) from this "
                               "address, or too many commands waiting for the charger (Retry-After)"),
    "404": ("NotFound", "not_found: no such record"),
    "405": ("MethodNotAllowed", "method_not_allowed: the path does not take this method"),
    "409": ("Conflict", "conflict: the record exists already, or an order or payment change the rules do not allow"),
    "500": ("InternalError", "internal_error: the gateway could not answer (logged; no details are given)"),
    "502": ("CallError", "call_error: the charger answered CALLERROR (errorCode, errorDescription, errorDetails)"),
    "504": ("Timeout", "timeout: the charger did not answer within timeoutSeconds"),
    "502p": ("ProviderError", "provider_error: the payment provider did not answer, or answered an error"),
}
NOT_CONNECTED = ("NotConnected", "not_connected: the charger is known but not connected (lastSeen says when it "
                                 "was); not_found: it has never connected")
COMMAND_ERRORS = ("400", "404c", "502", "504")  # 404c: the charger is not connected

_QUERY: dict[str, Schema] = {
    "timeoutSeconds": {"description": f"seconds to wait for the charger's answer; values above "
                                      f"{params.TIMEOUT_MAX:g} are taken as {params.TIMEOUT_MAX:g}",
                       "schema": {"type": "number", "exclusiveMinimum": 0, "default": params.TIMEOUT_DEFAULT}},
    "wait": {"description": "false: answer at once (CommandStarted) once the command is checked and sent; "
                            "its answer is recorded (GET /api/commands/{request_id}). Also 1/0, yes/no",
             "schema": {"type": "boolean", "default": True}},
    "page": {"description": "page number, from 1", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    "size": {"description": "records per page",
             "schema": {"type": "integer", "minimum": 1, "maximum": params.PAGE_SIZE_MAX,
                        "default": params.PAGE_SIZE_DEFAULT}},
    "cpId": {"description": "only this charger's records", "schema": {"type": "string"}},
    "since": {"description": "from this time on (inclusive)", "schema": {"type": "string", "format": "date-time"}},
    "until": {"description": "before this time (exclusive)", "schema": {"type": "string", "format": "date-time"}},
}

_PATH: dict[str, Schema] = {
    "cp_id": {"description": "the charge point id, as the charger connected with", "schema": {"type": "string"}},
    "action": {"description": "the OCPP 1.6 central-system action (an unknown one is a 400)",
               "schema": {"type": "string", "enum": sorted(CENTRAL_ACTIONS)}},
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
    "rest": {"description": "the charge point id, URL-encoded; the gateway takes the last path segment, "
                            "so /ocpp/site/CP1 connects as CP1", "schema": {"type": "string"}},
}


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


COMMAND_QUERY = [_param("timeoutSeconds"), _param("wait")]
PAGING = [_param("page"), _param("size")]

# Filled in by the gateway when left out: (action, field) -> what it does
FILLED = {("ReserveNow", "reservationId"): "left out: the gateway allocates one and answers it",
          ("UpdateFirmware", "retrieveDate"): "left out: now (GET only)"}


def payload_query(action: str) -> list[Schema]:
    """The action's payload fields as query parameters, typed by its 1.6 request schema."""
    schema = ocpp_schema(action, "request")
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: Schema = {"name": name, "in": "query", "required": name in schema.get("required", ())}
        if (action, name) in FILLED:
            param.update(required=False, description=FILLED[action, name])
        if prop.get("type") == "object" or prop.get("items", {}).get("type") == "object":
            param["content"] = {"application/json": {"schema": prop}}  # given as JSON
        else:
            param["schema"] = prop
            if prop.get("type") == "array":
                param["description"] = "comma-separated, repeated, or a JSON array"
        out.append(param)
    return out


# ---- success shapes ------------------------------------------------------------------

CONNECTION = _record("chargePointId:str status:str? currentTransactionId:int? lastSeen:time? online:bool "
                     "vendor:str? model:str? firmwareVersion:str?",
                     connectors={"type": "object", "additionalProperties": {"type": "string"},
                                 "description": "connector id -> its last status (connector 0 excluded)"})
VIOLATION = _record("action:str kind:str code:str path:str message:str count:int firstSeen:time lastSeen:time")
STATUS = _record("", **CONNECTION["properties"], **{
    "device": {**_record(" ".join(f"{RENAMED.get(f, f)}:str?" for f in DEVICE_FIELDS)),
               "additionalProperties": True,
               "description": "BootNotification's fields, and any the charger added (customData, ...)"},
    **_record("bootedAt:time? registrationStatus:str? securityProfile:int connectedAt:time? disconnectedAt:time? "
              "disconnectReason:str?")["properties"],
    "connectorDetails": _list(_record("connectorId:int status:str errorCode:str? info:str? vendorId:str? "
                                      "vendorErrorCode:str? timestamp:str? updatedAt:time")),
    "violations": _list(_ref("Violation")),
})
STATUS["required"].remove("violations")  # left out of list pages, where nobody reads them
CONFIGURATION_KEY = _record("key:str value:str? readonly:bool? updatedAt:time")

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "Health": _optional(_record(
        "status:str version:str time:time chargersConnected:int",
        "status: ok, or degraded while the database cannot be written (still HTTP 200: the gateway runs on); "
        "reasons then says which part fails and why",
        reasons=_list({"type": "string"})), "reasons"),
    "Connection": CONNECTION,
    "ChargerStatus": STATUS,
    "Charger": _record("", **STATUS["properties"], configuration=_list(_ref("ConfigurationKey"))),
    "ConfigurationKey": CONFIGURATION_KEY,
    "Violation": VIOLATION,
    "ViolationRecord": _record("chargePointId:str example:str?", **VIOLATION["properties"]),
    "LocalList": _record("id:int chargePointId:str listVersion:int updateType:str entries:list status:str? "
                         "requestId:str sentAt:time"),
    "ChargingProfile": _record("id:int chargePointId:str connectorId:int profileId:int stackLevel:int? "
                               "purpose:str? profile:obj status:str? requestId:str sentAt:time clearedAt:time?"),
    "Notification": _record("id:int chargePointId:str action:str status:str? requestId:int? timestamp:str? "
                            "payload:obj receivedAt:time"),
    "Transaction": _record("id:int chargePointId:str connectorId:int? idTag:str? idTagStatus:str? meterStart:int? "
                           "startTimestamp:str? reservationId:int? startedAt:time? meterStop:int? "
                           "stopTimestamp:str? stopReason:str? stopIdTag:str? stoppedAt:time? energyWh:int? "
                           "remoteStartRequestId:str?",
                           "startTimestamp and stopTimestamp are the charger's clock, as sent; startedAt and "
                           "stoppedAt the gateway's"),
    "MeterValue": _record("id:int chargePointId:str connectorId:int? transactionId:int? timestamp:str value:str "
                          "measurand:str? phase:str? unit:str? context:str? location:str? format:str? source:str "
                          "receivedAt:time",
                          "One sampled value. id is the message it came in (MeterValues, or StopTransaction's "
                          "transactionData): the values of one message share it and come in the order sent"),
    "Frame": _record("id:int at:time chargePointId:str direction:str messageType:int? uniqueId:str? action:str? "
                     "body:str?"),
    "Command": _record("id:int requestId:str chargePointId:str action:str payload:obj outcome:str result:obj? "
                       "errorCode:str? errorDescription:str? errorDetails:any sentAt:time finishedAt:time? "
                       "latencyMs:num?"),
    "Reservation": _record("id:int chargePointId:str connectorId:int idTag:str parentIdTag:str? expiryDate:str "
                           "status:str transactionId:int? requestId:str? createdAt:time updatedAt:time "
                           "effectiveStatus:str"),
    "IdTag": _record("idTag:str status:str expiryDate:time? parentIdTag:str? createdAt:time updatedAt:time "
                     "effectiveStatus:str"),
    "CommandStarted": {**_record("requestId:str cpId:str", "wait=false: the command was checked and sent; its "
                                                            "answer is recorded", action=_kind("str"),
                                listVersion=_kind("int"), reservationId=_kind("int")),
                       "required": ["requestId", "cpId"]},
}
for _name in ("ChargerStatus", "Transaction", "Command", "Reservation", "IdTag", "LocalList", "ChargingProfile",
              "Notification"):
    SCHEMAS[f"{_name}Page"] = _paged(_name)
SCHEMAS["TransactionWithMeterValues"] = _record("", **SCHEMAS["Transaction"]["properties"],
                                                meterValues=_list(_ref("MeterValue")))
SCHEMAS["FramePage"] = _record("nextBefore:int?", "nextBefore: pass it as before= for the next, older page",
                               records=_list(_ref("Frame")))

ID_TAG_FIELDS = {
    "status": {"type": "string", "enum": list(ID_TAG_STATUSES), "default": "Accepted"},
    "expiryDate": {"type": ["string", "null"], "format": "date-time"},
    "parentIdTag": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
}
SCHEMAS["IdTagCreate"] = {"type": "object", "required": ["idTag"], "properties": {
    "idTag": {"type": "string", "minLength": 1, "maxLength": 20}, **ID_TAG_FIELDS}}
SCHEMAS["IdTagChange"] = {"type": "object", "properties": ID_TAG_FIELDS}


def _answer(spec: str, optional: tuple[str, ...] = (), **more: Schema) -> Schema:
    """A command's answer; with wait=false the route answers CommandStarted instead."""
    answer = _record(spec, **more)
    answer["required"] = [name for name in answer["required"] if name not in optional]
    return {"anyOf": [answer, _ref("CommandStarted")]}


# ---- operations -------------------------------------------------------------------------

def op(tag: str, summary: str, ok: Schema | None, *, errors: tuple[str, ...] = (), query: list | None = None,
       body: Schema | None = None, body_required: bool = True, status: str = "200",
       description: str | None = None, media: str = "application/json", public: bool = False) -> Schema:
    """One operation; `ok` is the success schema (None: no body), `errors` the status codes it can answer.
    Every operation needs credentials (or a loopback client) unless `public`."""
    operation: Schema = {"tags": [tag], "summary": summary}
    if public:
        operation["security"] = []
    else:
        errors = (*errors, "401", "403", "421", "429")  # 429: failed HTTP Basic attempts count as failed logins
    if description:
        operation["description"] = description
    if query:
        operation["parameters"] = query
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    responses = {status: {"description": "OK", "content": {media: {"schema": ok}}} if ok is not None
                 else {"description": "Done, no body"}}
    for code in sorted(set(errors) | {"405", "500"}):
        name = NOT_CONNECTED[0] if code == "404c" else ERRORS[code][0]
        responses[code[:3]] = {"$ref": f"#/components/responses/{name}"}
    operation["responses"] = responses
    return operation


def _also(operation: Schema, status: str, description: str, schema: Schema) -> Schema:
    """An operation that answers one more success status."""
    operation["responses"][status] = {"description": description, "content": {"application/json": {"schema": schema}}}
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def _command_ops(action: str, summary: str, answer: Schema) -> dict[str, Schema]:
    """GET (payload in the query) and POST (payload as the JSON body) of one shortcut route."""
    return {
        "get": op("shortcuts", summary, answer, errors=COMMAND_ERRORS, query=payload_query(action) + COMMAND_QUERY,
                  description=f"Sends {action}; the query parameters are its payload (objects as JSON)."),
        "post": op("shortcuts", summary, answer, errors=COMMAND_ERRORS, query=COMMAND_QUERY,
                   body=_ref(f"{action}Request"), body_required=False,
                   description=f"Sends {action}; the body is its payload (none: {{}})."),
    }


def shortcut_paths() -> dict[str, dict[str, Schema]]:
    paths = {}
    for name, action in SHORTCUTS.items():
        extra = {"reservationId": _kind("int")} if action == "ReserveNow" else {}
        answer = _answer("cpId:str requestId:str status:str?", action={"const": action},
                         result=_ref(f"{action}Response"), **extra)
        paths[f"/api/ocpp/{name}/{{cp_id}}"] = _command_ops(action, f"{action} (shortcut)", answer)
    return paths


def _seed_paths() -> dict[str, dict[str, Schema]]:
    remote = "requestId:str cpId:str status:str?"
    entries = ocpp_schema("SendLocalList", "request")["properties"]["localAuthorizationList"]
    return {
        "/api/ocpp/connections": {"get": op(
            "ocpp", "Every charger known, online first",
            {"oneOf": [_list(_ref("Connection")), _paged("Connection")]}, errors=("400",),
            query=[{**_param("page"), "description": "page number, from 1; with page or size the answer is one "
                                                     "page ({records, total, page, size}), without both the whole "
                                                     "list"},
                   _param("size")])},
        "/api/ocpp/status/{cp_id}": {"get": op(
            "ocpp", "One charger: device, connectors, violations", _ref("ChargerStatus"), errors=("404",))},
        "/api/ocpp/remoteStart/{cp_id}": {"get": op(
            "ocpp", "RemoteStartTransaction", _answer(remote, ("transactionId",),
                                                      result=_ref("RemoteStartTransactionResponse"),
                                                      transactionId=_kind("int")),
            errors=COMMAND_ERRORS,
            query=payload_query("RemoteStartTransaction") + COMMAND_QUERY + [{
                "name": "waitForTransactionSeconds", "in": "query",
                "description": "also wait this long for the StartTransaction that follows and answer its "
                               "transactionId; 504 when none comes (wait is then ignored)",
                "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": params.TIMEOUT_MAX}}])},
        "/api/ocpp/remoteStop/{cp_id}": {"get": op(
            "ocpp", "RemoteStopTransaction", _answer(remote, result=_ref("RemoteStopTransactionResponse")),
            errors=COMMAND_ERRORS, query=payload_query("RemoteStopTransaction") + COMMAND_QUERY)},
        "/api/ocpp/localList/version/{cp_id}": {"get": op(
            "ocpp", "GetLocalListVersion", _answer("cpId:str requestId:str",
                                                   result=_ref("GetLocalListVersionResponse")),
            errors=COMMAND_ERRORS, query=COMMAND_QUERY)},
        "/api/ocpp/localList/full/{cp_id}": {"get": op(
            "ocpp", "SendLocalList Full from the id-tag table", _answer(
                "cpId:str message:str listVersion:int entries:int requestId:str",
                status={"type": "string", "enum": ["success", "failed"]}, result=_ref("SendLocalListResponse")),
            errors=COMMAND_ERRORS, query=COMMAND_QUERY,
            description="Every id tag of the gateway's table, as the charger's next list version.")},
        "/api/ocpp/localList/diff/{cp_id}": {"post": op(
            "ocpp", "SendLocalList Differential", _answer("cpId:str listVersion:int requestId:str",
                                                          result=_ref("SendLocalListResponse")),
            errors=COMMAND_ERRORS, query=COMMAND_QUERY, body={
                "type": "object",
                "description": "localAuthorisationList (or OCPP's spelling localAuthorizationList) is required "
                               "and not empty; listVersion defaults to the charger's next",
                "properties": {"listVersion": {"type": "integer"}, "localAuthorisationList": entries,
                               "localAuthorizationList": entries}})},
    }


def _call_paths() -> dict[str, dict[str, Schema]]:
    answer = _answer("cpId:str action:str requestId:str", result={
        "type": "object", "description": "the charger's payload (components.schemas.{action}Response)"})
    return {"/api/ocpp/call/{cp_id}/{action}": {
        "get": op("call", "Send any central-system action, payload in the query", answer, errors=COMMAND_ERRORS,
                  query=COMMAND_QUERY + [{
                      "name": "payload", "in": "query", "style": "form", "explode": True,
                      "description": "the payload's fields, typed by the action's 1.6 schema: ?type=Soft; "
                                     "objects and arrays as JSON",
                      "schema": {"type": "object", "additionalProperties": True}}]),
        "post": op("call", "Send any central-system action, payload as the body", answer, errors=COMMAND_ERRORS,
                   query=COMMAND_QUERY, body_required=False, body={
                       "type": "object",
                       "description": "the OCPP payload, checked against the action's 1.6 schema "
                                      "(components.schemas.{action}Request); an empty body is {}"}),
    }}


def _records_paths() -> dict[str, dict[str, Schema]]:
    def q(name: str, description: str, schema: Schema) -> Schema:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    per_charger = ("404",)
    return {
        "/api/chargers": {"get": op(
            "chargers", "Chargers, a page at a time", _ref("ChargerStatusPage"), errors=("400",),
            query=PAGING + [q("online", "only online (true) or offline (false) chargers", {"type": "boolean"})],
            description="violations are left out here: GET /api/chargers/{cp_id} has them.")},
        "/api/chargers/{cp_id}": {"get": op(
            "chargers", "One charger with its configuration snapshot", _ref("Charger"), errors=per_charger)},
        "/api/chargers/{cp_id}/configuration": {"get": op(
            "chargers", "Configuration snapshot (last GetConfiguration, accepted changes applied)",
            _list(_ref("ConfigurationKey")), errors=per_charger)},
        "/api/chargers/{cp_id}/registration": {"put": op(
            "chargers", "How the charger's next BootNotification is answered (accept a Pending charger)",
            _record("chargePointId:str registrationStatus:str"), errors=("400", "409"),
            body={"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["Accepted", "Pending", "Rejected"]}}})},
        "/api/chargers/{cp_id}/security": {
            "get": op("chargers", "The charger's OCPP security profile (the key itself is never shown)",
                      _record("chargePointId:str securityProfile:int hasAuthorizationKey:bool"), errors=per_charger),
            "put": op("chargers", "Set the security profile and/or the AuthorizationKey (admin); 2 and 3 need the wss:// listener",
                      _record("chargePointId:str securityProfile:int hasAuthorizationKey:bool"),
                      errors=("400", "404", "409"), body={**_record("securityProfile:int"), "properties": {
                          "securityProfile": {"type": "integer", "enum": [0, 1, 2, 3]},
                          "authorizationKey": {"type": "string", "minLength": 16, "maxLength": 40}}}),
        },
        "/api/chargers/{cp_id}/violations": {"get": op(
            "chargers", "Protocol violations, latest first", _list(_ref("ViolationRecord")), errors=per_charger)},
        "/api/chargers/{cp_id}/local-lists": {"get": op(
            "chargers", "Local lists sent, latest first", _ref("LocalListPage"), errors=("400", "404"),
            query=PAGING)},
        "/api/chargers/{cp_id}/charging-profiles": {"get": op(
            "chargers", "Charging profiles sent, latest first", _ref("ChargingProfilePage"),
            errors=("400", "404"), query=PAGING + [q("active", "only accepted profiles not cleared",
                                                     {"type": "boolean", "default": False})])},
        "/api/chargers/{cp_id}/notifications": {"get": op(
            "chargers", "Firmware, diagnostics, log and security reports, DataTransfers",
            _ref("NotificationPage"), errors=("400", "404"),
            query=PAGING + [q("action", "only this action's reports", {"type": "string"})])},
        "/api/transactions": {"get": op(
            "transactions", "Transactions, newest first", _ref("TransactionPage"), errors=("400",),
            query=PAGING + [_param("cpId"), q("state", "open or closed",
                                              {"type": "string", "enum": ["open", "closed"]}),
                            _param("since"), _param("until")])},
        "/api/transactions/{transaction_id}": {"get": op(
            "transactions", "One transaction with its meter values", _ref("TransactionWithMeterValues"),
            errors=("404",))},
        "/api/frames": {"get": op(
            "frames", "The frame log, newest first (by the time the gateway received each frame, then id)",
            _ref("FramePage"), errors=("400",),
            query=[_param("cpId"), _param("since"), _param("until"),
                   q("before", "only frames older than this frame (paging back: the nextBefore of the last page)",
                     {"type": "integer", "minimum": 1}),
                   q("limit", "frames per answer", {"type": "integer", "minimum": 1,
                                                    "maximum": params.PAGE_SIZE_MAX, "default": 100})])},
        "/api/commands": {"get": op(
            "commands", "Commands sent, newest first", _ref("CommandPage"), errors=("400",),
            query=PAGING + [_param("cpId"), q("action", "only this action", {"type": "string"})])},
        "/api/commands/{request_id}": {"get": op(
            "commands", "One command with its answer or error", _ref("Command"), errors=("404",))},
        "/api/reservations": {"get": op(
            "reservations", "Reservations, newest first", _ref("ReservationPage"), errors=("400",),
            query=PAGING + [_param("cpId"), q("status", "only this status (Requested, Accepted, Cancelled, Used, "
                                                        "...)", {"type": "string"})])},
        "/api/reservations/{reservation_id}": {"get": op(
            "reservations", "One reservation", _ref("Reservation"), errors=("404",))},
        "/api/id-tags": {
            "get": op("id-tags", "Id tags", _ref("IdTagPage"), errors=("400",),
                      query=PAGING + [q("status", "only this status",
                                        {"type": "string", "enum": list(ID_TAG_STATUSES)})]),
            "post": op("id-tags", "Add an id tag", _ref("IdTag"), status="201", errors=("400", "409"),
                       body=_ref("IdTagCreate")),
        },
        "/api/id-tags/{id_tag}": {
            "get": op("id-tags", "One id tag", _ref("IdTag"), errors=("404",)),
            "put": _also(op("id-tags", "Set an id tag (created when missing: 201; fields left out take their "
                            "defaults)", _ref("IdTag"), errors=("400",), body=_ref("IdTagChange")),
                         "201", "Created", _ref("IdTag")),
            "patch": op("id-tags", "Change the given fields of an id tag", _ref("IdTag"), errors=("400", "404"),
                        body=_ref("IdTagChange")),
            "delete": op("id-tags", "Delete an id tag", None, status="204", errors=("404",)),
        },
        **{f"/api/id-tags/{{id_tag}}/{verb}": {"post": op("id-tags", summary, _ref("IdTag"), errors=("404",))}
           for verb, summary in (("block", "Block an id tag"), ("unblock", "Set an id tag Accepted again"),
                                 ("expire", "Expire an id tag now"))},
    }


def _gateway_paths() -> dict[str, dict[str, Schema]]:
    text = {"type": "string"}
    refusal = {"text/html": {"schema": {"type": "string", "description": "the reason, a sentence"}}}
    socket = {
        "tags": ["charger-socket"],
        "security": [],  # chargers are not API users
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
                    "content": {**refusal, "application/json": {"schema": _ref("Error")}}},
            "404": {"description": "refused: the URL does not end with a charge point id", "content": refusal},
            "405": {"$ref": "#/components/responses/MethodNotAllowed"},
        },
    }
    return {
        "/health": {"get": op("gateway", "Liveness and version", _ref("Health"), public=True)},
        "/metrics": {"get": op("gateway", "Prometheus metrics (text format)", text, media="text/plain")},
        "/openapi.json": {"get": op("gateway", "This OpenAPI document", {"type": "object"})},
        "/docs": {"get": op("gateway", "This document, rendered (self-contained HTML)", text, media="text/html")},
        "/web": {"get": op("gateway", "The web console (self-contained HTML); it logs in with the API's accounts",
                           text, media="text/html", public=True)},
        "/ocpp/{rest}": {"get": socket},
    }


def _with_path_parameters(paths: dict[str, dict[str, Schema]]) -> dict[str, dict[str, Schema]]:
    for path, item in paths.items():
        names = re.findall(r"{(\w+)}", path)
        for operation in item.values():
            operation["parameters"] = [_param(f"path.{n}") for n in names] + operation.get("parameters", [])
            if not operation["parameters"]:
                del operation["parameters"]
    return paths


TAGS = [
    ("gateway", "Health, metrics and this documentation"),
    ("ocpp", "The seed-compatible GET API (API.md section 1)"),
    ("shortcuts", "Everyday commands: GET with the payload in the query, or POST with it as the body"),
    ("call", "Every central-system action (API.md section 2)"),
    ("chargers", "Records: chargers and what they reported"),
    ("transactions", "Records: transactions and meter values"),
    ("frames", "Records: the frame log"),
    ("commands", "Records: commands sent and their answers"),
    ("reservations", "Records: reservations"),
    ("id-tags", "The id-tag table that Authorize and StartTransaction are answered from"),
    ("auth", "Logging in and API tokens, in the EVCS envelope {code, message, data, timestamp, path}"),
    ("orders", "Orders, one per charging session, in the EVCS envelope"),
    ("payments", "Payments, refunds and the providers' callbacks, in the EVCS envelope (callbacks excepted)"),
    ("reconciliation", "Mismatches between payments, refunds, orders and the providers"),
    ("charger-socket", "Where chargers connect"),
]


def _evcs(data: Schema) -> Schema:
    return _record("code:int message:str timestamp:time path:str", data=data)


def _auth_paths() -> dict[str, dict[str, Schema]]:
    user = _record("id:int username:str role:str")
    token = _record("id:int username:str name:str prefix:str createdAt:time lastUsedAt:time? revokedAt:time?")
    return {
        "/api/auth/login": {"post": op(
            "auth", "Log in: a signed token (JWT) for Authorization: Bearer", _evcs(
                _record("token:str expireTime:time", userInfo=user)),
            errors=("400", "401", "403", "421", "429"), public=True,
            body=_record("username:str password:str"))},
        "/api/auth/logout": {"post": op(
            "auth", "Log out: a login token ends, with every other login token of the account; an API token "
                    "is revoked (HTTP Basic has nothing to end: 400)",
            _evcs(_record("username:str loggedOut:bool")), errors=("400",))},
        "/api/auth/userinfo": {"get": op(
            "auth", "Who the credentials belong to", _evcs(_record("username:str role:str authenticatedBy:str")))},
        "/api/auth/tokens": {
            "get": op("auth", "API tokens (an admin sees everyone's)", _evcs(_list(token)), errors=("400",)),
            "post": op("auth", "Create an API token for scripts; it is shown once", _evcs(
                _record("id:int name:str token:str prefix:str note:str")), errors=("400",), status="201",
                body=_record("name:str")),
        },
        "/api/auth/tokens/{token_id}": {"delete": op(
            "auth", "Revoke an API token", _evcs(_record("id:int revoked:bool")), errors=("400", "404"))},
    }


ORDER_STATUS = {"type": "integer", "enum": [0, 1, 2, 10, 11, 12, 13],
                "description": "0 created/charging, 1 completed (metered), 2 cancelled, 10 awaiting payment, "
                               "11 paid, 12 refunding, 13 refunded"}
ORDER = _record(
    "id:int orderNo:str sessionId:str transactionId:int? remoteStartRequestId:str? chargePointId:str "
    "connectorId:int? idTag:str? statusName:str tariff:str currency:str startedAt:str? stoppedAt:str? "
    "meterStart:int? meterStop:int? energyWh:int? energyAmount:int? serviceAmount:int? totalAmount:int? "
    "pricingMethod:str? pricingNote:str? pricing:obj? paidAmount:int refundedAmount:int createdAt:time updatedAt:time "
    "tariffVersionId:int? startSource:str? stopSource:str? chargerStartedAt:str? chargerStoppedAt:str? timezone:str",
    "An order: money in minor units of currency (fen, cents). pricing: {tariff, tariffVersion, timezone, serviceFee, "
    "lines: [{start, end, price, serviceFee, energyWh, amount, occurrences}]}; pricingMethod meter_values or "
    "time_proportional (no meter values inside the session: energy split in proportion to time). startedAt and "
    "stoppedAt are the times the session is priced on; startSource and stopSource say whose clock they are "
    "(charger, gateway: the charger's time was implausible and the receive time is used, operator: corrected); "
    "chargerStartedAt and chargerStoppedAt are what the charger sent. timezone: the zone of the tariff periods.",
    status=ORDER_STATUS)
PAYMENT = _record("id:int tradeNo:str orderId:int channel:str amount:int currency:str status:str "
                  "idempotencyKey:str? providerTradeNo:str? payUrl:str? note:str? createdBy:str? createdAt:time "
                  "paidAt:time? updatedAt:time expiresAt:time? closeState:str? closeAttempts:int closeNote:str?",
                  "A payment; payUrl is what the payer's QR code holds (alipay, wechat) until expiresAt. status "
                  "CREATED, PAID, CLOSED, FAILED (never opened), REFUNDED (refunds cover it). closeState: null, or "
                  "pending / closed / failed for a trade closed at the provider because its order was cancelled, "
                  "paid another way or switched channel (closeNote: the last error)")
REFUND = _record("id:int refundNo:str paymentId:int orderId:int amount:int status:str providerRefundId:str? "
                 "reason:str? source:str note:str? createdAt:time settledAt:time? updatedAt:time",
                 "A refund. status PROCESSING, SUCCESS, ABNORMAL (WeChat: stuck; a later success settles it), "
                 "CLOSED (WeChat closed it), FAILED (the provider refused: note says why), CANCELLED (given up). "
                 "source: gateway, or provider (started in the merchant console, learnt from its notice)")
ORDER_DETAIL = _record("", **ORDER["properties"], history=_list(_record(
    "fromStatus:int? toStatus:int cause:str at:time detail:obj?",
    "detail: for a correction {by, reason, before, after}")),
                       payments=_list(_ref("Payment")), refunds=_list(_ref("Refund")))
STATS_BUCKET = "orders:int energyWh:int amount:int paid:int refunded:int revenue:int"
BILL_TOTALS = _record("payments:int paidAmount:int refunds:int refundedAmount:int fees:int settlement:int",
                      "the provider's bill for the day, summed (minor units): fees kept, amounts settled")
REPORT = _record(
    "channel:str day:str timezone:str since:time until:time generatedAt:time providerQueried:bool source:str "
    "billError:str? payments:int paid:int paidAmount:int refundedAmount:int balanced:bool",
    "source: bill (the provider's daily bill, line by line), queries (trade by trade: the bill could not be had, "
    "billError says why) or ours. Kinds: payment_without_paid_order, amount_mismatch, double_payment, "
    "refund_mismatch, refund_failed, refund_pending, paid_order_without_payment; against the bill: unknown_trade, "
    "missed_payment, bill_amount_mismatch, missing_from_bill, refund_elsewhere, missed_refund, "
    "refund_amount_mismatch, refund_missing_from_bill; trade by trade: missed_payment, unconfirmed_payment, "
    "provider_unreachable",
    bill={"oneOf": [BILL_TOTALS, {"type": "null"}]},
    mismatches=_list(_record("kind:str tradeNo:str? orderNo:str? refundNo:str? providerAmount:int? ourAmount:int? "
                             "detail:str")))
SCHEMAS.update({"Order": ORDER, "OrderDetail": ORDER_DETAIL, "Payment": PAYMENT, "Refund": REFUND,
                "ReconciliationReport": REPORT})


def _with_csv(operation: Schema) -> Schema:
    """An operation that answers text/csv too (format=csv)."""
    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return operation


def _billing_paths() -> dict[str, dict[str, Schema]]:
    def q(name: str, description: str, schema: Schema, required: bool = False) -> Schema:
        return {"name": name, "in": "query", "description": description, "schema": schema, "required": required}

    order = _evcs(_ref("OrderDetail"))
    refunded = _evcs(_record("", refund=_ref("Refund"), order=_ref("Order")))
    reason = {"type": "object", "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 200}}}
    by_order = {"type": "object", "description": "orderId (id or ORD-... number) or sessionId", "properties": {
        "orderId": {"type": ["integer", "string"]}, "sessionId": {"type": "string", "minLength": 1, "maxLength": 64}}}

    def change(summary: str, body: Schema | None = None) -> dict[str, Schema]:
        return {"post": op("orders", summary, order, errors=("400", "404", "409", "502p"), body=body,
                           body_required=False)}

    def callback(summary: str, media: str) -> dict[str, Schema]:
        if media == "form":
            body, answers = "application/x-www-form-urlencoded", {"200": {
                "description": "exactly success (processed, or a repeat of one processed), otherwise fail",
                "content": {"text/plain": {"schema": {"type": "string", "enum": ["success", "fail"]}}}}}
        else:
            body, answers = "application/json", {
                "204": {"description": "processed, or a repeat of one processed"},
                "400": {"description": "refused", "content": {"application/json": {
                    "schema": _record("code:str message:str")}}},
                "500": {"description": "not processed now (kept: processed at the next start, or on retry)",
                        "content": {"application/json": {"schema": _record("code:str message:str")}}}}
        answers["429"] = {"description": "too many refused callbacks from this address in the last minute "
                                         "(billing.callback_refusals_per_minute): not stored, try again later",
                          "content": {"application/json": {"schema": _record("code:str message:str")}}}
        return {"post": {"tags": ["payments"], "summary": summary, "security": [],
                         "requestBody": {"required": True, "content": {body: {"schema": {}}}},
                         "responses": answers}}

    return {
        "/api/order": {"get": op(
            "orders", "Orders, newest first", _evcs(_record("total:int page:int size:int", records=_list(_ref("Order")))),
            errors=("400", "404"), query=PAGING + [_param("cpId"), _param("since"), _param("until"),
                                                    q("status", "only orders in this status", ORDER_STATUS)])},
        "/api/order/statistics": {"get": op(
            "orders", "Count, energy and money by day (billing time zone) and by charger; cancelled orders count "
            "in orders, paid and refunded only. paid: money received for the orders (also a second payment, or one "
            "for a cancelled order); refunded: refunds that succeeded; revenue = paid - refunded", _evcs(_record("currency:str timezone:str", total=_record(STATS_BUCKET),
                                            byDay=_list(_record("day:str " + STATS_BUCKET)),
                                            byCharger=_list(_record("chargePointId:str " + STATS_BUCKET)))),
            errors=("400", "404"), query=[_param("cpId"), _param("since"), _param("until")])},
        "/api/order/tariffs": {"get": op(
            "orders", "Every recorded version of every tariff, and the zone of their periods",
            _evcs(_record("timezone:str defaultTariff:str", versions=_list(_record(
                "name:str version:int currency:str definition:obj effectiveFrom:time configured:bool",
                "definition: periods and service_fee as in the config; a version applies to sessions that start "
                "at or after effectiveFrom (the start that first read it)")))),
            errors=("404",))},
        "/api/order/by-session": {"get": op(
            "orders", "The order of a charging session", order, errors=("400", "404"),
            query=[q("sessionId", "the session id given to /api/order/start, or tx-<transactionId>", {"type": "string"}),
                   q("transactionId", "or the OCPP transaction id", {"type": "integer"})])},
        "/api/order/start": {"post": op(
            "orders", "Open an order and start charging (RemoteStartTransaction); idempotent by sessionId",
            _evcs(_record("", **ORDER_DETAIL["properties"], remoteStart=_record("requestId:str status:str"))),
            errors=("400", "404c", "409"), status="201", query=[_param("timeoutSeconds")],
            description="A repeated call with the same sessionId answers 200 with the order and sends nothing. The "
                        "order is cancelled (2) when the charger does not accept. It is linked to the transaction "
                        "the charger starts, and closed and priced when that stops.",
            body={"type": "object", "required": ["sessionId", "cpId", "idTag"], "properties": {
                "sessionId": {"type": "string", "minLength": 1, "maxLength": 64},
                "cpId": {"type": "string"}, "idTag": {"type": "string", "minLength": 1, "maxLength": 20},
                "connectorId": {"type": "integer", "minimum": 1}}})},
        "/api/order/stop": {"post": op(
            "orders", "Stop the session's charging (RemoteStopTransaction); idempotent",
            _evcs(_record("", **ORDER_DETAIL["properties"], remoteStop=_record("requestId:str status:str"))),
            errors=("400", "404", "502", "504"), body=by_order, query=[_param("timeoutSeconds")])},
        "/api/order/{order_ref}": {"get": op("orders", "One order with its history, payments and refunds", order,
                                             errors=("404",))},
        "/api/order/{order_ref}/correct": {"post": op(
            "orders", "Correct a completed order's energy and/or times, and price it again", order,
            errors=("400", "404", "409"),
            description="For a completed order (1) not yet to pay, priced or not (a charger's bad clock or meter): "
                        "the given fields replace the order's, it is priced again by time with the tariff version it "
                        "recorded, and the correction (by, reason, before, after) goes into its history. A time "
                        "without a zone is read in billing.timezone (a charger's, per OCPP, in UTC).",
            body={"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
                "energyWh": {"type": "integer", "minimum": 0},
                "startedAt": {"type": "string", "description": "ISO 8601"},
                "stoppedAt": {"type": "string", "description": "ISO 8601"},
                "reason": {"type": "string", "minLength": 1, "maxLength": 200}}})},
        "/api/order/{order_ref}/to-pay": change("Completed (1) -> awaiting payment (10)"),
        "/api/order/{order_ref}/paid": change(
            "Awaiting payment (10) -> paid (11): the operator took the money (a manual payment is recorded)",
            {"type": "object", "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 200}}}),
        "/api/order/{order_ref}/cancel": change("Created (0), completed (1) or awaiting payment (10) -> cancelled (2)",
                                                reason),
        "/api/order/{order_ref}/refunding": change(
            "Paid (11) -> refunding (12): refunds the payment (through the provider for alipay and wechat)", reason),
        "/api/order/{order_ref}/refunded": change("Refunding (12) -> refunded (13), for manual payments"),
        "/api/payment/create": {"post": op(
            "payments", "A payment for an order: manual (paid at once), alipay or wechat (a QR code to pay)",
            _evcs(_record("", payment=_ref("Payment"), order=_ref("Order"))), errors=("400", "404", "409", "502p"),
            description="Idempotent by the Idempotency-Key header (or idempotencyKey): the same key answers the "
                        "same payment.",
            body={**by_order, "required": ["channel"], "properties": {
                **by_order["properties"], "channel": {"type": "string", "enum": ["manual", "alipay", "wechat"]},
                "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": 100}}})},
        "/api/payment/query/{trade_no}": {"get": op(
            "payments", "A payment, and the provider's view of it (a payment it reports paid is applied)",
            _evcs(_record("", payment=_ref("Payment"), provider={"type": ["object", "null"]})), errors=("404",))},
        "/api/payment/refund": {"post": op(
            "payments", "Refund a paid payment, in full or in part", refunded, errors=("400", "404", "409", "502p"),
            description="amount (minor units) defaults to what is left to refund; several refunds of one payment "
                        "may not exceed it (409 says what is left). The order is refunding (12) while a refund is "
                        "open, refunded (13) once refunds cover the payment, else paid (11) with refundedAmount. "
                        "Asked again while a refund is open, the same refund answers and nothing is sent again. "
                        "Unknown body fields are a 400.",
            body={"type": "object", "additionalProperties": False, "properties": {
                **by_order["properties"], "tradeNo": {"type": "string"},
                "amount": {"type": "integer", "minimum": 1},
                "reason": {"type": "string", "minLength": 1, "maxLength": 200}}})},
        "/api/payment/refund/{refund_no}": {"get": op(
            "payments", "A refund, and the provider's view of it (a refund it reports settled is applied)",
            _evcs(_record("", refund=_ref("Refund"), provider={"type": ["object", "null"]})), errors=("404",))},
        "/api/payment/refund/{refund_no}/retry": {"post": op(
            "payments", "Ask the provider again for a failed or abnormal refund, with the same refund number "
            "(the providers deduplicate by it)", refunded, errors=("400", "404", "409", "502p"))},
        "/api/payment/refund/{refund_no}/give-up": {"post": op(
            "payments", "Give a failed, abnormal or closed refund up (CANCELLED): the order is back to paid (11), "
            "or refunded (13) if other refunds cover it", refunded, errors=("400", "404", "409"))},
        "/api/payment/callbacks/{callback_id}": {"get": op(
            "payments", "One callback as received (operator): headers without credentials, body as UTF-8 text or "
            "base64", _evcs(_record("id:int channel:str kind:str headers:obj body:str bodyEncoding:str "
                                    "remoteAddr:str? receivedAt:time status:str notifyId:str? tradeNo:str? "
                                    "reason:str? processedAt:time?")), errors=("404",))},
        "/api/payment/callbacks": {"get": op(
            "payments", "Provider callbacks as received, newest first, with what became of them (refused ones "
            "are kept within billing.refused_callbacks_max_bytes)",
            _evcs(_list(_record("id:int channel:str kind:str remoteAddr:str? receivedAt:time status:str "
                                "notifyId:str? tradeNo:str? reason:str? processedAt:time?"))),
            errors=("400", "404"), query=[q("limit", "how many", {"type": "integer", "minimum": 1,
                                                                 "maximum": params.PAGE_SIZE_MAX})])},
        "/api/payment/callback/alipay": callback("Alipay asynchronous notification (RSA2-signed form)", "form"),
        "/api/payment/callback/alipay/refund": callback("Alipay refund notification (RSA2-signed form)", "form"),
        "/api/payment/callback/wechat": callback("WeChat Pay v3 payment notification (signed, encrypted JSON)", "json"),
        "/api/payment/callback/wechat/refund": callback("WeChat Pay v3 refund notification", "json"),
        "/api/reconciliation/execute": {"post": op(
            "reconciliation", "Reconcile a day (default yesterday) for one channel or every configured one, asking "
            "the providers; the reports are kept", _evcs(_list(_ref("ReconciliationReport"))),
            errors=("400", "404"), body={"type": "object", "properties": {
                "day": {"type": "string", "format": "date"}, "channel": {"type": "string"}}}, body_required=False)},
        "/api/reconciliation/daily/{channel}": {"get": _with_csv(op(
            "reconciliation", "The day's last executed report (or one computed now from our records alone)",
            _evcs(_ref("ReconciliationReport")), errors=("400", "404"),
            query=[q("date", "the day (billing time zone); default yesterday", {"type": "string", "format": "date"}),
                   q("format", "json (default), or csv: the mismatches, one line each (amounts in minor units)",
                     {"type": "string", "enum": ["json", "csv"]})]))},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    ocpp = {f"{action}{kind.title()}": ocpp_schema(action, kind)
            for action in sorted(CENTRAL_ACTIONS) for kind in ("request", "response")}
    paths = {**_gateway_paths(), **_auth_paths(), **_seed_paths(), **shortcut_paths(), **_call_paths(),
             **_records_paths(), **_billing_paths()}
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "OCPP 1.6J gateway HTTP API",
            "version": __version__,
            "description": "Every answer is JSON unless said otherwise; times are UTC ISO 8601 with a Z. Errors "
                           "use one envelope (components.schemas.Error). Commands wait for the charger's answer "
                           "(timeoutSeconds) unless wait=false.",
        },
        "tags": [{"name": name, "description": description} for name, description in TAGS],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": _with_path_parameters(paths),
        "components": {
            "schemas": {**SCHEMAS, **ocpp},
            "parameters": {**{name: {"name": name, "in": "query", **spec} for name, spec in _QUERY.items()},
                           **{f"path.{name}": {"name": name, "in": "path", "required": True, **spec}
                              for name, spec in _PATH.items()}},
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "an account's user name and password"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a login token (POST /api/auth/login) or an API token (gw_...)"},
            },
            "responses": {name: {"description": description,
                                 "content": {"application/json": {"schema": _ref("Error")}}}
                          for name, description in (*ERRORS.values(), NOT_CONNECTED)},
        },
    })


def docs_page() -> str:
    return resources.files(__package__).joinpath("static", "docs.html").read_text("utf-8")
