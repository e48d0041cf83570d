"""The simulator against the gateway: what it sends is what the gateway keeps."""

from __future__ import annotations

from functools import partial

import trio

from tests.conformance import support
from tests.waiting import until

# A simulated charger for the block; what the gateway answers is checked by the cases here, not by the
# conformance rules (schema-valid, no CALLERROR).
simulated = partial(support.simulated, checked=False)


async def test_remote_start_and_stop_through_the_api(gateway):
    async with simulated(gateway, "SIM1", connectors=2, power_w=360_000) as sim, gateway.http() as http:
        r = await http.get("/api/ocpp/remoteStart/SIM1", params={"idTag": "T1", "connectorId": "2",
                                                               "waitForTransactionSeconds": "5"})
        assert r.status_code == 200, r.text
        tx_id = r.json()["transactionId"]
        await until(lambda: _has_samples(gateway, tx_id, 3))
        available = _available_reports(sim, 2)
        r = await http.get("/api/ocpp/remoteStop/SIM1", params={"transactionId": str(tx_id)})
        assert r.json()["status"] == "Accepted"
        await until(lambda: _stopped(gateway, tx_id))
        # the charger reports the connector free after the stop; once that report is answered, it is stored
        await until(lambda: _available_reports(sim, 2) > available)
        tx = await gateway.store.transactions.get(tx_id)
        assert tx["connector_id"] == 2 and tx["stop_reason"] == "Remote"
        samples = await gateway.store.transactions.samples(tx_id)
        energy = [float(s["value"]) for s in samples if s["measurand"] == "Energy.Active.Import.Register"
                  and s["source"] == "MeterValues"]
        assert energy == sorted(energy) and energy[-1] > 0  # monotonic, and charging happened
        assert tx["meter_stop"] >= energy[-1] and tx["energy_wh"] == tx["meter_stop"] - tx["meter_start"]
        status = (await http.get("/api/ocpp/status/SIM1")).json()
        assert status["connectors"] == {"1": "Available", "2": "Available"}


async def _has_samples(gateway, tx_id: int, count: int) -> bool:
    return len(await gateway.store.transactions.samples(tx_id)) >= count


async def _stopped(gateway, tx_id: int) -> bool:
    return (await gateway.store.transactions.get(tx_id))["stopped_at"] is not None


def _available_reports(sim, connector: int) -> int:
    """StatusNotifications saying `connector` is Available that the gateway has answered."""
    return sum(1 for action, payload, answer in sim.sent if action == "StatusNotification" and answer is not None
               and payload["connectorId"] == connector and payload["status"] == "Available")


async def test_offline_transactions_are_sent_on_reconnect_with_their_old_timestamps(gateway):
    async with simulated(gateway, "SIM-OFF") as sim:
        sim.go_offline()
        await until(lambda: not sim.online.is_set())  # the connection is dropped
        assert await sim.start_session(1, "OFFTAG", duration=0.35) < 0
        await until(lambda: sim.connectors[1].transaction_id is None)  # the session ended while offline
        sim.go_online()
        with trio.fail_after(5):
            await sim.online.wait()
        await until(lambda: _closed_count(gateway, "SIM-OFF", 1))
        page = await gateway.store.transactions.list("SIM-OFF")
        tx = page["records"][0]
        assert tx["id"] > 0 and tx["id_tag"] == "OFFTAG"
        assert tx["start_timestamp"] < tx["started_at"]  # kept as the charger gave it, from before the upload


async def _closed_count(gateway, cp_id: str, count: int) -> bool:
    return (await gateway.store.transactions.list(cp_id, "closed"))["total"] >= count


async def test_reset_reboots_and_boots_again(gateway):
    async with simulated(gateway, "SIM-R") as sim, gateway.http() as http:
        boots = sim.stats.boots
        r = await http.get("/api/ocpp/reset/SIM-R", params={"type": "Soft"})
        assert r.json()["status"] == "Accepted"
        await support.online_again(sim, boots)
        assert sim.stats.connects == 2


async def test_fleet_boots_and_charges_and_the_gateway_agrees(gateway):
    from gateway.simulator.fleet import FleetOptions, run_fleet

    options = FleetOptions(f"ws://127.0.0.1:{gateway.ocpp_port}/ocpp", count=5, pattern="FLEET-{n}",
                           connectors=2, meter_interval=0.05, power_w=360_000, session_seconds=0.3,
                           pause_seconds=0.05)
    stop = trio.Event()
    seen = []
    async with trio.open_nursery() as nursery:
        async def run():
            seen.append(await run_fleet(options, stop, on_progress=seen.append, every=0.2))
        nursery.start_soon(run)
        # until every charger is online and has stopped a session, as the progress reports say
        await until(lambda: seen and seen[-1]["online"] == 5 and seen[-1]["transactionsStopped"] >= 5, timeout=15)
        stop.set()
    final = seen[-1]
    assert final["chargers"] == 5 and final["online"] == 5 and final["boots"] == 5
    assert final["transactionsStopped"] >= 5

    # What the gateway recorded agrees with what the simulator sent.
    async with gateway.http() as http:
        connections = {c["chargePointId"] for c in (await http.get("/api/ocpp/connections")).json()}
    assert connections == {f"FLEET-{n}" for n in range(1, 6)}
    closed = 0
    for n in range(1, 6):
        page = await gateway.store.transactions.list(f"FLEET-{n}", "closed", size=500)
        closed += page["total"]
        for tx in page["records"]:
            assert tx["energy_wh"] == tx["meter_stop"] - tx["meter_start"] and tx["energy_wh"] >= 0
    # Stops counted by the simulator are all recorded; a stop still in flight may be recorded too.
    assert final["transactionsStopped"] <= closed <= final["transactionsStarted"]


async def test_firmware_update_reboots_into_the_new_version(gateway):
    async with simulated(gateway, "SIM-FW") as sim, gateway.http() as http:
        r = await http.get("/api/ocpp/updateFirmware/SIM-FW", params={"location": "http://fw.example/1.bin"})
        assert r.status_code == 200
        await support.online_again(sim, 1)
        reports = await gateway.store.notifications.list("SIM-FW", "FirmwareStatusNotification")
        assert [n["status"] for n in reports] == ["Downloading", "Downloaded", "Installing", "Installed"]
        assert (await gateway.store.chargers.get("SIM-FW"))["firmware_version"] == "1.0.0+1"


async def test_reservation_expires_on_the_charger(gateway):
    from gateway import clock
    from datetime import timedelta

    async with simulated(gateway, "SIM-RES") as sim, gateway.http() as http:
        expiry = clock.iso(clock.now() + timedelta(seconds=0.3))
        r = await http.get("/api/ocpp/reserveNow/SIM-RES",
                           params={"connectorId": "1", "idTag": "T", "expiryDate": expiry})
        assert r.json()["status"] == "Accepted"
        await until(lambda: sim.connectors[1].status == "Reserved")
        await until(lambda: sim.connectors[1].status == "Available", timeout=3)
        assert sim.connectors[1].reserved is None
