"""gateway.billing.plausible: which clock a session's start or stop is priced on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.billing.plausible import CHARGER, GATEWAY, session_time
from gateway.billing.settings import from_config
from gateway.config import BillingConfig, ConfigError

DAY = timedelta(hours=24)
SEEN = "2026-03-01T00:00:00.000Z"  # the charger's first connection
HEARD = "2026-03-10T12:00:00.000Z"  # when the gateway received the message
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("sent", ["2026-03-10T12:00:00Z", "2026-03-10T11:00:00Z", "2026-03-11T11:59:59Z",
                                  "2026-03-09T12:00:00Z", "2026-03-10T20:00:00+08:00"])
def test_a_charger_time_near_the_receive_time_and_after_registration_is_believed(sent):
    moment = session_time("start", sent, HEARD, SEEN, DAY)
    assert (moment.at, moment.text, moment.source, moment.reason) == (at(sent), sent, CHARGER, None)


@pytest.mark.parametrize(("sent", "why"), [
    ("2026-03-11T12:00:01Z", "the charger's start time 2026-03-11T12:00:01Z is 24.0 hours after the gateway"),
    ("2026-03-09T11:59:59Z", "is 24.0 hours before the gateway received it"),
    ("1970-01-01T00:00:00Z", "is before it was first seen (2026-03-01T00:00:00.000Z)"),
    ("2030-01-01T00:00:00Z", "is 1,392 days after the gateway received it"),  # 1,393 days less 12 hours
    ("0001-01-01T00:00:00+08:00", "is before it was first seen"),
])
def test_an_implausible_charger_time_is_replaced_by_the_receive_time_with_the_reason(sent, why):
    moment = session_time("start", sent, HEARD, SEEN, DAY)
    assert (moment.at, moment.text, moment.source) == (at(HEARD), HEARD, GATEWAY)
    assert why in moment.reason


def test_before_registration_counts_even_within_the_tolerance():
    moment = session_time("stop", "2026-02-28T23:00:00Z", "2026-03-01T00:10:00.000Z", SEEN, DAY)
    assert moment.source == GATEWAY and "stop time 2026-02-28T23:00:00Z is before it was first seen" in moment.reason


def test_a_time_without_a_zone_is_utc():
    moment = session_time("start", "2026-03-10T12:00:00", HEARD, SEEN, DAY)
    assert (moment.at, moment.source) == (datetime(2026, 3, 10, 12, tzinfo=UTC), CHARGER)


@pytest.mark.parametrize("sent", [None, "", "yesterday", "2026-13-01T00:00:00Z"])
def test_no_usable_charger_time_means_the_receive_time(sent):
    moment = session_time("stop", sent, HEARD, SEEN, DAY)
    assert (moment.at, moment.source) == (at(HEARD), GATEWAY)
    assert ("sent no stop time" if not sent else "is unreadable") in moment.reason


def test_without_a_receive_time_a_plausible_charger_time_is_used_and_an_implausible_one_is_none():
    assert session_time("start", "2026-03-10T12:00:00Z", None, SEEN, DAY).source == CHARGER
    moment = session_time("start", "1970-01-01T00:00:00Z", None, SEEN, DAY)
    assert (moment.at, moment.source) == (None, None) and "before it was first seen" in moment.reason
    assert session_time("start", None, None, SEEN, DAY) == session_time("start", None, None, None, None)


def test_a_trusted_clock_is_always_believed():
    moment = session_time("start", "0001-01-01T00:00:00Z", HEARD, SEEN, None)
    assert (moment.at, moment.source, moment.reason) == (datetime(1, 1, 1, tzinfo=UTC), CHARGER, None)


@pytest.mark.parametrize("hours", [0, -1, float("nan"), 8785, 1e300])
def test_a_tolerance_out_of_range_is_a_config_error(hours):
    with pytest.raises(ConfigError, match="charger_clock_tolerance_hours must be"):
        from_config(BillingConfig(charger_clock_tolerance_hours=hours))


def test_the_tolerance_from_config_and_a_trusted_clock():
    assert from_config(BillingConfig()).clock_tolerance == timedelta(hours=24)
    assert from_config(BillingConfig(charger_clock_tolerance_hours=0.5)).clock_tolerance == timedelta(minutes=30)
    assert from_config(BillingConfig(trust_charger_clock=True)).clock_tolerance is None
