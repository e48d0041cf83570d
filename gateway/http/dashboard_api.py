"""/api/dashboard and /api/order/statistics/city: how the site is doing, in the EVCS envelope (docs/api.md
section 12). The figures' rules are the store's (gateway/store/dashboard.py); here the site's days are cut
(billing.timezone) and the answers shaped. Every figure is the caller's tenant's."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from quart import request

from .. import clock
from ..billing.reconcile import window
from ..billing.settings import zone_name
from ..orderstates import OrderStatus
from ..store.dashboard import QUARTER
from ..store.store import Store
from . import params
from .errors import evcs as envelope
from .routes import VIEWER, Routes
from .schemas import enveloped, list_of, op, query, record
from .services import services

routes = Routes("dashboard_api", __name__, "/api/dashboard")
city_routes = Routes("city_statistics_api", __name__, "/api/order/statistics")
ROUTES = (routes, city_routes)

DAYS_MAX = 366
TREND_DAYS, PERIOD_DAYS, UTILIZATION_DAYS = 7, 30, 1  # the defaults of days=
RECENT_DEFAULT, RECENT_MAX = 10, 100
RANKING_DEFAULT, RANKING_MAX = 10, 500
RANKED_BY = {"energy": "energyWh", "revenue": "revenue", "sessions": "sessions"}

# ---- the site's days, pure ---------------------------------------------------------------------


def site_days(today: date, days: int, tz: tzinfo) -> list[tuple[str, str, str]]:
    """(YYYY-MM-DD, since, until) of the `days` site days ending with `today`, oldest first; a day in the
    zone lasts from its midnight to the next (23 or 25 hours across a change of summer time)."""
    return [(day.isoformat(), *window(day, tz)) for day in (today - timedelta(days=n) for n in range(days - 1, -1, -1))]


def month_window(today: date, tz: tzinfo) -> tuple[str, str, str]:
    """(YYYY-MM, since, until) of the site month holding `today`."""
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first.strftime("%Y-%m"), window(first, tz)[0], window(following, tz)[0]


def by_site_hour(quarters: dict[int, dict[str, int]], tz: tzinfo) -> dict[int, dict[str, int]]:
    """The figures of quarter hours (seconds since the epoch // 900, the store's) added up by the hour of the
    site's day (0-23, wall-clock time) each lies in; every hour answered. Zones are offset from UTC by whole
    quarter hours, so a quarter lies within one local hour: the hour repeated when summer time ends gathers
    twice as many quarters, the one skipped when it begins none."""
    out = {hour: {"sessions": 0, "energyWh": 0} for hour in range(24)}
    for quarter, figures in quarters.items():
        hour = out[datetime.fromtimestamp(quarter * QUARTER, tz).hour]
        for name, value in figures.items():
            hour[name] += value
    return out


def ranked(stations: list[dict[str, Any]], by: str, limit: int) -> list[dict[str, Any]]:
    """The stations by `by` (energy, revenue, sessions), highest first, then by id; each with its rank
    (stations with the same figure share the rank of the first of them)."""
    key = RANKED_BY[by]
    ordered = sorted(stations, key=lambda s: (-s[key], s["stationId"]))[:limit]
    out, previous, rank = [], None, 0
    for n, station in enumerate(ordered, 1):
        if station[key] != previous:
            rank, previous = n, station[key]
        out.append({"rank": rank, **station})
    return out


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


# ---- request helpers ----------------------------------------------------------------------------

def _store() -> Store:
    return services().chargers.store


def _zone() -> tzinfo:
    return services().zone


def _days(default: int) -> int:
    return params.integer("days", default, low=1, high=DAYS_MAX)


def _period(default_days: int) -> tuple[str, str]:
    """[since, until): the query's since and until (until defaults to now, since to a day before until), or
    the last `days` site days up to now."""
    since, until = params.time("since"), params.time("until")
    if since is None and until is None:
        now = clock.now()
        first = now.astimezone(_zone()).date() - timedelta(days=_days(default_days) - 1)
        return window(first, _zone())[0], clock.iso(now)
    if request.args.get("days"):
        raise params.bad("give days, or since and until, not both")
    until = until or clock.iso()
    since = since or clock.iso(clock.parse(until) - timedelta(days=1))
    if since >= until:
        raise params.bad(f"since ({since}) must be before until ({until})")
    if clock.parse(until) - clock.parse(since) > timedelta(days=DAYS_MAX + 1):
        raise params.bad(f"the period may last at most {DAYS_MAX} days")
    return since, until


def _today() -> date:
    return clock.now().astimezone(_zone()).date()


def _currency() -> str | None:
    billing = services().billing
    return None if billing is None else billing.orders.settings.currency


DAYS_QUERY = "the last N days of the site (billing.timezone), today included"
PERIOD_QUERY = [query("since", "start of the period (ISO 8601); instead of days", {"type": "string", "format": "date-time"}),
                query("until", "end of the period, excluded (default now)", {"type": "string", "format": "date-time"})]


def _days_query(default: int) -> dict[str, Any]:
    return query("days", DAYS_QUERY, {"type": "integer", "minimum": 1, "maximum": DAYS_MAX, "default": default})


SESSIONS = "sessions:int energyWh:int"
MONEY_RULES = ("Sessions: transactions started in the period (gateway clock) and their metered energy. Orders: those "
               "created in the period; amount what those not cancelled were priced at. Money, in minor units (fen "
               "for CNY), when it moved, as the daily reconciliation counts it: paid the payments paid in the period, "
               "refunded the refunds that succeeded in it, revenue = paid - refunded.")
MONEY = "orders:int amount:int paid:int refunded:int revenue:int"
BY_STATUS = record("offline:int idle:int charging:int fault:int")
STATUS = record(
    "total:int online:int", byStatus=BY_STATUS, connectors=record("total:int offline:int idle:int charging:int fault:int"),
    byStation=list_of(record("stationId:int? stationName:str? total:int offline:int idle:int charging:int fault:int")))
PERIOD = record(f"since:time until:time {SESSIONS} {MONEY}")


# ---- the routes ----------------------------------------------------------------------------------

def _stats_op(summary: str) -> dict[str, Any]:
    return op("dashboard", summary, enveloped(record(
        "timezone:str currency:str?", chargers=STATUS, today=record("date:str", **PERIOD["properties"]),
        month=record("month:str", **PERIOD["properties"]))),
        description=MONEY_RULES + " Chargers: the registry's, by EVCS status now.")


@routes.route("/stats", role=VIEWER, get=_stats_op("Chargers by status now; sessions, energy and money today and this month"))
@routes.route("/statistics", role=VIEWER, endpoint="statistics", get=_stats_op("As GET /api/dashboard/stats"))
@routes.route("/summary", role=VIEWER, endpoint="summary", get=_stats_op("As GET /api/dashboard/stats"))
async def stats() -> Any:
    tz, store = _zone(), _store()
    today = _today()
    day = (today.isoformat(), *window(today, tz))
    month = month_window(today, tz)
    sessions = await store.dashboard.sessions([day, month])
    money = await store.dashboard.money([day, month])

    def period(label: str, since: str, until: str) -> dict[str, Any]:
        m = money[label]
        return {"since": since, "until": until, **sessions[label], "orders": m["orders"], "amount": m["amount"],
                "paid": m["paid"], "refunded": m["refunded"], "revenue": m["revenue"]}

    return envelope({"timezone": zone_name(tz), "currency": _currency(), "chargers": await store.dashboard.status(),
                     "today": {"date": day[0], **period(*day)}, "month": {"month": month[0], **period(*month)}})


@routes.route("/charger-status", role=VIEWER, get=op(
    "dashboard", "Chargers and their connectors by EVCS status now, in all and by station", enveloped(STATUS),
    description="Status 0 offline, 1 idle, 2 charging, 3 fault, as GET /api/charger (docs/api.md section 6); "
                "online: the chargers connected; byStation: stationId null for chargers placed nowhere."))
async def charger_status() -> Any:
    return envelope(await _store().dashboard.status())


def _trend_op(summary: str, point: str) -> dict[str, Any]:
    return op("dashboard", summary, enveloped(record(
        "timezone:str currency:str? days:int", points=list_of(record("date:str " + point)))),
        errors=("400",), query=[_days_query(TREND_DAYS)],
        description="One point per site day, oldest first, today last; a day with nothing is all zeros. "
                    + MONEY_RULES)


@routes.route("/charging-trend", role=VIEWER, get=_trend_op(
    "Sessions and energy per site day (transactions by the day they started)", SESSIONS))
async def charging_trend() -> Any:
    days = site_days(_today(), _days(TREND_DAYS), _zone())
    figures = await _store().dashboard.sessions(days)
    return envelope({"timezone": zone_name(_zone()), "currency": _currency(), "days": len(days),
                     "points": [{"date": label, **figures[label]} for label, _, _ in days]})


@routes.route("/revenue-trend", role=VIEWER, get=_trend_op(
    "Orders and money per site day (orders by the day they were created, money by the day it moved)",
    MONEY + " energyWh:int"))
async def revenue_trend() -> Any:
    days = site_days(_today(), _days(TREND_DAYS), _zone())
    figures = await _store().dashboard.money(days)
    return envelope({"timezone": zone_name(_zone()), "currency": _currency(), "days": len(days),
                     "points": [{"date": label, **figures[label]} for label, _, _ in days]})


@routes.route("/order-period-distribution", role=VIEWER, get=op(
    "dashboard", "Sessions and energy by hour of the site's day (0-23) over a period",
    enveloped(record("timezone:str since:time until:time", hours=list_of(record("hour:int " + SESSIONS)))),
    errors=("400",), query=[_days_query(PERIOD_DAYS), *PERIOD_QUERY],
    description="A session counts in the hour (site time) its transaction started; all 24 hours are answered."))
async def order_period_distribution() -> Any:
    since, until = _period(PERIOD_DAYS)
    hours = by_site_hour(await _store().dashboard.by_quarter(since, until), _zone())
    return envelope({"timezone": zone_name(_zone()), "since": since, "until": until,
                     "hours": [{"hour": h, **figures} for h, figures in hours.items()]})


RECENT = record(
    "orderId:int orderNo:str? sessionId:str transactionId:int? chargerId:int? chargePointId:str connectorId:int? "
    "stationId:int? stationName:str? idTag:str? status:int statusName:str energyWh:int? totalAmount:int? "
    "paid:int refunded:int currency:str startedAt:time? stoppedAt:time? createdAt:time")


def _recent_view(o: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": o["id"], "orderNo": o["order_no"], "sessionId": o["session_id"],
            "transactionId": o["transaction_id"], "chargerId": o["charger_id"], "chargePointId": o["charge_point_id"],
            "connectorId": o["connector_id"], "stationId": o["station_id"], "stationName": o["station_name"],
            "idTag": o["id_tag"], "status": o["status"], "statusName": OrderStatus(o["status"]).word,
            "energyWh": o["energy_wh"], "totalAmount": o["total_amount"], "paid": o["received"],
            "refunded": o["refunded"], "currency": o["currency"], "startedAt": o["started_at"],
            "stoppedAt": o["stopped_at"], "createdAt": o["created_at"]}


@routes.route("/recent-orders", role=VIEWER, get=op(
    "dashboard", "The newest orders, newest first", enveloped(list_of(RECENT)), errors=("400",),
    query=[query("limit", "how many", {"type": "integer", "minimum": 1, "maximum": RECENT_MAX,
                                       "default": RECENT_DEFAULT})],
    description="Money in minor units: totalAmount the price, paid the money received, refunded the refunds "
                "that succeeded."))
async def recent_orders() -> Any:
    limit = params.integer("limit", RECENT_DEFAULT, low=1, high=RECENT_MAX)
    return envelope([_recent_view(o) for o in await _store().dashboard.recent(limit)])


STATION_FIGURES = f"stationId:int stationCode:str stationName:str city:str? chargers:int {SESSIONS} {MONEY}"


@routes.route("/station-ranking", role=VIEWER, get=op(
    "dashboard", "Stations ranked by energy, revenue or sessions over a period",
    enveloped(record("by:str since:time until:time", records=list_of(record("rank:int " + STATION_FIGURES)))),
    errors=("400",),
    query=[query("by", "what ranks", {"type": "string", "enum": list(RANKED_BY), "default": "energy"}),
           query("limit", "how many stations", {"type": "integer", "minimum": 1, "maximum": RANKING_MAX,
                                                "default": RANKING_DEFAULT}),
           _days_query(PERIOD_DAYS), *PERIOD_QUERY],
    description="A station's figures are those of the chargers placed there now; stations with nothing in "
                "the period rank last, with zeros. Equal figures share a rank; ties are listed by station id."))
async def station_ranking() -> Any:
    by = request.args.get("by") or "energy"
    if by not in RANKED_BY:
        raise params.bad(f"by must be one of {', '.join(RANKED_BY)}, not {by!r}")
    limit = params.integer("limit", RANKING_DEFAULT, low=1, high=RANKING_MAX)
    since, until = _period(PERIOD_DAYS)
    return envelope({"by": by, "since": since, "until": until,
                     "records": ranked(await _store().dashboard.by_station(since, until), by, limit)})


UTILIZATION = "onlineSeconds:num chargingSeconds:num utilization:num"


@routes.route("/charger-utilization", role=VIEWER, get=op(
    "dashboard", "Per charger: time charging over time online, over a period",
    enveloped(record("since:time until:time", total=record(UTILIZATION), records=list_of(record(
        "chargerId:int chargePointId:str name:str? stationId:int? stationName:str? statusCode:int " + UTILIZATION)))),
    errors=("400",), query=[_days_query(UTILIZATION_DAYS), *PERIOD_QUERY],
    description="Online: from the frame log's connect and disconnect events (older than frames.retention_days: "
                "offline); charging: a connector from a report of Preparing, Charging, SuspendedEV, "
                "SuspendedEVSE or Finishing to its next report, the charger while any connector is and only while "
                "online (as GET /api/charger/statistics). utilization = chargingSeconds / onlineSeconds (0 when "
                "never online). Highest first, then by chargerId."))
async def charger_utilization() -> Any:
    since, until = _period(UTILIZATION_DAYS)
    rows = await _store().dashboard.utilization(since, until)
    records = sorted(({**r, "utilization": ratio(r["chargingSeconds"], r["onlineSeconds"])} for r in rows),
                     key=lambda r: (-r["utilization"], r["chargerId"]))
    online = sum(r["onlineSeconds"] for r in rows)
    charging = sum(r["chargingSeconds"] for r in rows)
    return envelope({"since": since, "until": until, "records": records,
                     "total": {"onlineSeconds": online, "chargingSeconds": charging,
                               "utilization": ratio(charging, online)}})


@city_routes.route("/city", role=VIEWER, get=op(
    "dashboard", "Stations, chargers, sessions, energy and order money by city over a period",
    enveloped(record("since:time until:time currency:str?", records=list_of(record(
        f"city:str? stations:int chargers:int {SESSIONS} {MONEY}")))),
    errors=("400",), query=[_days_query(PERIOD_DAYS), *PERIOD_QUERY],
    description="A city's figures are those of its stations (city null: stations without one), with the rules "
                "of GET /api/dashboard/stats; by sessions, highest first, then by city."))
async def city_statistics() -> Any:
    since, until = _period(PERIOD_DAYS)
    cities: dict[str | None, dict[str, Any]] = {}
    for s in await _store().dashboard.by_station(since, until):
        city = cities.setdefault(s["city"], {"city": s["city"], "stations": 0, "chargers": 0, "sessions": 0,
                                             "energyWh": 0, "orders": 0, "amount": 0, "paid": 0, "refunded": 0,
                                             "revenue": 0})
        city["stations"] += 1
        for name in ("chargers", "sessions", "energyWh", "orders", "amount", "paid", "refunded", "revenue"):
            city[name] += s[name]
    records = sorted(cities.values(), key=lambda c: (-c["sessions"], c["city"] is None, c["city"] or ""))
    return envelope({"since": since, "until": until, "currency": _currency(), "records": records})

