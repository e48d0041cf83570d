"""An in-process event hub with bounded per-subscriber buffers.

A subscriber that does not keep up loses events; it never slows the publisher
(a charger's message loop).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import attrs
import trio


@attrs.frozen
class TransactionStarted:
    cp_id: str
    connector_id: int | None
    id_tag: str
    transaction_id: int
    remote_start_request_id: str | None
    # what the live stream shows besides (not part of the event's identity)
    meter_start: int | None = attrs.field(default=None, eq=False)
    timestamp: str | None = attrs.field(default=None, eq=False)  # the charger's
    at: str | None = attrs.field(default=None, eq=False)  # the gateway's

    def live(self) -> tuple[str, str | None, dict]:
        return "transaction", self.cp_id, {
            "cpId": self.cp_id, "transactionId": self.transaction_id, "event": "started",
            "connectorId": self.connector_id, "idTag": self.id_tag, "meterStart": self.meter_start,
            "timestamp": self.timestamp, "time": self.at}


@attrs.frozen
class TransactionStopped:
    cp_id: str
    transaction_id: int
    meter_stop: int | None = attrs.field(default=None, eq=False)
    reason: str | None = attrs.field(default=None, eq=False)
    id_tag: str | None = attrs.field(default=None, eq=False)
    timestamp: str | None = attrs.field(default=None, eq=False)  # the charger's
    at: str | None = attrs.field(default=None, eq=False)  # the gateway's

    def live(self) -> tuple[str, str | None, dict]:
        return "transaction", self.cp_id, {
            "cpId": self.cp_id, "transactionId": self.transaction_id, "event": "stopped", "connectorId": None,
            "idTag": self.id_tag, "meterStop": self.meter_stop, "reason": self.reason,
            "timestamp": self.timestamp, "time": self.at}


@attrs.frozen
class OutOfService:
    """A charger the operator keeps out of service connected or booted: it is to be made Inoperative."""
    cp_id: str
    why: str  # "disabled", "maintenance", "retired"


class LiveFeed:
    """What one live-stream reader (a browser) is given: a bounded buffer, and how many events it could not
    hold. The publisher never waits for it."""

    def __init__(self, buffer: int):
        self.buffer = buffer
        self._send, self._receive = trio.open_memory_channel[Any](buffer)
        self.lost = 0  # events dropped since the reader last took the count (take_lost)

    def offer(self, event: Any) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.lost += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def receive(self) -> Any:
        """The next event; trio.EndOfChannel once closed."""
        return await self._receive.receive()

    def receive_nowait(self) -> Any:
        """The next event buffered; trio.WouldBlock when there is none."""
        return self._receive.receive_nowait()

    def take_lost(self) -> int:
        lost, self.lost = self.lost, 0
        return lost

    def close(self) -> None:
        """End the feed: the reader's receive() raises trio.EndOfChannel once the buffer is read."""
        self._send.close()


class Hub:
    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel] = set()
        self._feeds: set[LiveFeed] = set()  # the live stream's readers (GET /api/live)
        self.dropped = 0

    @property
    def watched(self) -> bool:
        """Whether a live-stream reader listens: the hot path builds what only it reads (frames, readings)
        after asking this, and pays nothing more while nobody watches."""
        return bool(self._feeds)

    def publish(self, event: Any) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(channel)
        if self._feeds and hasattr(event, "live"):
            self.show(event)

    def show(self, event: Any) -> None:
        """Give an event (with `live()`) to the live-stream readers only: what no other subscriber needs
        (frames, meter readings, connector states) does not fill their buffers."""
        for feed in list(self._feeds):
            feed.offer(event)

    @contextmanager
    def watch(self, buffer: int) -> Iterator[LiveFeed]:
        """A live-stream reader's feed of every event with `live()`, `buffer` events deep."""
        feed = LiveFeed(buffer)
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)
            feed.close()

    @contextmanager
    def subscribe(self, buffer: int = 100) -> Iterator[trio.MemoryReceiveChannel]:
        send, receive = trio.open_memory_channel(buffer)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()
