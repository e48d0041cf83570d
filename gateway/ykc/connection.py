"""One YKC pile's connection, without I/O (in the manner of gateway/ocpp/connection.py).

It turns received bytes into typed events, keeps whether the pile has logged in and as which pile
code, and numbers what the platform sends: a reply echoes its request's sequence number and
encryption flag, a frame the platform starts takes the next number of the connection (from 0).
No sockets, no Trio, no clock: whoever holds the socket feeds it and sends what it returns.

    conn = Connection()
    for event in conn.receive(data): ...            # Received / Unreadable / OutOfTurn
    data = conn.reply(frame, 0x02, {...})           # answer a frame received
    data = conn.send(0x34, {...})                   # a frame the platform starts
"""

from __future__ import annotations

from typing import Any, Union

import attrs

from .codec import CrcOrder, Decoded, Frame, Garbage, Reader, Refused, encode
from .messages import LAYOUTS, Sender

LOGIN = 0x01


@attrs.frozen
class Received:
    """A frame of the pile's to act on."""

    frame: Frame
    raw: bytes
    crc_order: CrcOrder


@attrs.frozen
class Unreadable:
    """Bytes that are no frame we take (garbage, bad CRC, wrong length, unknown type): logged only."""

    reason: str
    raw: bytes
    code: int | None = None


@attrs.frozen
class OutOfTurn:
    """A readable frame the pile may not send now: before its login, for another pile, or a platform's frame."""

    reason: str
    frame: Frame
    raw: bytes


Event = Union[Received, Unreadable, OutOfTurn]


class Connection:
    def __init__(self) -> None:
        self._reader = Reader()
        self._seq = 0
        self.pile: str | None = None  # set once the login is accepted

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame held (at most one frame's worth)."""
        return self._reader.pending

    def receive(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for outcome in self._reader.feed(data):
            if isinstance(outcome, Garbage):
                events.append(Unreadable(f"{len(outcome.raw)} bytes before a start byte skipped", outcome.raw))
            elif isinstance(outcome, Refused):
                events.append(Unreadable(outcome.reason, outcome.raw, outcome.code))
            else:
                events.append(self._check(outcome))
        return events

    def _check(self, decoded: Decoded) -> Event:
        frame = decoded.frame
        layout = LAYOUTS[frame.code]
        if layout.sender is not Sender.PILE:
            return OutOfTurn(f"0x{frame.code:02X} {layout.name} is sent by the platform, not by a pile",
                             frame, decoded.raw)
        if self.pile is None and frame.code != LOGIN:
            return OutOfTurn(f"0x{frame.code:02X} {layout.name} before the pile logged in", frame, decoded.raw)
        pile = frame.fields.get("pile")
        if self.pile is not None and pile is not None and pile != self.pile:
            return OutOfTurn(f"0x{frame.code:02X} {layout.name} names pile {pile}, this connection is {self.pile}",
                             frame, decoded.raw)
        return Received(frame, decoded.raw, decoded.crc_order)

    def logged_in(self, pile: str) -> None:
        self.pile = pile

    def reply(self, request: Frame, code: int, fields: dict[str, Any]) -> tuple[Frame, bytes]:
        frame = Frame(code, fields, request.seq, request.encrypted)
        return frame, encode(frame)

    def send(self, code: int, fields: dict[str, Any]) -> tuple[Frame, bytes]:
        frame = Frame(code, fields, self._seq)
        self._seq = (self._seq + 1) & 0xFFFF
        return frame, encode(frame)
