"""OCTT 1.6 central-system test cases, Reservation profile (10 cases)."""

from __future__ import annotations

import pytest
import trio

from gateway.simulator.charger import Faults
from tests.waiting import until

from .support import (add_tag, ahead, charger_status, get_ok, octt, simulated, start_transaction, status,
                      transaction, transactions)

pytestmark = pytest.mark.octt("Reservation")


async def reservation(http, reservation_id: int) -> dict:
    return await get_ok(http, f"/api/reservations/{reservation_id}")


async def reserve(http, cp_id: str, connector: int, id_tag: str, expiry: str | None = None, **extra) -> dict:
    body = await get_ok(http, f"/api/ocpp/reserveNow/{cp_id}", connectorId=connector, idTag=id_tag,
                        expiryDate=expiry or ahead(hours=1), **extra)
    assert isinstance(body["reservationId"], int) and body["reservationId"] > 0
    return body


async def _connector_is(http, cp_id: str, connector: str, state: str) -> bool:
    return (await charger_status(http, cp_id))["connectors"].get(connector) == state


async def test_TC_046_reservation_of_a_connector_transaction(gateway):
    async with simulated(gateway, "TC046") as sim, gateway.http() as http:
        await add_tag(http, "TAG046")
        expiry = ahead(hours=1)
        body = await reserve(http, "TC046", 1, "TAG046", expiry)
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        rid = body["reservationId"]
        assert sim.received("ReserveNow") == [{"connectorId": 1, "idTag": "TAG046", "expiryDate": expiry,
                                               "reservationId": rid}]
        await until(lambda: _connector_is(http, "TC046", "1", "Reserved"))
        stored = await reservation(http, rid)
        assert (stored["status"], stored["connectorId"], stored["idTag"], stored["expiryDate"]) == \
            ("Accepted", 1, "TAG046", expiry)

        tx_id = await sim.start_session(1, "TAG046")  # the holder arrives: StartTransaction with reservationId
        [(start, answer)] = [(p, a) for action, p, a in sim.sent if action == "StartTransaction"]
        assert start["reservationId"] == rid and answer["idTagInfo"]["status"] == "Accepted"
        assert (await transaction(http, tx_id))["reservationId"] == rid
        stored = await reservation(http, rid)
        assert (stored["status"], stored["transactionId"]) == ("Used", tx_id)
        await until(lambda: _connector_is(http, "TC046", "1", "Charging"))


async def test_TC_047_reservation_of_a_connector_expire(gateway):
    async with octt(gateway, "TC047") as cp, gateway.http() as http:
        expiry = ahead(seconds=0.4)
        body = await reserve(http, "TC047", 1, "TAG047", expiry)
        assert body["status"] == "Accepted"
        await cp.result("StatusNotification", status(1, "Reserved"))
        assert await _connector_is(http, "TC047", "1", "Reserved")
        await trio.sleep(0.5)  # the reservation runs out; the charger frees the connector
        assert await cp.result("StatusNotification", status(1, "Available")) == {}
        assert await _connector_is(http, "TC047", "1", "Available")
        stored = await reservation(http, body["reservationId"])
        assert stored["expiryDate"] == expiry and stored["transactionId"] is None
        assert await transactions(http, "TC047") == []


async def _refused(gateway, cp_id: str, expected: str, prepare, faults: Faults | None = None) -> None:
    async with simulated(gateway, cp_id, faults) as sim, gateway.http() as http:
        await prepare(sim, http)
        body = await reserve(http, cp_id, 1, f"TAG-{cp_id}")
        assert body["status"] == expected and body["result"] == {"status": expected}
        assert sim.connectors[1].reserved is None
        assert (await reservation(http, body["reservationId"]))["status"] == expected


async def test_TC_048_1_reservation_of_a_connector_faulted(gateway):
    async def fault(sim, http):
        await sim.status(sim.connectors[1], "Faulted", "GroundFailure")
        await until(lambda: _connector_is(http, "TC0481", "1", "Faulted"))

    await _refused(gateway, "TC0481", "Faulted", fault)


async def test_TC_048_2_reservation_of_a_connector_occupied(gateway):
    async def occupy(sim, http):
        assert await sim.start_session(1, "TAG-BUSY") > 0

    await _refused(gateway, "TC0482", "Occupied", occupy)


async def test_TC_048_3_reservation_of_a_connector_unavailable(gateway):
    async def inoperative(sim, http):
        body = await get_ok(http, "/api/ocpp/changeAvailability/TC0483", connectorId=1, type="Inoperative")
        assert body["status"] == "Accepted"
        await until(lambda: _connector_is(http, "TC0483", "1", "Unavailable"))

    await _refused(gateway, "TC0483", "Unavailable", inoperative)


async def test_TC_048_4_reservation_of_a_connector_rejected(gateway):
    async def nothing(sim, http):
        pass

    await _refused(gateway, "TC0484", "Rejected", nothing, Faults({"ReserveNow": "reject"}))


async def test_TC_049_reservation_of_a_charge_point_transaction(gateway):
    async with simulated(gateway, "TC049", connectors=2) as sim, gateway.http() as http:
        await add_tag(http, "TAG049")
        body = await reserve(http, "TC049", 0, "TAG049")
        assert body["status"] == "Accepted"
        rid = body["reservationId"]
        assert sim.connectors[0].reserved["reservationId"] == rid
        assert (await reservation(http, rid))["connectorId"] == 0

        tx_id = await sim.start_session(2, "TAG049", reservation_id=rid)
        assert tx_id > 0
        tx = await transaction(http, tx_id)
        assert (tx["connectorId"], tx["reservationId"]) == (2, rid)
        stored = await reservation(http, rid)
        assert (stored["status"], stored["transactionId"]) == ("Used", tx_id)


async def test_TC_051_cancel_reservation(gateway):
    async with simulated(gateway, "TC051") as sim, gateway.http() as http:
        rid = (await reserve(http, "TC051", 1, "TAG051"))["reservationId"]
        await until(lambda: _connector_is(http, "TC051", "1", "Reserved"))
        body = await get_ok(http, "/api/ocpp/cancelReservation/TC051", reservationId=rid)
        assert body["status"] == "Accepted" and body["result"] == {"status": "Accepted"}
        assert sim.received("CancelReservation") == [{"reservationId": rid}]
        assert (await reservation(http, rid))["status"] == "Cancelled"
        await until(lambda: _connector_is(http, "TC051", "1", "Available"))


async def test_TC_052_cancel_reservation_rejected(gateway):
    async with simulated(gateway, "TC052") as sim, gateway.http() as http:
        rid = (await reserve(http, "TC052", 1, "TAG052"))["reservationId"]
        body = await get_ok(http, "/api/ocpp/cancelReservation/TC052", reservationId=rid + 1000)
        assert body["status"] == "Rejected" and body["result"] == {"status": "Rejected"}
        assert (await reservation(http, rid))["status"] == "Accepted"  # untouched
        assert sim.connectors[1].reserved is not None


async def test_TC_053_use_a_reserved_connector_with_parentidtag(gateway):
    async with octt(gateway, "TC053") as cp, gateway.http() as http:
        await add_tag(http, "PARENT053")
        await add_tag(http, "CHILD053-A", parentIdTag="PARENT053")
        await add_tag(http, "CHILD053-B", parentIdTag="PARENT053")
        body = await reserve(http, "TC053", 1, "CHILD053-A", parentIdTag="PARENT053")
        assert body["status"] == "Accepted"
        rid = body["reservationId"]
        assert cp.received[0][2]["parentIdTag"] == "PARENT053"
        assert (await reservation(http, rid))["parentIdTag"] == "PARENT053"
        await cp.result("StatusNotification", status(1, "Reserved"))

        # Another tag of the same group: the charger learns its parent and lets it use the reservation.
        answer = await cp.result("Authorize", {"idTag": "CHILD053-B"})
        assert answer["idTagInfo"] == {"status": "Accepted", "parentIdTag": "PARENT053"}
        await cp.result("StatusNotification", status(1, "Preparing"))
        started_tx = await start_transaction(cp, "CHILD053-B", 1, reservationId=rid)
        assert started_tx["idTagInfo"] == {"status": "Accepted", "parentIdTag": "PARENT053"}
        await cp.result("StatusNotification", status(1, "Charging"))
        stored = await reservation(http, rid)
        assert (stored["status"], stored["transactionId"]) == ("Used", started_tx["transactionId"])
        assert (await transaction(http, started_tx["transactionId"]))["idTag"] == "CHILD053-B"
