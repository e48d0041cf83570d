"""The charger side of the registry, against a real gateway: unknown chargers adopted, registered chargers
accepted at boot, and chargers the operator keeps out of service made Inoperative after every boot and
reconnection, with their remote starts refused before anything is sent (docs/api.md, the charger registry).

"Nothing was sent" is checked without waiting for a time: the gateway makes chargers Inoperative one
event after another, so once a later charger (a sentinel, disabled too) has received its ChangeAvailability,
one for the charger under test would have been recorded already.
"""

from __future__ import annotations

import pytest
import structlog

from gateway import clock
from gateway.chargepoint.handlers import boot_answer
from gateway.store.chargers import Registration, out_of_service
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger
from tests.integration.test_billing_orders import billing_config, refused
from tests.responder import answering
from tests.waiting import until

INOPERATIVE = {"connectorId": 0, "type": "Inoperative"}


async def registry_entry(gw, cp_id: str) -> dict | None:
    """The charger's row in the registry table, committed."""
    def read(conn):
        row = conn.execute("SELECT * FROM charger_registry WHERE charge_point_id = ?", (cp_id,)).fetchone()
        return dict(row) if row else None
    return await gw.store.db.run(read)


async def register(gw, cp_id: str) -> None:
    """A charger the operator registered before it connected (as POST /api/charger records it)."""
    at = clock.iso()
    await gw.store.db.run(lambda conn: conn.execute(
        "INSERT INTO charger_registry (charge_point_id, adopted, created_at, updated_at) VALUES (?, 0, ?, ?) "
        "ON CONFLICT (charge_point_id) DO UPDATE SET adopted = 0", (cp_id, at, at)))


async def boot(port: int, cp_id: str) -> str:
    """Connect, boot, disconnect: the BootNotification's answer."""
    async with charger(port, cp_id) as cp:
        return (await cp.result("BootNotification", BOOT))["status"]


async def sent_commands(gw, cp_id: str, action: str) -> list[dict]:
    return (await gw.store.commands.list(cp_id=cp_id, action=action, size=100))["records"]


def inoperative_received(cp, count: int = 1) -> bool:
    """Whether the charger has received `count` ChangeAvailability Inoperative (and nothing else)."""
    return [r[1:] for r in cp.received] == [["ChangeAvailability", INOPERATIVE]] * count


async def sentinel(gw, cp_id: str = "SENTINEL") -> None:
    """Let a disabled charger connect and boot, and wait until it is made Inoperative: every earlier
    connection's or boot's ChangeAvailability has then been recorded."""
    if await registry_entry(gw, cp_id) is None:
        await boot(gw.ocpp_port, cp_id)  # adopted, then disabled
        assert await gw.store.chargers.set_availability(cp_id, False, None, clock.iso())
    async with answering(gw.ocpp_port, cp_id) as cp:
        await until(lambda: inoperative_received(cp, 2))  # at its connection and at its boot


# ---- the rules, without a gateway ------------------------------------------------------------------


@pytest.mark.parametrize(("known", "policy", "answer"), [
    (Registration(None, False, False), "pending", "Pending"),       # never seen: the policy
    (Registration(None, False, False), "reject", "Rejected"),
    (Registration("Pending", False, False), "accept", "Pending"),    # adopted: as answered before
    (Registration(None, False, True), "reject", "Accepted"),        # registered: known
    (Registration("Pending", False, True), "pending", "Accepted"),  # registered after a Pending boot
    (Registration("Rejected", True, True), "accept", "Rejected"),   # the operator's decision wins
    (Registration("Pending", True, False), "accept", "Pending"),
])
def test_how_a_boot_is_answered(known, policy, answer):
    assert boot_answer(known, policy) == answer


@pytest.mark.parametrize(("enabled", "operator_status", "why"), [
    (1, "in_service", None), (0, "in_service", "disabled"), (0, "retired", "disabled"),
    (1, "maintenance", "maintenance"), (1, "retired", "retired"),
])
def test_why_a_charger_is_kept_out_of_service(enabled, operator_status, why):
    assert out_of_service(enabled, operator_status) == why


# ---- adoption ------------------------------------------------------------------------------------


async def test_an_unknown_charger_is_adopted_into_the_registry_once(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw:
        assert await registry_entry(gw, "CP-NEW") is None
        with structlog.testing.capture_logs() as logs:
            assert await boot(gw.ocpp_port, "CP-NEW") == "Accepted"
            entry = await registry_entry(gw, "CP-NEW")
            assert entry is not None
            assert (entry["adopted"], entry["station_id"], entry["enabled"], entry["operator_status"]) == \
                (1, None, 1, "in_service")
            assert [e["cp"] for e in logs if e["event"] == "adopted into the registry"] == ["CP-NEW"]
            # a reconnection finds it known: not adopted again
            assert await boot(gw.ocpp_port, "CP-NEW") == "Accepted"
            assert [e["cp"] for e in logs if e["event"] == "adopted into the registry"] == ["CP-NEW"]
        assert await registry_entry(gw, "CP-NEW") == entry


async def test_with_reject_an_unknown_charger_is_added_all_the_same_and_rejected(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_chargers="reject")) as gw:
        assert await boot(gw.ocpp_port, "CP-REJ") == "Rejected"
        entry = await registry_entry(gw, "CP-REJ")
        assert entry is not None and entry["adopted"] == 1
        assert await boot(gw.ocpp_port, "CP-REJ") == "Rejected"  # as today: still rejected


# ---- known chargers --------------------------------------------------------------------------------


async def test_registering_an_adopted_charger_makes_it_known_under_the_same_charger_id(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_chargers="pending")) as gw, gw.http() as http:
        assert await boot(gw.ocpp_port, "CP-CLAIM") == "Pending"
        adopted = await registry_entry(gw, "CP-CLAIM")
        r = await http.post("/api/charger", json={"chargePointId": "CP-CLAIM", "chargerName": "Bay 1"})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert (data["chargerId"], data["chargerName"], data["adopted"]) == (adopted["id"], "Bay 1", False)
        assert await boot(gw.ocpp_port, "CP-CLAIM") == "Accepted"  # registered now: known
        r = await http.post("/api/charger", json={"chargePointId": "CP-CLAIM"})
        assert r.status_code == 409, r.text  # registered by the operator: once


async def test_a_registered_charger_is_accepted_whatever_unknown_chargers_says(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_chargers="pending")) as gw, gw.http() as http:
        await register(gw, "CP-REG")
        assert await boot(gw.ocpp_port, "CP-REG") == "Accepted"
        assert await boot(gw.ocpp_port, "CP-UNKNOWN") == "Pending"  # the policy still answers the others
        assert (await registry_entry(gw, "CP-REG"))["adopted"] == 0  # connecting does not make it adopted

        # An adopted charger answered Pending, then registered by the operator: known from then on.
        assert await boot(gw.ocpp_port, "CP-UNKNOWN") == "Pending"
        await register(gw, "CP-UNKNOWN")
        assert await boot(gw.ocpp_port, "CP-UNKNOWN") == "Accepted"

        # The operator's decision on the registration wins over the registry.
        r = await http.put("/api/chargers/CP-REG/registration", json={"status": "Rejected"})
        assert r.status_code == 200, r.text
        assert await boot(gw.ocpp_port, "CP-REG") == "Rejected"
        r = await http.put("/api/chargers/CP-REG/registration", json={"status": "Accepted"})
        assert r.status_code == 200, r.text
        assert await boot(gw.ocpp_port, "CP-REG") == "Accepted"


async def test_the_operators_registration_decision_wins_for_an_adopted_charger_too(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path, unknown_chargers="pending")) as gw, gw.http() as http:
        assert await boot(gw.ocpp_port, "CP-ADOPTED") == "Pending"
        r = await http.put("/api/chargers/CP-ADOPTED/registration", json={"status": "Accepted"})
        assert r.status_code == 200, r.text
        assert await boot(gw.ocpp_port, "CP-ADOPTED") == "Accepted"


# ---- kept out of service ----------------------------------------------------------------------------


async def test_a_disabled_charger_is_made_inoperative_after_each_boot_and_reconnection(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw, gw.http() as http:
        assert await boot(gw.ocpp_port, "CP-D") == "Accepted"
        assert await gw.store.chargers.set_availability("CP-D", False, None, clock.iso())
        assert await gw.store.chargers.availability("CP-D") == "disabled"

        async with answering(gw.ocpp_port, "CP-D", boot=False) as cp:  # a reconnection without a boot
            await until(lambda: inoperative_received(cp))
            await cp.result("BootNotification", BOOT)  # a boot of its own: again
            await until(lambda: inoperative_received(cp, 2))
        async with answering(gw.ocpp_port, "CP-D") as cp:  # reconnects and boots: at both
            await until(lambda: inoperative_received(cp, 2))

            # Sent through the command service: recorded like any command, with the charger's answer.
            async def answered() -> list[dict]:
                recorded = await sent_commands(gw, "CP-D", "ChangeAvailability")
                return recorded if all(c["outcome"] == "answered" for c in recorded) else []
            recorded = await until(answered)
            assert len(recorded) == 4 and all(c["result"] == {"status": "Accepted"} for c in recorded)
            assert [c["payload"] for c in recorded] == [INOPERATIVE] * 4
            r = await http.get("/api/commands", params={"cpId": "CP-D"})  # as the operator sees them
            assert r.status_code == 200, r.text
            assert [c["action"] for c in r.json()["records"]] == ["ChangeAvailability"] * 4

        # Enabled again: nothing more is sent, at a boot or at a reconnection.
        assert await gw.store.chargers.set_availability("CP-D", True, None, clock.iso())
        async with answering(gw.ocpp_port, "CP-D") as cp:
            await sentinel(gw)
            assert cp.received == []
        assert len(await sent_commands(gw, "CP-D", "ChangeAvailability")) == 4


async def test_a_charger_in_maintenance_or_retired_is_kept_inoperative_too(nursery, tmp_path):
    async with started(nursery, make_config(tmp_path)) as gw:
        await boot(gw.ocpp_port, "CP-M")
        for status in ("maintenance", "retired"):
            assert await gw.store.chargers.set_availability("CP-M", None, status, clock.iso())
            assert await gw.store.chargers.availability("CP-M") == status
            async with answering(gw.ocpp_port, "CP-M") as cp:
                await until(lambda: inoperative_received(cp, 2))
        assert await gw.store.chargers.set_availability("CP-M", None, "in_service", clock.iso())
        assert await gw.store.chargers.availability("CP-M") is None


async def test_a_charger_not_accepted_is_not_sent_anything_when_it_connects(nursery, tmp_path):
    """Before its boot is accepted a charger is sent nothing (OCPP 1.6 section 4.2): a disabled charger
    answered Pending is not made Inoperative, neither at its boot nor when it reconnects."""
    async with started(nursery, make_config(tmp_path, unknown_chargers="pending")) as gw:
        assert await boot(gw.ocpp_port, "CP-P") == "Pending"
        assert await gw.store.chargers.set_availability("CP-P", False, None, clock.iso())
        async with answering(gw.ocpp_port, "CP-P") as cp:  # boots: Pending
            async with gw.http() as http:  # the sentinel must be accepted
                r = await http.put("/api/chargers/SENTINEL/registration", json={"status": "Accepted"})
                assert r.status_code == 200, r.text
            await sentinel(gw)
            assert cp.received == []
        assert await sent_commands(gw, "CP-P", "ChangeAvailability") == []


async def test_remote_starts_to_a_charger_kept_out_of_service_are_refused_before_anything_is_sent(
        nursery, tmp_path):
    async with started(nursery, billing_config(tmp_path)) as gw, gw.http() as http:
        await boot(gw.ocpp_port, "CP-OFF")
        assert await gw.store.chargers.set_availability("CP-OFF", False, None, clock.iso())
        async with answering(gw.ocpp_port, "CP-OFF") as cp:
            await until(lambda: inoperative_received(cp, 2))

            r = await http.get("/api/ocpp/remoteStart/CP-OFF", params={"idTag": "TAG1", "connectorId": "1"})
            assert r.status_code == 409, r.text
            body = r.json()
            assert body["error"] == "conflict" and "disabled" in body["message"]
            assert (body["cpId"], body["reason"]) == ("CP-OFF", "disabled")

            r = await http.post("/api/order/start", json={"sessionId": "S-OFF", "cpId": "CP-OFF", "idTag": "TAG1",
                                                          "connectorId": 1})
            assert "disabled" in refused(r, 409, "conflict")["message"]
            assert await gw.store.orders.find("session_id", "S-OFF") is None  # refused before any order exists

            assert await gw.store.chargers.set_availability("CP-OFF", True, "maintenance", clock.iso())
            r = await http.get("/api/ocpp/remoteStart/CP-OFF", params={"idTag": "TAG1"})
            assert r.status_code == 409 and "maintenance" in r.json()["message"], r.text

            assert inoperative_received(cp, 2)  # and no RemoteStartTransaction
            assert await sent_commands(gw, "CP-OFF", "RemoteStartTransaction") == []

            # Back in service: the same start goes through.
            assert await gw.store.chargers.set_availability("CP-OFF", None, "in_service", clock.iso())
            r = await http.get("/api/ocpp/remoteStart/CP-OFF", params={"idTag": "TAG1"})
            assert r.status_code == 200, r.text
            assert [r[1] for r in cp.received] == ["ChangeAvailability"] * 2 + ["RemoteStartTransaction"]
