"""gateway.store.appender: frames and meter values written by the writer process (or the database thread)."""

from __future__ import annotations

import marshal
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
import structlog
import trio

from gateway.store.store import open_store
from gateway.store import appender as appender_module
from gateway.jsontext import to_json
from gateway.store.writer import process as writer
from gateway.store.appender import ProcessAppender, ThreadAppender, appender_for
from gateway.store.db import Database


def _frame(i: int, cp_id: str = "CP1") -> tuple:
    return (f"2026-11-22T06:00:00.{i:06d}Z", cp_id, "in", 2, f"u{i}", "MeterValues", f'[2,"u{i}","MeterValues",{{}}]')


def _sample(i: int) -> tuple:
    """A MeterValues message of one sampled value, as the store hands it to the appender."""
    meter_value = [{"timestamp": "2026-11-22T06:00:00Z",
                    "sampledValue": [{"value": str(i), "measurand": "Voltage", "unit": "V"}]}]
    return ("CP1", 1, None, "MeterValues", "2026-11-22T06:00:01.000Z", to_json(meter_value))


def _uids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT unique_id FROM frames ORDER BY id")]


def _values(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT value FROM meter_values ORDER BY id")]


@asynccontextmanager
async def writing(path: str) -> AsyncIterator[tuple[Database, ProcessAppender | ThreadAppender]]:
    """A database and the appender the store would give it, closed (committing everything) whatever happens."""
    db = Database(path)
    await db.open()
    appender = appender_for(db)
    try:
        with trio.fail_after(60):  # a hang is a failure, not a stuck suite
            async with trio.open_nursery() as nursery:
                await nursery.start(appender.run)
                try:
                    yield db, appender
                finally:
                    with trio.CancelScope(shield=True):
                        await appender.close()
    finally:
        with trio.CancelScope(shield=True):
            await db.close()


@pytest.fixture(params=["process", "thread"])
async def setup(request, tmp_path: Path):
    """(database, appender): the writer process on a file, or the database thread on ":memory:"."""
    async with writing(str(tmp_path / "gateway.db") if request.param == "process" else ":memory:") as pair:
        assert isinstance(pair[1], ProcessAppender if request.param == "process" else ThreadAppender)
        yield pair


async def test_sync_returns_once_everything_submitted_is_committed(setup):
    db, appender = setup
    for i in range(1000):
        appender.submit("frames", [_frame(i)])
        appender.submit("meter_values", [_sample(i), _sample(i + 10_000)])
    await appender.sync()
    assert await db.run(_uids) == [f"u{i}" for i in range(1000)]
    values = await db.run(_values)
    assert values == [str(v) for i in range(1000) for v in (i, i + 10_000)]  # each table keeps its order


async def test_write_waits_for_its_own_rows(setup):
    db, appender = setup
    await appender.write("frames", [_frame(1), _frame(2)])
    assert await db.run(_uids) == ["u1", "u2"]


async def test_a_charger_is_seen_when_it_sends_a_frame(setup):
    db, appender = setup
    await db.run(lambda conn: conn.execute("INSERT INTO charge_points (id, first_seen, last_seen) VALUES ('CP9', '2020-01-01', '2020-01-01')"))
    await appender.write("frames", [_frame(5, "CP9"), _frame(7, "CP9"), (*_frame(9, "CP9")[:2], "out", *_frame(9)[3:])])
    seen = await db.run(lambda conn: conn.execute("SELECT last_seen FROM charge_points WHERE id = 'CP9'").fetchone()[0])
    assert seen == _frame(7)[0]  # the newest frame *from* it; an answer sent to it does not count


async def test_rows_that_cannot_be_written_are_logged_and_the_others_land(setup):
    db, appender = setup
    with structlog.testing.capture_logs() as logs:
        appender.submit("meter_values", [_sample(1)])
        appender.submit("frames", [("too", "short")])  # a bug upstream: the frames table needs 7 values a row
        appender.submit("meter_values", [_sample(2)])
        await appender.sync()
        assert await db.run(_values) == ["1", "2"]  # a later job: the thread has logged the failure by then
    assert any(e["event"] == "database write failed" and "frames" in e["error"] for e in logs)
    await appender.write("frames", [_frame(3)])  # and it goes on working
    assert await db.run(_uids) == ["u3"]


async def test_a_value_the_pipe_cannot_carry_loses_only_its_own_rows(tmp_path):
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        with structlog.testing.capture_logs() as logs:
            appender.submit("meter_values", [_sample(1)])
            appender.submit("meter_values", [(*_sample(2)[:5], object())])
            appender.submit("meter_values", [_sample(3)])
            await appender.sync()
        assert await db.run(_values) == ["1", "3"]
        assert any(e["event"] == "database write failed" for e in logs)


async def test_close_commits_what_was_submitted_and_ends_the_process(tmp_path):
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        pid = appender.pid
        for i in range(5000):
            appender.submit("meter_values", [_sample(i)])
        await appender.close()
        assert len(await db.run(_values)) == 5000
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_cancelled_store_still_commits_what_was_said(tmp_path):
    """The gateway's nursery cancelled from outside: the frame log's last flush and queued meter values land."""
    path = str(tmp_path / "gateway.db")
    with trio.fail_after(60):
        with trio.CancelScope() as scope:
            async with open_store(path) as store:
                for i in range(10):
                    store.frames.record("CP1", "in", f"frame {i}")
                store.transactions.add_meter_values("CP1", 1, None, [{"timestamp": "2026-11-22T06:00:00Z",
                                                                      "sampledValue": [{"value": str(i)} for i in range(5)]}],
                                                    "2026-11-22T06:00:01.000Z")
                scope.cancel()
                await trio.sleep_forever()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM frames WHERE charge_point_id = 'CP1'").fetchone()[0] == 10
    assert conn.execute("SELECT COUNT(*) FROM meter_values").fetchone()[0] == 5
    conn.close()


async def test_a_killed_writer_is_replaced_and_given_again_what_it_had_not_committed(tmp_path, monkeypatch):
    monkeypatch.setattr(appender_module, "RESTART_DELAY", 0.01)
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        await appender.write("frames", [_frame(i) for i in range(100)])
        first = appender.pid
        appender.submit("frames", [_frame(i) for i in range(100, 200)])
        os.kill(first, signal.SIGKILL)  # the batch reaches it, or not: either way the next one gets it
        with structlog.testing.capture_logs() as logs:
            await appender.sync()
        assert appender.restarts == 1 and appender.pid != first and appender.fallback is None
        assert await db.run(_uids) == [f"u{i}" for i in range(200)]
        assert any(e["event"] == "database writer ended" for e in logs)


async def test_writers_that_keep_dying_hand_over_to_the_database_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(appender_module, "RESTART_DELAY", 0.01)
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        await appender.write("frames", [_frame(0)])
        monkeypatch.setattr(appender_module.sys, "executable", "/bin/false")  # every new writer dies at once
        appender.submit("frames", [_frame(1)])
        with structlog.testing.capture_logs() as logs:
            os.kill(appender.pid, signal.SIGKILL)
            await appender.sync()  # does not wait for ever
        assert appender.fallback is not None
        appender.submit("frames", [_frame(2)])
        await appender.sync()
        assert await db.run(_uids) == ["u0", "u1", "u2"]
        events = [e["event"] for e in logs]
        assert events.count("database writer could not start") == appender_module.MAX_FAILURES
        assert "database writer given up; the database thread writes frames and meter values" in events


async def test_a_writer_that_cannot_be_started_again_does_not_stop_the_gateway(tmp_path, monkeypatch):
    monkeypatch.setattr(appender_module, "RESTART_DELAY", 0.01)

    async def no_process(*args, **kwargs):
        raise OSError(24, "Too many open files")

    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        monkeypatch.setattr(appender_module.trio.lowlevel, "open_process", no_process)
        appender.submit("meter_values", [_sample(1)])
        os.kill(appender.pid, signal.SIGKILL)
        await appender.sync()
        assert appender.fallback is not None
        assert await db.run(_values) == ["1"]


async def test_a_writer_that_cannot_start_is_an_error_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(appender_module.sys, "executable", "/bin/false")
    with pytest.raises(ExceptionGroup) as raised:
        with trio.fail_after(30):
            async with open_store(str(tmp_path / "gateway.db")):
                pass
    assert raised.group_contains(appender_module.WriterFailed, match="could not start", depth=1)


async def test_a_writer_that_hangs_at_close_is_killed_and_the_database_thread_writes_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(appender_module, "CLOSE_TIMEOUT", 0.5)
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        await appender.write("meter_values", [_sample(0)])
        pid = appender.pid
        os.kill(pid, signal.SIGSTOP)  # a writer stuck in the kernel
        appender.submit("meter_values", [_sample(1)])
        with structlog.testing.capture_logs() as logs:
            await appender.close()
        assert await db.run(_values) == ["0", "1"]
        assert any(e["event"].startswith("database writer did not finish") for e in logs)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_the_writer_outlives_a_signal_sent_to_the_whole_process_group(tmp_path):
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        await appender.write("frames", [_frame(0)])  # it is up and has set its signals aside
        for sig in (signal.SIGTERM, signal.SIGINT):  # a terminal's Ctrl-C, systemd's stop: the gateway decides
            os.kill(appender.pid, sig)
        await trio.sleep(0.2)
        await appender.write("frames", [_frame(1)])
        assert appender.restarts == 0
        assert await db.run(_uids) == ["u0", "u1"]


async def test_the_database_thread_and_the_writer_share_the_file_without_lock_errors(tmp_path):
    def insert(conn: sqlite3.Connection, i: int) -> None:
        conn.execute("INSERT INTO id_tags (id_tag, status, created_at, updated_at) VALUES (?, 'Accepted', ?, ?)",
                     (f"T{i}", "2026-11-22", "2026-11-22"))

    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        async def thread_writes() -> None:
            for i in range(300):
                await db.run(insert, i)

        async with trio.open_nursery() as both:
            both.start_soon(thread_writes)
            for i in range(300):
                appender.submit("meter_values", [_sample(i)] * 20)
                await trio.sleep(0.001)
        await appender.sync()
        assert await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM id_tags").fetchone()[0]) == 300
        assert len(await db.run(_values)) == 6000


def test_the_writer_reads_messages_split_anywhere_in_the_pipe():
    messages = [(i, [("meter_values", [_sample(i)] * (i % 4))]) for i in range(50)]
    data = b"".join(writer.encode(m) for m in messages)
    read_fd, write_fd = os.pipe()
    received = []
    try:
        pos = 0
        for size in [1, 3, 7, 500, 2, 10_000, 5]:  # pieces that cut headers and bodies
            os.write(write_fd, data[pos:pos + size])
            pos += size
        os.write(write_fd, data[pos:])
        os.close(write_fd)
        for chunk in writer.read_messages(read_fd):
            received.extend(chunk)
    finally:
        os.close(read_fd)
    assert [marshal.loads(m) for m in received] == messages


def test_the_writer_commits_a_backlog_in_pieces_and_acknowledges_each(tmp_path, monkeypatch):
    from gateway.store.writer.connection import connect, for_writing
    from gateway.store.db import migrate
    monkeypatch.setattr(writer, "MAX_ROWS", 100)
    path = str(tmp_path / "gateway.db")
    conn = connect(path)
    migrate(conn)
    for_writing(conn)
    to_writer, from_gateway = os.pipe()[::-1]
    acks_in, acks_out = os.pipe()
    for seq in range(1, 11):
        os.write(to_writer, writer.encode((seq, [("meter_values", [_sample(seq)] * 60)])))
    os.close(to_writer)
    writer.serve(conn, from_gateway, acks_out)
    os.close(acks_out)
    acks = []
    data = os.read(acks_in, 1 << 16)
    while data:
        (size,) = writer.HEADER.unpack_from(data)
        acks.append(marshal.loads(data[4:4 + size]))
        data = data[4 + size:]
    assert [seq for seq, _ in acks] == [0, 2, 4, 6, 8, 10]  # ready; then 120 rows a transaction, each acknowledged
    assert all(errors == [] for _, errors in acks)
    assert conn.execute("SELECT COUNT(*) FROM meter_values").fetchone()[0] == 600


def test_a_file_that_stays_locked_is_not_taken_for_bad_rows(tmp_path, monkeypatch):
    """Rows are dropped only when they are at fault; a locked file ends the writer, and the gateway resends."""
    from gateway.store.writer import connection
    from gateway.store.writer.connection import connect, for_writing
    from gateway.store.db import migrate
    monkeypatch.setattr(connection, "LOCK_TIMEOUT", 0.05)
    path = str(tmp_path / "gateway.db")
    holder = connect(path)
    migrate(holder)
    conn = for_writing(connect(path))
    holder.execute("BEGIN IMMEDIATE")  # the database thread in a long transaction
    with pytest.raises(sqlite3.OperationalError):
        writer.commit(conn, [("meter_values", [_sample(1)])])
    holder.execute("ROLLBACK")
    assert writer.commit(conn, [("meter_values", [_sample(1)]), ("frames", [("short",)])]) == [
        "frames: 1 rows not written: ValueError('rows for frames must have 7 values each')"]
    assert conn.execute("SELECT COUNT(*) FROM meter_values").fetchone()[0] == 1


async def test_a_query_waits_for_frames_another_flush_has_taken(tmp_path):
    """The frame log's own flush holds the buffer while the writer commits it: a query must still see them."""
    from gateway.store.frame_log import FrameLog
    async with writing(str(tmp_path / "gateway.db")) as (db, appender):
        log = FrameLog(db, appender=appender)
        for i in range(5):
            log.record("CP1", "in", f"frame {i}")
        answers = []

        async def query() -> None:
            answers.append([f["body"] for f in await log.recent("CP1")])

        os.kill(appender.pid, signal.SIGSTOP)  # a slow commit
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(log.flush)  # the periodic flush: it takes the buffer and waits for the writer
                await trio.sleep(0)
                nursery.start_soon(query)
                await trio.sleep(0.3)
                assert answers == []  # still waiting for the frames the other flush holds
                os.kill(appender.pid, signal.SIGCONT)
        finally:
            os.kill(appender.pid, signal.SIGCONT)
        assert answers == [[f"frame {i}" for i in reversed(range(5))]]



@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
async def test_the_writer_yields_to_the_event_loop(tmp_path):
    """Lower priority, and its wake-ups do not preempt a running task (SCHED_BATCH): the chargers come first."""
    async with writing(str(tmp_path / "gateway.db")) as (_db, appender):
        assert os.sched_getscheduler(appender.pid) == os.SCHED_BATCH
        assert os.getpriority(os.PRIO_PROCESS, appender.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + writer.NICENESS)


def test_the_writer_process_imports_neither_the_tables_nor_trio():
    """It starts small: its package is standard library only (gateway/store/writer/)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, gateway.store.writer.process; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert "gateway.store.writer.process" in loaded
    store_room = {"gateway.store", "gateway.store.writer"}  # the packages it lives in, which import nothing
    assert [m for m in loaded if m.startswith(("gateway.store.", "trio", "structlog", "outcome"))
            and m not in store_room and not m.startswith("gateway.store.writer.")] == []
