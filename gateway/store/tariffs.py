"""Tariff versions: what each configured tariff said from when on."""

from __future__ import annotations

import sqlite3
from typing import Any

from .calls import Table


def _latest(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM tariff_versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                       (name,)).fetchone()
    return dict(row) if row else None


def _record(conn: sqlite3.Connection, tariffs: dict[str, tuple[str, str]], at: str) -> dict[str, dict[str, Any]]:
    """tariffs: name -> (currency, definition JSON). A new version of every tariff whose (currency, definition JSON) differs from its latest one, in force
    from `at`; the latest version of each, by name."""
    latest = {}
    for name, (currency, definition) in tariffs.items():
        row = _latest(conn, name)
        if row is None or (row["currency"], row["definition"]) != (currency, definition):
            conn.execute("INSERT INTO tariff_versions (name, version, currency, definition, effective_from) "
                         "VALUES (?, ?, ?, ?, ?)", (name, row["version"] + 1 if row else 1, currency, definition, at))
            row = _latest(conn, name)
        latest[name] = row
    return latest


def in_force(conn: sqlite3.Connection, name: str, at: str) -> dict[str, Any] | None:
    """The version of `name` in force at `at`: the latest that took effect by then, or the first one for a
    session older than every version. Callable inside other store jobs."""
    row = conn.execute("SELECT * FROM tariff_versions WHERE name = ? AND effective_from <= ? "
                       "ORDER BY version DESC LIMIT 1", (name, at)).fetchone()
    row = row or conn.execute("SELECT * FROM tariff_versions WHERE name = ? ORDER BY version LIMIT 1",
                              (name,)).fetchone()
    return dict(row) if row else None


def version(conn: sqlite3.Connection, version_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM tariff_versions WHERE id = ?", (version_id,)).fetchone()
    return dict(row) if row else None


def _all(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM tariff_versions ORDER BY name, version")]


class Tariffs(Table, committed=dict(record=_record, in_force=in_force, all=_all)):
    pass
