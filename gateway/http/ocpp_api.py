"""The seed-compatible GET API under /api/ocpp (docs/api.md section 1)."""

from __future__ import annotations

from typing import Any

from quart import jsonify, request

from .. import clock
from ..chargepoint.commands import CERTIFICATE_ACTIONS
from ..ocpp.actions import CENTRAL_ACTIONS
from ..store.chargers import DEVICE_FIELDS
from . import params
from .errors import ApiError
from .routes import VIEWER, Routes
from .schemas import list_of, ocpp_schema, op, paged, param, record, ref
from .services import services

routes = Routes("ocpp_api", __name__, "/api/ocpp")

# The API names the device fields as BootNotification does, but for these three.
RENAMED = {"chargePointVendor": "vendor", "chargePointModel": "model", "chargePointSerialNumber": "serialNumber"}


def _overall_status(connectors: list[dict[str, Any]]) -> str | None:
    """The charger's last status: connector 0's report, else the latest of any connector."""
    if not connectors:
        return None
    for c in connectors:
        if c["connector_id"] == 0:
            return c["status"]
    return max(connectors, key=lambda c: c["updated_at"])["status"]


def connection_view(cp: dict[str, Any], online: bool) -> dict[str, Any]:
    return {
        "chargePointId": cp["id"],
        "status": _overall_status(cp["connectors"]),
        "currentTransactionId": cp["current_transaction_id"],
        "lastSeen": cp["last_seen"],
        "connectors": {str(c["connector_id"]): c["status"] for c in cp["connectors"] if c["connector_id"] != 0},
        "online": online,
        "vendor": cp["vendor"],
        "model": cp["model"],
        "firmwareVersion": cp["firmware_version"],
    }


def status_view(cp: dict[str, Any], online: bool, violations: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One charger in full; `violations` None leaves them out (lists, where they are not read)."""
    device = {RENAMED.get(field, field): cp[column] for field, column in DEVICE_FIELDS.items()}
    device.update(cp["extra"] or {})  # customData and any other field the charger added
    view = {
        **connection_view(cp, online),
        "device": device,
        "bootedAt": cp["booted_at"],
        "registrationStatus": cp["registration_status"],
        "securityProfile": cp["security_profile"],
        "connectedAt": cp["connected_at"],
        "disconnectedAt": cp["disconnected_at"],
        "disconnectReason": cp["disconnect_reason"],
        "connectorDetails": [
            {"connectorId": c["connector_id"], "status": c["status"], "errorCode": c["error_code"],
             "info": c["info"], "vendorId": c["vendor_id"], "vendorErrorCode": c["vendor_error_code"],
             "timestamp": c["timestamp"], "updatedAt": c["updated_at"]}
            for c in cp["connectors"]
        ],
    }
    if violations is not None:
        view["violations"] = [
            {"action": v["action"], "kind": v["kind"], "code": v["code"], "path": v["path"],
             "message": v["message"], "count": v["count"], "firstSeen": v["first_seen"],
             "lastSeen": v["last_seen"]}
            for v in violations
        ]
    return view


@routes.route("/connections", role=VIEWER, get=op(
    "ocpp", "Every charger known, online first", {"oneOf": [list_of(ref("Connection")), paged("Connection")]},
    errors=("400",), query=[{**param("page"), "description": "page number, from 1; with page or size the answer is "
                                                             "one page ({records, total, page, size}), without both "
                                                             "the whole list"},
                            param("size")]))
async def connections() -> Any:
    """Every charger known, online first: the seed's plain list; with `page` or `size`, one page of it in the
    records routes' shape ({records, total, page, size}), for fleets too large to list in one answer."""
    service = services().chargers
    if "page" in request.args or "size" in request.args:
        number, size = params.paging()
        result = await service.store.chargers.page(None, number, size)  # online first, as the store knows it
        return jsonify({**result, "records": [connection_view(cp, cp["id"] in service.registry)
                                              for cp in result["records"]]})
    chargers = await service.store.chargers.list()
    chargers.sort(key=lambda cp: (cp["id"] not in service.registry, cp["id"]))  # online first
    return jsonify([connection_view(cp, cp["id"] in service.registry) for cp in chargers])


@routes.route("/status/<cp_id>", role=VIEWER, get=op(
    "ocpp", "One charger: device, connectors, violations", ref("ChargerStatus"), errors=("404",)))
async def status(cp_id: str) -> Any:
    service = services().chargers
    cp = await service.store.chargers.get(cp_id)
    if cp is None:
        raise ApiError(404, "not_found", f"charge point {cp_id!r} is not known", cpId=cp_id)
    violations = await service.store.chargers.violations(cp_id)
    return jsonify(status_view(cp, cp_id in service.registry, violations))


# ---- the actions a central system sends, for a payload editor ---------------------------------------------

def example(schema: dict[str, Any]) -> Any:
    """The smallest payload a 1.6 schema (inlined) takes: its required fields only, each the first enum value,
    the lowest number allowed, an empty text (the time now for a date-time), one item for a list that needs
    one. A start for a person to edit, not a command to send as it is."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}))] * min(1, schema.get("minItems", 0))
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return clock.iso()
    return "x" * schema.get("minLength", 0)


catalogue = Routes("ocpp_catalogue", __name__, "/api")  # read only: not under /api/ocpp/, where GETs send


@catalogue.route("/actions", role=VIEWER, get=op(
    "call", "Every action the central system can send: its 1.6 schemas, the least role, a minimal payload",
    list_of(record("action:str role:str request:obj response:obj example:obj")),
    description="For a payload editor: `example` holds the required fields only; send with POST "
                "/api/ocpp/call/{cpId}/{action}, which checks the payload against `request` first."))
async def actions() -> Any:
    return jsonify([{"action": action, "role": "admin" if action in CERTIFICATE_ACTIONS else "operator",
                     "request": (request_schema := ocpp_schema(action, "request")),
                     "response": ocpp_schema(action, "response"), "example": example(request_schema)}
                    for action in sorted(CENTRAL_ACTIONS)])
