"""Every charger-initiated action is answered schema-valid and what it says is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway import clock
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger

NOW = "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, "Accepted"),  # unknown tag, default policy accept
        ({"status": "Accepted"}, "Accepted"),
        ({"status": "Blocked"}, "Blocked"),
        ({"status": "Invalid"}, "Invalid"),
        ({"status": "ConcurrentTx"}, "ConcurrentTx"),
        ({"status": "Accepted", "expiry_date": "2001-01-01T00:00:00Z"}, "Expired"),
    ],
)
async def test_authorize_and_start_answer_from_the_id_tag_table(gateway, stored, expected):
    if stored:
        await gateway.store.id_tags.put("TAG", stored["status"], stored.get("expiry_date"), at=clock.iso())
    async with charger(gateway.ocpp_port) as cp:
        auth = await cp.result("Authorize", {"idTag": "TAG"})
        assert auth["idTagInfo"]["status"] == expected
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                     "timestamp": NOW})
        # A transaction id is handed out even for a refused tag: the charger needs one to stop.
        assert start["transactionId"] > 0 and start["idTagInfo"]["status"] == expected
    tx = await gateway.store.transactions.get(start["transactionId"])
    assert tx["id_tag_status"] == expected


async def test_parent_tag_and_future_expiry_are_reported(gateway):
    expiry = clock.iso(clock.now() + timedelta(days=30))
    await gateway.store.id_tags.put("CHILD", "Accepted", expiry, "PARENT", at=clock.iso())
    async with charger(gateway.ocpp_port) as cp:
        info = (await cp.result("Authorize", {"idTag": "CHILD"}))["idTagInfo"]
    assert info == {"status": "Accepted", "expiryDate": expiry, "parentIdTag": "PARENT"}


async def test_unknown_tags_are_invalid_when_the_policy_says_reject(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_id_tags="reject")) as gw:
        async with charger(gw.ocpp_port) as cp:
            assert (await cp.result("Authorize", {"idTag": "WHO"}))["idTagInfo"]["status"] == "Invalid"


@pytest.mark.parametrize(("policy", "status"), [("accept", "Accepted"), ("pending", "Pending"), ("reject", "Rejected")])
async def test_boot_answer_follows_the_registration_policy(nursery, tmp_path, policy, status):
    config = make_config(tmp_path, unknown_chargers=policy, heartbeat_interval=300)
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "NEW") as cp:
            boot = await cp.result("BootNotification", BOOT)
            assert boot["status"] == status and boot["interval"] == 300
            assert clock.parse(boot["currentTime"]) is not None
        assert (await gw.store.chargers.get("NEW"))["registration_status"] == status


async def test_data_transfer_from_unknown_vendor(gateway):
    async with charger(gateway.ocpp_port, "CP-DT") as cp:
        answer = await cp.result("DataTransfer", {"vendorId": "com.example", "messageId": "m", "data": "{}"})
    assert answer == {"status": "UnknownVendorId"}
    kept = await gateway.store.notifications.list("CP-DT", "DataTransfer")
    assert kept[0]["payload"]["vendorId"] == "com.example"


@pytest.mark.parametrize(
    ("action", "payload", "status"),
    [
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}, "Uploaded"),
        ("FirmwareStatusNotification", {"status": "Installed"}, "Installed"),
        ("LogStatusNotification", {"status": "Uploading", "requestId": 7}, "Uploading"),
        ("SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 8}, "InvalidSignature"),
        ("SecurityEventNotification", {"type": "InvalidCentralSystemCertificate", "timestamp": NOW,
                                       "techInfo": "expired"}, "InvalidCentralSystemCertificate"),
    ],
)
async def test_status_reports_are_answered_and_kept(gateway, action, payload, status):
    async with charger(gateway.ocpp_port, "CP-N") as cp:
        assert await cp.result(action, payload) == {}
    kept = (await gateway.store.notifications.list("CP-N", action))[0]
    assert kept["status"] == status and kept["payload"] == payload
    assert kept["request_id"] == payload.get("requestId")


async def test_sign_certificate_is_rejected_without_a_ca(gateway):
    async with charger(gateway.ocpp_port, "CP-C") as cp:
        answer = await cp.result("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"})
    assert answer == {"status": "Rejected"}
    assert (await gateway.store.notifications.list("CP-C", "SignCertificate"))[0]["status"] == "Rejected"


async def test_meter_values_outside_a_transaction_and_with_all_fields(gateway):
    sample = {"value": "230.1", "context": "Sample.Clock", "format": "Raw", "measurand": "Voltage",
              "phase": "L1-N", "location": "Inlet", "unit": "V"}
    async with charger(gateway.ocpp_port, "CP-M") as cp:
        await cp.result("MeterValues", {"connectorId": 0, "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]})
    await gateway.store.appender.sync()  # meter values are committed after the answer, by the writer process
    rows = await gateway.store.db.run(
        lambda conn: [dict(r) for r in conn.execute("SELECT * FROM meter_values WHERE charge_point_id = 'CP-M'")])
    assert len(rows) == 1
    row = rows[0]
    assert row["transaction_id"] is None and row["connector_id"] == 0 and row["timestamp"] == NOW
    assert {k: row[k] for k in sample} == sample


async def test_a_pending_charger_is_accepted_by_an_operator(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_chargers="pending")) as gw, gw.http() as http:
        async with charger(gw.ocpp_port, "NEW-P") as cp:
            assert (await cp.result("BootNotification", BOOT))["status"] == "Pending"
            assert (await cp.result("BootNotification", BOOT))["status"] == "Pending"  # until someone decides
            r = await http.put("/api/chargers/NEW-P/registration", json={"status": "Accepted"})
            assert r.status_code == 200 and r.json()["registrationStatus"] == "Accepted"
            assert (await cp.result("BootNotification", BOOT))["status"] == "Accepted"
        r = await http.put("/api/chargers/NEW-P/registration", json={"status": "Maybe"})
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        # A charger can be refused before it ever connects.
        await http.put("/api/chargers/BANNED/registration", json={"status": "Rejected"})
        async with charger(gw.ocpp_port, "BANNED") as cp:
            assert (await cp.result("BootNotification", BOOT))["status"] == "Rejected"
