"""A web page a person opens on a machine that reaches the gateway cannot drive it: DNS rebinding finds
no answer, and nothing changes for a request another site makes, while curl and the console work."""

from __future__ import annotations

from gateway import clock
from gateway.http.accounts import hash_password
from tests.conftest import make_config, started
from tests.helpers import assert_error
from tests.integration.test_auth import basic, config_with
from tests.responder import answering

REBIND = {"Host": "rebind.evil.example"}
CROSS_SITE = [{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},  # an <img> on another site
              {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example"}, {"Origin": "null"}]


async def test_dns_rebinding_gets_nothing_in_protected_mode(gateway):
    async with gateway.http() as http:
        for path in ("/api/chargers", "/api/ocpp/connections", "/web", "/api/auth/userinfo", "/openapi.json"):
            body = assert_error(await http.get(path, headers=REBIND), 421, "misdirected_request")
            assert "http_allowed_hosts" in body["message"]
        assert_error(await http.post("/api/id-tags", json={"idTag": "REBOUND"}, headers=REBIND),
                     421, "misdirected_request")
        assert (await http.get("/api/id-tags/REBOUND")).status_code == 404  # nothing was changed
        assert (await http.get("/health", headers=REBIND)).status_code == 200  # load balancers use any name
        for host in (f"localhost:{gateway.http_port}", f"127.0.0.1:{gateway.http_port}"):
            assert (await http.get("/api/chargers", headers={"Host": host})).status_code == 200


async def test_dns_rebinding_gets_nothing_with_trust_loopback(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", trust_loopback=True)
    async with started(nursery, config) as gw, gw.http() as http:
        assert (await http.get("/api/chargers")).status_code == 200
        assert_error(await http.get("/api/chargers", headers=REBIND), 421, "misdirected_request")


async def test_names_can_be_allowed(nursery, tmp_path):
    config = make_config(tmp_path)
    config.http_allowed_hosts = ["gw.example.com", "Console.Example.com:8443"]
    async with started(nursery, config) as gw, gw.http() as http:
        assert (await http.get("/api/chargers", headers={"Host": "gw.example.com:8080"})).status_code == 200
        assert (await http.get("/api/chargers", headers={"Host": "console.example.com"})).status_code == 200
        assert_error(await http.get("/api/chargers", headers=REBIND), 421, "misdirected_request")


async def test_another_site_changes_nothing_even_with_cached_credentials(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        await gw.store.users.put("oscar", await hash_password("password-oscar"), "operator", clock.iso())
        operator = basic("oscar", "password-oscar")  # what a browser sends once the user typed it
        async with answering(gw.ocpp_port, "CSRF1") as cp:
            for headers in CROSS_SITE:
                r = await http.get("/api/ocpp/reset/CSRF1", params={"type": "Hard"}, headers={**operator, **headers})
                assert "comes from" in assert_error(r, 403, "forbidden")["message"]
                r = await http.post("/api/ocpp/call/CSRF1/Reset", json={"type": "Hard"}, headers={**operator, **headers})
                assert_error(r, 403, "forbidden")
                assert_error(await http.post("/api/id-tags", json={"idTag": "CSRF"}, headers={**operator, **headers}),
                             403, "forbidden")
            assert [action for _, action, _ in cp.received] == []
            # Reading is not a change: another site's page cannot read the answer anyway.
            r = await http.get("/api/ocpp/connections", headers={**operator, **CROSS_SITE[0]})
            assert r.status_code == 200
            # curl sends no browser headers; the console's own requests come from the gateway's origin.
            r = await http.get("/api/ocpp/reset/CSRF1", params={"type": "Soft"}, headers=operator)
            assert r.status_code == 200 and r.json()["status"] == "Accepted"
            own = {"Sec-Fetch-Site": "same-origin", "Origin": f"http://127.0.0.1:{gw.http_port}"}
            r = await http.post("/api/ocpp/call/CSRF1/Reset", json={"type": "Hard"}, headers={**operator, **own})
            assert r.status_code == 200
            assert [action for _, action, _ in cp.received] == ["Reset", "Reset"]
        assert (await http.get("/api/id-tags/CSRF", headers=operator)).status_code == 404
        # Logging in from another site is refused too (a page could log the browser into its own account).
        r = await http.post("/api/auth/login", json={"username": "oscar", "password": "password-oscar"},
                            headers=CROSS_SITE[2])
        assert_error(r, 403, "forbidden")
