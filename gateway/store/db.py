"""One SQLite connection on one database thread, with group commit.

Trio tasks hand the thread small functions `fn(conn, *args)`. The thread takes
every job waiting in its queue, runs them in one transaction (if one fails, the
batch is undone and each job run again alone, so the others still land), commits
once, and only then wakes the callers. A caller that awaits `run()` knows its
write is durable. The frame log and meter values go to a writer process instead
(appender.py), which shares the file's write lock with this thread.
"""

from __future__ import annotations

import os
import queue
import re
import sqlite3
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeVar

import outcome
import structlog
import trio

from .writer.connection import begin_immediate, connect, for_writing, insert_rows, storage_fault
from .health import DATABASE, StorageHealth, StoreUnavailable

__all__ = ["Database", "StoreClosed", "StoreOpenError", "StoreUnavailable", "bulk", "connect", "insert_rows", "migrate",
           "migration_files"]

T = TypeVar("T")
log = structlog.get_logger("gateway.store")

CHECK_PROBLEMS = 5  # problems quick_check reports at most
MAX_BATCH = 2000
# While another process holds the write lock, a batch waits this long for it (not LOCK_TIMEOUT) before
# its reads go ahead without it: one long wait says the fault; every batch waiting as long would stall.
FAULTED_LOCK_WAIT = 0.1
LINGER = 0.005  # seconds a batch of unawaited writes waits to grow
_STOP = object()
MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class StoreClosed(RuntimeError):
    pass


class StoreOpenError(RuntimeError):
    """The database cannot be opened, or is damaged: the message names the file and the cause."""


def check(conn: sqlite3.Connection) -> None:
    """PRAGMA quick_check: every page and b-tree of the file readable and well formed (not the
    match of indexes to their tables). Raises sqlite3.DatabaseError with what it found."""
    problems = [row[0] for row in conn.execute(f"PRAGMA quick_check({CHECK_PROBLEMS})")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("PRAGMA quick_check found: " + "; ".join(problems).replace("\n", "; "))


def open_error(path: str, exc: BaseException) -> StoreOpenError:
    """One sentence for whoever starts the gateway: the file, and what is wrong with it."""
    cause = storage_fault(exc) or str(exc)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):  # from creating the file's folder
        cause = f"{exc.filename} is not a folder"
    elif isinstance(exc, OSError) and exc.strerror:
        cause = f"{exc.strerror.lower()}: {exc.filename}" if exc.filename else exc.strerror.lower()
    if "quick_check" in str(exc):
        cause = (f"the database file is damaged ({exc}); stop the gateway and repair it, e.g. "
                 f"sqlite3 {path} '.recover' | sqlite3 repaired.db")
    return StoreOpenError(f"cannot open the database {path}: {cause}")


def take_waiting(jobs: queue.Queue, first: Any, stop: object) -> tuple[list, bool]:
    """`first` and the jobs waiting behind it, up to MAX_BATCH; True when `stop` was among them (not taken)."""
    batch = [first]
    while len(batch) < MAX_BATCH:
        try:
            more = jobs.get_nowait()
        except queue.Empty:
            break
        if more is stop:
            return batch, True
        batch.append(more)
    return batch, False


def bulk(fn: Callable[..., list]) -> Callable[..., list]:
    """Mark a job function that takes every waiting call at once: fn(conn, [args, ...]) -> [result, ...].

    The database thread hands each statement's work to SQLite without the GIL and then has
    to win the GIL back from the event loop; one statement for a whole batch of rows instead
    of one per call keeps that tug-of-war short.
    """
    fn.bulk = True  # type: ignore[attr-defined]
    return fn


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every migration, in order.

    Read from the repository's schemas/sqlite/, or from the copy that a wheel
    ships as gateway/migrations/.
    """
    return read_migrations("sqlite", "migrations")


def read_migrations(engine: str, packaged: str) -> list[tuple[int, str, str]]:
    """(number, name, sql) of schemas/<engine>/NNN_name.sql, or of the wheel's copy gateway/<packaged>/."""
    repo = Path(__file__).resolve().parents[2] / "schemas" / engine
    folder = repo if repo.is_dir() else resources.files("gateway").joinpath(packaged)
    found = []
    for file in folder.iterdir():
        m = MIGRATION_NAME.match(file.name)
        if m:
            found.append((int(m.group(1)), file.name, file.read_text("utf-8")))
    return sorted(found)


# Migrations numbered below one that databases had already reached when they were written: PRAGMA
# user_version alone would skip them there. A database migrated before the ledger (schema_migrations)
# existed has applied every migration up to its user_version except these.
NUMBERED_LATE = frozenset({15, 16})


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not applied yet (the ledger schema_migrations says which were), in order;
    return PRAGMA user_version, the highest applied.

    Migrations run with foreign keys off, as SQLite's way of rebuilding a table needs (a DROP TABLE would
    otherwise delete or refuse the rows pointing at it); every reference is checked before the commit."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    files = migration_files()
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone() is None:
        conn.executescript("""BEGIN;
            CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
            COMMIT;""")
        conn.executemany("INSERT INTO schema_migrations VALUES (?, ?, 'before the ledger')",
                         [(n, name) for n, name, _sql in files if n <= version and n not in NUMBERED_LATE])
    applied = {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}
    pending = [(n, name, sql) for n, name, sql in files if n not in applied]
    if not pending:
        return version
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set between them
    try:
        broken_before = len(conn.execute("PRAGMA foreign_key_check").fetchall())
        for number, name, sql in pending:
            version = max(version, number)
            try:
                conn.executescript(f"BEGIN;\n{sql}\n;")
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if len(broken) > broken_before:
                    raise sqlite3.IntegrityError(f"migration {name} leaves broken references, e.g. {tuple(broken[0])}")
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                             (number, name))
                conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            log.info("migration applied", migration=name)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return version


class _Job:
    __slots__ = ("fn", "args", "kwargs", "done", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], done: trio.Event | None):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs  # not for a bulk function, which takes its calls' args
        self.done = done  # None: nobody waits (submit)
        self.result: outcome.Outcome | None = None


def _wake(jobs: list[_Job]) -> None:
    """In the Trio thread: hand a committed batch's results to their callers."""
    for job in jobs:
        job.done.set()


class Database:
    def __init__(self, path: str, health: StorageHealth | None = None, check_max_mb: float = 256):
        self.path = path
        self.check_max_mb = check_max_mb  # quick_check at open for a file up to this size (0: never)
        self.health = health or StorageHealth()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._writable = True  # whether the current batch could take the write lock
        self._fault_at_begin = False  # whether the last fault was the write lock refused (locked, read-only)
        self.commits = 0  # batches committed, for tests and metrics
        self.jobs = 0
        self.commit_seconds = 0.0  # time the committed batches took, from BEGIN to COMMIT (metrics)
        self._token: trio.lowlevel.TrioToken | None = None

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        ready: list[outcome.Outcome] = []
        started = threading.Event()

        def main() -> None:
            try:
                conn = connect(self.path)
                self._check(conn)
                migrate(conn)
                for_writing(conn)  # the writer process shares the file: see begin_immediate
            except (OSError, sqlite3.Error) as exc:  # reported to open()
                ready.append(outcome.Error(open_error(self.path, exc)))
                started.set()
                return
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

    def _check(self, conn: sqlite3.Connection) -> None:
        if self.path == ":memory:" or not self.check_max_mb:
            return
        size = os.path.getsize(self.path)
        if size > self.check_max_mb * 2**20:
            log.info("database not checked at start: larger than db_check_max_mb", db=self.path,
                     mb=size >> 20, check=f"sqlite3 {self.path} 'PRAGMA quick_check'")
            return
        started = time.monotonic()
        check(conn)
        log.info("database checked", db=self.path, mb=size >> 20, seconds=round(time.monotonic() - started, 2))

    def _serve(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    return
                if job.done is None:
                    # Nobody waits for it (frames, meter values): let more gather for one commit,
                    # rather than one small transaction, and one GIL tug-of-war, per message.
                    time.sleep(LINGER)
                batch, stop = take_waiting(self._queue, job, _STOP)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        changes = conn.total_changes
        wait = FAULTED_LOCK_WAIT if DATABASE in self.health.faults else None
        self._writable = True
        results = self._transaction(conn, batch, wait)
        if results is None:
            # A job failed and the batch was undone: run each job in a transaction of its own,
            # so the others still land (jobs touch nothing but the database, so a rerun is safe).
            results = []
            for job in batch:
                single = self._transaction(conn, [job], None if self._writable else 0)
                results.append(single[0] if single else job.result)
        self._report(conn, changes, results)
        waiting = []
        for job, result in zip(batch, results):
            job.result = result
            if job.done is not None:
                waiting.append(job)
            elif isinstance(result, outcome.Error):
                log.error("database write failed", error=repr(result.error), job=job.fn.__name__)
        if waiting:  # one wake-up of the Trio thread per batch, not one per job
            try:
                self._token.run_sync_soon(_wake, waiting)
            except trio.RunFinishedError:
                pass

    def _report(self, conn: sqlite3.Connection, changes: int, results: list[outcome.Outcome]) -> None:
        """Tell the health whether the file failed this batch, or took writes again."""
        for result in results:
            reason = storage_fault(result.error) if isinstance(result, outcome.Error) else None
            if reason is not None:
                self.health.failed(DATABASE, reason)
                self._fault_at_begin = not self._writable
                return
        # Reads succeed on a full disk: only a write says it is over; a lock or read-only file failed
        # the write lock itself, and taking it again says so.
        if conn.total_changes > changes or (self._writable and self._fault_at_begin):
            self._fault_at_begin = False
            self.health.recovered(DATABASE)

    def _transaction(self, conn: sqlite3.Connection, jobs: list[_Job],
                     wait: float | None = None) -> list[outcome.Outcome] | None:
        """Run the jobs in one transaction and commit; None (all undone) when one of them failed.

        No savepoint per job: every statement hands the GIL over and back, and on the
        hot path that round trip costs more than the statement.
        When the file takes no writes (another process holds its lock past `wait`, or it is read-only)
        the jobs run in a read transaction: reads are answered, writes fail at once (StoreUnavailable).
        """
        results: list[outcome.Outcome] = []
        started = time.perf_counter()
        try:
            try:
                begin_immediate(conn, wait)
            except sqlite3.OperationalError as exc:
                if storage_fault(exc) is None:
                    raise
                self._writable = False
                self._fault_at_begin = True
                self.health.failed(DATABASE, storage_fault(exc))
                conn.execute("BEGIN")
            i = 0
            while i < len(jobs):
                group = [jobs[i]]
                if getattr(jobs[i].fn, "bulk", False):  # consecutive calls of a bulk function go together
                    while i + len(group) < len(jobs) and jobs[i + len(group)].fn is jobs[i].fn:
                        group.append(jobs[i + len(group)])
                    result = outcome.capture(jobs[i].fn, conn, [job.args for job in group])
                    values = [outcome.Value(v) for v in result.unwrap()] if isinstance(result, outcome.Value) else None
                else:
                    result = outcome.capture(jobs[i].fn, conn, *jobs[i].args, **jobs[i].kwargs)
                    values = [result] if isinstance(result, outcome.Value) else None
                if values is None:
                    jobs[i].result = result
                    if conn.in_transaction:  # some errors (SQLITE_FULL) have already rolled it back
                        conn.execute("ROLLBACK")
                    return None
                results.extend(values)
                i += len(group)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # the commit itself failed: nothing was kept
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("database batch failed", error=str(exc), jobs=len(jobs))
            return [outcome.Error(exc) for _ in jobs]
        self.commit_seconds += time.perf_counter() - started
        self.commits += 1
        self.jobs += len(jobs)
        return results

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(conn, *args, **kwargs) on the database thread; return once it is committed.

        Raises StoreUnavailable when the file failed it (locked for longer than LOCK_TIMEOUT, full,
        read-only, damaged): nothing of it was kept, and it may succeed later."""
        if self._closed:
            raise StoreClosed("the database is closed")
        job = _Job(fn, args, kwargs, trio.Event())
        self._queue.put(job)
        await job.done.wait()
        if isinstance(job.result, outcome.Error) and (reason := storage_fault(job.result.error)):
            raise StoreUnavailable(reason) from job.result.error
        return job.result.unwrap()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write without waiting for it (failures are logged)."""
        if self._closed:
            raise StoreClosed("the database is closed")
        self._queue.put(_Job(fn, args, kwargs, None))

    async def close(self) -> None:
        """Finish every queued job, commit, and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread is not None:
            await trio.to_thread.run_sync(self._thread.join)
