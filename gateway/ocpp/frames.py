"""OCPP-J message frames: parse text into CALL / CALLRESULT / CALLERROR and back."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Union

import attrs

from ..jsontext import to_json
from .errors import ErrorCode

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_UNIQUE_ID = 36  # OCPP-J 1.6, section 4.1.4


@attrs.frozen
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]
    # Set by parse(): the payload holds a number that no 64-bit integer column can keep.
    beyond_int64: bool = attrs.field(default=False, eq=False, repr=False)
    message_type = CALL


@attrs.frozen
class CallResult:
    unique_id: str
    payload: dict[str, Any]
    message_type = CALLRESULT


@attrs.frozen
class CallError:
    unique_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)
    message_type = CALLERROR


Frame = Union[Call, CallResult, CallError]


class FrameError(Exception):
    """A frame that cannot be understood.

    `unique_id` is set when it could still be read, so the peer can be answered
    with a CALLERROR; `message_type` tells whether the broken frame was a CALL
    (answerable) or a reply (never answered).
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        unique_id: str | None = None,
        message_type: int | None = None,
    ):
        super().__init__(description)
        self.code = code
        self.description = description
        self.unique_id = unique_id
        self.message_type = message_type


# Reads the head of a frame whose JSON is broken, e.g. a truncated one.
_HEAD = re.compile(r'^\s*\[\s*(\d+)\s*,\s*"([^"\\]{1,36})"')


def _valid_unicode(data: Any) -> bool:
    """False when JSON escapes produced a lone surrogate, which no UTF-8 text (or database) can hold."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


INT64 = (-2**63, 2**63 - 1)


class _BeyondInt64(Exception):
    pass


def _int(text: str) -> int:
    value = int(text)
    if len(text) > 18 and not INT64[0] <= value <= INT64[1]:
        raise _BeyondInt64
    return value


def _float(text: str) -> float:
    value = float(text)
    if not abs(value) < 2**63:  # also inf, from a literal like 1e999
        raise _BeyondInt64
    return value


def _constant(name: str) -> float:  # NaN, Infinity, -Infinity: Python's reader takes them, JSON has none
    raise _BeyondInt64


# The reader itself notices numbers the database cannot hold, at no cost for the others
# (a look at the text for them cost more than parsing it).
_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _loads(text: str) -> tuple[Any, bool]:
    """(data, whether it holds a number beyond a 64-bit integer or not finite)."""
    try:
        return _DECODER.decode(text), False
    except _BeyondInt64:
        return json.loads(text), True


def new_unique_id() -> str:
    return str(uuid.uuid4())


def parse(text: str) -> Frame:
    """Parse one OCPP-J frame; raise FrameError with the 1.6 code on failure."""
    try:
        data, beyond_int64 = _loads(text)
    except (ValueError, RecursionError):
        head = _HEAD.match(text)
        if head:
            raise FrameError(
                ErrorCode.FORMATION_VIOLATION,
                "frame is not valid JSON",
                head.group(2),
                int(head.group(1)),
            ) from None
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "frame is not valid JSON") from None
    if not isinstance(data, list) or not data:
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "frame is not a JSON array")
    if ("\\ud" in text or "\\uD" in text) and not _valid_unicode(data):
        unique_id = data[1] if len(data) > 1 and isinstance(data[1], str) and _valid_unicode(data[1]) else None
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "frame holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                         "which is not text", unique_id, data[0] if type(data[0]) is int else None)
    message_type = data[0]
    unique_id = data[1] if len(data) > 1 and isinstance(data[1], str) else None
    if unique_id is not None and not (0 < len(unique_id) <= MAX_UNIQUE_ID):
        unique_id = None
    if type(message_type) is not int:
        raise FrameError(
            ErrorCode.FORMATION_VIOLATION, "message type id must be an integer", unique_id
        )
    if message_type not in (CALL, CALLRESULT, CALLERROR):
        raise FrameError(
            ErrorCode.PROTOCOL_ERROR,
            f"unknown message type id {message_type}",
            unique_id,
            message_type,
        )
    if unique_id is None:
        raise FrameError(
            ErrorCode.FORMATION_VIOLATION,
            f"unique id must be a string of 1 to {MAX_UNIQUE_ID} characters",
            None,
            message_type,
        )

    def broken(why: str) -> FrameError:
        return FrameError(ErrorCode.FORMATION_VIOLATION, why, unique_id, message_type)

    if message_type == CALL:
        if len(data) != 4:
            raise broken("a CALL has 4 elements: [2, uniqueId, action, payload]")
        _, _, action, payload = data
        if not isinstance(action, str) or not action:
            raise broken("the action of a CALL must be a non-empty string")
        if not isinstance(payload, dict):
            raise broken("the payload of a CALL must be a JSON object")
        return Call(unique_id, action, payload, beyond_int64)
    if message_type == CALLRESULT:
        if len(data) != 3:
            raise broken("a CALLRESULT has 3 elements: [3, uniqueId, payload]")
        if not isinstance(data[2], dict):
            raise broken("the payload of a CALLRESULT must be a JSON object")
        return CallResult(unique_id, data[2])
    # CALLERROR: details may be missing in sloppy firmware; accept 4 or 5 elements.
    if len(data) not in (4, 5):
        raise broken("a CALLERROR has 5 elements: [4, uniqueId, code, description, details]")
    code, description = data[2], data[3]
    details = data[4] if len(data) == 5 else {}
    if not isinstance(code, str) or not isinstance(description, str):
        raise broken("the error code and description of a CALLERROR must be strings")
    if not isinstance(details, dict):
        raise broken("the details of a CALLERROR must be a JSON object")
    return CallError(unique_id, code, description, details)


def encode(frame: Frame) -> str:
    if isinstance(frame, Call):
        data: list = [CALL, frame.unique_id, frame.action, frame.payload]
    elif isinstance(frame, CallResult):
        data = [CALLRESULT, frame.unique_id, frame.payload]
    else:
        data = [CALLERROR, frame.unique_id, frame.code, frame.description, frame.details]
    return to_json(data)
