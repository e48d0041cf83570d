"""The caps on open connections: counted per address (an IPv6 /64 as one), in total, released on close."""

from __future__ import annotations

from contextlib import ExitStack

from gateway.chargepoint.boundary import ConnectionLimits, address_key, connection_cap


def hold(stack: ExitStack, limits: ConnectionLimits, address: str) -> str | None:
    return stack.enter_context(limits.hold(address))


def test_an_address_over_its_cap_is_refused_and_others_are_not():
    limits = ConnectionLimits(total=100, per_address=3)
    with ExitStack() as stack:
        assert [hold(stack, limits, "203.0.113.7") for _ in range(3)] == [None, None, None]
        refusal = hold(stack, limits, "203.0.113.7")
        assert refusal and "203.0.113.7" in refusal and "max_connections_per_address" in refusal
        assert hold(stack, limits, "203.0.113.8") is None
        assert (limits.open, limits.refused) == (4, 1)  # a refused connection is not counted as open
    assert limits.open == 0
    with limits.hold("203.0.113.7") as refusal:  # all closed: room again
        assert refusal is None


def test_the_total_cap_refuses_everyone_until_a_connection_closes():
    limits = ConnectionLimits(total=2, per_address=10)
    with ExitStack() as stack:
        hold(stack, limits, "198.51.100.1")
        with limits.hold("198.51.100.2"):
            refusal = hold(stack, limits, "198.51.100.3")
            assert refusal and "max_connections" in refusal
        assert hold(stack, limits, "198.51.100.3") is None


def test_an_ipv6_64_counts_as_one_address_and_mapped_ipv4_as_its_ipv4():
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("::1") == "::1"  # not the /64 around it
    limits = ConnectionLimits(total=100, per_address=2)
    with ExitStack() as stack:
        hold(stack, limits, "2001:db8:1:2::1")
        hold(stack, limits, "2001:db8:1:2::2")
        assert hold(stack, limits, "2001:db8:1:2::3") is not None
        assert hold(stack, limits, "2001:db8:1:9::1") is None


def test_this_machine_and_trusted_proxies_are_held_to_the_total_only():
    limits = ConnectionLimits(total=5, per_address=1, exempt=["192.0.2.10"])
    with ExitStack() as stack:
        assert [hold(stack, limits, a) for a in ("127.0.0.1", "127.0.0.1", "::1", "::1", "192.0.2.10")] == [None] * 5
        assert hold(stack, limits, "127.0.0.1") is not None  # the total still holds


def test_the_total_is_derived_from_the_open_file_limit():
    assert connection_cap(1024) == 896  # 128 descriptors kept for the database, logs, providers
    assert connection_cap(200) == 100  # a tiny limit: half of it
    assert ConnectionLimits.from_config(1024, 0, 100).total == 896
    assert ConnectionLimits.from_config(1024, 50, 100).total == 50  # configured lower
    assert ConnectionLimits.from_config(1024, 5000, 100).total == 896  # never above what the limit allows
