"""Lenient mode keeps what it lets through: odd types in meter values are stored as text, never dropped."""

from __future__ import annotations

import json

import trio

from tests.conftest import make_config, started
from tests.helpers import charger

T = "2025-08-14T08:00:00Z"


async def _samples_of(gw, tx: int) -> list[tuple]:
    with trio.fail_after(5):
        while True:  # meter values ride on the next batch, not before the charger's answer
            rows = [(r["value"], r["measurand"], r["phase"], r["unit"]) for r in await gw.store.transactions.samples(tx)]
            if len(rows) >= 2:
                return rows
            await trio.sleep(0.02)


async def test_objects_where_strings_belong_are_stored_as_json_text(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "ODD") as cp:
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": T}))["transactionId"]
        reply = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": "5", "measurand": {"odd": 1}, "unit": 7}]}]})
        assert reply[0] == 3 and reply[2] == {}
        reply = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": T,
                                                  "transactionData": [{"timestamp": T, "sampledValue": [
                                                      {"value": "10", "phase": ["L1"]}]}]})
        assert reply[0] == 3, reply  # the stop is recorded, not an InternalError the charger would retry forever
        stored = await _samples_of(gw, tx)
        assert [(v, json.loads(m) if m else m, json.loads(p) if p else p, u) for v, m, p, u in stored] == [
            ("5", {"odd": 1}, None, "7"), ("10", None, ["L1"], None)]
        assert (await gw.store.transactions.get(tx))["stopped_at"] is not None


async def test_an_integer_beyond_64_bits_sent_as_text_is_refused_and_the_session_goes_on(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "BIG") as cp:
        reply = await cp.call("MeterValues", {"connectorId": "18446744073709551616", "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": "1"}]}]})
        # Lenient mode let the string through; the handler cannot store it: the schema violation is the answer.
        assert reply[0] == 4 and reply[2] == "TypeConstraintViolation", reply
        assert (await cp.call("Heartbeat", {}))[0] == 3
