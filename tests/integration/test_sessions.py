"""Credentials end when they should: at log out, when the password changes, when the account goes."""

from __future__ import annotations

from gateway import clock
from gateway.http.accounts import hash_password
from tests.conftest import started
from tests.helpers import assert_error
from tests.integration.test_auth import basic, bearer, config_with


async def _login(http, username: str, password: str) -> str:
    r = await http.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["data"]["token"]


async def test_log_out_ends_the_login_token(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        token, other = await _login(http, "admin", "s3cret-pass"), await _login(http, "admin", "s3cret-pass")
        assert (await http.get("/api/chargers", headers=bearer(token))).status_code == 200
        r = await http.post("/api/auth/logout", headers=bearer(token))
        assert r.status_code == 200 and r.json()["data"]["loggedOut"] is True
        for ended in (token, other):  # the account's login tokens share its session
            body = assert_error(await http.get("/api/chargers", headers=bearer(ended)), 401, "unauthorized")
            assert "log in again" in body["message"]
        fresh = await _login(http, "admin", "s3cret-pass")
        assert (await http.get("/api/chargers", headers=bearer(fresh))).status_code == 200
        # An API token used to log out is revoked; HTTP Basic has nothing to end.
        created = (await http.post("/api/auth/tokens", json={"name": "script"}, headers=bearer(fresh))).json()
        api_token = created["data"]["token"]
        assert (await http.post("/api/auth/logout", headers=bearer(api_token))).status_code == 200
        assert_error(await http.get("/api/chargers", headers=bearer(api_token)), 401, "unauthorized")
        assert (await http.get("/api/chargers", headers=bearer(fresh))).status_code == 200
        assert_error(await http.post("/api/auth/logout", headers=basic("admin", "s3cret-pass")), 400, "bad_request")


async def test_a_new_password_ends_login_tokens_and_cached_basic_credentials(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        await gw.store.users.put("oscar", await hash_password("password-one"), "operator", clock.iso())
        token = await _login(http, "oscar", "password-one")
        old = basic("oscar", "password-one")
        assert (await http.get("/api/chargers", headers=old)).status_code == 200  # checked, and cached
        # What `gateway user add oscar` does to change the password, from another process as well.
        await gw.store.users.put("oscar", await hash_password("password-two"), "operator", clock.iso())
        assert_error(await http.get("/api/chargers", headers=old), 401, "unauthorized")
        assert_error(await http.get("/api/chargers", headers=bearer(token)), 401, "unauthorized")
        assert (await http.get("/api/chargers", headers=basic("oscar", "password-two"))).status_code == 200
        assert (await http.get("/api/chargers", headers=bearer(await _login(http, "oscar", "password-two")))
                ).status_code == 200
        # The same password again (a role change): the sessions stay.
        user = await gw.store.users.get("oscar")
        token = await _login(http, "oscar", "password-two")
        await gw.store.users.put("oscar", user["password_hash"], "viewer", clock.iso())
        r = await http.get("/api/auth/userinfo", headers=bearer(token))
        assert r.status_code == 200 and r.json()["data"]["role"] == "viewer"


async def test_a_deleted_account_ends_at_once_and_a_new_one_of_that_name_is_a_new_account(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        password_hash = await hash_password("password-one")
        await gw.store.users.put("vera", password_hash, "viewer", clock.iso())
        token, credentials = await _login(http, "vera", "password-one"), basic("vera", "password-one")
        assert (await http.get("/api/chargers", headers=credentials)).status_code == 200
        assert await gw.store.users.remove("vera")
        assert_error(await http.get("/api/chargers", headers=credentials), 401, "unauthorized")
        assert_error(await http.get("/api/chargers", headers=bearer(token)), 401, "unauthorized")
        await gw.store.users.put("vera", password_hash, "viewer", clock.iso())  # made again, same password
        assert_error(await http.get("/api/chargers", headers=bearer(token)), 401, "unauthorized")
