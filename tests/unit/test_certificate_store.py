"""The certificate records of a charger belong to the charger's tenant: another tenant's caller sees none of them
and cannot change them, exactly as if they did not exist; the authority is read by the gateway only."""

from __future__ import annotations

import sqlite3

import trio

from gateway.store import scope
from gateway.store.certificates import Certificates
from gateway.store.db import Database

AT = "2026-06-01T00:00:00.000Z"


def _register(conn: sqlite3.Connection, cp_id: str, tenant: int) -> None:
    conn.execute("INSERT INTO charger_registry (charge_point_id, tenant_id, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?)", (cp_id, tenant, AT, AT))


async def test_charger_certificates_are_scoped_by_the_chargers_tenant(tmp_path):
    db = Database(str(tmp_path / "c.db"))
    await db.open()
    try:
        store = Certificates(db)
        await db.run(_register, "T2-CP", 2)
        for serial, cp_id, not_after in (("a1", "T2-CP", "2026-06-10T00:00:00.000Z"),
                                         ("b2", "PLATFORM-CP", "2027-06-01T00:00:00.000Z")):
            await store.record_issued(serial, cp_id, f"CN={cp_id}", "ECDSA secp256r1", AT, not_after, "PEM", AT)
            await store.installed_add(cp_id, "CentralSystemRootCertificate", "PEM", "CN=root", serial, not_after,
                                      "Accepted", AT)
        tenant_2 = scope.Scope(2, frozenset({2}))
        with scope.acting_as(tenant_2):
            page = await store.issued(None, None, None, 1, 50)
            assert [r["serial"] for r in page["records"]] == ["a1"] and page["total"] == 1
            assert await store.issued_one("b2") is None
            assert await store.revoke("b2", "no", AT) is None  # not theirs: as if it did not exist
            assert [r["serial"] for r in await store.installed("T2-CP", None)] == ["a1"]
            assert await store.installed("PLATFORM-CP", None) == []
            assert await store.installed_one("PLATFORM-CP", 2) is None
            assert (await store.revoke("a1", "replaced", AT))["revocation_reason"] == "replaced"
        assert not await store.is_revoked("b2") and await store.is_revoked("a1")
        # The platform sees both; expiring: only valid ones ending before the moment.
        page = await store.issued(None, "2026-07-01T00:00:00.000Z", None, 1, 50)
        assert page["total"] == 0  # a1 would, but it is revoked
        assert (await store.issued(None, "2027-07-01T00:00:00.000Z", None, 1, 50))["total"] == 1
        assert await store.expiring_count("2030-01-01T00:00:00.000Z") == 1
        # A second revocation keeps the first's time and reason.
        again = await store.revoke("a1", "other", "2026-06-02T00:00:00.000Z")
        assert (again["revoked_at"], again["revocation_reason"]) == (AT, "replaced")
        # Firmware files belong to the tenant that signed them.
        with scope.acting_as(tenant_2):
            mine = await store.firmware_add("fw.bin", "00" * 32, 3, b"abc", None, "sig", "PEM", AT)
            assert mine["tenant_id"] == 2 and mine["served"] == 1 and "content" not in mine
        with scope.acting_as(scope.Scope(3, frozenset({3}))):
            assert await store.firmware(mine["id"]) is None
            assert (await store.firmware_list(1, 50))["total"] == 0
        assert await store.firmware_content(mine["id"], "00" * 32) == ("fw.bin", b"abc")
        assert await store.firmware_content(mine["id"], "11" * 32) is None  # its address names its hash
        # The authority: one per role unless replaced.
        assert await store.set_authority("issuing", "C", "", "K", False, AT, False)
        assert not await store.set_authority("issuing", "C2", "", "K2", False, AT, False)
        assert (await store.authority("issuing"))["certificate_pem"] == "C"
        assert await store.set_authority("issuing", "C2", "", "K2", True, AT, True)
        assert (await store.authority("issuing"))["key_pem"] == "K2"
    finally:
        await db.close()
        await trio.sleep(0)
