"""The dashboard's pure rules: the site's days and months in UTC, hours of the site's day from UTC quarter
hours, and the station ranking; expected values worked out by hand from the zones' offsets."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, strategies as st

from gateway import clock
from gateway.http.dashboard_api import hour_windows, month_window, ranked, site_days


def test_site_days_run_from_local_midnight_to_local_midnight():
    assert site_days(date(2026, 3, 10), 2, ZoneInfo("Asia/Shanghai")) == [
        ("2026-03-09", "2026-03-08T16:00:00.000Z", "2026-03-09T16:00:00.000Z"),
        ("2026-03-10", "2026-03-09T16:00:00.000Z", "2026-03-10T16:00:00.000Z")]


def test_a_day_of_a_summer_time_change_lasts_23_or_25_hours():
    berlin = ZoneInfo("Europe/Berlin")
    (_, spring_lo, spring_hi), = site_days(date(2026, 3, 29), 1, berlin)  # clocks go forward at 02:00
    assert (spring_lo, spring_hi) == ("2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z")  # 23 hours
    (_, autumn_lo, autumn_hi), = site_days(date(2026, 10, 25), 1, berlin)
    assert (autumn_lo, autumn_hi) == ("2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z")  # 25 hours


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.integers(1, 40),
       st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"]))
def test_site_days_tile_the_period_without_gap_or_overlap(today, days, zone):
    windows = site_days(today, days, ZoneInfo(zone))
    assert len(windows) == days and windows[-1][0] == today.isoformat()
    assert all(a[2] == b[1] for a, b in zip(windows, windows[1:]))
    assert all(lo < hi for _, lo, hi in windows)


def test_a_month_runs_from_its_first_site_midnight_to_the_next_months():
    assert month_window(date(2026, 12, 4), ZoneInfo("Asia/Shanghai")) == (
        "2026-12", "2026-11-30T16:00:00.000Z", "2026-12-31T16:00:00.000Z")
    assert month_window(date(2027, 2, 28), timezone.utc) == ("2027-02", "2027-02-01T00:00:00.000Z",
                                                            "2027-03-01T00:00:00.000Z")


def test_hours_of_the_site_s_day_in_zones_off_by_half_and_three_quarter_hours():
    hours = hour_windows("2026-03-10T18:00:00.000Z", "2026-03-10T19:00:00.000Z", ZoneInfo("Asia/Kolkata"))
    # 18:00-19:00 UTC is 23:30-00:30 in Kolkata (+05:30): the end of hour 23 and the start of hour 0
    assert hours == [("23", "2026-03-10T18:00:00.000Z", "2026-03-10T18:30:00.000Z"),
                     ("0", "2026-03-10T18:30:00.000Z", "2026-03-10T19:00:00.000Z")]
    kathmandu = hour_windows("2026-03-10T04:00:00.000Z", "2026-03-10T04:30:00.000Z", ZoneInfo("Asia/Kathmandu"))
    assert [h for h, _, _ in kathmandu] == ["9", "10"]  # 09:45-10:15 at +05:45


def test_the_hour_repeated_in_autumn_counts_twice_and_the_one_skipped_in_spring_not_at_all():
    berlin = ZoneInfo("Europe/Berlin")
    spring = hour_windows("2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z", berlin)  # the whole 23-hour day
    assert [h for h, _, _ in spring] == [str(h) for h in range(24) if h != 2]
    autumn = dict((h, (lo, hi)) for h, lo, hi in hour_windows("2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z",
                                                                berlin))
    assert autumn["2"] == ("2026-10-25T00:00:00.000Z", "2026-10-25T02:00:00.000Z")  # 02:00 CEST to 03:00 CET
    assert len(autumn) == 24


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)), st.integers(1, 96 * 60),
       st.sampled_from(["Asia/Shanghai", "Europe/London", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe"]))
def test_hour_windows_tile_the_period_and_each_moment_is_in_its_local_hour(start, minutes, zone):
    tz = ZoneInfo(zone)
    start = start.replace(tzinfo=timezone.utc)
    since, until = clock.iso(start), clock.iso(start + timedelta(minutes=minutes))
    windows = hour_windows(since, until, tz)
    assert windows[0][1] == since and windows[-1][2] == until
    assert all(a[2] == b[1] for a, b in zip(windows, windows[1:])) and all(lo < hi for _, lo, hi in windows)
    for hour, lo, _ in windows:
        assert clock.parse(lo).astimezone(tz).hour == int(hour)


def test_stations_rank_highest_first_and_equal_figures_share_a_rank():
    stations = [{"stationId": i, "energyWh": e, "revenue": r, "sessions": s}
                for i, e, r, s in ((1, 500, 10, 3), (2, 900, 10, 1), (3, 500, 30, 3), (4, 0, 0, 0))]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "energy", 10)] == [(1, 2), (2, 1), (2, 3), (4, 4)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "revenue", 2)] == [(1, 3), (2, 1)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "sessions", 10)] == [(1, 1), (1, 3), (3, 2), (4, 4)]
