"""The cluster's SQL on a throwaway PostgreSQL, driven step by step: ownership by epoch, a command claimed once,
what the sweep does when a node dies or a charger moves."""

from __future__ import annotations

from typing import AsyncIterator

import psycopg
import pytest
import trio

from gateway.cluster.notices import channel_of
from gateway.store.cluster import ClusterStore
from gateway.store.pg.connection import Connection, connect
from gateway.store.pg.migrations import migrate


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[ClusterStore]:
    raw = connect(pg_url)  # the store's schema, whose charge_points the cluster keeps online
    try:
        migrate(Connection(raw))
    finally:
        raw.close()
    store = ClusterStore(pg_url, 2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def join(db: ClusterStore, node_id: str) -> None:
    await db.join(node_id, channel_of(node_id), 5.0)


def die(url: str, node_id: str) -> None:
    """The node stops renewing its lease (as if killed a minute ago)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 minute' WHERE node_id = %s",
                     (node_id,))


async def test_the_newest_connection_holds_the_charger(db: ClusterStore):
    await join(db, "A")
    await join(db, "B")
    first = await db.claim("CP1", "A")
    second = await db.claim("CP1", "B")
    assert first is not None and second is not None and second > first
    assert await db.owners() == [("CP1", "B", second)]
    assert not await db.is_current("CP1", first) and await db.is_current("CP1", second)
    assert await db.release("CP1", first) is False  # the old connection's end changes nothing
    beat = await db.beat("A", channel_of("A"), 5.0, {"CP1": first})
    assert beat.stale == ["CP1"]  # A is told to close its socket
    assert await db.release("CP1", second) is True
    assert await db.owners() == []


async def test_a_command_is_claimed_once(db: ClusterStore):
    await join(db, "A")
    await join(db, "B")
    epoch = await db.claim("CP1", "A")
    queued = await db.enqueue("req-1", "CP1", "B", "Reset", {"type": "Soft"}, 10.0)
    assert queued is not None and queued.node_id == "A"
    async with trio.open_nursery() as nursery:  # two takers at once: one gets it
        taken: list = []

        async def take() -> None:
            taken.extend(await db.take("A", [queued.id]))
        nursery.start_soon(take)
        nursery.start_soon(take)
    assert [(c.request_id, c.epoch, c.payload) for c in taken] == [("req-1", epoch, {"type": "Soft"})]
    assert 0 < taken[0].remaining <= 10.0
    assert await db.take("A") == []
    await db.finish(queued.id, "answered", {"status": "Accepted"})
    [ended] = await db.ended([queued.id])
    assert (ended.outcome, ended.result) == ("answered", {"status": "Accepted"})


async def test_no_command_for_a_charger_no_live_node_holds(db: ClusterStore, pg_url: str):
    await join(db, "A")
    assert await db.enqueue("req-0", "CP1", "A", "Reset", {}, 10.0) is None  # never connected
    await db.claim("CP1", "A")
    die(pg_url, "A")
    assert await db.enqueue("req-1", "CP1", "A", "Reset", {}, 10.0) is None  # its node's lease ran out


async def test_a_node_dies_its_claimed_command_is_lost_and_its_queued_one_follows_the_charger(db: ClusterStore,
                                                                                             pg_url: str):
    await join(db, "A")
    await join(db, "B")
    await db.claim("CP1", "A")
    sent = await db.enqueue("req-sent", "CP1", "B", "RemoteStartTransaction", {"idTag": "T"}, 30.0)
    waiting = await db.enqueue("req-waiting", "CP1", "B", "Reset", {"type": "Soft"}, 30.0)
    assert sent is not None and waiting is not None
    [claimed] = await db.take("A", [sent.id])  # A claims one, and dies before it stores the answer
    assert claimed.request_id == "req-sent"
    die(pg_url, "A")
    swept = await db.sweep()
    assert (swept.offline, swept.lost) == (["CP1"], 1)
    [lost] = await db.ended([sent.id])
    assert lost.outcome == "lost"  # ended: never sent again
    assert await db.ended([waiting.id]) == []  # never sent: it waits for the charger's next connection
    epoch = await db.claim("CP1", "B")  # the charger connects to B
    swept = await db.sweep()
    assert swept.moved == 1
    [moved] = await db.take("B")
    assert (moved.request_id, moved.epoch) == ("req-waiting", epoch)


async def test_a_command_nobody_claimed_in_time_is_never_sent(db: ClusterStore):
    await join(db, "A")
    await join(db, "B")
    await db.claim("CP1", "A")
    queued = await db.enqueue("req-1", "CP1", "B", "Reset", {}, 10.0)
    assert queued is not None
    state, ended = await db.give_up(queued.id)  # the asking node's wait ended first
    assert state == "done" and ended is not None and ended.outcome == "expired"
    assert await db.take("A") == []


async def test_a_restarted_node_ends_what_its_killed_run_left(db: ClusterStore):
    await join(db, "A")
    await join(db, "B")
    await db.claim("CP1", "A")
    queued = await db.enqueue("req-1", "CP1", "B", "Reset", {}, 10.0)
    assert queued is not None
    await db.take("A")
    assert await db.join("A", channel_of("A"), 5.0) == ["CP1"]  # A again, after a kill -9
    assert await db.owners() == []
    [ended] = await db.ended([queued.id])
    assert ended.outcome == "lost"


async def test_chargers_online_in_the_records_that_no_live_node_holds_are_marked_offline(db: ClusterStore,
                                                                                       pg_url: str):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO charge_points (id, online, first_seen, last_seen) VALUES
                        ('HELD', 1, 'x', 'x'), ('LEFT', 1, 'x', 'x'), ('OFF', 0, 'x', 'x')""")
    await join(db, "A")
    await db.claim("HELD", "A")
    assert await db.unheld_offline("gateway restarted", "2026-12-04T00:00:00.000Z") == 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT id, online, disconnect_reason FROM charge_points ORDER BY id").fetchall()
    assert rows == [("HELD", 1, None), ("LEFT", 0, "gateway restarted"), ("OFF", 0, None)]
