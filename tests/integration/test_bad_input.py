"""Whatever a charger sends, it gets the 1.6 answer and the session keeps working."""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket

from tests.conftest import make_config, started
from tests.helpers import BOOT, charger


async def still_works(cp) -> None:
    await cp.result("Heartbeat", {})


@pytest.mark.parametrize(
    ("text", "code", "unique_id"),
    [
        ('[2,"u1","Heartbeat",{', "FormationViolation", "u1"),  # truncated JSON, id still readable
        ('[2,"u2","Heartbeat"]', "FormationViolation", "u2"),  # missing payload
        ('[2,"u3","Heartbeat",[]]', "FormationViolation", "u3"),  # payload not an object
        ('[2,"u4",17,{}]', "FormationViolation", "u4"),  # action not a string
        ('[7,"u5","Heartbeat",{}]', "ProtocolError", "u5"),  # unknown message type
        ('["2","u6","Heartbeat",{}]', "FormationViolation", "u6"),  # message type as a string
        ('[2,"u7","FlyToTheMoon",{}]', "NotImplemented", "u7"),  # unknown action
        ('[2,"u8","RemoteStartTransaction",{"idTag":"A"}]', "NotSupported", "u8"),  # wrong direction
    ],
)
async def test_malformed_call_gets_callerror_and_session_survives(gateway, text, code, unique_id):
    async with charger(gateway.ocpp_port) as cp:
        await cp.send(text)
        reply = await cp.wait_for(unique_id)
        assert reply[0] == 4 and reply[2] == code
        assert isinstance(reply[3], str) and reply[3]  # a description a person can read
        assert isinstance(reply[4], dict)
        await still_works(cp)


@pytest.mark.parametrize("text", ["not json at all", "{}", "[]", '{"a":1}', "42", "[2]", "null", "[" * 5000])
async def test_unreadable_frames_are_logged_and_the_session_stays_up(gateway, text):
    async with charger(gateway.ocpp_port, "CP-G") as cp:
        await cp.send(text)
        await still_works(cp)
        assert cp.inbox == []  # nothing was answered to the unreadable frame
    logged = await gateway.store.frames.query("CP-G")
    assert any(r["action"] == "unreadable" and r["body"] == text[:10000] for r in logged)


async def test_unsolicited_callresult_and_callerror_are_not_fatal(gateway):
    async with charger(gateway.ocpp_port) as cp:
        await cp.send([3, "nobody-asked", {"status": "Accepted"}])
        await cp.send([4, "nobody-asked-either", "GenericError", "oops", {}])
        await cp.send('[3,"broken-reply"]')
        await still_works(cp)
        assert cp.inbox == []


async def test_lenient_mode_answers_bad_payload_and_records_violation(gateway):
    async with charger(gateway.ocpp_port, "CP-L") as cp:
        reply = await cp.result("BootNotification", {**BOOT, "chargePointVendor": "V" * 30})
        assert reply["status"] == "Accepted"
        # A payload the handler cannot use at all is answered with the violation's code.
        missing = await cp.call("StartTransaction", {"idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
        assert missing[0] == 4 and missing[2] == "OccurenceConstraintViolation"
        await still_works(cp)
    recorded = {(v["action"], v["code"], v["path"]) for v in await gateway.store.chargers.violations("CP-L")}
    assert recorded == {
        ("BootNotification", "PropertyConstraintViolation", "chargePointVendor"),
        ("StartTransaction", "OccurenceConstraintViolation", ""),
    }
    assert (await gateway.store.chargers.get("CP-L"))["vendor"] == "V" * 30  # kept as sent


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("BootNotification", {"chargePointVendor": "V"}, "OccurenceConstraintViolation"),
        ("BootNotification", {**BOOT, "customData": {}}, "FormationViolation"),
        ("BootNotification", {**BOOT, "chargePointModel": 7}, "TypeConstraintViolation"),
        ("BootNotification", {**BOOT, "chargePointModel": "M" * 21}, "PropertyConstraintViolation"),
        ("StatusNotification", {"connectorId": 1, "status": "Dancing", "errorCode": "NoError"},
         "PropertyConstraintViolation"),
        ("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "yesterday"},
         "PropertyConstraintViolation"),
        ("MeterValues", {"connectorId": "1", "meterValue": []}, "TypeConstraintViolation"),
    ],
)
async def test_strict_mode_answers_schema_violations_with_the_16_code(nursery, tmp_path, action, payload, code):
    async with started(nursery, make_config(tmp_path, validation="strict")) as gw:
        async with charger(gw.ocpp_port, "CP-S") as cp:
            reply = await cp.call(action, payload)
            assert reply[0] == 4 and reply[2] == code, reply
            await still_works(cp)
        assert any(v["code"] == code for v in await gw.store.chargers.violations("CP-S"))
        # Nothing was stored from the refused payload.
        if action == "BootNotification":
            assert (await gw.store.chargers.get("CP-S"))["booted_at"] is None


async def test_binary_frame_closes_with_1003(gateway):
    async with charger(gateway.ocpp_port) as cp:
        await cp.ws.send_message(b"\x00\x01binary")
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await cp.receive()
        assert closed.value.reason.code == 1003
    await still_connectable(gateway)


async def test_oversized_frame_closes_with_1009(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, max_frame_bytes=1024)) as gw:
        async with charger(gw.ocpp_port) as cp:
            await cp.send([2, "big", "DataTransfer", {"vendorId": "V", "data": "x" * 4096}])
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await cp.receive()
            assert closed.value.reason.code == 1009
        await still_connectable(gw)


async def still_connectable(gw) -> None:
    async with charger(gw.ocpp_port, "CP-AFTER") as cp:
        await still_works(cp)


async def test_a_flood_of_garbage_does_not_lose_accepted_data(gateway):
    async with charger(gateway.ocpp_port, "CP-F") as cp:
        start = await cp.result("StartTransaction", {
            "connectorId": 1, "idTag": "T", "meterStart": 5, "timestamp": "2026-01-01T00:00:00Z"})
        for i in range(200):
            await cp.send(["garbage", i] if i % 2 else f"[2,\"g{i}\",\"Nope\",{{}}]")
        await still_works(cp)
    assert (await gateway.store.transactions.get(start["transactionId"]))["meter_start"] == 5


async def test_handler_failure_answers_internal_error_without_details(gateway, monkeypatch):
    from gateway.chargepoint import handlers

    async def broken(session, payload):
        raise RuntimeError("secret internals")

    monkeypatch.setitem(handlers.HANDLERS, "Heartbeat", broken)
    async with charger(gateway.ocpp_port) as cp:
        reply = await cp.call("Heartbeat", {})
        assert reply[2] == "InternalError" and "secret" not in json.dumps(reply)
        monkeypatch.undo()
        await still_works(cp)


async def test_pipelined_calls_are_all_answered_in_order(gateway):
    async with charger(gateway.ocpp_port, "CP-P") as cp:
        ids = [f"p{i}" for i in range(50)]
        for uid in ids:
            await cp.send([2, uid, "Heartbeat", {}])
        with trio.fail_after(10):
            replies = [await cp.receive() for _ in ids]
        assert [r[1] for r in replies] == ids and all(r[0] == 3 for r in replies)


async def test_a_failing_session_does_not_stop_the_listener(gateway, monkeypatch):
    from gateway.store.chargers import Chargers

    async def broken(*args, **kwargs):
        raise RuntimeError("database trouble")

    with monkeypatch.context() as patch:
        patch.setattr(Chargers, "connected", broken)
        with pytest.raises(trio_websocket.ConnectionClosed):
            async with charger(gateway.ocpp_port, "CP-BROKEN") as cp:
                await cp.receive()
    await still_connectable(gateway)  # the next charger is served as usual


async def test_a_lone_surrogate_is_a_formation_violation_and_a_surrogate_pair_is_fine(gateway):
    async with charger(gateway.ocpp_port, "CP-SUR") as cp:
        await cp.send('[2,"s1","Authorize",{"idTag":"\\ud800x"}]')
        reply = await cp.wait_for("s1")
        assert reply[0] == 4 and reply[2] == "FormationViolation"
        emoji = await cp.result("Authorize", {"idTag": "\U0001f600"})
        assert emoji["idTagInfo"]["status"] == "Accepted"
        await still_works(cp)


async def test_http_bodies_that_are_not_text_are_400(gateway):
    async with gateway.http() as http:
        for body in (b'\xb4\xe1\x00', b'{"idTag":"\\udaba"}'):
            for method, url in (("POST", "/api/id-tags"), ("POST", "/api/ocpp/call/CP1/GetConfiguration"),
                                ("PUT", "/api/chargers/CP1/registration"), ("POST", "/api/auth/login")):
                r = await http.request(method, url, content=body)
                assert r.status_code == 400, (url, r.status_code, r.text)  # the body is read before anything
                assert r.json()["error"] == "bad_request"
