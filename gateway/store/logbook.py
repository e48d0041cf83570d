"""The gateway's own log lines (already redacted), kept for search: written in batches; pruned by age and count
by `rule` (gateway/store/retention.py, in small batches)."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

from .calls import Table
from .paging import Filters
from .pg.connection import on_postgresql
from .retention import Rule

LEVELS = ("debug", "info", "warning", "error", "critical")
TRIGRAM = 3  # the shortest text the trigram index finds
COUNT_CAP = 1_000  # a search counts its lines up to this many


def _add(conn: sqlite3.Connection, lines: Iterable[tuple[str, str, str | None, str, str | None, str]]) -> int:
    """Insert (at, level, logger, event, charge point id, fields JSON) lines in one statement; how many."""
    cur = conn.executemany("INSERT INTO log_lines (at, level, logger, event, charge_point_id, fields) "
                           "VALUES (?, ?, ?, ?, ?, ?)", list(lines))
    return cur.rowcount


def rule(retention_days: float, max_rows: int) -> Rule:
    """The retention's rule for the lines: those older than `retention_days`, then all but the newest `max_rows`."""
    return Rule("log_lines", "at", retention_days, keep=max_rows)


def _search(conn: sqlite3.Connection, level: str | None, logger: str | None, cp_id: str | None, text: str | None,
            since: str | None, until: str | None, number: int, size: int) -> dict[str, Any]:
    """A page of log lines, newest first: at `level` or above, from `logger` or a logger below it
    (gateway.store is under gateway), about charger `cp_id`, holding `text` in the event or its fields
    (case-insensitive), at or after `since` and before `until`. total counts up to COUNT_CAP lines
    (totalCapped: there are more): a count of every line holding a common word would read them all.

    The gateway's own log, not a tenant's records: it is the platform's (read by the admin role)."""
    filters = Filters()
    source, order = "log_lines l", "l.id DESC"
    if text and len(text) >= TRIGRAM and not on_postgresql(conn):  # SQLite's trigram index, read newest first: the text as one phrase
        source, order = "log_lines_text f JOIN log_lines l ON l.id = f.rowid", "f.rowid DESC"
        filters.add("log_lines_text MATCH ?", '"' + text.replace('"', '""') + '"')
    elif text:  # too short for trigrams (or on PostgreSQL): line by line (instr, not LIKE: % and _ are characters like any other)
        filters.clauses.append("(instr(lower(l.event), lower(?)) > 0 OR instr(lower(l.fields), lower(?)) > 0)")
        filters.args.extend([text, text])
    if level is not None:
        wanted = LEVELS[LEVELS.index(level):]
        filters.clauses.append(f"l.level IN ({', '.join('?' * len(wanted))})")
        filters.args.extend(wanted)
    if logger is not None:
        filters.clauses.append("(l.logger = ? OR substr(l.logger, 1, ?) = ?)")
        filters.args.extend([logger, len(logger) + 1, logger + "."])
    filters.add("l.charge_point_id = ?", cp_id)
    filters.add("l.at >= ?", since)
    filters.add("l.at < ?", until)
    total = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {source}{filters.where} LIMIT ?) AS capped",
                         (*filters.args, COUNT_CAP + 1)).fetchone()[0]
    rows = conn.execute(f"SELECT l.* FROM {source}{filters.where} ORDER BY {order} LIMIT ? OFFSET ?",
                        (*filters.args, size, (number - 1) * size)).fetchall()
    return {"records": [dict(r) for r in rows], "total": min(total, COUNT_CAP), "totalCapped": total > COUNT_CAP,
            "page": number, "size": size}


class LogLines(Table, committed=dict(add=_add, search=_search)):
    pass
