"""Power loss: the gateway restarts mid-transaction; the charger's late StopTransaction still lands."""

from __future__ import annotations

from tests.conftest import started
from tests.helpers import BOOT, charger


async def test_stop_after_gateway_restart_closes_transaction_with_energy(nursery, config):
    async with started(nursery, config) as first:
        async with charger(first.ocpp_port, "CP-R") as cp:
            await cp.result("BootNotification", BOOT)
            start = await cp.result("StartTransaction", {
                "connectorId": 1, "idTag": "TAG1", "meterStart": 1200, "timestamp": "2026-01-01T10:00:00Z"})
            transaction_id = start["transactionId"]
            await cp.result("MeterValues", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
                {"timestamp": "2026-01-01T10:30:00Z", "sampledValue": [{"value": "4200"}]}]})
        # No StopTransaction: the gateway goes away with the transaction open.

    async with started(nursery, config) as second:
        status = await second.store.chargers.get("CP-R")
        assert status["online"] == 0  # nothing is connected right after a start
        async with charger(second.ocpp_port, "CP-R") as cp:
            await cp.result("BootNotification", BOOT)
            stop = await cp.result("StopTransaction", {
                "transactionId": transaction_id, "meterStop": 5200, "timestamp": "2026-01-01T11:00:00Z",
                "reason": "PowerLoss", "idTag": "TAG1",
                "transactionData": [{"timestamp": "2026-01-01T11:00:00Z", "sampledValue": [
                    {"value": "5200", "context": "Transaction.End"}]}]})
            assert stop["idTagInfo"]["status"] == "Accepted"
            # The next transaction gets a new id, never the old one again.
            again = await cp.result("StartTransaction", {
                "connectorId": 1, "idTag": "TAG1", "meterStart": 5200, "timestamp": "2026-01-01T11:05:00Z"})
            assert again["transactionId"] > transaction_id

        tx = await second.store.transactions.get(transaction_id)
        assert tx["stop_reason"] == "PowerLoss"
        assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"]) == (1200, 5200, 4000)
        assert tx["stopped_at"] is not None
        samples = await second.store.transactions.samples(transaction_id)
        assert [(s["value"], s["source"]) for s in samples] == [("4200", "MeterValues"), ("5200", "StopTransaction")]


async def test_stop_for_a_transaction_never_seen_is_accepted_and_recorded(gateway):
    async with charger(gateway.ocpp_port, "CP-U") as cp:
        stop = await cp.result("StopTransaction", {
            "transactionId": 987654, "meterStop": 77, "timestamp": "2026-01-01T11:00:00Z", "reason": "Reboot"})
        assert stop == {}  # no idTag sent, so no idTagInfo owed
        # Repeating the same stop (a charger resending after a lost answer) is accepted too.
        assert await cp.result("StopTransaction", {
            "transactionId": 987654, "meterStop": 77, "timestamp": "2026-01-01T11:00:00Z"}) == {}
    tx = await gateway.store.transactions.get(987654)
    assert tx["charge_point_id"] == "CP-U" and tx["meter_stop"] == 77 and tx["started_at"] is None
    assert tx["energy_wh"] is None  # no start, no energy: not made up


async def test_offline_transaction_with_old_timestamps_is_stored_as_given(gateway):
    async with charger(gateway.ocpp_port, "CP-O") as cp:
        old = "2020-02-02T02:02:02Z"
        start = {"connectorId": 2, "idTag": "X", "meterStart": 0, "timestamp": old}
        first = await cp.result("StartTransaction", start)
        # The same start again while it is open: the charger missed our answer; same session, same id.
        repeated = await cp.result("StartTransaction", start)
        await cp.result("StopTransaction", {"transactionId": first["transactionId"], "meterStop": 10, "timestamp": old})
        # An identical start after the stop (no clock, a meter that starts at 0): a new session.
        second = await cp.result("StartTransaction", start)
    assert first["transactionId"] > 0 and repeated["transactionId"] == first["transactionId"]
    assert second["transactionId"] > first["transactionId"]
    assert (await gateway.store.transactions.get(first["transactionId"]))["start_timestamp"] == old
