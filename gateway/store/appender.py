"""Where the frame log and meter values are written: the writer process, or the database thread.

Both take rows from the event loop without waiting (`submit`) and can be awaited until everything
submitted so far is committed (`sync`). Kinds of rows and their SQL: gateway/store/writer/rows.py.
"""

from __future__ import annotations

import collections
import fcntl
import marshal
import os
import subprocess
import sys
from pathlib import Path

import structlog
import trio

from .writer.rows import apply as apply_rows
from .writer.process import FAULT, HEADER, URL_ENV, encode
from . import unwritten
from .db import Database, StoreClosed, bulk
from .health import DATABASE, WRITER, StoreUnavailable
from .pg.connection import on_postgresql

log = structlog.get_logger("gateway.store")

LINGER = 0.005  # seconds submitted rows wait for more, so that a busy gateway commits them together
PIPE_SIZE = 1 << 20
START_TIMEOUT = 60.0  # a small board imports slowly
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0  # a writer the file keeps failing is tried again at most this far apart
MAX_FAILURES = 3  # writers in a row that die young, committing nothing, before the database thread takes over
STEADY_SECONDS = 60.0
CLOSE_TIMEOUT = 30.0
# On a PostgreSQL server, rows the writer could not ship yet are held here, and the chargers answered as usual,
# through a short outage of the server (a fail-over): up to this many rows, then refused as for a failing file.
HOLD_ROWS = 500_000


@bulk
def _append(conn, calls: list[tuple[str, list[tuple]]]) -> list[None]:
    if getattr(conn, "dialect", None) == "postgresql":
        from .pg.rows import apply as apply_pg
        apply_pg(conn, calls)
    else:
        apply_rows(conn, calls)
    return [None] * len(calls)


class ThreadAppender:
    """On the database thread: for a database without a file (":memory:"), which no other process can open."""

    def __init__(self, db: Database):
        self._db = db

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    def submit(self, kind: str, rows: list[tuple]) -> None:
        self._db.submit(_append, kind, rows)

    async def write(self, kind: str, rows: list[tuple]) -> None:
        await self._db.run(_append, kind, rows)

    async def sync(self) -> None:
        """Nothing to wait for: the thread runs jobs in order, so any later job sees these rows."""

    @property
    def fault(self) -> str | None:
        """Why rows submitted now may not be kept (the database thread's fault), or None."""
        return self._db.health.faults.get(DATABASE)

    async def close(self) -> None:
        pass


class WriterFailed(RuntimeError):
    pass


class WriterFault(WriterFailed):
    """The file failed the writer (locked, full, read-only, damaged): not the writer's fault."""


class ProcessAppender:
    """Hands batches of rows to a writer process (gateway/store/writer/process.py) through a pipe.

    A batch is kept until the process says it is committed. If the process dies, another is started
    and given again what it had not acknowledged (a batch committed in the instant before a death
    would be written twice; nothing is lost). If writers keep dying, or one does not finish when the
    gateway closes, the database thread takes over the rest. Only close() ends it: a cancelled
    gateway still commits what its chargers were answered for.

    A writer that the file fails (locked for too long, disk full, read-only) says why and ends: its
    rows are kept here, the store reports itself degraded, and another writer is tried, further apart
    each time (up to MAX_RESTART_DELAY), for as long as it takes; the first that commits clears it.
    A file's fault may last (a full disk): new rows are refused meanwhile. A PostgreSQL server's is a
    restart or a fail-over: new rows are held, up to HOLD_ROWS, and shipped once a writer reaches it; a
    gateway that stops before then keeps them in its `unwritten` folder (unwritten.py), and the next one to
    start with that folder ships them first.
    """

    def __init__(self, db: Database, unwritten_folder: Path | None = None):
        self._db = db
        self.restarts = 0
        self.pid: int | None = None
        self._process: trio.Process | None = None
        self._inbox = bytearray()
        self._pending: list[tuple[str, list[tuple]]] = []
        self._unacked: collections.deque[tuple[int, bytes]] = collections.deque()
        self._seq = 0  # the last batch handed over
        self._committed = 0  # the last batch committed
        self._wake = trio.Event()
        self._hurry = trio.Event()
        self._acked = trio.Event()
        self._closing = False
        self._fault: str | None = None  # why the current writer ended, when the file failed it
        self._started = False
        self._finished = trio.Event()
        self.fallback: ThreadAppender | None = None  # the database thread, once the process is given up
        self._holds = on_postgresql(db)  # rows are held through the server's fault (see HOLD_ROWS)
        self.held_rows = 0  # rows submitted and not committed yet
        self._rows_of: dict[int, int] = {}  # seq -> rows in that batch
        self._close_asked = trio.Event()
        # On a server: where rows not shipped at close are kept, and found again at the next start
        self._folder = unwritten_folder if self._holds else None
        self._claimed: list[Path] = []  # files of an earlier stop whose rows are in _pending or _unacked
        self._claimed_seq: int | None = None  # the batch that carries them

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a writer process until close(); started once the first one is ready (else raises)."""
        self._started = True
        ready_once = False
        failures = 0
        faults = 0  # writers in a row that the file failed
        if self._folder is not None:
            self._claimed, batch = unwritten.claim(self._folder)
            if batch:
                self._pending[:0] = batch
                self.held_rows += sum(len(rows) for _, rows in batch)
                log.warning("rows kept at an earlier stop are being shipped", files=len(self._claimed),
                            rows=self.held_rows, folder=str(self._folder))
        try:
            with trio.CancelScope(shield=True):
                while True:
                    self._fault = None
                    try:
                        process = await self._spawn()
                    except WriterFault:
                        if not ready_once:
                            self._release_claims()
                            raise
                        progressed = False
                    except (OSError, WriterFailed) as exc:
                        if not ready_once:
                            self._release_claims()
                            raise WriterFailed(f"the database writer process could not start: {exc}") from exc
                        log.error("database writer could not start", error=str(exc))
                        progressed = False
                    else:
                        if not ready_once:
                            ready_once = True
                            task_status.started()
                        began = trio.current_time()
                        # it committed something, or lived a while: not a writer that cannot work
                        progressed = await self._serve(process) or trio.current_time() - began > STEADY_SECONDS
                        if self._closing and not self._unacked and not self._pending:
                            return
                        log.error("database writer ended", code=process.returncode, fault=self._fault,
                                  unacknowledged=len(self._unacked))
                    if self._fault is not None:  # the file's fault, not the writer's: wait for it to clear
                        faults = 0 if progressed else faults + 1
                    else:
                        failures = 0 if progressed else failures + 1
                        faults = 0
                    if self._closing and self._folder is not None:
                        self._keep_unwritten()  # the server cannot take them now: the next start ships them
                        return
                    if self._closing or failures >= MAX_FAILURES:
                        await self._fall_back()
                        return
                    self.restarts += 1
                    with trio.move_on_after(min(RESTART_DELAY * 2 ** faults, MAX_RESTART_DELAY)):
                        await self._close_asked.wait()
        finally:
            self._finished.set()
            self._acked.set()  # whoever waits looks again (and at the fallback)

    def submit(self, kind: str, rows: list[tuple]) -> None:
        if self.fallback is not None:
            self.fallback.submit(kind, rows)
            return
        if self._closing:
            raise StoreClosed("the database is closed")
        self._pending.append((kind, rows))
        self.held_rows += len(rows)
        self._wake.set()

    async def write(self, kind: str, rows: list[tuple]) -> None:
        self.submit(kind, rows)
        await self.sync()

    @property
    def fault(self) -> str | None:
        """Why rows submitted now may not be kept soon (the file fails the writer), or None."""
        if self.fallback is not None:
            return self.fallback.fault
        fault = self._db.health.faults.get(WRITER)
        if fault is not None and self._holds and self.held_rows < HOLD_ROWS:
            return None
        return fault

    @property
    def behind(self) -> int:
        """Batches handed over or waiting to be, not yet committed: how far the writer is behind."""
        if self.fallback is not None:
            return 0
        return self._seq - self._committed + bool(self._pending)

    async def sync(self) -> None:
        """Return once everything submitted so far is committed.

        Raises StoreUnavailable while the file fails the writer: the rows are kept, and written once
        it clears; whoever waits for them must not wait that long."""
        target = self._seq + bool(self._pending)
        if self._committed < target:
            self._hurry.set()
            self._wake.set()
            while self._committed < target and not self._finished.is_set():
                if (fault := self._db.health.faults.get(WRITER)) is not None and self.fallback is None:
                    raise StoreUnavailable(fault)
                await self._acked.wait()
        if self.fallback is not None:
            await self.fallback.sync()

    async def close(self) -> None:
        """Commit everything submitted, then end the writer process."""
        self._closing = True
        self._close_asked.set()
        if not self._started:
            await self._fall_back()
            return
        self._hurry.set()
        self._wake.set()
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._finished.wait()
            return
        log.error("database writer did not finish; the database thread writes the rest",
                  unacknowledged=len(self._unacked))
        if self._process is not None and self._process.returncode is None:
            self._process.kill()  # run() sees it end, and hands what is left to the database thread
        await self._finished.wait()

    async def _spawn(self) -> trio.Process:
        server = getattr(self._db, "url", None)  # PostgreSQL: the URL goes in the environment, not the arguments
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "gateway.store.writer.process", "-" if server else self._db.path],
            env={**os.environ, URL_ENV: server} if server else None, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True)  # out of the terminal's group: Ctrl-C is for the gateway to handle
        self._process, self.pid, self._inbox = process, process.pid, bytearray()
        try:  # fewer, larger writes into the pipe (Linux; up to /proc/sys/fs/pipe-max-size)
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except (AttributeError, OSError):
            pass
        with trio.move_on_after(START_TIMEOUT):
            message = await self._receive(process.stdout)
            if message == (0, []):  # it has opened the database
                return process
            if message is not None and message[0] == FAULT:
                self._failed(message[1][0])
                await self._reap(process)
                raise WriterFault(f"the database writer cannot use {self._where}: {message[1][0]}")
        await self._reap(process)
        raise WriterFailed(f"it ended before it was ready (exit code {process.returncode})")

    async def _serve(self, process: trio.Process) -> bool:
        """Feed one writer and read its acknowledgements until it ends; whether it committed anything."""
        progressed = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ship, process.stdin)
                while (message := await self._receive(process.stdout)) is not None:
                    self._acknowledged(*message)
                    progressed = progressed or message[0] > 0
                nursery.cancel_scope.cancel()
        finally:
            await self._reap(process)
        return progressed

    async def _reap(self, process: trio.Process) -> None:
        await process.stdin.aclose()  # it commits what it has, then ends
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()

    def _keep_unwritten(self) -> None:
        """Write what was not committed to a file of the folder, for the next start (then the claimed files
        of the last stop, whose rows are in it, go)."""
        assert self._folder is not None
        batch = self._take_uncommitted()
        rows = sum(len(r) for _, r in batch)
        if batch:
            try:
                path = unwritten.keep(self._folder, batch)
            except (OSError, ValueError) as exc:
                log.error("database unreachable at close: frames and meter values not written", rows=rows,
                          folder=str(self._folder), error=repr(exc))
                return  # the claimed files stay: their rows are shipped by a later start
            log.warning("database unreachable at close: frames and meter values kept for the next start",
                        rows=rows, file=str(path))
        unwritten.forget(self._claimed)
        self._claimed = []

    def _take_uncommitted(self) -> list[tuple[str, list[tuple]]]:
        """What no writer has committed, in order (the batches handed over, then those waiting), taken from here."""
        items = [item for _, data in self._unacked for item in marshal.loads(data[HEADER.size:])[1]] + self._pending
        self._unacked.clear()
        self._pending = []
        return items

    def _release_claims(self) -> None:
        """A store that never started leaves the files it claimed to the next one."""
        unwritten.release(self._claimed)
        self._claimed, self._pending, self.held_rows = [], [], 0

    async def _fall_back(self) -> None:
        """Give what was not committed, and all later rows, to the database thread."""
        self.fallback = ThreadAppender(self._db)
        items = self._take_uncommitted()
        self._rows_of.clear()
        self.held_rows = 0
        if items:
            log.error("database writer given up; the database thread writes frames and meter values",
                      items=len(items))
        try:
            for kind, rows in items:
                self.fallback.submit(kind, rows)
            await self.fallback.sync()
        except StoreClosed:
            log.error("database closed: frames and meter values not written", items=len(items))

    async def _ship(self, stdin: trio.abc.SendStream) -> None:
        try:
            for _, data in list(self._unacked):  # a new process: first what the last one did not commit
                await stdin.send_all(data)
            if not self._unacked and self._db.health.faults.get(WRITER):
                # Opening the file proves little (a full disk opens): an empty transaction's
                # acknowledgement says whether the fault is over, also when nothing waits.
                self._seq += 1
                self._unacked.append((self._seq, encode((self._seq, []))))
                await stdin.send_all(self._unacked[-1][1])
            while True:
                await self._wake.wait()
                if not self._hurry.is_set():
                    with trio.move_on_after(LINGER):
                        await self._hurry.wait()
                self._wake, self._hurry = trio.Event(), trio.Event()
                if self._pending:
                    batch, self._pending = self._pending, []
                    self._seq += 1
                    if self._claimed and self._claimed_seq is None:  # the first batch carries the kept rows
                        self._claimed_seq = self._seq
                    self._rows_of[self._seq] = sum(len(rows) for _, rows in batch)
                    data = self._encode(batch)
                    self._unacked.append((self._seq, data))
                    await stdin.send_all(data)
                if self._closing and not self._pending:
                    await stdin.aclose()
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the process is gone: _serve sees it end

    def _encode(self, batch: list[tuple[str, list[tuple]]]) -> bytes:
        try:
            return encode((self._seq, batch))
        except ValueError:  # a value marshal cannot carry (a bug where the rows were made): keep the others
            kept = []
            for kind, rows in batch:
                try:
                    encode(rows)
                    kept.append((kind, rows))
                except ValueError as exc:
                    log.error("database write failed", error=f"{kind}: {len(rows)} rows not written: {exc!r}")
            return encode((self._seq, kept))

    async def _receive(self, stdout: trio.abc.ReceiveStream) -> tuple | None:
        """The writer's next message, or None once it has ended."""
        while True:
            if len(self._inbox) >= HEADER.size:
                (size,) = HEADER.unpack_from(self._inbox)
                if len(self._inbox) >= HEADER.size + size:
                    message = marshal.loads(self._inbox[HEADER.size:HEADER.size + size])
                    del self._inbox[:HEADER.size + size]
                    return message
            chunk = await stdout.receive_some(65536)
            if not chunk:
                return None
            self._inbox += chunk

    @property
    def _where(self) -> str:
        from .pg.connection import redact
        return redact(self._db.path)

    def _failed(self, reason: str) -> None:
        self._fault = reason
        self._db.health.failed(WRITER, reason)
        self._acked.set()  # whoever waits in sync() looks at the fault
        self._acked = trio.Event()

    def _acknowledged(self, seq: int, errors: list[str]) -> None:
        if seq == FAULT:
            self._failed(errors[0])
            return
        if seq > 0:  # it committed: the file works again
            self._db.health.recovered(WRITER)
        for error in errors:
            log.error("database write failed", error=error)
        self._committed = max(self._committed, seq)
        while self._unacked and self._unacked[0][0] <= seq:
            seq_done, _ = self._unacked.popleft()
            self.held_rows -= self._rows_of.pop(seq_done, 0)
        if self._claimed_seq is not None and self._committed >= self._claimed_seq:
            log.info("rows kept at an earlier stop are written", files=len(self._claimed))
            unwritten.forget(self._claimed)
            self._claimed, self._claimed_seq = [], None
        self._acked.set()
        self._acked = trio.Event()


Appender = ThreadAppender | ProcessAppender


def appender_for(db: Database, unwritten_folder: Path | None = None) -> Appender:
    return ThreadAppender(db) if db.path == ":memory:" else ProcessAppender(db, unwritten_folder)
