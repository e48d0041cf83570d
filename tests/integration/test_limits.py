"""Limits: what exceeding each one gets, and that the gateway carries on."""

from __future__ import annotations

import trio

from gateway.config import load
from tests.conftest import make_config, started
from tests.helpers import assert_error, charger
from tests.integration.test_connections import refused_status
from tests.responder import SILENCE, answering


async def test_calls_over_the_rate_get_a_callerror_and_the_session_goes_on(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, max_calls_per_second=2)) as gw:
        async with charger(gw.ocpp_port, "CP-RATE") as cp:
            ids = [f"r{i}" for i in range(10)]
            for uid in ids:
                await cp.send([2, uid, "Heartbeat", {}])
            replies = [await cp.wait_for(uid) for uid in ids]
            kinds = [r[0] for r in replies]
            assert kinds[:4] == [3, 3, 3, 3]  # the burst: twice the rate
            refused = [r for r in replies if r[0] == 4]
            assert refused and all(r[2] == "GenericError" and "per second" in r[3] for r in refused)
            await trio.sleep(1.1)
            await cp.result("Heartbeat", {})  # tokens came back


async def test_too_many_waiting_commands_are_refused_with_429(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, max_pending_commands=2)) as gw:
        async with answering(gw.ocpp_port, "CP-BUSY") as cp, gw.http() as http:
            cp.answers["ClearCache"] = SILENCE
            results = []

            async def command():
                results.append(await http.get("/api/ocpp/clearCache/CP-BUSY", params={"timeoutSeconds": "1"}))

            async with trio.open_nursery() as n:
                n.start_soon(command)
                n.start_soon(command)
                await trio.sleep(0.2)
                r = await http.get("/api/ocpp/clearCache/CP-BUSY", params={"timeoutSeconds": "1"})
                body = assert_error(r, 429, "too_many_requests")
                assert r.headers["Retry-After"] and "CP-BUSY" in body["message"]
            assert sorted(r.status_code for r in results) == [504, 504]
            cp.answers["ClearCache"] = {"status": "Accepted"}
            assert (await http.get("/api/ocpp/clearCache/CP-BUSY")).status_code == 200


async def test_an_oversized_http_body_is_413(nursery, tmp_path):
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "l.db"), "http_max_body_bytes": 1000})
    async with started(nursery, config) as gw, gw.http() as http:
        r = await http.post("/api/id-tags", content=b'{"idTag":"' + b"x" * 5000 + b'"}')
        assert_error(r, 413, "payload_too_large")
        assert (await http.post("/api/id-tags", json={"idTag": "OK"})).status_code == 201


async def test_a_client_that_never_completes_the_handshake_is_dropped(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, handshake_timeout=0.3)) as gw:
        stream = await trio.open_tcp_stream("127.0.0.1", gw.ocpp_port)
        with trio.fail_after(5):
            await stream.send_all(b"GET /ocpp/SLOW HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
            while await stream.receive_some(1000):
                pass  # until the gateway closes it
        async with charger(gw.ocpp_port, "CP-AFTER") as cp:
            await cp.result("Heartbeat", {})


async def test_page_sizes_above_the_configured_limit_are_400(nursery, tmp_path):
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                           "db": str(tmp_path / "p.db"), "http_max_page_size": 3})
    async with started(nursery, config) as gw, gw.http() as http:
        for tag in "ABCDE":
            assert (await http.post("/api/id-tags", json={"idTag": tag})).status_code == 201
        body = assert_error(await http.get("/api/id-tags", params={"size": 4}), 400, "bad_request")
        assert "size" in body["message"] and "3" in body["message"]
        assert_error(await http.get("/api/frames", params={"limit": 4}), 400, "bad_request")
        assert_error(await http.get("/api/order", params={"size": 4}), 400, "bad_request")
        page = (await http.get("/api/id-tags")).json()  # no size given: the limit is the default
        assert page["size"] == 3 and len(page["records"]) == 3 and page["total"] == 5


async def test_the_failed_handshake_limit_is_configured(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, failed_handshakes=2)) as gw:
        for _ in range(2):
            assert await refused_status(gw.ocpp_port, "/ocpp/CP-T", ["ocpp0.1"]) == 400
        assert await refused_status(gw.ocpp_port, "/ocpp/CP-T", ["ocpp1.6"]) == 429
