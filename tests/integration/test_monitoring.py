"""/api/monitoring against a real gateway with simulated chargers: alerts raised and cleared by what the
chargers do, the figures beside /metrics, the kept log."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest
import structlog

from gateway import clock, logs
from gateway.config import Config
from gateway.monitoring import logbook
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger, offline, status
from tests.integration.test_auth import viewer_and_operator
from tests.integration.test_metrics import scrape, value
from tests.backend import POSTGRESQL, sqlite_only
from tests.waiting import until

PREFIXES = ("/api/monitoring", "/api/v1/monitoring")


def monitoring_config(tmp_path: Path, **alerts: object) -> Config:
    """Checks only at start and when asked (check_interval: an hour), unless a test sets it."""
    config = make_config(tmp_path)
    merged = {"check_interval": 3600.0, **alerts}
    alerts_config = attrs.evolve(config.alerts, **{k: v for k, v in merged.items() if not isinstance(v, dict)})
    for name, fields in merged.items():
        if isinstance(fields, dict):
            alerts_config = attrs.evolve(alerts_config, **{name: attrs.evolve(getattr(alerts_config, name), **fields)})
    return attrs.evolve(config, alerts=alerts_config)


async def active(http, rule: str) -> list[dict]:
    r = await http.get("/api/monitoring/alerts", params={"status": "active", "rule": rule})
    assert r.status_code == 200, r.text
    return r.json()["data"]["records"]


async def test_every_route_answers_in_the_envelope_under_both_prefixes(nursery, tmp_path):
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        for prefix in PREFIXES:
            for path in ("/overview", "/versions", "/services/health", "/services/database/health",
                         "/metrics/system", "/metrics/performance", "/metrics/business", "/alerts",
                         "/alerts/statistics", "/logs/realtime", "/logs/search"):
                r = await http.get(prefix + path)
                assert r.status_code == 200, (path, r.text)
                body = r.json()
                assert body["code"] == 200 and body["path"] == prefix + path and "data" in body
            r = await http.get(prefix + "/services/nothing/health")
            assert r.status_code == 404 and r.json()["code"] == 404 and "database" in r.json()["message"]
            r = await http.get(prefix + "/alerts/999")
            assert r.status_code == 404 and r.json()["data"] is None
            r = await http.get(prefix + "/alerts", params={"status": "burning"})
            assert r.status_code == 400 and "status must be one of" in r.json()["message"]
        health = (await http.get("/api/monitoring/services/health")).json()["data"]
        services = health["services"]
        assert services["database"]["state"] == "up"
        assert services["listener_ocpp"]["state"] == "up" and str(gw.ocpp_port) in services["listener_ocpp"]["reason"]
        assert services["listener_http"]["state"] == "up"
        if POSTGRESQL:  # the database's disk is the server's
            assert services["disk"]["state"] == "disabled" and "PostgreSQL server" in services["disk"]["reason"]
        else:
            assert services["disk"]["state"] in ("up", "degraded") and "% free" in services["disk"]["reason"]
        assert services["payments_alipay"]["state"] == "disabled"  # not configured here
        versions = (await http.get("/api/monitoring/versions")).json()["data"]
        assert versions["schemaVersion"] >= 18 and versions["libraries"]["trio"]
        system = (await http.get("/api/monitoring/metrics/system")).json()["data"]
        assert system["memory"]["processRssBytes"] > 0 and system["openFiles"]["open"] > 0
        assert (system["disk"] is None if POSTGRESQL else system["disk"]["freeBytes"] > 0)
        assert system["uptimeSeconds"] >= 0


async def test_a_charger_offline_past_the_threshold_raises_an_alert_that_clears_on_reconnect(nursery, tmp_path):
    # The real checking loop, with thresholds small enough for a test: offline for 0.6 s raises it.
    config = monitoring_config(tmp_path, check_interval=0.1, charger_offline={"threshold": 0.01})
    async with started(nursery, config) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "OFF1") as cp:
            await cp.result("BootNotification", BOOT)
        alerts = await until(lambda: active(http, "charger_offline"), timeout=10)
        assert [a["subject"] for a in alerts] == ["OFF1"]
        alert = alerts[0]
        assert alert["chargePointId"] == "OFF1" and alert["status"] == "open" and alert["autoResolve"]
        assert alert["threshold"] == 0.01 and alert["value"] >= 0.01
        async with charger(gw.ocpp_port, "OFF1") as cp:
            await cp.result("BootNotification", BOOT)
            await until(lambda: _resolved(http, alert["alertId"]), timeout=10)
            detail = (await http.get(f"/api/monitoring/alerts/{alert['alertId']}")).json()["data"]
            assert [h["event"] for h in detail["history"]] == ["raised", "resolved"]
            assert detail["history"][1]["note"] == "the condition cleared" and detail["resolvedBy"] is None
            assert await active(http, "charger_offline") == []


async def _resolved(http, alert_id: int) -> bool:
    return (await http.get(f"/api/monitoring/alerts/{alert_id}")).json()["data"]["status"] == "resolved"


async def test_the_offline_threshold_is_measured_from_the_disconnection(nursery, tmp_path):
    # The clock driven: checks at chosen moments, against the default threshold of 10 minutes.
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "OFF2") as cp:
            await cp.result("BootNotification", BOOT)
        await until(lambda: "OFF2" not in gw.registry)
        gone = clock.parse((await until(lambda: offline(gw.store, "OFF2")))["disconnected_at"])
        assert await monitor.check(gone + timedelta(minutes=9, seconds=59)) == []
        [(event, row)] = await monitor.check(gone + timedelta(minutes=10))
        assert (event, row["rule"], row["subject"]) == ("raised", "charger_offline", "OFF2")
        assert await monitor.check(gone + timedelta(minutes=20)) == []  # one open alert per rule and subject
        assert len(await active(http, "charger_offline")) == 1


async def test_a_faulted_connector_raises_an_alert_and_recovery_resolves_it(nursery, tmp_path):
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "FLT1") as cp:
            await cp.result("BootNotification", BOOT)
            await cp.result("StatusNotification", status(1, "Available"))
            assert await monitor.check() == []
            await cp.result("StatusNotification", status(2, "Faulted", errorCode="GroundFailure"))
            [(event, row)] = await monitor.check()
            assert (event, row["subject"], row["severity"]) == ("raised", "FLT1/2", "critical")
            assert "GroundFailure" in row["message"]
            await cp.result("StatusNotification", status(2, "Available"))
            [(event, row)] = await monitor.check()
            assert (event, row["subject"], row["status"]) == ("resolved", "FLT1/2", "resolved")
        assert await active(http, "connector_faulted") == []


async def test_a_rule_that_waits_for_a_person_stays_open_until_resolved(nursery, tmp_path):
    config = monitoring_config(tmp_path, connector_faulted={"auto_resolve": False})
    async with started(nursery, config) as gw, gw.http() as http:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "FLT2") as cp:
            await cp.result("BootNotification", BOOT)
            await cp.result("StatusNotification", status(1, "Faulted"))
            [(_, row)] = await monitor.check()
            alert_id = row["id"]
            await cp.result("StatusNotification", status(1, "Available"))
            [(event, row)] = await monitor.check()
            assert event == "cleared" and row["status"] == "open" and row["cleared_at"]
            assert await monitor.check() == []  # said once
        r = await http.post(f"/api/monitoring/alerts/{alert_id}/acknowledge", json={"note": "on my way"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["status"] == "acknowledged" and data["acknowledgedBy"]
        r = await http.post(f"/api/monitoring/alerts/{alert_id}/acknowledge")
        assert r.status_code == 409 and "acknowledged already" in r.json()["message"]
        r = await http.post(f"/api/v1/monitoring/alerts/{alert_id}/resolve", json={"note": "replaced the cable"})
        assert r.status_code == 200
        data = r.json()["data"]
        assert data["status"] == "resolved" and data["resolvedBy"] == data["acknowledgedBy"]
        assert [(h["event"], h["note"]) for h in data["history"]] == [
            ("raised", data["message"]), ("cleared", "the condition cleared; waiting for a person to resolve it"),
            ("acknowledged", "on my way"), ("resolved", "replaced the cable")]
        r = await http.post(f"/api/monitoring/alerts/{alert_id}/resolve")
        assert r.status_code == 409
        r = await http.post(f"/api/monitoring/alerts/{alert_id}/resolve", json={"why": 1})
        assert r.status_code == 400
        stats = (await http.get("/api/monitoring/alerts/statistics")).json()["data"]
        assert stats["byStatus"] == {"open": 0, "acknowledged": 0, "resolved": 1} and stats["active"] == 0
        later = clock.iso(clock.now() + timedelta(minutes=1))
        assert (await http.get("/api/monitoring/alerts/statistics", params={"since": later})).json()["data"][
            "total"] == 0  # raised before


async def test_an_open_transaction_past_its_hours_raises_an_alert(nursery, tmp_path):
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "TX1") as cp:
            await cp.result("BootNotification", BOOT)
            started_tx = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                                              "timestamp": clock.iso()})
            tx = started_tx["transactionId"]
            assert [e for e, _ in await monitor.check(clock.now() + timedelta(hours=23))] == []
            [(event, row)] = await monitor.check(clock.now() + timedelta(hours=24, minutes=1))
            assert (event, row["subject"], row["charge_point_id"]) == ("raised", f"transaction {tx}", "TX1")
            await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": clock.iso()})
            await until(lambda: _resolved(http, row["id"]))  # the stop's event brings the next check forward


async def test_protocol_violations_in_the_window_raise_an_alert(nursery, tmp_path):
    config = monitoring_config(tmp_path, protocol_violations={"threshold": 2.0})
    async with started(nursery, config) as gw:
        monitor = gw.running.monitor
        async with charger(gw.ocpp_port, "BAD1") as cp:
            await cp.result("BootNotification", BOOT)
            await monitor.check()
            for _ in range(2):  # a status 1.6 does not know: a violation recorded each time
                await cp.call("StatusNotification", {"connectorId": 1, "status": "Dancing", "errorCode": "NoError"})

            async def recorded() -> bool:
                return sum(v["count"] for v in await gw.store.chargers.violations("BAD1")) == 2
            await until(recorded)
            changes = await until(monitor.check)
            assert [(e, r["rule"], r["subject"], r["value"]) for e, r in changes] == [
                ("raised", "protocol_violations", "BAD1", 2.0)]


async def test_the_monitoring_figures_agree_with_metrics(nursery, tmp_path):
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "BIZ1") as cp:
            await cp.result("BootNotification", BOOT)
            first = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 1000,
                                                         "timestamp": clock.iso()})
            await cp.result("StopTransaction", {"transactionId": first["transactionId"], "meterStop": 3500,
                                                "timestamp": clock.iso()})
            await cp.result("StartTransaction", {"connectorId": 2, "idTag": "T2", "meterStart": 0,
                                                 "timestamp": clock.iso()})
            stopped_hour = datetime.now().astimezone().hour  # billing.timezone "local"

            async def priced() -> dict:  # the order is priced once billing hears of the stop
                data = (await http.get("/api/monitoring/metrics/business")).json()["data"]
                return data if data["revenueToday"] else {}
            business = await until(priced)
            metrics = await scrape(http)
            performance = (await http.get("/api/monitoring/metrics/performance")).json()["data"]
        # counted by hand: one charger online, one session running, one stopped today with 2500 Wh
        assert (business["chargersOnline"], business["sessionsRunning"], business["sessionsToday"],
                business["energyTodayWh"]) == (1, 1, 1, 2500)
        assert value(metrics, "gateway_chargers_online") == 1
        assert value(metrics, "gateway_sessions_running") == 1 == value(metrics, "ocpp_transactions_open")
        assert value(metrics, "gateway_sessions_today") == 1
        assert value(metrics, "gateway_energy_today_wh") == 2500
        # the default tariff: 150 fen per kWh from 06:00 to 22:00, 80 otherwise
        assert business["revenueToday"] == 2500 * (150 if 6 <= stopped_hour < 22 else 80) // 1000
        assert value(metrics, "gateway_revenue_today") == business["revenueToday"]
        frames_in = sum(v for (name, labels), v in metrics.items()
                        if name == "ocpp_frames_total" and dict(labels)["direction"] == "in")
        assert frames_in == performance["frames"]["inTotal"] == 4
        assert value(metrics, "gateway_db_commits_total") <= performance["database"]["commits"]
        assert performance["database"]["commits"] > 0 and performance["database"]["meanCommitMsSinceStart"] > 0


async def test_the_gateways_own_log_is_kept_and_searchable(nursery, tmp_path):
    logs.configure("json", "info", cache=False)
    try:
        config = make_config(tmp_path)
        config = attrs.evolve(config, logbook=attrs.evolve(config.logbook, flush_interval=0.05))
        async with started(nursery, config) as gw, gw.http() as http:
            structlog.get_logger("gateway.test").bind(cp="LOG1").warning("a line to find", api_token="s3cret")
            r = await http.get("/api/monitoring/logs/realtime", params={"chargePointId": "LOG1"})
            [line] = r.json()["data"]["lines"]
            assert (line["level"], line["logger"], line["event"]) == ("warning", "gateway.test", "a line to find")
            assert line["fields"]["api_token"] == "***"
            after = r.json()["data"]["last"]
            r = await http.get("/api/monitoring/logs/realtime", params={"after": after, "chargePointId": "LOG1"})
            assert r.json()["data"]["lines"] == []

            async def found() -> list:
                r = await http.get("/api/monitoring/logs/search", params={"q": "LINE TO", "level": "warning",
                                                                          "logger": "gateway"})
                return r.json()["data"]["records"]
            [kept] = await until(found)
            assert kept["chargePointId"] == "LOG1" and kept["fields"] == {"api_token": "***"}
            assert "s3cret" not in (await http.get("/api/monitoring/logs/search", params={"q": "s3cret"})).text
            r = await http.get("/api/monitoring/logs/search", params={"level": "error", "q": "LINE TO"})
            assert r.json()["data"]["total"] == 0
            r = await http.get("/api/monitoring/logs/search", params={"logger": "gateway.te"})
            assert r.json()["data"]["total"] == 0  # a logger and those below it, not a prefix of its name
    finally:
        structlog.reset_defaults()
        logbook.RING.lines.clear()


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_viewer_may_read_alerts_but_not_resolve_them_nor_read_the_log(nursery, tmp_path, prefix):
    async with started(nursery, monitoring_config(tmp_path)) as gw, gw.http() as http:
        viewer, operator = await viewer_and_operator(gw)
        assert (await http.get(prefix + "/alerts", headers=viewer)).status_code == 200
        assert (await http.post(prefix + "/alerts/1/resolve", headers=viewer)).status_code == 403
        assert (await http.post(prefix + "/alerts/1/resolve", headers=operator)).status_code == 404
        assert (await http.get(prefix + "/logs/search", headers=operator)).status_code == 403


async def test_a_refused_payment_callback_raises_an_alert_that_waits_for_a_person(gw):
    # gw: both payment providers configured (tests/integration/conftest.py); a body Alipay never sends.
    from tests.integration.test_billing_providers import post_alipay
    monitor = gw.running.monitor
    async with gw.http() as http:
        assert [r["rule"] for _, r in await monitor.check()] == []
        r = await post_alipay(http, b"this is not a form at all")
        assert r.status_code == 200 and r.text == "fail"
        [(event, row)] = await monitor.check()
        assert (event, row["rule"], row["subject"], row["auto_resolve"]) == (
            "raised", "payment_callback_refused", "alipay", 0)
        assert row["charge_point_id"] is None  # the platform's
        # an hour later the window holds no refusal: cleared, still open until someone resolves it
        [(event, row)] = await monitor.check(clock.now() + timedelta(minutes=61))
        assert (event, row["status"]) == ("cleared", "open")
        health = (await http.get("/api/monitoring/services/health")).json()["data"]["services"]
        assert health["payments_alipay"]["state"] in ("up", "degraded")  # configured here


@sqlite_only("the disk rule watches the database file's disk; a PostgreSQL server's disk is the server's")
async def test_the_machine_rules_disk_and_writer_are_the_platforms(nursery, tmp_path):
    # A threshold of 100 % free: every disk is "nearly full"; one writer restart is enough.
    config = monitoring_config(tmp_path, disk_space={"threshold": 100.0}, writer_restarts={"threshold": 1.0})
    async with started(nursery, config) as gw, gw.http() as http:
        monitor = gw.running.monitor
        await monitor.check()  # the start's check may have raised the disk's already
        first = gw.store.appender.pid
        os.kill(first, signal.SIGKILL)
        await until(lambda: gw.store.appender.restarts >= 1 and gw.store.appender.pid not in (None, first),
                    timeout=30)
        await monitor.check()
        alerts = (await http.get("/api/monitoring/alerts", params={"status": "active"})).json()["data"]["records"]
        assert {(a["rule"], a["subject"], a["chargePointId"]) for a in alerts} == {
            ("disk_space", "disk", None), ("writer_restarts", "writer", None)}
        services = (await http.get("/api/monitoring/services/health")).json()["data"]["services"]
        assert services["disk"]["state"] == "degraded" and "below the 100 % threshold" in services["disk"]["reason"]
        assert services["writer"]["restarts"] >= 1
        metrics = await scrape(http)
        assert value(metrics, "gateway_writer_restarts_total") >= 1
        assert value(metrics, "gateway_alerts_active", rule="disk_space", severity="critical") == 1
