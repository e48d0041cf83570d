"""The frame log: every frame in and out, and connection events, written in batches.

record() is appended (kept in memory, handed to the writer on size or interval, never awaited); query() and
recent() are committed reads that first hand over and wait for every frame recorded before the call.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from typing import Any, Callable

import structlog
import trio

from .. import clock
from .writer.connection import storage_fault
from .appender import Appender
from .calls import APPENDED, COMMITTED, Table, committed, durability
from .db import Database
from .health import PRUNE, StoreUnavailable
from .registry import charger_where
from .scope import Scope

PRUNE_CHUNK = 5000
PRUNE_RETRY = 60.0  # a prune the file failed is tried again this much later, then twice as late, up to prune_every
# Frames kept in memory while the file fails the writer (disk full, read-only, locked): about 50 MiB at the
# usual 500 bytes a frame, some 50 minutes of 1,000 idle chargers. Beyond it the oldest are dropped, counted
# and logged: the frame log is the record of what was said, and a long outage must not exhaust a small board.
MAX_HELD_FRAMES = 100_000
log = structlog.get_logger("gateway.store")


def _prune(conn: sqlite3.Connection, before: str) -> int:
    return conn.execute(
        "DELETE FROM frames WHERE id IN (SELECT id FROM frames WHERE at < ? LIMIT ?)", (before, PRUNE_CHUNK)
    ).rowcount


def _query(conn: sqlite3.Connection, cp_id: str | None = None, since: str | None = None, until: str | None = None,
           limit: int = 1000, *, scope: Scope) -> list[dict[str, Any]]:
    """Oldest first, every frame recorded before the call included."""
    where, scoped = charger_where(scope, "charge_point_id")
    sql, args = f"SELECT * FROM frames WHERE {where}", list(scoped)
    if cp_id is not None:
        sql += " AND charge_point_id = ?"
        args.append(cp_id)
    if since is not None:
        sql += " AND at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND at < ?"
        args.append(until)
    rows = conn.execute(sql + " ORDER BY at, id LIMIT ?", (*args, limit)).fetchall()
    return [dict(r) for r in rows]


def _recent(conn: sqlite3.Connection, cp_id: str | None = None, since: str | None = None, until: str | None = None,
            before: int | None = None, limit: int = 100, action: str | None = None, direction: str | None = None,
            text: str | None = None, *, scope: Scope) -> list[dict[str, Any]]:
    """Newest first; `before` (a frame id) pages back in time. Every frame recorded before the call included.
    `action` (an answer has its call's), `direction` (in, out, event) and `text` (in the frame, ASCII letters
    of either case: lower() on both sides, as PostgreSQL's LIKE heeds case) narrow the frames."""
    where, scoped = charger_where(scope, "charge_point_id")
    sql, args = f"SELECT * FROM frames WHERE {where}", list(scoped)
    contains = None if text is None else "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
    for clause, value in (("charge_point_id = ?", cp_id), ("at >= ?", since), ("at < ?", until),
                          ("(at, id) < (SELECT at, id FROM frames WHERE id = ?)", before), ("action = ?", action),
                          ("direction = ?", direction), ("lower(body) LIKE lower(?) ESCAPE '\\'", contains)):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    rows = conn.execute(sql + " ORDER BY at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
    return [dict(r) for r in rows]


def _since(conn: sqlite3.Connection, cp_id: str | None, since: str, limit: int, *,
           scope: Scope) -> tuple[list[dict[str, Any]], int]:
    """The frames from `since` on, oldest first, in the order recorded (the live stream's catch-up): at most
    `limit`, the newest when more are kept, and how many older ones were left out. Each frame has the schema
    violations kept with its text as their example (`violations`)."""
    where, scoped = charger_where(scope, "charge_point_id")
    sql, args = f"FROM frames WHERE {where} AND at >= ?", [*scoped, since]
    if cp_id is not None:
        sql += " AND charge_point_id = ?"
        args.append(cp_id)
    rows = conn.execute(f"SELECT * {sql} ORDER BY at, id LIMIT ?", (*args, limit + 1)).fetchall()
    left_out = 0
    if len(rows) > limit:
        left_out = conn.execute(f"SELECT count(*) {sql}", args).fetchone()[0] - limit
        rows = conn.execute(f"SELECT * {sql} ORDER BY at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()[::-1]
    frames = [dict(r) for r in rows]
    # The violations kept with a frame's text as their example (the latest frame that broke each rule)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    texts = sorted({(f["charge_point_id"], f["body"]) for f in frames if f["direction"] == "in" and f["body"]})
    for start in range(0, len(texts), 400):
        chunk = texts[start:start + 400]
        for v in conn.execute(
                "SELECT charge_point_id, action, kind, code, path, message, example FROM violations WHERE "
                + " OR ".join(["(charge_point_id = ? AND example = ?)"] * len(chunk)),
                [value for pair in chunk for value in pair]):
            found.setdefault((v["charge_point_id"], v["example"]), []).append(
                {"action": v["action"], "kind": v["kind"], "code": v["code"], "path": v["path"],
                 "message": v["message"]})
    for f in frames:
        f["violations"] = found.get((f["charge_point_id"], f["body"]), [])
    return frames, left_out


class FrameLog(Table):
    """Buffers frames in memory and writes them in one batch per flush, never one commit per frame."""

    def __init__(self, db: Database, flush_interval: float = 0.5, flush_size: int = 500,
                 retention_days: float = 30.0, appender: Appender | None = None):
        super().__init__(db, appender)
        self._flush_interval = flush_interval
        self._flush_size = flush_size
        self._retention = timedelta(days=retention_days) if retention_days > 0 else None
        self._buffer: list[tuple] = []
        self._wake = trio.Event()
        self.written = 0  # frames written
        self.flushes = 0  # jobs that wrote them
        self.max_held = MAX_HELD_FRAMES
        self.dropped = 0  # frames dropped because a storage fault lasted past max_held of them
        self._dropping = False
        # Told of each frame as it is recorded, with the schema violations found in it (the live stream:
        # ChargerService sets it); it must not wait or fail.
        self.listener: Callable[[tuple, tuple], None] | None = None

    @durability(APPENDED)
    def record(self, cp_id: str, direction: str, body: str | None, *, message_type: int | None = None,
               unique_id: str | None = None, action: str | None = None, at: str | None = None,
               violations: tuple = ()) -> None:
        """Keep a frame for the next flush: never waits (the hot path); query() and recent() see it.
        `violations`: what the schema found in it, for the listener (the frame log keeps them apart)."""
        row = (at or clock.iso(), cp_id, direction, message_type, unique_id, action, body)
        self._buffer.append(row)
        if len(self._buffer) >= self._flush_size:
            self._wake.set()
        if self.listener is not None:
            self.listener(row, violations)

    @durability(COMMITTED)
    async def flush(self, *, closing: bool = False) -> None:
        """Return once every frame recorded so far is committed, also those another flush took.

        While the file fails the writer the frames stay here, at most `max_held` of them (the newest), and
        StoreUnavailable says why; the flush after the fault hands them over. At `closing` they are handed
        over whatever the fault: the appender's close writes them, or says why it cannot."""
        fault = None if closing else self._appender.fault
        if fault is not None:
            excess = len(self._buffer) - self.max_held
            if excess > 0:
                del self._buffer[:excess]
                if not self._dropping:
                    log.error("frame log: storage fault outlasted the frames kept in memory; dropping the oldest",
                              kept=self.max_held, reason=fault)
                self._dropping = True
                self.dropped += excess
            raise StoreUnavailable(fault)
        if self._dropping:
            log.warning("frame log: storage fault over; frames dropped while it lasted", dropped=self.dropped)
            self._dropping = False
        if not self._buffer:
            await self._appender.sync()  # a flush in progress may hold them: a query must not run ahead of it
            return
        batch, self._buffer = self._buffer, []
        await self._appender.write("frames", batch)
        self.written += len(batch)
        self.flushes += 1

    async def appended_committed(self) -> None:
        """What a reader of the frame log waits for: the frames recorded so far handed over and committed."""
        await self.flush()

    @durability(COMMITTED)
    async def prune(self) -> int:
        """Delete frames older than the retention, a chunk per committed job so writers are not held up."""
        if self._retention is None:
            return 0
        before = clock.iso(clock.now() - self._retention)
        total = 0
        while True:
            deleted = await self._db.run(_prune, before)
            total += deleted
            if deleted < PRUNE_CHUNK:
                return total
            await trio.sleep(0)

    async def run(self, prune_every: float = 3600.0) -> None:
        """Flush on size or interval, prune now and then; flush once more when cancelled.

        While the file fails the writer, flushed frames wait in the appender (which reports the
        fault). A prune the file fails (locked, damaged index: `database disk image is malformed`)
        is reported and tried again later, never allowed to stop the gateway."""
        next_prune = trio.current_time()
        retry = PRUNE_RETRY
        try:
            while True:
                with trio.move_on_after(self._flush_interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                try:
                    await self.flush()
                except StoreUnavailable:
                    pass  # the frames are kept by the appender, and written once the fault clears
                if trio.current_time() >= next_prune:
                    try:
                        await self.prune()
                    except sqlite3.Error as exc:
                        reason = str(exc) if isinstance(exc, StoreUnavailable) else storage_fault(exc) or repr(exc)
                        self._db.health.failed(PRUNE, f"{reason}; tried again in {retry:g} s")
                        next_prune = trio.current_time() + retry
                        retry = min(retry * 2, prune_every)
                    else:
                        self._db.health.recovered(PRUNE)
                        next_prune = trio.current_time() + prune_every
                        retry = PRUNE_RETRY
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await self.flush(closing=True)
                except StoreUnavailable:  # the appender's close writes them, or says why it cannot
                    pass

    query = committed(_query, after_appended=True)
    recent = committed(_recent, after_appended=True)
    since = committed(_since, after_appended=True)
