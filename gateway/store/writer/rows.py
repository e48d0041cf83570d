"""The append-only writes: the frame log and meter values (the hot path), and the audit log (every request
that changes something: written beside them, so a record never holds up a database job that someone awaits).

Standard library only: they run in the writer process (process.py), or on the database thread when
the database has no file of its own (":memory:"). A batch is a list of (kind, rows).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Callable

from .connection import insert_rows

FRAME_COLUMNS = "at, charge_point_id, direction, message_type, unique_id, action, body"
METER_VALUE_COLUMNS = "charge_point_id, connector_id, transaction_id, source, received_at, meter_value"
AUDIT_COLUMNS = ("at", "kind", "username", "user_tenant_id", "tenant_id", "address", "method", "route", "action",
                 "target", "summary", "status", "error")


def frames(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """rows: (at, charge_point_id, direction, message_type, unique_id, action, body) each."""
    insert_rows(conn, "frames", FRAME_COLUMNS, rows)
    # A charger is "seen" whenever it sends something: one update per charger per batch.
    seen: dict[str, str] = {}
    for at, cp_id, direction, *_ in rows:
        if direction == "in":
            seen[cp_id] = at
    if seen:
        conn.execute(
            """UPDATE charge_points SET last_seen = s.value ->> 1 FROM json_each(?) AS s
               WHERE charge_points.id = s.value ->> 0 AND (last_seen IS NULL OR last_seen < s.value ->> 1)""",
            (json.dumps(list(seen.items())),),
        )


def meter_values(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """rows: (charge_point_id, connector_id, transaction_id, source, received_at, meterValue as JSON text) each,
    one per message (jsontext.to_json of the meterValue list as the charger sent it)."""
    insert_rows(conn, "meter_value_sets", METER_VALUE_COLUMNS, rows)


def audit_log(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """rows: the AUDIT_COLUMNS of a record each (target and summary as JSON text)."""
    insert_rows(conn, "audit_log", ", ".join(AUDIT_COLUMNS), rows)


KINDS: dict[str, Callable[[sqlite3.Connection, list[tuple]], None]] = {
    "frames": frames, "meter_values": meter_values, "audit_log": audit_log}


def apply(conn: sqlite3.Connection, batch: list[tuple[str, list[tuple]]]) -> None:
    """Write a batch, rows of one kind together (a table's rows keep their order)."""
    by_kind: dict[str, list[tuple]] = {}
    for kind, rows in batch:
        by_kind.setdefault(kind, []).extend(rows)
    for kind, rows in by_kind.items():
        KINDS[kind](conn, rows)
