"""Frames and meter values are partitioned by day: each day's partition is made ahead, and retention drops
whole days instead of deleting row by row.

A day's partition holds the rows whose time (ISO 8601 text, compared byte by byte) lies from 'YYYY-MM-DD' up
to the next day's; a row outside every day's (a charger's clock years off, a replayed capture) lands in the
table's default partition, which retention prunes row by row. Nodes take turns through an advisory lock.
"""

from __future__ import annotations

import datetime as dt
import re

import structlog

from .connection import Connection

log = structlog.get_logger("gateway.store")

PARTITIONED = {"frames": "at", "meter_value_sets": "received_at"}  # table -> the time column it is split by
AHEAD = 3  # days made ahead of today
PARTITION_LOCK = 0x6761746578
DAY_NAME = re.compile(r"_(\d{8})$")


def _name(table: str, day: dt.date) -> str:
    return f"{table}_{day:%Y%m%d}"


def days(conn: Connection, table: str) -> list[dt.date]:
    """The days that have a partition of `table`, oldest first."""
    rows = conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = to_regclass(?)", (table,)).fetchall()
    found = [DAY_NAME.search(name) for (name,) in rows]
    return sorted(dt.datetime.strptime(m.group(1), "%Y%m%d").date() for m in found if m)


def ensure(conn: Connection, today: dt.date, ahead: int = AHEAD) -> list[str]:
    """Make the partitions of `today` and the `ahead` days after it that are missing; the names made.

    A day whose rows already sit in the default partition is left there (logged): its rows stay readable."""
    made = []
    conn.execute("SELECT pg_advisory_xact_lock(?)", (PARTITION_LOCK,))
    for table in PARTITIONED:
        have = set(days(conn, table))
        for n in range(ahead + 1):
            day = today + dt.timedelta(days=n)
            if day in have:
                continue
            conn.execute("SAVEPOINT partition")
            try:
                conn.execute(f"CREATE TABLE {_name(table, day)} PARTITION OF {table} "
                             f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + dt.timedelta(days=1)).isoformat()}')")
                conn.execute("RELEASE SAVEPOINT partition")
                made.append(_name(table, day))
            except Exception as exc:  # rows of that day are in the default partition already
                conn.execute("ROLLBACK TO SAVEPOINT partition")
                log.warning("partition not made", table=table, day=day.isoformat(), error=str(exc).splitlines()[0])
    return made


def drop_before(conn: Connection, table: str, cutoff: str) -> tuple[int, list[str]]:
    """Drop the day partitions of `table` wholly before `cutoff` (ISO 8601 text) and delete the default
    partition's rows before it: (rows deleted from the default partition, partitions dropped)."""
    column = PARTITIONED[table]
    conn.execute("SELECT pg_advisory_xact_lock(?)", (PARTITION_LOCK,))
    dropped = []
    for day in days(conn, table):
        if (day + dt.timedelta(days=1)).isoformat() <= cutoff:
            conn.execute(f"DROP TABLE {_name(table, day)}")
            dropped.append(_name(table, day))
    deleted = conn.execute(f"DELETE FROM {table}_default WHERE {column} < ?", (cutoff,)).rowcount
    return deleted, dropped
