"""A charger for API tests that answers the gateway's commands as a real charger would.

    async with answering(gateway.ocpp_port, "CP1") as cp:      # boots, then answers in the background
        cp.answers["Reset"] = {"status": "Rejected"}           # a rejection
        cp.answers["ClearCache"] = CallErrorAnswer("NotSupported", "no cache")
        cp.answers["UnlockConnector"] = SILENCE                # never answers
        ... drive the HTTP API ...
        cp.received  # every CALL the gateway sent: [unique_id, action, payload]
        await cp.result("StartTransaction", {...})             # the charger's own CALLs still work
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import attrs
import trio

from tests.helpers import BOOT, Charger, assert_schema_valid, charger


@attrs.frozen
class CallErrorAnswer:
    code: str
    description: str = ""
    details: dict = attrs.field(factory=dict)


SILENCE = object()

# What a compliant charger answers by default (each valid against the 1.6 response schema).
DEFAULT_ANSWERS: dict[str, Any] = {
    "CancelReservation": {"status": "Accepted"},
    "ChangeAvailability": {"status": "Accepted"},
    "ChangeConfiguration": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "ok"},
    "GetCompositeSchedule": {"status": "Accepted", "connectorId": 1, "scheduleStart": "2026-01-01T00:00:00Z",
                             "chargingSchedule": {"chargingRateUnit": "A",
                                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}},
    "GetConfiguration": {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"},
    ], "unknownKey": []},
    "GetDiagnostics": {"fileName": "diagnostics.log"},
    "GetLocalListVersion": {"listVersion": 0},
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SendLocalList": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "UpdateFirmware": {},
    "ExtendedTriggerMessage": {"status": "Accepted"},
    "GetLog": {"status": "Accepted", "filename": "log.txt"},
    "SignedUpdateFirmware": {"status": "Accepted"},
    "CertificateSigned": {"status": "Accepted"},
    "InstallCertificate": {"status": "Accepted"},
    "GetInstalledCertificateIds": {"status": "NotFound"},
    "DeleteCertificate": {"status": "NotFound"},
}


@attrs.define
class AnsweringCharger:
    charger: Charger
    answers: dict[str, Any] = attrs.field(factory=lambda: dict(DEFAULT_ANSWERS))
    received: list[list] = attrs.field(factory=list)
    # Run with the command's payload after answering it; e.g. a StartTransaction after a RemoteStart.
    after: dict[str, Callable[[dict], Awaitable[Any]]] = attrs.field(factory=dict)
    _replies: dict[str, list] = attrs.field(factory=dict)
    _arrived: trio.Event = attrs.field(factory=trio.Event)
    _nursery: trio.Nursery | None = None

    async def _serve(self) -> None:
        """The only reader of the socket: answers CALLs, files replies for call()."""
        conn = self.charger.conn
        while True:  # first what came while it booted (a gateway may send a CALL then)
            frame = self.charger.inbox.pop(0) if self.charger.inbox else await self.charger.read()
            if frame[0] != 2:
                self._replies[frame[1]] = frame
                self._arrived.set()
                self._arrived = trio.Event()
                continue
            unique_id, action, payload = frame[1], frame[2], frame[3]
            self.received.append([unique_id, action, payload])
            answer = self.answers.get(action, {})
            if answer is SILENCE:
                continue
            if isinstance(answer, CallErrorAnswer):
                await self.charger.send(conn.error(unique_id, answer.code, answer.description, answer.details))
            else:
                await self.charger.send(conn.answer(unique_id, answer(payload) if callable(answer) else answer))
            follow = self.after.get(action)
            if follow is not None and self._nursery is not None:
                self._nursery.start_soon(follow, payload)

    async def call(self, action: str, payload: dict, timeout: float = 5) -> list:
        """A CALL from the charger while the answering loop runs; returns the reply frame."""
        conn = self.charger.conn
        async with self.charger.calling:  # one in flight: a CALL of an `after` waits for the test's
            out = conn.send_call(action, payload)
            try:
                await self.charger.send(out.text)
                with trio.fail_after(timeout):
                    while out.unique_id not in self._replies:
                        await self._arrived.wait()
                return self._replies.pop(out.unique_id)
            finally:
                conn.forget(out.unique_id)

    async def result(self, action: str, payload: dict) -> dict:
        reply = await self.call(action, payload)
        assert reply[0] == 3, f"{action} was answered {reply}"
        assert_schema_valid(action, reply[2])
        return reply[2]

    def actions(self) -> list[str]:
        return [r[1] for r in self.received]


@asynccontextmanager
async def answering(port: int, cp_id: str = "CP1", boot: bool = True,
                    headers: list[tuple[bytes, bytes]] | None = None) -> AsyncIterator[AnsweringCharger]:
    async with charger(port, cp_id, headers=headers) as cp:
        if boot:
            await cp.result("BootNotification", BOOT)
        answering_cp = AnsweringCharger(cp)
        async with trio.open_nursery() as nursery:
            answering_cp._nursery = nursery
            nursery.start_soon(answering_cp._serve)
            try:
                yield answering_cp
            finally:
                nursery.cancel_scope.cancel()
