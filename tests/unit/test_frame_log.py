"""gateway.store.frame_log.FrameLog: batched frame writes, queries and pruning."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import trio

from gateway import clock
from gateway.store import frame_log as frames_module
from gateway.store.db import Database
from gateway.store.frame_log import FrameLog
from tests.waiting import until


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(str(tmp_path / "gateway.db"))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


def _all(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM frames ORDER BY id")]


def _insert_at(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    conn.executemany(
        "INSERT INTO frames (at, charge_point_id, direction, body) VALUES (?, ?, 'in', ?)",
        [(at, cp_id, f"{cp_id}@{at}") for at, cp_id in rows],
    )


def _add_charger(conn: sqlite3.Connection, cp_id: str, last_seen: str | None) -> None:
    conn.execute("INSERT INTO charge_points (id, first_seen, last_seen) VALUES (?, ?, ?)",
                 (cp_id, "2025-08-14T00:00:00.000Z", last_seen))


def _last_seen(conn: sqlite3.Connection, cp_id: str) -> str | None:
    return conn.execute("SELECT last_seen FROM charge_points WHERE id = ?", (cp_id,)).fetchone()[0]


def ago(**delta) -> str:
    return clock.iso(clock.now() - timedelta(**delta))


# --- record and flush -------------------------------------------------------------------------


async def test_record_keeps_frames_in_memory_until_flush(db):
    log = FrameLog(db)
    log.record("CP1", "in", '[2,"u","Heartbeat",{}]', message_type=2, unique_id="u", action="Heartbeat")
    assert await db.run(_all) == []
    assert log.written == 0


async def test_flush_writes_every_frame_in_one_job(db):
    log = FrameLog(db, flush_size=10_000)
    for i in range(300):
        log.record(f"CP{i % 3}", "in" if i % 2 else "out", f"body {i}", message_type=2, unique_id=f"u{i}",
                   action="Heartbeat", at=f"2025-08-14T01:23:{i % 60:02d}.000Z")
    jobs, commits = db.jobs, db.commits
    await log.flush()
    assert db.jobs - jobs == 1
    assert db.commits - commits == 1
    assert log.written == 300
    assert log.flushes == 1
    rows = await db.run(_all)
    assert [r["body"] for r in rows] == [f"body {i}" for i in range(300)]
    assert rows[1] == {
        "id": rows[1]["id"], "at": "2025-08-14T01:23:01.000Z", "charge_point_id": "CP1", "direction": "in",
        "message_type": 2, "unique_id": "u1", "action": "Heartbeat", "body": "body 1",
    }


async def test_flush_with_nothing_buffered_runs_no_job(db):
    log = FrameLog(db)
    jobs = db.jobs
    await log.flush()
    assert db.jobs == jobs
    assert log.flushes == 0


async def test_second_flush_writes_only_new_frames(db):
    log = FrameLog(db)
    log.record("CP1", "in", "one")
    await log.flush()
    log.record("CP1", "in", "two")
    await log.flush()
    assert [r["body"] for r in await db.run(_all)] == ["one", "two"]
    assert log.written == 2


async def test_record_stamps_the_current_time_by_default(db):
    log = FrameLog(db)
    before = clock.iso()
    log.record("CP1", "event", None)
    await log.flush()
    after = clock.iso()
    [row] = await db.run(_all)
    assert before <= row["at"] <= after
    assert row["direction"] == "event"
    assert row["body"] is None and row["message_type"] is None


async def test_incoming_frames_update_last_seen_but_outgoing_ones_do_not(db):
    await db.run(_add_charger, "CP1", None)
    await db.run(_add_charger, "CP2", None)
    log = FrameLog(db)
    log.record("CP1", "in", "a", at="2025-08-14T01:00:00.000Z")
    log.record("CP1", "in", "b", at="2025-08-14T01:05:00.000Z")
    log.record("CP1", "out", "c", at="2025-08-14T01:10:00.000Z")
    log.record("CP2", "out", "d", at="2025-08-14T01:10:00.000Z")
    await log.flush()
    assert await db.run(_last_seen, "CP1") == "2025-08-14T01:05:00.000Z"
    assert await db.run(_last_seen, "CP2") is None


async def test_last_seen_never_goes_back(db):
    await db.run(_add_charger, "CP1", "2025-08-14T02:00:00.000Z")
    log = FrameLog(db)
    log.record("CP1", "in", "old", at="2025-08-14T01:00:00.000Z")
    await log.flush()
    assert await db.run(_last_seen, "CP1") == "2025-08-14T02:00:00.000Z"


# --- query ------------------------------------------------------------------------------------


async def _logged(db: Database) -> FrameLog:
    log = FrameLog(db)
    for at, cp_id in [("2025-08-14T01:00:00.000Z", "CP1"), ("2025-08-14T01:00:00.000Z", "CP2"),
                      ("2025-08-14T02:00:00.000Z", "CP1"), ("2025-08-14T03:00:00.000Z", "CP1"),
                      ("2025-08-14T03:00:00.000Z", "CP2")]:
        log.record(cp_id, "in", f"{cp_id}@{at[11:13]}", at=at)
    return log


async def test_query_everything_in_order(db):
    log = await _logged(db)
    assert [r["body"] for r in await log.query()] == ["CP1@01", "CP2@01", "CP1@02", "CP1@03", "CP2@03"]


async def test_query_flushes_first(db):
    log = await _logged(db)
    assert await db.run(_all) == []
    assert len(await log.query()) == 5


async def test_query_by_charge_point(db):
    log = await _logged(db)
    assert [r["body"] for r in await log.query("CP1")] == ["CP1@01", "CP1@02", "CP1@03"]
    assert [r["body"] for r in await log.query("CP2")] == ["CP2@01", "CP2@03"]
    assert await log.query("CP3") == []


async def test_query_by_time_since_inclusive_until_exclusive(db):
    log = await _logged(db)
    since = await log.query(since="2025-08-14T02:00:00.000Z")
    assert [r["body"] for r in since] == ["CP1@02", "CP1@03", "CP2@03"]
    until = await log.query(until="2025-08-14T02:00:00.000Z")
    assert [r["body"] for r in until] == ["CP1@01", "CP2@01"]
    window = await log.query(since="2025-08-14T01:30:00.000Z", until="2025-08-14T03:00:00.000Z")
    assert [r["body"] for r in window] == ["CP1@02"]


async def test_query_by_charge_point_and_time(db):
    log = await _logged(db)
    rows = await log.query("CP2", since="2025-08-14T02:00:00.000Z")
    assert [r["body"] for r in rows] == ["CP2@03"]


async def test_query_limit(db):
    log = await _logged(db)
    assert [r["body"] for r in await log.query(limit=2)] == ["CP1@01", "CP2@01"]


async def test_query_rows_are_plain_dicts(db):
    log = await _logged(db)
    row = (await log.query(limit=1))[0]
    assert type(row) is dict
    assert set(row) == {"id", "at", "charge_point_id", "direction", "message_type", "unique_id", "action", "body"}


# --- prune ------------------------------------------------------------------------------------


async def test_prune_deletes_frames_older_than_the_retention(db):
    old = [(ago(days=31), "CP1"), (ago(days=400), "CP2"), (ago(days=30, minutes=1), "CP1")]
    new = [(ago(days=29), "CP1"), (ago(minutes=1), "CP2")]
    await db.run(_insert_at, old + new)
    log = FrameLog(db, retention_days=30)

    assert await log.prune() == 3
    assert [r["body"] for r in await db.run(_all)] == [f"{cp}@{at}" for at, cp in new]


async def test_prune_with_nothing_old_deletes_nothing(db):
    await db.run(_insert_at, [(ago(hours=1), "CP1")])
    assert await FrameLog(db, retention_days=30).prune() == 0
    assert len(await db.run(_all)) == 1


async def test_prune_honours_a_fractional_retention(db):
    await db.run(_insert_at, [(ago(hours=13), "CP1"), (ago(hours=11), "CP2")])
    assert await FrameLog(db, retention_days=0.5).prune() == 1
    assert [r["charge_point_id"] for r in await db.run(_all)] == ["CP2"]


async def test_zero_retention_keeps_everything(db):
    await db.run(_insert_at, [(ago(days=4000), "CP1")])
    assert await FrameLog(db, retention_days=0).prune() == 0
    assert len(await db.run(_all)) == 1


async def test_prune_works_through_several_chunks(db, monkeypatch):
    monkeypatch.setattr(frames_module, "PRUNE_CHUNK", 3)
    await db.run(_insert_at, [(ago(days=40, seconds=i), f"CP{i}") for i in range(10)] + [(ago(days=1), "keep")])
    jobs = db.jobs
    assert await FrameLog(db, retention_days=30).prune() == 10
    assert db.jobs - jobs == 4  # 3 + 3 + 3 + 1
    assert [r["charge_point_id"] for r in await db.run(_all)] == ["keep"]


# --- run --------------------------------------------------------------------------------------


async def _wait_written(log: FrameLog, count: int) -> None:
    await until(lambda: log.written >= count, timeout=10)


async def test_run_flushes_as_soon_as_flush_size_frames_wait(db):
    log = FrameLog(db, flush_interval=3600, flush_size=5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(log.run)
        await trio.sleep(0)
        for i in range(5):
            log.record("CP1", "in", f"f{i}")
        await _wait_written(log, 5)
        nursery.cancel_scope.cancel()
    assert len(await db.run(_all)) == 5


async def test_run_flushes_what_is_left_when_cancelled(db):
    log = FrameLog(db, flush_interval=3600, flush_size=1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(log.run)
        await trio.sleep(0)
        log.record("CP1", "in", "last words")
        nursery.cancel_scope.cancel()
    assert [r["body"] for r in await db.run(_all)] == ["last words"]


async def test_run_prunes_on_its_first_round(db):
    await db.run(_insert_at, [(ago(days=31), "old"), (ago(days=1), "new")])
    log = FrameLog(db, flush_interval=0.01, retention_days=30)

    def remaining(conn):
        return [r[0] for r in conn.execute("SELECT charge_point_id FROM frames")]

    async def only_new() -> bool:
        return await db.run(remaining) == ["new"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(log.run)
        await until(only_new, timeout=10)
        nursery.cancel_scope.cancel()


async def test_a_prune_the_file_fails_is_reported_and_tried_again_never_fatal(tmp_path):
    """One damaged page of the frames' time index: the prune fails with `database disk image is
    malformed`; the gateway runs on, degraded, and tries again later instead of ending (at every start)."""
    from gateway.store.health import PRUNE
    from tests.integration.test_startup_failures import damaged

    db = Database(str(damaged(tmp_path / "gateway.db")), check_max_mb=0)  # as a file too large to check
    await db.open()
    try:
        frame_log = FrameLog(db, flush_interval=0.01, retention_days=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(frame_log.run)
            await until(lambda: PRUNE in db.health.faults, timeout=10)
            assert db.health.faults[PRUNE].startswith("the database file is damaged (database disk image is malformed)")
            await trio.sleep(0.05)  # more rounds of the loop: still running
            nursery.cancel_scope.cancel()
    finally:
        await db.close()


class _FailingFile:
    """An appender the file fails while `fault` is set (it says why); it takes whatever batch it is given."""

    def __init__(self) -> None:
        self.fault: str | None = "the disk is full (database or disk is full)"
        self.batches: list[list[tuple]] = []

    async def write(self, kind: str, rows: list[tuple]) -> None:
        self.batches.append(rows)

    async def sync(self) -> None:
        pass


async def test_frames_held_through_a_storage_fault_are_bounded_and_the_newest_kept(db):
    appender = _FailingFile()
    log = FrameLog(db, appender=appender)
    log.max_held = 100
    for n in range(150):
        log.record("CP1", "in", f"frame {n}")
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):  # StoreUnavailable says why
        await log.flush()
    assert log.dropped == 50
    for n in range(150, 160):  # the fault goes on: still at most 100, the newest
        log.record("CP1", "in", f"frame {n}")
    with pytest.raises(sqlite3.OperationalError):
        await log.flush()
    assert log.dropped == 60 and appender.batches == []  # nothing handed over while the file fails
    appender.fault = None  # the disk has room again
    await log.flush()
    [batch] = appender.batches
    assert [row[-1] for row in batch] == [f"frame {n}" for n in range(60, 160)]


async def test_frames_held_through_a_fault_are_handed_over_when_the_gateway_stops(db):
    appender = _FailingFile()
    log = FrameLog(db, appender=appender)
    log.record("CP1", "in", "said during the fault")
    with pytest.raises(sqlite3.OperationalError):
        await log.flush()
    await log.flush(closing=True)  # the fault goes on: the appender's close writes them, or says why it cannot
    assert [row[-1] for row in appender.batches[0]] == ["said during the fault"]
