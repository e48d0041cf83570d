"""Who may connect as a charger is the admin's to change, through every route that reaches a charger:
ChangeConfiguration of SecurityProfile or AuthorizationKey needs the admin role, never lowers the
profile, and a key must be hard to guess."""

from __future__ import annotations

from gateway import clock
from gateway.http.accounts import hash_password
from tests.conformance.test_security import NEW_KEY, OLD_KEY, _basic, _connect_status
from tests.helpers import assert_error
from tests.integration.test_auth import basic, config_with
from tests.responder import answering
from tests.conftest import started

ADMIN = basic("admin", "s3cret-pass")
OPERATOR = basic("oscar", "password-oscar")


def _changes(cp) -> list[dict]:
    return [payload for _, action, payload in cp.received if action == "ChangeConfiguration"]


async def test_an_operator_changes_no_security_key_through_any_route(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        await gw.store.users.put("oscar", await hash_password("password-oscar"), "operator", clock.iso())
        r = await http.put("/api/chargers/SEC1/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY},
                           headers=ADMIN)
        assert r.status_code == 200
        async with answering(gw.ocpp_port, "SEC1", headers=_basic("SEC1", OLD_KEY)) as cp:
            attempts = [
                http.post("/api/ocpp/call/SEC1/ChangeConfiguration", json={"key": "SecurityProfile", "value": "0"},
                          headers=OPERATOR),
                http.get("/api/ocpp/call/SEC1/ChangeConfiguration", params={"key": "SecurityProfile", "value": "0"},
                         headers=OPERATOR),
                http.get("/api/ocpp/changeConfiguration/SEC1", params={"key": "SecurityProfile", "value": "0"},
                         headers=OPERATOR),
                http.post("/api/ocpp/changeConfiguration/SEC1", json={"key": "AuthorizationKey", "value": NEW_KEY},
                          headers=OPERATOR),
                http.get("/api/ocpp/changeConfiguration/SEC1",
                         params={"key": "AuthorizationKey", "value": NEW_KEY, "wait": "false"}, headers=OPERATOR),
                # Configuration keys are compared without case (CiString), and chargers may trim them.
                http.get("/api/ocpp/changeConfiguration/SEC1", params={"key": "securityprofile", "value": "0"},
                         headers=OPERATOR),
                http.post("/api/ocpp/call/SEC1/ChangeConfiguration",
                          json={"key": " AUTHORIZATIONKEY", "value": NEW_KEY}, headers=OPERATOR),
                http.post("/api/ocpp/call/SEC1/InstallCertificate",
                          json={"certificateType": "CentralSystemRootCertificate", "certificate": "-----BEGIN"},
                          headers=OPERATOR),
            ]
            for attempt in attempts:
                body = assert_error(await attempt, 403, "forbidden")
                assert "admin" in body["message"]
            # Other keys are the operator's as before.
            r = await http.get("/api/ocpp/changeConfiguration/SEC1", params={"key": "HeartbeatInterval", "value": "30"},
                               headers=OPERATOR)
            assert r.status_code == 200 and r.json()["status"] == "Accepted"
            assert _changes(cp) == [{"key": "HeartbeatInterval", "value": "30"}]  # nothing else reached it
            assert [action for _, action, _ in cp.received] == ["ChangeConfiguration"]
        security = (await http.get("/api/chargers/SEC1/security", headers=ADMIN)).json()
        assert security["securityProfile"] == 1
        # Still profile 1 with the old key: nobody connects as SEC1 without it.
        assert await _connect_status(gw.ocpp_port, "SEC1", None) == 401
        assert await _connect_status(gw.ocpp_port, "SEC1", _basic("SEC1", NEW_KEY)) == 401
        assert await _connect_status(gw.ocpp_port, "SEC1", _basic("SEC1", OLD_KEY)) == 101


async def test_an_admin_raises_the_profile_by_command_but_lowers_it_only_on_the_record(gateway):
    async with gateway.http() as http:  # protected mode: this machine is admin
        await http.put("/api/chargers/SEC2/security", json={"securityProfile": 1, "authorizationKey": OLD_KEY})
        async with answering(gateway.ocpp_port, "SEC2", headers=_basic("SEC2", OLD_KEY)) as cp:
            for route, key in (("/api/ocpp/changeConfiguration/SEC2", "SecurityProfile"),
                               ("/api/ocpp/call/SEC2/ChangeConfiguration", "securityProfile")):
                r = await http.get(route, params={"key": key, "value": "0"})
                body = assert_error(r, 400, "bad_request")
                assert "only be raised" in body["message"] and "PUT /api/chargers/SEC2/security" in body["message"]
            assert _changes(cp) == []
        assert await _connect_status(gateway.ocpp_port, "SEC2", None) == 401
        # Exactly what an admin asks for when a charger must go back to profile 0.
        r = await http.put("/api/chargers/SEC2/security", json={"securityProfile": 0})
        assert r.status_code == 200 and r.json()["securityProfile"] == 0
    assert await _connect_status(gateway.ocpp_port, "SEC2", None) == 101


async def test_a_weak_key_is_refused_wherever_a_key_is_set(gateway):
    async with gateway.http() as http:
        for weak in ("aaaaaaaaaaaaaaaa", "abcabcabcabcabcabcab", "0101010101010101", "aaaaaaaaaaaaaaab"):
            body = assert_error(await http.put("/api/chargers/SEC3/security",
                                               json={"securityProfile": 1, "authorizationKey": weak}),
                                400, "bad_request")
            assert "too easy to guess" in body["message"] and weak not in body["message"]
        assert_error(await http.get("/api/chargers/SEC3/security"), 404, "not_found")  # nothing was kept
        async with answering(gateway.ocpp_port, "SEC3") as cp:
            for key in ("AuthorizationKey", "authorizationkey"):
                r = await http.get("/api/ocpp/changeConfiguration/SEC3", params={"key": key, "value": "a" * 20})
                body = assert_error(r, 400, "bad_request")
                assert "too easy to guess" in body["message"]
            assert _changes(cp) == []
            r = await http.get("/api/ocpp/changeConfiguration/SEC3", params={"key": "AuthorizationKey", "value": NEW_KEY})
            assert r.status_code == 200 and r.json()["status"] == "Accepted"


async def test_a_profile_the_gateway_cannot_serve_is_not_sent(gateway):
    async with gateway.http() as http, answering(gateway.ocpp_port, "SEC4") as cp:
        for value, why in (("2", "ocpp_tls"), ("1", "AuthorizationKey"), ("9", "0, 1, 2 or 3")):
            r = await http.get("/api/ocpp/changeConfiguration/SEC4", params={"key": "SecurityProfile", "value": value})
            assert why in assert_error(r, 400, "bad_request")["message"]
        assert _changes(cp) == []
