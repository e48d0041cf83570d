"""When the daily reconciliation runs and which days it catches up; the CSV export of a report."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.billing.reconcile import CATCH_UP_DAYS, as_csv, due_days, next_run
from gateway.config import ConfigError, load

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = time(10, 30)


def moment(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def test_before_the_time_of_day_the_day_before_yesterday_is_the_latest_due():
    assert due_days(moment(10, 10, 29), AT, None) == [date(2026, 3, 8)]
    assert due_days(moment(10, 10, 30), AT, None) == [date(2026, 3, 9)]


def test_nothing_is_due_when_the_latest_day_is_done():
    assert due_days(moment(10, 11), AT, date(2026, 3, 9)) == []
    assert due_days(moment(10, 9), AT, date(2026, 3, 8)) == []


def test_missed_days_are_caught_up_in_order():
    assert due_days(moment(10, 11), AT, date(2026, 3, 6)) == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]


def test_catch_up_is_bounded():
    days = due_days(moment(10, 11), AT, date(2025, 1, 1))
    assert len(days) == CATCH_UP_DAYS and days[-1] == date(2026, 3, 9)


def test_next_run_is_today_or_tomorrow_at_the_time_of_day():
    assert next_run(moment(10, 9), AT) == moment(10, 10, 30)
    assert next_run(moment(10, 10, 30), AT) == moment(11, 10, 30)


def test_config_refuses_a_bad_time_or_channel():
    for bad in ("25:00", "10h30", "7:30"):
        with pytest.raises(ConfigError, match="reconcile_at"):
            load(None, env={}, overrides={"billing": {"reconcile_at": bad}})
    with pytest.raises(ConfigError, match="reconcile_channels"):
        load(None, env={}, overrides={"billing": {"reconcile_channels": ["paypal"]}})
    assert load(None, env={}, overrides={"billing": {"reconcile_at": ""}}).billing.reconcile_at == ""


def test_csv_has_one_line_per_mismatch_and_no_formulas():
    report = {"channel": "wechat", "day": "2026-03-09", "mismatches": [
        {"kind": "unknown_trade", "tradeNo": "@SUM(A1)", "orderNo": None, "refundNo": None, "providerAmount": 5,
         "ourAmount": None, "detail": "a, \"quoted\"\nline"},
        {"kind": "missed_payment", "tradeNo": "PAY-1", "orderNo": "ORD-1", "refundNo": None, "providerAmount": -1,
         "ourAmount": 7, "detail": "-x"}]}
    rows = list(csv.reader(io.StringIO(as_csv(report))))
    assert rows == [
        ["channel", "day", "kind", "tradeNo", "orderNo", "refundNo", "providerAmount", "ourAmount", "detail"],
        ["wechat", "2026-03-09", "unknown_trade", "'@SUM(A1)", "", "", "5", "", "a, \"quoted\"\nline"],
        ["wechat", "2026-03-09", "missed_payment", "PAY-1", "ORD-1", "", "-1", "7", "'-x"]]
