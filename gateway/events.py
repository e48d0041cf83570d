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


@attrs.frozen
class TransactionStopped:
    cp_id: str
    transaction_id: int


@attrs.frozen
class OutOfService:
    """A charger the operator keeps out of service connected or booted: it is to be made Inoperative."""
    cp_id: str
    why: str  # "disabled", "maintenance", "retired"


class Hub:
    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel] = set()
        self.dropped = 0

    def publish(self, event: Any) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(channel)

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
