"""The seed-compatible GET API (docs/api.md section 1) against a charger that answers like a real one."""

from __future__ import annotations

import trio

from gateway import clock
from tests.helpers import assert_schema_valid
from tests.responder import SILENCE, CallErrorAnswer, answering
from tests.waiting import until


async def test_remote_start_waits_for_the_transaction_it_causes(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        async def start_charging(payload):
            await cp.result("StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"})
            await cp.result("StartTransaction", {"connectorId": payload["connectorId"], "idTag": payload["idTag"],
                                                 "meterStart": 0, "timestamp": clock.iso()})

        cp.after["RemoteStartTransaction"] = start_charging
        r = await http.get("/api/ocpp/remoteStart/CP1",
                           params={"idTag": "TAG", "connectorId": "1", "waitForTransactionSeconds": "5"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["cpId"] == "CP1" and body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert body["transactionId"] > 0
        assert cp.received[-1][1:] == ["RemoteStartTransaction", {"idTag": "TAG", "connectorId": 1}]
        assert body["requestId"] == cp.received[-1][0]
        tx = await gateway.store.transactions.get(body["transactionId"])
        assert tx["remote_start_request_id"] == body["requestId"]


async def test_remote_start_accepted_but_no_transaction_is_a_504(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "TAG", "waitForTransactionSeconds": "0.3"})
        assert r.status_code == 504
        body = r.json()
        assert body["error"] == "timeout" and body["status"] == "Accepted" and body["transactionId"] is None
        await cp.result("Heartbeat", {})  # the charger's session is unharmed


async def test_remote_start_rejected_is_reported_as_the_charger_said(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers["RemoteStartTransaction"] = {"status": "Rejected"}
        r = await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "TAG", "waitForTransactionSeconds": "2"})
        assert r.status_code == 200 and r.json()["status"] == "Rejected" and "transactionId" not in r.json()


async def test_remote_stop_and_wait_false(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "42"})
        assert r.status_code == 200 and r.json()["status"] == "Accepted"
        assert cp.received[-1][1:] == ["RemoteStopTransaction", {"transactionId": 42}]
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "43", "wait": "false"})
        assert r.status_code == 200 and set(r.json()) == {"requestId", "cpId"}
        request_id = r.json()["requestId"]
        await until(lambda: _answered(gateway, request_id))


async def _answered(gateway, request_id: str) -> bool:
    return (await gateway.store.commands.get(request_id) or {}).get("outcome") == "answered"


async def test_local_list_full_is_built_from_the_id_tag_table(gateway):
    await gateway.store.id_tags.put("A1", "Accepted", None, None, at=clock.iso())
    await gateway.store.id_tags.put("B2", "Blocked", None, None, at=clock.iso())
    await gateway.store.id_tags.put("C3", "Accepted", "2001-01-01T00:00:00Z", "A1", at=clock.iso())
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        r1 = await http.get("/api/ocpp/localList/full/CP1")
        r2 = await http.get("/api/ocpp/localList/full/CP1")
        cp.answers["SendLocalList"] = {"status": "VersionMismatch"}
        r3 = await http.get("/api/ocpp/localList/full/CP1")
    assert r1.status_code == 200 and r1.json()["status"] == "success"
    assert [r1.json()["listVersion"], r2.json()["listVersion"], r3.json()["listVersion"]] == [1, 2, 3]
    assert r3.json()["status"] == "failed" and r3.json()["result"] == {"status": "VersionMismatch"}
    sent = cp.received[0][2]
    assert_schema_valid("SendLocalList", sent, "request")
    assert sent["updateType"] == "Full"
    assert sent["localAuthorizationList"] == [
        {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "B2", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "C3", "idTagInfo": {"status": "Expired", "expiryDate": "2001-01-01T00:00:00.000Z",
                                      "parentIdTag": "A1"}},
    ]
    stored = await gateway.store.local_lists.list("CP1")
    assert [(s["list_version"], s["status"]) for s in stored] == [(3, "VersionMismatch"), (2, "Accepted"),
                                                                    (1, "Accepted")]


async def test_local_list_diff_and_version(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers["GetLocalListVersion"] = {"listVersion": 7}
        r = await http.get("/api/ocpp/localList/version/CP1")
        assert r.status_code == 200 and r.json() == {"result": {"listVersion": 7}, "cpId": "CP1",
                                                     "requestId": cp.received[-1][0]}
        body = {"listVersion": 8, "localAuthorisationList": [{"idTag": "NEW", "idTagInfo": {"status": "Accepted"}},
                                                             {"idTag": "OLD"}]}
        r = await http.post("/api/ocpp/localList/diff/CP1", json=body)
        assert r.status_code == 200 and r.json()["result"] == {"status": "Accepted"}
        assert cp.received[-1][2] == {"listVersion": 8, "updateType": "Differential",
                                      "localAuthorizationList": body["localAuthorisationList"]}
        r = await http.post("/api/ocpp/localList/diff/CP1", json={"listVersion": 9})
        assert r.status_code == 400 and r.json()["error"] == "bad_request"


async def test_errors_follow_the_contract(gateway):
    async with answering(gateway.ocpp_port, "CP1") as cp, gateway.http() as http:
        cp.answers["RemoteStopTransaction"] = CallErrorAnswer("InternalError", "relay stuck", {"relay": 2})
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "1"})
        assert r.status_code == 502
        body = r.json()
        assert (body["error"], body["errorCode"], body["errorDescription"], body["errorDetails"]) == \
            ("call_error", "InternalError", "relay stuck", {"relay": 2})

        cp.answers["RemoteStopTransaction"] = SILENCE
        with trio.fail_after(5):
            async with trio.open_nursery() as n:
                result = {}

                async def slow():
                    result["r"] = await http.get("/api/ocpp/remoteStop/CP1",
                                                 params={"transactionId": "1", "timeoutSeconds": "0.5"})
                n.start_soon(slow)
                # The charger's own traffic keeps flowing while the command waits.
                await cp.result("Heartbeat", {})
                await cp.result("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
        assert result["r"].status_code == 504 and result["r"].json()["error"] == "timeout"

        r = await http.get("/api/ocpp/remoteStop/CP1")
        assert r.status_code == 400 and "transactionId" in r.json()["message"]
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "x"})
        assert r.status_code == 400 and "transactionId" in r.json()["message"]
        r = await http.get("/api/ocpp/remoteStart/CP1")
        assert r.status_code == 400 and "idTag" in r.json()["message"]
        r = await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "X" * 21})
        assert r.status_code == 400 and r.json()["field"] == "idTag"
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "1", "timeoutSeconds": "-1"})
        assert r.status_code == 400 and "timeoutSeconds" in r.json()["message"]
    async with gateway.http() as http:
        r = await http.get("/api/ocpp/remoteStop/CP1", params={"transactionId": "1"})
        assert r.status_code == 404 and r.json()["error"] == "not_connected"
        r = await http.get("/api/ocpp/remoteStop/NEVER", params={"transactionId": "1"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    outcomes = [c["outcome"] for c in (await gateway.store.commands.list("CP1"))["records"]]
    assert outcomes == ["timeout", "call_error"]
