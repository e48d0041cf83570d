"""Lenient mode keeps what it lets through: odd types in meter values are stored as text, never dropped."""

from __future__ import annotations

import json


from tests.conftest import make_config, started
from tests.helpers import charger
from tests.waiting import until

T = "2025-08-14T08:00:00Z"


async def _samples_of(gw, tx: int) -> list[tuple]:
    async def rows() -> list[tuple] | None:  # meter values ride on the next batch, not before the charger's answer
        found = [(r["value"], r["measurand"], r["phase"], r["unit"]) for r in await gw.store.transactions.samples(tx)]
        return found if len(found) >= 2 else None
    return await until(rows)


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


async def test_a_stop_with_an_id_beyond_32_bits_never_seen_leaves_ids_for_later_transactions(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "HUGE") as cp:
        # A valid 1.6 payload: the schema's integer has no bound. Kept under its id, it would have
        # used up every id (AUTOINCREMENT) and no charger could start a transaction again.
        assert await cp.result("StopTransaction", {"transactionId": 2**63 - 1, "meterStop": 1,
                                                   "timestamp": T, "idTag": "T"}) == {"idTagInfo": {"status": "Accepted"}}
        start = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T})
        assert start["transactionId"] < 2**31
        assert await gw.store.transactions.get(2**63 - 1) is None
        violations = await gw.store.chargers.violations("HUGE")
        assert any("never started here" in v["message"] for v in violations)


async def test_null_where_an_integer_is_required_is_refused_with_the_schema_violation(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "NUL") as cp:
        for action, payload in (("StatusNotification", {"connectorId": None, "errorCode": "NoError",
                                                        "status": "Available"}),
                                ("StartTransaction", {"connectorId": None, "idTag": "T", "meterStart": 0,
                                                      "timestamp": T}),
                                ("StopTransaction", {"transactionId": None, "meterStop": 0, "timestamp": T})):
            reply = await cp.call(action, payload)
            assert reply[0] == 4 and reply[2] == "TypeConstraintViolation", (action, reply)
        assert (await cp.call("Heartbeat", {}))[0] == 3


async def test_an_empty_value_where_a_list_belongs_is_nothing_to_keep_and_the_stop_is_recorded(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "EMPTY") as cp:
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": T}))["transactionId"]
        for meter_value in ({}, "", 0, [{"timestamp": T, "sampledValue": {}}]):
            reply = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": meter_value})
            assert reply[0] == 3, (meter_value, reply)
        reply = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": T,
                                                  "transactionData": {}})
        assert reply[0] == 3, reply
        assert (await gw.store.transactions.get(tx))["stopped_at"] is not None
        assert await gw.store.transactions.samples(tx) == []


async def test_a_nul_character_in_a_meter_value_is_refused_not_read_back_cut(nursery, tmp_path):
    """SQLite's JSON reader would end the text at NUL: '12\\u000034' would be billed as 12 Wh."""
    async with started(nursery, make_config(tmp_path, validation="strict")) as gw, charger(gw.ocpp_port, "NUL") as cp:
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": T}))["transactionId"]
        reply = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": "12\u000034", "measurand": "Energy.Active.Import.Register"}]}]})
        assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation", reply
        reply = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": T, "sampledValue": [{"value": "12"}]}]})
        assert reply[0] == 3
        assert [s["value"] for s in await gw.store.transactions.samples(tx)] == ["12"]


async def test_a_stop_whose_transaction_data_cannot_be_kept_is_recorded_without_it(nursery, tmp_path):
    """Refused, the stop would come back forever and the session would never be billed."""
    async with started(nursery, make_config(tmp_path)) as gw, charger(gw.ocpp_port, "BADDATA") as cp:
        for data in ([{"sampledValue": [{"value": "5"}]}], [{"timestamp": T, "sampledValue": [{"value": "1\u00002"}]}]):
            tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                       "timestamp": T}))["transactionId"]
            reply = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": T,
                                                      "transactionData": data})
            assert reply[0] == 3, reply
            assert (await gw.store.transactions.get(tx))["stopped_at"] is not None
            assert await gw.store.transactions.samples(tx) == []
        violations = await gw.store.chargers.violations("BADDATA")
        assert sum("transactionData not kept" in v["message"] for v in violations) == 2
