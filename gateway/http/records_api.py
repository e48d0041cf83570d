"""REST records read from SQLite (docs/api.md section 4), and id-tag management."""

from __future__ import annotations

from typing import Any

from quart import jsonify, request

from .. import clock
from ..chargepoint.charger_auth import hash_key, key_problem
from ..chargepoint.handshake import check_id
from ..store.store import Store
from . import params
from .errors import ApiError
from .ocpp_api import status_view
from .routes import ADMIN, OPERATOR, VIEWER, Routes
from .schemas import PAGING, also, list_of, op, param, query, record, ref
from .services import Limits, services

routes = Routes("records_api", __name__, "/api")

ID_TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
SECURITY = record("chargePointId:str securityProfile:int hasAuthorizationKey:bool")


def _store() -> Store:
    return services().chargers.store


def _online(cp_id: str) -> bool:
    return cp_id in services().chargers.registry


def _paged(result: dict, shape=params.camel) -> Any:
    return jsonify({**result, "records": [shape(r) for r in result["records"]]})


def _not_found(what: str, key: Any) -> ApiError:
    return ApiError(404, "not_found", f"{what} {key!r} is not known")


async def _charger(cp_id: str) -> dict[str, Any]:
    cp = await _store().chargers.get(cp_id)
    if cp is None:
        raise _not_found("charge point", cp_id)
    return cp


async def _charger_to_set_up(cp_id: str) -> str:
    """The stored form of an id a route may add a record for (the handshake's rules), or a 400/409."""
    try:
        cp_id = check_id(cp_id)
    except ValueError as bad:
        raise params.bad(str(bad)) from None
    if not await _store().registry.visible(cp_id):  # another tenant's charger, or one only the platform may set up
        raise _not_found("charge point", cp_id)
    known = await _store().chargers.admission(cp_id)
    if known.lookalike is not None:
        raise ApiError(409, "conflict", f"charge point id {cp_id!r} looks like the known charger "
                                        f"{known.lookalike!r}", cpId=cp_id, existing=known.lookalike)
    return cp_id


# ---- chargers -----------------------------------------------------------------

@routes.route("/chargers", role=VIEWER, get=op(
    "chargers", "Chargers, a page at a time", ref("ChargerStatusPage"), errors=("400",),
    query=PAGING + [query("online", "only online (true) or offline (false) chargers", {"type": "boolean"})],
    description="violations are left out here: GET /api/chargers/{cp_id} has them."))
async def chargers() -> Any:
    page, size = params.paging()
    online = params.flag("online", None)
    result = await _store().chargers.page(online, page, size)
    return _paged(result, lambda cp: status_view(cp, _online(cp["id"]), None))


@routes.route("/chargers/<cp_id>", role=VIEWER, get=op(
    "chargers", "One charger with its configuration snapshot", ref("Charger"), errors=("404",)))
async def charger(cp_id: str) -> Any:
    cp = await _charger(cp_id)
    view = status_view(cp, _online(cp_id), await _store().chargers.violations(cp_id))
    view["configuration"] = [params.camel(k) for k in await _store().configuration.get(cp_id)]
    return jsonify(view)


@routes.route("/chargers/<cp_id>/configuration", role=VIEWER, get=op(
    "chargers", "Configuration snapshot (last GetConfiguration, accepted changes applied)",
    list_of(ref("ConfigurationKey")), errors=("404",)))
async def configuration(cp_id: str) -> Any:
    await _charger(cp_id)
    return jsonify([params.camel(k) for k in await _store().configuration.get(cp_id)])


@routes.route("/chargers/<cp_id>/registration", role=OPERATOR, put=op(
    "chargers", "How the charger's next BootNotification is answered (accept a Pending charger)",
    record("chargePointId:str registrationStatus:str"), errors=("400", "409"),
    body={"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": ["Accepted", "Pending", "Rejected"]}}}))
async def set_registration(cp_id: str) -> Any:
    """Accept (or reject) a charger: its next BootNotification is answered so. Chargers the policy
    `charger.unknown_chargers = "pending"` answered Pending wait for this."""
    status = (await _json_object()).get("status")
    if status not in ("Accepted", "Pending", "Rejected"):
        raise params.bad("status must be Accepted, Pending or Rejected")
    cp_id = await _charger_to_set_up(cp_id)
    await _store().chargers.set_registration(cp_id, status, clock.iso())
    return jsonify({"chargePointId": cp_id, "registrationStatus": status})


@routes.route("/chargers/<cp_id>/security", role=VIEWER, get=op(
    "chargers", "The charger's OCPP security profile (the key itself is never shown)", SECURITY, errors=("404",)))
async def security(cp_id: str) -> Any:
    cp = await _charger(cp_id)
    return jsonify({"chargePointId": cp_id, "securityProfile": cp["security_profile"],
                    "hasAuthorizationKey": cp["has_authorization_key"]})


@routes.route("/chargers/<cp_id>/security", role=ADMIN, put=op(  # who may connect as a charger
    "chargers", "Set the security profile and/or the AuthorizationKey (admin); 2 and 3 need the wss:// listener",
    SECURITY, errors=("400", "404", "409"), body={**record("securityProfile:int"), "properties": {
        "securityProfile": {"type": "integer", "enum": [0, 1, 2, 3]},
        "authorizationKey": {"type": "string", "minLength": 16, "maxLength": 40}}}))
async def set_security(cp_id: str) -> Any:
    """Security profile 0 (none) or 1 (HTTP Basic with the AuthorizationKey); a charger may be set up
    before it first connects. The key is kept hashed and never shown."""
    body = await _json_object()
    profile = body.get("securityProfile")
    key = body.get("authorizationKey")
    if profile not in (0, 1, 2, 3):
        raise params.bad("securityProfile must be 0, 1, 2 or 3")
    if profile >= 2 and profile not in services().chargers.tls_profiles:
        needs = "ocpp_tls with tls_client_ca" if profile == 3 else "ocpp_tls"
        raise params.bad(f"security profile {profile} needs the wss:// listener: configure {needs}")
    if key is not None and (problem := key_problem(key)):
        raise params.bad(f"authorizationKey: {problem}")
    cp_id = await _charger_to_set_up(cp_id)
    current = await _store().chargers.security(cp_id)
    if profile in (1, 2) and key is None and current[1] is None:
        raise params.bad(f"security profile {profile} needs an authorizationKey: none is known for this charger")
    await _store().chargers.set_security(cp_id, profile, hash_key(key) if key else None, clock.iso())
    return await security(cp_id)


@routes.route("/chargers/<cp_id>/violations", role=VIEWER, get=op(
    "chargers", "Protocol violations, latest first", list_of(ref("ViolationRecord")), errors=("404",)))
async def violations(cp_id: str) -> Any:
    await _charger(cp_id)
    return jsonify([params.camel(v) for v in await _store().chargers.violations(cp_id)])


@routes.route("/chargers/<cp_id>/local-lists", role=VIEWER, get=op(
    "chargers", "Local lists sent, latest first", ref("LocalListPage"), errors=("400", "404"), query=PAGING))
async def local_lists(cp_id: str) -> Any:
    await _charger(cp_id)
    page, size = params.paging()
    return _paged(await _store().local_lists.page(cp_id, page, size))


@routes.route("/chargers/<cp_id>/charging-profiles", role=VIEWER, get=op(
    "chargers", "Charging profiles sent, latest first", ref("ChargingProfilePage"), errors=("400", "404"),
    query=PAGING + [query("active", "only accepted profiles not cleared", {"type": "boolean", "default": False})]))
async def charging_profiles(cp_id: str) -> Any:
    await _charger(cp_id)
    active = params.flag("active", False)
    page, size = params.paging()
    return _paged(await _store().charging_profiles.page(cp_id, active, page, size))


@routes.route("/chargers/<cp_id>/notifications", role=VIEWER, get=op(
    "chargers", "Firmware, diagnostics, log and security reports, DataTransfers", ref("NotificationPage"),
    errors=("400", "404"), query=PAGING + [query("action", "only this action's reports", {"type": "string"})]))
async def notifications(cp_id: str) -> Any:
    """Firmware, diagnostics, log and security reports, and the charger's DataTransfers."""
    await _charger(cp_id)
    page, size = params.paging()
    return _paged(await _store().notifications.page(cp_id, request.args.get("action") or None, page, size))


# ---- transactions -------------------------------------------------------------

@routes.route("/transactions", role=VIEWER, get=op(
    "transactions", "Transactions, newest first", ref("TransactionPage"), errors=("400",),
    query=PAGING + [param("cpId"), query("state", "open or closed", {"type": "string", "enum": ["open", "closed"]}),
                    param("since"), param("until")]))
async def transactions() -> Any:
    page, size = params.paging()
    state = request.args.get("state") or None
    if state not in (None, "open", "closed"):
        raise params.bad(f"state must be open or closed, not {state!r}")
    result = await _store().transactions.list(request.args.get("cpId") or None, state, params.time("since"),
                                              params.time("until"), page, size)
    return _paged(result)


@routes.route("/transactions/<int(max=9223372036854775807):transaction_id>", role=VIEWER, get=op(
    "transactions", "One transaction with its meter values", ref("TransactionWithMeterValues"), errors=("404",)))
async def transaction(transaction_id: int) -> Any:
    tx = await _store().transactions.get(transaction_id)
    if tx is None:
        raise _not_found("transaction", transaction_id)
    samples = await _store().transactions.samples(transaction_id)
    return jsonify({**params.camel(tx), "meterValues": [params.camel(s) for s in samples]})


# ---- frames and commands -----------------------------------------------------

def _frames_op(limits: Limits) -> dict[str, Any]:
    return op("frames", "The frame log, newest first (by the time the gateway received each frame, then id)",
              ref("FramePage"), errors=("400",),
              query=[param("cpId"), param("since"), param("until"),
                     query("before", "only frames older than this frame (paging back: the nextBefore of the last "
                           "page)", {"type": "integer", "minimum": 1}),
                     query("limit", "frames per answer", {"type": "integer", "minimum": 1,
                                                          "maximum": limits.max_page_size,
                                                          "default": min(params.LIMIT_DEFAULT, limits.max_page_size)}),
                     query("action", "only frames of this action (a CALLRESULT or CALLERROR has its CALL's)",
                           {"type": "string"}),
                     query("direction", "only frames from the charger (in), to it (out), or the gateway's notes of "
                           "its connections (event)", {"type": "string", "enum": list(FRAME_DIRECTIONS)}),
                     query("text", "only frames holding this text (ASCII letters of either case)",
                           {"type": "string"})])


FRAME_DIRECTIONS = ("in", "out", "event")


@routes.route("/frames", role=VIEWER, get=_frames_op)
async def frames() -> Any:
    limit = params.limit()
    direction = request.args.get("direction") or None
    if direction not in (None, *FRAME_DIRECTIONS):
        raise params.bad(f"direction must be in, out or event, not {direction[:40]!r}")
    rows = await _store().frames.recent(request.args.get("cpId") or None, params.time("since"),
                                        params.time("until"), params.integer("before", None, low=1), limit,
                                        request.args.get("action") or None, direction,
                                        request.args.get("text") or None)
    return jsonify({"records": [params.camel(r) for r in rows],
                    "nextBefore": rows[-1]["id"] if len(rows) == limit else None})


@routes.route("/commands", role=VIEWER, get=op(
    "commands", "Commands sent, newest first", ref("CommandPage"), errors=("400",),
    query=PAGING + [param("cpId"), query("action", "only this action", {"type": "string"})]))
async def commands() -> Any:
    page, size = params.paging()
    result = await _store().commands.list(request.args.get("cpId") or None, request.args.get("action") or None,
                                          page, size)
    return _paged(result)


@routes.route("/commands/<request_id>", role=VIEWER, get=op(
    "commands", "One command with its answer or error", ref("Command"), errors=("404",)))
async def command(request_id: str) -> Any:
    row = await _store().commands.get(request_id)
    if row is None:
        raise _not_found("command", request_id)
    return jsonify(params.camel(row))


# ---- reservations ---------------------------------------------------------------

def _reservation_view(row: dict[str, Any]) -> dict[str, Any]:
    """`status` as recorded; `effectiveStatus` says Expired once an accepted one is past its expiry."""
    view = params.camel(row)
    expiry = clock.parse(row["expiry_date"])
    expired = row["status"] == "Accepted" and expiry is not None and expiry <= clock.now()
    view["effectiveStatus"] = "Expired" if expired else row["status"]
    return view


@routes.route("/reservations", role=VIEWER, get=op(
    "reservations", "Reservations, newest first", ref("ReservationPage"), errors=("400",),
    query=PAGING + [param("cpId"), query("status", "only this status (Requested, Accepted, Cancelled, Used, ...)",
                                         {"type": "string"})]))
async def reservations() -> Any:
    page, size = params.paging()
    result = await _store().reservations.list(request.args.get("cpId") or None,
                                              request.args.get("status") or None, page, size)
    return _paged(result, _reservation_view)


@routes.route("/reservations/<int(max=9223372036854775807):reservation_id>", role=VIEWER, get=op(
    "reservations", "One reservation", ref("Reservation"), errors=("404",)))
async def reservation(reservation_id: int) -> Any:
    row = await _store().reservations.get(reservation_id)
    if row is None:
        raise _not_found("reservation", reservation_id)
    return jsonify(_reservation_view(row))


# ---- id tags --------------------------------------------------------------------

def _id_tag_view(row: dict[str, Any]) -> dict[str, Any]:
    view = params.camel(row)
    expiry = clock.parse(row["expiry_date"]) if row.get("expiry_date") else None
    view["effectiveStatus"] = "Expired" if (row["status"] == "Accepted" and expiry and expiry <= clock.now()) \
        else row["status"]
    return view


def _check_tag(id_tag: str) -> None:
    if not id_tag or len(id_tag) > 20:
        raise params.bad("idTag must be 1 to 20 characters (IdToken, OCPP 1.6)")


async def _tag_fields(body: dict[str, Any], current: dict[str, Any] | None) -> tuple[str, str | None, str | None]:
    status = body.get("status", current["status"] if current else "Accepted")
    if status not in ID_TAG_STATUSES:
        raise params.bad(f"status must be one of {', '.join(ID_TAG_STATUSES)}, not {status!r}")
    expiry = body.get("expiryDate", current["expiry_date"] if current else None)
    if expiry is not None:
        moment = clock.parse(expiry) if isinstance(expiry, str) else None
        if moment is None:
            raise params.bad(f"expiryDate must be an ISO 8601 time, not {expiry!r}")
        expiry = clock.iso(moment)
    parent = body.get("parentIdTag", current["parent_id_tag"] if current else None)
    if parent is not None and (not isinstance(parent, str) or not 0 < len(parent) <= 20):
        raise params.bad("parentIdTag must be 1 to 20 characters")
    return status, expiry, parent


async def _json_object() -> dict[str, Any]:
    body = await params.json_body()
    if not isinstance(body, dict):
        raise params.bad("the request body must be a JSON object")
    return body


@routes.route("/id-tags", role=VIEWER, get=op(
    "id-tags", "Id tags", ref("IdTagPage"), errors=("400",),
    query=PAGING + [query("status", "only this status", {"type": "string", "enum": list(ID_TAG_STATUSES)})]))
async def id_tags() -> Any:
    page, size = params.paging()
    status = request.args.get("status") or None
    if status not in (None, *ID_TAG_STATUSES):
        raise params.bad(f"status must be one of {', '.join(ID_TAG_STATUSES)}, not {status!r}")
    return _paged(await _store().id_tags.list(status, page, size), _id_tag_view)


@routes.route("/id-tags", role=OPERATOR, post=op(
    "id-tags", "Add an id tag", ref("IdTag"), status="201", errors=("400", "409"), body=ref("IdTagCreate")))
async def create_id_tag() -> Any:
    body = await _json_object()
    id_tag = body.get("idTag")
    if not isinstance(id_tag, str):
        raise params.bad("idTag is required")
    _check_tag(id_tag)
    if await _store().id_tags.get(id_tag) is not None:
        raise ApiError(409, "conflict", f"id tag {id_tag!r} exists already; PUT /api/id-tags/{id_tag} changes it")
    status, expiry, parent = await _tag_fields(body, None)
    await _store().id_tags.put(id_tag, status, expiry, parent, at=clock.iso())
    response = jsonify(_id_tag_view(await _store().id_tags.get(id_tag)))
    response.status_code = 201
    return response


@routes.route("/id-tags/<id_tag>", role=VIEWER, get=op("id-tags", "One id tag", ref("IdTag"), errors=("404",)))
async def id_tag(id_tag: str) -> Any:
    row = await _store().id_tags.get(id_tag)
    if row is None:
        raise _not_found("id tag", id_tag)
    return jsonify(_id_tag_view(row))


@routes.route("/id-tags/<id_tag>", role=OPERATOR, put=also(op(
    "id-tags", "Set an id tag (created when missing: 201; fields left out take their defaults)", ref("IdTag"),
    errors=("400",), body=ref("IdTagChange")), "201", "Created", ref("IdTag")), patch=op(
    "id-tags", "Change the given fields of an id tag", ref("IdTag"), errors=("400", "404"), body=ref("IdTagChange")))
async def update_id_tag(id_tag: str) -> Any:
    _check_tag(id_tag)
    current = await _store().id_tags.get(id_tag)
    if current is None and request.method == "PATCH":
        raise _not_found("id tag", id_tag)
    status, expiry, parent = await _tag_fields(await _json_object(), current if request.method == "PATCH" else None)
    await _store().id_tags.put(id_tag, status, expiry, parent, at=clock.iso())
    response = jsonify(_id_tag_view(await _store().id_tags.get(id_tag)))
    response.status_code = 201 if current is None else 200  # PUT of a new tag creates it
    return response


async def _set_tag(id_tag: str, **change: Any) -> Any:
    current = await _store().id_tags.get(id_tag)
    if current is None:
        raise _not_found("id tag", id_tag)
    fields = {"status": current["status"], "expiry_date": current["expiry_date"],
              "parent_id_tag": current["parent_id_tag"], **change}
    await _store().id_tags.put(id_tag, fields["status"], fields["expiry_date"], fields["parent_id_tag"],
                               at=clock.iso())
    return jsonify(_id_tag_view(await _store().id_tags.get(id_tag)))


@routes.route("/id-tags/<id_tag>/block", role=OPERATOR, post=op(
    "id-tags", "Block an id tag", ref("IdTag"), errors=("404",)))
async def block_id_tag(id_tag: str) -> Any:
    return await _set_tag(id_tag, status="Blocked")


@routes.route("/id-tags/<id_tag>/unblock", role=OPERATOR, post=op(
    "id-tags", "Set an id tag Accepted again", ref("IdTag"), errors=("404",)))
async def unblock_id_tag(id_tag: str) -> Any:
    return await _set_tag(id_tag, status="Accepted")


@routes.route("/id-tags/<id_tag>/expire", role=OPERATOR, post=op(
    "id-tags", "Expire an id tag now", ref("IdTag"), errors=("404",)))
async def expire_id_tag(id_tag: str) -> Any:
    return await _set_tag(id_tag, expiry_date=clock.iso())


@routes.route("/id-tags/<id_tag>", role=OPERATOR, delete=op(
    "id-tags", "Delete an id tag", None, status="204", errors=("404",)))
async def delete_id_tag(id_tag: str) -> Any:
    if not await _store().id_tags.delete(id_tag):
        raise _not_found("id tag", id_tag)
    return "", 204
