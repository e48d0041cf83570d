"""What the live stream (GET /api/live, docs/api.md section 14) carries, and its rules, without I/O.

The events here are built only while a browser watches (`Hub.watched`) and given to the live stream's
readers only (`Hub.show`); their `live()` turns them into (event name, charge point id or None, data)
in the reader's task, not in the charger's message loop. The stream's own rules are pure: the text of an
event, the id of a frame and how a stream resumes after one, and the seam between the frames replayed
from the frame log and the live ones.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Iterable

import attrs

from . import clock

# A frame as the frame log keeps it: (at, charge point id, direction, message type, unique id, action, text).
FrameRow = tuple[str, str, str, "int | None", "str | None", "str | None", "str | None"]


def frame_data(row: FrameRow, violations: Iterable[Any] = (), frame_id: int | None = None) -> dict[str, Any]:
    at, cp_id, direction, message_type, unique_id, action, body = row
    data: dict[str, Any] = {"cpId": cp_id, "time": at, "direction": direction, "messageType": message_type,
                            "uniqueId": unique_id, "action": action, "text": body,
                            "violations": [{"action": v.action, "kind": v.kind, "code": v.code.value,
                                            "path": v.path, "message": v.message} for v in violations]}
    if frame_id is not None:
        data = {"id": frame_id, **data}
    return data


def stored_row(record: dict[str, Any]) -> FrameRow:
    """A frame log record (a row of the frames table) as the row the frame log was given."""
    return (record["at"], record["charge_point_id"], record["direction"], record["message_type"],
            record["unique_id"], record["action"], record["body"])


@attrs.frozen
class FrameSeen:
    """A frame received, sent or noted (connect, disconnect), exactly as the frame log records it."""

    row: FrameRow
    violations: tuple[Any, ...] = ()  # gateway.ocpp.validation.Violation: what the schema found in it

    def live(self) -> tuple[str, str | None, dict]:
        return "frame", self.row[1], frame_data(self.row, self.violations)


@attrs.frozen
class ConnectionChanged:
    cp_id: str
    online: bool
    at: str
    remote: str | None = None  # on connecting
    reason: str | None = None  # on going

    def live(self) -> tuple[str, str | None, dict]:
        data: dict[str, Any] = {"cpId": self.cp_id, "online": self.online, "time": self.at}
        if self.online:
            data["remote"] = self.remote
        else:
            data["reason"] = self.reason
        return "connection", self.cp_id, data


def connection(hub: Any, cp_id: str, online: bool, *, remote: str | None = None, reason: str | None = None) -> None:
    """Show a charger's connection coming or going, while anyone watches (a session calls it)."""
    if hub.watched:
        hub.show(ConnectionChanged(cp_id, online, clock.iso(), remote, reason))


@attrs.frozen
class Booted:
    cp_id: str
    payload: dict[str, Any]  # the BootNotification as the charger sent it
    status: str  # how it was answered
    at: str

    def live(self) -> tuple[str, str | None, dict]:
        p = self.payload
        return "boot", self.cp_id, {
            "cpId": self.cp_id, "vendor": p.get("chargePointVendor"), "model": p.get("chargePointModel"),
            "serial": p.get("chargePointSerialNumber"), "firmware": p.get("firmwareVersion"),
            "status": self.status, "payload": p, "time": self.at}


@attrs.frozen
class StatusReported:
    cp_id: str
    payload: dict[str, Any]  # the StatusNotification as the charger sent it
    at: str

    def live(self) -> tuple[str, str | None, dict]:
        p = self.payload
        return "status", self.cp_id, {
            "cpId": self.cp_id, "connectorId": p.get("connectorId"), "status": p.get("status"),
            "errorCode": p.get("errorCode"), "info": p.get("info"), "vendorId": p.get("vendorId"),
            "vendorErrorCode": p.get("vendorErrorCode"), "timestamp": p.get("timestamp"), "time": self.at}


# OCPP 1.6 section 7.45, SampledValue: what a field left out means.
SAMPLED_DEFAULTS = {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic",
                    "location": "Outlet", "phase": None}


def sampled_values(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """One meterValue entry's samples, each with 1.6's defaults filled in (the handler has checked the shape)."""
    return [{**SAMPLED_DEFAULTS, **{k: sv.get(k) for k in SAMPLED_DEFAULTS if sv.get(k) is not None},
             "value": sv.get("value")} for sv in entry.get("sampledValue") or ()]


@attrs.frozen
class MeterRead:
    """One meterValue entry (MeterValues, or a StopTransaction's transactionData)."""

    cp_id: str
    connector_id: int | None
    transaction_id: int | None
    entry: dict[str, Any]
    at: str

    def live(self) -> tuple[str, str | None, dict]:
        return "meter", self.cp_id, {
            "cpId": self.cp_id, "connectorId": self.connector_id, "transactionId": self.transaction_id,
            "timestamp": self.entry.get("timestamp"), "time": self.at, "values": sampled_values(self.entry)}


# How a command ended (CommandService's outcome) as the stream names it.
COMMAND_STATES = {"answered": "answered", "call_error": "callerror", "timeout": "timeout",
                  "not_connected": "notConnected", "abandoned": "abandoned"}


@attrs.frozen
class CommandChanged:
    """A command sent to a charger (state "sent"), then how it ended."""

    cp_id: str
    request_id: str
    action: str
    state: str  # sent, answered, callerror, timeout, notConnected, abandoned
    at: str
    payload: dict[str, Any] | None = None  # on sent; secrets masked
    answer: dict[str, Any] | None = None  # on answered; secrets masked
    error: dict[str, Any] | None = None  # on the others

    def live(self) -> tuple[str, str | None, dict]:
        data: dict[str, Any] = {"cpId": self.cp_id, "requestId": self.request_id, "action": self.action,
                                "state": self.state, "time": self.at}
        if self.state == "sent":
            data["payload"] = self.payload
        elif self.state == "answered":
            data["answer"] = self.answer
        else:
            data["error"] = self.error
        return "command", self.cp_id, data


# ---- the stream's text ------------------------------------------------------------------------------

KEEP_ALIVE = ": keep-alive\n\n"


def event_text(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One server-sent event (the data is one JSON line: JSON escapes every line break)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


TOPIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def topics(text: str | None) -> frozenset[str] | None:
    """The event names asked for (None: every one); ValueError names a malformed one."""
    if text is None or not text.strip():
        return None
    names = frozenset(t.strip() for t in text.split(",") if t.strip())
    for name in names:
        if not TOPIC.match(name):
            raise ValueError(f"topics: {name[:70]!r} is not an event name (letters, digits, '_', '.', '-')")
    return names


# ---- frame ids, resuming, and the seam ----------------------------------------------------------------

@attrs.frozen
class ResumePoint:
    at: str  # replay the frames from this time on ...
    skip: int = 0  # ... but the first `skip` of those at exactly this time (already seen)


def resume_point(last_event_id: str) -> ResumePoint:
    """The point a Last-Event-ID (a frame's id, "time#n") resumes after; ValueError if it is none."""
    at, sep, n = last_event_id.strip().rpartition("#")
    if not sep or not at or not n.isdigit() or len(n) > 9:
        raise ValueError(f"Last-Event-ID {last_event_id[:80]!r} is not the id of a frame of this stream "
                         "(time#n)")
    return ResumePoint(at, int(n) + 1)


class Cursor:
    """Gives each frame sent its id: its time and how many frames sent before it had that time. Frames are
    sent in the order the frame log keeps them (time, then the order recorded), so the id names one place."""

    def __init__(self, start: ResumePoint | None = None):
        self._at, self._n = (start.at, start.skip) if start else ("", 0)

    def next_id(self, at: str) -> str:
        if at != self._at:
            self._at, self._n = at, 0
        event_id = f"{at}#{self._n}"
        self._n += 1
        return event_id


class Seam:
    """The frames both replayed from the frame log and received live while the replay was read: each is sent
    once. Frames are told apart by everything the frame log keeps of them."""

    def __init__(self, replayed: Iterable[FrameRow], since: str):
        self._rows = Counter(row for row in replayed if row[0] >= since)
        self._last = max(self._rows, default=("",))[0]

    def seen(self, row: FrameRow) -> bool:
        """Whether a live frame was replayed already (then it is not sent again)."""
        if not self._rows:
            return False
        if row[0] > self._last:  # later than anything replayed: the seam is behind us
            self._rows.clear()
            return False
        if self._rows[row] > 0:
            self._rows[row] -= 1
            return True
        return False
