"""The EVCS status rules (0 offline, 1 idle, 2 charging, 3 fault) over every OCPP 1.6 ChargePointStatus,
and the online/charging time arithmetic, against the rules as the contract states them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.chargepoint import evcs_status as evcs
from gateway.ocpp.validation import load_schema

# The contract, written out per status: what a connector that reports it (with NoError) is.
EXPECTED = {"Available": 1, "Preparing": 2, "Charging": 2, "SuspendedEVSE": 2, "SuspendedEV": 2, "Finishing": 2,
            "Reserved": 1, "Unavailable": 1, "Faulted": 3}
STATUSES = load_schema("StatusNotification", "request")["properties"]["status"]["enum"]
ERROR_CODES = load_schema("StatusNotification", "request")["properties"]["errorCode"]["enum"]


def test_every_ocpp_status_is_covered():
    assert sorted(STATUSES) == sorted(EXPECTED)


@pytest.mark.parametrize("status", STATUSES)
def test_a_connector_status(status):
    assert evcs.connector_status(True, status, "NoError") == EXPECTED[status]
    assert evcs.connector_status(False, status, "NoError") == evcs.OFFLINE  # offline whatever it last said
    for code in ERROR_CODES:
        if code != "NoError":  # any error code is a fault
            assert evcs.connector_status(True, status, code) == evcs.FAULT


def test_a_connector_that_never_reported_is_idle_when_online():
    assert evcs.connector_status(True, None, None) == evcs.IDLE
    assert evcs.connector_status(False, None, None) == evcs.OFFLINE


def test_a_charger_status():
    assert evcs.charger_status(False, ("Faulted", "OtherError"), [evcs.FAULT]) == evcs.OFFLINE
    assert evcs.charger_status(True, None, []) == evcs.IDLE
    assert evcs.charger_status(True, ("Available", "NoError"), [evcs.IDLE, evcs.CHARGING]) == evcs.CHARGING
    assert evcs.charger_status(True, None, [evcs.CHARGING, evcs.FAULT]) == evcs.FAULT  # fault wins
    assert evcs.charger_status(True, ("Faulted", "NoError"), [evcs.IDLE]) == evcs.FAULT  # connector 0
    assert evcs.charger_status(True, ("Available", "GroundFailure"), [evcs.CHARGING]) == evcs.FAULT
    assert evcs.NAMES == {0: "offline", 1: "idle", 2: "charging", 3: "fault"}


T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_spans_clip_to_the_period():
    # on at -10 (before the period), off at 20, on at 30, on again at 35 (no change), off at 90 (after it)
    changes = [(at(20), False), (at(30), True), (at(35), True), (at(90), False)]
    assert evcs.spans(True, changes, at(0), at(60)) == [(at(0), at(20)), (at(30), at(60))]
    assert evcs.spans(False, [], at(0), at(60)) == []
    assert evcs.seconds(evcs.spans(True, [], at(0), at(60))) == 3600


def test_union_and_overlap():
    assert evcs.union([(at(10), at(20)), (at(0), at(5)), (at(15), at(30)), (at(30), at(31))]) == [
        (at(0), at(5)), (at(10), at(31))]
    online = [(at(0), at(20)), (at(30), at(60))]
    charging = [(at(10), at(40))]
    # charging while online: 10..20 and 30..40 = 20 minutes
    assert evcs.overlap(online, charging) == [(at(10), at(20)), (at(30), at(40))]
    assert evcs.seconds(evcs.overlap(online, charging)) == 1200
