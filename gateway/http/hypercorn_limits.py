"""Three limits Hypercorn does not enforce on its own, for the HTTP port.

- Frame size while reading: Hypercorn adds each piece of a WebSocket message to its buffer and
  compares the length after; past the limit it sends close 1009 but keeps reading, and keeps adding
  every later piece to the same buffer, so a 1,000 MB frame was held whole (RSS 1.3 GB). Here the
  piece that would cross the limit is never kept: close 1009, and the TCP connection ends.
- Connection caps: the open-connection limits (`ConnectionLimits`) are counted as Hypercorn accepts,
  before anything is read; a connection over a cap is answered 503 and closed.
- A client that stops reading: Hypercorn writes to the socket shielded from cancellation, so an answer
  that never ends (the live stream, GET /api/live) to a client that takes nothing would hold its task,
  and the gateway's shutdown, for as long as the TCP connection lives. Here a write that makes no
  progress for `STALLED_SEND_SECONDS` closes the connection.

Hypercorn builds both objects itself (`TCPServer` per accepted connection, `WSStream` per WebSocket),
so the subclasses are installed in its modules; a server whose config carries no `connection_limits`
is served exactly as before.
"""

from __future__ import annotations

import hypercorn.protocol.h2
import hypercorn.protocol.h11
import hypercorn.trio.run
import trio
from hypercorn.config import Config
from hypercorn.protocol.events import StreamClosed
from hypercorn.events import Closed, RawData
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.tcp_server import TCPServer
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from ..chargepoint.boundary import ConnectionLimits, connection_failed, refuse_connection, stream_socket


class GatewayConfig(Config):
    connection_limits: ConnectionLimits | None = None


class _BoundedWSStream(WSStream):
    async def _handle_events(self) -> None:
        # Hypercorn's own, but for the size check, made before the piece is kept.
        for event in self.connection.events():
            if isinstance(event, Message):
                if self.buffer.length + len(event.data) > self.buffer.max_length:
                    await self._too_big()
                    return
                self.buffer.extend(event)
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))

    async def _too_big(self) -> None:
        self.buffer.clear()
        await self._send_wsproto_event(CloseConnection(code=CloseReason.MESSAGE_TOO_BIG))
        if self.app_put is not None:  # the application learns why its socket ended
            await self.app_put({"type": "websocket.disconnect", "code": CloseReason.MESSAGE_TOO_BIG})
        self.closed = True  # nothing more is read into this stream ...
        await self.send(StreamClosed(stream_id=self.stream_id))  # ... and the TCP connection closes


STALLED_SEND_SECONDS = 30.0  # a client that takes no piece of an answer for this long is gone
SEND_PIECE = 16384


class _CappedTCPServer(TCPServer):
    async def protocol_send(self, event: object) -> None:
        if not isinstance(event, RawData):
            return await super().protocol_send(event)
        data = memoryview(event.data)
        async with self.send_lock:
            try:
                for start in range(0, len(data), SEND_PIECE):
                    # Shielded as Hypercorn's own (a half-written piece would corrupt the connection), but for
                    # the deadline: a client that takes nothing for that long is closed.
                    with trio.CancelScope(shield=True, deadline=trio.current_time() + STALLED_SEND_SECONDS) as scope:
                        await self.stream.send_all(data[start:start + SEND_PIECE])
                    if scope.cancelled_caught:
                        break
                else:
                    return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await trio.aclose_forcefully(self.stream)
        await self.protocol.handle(Closed())

    async def run(self) -> None:
        limits = getattr(self.config, "connection_limits", None)
        if limits is None:
            return await super().run()
        try:
            address = stream_socket(self.stream).getpeername()[0]
        except OSError:  # reset before it was served
            await trio.aclose_forcefully(self.stream)
            return
        with limits.hold(address) as refusal:
            if refusal is not None:
                await refuse_connection(self.stream, refusal)
                return
            await self._bounded(address)

    async def _bounded(self, address: str) -> None:
        """Hypercorn's connection, inside a fault boundary: whatever it raises (seen: two of its own tasks
        sending at once when a client vanished while an early answer went out) ends this connection only,
        where Hypercorn would let it end the whole HTTP listener."""
        try:
            await super().run()
        except* Exception as group:
            connection_failed(group, address)
            await trio.aclose_forcefully(self.stream)


def install() -> None:
    hypercorn.protocol.h11.WSStream = _BoundedWSStream  # type: ignore[misc]
    hypercorn.protocol.h2.WSStream = _BoundedWSStream  # type: ignore[misc]
    hypercorn.trio.run.TCPServer = _CappedTCPServer  # type: ignore[misc]
