"""Tenant rules the isolation walk does not reach: where an id tag is valid, quotas under concurrent creates,
records created in the acting tenant, and a database from before tenants keeping its id tags."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
import trio

from tests.backend import database
from gateway import clock
from gateway.http.accounts import hash_password
from gateway.store import scope
from gateway.store.db import NUMBERED_LATE, connect, migrate, migration_files
from gateway.store.store import open_store
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger

AT = "2026-01-01T00:00:00.000Z"


def acting(tenant_id: int, *below: int) -> scope.Scope:
    return scope.Scope(tenant_id, frozenset({tenant_id, *below}))


async def _tenant(store, code: str, parent: int = scope.PLATFORM, **fields) -> int:
    with scope.acting_as(scope.EVERYTHING):
        outcome, tenant = await store.tenants.create(parent, {"code": code, "name": code, "type": "operator",
                                                              **fields}, clock.iso())
    assert outcome == "ok", tenant
    return tenant["id"]


# ---- id tags: valid on the chargers of their tenant and of the tenants below it --------------------

async def test_an_id_tag_is_valid_only_on_chargers_of_its_tenant_and_the_tenants_below(nursery, tmp_path):
    """Operator A with a sub-operator A1, operator B, and the platform's own charger (adopted when it
    connected). Unknown tags are accepted by this gateway's configuration: a tag of another branch is not
    unknown, it is Invalid there (its operator may have blocked it)."""
    async with started(nursery, make_config(tmp_path, unknown_id_tags="accept")) as gw:
        store = gw.store
        a = await _tenant(store, "opa")
        a1 = await _tenant(store, "opa1", parent=a)
        b = await _tenant(store, "opb")
        for tenant, cp_id in ((a, "A-CP"), (a1, "A1-CP"), (b, "B-CP")):
            with scope.acting_as(acting(tenant)):
                outcome, _ = await store.registry.create(cp_id, None, None, [], clock.iso())
                assert outcome == "created"
        tags = {scope.PLATFORM: [("PTAG", "Accepted")], a: [("ATAG", "Accepted"), ("SAME", "Blocked")],
                b: [("BTAG", "Accepted"), ("SAME", "Accepted")]}
        for tenant, rows in tags.items():
            with scope.acting_as(acting(tenant) if tenant != scope.PLATFORM else scope.EVERYTHING):
                for tag, status in rows:
                    await store.id_tags.put(tag, status, at=clock.iso())

        expected = {  # tag: (on A-CP, on A1-CP, on B-CP, on the platform's own charger)
            "PTAG": ("Accepted", "Accepted", "Accepted", "Accepted"),
            "ATAG": ("Accepted", "Accepted", "Invalid", "Invalid"),
            "BTAG": ("Invalid", "Invalid", "Accepted", "Invalid"),
            "SAME": ("Blocked", "Blocked", "Accepted", "Invalid"),
            "NOPE": ("Accepted", "Accepted", "Accepted", "Accepted"),  # unknown everywhere: the configuration's
        }
        async with charger(gw.ocpp_port, "A-CP") as on_a, charger(gw.ocpp_port, "A1-CP") as on_a1, \
                charger(gw.ocpp_port, "B-CP") as on_b, charger(gw.ocpp_port, "P-CP") as on_platform:
            chargers = (on_a, on_a1, on_b, on_platform)
            for cp in chargers:
                await cp.result("BootNotification", BOOT)
            for tag, statuses in expected.items():
                got = tuple([(await cp.result("Authorize", {"idTag": tag}))["idTagInfo"]["status"]
                             for cp in chargers])
                assert got == statuses, tag
            # A StartTransaction is answered by the same rule: B's tag starts nothing on A's charger
            started_tx = await on_a.result("StartTransaction", {"connectorId": 1, "idTag": "BTAG", "meterStart": 0,
                                                                "timestamp": clock.iso()})
            assert started_tx["idTagInfo"]["status"] == "Invalid"
        # A full local list sends a charger the tags valid on it, the nearest tenant's where an id is in two
        with scope.acting_as(scope.EVERYTHING):
            assert {(t["id_tag"], t["status"]) for t in await store.id_tags.valid_on("A1-CP")} == {
                ("PTAG", "Accepted"), ("ATAG", "Accepted"), ("SAME", "Blocked")}
            assert {t["id_tag"] for t in await store.id_tags.valid_on("B-CP")} == {"PTAG", "BTAG", "SAME"}


async def test_the_same_id_tag_in_two_tenants_is_two_tags(tmp_path):
    async with open_store(database(tmp_path, "gw.db")) as store:
        a, b = await _tenant(store, "opa"), await _tenant(store, "opb")
        with scope.acting_as(acting(a)):
            await store.id_tags.put("CARD1", "Blocked", at=AT)
        with scope.acting_as(acting(b)):
            assert await store.id_tags.get("CARD1") is None  # A's is not B's to see
            await store.id_tags.put("CARD1", "Accepted", at=AT)
            assert await store.id_tags.delete("CARD1")
            assert await store.id_tags.get("CARD1") is None
        with scope.acting_as(acting(a)):
            assert (await store.id_tags.get("CARD1"))["status"] == "Blocked"  # B's delete took its own only
        with scope.acting_as(scope.EVERYTHING):  # the platform sees both tenants' tags
            assert [(t["id_tag"], t["tenant_id"]) for t in await store.id_tags.all()] == [("CARD1", a)]


# ---- quotas under concurrent creates ------------------------------------------------------------

@pytest.mark.parametrize("quota", [1, 3])
async def test_concurrent_station_creates_never_exceed_the_quota(tmp_path, quota):
    async with open_store(database(tmp_path, "gw.db")) as store:
        a = await _tenant(store, "opa", max_stations=quota)
        outcomes: list[tuple] = []

        async def create(n: int) -> None:
            with scope.acting_as(acting(a)):
                outcomes.append(await store.stations.create({"code": f"S{n}", "name": f"site {n}"}, clock.iso()))

        async with trio.open_nursery() as nursery:
            for n in range(12):
                nursery.start_soon(create, n)
        created = [row for row, _, _ in outcomes if row is not None]
        refused = [why for _, _, why in outcomes if why is not None]
        assert len(created) == quota and len(refused) == 12 - quota
        assert all(row["tenant_id"] == a for row in created)
        assert all(f"at most {quota}" in why for why in refused), refused
        with scope.acting_as(acting(a)):
            assert (await store.stations.count(None))["total"] == quota


async def test_concurrent_charger_registrations_never_exceed_the_quota_of_the_tenant_or_above(tmp_path):
    """A's quota of 2 chargers covers its sub-operator A1 too: creates in A and A1 at once get 2 places."""
    async with open_store(database(tmp_path, "gw.db")) as store:
        a = await _tenant(store, "opa", max_chargers=2)
        a1 = await _tenant(store, "opa1", parent=a)
        outcomes: list[str] = []

        async def register(n: int, tenant: int) -> None:
            with scope.acting_as(acting(tenant)):
                outcome, _ = await store.registry.create(f"CP{n}", None, None, [], clock.iso())
                outcomes.append(outcome)

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(register, n, a if n % 2 else a1)
        assert sorted(outcomes) == ["created"] * 2 + ["quota"] * 8
        with scope.acting_as(acting(a, a1)):
            assert (await store.registry.page())["total"] == 2
        # moving a charger into a full tenant is refused too
        with scope.acting_as(scope.EVERYTHING):
            outcome, _ = await store.registry.create("CP-PLATFORM", None, None, [], clock.iso())
            charger_id = (await store.registry.page(charge_point_id="CP-PLATFORM"))["records"][0]["id"]
            outcome, why = await store.registry.update(charger_id, {"tenant_id": a1}, clock.iso())
            assert outcome == "quota" and "at most 2" in why


# ---- records created in the acting tenant; moving a charger ---------------------------------------

async def test_a_charger_is_created_in_the_acting_tenant_or_one_below_and_moves_within_the_scope(tmp_path):
    async with open_store(database(tmp_path, "gw.db")) as store:
        a = await _tenant(store, "opa")
        a1 = await _tenant(store, "opa1", parent=a)
        b = await _tenant(store, "opb")
        with scope.acting_as(acting(a, a1)):
            station, _, _ = await store.stations.create({"code": "S1", "name": "site"}, clock.iso())
            assert station["tenant_id"] == a
            outcome, cp = await store.registry.create("CP1", None, station["id"], [], clock.iso())
            assert outcome == "created" and cp["tenant_id"] == a
            # a tenant outside the scope is as unknown as a station outside it
            assert (await store.registry.create("CP2", None, None, [], clock.iso(), b))[0] == "no_tenant"
            # a station must be the charger's tenant's
            assert (await store.registry.create("CP2", None, station["id"], [], clock.iso(), a1))[0] == "other_tenant"
            outcome, moved = await store.registry.update(cp["id"], {"tenant_id": a1}, clock.iso())
            assert outcome == "updated" and (moved["tenant_id"], moved["station_id"]) == (a1, None)
            assert (await store.registry.update(cp["id"], {"tenant_id": b}, clock.iso()))[0] == "no_tenant"
        with scope.acting_as(acting(b)):  # B neither sees A's charger nor takes its id
            assert await store.registry.get(cp["id"]) is None
            assert await store.registry.create("CP1", None, None, [], clock.iso()) == ("exists", None)
            assert not await store.registry.visible("CP1")
        with scope.acting_as(acting(a1)):
            assert await store.registry.visible("CP1") and not await store.registry.visible("UNKNOWN")


# ---- a database from before tenants ---------------------------------------------------------------

def test_id_tags_of_a_database_from_before_tenants_are_the_platforms(tmp_path: Path):
    """A database as the gateway left it before tenants (migrations by user_version, none of the tenants'):
    migrated, its id tags are the platform's, valid on every charger as before."""
    conn = connect(str(tmp_path / "old.db"))
    for number, _name, sql in migration_files():
        if number not in NUMBERED_LATE and number < 23:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, created_at, updated_at) "
                 "VALUES ('OLD1', 'Blocked', NULL, 'P', ?, ?)", (AT, AT))
    migrate(conn)
    conn.row_factory = sqlite3.Row
    assert [dict(r) for r in conn.execute("SELECT tenant_id, id_tag, status, parent_id_tag FROM id_tags")] == [
        {"tenant_id": 1, "id_tag": "OLD1", "status": "Blocked", "parent_id_tag": "P"}]


async def test_an_operator_over_its_quota_is_told_so_over_http(nursery, tmp_path):
    """The routes answer a full quota with 409 quota_exceeded and the tenant's limit in words."""
    async with started(nursery, make_config(tmp_path)) as gw:
        a = await _tenant(gw.store, "opa", max_stations=1, max_chargers=1)
        with scope.acting_as(scope.EVERYTHING):
            assert await gw.store.users.put("ops", await hash_password("a long password"), "operator", clock.iso(),
                                            a) is None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.http_port}", timeout=10,
                                     auth=("ops@opa", "a long password")) as http:
            first = await http.post("/api/station", json={"stationCode": "S1", "stationName": "one"})
            assert first.status_code == 201 and first.json()["data"]["tenantId"] == a
            second = await http.post("/api/station", json={"stationCode": "S2", "stationName": "two"})
            assert second.status_code == 409 and second.json()["error"] == "quota_exceeded"
            assert "at most 1 station" in second.json()["message"]
            assert (await http.post("/api/charger", json={"chargePointId": "CP1"})).status_code == 201
            refused = await http.post("/api/charger", json={"chargePointId": "CP2"})
            assert refused.status_code == 409 and refused.json()["error"] == "quota_exceeded", refused.text
            assert "at most 1 charger" in refused.json()["message"]
