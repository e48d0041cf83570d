"""Which charger handshakes are held off, and how many new chargers an address may add (pure: the caller
passes the time, so tests need neither sockets nor sleeping).

Failed handshakes are counted per (address, charger id) and per address: a charger that keeps failing
its password is held off by itself, and its neighbours behind the same address (one site, one NAT) go on
connecting; the address as a whole is held off only when many different ids fail from it, which is what
guessing looks like. Addresses are counted as `address_key` says, IPv6 by its /64.

Memory is bounded: each table keeps at most MAX_TRACKED keys, the least recently touched dropped first.
An attacker who churns through more keys than that can make the gateway forget its own record, but each
key it churns through is itself limited, so it gains nothing over waiting out the window.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from typing import Generic, TypeVar

WINDOW = 60.0  # seconds over which failures and new chargers are counted
MAX_TRACKED = 10_000  # keys per table

K = TypeVar("K")
V = TypeVar("V")


def address_key(address: str) -> str:
    """What failures and new chargers are counted by: an IPv4 address as it is; an IPv6 address by its /64,
    the smallest block a site or a customer line is given (a host picks any address in it at will); an
    IPv4-mapped IPv6 address as its IPv4; anything else (a Unix socket, an empty string) as given."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(ip)


class _Recent(Generic[K, V]):
    """A dict that keeps the MAX_TRACKED most recently touched keys."""

    def __init__(self, limit: int):
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def touch(self, key: K, new: V) -> V:
        """The value under key (new if none), now the most recent."""
        value = self._items.setdefault(key, new)
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


def _full(times: deque[float] | None, limit: int, now: float) -> bool:
    """`limit` events within the window: the oldest of the last `limit` is still in it."""
    return times is not None and len(times) >= limit and times[-limit] > now - WINDOW


class Admission:
    def __init__(self, failures_per_id: int, failed_ids_per_address: int, new_per_address: int,
                 tracked: int = MAX_TRACKED):
        self.failures_per_id = failures_per_id  # charger.failed_handshakes
        self.failed_ids_per_address = failed_ids_per_address  # charger.failed_handshake_ids
        self.new_per_address = new_per_address  # charger.new_chargers_per_minute
        self._failures: _Recent[tuple[str, str], deque[float]] = _Recent(tracked)
        # address -> charger id -> its latest failure, the most recent ids last (only as many as count)
        self._failed_ids: _Recent[str, OrderedDict[str, float]] = _Recent(tracked)
        self._new: _Recent[str, deque[float]] = _Recent(tracked)

    def held_off(self, address: str, cp_id: str, now: float) -> str | None:
        """Why a handshake for cp_id from address is refused at once (answered 429), or None."""
        key = address_key(address)
        ids = self._failed_ids.get(key) or {}
        failing = sum(at > now - WINDOW for at in ids.values())
        if failing >= self.failed_ids_per_address:
            return f"handshakes for {failing} different charge point ids failed from {key}: wait a minute"
        if _full(self._failures.get((key, cp_id)), self.failures_per_id, now):
            return f"too many failed handshakes for charge point {cp_id!r} from {key}: wait a minute"
        return None

    def failed(self, address: str, cp_id: str, now: float) -> None:
        """Count a refused handshake (not one refused for being held off)."""
        key = address_key(address)
        self._failures.touch((key, cp_id), deque(maxlen=self.failures_per_id)).append(now)
        ids = self._failed_ids.touch(key, OrderedDict())
        ids[cp_id] = now
        ids.move_to_end(cp_id)
        while len(ids) > self.failed_ids_per_address:
            ids.popitem(last=False)

    def may_add(self, address: str, now: float) -> bool:
        """Whether a charger never seen before may be added from address now; counts it if so."""
        key = address_key(address)
        times = self._new.get(key)
        if _full(times, self.new_per_address, now):
            return False
        self._new.touch(key, deque(maxlen=self.new_per_address)).append(now)
        return True

    def tracked(self) -> int:
        """Keys held in all tables (for tests of the memory bound)."""
        return len(self._failures) + len(self._failed_ids) + len(self._new)
