"""Commands over HTTP: the seed-compatible GET API (docs/api.md section 1), every central-system
action through /api/ocpp/call/{cpId}/{Action} (section 2), and shortcuts for everyday ones."""

from __future__ import annotations

from typing import Any

import trio
from quart import g, jsonify, request

from .. import clock
from ..chargepoint.authorization import id_tag_info
from ..chargepoint.commands import CommandService, Sent
from ..cluster.node import StartedElsewhere
from ..events import TransactionStarted
from ..ocpp.query import payload_from_query
from . import params
from .errors import ApiError
from .routes import OPERATOR, Routes
from .schemas import COMMAND_ERRORS, COMMAND_QUERY, command_answer, kind, ocpp_schema, op, payload_query, ref
from .services import services

routes = Routes("commands_api", __name__, "/api/ocpp", commands=True)  # each GET sends a command

# GET /api/ocpp/{shortcut}/{cpId}?...  ->  the action it sends
SHORTCUTS = {
    "reset": "Reset",
    "unlock": "UnlockConnector",
    "changeAvailability": "ChangeAvailability",
    "getConfiguration": "GetConfiguration",
    "changeConfiguration": "ChangeConfiguration",
    "clearCache": "ClearCache",
    "triggerMessage": "TriggerMessage",
    "dataTransfer": "DataTransfer",
    "reserveNow": "ReserveNow",
    "cancelReservation": "CancelReservation",
    "setChargingProfile": "SetChargingProfile",
    "clearChargingProfile": "ClearChargingProfile",
    "getCompositeSchedule": "GetCompositeSchedule",
    "getDiagnostics": "GetDiagnostics",
    "updateFirmware": "UpdateFirmware",
}


def _commands() -> CommandService:
    return services().commands


def _query_payload(action: str, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    skip = params.ROUTE_PARAMS + exclude
    return payload_from_query(action, [(k, v) for k, v in request.args.lists() if k not in skip])


async def _body_payload() -> dict[str, Any]:
    if not (await request.get_data()).strip():
        return {}
    data = await params.json_body()
    if not isinstance(data, dict):
        raise params.bad("the request body must be a JSON object (the OCPP payload)")
    return data


async def _send(cp_id: str, action: str, payload: dict[str, Any]) -> Sent:
    """Send and wait; with wait=false, start it and return at once (then `result` is None)."""
    timeout = params.timeout()
    admin = g.principal.may("admin")  # security keys are the admin's (CommandService.check_security)
    if not params.flag("wait", True):
        return await _commands().start(cp_id, action, payload, timeout, admin=admin)
    return await _commands().send(cp_id, action, payload, timeout, admin=admin)


def _started(sent: Sent, **extra: Any) -> dict[str, Any]:
    """The original API's answer to wait=false."""
    return {"requestId": sent.request_id, "cpId": sent.cp_id, **extra}


def _answer(sent: Sent) -> dict[str, Any]:
    return {"requestId": sent.request_id, "cpId": sent.cp_id, "status": (sent.result or {}).get("status"),
            "result": sent.result}


ALLOCATED = {"ReserveNow": "reservationId", "SendLocalList": "listVersion"}


def _allocated(sent: Sent, given: dict[str, Any]) -> dict[str, Any]:
    """A number the gateway filled in because the caller left it out: the caller needs to know it."""
    field = ALLOCATED.get(sent.action)
    return {field: sent.payload[field]} if field and field not in given else {}


REMOTE = "requestId:str cpId:str status:str?"


@routes.route("/remoteStart/<cp_id>", role=OPERATOR, get=op(
    "ocpp", "RemoteStartTransaction", command_answer(REMOTE, ("transactionId",),
                                                     result=ref("RemoteStartTransactionResponse"),
                                                     transactionId=kind("int")),
    errors=(*COMMAND_ERRORS, "409"),  # 409: the charger is out of service
    query=payload_query("RemoteStartTransaction") + COMMAND_QUERY + [{
        "name": "waitForTransactionSeconds", "in": "query",
        "description": "also wait this long for the StartTransaction that follows and answer its "
                       "transactionId; 504 when none comes (wait is then ignored)",
        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": params.TIMEOUT_MAX}}]))
async def remote_start(cp_id: str) -> Any:
    if not request.args.get("idTag"):
        raise params.bad("the query parameter idTag is required")
    payload = _query_payload("RemoteStartTransaction")
    wait_tx = params.number("waitForTransactionSeconds", None, high=params.TIMEOUT_MAX)
    if wait_tx is None or not params.flag("wait", True):
        sent = await _send(cp_id, "RemoteStartTransaction", payload)
        return jsonify(_started(sent) if sent.result is None else _answer(sent))
    # Listen before sending: a charger may start the transaction before it answers the command.
    with services().chargers.events.subscribe() as events:
        sent = await _commands().send(cp_id, "RemoteStartTransaction", payload, params.timeout())
        body = _answer(sent)
        if body["status"] != "Accepted":
            return jsonify(body)
        with trio.move_on_after(wait_tx):
            async for event in events:
                # (StartedElsewhere: the charger is held by another node of a cluster, which tells of it)
                if (isinstance(event, (TransactionStarted, StartedElsewhere))
                        and event.remote_start_request_id == sent.request_id):
                    return jsonify({**body, "transactionId": event.transaction_id})
    raise ApiError(504, "timeout",
                   f"the charger accepted RemoteStartTransaction but started no transaction within {wait_tx:g} s",
                   **body, transactionId=None)


@routes.route("/remoteStop/<cp_id>", role=OPERATOR, get=op(
    "ocpp", "RemoteStopTransaction", command_answer(REMOTE, result=ref("RemoteStopTransactionResponse")),
    errors=COMMAND_ERRORS, query=payload_query("RemoteStopTransaction") + COMMAND_QUERY))
async def remote_stop(cp_id: str) -> Any:
    params.integer("transactionId", required=True)
    sent = await _send(cp_id, "RemoteStopTransaction", _query_payload("RemoteStopTransaction"))
    return jsonify(_started(sent) if sent.result is None else _answer(sent))


@routes.route("/localList/version/<cp_id>", role=OPERATOR, get=op(
    "ocpp", "GetLocalListVersion", command_answer("cpId:str requestId:str", result=ref("GetLocalListVersionResponse")),
    errors=COMMAND_ERRORS, query=COMMAND_QUERY))
async def local_list_version(cp_id: str) -> Any:
    sent = await _send(cp_id, "GetLocalListVersion", {})
    if sent.result is None:
        return jsonify(_started(sent))
    return jsonify({"result": sent.result, "cpId": cp_id, "requestId": sent.request_id})


@routes.route("/localList/full/<cp_id>", role=OPERATOR, get=op(
    "ocpp", "SendLocalList Full from the id-tag table", command_answer(
        "cpId:str message:str listVersion:int entries:int requestId:str",
        status={"type": "string", "enum": ["success", "failed"]}, result=ref("SendLocalListResponse")),
    errors=COMMAND_ERRORS, query=COMMAND_QUERY,
    description="Every id tag of the gateway's table valid on the charger (of its tenant and the tenants above "
                "it), as the charger's next list version."))
async def local_list_full(cp_id: str) -> Any:
    store = services().chargers.store
    now = clock.now()
    entries = [{"idTag": row["id_tag"], "idTagInfo": id_tag_info(row, False, now)}
               for row in await store.id_tags.valid_on(cp_id)]
    # No listVersion: the gateway takes this charger's next one as it sends the list.
    sent = await _send(cp_id, "SendLocalList", {"updateType": "Full", "localAuthorizationList": entries})
    version = sent.payload["listVersion"]
    if sent.result is None:
        return jsonify(_started(sent, listVersion=version))
    answered = sent.result.get("status")
    return jsonify({
        "cpId": cp_id, "status": "success" if answered == "Accepted" else "failed",
        "message": (f"local list version {version} with {len(entries)} id tags accepted" if answered == "Accepted"
                    else f"the charger answered {answered} to list version {version}"),
        "listVersion": version, "entries": len(entries), "result": sent.result, "requestId": sent.request_id,
    })


_ENTRIES = ocpp_schema("SendLocalList", "request")["properties"]["localAuthorizationList"]


@routes.route("/localList/diff/<cp_id>", role=OPERATOR, post=op(
    "ocpp", "SendLocalList Differential", command_answer("cpId:str listVersion:int requestId:str",
                                                         result=ref("SendLocalListResponse")),
    errors=COMMAND_ERRORS, query=COMMAND_QUERY, body={
        "type": "object",
        "description": "localAuthorisationList (or OCPP's spelling localAuthorizationList) is required "
                       "and not empty; listVersion defaults to the charger's next",
        "properties": {"listVersion": {"type": "integer"}, "localAuthorisationList": _ENTRIES,
                       "localAuthorizationList": _ENTRIES}}))
async def local_list_diff(cp_id: str) -> Any:
    body = await _body_payload()
    # The original API spells it localAuthorisationList; OCPP spells it localAuthorizationList. Take either.
    entries = body.get("localAuthorisationList", body.get("localAuthorizationList"))
    if not isinstance(entries, list) or not entries:
        raise params.bad("the body must hold localAuthorisationList: a non-empty list of {idTag, idTagInfo}")
    payload: dict[str, Any] = {"updateType": "Differential", "localAuthorizationList": entries}
    if body.get("listVersion") is not None:
        payload["listVersion"] = body["listVersion"]
    sent = await _send(cp_id, "SendLocalList", payload)
    version = sent.payload["listVersion"]
    if sent.result is None:
        return jsonify(_started(sent, listVersion=version))
    return jsonify({"result": sent.result, "cpId": cp_id, "listVersion": version, "requestId": sent.request_id})


def _shortcut(action: str):
    async def route(cp_id: str) -> Any:
        payload = await _body_payload() if request.method == "POST" else _query_payload(action)
        sent = await _send(cp_id, action, payload)
        if sent.result is None:
            return jsonify(_started(sent, action=action, **_allocated(sent, payload)))
        # `status` is null when the charger's answer has none (GetConfiguration, GetDiagnostics, ...).
        return jsonify({**_answer(sent), "action": action, **_allocated(sent, payload)})

    return route


def _shortcut_ops(action: str) -> dict[str, Any]:
    """GET (payload in the query) and POST (payload as the JSON body) of one shortcut route."""
    extra = {"reservationId": kind("int")} if action == "ReserveNow" else {}
    answer = command_answer("cpId:str requestId:str status:str?", action={"const": action},
                            result=ref(f"{action}Response"), **extra)
    summary = f"{action} (shortcut)"
    return {
        "get": op("shortcuts", summary, answer, errors=COMMAND_ERRORS, query=payload_query(action) + COMMAND_QUERY,
                  description=f"Sends {action}; the query parameters are its payload (objects as JSON)."),
        "post": op("shortcuts", summary, answer, errors=COMMAND_ERRORS, query=COMMAND_QUERY,
                   body=ref(f"{action}Request"), body_required=False,
                   description=f"Sends {action}; the body is its payload (none: {{}})."),
    }


for _name, _action in SHORTCUTS.items():
    routes.route(f"/{_name}/<cp_id>", role=OPERATOR, endpoint=f"shortcut_{_name}",
                 **_shortcut_ops(_action))(_shortcut(_action))


_CALL_ANSWER = command_answer("cpId:str action:str requestId:str", result={
    "type": "object", "description": "the charger's payload (components.schemas.{action}Response)"})


@routes.route("/call/<cp_id>/<action>", role=OPERATOR, get=op(
    "call", "Send any central-system action, payload in the query", _CALL_ANSWER,
    errors=(*COMMAND_ERRORS, "409"),  # 409: a remote start to a charger out of service
    query=COMMAND_QUERY + [{
        "name": "payload", "in": "query", "style": "form", "explode": True,
        "description": "the payload's fields, typed by the action's 1.6 schema: ?type=Soft; "
                       "objects and arrays as JSON",
        "schema": {"type": "object", "additionalProperties": True}}]), post=op(
    "call", "Send any central-system action, payload as the body", _CALL_ANSWER,
    errors=(*COMMAND_ERRORS, "409"),
    query=COMMAND_QUERY, body_required=False, body={
        "type": "object",
        "description": "the OCPP payload, checked against the action's 1.6 schema "
                       "(components.schemas.{action}Request); an empty body is {}"}))
async def call(cp_id: str, action: str) -> Any:
    _commands().check_action(action)
    payload = await _body_payload() if request.method == "POST" else _query_payload(action)
    sent = await _send(cp_id, action, payload)
    if sent.result is None:
        return jsonify(_started(sent, action=action, **_allocated(sent, payload)))
    return jsonify({"cpId": cp_id, "action": action, "requestId": sent.request_id, "result": sent.result,
                    **_allocated(sent, payload)})
