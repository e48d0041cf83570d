"""Commands to a charger: one in flight, routed by unique id, typed errors for CALLERROR and time-out."""

from __future__ import annotations

import pytest
import trio

from gateway.chargepoint.errors import CallErrorReceived, CallTimeout, NotConnected
from tests.helpers import charger


async def test_callerror_reaches_the_caller_typed(gateway):
    async with charger(gateway.ocpp_port, "CP-E") as cp, trio.open_nursery() as n:
        async def answer():
            call = await cp.next_call()
            await cp.send([4, call[1], "NotSupported", "no reset here", {"hint": 1}])
        n.start_soon(answer)
        with pytest.raises(CallErrorReceived) as err:
            await gateway.registry.call("CP-E", "Reset", {"type": "Soft"}, timeout=5)
    assert (err.value.code, err.value.description, err.value.details) == ("NotSupported", "no reset here", {"hint": 1})


async def test_timeout_reaches_the_caller_typed_and_a_late_answer_is_harmless(gateway):
    async with charger(gateway.ocpp_port, "CP-T") as cp:
        with pytest.raises(CallTimeout) as err:
            await gateway.registry.call("CP-T", "ClearCache", {}, timeout=0.2)
        assert err.value.sent
        late = await cp.next_call()
        await cp.send([3, late[1], {"status": "Accepted"}])  # nobody waits any more
        await cp.result("Heartbeat", {})


async def test_unknown_charger_is_not_connected(gateway):
    with pytest.raises(NotConnected):
        await gateway.registry.call("ghost", "ClearCache", {})


async def test_one_call_in_flight_others_queue_behind_it(gateway):
    async with charger(gateway.ocpp_port, "CP-Q") as cp, trio.open_nursery() as n:
        results = {}

        async def command(i):
            results[i] = await gateway.registry.call("CP-Q", "DataTransfer", {"vendorId": str(i)}, timeout=5)

        for i in range(3):
            n.start_soon(command, i)
        seen = []
        for _ in range(3):
            call = await cp.next_call()
            seen.append(call[3]["vendorId"])
            # While this one is unanswered, nothing else is sent.
            with trio.move_on_after(0.1):
                extra = await cp.receive()
                pytest.fail(f"a second CALL was sent while one was in flight: {extra}")
            await cp.send([3, call[1], {"status": "Accepted", "data": call[3]["vendorId"]}])
    assert sorted(seen) == ["0", "1", "2"]
    assert {i: r["data"] for i, r in results.items()} == {0: "0", 1: "1", 2: "2"}


async def test_disconnect_fails_the_pending_call(gateway):
    errors = []

    async def command():
        try:
            await gateway.registry.call("CP-GONE", "ClearCache", {}, timeout=5)
        except NotConnected as exc:
            errors.append(exc)

    async with trio.open_nursery() as n:
        async with charger(gateway.ocpp_port, "CP-GONE") as cp:
            n.start_soon(command)
            await cp.next_call()
        # the socket closes here, before any answer
    assert len(errors) == 1


async def test_charger_answers_are_schema_checked_and_violations_recorded(gateway):
    async with charger(gateway.ocpp_port, "CP-V") as cp, trio.open_nursery() as n:
        async def answer():
            call = await cp.next_call()
            await cp.send([3, call[1], {"status": "Maybe"}])
        n.start_soon(answer)
        assert await gateway.registry.call("CP-V", "ClearCache", {}, timeout=5) == {"status": "Maybe"}
    violations = await gateway.store.chargers.violations("CP-V")
    assert [(v["action"], v["kind"], v["code"]) for v in violations] == [
        ("ClearCache", "response", "PropertyConstraintViolation")]
