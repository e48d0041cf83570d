"""Shared pieces of the OCTT conformance suite: the charger that plays the test tool, the operator's HTTP calls.

Two kinds of charger play the OCTT's part:

- `octt(gateway, cp_id)`: the scripted charger of tests/responder.py. The test sends each of the case's
  charger messages itself (`await cp.result(action, payload)`, schema-checking the gateway's answer) and
  sets how the charger answers the gateway's commands.
- `simulated(gateway, cp_id)`: the full simulated charger (gateway/simulator), wrapped so that every answer
  the gateway gives to one of its CALLs is checked against the 1.6 response schema as well, and every
  command it receives is recorded.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, AsyncIterator

import httpx
import jsonschema
import trio

from gateway import clock
from gateway.simulator.charger import Faults, Settings, SimCharger
from gateway.simulator.link import CallFailed, Reply
from tests.helpers import assert_schema_valid
from tests.responder import AnsweringCharger, answering
from tests.waiting import until


# ---- time -----------------------------------------------------------------------------

def ago(**delta: float) -> str:
    """An OCPP timestamp this long before now: ago(hours=2)."""
    return clock.iso(clock.now() - timedelta(**delta))


def ahead(**delta: float) -> str:
    return clock.iso(clock.now() + timedelta(**delta))


def now() -> str:
    return clock.iso()


def is_recent_utc(text: str, seconds: float = 60) -> bool:
    moment = clock.parse(text)
    return moment is not None and text.endswith("Z") and abs((clock.now() - moment).total_seconds()) < seconds




# ---- the charger: scripted ------------------------------------------------------------

@asynccontextmanager
async def octt(gateway, cp_id: str, boot: bool = True) -> AsyncIterator[AnsweringCharger]:
    async with answering(gateway.ocpp_port, cp_id, boot=boot) as cp:
        yield cp


def status(connector: int, state: str, error_code: str = "NoError", **extra: Any) -> dict:
    return {"connectorId": connector, "status": state, "errorCode": error_code, "timestamp": now(), **extra}


async def start_transaction(cp: AnsweringCharger, id_tag: str, connector: int = 1, meter_start: int = 0,
                            timestamp: str | None = None, **extra: Any) -> dict:
    """StartTransaction with the checks every case leans on: schema-valid, transactionId > 0."""
    answer = await cp.result("StartTransaction", {"connectorId": connector, "idTag": id_tag,
                                                  "meterStart": meter_start, "timestamp": timestamp or now(),
                                                  **extra})
    assert isinstance(answer["transactionId"], int) and answer["transactionId"] > 0, answer
    return answer


# ---- the charger: simulated -----------------------------------------------------------

class CheckedSim(SimCharger):
    """The simulator, recording what it sends and receives and schema-checking the gateway's answers."""

    def __init__(self, settings: Settings, faults: Faults | None = None):
        super().__init__(settings, faults)
        self.sent: list[tuple[str, dict, dict | None]] = []  # (action, payload, answer; None for a CALLERROR)
        self.commands: list[tuple[str, dict]] = []  # CALLs from the gateway
        self.schema_errors: list[str] = []
        self.call_errors: list[str] = []

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await super().call(action, payload)
        except CallFailed as exc:
            if exc.code not in ("NotConnected",):
                self.call_errors.append(f"{action}: {exc}")
            self.sent.append((action, payload, None))
            raise
        try:
            assert_schema_valid(action, answer)
        except jsonschema.ValidationError as exc:
            self.schema_errors.append(f"{action} answered {answer}: {exc.message}")
        self.sent.append((action, payload, answer))
        return answer

    async def _on_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | Reply:
        self.commands.append((action, payload))
        return await super()._on_call(action, payload)

    def sent_actions(self) -> list[str]:
        return [a for a, _, _ in self.sent]

    def answers(self, action: str) -> list[dict | None]:
        return [answer for a, _, answer in self.sent if a == action]

    def received(self, action: str) -> list[dict]:
        return [p for a, p in self.commands if a == action]


@asynccontextmanager
async def simulated(gateway, cp_id: str, faults: Faults | None = None, *, checked: bool = True,
                    **settings: Any) -> AsyncIterator[CheckedSim]:
    """A simulated charger connected to `gateway` for the block, online when it starts. `checked` (the conformance
    cases): every answer of the gateway was schema-valid and none was a CALLERROR."""
    settings = {"meter_interval": 0.1, "reconnect_delay": 0.05, **settings}
    sim = CheckedSim(Settings(f"ws://127.0.0.1:{gateway.ocpp_port}/ocpp", cp_id, **settings), faults)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sim.run)
        with trio.fail_after(5):
            await sim.online.wait()
        try:
            yield sim
        finally:
            nursery.cancel_scope.cancel()
    if checked:
        assert not sim.schema_errors, sim.schema_errors
        assert not sim.call_errors, sim.call_errors


async def online_again(sim: SimCharger, boots_before: int, timeout: float = 5) -> None:
    """Wait for the simulator to have booted again and be online."""
    await until(lambda: sim.stats.boots > boots_before and sim.online.is_set(), timeout)


# ---- the operator -----------------------------------------------------------------------

def ok(response: httpx.Response) -> Any:
    """A 200 JSON answer."""
    assert response.status_code == 200, f"{response.request.url}: {response.status_code} {response.text}"
    return response.json()


async def get_ok(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    return ok(await http.get(path, params={k: str(v) for k, v in params.items()}))


async def post_ok(http: httpx.AsyncClient, path: str, body: Any, **params: Any) -> Any:
    return ok(await http.post(path, json=body, params={k: str(v) for k, v in params.items()}))


async def add_tag(http: httpx.AsyncClient, id_tag: str, **fields: Any) -> dict:
    r = await http.post("/api/id-tags", json={"idTag": id_tag, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def transaction(http: httpx.AsyncClient, transaction_id: int) -> dict:
    return await get_ok(http, f"/api/transactions/{transaction_id}")


async def transactions(http: httpx.AsyncClient, cp_id: str, state: str | None = None) -> list[dict]:
    params = {"cpId": cp_id, **({"state": state} if state else {})}
    return (await get_ok(http, "/api/transactions", **params))["records"]


async def charger_status(http: httpx.AsyncClient, cp_id: str) -> dict:
    return await get_ok(http, f"/api/ocpp/status/{cp_id}")


async def notifications(http: httpx.AsyncClient, cp_id: str, action: str) -> list[dict]:
    """In the order the charger sent them (the API pages newest first)."""
    page = await get_ok(http, f"/api/chargers/{cp_id}/notifications", action=action, size=500)
    return page["records"][::-1]


async def stopped(http: httpx.AsyncClient, transaction_id: int) -> bool:
    return (await transaction(http, transaction_id))["stoppedAt"] is not None


def tx_profile(profile_id: int = 1, limit: float = 16.0, purpose: str = "TxProfile", **extra: Any) -> dict:
    return {"chargingProfileId": profile_id, "stackLevel": 0, "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A",
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]},
            **extra}
