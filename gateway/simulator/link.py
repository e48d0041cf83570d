"""The simulator's socket: the charger end of an OCPP-J Connection (gateway/ocpp/connection.py) over a
WebSocket, answering CALLs in tasks of their own and sending its own, one at a time."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import attrs
import trio
import trio_websocket

from ..ocpp.connection import Answered, Connection, Failed, Refusal, Request, Role
from ..ocpp.errors import ErrorCode
from ..ocpp.frames import Call

Handler = Callable[[str, dict[str, Any]], Awaitable["dict[str, Any] | Reply"]]


class CallFailed(Exception):
    """The central system answered our CALL with a CALLERROR, or not in time."""

    def __init__(self, action: str, code: str, description: str = ""):
        super().__init__(f"{action}: {code} {description}".strip())
        self.action = action
        self.code = code
        self.description = description


@attrs.frozen
class Reply:
    """What a handler wants sent instead of a plain CALLRESULT (fault injection)."""

    error: tuple[str, str] | None = None  # (code, description): answer with a CALLERROR
    raw: str | None = None  # send this text as is (a malformed frame)
    silent: bool = False  # send nothing


@attrs.define
class _Waiter:
    done: trio.Event = attrs.field(factory=trio.Event)
    event: Answered | Failed | None = None


class Link:
    """One WebSocket to a central system. `run()` reads; `call()` may be used from any task."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, handler: Handler):
        self.ws = ws
        self._handler = handler
        # The central system's CALLs reach the handler even when their payload breaks its schema:
        # the simulator answers what it can, as a lenient charger does.
        self._conn = Connection(Role.CHARGER, strict=False)
        self._waiters: dict[str, _Waiter] = {}
        self._call_lock = trio.Lock()
        self.sent = 0
        self.received = 0
        self.errors = 0

    async def send_text(self, text: str) -> None:
        self.sent += 1
        await self.ws.send_message(text)

    async def call(self, action: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        async with self._call_lock:  # one CALL in flight (OCPP-J 4.1.1)
            if self._conn.closed:
                self.errors += 1
                raise CallFailed(action, "NotConnected", "the connection is closed")
            out = self._conn.send_call(action, payload)
            waiter = self._waiters[out.unique_id] = _Waiter()
            try:
                await self.send_text(out.text)
                with trio.move_on_after(timeout):
                    await waiter.done.wait()
            finally:
                del self._waiters[out.unique_id]
                self._conn.forget(out.unique_id)
        event = waiter.event
        if event is None:
            self.errors += 1
            raise CallFailed(action, "Timeout", f"no answer in {timeout:g} s")
        if isinstance(event, Failed):
            self.errors += 1
            raise CallFailed(action, event.code, event.description)
        return event.payload

    async def run(self) -> None:
        """Read until the connection closes (raises trio_websocket.ConnectionClosed)."""
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    text = await self.ws.get_message()
                    self.received += 1
                    if isinstance(text, bytes):
                        continue
                    event = self._conn.receive(text)
                    if isinstance(event, Request):
                        # Answer in its own task: a handler may itself wait (e.g. for a StopTransaction).
                        nursery.start_soon(self._answer, event.call)
                    elif isinstance(event, Refusal):  # unreadable CALL, unknown action, ...
                        await self.send_text(self._conn.error(event.answer.unique_id, event.answer.code,
                                                              event.answer.description, event.answer.details))
                    elif isinstance(event, (Answered, Failed)):
                        self._wake(event)
                    # anything else (unreadable, a reply to nothing) is dropped
        finally:
            for failed in self._conn.close():
                self._wake(failed)

    def _wake(self, event: Answered | Failed) -> None:
        waiter = self._waiters.get(event.unique_id)
        if waiter is not None:
            waiter.event = event
            waiter.done.set()

    async def _answer(self, call: Call) -> None:
        try:
            reply = await self._handler(call.action, call.payload)
        except Exception as exc:  # a simulator bug must still be answered
            reply = Reply(error=(ErrorCode.INTERNAL_ERROR.value, repr(exc)[:200]))
        try:
            if isinstance(reply, Reply):
                if reply.silent:
                    return
                if reply.raw is not None:
                    await self.send_text(reply.raw)
                elif reply.error is not None:
                    await self.send_text(self._conn.error(call.unique_id, *reply.error))
                return
            await self.send_text(self._conn.answer(call.unique_id, reply))
        except trio_websocket.ConnectionClosed:
            pass
