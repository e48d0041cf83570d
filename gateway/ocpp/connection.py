"""One OCPP-J connection, at either end, without I/O (in the manner of h11's and wsproto's Connection).

It turns received text into typed events and what we send into text, and keeps the table of our
pending CALLs: at most one in flight (OCPP-J 1.6, section 4.1.1). No sockets, no Trio, no clock:
whoever holds the socket feeds it (`receive`), sends what it returns, waits, and queues its callers.

    conn = Connection(Role.CENTRAL, validator, strict)
    out = conn.send_call("Reset", {"type": "Soft"})    # send out.text, log out.logged
    event = conn.receive(text)                          # Answered / Failed / Request / Refusal / ...

Each inbound frame is parsed once and each outbound one encoded once; the text to log is encoded
a second time only when a secret was masked in it.
"""

from __future__ import annotations

from typing import Any, Union

import attrs

from .frames import Call, CallError, CallResult, encode, new_unique_id
from .inbound import BrokenReply, Refusal, Reply, Request, Role, Unreadable, classify
from .secrets import redact
from .validation import Validator, Violation

__all__ = [
    "Answered", "BrokenReply", "CallInFlight", "Connection", "ConnectionClosed", "Event", "Failed",
    "Outgoing", "Refusal", "Request", "Role", "Unmatched", "Unreadable",
]


class CallInFlight(RuntimeError):
    """`send_call` while one of our CALLs waits for its answer: the caller must queue."""


class ConnectionClosed(RuntimeError):
    """`send_call` after `close()`."""


@attrs.frozen
class Outgoing:
    """A CALL of ours: `text` goes to the peer, `logged` to the frame log (secrets masked)."""

    unique_id: str
    action: str
    text: str
    logged: str  # the very same string as `text` when nothing was masked


@attrs.frozen
class Answered:
    """A CALLRESULT to our pending CALL.

    `violation`: how the payload breaks the action's response schema (it is delivered all the same,
    for the receiver to record). `logged`: the received text with secrets masked.
    """

    unique_id: str
    action: str
    payload: dict[str, Any]
    violation: Violation | None
    logged: str


@attrs.frozen
class Failed:
    """Our pending CALL answered with a CALLERROR, or with a reply too malformed to read
    (`malformed`: then `code` and `description` say what was wrong with it), or never answered
    because the connection closed (from `close()`, with the code "NotConnected")."""

    unique_id: str
    action: str
    code: str
    description: str
    details: dict[str, Any] = attrs.field(factory=dict)
    malformed: bool = False


@attrs.frozen
class Unmatched:
    """A CALLRESULT or CALLERROR to no pending CALL (one given up on, or never sent)."""

    frame: CallResult | CallError


# BrokenReply here is a malformed reply to no pending CALL: one to a pending CALL is a Failed.
Event = Union[Request, Refusal, Unreadable, BrokenReply, Answered, Failed, Unmatched]


class Connection:
    """The protocol state of one connection, seen from `role`'s end.

    `strict`: a CALL whose payload breaks its schema is refused (a Refusal with the 1.6 CALLERROR)
    instead of delivered with its violation.
    """

    def __init__(self, role: Role, validator: Validator | None = None, strict: bool = False):
        self.role = role
        self.validator = validator or Validator()
        self.strict = strict
        self.closed = False
        self._pending: dict[str, str] = {}  # unique id -> action; at most one entry (4.1.1)

    @property
    def pending(self) -> dict[str, str]:
        """Our CALL waiting for its answer, as {unique id: action}; a copy."""
        return dict(self._pending)

    # ---- what we send ----------------------------------------------------------

    def send_call(self, action: str, payload: dict[str, Any], unique_id: str | None = None) -> Outgoing:
        """A CALL to send. Raises CallInFlight while another waits, ConnectionClosed after close()."""
        if self.closed:
            raise ConnectionClosed(f"cannot send {action}: the connection is closed")
        if self._pending:
            (waiting,) = self._pending.values()
            raise CallInFlight(f"cannot send {action} while {waiting} waits for its answer "
                               "(one CALL in flight, OCPP-J 4.1.1): queue it")
        unique_id = unique_id or new_unique_id()
        text = logged = encode(Call(unique_id, action, payload))
        masked = redact(action, "request", payload)
        if masked is not payload:  # the peer gets the secret; the frame log does not
            logged = encode(Call(unique_id, action, masked))
        self._pending[unique_id] = action
        return Outgoing(unique_id, action, text, logged)

    def forget(self, unique_id: str) -> None:
        """Give up waiting for this CALL's answer (a timeout, a cancel): an answer arriving later
        is Unmatched, and the next CALL may go."""
        self._pending.pop(unique_id, None)

    def answer(self, unique_id: str, payload: dict[str, Any]) -> str:
        """The CALLRESULT to a CALL received."""
        return encode(CallResult(unique_id, payload))

    def error(self, unique_id: str, code: str, description: str = "", details: dict[str, Any] | None = None
              ) -> str:
        """The CALLERROR to a CALL received (`code`: one of the 1.6 ErrorCode values)."""
        return encode(CallError(unique_id, code, description, details or {}))

    def close(self) -> list[Failed]:
        """The connection is gone: every pending CALL fails (returned); no CALL may be sent after."""
        self.closed = True
        failed = [Failed(unique_id, action, "NotConnected", "the connection closed before the answer")
                  for unique_id, action in self._pending.items()]
        self._pending.clear()
        return failed

    # ---- what we receive -------------------------------------------------------

    def receive(self, text: str) -> Event:
        """The event one received text frame makes."""
        inbound = classify(text, self.validator, self.strict, self.role)
        if isinstance(inbound, Reply):
            frame = inbound.frame
            action = self._pending.pop(frame.unique_id, None)
            if action is None:
                return Unmatched(frame)
            if isinstance(frame, CallError):
                return Failed(frame.unique_id, action, frame.code, frame.description, frame.details)
            payload = frame.payload
            violation = self.validator.check(action, "response", payload)
            masked = redact(action, "response", payload)
            if masked is not payload:  # never keep a secret the peer reports
                text = encode(CallResult(frame.unique_id, masked))
            return Answered(frame.unique_id, action, payload, violation, text)
        if isinstance(inbound, BrokenReply):
            action = self._pending.pop(inbound.unique_id, None)
            if action is None:
                return inbound
            return Failed(inbound.unique_id, action, inbound.code.value, inbound.description, malformed=True)
        return inbound  # Request, Refusal, Unreadable
