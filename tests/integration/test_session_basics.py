from __future__ import annotations

from tests.helpers import BOOT, charger, status


async def test_boot_heartbeat_status_are_answered_and_stored(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp:
        boot = await cp.result("BootNotification", {**BOOT, "chargePointSerialNumber": "SN1"})
        assert boot["status"] == "Accepted"
        assert boot["interval"] == 60
        await cp.result("Heartbeat", {})
        await cp.result("StatusNotification", status(0, "Available"))
        await cp.result("StatusNotification", status(1, "Preparing", info="plugged"))
    stored = await gateway.store.chargers.get("CP1")
    assert stored["vendor"] == "TestVendor" and stored["serial_number"] == "SN1"
    assert {c["connector_id"]: c["status"] for c in stored["connectors"]} == {0: "Available", 1: "Preparing"}


async def test_frame_log_is_written_in_batches_not_per_frame(nursery, tmp_path):
    from tests.conftest import make_config, started

    config = make_config(tmp_path)
    config.frames.flush_interval = 1.0
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP-B") as cp:
            for _ in range(200):
                await cp.result("Heartbeat", {})
        logged = await gw.store.frames.query("CP-B")
        assert sum(1 for r in logged if r["direction"] in ("in", "out")) == 400
        assert gw.store.frames.flushes < 40  # 400 frames, a handful of writes
