"""Frames of the YKC platform protocol to and from bytes (sans-IO, pure).

A frame is: start byte 0x68, length L (the bytes of sequence number, encryption flag, type and
body: 4 + body), sequence number (2 bytes, opaque: read and written little-endian, so a reply that
echoes it echoes the very bytes), encryption flag, type, body, then CRC-16/MODBUS over everything
from the sequence number to the end of the body. We send the CRC low byte first; piles are seen to
send it either way round, so both orders are accepted and the one used is reported.

`decode` reads one whole frame, `Reader` splits a byte stream into frames and resynchronises on
the start byte after garbage. Neither raises: whatever cannot be read is a `Refused` or `Garbage`.
"""

from __future__ import annotations

import enum
from typing import Any, Union

import attrs
import crcmod.predefined

from .fields import FieldError
from .messages import LAYOUTS, Layout

START = 0x68
HEADER = 6
MAX_FRAME = 255 + 4


crc16 = crcmod.predefined.mkPredefinedCrcFun("modbus")
"""CRC-16/MODBUS (init 0xFFFF, reflected polynomial 0xA001, no final XOR) of bytes, as an int."""


class CrcOrder(enum.Enum):
    LOW_FIRST = "low byte first"
    HIGH_FIRST = "high byte first"


@attrs.frozen
class Frame:
    """One frame: its type, its body's fields by name, the sequence number and the encryption flag."""

    code: int
    fields: dict[str, Any]
    seq: int = 0
    encrypted: int = 0

    @property
    def name(self) -> str:
        return LAYOUTS[self.code].name


@attrs.frozen
class Decoded:
    frame: Frame
    crc_order: CrcOrder
    raw: bytes


@attrs.frozen
class Refused:
    """A whole frame that is not taken: `reason` says why, for the log and the pile's record."""

    reason: str
    raw: bytes
    code: int | None = None
    seq: int | None = None


@attrs.frozen
class Garbage:
    """Bytes skipped while looking for a start byte."""

    raw: bytes


Outcome = Union[Decoded, Refused, Garbage]


def encode(frame: Frame) -> bytes:
    """The bytes of `frame`, CRC low byte first. Raises FieldError (a ValueError) for a value that does not fit."""
    layout = LAYOUTS.get(frame.code)
    if layout is None:
        raise FieldError(f"unknown frame type 0x{frame.code:02X}")
    missing = [name for name, _ in layout.fields if name not in frame.fields]
    extra = set(frame.fields) - {name for name, _ in layout.fields}
    if missing or extra:
        raise FieldError(f"0x{frame.code:02X} {layout.name}: missing {missing}, unknown {sorted(extra)}")
    body = b"".join(field.encode(frame.fields[name]) for name, field in layout.fields)
    return framed(frame.code, body, frame.seq, frame.encrypted)


def framed(code: int, body: bytes, seq: int = 0, encrypted: int = 0) -> bytes:
    """A frame around a body already encoded (a sender repeating a body encodes it once)."""
    covered = seq.to_bytes(2, "little") + bytes((encrypted, code)) + body
    return bytes((START, len(covered))) + covered + crc16(covered).to_bytes(2, "little")


def _body(layout: Layout, body: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    offset = 0
    for name, field in layout.fields:
        try:
            fields[name] = field.decode(body[offset: offset + field.size])
        except FieldError as error:
            raise FieldError(f"{name}: {error}") from None
        offset += field.size
    return fields


def decode(raw: bytes) -> Decoded | Refused:
    """Read one whole frame (start byte to CRC)."""
    if len(raw) < HEADER + 2 or raw[0] != START:
        return Refused("not a frame: too short or no start byte 0x68", raw)
    length = raw[1]
    seq = int.from_bytes(raw[2:4], "little")
    code = raw[5]
    if len(raw) != length + 4:
        return Refused(f"wrong length: the length byte says {length + 4} bytes, the frame has {len(raw)}",
                       raw, code, seq)
    covered, sent = raw[2: 2 + length], raw[2 + length:]
    expected = crc16(covered)
    if sent == expected.to_bytes(2, "little"):
        order = CrcOrder.LOW_FIRST
    elif sent == expected.to_bytes(2, "big"):
        order = CrcOrder.HIGH_FIRST
    else:
        return Refused(f"bad CRC {sent.hex().upper()}, expected {expected.to_bytes(2, 'little').hex().upper()}",
                       raw, code, seq)
    layout = LAYOUTS.get(code)
    if layout is None:
        return Refused(f"unknown frame type 0x{code:02X}", raw, code, seq)
    if raw[4] != 0:
        return Refused(f"encrypted body (flag 0x{raw[4]:02X}): no key is defined", raw, code, seq)
    body = raw[HEADER: 2 + length]
    if len(body) != layout.body_size:
        return Refused(f"wrong length: 0x{code:02X} {layout.name} has a {layout.body_size}-byte body, this one {len(body)}",
                       raw, code, seq)
    try:
        fields = _body(layout, body)
    except FieldError as error:
        return Refused(f"0x{code:02X} {layout.name}: {error}", raw, code, seq)
    return Decoded(Frame(code, fields, seq, raw[4]), order, raw)


class Reader:
    """Splits a byte stream into outcomes; holds at most one unfinished frame (`MAX_FRAME` bytes)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Outcome]:
        self._buffer += data
        out: list[Outcome] = []
        buffer = self._buffer
        while buffer:
            start = buffer.find(START)
            if start != 0:
                skipped = len(buffer) if start < 0 else start
                out.append(Garbage(bytes(buffer[:skipped])))
                del buffer[:skipped]
                continue
            if len(buffer) < 2:
                break
            if buffer[1] < 4:
                out.append(Garbage(bytes(buffer[:2])))
                del buffer[:2]
                continue
            size = buffer[1] + 4
            if len(buffer) < size:
                break
            out.append(decode(bytes(buffer[:size])))
            del buffer[:size]
        return out
