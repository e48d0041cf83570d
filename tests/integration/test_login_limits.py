"""The login limit holds under a flood, and a flood from one address does not hold up anyone else."""

from __future__ import annotations

import attrs
import trio

import gateway.http.accounts as auth_module
from gateway.chargepoint.commands import CommandService
from gateway.http.accounts import Auth
from gateway.http.app import create_app
from gateway.http.services import Services
from tests.conftest import started
from tests.integration.test_auth import basic, config_with
from tests.waiting import until

FLOOD = 40


async def _flood(send) -> list[int]:
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await send()).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(FLOOD):
            nursery.start_soon(one)
    return statuses


async def test_concurrent_wrong_logins_check_no_more_passwords_than_allowed(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", login_attempts=3, lockout_seconds=60)
    async with started(nursery, config) as gw, gw.http() as http:
        statuses = await _flood(lambda: http.post("/api/auth/login", json={"username": "admin", "password": "guess"}))
        # Every 401 is a password checked and found wrong; the rest were refused before any check.
        assert sorted(statuses) == [401] * 3 + [429] * (FLOOD - 3)


async def test_concurrent_wrong_basic_credentials_check_no_more_passwords_than_allowed(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", login_attempts=3, lockout_seconds=60)
    async with started(nursery, config) as gw, gw.http() as http:
        statuses = await _flood(lambda: http.get("/api/chargers", headers=basic("admin", "guess")))
        assert sorted(statuses) == [401] * 3 + [429] * (FLOOD - 3)


async def test_a_flood_from_one_address_holds_one_password_check(nursery, tmp_path, monkeypatch):
    """While one address floods the login, another address's login is checked at once, not after the flood."""
    checking: list[str] = []  # passwords being checked now
    release = trio.Event()

    async def password_ok(password_hash: str, password: str, limiter: trio.CapacityLimiter | None = None) -> bool:
        async with limiter:  # the gateway's own limit of concurrent checks
            checking.append(password)
            await release.wait()
            checking.remove(password)
        return password == "s3cret-pass"

    config = config_with(tmp_path, admin_password="s3cret-pass")
    async with started(nursery, config) as gw:
        monkeypatch.setattr(auth_module, "password_ok", password_ok)
        auth = Auth(gw.store, attrs.evolve(gw.config.auth, login_attempts=3))
        auth._secret = "a signing key for this test only, long enough"
        client = create_app(Services(gw.running.chargers, CommandService(gw.running.chargers), auth)).test_client()
        statuses: dict[str, list[int]] = {"flood": [], "user": []}

        async def login(who: str, address: str, password: str) -> None:
            r = await client.post("/api/auth/login", json={"username": "admin", "password": password},
                                  scope_base={"client": (address, 40000)})
            statuses[who].append(r.status_code)

        async with trio.open_nursery() as requests:
            for n in range(10):
                requests.start_soon(login, "flood", "192.0.2.7", f"guess-{n}")
            await until(lambda: checking, timeout=10)
            requests.start_soon(login, "user", "198.51.100.20", "s3cret-pass")
            await until(lambda: "s3cret-pass" in checking, timeout=10)  # checked beside the flood, not behind it
            assert len(checking) == 2  # the flood's one check and the user's
            release.set()
        assert statuses["user"] == [200]
        assert sorted(statuses["flood"]) == [401] * 3 + [429] * 7
