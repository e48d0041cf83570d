"""REST records read from SQLite (docs/api.md section 4): chargers, transactions with meter values, the frame
log, commands; paging, filters, and the 400 of a bad parameter."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
import trio

from gateway import clock
from tests.helpers import ISO, assert_error, BOOT, charger, status
from tests.responder import answering
from tests.waiting import until




async def wait_offline(gateway, cp_id: str) -> None:
    await until(lambda: cp_id not in gateway.registry)


# ---- chargers -----------------------------------------------------------------------------------------------

async def test_chargers_page_with_total_and_online_filter(gateway):
    for cp_id in ("A", "C"):
        async with charger(gateway.ocpp_port, cp_id) as cp:
            await cp.result("BootNotification", BOOT)
        await wait_offline(gateway, cp_id)
    async with charger(gateway.ocpp_port, "B") as cp, gateway.http() as http:
        await cp.result("BootNotification", {"chargePointVendor": "VB", "chargePointModel": "MB"})

        async def page(**params):
            r = await http.get("/api/chargers", params={k: str(v) for k, v in params.items()})
            assert r.status_code == 200, r.text
            body = r.json()
            return body, [c["chargePointId"] for c in body["records"]]

        body, ids = await page(page=1, size=2)
        assert (body["total"], body["page"], body["size"]) == (3, 1, 2)
        assert ids == ["B", "A"]  # online first, then by id
        body, ids2 = await page(page=2, size=2)
        assert (body["total"], body["page"], ids2) == (3, 2, ["C"])
        body, ids3 = await page(page=3, size=2)
        assert (body["total"], ids3) == (3, [])

        body, ids = await page(online="true")
        assert (body["total"], ids) == (1, ["B"])
        assert body["records"][0]["online"] is True and body["records"][0]["device"]["vendor"] == "VB"
        body, ids = await page(online="false")
        assert (body["total"], ids) == (2, ["A", "C"])
        assert all(c["online"] is False for c in body["records"])
        body, _ = await page()
        assert (body["total"], body["page"], body["size"]) == (3, 1, 50)


async def test_charger_detail_includes_configuration_and_unknown_is_404(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("StatusNotification", status(1, "Available"))
        await http.get("/api/ocpp/getConfiguration/CP1")
        r = await http.get("/api/chargers/CP1")
        assert r.status_code == 200
        body = r.json()
        assert (body["chargePointId"], body["online"], body["registrationStatus"]) == ("CP1", True, "Accepted")
        assert body["connectors"] == {"1": "Available"}
        assert [(k["key"], k["value"], k["readonly"]) for k in body["configuration"]] == [
            ("HeartbeatInterval", "60", False), ("MeterValueSampleInterval", "30", False),
            ("NumberOfConnectors", "2", True)]
        for path in ("/api/chargers/NOPE", "/api/chargers/NOPE/configuration", "/api/chargers/NOPE/violations",
                     "/api/chargers/NOPE/notifications", "/api/chargers/NOPE/charging-profiles",
                     "/api/chargers/NOPE/local-lists"):
            body = assert_error(await http.get(path), 404, "not_found")
            assert "NOPE" in body["message"]


async def test_violations_are_listed_and_counted(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        assert (await http.get("/api/chargers/CP1/violations")).json() == []
        # lenient mode answers a payload with a field 1.6 does not know, and notes it
        for _ in range(2):
            await cp.result("Heartbeat", {"uptime": 12})
        r = await http.get("/api/chargers/CP1/violations")
    assert r.status_code == 200
    [v] = r.json()
    assert (v["chargePointId"], v["action"], v["kind"], v["code"], v["count"]) == (
        "CP1", "Heartbeat", "request", "FormationViolation", 2)
    assert "uptime" in v["message"] and ISO.match(v["firstSeen"]) and v["firstSeen"] <= v["lastSeen"]


async def test_notifications_are_listed_in_order_and_filtered_by_action(gateway):
    reports = [("FirmwareStatusNotification", {"status": "Downloaded"}),
               ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
               ("DataTransfer", {"vendorId": "com.example", "messageId": "Temp", "data": "41.5"}),
               ("FirmwareStatusNotification", {"status": "Installed"})]
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        for action, payload in reports:
            await cp.result(action, payload)
        page = (await http.get("/api/chargers/CP1/notifications")).json()
        firmware = (await http.get("/api/chargers/CP1/notifications",
                                   params={"action": "FirmwareStatusNotification"})).json()["records"][::-1]
        second = (await http.get("/api/chargers/CP1/notifications", params={"size": "3", "page": "2"})).json()
    assert (page["total"], page["page"], page["size"]) == (4, 1, 50)
    everything = page["records"][::-1]  # newest first
    assert [n["status"] for n in second["records"]] == ["Downloaded"]  # the oldest, alone on page 2
    assert [(n["action"], n["payload"]) for n in everything] == reports
    assert [n["status"] for n in everything] == ["Downloaded", "Uploaded", "UnknownVendorId", "Installed"]
    assert [n["status"] for n in firmware] == ["Downloaded", "Installed"]
    assert all(n["chargePointId"] == "CP1" and ISO.match(n["receivedAt"]) for n in everything)


# ---- transactions -------------------------------------------------------------------------------------------

async def test_transaction_with_meter_values_and_energy(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 12345,
                                                     "timestamp": "2026-03-01T10:00:00Z"})
        tx_id = start["transactionId"]
        r = await http.get(f"/api/transactions/{tx_id}")
        assert r.json()["stoppedAt"] is None and r.json()["energyWh"] is None
        await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
            {"timestamp": "2026-03-01T10:15:00Z", "sampledValue": [
                {"value": "13345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1"}]}]})
        await cp.result("StopTransaction", {
            "transactionId": tx_id, "meterStop": 15012, "timestamp": "2026-03-01T10:30:00Z", "reason": "EVDisconnected",
            "idTag": "TAG1", "transactionData": [{"timestamp": "2026-03-01T10:30:00Z", "sampledValue": [
                {"value": "15012", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                 "context": "Transaction.End"}]}]})
        r = await http.get(f"/api/transactions/{tx_id}")
        assert_error(await http.get("/api/transactions/999999"), 404, "not_found")
    assert r.status_code == 200
    tx = r.json()
    assert (tx["id"], tx["chargePointId"], tx["connectorId"], tx["idTag"], tx["idTagStatus"]) == (
        tx_id, "CP1", 1, "TAG1", "Accepted")
    assert (tx["meterStart"], tx["meterStop"], tx["startTimestamp"], tx["stopTimestamp"], tx["stopReason"]) == (
        12345, 15012, "2026-03-01T10:00:00Z", "2026-03-01T10:30:00Z", "EVDisconnected")
    assert tx["energyWh"] == 2667  # 15012 - 12345, worked out by hand
    assert ISO.match(tx["startedAt"]) and ISO.match(tx["stoppedAt"])
    samples = [(m["timestamp"], m["value"], m["measurand"], m["unit"], m["phase"], m["context"], m["source"])
               for m in tx["meterValues"]]
    assert samples == [
        ("2026-03-01T10:15:00Z", "13345", "Energy.Active.Import.Register", "Wh", None, None, "MeterValues"),
        ("2026-03-01T10:15:00Z", "7.2", "Power.Active.Import", "kW", "L1", None, "MeterValues"),
        ("2026-03-01T10:30:00Z", "15012", "Energy.Active.Import.Register", "Wh", None, "Transaction.End",
         "StopTransaction"),
    ]
    assert all(m["transactionId"] == tx_id and m["connectorId"] == 1 for m in tx["meterValues"])


async def test_transactions_filter_by_charger_state_and_time_and_page(gateway):
    async def start(cp, connector):
        return (await cp.result("StartTransaction", {"connectorId": connector, "idTag": "T", "meterStart": 0,
                                                     "timestamp": clock.iso()}))["transactionId"]

    async with charger(gateway.ocpp_port, "CP1") as cp1, charger(gateway.ocpp_port, "CP2") as cp2, \
            gateway.http() as http:
        await cp1.result("BootNotification", BOOT)
        await cp2.result("BootNotification", BOOT)
        t1 = await start(cp1, 1)
        await cp1.result("StopTransaction", {"transactionId": t1, "meterStop": 10, "timestamp": clock.iso()})
        await trio.sleep(0.01)
        mark = clock.iso()  # after t1 started, before t2 and t3
        await trio.sleep(0.01)
        t2 = await start(cp1, 2)
        t3 = await start(cp2, 1)

        async def ids(**params):
            r = await http.get("/api/transactions", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            return body["total"], [t["id"] for t in body["records"]]

        assert await ids() == (3, [t3, t2, t1])  # newest first
        assert await ids(cpId="CP1") == (2, [t2, t1])
        assert await ids(cpId="CP2") == (1, [t3])
        assert await ids(state="open") == (2, [t3, t2])
        assert await ids(state="closed") == (1, [t1])
        assert await ids(cpId="CP1", state="open") == (1, [t2])
        assert await ids(since=mark) == (2, [t3, t2])
        assert await ids(until=mark) == (1, [t1])
        # the same moment written with an offset
        moment = clock.parse(mark)
        assert await ids(since=moment.astimezone(timezone(timedelta(hours=2))).isoformat()) \
            == (2, [t3, t2])
        assert await ids(size="2", page="1") == (3, [t3, t2])
        assert await ids(size="2", page="2") == (3, [t1])
        r = await http.get("/api/transactions", params={"size": "2", "page": "2"})
        assert (r.json()["page"], r.json()["size"]) == (2, 2)
        assert r.json()["records"][0]["energyWh"] == 10


# ---- frames -------------------------------------------------------------------------------------------------

async def test_frames_newest_first_with_limit_and_before_paging(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp1, charger(gateway.ocpp_port, "CP2") as cp2, \
            gateway.http() as http:
        await cp1.result("BootNotification", BOOT)
        await cp2.result("BootNotification", BOOT)
        await cp2.result("Heartbeat", {})
        reply = await cp1.call("Heartbeat", {})
        unique_id = reply[1]

        everything = (await http.get("/api/frames", params={"cpId": "CP1", "limit": "500"})).json()
        assert everything["nextBefore"] is None
        frames = everything["records"]
        # connected event, BootNotification in and out, Heartbeat in and out
        assert [(f["direction"], f["action"]) for f in frames] == [
            ("out", "Heartbeat"), ("in", "Heartbeat"), ("out", "BootNotification"), ("in", "BootNotification"),
            ("event", "connect")]
        ids = [f["id"] for f in frames]
        assert ids == sorted(ids, reverse=True)
        assert all(f["chargePointId"] == "CP1" and ISO.match(f["at"]) for f in frames)
        out, inn = frames[0], frames[1]
        assert (inn["messageType"], inn["uniqueId"], json.loads(inn["body"])) == (2, unique_id,
                                                                                 [2, unique_id, "Heartbeat", {}])
        assert (out["messageType"], out["uniqueId"], json.loads(out["body"])) == (3, unique_id, reply)

        pages, before = [], None
        while True:
            params = {"cpId": "CP1", "limit": "2", **({"before": str(before)} if before else {})}
            body = (await http.get("/api/frames", params=params)).json()
            pages.append([f["id"] for f in body["records"]])
            before = body["nextBefore"]
            if before is None:
                break
            assert before == body["records"][-1]["id"]
        assert pages == [ids[0:2], ids[2:4], ids[4:5]]

        every_charger = (await http.get("/api/frames", params={"limit": "500"})).json()["records"]
        assert {f["chargePointId"] for f in every_charger} == {"CP1", "CP2"}
        assert len(every_charger) == 5 + 5  # CP2: event, boot in/out, heartbeat in/out


async def test_command_by_request_id(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        sent = (await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})).json()
        r = await http.get(f"/api/commands/{sent['requestId']}")
        assert r.status_code == 200
        command = r.json()
        assert (command["requestId"], command["chargePointId"], command["action"], command["payload"],
                command["outcome"], command["result"]) == (
            cp.received[-1][0], "CP1", "Reset", {"type": "Soft"}, "answered", {"status": "Accepted"})
        assert command["latencyMs"] >= 0 and ISO.match(command["sentAt"]) and ISO.match(command["finishedAt"])
        body = assert_error(await http.get("/api/commands/no-such-request"), 404, "not_found")
        assert "no-such-request" in body["message"]

        await http.get("/api/ocpp/clearCache/CP1")
        await http.get("/api/ocpp/reset/CP1", params={"type": "Hard"})
        r = (await http.get("/api/commands", params={"action": "Reset"})).json()
        assert r["total"] == 2 and [c["payload"] for c in r["records"]] == [{"type": "Hard"}, {"type": "Soft"}]
        r = (await http.get("/api/commands", params={"cpId": "CP1", "size": "1", "page": "2"})).json()
        assert (r["total"], [c["action"] for c in r["records"]]) == (3, ["ClearCache"])


# ---- bad parameters -----------------------------------------------------------------------------------------

BAD = [
    ("/api/chargers", {"page": "0"}, "page"),
    ("/api/chargers", {"page": "x"}, "page"),
    ("/api/chargers", {"size": "0"}, "size"),
    ("/api/chargers", {"size": "100000"}, "size"),  # above 500 is refused, not capped
    ("/api/chargers", {"online": "maybe"}, "online"),
    ("/api/transactions", {"since": "garbage"}, "since"),
    ("/api/transactions", {"until": "2026-13-45T00:00:00Z"}, "until"),
    ("/api/transactions", {"state": "maybe"}, "state"),
    ("/api/transactions", {"page": "-1"}, "page"),
    ("/api/frames", {"limit": "0"}, "limit"),
    ("/api/frames", {"limit": "501"}, "limit"),
    ("/api/frames", {"before": "x"}, "before"),
    ("/api/frames", {"since": "yesterday"}, "since"),
    ("/api/commands", {"size": "501"}, "size"),
    ("/api/reservations", {"page": "0"}, "page"),
    ("/api/id-tags", {"size": "abc"}, "size"),
]


@pytest.mark.parametrize("path,params,name", BAD, ids=[f"{p}?{next(iter(q))}={next(iter(q.values()))}"
                                                       for p, q, _ in BAD])
async def test_bad_parameter_is_a_400_with_the_envelope(gateway, path, params, name):
    async with gateway.http() as http:
        body = assert_error(await http.get(path, params=params), 400, "bad_request")
    assert name in body["message"]
    assert set(body) >= {"error", "message", "path", "timestamp"}
