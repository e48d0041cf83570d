"""Replay the captured real charger session against the gateway, as the charger.

Central-system CALLs in the capture (RemoteStart/RemoteStop) are issued through
the gateway's outbound call path, and the replayed charger answers them as the
real one did.
"""

from __future__ import annotations

import json

import trio

from gateway.simulator.capture import load_capture
from tests.helpers import assert_schema_valid, charger

CAPTURED_TX = 461627


def _substitute(frame: list, transaction_id: int) -> list:
    """Swap the capture's transaction id for the one the gateway assigned."""
    return json.loads(json.dumps(frame).replace(str(CAPTURED_TX), str(transaction_id)))


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


async def test_captured_session_replays_with_every_call_answered(gateway, capture_path):
    frames = load_capture(capture_path)
    calls_by_uid = {f.unique_id: f.frame[2] for f in frames if f.message_type == 2}
    transaction_id = CAPTURED_TX
    answered = 0
    commands: dict[str, trio.MemoryReceiveChannel] = {}

    async with trio.open_nursery() as nursery, charger(gateway.ocpp_port, "XQ-0117") as cp:

        async def command(action: str, payload: dict, send: trio.MemorySendChannel) -> None:
            result = await gateway.registry.call("XQ-0117", action, payload, timeout=5)
            await send.send(result)

        for captured in frames:
            frame = _substitute(captured.frame, transaction_id)
            if captured.from_charger and frame[0] == 2:
                await cp.send(frame)
            elif not captured.from_charger and frame[0] == 3:
                # The gateway's answer to a charger CALL: same kind, schema-valid, same shape.
                reply = await cp.wait_for(frame[1])
                action = calls_by_uid[frame[1]]
                assert reply[0] == 3, f"{action} answered {reply}"
                assert_schema_valid(action, reply[2])
                assert _shape(reply[2]) == _shape(frame[2]), action
                if action == "StartTransaction":
                    transaction_id = reply[2]["transactionId"]
                    assert transaction_id > 0
                answered += 1
            elif not captured.from_charger and frame[0] == 2:
                # A command of the central system: have the gateway send it.
                send, receive = trio.open_memory_channel(1)
                commands[frame[1]] = receive
                nursery.start_soon(command, frame[2], frame[3], send)
                incoming = await cp.next_call()
                assert incoming[2] == frame[2] and incoming[3] == frame[3]
                commands[incoming[1]] = commands.pop(frame[1])
                pending_uid = incoming[1]
            else:  # the charger's answer to that command
                await cp.send([3, pending_uid, frame[2]])
                with trio.fail_after(5):
                    assert await commands[pending_uid].receive() == frame[2]

        # The capture lacks the answer to one CALL (the Finishing StatusNotification): it is answered too.
        replied = {f.unique_id for f in frames if f.message_type == 3}
        for f in frames:
            if f.from_charger and f.message_type == 2 and f.unique_id not in replied:
                reply = await cp.wait_for(f.unique_id)
                assert reply[0] == 3
                assert_schema_valid(f.frame[2], reply[2])
                answered += 1

    charger_calls = sum(1 for f in frames if f.from_charger and f.message_type == 2)
    assert answered == charger_calls == 27

    # What was stored matches the capture.
    device = await gateway.store.chargers.get("XQ-0117")
    assert device["vendor"] == "XQ" and device["model"] == "ocpp_ac_7kw"
    assert device["serial_number"] == "ks0117100000008"
    assert device["firmware_version"] == "250722"
    assert device["iccid"] == "" and device["imsi"] == ""
    assert device["extra"] == {"customData": {"moduleVersion": "FC4X.250723", "networkType": "1"}}
    assert {c["connector_id"]: c["status"] for c in device["connectors"]} == {1: "Available"}

    tx = await gateway.store.transactions.get(transaction_id)
    assert tx["charge_point_id"] == "XQ-0117" and tx["connector_id"] == 1
    assert tx["id_tag"] == "a123456789"
    assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"]) == (0, 3, 3)
    assert tx["start_timestamp"] == "2025-08-14T01:23:49Z"
    assert tx["stop_timestamp"] == "2025-08-14T01:30:12Z"
    assert tx["stop_reason"] == "EnergyLimitReached"  # outside the 1.6 enum: kept as sent

    expected = [
        (mv["timestamp"], sv["measurand"], sv["value"], sv["unit"], sv["context"])
        for f in frames if f.message_type == 2 and f.frame[2] == "MeterValues"
        for mv in f.frame[3]["meterValue"] for sv in mv["sampledValue"]
    ]
    stored = [(s["timestamp"], s["measurand"], s["value"], s["unit"], s["context"])
              for s in await gateway.store.transactions.samples(transaction_id)]
    assert stored == expected and len(stored) == 13 * 5  # 13 MeterValues of 5 samples

    # Lenient mode answered the out-of-enum reason and the customData field, and recorded both.
    violations = {(v["action"], v["code"]) for v in await gateway.store.chargers.violations("XQ-0117")}
    assert ("StopTransaction", "PropertyConstraintViolation") in violations
    assert ("BootNotification", "FormationViolation") in violations


async def test_frame_log_keeps_both_directions_of_the_replay(gateway, capture_path):
    frames = load_capture(capture_path)
    sent = [f.frame for f in frames if f.from_charger and f.message_type == 2][:6]
    async with charger(gateway.ocpp_port, "XQ-LOG") as cp:
        for frame in sent:
            await cp.send(frame)
            await cp.wait_for(frame[1])
    logged = await gateway.store.frames.query("XQ-LOG")
    inbound = [(r["unique_id"], r["action"]) for r in logged if r["direction"] == "in"]
    outbound = [(r["unique_id"], r["action"]) for r in logged if r["direction"] == "out"]
    assert inbound == [(f[1], f[2]) for f in sent]
    assert outbound == inbound  # every answer logged with the action it answers
    events = [r["action"] for r in logged if r["direction"] == "event"]
    assert events[0] == "connect"
