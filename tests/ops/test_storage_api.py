"""/api/storage and /metrics: the database's size, rows per table and the next pruning, from a running gateway."""

from __future__ import annotations

import sqlite3

import trio

from gateway import clock
from tests.backend import POSTGRESQL, read
from tests.helpers import BOOT, charger


async def _measured(gateway) -> None:
    with trio.fail_after(20):  # the first cycle runs at start, then the figures are read
        while gateway.store.retention.stats is None:
            await trio.sleep(0.02)


async def test_storage_figures_match_the_file(gateway):
    async with charger(gateway.ocpp_port, "CP-S") as cp:
        await cp.result("BootNotification", BOOT)
    await _measured(gateway)
    await gateway.store.frames.flush()  # nothing more is written until the file is measured below
    await gateway.store.retention.refresh_stats()
    db = gateway.config.db
    [counts] = read(db, "SELECT (SELECT count(*) FROM charge_points) AS points, "
                        "(SELECT count(*) FROM transactions) AS transactions")
    points, transactions = counts["points"], counts["transactions"]
    if POSTGRESQL:  # the server's size of the database; it gives space back itself
        [row] = read(db, "SELECT pg_database_size(current_database()) AS size")
        size, vacuum = row["size"], "server"
    else:
        conn = sqlite3.connect(db)
        try:
            size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
        vacuum = "incremental"
    async with gateway.http() as http:
        r = await http.get("/api/storage")
        metrics = (await http.get("/metrics")).text
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["file"]["autoVacuum"] == vacuum
    if POSTGRESQL:  # the server writes its own catalogue meanwhile (statistics): the same size within a few pages
        assert abs(data["file"]["bytes"] - size) <= 64 * 8192
    else:
        assert data["file"]["bytes"] == size
    assert data["file"]["rows"]["transactions"] == transactions == 0 and points == 1
    assert {(rule["table"], rule["days"]) for rule in data["rules"]} == {
        ("frames", 30.0), ("commands", 90.0), ("audit_log", 365.0), ("log_lines", 7.0)}  # the defaults
    assert data["thinning"] == {"fullDays": 90.0, "everyMinutes": 15.0}
    assert data["everyMinutes"] == 60.0
    assert clock.parse(data["nextRun"]) > clock.now()
    deleted = data["lastRun"]["deleted"]  # (the kept log's rule is registered by its own task, maybe after)
    assert {"frames", "commands", "audit_log"} <= deleted.keys() <= {"frames", "commands", "audit_log", "log_lines"}
    assert not any(deleted.values())
    [shown] = [float(line.split()[1]) for line in metrics.splitlines() if line.startswith("gateway_db_bytes ")]
    assert shown == data["file"]["bytes"] or POSTGRESQL and abs(shown - size) <= 64 * 8192
    assert 'gateway_db_rows{table="transactions"} 0.0' in metrics
    assert "gateway_retention_next_run_timestamp_seconds" in metrics
