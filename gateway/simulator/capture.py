"""Read captured OCPP-J sessions: one frame per line, each followed by the delay before the next.

    [2,"989b...","BootNotification",{...}]
    0.001338s
    [3,"989b...",{...}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..ocpp.actions import CHARGER_ACTIONS


@attrs.frozen
class CapturedFrame:
    frame: list[Any]
    delay: float  # seconds before the next frame
    from_charger: bool

    @property
    def message_type(self) -> int:
        return self.frame[0]

    @property
    def unique_id(self) -> str:
        return self.frame[1]


class CaptureError(ValueError):
    pass


def _frame(text: str, number: int) -> list[Any]:
    try:
        frame = json.loads(text)
    except ValueError:
        raise CaptureError(f"line {number} is not a JSON frame") from None
    lengths = {2: 4, 3: 3, 4: 5}
    if (not isinstance(frame, list) or not frame or frame[0] not in lengths
            or len(frame) != lengths[frame[0]] or not isinstance(frame[1], str)):
        raise CaptureError(f"line {number} is not an OCPP-J CALL, CALLRESULT or CALLERROR")
    return frame


def _delay(text: str, number: int) -> float:
    try:
        if not text.endswith("s"):
            raise ValueError
        return float(text[:-1])
    except ValueError:
        raise CaptureError(f"line {number} is not a delay like 0.5s") from None


def parse_capture(text: str) -> list[CapturedFrame]:
    """Frames in order, each marked with who sent it (charger CALLs and answers to central CALLs)."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    frames: list[CapturedFrame] = []
    central_calls: set[str] = set()
    i = 0
    while i < len(lines):
        number, line = lines[i]
        frame = _frame(line, number)
        delay = 0.0
        if i + 1 < len(lines) and not lines[i + 1][1].startswith("["):
            delay = _delay(lines[i + 1][1], lines[i + 1][0])
            i += 1
        i += 1
        if frame[0] == 2:
            from_charger = frame[2] in CHARGER_ACTIONS and frame[1] not in central_calls
            if not from_charger:
                central_calls.add(frame[1])
        else:  # a reply comes from whoever did not send the CALL
            from_charger = frame[1] in central_calls
        frames.append(CapturedFrame(frame, delay, from_charger))
    return frames


def load_capture(path: str | Path) -> list[CapturedFrame]:
    return parse_capture(Path(path).read_text("utf-8"))
