"""The field kinds of the YKC platform protocol, each a fixed number of bytes (sans-IO, pure).

Integers ("BIN") are unsigned little-endian; a scaled one reads as a `Decimal` (2251 at scale 1 is
225.1 V). BCD fields are packed, most significant digit first, read as an upper-case hex string
(SIM numbers carry A-F nibbles); a BCD number (the gun) reads as an int. Text is fixed width, padded
with NUL bytes. Times are CP56Time2a in the pile's local wall-clock time. Decoding never raises
anything but `FieldError`; encoding raises `FieldError` for a value the field cannot hold.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs


class FieldError(ValueError):
    """A value that does not fit its field, or bytes that are not what the field holds."""


_HEX = frozenset("0123456789ABCDEF")


@attrs.frozen
class Bcd:
    """n bytes of packed BCD as a 2n-character upper-case hex string (pile code, serial, card)."""

    size: int

    def decode(self, raw: bytes) -> str:
        return raw.hex().upper()

    def encode(self, value: Any) -> bytes:
        text = str(value).upper()
        if len(text) != 2 * self.size or not set(text) <= _HEX:
            raise FieldError(f"{value!r} is not {2 * self.size} BCD digits")
        return bytes.fromhex(text)


@attrs.frozen
class BcdInt:
    """n bytes of packed BCD holding a decimal number (the gun number)."""

    size: int

    def decode(self, raw: bytes) -> int:
        text = raw.hex()
        if not text.isdigit():
            raise FieldError(f"{text.upper()} is not a BCD number")
        return int(text)

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10 ** (2 * self.size):
            raise FieldError(f"{value!r} is not a number of at most {2 * self.size} digits")
        return bytes.fromhex(f"{value:0{2 * self.size}d}")


@attrs.frozen
class UInt:
    """An unsigned little-endian integer; with `scale` k it reads as Decimal(raw) / 10**k."""

    size: int
    scale: int = 0

    @property
    def maximum(self) -> int:
        return 256**self.size - 1

    def decode(self, raw: bytes) -> int | Decimal:
        number = int.from_bytes(raw, "little")
        return Decimal(number).scaleb(-self.scale) if self.scale else number

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bool):
            raise FieldError(f"{value!r} is not a number")
        if self.scale:
            try:
                scaled = Decimal(value).scaleb(self.scale)
            except (ArithmeticError, TypeError, ValueError):
                raise FieldError(f"{value!r} is not a number") from None
            if scaled != scaled.to_integral_value():
                raise FieldError(f"{value} has more than {self.scale} decimals")
            number = int(scaled)
        elif isinstance(value, int):
            number = value
        else:
            raise FieldError(f"{value!r} is not a whole number")
        if not 0 <= number <= self.maximum:
            raise FieldError(f"{value} does not fit in {self.size} bytes")
        return number.to_bytes(self.size, "little")


@attrs.frozen
class Ascii:
    """Fixed-width text padded with NUL bytes; `reverse`: sent last character first (the VIN of 0x31)."""

    size: int
    reverse: bool = False

    def decode(self, raw: bytes) -> str:
        raw = raw[::-1] if self.reverse else raw
        return raw.rstrip(b"\0").decode("latin-1")

    def encode(self, value: Any) -> bytes:
        try:
            raw = str(value).encode("latin-1")
        except UnicodeEncodeError:
            raise FieldError(f"{value!r} is not single-byte text") from None
        if len(raw) > self.size or raw.endswith(b"\0"):
            raise FieldError(f"{value!r} does not fit in {self.size} characters")
        raw = raw.ljust(self.size, b"\0")
        return raw[::-1] if self.reverse else raw


@attrs.frozen
class Raw:
    """n opaque bytes as an upper-case hex string (physical card number, BMS data), echoed as they came."""

    size: int

    def decode(self, raw: bytes) -> str:
        return raw.hex().upper()

    def encode(self, value: Any) -> bytes:
        try:
            raw = bytes.fromhex(str(value))
        except ValueError:
            raise FieldError(f"{value!r} is not hex") from None
        if len(raw) != self.size:
            raise FieldError(f"{value!r} is not {self.size} bytes")
        return raw


@attrs.frozen
class Cp56:
    """CP56Time2a: a naive local date-time to the millisecond; seven zero bytes (or no valid date) read as None.

    Decoding masks the flag and day-of-week bits piles set; encoding writes them as zero.
    """

    size: int = 7

    def decode(self, raw: bytes) -> dt.datetime | None:
        if raw == bytes(7):
            return None
        millis = int.from_bytes(raw[0:2], "little")
        try:
            return dt.datetime(
                2000 + (raw[6] & 0x7F), raw[5] & 0x0F, raw[4] & 0x1F, raw[3] & 0x1F, raw[2] & 0x3F,
                millis // 1000, (millis % 1000) * 1000,
            )
        except ValueError:
            return None

    def encode(self, value: Any) -> bytes:
        if value is None:
            return bytes(7)
        if not isinstance(value, dt.datetime) or value.tzinfo is not None:
            raise FieldError(f"{value!r} is not a local date-time")
        if not 2000 <= value.year <= 2099:
            raise FieldError(f"{value} is outside 2000-2099")
        millis = value.second * 1000 + value.microsecond // 1000
        return millis.to_bytes(2, "little") + bytes(
            (value.minute, value.hour, value.day, value.month, value.year - 2000)
        )


@attrs.frozen
class Slots:
    """The tier (0 sharp, 1 peak, 2 flat, 3 valley) of each half hour of the day, midnight first."""

    size: int = 48

    def decode(self, raw: bytes) -> tuple[int, ...]:
        if max(raw) > 3:
            raise FieldError(f"tier {max(raw)} is not one of 0-3")
        return tuple(raw)

    def encode(self, value: Any) -> bytes:
        tiers = tuple(value)
        if len(tiers) != self.size or any(not isinstance(t, int) or not 0 <= t <= 3 for t in tiers):
            raise FieldError(f"not {self.size} tiers of 0-3")
        return bytes(tiers)


Field = Bcd | BcdInt | UInt | Ascii | Raw | Cp56 | Slots
