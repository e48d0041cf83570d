"""A reader of the live stream (GET /api/live) for tests: server-sent events parsed as the spec says."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import attrs
import httpx
import trio


@attrs.frozen
class Event:
    name: str
    data: Any
    id: str | None = None


class LiveReader:
    def __init__(self, response: httpx.Response):
        self.response = response
        self._lines = response.aiter_lines()
        self.seen: list[Event] = []  # every event read, in order
        self.inbox: list[Event] = []  # read but not yet matched by until()
        self.comments = 0

    async def next(self, timeout: float = 10) -> Event:
        """The next event (comments, the keep-alives, are counted and skipped)."""
        name, data, event_id = "message", [], None
        with trio.fail_after(timeout):
            async for line in self._lines:
                if line == "":
                    if data:
                        event = Event(name, json.loads("\n".join(data)), event_id)
                        self.seen.append(event)
                        return event
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = value
        raise EOFError("the stream ended")

    async def until(self, match: Callable[[Event], bool], timeout: float = 10) -> Event:
        """The first event `match` accepts, among those read and not matched yet, then those that follow."""
        for event in self.inbox:
            if match(event):
                self.inbox.remove(event)
                return event
        with trio.fail_after(timeout):
            while True:
                event = await self.next()
                if match(event):
                    return event
                self.inbox.append(event)

    async def named(self, name: str, timeout: float = 10, **fields: Any) -> Event:
        """The next event of this name whose data has these fields."""
        return await self.until(lambda e: e.name == name and all(e.data.get(k) == v for k, v in fields.items()),
                                timeout)

    def frames(self) -> list[Event]:
        return [e for e in self.seen if e.name == "frame"]


@asynccontextmanager
async def live(http: httpx.AsyncClient, headers: dict[str, str] | None = None,
               **query: Any) -> AsyncIterator[LiveReader]:
    """Open the stream, read its hello; the reader is ready for what follows."""
    async with http.stream("GET", "/api/live", params={k: v for k, v in query.items() if v is not None},
                           headers={"Accept": "text/event-stream", **(headers or {})}, timeout=httpx.Timeout(30, read=None)) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = LiveReader(response)
        hello = await reader.next()
        assert hello.name == "hello", hello
        yield reader
