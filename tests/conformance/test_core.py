"""OCTT 1.6 central-system test cases, Core profile (34 cases).

The charger plays the test tool: either the scripted charger (`octt`), which sends exactly the case's
messages, or the simulator (`simulated`) where a whole charger's behaviour is the point. The HTTP API
plays the operator. Every answer the gateway gives to a charger CALL is checked against the 1.6 schema.
"""

from __future__ import annotations

import pytest
import trio

from tests.conftest import make_config, started
from tests.helpers import BOOT, charger
from tests.responder import SILENCE, CallErrorAnswer
from tests.waiting import until

from .support import (add_tag, ago, charger_status, get_ok, is_recent_utc, notifications, now, octt,
                      online_again, simulated, start_transaction, status, stopped, transaction, transactions)

pytestmark = pytest.mark.octt("Core")


async def connectors(http, cp_id: str) -> dict:
    return (await charger_status(http, cp_id))["connectors"]


async def test_TC_001_cold_boot(gateway):
    async with charger(gateway.ocpp_port, "TC001") as cp, gateway.http() as http:
        boot = await cp.result("BootNotification", {**BOOT, "chargePointSerialNumber": "SN-TC001",
                                                    "firmwareVersion": "1.2.3"})
        assert boot["status"] == "Accepted"
        assert boot["interval"] == gateway.config.charger.heartbeat_interval > 0
        assert is_recent_utc(boot["currentTime"])
        for connector in (0, 1, 2):
            assert await cp.result("StatusNotification", status(connector, "Available")) == {}
        heartbeat = await cp.result("Heartbeat", {})
        assert is_recent_utc(heartbeat["currentTime"])

        view = await charger_status(http, "TC001")
        assert view["online"] is True and view["registrationStatus"] == "Accepted"
        assert view["status"] == "Available" and view["connectors"] == {"1": "Available", "2": "Available"}
        assert view["device"]["vendor"] == "TestVendor" and view["device"]["model"] == "TestModel"
        assert view["device"]["serialNumber"] == "SN-TC001" and view["device"]["firmwareVersion"] == "1.2.3"
        assert is_recent_utc(view["bootedAt"])


async def test_TC_003_regular_charging_session_plugin_first(gateway):
    async with octt(gateway, "TC003") as cp, gateway.http() as http:
        await add_tag(http, "TAG003")
        await cp.result("StatusNotification", status(1, "Preparing"))
        authorized = await cp.result("Authorize", {"idTag": "TAG003"})
        assert authorized["idTagInfo"]["status"] == "Accepted"
        start_ts = "2026-01-02T03:04:05Z"  # kept as given, not rewritten
        started_tx = await start_transaction(cp, "TAG003", 1, meter_start=1000, timestamp=start_ts)
        assert started_tx["idTagInfo"]["status"] == "Accepted"
        tx_id = started_tx["transactionId"]
        await cp.result("StatusNotification", status(1, "Charging"))
        assert await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
            {"timestamp": now(), "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register",
                                                   "unit": "Wh", "context": "Sample.Periodic"}]}]}) == {}
        view = await charger_status(http, "TC003")
        assert view["connectors"] == {"1": "Charging"} and view["currentTransactionId"] == tx_id

        await cp.result("StatusNotification", status(1, "Finishing"))
        stop_ts = "2026-01-02T04:04:05.5Z"
        stop = await cp.result("StopTransaction", {"transactionId": tx_id, "idTag": "TAG003", "meterStop": 3000,
                                                   "timestamp": stop_ts, "reason": "Local"})
        assert stop["idTagInfo"]["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Available"))

        tx = await transaction(http, tx_id)
        assert (tx["chargePointId"], tx["connectorId"], tx["idTag"], tx["idTagStatus"]) == \
            ("TC003", 1, "TAG003", "Accepted")
        assert (tx["meterStart"], tx["meterStop"], tx["energyWh"]) == (1000, 3000, 2000)
        assert (tx["startTimestamp"], tx["stopTimestamp"], tx["stopReason"]) == (start_ts, stop_ts, "Local")
        assert [s["value"] for s in tx["meterValues"]] == ["1500"]
        view = await charger_status(http, "TC003")
        assert view["connectors"] == {"1": "Available"} and view["currentTransactionId"] is None


async def test_TC_004_1_regular_charging_session_identification_first(gateway):
    async with octt(gateway, "TC0041") as cp, gateway.http() as http:
        await add_tag(http, "TAG0041")
        authorized = await cp.result("Authorize", {"idTag": "TAG0041"})
        assert authorized["idTagInfo"]["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Preparing"))
        started_tx = await start_transaction(cp, "TAG0041", 1, meter_start=0)
        assert started_tx["idTagInfo"]["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Charging"))

        open_txs = await transactions(http, "TC0041", "open")
        assert [t["id"] for t in open_txs] == [started_tx["transactionId"]]
        assert await connectors(http, "TC0041") == {"1": "Charging"}


async def test_TC_004_2_connection_time_out(gateway):
    """Identification first, but no cable comes: Preparing, then Available, and no transaction."""
    async with octt(gateway, "TC0042") as cp, gateway.http() as http:
        await add_tag(http, "TAG0042")
        authorized = await cp.result("Authorize", {"idTag": "TAG0042"})
        assert authorized["idTagInfo"]["status"] == "Accepted"
        assert await cp.result("StatusNotification", status(1, "Preparing")) == {}
        await trio.sleep(0.3)  # the charger's ConnectionTimeOut runs out
        assert await cp.result("StatusNotification", status(1, "Available")) == {}

        assert await transactions(http, "TC0042") == []
        view = await charger_status(http, "TC0042")
        assert view["connectors"] == {"1": "Available"} and view["currentTransactionId"] is None


async def test_TC_005_1_ev_side_disconnected(gateway):
    async with octt(gateway, "TC0051") as cp, gateway.http() as http:
        await add_tag(http, "TAG0051")
        await cp.result("StatusNotification", status(1, "Preparing"))
        tx_id = (await start_transaction(cp, "TAG0051", 1, meter_start=10))["transactionId"]
        await cp.result("StatusNotification", status(1, "Charging"))
        # The EV unplugs; StopTransactionOnEVSideDisconnect = true.
        await cp.result("StatusNotification", status(1, "Finishing"))
        stop_ts = now()
        stop = await cp.result("StopTransaction", {"transactionId": tx_id, "meterStop": 510, "timestamp": stop_ts,
                                                   "reason": "EVDisconnected"})
        assert "idTagInfo" not in stop or stop["idTagInfo"]["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Available"))

        tx = await transaction(http, tx_id)
        assert (tx["stopReason"], tx["stopTimestamp"], tx["energyWh"]) == ("EVDisconnected", stop_ts, 500)
        assert await connectors(http, "TC0051") == {"1": "Available"}


async def test_TC_007_regular_start_charging_session_cached_id(gateway):
    """The id tag is in the charger's cache: no Authorize, straight to StartTransaction."""
    async with octt(gateway, "TC007") as cp, gateway.http() as http:
        await add_tag(http, "TAG007")
        await cp.result("StatusNotification", status(1, "Preparing"))
        started_tx = await start_transaction(cp, "TAG007", 1)
        assert started_tx["idTagInfo"]["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Charging"))

        tx = await transaction(http, started_tx["transactionId"])
        assert tx["idTag"] == "TAG007" and tx["idTagStatus"] == "Accepted" and tx["stoppedAt"] is None
        assert [a for _, a, _ in cp.received] == []  # the gateway asked the charger nothing


async def test_TC_010_remote_start_charging_session_cable_plugged_in_first(gateway):
    async with octt(gateway, "TC010") as cp, gateway.http() as http:
        await add_tag(http, "TAG010")
        await cp.result("StatusNotification", status(1, "Preparing"))
        started_tx: dict = {}

        async def start(payload: dict) -> None:  # AuthorizeRemoteTxRequests = true
            assert (await cp.result("Authorize", {"idTag": payload["idTag"]}))["idTagInfo"]["status"] == "Accepted"
            started_tx.update(await start_transaction(cp, payload["idTag"], payload["connectorId"]))
            await cp.result("StatusNotification", status(1, "Charging"))

        cp.after["RemoteStartTransaction"] = start
        body = await get_ok(http, "/api/ocpp/remoteStart/TC010", idTag="TAG010", connectorId=1,
                            waitForTransactionSeconds=3)
        assert cp.received[0][1:] == ["RemoteStartTransaction", {"idTag": "TAG010", "connectorId": 1}]
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert body["transactionId"] == started_tx["transactionId"]
        assert started_tx["idTagInfo"]["status"] == "Accepted"
        tx = await transaction(http, body["transactionId"])
        assert tx["remoteStartRequestId"] == body["requestId"] and tx["connectorId"] == 1
        await until(lambda: _connector_is(http, "TC010", "1", "Charging"))


async def _connector_is(http, cp_id: str, connector: str, state: str) -> bool:
    return (await connectors(http, cp_id)).get(connector) == state


async def test_TC_011_1_remote_start_charging_session_remote_start_first(gateway):
    async with simulated(gateway, "TC0111") as sim, gateway.http() as http:
        await add_tag(http, "TAG0111")
        body = await get_ok(http, "/api/ocpp/remoteStart/TC0111", idTag="TAG0111", connectorId=1,
                            waitForTransactionSeconds=3)
        assert body["status"] == "Accepted"
        tx_id = body["transactionId"]
        assert isinstance(tx_id, int) and tx_id > 0
        await until(lambda: sim.connectors[1].status == "Charging")
        assert sim.connectors[1].transaction_id == tx_id
        tx = await transaction(http, tx_id)
        assert (tx["idTag"], tx["idTagStatus"], tx["remoteStartRequestId"]) == ("TAG0111", "Accepted",
                                                                                body["requestId"])
        await until(lambda: _connector_is(http, "TC0111", "1", "Charging"))


async def test_TC_011_2_remote_start_charging_session_time_out(gateway):
    """Accepted, but the cable never comes: Preparing, Available, and no StartTransaction ever."""
    async with octt(gateway, "TC0112") as cp, gateway.http() as http:
        async def time_out(payload: dict) -> None:
            await cp.result("StatusNotification", status(1, "Preparing"))
            await trio.sleep(0.2)
            await cp.result("StatusNotification", status(1, "Available"))

        cp.after["RemoteStartTransaction"] = time_out
        r = await http.get("/api/ocpp/remoteStart/TC0112", params={"idTag": "TAG0112", "connectorId": "1",
                                                                  "waitForTransactionSeconds": "0.6"})
        assert r.status_code == 504, r.text
        body = r.json()
        assert body["error"] == "timeout" and body["status"] == "Accepted" and body["transactionId"] is None
        assert await transactions(http, "TC0112") == []
        assert await connectors(http, "TC0112") == {"1": "Available"}


async def test_TC_012_remote_stop_charging_session(gateway):
    async with simulated(gateway, "TC012") as sim, gateway.http() as http:
        tx_id = await sim.start_session(1, "TAG012")
        assert tx_id > 0
        body = await get_ok(http, "/api/ocpp/remoteStop/TC012", transactionId=tx_id)
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.received("RemoteStopTransaction") == [{"transactionId": tx_id}]
        await until(lambda: stopped(http, tx_id))
        tx = await transaction(http, tx_id)
        assert tx["stopReason"] == "Remote" and tx["energyWh"] == tx["meterStop"] - tx["meterStart"]
        await until(lambda: _connector_is(http, "TC012", "1", "Available"))

        def statuses() -> list[str]:
            return [p["status"] for a, p, answer in sim.sent
                    if a == "StatusNotification" and p["connectorId"] == 1 and answer == {}]

        await until(lambda: statuses()[-1:] == ["Available"])
        assert statuses()[-3:] == ["Charging", "Finishing", "Available"]


async def _reset(gateway, cp_id: str, kind: str) -> None:
    async with simulated(gateway, cp_id) as sim, gateway.http() as http:
        booted_before = (await charger_status(http, cp_id))["bootedAt"]
        boots = sim.stats.boots
        body = await get_ok(http, f"/api/ocpp/reset/{cp_id}", type=kind)
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.received("Reset") == [{"type": kind}]
        await online_again(sim, boots)
        assert [a["status"] for a in sim.answers("BootNotification")] == ["Accepted", "Accepted"]
        await until(lambda: _booted_again(http, cp_id, booted_before))
        view = await charger_status(http, cp_id)
        assert view["online"] is True and view["connectors"] == {"1": "Available"}


async def _booted_again(http, cp_id: str, before: str) -> bool:
    return (await charger_status(http, cp_id))["bootedAt"] > before


async def test_TC_013_hard_reset_without_transaction(gateway):
    await _reset(gateway, "TC013", "Hard")


async def test_TC_014_soft_reset_without_transaction(gateway):
    await _reset(gateway, "TC014", "Soft")


async def test_TC_017_1_unlock_connector_no_charging_session_not_fixed_cable(gateway):
    async with octt(gateway, "TC0171") as cp, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/unlock/TC0171", connectorId=1)
        assert body["status"] == "Unlocked" and body["result"] == {"status": "Unlocked"}
        assert cp.received[0][1:] == ["UnlockConnector", {"connectorId": 1}]


async def test_TC_017_2_unlock_connector_no_charging_session_fixed_cable(gateway):
    async with octt(gateway, "TC0172") as cp, gateway.http() as http:
        cp.answers["UnlockConnector"] = {"status": "NotSupported"}
        body = await get_ok(http, "/api/ocpp/unlock/TC0172", connectorId=1)
        assert body["status"] == "NotSupported" and body["result"] == {"status": "NotSupported"}


async def test_TC_018_1_unlock_connector_with_charging_session(gateway):
    async with simulated(gateway, "TC0181") as sim, gateway.http() as http:
        tx_id = await sim.start_session(1, "TAG0181")
        body = await get_ok(http, "/api/ocpp/unlock/TC0181", connectorId=1)
        assert body["status"] == "Unlocked"
        await until(lambda: stopped(http, tx_id))
        assert (await transaction(http, tx_id))["stopReason"] == "UnlockCommand"
        await until(lambda: _connector_is(http, "TC0181", "1", "Available"))


async def test_TC_019_1_retrieve_all_configuration_keys(gateway):
    async with simulated(gateway, "TC0191") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/getConfiguration/TC0191")
        keys = {k["key"]: k for k in body["result"]["configurationKey"]}
        assert set(keys) == set(sim.configuration)
        assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
        assert "unknownKey" not in body["result"]
        assert sim.received("GetConfiguration") == [{}]
        stored = {k["key"]: k for k in await get_ok(http, "/api/chargers/TC0191/configuration")}
        assert {k: (v["value"], v["readonly"]) for k, v in stored.items()} == \
            {k: (v["value"], v["readonly"]) for k, v in keys.items()}


async def test_TC_019_2_retrieve_specific_configuration_key(gateway):
    async with simulated(gateway, "TC0192") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/getConfiguration/TC0192", key="SupportedFeatureProfiles")
        assert sim.received("GetConfiguration") == [{"key": ["SupportedFeatureProfiles"]}]
        assert body["result"]["configurationKey"] == [
            {"key": "SupportedFeatureProfiles", "readonly": True,
             "value": sim.configuration["SupportedFeatureProfiles"][0]}]
        stored = await get_ok(http, "/api/chargers/TC0192/configuration")
        assert [(k["key"], k["value"]) for k in stored] == [
            ("SupportedFeatureProfiles", sim.configuration["SupportedFeatureProfiles"][0])]


async def test_TC_021_change_set_configuration(gateway):
    async with simulated(gateway, "TC021") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/changeConfiguration/TC021", key="MeterValueSampleInterval", value="60")
        assert body["status"] == "Accepted"
        assert sim.received("ChangeConfiguration") == [{"key": "MeterValueSampleInterval", "value": "60"}]
        assert sim.configuration["MeterValueSampleInterval"][0] == "60"
        stored = {k["key"]: k["value"] for k in await get_ok(http, "/api/chargers/TC021/configuration")}
        assert stored["MeterValueSampleInterval"] == "60"
        again = await get_ok(http, "/api/ocpp/getConfiguration/TC021", key="MeterValueSampleInterval")
        assert again["result"]["configurationKey"][0]["value"] == "60"


async def test_TC_023_1_start_charging_session_authorize_invalid(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_id_tags="reject")) as gw:
        async with octt(gw, "TC0231") as cp, gw.http() as http:
            await add_tag(http, "LISTED-INVALID", status="Invalid")
            await cp.result("StatusNotification", status(1, "Preparing"))
            for tag in ("NEVER-SEEN-0231", "LISTED-INVALID"):
                answer = await cp.result("Authorize", {"idTag": tag})
                assert answer["idTagInfo"]["status"] == "Invalid", (tag, answer)
            await cp.result("StatusNotification", status(1, "Available"))
            assert await transactions(http, "TC0231") == []


async def test_TC_023_2_start_charging_session_authorize_expired(gateway):
    async with octt(gateway, "TC0232") as cp, gateway.http() as http:
        expiry = ago(hours=1)
        tag = await add_tag(http, "TAG0232", expiryDate=expiry)
        assert tag["effectiveStatus"] == "Expired"
        answer = await cp.result("Authorize", {"idTag": "TAG0232"})
        assert answer["idTagInfo"]["status"] == "Expired"
        assert answer["idTagInfo"]["expiryDate"] == expiry
        assert await transactions(http, "TC0232") == []


async def test_TC_023_3_start_charging_session_authorize_blocked(gateway):
    async with octt(gateway, "TC0233") as cp, gateway.http() as http:
        await add_tag(http, "TAG0233")
        r = await http.post("/api/id-tags/TAG0233/block")
        assert r.status_code == 200 and r.json()["status"] == "Blocked"
        answer = await cp.result("Authorize", {"idTag": "TAG0233"})
        assert answer["idTagInfo"]["status"] == "Blocked"
        assert await transactions(http, "TC0233") == []


async def test_TC_024_start_charging_session_lock_failure(gateway):
    async with octt(gateway, "TC024") as cp, gateway.http() as http:
        await add_tag(http, "TAG024")
        await cp.result("StatusNotification", status(1, "Preparing"))
        assert (await cp.result("Authorize", {"idTag": "TAG024"}))["idTagInfo"]["status"] == "Accepted"
        faulted = status(1, "Faulted", "ConnectorLockFailure", info="lock jammed", timestamp="2026-02-03T04:05:06Z")
        assert await cp.result("StatusNotification", faulted) == {}
        view = await charger_status(http, "TC024")
        assert view["connectors"] == {"1": "Faulted"}
        detail = next(c for c in view["connectorDetails"] if c["connectorId"] == 1)
        assert (detail["errorCode"], detail["info"], detail["timestamp"]) == \
            ("ConnectorLockFailure", "lock jammed", "2026-02-03T04:05:06Z")
        assert await transactions(http, "TC024") == []


async def test_TC_026_remote_start_charging_session_rejected(gateway):
    async with octt(gateway, "TC026") as cp, gateway.http() as http:
        cp.answers["RemoteStartTransaction"] = {"status": "Rejected"}
        with trio.fail_after(2):  # a rejection is answered at once, not after the wait for a transaction
            body = await get_ok(http, "/api/ocpp/remoteStart/TC026", idTag="TAG026", connectorId=1,
                                waitForTransactionSeconds=5)
        assert body["status"] == "Rejected" and body["result"] == {"status": "Rejected"}
        assert "transactionId" not in body
        # Without waiting for a transaction, the same.
        body = await get_ok(http, "/api/ocpp/remoteStart/TC026", idTag="TAG026", connectorId=1)
        assert body["status"] == "Rejected"
        assert await transactions(http, "TC026") == []


async def test_TC_028_remote_stop_transaction_rejected(gateway):
    async with octt(gateway, "TC028") as cp, gateway.http() as http:
        cp.answers["RemoteStopTransaction"] = {"status": "Rejected"}
        tx_id = (await start_transaction(cp, "TAG028", 1))["transactionId"]
        await cp.result("StatusNotification", status(1, "Charging"))
        body = await get_ok(http, "/api/ocpp/remoteStop/TC028", transactionId=tx_id)
        assert body["status"] == "Rejected" and body["result"] == {"status": "Rejected"}
        assert cp.received[0][1:] == ["RemoteStopTransaction", {"transactionId": tx_id}]
        assert (await transaction(http, tx_id))["stoppedAt"] is None


async def test_TC_030_unlock_connector_unlock_failure(gateway):
    async with octt(gateway, "TC030") as cp, gateway.http() as http:
        cp.answers["UnlockConnector"] = {"status": "UnlockFailed"}
        body = await get_ok(http, "/api/ocpp/unlock/TC030", connectorId=1)
        assert body["status"] == "UnlockFailed" and body["result"] == {"status": "UnlockFailed"}
        # A charger that fails with a CALLERROR, or not at all: each reaches the operator as what it is.
        cp.answers["UnlockConnector"] = CallErrorAnswer("InternalError", "motor stuck", {"code": 7})
        r = await http.get("/api/ocpp/unlock/TC030", params={"connectorId": "1"})
        assert r.status_code == 502, r.text
        body = r.json()
        assert (body["error"], body["errorCode"], body["errorDescription"], body["errorDetails"]) == \
            ("call_error", "InternalError", "motor stuck", {"code": 7})
        cp.answers["UnlockConnector"] = SILENCE
        r = await http.get("/api/ocpp/unlock/TC030", params={"connectorId": "1", "timeoutSeconds": "0.3"})
        assert r.status_code == 504 and r.json()["error"] == "timeout", r.text


async def test_TC_031_unlock_connector_unknown_connector(gateway):
    async with simulated(gateway, "TC031", connectors=1) as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/unlock/TC031", connectorId=2)
        assert sim.received("UnlockConnector") == [{"connectorId": 2}]
        assert body["status"] == "NotSupported"


async def test_TC_032_1_power_failure_boot_charging_point_stop_transaction(gateway):
    """A StopTransaction (PowerLoss) for a transaction begun before the reboot is accepted and recorded."""
    async with gateway.http() as http:
        await add_tag(http, "TAG0321")
        async with octt(gateway, "TC0321") as cp:
            tx_id = (await start_transaction(cp, "TAG0321", 1, meter_start=100, timestamp=ago(minutes=30)))[
                "transactionId"]
            await cp.result("StatusNotification", status(1, "Charging"))
        # Power failure: the connection is gone, no StopTransaction. The charger boots again.
        async with octt(gateway, "TC0321") as cp:
            for connector in (0, 1):
                await cp.result("StatusNotification", status(connector, "Available"))
            stop_ts = ago(minutes=2)
            answer = await cp.result("StopTransaction", {"transactionId": tx_id, "idTag": "TAG0321",
                                                         "meterStop": 900, "timestamp": stop_ts,
                                                         "reason": "PowerLoss"})
            assert answer["idTagInfo"]["status"] == "Accepted"
            # A transaction the gateway never saw start (begun before a restart of its own): recorded too.
            unknown_ts = ago(minutes=1)
            answer = await cp.result("StopTransaction", {"transactionId": 870_321, "meterStop": 50,
                                                         "timestamp": unknown_ts, "reason": "PowerLoss"})
            assert answer == {}  # no idTag given, so no idTagInfo
            # And a repeat of the first stop: accepted, the first one kept.
            await cp.result("StopTransaction", {"transactionId": tx_id, "meterStop": 999, "timestamp": now(),
                                                "reason": "PowerLoss"})
        tx = await transaction(http, tx_id)
        assert (tx["stopReason"], tx["stopTimestamp"], tx["meterStop"], tx["energyWh"]) == \
            ("PowerLoss", stop_ts, 900, 800)
        ghost = await transaction(http, 870_321)
        assert (ghost["chargePointId"], ghost["stopReason"], ghost["stopTimestamp"]) == \
            ("TC0321", "PowerLoss", unknown_ts)


async def test_TC_037_1_offline_start_transaction_valid_idtag(gateway):
    """The simulator goes offline, starts a session with a valid tag, and sends it once back online."""
    async with simulated(gateway, "TC0371") as sim, gateway.http() as http:
        await add_tag(http, "TAG0371")
        sim.go_offline()
        await until(lambda: sim.link is None)
        temp_id = await sim.start_session(1, "TAG0371")
        assert temp_id is not None and temp_id < 0  # offline: no id from the central system yet
        boots = sim.stats.boots
        sim.go_online()
        await online_again(sim, boots)
        await until(lambda: sim.connectors[1].transaction_id not in (None, temp_id))
        tx_id = sim.connectors[1].transaction_id
        assert tx_id > 0
        start = [(p, a) for action, p, a in sim.sent if action == "StartTransaction"]
        assert len(start) == 1 and start[0][1]["idTagInfo"]["status"] == "Accepted"
        tx = await transaction(http, tx_id)
        assert tx["startTimestamp"] == start[0][0]["timestamp"]  # as the charger gave it
        assert tx["startTimestamp"] < tx["startedAt"]  # from before it reached the gateway
        assert tx["idTagStatus"] == "Accepted" and tx["stoppedAt"] is None
        await until(lambda: _connector_is(http, "TC0371", "1", "Charging"))


async def test_TC_037_3_offline_start_transaction_invalid_idtag(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_id_tags="reject")) as gw:
        async with gw.http() as http:
            async with octt(gw, "TC0373") as cp:
                await cp.result("StatusNotification", status(1, "Available"))
            # Offline, the charger starts a transaction for a tag it cannot check; back online it sends it.
            async with octt(gw, "TC0373") as cp:
                await cp.result("StatusNotification", status(1, "Charging"))
                start_ts = ago(hours=1)
                started_tx = await start_transaction(cp, "UNKNOWN-0373", 1, meter_start=0, timestamp=start_ts)
                assert started_tx["idTagInfo"]["status"] == "Invalid"
                tx_id = started_tx["transactionId"]
                other = await start_transaction(cp, "UNKNOWN-0373B", 2, meter_start=0, timestamp=start_ts)
                assert other["transactionId"] != tx_id  # unique, also for an invalid tag
                # StopTransactionOnInvalidId = true: it stops the transaction.
                stop_ts = ago(minutes=59)
                await cp.result("StatusNotification", status(1, "Finishing"))
                answer = await cp.result("StopTransaction", {"transactionId": tx_id, "idTag": "UNKNOWN-0373",
                                                             "meterStop": 20, "timestamp": stop_ts,
                                                             "reason": "DeAuthorized"})
                assert answer["idTagInfo"]["status"] == "Invalid"
                await cp.result("StatusNotification", status(1, "Available"))
            tx = await transaction(http, tx_id)
            assert (tx["idTag"], tx["idTagStatus"], tx["startTimestamp"]) == ("UNKNOWN-0373", "Invalid", start_ts)
            assert (tx["stopReason"], tx["stopTimestamp"], tx["energyWh"]) == ("DeAuthorized", stop_ts, 20)


async def test_TC_039_offline_transaction(gateway):
    """A whole transaction held while offline, sent hours later with its own timestamps."""
    async with gateway.http() as http:
        await add_tag(http, "TAG039")
        async with octt(gateway, "TC039") as cp:
            await cp.result("StatusNotification", status(1, "Available"))
        async with octt(gateway, "TC039") as cp:  # back online after hours
            await cp.result("StatusNotification", status(1, "Available"))
            start_ts, sample_ts, stop_ts = ago(hours=3), ago(hours=2, minutes=30), ago(hours=2)
            started_tx = await start_transaction(cp, "TAG039", 1, meter_start=5000, timestamp=start_ts)
            assert started_tx["idTagInfo"]["status"] == "Accepted"
            tx_id = started_tx["transactionId"]
            await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
                {"timestamp": sample_ts, "sampledValue": [{"value": "7000", "unit": "Wh"}]}]})
            answer = await cp.result("StopTransaction", {
                "transactionId": tx_id, "idTag": "TAG039", "meterStop": 9000, "timestamp": stop_ts,
                "reason": "Local", "transactionData": [
                    {"timestamp": start_ts, "sampledValue": [{"value": "5000", "context": "Transaction.Begin"}]},
                    {"timestamp": stop_ts, "sampledValue": [{"value": "9000", "context": "Transaction.End"}]}]})
            assert answer["idTagInfo"]["status"] == "Accepted"
        tx = await transaction(http, tx_id)
        assert (tx["startTimestamp"], tx["stopTimestamp"], tx["energyWh"]) == (start_ts, stop_ts, 4000)
        assert [(s["timestamp"], s["value"]) for s in tx["meterValues"]] == [
            (sample_ts, "7000"), (start_ts, "5000"), (stop_ts, "9000")]


async def test_TC_040_1_configuration_keys_not_supported(gateway):
    async with simulated(gateway, "TC0401") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/changeConfiguration/TC0401", key="NoSuchKey0401", value="1")
        assert body["status"] == "NotSupported"
        assert "NoSuchKey0401" not in sim.configuration
        stored = {k["key"] for k in await get_ok(http, "/api/chargers/TC0401/configuration")}
        assert "NoSuchKey0401" not in stored


async def test_TC_040_2_configuration_keys_invalid_value(gateway):
    async with simulated(gateway, "TC0402") as sim, gateway.http() as http:
        await get_ok(http, "/api/ocpp/getConfiguration/TC0402", key="MeterValueSampleInterval")
        body = await get_ok(http, "/api/ocpp/changeConfiguration/TC0402", key="MeterValueSampleInterval",
                            value="-1")
        assert body["status"] == "Rejected"
        assert sim.configuration["MeterValueSampleInterval"][0] != "-1"
        stored = {k["key"]: k["value"] for k in await get_ok(http, "/api/chargers/TC0402/configuration")}
        assert stored["MeterValueSampleInterval"] == sim.configuration["MeterValueSampleInterval"][0]


async def test_TC_061_clear_authorization_data_in_authorization_cache(gateway):
    async with simulated(gateway, "TC061") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/clearCache/TC061")
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.received("ClearCache") == [{}]


async def test_TC_064_data_transfer_to_a_central_system(gateway):
    async with octt(gateway, "TC064") as cp, gateway.http() as http:
        payload = {"vendorId": "com.example.unknown", "messageId": "Hello", "data": "{\"a\": 1}"}
        answer = await cp.result("DataTransfer", payload)
        assert answer["status"] in ("Rejected", "UnknownVendorId", "UnknownMessageId")
        stored = await notifications(http, "TC064", "DataTransfer")
        assert [(n["status"], n["payload"]) for n in stored] == [(answer["status"], payload)]
