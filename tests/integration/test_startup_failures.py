"""A database the gateway cannot start on: one line that names the file and the cause, exit status 1.

Each case is the real thing as SQLite sees it: a file that is no database, a folder that is a file, a
damaged page, a full disk (`PRAGMA max_page_count`) and a read-only file (`PRAGMA query_only`: the
same SQLITE_READONLY as a file mode, which root would ignore), these two through GATEWAY_SQLITE_PRAGMAS.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
import trio

from gateway.store.writer import rows as writer_rows
from gateway.store.writer.connection import PRAGMAS_ENV, connect
from gateway.store.db import migrate


async def start(db: Path, cwd: Path, **env: str) -> tuple[int, list[str]]:
    """Run `gateway serve` on the file: (exit status, what it wrote to stderr, line by line)."""
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, "-m", "gateway", "serve", "--db", str(db), "--http", "127.0.0.1:0",
             "--ocpp", "127.0.0.1:0"],
            capture_stdout=True, capture_stderr=True, check=False, cwd=cwd,
            env={**os.environ, "GATEWAY_CONFIG": "", **env})
    return result.returncode, result.stderr.decode().splitlines()


def damaged(path: Path) -> Path:
    """A gateway database with frames, one page of the frame log's time index overwritten."""
    conn = connect(str(path))
    migrate(conn)
    conn.execute("BEGIN")
    writer_rows.frames(conn, [(f"2026-11-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "CP1", "in", 2, f"u{i}",
                           "Heartbeat", "[2,\"u\",\"Heartbeat\",{}]") for i in range(5000)])
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'frames' "
                        "AND sql LIKE '%(at%'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)
    return path


@pytest.mark.parametrize("case, cause", [
    ("not a database", "the file is not a SQLite database"),
    ("folder is a file", "is not a folder"),
    ("damaged", "the database file is damaged"),
    ("disk full", "the disk is full"),
    ("read-only", "the database is read-only"),
    ("read-only, already migrated", "the database is read-only"),
])
async def test_a_database_it_cannot_start_on_is_one_clear_line(tmp_path, case, cause):
    db, env = tmp_path / "gateway.db", {}
    if case == "not a database":
        db.write_bytes(b"these are the notes of a person, not a database; " * 40)
    elif case == "folder is a file":
        (tmp_path / "data").write_text("a file where the folder should be")
        db = tmp_path / "data" / "gateway.db"
    elif case == "damaged":
        damaged(db)
    elif case == "disk full":
        env = {PRAGMAS_ENV: "max_page_count=1"}
    elif case == "read-only":
        env = {PRAGMAS_ENV: "query_only=1"}
    elif case == "read-only, already migrated":
        migrate(connect(str(db)))
        env = {PRAGMAS_ENV: "query_only=1"}
    status, lines = await start(db, tmp_path, **env)
    assert status == 1
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert lines[-1].startswith("gateway: ") and str(db) in lines[-1] and cause in lines[-1], lines[-1]


def test_the_damage_is_in_the_frame_log_index():
    """The damaged file above fails where the issue saw it fail: reading frames by time (the prune)."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(damaged(Path(folder) / "gateway.db"))
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            conn.execute("DELETE FROM frames WHERE id IN (SELECT id FROM frames WHERE at < ? LIMIT 5000)",
                         ("2027",))
        conn.close()
