"""gateway.chargepoint.authorization.id_tag_info: the idTagInfo answered for an id tag."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.chargepoint.authorization import id_tag_info
from tests.helpers import assert_schema_valid

NOW = datetime(2025, 8, 14, 1, 23, 0, tzinfo=timezone.utc)


def row(status: str = "Accepted", expiry_date: str | None = None, parent_id_tag: str | None = None) -> dict:
    return {
        "id_tag": "a123456789",
        "status": status,
        "expiry_date": expiry_date,
        "parent_id_tag": parent_id_tag,
        "created_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-01T00:00:00.000Z",
    }


def answer(record: dict | None, accept_unknown: bool = True, now: datetime = NOW) -> dict:
    """id_tag_info(), checked against the IdTagInfo of the 1.6 AuthorizeResponse schema."""
    info = id_tag_info(record, accept_unknown, now)
    assert_schema_valid("Authorize", {"idTagInfo": info})
    return info


def test_unknown_tag_accepted_by_policy():
    assert answer(None, accept_unknown=True) == {"status": "Accepted"}


def test_unknown_tag_invalid_by_policy():
    assert answer(None, accept_unknown=False) == {"status": "Invalid"}


@pytest.mark.parametrize("status", ["Accepted", "Blocked", "Invalid", "ConcurrentTx", "Expired"])
@pytest.mark.parametrize("accept_unknown", [False, True])
def test_known_tag_status_passes_through(status, accept_unknown):
    assert answer(row(status), accept_unknown) == {"status": status}


def test_accepted_tag_with_past_expiry_is_expired():
    info = answer(row(expiry_date="2025-08-13T00:00:00Z"))
    assert info == {"status": "Expired", "expiryDate": "2025-08-13T00:00:00.000Z"}


def test_accepted_tag_with_future_expiry_is_accepted_with_expiry_date():
    info = answer(row(expiry_date="2025-08-15T00:00:00Z"))
    assert info == {"status": "Accepted", "expiryDate": "2025-08-15T00:00:00.000Z"}


def test_expiry_exactly_now_is_expired():
    assert answer(row(expiry_date="2025-08-14T01:23:00Z"))["status"] == "Expired"


def test_expiry_one_millisecond_ahead_is_accepted():
    assert answer(row(expiry_date="2025-08-14T01:23:00.001Z"))["status"] == "Accepted"


def test_expiry_with_an_offset_is_compared_and_answered_in_utc():
    # 03:00+02:00 is 01:00Z, before NOW (01:23Z).
    info = answer(row(expiry_date="2025-08-14T03:00:00+02:00"))
    assert info == {"status": "Expired", "expiryDate": "2025-08-14T01:00:00.000Z"}


def test_expiry_without_a_zone_is_taken_as_utc():
    info = answer(row(expiry_date="2025-08-14T02:00:00"))
    assert info == {"status": "Accepted", "expiryDate": "2025-08-14T02:00:00.000Z"}


@pytest.mark.parametrize("status", ["Blocked", "Invalid", "ConcurrentTx"])
def test_non_accepted_status_is_kept_even_when_expired(status):
    info = answer(row(status, expiry_date="2020-01-01T00:00:00Z"))
    assert info == {"status": status, "expiryDate": "2020-01-01T00:00:00.000Z"}


def test_expiry_is_judged_against_the_given_now():
    record = row(expiry_date="2025-08-14T12:00:00Z")
    assert answer(record, now=NOW)["status"] == "Accepted"
    assert answer(record, now=NOW + timedelta(days=1))["status"] == "Expired"


def test_parent_id_tag_is_included():
    info = answer(row(parent_id_tag="fleet-1"))
    assert info == {"status": "Accepted", "parentIdTag": "fleet-1"}


def test_parent_id_tag_and_expiry_together():
    info = answer(row("Blocked", expiry_date="2025-09-01T00:00:00Z", parent_id_tag="fleet-1"))
    assert info == {"status": "Blocked", "expiryDate": "2025-09-01T00:00:00.000Z", "parentIdTag": "fleet-1"}


def test_empty_optional_columns_are_left_out():
    assert answer(row(expiry_date="", parent_id_tag="")) == {"status": "Accepted"}


def test_row_without_optional_columns():
    assert answer({"status": "Accepted"}) == {"status": "Accepted"}


def test_unparseable_expiry_is_ignored():
    assert answer(row(expiry_date="someday")) == {"status": "Accepted"}
