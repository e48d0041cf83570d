"""PostgreSQL as the store: its migrations beside SQLite's, the day partitions of frames and meter values,
and `gateway migrate`, which copies a SQLite site's records into a server (skipped where no server can start)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
import trio

from gateway.cli import main
from gateway.store.db import migration_files as sqlite_migrations
from gateway.store.pg import partitions
from gateway.store.pg.connection import Connection, connect
from gateway.store.pg.database import _Gate
from gateway.store.pg.migrations import BASELINE, migrate, migration_files
from gateway.store.store import open_store
from tests import pg

T0 = "2026-11-22T08:00:00.000Z"


@pytest.fixture(autouse=True)
def logs_left_alone(monkeypatch):
    """`gateway migrate` points the log at this test's captured output, which closes with the test: the later
    tests of the worker would log into a closed file."""
    monkeypatch.setattr("gateway.cli.logs.configure", lambda *args, **kwargs: None)


def test_every_sqlite_migration_has_its_postgresql_twin():
    """024_baseline.sql stands for SQLite's 001 to 024; every later SQLite migration needs a PostgreSQL one of the
    same number (a migration of PostgreSQL alone may have a number SQLite lacks)."""
    server = {number for number, _, _ in migration_files()}
    assert BASELINE in server and min(server) == BASELINE
    missing = [name for number, name, _ in sqlite_migrations() if number > BASELINE and number not in server]
    assert not missing, f"PostgreSQL twins missing in schemas/postgresql/: {missing}"


@pytest.fixture(scope="module")
def server():
    try:
        with pg.server("postgres_tests") as url:
            yield url.rsplit("/", 1)[0]
    except pg.Unavailable as exc:
        pytest.skip(str(exc))


def _database(server: str, name: str) -> str:
    admin = connect(server + "/postgres")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return f"{server}/{name}"


def test_migrations_are_applied_once_into_the_ledger(server: str):
    url = _database(server, "ledger")
    raw = connect(url)
    try:
        conn = Connection(raw)
        assert migrate(conn) == max(n for n, _, _ in migration_files())
        again = migrate(conn)  # nothing left to do
        ledger = [tuple(r) for r in conn.execute("SELECT number, name FROM schema_migrations ORDER BY number")]
        assert ledger == [(n, name) for n, name, _ in migration_files()] and again == ledger[-1][0]
    finally:
        raw.close()


def test_rows_land_in_their_days_partition_and_retention_drops_whole_days(server: str):
    url = _database(server, "days")
    raw = connect(url)
    try:
        conn = Connection(raw)
        migrate(conn)
        day = dt.date(2026, 11, 20)
        with raw.transaction():
            made = partitions.ensure(conn, day, ahead=2)
        assert made == [f"{t}_{d:%Y%m%d}" for t in partitions.PARTITIONED for d in
                        (day, day + dt.timedelta(days=1), day + dt.timedelta(days=2))]
        assert partitions.days(conn, "frames") == [day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)]
        rows = [("2026-11-20T23:59:59.999Z", "CP1", "in", 2, "u1", "Heartbeat", "{}"),
                ("2026-11-21T00:00:00.000Z", "CP1", "in", 2, "u2", "Heartbeat", "{}"),
                ("2025-01-01T00:00:00.000Z", "CP1", "in", 2, "u0", "Heartbeat", "{}")]  # a day with no partition
        conn.copy_rows("frames", ["at", "charge_point_id", "direction", "message_type", "unique_id", "action", "body"],
                       rows)
        where = {r["unique_id"]: r["part"] for r in conn.execute(
            "SELECT unique_id, tableoid::regclass::text AS part FROM frames")}
        assert where == {"u1": "frames_20261120", "u2": "frames_20261121", "u0": "frames_default"}
        with raw.transaction():  # made again: nothing new, nothing fails
            assert partitions.ensure(conn, day, ahead=2) == []
        with raw.transaction():
            deleted, dropped = partitions.drop_before(conn, "frames", "2026-11-21T12:00:00.000Z")
        # the 20th ends before the cut-off: dropped whole; the 21st does not; the default partition's old row goes
        assert dropped == ["frames_20261120"] and deleted == 1
        assert [r[0] for r in conn.execute("SELECT unique_id FROM frames")] == ["u2"]
    finally:
        raw.close()


async def test_gateway_migrate_copies_a_sqlite_site_into_postgresql(tmp_path: Path, server: str, capsys):
    path = str(tmp_path / "site.db")
    async with open_store(path) as store:
        await store.chargers.connected("CP1", "127.0.0.1", "ocpp1.6", T0)
        await store.id_tags.put("TAG1", at=T0)
        tx = await store.transactions.start("CP1", 1, "TAG1", "Accepted", 100, T0, None, T0)
        store.transactions.add_meter_values(
            "CP1", 1, tx, [{"timestamp": T0, "sampledValue": [{"value": "150", "unit": "Wh"}]}], T0)
        store.frames.record("CP1", "in", '[2,"1","Heartbeat",{}]')
        await store.frames.flush()
        await store.transactions.appended_committed()
    url = _database(server, "copied")
    assert main(["migrate", "--from", path, "--to", url]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # after what the store logged
    assert done["tables"]["transactions"] == 1 and done["tables"]["meter_value_sets"] == 1
    assert done["tables"]["charge_points"] == 1 and done["tables"]["tenants"] == 1

    async with open_store(url) as store:
        assert (await store.transactions.get(tx))["meter_start"] == 100
        assert [s["value"] for s in await store.transactions.samples(tx)] == ["150"]
        assert (await store.id_tags.get("TAG1"))["status"] == "Accepted"
        assert [f["body"] for f in await store.frames.query("CP1")] == ['[2,"1","Heartbeat",{}]']
        # the sequences are past the copied ids: a new transaction never takes one
        assert await store.transactions.start("CP1", 2, "TAG1", "Accepted", 0, T0, None, T0) == tx + 1

    # into a database that holds records already: refused, nothing written
    assert main(["migrate", "--from", path, "--to", url]) == 1
    assert "already holds records" in capsys.readouterr().err


def test_gateway_migrate_says_what_is_wrong(tmp_path: Path, capsys):
    assert main(["migrate", "--from", str(tmp_path / "none.db"), "--to", "postgresql://127.0.0.1:1/x"]) == 1
    assert "is not a file" in capsys.readouterr().err
    assert main(["migrate", "--from", str(tmp_path / "none.db"), "--to", "other.db"]) == 2
    assert "must be a postgresql:// URL" in capsys.readouterr().err


def test_the_doctor_asks_the_server_and_never_shows_its_password(server: str):
    from gateway.config import load
    from gateway.ops import doctor

    def findings(db: str) -> dict[str, doctor.Finding]:
        config = load(None, env={}, overrides={"db": db, "http": "127.0.0.1:0", "ocpp": "127.0.0.1:0"})
        return {f.check: f for f in doctor.examine(config)}

    url = _database(server, "doctor")
    good = findings(url)
    assert good["database"].level == doctor.OK and "takes writes" in good["database"].text
    assert "disk" not in good  # the server's disk is the server's to watch
    bad = findings("postgresql://gw:s3cret@127.0.0.1:1/x")
    assert bad["database"].level == doctor.PROBLEM and "cannot be reached" in bad["database"].text
    assert "s3cret" not in bad["database"].text


def test_backups_of_a_server_are_pg_dumps_and_the_command_says_so(tmp_path: Path, capsys):
    from gateway.store import backup

    for run in (lambda: backup.backup("postgresql://db/gw", tmp_path / "b.db"),
                lambda: backup.restore(tmp_path / "b.db", "postgresql://db/gw"),
                lambda: backup.compact("postgresql://db/gw")):
        with pytest.raises(backup.BackupError, match="pg_dump"):
            run()
    assert main(["backup", str(tmp_path / "b.db"), "--db", "postgresql://db/gw"]) == 1
    assert "pg_dump" in capsys.readouterr().err


def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_job_that_lost_runs_alone_after_those_running_and_before_the_next():
    gate, seen = _Gate(), []

    def job(name: str, alone: bool, hold: float) -> None:
        gate.enter(alone)
        seen.append(("in", name))
        time.sleep(hold)
        seen.append(("out", name))
        gate.leave(alone)

    first = [threading.Thread(target=job, args=(f"s{i}", False, 0.1)) for i in range(3)]
    for t in first:
        t.start()
    _until(lambda: gate._running == 3)
    lone = threading.Thread(target=job, args=("alone", True, 0.1))
    lone.start()
    _until(lambda: gate._alone == 1)  # waiting
    late = threading.Thread(target=job, args=("late", False, 0))
    late.start()
    for t in (*first, lone, late):
        t.join(5)
    order = [f"{what} {name}" for what, name in seen]
    assert order.index("in alone") > max(order.index(f"out s{i}") for i in range(3))  # after those running
    assert order.index("in late") > order.index("out alone")  # the next one waited for it
    assert order[order.index("in alone") + 1] == "out alone"  # and nothing ran beside it


async def test_reservation_ids_taken_by_two_nodes_at_once_are_all_distinct(server: str):
    """A reservation without an id takes the next above every id given so far (ids are also chosen by callers):
    two stores on one database, as two nodes, taking 40 at once lose to each other and run again, never
    sharing an id nor overwriting each other's reservation."""
    url = _database(server, "reservations")
    async with open_store(url) as one, open_store(url) as two:
        async def take(store, i: int) -> int:
            return await store.reservations.create(None, f"CP{i}", 1, f"TAG{i}", None, T0, f"req-{i}", T0)

        taken: list[int] = []
        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(lambda i=i: _append(taken, take(one if i % 2 else two, i)))
        rows = await one.db.run(lambda conn: [tuple(r) for r in conn.execute(
            "SELECT id, charge_point_id FROM reservations ORDER BY id")])
    assert sorted(taken) == list(range(1, 41))
    assert len({cp for _, cp in rows}) == 40 and [r[0] for r in rows] == list(range(1, 41))


async def _append(into: list, value) -> None:
    into.append(await value)


async def test_a_starting_node_stops_the_runs_left_running_but_not_those_another_live_node_holds(server: str):
    """At a node's start, a charger test run still `running` ended with the gateway that ran it, unless its charger
    is held by another node whose lease runs: that run goes on there."""
    url = _database(server, "charger_test_runs")

    def run(cp_id: str) -> dict:
        return {"runId": f"run-{cp_id}", "charger": {"chargePointId": cp_id, "firmware": "1.0"}, "plan": "core",
                "state": "running", "startedAt": T0, "summary": {}}

    async with open_store(url) as store:
        for cp_id in ("HELD-ELSEWHERE", "LEASE-OUT", "MINE", "NOBODYS"):
            await store.charger_tests.save(run(cp_id))

        def cluster(conn) -> None:
            conn.execute("INSERT INTO cluster_nodes (node_id, channel, heartbeat_at, lease_seconds) VALUES "
                         "('other', 'c1', now(), 10), ('gone', 'c2', now() - interval '1 minute', 10), "
                         "('me', 'c3', now(), 10)")
            conn.execute("INSERT INTO cluster_owners (cp_id, node_id, epoch) VALUES "
                         "('HELD-ELSEWHERE', 'other', 1), ('LEASE-OUT', 'gone', 2), ('MINE', 'me', 3)")
        await store.db.run(cluster)

        assert await store.charger_tests.interrupted("the gateway stopped during the run", T0, "me") == 3
        states = {r["charge_point_id"]: r["state"] for r in await store.charger_tests.list()}
        assert states == {"HELD-ELSEWHERE": "running", "LEASE-OUT": "stopped", "MINE": "stopped",
                          "NOBODYS": "stopped"}
        document = await store.charger_tests.get("run-MINE")
        assert document["stoppedAt"] == {"caseId": None, "step": None, "why": "the gateway stopped during the run"}
