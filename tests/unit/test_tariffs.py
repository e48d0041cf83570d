"""gateway.billing.money and gateway.billing.tariffs: exact money, tariff config, and the price of a session.

Figures are worked out by hand in the comments. Unless a test says otherwise: Asia/Shanghai (UTC+8, no DST), the
default periods (06:00-22:00 at 150 fen/kWh, 22:00-06:00 at 80) and a service fee of 40 fen/kWh.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.billing.money import allocate, round_half_up
from gateway.billing.tariffs import (
    DEFAULT_TARIFF,
    MAX_LINES,
    MAX_SESSION_DAYS,
    Line,
    Period,
    Tariff,
    check_periods,
    parse_tariff,
    price_session,
    tariff_data,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
TARIFF = attrs.evolve(DEFAULT_TARIFF, service_fee=40)


def local(hour: int, minute: int = 0, day: int = 14) -> datetime:
    """A wall-clock time in Shanghai on 2025-08-<day>."""
    return datetime(2025, 8, day, hour, minute, tzinfo=SHANGHAI)


def utc(day: int, hour: int, minute: int = 0, month: int = 8) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def summary(pricing) -> list[tuple[int, int, int]]:
    """(price, energy_wh, amount) per line."""
    return [(line.price, line.energy_wh, line.amount) for line in pricing.lines]


# --- money: round_half_up ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(0), 0),
        (Fraction(5, 2), 3),  # 2.5: halves go away from zero
        (Fraction(-5, 2), -3),
        (Fraction(1, 2), 1),  # banker's rounding (Python's round) would give 0
        (Fraction(9, 2), 5),  # and 4 here
        (Fraction(24999, 10000), 2),
        (Fraction(-24999, 10000), -2),
        (Fraction(15045, 100), 150),  # 1003 Wh at 150 fen/kWh
        (Fraction(1515, 10), 152),  # 1010 Wh at 150 fen/kWh
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(10**30 + 1, 2), 10**30 // 2 + 1),  # exact at any size, where a float would not be
        (Fraction(7), 7),
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


@given(st.fractions(max_denominator=10**6))
def test_round_half_up_is_nearest_with_halves_away_from_zero(value):
    rounded = round_half_up(value)
    assert abs(rounded - value) <= Fraction(1, 2)
    if abs(rounded - value) == Fraction(1, 2):
        assert abs(rounded) > abs(value)
    assert round_half_up(-value) == -rounded


# --- money: allocate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, [1, 1, 1], [4, 3, 3]),  # 3.33 each: the one left over goes to the earliest on a tie
        (100, [1, 2], [33, 67]),  # 33.33 + 66.67: the larger remainder takes the unit
        (1001, [Fraction(1, 3), Fraction(2, 3)], [334, 667]),  # 333.67 + 667.33
        (1001, [1, 1], [501, 500]),  # 500.5 each: tie, earlier index
        (7, [0, 3, 0], [0, 7, 0]),
        (5, [0, 0], [5, 0]),  # nothing to go by: all on the first part
        (0, [0, 0, 0], [0, 0, 0]),
        (0, [], []),
        (12000, [5000, 7000], [5000, 7000]),  # whole shares come back unchanged
        (-10, [1, 1, 1], [-4, -3, -3]),  # mirrored, so the same parts as for 10
    ],
)
def test_allocate(total, weights, expected):
    assert allocate(total, [Fraction(weight) for weight in weights]) == expected


def test_allocate_refuses_what_cannot_be_split():
    with pytest.raises(ValueError, match="no parts"):
        allocate(5, [])
    with pytest.raises(ValueError, match="negative"):
        allocate(5, [Fraction(1), Fraction(-1)])


@given(
    st.integers(min_value=-10**9, max_value=10**9),
    st.lists(st.fractions(min_value=0, max_value=10**6, max_denominator=1000), min_size=1, max_size=12),
)
def test_allocate_parts_add_up_and_stay_within_one_of_the_exact_share(total, weights):
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    if weight_sum:
        for part, weight in zip(parts, weights):
            assert abs(part - total * weight / weight_sum) < 1
            if total >= 0:
                assert part >= 0


# --- price_session: the issue's examples ------------------------------------------------------


def test_session_over_the_22_00_boundary_with_a_meter_value():
    # 21:30-23:00, 0 -> 12000 Wh, 5000 Wh at 22:00:
    # day 5000 Wh x 150 = 750, night 7000 Wh x 80 = 560, service 12 kWh x 40 = 480, total 1790 fen
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 12000, [(local(22), 5000)])
    assert pricing.method == "meter_values"
    assert pricing.energy_wh == 12000
    assert pricing.lines == (
        Line(utc(14, 13, 30), utc(14, 14), 150, 5000, 750, 40),
        Line(utc(14, 14), utc(14, 15), 80, 7000, 560, 40),
    )
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (1310, 480, 1790)
    assert pricing.currency == "CNY"
    assert "meter values" in pricing.note


def test_session_without_meter_values_is_split_by_time():
    # 21:30-23:00, 9000 Wh, nothing in between: 30 of 90 minutes are day.
    # day 1/3 = 3000 Wh x 150 = 450, night 2/3 = 6000 Wh x 80 = 480, service 9 x 40 = 360, total 1290 fen
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 9000)
    assert pricing.method == "time_proportional"
    assert summary(pricing) == [(150, 3000, 450), (80, 6000, 480)]
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (930, 360, 1290)
    assert pricing.note == "energy split by time: no meter values inside the session"


def test_two_meter_values_interpolate_to_the_boundary():
    # 21:30 0, 21:45 2000, 22:15 6000, 22:30 8000 Wh. At 22:00 the register is halfway from 2000 to 6000 = 4000.
    # day 4000 Wh x 150 = 600, night 4000 Wh x 80 = 320, service 8 x 40 = 320, total 1240 fen
    readings = [(local(22, 15), 6000), (local(21, 45), 2000)]  # any order
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(22, 30), 0, 8000, readings)
    assert pricing.method == "meter_values"
    assert summary(pricing) == [(150, 4000, 600), (80, 4000, 320)]
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (920, 320, 1240)
    assert pricing.note == "energy split by meter values: 2 meter values inside the session"


def test_times_in_any_zone_are_compared_in_utc():
    readings = [(utc(14, 14).astimezone(ZoneInfo("America/New_York")), 5000)]
    pricing = price_session(TARIFF, SHANGHAI, utc(14, 13, 30), utc(14, 15), 0, 12000, readings)
    assert pricing.total == 1790
    assert pricing.lines[0].start.tzinfo == UTC


def test_meter_register_need_not_start_at_zero():
    # the same as the first example, with the register at 1 000 000 Wh when the session begins
    readings = [(local(22), 1_005_000)]
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 1_000_000, 1_012_000, readings)
    assert summary(pricing) == [(150, 5000, 750), (80, 7000, 560)]
    assert pricing.total == 1790


# --- rounding ---------------------------------------------------------------------------------


def test_line_amounts_round_half_up():
    flat_day = attrs.evolve(TARIFF, service_fee=0)
    # 10:00-11:00 all day rate. 1003 Wh x 150 / 1000 = 150.45 -> 150 fen
    assert price_session(flat_day, SHANGHAI, local(10), local(11), 0, 1003).total == 150
    # 1010 Wh x 150 / 1000 = 151.5 -> 152 fen (half away from zero)
    assert price_session(flat_day, SHANGHAI, local(10), local(11), 0, 1010).total == 152


def test_service_fee_rounds_half_up_on_the_total_energy():
    # 1010 Wh: energy 151.5 -> 152; service at 45: 45.45 -> 45; at 50: 50.5 -> 51
    for fee, service in ((45, 45), (50, 51)):
        pricing = price_session(attrs.evolve(TARIFF, service_fee=fee), SHANGHAI, local(10), local(11), 0, 1010)
        assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (152, service, 152 + service)


def test_whole_wh_per_line_by_largest_remainder():
    # 21:30-23:00 by time, 1001 Wh: day 333.67, night 667.33 -> 334 + 667 (the larger remainder gets the Wh).
    # day 334 x 150 / 1000 = 50.1 -> 50; night 667 x 80 / 1000 = 53.36 -> 53; service 1001 x 40 / 1000 = 40.04 -> 40
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 1001)
    assert summary(pricing) == [(150, 334, 50), (80, 667, 53)]
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (103, 40, 143)


def test_whole_wh_tie_goes_to_the_earlier_line():
    # 21:00-23:00 by time, 1001 Wh: 500.5 each -> day 501, night 500.
    # day 501 x 150 / 1000 = 75.15 -> 75; night 500 x 80 / 1000 = 40; service 40.04 -> 40; total 155
    pricing = price_session(TARIFF, SHANGHAI, local(21), local(23), 0, 1001)
    assert summary(pricing) == [(150, 501, 75), (80, 500, 40)]
    assert pricing.total == 155


def test_each_line_is_rounded_on_its_own():
    # 21:00-23:00 by meter values, 1010 Wh by 22:00 and 1010 Wh after:
    # day 1010 x 150 = 151.5 -> 152, night 1010 x 80 = 80.8 -> 81; energy 233 (rounding the sum, 232.3, would give 232)
    pricing = price_session(TARIFF, SHANGHAI, local(21), local(23), 0, 2020, [(local(22), 1010)])
    assert summary(pricing) == [(150, 1010, 152), (80, 1010, 81)]
    assert pricing.energy_amount == 233
    # service 2020 x 40 / 1000 = 80.8 -> 81
    assert pricing.total == 233 + 81


# --- faulty meter values ----------------------------------------------------------------------


def test_values_that_go_back_or_beyond_the_stop_are_ignored():
    # 22:30 at 3000 goes back below 5000, 22:45 at 99999 is above the stop value:
    # both are dropped and the first example's figures remain
    readings = [(local(22), 5000), (local(22, 30), 3000), (local(22, 45), 99999)]
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 12000, readings)
    assert pricing.method == "meter_values"
    assert summary(pricing) == [(150, 5000, 750), (80, 7000, 560)]
    assert pricing.total == 1790
    assert pricing.note == "energy split by meter values: 1 meter value inside the session (2 ignored as inconsistent)"


def test_values_outside_the_session_are_ignored():
    # before the start, at the start, at the stop and after it: none inside, so the second example's time split
    readings = [(local(21), 100), (local(21, 30), 7), (local(23), 8000), (local(23, 30), 13000)]
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 9000, readings)
    assert pricing.method == "time_proportional"
    assert summary(pricing) == [(150, 3000, 450), (80, 6000, 480)]
    assert pricing.total == 1290
    assert pricing.note == "energy split by time: no meter values inside the session"


def test_only_faulty_values_fall_back_to_time():
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 5000, 14000, [(local(22), 4000)])
    assert pricing.method == "time_proportional"
    assert summary(pricing) == [(150, 3000, 450), (80, 6000, 480)]
    assert pricing.note == "energy split by time: no usable meter values inside the session (1 ignored as inconsistent)"


def test_two_values_at_one_instant_keep_the_first():
    readings = [(local(22), 5000), (local(22), 6000)]
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 0, 12000, readings)
    assert summary(pricing) == [(150, 5000, 750), (80, 7000, 560)]


# --- edge cases -------------------------------------------------------------------------------


def test_session_over_several_days():
    # 14th 20:00 -> 16th 08:00 = 36 h, 36000 Wh by time = 1000 Wh per hour:
    # day 20-22 2 h 2000 x 150 = 300; night 22-06 8 h 8000 x 80 = 640; day 06-22 16 h 16000 x 150 = 2400;
    # night 22-06 8 h 640; day 06-08 2 h 300. energy 4280, service 36 x 40 = 1440, total 5720 fen
    pricing = price_session(TARIFF, SHANGHAI, local(20), local(8, day=16), 0, 36000)
    assert summary(pricing) == [(150, 2000, 300), (80, 8000, 640), (150, 16000, 2400), (80, 8000, 640),
                                (150, 2000, 300)]
    assert [line.start for line in pricing.lines] == [utc(14, 12), utc(14, 14), utc(14, 22), utc(15, 14), utc(15, 22)]
    assert pricing.lines[-1].end == utc(16, 0)
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (4280, 1440, 5720)


@pytest.mark.parametrize("stop", [local(22, 30), local(22, 29)])  # equal timestamps, or a clock running backwards
def test_session_without_duration_pays_the_rate_at_its_start(stop):
    # 22:30 is night: 500 Wh x 80 = 40, service 0.5 x 40 = 20, total 60 fen
    pricing = price_session(TARIFF, SHANGHAI, local(22, 30), stop, 0, 500, [(local(22, 29, 30), 100)])
    assert pricing.method == "time_proportional"
    assert pricing.lines == (Line(utc(14, 14, 30), utc(14, 14, 30), 80, 500, 40, 40),)
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (40, 20, 60)
    assert "no duration" in pricing.note


def test_session_without_energy_costs_nothing_but_keeps_its_lines():
    pricing = price_session(TARIFF, SHANGHAI, local(21, 30), local(23), 4200, 4200)
    assert pricing.energy_wh == 0
    assert summary(pricing) == [(150, 0, 0), (80, 0, 0)]
    assert (pricing.lines[0].start, pricing.lines[-1].end) == (utc(14, 13, 30), utc(14, 15))
    assert pricing.total == 0


def test_session_without_energy_and_duration():
    pricing = price_session(TARIFF, SHANGHAI, local(12), local(12), 10, 10)
    assert summary(pricing) == [(150, 0, 0)]
    assert pricing.total == 0


def test_meter_going_backwards_is_refused():
    with pytest.raises(ValueError, match="meter stop 900 Wh is below meter start 1000 Wh"):
        price_session(TARIFF, SHANGHAI, local(21), local(23), 1000, 900)


def test_meter_values_that_are_not_whole_wh_are_refused():
    with pytest.raises(ValueError, match="whole Wh"):
        price_session(TARIFF, SHANGHAI, local(21), local(23), 0, 1000.5)


def test_times_without_a_zone_are_refused():
    with pytest.raises(ValueError, match="start must be a datetime with a zone"):
        price_session(TARIFF, SHANGHAI, datetime(2025, 8, 14, 21), local(23), 0, 1000)
    with pytest.raises(ValueError, match="reading time"):
        price_session(TARIFF, SHANGHAI, local(21), local(23), 0, 1000, [(datetime(2025, 8, 14, 22), 500)])


def test_all_day_tariff_over_midnight_is_one_line():
    flat = parse_tariff("flat", {"periods": [{"start": "00:00", "end": "00:00", "price": 100}]}, "CNY")
    # 23:00 -> 01:00 next day, 2000 Wh x 100 = 200 fen, one continuous stretch of one period
    pricing = price_session(flat, SHANGHAI, local(23), local(1, day=15), 0, 2000)
    assert pricing.lines == (Line(utc(14, 15), utc(14, 17), 100, 2000, 200),)


# --- DST (Europe/Berlin) ----------------------------------------------------------------------


def test_spring_forward_night_is_seven_hours():
    # 2025-03-30 02:00 CET -> 03:00 CEST. Night 22:00 CET (21:00 UTC) -> 06:00 CEST (04:00 UTC) lasts 7 h, not 8.
    # 22:00 CET -> 07:00 CEST = 8 real hours, 8000 Wh by time: night 7000 x 80 = 560, day 1000 x 150 = 150; total 710
    start, stop = datetime(2025, 3, 29, 22, tzinfo=BERLIN), datetime(2025, 3, 30, 7, tzinfo=BERLIN)
    pricing = price_session(DEFAULT_TARIFF, BERLIN, start, stop, 0, 8000)
    assert pricing.lines == (
        Line(utc(29, 21, month=3), utc(30, 4, month=3), 80, 7000, 560),
        Line(utc(30, 4, month=3), utc(30, 5, month=3), 150, 1000, 150),
    )
    assert pricing.total == 710


def test_fall_back_night_is_nine_hours():
    # 2025-10-26 03:00 CEST -> 02:00 CET. Night 22:00 CEST (20:00 UTC) -> 06:00 CET (05:00 UTC) lasts 9 h.
    # 22:00 -> 07:00 CET = 10 real hours, 10000 Wh by time: night 9000 x 80 = 720, day 1000 x 150 = 150; total 870
    start, stop = datetime(2025, 10, 25, 22, tzinfo=BERLIN), datetime(2025, 10, 26, 7, tzinfo=BERLIN)
    pricing = price_session(DEFAULT_TARIFF, BERLIN, start, stop, 0, 10000)
    assert summary(pricing) == [(80, 9000, 720), (150, 1000, 150)]
    assert pricing.lines[0].end == utc(26, 5, month=10)
    assert pricing.total == 870


def test_boundary_in_the_skipped_hour_lands_where_zoneinfo_puts_it():
    # 02:30 does not exist on 2025-03-30; zoneinfo reads it with the old offset: 02:30+01:00 = 01:30 UTC (03:30 CEST).
    # 00:00 CET (23:00 UTC) -> 06:00 CEST (04:00 UTC) = 5 h, 5000 Wh by time:
    # cheap 23:00-01:30 UTC 2500 x 100 = 250, dear 01:30-04:00 UTC 2500 x 200 = 500; total 750
    tariff = parse_tariff("odd", {"periods": [{"start": "00:00", "end": "02:30", "price": 100},
                                              {"start": "02:30", "end": "00:00", "price": 200}]}, "EUR")
    start, stop = datetime(2025, 3, 30, 0, tzinfo=BERLIN), datetime(2025, 3, 30, 6, tzinfo=BERLIN)
    pricing = price_session(tariff, BERLIN, start, stop, 0, 5000)
    assert pricing.lines == (
        Line(utc(29, 23, month=3), utc(30, 1, 30, month=3), 100, 2500, 250),
        Line(utc(30, 1, 30, month=3), utc(30, 4, month=3), 200, 2500, 500),
    )
    assert pricing.total == 750


def test_periods_inside_the_skipped_hour_never_overlap():
    # 02:00 -> 01:00 UTC, 02:30 -> 01:30 UTC, 03:00 CEST -> 01:00 UTC: 02:30-03:00 would end before it starts.
    # It is left out and the next period starts at 01:30 UTC, so the lines still tile the session.
    tariff = parse_tariff("fine", {"periods": [{"start": "03:00", "end": "02:00", "price": 100},
                                               {"start": "02:00", "end": "02:30", "price": 200},
                                               {"start": "02:30", "end": "03:00", "price": 300}]}, "EUR")
    start, stop = datetime(2025, 3, 30, 0, tzinfo=BERLIN), datetime(2025, 3, 30, 6, tzinfo=BERLIN)
    pricing = price_session(tariff, BERLIN, start, stop, 0, 5000)
    assert [line.price for line in pricing.lines] == [100, 200, 100]
    starts = [utc(29, 23, month=3), utc(30, 1, month=3), utc(30, 1, 30, month=3)]
    assert [line.start for line in pricing.lines] == starts
    assert sum(line.energy_wh for line in pricing.lines) == 5000


# --- properties over random sessions ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    start_minute=st.integers(min_value=0, max_value=4 * 24 * 60),
    minutes=st.integers(min_value=1, max_value=3 * 24 * 60),
    meter_start=st.integers(min_value=0, max_value=10**7),
    energy=st.integers(min_value=0, max_value=200_000),
    readings=st.lists(st.tuples(st.integers(min_value=-60, max_value=5 * 24 * 60),
                                st.integers(min_value=0, max_value=300_000)), max_size=8),
    fee=st.integers(min_value=0, max_value=100),
)
def test_any_session_adds_up(start_minute, minutes, meter_start, energy, readings, fee):
    # the days around the spring DST change; the arithmetic in UTC, as wall-clock steps could land in the skipped hour
    base = datetime(2025, 3, 28, tzinfo=BERLIN).astimezone(UTC)
    start = base + timedelta(minutes=start_minute)
    stop = start + timedelta(minutes=minutes)
    points = [(start + timedelta(minutes=offset), meter_start + value) for offset, value in readings]
    tariff = attrs.evolve(DEFAULT_TARIFF, service_fee=fee)
    pricing = price_session(tariff, BERLIN, start, stop, meter_start, meter_start + energy, points)
    assert pricing.energy_wh == energy
    assert sum(line.energy_wh for line in pricing.lines) == energy
    assert all(line.energy_wh >= 0 and line.start < line.end for line in pricing.lines)
    assert pricing.lines[0].start == start and pricing.lines[-1].end == stop
    assert all(a.end == b.start for a, b in pairwise(pricing.lines))
    assert all(line.amount == round_half_up(Fraction(line.energy_wh * line.price, 1000)) for line in pricing.lines)
    assert pricing.energy_amount == sum(line.amount for line in pricing.lines)
    assert pricing.service_amount == round_half_up(Fraction(energy * fee, 1000))
    assert pricing.total == pricing.energy_amount + pricing.service_amount
    assert pricing.method in ("meter_values", "time_proportional")


# --- parse_tariff -----------------------------------------------------------------------------


def period(start: str, end: str, price) -> dict:
    return {"start": start, "end": end, "price": price}


def parse_error(periods, **extra) -> str:
    with pytest.raises(ValueError) as info:
        parse_tariff("peak", {"periods": periods, **extra}, "CNY")
    return str(info.value)


def test_parse_a_valid_tariff():
    data = {"periods": [period("06:00", "22:00", 150), period("22:00", "06:00", 80)], "service_fee": 40}
    assert parse_tariff("standard", data, "CNY") == TARIFF


def test_parse_defaults_and_24_00():
    tariff = parse_tariff("evening", {"periods": [period("00:00", "18:00", 90), period("18:00", "24:00", 120)]}, "EUR")
    assert tariff == Tariff("evening", (Period(time(0), time(18), 90), Period(time(18), time(0), 120)), 0, "EUR")


def test_parse_a_single_all_day_period():
    tariff = parse_tariff("flat", {"periods": [period("00:00", "00:00", 100)], "service_fee": 0}, "CNY")
    assert tariff.periods == (Period(time(0), time(0), 100),)


def test_the_default_tariff_is_valid():
    check_periods(DEFAULT_TARIFF.periods)
    assert DEFAULT_TARIFF.periods == (Period(time(6), time(22), 150), Period(time(22), time(6), 80))
    assert (DEFAULT_TARIFF.service_fee, DEFAULT_TARIFF.currency) == (0, "CNY")


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ([period("06:00", "22:00", 150), period("22:00", "05:00", 80)],
         "tariff 'peak': no period covers 05:00–06:00"),
        ([period("06:00", "22:00", 150)], "tariff 'peak': no period covers 22:00–06:00"),
        ([period("06:00", "22:00", 150), period("21:00", "06:00", 80)],
         "tariff 'peak': periods 06:00–22:00 and 21:00–06:00 overlap at 21:00–22:00"),
        ([period("00:00", "00:00", 100), period("08:00", "09:00", 200)],
         "tariff 'peak': periods 00:00–00:00 and 08:00–09:00 overlap at 08:00–09:00"),
        ([period("6:00", "22:00", 150)], "tariff 'peak', period 1: start '6:00' is not a time of day as \"HH:MM\""),
        ([period("06:00", "22:00", 150), period("22:00", "25:00", 80)], "period 2: end '25:00' is not a time of day"),
        ([period("06:00", "22:60", 150)], "period 1: end '22:60' is not a time of day"),
        ([period("06:00", 2200, 150)], "period 1: end 2200 is not a time of day"),
        ([period("06:00", "22:00", -1)], "tariff 'peak', period 1: price must be a whole number of minor units"),
        ([period("06:00", "22:00", True)], "period 1: price must be a whole number of minor units per kWh, 0 or more, "
                                           "not True"),
        ([period("06:00", "22:00", 1.5)], "period 1: price must be a whole number"),
        ([period("06:00", "22:00", "150")], "period 1: price must be a whole number"),
        ([{"start": "06:00", "end": "22:00"}], "tariff 'peak', period 1 lacks price"),
        ([{"start": "06:00", "end": "22:00", "price": 1, "cost": 2}], "period 1 has unknown key(s) cost"),
        (["06:00-22:00"], "period 1 must be a table with start, end and price"),
        ([], "tariff 'peak' has no periods"),
    ],
)
def test_parse_errors_name_the_tariff_the_period_and_the_problem(periods, message):
    assert message in parse_error(periods)


def test_parse_errors_outside_the_periods():
    whole_day = [period("00:00", "00:00", 100)]
    assert "tariff 'peak': service_fee must be a whole number" in parse_error(whole_day, service_fee=-5)
    assert "has unknown key(s) service_fees" in parse_error(whole_day, service_fees=40)
    with pytest.raises(ValueError, match="tariff 'peak' has no periods"):
        parse_tariff("peak", {"service_fee": 40}, "CNY")


def test_a_tariff_cannot_be_built_with_a_gap():
    with pytest.raises(ValueError, match="tariff 'half': no period covers 22:00–06:00"):
        Tariff("half", (Period(time(6), time(22), 150),))


# --- time-of-use service fee, tariff data, long sessions ----------------------------------------

TOU_FEE = parse_tariff("tou", {"periods": [{"start": "06:00", "end": "22:00", "price": 150, "service_fee": 50},
                                           {"start": "22:00", "end": "06:00", "price": 80, "service_fee": 20}],
                               "service_fee": 40}, "CNY")


def test_time_of_use_service_fee_is_charged_per_period_and_rounded_once_per_rate():
    # 21:30-23:00, 5000 Wh by 22:00: energy 750 + 560 = 1310; service day 5000 x 50 = 250, night 7000 x 20 = 140
    pricing = price_session(TOU_FEE, SHANGHAI, local(21, 30), local(23), 0, 12000, [(local(22), 5000)])
    assert [(line.price, line.service_fee, line.energy_wh) for line in pricing.lines] == [(150, 50, 5000),
                                                                                          (80, 20, 7000)]
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (1310, 390, 1700)
    # 1010 Wh all in the day: service 1010 x 50 / 1000 = 50.5 -> 51 (the flat 40 is not used)
    pricing = price_session(TOU_FEE, SHANGHAI, local(10), local(11), 0, 1010)
    assert (pricing.energy_amount, pricing.service_amount) == (152, 51)


def test_a_period_without_its_own_service_fee_takes_the_tariff_one():
    tariff = parse_tariff("half", {"periods": [{"start": "06:00", "end": "22:00", "price": 150, "service_fee": 0},
                                               {"start": "22:00", "end": "06:00", "price": 80}],
                                   "service_fee": 30}, "CNY")
    # night 2000 Wh x 30 = 60, day 1000 Wh x 0 = 0
    pricing = price_session(tariff, SHANGHAI, local(4), local(7), 0, 3000)
    assert [(line.service_fee, line.energy_wh) for line in pricing.lines] == [(30, 2000), (0, 1000)]
    assert pricing.service_amount == 60


@pytest.mark.parametrize("fee", [-1, 1.5, "40", True])
def test_a_bad_period_service_fee_is_refused(fee):
    with pytest.raises(ValueError, match=r"tariff 't', period 1: service_fee must be a whole number"):
        parse_tariff("t", {"periods": [{"start": "00:00", "end": "00:00", "price": 1, "service_fee": fee}]}, "CNY")


def test_tariff_data_reads_back_as_the_same_tariff():
    for tariff in (TOU_FEE, TARIFF, parse_tariff("m", {"periods": [{"start": "18:00", "end": "24:00", "price": 9},
                                                                   {"start": "00:00", "end": "18:00", "price": 3}]},
                                                 "EUR")):
        assert parse_tariff(tariff.name, tariff_data(tariff), tariff.currency) == tariff


def test_a_session_of_300_days_makes_one_line_per_period_computed_exactly():
    # 2026-01-01 00:00 -> 2026-10-28 00:00 UTC = 300 whole days, 300,000 Wh by time.
    # Each day: 16 h day rate, 8 h night rate, so day 2/3 = 200,000 Wh, night 1/3 = 100,000 Wh exactly.
    # energy: 200,000 x 150 = 30,000 + 100,000 x 80 = 8,000 -> 38,000
    # service: 200,000 x 50 = 10,000 + 100,000 x 20 = 2,000 -> 12,000; total 50,000 fen
    start, stop = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 10, 28, tzinfo=UTC)
    pricing = price_session(TOU_FEE, UTC, start, stop, 0, 300_000)
    night, day = pricing.lines  # in the order of their first occurrence: 00:00-06:00 is night
    # night: 00:00-06:00 on the first day, 299 whole nights 22:00-06:00, and 22:00-24:00 on the last day
    assert (night.price, night.energy_wh, night.amount, night.occurrences) == (80, 100_000, 8_000, 301)
    assert (night.start, night.end) == (start, stop)
    assert (day.price, day.energy_wh, day.amount, day.occurrences) == (150, 200_000, 30_000, 300)
    assert (day.start, day.end) == (datetime(2026, 1, 1, 6, tzinfo=UTC), datetime(2026, 10, 27, 22, tzinfo=UTC))
    assert (pricing.energy_amount, pricing.service_amount, pricing.total) == (38_000, 12_000, 50_000)
    assert "601 period occurrences summed" in pricing.note


def test_a_session_just_over_the_line_limit_is_summed_and_one_just_under_is_not():
    # UTC, 06:00 and 22:00 boundaries: 00:00-06:00 night, then each day a day piece and a night piece to 06:00
    start = datetime(2026, 1, 1, tzinfo=UTC)
    under = price_session(TARIFF, UTC, start, start + timedelta(days=23, hours=7), 0, 1000)  # 1 + 46 + 1 = 48
    assert len(under.lines) == MAX_LINES == 48 and all(line.occurrences == 1 for line in under.lines)
    over = price_session(TARIFF, UTC, start, start + timedelta(days=23, hours=23), 0, 1000)  # 1 + 46 + 2 = 49
    assert len(over.lines) == 2 and sum(line.energy_wh for line in over.lines) == 1000


@pytest.mark.parametrize("start", [datetime(1, 1, 1, tzinfo=UTC), datetime(1000, 1, 1, tzinfo=UTC),
                                   datetime(1970, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)])
def test_a_session_longer_than_the_limit_is_refused_without_walking_the_calendar(start):
    # 2025-01-01 -> 2026-03-01 is 424 days; the others thousands of years: all refused at once, never OverflowError
    with pytest.raises(ValueError, match=rf"lasted \d+ days, more than the {MAX_SESSION_DAYS} days"):
        price_session(TARIFF, SHANGHAI, start, datetime(2026, 3, 1, tzinfo=UTC), 0, 5000)


@pytest.mark.parametrize("first", [datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))),
                                   datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-8)))])
def test_a_session_at_the_calendars_limit_is_refused_not_an_overflow(first):
    with pytest.raises(ValueError, match="calendar's limits"):
        price_session(TARIFF, SHANGHAI, first, first, 0, 5000)
