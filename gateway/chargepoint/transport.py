"""One face for both charger listeners: trio-websocket (OCPP port) and Quart (HTTP port)."""

from __future__ import annotations

from typing import Any, Protocol

import trio
import trio_websocket


class Closed(Exception):
    """The connection is gone; `code` is the WebSocket close code when one is known."""

    def __init__(self, code: int | None, reason: str | None):
        super().__init__(f"closed ({code}) {reason or ''}".strip())
        self.code = code
        self.reason = reason


class Transport(Protocol):
    remote: str
    can_ping: bool

    async def receive(self) -> str | bytes: ...

    async def send(self, text: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


def _closed(exc: trio_websocket.ConnectionClosed) -> Closed:
    return Closed(getattr(exc.reason, "code", None), getattr(exc.reason, "reason", None))


class TrioWebSocketTransport:
    """trio-websocket serialises a connection's sends itself, and compresses nothing."""

    can_ping = True

    def __init__(self, ws: trio_websocket.WebSocketConnection, remote: str):
        self._ws = ws
        self.remote = remote  # taken when accepted: asking the socket later fails once the client is gone

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def send(self, text: str) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def ping(self) -> None:
        try:
            await self._ws.ping()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int, reason: str) -> None:
        with trio.move_on_after(5):  # a peer that never answers the close frame
            await self._ws.aclose(code, reason)


class QuartTransport:
    """Quart's websocket: when the peer goes away, Quart cancels the handler instead."""

    can_ping = False  # the ASGI interface exposes no server-side ping

    def __init__(self, websocket: Any):
        self._ws = websocket
        self.remote = str(websocket.remote_addr or "")
        self._closed = False
        # Hypercorn compresses (permessage-deflate) before it queues for its own send lock: a send
        # cancelled in that queue would leave the compressor ahead of what the charger received.
        # Queueing here, before anything is compressed, keeps a cancelled send harmless.
        self._send_lock = trio.Lock()

    async def receive(self) -> str | bytes:
        if self._closed:
            raise Closed(None, "closed by the gateway")
        return await self._ws.receive()

    async def send(self, text: str) -> None:
        async with self._send_lock:
            if self._closed:
                raise Closed(None, "closed by the gateway")
            await self._ws.send(text)

    async def ping(self) -> None:
        raise NotImplementedError

    async def close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            await self._ws.close(code, reason)
