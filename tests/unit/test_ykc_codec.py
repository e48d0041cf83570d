"""The YKC codec against the protocol's rules, the collected frames and random frames of every type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ykc.codec import CrcOrder, Decoded, Frame, Garbage, Reader, Refused, crc16, decode, encode
from gateway.ykc.fields import Ascii, Bcd, BcdInt, Cp56, FieldError, Raw, Slots, UInt
from gateway.ykc.messages import LAYOUTS, stop_reason_text

FIXTURE = Path(__file__).parent.parent / "fixtures" / "ykc_frames.txt"


def fixture_frames() -> list[tuple[str, str, bytes]]:
    rows = []
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sender, expected, hexed = (part.strip() for part in line.split("|"))
        rows.append((sender, expected, bytes.fromhex(hexed)))
    return rows


def frame_of(hexed: str) -> Frame:
    outcome = decode(bytes.fromhex(hexed))
    assert isinstance(outcome, Decoded), outcome
    return outcome.frame


def test_crc_is_modbus():
    assert crc16(b"123456789") == 0x4B37


def test_the_document_login_ack_carries_its_crc_low_byte_first():
    raw = bytes.fromhex("68 0C 00 00 00 02 55 03 14 12 78 23 05 00 DA 4C")
    assert crc16(raw[2:14]) == 0x4CDA
    assert encode(Frame(0x02, {"pile": "55031412782305", "result": 0})) == raw


@pytest.mark.parametrize("sender,expected,raw", fixture_frames())
def test_collected_frames_are_taken_or_refused_as_stated(sender, expected, raw):
    outcome = decode(raw)
    if expected.startswith("refused: "):
        assert isinstance(outcome, Refused)
        assert expected.removeprefix("refused: ") in outcome.reason
        return
    assert isinstance(outcome, Decoded), outcome
    assert outcome.crc_order is (CrcOrder.LOW_FIRST if expected == "low" else CrcOrder.HIGH_FIRST)
    assert LAYOUTS[outcome.frame.code].sender.value == sender
    again = encode(outcome.frame)
    if not any(isinstance(field, Cp56) for _, field in LAYOUTS[outcome.frame.code].fields):
        # what we send carries the CRC low byte first; the rest is the same bytes (times: day-of-week bits differ)
        assert again[:-2] == raw[:-2]
    assert decode(again).frame == outcome.frame


def test_all_66_frames_are_in_the_fixture():
    assert len(fixture_frames()) == 66


def test_login_of_a_v16_ac_pile():
    f = frame_of("68 22 00 19 00 01 20 23 12 12 00 00 10 01 01 10 47 56 2E 39 35 72 31 33 00 89 86 04 D1 17 22"
                 " D0 34 86 06 02 87 4E")
    assert f.fields == {
        "pile": "20231212000010", "pile_type": 1, "guns": 1, "protocol": 0x10, "firmware": "GV.95r13",
        "network": 0, "sim": "898604D11722D0348606", "carrier": 2,
    }
    assert f.seq == 0x1900  # the bytes 00 19, read little-endian


def test_realtime_data_values_and_scales():
    f = frame_of("68 40 BB BD 00 13 20 23 12 12 00 00 10 00 00 00 00 10 05 71 36 00 20 23 12 12 00 00 10 01 03 00"
                 " 01 94 0E F4 03 54 00 00 00 00 00 00 00 00 4E 55 10 00 20 00 C0 57 01 00 00 00 00 00 60 6C 01 00"
                 " 00 00 4C 56")
    v = f.fields
    assert v["serial"] == "20231212000010000000001005713600"
    assert (v["pile"], v["gun"], v["status"], v["holstered"], v["plugged"]) == ("20231212000010", 1, 3, 0, 1)
    assert v["voltage_v"] == Decimal("373.2") and v["current_a"] == Decimal("101.2")
    assert v["cable_temp_c"] - 50 == 34 and v["soc"] == 78 and v["battery_temp_c"] - 50 == 35
    assert (v["charged_min"], v["remaining_min"]) == (16, 32)
    assert v["energy_kwh"] == Decimal("8.8") and v["lossy_energy_kwh"] == 0
    assert v["amount_yuan"] == Decimal("9.328")


def test_transaction_record_values():
    f = frame_of("68 A2 09 00 00 3B 32 01 02 00 00 00 01 01 25 01 01 12 00 00 00 01 32 01 02 00 00 00 01 01 88 13"
                 " 00 0C 01 01 19 10 27 1E 0C 01 01 19 E0 22 02 00 00 00 00 00 00 00 00 00 00 00 00 00 D0 FB 01 00"
                 " 00 00 00 00 00 00 00 00 00 00 00 00 B0 AD 01 00 28 9A 01 00 28 9A 01 00 2C C3 01 00 70 11 01 00"
                 " 00 00 00 00 00 00 00 00 00 00 00 00 80 96 98 00 00 A8 30 9A 00 00 28 9A 01 00 28 9A 01 00 2C C3"
                 " 01 00 4C 53 56 41 55 32 31 38 30 4E 32 31 32 33 34 35 36 01 10 27 1E 0C 01 01 19 40 00 00 00 00"
                 " 00 00 00 00 4D C6")
    v = f.fields
    assert v["serial"] == "32010200000001012501011200000001"
    assert v["started"] == dt.datetime(2025, 1, 1, 12, 0, 5)
    assert v["ended"] == v["traded"] == dt.datetime(2025, 1, 1, 12, 30, 10)
    assert (v["sharp_price"], v["peak_price"], v["flat_price"], v["valley_price"]) == (
        Decimal("1.4"), Decimal("1.3"), Decimal("1.1"), Decimal("0.7"))
    assert v["flat_energy_kwh"] == Decimal("10.5") and v["flat_amount_yuan"] == Decimal("11.55")
    assert (v["meter_start_kwh"], v["meter_stop_kwh"]) == (Decimal("1000"), Decimal("1010.5"))
    assert v["energy_kwh"] == Decimal("10.5") and v["amount_yuan"] == Decimal("11.55")
    assert v["vin"] == "LSVAU2180N2123456" and v["trade"] == 1 and v["stop_reason"] == 0x40
    assert stop_reason_text(v["stop_reason"]) == "remote stop"


def test_transaction_record_sent_crc_high_first_with_day_of_week_bits():
    hexed = "68 A2 00 46 00 3B 20 23 12 12 00 00 10 32 32 39"
    (raw,) = [raw for _, _, raw in fixture_frames() if raw.startswith(bytes.fromhex(hexed))]
    outcome = decode(raw)
    assert isinstance(outcome, Decoded) and outcome.crc_order is CrcOrder.HIGH_FIRST
    v = outcome.frame.fields
    assert v["started"] == dt.datetime(2023, 12, 13, 17, 4, 14)
    assert v["ended"] == dt.datetime(2023, 12, 13, 17, 9, 36)
    assert v["sharp_price"] == Decimal("1.5") and v["valley_price"] == Decimal("0.9")
    assert v["valley_energy_kwh"] == Decimal("0.165") and v["valley_amount_yuan"] == Decimal("0.14")
    assert v["meter_start_kwh"] == v["meter_stop_kwh"] == 0


def test_billing_model_reply():
    f = frame_of("68 5E 03 00 00 0A 32 01 02 00 00 00 01 00 01 A0 86 01 00 40 9C 00 00 90 5F 01 00 40 9C 00 00 70"
                 " 11 01 00 40 9C 00 00 30 75 00 00 40 9C 00 00 00 03 03 03 03 03 03 03 03 03 03 03 03 03 03 03 03"
                 " 02 02 02 02 01 01 01 01 02 02 02 02 01 01 01 01 01 01 00 00 00 00 01 01 01 01 02 02 02 02 03 03"
                 " 01 A6")
    v = f.fields
    assert v["model"] == "0001"
    assert [v[f"{t}_energy_rate"] for t in ("sharp", "peak", "flat", "valley")] == [
        Decimal("1"), Decimal("0.9"), Decimal("0.7"), Decimal("0.3")]
    assert {v[f"{t}_service_rate"] for t in ("sharp", "peak", "flat", "valley")} == {Decimal("0.4")}
    assert v["slots"] == (3,) * 16 + (2,) * 4 + (1,) * 4 + (2,) * 4 + (1,) * 6 + (0,) * 4 + (1,) * 4 + (2,) * 4 + (3,) * 2


def test_remote_start_and_time_sync():
    f = frame_of("68 30 00 7C 00 34 55 03 14 12 78 23 05 01 20 18 06 19 14 44 46 80 55 03 14 12 78 23 05 01 00 00"
                 " 00 10 00 00 05 73 00 00 00 00 D1 4B 0A 54 A0 86 01 00 13 F6")
    assert f.fields["logical_card"] == "0000001000000573"
    assert f.fields["card"] == "00000000D14B0A54"
    assert f.fields["balance_yuan"] == Decimal("1000")
    t = frame_of("68 12 01 00 00 56 20 23 12 12 00 00 10 30 75 0F 11 12 0C 18 04 7D")
    assert t.fields["time"] == dt.datetime(2024, 12, 18, 17, 15, 30)
    card = frame_of("68 37 00 04 00 31 20 23 12 12 00 00 10 01 01 00 00 00 00 00 D1 4B 0A 54" + " 00" * 33 + " FA E8")
    assert (card.fields["mode"], card.fields["card"], card.fields["vin"]) == (1, "00000000D14B0A54", "")


def test_refusals_give_the_reason():
    assert "bad CRC 675A, expected 0F32" in decode(bytes.fromhex(
        "68 22 00 00 00 01 55 03 14 12 78 23 05 00 02 0F 56 34 2E 31 2E 35 30 00 01 01 01 01 01 01 01 01 01 01 01"
        " 04 67 5A")).reason
    gun_not_bcd = encode(Frame(0x12, {"pile": "32010200000001", "gun": 1}))
    broken = bytearray(gun_not_bcd[:-2])
    broken[13] = 0x1A
    broken += crc16(bytes(broken[2:])).to_bytes(2, "little")
    outcome = decode(bytes(broken))
    assert isinstance(outcome, Refused) and "gun" in outcome.reason and outcome.code == 0x12
    encrypted = bytearray(gun_not_bcd[:-2])
    encrypted[4] = 1
    encrypted += crc16(bytes(encrypted[2:])).to_bytes(2, "little")
    assert "encrypted" in decode(bytes(encrypted)).reason


# -- random frames of every type --------------------------------------------------------------------

def strategy(field):
    if isinstance(field, Bcd):
        return st.text("0123456789ABCDEF", min_size=2 * field.size, max_size=2 * field.size)
    if isinstance(field, BcdInt):
        return st.integers(0, 10 ** (2 * field.size) - 1)
    if isinstance(field, UInt):
        whole = st.integers(0, field.maximum)
        return whole.map(lambda n: Decimal(n).scaleb(-field.scale)) if field.scale else whole
    if isinstance(field, Ascii):
        return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=field.size)
    if isinstance(field, Raw):
        return st.binary(min_size=field.size, max_size=field.size).map(lambda b: b.hex().upper())
    if isinstance(field, Cp56):
        return st.one_of(st.none(), st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59))
                         .map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)))
    if isinstance(field, Slots):
        return st.lists(st.integers(0, 3), min_size=48, max_size=48).map(tuple)
    raise AssertionError(field)


def frames(code: int):
    layout = LAYOUTS[code]
    return st.builds(
        Frame, st.just(code), st.fixed_dictionaries({name: strategy(field) for name, field in layout.fields}),
        st.integers(0, 0xFFFF),
    )


any_frame = st.sampled_from(sorted(LAYOUTS)).flatmap(frames)


@pytest.mark.parametrize("code", sorted(LAYOUTS), ids=lambda c: f"0x{c:02X}")
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_frame_type_round_trips(code, data):
    frame = data.draw(frames(code))
    raw = encode(frame)
    assert raw[1] == LAYOUTS[code].body_size + 4 == len(raw) - 4
    outcome = decode(raw)
    assert isinstance(outcome, Decoded) and outcome.crc_order is CrcOrder.LOW_FIRST
    assert outcome.frame == frame


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(any_frame, st.binary(max_size=6).filter(lambda b: 0x68 not in b)), min_size=1,
                max_size=6), st.data())
def test_reader_splits_any_chunking_and_skips_garbage(pairs, data):
    stream = b"".join(junk + encode(frame) for frame, junk in pairs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = Reader()
    outcomes = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        outcomes += reader.feed(stream[start:end])
    assert [o.frame for o in outcomes if isinstance(o, Decoded)] == [frame for frame, _ in pairs]
    assert b"".join(o.raw for o in outcomes if isinstance(o, Garbage)) == b"".join(junk for _, junk in pairs)
    assert reader.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_reader_never_raises_and_holds_at_most_one_frame(data):
    reader = Reader()
    for outcome in reader.feed(data):
        assert isinstance(outcome, (Decoded, Refused, Garbage))
    assert reader.pending < 260


def test_values_that_do_not_fit_are_refused_when_encoding():
    with pytest.raises(FieldError):
        encode(Frame(0x13, {}))
    with pytest.raises(FieldError):
        UInt(4, 5).encode(Decimal("0.123456"))
    with pytest.raises(FieldError):
        UInt(2).encode(70000)
    with pytest.raises(FieldError):
        Bcd(7).encode("123")
