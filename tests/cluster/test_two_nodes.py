"""Two `gateway serve` processes on one PostgreSQL, chargers spread over both: every command route driven
through the node that does not hold the charger, a charger moving between nodes mid-run, one node killed with
SIGKILL. Counted at the simulated chargers: nothing acknowledged is lost, no command arrives twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import trio

from gateway.http.commands_api import SHORTCUTS
from tests.cluster.counting import CountingCharger, Link
from tests.cluster.nodes import Node, start_node
from tests.waiting import until

PROFILE = {"chargingProfileId": 7, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
           "chargingProfileKind": "Absolute",
           "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}

# shortcut -> its query
SHORTCUT_QUERIES: dict[str, dict[str, str]] = {
    "reset": {"type": "Hard"},
    "unlock": {"connectorId": "1"},
    "changeAvailability": {"connectorId": "0", "type": "Operative"},
    "getConfiguration": {"key": "HeartbeatInterval"},
    "changeConfiguration": {"key": "HeartbeatInterval", "value": "300"},
    "clearCache": {},
    "triggerMessage": {"requestedMessage": "Heartbeat"},
    "dataTransfer": {"vendorId": "com.example", "messageId": "Ping", "data": "x"},
    "reserveNow": {"connectorId": "1", "expiryDate": "2030-01-01T10:00:00Z", "idTag": "TAG1"},
    "cancelReservation": {"reservationId": "77"},
    "setChargingProfile": {"connectorId": "1", "csChargingProfiles": json.dumps(PROFILE)},
    "clearChargingProfile": {"id": "7"},
    "getCompositeSchedule": {"connectorId": "1", "duration": "3600"},
    "getDiagnostics": {"location": "ftp://diag.example.com/upload"},
    "updateFirmware": {"location": "https://fw.example.com/fw-2.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
}


def command_routes(cp_id: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, query or body, the action the charger must receive) of every command route."""
    assert set(SHORTCUT_QUERIES) == set(SHORTCUTS)
    routes: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", f"/api/ocpp/{name}/{cp_id}", query, SHORTCUTS[name]) for name, query in SHORTCUT_QUERIES.items()]
    entries = [{"idTag": "T1", "idTagInfo": {"status": "Accepted"}}]
    routes += [
        ("POST", f"/api/ocpp/reset/{cp_id}", {"type": "Soft"}, "Reset"),
        ("GET", f"/api/ocpp/remoteStart/{cp_id}", {"idTag": "TAG1", "connectorId": "1"}, "RemoteStartTransaction"),
        ("GET", f"/api/ocpp/remoteStop/{cp_id}", {"transactionId": "1"}, "RemoteStopTransaction"),
        ("GET", f"/api/ocpp/localList/version/{cp_id}", {}, "GetLocalListVersion"),
        ("GET", f"/api/ocpp/localList/full/{cp_id}", {}, "SendLocalList"),
        ("POST", f"/api/ocpp/localList/diff/{cp_id}", {"localAuthorisationList": entries}, "SendLocalList"),
        ("GET", f"/api/ocpp/call/{cp_id}/ClearCache", {}, "ClearCache"),
        ("POST", f"/api/ocpp/call/{cp_id}/DataTransfer", {"vendorId": "x"}, "DataTransfer"),
    ]
    return routes


async def drive(node: Node, method: str, path: str, given: dict[str, Any]) -> Any:
    async with node.http() as http:
        if method == "GET":
            return await http.get(path, params={**given, "timeoutSeconds": "10"})
        return await http.post(path, params={"timeoutSeconds": "10"}, json=given)


async def reachable(node: Node, cp_id: str, acknowledged: dict[str, set[str]]) -> bool:
    """Whether a command through `node` reaches the charger (GetLocalListVersion: it changes nothing)."""
    r = await drive(node, "GET", f"/api/ocpp/localList/version/{cp_id}", {})
    if r.status_code == 200:
        acknowledged.setdefault(cp_id, set()).add(r.json()["requestId"])
    return r.status_code == 200


async def online(node: Node, cp_id: str) -> bool:
    async with node.http() as http:
        r = await http.get("/api/ocpp/connections")
    assert r.status_code == 200, r.text
    return any(c["chargePointId"] == cp_id and c["online"] for c in r.json())


async def offline(node: Node, cp_id: str) -> bool:
    """Offline in the node's view and in the records both nodes share."""
    async with node.http() as http:
        r = await http.get(f"/api/ocpp/status/{cp_id}")
    return r.status_code == 200 and not r.json()["online"] and r.json()["disconnectedAt"] is not None


async def test_two_nodes_carry_every_command_route_through_a_move_and_a_kill(tmp_path: Path, pg_url: str) -> None:
    a = await start_node(tmp_path / "a", pg_url, "A")
    b = await start_node(tmp_path / "b", pg_url, "B")
    acknowledged: dict[str, set[str]] = {}  # charger -> request ids answered 200 by a node
    chargers = {cp: CountingCharger(cp) for cp in ("CP1", "CP2", "CP3", "CP4")}
    try:
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                links: dict[str, Link] = {}
                for cp_id, node in (("CP1", a), ("CP2", a), ("CP3", b), ("CP4", b)):
                    links[cp_id] = await chargers[cp_id].connect(nursery, node.ocpp_port)
                other = {"CP1": b, "CP2": b, "CP3": a, "CP4": a}
                for cp_id, node in other.items():  # the other node knows who holds it
                    await until(lambda: reachable(node, cp_id, acknowledged), timeout=10)
                    assert await online(node, cp_id)  # and says it is online

                # Every command route, asked of the node that does not hold the charger.
                for cp_id in ("CP1", "CP3"):
                    for method, path, given, action in command_routes(cp_id):
                        before = len(chargers[cp_id].received)
                        r = await drive(other[cp_id], method, path, given)
                        assert r.status_code == 200, (path, r.text)
                        request_id = r.json()["requestId"]
                        acknowledged.setdefault(cp_id, set()).add(request_id)
                        arrived = chargers[cp_id].received[before:]
                        assert [(u, act) for u, act, _ in arrived] == [(request_id, action)], path

                # CP1 moves from A to B while its socket to A is still open: A closes the stale one.
                moved = await chargers["CP1"].connect(nursery, b.ocpp_port)
                with trio.fail_after(10):
                    await links["CP1"].closed.wait()
                assert links["CP1"].close_reason == "connected again through another node"
                links["CP1"] = moved
                r = await drive(a, "GET", "/api/ocpp/reset/CP1", {"type": "Soft"})  # through A, to B now
                assert r.status_code == 200, r.text
                acknowledged["CP1"].add(r.json()["requestId"])
                assert chargers["CP1"].received[-1][0] == r.json()["requestId"]

                # Commands to CP2 (on A) through B, until A is killed in their midst.
                stop = trio.Event()
                outcomes: list[int] = []

                async def keep_sending() -> None:
                    while not stop.is_set():
                        r = await drive(b, "GET", "/api/ocpp/clearCache/CP2", {})
                        outcomes.append(r.status_code)
                        if r.status_code == 200:
                            acknowledged.setdefault("CP2", set()).add(r.json()["requestId"])
                        else:  # A gone: not connected (404), or a command A had claimed (504, sent unknown)
                            assert r.status_code in (404, 504), r.text
                            await trio.sleep(0.05)

                nursery.start_soon(keep_sending)
                await until(lambda: len(chargers["CP2"].received) >= 20, timeout=30)
                at_kill = len(outcomes)
                a.process.send_signal(signal.SIGKILL)
                await a.process.wait()
                with trio.fail_after(10):
                    await links["CP2"].closed.wait()
                # A's lease runs out: B's sweep ends A's ownership, and CP2 is offline for every node.
                await until(lambda: offline(b, "CP2"), timeout=20)
                links["CP2"] = await chargers["CP2"].connect(nursery, b.ocpp_port)
                # Commands through B reach CP2 on B: those asked before it reconnected too (still queued, never
                # sent: handed to its new connection), then new ones.
                await until(lambda: len(outcomes) > at_kill + 3 and outcomes[-1] == 200, timeout=30)
                stop.set()
                nursery.cancel_scope.cancel()  # the chargers go
    finally:
        await a.stop()
        await b.stop()
    for cp_id, charger in chargers.items():
        ids = charger.unique_ids()
        assert len(ids) == len(set(ids)), f"{cp_id} received a command twice"
        assert acknowledged.get(cp_id, set()) <= set(ids), f"{cp_id}: a command answered 200 never arrived"
    assert 200 in outcomes and len(acknowledged["CP2"]) >= 20
    print("commands to CP2 through B, by HTTP status:", {code: outcomes.count(code) for code in set(outcomes)})

