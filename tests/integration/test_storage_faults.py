"""A real gateway whose database file fails it: full, read-only, locked by another process.

The faults are SQLite's own: `PRAGMA max_page_count` makes the file full (SQLITE_FULL, as a full disk
does), `PRAGMA query_only` makes it read-only (SQLITE_READONLY), a second connection's BEGIN IMMEDIATE
holds its write lock. They are set on the gateway's own connections: the database thread's directly,
the writer process's through GATEWAY_SQLITE_PRAGMAS (read by every connection the gateway opens) and a
restart of the writer. No root, no mount, nothing shared with other tests.

What must hold: nothing the gateway acknowledged is lost, what it cannot keep is refused with a
CALLERROR (the charger sends it again), /health and /metrics say why, and it all recovers once the
fault clears, without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from typing import Any

import pytest
import trio

from gateway.store import appender as appender_module
from gateway.store.writer import connection
from tests.backend import sqlite_only
from tests.conftest import started
from tests.helpers import BOOT, charger, status
from tests.waiting import until

pytestmark = sqlite_only("the faults are SQLite's own (a full, read-only or locked file); a PostgreSQL server's "
                         "outage is tests/integration/test_pg_outage.py")

FILLER = [{"value": "230.0", "measurand": "Voltage", "phase": f"L{k % 3 + 1}", "unit": "V",
           "context": "Sample.Periodic", "location": "Outlet"} for k in range(40)]


@pytest.fixture(autouse=True)
def quick_restarts(monkeypatch):
    monkeypatch.setattr(appender_module, "RESTART_DELAY", 0.05)
    monkeypatch.setattr(appender_module, "MAX_RESTART_DELAY", 0.5)


def meter_values(transaction_id: int, reading: int) -> dict[str, Any]:
    """A MeterValues of some 5 KB (so that a few of them need new pages), its energy reading first."""
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
        {"timestamp": "2026-12-01T10:00:00Z", "sampledValue": [
            {"value": str(reading), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}, *FILLER]}]}


async def database_connection(gw) -> sqlite3.Connection:
    """The database thread's own connection (SQLite serialises its use from two threads)."""
    return await gw.store.db.run(lambda conn: conn)


async def fail_the_file(gw, monkeypatch, name: str, value: int) -> sqlite3.Connection:
    conn = await database_connection(gw)
    conn.execute(f"PRAGMA {name} = {value}")
    monkeypatch.setenv(connection.PRAGMAS_ENV, f"{name}={value}")
    os.kill(gw.store.appender.pid, signal.SIGKILL)  # the next writer opens the file with the fault
    return conn


def mend_the_file(conn: sqlite3.Connection, monkeypatch, name: str, value: int) -> None:
    monkeypatch.delenv(connection.PRAGMAS_ENV)
    conn.execute(f"PRAGMA {name} = {value}")


async def health(gw) -> dict[str, Any]:
    async with gw.http() as http:
        r = await http.get("/health")
        assert r.status_code == 200
        return r.json()


async def metric(gw, line_start: str) -> str:
    async with gw.http() as http:
        text = (await http.get("/metrics")).text
    return next(line for line in text.splitlines() if line.startswith(line_start))


def stored_readings(path: str, transaction_id: int) -> list[int]:
    """The energy readings kept for the transaction, read from the file by a connection of our own."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT meter_value FROM meter_value_sets WHERE transaction_id = ? ORDER BY id",
                            (transaction_id,)).fetchall()
    finally:
        conn.close()
    return [int(entry["sampledValue"][0]["value"]) for (text,) in rows for entry in json.loads(text)
            if entry["sampledValue"][0]["measurand"] == "Energy.Active.Import.Register"]


async def until_refused(cp, transaction_id: int, first: int) -> tuple[list[int], list]:
    """Send MeterValues until one is refused: (the readings acknowledged, the refusal)."""
    acknowledged = []
    for reading in range(first, first + 300):
        reply = await cp.call("MeterValues", meter_values(transaction_id, reading))
        if reply[0] == 4:
            return acknowledged, reply + [reading]
        acknowledged.append(reading)
    raise AssertionError("300 MeterValues acknowledged although the file cannot take them")


async def until_accepted(cp, transaction_id: int, reading: int) -> None:
    """The charger sends the refused MeterValues again, as OCPP lets it, until it is taken."""
    with trio.fail_after(30):
        while (await cp.call("MeterValues", meter_values(transaction_id, reading)))[0] != 3:
            await trio.sleep(0.1)


async def until_healthy(gw) -> None:
    async def healthy() -> bool:
        return (await health(gw))["status"] == "ok"
    await until(healthy, timeout=30)


@pytest.mark.parametrize("name, value, cleared, words", [
    ("max_page_count", 1, 1073741823, "the disk is full"),
    ("query_only", 1, 0, "the database is read-only"),
], ids=["disk full", "read-only"])
async def test_nothing_acknowledged_is_lost_while_the_file_fails_and_all_recovers(
        nursery, config, monkeypatch, name, value, cleared, words):
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP1") as cp:
            await cp.result("BootNotification", BOOT)
            tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                                       "timestamp": "2026-12-01T09:00:00Z"}))["transactionId"]
            before = [await cp.result("MeterValues", meter_values(tx, reading)) for reading in range(3)]
            assert before == [{}, {}, {}]

            conn = await fail_the_file(gw, monkeypatch, name, value)
            acknowledged, refusal = await until_refused(cp, tx, 100)
            assert refusal[2] == "InternalError" and "again later" in refusal[3] and words in refusal[3]
            state = await health(gw)
            assert state["status"] == "degraded"
            assert any(reason.startswith("writer: ") and words in reason for reason in state["reasons"])
            if name == "query_only":  # (a full file may still take a row that fits a page it has)
                async with gw.http() as http:  # a change through the API is refused with the reason, not a 500
                    r = await http.put("/api/chargers/CP9/registration", json={"status": "Accepted"})
                assert r.status_code == 503 and words in r.json()["message"], r.text
            assert await metric(gw, 'gateway_storage_degraded{part="writer"}') == \
                'gateway_storage_degraded{part="writer"} 1.0'
            # The stop is not acknowledged either while the values before it cannot be kept.
            stop = {"transactionId": tx, "meterStop": 5000, "timestamp": "2026-12-01T11:00:00Z", "reason": "Local"}
            refused_stop = await cp.call("StopTransaction", stop)
            assert refused_stop[0] == 4 and refused_stop[2] == "InternalError"

            mend_the_file(conn, monkeypatch, name, cleared)
            reading = refusal[-1]
            await until_accepted(cp, tx, reading)
            await cp.result("StatusNotification", status(1, "Charging"))  # a write of the database thread
            await until_healthy(gw)
            assert await metric(gw, 'gateway_storage_degraded{part="writer"}') == \
                'gateway_storage_degraded{part="writer"} 0.0'
            assert await cp.result("StopTransaction", stop) == {}
        assert gw.store.appender.fallback is None  # the writer process came back: not given up for good
        path = gw.config.db
    assert sorted(stored_readings(path, tx)) == sorted([0, 1, 2, *acknowledged, reading])


async def test_a_write_lock_held_by_another_process_is_survived(nursery, config, monkeypatch):
    """An operator's sqlite3 (or a backup) holds the write lock for longer than the gateway waits."""
    monkeypatch.setattr(connection, "LOCK_TIMEOUT", 0.3)  # the database thread's wait; the writer waits 10 s
    async with started(nursery, config) as gw:
        async with charger(gw.ocpp_port, "CP1") as cp:
            await cp.result("BootNotification", BOOT)
            holder = sqlite3.connect(gw.config.db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                reply = await cp.call("StatusNotification", status(1, "Preparing"), timeout=30)
                assert reply[0] == 4 and reply[2] == "InternalError"
                assert "locked by another process" in reply[3] and "again later" in reply[3]
                state = await health(gw)
                assert state["status"] == "degraded"
                assert any(r.startswith("database: the database is locked") for r in state["reasons"])
                # Another charger connects meanwhile: its handshake reads, which the lock does not stop.
                async with charger(gw.ocpp_port, "CP2") as other:
                    assert (await other.call("Heartbeat", {}, timeout=30))[0] == 3
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            async with gw.http() as http:  # a read takes the write lock again: the fault is over
                assert (await http.get("/api/ocpp/connections")).status_code == 200
            await until_healthy(gw)
            await cp.result("StatusNotification", status(1, "Preparing"))
            async with gw.http() as http:
                connections = {c["chargePointId"]: c for c in (await http.get("/api/ocpp/connections")).json()}
            assert connections["CP1"]["online"] and connections["CP1"]["connectors"] == {"1": "Preparing"}
        assert not gw.done.is_set()


async def test_an_order_caught_by_a_storage_fault_is_closed_once_it_clears(nursery, config, monkeypatch):
    """The stop is committed; closing its order meets the locked file (as the store raises it) for a while."""
    from gateway.billing import orders as orders_module
    monkeypatch.setattr(orders_module, "RETRY_SECONDS", 0.2)
    async with started(nursery, config) as gw:
        store_orders = gw.store.orders
        real_close, fault = store_orders.close, trio.Event()
        failed = 0

        async def close(*args: Any) -> Any:
            nonlocal failed
            if not fault.is_set():
                failed += 1
                raise sqlite3.OperationalError("database is locked")
            return await real_close(*args)

        monkeypatch.setattr(store_orders, "close", close)
        async with charger(gw.ocpp_port, "CP1") as cp:
            await cp.result("BootNotification", BOOT)
            tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 1000,
                                                       "timestamp": "2026-12-01T09:00:00Z"}))["transactionId"]
            await cp.result("StopTransaction", {"transactionId": tx, "meterStop": 3000,
                                                "timestamp": "2026-12-01T10:00:00Z"})
        await until(lambda: failed >= 2, timeout=30)  # the event's attempt, and a sweep's
        assert (await store_orders.find("transaction_id", tx))["status"] == 0  # still charging
        fault.set()
        async def completed() -> dict | None:
            order = await store_orders.find("transaction_id", tx)
            return order if order["status"] == 1 else None
        order = await until(completed, timeout=30)  # well before the regular sweep (SWEEP_SECONDS), without a restart
        assert order["energy_wh"] == 2000 and order["total_amount"] is not None
