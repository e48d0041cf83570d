"""The YKC billing model made of a tariff, and the sans-IO connection's rules (no sockets)."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest

from gateway.billing.tariffs import DEFAULT_TARIFF, Period, Tariff
from gateway.ykc.billing_model import ModelError, billing_model
from gateway.ykc.codec import Frame, decode, encode
from gateway.ykc.connection import Connection, OutOfTurn, Received, Unreadable

PILE = "32010200000001"


def test_the_default_tariff_as_a_billing_model():
    # 06:00-22:00 at 150 fen/kWh, 22:00-06:00 at 80 fen/kWh, no service fee: two tiers, the dearer first
    model = billing_model(DEFAULT_TARIFF)
    assert model.rates == ((150, 0), (80, 0), (80, 0), (80, 0))
    assert model.slots == (1,) * 12 + (0,) * 32 + (1,) * 4
    body = model.fields(PILE)
    assert body["sharp_energy_rate"] == Decimal("1.50") and body["peak_energy_rate"] == Decimal("0.80")
    raw = encode(Frame(0x0A, body))
    # 1.50000 yuan/kWh is 150000 = 0x0249F0, little-endian on the wire, right after pile code and model number
    assert raw[6 + 9: 6 + 13] == bytes.fromhex("F0 49 02 00")
    assert decode(raw).frame.fields["slots"] == model.slots


def test_four_prices_with_service_fees_by_period_and_a_stable_number():
    tariff = Tariff("tou", (
        Period(time(0), time(8), 30, 40), Period(time(8), time(10), 70, 40), Period(time(10), time(12), 90, 40),
        Period(time(12), time(17, 30), 70, 40), Period(time(17, 30), time(19), 100, 40), Period(time(19), time(0), 90, 40),
    ))
    model = billing_model(tariff)
    assert model.rates == ((100, 40), (90, 40), (70, 40), (30, 40))
    assert model.slots == (3,) * 16 + (2,) * 4 + (1,) * 4 + (2,) * 11 + (0,) * 3 + (1,) * 10
    assert model.number == billing_model(tariff).number != "0000"
    assert billing_model(DEFAULT_TARIFF).number != model.number


def test_tariffs_that_do_not_fit_say_why():
    five = Tariff("five", tuple(Period(time(h), time((h + 4) % 24), 10 + h) for h in (0, 4, 8, 12, 16)) +
                  (Period(time(20), time(0), 10, None),))
    with pytest.raises(ModelError, match="5 different prices"):
        billing_model(five)
    quarter = Tariff("quarter", (Period(time(6, 15), time(22), 150), Period(time(22), time(6, 15), 80)))
    with pytest.raises(ModelError, match="06:15"):
        billing_model(quarter)


def login(seq: int = 0x1234) -> bytes:
    return encode(Frame(0x01, {"pile": PILE, "pile_type": 0, "guns": 2, "protocol": 0x10, "firmware": "V1",
                               "network": 1, "sim": "0" * 20, "carrier": 4}, seq))


def heartbeat(pile: str = PILE, seq: int = 1) -> bytes:
    return encode(Frame(0x03, {"pile": pile, "gun": 1, "gun_state": 0}, seq))


def test_nothing_but_a_login_before_the_login_is_accepted():
    conn = Connection()
    [event] = conn.receive(heartbeat())
    assert isinstance(event, OutOfTurn) and "before the pile logged in" in event.reason
    [event] = conn.receive(login())
    assert isinstance(event, Received) and event.frame.code == 0x01
    conn.logged_in(PILE)
    [event] = conn.receive(heartbeat())
    assert isinstance(event, Received)
    [event] = conn.receive(heartbeat("32010200000002"))
    assert isinstance(event, OutOfTurn) and "names pile 32010200000002" in event.reason


def test_platform_frames_from_a_pile_are_out_of_turn():
    conn = Connection()
    conn.logged_in(PILE)
    [event] = conn.receive(encode(Frame(0x36, {"pile": PILE, "gun": 1})))
    assert isinstance(event, OutOfTurn) and "sent by the platform" in event.reason


def test_replies_echo_the_request_and_our_frames_count_from_zero():
    conn = Connection()
    [event] = conn.receive(login(0xBEEF))
    frame, raw = conn.reply(event.frame, 0x02, {"pile": PILE, "result": 0})
    assert raw[2:4] == bytes.fromhex("EF BE") and frame.seq == 0xBEEF
    sent = [conn.send(0x12, {"pile": PILE, "gun": 1})[1][2:4] for _ in range(3)]
    assert sent == [b"\x00\x00", b"\x01\x00", b"\x02\x00"]


def test_split_and_corrupted_bytes():
    conn = Connection()
    raw = login()
    assert conn.receive(raw[:10]) == [] and conn.buffered == 10
    [event] = conn.receive(raw[10:])
    assert isinstance(event, Received) and conn.buffered == 0
    broken = bytearray(heartbeat())
    broken[-1] ^= 0xFF
    events = conn.receive(b"\x00\x01" + bytes(broken))
    assert [type(e) for e in events] == [Unreadable, Unreadable]
    assert "skipped" in events[0].reason and "bad CRC" in events[1].reason
