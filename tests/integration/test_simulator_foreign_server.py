"""The simulator against a central system that is not ours: a minimal OCPP 1.6J server written here,
with nothing from the gateway package, that answers the charger and sends it a remote start."""

from __future__ import annotations

import itertools
import json

import trio
import trio_websocket

from gateway.simulator.charger import Settings, SimCharger
from tests.helpers import assert_schema_valid
from tests.waiting import until


class TinyCentralSystem:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []  # (action, payload) of every charger CALL
        self.answers: dict[str, dict] = {}  # our CALLs' unique id -> the charger's payload
        self.ws: trio_websocket.WebSocketConnection | None = None
        self.connected = trio.Event()
        self.ids = itertools.count(1000)
        self.slow: dict[str, float] = {}  # action -> seconds before it is answered

    def answer(self, action: str, payload: dict) -> dict:
        now = "2026-01-01T00:00:00Z"
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize", "StopTransaction"):
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            return {"transactionId": next(self.ids), "idTagInfo": {"status": "Accepted"}}
        return {}

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        assert "ocpp1.6" in request.proposed_subprotocols
        self.ws = await request.accept(subprotocol="ocpp1.6")
        self.connected.set()
        try:
            while True:
                frame = json.loads(await self.ws.get_message())
                if frame[0] == 2:
                    assert_schema_valid(frame[2], frame[3], "request")  # the simulator speaks valid 1.6
                    self.received.append((frame[2], frame[3]))
                    await trio.sleep(self.slow.get(frame[2], 0))
                    await self.ws.send_message(json.dumps([3, frame[1], self.answer(frame[2], frame[3])]))
                elif frame[0] == 3:
                    self.answers[frame[1]] = frame[2]
        except trio_websocket.ConnectionClosed:
            pass

    def actions(self) -> list[str]:
        return [action for action, _ in self.received]

    async def simulator(self, nursery: trio.Nursery, path: str, cp_id: str, **settings) -> SimCharger:
        """This server listening, and a simulated charger connected to it and booted."""
        server = await nursery.start(trio_websocket.serve_websocket, self.handler, "127.0.0.1", 0, None)
        sim = SimCharger(Settings(f"ws://127.0.0.1:{server.port}{path}", cp_id, meter_interval=0.05, **settings))
        nursery.start_soon(sim.run)
        with trio.fail_after(5):
            await sim.online.wait()
        return sim

    async def remote_start(self, connector: int) -> None:
        await self.ws.send_message(json.dumps([2, "rs-1", "RemoteStartTransaction",
                                               {"idTag": "FOREIGN", "connectorId": connector}]))
        await until(lambda: "MeterValues" in self.actions())


async def test_simulator_charges_against_a_foreign_central_system():
    central = TinyCentralSystem()
    async with trio.open_nursery() as nursery:
        await central.simulator(nursery, "/steve/websocket", "FOREIGN-1", connectors=2, power_w=360_000)
        assert central.actions()[:4] == ["BootNotification", "StatusNotification", "StatusNotification",
                                         "StatusNotification"]  # connector 0, 1 and 2

        await central.remote_start(2)
        assert central.answers["rs-1"] == {"status": "Accepted"}
        start = next(p for a, p in central.received if a == "StartTransaction")
        assert (start["connectorId"], start["idTag"]) == (2, "FOREIGN")

        await central.ws.send_message(json.dumps([2, "stop-1", "RemoteStopTransaction", {"transactionId": 1000}]))
        await until(lambda: "StopTransaction" in central.actions())
        stop = next(p for a, p in central.received if a == "StopTransaction")
        assert stop["transactionId"] == 1000 and stop["reason"] == "Remote"
        energy = [float(sv["value"]) for a, p in central.received if a == "MeterValues"
                  for mv in p["meterValue"] for sv in mv["sampledValue"]
                  if sv["measurand"] == "Energy.Active.Import.Register"]
        assert energy == sorted(energy) and stop["meterStop"] >= energy[-1] > 0
        nursery.cancel_scope.cancel()


async def test_a_reset_ends_the_session_before_the_charger_goes_down():
    """OCPP 1.6, 5.14: the charger stops its transactions, StopTransaction with reason SoftReset, and then
    restarts; a central system slow to answer must not find the stop sent again after the new boot."""
    central = TinyCentralSystem()
    central.slow["StopTransaction"] = 0.5
    async with trio.open_nursery() as nursery:
        sim = await central.simulator(nursery, "/ocpp", "FOREIGN-2", connectors=1, reconnect_delay=0.05)
        await central.remote_start(1)

        await central.ws.send_message(json.dumps([2, "reset-1", "Reset", {"type": "Soft"}]))
        await until(lambda: central.actions().count("BootNotification") == 2 and sim.online.is_set())
        after_reset = central.actions()[central.actions().index("StartTransaction"):]
        stops = [p for a, p in central.received if a == "StopTransaction"]
        assert [s["reason"] for s in stops] == ["SoftReset"], stops
        assert after_reset.index("StopTransaction") < after_reset.index("BootNotification"), after_reset
        nursery.cancel_scope.cancel()
