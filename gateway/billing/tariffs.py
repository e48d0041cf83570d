"""Time-of-use tariffs and the price of one charging session: pure functions over exact integers.

Prices are whole minor units (fen, cents) per kWh and energy is whole Wh, so an amount is energy_wh * price / 1000
minor units, computed as a Fraction and rounded once per line with round_half_up.

The work is bounded by the session's length in periods: a session longer than MAX_SESSION_DAYS is refused (the
order stays unpriced for an operator to correct), and one crossing more than MAX_LINES period occurrences is
summed into one line per period, so neither the time spent nor the order's size grows with the calendar.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta, timezone, tzinfo
from fractions import Fraction
from itertools import pairwise
from typing import Any

import attrs

from gateway.billing.money import allocate, round_half_up

DAY = 24 * 3600  # seconds
MAX_SESSION_DAYS = 366  # longer: not priced automatically (a stuck transaction, or a clock nobody corrected)
MAX_LINES = 48  # more period occurrences than this: one line per period (its energy summed, rounded once)
TIME_PROPORTIONAL = "time_proportional"
METER_VALUES = "meter_values"


def _clock(moment: time) -> str:
    return moment.isoformat(timespec="seconds" if moment.second or moment.microsecond else "minutes")


def _is_minor(value: Any) -> bool:
    # bool is an int in Python, but `price = true` in a config file is a mistake, not 1 fen
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _minor_units(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not _is_minor(value):
        raise ValueError(f"{attribute.name} must be a whole number of minor units per kWh, 0 or more, not {value!r}")


def _minor_units_or_none(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        _minor_units(inst, attribute, value)


def _wall_clock(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    # periods are local wall-clock times in the site's zone, which is given when pricing, not here
    if not isinstance(value, time) or value.tzinfo is not None:
        raise ValueError(f"{attribute.name} must be a time of day without a zone, not {value!r}")


@attrs.frozen
class Period:
    start: time = attrs.field(validator=_wall_clock)  # inclusive
    end: time = attrs.field(validator=_wall_clock)  # exclusive; end <= start wraps past midnight; start == end: all day
    price: int = attrs.field(validator=_minor_units)  # minor units per kWh
    service_fee: int | None = attrs.field(default=None, validator=_minor_units_or_none)  # None: the tariff's

    def __str__(self) -> str:
        return f"{_clock(self.start)}–{_clock(self.end)}"


def _seconds(moment: time) -> Fraction:
    return Fraction(moment.hour * 3600 + moment.minute * 60 + moment.second) + Fraction(moment.microsecond, 10**6)


def _span_text(low: Fraction, high: Fraction) -> str:
    def text(seconds: Fraction) -> str:
        whole = int(seconds) % DAY
        return _clock(time(whole // 3600, whole // 60 % 60, whole % 60))

    return f"{text(low)}–{text(high)}"


def check_periods(periods: Sequence[Period]) -> None:
    """Raise ValueError unless the periods cover the 24 hours of a day exactly once, naming the gap or overlap."""
    if not periods:
        raise ValueError("no periods: they must cover the 24 hours of the day")
    segments: list[tuple[Fraction, Fraction, Period]] = []  # [low, high) in seconds of the day, none past midnight
    for period in periods:
        low, high = _seconds(period.start), _seconds(period.end)
        if high <= low:  # wraps past midnight, or all day when equal
            high += DAY
        segments.append((low, min(high, Fraction(DAY)), period))
        if high > DAY:
            segments.append((Fraction(0), high - DAY, period))
    segments.sort(key=lambda segment: (segment[0], segment[1]))
    reached, owner = Fraction(0), None
    gaps: list[tuple[Fraction, Fraction]] = []
    for low, high, period in segments:
        if low < reached:
            raise ValueError(f"periods {owner} and {period} overlap at {_span_text(low, min(high, reached))}")
        if low > reached:
            gaps.append((reached, low))
        reached, owner = high, period
    if reached < DAY:
        gaps.append((reached, Fraction(DAY)))
    if len(gaps) > 1 and gaps[0][0] == 0 and gaps[-1][1] == DAY:  # one gap over midnight, as people think of it
        gaps = [(gaps[-1][0], gaps[0][1] + DAY)] + gaps[1:-1]
    if gaps:
        raise ValueError(f"no period covers {' or '.join(_span_text(low, high) for low, high in gaps)}")


def _covering(tariff: Tariff, _attribute: attrs.Attribute, periods: Any) -> None:
    if not isinstance(periods, tuple) or not all(isinstance(period, Period) for period in periods):
        raise ValueError(f"tariff {tariff.name!r}: periods must be a tuple of Period, not {periods!r}")
    try:
        check_periods(periods)
    except ValueError as exc:
        raise ValueError(f"tariff {tariff.name!r}: {exc}") from None


def _currency(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be a currency code such as 'CNY', not {value!r}")


@attrs.frozen
class Tariff:
    name: str
    periods: tuple[Period, ...] = attrs.field(validator=_covering)  # a Tariff always covers the day exactly once
    service_fee: int = attrs.field(default=0, validator=_minor_units)  # minor units per kWh, unless a period has one
    currency: str = attrs.field(default="CNY", validator=_currency)

    def fee(self, index: int) -> int:
        """The service fee per kWh in period `index`: its own (time of use) or else the tariff's flat one."""
        own = self.periods[index].service_fee
        return self.service_fee if own is None else own


DEFAULT_TARIFF = Tariff("standard", (Period(time(6), time(22), 150), Period(time(22), time(6), 80)), 0, "CNY")

_HHMM = re.compile(r"(\d\d):(\d\d)")


def _parse_clock(text: Any, where: str) -> time:
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    hours, minutes = (int(match[1]), int(match[2])) if match else (-1, -1)
    if (hours, minutes) == (24, 0):  # "18:00"–"24:00" is how people write "until midnight"
        return time(0)
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ValueError(f"{where} {text!r} is not a time of day as \"HH:MM\" (00:00 to 23:59)")
    return time(hours, minutes)


def _parse_period(where: str, item: Any) -> Period:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a table with start, end and price, not {item!r}")
    unknown = sorted(set(item) - {"start", "end", "price", "service_fee"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(map(str, unknown))}; "
                         "expected start, end, price, service_fee")
    missing = [key for key in ("start", "end", "price") if key not in item]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    price = item["price"]
    if not _is_minor(price):
        raise ValueError(f"{where}: price must be a whole number of minor units per kWh, 0 or more, not {price!r}")
    fee = item.get("service_fee")
    if fee is not None and not _is_minor(fee):
        raise ValueError(f"{where}: service_fee must be a whole number of minor units per kWh, 0 or more, not {fee!r}")
    return Period(_parse_clock(item["start"], f"{where}: start"), _parse_clock(item["end"], f"{where}: end"), price,
                  fee)


def parse_tariff(name: str, data: Mapping[str, Any], currency: str) -> Tariff:
    """Build a tariff from config, e.g. {"periods": [{"start": "06:00", "end": "22:00", "price": 150}, ...],
    "service_fee": 40}; raise ValueError naming the tariff, the period and the problem."""
    where = f"tariff {name!r}"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a table with periods and service_fee, not {data!r}")
    unknown = sorted(set(data) - {"periods", "service_fee"})
    if unknown:  # a misspelt service_fee would otherwise silently charge nothing
        raise ValueError(f"{where} has unknown key(s) {', '.join(map(str, unknown))}; expected periods, service_fee")
    raw = data.get("periods")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise ValueError(f"{where} has no periods; give a list such as "
                         f"[{{start = \"06:00\", end = \"22:00\", price = 150}}, ...] covering the 24 hours")
    periods = tuple(_parse_period(f"{where}, period {number}", item) for number, item in enumerate(raw, 1))
    fee = data.get("service_fee", 0)
    if not _is_minor(fee):
        raise ValueError(f"{where}: service_fee must be a whole number of minor units per kWh, 0 or more, not {fee!r}")
    return Tariff(name, periods, fee, currency)  # checks coverage: gaps and overlaps are reported with the name


def tariff_data(tariff: Tariff) -> dict[str, Any]:
    """The tariff as parse_tariff reads it (and as a tariff version keeps it): parse_tariff(name, tariff_data(t),
    t.currency) == t."""
    periods = [{"start": period.start.strftime("%H:%M"), "end": period.end.strftime("%H:%M"), "price": period.price,
                **({} if period.service_fee is None else {"service_fee": period.service_fee})}
               for period in tariff.periods]
    return {"periods": periods, "service_fee": tariff.service_fee}


@attrs.frozen
class Line:
    start: datetime  # aware UTC; one continuous stretch of one period inside the session
    end: datetime
    price: int  # minor units per kWh of that period
    energy_wh: int
    amount: int  # minor units, round_half_up(energy_wh * price / 1000)
    service_fee: int = 0  # minor units per kWh of that period
    occurrences: int = 1  # more than 1: the period's occurrences from start to end summed (a long session)


@attrs.frozen
class Pricing:
    method: str  # "meter_values" or "time_proportional"
    energy_wh: int  # meter stop - meter start
    lines: tuple[Line, ...]  # in time order
    energy_amount: int  # sum of the line amounts
    service_amount: int  # per service fee rate: round_half_up(energy_wh at that rate * fee / 1000), summed
    total: int  # energy_amount + service_amount
    currency: str
    note: str  # one sentence for the order saying how the energy was split


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _utc(moment: Any, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a datetime with a zone, not {moment!r}")
    return moment.astimezone(timezone.utc)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND  # exact integer time, so the energy split is exact too


def _occurrences(tariff: Tariff, tz: tzinfo, start: datetime, stop: datetime) -> list[tuple[datetime, datetime, int]]:
    """(UTC start, UTC end, period index) of every period occurrence from the day before start to the day after stop.

    Each period begins where the previous one ends, so walking the local days and turning each period's start into
    UTC with zoneinfo gives one chain of boundaries: DST days come out 23 or 25 hours long. A wall time that does not
    exist (spring forward) lands where zoneinfo puts it; it is never allowed before an earlier boundary, so the
    occurrences always tile the time line without gap or overlap.
    """
    order = sorted(range(len(tariff.periods)), key=lambda index: tariff.periods[index].start)
    day, last = start.astimezone(tz).date() - timedelta(days=1), stop.astimezone(tz).date() + timedelta(days=1)
    boundaries: list[tuple[datetime, int]] = []
    while day <= last:
        for index in order:
            moment = datetime.combine(day, tariff.periods[index].start, tzinfo=tz).astimezone(timezone.utc)
            if boundaries and moment < boundaries[-1][0]:
                moment = boundaries[-1][0]
            boundaries.append((moment, index))
        day += timedelta(days=1)
    return [(low, high, index) for (low, index), (high, _) in pairwise(boundaries) if low < high]


def _curve(start: datetime, stop: datetime, meter_start: int, meter_stop: int,
           readings: Sequence[tuple[datetime, int]]) -> tuple[list[tuple[int, Fraction]], int]:
    """Points (microseconds, register Wh) from start to stop, and how many readings inside were ignored as faulty."""
    # the start and stop values come from the transaction itself; readings at or outside them are not inside
    inside = [(at, value) for at, value in ((_utc(moment, "reading time"), value) for moment, value in readings)
              if start < at < stop]
    inside.sort(key=lambda reading: reading[0])  # stable: of two values at one instant the first given is kept
    points = [(_micros(start), Fraction(meter_start))]
    ignored = 0
    for moment, value in inside:
        at, wh = _micros(moment), Fraction(value)
        # a faulty meter (going back, past the stop value, or two values at one instant) must not make negative energy
        if at <= points[-1][0] or wh < points[-1][1] or wh > meter_stop:
            ignored += 1
            continue
        points.append((at, wh))
    points.append((_micros(stop), Fraction(meter_stop)))
    return points, ignored


def _register_at(points: list[tuple[int, Fraction]], times: list[int], at: int) -> Fraction:
    """The register value at `at`, energy flowing evenly between consecutive points."""
    index = bisect_right(times, at) - 1
    if index >= len(points) - 1:
        return points[-1][1]
    (low_at, low_wh), (high_at, high_wh) = points[index], points[index + 1]
    return low_wh + (high_wh - low_wh) * Fraction(at - low_at, high_at - low_at)


def _line(tariff: Tariff, index: int, start: datetime, end: datetime, energy_wh: int, occurrences: int = 1) -> Line:
    price = tariff.periods[index].price
    return Line(start, end, price, energy_wh, round_half_up(Fraction(energy_wh * price, 1000)), tariff.fee(index),
                occurrences)


def _lines(tariff: Tariff, pieces: list[list[Any]], energy_wh: int, exact: list[Fraction]) -> list[Line]:
    """Whole Wh by largest remainder, so the lines add up to the metered energy: one line per piece, or past
    MAX_LINES one per period (its first start, last end, exact energy summed before it is made whole)."""
    if len(pieces) <= MAX_LINES:
        whole = allocate(energy_wh, exact)
        return [_line(tariff, index, low, high, wh) for (low, high, index), wh in zip(pieces, whole, strict=True)]
    groups: dict[int, list[Any]] = {}  # period index -> [first start, last end, exact Wh, occurrences]
    for (low, high, index), share in zip(pieces, exact, strict=True):
        group = groups.setdefault(index, [low, high, Fraction(0), 0])
        group[1], group[2], group[3] = high, group[2] + share, group[3] + 1
    whole = allocate(energy_wh, [group[2] for group in groups.values()])
    return [_line(tariff, index, low, high, wh, count)
            for (index, (low, high, _, count)), wh in zip(groups.items(), whole, strict=True)]


def _pricing(tariff: Tariff, method: str, energy_wh: int, lines: list[Line], note: str) -> Pricing:
    energy_amount = sum(line.amount for line in lines)
    # the service fee is rounded once per rate on the energy charged at it: with one flat fee, once on all energy
    by_fee: dict[int, int] = {}
    for line in lines:
        by_fee[line.service_fee] = by_fee.get(line.service_fee, 0) + line.energy_wh
    service_amount = sum(round_half_up(Fraction(wh * fee, 1000)) for fee, wh in by_fee.items())
    return Pricing(method, energy_wh, tuple(lines), energy_amount, service_amount, energy_amount + service_amount,
                   tariff.currency, note)


def price_session(tariff: Tariff, tz: tzinfo, start: datetime, stop: datetime, meter_start: int, meter_stop: int,
                  readings: Sequence[tuple[datetime, int]] = ()) -> Pricing:
    """Price a session: its energy split over the tariff periods it crossed, by meter values or else by time.

    ValueError for what cannot be priced: meters going backwards, or a session longer than MAX_SESSION_DAYS."""
    try:
        start, stop = _utc(start, "start"), _utc(stop, "stop")
        if stop - start > timedelta(days=MAX_SESSION_DAYS):
            raise ValueError(f"the session lasted {(stop - start).days} days, more than the {MAX_SESSION_DAYS} "
                             "days a session is priced for: its times need correcting")
        return _price(tariff, tz, start, stop, meter_start, meter_stop, readings)
    except OverflowError:  # within a day of year 1 or 9999: no UTC time, or no local calendar day for the periods
        raise ValueError(f"the session's times {start.isoformat()} to {stop.isoformat()} are at the calendar's "
                         "limits: its times need correcting") from None


def _price(tariff: Tariff, tz: tzinfo, start: datetime, stop: datetime, meter_start: int, meter_stop: int,
           readings: Sequence[tuple[datetime, int]]) -> Pricing:
    if not all(isinstance(wh, int) and not isinstance(wh, bool) for wh in (meter_start, meter_stop)):
        raise ValueError(f"meter start and stop must be whole Wh, not {meter_start!r} and {meter_stop!r}")
    if meter_stop < meter_start:
        raise ValueError(f"meter stop {meter_stop} Wh is below meter start {meter_start} Wh")
    energy_wh = meter_stop - meter_start
    if stop <= start:  # equal timestamps or clock skew: no time to split over, so the rate at the start applies
        at = next(o for o in _occurrences(tariff, tz, start, start) if o[0] <= start < o[1])
        line = _line(tariff, at[2], start, start, energy_wh)
        return _pricing(tariff, TIME_PROPORTIONAL, energy_wh, [line],
                        "all energy priced at the rate in force at the start: the session had no duration")

    pieces: list[list[Any]] = []  # [start, end, period index]; one per continuous stretch of one period
    for low, high, index in _occurrences(tariff, tz, start, stop):
        low, high = max(low, start), min(high, stop)
        if low >= high:
            continue
        if pieces and pieces[-1][2] == index and pieces[-1][1] == low:
            pieces[-1][1] = high  # the same period continues (an all-day tariff over midnight)
        else:
            pieces.append([low, high, index])

    points, ignored = _curve(start, stop, meter_start, meter_stop, readings)
    times = [at for at, _ in points]
    edges = [_register_at(points, times, _micros(low)) for low, _, _ in pieces] + [Fraction(meter_stop)]
    lines = _lines(tariff, pieces, energy_wh, [high - low for low, high in pairwise(edges)])  # exact Wh per piece

    kept = len(points) - 2
    faulty = f" ({ignored} ignored as inconsistent)" if ignored else ""
    if len(pieces) > MAX_LINES:
        faulty += f"; its {len(pieces)} period occurrences summed into one line per period"
    if kept:
        plural = "value" if kept == 1 else "values"
        note = f"energy split by meter values: {kept} meter {plural} inside the session{faulty}"
        return _pricing(tariff, METER_VALUES, energy_wh, lines, note)
    note = f"energy split by time: no {'usable ' if ignored else ''}meter values inside the session{faulty}"
    return _pricing(tariff, TIME_PROPORTIONAL, energy_wh, lines, note)
