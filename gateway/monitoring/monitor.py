"""The monitor: the periodic check that feeds the alert rules, the webhook, the kept log, and the figures.

One task checks every alerts.check_interval seconds, and sooner when the event hub says a transaction
started or stopped: one query gathers what the rules look at (store/monitoring.py), the machine adds the
disk and the writer, rules.py decides, one job applies the changes, and the webhook is handed each one.
Nothing here runs on a charger's message loop or once per frame.
"""

from __future__ import annotations

from datetime import datetime, time as day_time, timedelta
from typing import Any, Mapping

import attrs
import structlog
import trio

from .. import clock
from ..config import Config
from ..events import TransactionStarted, TransactionStopped
from ..store.health import DATABASE, WRITER, StoreUnavailable
from ..store.scope import EVERYTHING, acting_as
from ..store.scope import current as current_scope
from . import logbook, rules
from .figures import DEGRADED, DISABLED, DOWN, QUANTILES, UP, FiguresCollector, Rates, System, disk, quantile
from .webhook import Webhook
from ..store.pg.connection import redact

log = structlog.get_logger("gateway.monitoring")
SAMPLE_EVERY = 5.0  # seconds between two samples of the counters the rates are made of
WAKE_DELAY = 0.2  # after a transaction event, a check this soon (events close together: one check)


@attrs.define
class Listener:
    name: str  # ocpp, ocpp_tls, http
    host: str
    port: int


def rules_of(config: Config) -> dict[str, rules.Rule]:
    return {name: rules.Rule(r.enabled, r.threshold, r.window_minutes, r.auto_resolve, r.severity)
            for name in rules.RULES for r in [getattr(config.alerts, name)]}


def _change(transition: rules.Transition, settings: Mapping[str, rules.Rule]) -> tuple[str, dict[str, Any]]:
    """A transition as the store applies it."""
    if isinstance(transition, rules.Raise):
        c = transition.condition
        rule = settings[c.rule]
        return "raised", {"rule": c.rule, "subject": c.subject, "charge_point_id": c.charge_point_id,
                          "severity": rule.severity, "message": c.message, "value": c.value,
                          "threshold": c.threshold, "auto_resolve": rule.auto_resolve}
    if isinstance(transition, rules.Return):
        return "returned", {"id": transition.alert_id, "note": transition.condition.message,
                            "message": transition.condition.message, "value": transition.condition.value}
    event = "resolved" if isinstance(transition, rules.Resolve) else "cleared"
    return event, {"id": transition.alert_id, "note": transition.note}


def local_day(tz: Any, now: datetime) -> tuple[str, str]:
    """[start, end) of today in `tz`, as the stored UTC text."""
    today = now.astimezone(tz).date()
    start = datetime.combine(today, day_time(), tzinfo=tz)
    end = datetime.combine(today + timedelta(days=1), day_time(), tzinfo=tz)
    return clock.iso(start), clock.iso(end)


class Monitor:
    def __init__(self, config: Config, chargers: Any, billing_settings: Any):  # ChargerService, BillingSettings
        self.config = config
        self.chargers = chargers
        self.store = chargers.store
        self.billing_settings = billing_settings
        self.settings = rules_of(config)
        self.system = System(config.db)
        self.rates = Rates()
        self.listeners: list[Listener] = []
        self.webhook = (Webhook(config.alerts.webhook_url, config.alerts.webhook_secret, config.alerts.webhook_timeout,
                                config.alerts.webhook_attempts, config.alerts.webhook_queue)
                        if config.alerts.webhook_url else None)
        self.violations = rules.Window(self.settings[rules.PROTOCOL_VIOLATIONS].window_minutes)
        self.restarts = rules.Window(self.settings[rules.WRITER_RESTARTS].window_minutes)
        self.active_alerts: dict[tuple[str, str], int] = {}  # (rule, severity) -> alerts open or acknowledged
        self.business_figures: dict[str, int] | None = None
        self.checks = 0
        self.last_check: str | None = None
        self.last_error: str | None = None
        self._wake = trio.Event()
        logbook.RING.configure(config.logbook.realtime_lines, config.logbook.level)
        chargers.metrics.registry.register(FiguresCollector(self))

    # ---- the tasks ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sample)
            nursery.start_soon(logbook.keep, self.store, logbook.RING, self.config.logbook.flush_interval,
                               self.config.logbook.retention_days, self.config.logbook.max_rows)
            if self.webhook is not None:
                nursery.start_soon(self.webhook.run)
            if self.config.alerts.enabled:
                await nursery.start(self._listen)
                nursery.start_soon(self._check_loop)
            task_status.started()

    async def _listen(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Transactions starting and stopping bring the next check forward."""
        with self.chargers.events.subscribe(100) as events:
            task_status.started()
            async for event in events:
                if isinstance(event, (TransactionStarted, TransactionStopped)):
                    self._wake.set()

    async def _check_loop(self) -> None:
        while True:
            try:
                await self.check()
            except StoreUnavailable as exc:
                self.last_error = str(exc)  # the store's own health says why; the next check tries again
            except Exception as exc:  # noqa: BLE001  a bug must not stop the checks
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("alert check failed")
            with trio.move_on_after(self.config.alerts.check_interval):
                await self._wake.wait()
                await trio.sleep(WAKE_DELAY)
            self._wake = trio.Event()

    async def _sample(self) -> None:
        while True:
            self.sample()
            await trio.sleep(SAMPLE_EVERY)

    # ---- the check ----------------------------------------------------------------------------

    def writer(self) -> dict[str, Any]:
        appender = self.store.appender
        process = hasattr(appender, "restarts")
        return {"process": process and getattr(appender, "fallback", None) is None,
                "pid": getattr(appender, "pid", None), "restarts": getattr(appender, "restarts", 0),
                "behindBatches": getattr(appender, "behind", 0), "fault": self.store.health.faults.get(WRITER)}

    async def snapshot(self, now: datetime) -> rules.Snapshot:
        window = timedelta(minutes=self.settings[rules.CALLBACK_REFUSED].window_minutes)
        with acting_as(EVERYTHING):  # the checker serves every tenant
            found = await self.store.monitoring.conditions(clock.iso(now - window))
        space = disk(self.config.db)
        writer = self.writer()
        restarts = (self.restarts.observe(now, {"writer": writer["restarts"]}).get("writer", 0)
                    if writer["process"] else None)
        return rules.Snapshot(now, found["offline"], found["faulted"], found["open_transactions"],
                              self.violations.observe(now, found["violations"]), found["refused_callbacks"],
                              found["mismatches"], None if space is None else space["freePercent"],
                              restarts, writer["behindBatches"] if writer["process"] else None)

    async def check(self, now: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
        """One check: gather, decide, apply, tell the webhook. Returns the changes made."""
        now = now or clock.now()
        snapshot = await self.snapshot(now)
        holding = rules.conditions(snapshot, self.settings)
        open_alerts = await self.store.alerts.open()
        found = [rules.OpenAlert(a["id"], a["rule"], a["subject"], bool(a["cleared"])) for a in open_alerts]
        changes = [_change(t, self.settings) for t in rules.transitions(holding, found, self.settings)]
        done = await self.store.alerts.apply(changes, clock.iso(now)) if changes else []
        for event, row in done:
            log.log(40 if event == "raised" and row["severity"] == "critical" else 30 if event == "raised" else 20,
                    f"alert {event}", alert=row["id"], rule=row["rule"], subject=row["subject"],
                    cp=row["charge_point_id"], message=row["message"])
            if self.webhook is not None and event in ("raised", "resolved"):
                self.webhook.post(event, rules.alert_view(row))
        if done:
            open_alerts = await self.store.alerts.open()
        active: dict[tuple[str, str], int] = {}
        for a in open_alerts:
            active[(a["rule"], a["severity"])] = active.get((a["rule"], a["severity"]), 0) + 1
        self.active_alerts = active
        self.checks += 1
        self.last_check, self.last_error = clock.iso(now), None
        return done

    def alert_changed(self, event: str, row: dict[str, Any]) -> None:
        """A person acknowledged or resolved an alert (the API): the webhook hears of a resolution too, and the
        next check comes sooner (the active alerts in /metrics; a condition still holding raises anew)."""
        if self.webhook is not None and event == "resolved":
            self.webhook.post(event, rules.alert_view(row))
        self._wake.set()

    # ---- the figures --------------------------------------------------------------------------

    def counters(self) -> dict[str, float]:
        db = self.store.db
        frames = self.chargers.metrics.frames.counts
        return {"framesIn": sum(n for (direction, _), n in list(frames.items()) if direction == "in"),
                "framesOut": sum(n for (direction, _), n in list(frames.items()) if direction == "out"),
                "commits": db.commits, "commitSeconds": db.commit_seconds, "jobs": db.jobs}

    def sample(self) -> None:
        self.rates.sample(trio.current_time(), self.counters())

    def command_round_trips(self) -> dict[str, Any]:
        """Percentiles of the command round trips (ocpp_command_latency_seconds, every action together)."""
        buckets: dict[float, float] = {}
        count, total = 0.0, 0.0
        for family in self.chargers.metrics.command_latency.collect():
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    bound = float(s.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + s.value
                elif s.name.endswith("_count"):
                    count += s.value
                elif s.name.endswith("_sum"):
                    total += s.value
        ordered = sorted(buckets.items())
        out: dict[str, Any] = {"count": int(count), "meanMs": round(1000 * total / count, 3) if count else None}
        for q in QUANTILES:
            value = quantile(ordered, q)
            out[f"p{round(q * 100)}Ms"] = None if value is None else round(1000 * value, 3)
        return out

    def performance(self) -> dict[str, Any]:
        self.sample()
        seconds, growth = self.rates.rates()
        per = (lambda key: round(growth[key] / seconds, 3)) if seconds > 0 else (lambda key: None)
        commits = growth.get("commits", 0)
        db, totals = self.store.db, self.counters()
        return {
            "measuredOverSeconds": round(seconds, 3),
            "frames": {"inPerSecond": per("framesIn"), "outPerSecond": per("framesOut"),
                       "inTotal": int(totals["framesIn"]), "outTotal": int(totals["framesOut"])},
            "commands": self.command_round_trips(),
            "database": {"commitsPerSecond": per("commits"),
                         "meanCommitMs": round(1000 * growth["commitSeconds"] / commits, 3) if commits else None,
                         "commits": db.commits, "commitSeconds": round(db.commit_seconds, 6),
                         "meanCommitMsSinceStart": round(1000 * db.commit_seconds / db.commits, 3)
                         if db.commits else None},
            "writer": self.writer(),
            "eventsDropped": self.chargers.events.dropped,
        }

    async def business(self) -> dict[str, Any]:
        """Chargers online, sessions running, and today's sessions, energy and revenue (billing.timezone's day),
        in the caller's scope; the platform's figures are kept for /metrics, which shows the same."""
        now = clock.now()
        start, end = local_day(self.billing_settings.tz, now)
        figures = await self.store.monitoring.business(start, end)
        if current_scope().tenants is None:
            self.business_figures = figures
        return {**figures, "day": now.astimezone(self.billing_settings.tz).date().isoformat(),
                "timezone": str(getattr(self.billing_settings.tz, "key", self.billing_settings.tz)),
                "currency": self.billing_settings.currency}

    async def refresh(self) -> None:
        """The platform's business figures, for a scrape of /metrics."""
        with acting_as(EVERYTHING):
            await self.business()

    # ---- services -----------------------------------------------------------------------------

    async def _listening(self, listener: Listener) -> tuple[str, str]:
        host = "127.0.0.1" if listener.host in ("0.0.0.0", "") else "::1" if listener.host == "::" else listener.host
        with trio.move_on_after(2) as scope:
            try:
                stream = await trio.open_tcp_stream(host, listener.port)
            except OSError as exc:
                return DOWN, f"{listener.host}:{listener.port} refuses connections: {exc.strerror or exc}"
            await stream.aclose()
        if scope.cancelled_caught:
            return DOWN, f"{listener.host}:{listener.port} does not accept a connection within 2 s"
        return UP, f"accepting connections on {listener.host}:{listener.port}"

    async def services(self) -> dict[str, dict[str, Any]]:
        """Each service: {state, reason, ...}."""
        health = self.store.health
        out: dict[str, dict[str, Any]] = {}
        fault = health.faults.get(DATABASE)
        out["database"] = ({"state": DOWN, "reason": fault} if fault else
                           {"state": UP, "reason": f"{self.store.db.commits} batches committed, none failing now"})
        out["database"]["path"] = redact(self.config.db)  # a server's URL without its password
        w = self.writer()
        if w["fault"]:
            out["writer"] = {"state": DOWN, "reason": w["fault"]}
        elif not w["process"]:
            out["writer"] = {"state": UP, "reason": "frames and meter values are written on the database thread"}
        else:
            behind = self.settings[rules.WRITER_BEHIND].threshold
            state = DEGRADED if w["behindBatches"] >= max(behind, 1) else UP
            out["writer"] = {"state": state, "reason": f"writer process {w['pid']}: {w['behindBatches']} batch(es) "
                             f"behind, {w['restarts']} restart(s)"}
        out["writer"].update(restarts=w["restarts"], behindBatches=w["behindBatches"])
        probed: dict[str, tuple[str, str]] = {}

        async def probe(listener: Listener) -> None:
            probed[listener.name] = await self._listening(listener)
        async with trio.open_nursery() as nursery:
            for listener in self.listeners:
                nursery.start_soon(probe, listener)
        for listener in self.listeners:
            state, reason = probed[listener.name]
            out[f"listener_{listener.name}"] = {"state": state, "reason": reason}
        for channel in ("alipay", "wechat"):
            settings = getattr(self.billing_settings, channel, None)
            if not self.config.billing.enabled:
                out[f"payments_{channel}"] = {"state": DISABLED, "reason": "billing is disabled"}
            elif settings is None:
                out[f"payments_{channel}"] = {"state": DISABLED, "reason": f"billing.{channel} is not configured"}
            else:
                notify = getattr(getattr(self.config.billing, channel), "notify_url", "")
                out[f"payments_{channel}"] = {
                    "state": UP if notify else DEGRADED,
                    "reason": "configured; keys read at start" + ("" if notify else
                                                                  f": billing.{channel}.notify_url is empty, "
                                                                  "so payment callbacks cannot reach the gateway")}
        space = disk(self.config.db)
        if space is None:
            out["disk"] = {"state": DISABLED, "reason": "the database is in memory" if self.config.db == ":memory:"
                           else "the database is on a PostgreSQL server, whose disk is the server's to watch"}
        else:
            threshold = self.settings[rules.DISK_SPACE].threshold
            low = space["freePercent"] < threshold
            out["disk"] = {"state": DEGRADED if low else UP,
                           "reason": f"{space['freePercent']:.1f} % free on {space['path']} "
                                     f"({'below' if low else 'above'} the {threshold:g} % threshold)", **space}
        out["alerts"] = ({"state": DISABLED, "reason": "alerts.enabled is false"} if not self.config.alerts.enabled else
                         {"state": DEGRADED, "reason": f"the last check failed: {self.last_error}"} if self.last_error
                         else {"state": UP, "reason": f"{self.checks} check(s), the last at {self.last_check}"})
        if self.webhook is not None:
            stats = self.webhook.stats
            out["webhook"] = {"state": DEGRADED if stats.last_error and stats.failed else UP,
                              "reason": f"{stats.delivered} delivered, {stats.failed} given up, {stats.dropped} "
                                        f"dropped, {self.webhook.waiting} waiting"
                                        + (f"; last error: {stats.last_error}" if stats.last_error else "")}
        return out
