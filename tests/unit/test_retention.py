"""gateway.store.retention: old rows deleted in small batches, meter values thinned with pricing intact, space
given back to the file system."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway import clock
from gateway.billing.orders import pricing_fields
from gateway.billing.settings import from_config
from gateway.config import BillingConfig
from gateway.store import retention as retention_module
from gateway.store.orders import _READINGS
from gateway.store.retention import Batch, Policy, Rule, Thinning, priced, thinned
from gateway.store.store import open_store
from gateway.store.writer.rows import meter_values

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))


def _register(wh: int, **more: str) -> dict:
    return {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh", **more}


def _message(at: datetime, wh: int) -> list[dict]:
    """What a typical charger sends each minute: the register, per-phase registers, power, current, SoC."""
    return [{"timestamp": clock.iso(at), "sampledValue": [
        _register(wh, context="Sample.Periodic"),
        _register(wh // 3, phase="L1"),
        {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "32.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        {"value": "55", "measurand": "SoC", "unit": "Percent", "location": "EV"}]}]


# --- the pure rules -------------------------------------------------------------------------------------------

def test_priced_is_the_main_import_register_at_the_outlet():
    assert priced({"value": "1"})  # no measurand: the register, by the 1.6 default
    assert priced(_register(5, location="Outlet", format="Raw", context="Transaction.Begin"))
    assert not priced(_register(5, phase="L1"))
    assert not priced(_register(5, location="Inlet"))
    assert not priced(_register(5, format="SignedData"))
    assert not priced({"value": "5", "measurand": "Power.Active.Import"})
    assert not priced({"value": "5", "measurand": 7})  # what the view gives as JSON text "7"
    assert not priced("5")


def test_thinned_keeps_only_the_priced_values_and_says_when_nothing_stays():
    text = json.dumps(_message(NOW, 3000))
    assert json.loads(thinned(text)) == [{"timestamp": clock.iso(NOW),
                                          "sampledValue": [_register(3000, context="Sample.Periodic")]}]
    only_register = json.dumps([{"timestamp": "t", "sampledValue": [_register(1)]}])
    assert thinned(only_register) is only_register  # nothing to drop: not rewritten
    assert thinned(json.dumps([{"timestamp": "t", "sampledValue": [{"value": "1", "measurand": "SoC"}]}])) is None
    assert thinned("not json") is None
    assert thinned("{}") is None


def test_batch_size_follows_the_time_a_batch_took():
    batch = Batch(200)
    batch.took(retention_module.TARGET_SECONDS * 4)
    assert batch.size == 50
    batch.took(retention_module.TARGET_SECONDS / 100)  # fast: grows, at most twice as large
    assert batch.size == 100
    batch.took(retention_module.TARGET_SECONDS / 100, full=False)  # ran out of work: says nothing of more
    assert batch.size == 100
    batch.took(100.0)
    assert batch.size == retention_module.MIN_BATCH


def test_a_rule_refuses_names_that_are_not_names():
    with pytest.raises(ValueError, match="not a table or column name"):
        Rule("frames; DROP TABLE users", "at", 30)
    with pytest.raises(ValueError, match="must not be negative"):
        Rule("frames", "at", -1)


# --- against a database ---------------------------------------------------------------------------------------

def _rows(conn: sqlite3.Connection, sql: str, *args) -> list[dict]:
    return [dict(r) for r in conn.execute(sql, args)]


async def test_a_rule_deletes_older_rows_in_small_batches_and_keeps_the_rest(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    async with open_store(str(tmp_path / "g.db"), retention_days=0) as store:
        def fill(conn):
            conn.executemany("INSERT INTO commands (request_id, charge_point_id, action, payload, sent_at) "
                             "VALUES (?, 'CP1', 'Reset', '{}', ?)",
                             [(f"r{i}", clock.iso(NOW - timedelta(days=100, minutes=i))) for i in range(500)]
                             + [(f"n{i}", clock.iso(NOW - timedelta(days=1, minutes=i))) for i in range(7)])
        await store.db.run(fill)
        jobs = store.db.jobs
        store.retention._batches_by_name["commands"] = Batch(50)
        store.retention.rules.add(Rule("commands", "sent_at", days=90))
        report = await store.retention.prune(NOW)
        assert report["deleted"] == {"commands": 500}
        assert store.db.jobs - jobs > 2  # in several jobs, not one
        left = await store.db.run(_rows, "SELECT request_id FROM commands ORDER BY request_id")
        assert [r["request_id"] for r in left] == sorted(f"n{i}" for i in range(7))
        assert (await store.retention.prune(NOW))["deleted"] == {"commands": 0}


async def test_thinning_keeps_pricing_intact(tmp_path: Path, monkeypatch):
    """A session 21:30 to 22:30 Beijing time over the 22:00 change of rate: 10 kWh before it at 1.50, 2 kWh after
    at 0.80 = 1660 fen, by hand. Thinned to one whole message per 15 minutes, the order prices the same."""
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    start = datetime(2026, 6, 1, 21, 30, tzinfo=SHANGHAI)
    minutes = 60
    wh = [round(10000 * m / 30) if m <= 30 else 10000 + round(2000 * (m - 30) / 30) for m in range(minutes + 1)]
    async with open_store(str(tmp_path / "g.db"), retention_days=0) as store:
        def fill(conn):
            conn.execute("INSERT INTO charge_points (id, first_seen) VALUES ('CP1', '2026-01-01T00:00:00.000Z')")
            conn.execute("""INSERT INTO transactions (id, charge_point_id, connector_id, meter_start, start_timestamp,
                            started_at, meter_stop, stop_timestamp, stopped_at) VALUES (7, 'CP1', 1, 0, ?, ?, ?, ?, ?)""",
                         (clock.iso(start), clock.iso(start), wh[-1], clock.iso(start + timedelta(minutes=minutes)),
                          clock.iso(start + timedelta(minutes=minutes))))
            meter_values(conn, [("CP1", 1, 7, "MeterValues", clock.iso(start + timedelta(minutes=m)),
                                 json.dumps(_message(start + timedelta(minutes=m), wh[m])))
                                for m in range(1, minutes)])
            # a recent session: inside the days kept whole
            conn.execute("INSERT INTO transactions (id, charge_point_id, connector_id) VALUES (8, 'CP1', 1)")
            meter_values(conn, [("CP1", 1, 8, "MeterValues", clock.iso(NOW - timedelta(days=1)),
                                 json.dumps(_message(NOW, 1)))])

        def price(conn):
            tx = dict(conn.execute("SELECT * FROM transactions WHERE id = 7").fetchone())
            readings = _rows(conn, _READINGS, 7)
            return readings, pricing_fields(from_config(BillingConfig(timezone="Asia/Shanghai")),
                                            {"tariff": "standard"}, tx, readings, "2026-01-01T00:00:00.000Z")

        await store.db.run(fill)
        readings_before, before = await store.db.run(price)
        assert before["total_amount"] == 1660 and before["pricing_method"] == "meter_values"
        sets_before = await store.db.run(_rows, "SELECT * FROM meter_value_sets ORDER BY received_at")

        store.retention._batches_by_name["meter_value_sets"] = Batch(16)
        store.retention.policy = Policy(thinning=Thinning(full_days=90, every_minutes=15))
        report = await store.retention.prune(NOW)

        sets_after = await store.db.run(_rows, "SELECT * FROM meter_value_sets ORDER BY received_at")
        readings_after, after = await store.db.run(price)
        assert readings_after == readings_before
        assert after == before
        # 21:31 .. 22:29: the first message of each quarter hour (21:31, 21:45, 22:00, 22:15) kept whole
        whole = [s for s in sets_after if len(json.loads(s["meter_value"])[0]["sampledValue"]) == 5]
        assert [s["received_at"][5:16] for s in whole] == ["06-01T13:31", "06-01T13:45", "06-01T14:00",
                                                            "06-01T14:15", "12-03T12:00"]
        assert report["thinned"] == len(sets_before) - len(whole)  # the 54 others rewritten, the recent one kept
        assert len(sets_after) == len(sets_before)
        assert sets_after[-1] == sets_before[-1]  # the recent session's, untouched (its id too)
        assert [s["id"] for s in sets_after[:-1]] == sorted(s["id"] for s in sets_after[:-1])  # order kept
        assert (await store.retention.prune(NOW))["thinned"] == 0  # done once: the next cycle starts after it


async def test_thinning_deletes_old_messages_with_nothing_priced_beyond_the_first_per_span(tmp_path: Path):
    async with open_store(str(tmp_path / "g.db"), retention_days=0) as store:
        old = NOW - timedelta(days=200)
        soc = json.dumps([{"timestamp": "x", "sampledValue": [{"value": "50", "measurand": "SoC"}]}])
        await store.db.run(meter_values, [("CP1", 1, None, "MeterValues", clock.iso(old + timedelta(minutes=m)), soc)
                                          for m in range(30)])
        store.retention.policy = Policy(thinning=Thinning(full_days=90, every_minutes=10))
        await store.retention.prune(NOW)
        left = await store.db.run(_rows, "SELECT received_at FROM meter_value_sets ORDER BY id")
        spans = {int(clock.parse(r["received_at"]).timestamp()) // 600 for r in left}
        assert len(left) == len(spans) == 3  # 12:00 to 12:29: one per 10 minutes


def _checkpoint(path: str) -> None:
    """Copy the write-ahead log into the file (what SQLite does by itself every 1000 pages)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


async def test_a_new_file_gives_freed_pages_back(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    path = str(tmp_path / "g.db")
    async with open_store(path, retention_days=0) as store:  # the frame log prunes nothing itself
        body = "x" * 2000
        await store.db.run(lambda conn: conn.executemany(
            "INSERT INTO frames (at, charge_point_id, direction, body) VALUES (?, 'CP1', 'in', ?)",
            [(clock.iso(NOW - timedelta(days=60)), body)] * 5000))
        _checkpoint(path)
        full = os.path.getsize(path)
        store.retention.rules.add(Rule("frames", "at", days=30))
        report = await store.retention.prune(NOW)
        assert report["deleted"]["frames"] == 5000
        assert report["freedBytes"] > 5000 * 2000 * 0.9
        stats = await store.retention.refresh_stats()
        assert stats["autoVacuum"] == "incremental" and stats["freeBytes"] == 0 and stats["rows"]["frames"] == 0
        _checkpoint(path)
        assert os.path.getsize(path) < full - 5000 * 2000 * 0.9


async def test_thinned_sessions_give_their_pages_back(tmp_path: Path, monkeypatch):
    """Thinned messages are written again as new rows: the pages they leave empty go back to the file system."""
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    path = str(tmp_path / "g.db")
    async with open_store(path, retention_days=0) as store:
        start = NOW - timedelta(days=200)

        def fill(conn):
            for tx in range(1, 41):
                conn.execute("INSERT INTO transactions (id, charge_point_id, connector_id) VALUES (?, 'CP1', 1)", (tx,))
                meter_values(conn, [("CP1", 1, tx, "MeterValues", clock.iso(start + timedelta(hours=tx, minutes=m)),
                                     json.dumps(_message(start, m))) for m in range(120)])
        await store.db.run(fill)
        before = await store.retention.refresh_stats()
        store.retention.policy = Policy(thinning=Thinning(full_days=90, every_minutes=15))
        report = await store.retention.prune(NOW)
        after = await store.retention.refresh_stats()
    assert report["thinned"] == 40 * (120 - 8)  # 8 quarter hours in two hours: their first message kept whole
    assert after["rows"]["meter_value_sets"] == before["rows"]["meter_value_sets"] == 40 * 120
    assert report["freedBytes"] > 0 and after["freeBytes"] == 0
    assert after["bytes"] < before["bytes"] * 0.6


def _long_session(conn, minutes: int = 300) -> None:
    """Two sessions of two and a half hours each (a message a minute), long over."""
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    conn.execute("INSERT INTO charge_points (id, first_seen) VALUES ('CP1', '2026-01-01T00:00:00.000Z')")
    for tx in (3, 4):
        conn.execute("INSERT INTO transactions (id, charge_point_id, connector_id) VALUES (?, 'CP1', 1)", (tx,))
    meter_values(conn, [("CP1", 1, 3 if m < minutes // 2 else 4, "MeterValues",
                         clock.iso(start + timedelta(minutes=m)), json.dumps(_message(start + timedelta(minutes=m), m)))
                        for m in range(minutes)])


async def _thinned_sets(path: Path, monkeypatch, most: int, stop: float = 1e9) -> tuple[list[dict], list[int]]:
    """The meter values after a cycle whose thinning jobs take at most `most` messages and stop after `stop`
    seconds; each job's messages."""
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    monkeypatch.setattr(retention_module, "MIN_BATCH", 1)
    monkeypatch.setattr(retention_module, "MAX_BATCH", most)
    monkeypatch.setattr(retention_module, "TARGET_SECONDS", 1e9)  # a job's size never shrinks: `most` each
    monkeypatch.setattr(retention_module, "STOP_SECONDS", stop)
    jobs: list[int] = []
    thin = retention_module._thin

    def counted(*args):
        done = thin(*args)
        jobs.append(done.rows)
        return done
    monkeypatch.setattr(retention_module, "_thin", counted)
    async with open_store(str(path), retention_days=0) as store:
        await store.db.run(_long_session)
        store.retention._batches_by_name["meter_value_sets"] = Batch(most)
        store.retention.policy = Policy(thinning=Thinning(full_days=90, every_minutes=15))
        report = await store.retention.prune(NOW)
        assert report["thinned"] == 300 - 20  # 10 quarter hours per session kept whole
        sets = await store.db.run(_rows, "SELECT transaction_id, received_at, meter_value FROM meter_value_sets "
                                         "ORDER BY id")
    return sets, list(jobs)  # (a later call wraps this one)


async def test_a_long_session_is_thinned_over_several_jobs_as_in_one(tmp_path: Path, monkeypatch):
    whole, one_job = await _thinned_sets(tmp_path / "one.db", monkeypatch, 5000)
    split, jobs = await _thinned_sets(tmp_path / "split.db", monkeypatch, 16)
    assert len(one_job) == 1
    assert split == whole  # the same rows, in the same order
    assert len(jobs) >= 300 // 16 and max(jobs) <= 16
    assert [s["received_at"] for s in split] == sorted(s["received_at"] for s in split)
    stopped, jobs = await _thinned_sets(tmp_path / "stopped.db", monkeypatch, 5000, stop=0)
    assert stopped == whole and len(jobs) >= 300 and max(jobs) == 1  # out of time after each message


async def test_a_message_arriving_while_its_session_is_thinned_makes_it_read_again(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(retention_module, "PAUSE", 0)
    monkeypatch.setattr(retention_module, "STOP_SECONDS", 60)  # a job reads its 40 messages on a loaded machine too
    async with open_store(str(tmp_path / "late.db"), retention_days=0) as store:
        await store.db.run(_long_session)
        session = retention_module.Session()
        cutoff = clock.iso(NOW - timedelta(days=90))
        first = await store.db.run(retention_module._thin, cutoff, 15, session, 40)
        assert not first.finished and session.tx == 3 and session.read == 40
        late = datetime(2026, 3, 1, 8, 0, 30, tzinfo=timezone.utc)  # half a minute in: between the first two
        await store.db.run(meter_values, [("CP1", 1, 3, "MeterValues", clock.iso(late), json.dumps(_message(late, 0)))])
        while not (await store.db.run(retention_module._thin, cutoff, 15, session, 40)).finished:
            pass
        sets = await store.db.run(_rows, "SELECT received_at FROM meter_value_sets WHERE transaction_id = 3 "
                                         "ORDER BY id")
    assert len(sets) == 151  # every message kept (thinned), the late one too
    assert sets[-1]["received_at"] == clock.iso(late)  # in the order they were written (by id)
