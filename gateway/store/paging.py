"""One page of a list query: {records, total, page, size}."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

Row = dict[str, Any]


class Filters:
    """Collects WHERE clauses and their arguments."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, clause: str, value: Any) -> None:
        if value is not None:
            self.clauses.append(clause)
            self.args.append(value)

    def within(self, condition: tuple[str, tuple]) -> None:
        """Keep only the rows of the caller's scope: a condition and its arguments from Scope.where or
        registry.charger_where."""
        self.clauses.append(condition[0])
        self.args.extend(condition[1])

    @property
    def where(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def page(conn: sqlite3.Connection, table: str, filters: Filters, order: str, number: int, size: int,
         shape: Callable[[sqlite3.Row], Row] = dict) -> dict[str, Any]:
    total = conn.execute(f"SELECT COUNT(*) FROM {table}{filters.where}", filters.args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM {table}{filters.where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*filters.args, size, (number - 1) * size),
    ).fetchall()
    return {"records": [shape(r) for r in rows], "total": total, "page": number, "size": size}
