"""/api/charger against a real gateway with chargers: the registry's records and live state, start and stop
by connector through orders, the 2003 business error, enable/status with ChangeAvailability, the offline
and fault lists, statistics against numbers worked out by hand, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway import clock
from tests.conftest import make_config, started
from tests.helpers import BOOT, ISO, charger, status
from tests.integration.test_auth import viewer_and_operator
from tests.integration.test_billing_orders import (CREATED, billing_config, ok, order_of, rows,
                                                   start_after_remote_start, stop_tx)
from tests.responder import answering
from tests.waiting import until


def error(r: Any, status_code: int) -> dict:
    assert r.status_code == status_code, r.text
    body = r.json()
    assert isinstance(body["message"], str) and body["message"]
    return body


def business(r: Any, charger_id: int, current: int) -> dict:
    """The 2003 business error: HTTP 409, {code: 2003, message, data: {chargerId, currentStatus, ...}}."""
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == 2003 and body["data"]["chargerId"] == charger_id, body
    assert body["data"]["currentStatus"] == current, body
    assert ISO.match(body["timestamp"]) and body["path"] == r.request.url.path
    return body


async def register(http: Any, cp_id: str, **more: Any) -> dict:
    return ok(await http.post("/api/charger", json={"chargePointId": cp_id, **more}), 201)


async def sql(store: Any, statement: str, *args: Any) -> None:
    def run(conn: Any) -> None:
        conn.execute(statement, args)
    await store.db.run(run)


async def station(store: Any, code: str, name: str) -> int:
    await sql(store, "INSERT INTO stations (code, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
              code, name, clock.iso(), clock.iso())
    return (await rows(store, "SELECT id FROM stations WHERE code = ?", code))[0]["id"]


# ---- records and live state ------------------------------------------------------------------

async def test_a_registered_charger_is_offline_until_it_connects(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        cp = await register(http, "CP-R1", chargerName="Bay 1",
                            connectors=[{"connectorNo": 2, "type": "Type2", "powerKw": 22},
                                        {"connectorNo": 1, "type": "CCS2", "powerKw": 60.5}])
        assert (cp["chargePointId"], cp["chargerName"], cp["adopted"], cp["enabled"], cp["operatorStatus"]) == (
            "CP-R1", "Bay 1", False, True, "in_service")
        assert (cp["online"], cp["statusCode"], cp["statusName"], cp["lastSeen"], cp["onlineSince"]) == (
            False, 0, "offline", None, None)
        assert cp["device"] == {"vendor": None, "model": None, "serialNumber": None, "firmwareVersion": None}
        assert [(c["connectorNo"], c["type"], c["powerKw"], c["ocppStatus"], c["statusCode"]) for c in
                cp["connectors"]] == [(1, "CCS2", 60.5, None, 0), (2, "Type2", 22, None, 0)]
        [listed] = ok(await http.get("/api/charger/offline"))
        assert listed["chargerId"] == cp["chargerId"] and listed["offlineSeconds"] is None  # never seen

        async with charger(gw.ocpp_port, "CP-R1") as c:
            await c.result("BootNotification", {**BOOT, "chargePointSerialNumber": "SN-9", "firmwareVersion": "1.2"})
            await c.result("StatusNotification", status(1, "Available"))
            await c.result("StatusNotification", status(3, "Available"))  # reported, not declared
            now = ok(await http.get(f"/api/charger/{cp['chargerId']}"))
            assert (now["online"], now["statusCode"], now["statusName"]) == (True, 1, "idle")
            assert ISO.match(now["onlineSince"]) and now["offlineSince"] is None
            assert now["device"] == {"vendor": "TestVendor", "model": "TestModel", "serialNumber": "SN-9",
                                     "firmwareVersion": "1.2"}
            assert now["registrationStatus"] == "Accepted"
            assert [(c["connectorNo"], c["type"], c["ocppStatus"], c["statusCode"], c["statusName"]) for c in
                    now["connectors"]] == [(1, "CCS2", "Available", 1, "idle"), (2, "Type2", None, 1, "idle"),
                                           (3, None, "Available", 1, "idle")]
            assert ok(await http.get("/api/charger/offline")) == []

        async def gone() -> list:
            return ok(await http.get("/api/charger/offline"))
        [listed] = await until(gone)
        assert listed["online"] is False and listed["statusCode"] == 0 and ISO.match(listed["offlineSince"])
        assert isinstance(listed["offlineSeconds"], float) and listed["offlineSeconds"] >= 0
        assert [c["statusCode"] for c in listed["connectors"]] == [0, 0, 0]


async def test_a_faulted_connector_is_listed_until_it_recovers(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        cp = await register(http, "CP-F1")
        async with answering(gw.ocpp_port, "CP-F1") as c:
            await c.result("StatusNotification", status(1, "Available"))
            await c.result("StatusNotification", status(2, "Charging"))
            assert ok(await http.get("/api/charger/fault")) == []
            assert ok(await http.get(f"/api/charger/{cp['chargerId']}"))["statusCode"] == 2  # charging
            await c.result("StatusNotification", status(1, "Faulted", errorCode="GroundFailure", info="RCD",
                                                        vendorErrorCode="E42"))
            [row] = ok(await http.get("/api/charger/fault"))
            since = row.pop("since")
            assert row == {"chargerId": cp["chargerId"], "chargePointId": "CP-F1", "stationId": None,
                           "connectorNo": 1, "ocppStatus": "Faulted", "errorCode": "GroundFailure", "info": "RCD",
                           "vendorErrorCode": "E42"}
            await c.result("StatusNotification", status(1, "Faulted", errorCode="GroundFailure"))  # repeated
            [row] = ok(await http.get("/api/charger/fault"))
            assert row["since"] == since  # the fault began at the first report
            view = ok(await http.get(f"/api/charger/{cp['chargerId']}"))
            assert (view["statusCode"], view["statusName"]) == (3, "fault")  # fault wins over charging
            assert [r["chargerId"] for r in ok(await http.get("/api/charger?statusCode=3"))["records"]] == [
                cp["chargerId"]]
            # an error code alone (status Available) is a fault too
            await c.result("StatusNotification", status(1, "Available"))
            await c.result("StatusNotification", status(2, "Available", errorCode="HighTemperature"))
            assert [(r["connectorNo"], r["errorCode"]) for r in ok(await http.get("/api/charger/fault"))] == [
                (2, "HighTemperature")]
            await c.result("StatusNotification", status(2, "Available"))
            assert ok(await http.get("/api/charger/fault")) == []
            assert ok(await http.get(f"/api/charger/{cp['chargerId']}"))["statusCode"] == 1
            assert ok(await http.get("/api/charger?statusCode=3"))["records"] == []


async def test_crud_paging_filters_and_bad_input(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        site = await station(gw.store, "S1", "North depot")
        a = await register(http, "CP-A", chargerName="alpha", stationId=site)
        b = await register(http, "CP-B", chargerName="beta")
        c = await register(http, "CP-C")
        assert a["stationName"] == "North depot" and b["stationId"] is None
        # duplicates and lookalikes
        body = error(await http.post("/api/charger", json={"chargePointId": "CP-A"}), 409)
        assert "CP-A" in body["message"]
        body = error(await http.post("/api/charger", json={"chargePointId": "cp-a"}), 409)
        assert "CP-A" in body["message"]
        # the handshake's id rules, unknown fields, bad connectors, unknown station
        for bad in ({"chargePointId": " X "}, {"chargePointId": ""}, {}, {"chargePointId": "X", "colour": "red"},
                    {"chargePointId": "X", "connectors": [{"connectorNo": 0}]},
                    {"chargePointId": "X", "connectors": [{"connectorNo": 1}, {"connectorNo": 1}]},
                    {"chargePointId": "X", "connectors": [{"connectorNo": 1, "powerKw": -3}]},
                    {"chargePointId": "X", "chargerName": ""}):
            error(await http.post("/api/charger", json=bad), 400)
        error(await http.post("/api/charger", json={"chargePointId": "X", "stationId": 999}), 404)
        assert ok(await http.get("/api/charger"))["total"] == 3

        # paging, by id
        page = ok(await http.get("/api/charger/page", params={"page": 2, "size": 2}))
        assert (page["total"], page["page"], page["size"]) == (3, 2, 2)
        assert [r["chargerId"] for r in page["records"]] == [c["chargerId"]]
        listed = ok(await http.get("/api/charger/list", params={"size": 2}))
        assert [r["chargerId"] for r in listed["records"]] == [a["chargerId"], b["chargerId"]]
        # filters
        assert [r["chargePointId"] for r in ok(await http.get("/api/charger", params={"stationId": site}))[
            "records"]] == ["CP-A"]
        assert [r["chargePointId"] for r in ok(await http.get("/api/charger", params={"q": "bet"}))["records"]] == [
            "CP-B"]
        assert [r["chargePointId"] for r in ok(await http.get("/api/charger", params={"q": "CP-"}))["records"]] == [
            "CP-A", "CP-B", "CP-C"]
        assert ok(await http.get("/api/charger", params={"q": "%"}))["total"] == 0  # a wildcard is a letter
        assert [r["chargePointId"] for r in ok(await http.get("/api/charger", params={"chargePointId": "CP-C"}))[
            "records"]] == ["CP-C"]
        assert ok(await http.get("/api/charger", params={"statusCode": 0}))["total"] == 3
        assert ok(await http.get("/api/charger", params={"statusCode": 1}))["total"] == 0
        error(await http.get("/api/charger", params={"statusCode": 7}), 400)
        error(await http.get("/api/charger", params={"enabled": "maybe"}), 400)

        # updates: the EVCS form and by path
        changed = ok(await http.put("/api/charger", json={"chargerId": b["chargerId"], "stationId": site,
                                                          "connectors": [{"connectorNo": 1, "type": "CCS2"}]}))
        assert (changed["stationName"], changed["chargerName"]) == ("North depot", "beta")
        assert [(x["connectorNo"], x["type"], x["powerKw"]) for x in changed["connectors"]] == [(1, "CCS2", None)]
        changed = ok(await http.put(f"/api/charger/{b['chargerId']}", json={"chargerName": None, "stationId": None}))
        assert (changed["chargerName"], changed["stationId"]) == (None, None) and len(changed["connectors"]) == 1
        error(await http.put(f"/api/charger/{b['chargerId']}", json={"chargePointId": "CP-Z"}), 400)
        error(await http.put(f"/api/charger/{b['chargerId']}", json={"enabled": False}), 400)  # its own route
        error(await http.put("/api/charger", json={"chargerName": "x"}), 400)
        error(await http.put("/api/charger/9999", json={"chargerName": "x"}), 404)
        error(await http.put(f"/api/charger/{b['chargerId']}", json={"stationId": 999}), 404)

        # delete: the registry entry goes, the charger's history stays
        await sql(gw.store, "INSERT INTO transactions (charge_point_id, connector_id, started_at) VALUES (?, 1, ?)",
                  "CP-C", clock.iso())
        r = await http.delete(f"/api/charger/{c['chargerId']}")
        assert ok(r) is None
        error(await http.get(f"/api/charger/{c['chargerId']}"), 404)
        error(await http.delete(f"/api/charger/{c['chargerId']}"), 404)
        assert len(await rows(gw.store, "SELECT id FROM transactions WHERE charge_point_id = 'CP-C'")) == 1
        again = await register(http, "CP-C")  # registered anew, under a new id
        assert again["chargerId"] > c["chargerId"]


async def test_roles(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        viewer, operator = await viewer_and_operator(gw)
        error(await http.get("/api/charger"), 401)
        created = ok(await http.post("/api/charger", json={"chargePointId": "CP-1"}, headers=operator), 201)
        one = f"/api/charger/{created['chargerId']}"
        for path in ("/api/charger", "/api/charger/page", "/api/charger/list", one, "/api/charger/offline",
                     "/api/charger/fault", "/api/charger/statistics"):
            ok(await http.get(path, headers=viewer))
        for method, path, body in (("POST", "/api/charger", {"chargePointId": "CP-2"}),
                                   ("PUT", "/api/charger", {"chargerId": created["chargerId"]}),
                                   ("PUT", one, {}), ("DELETE", one, None),
                                   ("POST", f"{one}/connectors/1/start", {"idTag": "T"}),
                                   ("POST", f"{one}/connectors/1/stop", None), ("POST", f"{one}/reset", None),
                                   ("PUT", f"{one}/enable?enabled=false", None),
                                   ("PUT", f"{one}/status?status=retired", None)):
            error(await http.request(method, path, json=body, headers=viewer), 403)
        assert ok(await http.get(one, headers=viewer))["enabled"] is True  # nothing changed


# ---- commands ---------------------------------------------------------------------------------

async def test_start_and_stop_by_connector_open_and_close_an_order(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        cp = await register(http, "CP1", connectors=[{"connectorNo": 1}, {"connectorNo": 2}])
        base = f"/api/charger/{cp['chargerId']}/connectors"
        async with answering(gw.ocpp_port, "CP1") as c:
            start_after_remote_start(c)
            r = await http.post(f"{base}/1/start", json={"idTag": "TAG1"})
            data = ok(r, 201)
            assert data["remoteStart"]["status"] == "Accepted" and data["status"] == CREATED
            assert data["sessionId"].startswith(f"chg-{cp['chargerId']}-1-") and data["chargePointId"] == "CP1"
            assert [(a, p) for _, a, p in c.received] == [("RemoteStartTransaction",
                                                           {"idTag": "TAG1", "connectorId": 1})]

            async def linked() -> dict | None:
                order = await gw.store.orders.find("session_id", data["sessionId"])
                return order if order["transaction_id"] is not None else None
            tx = (await until(linked))["transaction_id"]
            # the connector is charging now: a second start is refused before anything is sent
            body = business(await http.post(f"{base}/1/start", json={"idTag": "TAG1"}), cp["chargerId"], 2)
            assert body["data"]["orderId"] == data["id"] and "charging" in body["message"]
            assert c.actions() == ["RemoteStartTransaction"]
            # the other connector has nothing to stop
            error(await http.post(f"{base}/2/stop"), 409)

            r = await http.post(f"{base}/1/stop")
            stopped = ok(r)
            assert stopped["id"] == data["id"] and stopped["remoteStop"]["status"] == "Accepted"
            assert c.received[-1][1:] == ["RemoteStopTransaction", {"transactionId": tx}]
            await stop_tx(c, tx, 9000, reason="Remote")
            closed = await order_of(gw.store, tx, closed=True)
            assert closed["id"] == data["id"] and closed["status"] == 1  # completed
            error(await http.post(f"{base}/1/stop"), 409)  # nothing open any more
            # a sessionId given is used, and the answer is /api/order/start's
            again = ok(await http.post(f"{base}/2/start", json={"idTag": "TAG2", "sessionId": "S-42"}), 201)
            assert again["sessionId"] == "S-42" and again["connectorId"] == 2
            error(await http.post(f"{base}/9/start", json={"idTag": "TAG2"}), 404)  # no such connector
            error(await http.post(f"{base}/1/start", json={}), 400)
            error(await http.post(f"{base}/1/start", json={"idTag": "T", "sessionId": "tx-1"}), 400)


async def test_a_start_is_refused_with_2003_offline_faulted_disabled_or_not_in_service(nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        cp = await register(http, "CP1", connectors=[{"connectorNo": 1}])
        one = f"/api/charger/{cp['chargerId']}"
        start = f"{one}/connectors/1/start"
        body = business(await http.post(start, json={"idTag": "TAG1"}), cp["chargerId"], 0)
        assert "offline" in body["message"]
        async with answering(gw.ocpp_port, "CP1") as c:
            await c.result("StatusNotification", status(1, "Faulted", errorCode="OverCurrentFailure"))
            body = business(await http.post(start, json={"idTag": "TAG1"}), cp["chargerId"], 3)
            assert "fault" in body["message"]
            await c.result("StatusNotification", status(1, "Available"))

            # disabling: stored, and the connected charger is told Inoperative
            r = await http.put(f"{one}/enable", params={"enabled": "false"})
            data = ok(r)
            assert data["enabled"] is False and data["changeAvailability"]["status"] == "Accepted"
            assert c.received[-1][1:] == ["ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}]
            assert data["changeAvailability"]["requestId"] == c.received[-1][0]
            body = business(await http.post(start, json={"idTag": "TAG1"}), cp["chargerId"], 1)
            assert "disabled" in body["message"]
            data = ok(await http.put(f"{one}/enable", json={"enabled": True}))
            assert data["enabled"] is True
            assert c.received[-1][1:] == ["ChangeAvailability", {"connectorId": 0, "type": "Operative"}]

            data = ok(await http.put(f"{one}/status", params={"status": "maintenance"}))
            assert data["operatorStatus"] == "maintenance"
            assert c.received[-1][1:] == ["ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}]
            body = business(await http.post(start, json={"idTag": "TAG1"}), cp["chargerId"], 1)
            assert "maintenance" in body["message"]
            ok(await http.put(f"{one}/status", json={"status": "in_service"}))
            assert c.received[-1][1:] == ["ChangeAvailability", {"connectorId": 0, "type": "Operative"}]
            error(await http.put(f"{one}/status", params={"status": "broken"}), 400)
            error(await http.put(f"{one}/enable", params={"enabled": "perhaps"}), 400)
            error(await http.put(f"{one}/enable"), 400)
            assert [a for a in c.actions() if a != "ChangeAvailability"] == []  # no start was ever sent

            # reset goes through the command service
            data = ok(await http.post(f"{one}/reset", params={"type": "Hard"}))
            assert data["status"] == "Accepted" and c.received[-1][1:] == ["Reset", {"type": "Hard"}]
            ok(await http.post(f"{one}/reset"))
            assert c.received[-1][1:] == ["Reset", {"type": "Soft"}]
            error(await http.post(f"{one}/reset", params={"type": "Medium"}), 400)

        # offline: the flag is stored, nothing can be sent
        data = ok(await http.put(f"{one}/enable", params={"enabled": "false"}))
        assert data["enabled"] is False and data["changeAvailability"] is None
        error(await http.post(f"{one}/reset"), 404)


async def test_with_billing_off_start_answers_as_order_start_does(nursery, tmp_path):
    config = make_config(tmp_path)
    config.billing.enabled = False
    async with started(nursery, config) as gw, gw.http() as http, answering(gw.ocpp_port, "CP1") as c:
        cp = await register(http, "CP1", connectors=[{"connectorNo": 1}])
        order_start = await http.post("/api/order/start", json={"sessionId": "S", "cpId": "CP1", "idTag": "T"})
        r = await http.post(f"/api/charger/{cp['chargerId']}/connectors/1/start", json={"idTag": "T"})
        assert r.status_code == order_start.status_code == 404
        assert r.json()["message"] == order_start.json()["message"]
        assert c.actions() == []


# ---- statistics -------------------------------------------------------------------------------

async def test_statistics_against_numbers_worked_out_by_hand(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        site = await station(gw.store, "S1", "North depot")
        await register(http, "CP-A", stationId=site)
        await register(http, "CP-B")
        day = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)

        def t(hour: int, minute: int = 0) -> str:  # hh:mm of yesterday's hour, UTC
            return clock.iso(day.replace(hour=hour, minute=minute))

        # CP-A: connected at 09:30, gone at 11:00, back at 11:30 (and still there at 12:00)
        for at, action in ((t(9, 30), "connect"), (t(11), "disconnect"), (t(11, 30), "connect")):
            await sql(gw.store, "INSERT INTO frames (at, charge_point_id, direction, action, body) "
                                "VALUES (?, 'CP-A', 'event', ?, '')", at, action)
        # connector 1 charges 10:30 - 11:45; connector 2 briefly 10:45 - 10:50 (within it)
        for at, connector, state in ((t(9, 50), 1, "Available"), (t(10, 30), 1, "Charging"),
                                     (t(11, 45), 1, "Available"), (t(10, 45), 2, "Charging"),
                                     (t(10, 50), 2, "Available")):
            await sql(gw.store, "INSERT INTO status_notifications (charge_point_id, connector_id, status, error_code, "
                                "received_at) VALUES ('CP-A', ?, ?, 'NoError', ?)", connector, state, at)
        # CP-B was never online: its Charging report counts for nothing
        await sql(gw.store, "INSERT INTO status_notifications (charge_point_id, connector_id, status, received_at) "
                            "VALUES ('CP-B', 1, 'Charging', ?)", t(10))
        for cp_id, at, energy in (("CP-A", t(10, 30), 5000), ("CP-A", t(11, 50), None),  # in the period
                                  ("CP-A", t(9), 9999),  # before it
                                  ("CP-B", t(10, 15), 1200),
                                  ("CP-X", t(10, 20), 777)):  # not registered
            await sql(gw.store, "INSERT INTO transactions (charge_point_id, connector_id, started_at, energy_wh) "
                                "VALUES (?, 1, ?, ?)", cp_id, at, energy)

        period = {"since": t(10), "until": t(12)}  # 7200 s
        stats = ok(await http.get("/api/charger/statistics", params=period))
        # online: 10:00-11:00 and 11:30-12:00 = 5400 s; charging while online: 10:30-11:00 and
        # 11:30-11:45 = 2700 s; 2700 / 5400 = 0.5
        assert stats["utilisation"] == 0.5
        assert (stats["sessions"], stats["energyWh"]) == (3, 6200)  # 5000 + 0 (open) + 1200
        assert stats["total"] == 2 and stats["byStatus"] == {"offline": 2, "idle": 0, "charging": 0, "fault": 0}
        assert stats["byStation"] == [{"stationId": site, "stationName": "North depot", "total": 1, "online": 0},
                                      {"stationId": None, "stationName": None, "total": 1, "online": 0}]
        only = ok(await http.get("/api/charger/statistics", params={**period, "stationId": site}))
        assert (only["total"], only["sessions"], only["energyWh"], only["utilisation"]) == (1, 2, 5000, 0.5)
        # 10:40 - 11:10: online 10:40-11:00 (1200 s), charging all of it: 1.0
        assert ok(await http.get("/api/charger/statistics", params={"since": t(10, 40), "until": t(11, 10)}))[
            "utilisation"] == 1.0
        # 11:00 - 11:30: never online
        assert ok(await http.get("/api/charger/statistics", params={"since": t(11), "until": t(11, 30)}))[
            "utilisation"] == 0
        error(await http.get("/api/charger/statistics", params={"since": t(12), "until": t(10)}), 400)
        error(await http.get("/api/charger/statistics", params={"since": "yesterday"}), 400)


async def test_registering_leaves_the_chargers_records_as_they_were(nursery, tmp_path):
    """/api/chargers lists the chargers seen, as before: a registered charger appears there once it connects."""
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        await register(http, "CP1")
        assert (await http.get("/api/chargers")).json()["total"] == 0
        assert (await http.get("/api/chargers/CP1")).status_code == 404
        async with answering(gw.ocpp_port, "CP1"):
            r = await http.get("/api/chargers")
            assert r.status_code == 200 and [c["chargePointId"] for c in r.json()["records"]] == ["CP1"]
