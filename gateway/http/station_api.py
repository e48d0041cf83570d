"""/api/station: the sites an operator runs (docs/api.md section 6), in the EVCS envelope."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from quart import request

from .. import clock
from ..store.store import Store
from . import params
from .errors import ApiError, evcs
from .routes import OPERATOR, VIEWER, Routes
from .schemas import PAGING, enveloped, list_of, op, query, record
from .services import services

routes = Routes("station_api", __name__, "/api/station")

EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG)
RADIUS_DEFAULT, RADIUS_MAX = 10.0, 20000.0  # km; 20000 is about half the circumference: every point
LIMIT_DEFAULT, LIMIT_MAX = 20, 500
_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Body field -> (column, longest text); latitude, longitude and status are checked on their own.
_TEXTS = {"stationName": ("name", 100), "address": ("address", 200), "city": ("city", 50),
          "openingHours": ("opening_hours", 100)}
_BODY = ("stationCode", "stationName", "address", "city", "latitude", "longitude", "openingHours", "status")

STATION = record(
    "stationId:int tenantId:int stationCode:str stationName:str address:str? city:str? latitude:num? longitude:num? "
    "openingHours:str? status:int chargerCount:int createdAt:time updatedAt:time",
    "A station: status 1 enabled, 0 disabled; chargerCount: the registry chargers placed there")
NEAR = record("", **STATION["properties"], distanceKm={"type": "number"})
STATION_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "stationCode": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
    "stationName": {"type": "string", "minLength": 1, "maxLength": 100},
    "address": {"type": ["string", "null"], "maxLength": 200},
    "city": {"type": ["string", "null"], "maxLength": 50},
    "latitude": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
    "longitude": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
    "openingHours": {"type": ["string", "null"], "maxLength": 100},
    "status": {"type": "integer", "enum": [0, 1]}}}
STATUS = {"type": "integer", "enum": [0, 1]}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points (degrees), on a sphere of the mean Earth radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest(stations: Iterable[dict[str, Any]], lat: float, lon: float, radius: float,
            limit: int) -> list[tuple[float, dict[str, Any]]]:
    """(distance in km rounded to metres, station) of the stations within `radius` km, nearest first (then by id)."""
    found = [(round(haversine_km(lat, lon, s["latitude"], s["longitude"]), 3), s) for s in stations]
    return sorted(((d, s) for d, s in found if d <= radius), key=lambda ds: (ds[0], ds[1]["id"]))[:limit]


def _store() -> Store:
    return services().chargers.store


def station_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"stationId": row["id"], "tenantId": row["tenant_id"], "stationCode": row["code"],
            "stationName": row["name"], "address": row["address"], "city": row["city"],
            "latitude": row["latitude"], "longitude": row["longitude"], "openingHours": row["opening_hours"],
            "status": row["enabled"], "chargerCount": row["charger_count"], "createdAt": row["created_at"],
            "updatedAt": row["updated_at"]}


def _not_found(station_id: int) -> ApiError:
    return ApiError(404, "not_found", f"station {station_id} is not known")


def _taken(code: str, holder: int) -> ApiError:
    return ApiError(409, "conflict", f"station code {code!r} is taken already (station {holder})",
                    stationCode=code, existing=holder)


def _check_code(code: Any) -> str:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise params.bad("stationCode must be 1 to 32 characters: letters, digits, _ or -")
    return code


def _status(value: Any, where: str = "status") -> int:
    if type(value) is not int or value not in (0, 1):
        raise params.bad(f"{where} must be 0 (disabled) or 1 (enabled), not {value!r}")
    return value


def _coordinate(name: str, value: Any, bound: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not -bound <= value <= bound:
        raise params.bad(f"{name} must be a number from {-bound} to {bound}, not {value!r}")
    return float(value)


def _fields(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a station body sets (all of them for a new station: current None), checked."""
    params.only(body, _BODY)
    fields: dict[str, Any] = {}
    if current is None or "stationCode" in body:
        fields["code"] = _check_code(body.get("stationCode"))
    if current is None and body.get("stationName") is None:
        raise params.bad("stationName is required")
    for name, (column, longest) in _TEXTS.items():
        if name not in body:
            continue
        value = body[name]
        if value is None and name != "stationName":
            fields[column] = None
        elif not isinstance(value, str) or not 0 < len(value.strip()) <= longest or len(value) > longest:
            raise params.bad(f"{name} must be a string of 1 to {longest} characters"
                             + ("" if name == "stationName" else ", or null"))
        else:
            fields[column] = value
    for name, bound in (("latitude", 90), ("longitude", 180)):
        if name in body:
            fields[name] = _coordinate(name, body[name], bound)
    # Both or neither, as the station will be once changed.
    lat = fields.get("latitude", current and current["latitude"])
    lon = fields.get("longitude", current and current["longitude"])
    if (lat is None) != (lon is None):
        raise params.bad("latitude and longitude go together: give both, or neither")
    if "status" in body:
        fields["enabled"] = _status(body["status"])
    return fields


async def _station(station_id: int) -> dict[str, Any]:
    row = await _store().stations.get(station_id)
    if row is None:
        raise _not_found(station_id)
    return row


def _status_query() -> int | None:
    status = params.integer("status")
    return None if status is None else _status(status)


# ---- reading ------------------------------------------------------------------------------

LIST_QUERY = PAGING + [query("city", "only stations in this city (exact)", {"type": "string"}),
                       query("status", "only enabled (1) or disabled (0) stations", STATUS),
                       query("q", "only stations whose code, name or address holds this text", {"type": "string"})]


def _list_op(summary: str) -> dict[str, Any]:
    return op("stations", summary, enveloped(record("total:int page:int size:int", records=list_of(STATION))),
              errors=("400",), query=LIST_QUERY)


@routes.route("", role=VIEWER, get=_list_op("Stations, a page at a time, by id"))
@routes.route("/page", role=VIEWER, endpoint="stations_page", get=_list_op("Stations, a page at a time (as GET /api/station)"))
@routes.route("/list", role=VIEWER, endpoint="stations_list", get=_list_op("Stations, a page at a time (as GET /api/station)"))
async def stations() -> Any:
    page, size = params.paging()
    status = _status_query()
    result = await _store().stations.list(request.args.get("city") or None, status, request.args.get("q") or None,
                                          page, size)
    return evcs({**result, "records": [station_view(s) for s in result["records"]]})


@routes.route("/check-code", role=VIEWER, get=op(
    "stations", "Whether a station code is free (excludeId: the station being edited)",
    enveloped(record("stationCode:str available:bool")), errors=("400",),
    query=[query("stationCode", "the code", {"type": "string"}, required=True),
           query("excludeId", "a station whose own code this may be", {"type": "integer"})]))
async def check_code() -> Any:
    code = _check_code(request.args.get("stationCode"))
    holder = await _store().stations.holder(code, params.integer("excludeId"))
    return evcs({"stationCode": code, "available": holder is None})


@routes.route("/count", role=VIEWER, get=op(
    "stations", "How many stations, enabled and disabled", enveloped(record("total:int enabled:int disabled:int")),
    errors=("400",), query=[query("status", "count only this status", STATUS)]))
async def count() -> Any:
    return evcs(await _store().stations.count(_status_query()))


@routes.route("/nearby", role=VIEWER, get=op(
    "stations", "Enabled stations within radius km of a point, nearest first (great-circle distance)",
    enveloped(list_of(NEAR)), errors=("400",),
    query=[query("latitude", "degrees north", {"type": "number", "minimum": -90, "maximum": 90}, required=True),
           query("longitude", "degrees east", {"type": "number", "minimum": -180, "maximum": 180}, required=True),
           query("radius", "km", {"type": "number", "exclusiveMinimum": 0, "maximum": RADIUS_MAX,
                                  "default": RADIUS_DEFAULT}),
           query("limit", "the most stations answered", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX,
                                                        "default": LIMIT_DEFAULT})],
    description="distanceKm: haversine on the mean Earth radius 6371.0088 km, rounded to metres. Stations "
                "without coordinates, and disabled ones, are left out."))
async def nearby() -> Any:
    def number(name: str, low: float, high: float, default: float | None, low_open: bool = False) -> float:
        raw = request.args.get(name)
        if raw is None or raw == "":
            if default is None:
                raise params.bad(f"the query parameter {name} is required")
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise params.bad(f"{name} must be a number {'above' if low_open else 'from'} {low:g} "
                             f"{'and at most' if low_open else 'to'} {high:g}, not {raw!r}")
        return value

    lat = number("latitude", -90, 90, None)
    lon = number("longitude", -180, 180, None)
    radius = number("radius", 0, RADIUS_MAX, RADIUS_DEFAULT, low_open=True)
    limit = params.integer("limit", LIMIT_DEFAULT, low=1, high=LIMIT_MAX)
    found = nearest(await _store().stations.located(), lat, lon, radius, limit)
    return evcs([{**station_view(s), "distanceKm": d} for d, s in found])


@routes.route("/<int(max=9223372036854775807):station_id>", role=VIEWER, get=op(
    "stations", "One station", enveloped(STATION), errors=("404",)))
async def station(station_id: int) -> Any:
    return evcs(station_view(await _station(station_id)))


# ---- changing -----------------------------------------------------------------------------

@routes.route("", role=OPERATOR, post=op(
    "stations", "Add a station", enveloped(STATION), status="201", errors=("400", "409"),
    body={**STATION_BODY, "required": ["stationCode", "stationName"]},
    description="409: the code is taken in the tenant, or the tenant's quota of stations is reached "
                "(error quota_exceeded). latitude and longitude go together."))
async def create() -> Any:
    fields = _fields(await params.json_object(), None)
    row, holder, refusal = await _store().stations.create(fields, clock.iso())
    if refusal is not None:
        raise ApiError(409, "quota_exceeded", refusal)
    if row is None:
        raise _taken(fields["code"], holder)
    return evcs(station_view(row), status=201)


@routes.route("/<int(max=9223372036854775807):station_id>", role=OPERATOR, put=op(
    "stations", "Change the given fields of a station", enveloped(STATION), errors=("400", "404", "409"),
    body=STATION_BODY))
async def update(station_id: int) -> Any:
    fields = _fields(await params.json_object(), await _station(station_id))
    return await _change(station_id, fields)


async def _change(station_id: int, fields: dict[str, Any]) -> Any:
    row, holder = await _store().stations.update(station_id, fields, clock.iso())
    if holder is not None:
        raise _taken(fields["code"], holder)
    if row is None:  # deleted meanwhile
        raise _not_found(station_id)
    return evcs(station_view(row))


@routes.route("/<int(max=9223372036854775807):station_id>/status", role=OPERATOR, put=op(
    "stations", "Enable (1) or disable (0) a station", enveloped(STATION), errors=("400", "404"),
    query=[query("status", "1 enabled, 0 disabled (or the body {status})", STATUS)],
    body={"type": "object", "properties": {"status": STATUS}}, body_required=False))
async def set_status(station_id: int) -> Any:
    status = _status_query()
    if status is None:
        body = await params.json_object()
        if "status" not in body:
            raise params.bad("status is required (?status=0|1, or the body {\"status\": 0|1})")
        status = _status(body["status"])
    await _station(station_id)
    return await _change(station_id, {"enabled": status})


@routes.route("/<int(max=9223372036854775807):station_id>", role=OPERATOR, delete=op(
    "stations", "Delete a station that has no chargers placed there", enveloped({"type": "null"}),
    errors=("404", "409"), description="409 names the chargers placed there (chargePointIds): move or "
                                       "delete them first."))
async def delete(station_id: int) -> Any:
    found, placed = await _store().stations.delete(station_id)
    if not found:
        raise _not_found(station_id)
    if placed:
        raise ApiError(409, "conflict", f"station {station_id} still has {len(placed)} charger"
                       f"{'s' if len(placed) > 1 else ''} placed there: {', '.join(placed)}; move or delete "
                       f"{'them' if len(placed) > 1 else 'it'} first", chargePointIds=placed)
    return evcs(None)
