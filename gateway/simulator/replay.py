"""Replay a captured session as the charger, against any OCPP 1.6J central system.

Charger CALLs are sent in the captured order with the captured delays (divided by
`speed`; 0 sends as fast as possible, pipelining as the capture does). The
transaction ids the central system assigns replace the captured ones in later
frames. Every answer is compared in shape (keys and JSON types) with the
captured answer. A central-system CALL that arrives is answered with the
captured answer to the same action.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import attrs
import trio
import trio_websocket

from ..ocpp.frames import new_unique_id
from .capture import CapturedFrame


@attrs.define
class Difference:
    index: int  # position of the CALL in the capture
    action: str
    captured: Any
    received: Any
    why: str


@attrs.define
class ReplayReport:
    calls_sent: int = 0
    answered: int = 0
    unanswered: list[str] = attrs.field(factory=list)  # actions
    differences: list[Difference] = attrs.field(factory=list)
    central_calls_answered: int = 0
    transaction_ids: dict[int, int] = attrs.field(factory=dict)  # captured -> assigned
    closed_early: bool = False  # the central system closed the connection before the end

    @property
    def ok(self) -> bool:
        return not self.unanswered and not self.closed_early and self.answered == self.calls_sent

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self) | {"ok": self.ok}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def _substitute(payload: Any, ids: dict[int, int]) -> Any:
    if isinstance(payload, dict):
        return {k: (ids.get(v, v) if k == "transactionId" and isinstance(v, int) else _substitute(v, ids))
                for k, v in payload.items()}
    if isinstance(payload, list):
        return [_substitute(v, ids) for v in payload]
    return payload


async def replay(frames: list[CapturedFrame], url: str, cp_id: str, speed: float = 1.0,
                 answer_timeout: float = 30.0) -> ReplayReport:
    report = ReplayReport()
    captured_answers = {f.unique_id: f.frame for f in frames if f.message_type in (3, 4)}
    central_answers = {f.frame[2]: captured_answers.get(f.unique_id) for f in frames
                       if f.message_type == 2 and not f.from_charger}
    pending: dict[str, tuple[int, str, list | None, trio.Event]] = {}
    all_answered = trio.Event()
    address = f"{url.rstrip('/')}/{quote(cp_id, safe='')}"  # any id: percent-encoded

    try:
        await _run(frames, address, speed, answer_timeout, report, captured_answers, central_answers, pending,
                   all_answered)
    except* trio_websocket.ConnectionClosed:
        report.closed_early = True
    report.unanswered = [action for _, action, _, _ in pending.values()]
    return report


async def _run(frames: list[CapturedFrame], address: str, speed: float, answer_timeout: float,
               report: ReplayReport, captured_answers: dict, central_answers: dict, pending: dict,
               all_answered: trio.Event) -> None:
    async with trio_websocket.open_websocket_url(address, subprotocols=["ocpp1.6"]) as ws:

        async def read() -> None:
            while True:
                frame = json.loads(await ws.get_message())
                if frame[0] == 2:  # a command from the central system
                    captured = central_answers.get(frame[2])
                    answer = captured[2] if captured and captured[0] == 3 else {}
                    await ws.send_message(json.dumps([3, frame[1], answer]))
                    report.central_calls_answered += 1
                    continue
                entry = pending.pop(frame[1], None)
                if entry is None:
                    continue
                index, action, expected, done = entry
                report.answered += 1
                _compare(report, index, action, expected, frame)
                if action == "StartTransaction" and frame[0] == 3 and expected and expected[0] == 3:
                    report.transaction_ids[expected[2].get("transactionId")] = frame[2].get("transactionId")
                done.set()
                if not pending and report.calls_sent == sum(1 for f in frames if f.from_charger and f.message_type == 2):
                    all_answered.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for index, captured in enumerate(frames):
                if captured.from_charger and captured.message_type == 2:
                    _, old_id, action, payload = captured.frame
                    unique_id = new_unique_id()
                    pending[unique_id] = (index, action, captured_answers.get(old_id), trio.Event())
                    payload = _substitute(payload, report.transaction_ids)
                    await ws.send_message(json.dumps([2, unique_id, action, payload]))
                    report.calls_sent += 1
                    if action == "StartTransaction":  # later frames need the id it gets
                        with trio.move_on_after(answer_timeout):
                            await pending[unique_id][3].wait()
                if speed > 0 and captured.delay > 0:
                    await trio.sleep(captured.delay / speed)
            if pending:
                with trio.move_on_after(answer_timeout):
                    await all_answered.wait()
            nursery.cancel_scope.cancel()


def _compare(report: ReplayReport, index: int, action: str, expected: list | None, received: list) -> None:
    if expected is None:
        return  # the capture holds no answer to compare with
    if expected[0] != received[0]:
        kinds = {3: "CALLRESULT", 4: "CALLERROR"}
        report.differences.append(Difference(index, action, expected, received,
                                             f"captured a {kinds.get(expected[0])}, got a {kinds.get(received[0])}"))
    elif received[0] == 3 and shape(expected[2]) != shape(received[2]):
        report.differences.append(Difference(index, action, expected[2], received[2], "payload shape differs"))
