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
from ..ocpp.errors import ErrorCode
from ..ocpp.frames import Call, CallError, CallResult, Frame, encode, new_unique_id
from ..ocpp.inbound import BrokenReply, Refusal, Reply, Request, Unreadable, classify
from ..ocpp.secrets import redact
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
    from ..store import Store

# WebSocket close codes (RFC 6455, section 7.4.1)
NORMAL, GOING_AWAY, UNSUPPORTED_DATA, MESSAGE_TOO_BIG = 1000, 1001, 1003, 1009


@attrs.define
class _Pending:
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
            await self.store.chargers.connected(self.cp_id, self.transport.remote, self.subprotocol,
                                                self.connected_at)
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
        for pending in self._pending.values():
            pending.error = NotConnected(self.cp_id)
            pending.done.set()
        current = release()
        self.log.info("disconnected", reason=reason)
        self.store.frames.record(self.cp_id, "event", reason, action="disconnect")
        if current:  # a replacing connection keeps the charger online
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
                action: str | None = None, code: str | None = None) -> None:
        self.store.frames.record(self.cp_id, "in", text, message_type=message_type, unique_id=unique_id,
                                 action=action)
        self.service.metrics.frame("in", message_type, action, code)

    async def _receive_text(self, text: str) -> None:
        inbound = classify(text, self.service.validator, self.service.strict)
        if isinstance(inbound, Request):
            call = inbound.call
            self._log_in(text, 2, call.unique_id, call.action)
            if not self._calls.take(trio.current_time()):
                limit = f"at most {self.config.max_calls_per_second:g} CALLs per second"
                self.log.warning("over the CALL rate", action=call.action, limit=limit)
                await self._send(CallError(call.unique_id, ErrorCode.GENERIC_ERROR.value,
                                           f"too many CALLs: {limit}; not processed, send it again"), call.action)
                return
            if inbound.violation is not None:
                self._violation(inbound.violation, text)
            await self._send(await self._dispatch(call, inbound.violation), call.action)
        elif isinstance(inbound, Reply):
            frame = inbound.frame
            pending = self._pending.get(frame.unique_id)
            if pending is not None and isinstance(frame, CallResult):
                masked = redact(pending.action, "response", frame.payload)
                if masked is not frame.payload:  # never keep a secret the charger reports
                    text = encode(CallResult(frame.unique_id, masked))
            self._log_in(text, frame.message_type, frame.unique_id, pending.action if pending else None,
                         frame.code if isinstance(frame, CallError) else None)
            self._route_reply(frame, pending, text)
        elif isinstance(inbound, Refusal):
            answer = inbound.answer
            self._log_in(text, 2, answer.unique_id, inbound.action)
            if inbound.violation is not None:
                self._violation(inbound.violation, text)
            self.log.warning("refused", action=inbound.action, code=answer.code, why=answer.description)
            await self._send(answer, inbound.action)
        elif isinstance(inbound, BrokenReply):
            pending = self._pending.get(inbound.unique_id)
            self._log_in(text, None, inbound.unique_id, pending.action if pending else None)
            self.log.warning("malformed reply", unique_id=inbound.unique_id, why=inbound.description)
            if pending is not None:
                pending.error = CallErrorReceived(pending.action, inbound.code.value, inbound.description, {})
                pending.done.set()
        else:
            assert isinstance(inbound, Unreadable)
            self._log_in(text[:10000], action="unreadable")
            self.log.warning("unreadable frame", why=inbound.reason, frame=text[:200])

    async def _dispatch(self, call: Call, violation: Violation | None) -> Frame:
        return await dispatch(self.handlers, self.context, call, violation)

    def _route_reply(self, frame: CallResult | CallError, pending: _Pending | None, text: str) -> None:
        if pending is None:
            self.log.warning("reply to no pending call", unique_id=frame.unique_id)
            return
        if isinstance(frame, CallError):
            pending.error = CallErrorReceived(pending.action, frame.code, frame.description, frame.details)
        else:
            violation = self.service.validator.check(pending.action, "response", frame.payload)
            if violation is not None:
                self._violation(violation, text)
            pending.result = frame.payload
        pending.done.set()

    def _violation(self, violation: Violation, text: str) -> None:
        self.store.chargers.violation(self.cp_id, violation.action, violation.kind, violation.code.value,
                                      violation.path, violation.message, text, clock.iso())

    def record_violation(self, action: str, kind: str, code: str, path: str, message: str,
                         payload: dict[str, Any]) -> None:
        self.context.record_violation(action, kind, code, path, message, payload)

    # ---- outbound ---------------------------------------------------------------

    async def _send(self, frame: Frame, action: str | None) -> None:
        text = logged = encode(frame)
        if isinstance(frame, Call):
            masked = redact(frame.action, "request", frame.payload)
            if masked is not frame.payload:  # the charger gets the secret; the frame log does not
                logged = encode(Call(frame.unique_id, frame.action, masked))
        self.store.frames.record(self.cp_id, "out", logged, message_type=frame.message_type,
                                 unique_id=frame.unique_id, action=action)
        self.service.metrics.frame("out", frame.message_type, action,
                                   frame.code if isinstance(frame, CallError) else None)
        try:
            await self.transport.send(text)
        except Closed:
            self.close(None, "connection lost while sending")

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
                unique_id = unique_id or new_unique_id()
                pending = self._pending[unique_id] = _Pending(action)
                try:
                    await self._send(Call(unique_id, action, payload), action)
                    sent = True
                    await pending.done.wait()
                finally:
                    del self._pending[unique_id]
                if pending.error is not None:
                    raise pending.error
                assert pending.result is not None
                return pending.result
        raise CallTimeout(action, timeout, sent)
