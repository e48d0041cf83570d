"""One charger answered with scripted handlers while the others get the normal answers, on one gateway."""

from __future__ import annotations

from typing import Any

from gateway.chargepoint.context import HandlerContext
from gateway.chargepoint.handlers import HANDLERS
from tests.helpers import charger

BOOT = {"chargePointVendor": "Vendor", "chargePointModel": "Model"}


async def boot_pending(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    """The normal boot (stored, answered), but Pending: what a test of a charger's pending state needs."""
    return {**await HANDLERS["BootNotification"](ctx, p), "status": "Pending"}


async def authorize_invalid(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": {"status": "Invalid"}}


async def test_one_charger_gets_scripted_answers_while_another_gets_the_normal_ones(gateway):
    chargers = gateway.running.chargers
    chargers.handler_overrides["CP-SCRIPTED"] = {"BootNotification": boot_pending, "Authorize": authorize_invalid}
    async with charger(gateway.ocpp_port, "CP-SCRIPTED") as scripted, charger(gateway.ocpp_port, "CP-PLAIN") as plain:
        assert (await scripted.result("BootNotification", BOOT))["status"] == "Pending"
        assert (await plain.result("BootNotification", BOOT))["status"] == "Accepted"  # unknown_chargers = accept
        assert await scripted.result("Authorize", {"idTag": "T"}) == {"idTagInfo": {"status": "Invalid"}}
        assert await plain.result("Authorize", {"idTag": "T"}) == {"idTagInfo": {"status": "Accepted"}}
        assert set(await scripted.result("Heartbeat", {})) == {"currentTime"}  # not scripted: the default handler
    # The scripted boot went through the normal handler: the device is stored like the other one.
    assert (await gateway.store.chargers.get("CP-SCRIPTED"))["vendor"] == "Vendor"
