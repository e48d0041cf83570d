"""gateway.simulator.link.Link over an in-memory socket: its CALLs' outcomes and its answers."""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket

from gateway.simulator.link import CallFailed, Link


class MemorySocket:
    """The two methods of a trio-websocket connection Link uses; `arrive()` plays the central system."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sent_one = trio.Event()
        self._in, self._out = trio.open_memory_channel[str](10)

    async def send_message(self, text: str) -> None:
        self.sent.append(text)
        self.sent_one.set()
        self.sent_one = trio.Event()

    async def get_message(self) -> str:
        try:
            return await self._out.receive()
        except trio.EndOfChannel:
            raise trio_websocket.ConnectionClosed(None) from None

    async def sent_count(self, count: int) -> str:
        """The `count`th text sent, once sent."""
        while len(self.sent) < count:
            await self.sent_one.wait()
        return self.sent[count - 1]

    async def arrive(self, text: str) -> None:
        await self._in.send(text)

    async def close(self) -> None:
        await self._in.aclose()


async def _answer(action, payload):
    return {"status": "Accepted"}


async def _reading(link: Link) -> None:
    try:
        await link.run()
    except* trio_websocket.ConnectionClosed:  # how run() ends
        pass


async def test_a_call_is_answered(nursery):
    ws = MemorySocket()
    link = Link(ws, _answer)
    nursery.start_soon(_reading, link)
    async with trio.open_nursery() as inner:
        async def answer_it():
            unique_id = json.loads(await ws.sent_count(1))[1]
            await ws.arrive(json.dumps([3, unique_id, {"currentTime": "2026-01-01T00:00:00Z", "interval": 60,
                                                       "status": "Accepted"}]))
        inner.start_soon(answer_it)
        assert (await link.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}))[
            "status"] == "Accepted"
    await ws.close()


async def test_a_closed_connection_fails_the_pending_call_at_once(nursery, autojump_clock):
    ws = MemorySocket()
    link = Link(ws, _answer)
    nursery.start_soon(_reading, link)

    async def close_after_the_call():
        await ws.sent_count(1)
        await ws.close()
    nursery.start_soon(close_after_the_call)
    with pytest.raises(CallFailed) as failed:
        await link.call("Heartbeat", {}, timeout=30)
    assert failed.value.code == "NotConnected"  # not a timeout after 30 s


async def test_a_malformed_answer_fails_the_call(nursery, autojump_clock):
    ws = MemorySocket()
    link = Link(ws, _answer)
    nursery.start_soon(_reading, link)

    async def answer_badly():
        await ws.arrive(f'[3, "{json.loads(await ws.sent_count(1))[1]}", "not an object"]')
    nursery.start_soon(answer_badly)
    with pytest.raises(CallFailed) as failed:
        await link.call("Heartbeat", {}, timeout=30)
    assert failed.value.code == "FormationViolation"  # not a timeout after 30 s
    await ws.close()


async def test_commands_are_answered_and_bad_ones_refused(nursery):
    ws = MemorySocket()
    link = Link(ws, _answer)
    nursery.start_soon(_reading, link)
    for n, text in enumerate(('[2, "r1", "Reset", {"type": "Soft"}]', '[2, "h1", "Heartbeat", {}]',
                              '[2, "t1", "Teleport", {}]', '[2, "m1", "Reset", "soft"]'), 1):
        await ws.arrive(text)
        await ws.sent_count(n)
    assert [json.loads(text) for text in ws.sent] == [
        [3, "r1", {"status": "Accepted"}],
        [4, "h1", "NotSupported", "Heartbeat is sent by a charge point, not by the central system", {}],
        [4, "t1", "NotImplemented", "unknown action 'Teleport'", {}],
        [4, "m1", "FormationViolation", "the payload of a CALL must be a JSON object", {}],
    ]
    await ws.close()
