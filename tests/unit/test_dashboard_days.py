"""The dashboard's pure rules: the site's days and months in UTC, hours of the site's day from UTC quarter
hours, and the station ranking; expected values worked out by hand from the zones' offsets."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, strategies as st

from gateway.http.dashboard_api import local_hours, month_window, ranked, site_days


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


def test_quarter_hours_fall_in_the_local_hour_of_zones_off_by_half_and_three_quarter_hours():
    # 18:15-18:30 UTC is 23:45-24:00 in Kolkata (+05:30), 18:30-18:45 is 00:00-00:15 the day after
    kolkata = local_hours([("2026-03-10T18", 1, 2, 100), ("2026-03-10T18", 2, 1, 50)], ZoneInfo("Asia/Kolkata"))
    assert kolkata[23] == {"hour": 23, "sessions": 2, "energyWh": 100}
    assert kolkata[0] == {"hour": 0, "sessions": 1, "energyWh": 50}
    # 04:00-04:15 UTC is 09:45 in Kathmandu (+05:45), 04:15 is 10:00
    kathmandu = local_hours([("2026-03-10T04", 0, 3, 0), ("2026-03-10T04", 1, 4, 0)], ZoneInfo("Asia/Kathmandu"))
    assert (kathmandu[9]["sessions"], kathmandu[10]["sessions"]) == (3, 4)
    assert [h["hour"] for h in kathmandu] == list(range(24))


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
       st.sampled_from(["Asia/Shanghai", "Europe/London", "America/St_Johns", "Asia/Kathmandu", "Australia/Eucla"]))
def test_every_moment_of_a_quarter_hour_has_the_local_hour_of_its_start(moment, zone):
    """What local_hours relies on: an offset of whole quarter hours puts a whole UTC quarter in one local hour."""
    moment = moment.replace(tzinfo=timezone.utc)
    start = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
    hours = local_hours([(start.strftime("%Y-%m-%dT%H"), start.minute // 15, 1, 0)], ZoneInfo(zone))
    assert hours[moment.astimezone(ZoneInfo(zone)).hour]["sessions"] == 1


def test_stations_rank_highest_first_and_equal_figures_share_a_rank():
    stations = [{"stationId": i, "energyWh": e, "revenue": r, "sessions": s}
                for i, e, r, s in ((1, 500, 10, 3), (2, 900, 10, 1), (3, 500, 30, 3), (4, 0, 0, 0))]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "energy", 10)] == [(1, 2), (2, 1), (2, 3), (4, 4)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "revenue", 2)] == [(1, 3), (2, 1)]
    assert [(x["rank"], x["stationId"]) for x in ranked(stations, "sessions", 10)] == [(1, 1), (1, 3), (3, 2), (4, 4)]
