"""The live stream: GET /api/live, server-sent events (docs/api.md section 14).

Each browser gets a feed of the event hub with a bounded buffer (`console.live_buffer`): the charger's
message loop hands it events without waiting, and a browser that does not read loses them and is told
how many. With `since` or `Last-Event-ID` the stream first replays the stored frames (the frame log),
then says `caughtUp`, then goes on live, each frame sent once across the seam (gateway/live.py).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import trio
from quart import Response, request

from .. import clock
from ..config import ConsoleConfig
from ..events import Hub, LiveFeed
from ..live import (KEEP_ALIVE, Cursor, FrameSeen, ResumePoint, Seam, event_text, frame_data, resume_point,
                    stored_row, topics)
from ..store import scope
from ..store.store import Store
from . import params
from .errors import ApiError
from .routes import VIEWER, Routes
from .schemas import op, query
from .services import services

routes = Routes("live_api", __name__, "/api")

KEEP_ALIVE_SECONDS = 15.0  # a comment line after this much silence: proxies and the browser see the stream alive
BATCH = 200  # events written in one piece when more are waiting
VISIBILITY_SECONDS = 10.0  # how long a stream trusts what it learned of a charger's tenant


class LiveStream:
    """One browser's stream: its feed, its filters, and where it resumes."""

    def __init__(self, hub: Hub, store: Store, settings: ConsoleConfig, caller: scope.Scope, cp_id: str | None,
                 wanted: frozenset[str] | None, resume: ResumePoint | None):
        self.hub = hub
        self.store = store
        self.settings = settings
        self.caller = caller
        self.cp_id = cp_id
        self.wanted = wanted
        self.resume = resume
        self.cursor = Cursor(resume)
        self._visible: dict[str, tuple[bool, float]] = {}  # charge point id -> (the caller sees it, until)
        self._gone = False
        self._feed: LiveFeed | None = None

    def close(self) -> None:
        """The browser went away: the stream ends."""
        self._gone = True
        if self._feed is not None:
            self._feed.close()

    def _wants(self, name: str) -> bool:
        return self.wanted is None or name in self.wanted

    async def _sees(self, cp_id: str | None) -> bool:
        """Whether the caller may see events about `cp_id` (None: platform-wide, for platform users only)."""
        if cp_id is None:
            return self.cp_id is None and self.caller.tenants is None
        if self.cp_id is not None and cp_id != self.cp_id:
            return False
        if self.caller.tenants is None:
            return True
        known = self._visible.get(cp_id)
        now = trio.current_time()
        if known is None or known[1] < now:
            with scope.acting_as(self.caller):
                known = (await self.store.registry.visible(cp_id), now + VISIBILITY_SECONDS)
            self._visible[cp_id] = known
        return known[0]

    async def body(self) -> AsyncIterator[str]:
        with self.hub.watch(self.settings.live_buffer) as feed:
            self._feed = feed
            if self._gone:
                return
            watching_since = clock.iso()
            catch_up = self.resume is not None and self._wants("frame")
            yield event_text("hello", {"serverTime": clock.iso(), "buffer": feed.buffer, "catchUp": catch_up})
            seam = None
            replayed = 0
            if catch_up:
                assert self.resume is not None
                with scope.acting_as(self.caller):
                    rows, left_out = await self.store.frames.since(self.cp_id, self.resume.at,
                                                                   self.settings.live_catch_up)
                if left_out:
                    yield event_text("lost", {"count": left_out})
                skip = self.resume.skip
                replay = []
                for record in rows:
                    row = stored_row(record)
                    if skip and row[0] == self.resume.at:
                        skip -= 1
                        continue
                    replay.append(event_text("frame", frame_data(row, (), record["id"]), self.cursor.next_id(row[0])))
                    replayed += 1
                    if len(replay) >= BATCH:
                        yield "".join(replay)
                        replay = []
                if replay:
                    yield "".join(replay)
                seam = Seam((stored_row(r) for r in rows), watching_since)
            yield event_text("caughtUp", {"frames": replayed})
            while True:
                event: Any = None
                try:
                    with trio.move_on_after(KEEP_ALIVE_SECONDS):
                        event = await feed.receive()
                except trio.EndOfChannel:  # closed: the browser went away
                    return
                lost = feed.take_lost()
                if lost:
                    yield event_text("lost", {"count": lost})
                if event is None:
                    yield KEEP_ALIVE
                    continue
                batch = [event]
                while len(batch) < BATCH:
                    try:
                        batch.append(feed.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                out = [text for text in [await self._text(e, seam) for e in batch] if text]
                if out:
                    yield "".join(out)

    async def _text(self, event: Any, seam: Seam | None) -> str | None:
        """The event as the browser reads it, or None when this stream does not carry it."""
        try:
            name, cp_id, data = event.live()
        except Exception:  # one feature's faulty event must not end everyone's stream
            return None
        if not self._wants(name) or not await self._sees(cp_id):
            return None
        if isinstance(event, FrameSeen):
            if seam is not None and seam.seen(event.row):
                return None
            return event_text(name, data, self.cursor.next_id(event.row[0]))
        return event_text(name, data)


def _live_op() -> dict[str, Any]:
    return op("live", "The live stream: frames, connections, states, readings and commands as they happen "
                      "(server-sent events)", {"type": "string"}, media="text/event-stream", errors=("400", "406"),
              description="docs/api.md section 14 lists the events. The request says `Accept: text/event-stream` "
                          "(an endless answer is not sent to a client that does not expect one: 406). Each browser holds at most "
                          "console.live_buffer unread events: one that does not read loses the rest and is told "
                          "how many (`lost`). `Last-Event-ID` (a frame's id) resumes after that frame.",
              query=[query("cp", "only this charger's events", {"type": "string"}),
                     query("topics", "a comma list of event names (frame,status,meter,...); default: every one",
                           {"type": "string"}),
                     query("since", "replay the stored frames from this time on first (ISO 8601), then go live",
                           {"type": "string", "format": "date-time"})])


@routes.route("/live", role=VIEWER, get=_live_op())
async def live() -> Response:
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise ApiError(406, "not_acceptable", "this route answers an endless stream of server-sent events: send "
                                              "Accept: text/event-stream (fetch() or EventSource)")
    try:
        wanted = topics(request.args.get("topics"))
        last = request.headers.get("Last-Event-ID", "").strip()
        resume = resume_point(last) if last else None
    except ValueError as exc:
        raise params.bad(str(exc)) from None
    if resume is None and (since := params.time("since")) is not None:
        resume = ResumePoint(since)
    svc = services()
    stream = LiveStream(svc.chargers.events, svc.chargers.store, svc.console, scope.current(),
                        request.args.get("cp") or None, wanted, resume)
    request.when_gone = stream.close  # type: ignore[attr-defined]  # app.py's connection calls it
    if getattr(request, "gone", False):  # it went before the line above
        stream.close()
    response = Response(stream.body(), content_type="text/event-stream; charset=utf-8",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.timeout = None  # it lasts as long as the browser stays
    return response
