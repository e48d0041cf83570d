"""One connected charger: its message loop and outbound calls, in the task that serves its socket.

One task per charger and no nursery of its own: memory per idle charger is what a site with
thousands of chargers pays for. The watchdog of all sessions is one task (watchdog.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import attrs
import structlog
import trio

from .. import clock
from ..events import OutOfService
from ..live import connection
from ..ocpp.errors import ErrorCode
from ..ocpp.connection import (Answered, BrokenReply, Connection, Failed, Outgoing, Refusal, Request, Role,
                               Unmatched, Unreadable)
from ..ocpp.frames import Call, CallError, CallResult, Frame
from ..ocpp.validation import Violation
from .context import HandlerContext
from .errors import CallErrorReceived, CallTimeout, NotConnected, TooManyCommands
from .handlers import Handler, dispatch
from .rate import TokenBucket
from .remote_starts import RemoteStarts
from .transport import Closed, Transport

if TYPE_CHECKING:
    from ..config import ChargerConfig
    from ..events import Hub
    from ..metrics import Metrics
    from ..ocpp.validation import Validator
    from ..store.store import Store

# WebSocket close codes (RFC 6455, section 7.4.1)
NORMAL, GOING_AWAY, UNSUPPORTED_DATA, MESSAGE_TOO_BIG = 1000, 1001, 1003, 1009


@attrs.define
class _Pending:
    """The task waiting for the answer to our CALL in flight (its protocol state is in Connection)."""

    action: str
    done: trio.Event = attrs.field(factory=trio.Event)
    result: dict[str, Any] | None = None
    error: Exception | None = None


class Shared(Protocol):
    """What a session uses of what all sessions share (service.py's ChargerService)."""

    store: Store
    config: ChargerConfig
    validator: Validator
    strict: bool
    metrics: Metrics
    events: Hub
    remote_starts: RemoteStarts


class Session:
    def __init__(self, service: Shared, cp_id: str, transport: Transport, subprotocol: str | None,
                 handlers: Mapping[str, Handler]):
        self.service = service
        self.store = service.store
        self.config = service.config
        self.cp_id = cp_id
        self.transport = transport
        self.subprotocol = subprotocol
        self.log = structlog.get_logger("gateway.charger").bind(cp=cp_id)
        self.handlers = handlers  # what answers this charger's CALLs
        self.context = HandlerContext(cp_id, service.store, service.config, service.events,
                                      service.remote_starts, self.log)
        self.connected_at = clock.iso()
        self.last_activity = trio.current_time()
        self._conn = Connection(Role.CENTRAL, service.validator, service.strict)
        self._pending: dict[str, _Pending] = {}
        self._waiting_commands = 0
        rate = self.config.max_calls_per_second
        self._calls = TokenBucket(rate, 2 * rate, trio.current_time())
        self._call_lock = trio.Lock()  # one outbound CALL in flight (OCPP-J 4.1.1)
        self._cancel_scope = trio.CancelScope()
        self._closing: tuple[int | None, str] | None = None  # (close code to send, reason)
        self.closed = False
        self.finished = trio.Event()

    # ---- life cycle -------------------------------------------------------------

    async def run(self, release: Callable[[], bool]) -> None:
        """Serve the charger until it goes away, is replaced, goes silent or the gateway stops.

        `release` is called once the socket is closed: it says whether this still was the charger's
        connection (False: a newer one replaced it and keeps the charger online, so no disconnect is
        recorded). The service (service.py) attaches and detaches; the session knows no registry.
        """
        self.log.info("connected", remote=self.transport.remote, subprotocol=self.subprotocol)
        self.store.frames.record(self.cp_id, "event", f"connected from {self.transport.remote}",
                                 action="connect")
        try:
            recorded = await self.store.chargers.connected(self.cp_id, self.transport.remote, self.subprotocol,
                                                           self.connected_at)
            connection(self.service.events, self.cp_id, True, remote=self.transport.remote)
            if recorded.adopted:
                self.log.info("adopted into the registry")
            if recorded.out_of_service is not None and recorded.registration == "Accepted":  # else at its boot
                self.service.events.publish(OutOfService(self.cp_id, recorded.out_of_service))
            with self._cancel_scope:  # the watchdog (watchdog.py) pings and closes from outside
                await self._read_loop()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown(release)

    def close(self, code: int | None, reason: str) -> None:
        """End the session; its own task closes the socket with `code` (first reason wins)."""
        if self._closing is None:
            self._closing = (code, reason)
        self._cancel_scope.cancel()

    async def _teardown(self, release: Callable[[], bool]) -> None:
        self.closed = True
        code, reason = self._closing or (None, "connection closed")
        if code is not None:
            try:
                await self.transport.close(code, reason)
            except Exception as exc:  # the socket may already be broken
                self.log.debug("close failed", error=repr(exc))
        for failed in self._conn.close():
            pending = self._pending[failed.unique_id]
            pending.error = NotConnected(self.cp_id)
            pending.done.set()
        current = release()
        self.log.info("disconnected", reason=reason)
        self.store.frames.record(self.cp_id, "event", reason, action="disconnect")
        if current:  # a replacing connection keeps the charger online
            connection(self.service.events, self.cp_id, False, reason=reason)
            try:
                await self.store.chargers.disconnected(self.cp_id, reason, clock.iso())
            except Exception as exc:  # the store may be closing with the gateway
                self.log.warning("could not record the disconnect", error=repr(exc))
        self.finished.set()

    # ---- inbound ----------------------------------------------------------------

    async def _read_loop(self) -> None:
        limit = self.config.max_frame_bytes
        while True:
            try:
                message = await self.transport.receive()
            except Closed as exc:
                if self._closing is None:
                    self._closing = (None, f"closed by the charger ({exc.code})")
                return
            self.last_activity = trio.current_time()
            if isinstance(message, bytes):
                self._log_in(message[:1000].decode("utf-8", "replace"), action="binary")
                self.close(UNSUPPORTED_DATA, "OCPP-J frames are text; binary frames are not accepted")
                return
            if len(message) > limit and len(message.encode()) > limit:
                self._log_in(message[:1000], action="oversized")
                self.close(MESSAGE_TOO_BIG, f"frame larger than {limit} bytes")
                return
            await self._receive_text(message)

    def _log_in(self, text: str, message_type: int | None = None, unique_id: str | None = None,
                action: str | None = None, code: str | None = None, violation: Violation | None = None) -> None:
        self.store.frames.record(self.cp_id, "in", text, message_type=message_type, unique_id=unique_id,
                                 action=action, violations=() if violation is None else (violation,))
        self.service.metrics.frame("in", message_type, action, code)

    async def _receive_text(self, text: str) -> None:
        event = self._conn.receive(text)
        if isinstance(event, Request):
            call = event.call
            self._log_in(text, 2, call.unique_id, call.action, violation=event.violation)
            if not self._calls.take(trio.current_time()):
                limit = f"at most {self.config.max_calls_per_second:g} CALLs per second"
                self.log.warning("over the CALL rate", action=call.action, limit=limit)
                await self._send(CallError(call.unique_id, ErrorCode.GENERIC_ERROR.value,
                                           f"too many CALLs: {limit}; not processed, send it again"), call.action)
                return
            if event.violation is not None:
                self._violation(event.violation, text)
            await self._send(await self._dispatch(call, event.violation), call.action)
        elif isinstance(event, (Answered, Failed, Unmatched)):
            self._route_reply(event, text)
        elif isinstance(event, Refusal):
            answer = event.answer
            self._log_in(text, 2, answer.unique_id, event.action, violation=event.violation)
            if event.violation is not None:
                self._violation(event.violation, text)
            self.log.warning("refused", action=event.action, code=answer.code, why=answer.description)
            await self._send(answer, event.action)
        elif isinstance(event, BrokenReply):  # to no pending call
            self._log_in(text, None, event.unique_id, None)
            self.log.warning("malformed reply", unique_id=event.unique_id, why=event.description)
        else:
            assert isinstance(event, Unreadable)
            self._log_in(text[:10000], action="unreadable")
            self.log.warning("unreadable frame", why=event.reason, frame=text[:200])

    async def _dispatch(self, call: Call, violation: Violation | None) -> Frame:
        return await dispatch(self.handlers, self.context, call, violation)

    def _route_reply(self, event: Answered | Failed | Unmatched, text: str) -> None:
        """Log a reply and wake the task waiting for it."""
        if isinstance(event, Unmatched):
            frame = event.frame
            self._log_in(text, frame.message_type, frame.unique_id, None,
                         frame.code if isinstance(frame, CallError) else None)
            self.log.warning("reply to no pending call", unique_id=frame.unique_id)
            return
        pending = self._pending[event.unique_id]
        if isinstance(event, Answered):
            self._log_in(event.logged, 3, event.unique_id, event.action,  # secrets masked
                         violation=event.violation)
            if event.violation is not None:
                self._violation(event.violation, event.logged)
            pending.result = event.payload
        elif event.malformed:
            self._log_in(text, None, event.unique_id, event.action)
            self.log.warning("malformed reply", unique_id=event.unique_id, why=event.description)
            pending.error = CallErrorReceived(event.action, event.code, event.description, {})
        else:
            self._log_in(text, 4, event.unique_id, event.action, event.code)
            pending.error = CallErrorReceived(event.action, event.code, event.description, event.details)
        pending.done.set()

    def _violation(self, violation: Violation, text: str) -> None:
        self.store.chargers.violation(self.cp_id, violation.action, violation.kind, violation.code.value,
                                      violation.path, violation.message, text, clock.iso())

    def record_violation(self, action: str, kind: str, code: str, path: str, message: str,
                         payload: dict[str, Any]) -> None:
        self.context.record_violation(action, kind, code, path, message, payload)

    # ---- outbound ---------------------------------------------------------------

    async def _send(self, frame: CallResult | CallError, action: str | None) -> None:
        """Answer a CALL received."""
        if isinstance(frame, CallResult):
            text = self._conn.answer(frame.unique_id, frame.payload)
            await self._transmit(text, text, 3, frame.unique_id, action)
        else:
            text = self._conn.error(frame.unique_id, frame.code, frame.description, frame.details)
            await self._transmit(text, text, 4, frame.unique_id, action, frame.code)

    async def _transmit(self, text: str, logged: str, message_type: int, unique_id: str, action: str | None,
                        code: str | None = None) -> None:
        self.store.frames.record(self.cp_id, "out", logged, message_type=message_type, unique_id=unique_id,
                                 action=action)
        self.service.metrics.frame("out", message_type, action, code)
        try:
            await self.transport.send(text)
        except Closed:
            self.close(None, "connection lost while sending")

    def unsupported(self, action: str, payload: dict[str, Any]) -> str | None:
        """Why this charger cannot be sent `action`: never, over OCPP (a YKC pile's session says otherwise)."""
        return None

    async def call(self, action: str, payload: dict[str, Any], timeout: float | None = None,
                   unique_id: str | None = None) -> dict[str, Any]:
        """Send a CALL and return the charger's payload.

        Raises CallErrorReceived, CallTimeout or NotConnected. Calls are queued so
        that only one is in flight; `timeout` covers the wait in the queue too.
        """
        timeout = self.config.call_timeout if timeout is None else timeout
        if self._waiting_commands >= self.config.max_pending_commands:
            raise TooManyCommands(self.cp_id, self.config.max_pending_commands)
        self._waiting_commands += 1
        try:
            return await self._call(action, payload, timeout, unique_id)
        finally:
            self._waiting_commands -= 1

    async def _call(self, action: str, payload: dict[str, Any], timeout: float, unique_id: str | None
                    ) -> dict[str, Any]:
        sent = False
        with trio.move_on_after(timeout):
            async with self._call_lock:
                if self.closed:
                    raise NotConnected(self.cp_id)
                out: Outgoing = self._conn.send_call(action, payload, unique_id)  # the lock keeps it alone
                pending = self._pending[out.unique_id] = _Pending(action)
                try:
                    await self._transmit(out.text, out.logged, Call.message_type, out.unique_id, action)
                    sent = True
                    await pending.done.wait()
                finally:
                    del self._pending[out.unique_id]
                    self._conn.forget(out.unique_id)
                if pending.error is not None:
                    raise pending.error
                assert pending.result is not None
                return pending.result
        raise CallTimeout(action, timeout, sent)
