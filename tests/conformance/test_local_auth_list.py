"""OCTT 1.6 central-system test cases, Local Authorization List Management profile (6 cases)."""

from __future__ import annotations

import pytest

from gateway.simulator.charger import Faults
from tests.helpers import assert_schema_valid
from tests.responder import CallErrorAnswer

from .support import add_tag, ago, get_ok, octt, post_ok, simulated

pytestmark = pytest.mark.octt("Local authorization list")


async def local_lists(http, cp_id: str) -> list[dict]:
    return (await get_ok(http, f"/api/chargers/{cp_id}/local-lists"))["records"]


async def test_TC_042_1_get_local_list_version_not_supported(gateway):
    async with octt(gateway, "TC0421") as cp, gateway.http() as http:
        # A charger without a local list answers listVersion -1 (OCPP 1.6, 6.42).
        cp.answers["GetLocalListVersion"] = {"listVersion": -1}
        body = await get_ok(http, "/api/ocpp/localList/version/TC0421")
        assert body["result"] == {"listVersion": -1} and body["cpId"] == "TC0421"
        assert cp.received[0][1:] == ["GetLocalListVersion", {}]
        # One that does not implement the message at all answers a CALLERROR: 502 call_error.
        cp.answers["GetLocalListVersion"] = CallErrorAnswer("NotSupported", "no local list")
        r = await http.get("/api/ocpp/localList/version/TC0421")
        assert r.status_code == 502, r.text
        assert (r.json()["error"], r.json()["errorCode"]) == ("call_error", "NotSupported")


async def test_TC_042_2_get_local_list_version_empty(gateway):
    async with simulated(gateway, "TC0422") as sim, gateway.http() as http:
        body = await get_ok(http, "/api/ocpp/localList/version/TC0422")
        assert body["result"] == {"listVersion": 0}
        assert sim.received("GetLocalListVersion") == [{}]


async def test_TC_043_1_send_local_authorization_list_not_supported(gateway):
    async with octt(gateway, "TC0431") as cp, gateway.http() as http:
        cp.answers["SendLocalList"] = {"status": "NotSupported"}
        await add_tag(http, "TAG0431")
        body = await get_ok(http, "/api/ocpp/localList/full/TC0431")
        assert body["status"] == "failed" and body["result"] == {"status": "NotSupported"}
        assert "NotSupported" in body["message"]
        [record] = await local_lists(http, "TC0431")
        assert (record["status"], record["listVersion"], record["updateType"]) == \
            ("NotSupported", body["listVersion"], "Full")


async def test_TC_043_3_send_local_authorization_list_failed(gateway):
    async with simulated(gateway, "TC0433", Faults({"SendLocalList": "reject"})) as sim, gateway.http() as http:
        await add_tag(http, "TAG0433")
        body = await get_ok(http, "/api/ocpp/localList/full/TC0433")
        assert body["status"] == "failed" and body["result"] == {"status": "Failed"}
        assert sim.local_list == {} and sim.local_list_version == 0
        [record] = await local_lists(http, "TC0433")
        assert record["status"] == "Failed"


async def test_TC_043_4_send_local_authorization_list_full(gateway):
    async with simulated(gateway, "TC0434") as sim, gateway.http() as http:
        expiry = ago(days=1)
        await add_tag(http, "TAG0434-OK")
        await add_tag(http, "TAG0434-CHILD", parentIdTag="TAG0434-OK")
        await add_tag(http, "TAG0434-BLOCKED", status="Blocked")
        await add_tag(http, "TAG0434-OLD", expiryDate=expiry)
        body = await get_ok(http, "/api/ocpp/localList/full/TC0434")
        assert body["status"] == "success" and body["result"] == {"status": "Accepted"}
        assert body["listVersion"] >= 1 and body["entries"] == 4

        [sent] = sim.received("SendLocalList")
        assert_schema_valid("SendLocalList", sent, kind="request")
        assert (sent["updateType"], sent["listVersion"]) == ("Full", body["listVersion"])
        entries = {e["idTag"]: e for e in sent["localAuthorizationList"]}
        assert set(entries) == {"TAG0434-OK", "TAG0434-CHILD", "TAG0434-BLOCKED", "TAG0434-OLD"}
        assert all("idTagInfo" in e for e in entries.values())  # a Full list has idTagInfo everywhere
        assert entries["TAG0434-OK"]["idTagInfo"] == {"status": "Accepted"}
        assert entries["TAG0434-CHILD"]["idTagInfo"] == {"status": "Accepted", "parentIdTag": "TAG0434-OK"}
        assert entries["TAG0434-BLOCKED"]["idTagInfo"]["status"] == "Blocked"
        assert entries["TAG0434-OLD"]["idTagInfo"] == {"status": "Expired", "expiryDate": expiry}

        assert set(sim.local_list) == set(entries) and sim.local_list_version == body["listVersion"]
        version = await get_ok(http, "/api/ocpp/localList/version/TC0434")
        assert version["result"] == {"listVersion": body["listVersion"]}
        [record] = await local_lists(http, "TC0434")
        assert (record["status"], record["updateType"], len(record["entries"])) == ("Accepted", "Full", 4)


async def test_TC_043_5_send_local_authorization_list_differential(gateway):
    async with simulated(gateway, "TC0435") as sim, gateway.http() as http:
        await add_tag(http, "TAG0435-A")
        await add_tag(http, "TAG0435-B")
        full = await get_ok(http, "/api/ocpp/localList/full/TC0435")
        assert full["status"] == "success"

        change = [{"idTag": "TAG0435-C", "idTagInfo": {"status": "Accepted"}},
                  {"idTag": "TAG0435-A", "idTagInfo": {"status": "Blocked"}},
                  {"idTag": "TAG0435-B"}]  # no idTagInfo: remove it
        diff = await post_ok(http, "/api/ocpp/localList/diff/TC0435", {"localAuthorisationList": change})
        assert diff["result"] == {"status": "Accepted"}
        assert diff["listVersion"] > full["listVersion"]  # the version goes up
        [_, sent] = sim.received("SendLocalList")
        assert (sent["updateType"], sent["listVersion"], sent["localAuthorizationList"]) == \
            ("Differential", diff["listVersion"], change)
        assert sim.local_list == {"TAG0435-A": {"status": "Blocked"}, "TAG0435-C": {"status": "Accepted"}}
        assert sim.local_list_version == diff["listVersion"]

        # The next differential goes up again; an operator-given version that is not higher is refused.
        again = await post_ok(http, "/api/ocpp/localList/diff/TC0435",
                              {"localAuthorisationList": [{"idTag": "TAG0435-C"}]})
        assert again["result"] == {"status": "Accepted"} and again["listVersion"] > diff["listVersion"]
        stale = await post_ok(http, "/api/ocpp/localList/diff/TC0435",
                              {"listVersion": 1, "localAuthorisationList": [{"idTag": "TAG0435-A"}]})
        assert stale["result"] == {"status": "VersionMismatch"}
        records = await local_lists(http, "TC0435")
        assert [(r["updateType"], r["status"]) for r in records] == [
            ("Differential", "VersionMismatch"), ("Differential", "Accepted"), ("Differential", "Accepted"),
            ("Full", "Accepted")]
