"""The gateway's own log lines (already redacted), kept for search: written in batches, pruned by age and count."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

from .calls import Table
from .paging import Filters, page

LEVELS = ("debug", "info", "warning", "error", "critical")


def _add(conn: sqlite3.Connection, lines: Iterable[tuple[str, str, str | None, str, str | None, str]]) -> int:
    """Insert (at, level, logger, event, charge point id, fields JSON) lines in one statement; how many."""
    cur = conn.executemany("INSERT INTO log_lines (at, level, logger, event, charge_point_id, fields) "
                           "VALUES (?, ?, ?, ?, ?, ?)", list(lines))
    return cur.rowcount


def _prune(conn: sqlite3.Connection, before: str, keep: int) -> int:
    """Delete the lines older than `before` and all but the newest `keep`; how many were deleted."""
    deleted = conn.execute("DELETE FROM log_lines WHERE at < ?", (before,)).rowcount
    newest = conn.execute("SELECT MAX(id) FROM log_lines").fetchone()[0]
    if newest is not None:
        deleted += conn.execute("DELETE FROM log_lines WHERE id <= ?", (newest - keep,)).rowcount
    return deleted


def _search(conn: sqlite3.Connection, level: str | None, logger: str | None, cp_id: str | None, text: str | None,
            since: str | None, until: str | None, number: int, size: int) -> dict[str, Any]:
    """A page of log lines, newest first: at `level` or above, from `logger` or a logger below it
    (gateway.store is under gateway), about charger `cp_id`, holding `text` in the event or its fields
    (case-insensitive for ASCII letters), at or after `since` and before `until`.

    The gateway's own log, not a tenant's records: it is the platform's (read by the admin role)."""
    filters = Filters()
    if level is not None:
        wanted = LEVELS[LEVELS.index(level):]
        filters.clauses.append(f"level IN ({', '.join('?' * len(wanted))})")
        filters.args.extend(wanted)
    if logger is not None:
        filters.clauses.append("(logger = ? OR substr(logger, 1, ?) = ?)")
        filters.args.extend([logger, len(logger) + 1, logger + "."])
    filters.add("charge_point_id = ?", cp_id)
    if text:  # instr, not LIKE: % and _ are characters like any other
        filters.clauses.append("(instr(lower(event), lower(?)) > 0 OR instr(lower(fields), lower(?)) > 0)")
        filters.args.extend([text, text])
    filters.add("at >= ?", since)
    filters.add("at < ?", until)
    return page(conn, "log_lines", filters, "id DESC", number, size)


class LogLines(Table, committed=dict(add=_add, prune=_prune, search=_search)):
    pass
