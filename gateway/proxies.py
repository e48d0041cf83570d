"""Who is really on the other end when a reverse proxy may sit in between (pure).

Only a proxy named in `trusted_proxies` is believed about the client's address
(X-Forwarded-For) and about TLS (X-Forwarded-Proto). A request that carries forwarding
headers from anyone else came through a proxy we do not know: its address is the
proxy's, and it is never taken for a client on this machine.

Only a direct connection from this machine is local (protected mode, trust_loopback). A request
from a trusted proxy never is, whatever it says: one that adds no X-Forwarded-For stands for
everyone behind it, and one that passes on the client's own header (nginx without
`proxy_set_header X-Forwarded-For`) would let anyone claim 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping, Sequence

import attrs

FORWARDING = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-real-ip")


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


@attrs.frozen
class Peer:
    address: str  # the client's address: the socket's, or the one a trusted proxy vouches for
    https: bool  # a trusted proxy says the client reached it over TLS
    local: bool  # the client is on this machine (and no unknown proxy stands in between)


def peer(remote: str | None, headers: Mapping[str, str], trusted: Sequence[str]) -> Peer:
    """`headers` with lower-case names."""
    remote = remote or ""
    if remote not in trusted:
        forwarded = any(name in headers for name in FORWARDING)
        return Peer(remote, False, is_loopback(remote) and not forwarded)
    # Right to left: the nearest hop first; the first address that is not one of our proxies is the client.
    hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    if not hops:  # the proxy names no client: it is all we know
        return Peer(remote, False, False)
    client = next((hop for hop in reversed(hops) if hop not in trusted), hops[0])
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return Peer(client, proto in ("https", "wss"), False)
