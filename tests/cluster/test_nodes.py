"""Two gateway nodes in one process on one PostgreSQL: ownership of chargers and commands carried between
nodes, counted at the charger."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import trio
import trio_websocket

from tests.cluster.conftest import node_config
from tests.conftest import started
from tests.helpers import BOOT, assert_error, charger
from tests.responder import SILENCE, CallErrorAnswer, answering
from tests.waiting import until


async def test_a_command_asked_of_the_other_node_reaches_the_charger_once(nursery: trio.Nursery, tmp_path: Path,
                                                                          pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1") as cp, b.http() as http:
            await until(lambda: "CP1" in b.registry)  # B knows A holds it
            r = await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "Accepted"
            assert [c[1:] for c in cp.received] == [["Reset", {"type": "Soft"}]]
            assert r.json()["requestId"] == cp.received[0][0]  # the unique id the charger saw


async def test_what_the_charger_answers_reaches_the_caller_of_the_other_node(nursery: trio.Nursery, tmp_path: Path,
                                                                             pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1") as cp, b.http() as http:
            await until(lambda: "CP1" in b.registry)
            cp.answers["ClearCache"] = CallErrorAnswer("NotSupported", "no cache here", {"why": "none"})
            cp.answers["Reset"] = SILENCE
            r = await http.get("/api/ocpp/clearCache/CP1")
            body = assert_error(r, 502, "call_error")
            assert (body["errorCode"], body["errorDescription"], body["errorDetails"]) == (
                "NotSupported", "no cache here", {"why": "none"})
            r = await http.get("/api/ocpp/reset/CP1", params={"type": "Soft", "timeoutSeconds": "1"})
            body = assert_error(r, 504, "timeout")
            assert body["sent"] is True and body["requestId"] == cp.received[-1][0]
            # Recorded once, by the node asked, in the records both share.
            r = await http.get("/api/commands", params={"cpId": "CP1"})
            outcomes = {c["requestId"]: c["outcome"] for c in r.json()["records"]}
            assert outcomes == {cp.received[0][0]: "call_error", cp.received[1][0]: "timeout"}
            assert [c[1] for c in cp.received] == ["ClearCache", "Reset"]


async def test_a_charger_no_node_holds_is_not_connected_on_any(nursery: trio.Nursery, tmp_path: Path,
                                                               pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1"):
            await until(lambda: "CP1" in b.registry)
        await until(lambda: "CP1" not in b.registry and "CP1" not in a.registry)
        async with b.http() as http:
            assert_error(await http.get("/api/ocpp/reset/CP1"), 404, "not_connected")
            assert_error(await http.get("/api/ocpp/reset/NEVER"), 404, "not_found")


async def test_a_charger_under_test_on_its_node_refuses_commands_asked_of_the_other(nursery: trio.Nursery,
                                                                                   tmp_path: Path, pg_url: str):
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1") as cp, b.http() as http:
            await until(lambda: "CP1" in b.registry)
            chargers = a.running.chargers  # as a charger test run on A takes it (gateway/chargertest/runner.py)
            chargers.take_over("CP1", chargers.handlers_for("CP1"), None, "charger test run R1 (core) is using it")
            r = await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})
            body = assert_error(r, 409, "conflict")
            assert "charger test run R1 (core)" in body["message"]
            chargers.give_back("CP1")
            r = await http.get("/api/ocpp/clearCache/CP1")
            assert r.status_code == 200, r.text
            assert [c[1] for c in cp.received] == ["ClearCache"]  # the refused Reset never reached it


async def test_failed_logins_on_one_node_throttle_the_address_on_every_node(nursery: trio.Nursery, tmp_path: Path,
                                                                           pg_url: str) -> None:
    config_a = node_config(tmp_path, pg_url, "A")
    config_a.admin_password = "a-long-admin-password"
    async with started(nursery, config_a) as a, started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        attempts = a.config.auth.login_attempts
        async with a.http() as http:
            for _ in range(attempts):
                r = await http.post("/api/auth/login", json={"username": "admin", "password": "wrong"})
                assert r.status_code == 401
        await until(lambda: b.running.auth.throttled("127.0.0.1") > 0)
        async with b.http() as http:  # even the right password waits
            r = await http.post("/api/auth/login", json={"username": "admin", "password": "a-long-admin-password"})
            assert_error(r, 429, "too_many_requests")


async def test_a_remote_start_through_the_other_node_waits_for_its_transaction(nursery: trio.Nursery,
                                                                              tmp_path: Path, pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a, \
            started(nursery, node_config(tmp_path, pg_url, "B")) as b:
        async with answering(a.ocpp_port, "CP1") as cp, b.http() as http:
            await until(lambda: "CP1" in b.registry)

            async def start(payload: dict) -> None:
                await cp.result("StartTransaction", {"connectorId": 1, "idTag": payload["idTag"], "meterStart": 0,
                                                     "timestamp": "2026-01-01T00:00:00Z"})
            cp.after["RemoteStartTransaction"] = start
            r = await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "TAG1", "connectorId": "1",
                                                                    "waitForTransactionSeconds": "10"})
            assert r.status_code == 200, r.text
            r2 = await http.get("/api/transactions", params={"cpId": "CP1"})
            assert [t["id"] for t in r2.json()["records"]] == [r.json()["transactionId"]]
            assert r.json()["requestId"] == cp.received[0][0]


def _sql(url: str, statement: str, *args: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, args)
        return cursor.fetchall() if cursor.description else []


async def test_the_lease_closes_a_connection_a_newer_one_replaced_when_no_notice_said_so(
        nursery: trio.Nursery, tmp_path: Path, pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a:
        async with charger(a.ocpp_port, "CP1") as cp:
            await cp.result("BootNotification", BOOT)
            await until(lambda: _sql(pg_url, "SELECT node_id FROM cluster_owners WHERE cp_id = 'CP1'") == [("A",)])
            # Another node's newer connection, recorded without a notice (as if it were lost).
            _sql(pg_url, "UPDATE cluster_owners SET node_id = 'B', epoch = nextval('cluster_epoch') "
                         "WHERE cp_id = 'CP1'")
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await cp.receive(timeout=10)  # at A's next heartbeat
            assert closed.value.reason.reason == "connected again through another node"


async def test_a_node_whose_charger_was_swept_while_it_was_cut_off_claims_it_again(
        nursery: trio.Nursery, tmp_path: Path, pg_url: str) -> None:
    async with started(nursery, node_config(tmp_path, pg_url, "A")) as a:
        async with answering(a.ocpp_port, "CP1") as cp:
            await until(lambda: _sql(pg_url, "SELECT node_id FROM cluster_owners WHERE cp_id = 'CP1'") == [("A",)])
            [(before,)] = _sql(pg_url, "SELECT epoch FROM cluster_owners WHERE cp_id = 'CP1'")
            _sql(pg_url, "DELETE FROM cluster_owners WHERE cp_id = 'CP1'")  # what another node's sweep does
            await until(lambda: _sql(pg_url, "SELECT node_id FROM cluster_owners WHERE cp_id = 'CP1' "
                                             "AND epoch > %s", before) == [("A",)], timeout=10)
            async with a.http() as http:  # still connected, and commands still reach it
                r = await http.get("/api/ocpp/reset/CP1", params={"type": "Soft"})
            assert r.status_code == 200, r.text
            assert [c[1] for c in cp.received] == ["Reset"]
