"""Backups of the live database, scheduled backups, and putting one back.

`backup()` copies the file with SQLite's online backup API in one step: the copy is the database as one
read transaction sees it, while the gateway and its writer process go on committing (WAL: a reader holds
nobody up). A step at a time would start again whenever the gateway commits, which it does every half
second. The copy is written beside its destination as NAME.partial and renamed once complete and
synced, so a backup killed half way leaves no file that looks like a backup.

`restore()` refuses while a gateway has the database open, checks the backup's integrity first, and
keeps the file it replaces (with its write-ahead log) as NAME.before-restore-STAMP.

Standard library only: the gateway runs a scheduled backup as `python -m gateway.store.backup DB DEST`,
in a process of its own at a lower priority, so that compressing never competes with the event loop.
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import os
import re
import shutil
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PARTIAL = ".partial"
CHUNK = 1 << 20
SCHEDULED = re.compile(r"^gateway-\d{8}T\d{6}Z\.db(\.gz)?$")
GZIP_MAGIC = b"\x1f\x8b"
# The byte of the "-shm" file every connection to a WAL database holds a shared lock on while it has the
# database open (SQLite's unix VFS: its "dead man switch", UNIX_SHM_DMS).
SHM_DMS = 128


class BackupError(RuntimeError):
    """What stops a backup or a restore, in words for the person who asked for it."""


def _a_file(db: str) -> None:
    """Backups, restores and compaction are of a SQLite file; a PostgreSQL server has its own tools."""
    if re.match(r"^postgres(ql)?://", db, re.IGNORECASE):
        raise BackupError("the database is on a PostgreSQL server: back it up with pg_dump (e.g. pg_dump -Fc "
                          "-f gateway.dump DATABASE) or the server's replication, restore it with pg_restore; "
                          "the server gives freed space back itself")


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _check(conn: sqlite3.Connection, full: bool = False) -> None:
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check(5)" if full else "PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise BackupError("the copy is damaged: " + "; ".join(problems))


def _source(db: str) -> sqlite3.Connection:
    if not Path(db).is_file():
        raise BackupError(f"there is no database at {db}")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True)  # never creates an empty file in its place
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read the database {db}: {exc}") from None
    return conn


def backup(db: str, dest: str | Path, *, compress: bool | None = None) -> dict[str, Any]:
    """Copy the database `db` (in use or not) to `dest`; gzip it when `compress` (None: when dest ends in .gz).
    Returns the file written, its size and the seconds taken."""
    _a_file(db)
    started = time.monotonic()
    dest = Path(dest)
    if compress is None:
        compress = dest.suffix == ".gz"
    elif compress and dest.suffix != ".gz":
        dest = dest.with_name(dest.name + ".gz")
    if dest.is_dir():
        raise BackupError(f"{dest} is a folder: name the backup file to write")
    dest.parent.mkdir(parents=True, exist_ok=True)
    copy = dest.with_name(dest.name + ".db" + PARTIAL) if compress else dest.with_name(dest.name + PARTIAL)
    packed = dest.with_name(dest.name + PARTIAL)
    for stale in {copy, packed}:
        stale.unlink(missing_ok=True)
    source = _source(db)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # one step: one consistent read of the whole file
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            _check(target)
        finally:
            target.close()
    except sqlite3.Error as exc:
        copy.unlink(missing_ok=True)
        raise BackupError(f"the backup of {db} failed: {exc}") from None
    finally:
        source.close()
    if compress:
        with open(copy, "rb") as raw, gzip.open(packed, "wb", compresslevel=6) as out:
            shutil.copyfileobj(raw, out, CHUNK)
        copy.unlink()
    _sync(packed)
    os.replace(packed, dest)
    _sync_folder(dest.parent)
    return {"file": str(dest), "bytes": dest.stat().st_size, "seconds": round(time.monotonic() - started, 2)}


def in_use(db: str) -> bool:
    """Whether a process has the database open (a gateway, its writer, or a sqlite3 shell)."""
    shm = Path(db + "-shm")
    if not shm.exists():
        return False
    fd = os.open(shm, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS)
        return False
    finally:
        os.close(fd)


def restore(source: str | Path, db: str) -> dict[str, Any]:
    """Put the backup `source` (plain or gzip) in place of the database `db`, the gateway being stopped.
    The backup is checked whole (PRAGMA integrity_check) before anything is replaced."""
    _a_file(db)
    source, target = Path(source), Path(db)
    if not source.is_file():
        raise BackupError(f"there is no backup at {source}")
    if in_use(db):
        raise BackupError(f"the database {db} is in use: stop the gateway first (systemctl stop gateway)")
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.with_name(target.name + ".restore" + PARTIAL)
    with open(source, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    try:
        with (gzip.open(source, "rb") if gzipped else open(source, "rb")) as raw, open(incoming, "wb") as out:
            shutil.copyfileobj(raw, out, CHUNK)
    except (OSError, EOFError) as exc:
        incoming.unlink(missing_ok=True)
        raise BackupError(f"{source} cannot be read whole ({exc}): it is not a complete backup") from None
    try:
        conn = sqlite3.connect(f"file:{incoming}?mode=ro", uri=True)
        try:
            _check(conn, full=True)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
        if version < 1 or "charge_points" not in tables:
            raise BackupError(f"{source} is a SQLite file but not a gateway database")
    except sqlite3.Error as exc:
        incoming.unlink(missing_ok=True)
        raise BackupError(f"{source} is not a usable backup: {exc}") from None
    except BackupError:
        incoming.unlink(missing_ok=True)
        raise
    _sync(incoming)
    kept = None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if target.exists():
        kept = target.with_name(f"{target.name}.before-restore-{stamp}")
        os.replace(target, kept)
    for suffix in ("-wal", "-shm"):  # they belong to the file replaced: never to be applied to the backup
        side = Path(db + suffix)
        if side.exists():
            os.replace(side, Path(f"{kept or target}{suffix}" if kept else f"{db}{suffix}.before-restore-{stamp}"))
    os.replace(incoming, target)
    _sync_folder(target.parent)
    return {"file": db, "from": str(source), "schema": version, "kept": None if kept is None else str(kept)}


def scheduled_name(now: datetime, compress: bool) -> str:
    return f"gateway-{now.strftime('%Y%m%dT%H%M%SZ')}.db" + (".gz" if compress else "")


def backups(folder: str | Path) -> list[Path]:
    """The complete scheduled backups in `folder`, oldest first (their names sort by time)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SCHEDULED.match(p.name))


def rotate(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups, and what a backup killed half way left; the deleted."""
    gone = [p for p in Path(folder).iterdir() if p.name.endswith(PARTIAL)] if Path(folder).is_dir() else []
    gone += backups(folder)[:-keep] if keep > 0 else []
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


async def run_scheduled(db: str, config: Any) -> None:  # config: gateway.config.BackupConfig
    """Every `config.every_hours`, a backup into `config.folder` by a process of its own, then the rotation."""
    import structlog
    import trio

    log = structlog.get_logger("gateway.ops")
    try:
        _a_file(db)
    except BackupError as exc:
        log.warning("scheduled backups are off", reason=str(exc))
        return
    while True:
        await trio.sleep(config.every_hours * 3600)
        dest = Path(config.folder, scheduled_name(datetime.now(timezone.utc), config.compress))
        done = await trio.run_process([sys.executable, "-m", "gateway.store.backup", db, str(dest)],
                                      capture_stdout=True, capture_stderr=True, check=False)
        if done.returncode != 0:
            log.error("scheduled backup failed", file=str(dest), error=done.stderr.decode(errors="replace").strip())
            continue
        removed = await trio.to_thread.run_sync(rotate, config.folder, config.keep)
        log.info("scheduled backup", file=str(dest), removed=[p.name for p in removed])


def main(argv: list[str]) -> int:
    """python -m gateway.store.backup DB DEST: one backup, at a lower priority (the scheduled backups)."""
    os.nice(10)
    try:
        backup(argv[0], argv[1])
    except (BackupError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def compact(db: str) -> dict:
    """auto_vacuum = INCREMENTAL on a file made before it, and VACUUM: needs the file's size again free."""
    _a_file(db)
    if in_use(db):
        raise BackupError(f"the database {db} is in use: stop the gateway first (systemctl stop gateway)")
    conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
    try:
        before = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
        after = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return {"file": db, "bytesBefore": before, "bytesAfter": after}
