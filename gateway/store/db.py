"""One SQLite connection on one database thread, with group commit.

Trio tasks hand the thread small functions `fn(conn, *args)`. The thread takes
every job waiting in its queue, runs them in one transaction (each under its
own SAVEPOINT, so one failing job does not undo the others), commits once, and
only then wakes the callers. Under load many frames share one commit; a caller
that awaits `run()` knows its write is durable.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeVar

import outcome
import structlog
import trio

T = TypeVar("T")
log = structlog.get_logger("gateway.store")

MAX_BATCH = 2000
_STOP = object()
MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class StoreClosed(RuntimeError):
    pass


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every migration, in order.

    Read from the repository's schemas/sqlite/, or from the copy that a wheel
    ships as gateway/migrations/.
    """
    repo = Path(__file__).resolve().parents[2] / "schemas" / "sqlite"
    folder = repo if repo.is_dir() else resources.files("gateway").joinpath("migrations")
    found = []
    for file in folder.iterdir():
        m = MIGRATION_NAME.match(file.name)
        if m:
            found.append((int(m.group(1)), file.name, file.read_text("utf-8")))
    return sorted(found)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply migrations newer than PRAGMA user_version; return the new version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, name, sql in migration_files():
        if number > version:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
            log.info("migration applied", migration=name)
            version = number
    return version


def connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit the charger was told about survives a power cut.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class _Job:
    __slots__ = ("fn", "args", "deliver")

    def __init__(self, fn: Callable[..., Any], args: tuple, deliver: Callable[[Any], None] | None):
        self.fn = fn
        self.args = args
        self.deliver = deliver


class Database:
    def __init__(self, path: str):
        self.path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0  # batches committed, for tests and metrics
        self.jobs = 0

    async def open(self) -> None:
        ready: list[outcome.Outcome] = []
        started = threading.Event()

        def main() -> None:
            try:
                conn = connect(self.path)
                migrate(conn)
            except BaseException as exc:  # reported to open()
                ready.append(outcome.Error(exc))
                started.set()
                return
            ready.append(outcome.Value(None))
            started.set()
            self._serve(conn)

        self._thread = threading.Thread(target=main, name="gateway-db", daemon=True)
        self._thread.start()
        await trio.to_thread.run_sync(started.wait)
        ready[0].unwrap()

    def _serve(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    return
                batch = [job]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        results: list[outcome.Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                result = outcome.capture(job.fn, conn, *job.args)
                if isinstance(result, outcome.Error):
                    conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append(result)
            conn.execute("COMMIT")
            self.commits += 1
            self.jobs += len(batch)
        except sqlite3.Error as exc:  # the commit itself failed: nothing was kept
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("database batch failed", error=str(exc), jobs=len(batch))
            results = [outcome.Error(exc) for _ in batch]
        for job, result in zip(batch, results):
            if job.deliver is not None:
                job.deliver(result)
            elif isinstance(result, outcome.Error):
                log.error("database write failed", error=repr(result.error), job=job.fn.__name__)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the database thread; return once it is committed."""
        if self._closed:
            raise StoreClosed("the database is closed")
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: list[outcome.Outcome] = []

        def deliver(result: outcome.Outcome) -> None:
            box.append(result)
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        self._queue.put(_Job(fn, args, deliver))
        await done.wait()
        return box[0].unwrap()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue a write without waiting for it (failures are logged)."""
        if self._closed:
            raise StoreClosed("the database is closed")
        self._queue.put(_Job(fn, args, None))

    async def close(self) -> None:
        """Finish every queued job, commit, and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread is not None:
            await trio.to_thread.run_sync(self._thread.join)
