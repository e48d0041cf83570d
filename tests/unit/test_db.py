"""gateway.store.db.Database: one SQLite thread, migrations, group commit."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.store.db import Database, StoreClosed, StoreOpenError, migrate, migration_files
from gateway.store.scope import EVERYTHING


def _insert(conn: sqlite3.Connection, cp_id: str) -> int:
    return conn.execute(
        "INSERT INTO frames (at, charge_point_id, direction) VALUES ('2025-08-14T01:23:00.000Z', ?, 'in')",
        (cp_id,),
    ).lastrowid


def _ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT charge_point_id FROM frames ORDER BY id")]


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM frames").fetchone()[0]


class Boom(Exception):
    pass


def _insert_then_fail(conn: sqlite3.Connection, cp_id: str) -> None:
    _insert(conn, cp_id)
    raise Boom(cp_id)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "data" / "gateway.db")


@pytest.fixture
async def db(db_path: str):
    database = Database(db_path)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def _hold(db: Database) -> threading.Event:
    """Block the database thread inside one job until the returned event is set.

    Jobs queued meanwhile are all taken together, as the next batch.
    """
    entered, release = threading.Event(), threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    db.submit(hold)
    await trio.to_thread.run_sync(entered.wait)
    return release


# --- opening and migrations -------------------------------------------------------------------


def test_there_is_at_least_one_migration_numbered_in_order():
    numbers = [number for number, _name, _sql in migration_files()]
    assert numbers
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1


async def test_open_creates_the_folder_and_applies_migrations(db, db_path):
    assert Path(db_path).is_file()
    highest = migration_files()[-1][0]
    assert await db.run(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0]) == highest
    tables = await db.run(lambda conn: {r[0] for r in conn.execute("SELECT name FROM sqlite_master")})
    assert {"charge_points", "frames", "transactions", "id_tags"} <= tables


async def test_reopening_does_not_migrate_again(db_path):
    for _ in range(2):
        database = Database(db_path)
        await database.open()
        version = await database.run(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0])
        await database.close()
        assert version == migration_files()[-1][0]


async def test_open_fails_on_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreOpenError, match=r"junk\.db: the file is not a SQLite database"):
        await Database(str(path)).open()


# --- run --------------------------------------------------------------------------------------


async def test_run_returns_the_value_of_fn(db):
    assert await db.run(lambda conn, a, b: a + b, 2, 3) == 5
    row_id = await db.run(_insert, "CP1")
    assert isinstance(row_id, int)
    assert await db.run(_ids) == ["CP1"]


async def test_run_returns_after_commit(db, db_path):
    await db.run(_insert, "CP1")
    # Another connection sees the row: it was committed before run() returned.
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("SELECT charge_point_id FROM frames").fetchall() == [("CP1",)]
    finally:
        other.close()


async def test_exception_reaches_its_caller_and_its_writes_are_undone(db):
    with pytest.raises(Boom):
        await db.run(_insert_then_fail, "bad")
    assert await db.run(_count) == 0


async def test_sqlite_error_in_a_job_reaches_its_caller(db):
    def bad_sql(conn):
        conn.execute("INSERT INTO frames (at, charge_point_id, direction) VALUES ('t', 'CP1', 'sideways')")

    with pytest.raises(sqlite3.IntegrityError):
        await db.run(bad_sql)
    await db.run(_insert, "CP1")
    assert await db.run(_ids) == ["CP1"]


async def test_failing_job_does_not_undo_the_others_of_its_batch(db):
    results: dict[str, object] = {}

    async def call(name: str, fn) -> None:
        try:
            results[name] = await db.run(fn, name)
        except Boom as exc:
            results[name] = exc

    release = await _hold(db)
    commits = db.commits
    async with trio.open_nursery() as nursery:
        for name, fn in [("a", _insert), ("b", _insert_then_fail), ("c", _insert), ("d", _insert_then_fail),
                         ("e", _insert)]:
            nursery.start_soon(call, name, fn)
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    # the holding job's batch; then the batch of five is undone and a, c and e commit one by one
    assert db.commits - commits == 4
    assert isinstance(results["b"], Boom) and str(results["b"]) == "b"
    assert isinstance(results["d"], Boom) and str(results["d"]) == "d"
    assert all(isinstance(results[name], int) for name in "ace")
    assert sorted(await db.run(_ids)) == ["a", "c", "e"]


async def test_concurrent_jobs_without_failure_all_land(db):
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(db.run, _insert, f"CP{i}")
    assert sorted(await db.run(_ids)) == sorted(f"CP{i}" for i in range(20))


async def test_group_commit(db):
    commits = db.commits
    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(db.run, _insert, f"CP{i}")
    assert await db.run(_count) == 200
    assert db.commits - commits < 200
    assert db.jobs >= 200


async def test_queued_jobs_share_one_commit(db):
    release = await _hold(db)
    commits = db.commits
    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(db.run, _insert, f"CP{i}")
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert db.commits - commits == 2
    assert await db.run(_count) == 50


# --- submit and close -------------------------------------------------------------------------


async def test_submit_is_committed_by_close(db_path):
    database = Database(db_path)
    await database.open()
    for i in range(10):
        database.submit(_insert, f"CP{i}")
    await database.close()

    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM frames").fetchone()[0] == 10
    finally:
        conn.close()


async def test_a_failing_submit_does_not_disturb_other_jobs(db):
    db.submit(_insert_then_fail, "bad")
    db.submit(_insert, "good")
    assert await db.run(_ids) == ["good"]


async def test_data_survives_close_and_reopen(db_path):
    first = Database(db_path)
    await first.open()
    await first.run(_insert, "CP1")
    await first.close()

    second = Database(db_path)
    await second.open()
    try:
        assert await second.run(_ids) == ["CP1"]
        await second.run(_insert, "CP2")
        assert await second.run(_ids) == ["CP1", "CP2"]
    finally:
        await second.close()


async def test_run_after_close_raises_store_closed(db_path):
    database = Database(db_path)
    await database.open()
    await database.close()
    with pytest.raises(StoreClosed):
        await database.run(_count)


async def test_submit_after_close_raises_store_closed(db_path):
    database = Database(db_path)
    await database.open()
    await database.close()
    with pytest.raises(StoreClosed):
        database.submit(_insert, "CP1")


async def test_close_twice_is_harmless(db_path):
    database = Database(db_path)
    await database.open()
    await database.close()
    await database.close()


async def test_close_without_open(db_path):
    database = Database(db_path)
    await database.close()
    with pytest.raises(StoreClosed):
        await database.run(_count)


async def test_memory_database():
    database = Database(":memory:")
    await database.open()
    try:
        await database.run(_insert, "CP1")
        assert await database.run(_ids) == ["CP1"]
    finally:
        await database.close()


# --- many rows at once ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 127, 128, 129, 255, 256, 300, 1001])
def test_insert_rows_lands_every_row_once_and_in_order(count):
    from gateway.store.db import connect, insert_rows, migrate

    conn = connect(":memory:")
    migrate(conn)
    rows = [(f"2025-08-14T01:23:{i % 60:02d}.000Z", f"CP{i}", "in", 2 if i % 2 else None, f"u{i}", None, f"[{i}]")
            for i in range(count)]
    insert_rows(conn, "frames", "at, charge_point_id, direction, message_type, unique_id, action, body", rows)
    stored = conn.execute(
        "SELECT at, charge_point_id, direction, message_type, unique_id, action, body FROM frames ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in stored] == rows


def test_insert_rows_uses_few_statements():
    """1,000 rows: seven of 128, then 64 + 32 + 8 (binary decomposition), ten statements in all."""
    from gateway.store.db import connect, insert_rows, migrate

    conn = connect(":memory:")
    migrate(conn)
    statements = []
    conn.set_trace_callback(statements.append)
    rows = [("2025-08-14T01:23:00.000Z", "CP1", "in", None, None, None, str(i)) for i in range(1000)]
    insert_rows(conn, "frames", "at, charge_point_id, direction, message_type, unique_id, action, body", rows)
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 10
    assert conn.execute("SELECT count(*) FROM frames").fetchone()[0] == 1000


def test_meter_values_are_found_by_transaction_through_an_index_in_the_order_sent():
    from gateway.store.db import connect, migrate

    conn = connect(":memory:")
    migrate(conn)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                          "AND tbl_name = 'meter_value_sets'")}
    assert indexes == {"meter_value_sets_tx"}  # no query reads meter values by charger
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY id", (1,)))
    assert "USING INDEX meter_value_sets_tx" in plan
    # The sampled values of one message share its id: they keep the order of its JSON only if
    # nothing sorts them again.
    assert "TEMP B-TREE" not in plan


def test_insert_rows_refuses_rows_of_the_wrong_length():
    """A short row and a long one in one chunk would otherwise shift every value after them."""
    from gateway.store.db import connect, insert_rows, migrate

    conn = connect(":memory:")
    migrate(conn)
    rows = [("2025-08-14T01:23:00.000Z", "CP1", "in", None, None, None),
            ("2025-08-14T01:23:00.000Z", "CP1", "in", None, None, None, "body", "extra")]
    with pytest.raises(ValueError, match="7 values each"):
        insert_rows(conn, "frames", "at, charge_point_id, direction, message_type, unique_id, action, body", rows)


def test_meter_values_kept_before_migration_7_read_back_the_same():
    """Rows of the old one-row-per-sampled-value table move into meter_value_sets unchanged for readers."""
    from gateway.store.db import connect

    conn = connect(":memory:")
    for number, _name, sql in migration_files():
        if number < 7:
            conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
    columns = ("charge_point_id, connector_id, transaction_id, timestamp, value, measurand, phase, unit, context, "
               "location, format, source, received_at")
    old = [("CP1", 1, 7, "2026-03-01T10:15:00Z", "13345", "Energy.Active.Import.Register", None, "Wh", None, None,
            None, "MeterValues", "2026-03-01T10:15:00.100Z"),
           ("CP1", 1, 7, "2026-03-01T10:15:00Z", "7.2", "Power.Active.Import", "L1", "kW", "Sample.Periodic",
            "Outlet", "Raw", "MeterValues", "2026-03-01T10:15:00.100Z"),
           ("CP1", 1, 7, "2026-03-01T10:30:00Z", "5", '{"odd": 1}', '["L1"]', "7", None, None, None,
            "StopTransaction", "2026-03-01T10:30:00.200Z"),  # lenient mode's objects, kept as JSON text
           ("CP2", 0, None, "2026-03-01T11:00:00Z", "230.1", "Voltage", None, "V", None, None, None, "MeterValues",
            "2026-03-01T11:00:00.000Z")]
    conn.executemany(f"INSERT INTO meter_values ({columns}) VALUES ({', '.join('?' * 13)})", [old[0]] + old)
    conn.execute("DELETE FROM meter_values WHERE id = 1")  # ids with a gap: they are kept as they are
    migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 7
    assert conn.execute("SELECT type FROM sqlite_master WHERE name = 'meter_values'").fetchone()[0] == "view"
    after = [tuple(r) for r in conn.execute(f"SELECT id, {columns} FROM meter_values ORDER BY id")]
    assert after == [(i, *row) for i, row in enumerate(old, start=2)]
    assert conn.execute("SELECT COUNT(*) FROM meter_value_sets").fetchone()[0] == 4


def test_the_meter_values_view_reads_fields_as_the_old_table_kept_them():
    """Strings as sent; numbers, objects and lists as JSON text (lenient mode; compact, where the old table
    kept objects with json.dumps' spaces); null and missing as NULL."""
    import json

    from gateway.jsontext import to_json
    from gateway.store.writer import rows as writer_rows
    from gateway.store.db import connect

    conn = connect(":memory:")
    migrate(conn)
    sent = [{"timestamp": "2026-03-01T10:15:00Z", "sampledValue": [
                {"value": "1", "measurand": "Voltage", "unit": "V"},
                {"value": 2.5, "measurand": {"odd": [1, "x"]}, "phase": None, "unit": 7, "format": True}]},
            {"timestamp": "2026-03-01T10:16:00Z"},  # no sampled value: no row
            {"timestamp": "2026-03-01T10:17:00Z", "sampledValue": [{"value": "3", "location": "Inlet"}]}]
    writer_rows.meter_values(conn, [("CP1", 1, 9, "MeterValues", "2026-03-01T10:17:00.500Z", to_json(sent))])
    rows = [dict(r) for r in conn.execute("SELECT * FROM meter_values WHERE transaction_id = 9 ORDER BY id")]
    fields = ("timestamp", "value", "measurand", "phase", "unit", "location", "format")
    assert [tuple(r[f] for f in fields) for r in rows] == [
        ("2026-03-01T10:15:00Z", "1", "Voltage", None, "V", None, None),
        ("2026-03-01T10:15:00Z", "2.5", '{"odd":[1,"x"]}', None, "7", None, "true"),
        ("2026-03-01T10:17:00Z", "3", None, None, None, "Inlet", None)]
    assert json.loads(rows[1]["measurand"]) == {"odd": [1, "x"]}
    assert {(r["charge_point_id"], r["connector_id"], r["source"], r["received_at"]) for r in rows} == {
        ("CP1", 1, "MeterValues", "2026-03-01T10:17:00.500Z")}


def test_frames_are_read_in_the_order_of_an_index_without_sorting_them_all():
    """The console pages frames newest first, by charger or not, in a time window or not, for the platform or
    a tenant: the index by (charger, time) or by time gives that order, so LIMIT stops early instead of sorting
    every frame."""
    from gateway.store import frame_log as frames
    from gateway.store.db import connect
    from gateway.store.scope import Scope

    conn = connect(":memory:")
    migrate(conn)
    for cp_id, scope in (("CP1", EVERYTHING), (None, EVERYTHING), ("CP1", Scope(2, frozenset({2, 3}))),
                         (None, Scope(2, frozenset({2, 3})))):
        for since, until, before in ((None, None, None), ("2026-01-01", None, None),
                                     ("2026-01-01", "2027-01-01", None), (None, None, 500), ("2026-01-01", None, 500)):
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            frames._recent(conn, cp_id, since, until, before, 100, scope=scope)
            frames._query(conn, cp_id, since, until, 100, scope=scope)
            conn.set_trace_callback(None)
            for sql in statements:
                plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
                assert "USING INDEX frames_" in plan and "TEMP B-TREE" not in plan, (sql, plan)

def test_paging_back_through_frames_sees_each_once_even_after_the_clock_stepped_back():
    """Newest first is by the time the gateway stamped, then id; the cursor is a frame: every page
    continues exactly where the last one stopped, also across a clock set back (NTP at boot)."""
    from gateway.store import frame_log as frames
    from gateway.store.db import connect, insert_rows

    conn = connect(":memory:")
    migrate(conn)
    stamps = [f"2026-12-02T10:00:0{i}.000Z" for i in range(6)] + [f"2026-12-02T09:59:5{i}.000Z" for i in range(5)]
    insert_rows(conn, "frames", "at, charge_point_id, direction, body",
                [(at, "CP1", "in", str(i)) for i, at in enumerate(stamps)])
    seen, before = [], None
    while page := frames._recent(conn, "CP1", None, None, before, 3, scope=EVERYTHING):
        seen += [(f["at"], f["id"]) for f in page]
        before = page[-1]["id"]
    assert seen == sorted(((at, i + 1) for i, at in enumerate(stamps)), reverse=True)


def test_sqlite_pragmas_from_the_environment_are_name_value_pairs_only():
    from gateway.store.writer.connection import extra_pragmas
    assert extra_pragmas("max_page_count=10; query_only = 1;") == ["PRAGMA max_page_count = 10",
                                                                  "PRAGMA query_only = 1"]
    assert extra_pragmas("") == []
    with pytest.raises(ValueError, match=r"'query_only=1 -- x' is not name=value"):
        extra_pragmas("cache_size=-2000;query_only=1 -- x")
