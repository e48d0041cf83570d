"""/api/monitoring (and the same under /api/v1/monitoring): the gateway's health, figures, alerts and own log,
in the EVCS envelope (docs/api.md). Each route is declared once and served under both prefixes."""

from __future__ import annotations

import json
from typing import Any, Callable

import trio
from quart import g, request

from .. import clock
from ..monitoring import logbook, rules
from ..monitoring.figures import versions, worst
from ..monitoring.monitor import Monitor
from ..store import scope
from ..store.logbook import LEVELS
from . import params
from .errors import ApiError, evcs
from .routes import ADMIN, OPERATOR, VIEWER, Role, Routes
from .schemas import PAGING, enveloped, list_of, op, query, record
from .services import services

PREFIXES = ("/api/monitoring", "/api/v1/monitoring")
ROUTES: tuple[Routes, ...] = tuple(Routes(f"monitoring_api{'_v1' if 'v1' in p else ''}", __name__, p) for p in PREFIXES)
STATUSES = ("open", "acknowledged", "resolved", "active")
SEVERITIES = ("info", "warning", "critical")
REALTIME_MAX = 1000

SERVICE = record("state:str reason:str", "state: up, degraded, down or disabled; reason: why, in words")
SERVICES = {"type": "object", "additionalProperties": SERVICE,
            "description": "database, writer, listener_ocpp, listener_http (listener_ocpp_tls), payments_alipay, "
                           "payments_wechat, disk, alerts (webhook when configured)"}
ALERT = record(
    "alertId:int rule:str subject:str chargePointId:str? severity:str status:str message:str value:num? "
    "threshold:num? autoResolve:bool raisedAt:time clearedAt:time? acknowledgedAt:time? acknowledgedBy:str? "
    "resolvedAt:time? resolvedBy:str? updatedAt:time",
    "An alert: status open, acknowledged or resolved; clearedAt: its condition ended (an alert whose rule waits "
    "for a person stays open until resolved)")
ALERT_FULL = record("", **ALERT["properties"], history=list_of(record("at:time event:str by:str? note:str?")))
LOG_LINE = record("seq:int? at:str level:str logger:str? event:str chargePointId:str? fields:obj")
ACTION_BODY = {"type": "object", "additionalProperties": False,
               "properties": {"note": {"type": "string", "maxLength": 500}}}
LOG_QUERY = [query("level", "this level and above", {"type": "string", "enum": list(LEVELS)}),
             query("logger", "this logger and those below it (gateway.store is below gateway)", {"type": "string"}),
             query("chargePointId", "lines about this charger", {"type": "string"}),
             query("q", "text in the event or its fields (case-insensitive)", {"type": "string"})]


def route(rule: str, *, role: Role, endpoint: str | None = None, **operations: Any) -> Callable:
    """Declare a route under every prefix."""
    def declare(handler: Callable) -> Callable:
        for group in ROUTES:
            group.route(rule, role=role, endpoint=endpoint, **operations)(handler)
        return handler
    return declare


def _monitor() -> Monitor:
    monitor = services().monitor
    if monitor is None:
        raise ApiError(404, "not_found", "monitoring is not running in this gateway")
    return monitor


def _choice(name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise params.bad(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _text(name: str, longest: int = 200) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > longest:
        raise params.bad(f"{name} must be at most {longest} characters")
    return raw


# ---- health and figures ---------------------------------------------------------------------------

@route("/overview", role=VIEWER, get=op(
    "monitoring", "The gateway at a glance: its state, the services', active alerts and today's figures",
    enveloped(record("status:str version:str time:time uptimeSeconds:num chargersConnected:int",
                     services={"type": "object", "additionalProperties": {"type": "string"}},
                     alerts={"type": "object"}, business={"type": "object"}))))
async def overview() -> Any:
    monitor = _monitor()
    parts: dict[str, Any] = {}

    async def read(name: str, fn: Callable, *args: Any) -> None:
        parts[name] = await fn(*args)
    async with trio.open_nursery() as nursery:  # the store's jobs share a batch; the listeners are probed meanwhile
        nursery.start_soon(read, "health", monitor.services)
        nursery.start_soon(read, "stats", monitor.store.alerts.statistics, None)
        nursery.start_soon(read, "business", monitor.business)
    health, stats = parts["health"], parts["stats"]
    return evcs({"status": worst(s["state"] for s in health.values()), "version": versions(0)["gateway"],
                 "time": clock.iso(), "uptimeSeconds": monitor.system.uptime(),
                 "chargersConnected": len(monitor.chargers.registry),
                 "services": {name: s["state"] for name, s in health.items()},
                 "alerts": {"active": stats["active"], "activeBySeverity": stats["activeBySeverity"]},
                 "business": parts["business"]})


@route("/versions", role=VIEWER, get=op(
    "monitoring", "The gateway's version, Python, SQLite, the database schema and the libraries",
    enveloped(record("gateway:str python:str implementation:str sqlite:str schemaVersion:int platform:str "
                     "libraries:obj"))))
async def versions_() -> Any:
    return evcs(versions(await _monitor().store.monitoring.schema_version()))


@route("/services/health", role=VIEWER, get=op(
    "monitoring", "Every service's state and the reason: database, writer, listeners, payment providers, disk",
    enveloped(record("status:str", services=SERVICES))))
async def services_health() -> Any:
    health = await _monitor().services()
    return evcs({"status": worst(s["state"] for s in health.values()), "services": health})


@route("/services/<name>/health", role=VIEWER, get=op(
    "monitoring", "One service's state and the reason", enveloped(record("name:str state:str reason:str")),
    errors=("404",)))
async def service_health(name: str) -> Any:
    health = await _monitor().services()
    if name not in health:
        raise ApiError(404, "not_found", f"no service {name[:100]!r}: the services are {', '.join(health)}")
    return evcs({"name": name, **health[name]})


@route("/metrics/system", role=VIEWER, get=op(
    "monitoring", "CPU, memory, open files, disk and uptime of the gateway's process and machine",
    enveloped(record("cpu:obj memory:obj openFiles:obj threads:int disk:obj? uptimeSeconds:num startedAt:num"))))
async def metrics_system() -> Any:
    return evcs(_monitor().system.figures())


@route("/metrics/performance", role=VIEWER, get=op(
    "monitoring", "Frames per second, command round-trip percentiles, database commit time, the writer's lag",
    enveloped(record("measuredOverSeconds:num frames:obj commands:obj database:obj writer:obj eventsDropped:int")),
    description="Rates over the last minute (measuredOverSeconds); the totals are those of /metrics "
                "(ocpp_frames, ocpp_command_latency_seconds, gateway_db_commits, gateway_db_commit_seconds, "
                "gateway_writer_behind_batches)."))
async def metrics_performance() -> Any:
    return evcs(_monitor().performance())


@route("/metrics/business", role=VIEWER, get=op(
    "monitoring", "Chargers online, sessions running, and today's sessions, energy (Wh) and revenue (minor units)",
    enveloped(record("chargersOnline:int sessionsRunning:int sessionsToday:int energyTodayWh:int revenueToday:int "
                     "day:str timezone:str currency:str")),
    description="Today is billing.timezone's day; revenue: the orders that stopped today, not cancelled."))
async def metrics_business() -> Any:
    return evcs(await _monitor().business())


# ---- alerts -----------------------------------------------------------------------------------------

@route("/alerts", role=VIEWER, get=op(
    "monitoring", "Alerts, newest first, a page at a time",
    enveloped(record("total:int page:int size:int", records=list_of(ALERT))), errors=("400",),
    query=PAGING + [query("status", "open, acknowledged, resolved, or active (open or acknowledged)",
                          {"type": "string", "enum": list(STATUSES)}),
                    query("rule", "one rule", {"type": "string", "enum": list(rules.RULES)}),
                    query("severity", "one severity", {"type": "string", "enum": list(SEVERITIES)}),
                    query("chargePointId", "alerts about this charger", {"type": "string"}),
                    query("since", "raised at or after", {"type": "string", "format": "date-time"}),
                    query("until", "raised before", {"type": "string", "format": "date-time"})]))
async def alerts() -> Any:
    page, size = params.paging()
    result = await _monitor().store.alerts.list(
        _choice("status", STATUSES), _choice("rule", rules.RULES), _choice("severity", SEVERITIES),
        _text("chargePointId"), params.time("since"), params.time("until"), page, size)
    return evcs({**result, "records": [rules.alert_view(r) for r in result["records"]]})


@route("/alerts/statistics", role=VIEWER, get=op(
    "monitoring", "Alerts by status, and the active ones by severity and rule",
    enveloped(record("total:int active:int byStatus:obj activeBySeverity:obj activeByRule:obj")), errors=("400",),
    query=[query("since", "only alerts raised at or after", {"type": "string", "format": "date-time"})]))
async def alert_statistics() -> Any:
    return evcs(await _monitor().store.alerts.statistics(params.time("since")))


async def _alert(alert_id: int) -> dict[str, Any]:
    row = await _monitor().store.alerts.get(alert_id)
    if row is None:
        raise ApiError(404, "not_found", f"alert {alert_id} is not known")
    return row


def _full(row: dict[str, Any]) -> dict[str, Any]:
    return {**rules.alert_view(row), "history": row["history"]}


@route("/alerts/<int(max=9223372036854775807):alert_id>", role=VIEWER, get=op(
    "monitoring", "One alert with its history", enveloped(ALERT_FULL), errors=("404",)))
async def alert(alert_id: int) -> Any:
    return evcs(_full(await _alert(alert_id)))


async def _act(alert_id: int, action: str) -> Any:
    body = await params.json_object()
    params.only(body, ["note"])
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise params.bad("note must be a string of at most 500 characters")
    principal = getattr(g, "principal", None)
    by = principal.username if principal else "local"
    monitor = _monitor()
    row, refused = await monitor.store.alerts.act(alert_id, action, by, note, clock.iso())
    if row is None:
        raise ApiError(404, "not_found", f"alert {alert_id} is not known")
    if refused:
        raise ApiError(409, "conflict", refused, alert=rules.alert_view(row))
    monitor.alert_changed("resolved" if action == "resolve" else "acknowledged", row)
    return evcs(_full(row))


@route("/alerts/<int(max=9223372036854775807):alert_id>/acknowledge", role=OPERATOR, post=op(
    "monitoring", "Acknowledge an alert: someone is on it (it stays open)", enveloped(ALERT_FULL),
    errors=("400", "404", "409"), body=ACTION_BODY, body_required=False))
async def acknowledge(alert_id: int) -> Any:
    return await _act(alert_id, "acknowledge")


@route("/alerts/<int(max=9223372036854775807):alert_id>/resolve", role=OPERATOR, post=op(
    "monitoring", "Resolve an alert by hand (a rule that waits for a person needs this)", enveloped(ALERT_FULL),
    errors=("400", "404", "409"), body=ACTION_BODY, body_required=False,
    description="If its condition still holds, the next check raises a new alert."))
async def resolve(alert_id: int) -> Any:
    return await _act(alert_id, "resolve")


# ---- the gateway's own log ----------------------------------------------------------------------------

def _log_filters() -> tuple[str | None, str | None, str | None, str | None]:
    """The filters asked for; refused to a caller who does not see every tenant: the gateway's own log names
    every tenant's chargers, so it is the platform's alone."""
    if scope.current().tenants is not None:
        raise ApiError(403, "forbidden", "the gateway's own log is the platform's: it names every tenant's chargers "
                       "(a tenant's admins read their chargers' frames at /api/frames)")
    return _choice("level", LEVELS), _text("logger"), _text("chargePointId"), _text("q")


@route("/logs/realtime", role=ADMIN, get=op(
    "monitoring", "The newest lines of the gateway's own log, from memory (after: the last seq seen)",
    enveloped(record("last:int", lines=list_of(LOG_LINE))), errors=("400",),
    query=LOG_QUERY + [query("after", "only lines after this seq (poll with the last one seen)",
                             {"type": "integer", "minimum": 0}),
                       query("limit", "the most lines answered (the newest)",
                             {"type": "integer", "minimum": 1, "maximum": REALTIME_MAX, "default": 200})]))
async def logs_realtime() -> Any:
    level, logger, cp_id, text = _log_filters()
    after = params.integer("after", 0, low=0)
    limit = params.integer("limit", 200, low=1, high=REALTIME_MAX)
    lines = [line for line in logbook.RING.since(after) if logbook.matches(line, level, logger, cp_id, text)]
    return evcs({"last": logbook.RING.last, "lines": lines[-limit:]})


@route("/logs/search", role=ADMIN, get=op(
    "monitoring", "The gateway's own log, kept in the database, newest first, a page at a time",
    enveloped(record("total:int totalCapped:bool page:int size:int", records=list_of(LOG_LINE))), errors=("400",),
    query=PAGING + LOG_QUERY + [query("since", "at or after", {"type": "string", "format": "date-time"}),
                                query("until", "before", {"type": "string", "format": "date-time"})],
    description="Lines reach the table in batches (logbook.flush_interval); logs/realtime has the newest at once. "
                "total counts up to 1,000 lines; totalCapped: there are more."))
async def logs_search() -> Any:
    level, logger, cp_id, text = _log_filters()
    page, size = params.paging()
    result = await _monitor().store.log_lines.search(level, logger, cp_id, text, params.time("since"),
                                                     params.time("until"), page, size)
    records = [{"seq": None, "at": r["at"], "level": r["level"], "logger": r["logger"], "event": r["event"],
                "chargePointId": r["charge_point_id"], "fields": _fields(r["fields"])} for r in result["records"]]
    return evcs({**result, "records": records})


def _fields(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
