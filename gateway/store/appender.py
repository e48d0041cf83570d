"""Where the frame log and meter values are written: the writer process, or the database thread.

Both take rows from the event loop without waiting (`submit`) and can be awaited until everything
submitted so far is committed (`sync`). Kinds of rows and their SQL: appends.py.
"""

from __future__ import annotations

import collections
import fcntl
import marshal
import subprocess
import sys

import structlog
import trio

from . import appends
from .db import Database, StoreClosed, bulk
from .writer import HEADER, encode

log = structlog.get_logger("gateway.store")

LINGER = 0.005  # seconds submitted rows wait for more, so that a busy gateway commits them together
PIPE_SIZE = 1 << 20
START_TIMEOUT = 60.0  # a small board imports slowly
RESTART_DELAY = 1.0
MAX_FAILURES = 3  # writers in a row that die young, committing nothing, before the database thread takes over
STEADY_SECONDS = 60.0
CLOSE_TIMEOUT = 30.0


@bulk
def _append(conn, calls: list[tuple[str, list[tuple]]]) -> list[None]:
    appends.apply(conn, calls)
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

    async def close(self) -> None:
        pass


class WriterFailed(RuntimeError):
    pass


class ProcessAppender:
    """Hands batches of rows to a writer process (writer.py) through a pipe.

    A batch is kept until the process says it is committed. If the process dies, another is started
    and given again what it had not acknowledged (a batch committed in the instant before a death
    would be written twice; nothing is lost). If writers keep dying, or one does not finish when the
    gateway closes, the database thread takes over the rest. Only close() ends it: a cancelled
    gateway still commits what its chargers were answered for.
    """

    def __init__(self, db: Database):
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
        self._started = False
        self._finished = trio.Event()
        self.fallback: ThreadAppender | None = None  # the database thread, once the process is given up

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a writer process until close(); started once the first one is ready (else raises)."""
        self._started = True
        ready_once = False
        failures = 0
        try:
            with trio.CancelScope(shield=True):
                while True:
                    try:
                        process = await self._spawn()
                    except (OSError, WriterFailed) as exc:
                        if not ready_once:
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
                        log.error("database writer ended", code=process.returncode,
                                  unacknowledged=len(self._unacked))
                    failures = 0 if progressed else failures + 1
                    if self._closing or failures >= MAX_FAILURES:
                        await self._fall_back()
                        return
                    self.restarts += 1
                    await trio.sleep(RESTART_DELAY)
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
        self._wake.set()

    async def write(self, kind: str, rows: list[tuple]) -> None:
        self.submit(kind, rows)
        await self.sync()

    async def sync(self) -> None:
        """Return once everything submitted so far is committed."""
        target = self._seq + bool(self._pending)
        if self._committed < target:
            self._hurry.set()
            self._wake.set()
            while self._committed < target and not self._finished.is_set():
                await self._acked.wait()
        if self.fallback is not None:
            await self.fallback.sync()

    async def close(self) -> None:
        """Commit everything submitted, then end the writer process."""
        self._closing = True
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
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "gateway.store.writer", self._db.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True)  # out of the terminal's group: Ctrl-C is for the gateway to handle
        self._process, self.pid, self._inbox = process, process.pid, bytearray()
        try:  # fewer, larger writes into the pipe (Linux; up to /proc/sys/fs/pipe-max-size)
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except (AttributeError, OSError):
            pass
        with trio.move_on_after(START_TIMEOUT):
            if await self._receive(process.stdout) == (0, []):  # it has opened the database
                return process
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
                    progressed = True
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

    async def _fall_back(self) -> None:
        """Give what was not committed, and all later rows, to the database thread."""
        self.fallback = ThreadAppender(self._db)
        batches = [marshal.loads(data[HEADER.size:]) for _, data in self._unacked]
        self._unacked.clear()
        items = [item for _, batch in batches for item in batch] + self._pending
        self._pending = []
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
            while True:
                await self._wake.wait()
                if not self._hurry.is_set():
                    with trio.move_on_after(LINGER):
                        await self._hurry.wait()
                self._wake, self._hurry = trio.Event(), trio.Event()
                if self._pending:
                    batch, self._pending = self._pending, []
                    self._seq += 1
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

    def _acknowledged(self, seq: int, errors: list[str]) -> None:
        for error in errors:
            log.error("database write failed", error=error)
        self._committed = max(self._committed, seq)
        while self._unacked and self._unacked[0][0] <= seq:
            self._unacked.popleft()
        self._acked.set()
        self._acked = trio.Event()


def appender_for(db: Database) -> ThreadAppender | ProcessAppender:
    return ThreadAppender(db) if db.path == ":memory:" else ProcessAppender(db)
