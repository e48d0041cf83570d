"""A store job that declares `scope` gets the scope of the task calling its method, never one passed in."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from gateway.store import scope
from gateway.store.calls import Table
from gateway.store.db import Database


def _seen(conn: sqlite3.Connection, label: str, *, scope: scope.Scope) -> tuple[str, scope.Scope]:
    return label, scope


_kept: list[scope.Scope] = []


def _keep(conn: sqlite3.Connection, *, scope: scope.Scope) -> None:
    _kept.append(scope)


class Probe(Table, committed=dict(seen=_seen), batched=dict(keep=_keep)):
    pass


def test_where_clause():
    assert scope.EVERYTHING.where("t.tenant_id") == ("TRUE", ())
    clause, params = scope.Scope(2, frozenset({4, 2})).where("t.tenant_id")
    assert clause == "coalesce(t.tenant_id, 1) IN (?, ?)" and params == (2, 4)
    assert scope.Scope(2, frozenset({2})).sees(2) and not scope.Scope(2, frozenset({2})).sees(None)
    assert scope.EVERYTHING.sees(7)


async def test_the_method_passes_the_callers_scope(tmp_path):
    db = Database(str(tmp_path / "t.db"))
    await db.open()
    try:
        probe = Probe(db)
        assert await probe.seen("x") == ("x", scope.EVERYTHING)
        mine = scope.Scope(3, frozenset({3, 5}))
        with scope.acting_as(mine):
            assert await probe.seen(label="y") == ("y", mine)
            probe.keep()
            with pytest.raises(TypeError, match="scope"):  # a caller cannot choose its own
                await probe.seen("z", scope=scope.EVERYTHING)
        assert await probe.seen("w") == ("w", scope.EVERYTHING)  # the block ended
        assert _kept == [mine]

        async def other_task() -> scope.Scope:  # a task started outside every request sees everything
            return (await probe.seen("t"))[1]
        assert await other_task() == scope.EVERYTHING
    finally:
        await db.close()
        await trio.sleep(0)
