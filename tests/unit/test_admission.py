"""gateway.chargepoint.admission: failed handshakes per charger id and per address, new chargers per address."""

from __future__ import annotations

import pytest

from gateway.chargepoint.admission import WINDOW, Admission, address_key


def fail(adm: Admission, address: str, cp_id: str, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        adm.failed(address, cp_id, now)


def test_a_charger_that_keeps_failing_is_held_off_by_itself():
    adm = Admission(failures_per_id=10, failed_ids_per_address=10, new_per_address=30)
    fail(adm, "192.0.2.7", "CP-A", 9)
    assert adm.held_off("192.0.2.7", "CP-A", 1.0) is None
    fail(adm, "192.0.2.7", "CP-A", 1)
    why = adm.held_off("192.0.2.7", "CP-A", 1.0)
    assert why is not None and "'CP-A'" in why
    # Its neighbours behind the same address, and the same id from elsewhere, go on.
    assert adm.held_off("192.0.2.7", "CP-B", 1.0) is None
    assert adm.held_off("192.0.2.8", "CP-A", 1.0) is None


def test_the_hold_ends_when_the_failures_leave_the_minute():
    adm = Admission(failures_per_id=3, failed_ids_per_address=10, new_per_address=30)
    adm.failed("192.0.2.7", "CP-A", 0.0)
    adm.failed("192.0.2.7", "CP-A", 10.0)
    adm.failed("192.0.2.7", "CP-A", 20.0)
    assert adm.held_off("192.0.2.7", "CP-A", WINDOW - 0.5) is not None
    # The first failure has left the window: two in the last minute, under the limit of three.
    assert adm.held_off("192.0.2.7", "CP-A", WINDOW + 0.5) is None
    assert adm.held_off("192.0.2.7", "CP-A", WINDOW + 20.5) is None


def test_an_address_is_held_off_when_many_different_ids_fail_from_it():
    adm = Admission(failures_per_id=10, failed_ids_per_address=5, new_per_address=30)
    for n in range(4):
        adm.failed("192.0.2.7", f"CP{n}", 0.0)
    assert adm.held_off("192.0.2.7", "CP-NEW", 1.0) is None
    adm.failed("192.0.2.7", "CP4", 0.0)
    why = adm.held_off("192.0.2.7", "CP-NEW", 1.0)
    assert why is not None and "5 different" in why
    assert adm.held_off("192.0.2.8", "CP-NEW", 1.0) is None  # another address is not
    assert adm.held_off("192.0.2.7", "CP-NEW", WINDOW + 0.5) is None


def test_failures_of_one_id_count_once_towards_the_address():
    adm = Admission(failures_per_id=100, failed_ids_per_address=2, new_per_address=30)
    fail(adm, "192.0.2.7", "CP-A", 50)
    assert adm.held_off("192.0.2.7", "CP-B", 1.0) is None


@pytest.mark.parametrize("address, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("::1", "::/64"),
    ("", ""),
    ("not an address", "not an address"),
])
def test_address_key(address, key):
    assert address_key(address) == key


def test_ipv6_addresses_are_counted_per_64():
    adm = Admission(failures_per_id=4, failed_ids_per_address=3, new_per_address=2)
    # One host hopping through the addresses of its /64 is still one address.
    for n in range(4):
        adm.failed(f"2001:db8:1:2::{n + 1:x}", "CP-A", 0.0)
    assert adm.held_off("2001:db8:1:2::ffff", "CP-A", 1.0) is not None
    assert adm.held_off("2001:db8:1:3::1", "CP-A", 1.0) is None  # the next /64 is someone else
    for n in range(3):
        adm.failed(f"2001:db8:1:2:{n:x}::1", f"CP{n}", 0.0)
    assert adm.held_off("2001:db8:1:2::9", "CP-Z", 1.0) is not None
    assert adm.may_add("2001:db8:9:9::1", 0.0) and adm.may_add("2001:db8:9:9::2", 0.0)
    assert not adm.may_add("2001:db8:9:9::3", 0.0)


def test_new_chargers_per_address_per_minute():
    adm = Admission(failures_per_id=10, failed_ids_per_address=10, new_per_address=3)
    assert [adm.may_add("192.0.2.7", t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert adm.may_add("192.0.2.8", 3.0)  # another address has its own budget
    assert not adm.may_add("192.0.2.7", WINDOW - 0.5)
    assert adm.may_add("192.0.2.7", WINDOW + 0.5)  # the one at 0.0 has left the minute
    assert not adm.may_add("192.0.2.7", WINDOW + 0.6)


def test_memory_is_bounded():
    adm = Admission(failures_per_id=10, failed_ids_per_address=10, new_per_address=30, tracked=100)
    for n in range(5000):
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        adm.failed(address, f"CP{n}", float(n))
        adm.may_add(address, float(n))
    assert adm.tracked() <= 300
    # The most recent are still counted.
    fail(adm, "10.0.19.135", "CP4999", 9, 5000.0)
    assert adm.held_off("10.0.19.135", "CP4999", 5000.0) is not None
