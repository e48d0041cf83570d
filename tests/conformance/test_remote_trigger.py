"""OCTT 1.6 central-system test cases, Remote Trigger profile (2 cases)."""

from __future__ import annotations

import pytest
from tests.waiting import until

from .support import get_ok, notifications, octt, simulated

pytestmark = pytest.mark.octt("Remote trigger")

TRIGGERED = ("MeterValues", "Heartbeat", "StatusNotification", "DiagnosticsStatusNotification",
             "FirmwareStatusNotification", "BootNotification")


async def test_TC_054_trigger_message(gateway):
    async with simulated(gateway, "TC054") as sim, gateway.http() as http:
        for message in TRIGGERED:
            before = len(sim.answers(message))
            body = await get_ok(http, "/api/ocpp/triggerMessage/TC054", requestedMessage=message, connectorId=1)
            assert body["status"] == "Accepted", (message, body)
            assert sim.received("TriggerMessage")[-1] == {"requestedMessage": message, "connectorId": 1}
            # The charger sends the message it was asked for; the gateway answers it (schema-checked).
            await until(lambda: len(sim.answers(message)) > before)
            assert sim.answers(message)[-1] is not None
        assert sim.answers("BootNotification")[-1]["status"] == "Accepted"
        assert [n["status"] for n in await notifications(http, "TC054", "DiagnosticsStatusNotification")] == ["Idle"]
        assert [n["status"] for n in await notifications(http, "TC054", "FirmwareStatusNotification")] == ["Idle"]


async def test_TC_055_trigger_message_rejected(gateway):
    async with octt(gateway, "TC055") as cp, gateway.http() as http:
        cp.answers["TriggerMessage"] = {"status": "Rejected"}
        body = await get_ok(http, "/api/ocpp/triggerMessage/TC055", requestedMessage="MeterValues", connectorId=5)
        assert body["status"] == "Rejected" and body["result"] == {"status": "Rejected"}
        assert cp.received[0][1:] == ["TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 5}]
        # A message the charger cannot send is NotImplemented; it reaches the operator as such.
        cp.answers["TriggerMessage"] = {"status": "NotImplemented"}
        body = await get_ok(http, "/api/ocpp/triggerMessage/TC055", requestedMessage="DiagnosticsStatusNotification")
        assert body["status"] == "NotImplemented"
