"""Backups of a database in use, and restores: under load, with the gateway killed during a backup."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio_websocket

from gateway import clock
from gateway.cli import main
from gateway.store.backup import BackupError, backup, backups, in_use, restore, rotate, scheduled_name
from tests.backend import sqlite_only
from tests.conftest import make_config, started
from tests.helpers import BOOT, charger
from tests.waiting import until

ROOT = Path(__file__).resolve().parents[2]


def _keep_logging(monkeypatch) -> None:
    """main() points logging at this test's captured stderr, closed after it: later tests must not log there."""
    monkeypatch.setattr("gateway.cli.logs.configure", lambda *args: None)


def _count(db: Path | str, table: str = "meter_value_sets") -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def _plain(path: Path, into: Path) -> Path:
    into.write_bytes(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    return into


async def _charge(port: int, cp_id: str, stop: trio.Event, sent: list[int]) -> None:
    """A charger sending MeterValues as fast as they are answered, until `stop` (or the gateway is gone)."""
    try:
        await _charging(port, cp_id, stop, sent)
    except trio_websocket.ConnectionClosed:
        if not stop.is_set():  # set just before the gateway is killed
            raise


async def _charging(port: int, cp_id: str, stop: trio.Event, sent: list[int]) -> None:
    async with charger(port, cp_id) as cp:
        await cp.result("BootNotification", BOOT)
        tx = (await cp.result("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": clock.iso()}))["transactionId"]
        wh = 0
        while not stop.is_set():
            wh += 10
            await cp.result("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
                {"timestamp": clock.iso(), "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}]}]})
            sent[0] += 1
            await trio.sleep(0.01)  # under the gateway's 200 CALLs a second per charger


@sqlite_only("backs up a SQLite file (on PostgreSQL, backups are pg_dump's)")
async def test_a_backup_under_load_is_consistent_and_the_chargers_keep_being_answered(tmp_path: Path,
                                                                                     nursery: trio.Nursery):
    config = make_config(tmp_path)
    stop, sent = trio.Event(), [0]
    async with started(nursery, config) as gateway:
        async with trio.open_nursery() as chargers:
            for i in range(3):
                chargers.start_soon(_charge, gateway.ocpp_port, f"CP{i}", stop, sent)
            with trio.fail_after(30):
                while sent[0] < 300:
                    await trio.sleep(0.01)
            answered_before = sent[0]
            await gateway.store.transactions.appended_committed()  # these at least are in the file
            done = await trio.to_thread.run_sync(backup, config.db, tmp_path / "b" / "copy.db.gz")
            answered_during = sent[0] - answered_before
            with trio.fail_after(30):  # and afterwards: still served
                while sent[0] < answered_before + answered_during + 100:
                    await trio.sleep(0.01)
            stop.set()
        await gateway.store.transactions.appended_committed()
        live = _count(config.db)
    assert done["file"] == str(tmp_path / "b" / "copy.db.gz") and done["bytes"] > 0
    copy = _plain(tmp_path / "b" / "copy.db.gz", tmp_path / "copy.db")
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal needed
        copied = conn.execute("SELECT count(*) FROM meter_value_sets").fetchone()[0]
    finally:
        conn.close()
    assert answered_before <= copied <= live
    assert not list((tmp_path / "b").glob("*.partial"))


def test_a_backup_of_nothing_says_so(tmp_path: Path):
    with pytest.raises(BackupError, match="there is no database at"):
        backup(str(tmp_path / "none.db"), tmp_path / "b.db")
    assert not (tmp_path / "none.db").exists()  # not made by asking


def test_restore_checks_the_backup_before_replacing_anything(tmp_path: Path):
    db = tmp_path / "gateway.db"
    db.write_bytes(b"the live file")
    damaged = tmp_path / "damaged.db.gz"
    damaged.write_bytes(gzip.compress(b"SQLite format 3\0" + b"\xff" * 8000))
    truncated = tmp_path / "cut.db.gz"
    truncated.write_bytes(gzip.compress(os.urandom(100_000))[:5000])
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    for path, words in ((damaged, "not a usable backup"), (truncated, "not a complete backup"),
                        (other, "not a gateway database"), (tmp_path / "none", "there is no backup")):
        with pytest.raises(BackupError, match=words):
            restore(path, str(db))
        assert db.read_bytes() == b"the live file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.db.gz", "damaged.db.gz", "gateway.db", "other.db"]


def test_rotation_keeps_the_newest_and_clears_what_a_killed_backup_left(tmp_path: Path):
    for name in ("gateway-20261201T000000Z.db.gz", "gateway-20261202T000000Z.db.gz",
                 "gateway-20261203T000000Z.db", "gateway-20261204T000000Z.db.gz.partial", "notes.txt"):
        (tmp_path / name).write_text("x")
    gone = rotate(tmp_path, keep=2)
    assert sorted(p.name for p in gone) == ["gateway-20261201T000000Z.db.gz", "gateway-20261204T000000Z.db.gz.partial"]
    assert [p.name for p in backups(tmp_path)] == ["gateway-20261202T000000Z.db.gz", "gateway-20261203T000000Z.db"]


async def _serve(db: Path, log: Path) -> tuple[trio.Process, int]:
    """`gateway serve` in a process of its own; its charger port, once it has started."""
    with open(log, "wb") as out:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "gateway", "serve", "--db", str(db), "--http", "127.0.0.1:0", "--ocpp",
             "127.0.0.1:0", "--log-json"], stdout=subprocess.DEVNULL, stderr=out, cwd=db.parent,
            env={**os.environ, "GATEWAY_CONFIG": ""})
    with trio.fail_after(60):
        while True:
            for line in log.read_text().splitlines():
                if line.startswith("{") and "gateway started" in line:
                    return proc, int(json.loads(line)["ocpp"].rsplit(":", 1)[1])
            if proc.poll() is not None:
                raise AssertionError(f"the gateway ended: {log.read_text()}")
            await trio.sleep(0.05)


async def _gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return await trio.run_process([sys.executable, "-m", "gateway", *args], capture_stdout=True,
                                  capture_stderr=True, check=False, cwd=cwd, env={**os.environ, "GATEWAY_CONFIG": ""})


async def test_the_gateway_killed_during_a_backup_is_restored_from_the_last_complete_one(tmp_path: Path):
    db, folder = tmp_path / "data" / "gateway.db", tmp_path / "backups"
    db.parent.mkdir()
    proc, port = await _serve(db, tmp_path / "serve.log")
    stop, sent = trio.Event(), [0]
    try:
        async with trio.open_nursery() as chargers:
            for i in range(2):
                chargers.start_soon(_charge, port, f"CP{i}", stop, sent)
            with trio.fail_after(30):
                while sent[0] < 200:
                    await trio.sleep(0.01)
            first = folder / scheduled_name(clock.now(), compress=True)
            made = await _gateway("backup", "--db", str(db), str(first), cwd=tmp_path)
            assert made.returncode == 0, made.stderr
            refused = await _gateway("restore", "--db", str(db), str(first), cwd=tmp_path)
            assert refused.returncode == 1 and b"is in use: stop the gateway first" in refused.stderr
            # A second backup, killed half way with the gateway itself.
            second = folder / scheduled_name(clock.now().replace(year=2099), compress=True)
            copying = await trio.lowlevel.open_process(
                [sys.executable, "-m", "gateway", "backup", "--db", str(db), str(second)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "GATEWAY_CONFIG": ""})
            stop.set()
            proc.send_signal(signal.SIGKILL)
            copying.send_signal(signal.SIGKILL)
            await copying.wait()
            await proc.wait()
    except BaseException:
        stop.set()
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert not second.exists()  # killed: at most a .partial, never a file that looks complete
    latest = backups(folder)[-1]
    assert latest == first
    in_backup = _count(_plain(latest, tmp_path / "look.db"))
    assert in_backup >= 200
    # The gateway's writer process outlives it by the moment it takes to see its parent gone, then lets go.
    await until(lambda: not in_use(str(db)), timeout=30)
    put_back = await _gateway("restore", "--db", str(db), str(latest), cwd=tmp_path)
    assert put_back.returncode == 0, put_back.stderr
    told = json.loads(put_back.stdout)
    assert told["schema"] >= 21 and Path(told["kept"]).exists()  # the file it replaced is kept
    assert _count(db) == in_backup
    # The gateway runs on it again, and its chargers' records are there.
    proc, port = await _serve(db, tmp_path / "again.log")
    try:
        async with charger(port, "CP0") as cp:
            await cp.result("BootNotification", BOOT)
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await proc.wait() == 0
    assert _count(db, "charge_points") == 2


def test_gateway_backup_and_restore_from_the_command_line(tmp_path: Path, capsys, monkeypatch):
    _keep_logging(monkeypatch)
    db = tmp_path / "gateway.db"
    assert main(["backup", "--db", str(db), str(tmp_path / "b.db")]) == 1
    assert "there is no database at" in capsys.readouterr().err
    from gateway.store.db import migrate
    from gateway.store.writer.connection import connect
    conn = connect(str(db))
    migrate(conn)
    conn.execute("INSERT INTO charge_points (id, first_seen) VALUES ('CP9', 'now')")
    conn.close()
    assert main(["backup", "--db", str(db), "--compress", str(tmp_path / "b.db")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["file"] == str(tmp_path / "b.db.gz")
    db.unlink()
    assert main(["restore", "--db", str(db), str(tmp_path / "b.db.gz")]) == 0
    assert _count(db, "charge_points") == 1


async def test_scheduled_backups_rotate_keeping_the_newest(tmp_path: Path, nursery: trio.Nursery):
    from gateway.config import BackupConfig
    from gateway.store.backup import run_scheduled
    from gateway.store.db import migrate
    from gateway.store.writer.connection import connect

    db = tmp_path / "gateway.db"
    conn = connect(str(db))
    migrate(conn)
    conn.close()
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "gateway-20200101T000000Z.db.gz.partial").write_text("left by a backup cut short")
    nursery.start_soon(run_scheduled, str(db), BackupConfig(every_hours=1 / 3600, folder=str(folder), keep=2))
    seen: set[str] = set()
    with trio.fail_after(60):
        while len(seen) < 4:
            seen.update(p.name for p in backups(folder))
            await trio.sleep(0.05)
    nursery.cancel_scope.cancel()
    first = sorted(seen)[0]
    assert not (folder / first).exists()  # rotated away
    assert not (folder / "gateway-20200101T000000Z.db.gz.partial").exists()
    newest = sorted(seen)[-1]
    assert _count(_plain(folder / newest, tmp_path / "newest.db"), "charge_points") == 0


def test_compact_gives_an_old_files_free_pages_back(tmp_path: Path, capsys, monkeypatch):
    _keep_logging(monkeypatch)
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)  # as files were made before: no auto_vacuum
    conn.execute("CREATE TABLE frames (body TEXT)")
    conn.executemany("INSERT INTO frames VALUES (?)", [("x" * 1000,)] * 2000)
    conn.commit()
    conn.execute("DELETE FROM frames")
    conn.commit()
    conn.close()
    before = db.stat().st_size
    assert main(["compact", "--db", str(db)]) == 0
    told = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert told["bytesBefore"] == before and told["bytesAfter"] < before / 10
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    conn.close()
