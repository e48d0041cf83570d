"""What a web browser may make the API do (pure): only what a page of the gateway's own asks.

A browser on a machine that can reach the gateway carries whatever credentials it has (cached
HTTP Basic, or simply being on this machine in protected mode) to any page's requests. Two
defences, both decided from the request's headers alone:

- the Host header must name the gateway: a page on a site whose DNS name is made to point at
  this machine (DNS rebinding) sends its own name as Host;
- a request that changes something must not come from another site: browsers say where a
  request comes from with `Sec-Fetch-Site` and `Origin`, and clients such as curl send
  neither, so the GET command routes keep working for them.
"""

from __future__ import annotations

import ipaddress
from typing import Collection, Mapping
from urllib.parse import urlsplit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def host_name(host: str) -> str:
    """The name of a Host header without its port, lower case, without a final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_allowed(host: str | None, allowed: Collection[str]) -> bool:
    """Whether a request naming `host` may be answered.

    Allowed at all times: no Host (not a browser), loopback names, and IP literals: a browser sends an
    IP as Host only for a page loaded from that very address, which no rebinding can fake. Any other
    name must be in `allowed` (the listen address, `http_allowed_hosts`); "*" allows every name."""
    if not host or "*" in allowed:
        return True
    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost") or name in allowed:
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def cross_site(headers: Mapping[str, str], host: str | None) -> str | None:
    """Why a browser's request comes from another site (then it must change nothing), or None.
    `headers` with lower-case names."""
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site and site not in ("same-origin", "none"):  # none: typed in the address bar, a bookmark
        return f"the browser says this request comes from another site (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and (origin.strip() == "null" or urlsplit(origin.strip()).netloc.lower()
                               != (host or "").strip().lower()):
        return f"the browser says this request comes from {origin.strip()[:200]!r}, not from this gateway's pages"
    return None
