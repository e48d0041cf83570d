"""gateway.store.calls: table methods declared by their durability, and readers of appended rows that wait for them."""

from __future__ import annotations

import inspect
import os
import signal
from pathlib import Path

import pytest
import trio

from tests.backend import database
from gateway.store.health import StoreUnavailable

from gateway.store.store import open_store
from gateway.store.calls import APPENDED, BATCHED, COMMITTED, Table, batched, committed
from gateway.store.commands import Commands, _begin
from gateway.store.db import Database
from gateway.store.frame_log import FrameLog
from gateway.store.id_tags import IdTags, _put
from gateway.store.orders import Orders
from gateway.store.store import TABLES, Store
from gateway.store.transactions import Transactions

T0 = "2026-11-22T06:00:00.000Z"


@pytest.fixture
async def db():
    database = Database(":memory:")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


def _store_methods():
    for table in [*TABLES.values(), FrameLog]:
        for name, member in vars(table).items():
            if callable(member) and not name.startswith("_") and name not in ("run", "appended_committed"):
                yield table, name, member


def test_the_store_holds_every_table_family():
    names = set(inspect.get_annotations(Store))
    assert set(TABLES) == names and len(names) == 27
    assert all(issubclass(table, Table) for table in TABLES.values())


@pytest.mark.parametrize(("table", "name", "method"), list(_store_methods()), ids=lambda v: getattr(v, "__name__", v))
def test_every_store_method_states_its_durability(table, name, method):
    assert method.durability in (COMMITTED, BATCHED, APPENDED)
    # awaited exactly when the caller is told it was committed
    assert inspect.iscoroutinefunction(method) == (method.durability == COMMITTED)
    if getattr(method, "generated", False):
        assert method.__name__ == name and method.__qualname__ == f"{table.__name__}.{name}"


def test_a_generated_method_has_the_job_function_signature_and_doc_without_conn():
    put = inspect.signature(IdTags.put)
    assert list(put.parameters) == ["self", "id_tag", "status", "expiry_date", "parent_id_tag", "at"]
    assert put.parameters["status"].default == "Accepted"
    assert put.parameters["at"].kind is inspect.Parameter.KEYWORD_ONLY
    assert put.return_annotation == inspect.signature(_put).return_annotation
    assert Commands.begin.__doc__ == _begin.__doc__ and "rides on the next commit" in Commands.begin.__doc__
    assert IdTags.put.__module__ == "gateway.store.id_tags"


def test_defaults_given_in_the_declaration_show_in_the_signature():
    assert inspect.signature(Orders.unbilled_transactions).parameters["limit"].default == 500
    with pytest.raises(TypeError, match="no parameter nope"):
        committed(lambda conn, limit: None, nope=1)


async def test_a_committed_call_is_kept_when_it_returns(db):
    tags = IdTags(db)
    await tags.put("TAG1", at=T0)
    await tags.put("TAG2", "Blocked", None, None, at=T0)
    assert [(t["id_tag"], t["status"]) for t in await tags.all()] == [("TAG1", "Accepted"), ("TAG2", "Blocked")]
    page = await tags.list(page=1, size=1)
    assert page["total"] == 2 and [t["id_tag"] for t in page["records"]] == ["TAG1"]


async def test_wrong_arguments_fail_in_the_caller_naming_the_method_and_nothing_is_queued(db):
    tags, commands = IdTags(db), Commands(db)
    with pytest.raises(TypeError, match=r"IdTags\.put\(\): missing a required argument: 'at'"):
        await tags.put("TAG1")
    with pytest.raises(TypeError, match=r"IdTags\.get\(\): too many positional arguments"):
        await tags.get("TAG1", "TAG2")
    with pytest.raises(TypeError, match=r"Commands\.begin\(\): got an unexpected keyword argument 'nope'"):
        commands.begin("r1", "CP1", "Reset", {}, T0, nope=1)
    assert db.jobs == 0  # nothing reached the database
    assert await tags.all() == []


async def test_a_batched_call_returns_at_once_and_lands_before_any_later_call(db):
    commands = Commands(db)
    assert commands.begin("r1", "CP1", "Reset", {"type": "Soft"}, T0) is None
    commands.finish("r1", "answered", {"status": "Accepted"}, None, T0, 12.5)
    got = await commands.get("r1")
    assert got["payload"] == {"type": "Soft"} and got["outcome"] == "answered" and got["latency_ms"] == 12.5


async def test_a_batched_call_with_keywords_reaches_the_job_function(db):
    class Tags(Table):
        put = batched(_put)
        all = committed(lambda conn: [dict(r) for r in conn.execute("SELECT id_tag, status FROM id_tags")])
    tags = Tags(db)
    tags.put("TAG9", status="Expired", at=T0)
    assert await tags.all() == [{"id_tag": "TAG9", "status": "Expired"}]


async def test_appended_meter_values_are_refused_while_the_file_fails_the_writer(db):
    transactions = Transactions(db)
    db.health.failed("database", "the disk is full (database or disk is full)")
    with pytest.raises(StoreUnavailable, match="the disk is full"):
        transactions.add_meter_values("CP1", 1, None, [{"timestamp": T0, "sampledValue": [{"value": "1"}]}], T0)
    transactions.add_meter_values("CP1", 1, None, [], T0)  # nothing to keep: nothing refused


# --- readers of appended rows wait for them ---------------------------------------------------


async def test_readers_of_meter_values_wait_for_what_the_writer_holds(tmp_path: Path):
    """The writer process is stopped while meter values wait in it: a transaction's samples and the pricing
    input of its order are read only once they are committed, without the caller asking for it."""
    async with open_store(database(tmp_path, "gateway.db")) as store:
        await store.chargers.connected("CP1", "127.0.0.1", "ocpp1.6", T0)
        tx = await store.transactions.start("CP1", 1, "TAG", "Accepted", 0, T0, None, T0)
        order = await store.orders.open_for_transaction(
            tx, "default", "CNY", "2026-11-22", T0,
            {"started_at": T0, "start_source": "charger", "charger_started_at": T0}, T0)
        energy = [{"timestamp": T0, "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register"}]}]
        answers: dict[str, object] = {}

        async def read(name, call) -> None:
            answers[name] = await call

        os.kill(store.appender.pid, signal.SIGSTOP)  # the writer cannot commit what it is given
        try:
            store.transactions.add_meter_values("CP1", 1, tx, energy, T0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, "samples", store.transactions.samples(tx))
                nursery.start_soon(read, "pricing", store.orders.pricing_input(order["id"]))
                await trio.sleep(0.2)
                os.kill(store.appender.pid, signal.SIGCONT)
        finally:
            os.kill(store.appender.pid, signal.SIGCONT)
        assert [s["value"] for s in answers["samples"]] == ["1500"]
        assert [r["value"] for r in answers["pricing"].readings] == ["1500"]


async def test_frame_log_readers_see_every_frame_recorded_before_the_call(tmp_path: Path):
    async with open_store(database(tmp_path, "gateway.db"), flush_interval=3600) as store:
        for i in range(3):
            store.frames.record("CP1", "in", f"frame {i}")
        assert [f["body"] for f in await store.frames.query("CP1")] == ["frame 0", "frame 1", "frame 2"]
        store.frames.record("CP1", "out", "frame 3")
        assert [f["body"] for f in await store.frames.recent("CP1", limit=2)] == ["frame 3", "frame 2"]


def test_a_method_declared_twice_is_refused():
    with pytest.raises(TypeError, match=r"Twice\.get is declared twice"):
        class Twice(Table, committed=dict(get=_put)):
            get = committed(_put)


async def test_who_is_out_of_service_is_read_once_and_forgotten_on_every_change(tmp_path):
    from gateway import clock
    from gateway.store.store import open_store
    async with open_store(database(tmp_path, "g.db")) as store:
        created, entry = await store.registry.create("CP1", None, None, [], clock.iso())
        assert created == "created" and await store.chargers.availability("CP1") is None  # now held in memory
        await store.registry.update(entry["id"],
                                    {"enabled": False}, clock.iso())
        assert await store.chargers.availability("CP1") == "disabled"
        assert await store.chargers.set_availability("CP1", True, "maintenance", clock.iso())
        assert await store.chargers.availability("CP1") == "maintenance"
        await store.registry.delete(entry["id"])
        assert await store.chargers.availability("CP1") is None  # no entry: in service
