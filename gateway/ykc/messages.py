"""The frame types of the YKC platform protocol V1.5/V1.6 and the layout of each body.

Odd types are sent by the pile, even ones by the platform. V1.5 and V1.6 lay out every frame here
the same way (V1.6 only added parallel charging of two guns, 0xA1-0xA4, which we do not take).
Field names end in their unit where the protocol scales them: `_kwh`, `_yuan`, `_v`, `_a`, `_min`, `_c`
(degrees Celsius with the protocol's offset of 50 kept: raw 0 means "no reading").
"""

from __future__ import annotations

import enum

import attrs

from .fields import Ascii, Bcd, BcdInt, Cp56, Field, Raw, Slots, UInt


class Sender(enum.Enum):
    PILE = "pile"
    PLATFORM = "platform"


@attrs.frozen
class Layout:
    code: int
    name: str
    fields: tuple[tuple[str, Field], ...]

    @property
    def sender(self) -> Sender:
        return Sender.PILE if self.code % 2 else Sender.PLATFORM

    @property
    def body_size(self) -> int:
        return sum(field.size for _, field in self.fields)


PILE = ("pile", Bcd(7))
GUN = ("gun", BcdInt(1))
SERIAL = ("serial", Bcd(16))
U8 = UInt(1)
ENERGY = UInt(4, 4)   # kWh to 4 decimals
MONEY = UInt(4, 4)    # yuan to 4 decimals
RATE = UInt(4, 5)     # yuan per kWh to 5 decimals
BALANCE = UInt(4, 2)  # yuan to 2 decimals
TIERS = ("sharp", "peak", "flat", "valley")

_BILLING_MODEL = (
    PILE,
    ("model", Bcd(2)),
    *((f"{tier}_{part}_rate", RATE) for tier in TIERS for part in ("energy", "service")),
    ("loss_ratio", U8),
    ("slots", Slots()),
)


def _bms(code: int, name: str, size: int) -> Layout:
    """A GB/T 27930 battery frame: kept whole (session, pile, gun and the rest as bytes)."""
    return Layout(code, name, (SERIAL, PILE, GUN, ("data", Raw(size - 24))))


LAYOUTS: dict[int, Layout] = {
    layout.code: layout
    for layout in (
        Layout(0x01, "login", (
            PILE, ("pile_type", U8), ("guns", U8), ("protocol", U8), ("firmware", Ascii(8)),
            ("network", U8), ("sim", Bcd(10)), ("carrier", U8),
        )),
        Layout(0x02, "login_ack", (PILE, ("result", U8))),
        Layout(0x03, "heartbeat", (PILE, GUN, ("gun_state", U8))),
        Layout(0x04, "heartbeat_ack", (PILE, GUN, ("reply", U8))),
        Layout(0x05, "model_verify", (PILE, ("model", Bcd(2)))),
        Layout(0x06, "model_verify_ack", (PILE, ("model", Bcd(2)), ("result", U8))),
        Layout(0x09, "model_request", (PILE,)),
        Layout(0x0A, "model_reply", _BILLING_MODEL),
        Layout(0x12, "read_realtime", (PILE, GUN)),
        Layout(0x13, "realtime", (
            SERIAL, PILE, GUN, ("status", U8), ("holstered", U8), ("plugged", U8),
            ("voltage_v", UInt(2, 1)), ("current_a", UInt(2, 1)), ("cable_temp_c", U8), ("cable_code", Raw(8)),
            ("soc", U8), ("battery_temp_c", U8), ("charged_min", UInt(2)), ("remaining_min", UInt(2)),
            ("energy_kwh", ENERGY), ("lossy_energy_kwh", ENERGY), ("amount_yuan", MONEY), ("faults", UInt(2)),
        )),
        _bms(0x15, "bms_handshake", 73),
        _bms(0x17, "bms_parameters", 45),
        _bms(0x19, "bms_charge_end", 39),
        _bms(0x1B, "bms_error", 32),
        _bms(0x1D, "bms_abort", 28),
        _bms(0x21, "charger_abort", 28),
        _bms(0x23, "bms_demand", 44),
        _bms(0x25, "bms_info", 31),
        Layout(0x31, "card_start", (
            PILE, GUN, ("mode", U8), ("password_required", U8), ("card", Raw(8)), ("password", Raw(16)),
            ("vin", Ascii(17, reverse=True)),
        )),
        Layout(0x32, "card_start_ack", (
            SERIAL, PILE, GUN, ("logical_card", Bcd(8)), ("balance_yuan", BALANCE), ("result", U8),
            ("reason", U8),
        )),
        Layout(0x33, "remote_start_reply", (SERIAL, PILE, GUN, ("result", U8), ("reason", U8))),
        Layout(0x34, "remote_start", (
            SERIAL, PILE, GUN, ("logical_card", Bcd(8)), ("card", Raw(8)), ("balance_yuan", BALANCE),
        )),
        Layout(0x35, "remote_stop_reply", (PILE, GUN, ("result", U8), ("reason", U8))),
        Layout(0x36, "remote_stop", (PILE, GUN)),
        Layout(0x3B, "transaction", (
            SERIAL, PILE, GUN, ("started", Cp56()), ("ended", Cp56()),
            *(
                (f"{tier}_{part}", field)
                for tier in TIERS
                for part, field in (("price", RATE), ("energy_kwh", ENERGY), ("lossy_energy_kwh", ENERGY),
                                    ("amount_yuan", MONEY))
            ),
            ("meter_start_kwh", UInt(5, 4)), ("meter_stop_kwh", UInt(5, 4)),
            ("energy_kwh", ENERGY), ("lossy_energy_kwh", ENERGY), ("amount_yuan", MONEY),
            ("vin", Ascii(17)), ("trade", U8), ("traded", Cp56()), ("stop_reason", U8), ("card", Raw(8)),
        )),
        Layout(0x40, "transaction_ack", (SERIAL, ("result", U8))),
        Layout(0x41, "balance_reply", (PILE, ("card", Raw(8)), ("result", U8))),
        Layout(0x42, "balance_update", (PILE, GUN, ("card", Raw(8)), ("balance_yuan", BALANCE))),
        Layout(0x51, "parameters_reply", (PILE, ("result", U8))),
        Layout(0x52, "parameters", (PILE, ("locked", U8), ("max_power_percent", U8))),
        Layout(0x55, "time_sync_reply", (PILE, ("time", Cp56()))),
        Layout(0x56, "time_sync", (PILE, ("time", Cp56()))),
        Layout(0x57, "model_set_reply", (PILE, ("result", U8))),
        Layout(0x58, "model_set", _BILLING_MODEL),
        Layout(0x91, "reboot_reply", (PILE, ("result", U8))),
        Layout(0x92, "reboot", (PILE, ("control", U8))),
    )
}

# 0x3B stop reasons (the record's byte 149), grouped as the protocol groups them
STOP_REASONS = {
    0x40: "remote stop", 0x41: "SOC 100%", 0x42: "energy target reached", 0x43: "amount target reached",
    0x44: "time target reached", 0x45: "stopped at the pile", 0x6E: "insufficient balance",
    0x72: "emergency stop", 0x83: "pile lost power", 0x90: "unknown",
}


def stop_reason_text(code: int) -> str:
    """A person's reading of a 0x3B stop reason."""
    if code in STOP_REASONS:
        return STOP_REASONS[code]
    if 0x40 <= code <= 0x49:
        return "finished"
    if 0x4A <= code <= 0x69:
        return "start failed"
    if 0x6A <= code <= 0x8F:
        return "abnormal end"
    return "unknown"


# 0x13 gun status
STATUS_OFFLINE, STATUS_FAULT, STATUS_IDLE, STATUS_CHARGING = 0, 1, 2, 3
