"""Handshake rules, replacement of a charger's connection, the watchdog, shutdown."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from tests.conftest import make_config, started
from tests.helpers import BOOT, charger, offline
from tests.waiting import until


async def refused_status(port: int, path: str, subprotocols: list[str]) -> int:
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with trio_websocket.open_websocket("127.0.0.1", port, path, use_ssl=False,
                                                 subprotocols=subprotocols):
            pass
    return refused.value.status_code


async def test_subprotocol_is_chosen_from_the_offered_list(gateway):
    async with charger(gateway.ocpp_port, subprotocols=["ocpp0.1", "ocpp1.6"]) as cp:
        assert cp.ws.subprotocol == "ocpp1.6"
        await cp.result("Heartbeat", {})


async def test_only_other_versions_offered_is_refused(gateway):
    assert await refused_status(gateway.ocpp_port, "/ocpp/CP1", ["ocpp0.1"]) == 400


async def test_no_subprotocol_is_accepted_unless_required(nursery, tmp_path, gateway):
    async with charger(gateway.ocpp_port, subprotocols=[]) as cp:
        assert cp.ws.subprotocol is None
        await cp.result("Heartbeat", {})
    async with started(nursery, make_config(tmp_path / "strict", require_subprotocol=True)) as gw:
        assert await refused_status(gw.ocpp_port, "/ocpp/CP1", []) == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [("/ocpp/", 404), ("/ocpp/" + "x" * 49, 400), ("/ocpp/bad%0Aid", 400), ("/ocpp/nul%00", 400)],
)
async def test_bad_charger_ids_are_refused_before_the_upgrade(gateway, path, status):
    assert await refused_status(gateway.ocpp_port, path, ["ocpp1.6"]) == status
    assert await gateway.store.chargers.list() == []


async def test_charger_id_is_url_decoded(gateway):
    async with charger(gateway.ocpp_port, path="/ocpp/Site%20A%3F7") as cp:
        await cp.result("BootNotification", BOOT)
    assert (await gateway.store.chargers.get("Site A?7"))["vendor"] == "TestVendor"


async def test_second_connection_replaces_the_first(gateway):
    async with charger(gateway.ocpp_port, "CP-D") as old:
        await old.result("BootNotification", BOOT)
        first = gateway.registry.get("CP-D")
        async with charger(gateway.ocpp_port, "CP-D") as new:
            with pytest.raises(trio_websocket.ConnectionClosed):
                await old.receive()
            with trio.fail_after(5):
                await first.finished.wait()
            await new.result("Heartbeat", {})
            assert gateway.registry.get("CP-D") is not first and len(gateway.registry) == 1
            # The old session's teardown did not mark the charger offline.
            assert (await gateway.store.chargers.get("CP-D"))["online"] == 1
    await until(lambda: len(gateway.registry) == 0)
    await until(lambda: offline(gateway.store, "CP-D"))  # the record follows: written off the hot path


async def test_silent_charger_is_closed_and_marked_offline(nursery, tmp_path):
    config = make_config(tmp_path, heartbeat_interval=1, idle_heartbeats=0.3, ping_interval=0)
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP-Q") as cp:
            await cp.result("BootNotification", BOOT)
            with pytest.raises(trio_websocket.ConnectionClosed):
                await cp.receive(timeout=5)  # says nothing more: the gateway hangs up
        await until(lambda: "CP-Q" not in gw.registry)
        stored = await until(lambda: offline(gw.store, "CP-Q"))  # the record follows: written off the hot path
        assert "no frame or pong" in stored["disconnect_reason"]


async def test_answered_pings_keep_a_quiet_charger_connected(nursery, tmp_path):
    # idle limit = 1 * 0.3 + 0.1 s; pings every 0.1 s, answered by the client library.
    config = make_config(tmp_path, heartbeat_interval=1, idle_heartbeats=0.3, ping_interval=0.1)
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP-Z") as cp:
            await trio.sleep(1.0)
            assert "CP-Z" in gw.registry
            await cp.result("Heartbeat", {})


async def test_shutdown_closes_every_charger_with_1001(nursery, config):
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP-1") as one, charger(gw.ocpp_port, "CP-2") as two:
            await one.result("Heartbeat", {})
            await two.result("Heartbeat", {})
            gw.shutdown.set()
            for cp in (one, two):
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await cp.receive()
                assert closed.value.reason.code == 1001
        await gw.stop()


async def test_charger_can_connect_on_the_http_port_too(gateway):
    async with charger(gateway.http_port, "CP-H", subprotocols=["ocpp1.5", "ocpp1.6"]) as cp:
        assert cp.ws.subprotocol == "ocpp1.6"
        boot = await cp.result("BootNotification", BOOT)
        assert boot["status"] == "Accepted"
        start = await cp.result("StartTransaction", {
            "connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
        assert "CP-H" in gateway.registry
        # Commands reach a charger on the HTTP port as well.
        async with trio.open_nursery() as n:
            async def answer():
                call = await cp.next_call()
                await cp.send([3, call[1], {"status": "Accepted"}])
            n.start_soon(answer)
            result = await gateway.registry.call("CP-H", "RemoteStopTransaction",
                                                 {"transactionId": start["transactionId"]}, timeout=5)
        assert result == {"status": "Accepted"}
    await until(lambda: "CP-H" not in gateway.registry)
    await until(lambda: offline(gateway.store, "CP-H"))


@pytest.mark.parametrize(("path", "subprotocols"), [("/ocpp/CP1", ["ocpp0.1"]), ("/ocpp/" + "y" * 49, ["ocpp1.6"])])
async def test_http_port_refuses_like_the_ocpp_port(gateway, path, subprotocols):
    assert await refused_status(gateway.http_port, path, subprotocols) == 400


async def test_http_port_binary_frame_closes_with_1003(gateway):
    async with charger(gateway.http_port, "CP-HB") as cp:
        await cp.ws.send_message(b"\x00")
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await cp.receive()
        assert closed.value.reason.code == 1003


async def test_http_port_oversized_frame_closes_with_1009(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, max_frame_bytes=1024)) as gw:
        async with charger(gw.http_port, "CP-HO") as cp:
            await cp.send([2, "big", "DataTransfer", {"vendorId": "V", "data": "x" * 4096}])
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await cp.receive()
            assert closed.value.reason.code == 1009


async def test_shutdown_closes_http_port_chargers_with_1001(nursery, config):
    async with started(nursery, config) as gw:
        async with charger(gw.http_port, "CP-HS") as cp:
            await cp.result("Heartbeat", {})
            gw.shutdown.set()
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await cp.receive()
            assert closed.value.reason.code == 1001
        await gw.stop()


async def test_an_address_whose_handshakes_keep_failing_is_held_off(gateway):
    for _ in range(10):
        assert await refused_status(gateway.ocpp_port, "/ocpp/CP-T", ["ocpp0.1"]) == 400
    # Now even a correct handshake from this address is refused for a while, at once.
    assert await refused_status(gateway.ocpp_port, "/ocpp/CP-T", ["ocpp1.6"]) == 429
