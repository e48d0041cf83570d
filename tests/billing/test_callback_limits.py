"""The refused-callback window: pure, the time passed in."""

from __future__ import annotations

from gateway.billing.payments import RefusalWindow


def test_an_address_is_blocked_at_its_limit_for_one_minute_and_others_are_not():
    window = RefusalWindow(per_minute=3)
    for moment in (0.0, 10.0, 20.0):
        assert not window.blocked("198.51.100.7", moment)
        window.refused("198.51.100.7", moment)
    assert window.blocked("198.51.100.7", 20.0)
    assert not window.blocked("203.0.113.9", 20.0)  # another address has its own count
    assert window.blocked("198.51.100.7", 59.9)  # the first refusal is still within the minute
    assert not window.blocked("198.51.100.7", 60.0)  # ...and no longer


def test_addresses_that_stopped_sending_are_forgotten():
    window = RefusalWindow(per_minute=1, max_addresses=10)
    for n in range(10):
        window.refused(f"192.0.2.{n}", 0.0)
    window.refused("192.0.2.200", 61.0)  # full: the silent ones go
    assert len(window._seen) == 1 and window.blocked("192.0.2.200", 61.0)
