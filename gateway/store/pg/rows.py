"""The append-only rows (writer/rows.py's kinds) into PostgreSQL: COPY, one round trip per table and batch."""

from __future__ import annotations

from .connection import Connection
from ..writer.rows import AUDIT_COLUMNS, FRAME_COLUMNS, METER_VALUE_COLUMNS

_SEEN = """UPDATE charge_points SET last_seen = s.at FROM unnest(?::text[], ?::text[]) AS s (id, at)
           WHERE charge_points.id = s.id AND (last_seen IS NULL OR last_seen < s.at)"""


def frames(conn: Connection, rows: list[tuple]) -> None:
    conn.copy_rows("frames", FRAME_COLUMNS.split(", "), rows)
    seen: dict[str, str] = {}  # a charger is "seen" whenever it sends something: one update per batch
    for at, cp_id, direction, *_ in rows:
        if direction == "in":
            seen[cp_id] = at
    if seen:
        conn.execute(_SEEN, (list(seen), list(seen.values())))


def meter_values(conn: Connection, rows: list[tuple]) -> None:
    conn.copy_rows("meter_value_sets", METER_VALUE_COLUMNS.split(", "), rows)


def audit_log(conn: Connection, rows: list[tuple]) -> None:
    conn.copy_rows("audit_log", AUDIT_COLUMNS, rows)


KINDS = {"frames": frames, "meter_values": meter_values, "audit_log": audit_log}


def apply(conn: Connection, batch: list[tuple[str, list[tuple]]]) -> None:
    """Write a batch, rows of one kind together (a table's rows keep their order)."""
    by_kind: dict[str, list[tuple]] = {}
    for kind, rows in batch:
        by_kind.setdefault(kind, []).extend(rows)
    for kind, rows in by_kind.items():
        KINDS[kind](conn, rows)
