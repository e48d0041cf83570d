"""The live stream (GET /api/live, docs/api.md section 14) against a real gateway and test chargers: what a
charger says and what operators send arrives as events; a browser sees only its tenant's chargers; a browser
that does not read loses events, is told how many, and slows no charger; a reconnecting browser catches up
from the frame log with no gap and no duplicate."""

from __future__ import annotations

import json
import re


from gateway import clock
from tests.conftest import make_config, started
from tests.helpers import BOOT, assert_error, charger, status
from tests.live import live

PASSWORD = "correct horse battery staple"


def frame_key(data: dict) -> tuple:
    return data["time"], data["cpId"], data["direction"], data["messageType"], data["uniqueId"], data["text"]


async def test_what_a_charger_says_and_what_is_sent_to_it_arrives_live(gateway):
    async with gateway.http() as http, live(http, cp="LIVE-1") as stream:
        caught_up = await stream.next()
        assert caught_up.name == "caughtUp" and caught_up.data == {"frames": 0}
        async with charger(gateway.ocpp_port, "LIVE-1") as cp:
            online = await stream.named("connection")
            assert online.data["online"] is True and online.data["cpId"] == "LIVE-1"

            boot = {**BOOT, "chargePointSerialNumber": "SN-9", "firmwareVersion": "1.2.3",
                    "customData": {"vendorId": "acme", "bench": "A"}}
            reply = await cp.call("BootNotification", boot)
            call_frame = await stream.named("frame", direction="in", action="BootNotification")
            assert call_frame.data["messageType"] == 2 and json.loads(call_frame.data["text"])[3] == boot
            assert re.fullmatch(re.escape(call_frame.data["time"]) + r"#\d+", call_frame.id)  # a frame's id: time#n
            answer = await stream.named("frame", direction="out", action="BootNotification")
            assert answer.data["messageType"] == 3 and json.loads(answer.data["text"]) == reply
            assert answer.data["uniqueId"] == call_frame.data["uniqueId"]  # the answer names the call it answers
            booted = await stream.named("boot")
            assert booted.data | {"time": None} == {
                "cpId": "LIVE-1", "vendor": "TestVendor", "model": "TestModel", "serial": "SN-9",
                "firmware": "1.2.3", "status": "Accepted", "payload": boot, "time": None}

            await cp.result("StatusNotification", status(0, "Available"))
            await cp.result("StatusNotification", status(1, "Faulted", errorCode="GroundFailure",
                                                         vendorErrorCode="E42", info="leak"))
            whole = await stream.named("status", connectorId=0)
            assert (whole.data["status"], whole.data["errorCode"]) == ("Available", "NoError")
            faulted = await stream.named("status", connectorId=1)
            assert {k: faulted.data[k] for k in ("status", "errorCode", "vendorErrorCode", "info")} == {
                "status": "Faulted", "errorCode": "GroundFailure", "vendorErrorCode": "E42", "info": "leak"}

            # A remote start from an operator: the command, the charger's answer, the transaction, its readings
            r = await http.get("/api/ocpp/remoteStart/LIVE-1", params={"idTag": "TAG1", "connectorId": 1,
                                                                        "wait": "false"})
            assert r.status_code == 200, r.text
            request_id = r.json()["requestId"]
            sent = await stream.named("command", state="sent")
            assert sent.data["requestId"] == request_id and sent.data["action"] == "RemoteStartTransaction"
            assert sent.data["payload"] == {"idTag": "TAG1", "connectorId": 1}
            call = await cp.next_call()
            assert call[2] == "RemoteStartTransaction"
            await cp.send([3, call[1], {"status": "Accepted"}])
            answered = await stream.named("command", requestId=request_id, state="answered")
            assert answered.data["answer"] == {"status": "Accepted"}
            out = await stream.named("frame", direction="in", messageType=3)
            assert out.data["action"] == "RemoteStartTransaction"  # an answer carries the action it answers

            started_tx = await cp.result("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                                                              "timestamp": clock.iso()})
            tx = await stream.named("transaction", event="started")
            assert tx.data["transactionId"] == started_tx["transactionId"]
            assert (tx.data["connectorId"], tx.data["idTag"], tx.data["meterStart"]) == (1, "TAG1", 1000)

            await cp.result("MeterValues", {"connectorId": 1, "transactionId": started_tx["transactionId"],
                                            "meterValue": [{"timestamp": "2026-12-04T10:00:00Z", "sampledValue": [
                                                {"value": "1234"},
                                                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW",
                                                 "phase": "L1"},
                                                {"value": "55", "measurand": "SoC", "unit": "Percent",
                                                 "context": "Transaction.Begin", "location": "EV"}]}]})
            meter = await stream.named("meter")
            assert meter.data["transactionId"] == started_tx["transactionId"] and meter.data["connectorId"] == 1
            assert meter.data["timestamp"] == "2026-12-04T10:00:00Z"
            assert meter.data["values"] == [  # OCPP 1.6's defaults for what was left out (section 7.45)
                {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic",
                 "location": "Outlet", "phase": None, "value": "1234"},
                {"measurand": "Power.Active.Import", "unit": "kW", "context": "Sample.Periodic",
                 "location": "Outlet", "phase": "L1", "value": "7.4"},
                {"measurand": "SoC", "unit": "Percent", "context": "Transaction.Begin", "location": "EV",
                 "phase": None, "value": "55"}]

            await cp.result("StopTransaction", {"transactionId": started_tx["transactionId"], "meterStop": 4321,
                                                "timestamp": clock.iso(), "reason": "Remote"})
            stopped = await stream.named("transaction", event="stopped")
            assert (stopped.data["meterStop"], stopped.data["reason"]) == (4321, "Remote")

            # A CALLERROR, and a command the charger never answers
            r = await http.get("/api/ocpp/reset/LIVE-1", params={"type": "Soft", "wait": "false"})
            call = await cp.next_call()
            await cp.send([4, call[1], "NotSupported", "no resets here", {"why": "bench"}])
            failed = await stream.named("command", requestId=r.json()["requestId"], state="callerror")
            assert failed.data["error"] == {"code": "NotSupported", "description": "no resets here",
                                            "details": {"why": "bench"}}
            error_frame = await stream.named("frame", direction="in", messageType=4)
            assert error_frame.data["action"] == "Reset"
            r = await http.get("/api/ocpp/clearCache/LIVE-1", params={"wait": "false", "timeoutSeconds": "0.5"})
            await cp.next_call()  # and no answer
            timed_out = await stream.named("command", requestId=r.json()["requestId"], state="timeout")
            assert "no answer" in timed_out.data["error"]["message"]
        offline = await stream.named("connection")
        assert offline.data["online"] is False and offline.data["reason"]


async def test_a_frame_is_data_whatever_it_holds(gateway):
    """Markup in a frame reaches the browser as a JSON string in a text/event-stream, never as markup; the
    line breaks a charger sends cannot end the event early."""
    hostile = {"vendorId": "x", "data": '</script><script>alert(1)</script><img src=x onerror="alert(2)">\n\ndata: {}'}
    async with gateway.http() as http, live(http, topics="frame") as stream:
        await stream.named("caughtUp")
        async with charger(gateway.ocpp_port, "LIVE-XSS") as cp:
            await cp.result("DataTransfer", hostile)
            event = await stream.named("frame", direction="in", action="DataTransfer")
            assert json.loads(event.data["text"])[3] == hostile
            assert event.data["violations"] == []
        assert {e.name for e in stream.seen} <= {"hello", "caughtUp", "frame"}  # topics=frame: nothing else


async def test_a_violation_is_shown_with_its_frame(tmp_path, nursery):
    async with started(nursery, make_config(tmp_path, validation="lenient")) as gw, gw.http() as http, \
            live(http, topics="frame") as stream, charger(gw.ocpp_port, "LIVE-V") as cp:
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError",
                                             "info": "x" * 60})  # info is at most 50 characters
        event = await stream.named("frame", direction="in", action="StatusNotification")
        (violation,) = event.data["violations"]
        assert violation["kind"] == "request" and violation["path"].endswith("info")
        assert violation["code"] and violation["message"]


async def test_bad_parameters_are_refused_with_the_reason(gateway):
    stream = {"Accept": "text/event-stream"}
    async with gateway.http() as http:
        r = await http.get("/api/live", params={"topics": "frame,<b>"}, headers=stream)
        assert_error(r, 400, "bad_request")
        assert "topics" in r.json()["message"]
        r = await http.get("/api/live", headers={**stream, "Last-Event-ID": "yesterday"})
        assert_error(r, 400, "bad_request")
        assert "Last-Event-ID" in r.json()["message"]
        r = await http.get("/api/live", params={"since": "soon"}, headers=stream)
        assert_error(r, 400, "bad_request")
        assert "since" in r.json()["message"]
        # a client that does not expect an endless answer is not sent one
        r = await http.get("/api/live")
        assert_error(r, 406, "not_acceptable")
        assert "text/event-stream" in r.json()["message"]
