"""OCTT 1.6 central-system test cases, Smart Charging profile (5 cases)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_schema_valid
from tests.waiting import until

from .support import get_ok, now, post_ok, simulated, transaction, tx_profile

pytestmark = pytest.mark.octt("Smart charging")

SIX_AMPS_W = str(int(6 * 230 * 3))  # the simulator's power under a 6 A limit on three phases


async def profiles(http, cp_id: str, active: bool = False) -> list[dict]:
    page = await get_ok(http, f"/api/chargers/{cp_id}/charging-profiles", active=str(active).lower())
    return page["records"]


def _power_samples(sim) -> list[str]:
    return [sv["value"] for action, p, _ in sim.sent if action == "MeterValues"
            for mv in p["meterValue"] for sv in mv["sampledValue"] if sv.get("measurand") == "Power.Active.Import"]


async def test_TC_056_central_smart_charging_txdefaultprofile(gateway):
    async with simulated(gateway, "TC056") as sim, gateway.http() as http:
        profile = tx_profile(56, limit=6.0, purpose="TxDefaultProfile", chargingProfileKind="Absolute")
        profile["chargingSchedule"]["startSchedule"] = now()
        body = await post_ok(http, "/api/ocpp/setChargingProfile/TC056",
                             {"connectorId": 0, "csChargingProfiles": profile})
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.profiles == [(0, profile)]
        [stored] = await profiles(http, "TC056", active=True)
        assert (stored["connectorId"], stored["profileId"], stored["purpose"], stored["status"], stored["profile"]) \
            == (0, 56, "TxDefaultProfile", "Accepted", profile)

        # A transaction now charges under the default profile.
        await sim.start_session(1, "TAG056")
        await until(lambda: len(_power_samples(sim)) >= 1)
        assert _power_samples(sim)[0] == SIX_AMPS_W


async def test_TC_057_central_smart_charging_txprofile(gateway):
    async with simulated(gateway, "TC057") as sim, gateway.http() as http:
        tx_id = await sim.start_session(1, "TAG057")
        profile = tx_profile(57, limit=6.0, transactionId=tx_id)
        body = await post_ok(http, "/api/ocpp/setChargingProfile/TC057",
                             {"connectorId": 1, "csChargingProfiles": profile})
        assert body["status"] == "Accepted"
        assert sim.received("SetChargingProfile") == [{"connectorId": 1, "csChargingProfiles": profile}]
        [stored] = await profiles(http, "TC057", active=True)
        assert (stored["connectorId"], stored["purpose"], stored["profile"]["transactionId"]) == (1, "TxProfile", tx_id)
        before = len(_power_samples(sim))
        await until(lambda: len(_power_samples(sim)) > before)
        assert _power_samples(sim)[-1] == SIX_AMPS_W


async def test_TC_059_remote_start_transaction_with_charging_profile(gateway):
    async with simulated(gateway, "TC059") as sim, gateway.http() as http:
        profile = tx_profile(59, limit=6.0)
        body = await get_ok(http, "/api/ocpp/remoteStart/TC059", idTag="TAG059", connectorId=1,
                            chargingProfile=json.dumps(profile), waitForTransactionSeconds=3)
        assert body["status"] == "Accepted" and body["transactionId"] > 0
        [sent] = sim.received("RemoteStartTransaction")
        assert_schema_valid("RemoteStartTransaction", sent, kind="request")
        assert sent == {"idTag": "TAG059", "connectorId": 1, "chargingProfile": profile}
        assert sim.profiles == [(1, profile)]
        [stored] = await profiles(http, "TC059")
        assert (stored["connectorId"], stored["purpose"], stored["status"], stored["requestId"]) == \
            (1, "TxProfile", "Accepted", body["requestId"])
        assert (await transaction(http, body["transactionId"]))["remoteStartRequestId"] == body["requestId"]
        await until(lambda: len(_power_samples(sim)) >= 1)
        assert _power_samples(sim)[0] == SIX_AMPS_W


async def test_TC_066_get_composite_schedule(gateway):
    async with simulated(gateway, "TC066") as sim, gateway.http() as http:
        profile = tx_profile(66, limit=10.0, purpose="TxDefaultProfile", chargingProfileKind="Absolute")
        profile["chargingSchedule"]["startSchedule"] = now()
        profile["chargingSchedule"]["chargingSchedulePeriod"].append({"startPeriod": 1800, "limit": 8.0})
        await post_ok(http, "/api/ocpp/setChargingProfile/TC066", {"connectorId": 1, "csChargingProfiles": profile})
        body = await get_ok(http, "/api/ocpp/getCompositeSchedule/TC066", connectorId=1, duration=3600,
                            chargingRateUnit="A")
        assert sim.received("GetCompositeSchedule") == [{"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}]
        assert body["status"] == "Accepted"
        result = body["result"]
        assert_schema_valid("GetCompositeSchedule", result)
        assert result["connectorId"] == 1 and result["chargingSchedule"]["chargingRateUnit"] == "A"
        limits = [p["limit"] for p in result["chargingSchedule"]["chargingSchedulePeriod"]]
        assert limits == [10.0, 8.0]


async def test_TC_067_clear_charging_profile(gateway):
    async with simulated(gateway, "TC067") as sim, gateway.http() as http:
        profile = tx_profile(67, limit=12.0, purpose="TxDefaultProfile", chargingProfileKind="Absolute")
        profile["chargingSchedule"]["startSchedule"] = now()
        await post_ok(http, "/api/ocpp/setChargingProfile/TC067", {"connectorId": 1, "csChargingProfiles": profile})
        assert len(await profiles(http, "TC067", active=True)) == 1

        body = await get_ok(http, "/api/ocpp/clearChargingProfile/TC067", id=67)
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.received("ClearChargingProfile") == [{"id": 67}]
        assert sim.profiles == []
        assert await profiles(http, "TC067", active=True) == []
        [stored] = await profiles(http, "TC067")
        assert stored["clearedAt"] is not None

        # Nothing left to clear: the charger answers Unknown, HTTP 200.
        body = await get_ok(http, "/api/ocpp/clearChargingProfile/TC067", id=67)
        assert body["status"] == "Unknown"
