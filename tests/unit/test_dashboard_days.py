"""The dashboard's pure rules: the site's days and months in UTC, hours of the site's day from UTC quarter
hours, and the station ranking; expected values worked out by hand from the zones' offsets."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, strategies as st

from gateway.http.dashboard_api import by_site_hour, month_window, ranked, site_days


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


def one(*quarters: str) -> dict[int, dict[str, int]]:
    """A session of 10 Wh in each of these quarter hours (UTC, YYYY-MM-DDTHH:MM), keyed as the store keys them."""
    return {int(datetime.fromisoformat(f"{q}:00+00:00").timestamp()) // 900: {"sessions": 1, "energyWh": 10}
            for q in quarters}


def busy(hours: dict[int, dict[str, int]]) -> dict[int, int]:
    return {h: f["sessions"] for h, f in hours.items() if f["sessions"]}


def test_quarters_go_to_the_site_s_hour_in_zones_off_by_half_and_three_quarter_hours():
    # 18:00-19:00 UTC is 23:30-00:30 in Kolkata (+05:30): the end of hour 23 and the start of hour 0
    kolkata = by_site_hour(one("2026-03-10T18:00", "2026-03-10T18:15", "2026-03-10T18:30", "2026-03-10T18:45"),
                           ZoneInfo("Asia/Kolkata"))
    assert busy(kolkata) == {23: 2, 0: 2} and kolkata[0] == {"sessions": 2, "energyWh": 20}
    assert sorted(kolkata) == list(range(24))  # every hour answered, zeros included
    # 04:00 and 04:15 UTC are 09:45 and 10:00 at +05:45
    assert busy(by_site_hour(one("2026-03-10T04:00", "2026-03-10T04:15"), ZoneInfo("Asia/Kathmandu"))) == {9: 1, 10: 1}


def test_the_hour_repeated_in_autumn_counts_twice_and_the_one_skipped_in_spring_not_at_all():
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 clocks go forward at 02:00 CET: 00:45 UTC is 01:45 CET, 01:00 UTC is 03:00 CEST
    assert busy(by_site_hour(one("2026-03-29T00:45", "2026-03-29T01:00"), berlin)) == {1: 1, 3: 1}
    # 2026-10-25 clocks go back at 03:00 CEST: 00:00-02:00 UTC is 02:00-03:00 twice
    autumn = one(*(f"2026-10-25T{h:02d}:{m:02d}" for h in (0, 1) for m in (0, 15, 30, 45)))
    assert busy(by_site_hour(autumn, berlin)) == {2: 8}


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
       st.sampled_from(["Asia/Shanghai", "Europe/London", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe"]))
def test_a_moment_counts_in_its_own_local_hour(moment, zone):
    tz = ZoneInfo(zone)
    moment = moment.replace(tzinfo=timezone.utc)
    quarter = int(moment.timestamp()) // 900  # as the store cuts it
    assert busy(by_site_hour({quarter: {"sessions": 1}}, tz)) == {moment.astimezone(tz).hour: 1}


def test_stations_rank_highest_first_and_equal_figures_share_a_rank():
    stations = [{"stationId": i, "energyWh": e, "revenue": r, "sessions": s}
                for i, e, r, s in ((1, 500, 10, 3), (2, 900, 10, 1), (3, 500, 30, 3), (4, 0, 0, 0))]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "energy", 10)] == [(1, 2), (2, 1), (2, 3), (4, 4)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "revenue", 2)] == [(1, 3), (2, 1)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "sessions", 10)] == [(1, 1), (1, 3), (3, 2), (4, 4)]
