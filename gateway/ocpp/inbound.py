"""Decide what to do with one text frame received from a charger (sans-IO)."""

from __future__ import annotations

import enum
import math
from typing import Any, Union

import attrs

from .actions import CENTRAL_ACTIONS, CHARGER_ACTIONS
from .errors import ErrorCode
from .frames import CALLERROR, CALLRESULT, INT64, Call, CallError, CallResult, FrameError, parse
from .validation import Validator, Violation


@attrs.frozen
class Request:
    """A CALL for a handler. `violation` is set when lenient mode let a bad payload through."""

    call: Call
    violation: Violation | None = None


@attrs.frozen
class Reply:
    """A CALLRESULT or CALLERROR answering one of our outbound CALLs."""

    frame: CallResult | CallError


@attrs.frozen
class Refusal:
    """Answer at once with `answer`; no handler runs."""

    answer: CallError
    action: str | None = None
    violation: Violation | None = None


@attrs.frozen
class BrokenReply:
    """A malformed CALLRESULT/CALLERROR; its unique id is known, so its caller can be told."""

    unique_id: str
    code: ErrorCode
    description: str


@attrs.frozen
class Unreadable:
    """Nothing in the frame can be answered: it is only logged."""

    reason: str


Inbound = Union[Request, Reply, Refusal, BrokenReply, Unreadable]


class Role(enum.Enum):
    """Which end of the connection reads the frames: the CALLs it takes are those of the other end."""

    CENTRAL = "central system"
    CHARGER = "charge point"


# role -> (the actions it takes, those it sends itself, why one of those is refused)
_SIDES = {
    Role.CENTRAL: (CHARGER_ACTIONS, CENTRAL_ACTIONS, "is sent by the central system, not by a charge point"),
    Role.CHARGER: (CENTRAL_ACTIONS, CHARGER_ACTIONS, "is sent by a charge point, not by the central system"),
}


def unstorable(value: Any, path: str = "") -> tuple[str, Any] | None:
    """(path, value) of the first number in `value` that is not a 64-bit integer's worth, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT64[0] <= value <= INT64[1] else (path, value)
    if isinstance(value, float):
        return None if math.isfinite(value) and abs(value) < 2**63 else (path, value)
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = unstorable(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def classify(text: str, validator: Validator, strict: bool, role: Role = Role.CENTRAL) -> Inbound:
    try:
        frame = parse(text)
    except FrameError as exc:
        if exc.unique_id is None:
            return Unreadable(f"{exc.code.value}: {exc.description}")
        if exc.message_type not in (CALLRESULT, CALLERROR):  # a CALL or unknown type: answer it
            return Refusal(CallError(exc.unique_id, exc.code.value, exc.description))
        return BrokenReply(exc.unique_id, exc.code, exc.description)

    if not isinstance(frame, Call):
        return Reply(frame)

    action = frame.action
    takes, sends, sent_by_us = _SIDES[role]
    if action not in takes:
        if action in sends:
            why = f"{action} {sent_by_us}"
            return Refusal(CallError(frame.unique_id, ErrorCode.NOT_SUPPORTED.value, why), action)
        why = f"unknown action {action!r}"
        return Refusal(CallError(frame.unique_id, ErrorCode.NOT_IMPLEMENTED.value, why), action)

    if frame.beyond_int64:  # parse() noticed it; find where
        found = unstorable(frame.payload)
        if found:  # no mode can keep what the database cannot hold: refused in lenient mode too
            where, value = found
            why = f"{where or 'payload'}: {str(value)[:40]} is beyond what can be stored (a 64-bit integer)"
            return Refusal(CallError(frame.unique_id, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION.value, why,
                                     {"path": where} if where else {}), action)
    violation = validator.check(action, "request", frame.payload)
    if violation is not None and strict:
        answer = CallError(
            frame.unique_id,
            violation.code.value,
            violation.message,
            {"path": violation.path} if violation.path else {},
        )
        return Refusal(answer, action, violation)
    return Request(frame, violation)

