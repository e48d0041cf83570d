"""Tenants on a real gateway: the tree and who sees what of it, accounts in tenants, disabled and expired
tenants, deletion refused while a tenant holds anything, quotas (also when creates race for the last place)."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

from gateway import clock
from gateway.config import load
from gateway.http.accounts import hash_password, token_hash
from gateway.store.db import NUMBERED_LATE, connect, migration_files
from tests.conftest import started
from tests.helpers import BOOT, assert_error, charger

PASSWORD = "s3cret-pass"


def config_with(tmp_path: Path):
    return load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0",
                                         "db": str(tmp_path / "tenants.db"), "admin_password": PASSWORD,
                                         "billing": {"reconcile_at": ""}})


def basic(identifier: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{identifier}:{password}".encode()).decode()}


async def login(http, identifier: str, password: str = PASSWORD) -> dict[str, str]:
    r = await http.post("/api/auth/login", json={"identifier": identifier, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['data']['token']}"}


async def create(http, headers, code: str, **body) -> dict:
    r = await http.post("/api/tenant", headers=headers, json={"tenantCode": code, "tenantName": code.title(), **body})
    assert r.status_code == 201, r.text
    assert r.json()["code"] == 201
    return r.json()["data"]


async def account(gw, tenant_id: int, name: str, role: str = "admin") -> None:
    assert await gw.store.users.put(name, await hash_password(PASSWORD), role, clock.iso(), tenant_id) is None


def codes(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [t["tenantCode"] for t in answer.json()["data"]]


async def test_a_tenant_sees_and_manages_itself_and_those_below_it(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        root = await login(http, "admin")
        # a single-site install: userinfo as before, the platform alone in the tree
        assert (await http.get("/api/auth/userinfo", headers=root)).json()["data"] == \
            {"username": "admin", "role": "admin", "authenticatedBy": "bearer"}
        assert codes(await http.get("/api/tenant/list", headers=root)) == ["platform"]

        acme = await create(http, root, "acme", contactPerson="Ann", maxChildren=2)
        volt = await create(http, root, "volt", tenantType="partner")
        assert (acme["parentId"], acme["tenantType"], acme["status"], acme["maxChildren"]) == (1, "operator", 1, 2)
        await account(gw, acme["id"], "alice")
        await account(gw, acme["id"], "vic", role="viewer")
        await account(gw, volt["id"], "alice")  # the same name in another tenant: another account

        alice = await login(http, "alice@acme")
        me = (await http.get("/api/auth/userinfo", headers=alice)).json()["data"]
        assert (me["tenantId"], me["tenantCode"], me["tenantName"], me["identifier"], me["actingTenantId"]) == \
            (acme["id"], "acme", "Acme", "alice@acme", acme["id"])
        login_answer = (await http.post("/api/auth/login", json={"username": "alice@ACME", "password": PASSWORD})).json()
        assert login_answer["data"]["userInfo"]["tenantCode"] == "acme"  # codes match in any case

        east = await create(http, alice, "acme-east", tenantType="partner")  # below acme by default
        assert east["parentId"] == acme["id"]
        assert codes(await http.get("/api/tenant/list", headers=alice)) == ["acme", "acme-east"]
        page = (await http.get("/api/tenant/page", headers=alice, params={"size": 1, "page": 2})).json()["data"]
        assert page["total"] == 2 and [t["tenantCode"] for t in page["records"]] == ["acme-east"]
        tree = (await http.get("/api/tenant/tree", headers=alice)).json()["data"]
        assert tree["tenantCode"] == "acme" and [c["tenantCode"] for c in tree["children"]] == ["acme-east"]
        assert codes(await http.get(f"/api/tenant/{acme['id']}/children", headers=alice)) == ["acme-east"]

        # Another tenant, above or beside: as if it did not exist.
        for other in (1, volt["id"], 9999):
            assert_error(await http.get(f"/api/tenant/{other}", headers=alice), 404, "not_found")
            assert_error(await http.get(f"/api/tenant/{other}/children", headers=alice), 404, "not_found")
            assert_error(await http.get(f"/api/tenant/quota/usage/{other}", headers=alice), 404, "not_found")
            assert_error(await http.put(f"/api/tenant/{other}", headers=alice, json={"tenantName": "x"}), 404,
                         "not_found")
            assert_error(await http.put(f"/api/tenant/{other}/status?status=0", headers=alice), 404, "not_found")
            assert_error(await http.delete(f"/api/tenant/{other}", headers=alice), 404, "not_found")
        assert_error(await http.post("/api/tenant", headers=alice, json={
            "tenantCode": "sneaky", "tenantName": "Sneaky", "parentId": volt["id"]}), 404, "not_found")
        assert_error(await http.get("/api/tenant/list", headers={**alice, "X-Tenant-Id": str(volt["id"])}), 404,
                     "not_found")

        # Its own name, yes; its own status, expiry and quotas are set from above.
        renamed = await http.put(f"/api/tenant/{acme['id']}", headers=alice, json={"tenantName": "Acme Ltd"})
        assert renamed.status_code == 200 and renamed.json()["data"]["tenantName"] == "Acme Ltd"
        assert_error(await http.put(f"/api/tenant/quota/{acme['id']}", headers=alice, json={"maxUsers": 99}), 403,
                     "forbidden")
        assert_error(await http.put(f"/api/tenant/{acme['id']}/status", headers=alice, json={"status": 0}), 403,
                     "forbidden")
        assert_error(await http.delete(f"/api/tenant/{acme['id']}", headers=alice), 403, "forbidden")
        quota = await http.put(f"/api/tenant/quota/{east['id']}", headers=alice, json={"maxUsers": 3, "maxStations": None})
        assert quota.status_code == 200 and quota.json()["data"]["maxUsers"] == 3
        # A viewer reads, and changes nothing.
        vic = basic("vic@acme")
        assert codes(await http.get("/api/tenant/list", headers=vic)) == ["acme", "acme-east"]
        assert_error(await http.post("/api/tenant", headers=vic, json={"tenantCode": "v1", "tenantName": "V"}), 403,
                     "forbidden")

        # The platform sees everything, and acts as a tenant below it with X-Tenant-Id.
        assert codes(await http.get("/api/tenant/list", headers=root)) == ["platform", "acme", "volt", "acme-east"]
        as_acme = {**root, "X-Tenant-Id": str(acme["id"])}
        assert codes(await http.get("/api/tenant/list", headers=as_acme)) == ["acme", "acme-east"]
        me = (await http.get("/api/auth/userinfo", headers=as_acme)).json()["data"]
        assert (me["tenantCode"], me["actingTenantId"], me["actingTenantCode"]) == ("platform", acme["id"], "acme")
        assert_error(await http.get("/api/tenant/list", headers={**root, "X-Tenant-Id": "9999"}), 404, "not_found")
        assert_error(await http.get("/api/tenant/list", headers={**root, "X-Tenant-Id": "acme"}), 400, "bad_request")
        # acme's admin may act as the tenant below it too
        assert codes(await http.get("/api/tenant/list", headers={**alice, "X-Tenant-Id": str(east["id"])})) == \
            ["acme-east"]

        # codes are unique over the gateway, and cannot change
        assert (await http.get("/api/tenant/check-code", headers=alice, params={"tenantCode": "VOLT"})).json()[
            "data"] == {"tenantCode": "VOLT", "available": False}
        assert (await http.get("/api/tenant/check-code", headers=alice, params={"tenantCode": "acme", "excludeId":
                                                                                acme["id"]})).json()["data"]["available"]
        assert_error(await http.post("/api/tenant", headers=alice, json={"tenantCode": "Volt", "tenantName": "V"}), 409,
                     "conflict")
        assert_error(await http.put(f"/api/tenant/{east['id']}", headers=alice, json={"tenantCode": "x2"}), 400,
                     "bad_request")
        assert_error(await http.post("/api/tenant", headers=alice, json={"tenantCode": "a@b", "tenantName": "A"}), 400,
                     "bad_request")
        assert_error(await http.post("/api/tenant", headers=root, json={
            "tenantCode": "p2", "tenantName": "P", "tenantType": "platform"}), 400, "bad_request")
        assert_error(await http.put("/api/tenant/1/status?status=0", headers=root), 403, "forbidden")
        assert_error(await http.post("/api/tenant", headers=root, json={
            "tenantCode": "big", "tenantName": "B", "parentId": 2**70}), 400, "bad_request")


async def test_a_disabled_or_expired_tenant_cannot_sign_in_while_its_chargers_are_answered(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        root = basic("admin")
        acme = await create(http, root, "acme")
        sub = await create(http, root, "acme-sub", parentId=acme["id"])
        await account(gw, acme["id"], "alice")
        await account(gw, sub["id"], "sam")
        jwt_token = await login(http, "alice@acme")
        made = await http.post("/api/auth/tokens", headers=jwt_token, json={"name": "script"})
        api_token = {"Authorization": f"Bearer {made.json()['data']['token']}"}
        sam = await login(http, "sam@acme-sub")
        # a charger of acme's
        await gw.store.db.run(lambda conn: conn.execute(
            "INSERT INTO charger_registry (charge_point_id, tenant_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ("ACME-1", acme["id"], clock.iso(), clock.iso())))
        for headers in (jwt_token, api_token, basic("alice@acme"), sam):
            assert (await http.get("/api/tenant/list", headers=headers)).status_code == 200

        r = await http.put(f"/api/tenant/{acme['id']}/status", headers=root, params={"status": 0})
        assert r.status_code == 200 and r.json()["data"]["status"] == 0
        for headers in (jwt_token, api_token, basic("alice@acme")):
            body = assert_error(await http.get("/api/tenant/list", headers=headers), 401, "unauthorized")
            assert "'acme' is disabled" in body["message"]
        body = assert_error(await http.get("/api/tenant/list", headers=sam), 401, "unauthorized")
        assert "'acme', which 'acme-sub' is under, is disabled" in body["message"]
        body = assert_error(await http.post("/api/auth/login", json={"username": "alice@acme", "password": PASSWORD}),
                            401, "unauthorized")
        assert "disabled" in body["message"]
        # a wrong password says nothing about the tenant
        body = assert_error(await http.post("/api/auth/login", json={"username": "alice@acme", "password": "wrong"}),
                            401, "unauthorized")
        assert "disabled" not in body["message"]
        async with charger(gw.ocpp_port, "ACME-1") as cp:  # its chargers keep being answered
            boot = await cp.result("BootNotification", BOOT)
            assert boot["status"] == "Accepted"
            assert await cp.result("Heartbeat", {}) != {}

        await http.put(f"/api/tenant/{acme['id']}/status", headers=root, json={"status": 1})
        for headers in (jwt_token, api_token, basic("alice@acme"), sam):
            assert (await http.get("/api/tenant/list", headers=headers)).status_code == 200

        past = await http.put(f"/api/tenant/{sub['id']}", headers=root, json={"expireTime": "2020-01-01T00:00:00Z"})
        assert past.json()["data"]["expireTime"] == "2020-01-01T00:00:00.000Z"
        body = assert_error(await http.get("/api/tenant/list", headers=sam), 401, "unauthorized")
        assert "'acme-sub' expired at 2020-01-01" in body["message"]
        assert (await http.get("/api/tenant/list", headers=jwt_token)).status_code == 200  # the parent is fine
        await http.put(f"/api/tenant/{sub['id']}", headers=root, json={"expireTime": "2999-01-01T00:00:00Z"})
        assert (await http.get("/api/tenant/list", headers=sam)).status_code == 200


async def test_a_tenant_is_deleted_only_once_it_holds_nothing(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        root = basic("admin")
        acme = await create(http, root, "acme")
        child = await create(http, root, "acme-1", parentId=acme["id"])
        await account(gw, acme["id"], "alice")
        await gw.store.db.run(lambda conn: conn.execute(
            "INSERT INTO stations (tenant_id, code, name, created_at, updated_at) VALUES (?, 'S1', 'S', ?, ?)",
            (acme["id"], clock.iso(), clock.iso())))
        body = assert_error(await http.delete(f"/api/tenant/{acme['id']}", headers=root), 409, "conflict")
        assert "1 user, 1 station, 1 child tenant" in body["message"] and body["code"] == 409
        await gw.store.users.remove("alice", acme["id"])
        await gw.store.db.run(lambda conn: conn.execute("DELETE FROM stations"))
        assert (await http.delete(f"/api/tenant/{child['id']}", headers=root)).status_code == 200
        assert (await http.delete(f"/api/tenant/{acme['id']}", headers=root)).json()["message"] == "tenant deleted"
        assert_error(await http.get(f"/api/tenant/{acme['id']}", headers=root), 404, "not_found")
        assert_error(await http.delete("/api/tenant/1", headers=root), 403, "forbidden")


async def test_quotas_hold_when_creates_race_for_the_last_places(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        root = basic("admin")
        acme = await create(http, root, "acme", maxChildren=3, maxUsers=4)
        await create(http, root, "acme-0", parentId=acme["id"])
        check = await http.get(f"/api/tenant/quota/check/create-child/{acme['id']}", headers=root)
        assert check.json()["data"] == {"tenantId": acme["id"], "kind": "children", "allowed": True, "message": None}

        answers: list[int] = []

        async def child(n: int) -> None:
            r = await http.post("/api/tenant", headers=root, json={
                "tenantCode": f"race-{n}", "tenantName": f"Race {n}", "parentId": acme["id"]})
            answers.append(r.status_code)
            if r.status_code == 409:
                assert "at most 3 child tenants" in r.json()["message"]

        async with trio.open_nursery() as racing:
            for n in range(12):
                racing.start_soon(child, n)
        assert sorted(answers) == [201, 201] + [409] * 10

        # users: the acme quota counts the users of the tenants below it too
        east = (await http.get(f"/api/tenant/{acme['id']}/children", headers=root)).json()["data"][1]
        password_hash = await hash_password(PASSWORD)
        refusals: list[str | None] = []

        async def user(n: int) -> None:
            tenant = acme["id"] if n % 2 else east["id"]
            refusals.append(await gw.store.users.put(f"u{n}", password_hash, "viewer", clock.iso(), tenant))

        async with trio.open_nursery() as racing:
            for n in range(15):
                racing.start_soon(user, n)
        assert refusals.count(None) == 4
        assert all("'acme'" in why and "at most 4 users" in why for why in refusals if why)
        usage = (await http.get(f"/api/tenant/quota/usage/{acme['id']}", headers=root)).json()["data"]
        assert (usage["usedUsers"], usage["maxUsers"], usage["usedChildren"], usage["maxChildren"]) == (4, 4, 3, 3)
        assert (usage["usedStations"], usage["maxStations"]) == (0, None)
        for kind, path in (("children", "create-child"), ("users", "add-user")):
            answer = (await http.get(f"/api/tenant/quota/check/{path}/{acme['id']}", headers=root)).json()["data"]
            assert answer["kind"] == kind and answer["allowed"] is False and "quota exceeded" in answer["message"]
        station = (await http.get(f"/api/tenant/quota/check/add-station/{east['id']}", headers=root)).json()["data"]
        assert station["allowed"] is True
        # raising the quota makes room again
        await http.put(f"/api/tenant/quota/{acme['id']}", headers=root, json={"maxUsers": 5})
        assert await gw.store.users.put("late", password_hash, "viewer", clock.iso(), acme["id"]) is None


async def test_platform_logins_keep_working_with_a_bare_name(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        await create(http, basic("admin"), "acme")
        for name in ("admin", "admin@platform", "admin@PLATFORM"):
            r = await http.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200 and r.json()["data"]["userInfo"]["tenantId"] == 1
        # name@code where no tenant has the code: the platform account of that whole name
        await gw.store.users.put("ann@example.com", await hash_password(PASSWORD), "viewer", clock.iso())
        r = await http.post("/api/auth/login", json={"identifier": "ann@example.com", "password": PASSWORD})
        assert r.status_code == 200 and r.json()["data"]["userInfo"]["username"] == "ann@example.com"
        assert_error(await http.post("/api/auth/login", json={"username": "admin@acme", "password": PASSWORD}), 401,
                     "unauthorized")


def test_user_command_adds_accounts_to_a_tenant_within_its_quota(tmp_path):
    gateway = [sys.executable, "-m", "gateway", "user"]
    db = ["--db", str(tmp_path / "users.db")]
    assert subprocess.run([*gateway, "list", *db], capture_output=True, text=True).returncode == 0  # migrated
    conn = sqlite3.connect(db[1])
    with conn:
        conn.execute("INSERT INTO tenants (parent_id, code, name, type, max_users, created_at, updated_at) "
                     "VALUES (1, 'acme', 'Acme', 'operator', 1, 'x', 'x')")
    conn.close()

    def add(name: str, *more: str) -> subprocess.CompletedProcess:
        return subprocess.run([*gateway, "add", name, "--password-stdin", *more, *db], input="long-enough-1\n",
                              capture_output=True, text=True)

    added = add("bob", "--tenant", "acme")
    assert added.returncode == 0 and "bob@acme" in added.stdout, added.stderr
    over = add("carol", "--tenant", "acme")
    assert over.returncode == 1 and "quota exceeded" in over.stderr and "at most 1 user" in over.stderr
    assert add("bob", "--tenant", "nope").returncode == 1
    assert add("bob").returncode == 0  # the platform's bob is another account
    listed = subprocess.run([*gateway, "list", *db], capture_output=True, text=True).stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["bob", "viewer", "acme"], ["bob", "viewer", "platform"]]
    removed = subprocess.run([*gateway, "remove", "bob", "--tenant", "acme", *db], capture_output=True, text=True)
    assert removed.returncode == 0 and "bob@acme removed" in removed.stdout
    listed = subprocess.run([*gateway, "list", *db], capture_output=True, text=True).stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["bob", "viewer", "platform"]]


async def test_the_console_s_tenant_requests_are_taken_as_the_page_sends_them(nursery, tmp_path):
    async with started(nursery, config_with(tmp_path)) as gw, gw.http() as http:
        page = (await http.get("/web")).text
        assert 'data-view="tenants"' in page and "X-Tenant-Id" in page and "/api/tenant/tree" in page
        root = await login(http, "admin")
        texts = {"contactPerson": None, "contactPhone": None, "contactEmail": None, "address": None}
        quotas = {"maxUsers": 2, "maxStations": None, "maxChargers": None, "maxChildren": None}
        # the form's new tenant: every field, empty ones null
        made = await http.post("/api/tenant", headers=root, json={
            **texts, "tenantName": "Acme", "expireTime": None, "tenantType": "operator", "tenantCode": "acme",
            **quotas})
        assert made.status_code == 201, made.text
        acme = made.json()["data"]
        # the switcher lists the user's own tenants, then acts as one of them
        listed = (await http.get("/api/tenant/list", headers=root)).json()["data"]
        assert [t["tenantCode"] for t in listed] == ["platform", "acme"]
        as_acme = {**root, "X-Tenant-Id": str(acme["id"])}
        me = (await http.get("/api/auth/userinfo", headers=as_acme)).json()["data"]
        assert (me["tenantId"], me["actingTenantCode"], me["actingTenantName"]) == (1, "acme", "Acme")
        tree = (await http.get("/api/tenant/tree", headers=as_acme)).json()["data"]
        assert tree["id"] == acme["id"] and tree["children"] == []
        # editing the acting tenant itself: its own fields only
        own = await http.put(f"/api/tenant/{acme['id']}", headers=as_acme, json={
            **texts, "contactPerson": "Ann", "tenantName": "Acme"})
        assert own.status_code == 200 and own.json()["data"]["contactPerson"] == "Ann"
        # editing it from above: with the quotas and expiry
        above = await http.put(f"/api/tenant/{acme['id']}", headers=root, json={
            **texts, "tenantName": "Acme", "expireTime": "2030-01-01T00:00:00.000Z", "tenantType": "partner",
            **quotas, "maxChildren": 1})
        assert above.status_code == 200, above.text
        assert (above.json()["data"]["maxChildren"], above.json()["data"]["tenantType"]) == (1, "partner")
        disabled = await http.put(f"/api/tenant/{acme['id']}/status", headers=root, params={"status": 0})
        assert disabled.json()["data"]["status"] == 0
        usage = (await http.get(f"/api/tenant/quota/usage/{acme['id']}", headers=root)).json()["data"]
        assert {f"{w}{k}" for w in ("used", "max") for k in ("Users", "Stations", "Chargers", "Children")} <= set(usage)


async def test_a_database_from_before_tenants_keeps_its_accounts_and_logins(nursery, tmp_path):
    path = tmp_path / "tenants.db"
    conn = connect(str(path))  # the schema as the gateway left it before tenants
    for number, _name, sql in migration_files():
        if number not in NUMBERED_LATE:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
    with conn:
        conn.execute("INSERT INTO users (username, password_hash, role, created_at, updated_at, session_stamp) "
                     "VALUES ('ops', ?, 'operator', ?, ?, 'stamp')", (await hash_password(PASSWORD), clock.iso(),
                                                                       clock.iso()))
        conn.execute("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (1, 'cron', ?, "
                     "'gw_old', ?)", (token_hash("gw_old-token"), clock.iso()))
    conn.close()
    config = load(None, env={}, overrides={"http": "127.0.0.1:0", "ocpp": "127.0.0.1:0", "db": str(path),
                                           "billing": {"reconcile_at": ""}})
    async with started(nursery, config) as gw, gw.http() as http:
        r = await http.post("/api/auth/login", json={"username": "ops", "password": PASSWORD})
        assert r.status_code == 200 and r.json()["data"]["userInfo"]["tenantCode"] == "platform"
        for headers in (basic("ops"), {"Authorization": "Bearer gw_old-token"},
                        {"Authorization": f"Bearer {r.json()['data']['token']}"}):
            me = await http.get("/api/auth/userinfo", headers=headers)
            assert me.status_code == 200 and me.json()["data"]["username"] == "ops"
        assert (await http.get("/api/station", headers=basic("ops"))).status_code == 200
        tenants = (await http.get("/api/tenant/list", headers=basic("ops"))).json()["data"]
        assert [(t["id"], t["tenantCode"], t["tenantType"]) for t in tenants] == [(1, "platform", "platform")]
