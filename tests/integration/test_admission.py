"""Which chargers get in, against a real gateway: one failing charger does not lock out its neighbours,
invented ids cannot flood the database, IPv6 clients are held off too, lookalike ids are refused."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import clock
from gateway.chargepoint.charger_auth import hash_key
from gateway.chargepoint.handshake import HandshakeRefused
from tests.conftest import make_config, started
from tests.helpers import BOOT, assert_error, charger

KEY = "0123456789abcdef0123"


async def refusal(port: int, path: str, host: str = "127.0.0.1",
                  headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, str]:
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with trio_websocket.open_websocket(host, port, path, use_ssl=False, subprotocols=["ocpp1.6"],
                                                 extra_headers=headers or []):
            pass
    return refused.value.status_code, (refused.value.body or b"").decode()


def basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    import base64
    return [(b"Authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))]


async def test_a_charger_failing_its_password_does_not_lock_out_its_neighbours(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, failed_handshakes=3)) as gw:
        await gw.store.chargers.set_security("CP-A", 1, hash_key(KEY), clock.iso())
        for _ in range(3):
            assert (await refusal(gw.ocpp_port, "/ocpp/CP-A", headers=basic("CP-A", "wrong-key-wrong-key")))[0] == 401
        # Its neighbours behind the same address go on connecting, on either port ...
        async with charger(gw.ocpp_port, "CP-B") as cp:
            assert (await cp.result("BootNotification", BOOT))["status"] == "Accepted"
        async with charger(gw.http_port, "CP-C") as cp:
            assert (await cp.result("BootNotification", BOOT))["status"] == "Accepted"
        # ... while CP-A is held off, even with the right key, until its minute has passed.
        status, reason = await refusal(gw.ocpp_port, "/ocpp/CP-A", headers=basic("CP-A", KEY))
        assert status == 429 and "CP-A" in reason


async def test_an_address_failing_many_ids_is_held_off(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, failed_handshake_ids=3)) as gw:
        for n in range(3):
            await gw.store.chargers.set_security(f"CP{n}", 1, hash_key(KEY), clock.iso())
            assert (await refusal(gw.ocpp_port, f"/ocpp/CP{n}", headers=basic(f"CP{n}", "guess-guess-guess")))[0] == 401
        status, reason = await refusal(gw.ocpp_port, "/ocpp/CP-B")
        assert status == 429 and "3 different" in reason


async def test_invented_ids_cannot_flood_the_database(nursery, tmp_path):
    # Refusals for the budget are no failed handshakes: were they counted, two ids would hold the address off.
    # The stranger is 203.0.113.9 behind a trusted proxy: this machine itself is not held to the budget.
    config = make_config(tmp_path, new_chargers_per_minute=5, failed_handshake_ids=2)
    config.trusted_proxies = ["127.0.0.1"]
    stranger = [(b"X-Forwarded-For", b"203.0.113.9")]
    async with started(nursery, config) as gw:
        await gw.store.chargers.set_registration("CP-KNOWN", "Accepted", clock.iso())  # set up beforehand
        for n in range(5):
            async with charger(gw.ocpp_port, headers=stranger, path=f"/ocpp/INVENTED-{n}") as cp:
                await cp.result("Heartbeat", {})
        status, reason = await refusal(gw.ocpp_port, "/ocpp/INVENTED-5", headers=stranger)
        assert status == 429 and "new charge points" in reason
        # the HTTP port shares the budget
        assert (await refusal(gw.http_port, "/ocpp/INVENTED-6", headers=stranger))[0] == 429
        assert await gw.store.chargers.get("INVENTED-5") is None  # nothing stored
        assert await gw.store.chargers.get("INVENTED-6") is None
        # A charger already known is no new one: it reconnects whatever the budget.
        async with charger(gw.ocpp_port, headers=stranger, path="/ocpp/CP-KNOWN") as cp:
            await cp.result("Heartbeat", {})
        # Nor is this machine: a simulator of many chargers on the bench gets them all in.
        for n in range(7):
            async with charger(gw.ocpp_port, f"LOCAL-{n}") as cp:
                await cp.result("Heartbeat", {})
        # (through the store: with a proxy on this machine trusted, this machine is not local to the API)
        assert len(await gw.store.chargers.list()) == 13


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_ipv6_clients_are_held_off_per_64(nursery, tmp_path):
    config = make_config(tmp_path, failed_handshakes=2)
    config.ocpp = "[::1]:0"
    async with started(nursery, config) as gw:
        await gw.store.chargers.set_security("CP-A", 1, hash_key(KEY), clock.iso())
        for _ in range(2):
            assert (await refusal(gw.ocpp_port, "/ocpp/CP-A", "::1", basic("CP-A", "wrong-key-wrong-key")))[0] == 401
        assert (await refusal(gw.ocpp_port, "/ocpp/CP-A", "::1", basic("CP-A", KEY)))[0] == 429


async def test_forwarded_ipv6_clients_are_counted_per_64(nursery, tmp_path):
    config = make_config(tmp_path, failed_handshakes=2)
    config.trusted_proxies = ["127.0.0.1"]
    async with started(nursery, config) as gw:
        await gw.store.chargers.set_security("CP-A", 1, hash_key(KEY), clock.iso())

        def via(address: str, password: str) -> list[tuple[bytes, bytes]]:
            return [(b"X-Forwarded-For", address.encode()), *basic("CP-A", password)]

        assert (await refusal(gw.ocpp_port, "/ocpp/CP-A", headers=via("2001:db8:1:2::1", "wrong-wrong-wrong")))[0] == 401
        assert (await refusal(gw.http_port, "/ocpp/CP-A", headers=via("2001:db8:1:2::2", "wrong-wrong-wrong")))[0] == 401
        assert (await refusal(gw.ocpp_port, "/ocpp/CP-A", headers=via("2001:db8:1:2::3", KEY)))[0] == 429
        async with charger(gw.ocpp_port, headers=via("2001:db8:1:3::1", KEY), path="/ocpp/CP-A") as cp:
            await cp.result("Heartbeat", {})  # another /64


async def test_lookalike_and_unreachable_ids_are_refused(gateway):
    async with charger(gateway.ocpp_port, "CP1") as cp:
        await cp.result("BootNotification", BOOT)
    for lookalike in ("\u0421\u04201", "cp1", "\uff23\uff30\uff11"):
        status, reason = await refusal(gateway.ocpp_port, "/ocpp/" + quote(lookalike))
        assert status == 409 and "'CP1'" in reason, reason
        assert await gateway.store.chargers.get(lookalike) is None
    for target in ("/ocpp/%20CP1%20", "/ocpp/%2E%2E", "/ocpp/Site%2F7"):
        assert (await refusal(gateway.http_port, target))[0] == 400
    async with gateway.http() as http:
        assert [c["chargePointId"] for c in (await http.get("/api/ocpp/connections")).json()] == ["CP1"]
    # The known charger itself still connects.
    async with charger(gateway.ocpp_port, "CP1") as cp:
        await cp.result("Heartbeat", {})


async def test_ids_stored_before_their_keys_existed_are_found(gateway):
    await gateway.store.db.run(lambda conn: conn.execute(
        "INSERT INTO charge_points (id, first_seen) VALUES ('OLD-1', '2026-01-01T00:00:00.000Z')"))
    status, reason = await refusal(gateway.ocpp_port, "/ocpp/" + quote("\u041eLD-1"))  # a Cyrillic O
    assert status == 409 and "'OLD-1'" in reason


async def test_routes_that_set_up_a_charger_use_the_same_id_rules(gateway):
    async with gateway.http() as http:
        r = await http.put("/api/chargers/Zu%CC%88rich/registration", json={"status": "Accepted"})
        assert r.status_code == 200 and r.json()["chargePointId"] == "Z\u00fcrich"  # stored as NFC
        assert (await http.get("/api/chargers/Z%C3%BCrich")).status_code == 200
        assert_error(await http.put("/api/chargers/%20CP9%20/registration", json={"status": "Accepted"}),
                     400, "bad_request")
        r = await http.put("/api/chargers/" + quote("Z\u00fcr\u0456ch") + "/registration",  # Cyrillic i
                           json={"status": "Accepted"})
        assert "'Zürich'" in assert_error(r, 409, "conflict")["message"]
        r = await http.put("/api/chargers/z%C3%BCrich/security", json={"securityProfile": 0})
        assert_error(r, 409, "conflict")
        assert [c["chargePointId"] for c in (await http.get("/api/ocpp/connections")).json()] == ["Zürich"]


async def test_connections_are_paged_on_request(gateway):
    for n in range(5):
        await gateway.store.chargers.set_registration(f"CP-{n}", "Accepted", clock.iso())
    async with charger(gateway.ocpp_port, "CP-3") as cp:
        await cp.result("Heartbeat", {})
        async with gateway.http() as http:
            whole = (await http.get("/api/ocpp/connections")).json()
            assert [c["chargePointId"] for c in whole] == ["CP-3", "CP-0", "CP-1", "CP-2", "CP-4"]
            first = (await http.get("/api/ocpp/connections", params={"size": 2})).json()
            assert (first["total"], first["page"], first["size"]) == (5, 1, 2)
            ids = [c["chargePointId"] for c in whole]  # (lastSeen may move between two requests)
            assert [c["chargePointId"] for c in first["records"]] == ids[:2]
            last = (await http.get("/api/ocpp/connections", params={"page": 3, "size": 2})).json()
            assert [c["chargePointId"] for c in last["records"]] == ids[4:]
            assert len((await http.get("/api/ocpp/connections", params={"page": 1})).json()["records"]) == 5
            assert_error(await http.get("/api/ocpp/connections", params={"size": 0}), 400, "bad_request")


def _ids_a_charger_might_send(count: int) -> list[str]:
    """Hypothesis's text, every kind of character and edge it knows (drawn here; the gateway is then asked
    about each in one running instance, which is what makes the check worth its time)."""
    drawn: list[str] = []

    @settings(max_examples=count, database=None, deadline=None)
    @given(st.text(min_size=1, max_size=50) | st.sampled_from(["..", ".", "%2F", "a/b", "a\\b", " x", "CP 1", "%"]))
    def draw(text: str) -> None:
        drawn.append(text)

    draw()
    return drawn


async def test_every_admitted_id_is_reachable_through_the_api(gateway):
    """Whatever id a charger's URL carries, if the handshake admits it, the API finds that charger under it."""
    service = gateway.running.chargers
    admitted = 0
    async with gateway.http() as http:
        for n, text in enumerate(_ids_a_charger_might_send(300)):
            address = f"10.0.{n >> 8}.{n & 255}"  # each its own new-charger budget
            try:
                cp_id, _ = await service.admit("/ocpp/" + quote(text, safe=""), ["ocpp1.6"], None, address)
            except HandshakeRefused as refused:
                assert refused.status in (400, 409), refused.reason
                continue
            admitted += 1
            await gateway.store.chargers.connected(cp_id, address, "ocpp1.6", clock.iso())  # as a session does
            for route in ("/api/chargers/{}", "/api/ocpp/status/{}", "/api/chargers/{}/security"):
                r = await http.get(route.format(quote(cp_id, safe="")))
                assert r.status_code == 200, (cp_id, route, r.text)
                assert r.json()["chargePointId"] == cp_id
    assert admitted >= 50  # the check saw many ids, not only refusals


async def test_a_charger_writing_its_id_decomposed_is_the_same_charger(gateway):
    await gateway.store.chargers.set_security("Z\u00fcrich", 1, hash_key(KEY), clock.iso())
    async with charger(gateway.ocpp_port, path="/ocpp/Zu%CC%88rich", headers=basic("Zu\u0308rich", KEY)) as cp:
        await cp.result("Heartbeat", {})
        assert "Z\u00fcrich" in gateway.registry
    status, _ = await refusal(gateway.ocpp_port, "/ocpp/Zu%CC%88rich")  # and it still needs its key
    assert status == 401
