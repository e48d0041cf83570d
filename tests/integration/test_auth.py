"""Who may use the HTTP API: protected mode, accounts and roles, login tokens, API tokens, Basic auth."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import jwt


from gateway import clock
from gateway.chargepoint.commands import CommandService
from gateway.config import load
from gateway.http.accounts import Auth, hash_password
from gateway.http.app import create_app
from gateway.http.services import Services
from tests.conftest import started
from tests.helpers import assert_error

REMOTE = {"client": ("192.0.2.7", 40000)}  # a documentation address: the request never leaves the test client


def config_with(tmp_path: Path, **auth):
    overrides = {"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(tmp_path / "auth.db"),
                 "admin_password": auth.pop("admin_password", ""), "auth": auth}
    return load(None, env={}, overrides=overrides)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def viewer_and_operator(gw) -> tuple[dict[str, str], dict[str, str]]:
    """Accounts val (viewer) and oscar (operator); their HTTP Basic headers."""
    for name, role in (("val", "viewer"), ("oscar", "operator")):
        await gw.store.users.put(name, await hash_password("password-" + name), role, clock.iso())
    return basic("val", "password-val"), basic("oscar", "password-oscar")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def remote_client(gw):
    """A test client whose requests come from a non-loopback address."""
    auth = Auth(gw.store, gw.config.auth)
    auth._secret = gw.running.auth._secret
    app = create_app(Services(gw.running.chargers, CommandService(gw.running.chargers), auth))
    return app.test_client()


async def test_protected_mode_serves_loopback_only_and_says_how_to_open_up(gateway):
    async with gateway.http() as http:
        assert (await http.get("/api/chargers")).status_code == 200  # this machine: allowed
    client = remote_client(gateway)
    r = await client.get("/api/chargers", scope_base=REMOTE)
    assert r.status_code == 403
    body = await r.get_json()
    assert body["error"] == "forbidden" and "GATEWAY_ADMIN_PASSWORD" in body["message"]
    assert (await client.get("/health", scope_base=REMOTE)).status_code == 200


async def test_with_an_account_every_client_authenticates(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        r = await http.get("/api/chargers")
        body = assert_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        assert "s3cret" not in r.text
        assert (await http.get("/api/chargers", headers=basic("admin", "s3cret-pass"))).status_code == 200
        assert_error(await http.get("/api/chargers", headers=basic("admin", "wrong")), 401, "unauthorized")
        assert_error(await http.get("/api/chargers", headers={"Authorization": "Basic !!!"}), 401, "unauthorized")
        assert_error(await http.get("/api/chargers", headers=bearer("not-a-token")), 401, "unauthorized")
        assert (await http.get("/health")).status_code == 200
        assert body["message"]


async def test_trust_loopback_lets_this_machine_in_without_credentials(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", trust_loopback=True)
    async with started(nursery, config) as gw, gw.http() as http:
        assert (await http.get("/api/chargers")).status_code == 200
        client = remote_client(gw)
        assert (await client.get("/api/chargers", scope_base=REMOTE)).status_code == 401


async def test_login_gives_a_token_in_the_evcs_envelope(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        r = await http.post("/api/auth/login", json={"username": "admin", "password": "s3cret-pass"})
        assert r.status_code == 200
        body = r.json()
        assert body["code"] == 200 and body["path"] == "/api/auth/login"
        data = body["data"]
        assert data["userInfo"]["username"] == "admin" and data["userInfo"]["role"] == "admin"
        assert clock.parse(data["expireTime"]) > clock.now()
        me = (await http.get("/api/auth/userinfo", headers=bearer(data["token"]))).json()
        assert me["data"] == {"username": "admin", "role": "admin", "authenticatedBy": "bearer"}
        wrong = await http.post("/api/auth/login", json={"username": "admin", "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["code"] == 401 and wrong.json()["error"] == "unauthorized"
        assert_error(await http.post("/api/auth/login", content=b"junk"), 400, "bad_request")


async def test_expired_login_token_is_refused(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        token = (await http.post("/api/auth/login", json={"username": "admin", "password": "s3cret-pass"}
                                 )).json()["data"]["token"]
        assert (await http.get("/api/chargers", headers=bearer(token))).status_code == 200
        # The same token as the gateway signs it, but an hour past its expiry.
        claims = jwt.decode(token, options={"verify_signature": False})
        expired = jwt.encode({**claims, "exp": int(time.time()) - 3600}, gw.running.auth._secret, algorithm="HS256")
        body = assert_error(await http.get("/api/chargers", headers=bearer(expired)), 401, "unauthorized")
        assert "expired" in body["message"]
        forged = jwt.encode(claims, "not the gateway's signing key, though long enough", algorithm="HS256")
        assert_error(await http.get("/api/chargers", headers=bearer(forged)), 401, "unauthorized")


async def test_roles(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        viewer, operator = await viewer_and_operator(gw)
        assert (await http.get("/api/chargers", headers=viewer)).status_code == 200
        assert (await http.get("/api/ocpp/connections", headers=viewer)).status_code == 200
        body = assert_error(await http.post("/api/id-tags", json={"idTag": "A"}, headers=viewer), 403, "forbidden")
        assert "operator" in body["message"]
        assert_error(await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "A"}, headers=viewer),
                     403, "forbidden")
        assert (await http.post("/api/id-tags", json={"idTag": "A"}, headers=operator)).status_code == 201
        # The operator gets through to the command itself: the charger is simply not there.
        assert_error(await http.get("/api/ocpp/remoteStart/CP1", params={"idTag": "A"}, headers=operator),
                     404, "not_found")


async def test_api_tokens_are_shown_once_stored_hashed_and_revocable(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path, admin_password="s3cret-pass")) as gw, gw.http() as http:
        admin = basic("admin", "s3cret-pass")
        r = await http.post("/api/auth/tokens", json={"name": "cron"}, headers=admin)
        assert r.status_code == 201
        created = r.json()["data"]
        token = created["token"]
        assert token.startswith("gw_") and len(token) > 40
        assert (await http.get("/api/chargers", headers=bearer(token))).status_code == 200
        listed = (await http.get("/api/auth/tokens", headers=admin)).json()["data"]
        assert [(t["name"], t["prefix"]) for t in listed] == [("cron", token[:10])]
        assert token not in (await http.get("/api/auth/tokens", headers=admin)).text
        stored = await gw.store.db.run(lambda conn: [r[0] for r in conn.execute("SELECT token_hash FROM api_tokens")])
        assert token not in stored[0] and len(stored[0]) == 64
        assert (await http.delete(f"/api/auth/tokens/{created['id']}", headers=admin)).status_code == 200
        assert_error(await http.get("/api/chargers", headers=bearer(token)), 401, "unauthorized")
        assert_error(await http.delete(f"/api/auth/tokens/{created['id']}", headers=admin), 404, "not_found")
        assert_error(await http.post("/api/auth/tokens", json={}, headers=admin), 400, "bad_request")


async def test_failed_logins_are_slowed_down_per_client(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", login_attempts=3, lockout_seconds=60)
    async with started(nursery, config) as gw, gw.http() as http:
        for _ in range(3):
            r = await http.post("/api/auth/login", json={"username": "admin", "password": "guess"})
            assert r.status_code == 401
        r = await http.post("/api/auth/login", json={"username": "admin", "password": "s3cret-pass"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"] == "too_many_requests"
        # Another client is not held up by this one's failures.
        other = await remote_client(gw).post("/api/auth/login", json={"username": "admin", "password": "s3cret-pass"},
                                             scope_base=REMOTE)
        assert other.status_code == 200


async def test_the_admin_password_is_never_shown(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass")
    assert "s3cret" not in repr(config)
    async with started(nursery, config) as gw:
        stored = await gw.store.users.get("admin")
        assert "s3cret" not in stored["password_hash"] and stored["password_hash"].startswith("$argon2")


def test_user_command_manages_accounts(tmp_path):
    gateway = [sys.executable, "-m", "gateway", "user"]
    db = ["--db", str(tmp_path / "users.db")]
    added = subprocess.run([*gateway, "add", "ops", "--role", "operator", "--password-stdin", *db],
                           input="long-enough-1\n", capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*gateway, "list", *db], capture_output=True, text=True)
    assert listed.stdout.split("\t")[:2] == ["ops", "operator"]
    short = subprocess.run([*gateway, "add", "x", "--password-stdin", *db], input="short\n",
                           capture_output=True, text=True)
    assert short.returncode == 2 and "8 characters" in short.stderr




async def test_failed_basic_auth_counts_as_failed_logins(nursery, tmp_path):
    config = config_with(tmp_path, admin_password="s3cret-pass", login_attempts=3, lockout_seconds=60)
    async with started(nursery, config) as gw, gw.http() as http:
        for _ in range(3):
            assert (await http.get("/api/chargers", headers=basic("admin", "guess"))).status_code == 401
        r = await http.get("/api/chargers", headers=basic("admin", "s3cret-pass"))
        assert r.status_code == 429 and r.headers["Retry-After"]
