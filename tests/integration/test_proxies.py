"""Behind a reverse proxy: protected mode, the login limit and security profile 2 see the real client."""

from __future__ import annotations

from tests.conformance.test_security import OLD_KEY, _basic, _connect_status
from tests.conftest import make_config, started
from tests.helpers import assert_error


def _behind(tmp_path, *trusted: str, **more):
    config = make_config(tmp_path)
    config.trusted_proxies = list(trusted)
    for name, value in more.items():
        setattr(config, name, value)
    return config


async def test_protected_mode_does_not_take_a_proxied_request_for_a_local_one(nursery, tmp_path):
    async with started(nursery, _behind(tmp_path)) as gw, gw.http() as http:
        assert (await http.get("/api/chargers")).status_code == 200  # this machine, directly
        # The same socket address, but through a proxy nobody declared: the client may be anywhere.
        assert_error(await http.get("/api/chargers", headers={"X-Forwarded-For": "127.0.0.1"}), 403, "forbidden")


async def test_a_trusted_proxy_tells_who_the_client_is(nursery, tmp_path):
    async with started(nursery, _behind(tmp_path, "127.0.0.1")) as gw, gw.http() as http:
        assert_error(await http.get("/api/chargers", headers={"X-Forwarded-For": "203.0.113.9"}), 403, "forbidden")
        # Protected mode opens to this machine only when it connects directly, never through a proxy:
        # not when the proxy names no client, and not when the client names itself 127.0.0.1.
        for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Forwarded-For": "127.0.0.1, 127.0.0.1"},
                        {"X-Forwarded-Proto": "https"}):
            assert_error(await http.get("/api/chargers", headers=headers), 403, "forbidden")


async def test_trust_loopback_does_not_trust_a_proxy(nursery, tmp_path):
    config = _behind(tmp_path, "127.0.0.1", admin_password="right-password-1")
    config.auth.trust_loopback = True
    async with started(nursery, config) as gw, gw.http() as http:
        for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}):
            assert_error(await http.get("/api/chargers", headers=headers), 401, "unauthorized")
        assert (await http.get("/api/chargers", headers={"Authorization": "Basic YWRtaW46cmlnaHQtcGFzc3dvcmQtMQ=="})
                ).status_code == 200


async def test_the_login_limit_counts_per_forwarded_client(nursery, tmp_path):
    config = _behind(tmp_path, "127.0.0.1", admin_password="right-password-1")
    async with started(nursery, config) as gw, gw.http() as http:
        wrong = {"username": "admin", "password": "wrong"}
        for _ in range(config.auth.login_attempts):
            r = await http.post("/api/auth/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.9"})
            assert r.status_code == 401
        r = await http.post("/api/auth/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.9"})
        assert_error(r, 429, "too_many_requests")
        # Everyone else behind the same proxy may still log in.
        r = await http.post("/api/auth/login", json={"username": "admin", "password": "right-password-1"},
                            headers={"X-Forwarded-For": "198.51.100.20"})
        assert r.status_code == 200


async def test_security_profile_2_through_a_proxy_that_terminates_tls(nursery, tmp_path):
    tls = [(b"X-Forwarded-For", b"203.0.113.9"), (b"X-Forwarded-Proto", b"https")]
    config = _behind(tmp_path, "127.0.0.1", admin_password="right-password-1")
    async with started(nursery, config) as gw, gw.http() as http:
        # Not local through a proxy's address: an account is needed.
        r = await http.put("/api/chargers/PX2/security", json={"securityProfile": 2, "authorizationKey": OLD_KEY},
                           auth=("admin", "right-password-1"))
        assert r.status_code == 200
        assert await _connect_status(gw.ocpp_port, "PX2", _basic("PX2", OLD_KEY) + tls) == 101
        # Over plain ws, or with the wrong key, a profile-2 charger is refused.
        assert await _connect_status(gw.ocpp_port, "PX2", _basic("PX2", OLD_KEY)) == 400
        assert await _connect_status(gw.ocpp_port, "PX2", _basic("PX2", "x" * 20) + tls) == 401
        # The charger port on the HTTP listener too.
        assert await _connect_status(gw.http_port, "PX2", _basic("PX2", OLD_KEY) + tls) == 101


async def test_a_proxy_we_do_not_trust_cannot_claim_tls(nursery, tmp_path):
    async with started(nursery, _behind(tmp_path, "10.9.9.9")) as gw, gw.http() as http:
        await http.put("/api/chargers/PX3/security", json={"securityProfile": 2, "authorizationKey": OLD_KEY})
        tls = [(b"X-Forwarded-For", b"203.0.113.9"), (b"X-Forwarded-Proto", b"https")]
        assert await _connect_status(gw.ocpp_port, "PX3", _basic("PX3", OLD_KEY) + tls) == 400
