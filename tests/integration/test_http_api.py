"""GET /health, /api/ocpp/connections and /api/ocpp/status/{cpId} with the shapes of docs/api.md section 1."""

from __future__ import annotations



from tests.helpers import ISO, charger, status
from tests.waiting import until

CAPTURED_BOOT = {"chargePointVendor": "XQ", "chargePointModel": "ocpp_ac_7kw",
                 "chargePointSerialNumber": "ks0117100000008", "firmwareVersion": "250722", "iccid": "",
                 "imsi": "", "customData": {"moduleVersion": "FC4X.250723", "networkType": "1"}}


async def test_health(gateway):
    async with gateway.http() as http:
        r = await http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_connections_lists_online_chargers_first_with_their_last_status(gateway):
    async with charger(gateway.ocpp_port, "B-offline") as cp:
        await cp.result("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        await cp.result("StatusNotification", status(1, "Faulted", errorCode="GroundFailure"))
    async with charger(gateway.ocpp_port, "A-online") as cp:
        await cp.result("BootNotification", CAPTURED_BOOT)
        await cp.result("StatusNotification", status(0, "Available"))
        await cp.result("StatusNotification", status(1, "Charging"))
        start = await cp.result("StartTransaction", {
            "connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
        await cp.result("Heartbeat", {})
        await gateway.store.frames.flush()
        async with gateway.http() as http:
            r = await http.get("/api/ocpp/connections")
        assert r.status_code == 200
        body = r.json()
        assert [c["chargePointId"] for c in body] == ["A-online", "B-offline"]
        online, offline = body
        assert online["online"] is True and offline["online"] is False
        assert online["status"] == "Available"  # connector 0 speaks for the charger
        assert online["connectors"] == {"1": "Charging"}
        assert online["currentTransactionId"] == start["transactionId"]
        assert (online["vendor"], online["model"], online["firmwareVersion"]) == ("XQ", "ocpp_ac_7kw", "250722")
        assert ISO.match(online["lastSeen"])
        assert offline["status"] == "Faulted" and offline["currentTransactionId"] is None


async def test_status_shows_device_info_with_custom_data(gateway):
    async with charger(gateway.ocpp_port, "XQ-1") as cp:
        await cp.result("BootNotification", CAPTURED_BOOT)
        await cp.result("StatusNotification", status(1, "Preparing", vendorErrorCode="E0"))
        async with gateway.http() as http:
            r = await http.get("/api/ocpp/status/XQ-1")
    assert r.status_code == 200
    body = r.json()
    assert body["chargePointId"] == "XQ-1" and body["online"] is True
    assert body["device"] == {
        "vendor": "XQ", "model": "ocpp_ac_7kw", "serialNumber": "ks0117100000008",
        "chargeBoxSerialNumber": None, "firmwareVersion": "250722", "iccid": "", "imsi": "",
        "meterType": None, "meterSerialNumber": None,
        "customData": {"moduleVersion": "FC4X.250723", "networkType": "1"},
    }
    assert ISO.match(body["bootedAt"]) and body["registrationStatus"] == "Accepted"
    assert body["connectors"] == {"1": "Preparing"}
    assert body["connectorDetails"][0]["vendorErrorCode"] == "E0"
    # customData is outside the 1.6 schema: lenient mode kept it and says so.
    assert [v["code"] for v in body["violations"]] == ["FormationViolation"]


async def test_status_of_unknown_charger_is_404_with_the_error_envelope(gateway):
    async with gateway.http() as http:
        r = await http.get("/api/ocpp/status/nobody")
        assert r.status_code == 404
        body = r.json()
        assert body["error"] == "not_found" and "nobody" in body["message"]
        assert body["path"] == "/api/ocpp/status/nobody" and ISO.match(body["timestamp"])
        r = await http.get("/api/nothing/here")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await http.post("/api/ocpp/connections")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_status_reflects_disconnect(gateway):
    async with charger(gateway.ocpp_port, "CP-X") as cp:
        await cp.result("Heartbeat", {})
    await until(lambda: "CP-X" not in gateway.registry)
    async with gateway.http() as http:
        body = (await http.get("/api/ocpp/status/CP-X")).json()
    assert body["online"] is False and body["disconnectReason"].startswith("closed by the charger")
