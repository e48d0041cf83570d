"""What one connection may cost the gateway: a fault boundary, and caps on open connections.

Whatever a client does (reset its socket mid-handshake, vanish during the TLS handshake, send a frame
far over the limit), and whatever fails while it is served (the database during its handshake), ends
that connection only. The caps keep strangers from taking the file descriptors that chargers, the
database and the schemas need.
"""

from __future__ import annotations

import ipaddress
import resource
import sqlite3
from collections import Counter
from contextlib import contextmanager
from typing import Iterable, Iterator

import attrs
import structlog
import trio
import trio_websocket

from ..proxies import is_loopback
from .handshake import HandshakeRefused

log = structlog.get_logger("gateway.listener")

# File descriptors kept out of the connection cap: the database (reader, WAL, shared memory), the pipe
# to the writer process and its log, the listening sockets, log files, outbound HTTPS to payment
# providers, and headroom for the accept loop to close what it refuses.
RESERVED_DESCRIPTORS = 128

# Errors that only say the client went away: nothing to do but close.
_GONE = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio_websocket.ConnectionClosed)


def raise_open_file_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit where allowed; (soft, hard) as it now stands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. macOS refuses RLIM_INFINITY
            log.warning("open-file limit not raised", soft=soft, hard=hard, error=str(exc))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def connection_cap(open_files: int) -> int:
    """Connections the gateway may hold at once under an open-file limit: one descriptor each (TLS and
    WebSockets included), the reserve kept; never less than half the limit on a tiny one."""
    return max(open_files - RESERVED_DESCRIPTORS, open_files // 2)


def address_key(address: str) -> str:
    """Whose connections count together: one IPv4 address, or one IPv6 /64 (what one site is given:
    a client holding a /64 has billions of addresses)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@attrs.define
class ConnectionLimits:
    """Open connections, in total and per address (`address_key`), across every listener of a gateway.

    Only the total applies to clients on this machine (the operator's own tools, a local reverse proxy,
    the benchmark's thousands of chargers) and to trusted reverse proxies, which carry many clients."""

    total: int
    per_address: int
    exempt: frozenset[str] = attrs.field(factory=frozenset, converter=lambda a: frozenset(map(address_key, a)))
    open: int = 0
    refused: int = 0
    _by_address: Counter[str] = attrs.field(factory=Counter)
    _reported: set[str] = attrs.field(factory=set)  # addresses whose refusal was logged while at the cap

    @classmethod
    def from_config(cls, open_files: int, total: int, per_address: int, exempt: Iterable[str] = ()) -> ConnectionLimits:
        cap = connection_cap(open_files)
        return cls(min(total, cap) if total else cap, per_address, exempt)

    def refusal(self, address: str) -> str | None:
        """Why a new connection from `address` is refused, or None when it may open."""
        if self.open >= self.total:
            return f"the gateway holds {self.open} connections, its limit (max_connections)"
        key = address_key(address)
        if not self._exempt(key) and self._by_address[key] >= self.per_address:
            return f"{key} holds {self._by_address[key]} connections, the limit per address (max_connections_per_address)"
        return None

    def _exempt(self, key: str) -> bool:
        return key in self.exempt or is_loopback(key)

    @contextmanager
    def hold(self, address: str) -> Iterator[str | None]:
        """Count a connection while the block runs; yields the refusal (counting nothing) if over a cap.

        A refusal is logged once per address until that address is below its cap again, so a flood
        of connections does not become a flood of log lines."""
        reason = self.refusal(address)
        key = address_key(address)
        if reason is not None:
            self.refused += 1
            reported = "" if self.open >= self.total else key  # "": the total
            if reported not in self._reported:
                self._reported.add(reported)
                log.warning("connections refused", remote=address, reason=reason)
            yield reason
            return
        self.open += 1
        self._by_address[key] += 1
        try:
            yield None
        finally:
            self.open -= 1
            self._by_address[key] -= 1
            if not self._by_address[key]:
                del self._by_address[key]
            self._reported.discard(key)
            self._reported.discard("")


def stream_socket(stream: trio.SocketStream | trio.SSLStream) -> trio.socket.SocketType:
    """The socket under a (TLS) stream."""
    return stream.transport_stream.socket if isinstance(stream, trio.SSLStream) else stream.socket


async def refuse_connection(stream: trio.abc.Stream, reason: str) -> None:
    """Answer a connection over a cap 503, before reading anything from it, and close it. The answer is
    a best effort: a client that does not read it gets the close. A TLS connection is closed unanswered:
    answering would take a TLS handshake, time and work a stranger could make the gateway spend."""
    if isinstance(stream, trio.SSLStream):
        await trio.aclose_forcefully(stream.transport_stream)
        return
    body = f"{reason}; try again later\n".encode()
    answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
              b"Retry-After: 60\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with trio.move_on_after(1):  # an empty socket buffer takes it at once; this is only a bound
        try:
            await stream.send_all(answer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await trio.aclose_forcefully(stream)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def connection_failed(exc: Exception, remote: str, cp_id: str | None = None) -> None:
    """Log what ended one connection: a client gone away at debug level, anything else as an error."""
    causes = leaves(exc)
    cause = "; ".join(f"{type(e).__name__}: {e}" for e in causes)[:500]
    if all(isinstance(e, _GONE) for e in causes):
        log.debug("client went away", cp=cp_id, remote=remote, cause=cause)
    else:
        log.error("connection failed", cp=cp_id, remote=remote, cause=cause, exc_info=exc)


def handshake_failed(exc: Exception, remote: str, target: str) -> HandshakeRefused:
    """A handshake that failed for the gateway's own reasons (the database locked or failing): logged,
    and answered 503 so the charger retries later, as it does after any refused connection."""
    log.error("handshake failed", remote=remote, path=target[:200], cause=f"{type(exc).__name__}: {exc}"[:500],
              exc_info=exc)
    if isinstance(exc, sqlite3.Error):
        return HandshakeRefused(503, f"the gateway cannot check chargers now: its database failed ({exc}); "
                                     "try again in a minute")
    return HandshakeRefused(503, "the gateway cannot check chargers now (an internal error, logged); "
                                 "try again in a minute")


__all__ = ["ConnectionLimits", "address_key", "connection_cap", "connection_failed", "handshake_failed",
           "leaves", "raise_open_file_limit", "refuse_connection", "stream_socket"]
