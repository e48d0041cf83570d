"""The live stream (GET /api/live, docs/api.md section 15) against a real gateway and test chargers: what a
charger says and what operators send arrives as events; a browser sees only its tenant's chargers; a browser
that does not read loses events, is told how many, and slows no charger; a reconnecting browser catches up
from the frame log with no gap and no duplicate."""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from urllib.parse import quote

import attrs
import jsonschema
import pytest
import trio

from gateway import clock
from gateway.http.accounts import hash_password
from gateway.ocpp.actions import CENTRAL_ACTIONS
from gateway.store import scope
from tests.conformance import support
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


async def test_a_violation_is_shown_with_its_frame_live_and_caught_up(tmp_path, nursery):
    since = clock.iso()
    async with started(nursery, make_config(tmp_path, validation="lenient")) as gw, gw.http() as http:
        async with live(http, topics="frame") as stream, charger(gw.ocpp_port, "LIVE-V") as cp:
            await cp.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError",
                                                 "info": "x" * 60})  # info is at most 50 characters
            await cp.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
            event = await stream.named("frame", direction="in", action="StatusNotification")
            (violation,) = event.data["violations"]
            assert violation["kind"] == "request" and violation["path"].endswith("info")
            assert violation["code"] and violation["message"]
            assert (await stream.named("frame", direction="in", action="StatusNotification")).data["violations"] == []
        async with live(http, topics="frame", since=since) as replay:
            await replay.named("caughtUp")
        statuses = [e.data for e in replay.frames() if e.data["action"] == "StatusNotification"
                    and e.data["direction"] == "in"]
        assert [s["violations"] for s in statuses] == [[violation], []]


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


# ---- catching up: no gap, no duplicate --------------------------------------------------------------

async def _heartbeats(cp, count: int, done: trio.Event, halfway: trio.Event) -> None:
    for i in range(count):
        await cp.result("Heartbeat", {})
        if i == count // 2:
            halfway.set()
    done.set()


async def test_a_reconnecting_browser_catches_up_with_no_gap_and_no_duplicate(gateway, nursery):
    """A browser that connects with `since` while the charger keeps talking gets the stored frames, then the live
    ones, each exactly once: the same frames, in the same order, as a browser that watched all along. One that
    resumes with Last-Event-ID gets exactly the frames after that one, also among frames of one millisecond."""
    count = 150
    async with gateway.http() as http, live(http, cp="SEAM") as reference, charger(gateway.ocpp_port, "SEAM") as cp:
        await reference.named("caughtUp")
        await cp.result("BootNotification", BOOT)
        since = clock.iso()
        done, halfway = trio.Event(), trio.Event()
        nursery.start_soon(_heartbeats, cp, count, done, halfway)
        await halfway.wait()
        async with live(http, cp="SEAM", since=since) as late:
            caught_up = await late.named("caughtUp")
            assert caught_up.data["frames"] > 0
            await done.wait()
            last = await reference.until(lambda e: e.name == "frame" and e.data["direction"] == "out"
                                         and e.data["action"] == "Heartbeat" and len(reference.frames()) >= 2 * count + 2)
            await late.until(lambda e: e.name == "frame" and e.data["uniqueId"] == last.data["uniqueId"]
                             and e.data["direction"] == "out")
        expected = [e for e in reference.frames() if e.data["time"] >= since]
        assert [frame_key(e.data) for e in late.frames()] == [frame_key(e.data) for e in expected]
        assert [e.id for e in late.frames()] == [e.id for e in expected]  # one name for one frame, on any stream
        assert len(expected) >= 2 * count
        assert not [e for e in late.seen if e.name == "lost"]

        # Resuming after a frame in the middle: exactly the frames after it
        middle = len(expected) // 2
        headers = {"Last-Event-ID": expected[middle].id}
        async with live(http, headers=headers, cp="SEAM") as resumed:
            replayed = (await resumed.named("caughtUp")).data["frames"]
        assert [frame_key(e.data) for e in resumed.frames()] == [frame_key(e.data) for e in expected[middle + 1:]]
        assert replayed == len(expected) - middle - 1
        assert all(isinstance(e.data["id"], int) for e in resumed.frames())  # replayed: the frame log's ids
        same_ms = [i for i in range(1, len(expected)) if expected[i].data["time"] == expected[i - 1].data["time"]]
        for i in same_ms[:5]:  # frames of one millisecond: the id still names one of them
            async with live(http, headers={"Last-Event-ID": expected[i].id}, cp="SEAM") as resumed:
                await resumed.named("caughtUp")
            assert [frame_key(e.data) for e in resumed.frames()] == [frame_key(e.data) for e in expected[i + 1:]]


async def test_a_catch_up_sends_the_newest_frames_and_says_how_many_it_left_out(tmp_path, nursery):
    config = make_config(tmp_path)
    config.console.live_catch_up = 10
    async with started(nursery, config) as gw, gw.http() as http:
        since = clock.iso()
        async with charger(gw.ocpp_port, "MANY") as cp:
            await cp.result("BootNotification", BOOT)
            for _ in range(10):
                await cp.result("Heartbeat", {})
        stored = (await http.get("/api/frames", params={"cpId": "MANY", "limit": 100})).json()["records"]
        assert len(stored) == 2 + 2 * 10 + 2  # boot, heartbeats, connect and disconnect notes
        async with live(http, cp="MANY", since=since) as stream:
            lost = await stream.next()
            assert lost.name == "lost" and lost.data == {"count": len(stored) - 10}
            assert (await stream.named("caughtUp")).data == {"frames": 10}
        assert [e.data["id"] for e in stream.frames()] == [r["id"] for r in reversed(stored[:10])]


# ---- a browser that does not read --------------------------------------------------------------------

async def stuck_browser(port: int, path: str = "/api/live") -> trio.SocketStream:
    """A client that asks for the stream and then reads nothing (a small receive buffer, so the kernel holds
    little of what the gateway writes)."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
                          .encode())
    return stream


async def _read_until(stream: trio.SocketStream, received: bytes, pattern: bytes) -> tuple[bytes, re.Match]:
    with trio.fail_after(20):
        while (found := re.search(pattern, received)) is None:
            received += await stream.receive_some(65536)
    return received, found


async def test_a_browser_that_does_not_read_loses_events_is_told_how_many_and_slows_no_charger(tmp_path, nursery):
    config = make_config(tmp_path)
    config.console.live_buffer = 64  # the reading browser keeps up with room to spare; the stuck one cannot
    async with started(nursery, config) as gw, gw.http() as http:
        async with live(http, cp="BUSY") as watching, charger(gw.ocpp_port, "BUSY") as cp, \
                trio.open_nursery() as reading:
            stuck = await stuck_browser(gw.http_port)
            everything = trio.Event()

            async def watch() -> None:  # a browser that reads as it should, all along
                await watching.until(lambda e: len(watching.frames()) >= 1 + 2 + 2 * 400)  # connected, boot, calls
                everything.set()

            reading.start_soon(watch)
            await cp.result("BootNotification", BOOT)
            big = {"vendorId": "bench", "data": "x" * 4000}  # fills the stuck browser's socket sooner
            for _ in range(400):  # each answered, as if nobody watched
                assert (await cp.result("DataTransfer", big))["status"] == "UnknownVendorId"
            with trio.fail_after(20):
                await everything.wait()
            assert not [e for e in watching.seen if e.name == "lost"]
            # The stuck one, once it reads, is told what it lost and goes on live
            received, lost = await _read_until(stuck, b"", rb"event: lost\ndata: (\{.*?\})\n")
            assert json.loads(lost.group(1))["count"] > 0
            metrics = (await http.get("/metrics")).text
            assert "gateway_live_readers 2.0" in metrics  # the one reading and the stuck one
            total = re.search(r"^gateway_live_events_lost_total (\S+)$", metrics, re.M)
            assert total is not None and float(total.group(1)) >= json.loads(lost.group(1))["count"]
            await cp.result("Heartbeat", {})
            await _read_until(stuck, received, rb'"action":"Heartbeat"')
            await stuck.aclose()
        # A browser that went away is forgotten: the hot path stops building events once nobody watches
        with trio.fail_after(10):
            while gw.running.chargers.events.watched:
                await trio.sleep(0.05)


# ---- tenant scope -----------------------------------------------------------------------------------------

async def _operator(store, code: str) -> int:
    with scope.acting_as(scope.EVERYTHING):
        outcome, tenant = await store.tenants.create(scope.PLATFORM, {"code": code, "name": code, "type": "operator"},
                                                     clock.iso())
        assert outcome == "ok", tenant
        assert await store.users.put("admin", await hash_password(PASSWORD), "admin", clock.iso(), tenant["id"]) is None
    with scope.acting_as(scope.Scope(tenant["id"], frozenset({tenant["id"]}))):
        outcome, _ = await store.registry.create(f"{code}-CP", None, None, [], clock.iso())
        assert outcome == "created"
    return tenant["id"]


async def test_a_browser_sees_only_its_tenants_chargers(gateway):
    """Operator A's browser gets A's charger's events, live and caught up, and nothing of operator B's charger
    nor of the platform's own, even when it names them."""
    await _operator(gateway.store, "opa")
    await _operator(gateway.store, "opb")
    await gateway.store.users.put("root", await hash_password(PASSWORD), "admin", clock.iso())  # the platform's
    since = clock.iso()
    async with gateway.http() as http, AsyncExitStack() as stack:
        http.auth = ("admin@opa", PASSWORD)
        a_all = await stack.enter_async_context(live(http))
        a_named_b = await stack.enter_async_context(live(http, cp="opb-CP"))
        http.auth = ("root", PASSWORD)  # the platform: every charger
        platform = await stack.enter_async_context(live(http))
        async with charger(gateway.ocpp_port, "opb-CP") as b, charger(gateway.ocpp_port, "PLAT-CP") as p, \
                charger(gateway.ocpp_port, "opa-CP") as a:
            for cp in (b, p, a):  # A's last: once its frames arrive, the others' have been handled
                await cp.result("BootNotification", BOOT)
                await cp.result("StatusNotification", status(1, "Available"))
            await platform.named("status", cpId="opa-CP")
            await a_all.named("status", cpId="opa-CP")
        await a_all.named("connection", cpId="opa-CP", online=False)
        await platform.named("connection", cpId="opa-CP", online=False)
        seen_by_a = {e.data.get("cpId") for e in a_all.seen if e.name not in ("hello", "caughtUp")}
        assert seen_by_a == {"opa-CP"}
        assert {e.data.get("cpId") for e in platform.seen if "cpId" in e.data} == {"opa-CP", "opb-CP", "PLAT-CP"}
        await a_named_b.named("caughtUp")
        with trio.move_on_after(1):  # what was published for B's charger would be here by now: nothing is
            await a_named_b.next()
        assert [e.name for e in a_named_b.seen] == ["hello", "caughtUp"]
        http.auth = ("admin@opa", PASSWORD)
        async with live(http, since=since) as caught_up:  # the frame log, scoped the same way
            replayed = (await caught_up.named("caughtUp")).data["frames"]
        assert replayed > 0 and {e.data["cpId"] for e in caught_up.frames()} == {"opa-CP"}


# ---- the frame log's filters, for the console's frame view ---------------------------------------------

async def test_the_frame_log_filters_by_action_direction_and_text_and_pages_back_with_them(gateway):
    async with charger(gateway.ocpp_port, "FILTER") as cp:
        await cp.result("BootNotification", BOOT)
        for _ in range(3):
            await cp.result("Heartbeat", {})
        await cp.result("DataTransfer", {"vendorId": "acme", "data": "Needle_%50"})
    async with gateway.http() as http:
        async def get(**query) -> list[dict]:
            r = await http.get("/api/frames", params={"cpId": "FILTER", **query})
            assert r.status_code == 200, r.text
            return r.json()["records"]

        beats = await get(action="Heartbeat")
        assert len(beats) == 6 and {(f["direction"], f["messageType"]) for f in beats} == {("in", 2), ("out", 3)}
        assert len(await get(action="Heartbeat", direction="in")) == 3
        assert [f["action"] for f in await get(direction="event")] == ["disconnect", "connect"]
        (needle,) = await get(text="needle_%5")  # any case; % and _ are themselves
        assert needle["action"] == "DataTransfer" and needle["direction"] == "in"
        assert await get(text="Needle%50") == [] and await get(text="e_d") == []
        pages, before = [], None
        while True:
            r = await http.get("/api/frames", params={"cpId": "FILTER", "action": "Heartbeat", "limit": 4,
                                                      **({"before": before} if before else {})})
            pages.append(r.json()["records"])
            before = r.json()["nextBefore"]
            if before is None:
                break
        assert [len(p) for p in pages] == [4, 2]
        assert [f["id"] for p in pages for f in p] == [f["id"] for f in beats]
        r = await http.get("/api/frames", params={"direction": "sideways"})
        assert_error(r, 400, "bad_request")
        assert "direction" in r.json()["message"]


# ---- a simulated charger's id, whatever a URL can hold -------------------------------------------------------

@pytest.mark.parametrize("cp_id", ["Bench #1?x=y", "桩 50%", "A+B&C"])
async def test_a_simulated_charger_with_any_id_connects_under_that_id(gateway, cp_id):
    """`gateway simulate --ids` with characters a URL cannot hold as they are: the id is percent-encoded into
    the URL, and the gateway knows the charger by the id itself."""
    async with support.simulated(gateway, cp_id, checked=False):
        assert cp_id in gateway.registry
    async with gateway.http() as http:
        r = await http.get(f"/api/chargers/{quote(cp_id, safe='')}")
        assert r.status_code == 200 and r.json()["chargePointId"] == cp_id


# ---- every action, for the console's payload editor ------------------------------------------------------

async def test_every_action_is_listed_with_its_schemas_and_a_payload_its_schema_takes(gateway):
    async with gateway.http() as http, charger(gateway.ocpp_port, "EDIT") as cp:
        r = await http.get("/api/actions")
        assert r.status_code == 200, r.text
        listed = {a["action"]: a for a in r.json()}
        assert set(listed) == set(CENTRAL_ACTIONS) and len(listed) == 26
        assert listed["InstallCertificate"]["role"] == "admin" and listed["Reset"]["role"] == "operator"
        for name, entry in listed.items():
            jsonschema.Draft4Validator(entry["request"]).validate(entry["example"])  # independent of the gateway
            assert set(entry["example"]) == set(entry["request"].get("required", [])), name
        assert listed["Reset"]["example"] == {"type": "Hard"}
        # what the editor sends is checked and sent as it is
        r = await http.post("/api/ocpp/call/EDIT/ChangeAvailability", params={"wait": "false"},
                            json=listed["ChangeAvailability"]["example"])
        assert r.status_code == 200, r.text
        call = await cp.next_call()
        assert call[2:] == ["ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}]


# ---- what a reconnecting page re-reads ---------------------------------------------------------------------

async def test_the_state_a_page_rereads_has_connector_zero_every_open_transaction_and_error_codes(gateway):
    async with charger(gateway.ocpp_port, "STATE") as cp, gateway.http() as http:
        await cp.result("BootNotification", BOOT)
        await cp.result("StatusNotification", status(0, "Available"))
        await cp.result("StatusNotification", status(1, "Charging"))
        await cp.result("StatusNotification", status(2, "Faulted", errorCode="OverCurrentFailure"))
        ids = [(await cp.result("StartTransaction", {"connectorId": c, "idTag": "T", "meterStart": 0,
                                                     "timestamp": clock.iso()}))["transactionId"] for c in (1, 2)]
        body = (await http.get("/api/chargers/STATE")).json()
        details = {c["connectorId"]: (c["status"], c["errorCode"]) for c in body["connectorDetails"]}
        assert details == {0: ("Available", "NoError"), 1: ("Charging", "NoError"),
                           2: ("Faulted", "OverCurrentFailure")}
        open_ = (await http.get("/api/transactions", params={"cpId": "STATE", "state": "open"})).json()["records"]
        assert sorted(t["id"] for t in open_) == sorted(ids)


@attrs.frozen
class Notice:
    """A feature's own event: any event with live() published on the hub reaches the stream."""
    cp_id: str | None
    text: str

    def live(self) -> tuple[str, str | None, dict]:
        return "notice", self.cp_id, {"cpId": self.cp_id, "text": self.text}


async def test_a_features_own_events_reach_the_stream_and_platform_wide_ones_only_platform_users(gateway):
    await _operator(gateway.store, "opn")
    await gateway.store.users.put("root", await hash_password(PASSWORD), "admin", clock.iso())
    hub = gateway.running.chargers.events
    async with gateway.http() as http, AsyncExitStack() as stack:
        http.auth = ("admin@opn", PASSWORD)
        tenant = await stack.enter_async_context(live(http, topics="notice"))
        http.auth = ("root", PASSWORD)
        platform = await stack.enter_async_context(live(http, topics="notice"))
        for stream in (tenant, platform):
            await stream.named("caughtUp")
        hub.publish(Notice(None, "disk nearly full"))  # platform-wide
        hub.publish(Notice("opn-CP", "door open"))  # about the tenant's charger; in order after the first
        assert (await platform.named("notice")).data == {"cpId": None, "text": "disk nearly full"}
        assert (await platform.named("notice")).data == {"cpId": "opn-CP", "text": "door open"}
        assert (await tenant.named("notice")).data == {"cpId": "opn-CP", "text": "door open"}
        assert [e.name for e in tenant.seen] == ["hello", "caughtUp", "notice"]
