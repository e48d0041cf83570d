"""Retention of what grows: old rows deleted, old meter values thinned, the space given back to the disk.

A table that grows for ever gets a `Rule`: its rows whose time column is older than `days` are deleted, a
batch at a time, each batch one small job of the database thread (sized so that it holds the file's write
lock a few milliseconds), with a pause between batches so that chargers' writes pass in between.
Meter values are not deleted but thinned (`Thinning`): kept whole for `full_days`, then one message per
transaction per `every_minutes` stays whole and the others keep only the energy register readings that
pricing reads (so an order priced again gives the same amount); a message left with none is deleted.
Once rows are gone, `PRAGMA incremental_vacuum` hands the free pages back to the file system, a few
hundred at a time, on a file made with auto_vacuum = INCREMENTAL (every file made since migration 021;
an older one is converted by `gateway compact`, with the gateway stopped).

A feature with a table of its own registers it once, before or after the gateway starts:

    store.retention.rules.add(Rule("audit_log", "at", days=config.audit.retention_days))

The time column holds UTC text as the gateway writes it (clock.iso), and wants an index for the
deletes to stay cheap; `where` narrows which rows may go (SQL over the table's columns); `keep` bounds
the table by count too (all but the newest `keep` rowids go, in the same small batches).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from datetime import datetime, timedelta
from typing import Any, Iterable, NamedTuple

import attrs
import structlog
import trio

from .. import clock
from .calls import COMMITTED, Table, durability
from .health import RETENTION, StoreUnavailable
from .pg import partitions
from .pg.connection import on_postgresql
from .writer.connection import insert_rows, storage_fault
from .writer.rows import METER_VALUE_COLUMNS

log = structlog.get_logger("gateway.store")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TARGET_SECONDS = 0.004  # a batch's work on the database thread: its size follows what the last one took
STOP_SECONDS = 2 * TARGET_SECONDS  # a job made of many steps (thinning, vacuum) stops after this long
MIN_BATCH, FIRST_BATCH, MAX_BATCH = 20, 200, 5000
PAUSE = 0.02  # seconds between two batches: the writer is free most of the time while a backlog is pruned
VACUUM_PAGES = 64  # pages handed back by the first vacuum job; then as many as TARGET_SECONDS allows
RETRY = 60.0  # a cycle the file failed is tried again this much later
THINNED = "meter_value_sets"  # its row in retention_progress: the last transaction thinned
LOOSE = "meter_value_sets.loose"  # the last message outside a transaction thinned
# Tables whose rows are counted for /metrics and /api/storage (those of registered rules too).
GROWING = ("frames", "meter_value_sets", "commands", "transactions", "status_notifications", "notifications",
           "orders", "order_history", "payments")


@attrs.frozen
class Rule:
    """Delete the rows of `table` whose `time_column` is older than `days` (0: keep them for ever), and,
    with `keep`, all but the newest `keep` rows (by rowid; 0: no bound)."""

    table: str
    time_column: str
    days: float
    where: str = "TRUE"
    keep: int = 0

    def __attrs_post_init__(self) -> None:
        for name in (self.table, self.time_column):
            if not IDENTIFIER.fullmatch(name):
                raise ValueError(f"retention rule: {name!r} is not a table or column name")
        if self.days < 0:
            raise ValueError(f"retention rule for {self.table}: days must not be negative, not {self.days}")
        if self.keep < 0:
            raise ValueError(f"retention rule for {self.table}: keep must not be negative, not {self.keep}")

    @property
    def active(self) -> bool:
        return self.days > 0 or self.keep > 0

    def cutoff(self, now: datetime) -> str:
        return clock.iso(now - timedelta(days=self.days))


@attrs.frozen
class Thinning:
    """Meter values kept whole `full_days`; older, one message per transaction per `every_minutes` kept whole."""

    full_days: float
    every_minutes: float

    def cutoff(self, now: datetime) -> str:
        return clock.iso(now - timedelta(days=self.full_days))


@attrs.frozen
class Policy:
    """How often a cycle runs (seconds), how meter values are thinned (None: never), whether space is given back."""

    every: float = 3600.0
    thinning: Thinning | None = None
    vacuum: bool = True


class Rules(dict[str, Rule]):
    """The rules by table: a later rule for a table replaces the earlier one."""

    def add(self, rule: Rule) -> None:
        self[rule.table] = rule


class Done(NamedTuple):
    rows: int  # rows examined (thinning) or deleted
    changed: int  # rows deleted or rewritten
    finished: bool  # nothing more to do before the cut-off
    seconds: float  # the job's own time


class Batch:
    """How many rows the next job takes: scaled by how long the last one took against TARGET_SECONDS."""

    def __init__(self, size: int = FIRST_BATCH):
        self.size = size

    def took(self, seconds: float, full: bool = True) -> None:
        """A job of this size took `seconds`; `full`: it had that much to do (a job that ran out of work
        early says nothing about a larger one, and never makes the next one larger)."""
        scale = min(2.0, TARGET_SECONDS / max(seconds, 1e-6))
        if scale > 1 and not full:
            return
        self.size = max(MIN_BATCH, min(MAX_BATCH, int(self.size * scale)))


def _delete_older(conn: sqlite3.Connection, table: str, column: str, where: str, before: str | None, keep: int,
                  limit: int) -> Done:
    """Up to `limit` rows whose `column` is before `before` (None: none by age), then those beyond the newest
    `keep` (0: none by count)."""
    started = time.perf_counter()
    deleted = 0
    # PostgreSQL has no rowid: every table a rule names has an `id` (and, partitioned by day, drops whole days)
    key = "id" if on_postgresql(conn) else "rowid"
    if before is not None:
        if on_postgresql(conn) and table in partitions.PARTITIONED and where == "TRUE":
            deleted, _ = partitions.drop_before(conn, table, before)
        deleted += conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                                f"WHERE {column} < ? AND ({where}) LIMIT ?)", (before, limit)).rowcount
    if keep > 0 and deleted < limit:
        newest = conn.execute(f"SELECT max({key}) FROM {table}").fetchone()[0]
        if newest is not None:
            deleted += conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                                    f"WHERE {key} <= ? AND ({where}) ORDER BY {key} LIMIT ?)",
                                    (newest - keep, limit - deleted)).rowcount
    return Done(deleted, deleted, deleted < limit, time.perf_counter() - started)


def _text(sampled: dict, name: str) -> Any:
    value = sampled.get(name)
    return value if value is None or isinstance(value, str) else json.dumps(value)


def priced(sampled: Any) -> bool:
    """Whether pricing reads this sampled value: the rule of gateway/store/orders.py's _READINGS (the main
    import register, all phases together, at the outlet, raw), on a field as the meter_values view gives
    it (a string as it is, null or missing as NULL, anything else as JSON text)."""
    if not isinstance(sampled, dict):
        return False
    return (_text(sampled, "measurand") in (None, "Energy.Active.Import.Register") and _text(sampled, "phase") is None
            and _text(sampled, "location") in (None, "Outlet") and _text(sampled, "format") in (None, "Raw"))


def _sampled(entry: dict) -> Iterable[Any]:
    values = entry.get("sampledValue")
    if isinstance(values, list):
        return values
    return values.values() if isinstance(values, dict) else ()  # as json_each walks an object: its members


def thinned(text: str) -> str | None:
    """A meter_value_sets message with only its priced sampled values: the text itself when nothing goes,
    None when nothing stays."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, list):
        return None
    kept, dropped = [], False
    for entry in message:
        if not isinstance(entry, dict):
            dropped = True
            continue
        values = list(_sampled(entry))
        keep = [v for v in values if priced(v)]
        dropped = dropped or len(keep) != len(values) or not isinstance(entry.get("sampledValue"), list)
        if keep:
            kept.append({**entry, "sampledValue": keep})
    if not kept:
        return None
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")) if dropped else text


def _progress(conn: sqlite3.Connection, name: str) -> int:
    found = conn.execute("SELECT last_id FROM retention_progress WHERE name = ?", (name,)).fetchone()
    return found[0] if found else 0


def _advance(conn: sqlite3.Connection, name: str, last_id: int) -> None:
    conn.execute("INSERT INTO retention_progress (name, last_id) VALUES (?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id", (name, last_id))


def _span(at: int | None, seconds: int) -> int:
    return (at or 0) // seconds


@attrs.define
class Session:
    """A transaction being thinned over several jobs: its messages read so far, and what stays of them.

    Nothing is written until the last of its messages is read: then, in one job, its rows are replaced by
    what stays, in their order (so a reader never sees half a session thinned, nor its messages out of
    order). Kept in memory: a gateway stopped half-way reads the session again from its start."""

    tx: int | None = None
    last_id: int = 0  # the last message read
    read: int = 0  # messages read
    spans: set[int] = attrs.Factory(set)  # the spans whose first message was seen (it stays whole)
    kept: list[tuple] = attrs.Factory(list)  # the rows that stay, in order
    changed: int = 0  # messages thinned or dropped

    def start(self, tx: int | None) -> None:
        self.tx, self.last_id, self.read, self.changed = tx, 0, 0, 0
        self.spans, self.kept = set(), []

    def take(self, row: sqlite3.Row, span: int) -> None:
        text = row["meter_value"]
        at = _span(row["at"], span)
        if at not in self.spans:  # the first message of its span stays whole
            self.spans.add(at)
        else:
            text = thinned(text)
            self.changed += text != row["meter_value"]
        if text is not None:
            self.kept.append((row["charge_point_id"], row["connector_id"], self.tx, row["source"], row["received_at"],
                              text))
        self.last_id, self.read = row["id"], self.read + 1


def _thin(conn: sqlite3.Connection, before: str, every_minutes: float, session: Session, limit: int) -> Done:
    """Thin the meter values of the next transactions whose every message was received before `before`, about
    `limit` messages, from where the last job stopped (`session`: the transaction a job left half read).

    A transaction's messages are thinned together and written again, in their order, as new rows: rows made
    smaller in place would leave their pages as large as before, whereas the pages they leave empty are
    given back by the vacuum. Their ids change (the order of a transaction's messages does not)."""
    started = time.perf_counter()
    span = max(1, round(every_minutes * 60))
    examined = changed = 0
    finished = False
    while examined < limit and not (examined and time.perf_counter() - started >= STOP_SECONDS):
        if session.tx is None:
            following = conn.execute("SELECT id FROM transactions WHERE id > ? ORDER BY id LIMIT 1",
                                     (_progress(conn, THINNED),)).fetchone()
            if following is None:
                finished = True
                break
            tx = following[0]
            newest = conn.execute("SELECT received_at FROM meter_value_sets WHERE transaction_id = ? "
                                  "ORDER BY id DESC LIMIT 1", (tx,)).fetchone()
            if newest is not None and newest[0] >= before:
                finished = True  # it, and every later one, waits for a later cycle
                break
            if newest is None:
                _advance(conn, THINNED, tx)
                examined += 1
                continue
            session.start(tx)
        wanted = limit - examined
        rows = conn.execute(
            """SELECT id, charge_point_id, connector_id, source, received_at, unixepoch(received_at) AS at,
                      meter_value FROM meter_value_sets WHERE transaction_id = ? AND id > ? ORDER BY id LIMIT ?""",
            (session.tx, session.last_id, wanted)).fetchall()
        stopped = False
        for row in rows:
            session.take(row, span)
            examined += 1
            if time.perf_counter() - started >= STOP_SECONDS:
                stopped = True
                break
        if stopped or len(rows) == wanted:
            break  # more of it may follow, or the job is out of time: the next job goes on
        if tuple(conn.execute("SELECT count(*), max(id) FROM meter_value_sets WHERE transaction_id = ?",
                              (session.tx,)).fetchone()) != (session.read, session.last_id):
            session.start(None)  # a message arrived late, or went, meanwhile: the session is read again
            continue
        if session.changed:
            conn.execute("DELETE FROM meter_value_sets WHERE transaction_id = ?", (session.tx,))
            insert_rows(conn, "meter_value_sets", METER_VALUE_COLUMNS, session.kept)
            changed += session.changed
        _advance(conn, THINNED, session.tx)
        session.start(None)
    examined_loose, changed_loose, loose_done = _thin_loose(conn, before, span, max(1, limit - examined))
    return Done(examined + examined_loose, changed + changed_loose, finished and loose_done,
                time.perf_counter() - started)


def _thin_loose(conn: sqlite3.Connection, before: str, span: int, limit: int) -> tuple[int, int, bool]:
    """Meter values outside a transaction (nobody prices them): older than `before`, one message per charger
    connector per span kept, the others deleted. (rows examined, deleted, finished)"""
    last_id = _progress(conn, LOOSE)
    rows = conn.execute(
        """SELECT id, charge_point_id, connector_id, received_at, unixepoch(received_at) AS at FROM meter_value_sets
           WHERE transaction_id IS NULL AND id > ? ORDER BY transaction_id, id LIMIT ?""", (last_id, limit)).fetchall()
    seen: dict[tuple, int | None] = {}
    examined = deleted = 0
    finished = len(rows) < limit
    for row in rows:
        if row["received_at"] >= before:
            finished = True
            break
        examined += 1
        last_id = row["id"]
        key = (row["charge_point_id"], row["connector_id"])
        if key not in seen:
            previous = conn.execute(
                """SELECT unixepoch(received_at) FROM meter_value_sets WHERE transaction_id IS NULL AND id < ?
                   AND charge_point_id = ? AND connector_id IS NOT DISTINCT FROM ? ORDER BY transaction_id, id DESC LIMIT 1""",
                (row["id"], *key)).fetchone()
            seen[key] = None if previous is None else _span(previous[0], span)
        if seen[key] != _span(row["at"], span):
            seen[key] = _span(row["at"], span)
        else:
            conn.execute("DELETE FROM meter_value_sets WHERE id = ?", (row["id"],))
            deleted += 1
    _advance(conn, LOOSE, last_id)
    return examined, deleted, finished


def _vacuum(conn: sqlite3.Connection, pages: int) -> Done:
    """Hand up to `pages` free pages back to the file system (a file without auto_vacuum: nothing)."""
    started = time.perf_counter()
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        return Done(0, 0, True, 0.0)
    before = conn.execute("PRAGMA freelist_count").fetchone()[0]
    for _ in range(min(int(pages), before)):
        # One page per statement: Python's sqlite3 steps a statement that returns no row once, and each
        # step of incremental_vacuum(N) frees one page; N = 1 says so. A page costs more near some pages
        # than others: the job stops at STOP_SECONDS whatever its size.
        conn.execute("PRAGMA incremental_vacuum(1)")
        if time.perf_counter() - started >= STOP_SECONDS:
            break
    left = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return Done(before - left, before - left, left == 0, time.perf_counter() - started)


def _page_size(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA page_size").fetchone()[0]


def _server_stats(conn: Any, tables: Iterable[str]) -> dict[str, Any]:
    """On PostgreSQL: the database's size and the rows of each table (the server gives space back itself:
    autovacuum; a dropped partition at once)."""
    present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    present |= set(partitions.PARTITIONED)
    rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in dict.fromkeys(tables) if t in present and IDENTIFIER.fullmatch(t)}
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"bytes": size, "freeBytes": 0, "walBytes": 0, "autoVacuum": "server", "rows": rows,
            "measuredAt": clock.iso()}


def storage_stats(path: str, tables: Iterable[str]) -> dict[str, Any]:
    """The file's size, its free pages, its write-ahead log and the rows of each table, read on a connection
    of its own (never the database thread's: counting a large table takes a while, and holds no lock)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        auto_vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in dict.fromkeys(tables) if t in present and IDENTIFIER.fullmatch(t)}
    finally:
        conn.close()
    try:
        wal = os.path.getsize(path + "-wal")
    except OSError:
        wal = 0
    return {"bytes": page_size * pages, "freeBytes": page_size * free, "walBytes": wal,
            "autoVacuum": {0: "none", 1: "full", 2: "incremental"}.get(auto_vacuum, str(auto_vacuum)),
            "rows": rows, "measuredAt": clock.iso()}


class Retention(Table):
    """The rules, the policy (thinning, how often, vacuum), and the task that applies them."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rules = Rules()  # applied from the next cycle on
        self.policy = Policy()
        self.next_run: str | None = None  # when the next cycle starts (UTC text)
        self.last_run: dict[str, Any] | None = None  # what the last cycle did
        self.stats: dict[str, Any] | None = None  # storage_stats, refreshed after each cycle
        self.deleted: dict[str, int] = {}  # rows deleted (or, for meter values, thinned) since start, by table
        self.longest_batch = 0.0  # seconds: the longest job a cycle gave the database thread
        self.longest: dict[str, float] = {}  # the same, by table (and "vacuum")
        self._batches_by_name: dict[str, Batch] = {}  # rows per delete or thinning job, by table
        self._pages = Batch(VACUUM_PAGES)  # pages per incremental vacuum job
        self._session = Session()  # the transaction being thinned, when a job left it half read

    def _took(self, name: str, seconds: float) -> None:
        self.longest_batch = max(self.longest_batch, seconds)
        self.longest[name] = max(self.longest.get(name, 0.0), seconds)

    async def _batches(self, name: str, fn: Any, *args: Any) -> tuple[int, int]:
        """Run fn(conn, *args, limit) until it says it has finished; (rows, changed) in total."""
        rows = changed = 0
        batch = self._batches_by_name.setdefault(name, Batch())  # each kind of job costs its own per row
        while True:
            size = batch.size
            done: Done = await self._db.run(fn, *args, size)
            batch.took(done.seconds, full=done.rows >= size)
            self._took(name, done.seconds)
            rows, changed = rows + done.rows, changed + done.changed
            if done.finished:
                break
            await trio.sleep(PAUSE)
        if changed:
            self.deleted[name] = self.deleted.get(name, 0) + changed
        return rows, changed

    @durability(COMMITTED)
    async def prune(self, now: datetime | None = None) -> dict[str, Any]:
        """One cycle: every rule, the thinning, then the incremental vacuum; what each did."""
        now = now or clock.now()
        started = time.perf_counter()
        report: dict[str, Any] = {"deleted": {}, "thinned": 0, "freedBytes": 0}
        if on_postgresql(self._db):  # the coming days' partitions of frames and meter values, once a day
            await self._db.ensure_partitions()
        for rule in list(self.rules.values()):
            if rule.active:
                _, report["deleted"][rule.table] = await self._batches(
                    rule.table, _delete_older, rule.table, rule.time_column, rule.where,
                    rule.cutoff(now) if rule.days > 0 else None, rule.keep)
        thinning = self.policy.thinning
        if thinning is not None and thinning.every_minutes > 0:
            _, report["thinned"] = await self._batches(THINNED, _thin, thinning.cutoff(now), thinning.every_minutes,
                                                    self._session)
        if self.policy.vacuum and self._db.path != ":memory:" and not on_postgresql(self._db):
            report["freedBytes"] = await self._give_back()
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["at"] = clock.iso(now)
        return report

    async def _give_back(self) -> int:
        """Incremental vacuum, a batch of pages per job: the bytes handed back to the file system."""
        page_size = await self._db.run(_page_size)
        freed = 0
        while True:
            size = self._pages.size
            done: Done = await self._db.run(_vacuum, size)
            self._pages.took(done.seconds, full=done.rows >= size)
            self._took("vacuum", done.seconds)
            freed += done.rows * page_size
            if done.finished or not done.rows:
                return freed
            await trio.sleep(PAUSE)

    @durability(COMMITTED)
    async def refresh_stats(self) -> dict[str, Any] | None:
        if self._db.path == ":memory:":
            return None
        tables = (*GROWING, *self.rules)
        if on_postgresql(self._db):
            self.stats = await self._db.run(_server_stats, tables)
        else:
            self.stats = await trio.to_thread.run_sync(storage_stats, self._db.path, tables)
        return self.stats

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A cycle now and every `every` seconds; a cycle the file fails is reported and tried again later."""
        task_status.started()
        while True:
            try:
                self.last_run = await self.prune()
            except sqlite3.Error as exc:
                reason = str(exc) if isinstance(exc, StoreUnavailable) else storage_fault(exc) or repr(exc)
                self._db.health.failed(RETENTION, f"{reason}; tried again in {RETRY:g} s")
                wait = RETRY
            else:
                self._db.health.recovered(RETENTION)
                if any(self.last_run["deleted"].values()) or self.last_run["thinned"] or self.last_run["freedBytes"]:
                    log.info("retention", **{k: v for k, v in self.last_run.items() if k != "at"})
                wait = self.policy.every
            try:
                await self.refresh_stats()
            except sqlite3.Error as exc:
                log.warning("storage statistics not read", error=str(exc))
            self.next_run = clock.iso(clock.now() + timedelta(seconds=wait))
            await trio.sleep(wait)
