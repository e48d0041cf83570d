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
RESTART_DELAY = 1.0
CLOSING_ATTEMPTS = 3  # writer processes tried while closing before what is left is given up


@bulk
def _append(conn, calls: list[tuple[str, list[tuple]]]) -> list[None]:
    appends.apply(conn, calls)
    return [None] * len(calls)


def _nothing(conn) -> None:
    return None


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
        await self._db.run(_nothing)  # one queue: every earlier write is committed first

    async def close(self) -> None:
        pass


class ProcessAppender:
    """Hands batches of rows to a writer process (writer.py) through a pipe.

    A batch is kept until the process says it is committed; if the process dies, another is started
    and given again what was not acknowledged (a batch committed in the instant before a death, and
    not yet acknowledged, would be written twice; nothing is lost).
    """

    def __init__(self, path: str):
        self.path = path
        self.restarts = 0
        self.pid: int | None = None
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

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a writer process until close(); started once the first one runs."""
        self._started = True
        attempts_left = CLOSING_ATTEMPTS
        try:
            while True:
                process = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "gateway.store.writer", self.path],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    start_new_session=True)  # out of the terminal's group: Ctrl-C is for the gateway to handle
                self.pid = process.pid
                try:  # fewer, larger writes into the pipe (Linux; up to /proc/sys/fs/pipe-max-size)
                    fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                except (AttributeError, OSError):
                    pass
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._ship, process.stdin)
                        task_status.started()
                        task_status = trio.TASK_STATUS_IGNORED
                        await self._read_acks(process.stdout)
                        nursery.cancel_scope.cancel()
                finally:
                    with trio.CancelScope(shield=True):
                        await process.stdin.aclose()  # it commits what it has, then ends
                        with trio.move_on_after(30):
                            await process.wait()
                        if process.returncode is None:
                            process.kill()
                            await process.wait()
                if not self._unacked and (self._closing or process.returncode == 0):
                    return
                attempts_left -= self._closing
                if attempts_left == 0:
                    log.error("database writer failed; frames and meter values not written",
                              batches=len(self._unacked) + bool(self._pending))
                    return
                log.error("database writer ended; starting another", code=process.returncode,
                          unacknowledged=len(self._unacked))
                self.restarts += 1
                await trio.sleep(RESTART_DELAY)
        finally:
            self._finished.set()
            self._acked.set()  # nobody waits for a commit that will not come

    def submit(self, kind: str, rows: list[tuple]) -> None:
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
        if self._committed >= target:
            return
        self._hurry.set()
        self._wake.set()
        while self._committed < target and not self._finished.is_set():
            await self._acked.wait()

    async def close(self) -> None:
        """Commit everything submitted, then end the writer process."""
        self._closing = True
        if not self._started:
            return
        self._hurry.set()
        self._wake.set()
        await self._finished.wait()

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
            return  # the process is gone: _read_acks sees it end

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

    async def _read_acks(self, stdout: trio.abc.ReceiveStream) -> None:
        buffer = bytearray()
        while True:
            chunk = await stdout.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            start = 0
            while len(buffer) - start >= HEADER.size:
                (size,) = HEADER.unpack_from(buffer, start)
                if len(buffer) - start - HEADER.size < size:
                    break
                seq, errors = marshal.loads(buffer[start + HEADER.size:start + HEADER.size + size])
                start += HEADER.size + size
                for error in errors:
                    log.error("database write failed", error=error)
                self._committed = seq
                while self._unacked and self._unacked[0][0] <= seq:
                    self._unacked.popleft()
                self._acked.set()
                self._acked = trio.Event()
            del buffer[:start]


def appender_for(db: Database) -> ThreadAppender | ProcessAppender:
    return ThreadAppender(db) if db.path == ":memory:" else ProcessAppender(db.path)
