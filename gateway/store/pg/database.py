"""The store's database on a PostgreSQL server: the same face as db.Database, for the same job functions.

A committed call (`run`) takes a pooled connection in a Trio worker thread, under a CapacityLimiter the size
of the pool (psycopg's async API needs asyncio; its sync API in threads does not), and runs its job in a
SERIALIZABLE transaction of its own: jobs written for SQLite's one writer at a time behave as if run one after
another, on one node or several. A job that loses to another transaction (serialization failure, deadlock) is
run again; jobs touch nothing but the database, so a rerun is safe.

Batched calls (`submit`) go to one lane thread that runs every call waiting in one transaction (group commit,
as db.Database does; if one fails, each alone); a committed call first waits until the batched calls queued
before it are committed, so it sees them, as on SQLite.
"""

from __future__ import annotations

import datetime as dt
import queue
import random
import sqlite3
import threading
import time
from typing import Any, Callable, TypeVar

import outcome
import psycopg
import psycopg_pool
import structlog
import trio

from ..db import StoreClosed, StoreOpenError, take_waiting
from ..health import DATABASE, StorageHealth, StoreUnavailable
from . import partitions
from .connection import RETRY, Connection, configure, redact, storage_fault
from .migrations import migrate

T = TypeVar("T")
log = structlog.get_logger("gateway.store")

POOL_SIZE = 8
CONNECT_TIMEOUT = 2.0  # seconds a job waits for a connection (the server down: it fails, the store degraded)
RETRIES = 100  # runs of a job that keeps losing to other transactions, before its error is raised
ALONE_AFTER = 1  # runs lost, after which a job runs alone on this node (_Gate)
PARTITION_EVERY = 3600.0  # seconds between looks at tomorrow's partitions
_STOP = object()


def _fault(exc: BaseException) -> str | None:
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return f"the database server cannot be reached ({exc})"
    return storage_fault(exc)


class _Gate:
    """Jobs pass together, and one that kept losing passes alone: it waits for those running and holds the next
    ones back, then begins (its snapshot after theirs). On a young database SERIALIZABLE's predicate locks
    cover whole index pages, so jobs touching neighbouring keys lose to each other again and again: writing
    300 orders (900 jobs) 8 at a time lost 1,235 runs and took 5.0 s; alone after one loss, 618 and 3.7 s (one
    at a time: 2.1 s); without the gate one job of a day of 1,000 trades lost 100 times and failed. Per node:
    another node's transactions can still win, rarely."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._alone = 0  # jobs waiting to run alone, or running so

    def enter(self, alone: bool) -> None:
        with self._changed:
            if alone:
                self._alone += 1
                self._changed.wait_for(lambda: self._running == 0)
            else:
                self._changed.wait_for(lambda: self._alone == 0)
            self._running += 1

    def leave(self, alone: bool) -> None:
        with self._changed:
            self._running -= 1
            self._alone -= alone
            self._changed.notify_all()


class _Job:
    __slots__ = ("fn", "args", "kwargs", "seq")

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], seq: int):
        self.fn, self.args, self.kwargs, self.seq = fn, args, kwargs, seq


def _call(conn: Connection, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    if getattr(fn, "bulk", False):  # a bulk function takes a list of calls (db.bulk)
        return fn(conn, [args])[0]
    return fn(conn, *args, **kwargs)


class PgDatabase:
    """Committed and batched jobs on a PostgreSQL server (see the module's docstring)."""

    dialect = "postgresql"

    def __init__(self, url: str, health: StorageHealth | None = None, pool_size: int = POOL_SIZE):
        self.path = url  # what the writer process is given to open
        self.url = url
        self.health = health or StorageHealth()
        self.pool_size = pool_size
        self.commits = 0  # transactions committed, for tests and metrics
        self.jobs = 0
        self.commit_seconds = 0.0
        self.retries = 0  # jobs run again after losing to another transaction
        self._gate = _Gate()
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._limiter = trio.CapacityLimiter(pool_size - 1)  # one connection is the lane's
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lane: threading.Thread | None = None
        self._queued = 0  # batched jobs handed to the lane (Trio thread only)
        self._landed = 0  # of them, committed or failed
        self._landed_event = trio.Event()
        self._closed = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._partitioned_on: dt.date | None = None

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        pool = psycopg_pool.ConnectionPool(self.url, min_size=2, max_size=self.pool_size, open=False,
                                           kwargs={"autocommit": True}, configure=configure, name="gateway",
                                           timeout=CONNECT_TIMEOUT)
        try:
            await trio.to_thread.run_sync(self._open, pool)
        except psycopg.Error as exc:
            await trio.to_thread.run_sync(pool.close)
            raise StoreOpenError(f"cannot open the database {redact(self.url)}: {_fault(exc) or exc}") from exc
        except psycopg_pool.PoolTimeout as exc:
            await trio.to_thread.run_sync(pool.close)
            raise StoreOpenError(f"cannot open the database {redact(self.url)}: {_fault(exc)}") from exc
        self._pool = pool
        self._lane = threading.Thread(target=self._serve, name="gateway-db-lane", daemon=True)
        self._lane.start()

    def _open(self, pool: psycopg_pool.ConnectionPool) -> None:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        with pool.connection() as raw:
            conn = Connection(raw)
            migrate(conn)
            self._partition(conn)

    def _partition(self, conn: Connection) -> None:
        """Make the coming days' partitions of the frames and meter values (from yesterday's, for a clock behind)."""
        today = dt.datetime.now(dt.timezone.utc).date()
        with conn.raw.transaction():
            partitions.ensure(conn, today - dt.timedelta(days=1))
        self._partitioned_on = today

    async def ensure_partitions(self) -> None:
        """Make the coming days' partitions, if this node has not today (retention's cycle asks)."""
        if self._partitioned_on != dt.datetime.now(dt.timezone.utc).date():
            await self.run(self._partition)

    # -- committed calls ------------------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(conn, *args, **kwargs) in a transaction of its own; return once it is committed.

        Raises StoreUnavailable when the server failed it (unreachable, full, read-only): nothing of it was
        kept, and it may succeed later."""
        if self._closed:
            raise StoreClosed("the database is closed")
        target = self._queued
        while self._landed < target:  # the batched calls queued before this one come first
            await self._landed_event.wait()
        result = await trio.to_thread.run_sync(self._run_one, fn, args, kwargs, limiter=self._limiter)
        if isinstance(result, outcome.Error):
            if reason := _fault(result.error):
                raise StoreUnavailable(reason) from result.error
            if isinstance(result.error, psycopg.Error):  # whoever handles database errors handles these too
                kind = sqlite3.IntegrityError if isinstance(result.error, psycopg.IntegrityError) else sqlite3.DatabaseError
                raise kind(str(result.error).strip()) from result.error
        return result.unwrap()

    def _run_one(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> outcome.Outcome:
        try:
            with self._pool.connection() as raw:  # type: ignore[union-attr]
                conn = Connection(raw)
                result = self._transaction(conn, lambda: [outcome.capture(_call, conn, fn, args, kwargs)])
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:  # the connection itself
            result = [outcome.Error(exc)]
        self._report(result)
        return result[0]

    def _transaction(self, conn: Connection, body: Callable[[], list[outcome.Outcome]]) -> list[outcome.Outcome]:
        """Run body() in a SERIALIZABLE transaction, again while it loses to another one (alone on this node
        after ALONE_AFTER runs lost, see _Gate); commit unless one of its outcomes is an error (then roll
        back). The outcomes."""
        for attempt in range(RETRIES):
            alone = attempt >= ALONE_AFTER
            self._gate.enter(alone)
            try:
                results = self._attempt(conn, body, last=attempt + 1 == RETRIES)
            finally:
                self._gate.leave(alone)
            if results is not None:
                return results
            self._lost(attempt)
        raise AssertionError("unreachable")  # the last attempt returns whatever it got

    def _attempt(self, conn: Connection, body: Callable[[], list[outcome.Outcome]],
                 last: bool) -> list[outcome.Outcome] | None:
        """One run of body() in its transaction: the outcomes, or None when it lost to another transaction
        (and is not the `last` run, which raises or returns the error)."""
        started = time.perf_counter()
        conn.raw.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        try:
            results = body()
            failed = next((r.error for r in results if isinstance(r, outcome.Error)), None)
            if isinstance(failed, RETRY) and not last:
                conn.raw.execute("ROLLBACK")
                return None
            if failed is not None:
                conn.raw.execute("ROLLBACK")
                return results
            conn.raw.execute("COMMIT")
        except RETRY:  # at the commit
            if conn.in_transaction:
                conn.raw.execute("ROLLBACK")
            if last:
                raise
            return None
        except BaseException:
            if not conn.raw.closed and conn.in_transaction:
                conn.raw.execute("ROLLBACK")
            raise
        self.commit_seconds += time.perf_counter() - started
        self.commits += 1
        self.jobs += len(results)
        return results

    def _lost(self, attempt: int) -> None:
        """A job lost to another transaction: wait a random while, longer each time, before its next run."""
        self.retries += 1
        time.sleep(random.uniform(0, 0.001 * min(2 ** attempt, 50)))

    def _report(self, results: list[outcome.Outcome]) -> None:
        for result in results:
            if isinstance(result, outcome.Error) and (reason := _fault(result.error)):
                self.health.failed(DATABASE, reason)
                return
        self.health.recovered(DATABASE)

    # -- batched calls --------------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write without waiting for it (failures are logged)."""
        if self._closed:
            raise StoreClosed("the database is closed")
        self._queued += 1
        self._queue.put(_Job(fn, args, kwargs, self._queued))

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            batch, stop = take_waiting(self._queue, job, _STOP)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job]) -> None:
        try:
            with self._pool.connection() as raw:  # type: ignore[union-attr]
                conn = Connection(raw)
                results = self._transaction(conn, lambda: [outcome.capture(_call, conn, j.fn, j.args, j.kwargs)
                                                           for j in batch])
                if any(isinstance(r, outcome.Error) for r in results) and len(batch) > 1:
                    results = [self._transaction(conn, lambda j=j: [outcome.capture(_call, conn, j.fn, j.args,
                                                                                    j.kwargs)])[0]
                               for j in batch]
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            results = [outcome.Error(exc)] * len(batch)
        self._report(results)
        for job, result in zip(batch, results):
            if isinstance(result, outcome.Error):
                log.error("database write failed", error=_fault(result.error) or repr(result.error),
                          job=getattr(job.fn, "__name__", "?"))
        try:
            self._token.run_sync_soon(self._landed_up_to, batch[-1].seq)  # type: ignore[union-attr]
        except trio.RunFinishedError:
            pass

    def _landed_up_to(self, seq: int) -> None:
        self._landed = max(self._landed, seq)
        self._landed_event.set()
        self._landed_event = trio.Event()

    async def close(self) -> None:
        """Finish every batched call, then close the pool."""
        if self._closed:
            return
        self._closed = True
        if self._lane is not None:
            self._queue.put(_STOP)
            await trio.to_thread.run_sync(self._lane.join)
        if self._pool is not None:
            await trio.to_thread.run_sync(self._pool.close)
