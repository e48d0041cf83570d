"""All SQL of several gateway nodes on one PostgreSQL: the nodes and their leases, who holds each charger, the
commands on their way from one node to another, and the LISTEN connection that wakes a node up.

Each job `fn(conn, ...)` runs in one transaction on a pooled connection of the sync psycopg 3 driver, in a
Trio worker thread, under a capacity limiter the size of the pool (psycopg's async API needs asyncio). A
NOTIFY sent by a job leaves with its commit, so a node is never woken for a row it cannot read yet. What a
notice says is gateway/cluster/notices.py's; this module only sends and receives them.

A node whose heartbeat is older than its lease has lost its chargers: the sweep (any node's) ends their
ownership, and a command that node had claimed ends `lost`, never sent again (gateway/cluster/outcomes.py).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import attrs
import psycopg
import structlog
import trio
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..cluster import notices
from ..cluster.notices import Done, Gone, Notice, Owned, Queued, Revoked
from .health import StoreUnavailable
from .pg.migrations import MIGRATION_LOCK, migration_files

log = structlog.get_logger("gateway.cluster")

MIGRATION = 26  # schemas/postgresql/026_cluster.sql
KEEP_DONE = "1 hour"  # commands done are kept this long (what the requester read them for is in `commands`)
MANY = 200  # more ownership changes than this in one sweep are not announced one by one: nodes re-read them


def _notify(conn: psycopg.Connection, channel: str, notice: Notice) -> None:
    payload = notices.encode(notice)
    if payload is not None:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _live(alias: str) -> str:
    """An SQL condition: node `alias` has said it is alive within its lease."""
    return f"{alias}.heartbeat_at > now() - make_interval(secs => {alias}.lease_seconds)"


# ---- nodes ------------------------------------------------------------------------------------------------

def _migrate(conn: psycopg.Connection) -> None:
    """Apply the cluster's migration where the ledger does not have it (the store applies it too when `db` is
    the same server; it can be applied twice)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))  # the store's migrations take turns too
    conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (number BIGINT PRIMARY KEY, name TEXT NOT NULL,
                    applied_at TEXT NOT NULL)""")
    if conn.execute("SELECT 1 FROM schema_migrations WHERE number = 26").fetchone() is None:
        name, sql = next((name, sql) for number, name, sql in migration_files() if number == MIGRATION)
        conn.execute(sql.encode())  # bytes: run as it is, without parameters
        conn.execute("INSERT INTO schema_migrations VALUES (26, %s, to_char(now() AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) ON CONFLICT DO NOTHING", (name,))


def _join(conn: psycopg.Connection, node_id: str, channel: str, lease: float) -> list[str]:
    """Record the node as alive; end what an earlier run of it left (killed: its chargers are no longer
    connected to it, a command it had claimed is lost). Returns the charge point ids it had held."""
    conn.execute("""INSERT INTO cluster_nodes (node_id, channel, lease_seconds) VALUES (%s, %s, %s)
                    ON CONFLICT (node_id) DO UPDATE SET channel = excluded.channel, started_at = now(),
                        heartbeat_at = now(), lease_seconds = excluded.lease_seconds""", (node_id, channel, lease))
    held = [cp for cp, in conn.execute("DELETE FROM cluster_owners WHERE node_id = %s RETURNING cp_id", (node_id,))]
    _end(conn, "c.node_id = %s AND c.state = 'claimed'", (node_id,), "lost")
    return held


def _unheld_offline(conn: psycopg.Connection, reason: str, at: str) -> int:
    """Mark offline the chargers the records say are online but no live node holds: left so by a cluster whose
    every node stopped at once, or by a SQLite site's last run before `gateway migrate`. (What a single gateway
    does at start for all its chargers.)"""
    return conn.execute(f"""UPDATE charge_points SET online = 0, disconnected_at = %s, disconnect_reason = %s
                            WHERE online = 1 AND NOT EXISTS (
                                SELECT 1 FROM cluster_owners o JOIN cluster_nodes n ON n.node_id = o.node_id
                                WHERE o.cp_id = charge_points.id AND {_live('n')})""", (at, reason)).rowcount


def _leave(conn: psycopg.Connection, node_id: str) -> None:
    """A clean stop: the node's chargers are no longer connected to it, and it is gone."""
    for cp, epoch in conn.execute("DELETE FROM cluster_owners WHERE node_id = %s RETURNING cp_id, epoch",
                                  (node_id,)).fetchall():
        _notify(conn, notices.BROADCAST, Gone(cp, epoch))
    _end(conn, "c.node_id = %s AND c.state = 'claimed'", (node_id,), "lost")
    conn.execute("DELETE FROM cluster_nodes WHERE node_id = %s", (node_id,))


@attrs.frozen
class Beat:
    stale: list[str]  # connections of this node that a newer one (on any node) replaced
    reclaimed: dict[str, int]  # connections whose ownership had ended (the node was cut off): their new epoch


def _beat(conn: psycopg.Connection, node_id: str, channel: str, lease: float, cp_ids: Sequence[str],
          epochs: Sequence[int]) -> Beat:
    """Renew the node's lease and check the connections it holds (cp_ids, with their epochs) against the
    owners: those replaced are stale; those whose ownership a sweep ended while this node could not renew
    (but no one else took) are claimed again."""
    renewed = conn.execute("UPDATE cluster_nodes SET heartbeat_at = now(), lease_seconds = %s WHERE node_id = %s",
                           (lease, node_id)).rowcount
    if not renewed:  # the row was removed (by hand): join again
        conn.execute("INSERT INTO cluster_nodes (node_id, channel, lease_seconds) VALUES (%s, %s, %s)",
                     (node_id, channel, lease))
    rows = conn.execute("""SELECT l.cp_id, o.epoch FROM unnest(%s::text[], %s::bigint[]) AS l(cp_id, epoch)
                           LEFT JOIN cluster_owners o ON o.cp_id = l.cp_id
                           WHERE o.epoch IS NULL OR o.epoch <> l.epoch""", (list(cp_ids), list(epochs))).fetchall()
    stale = [cp for cp, epoch in rows if epoch is not None]
    reclaimed = {}
    for cp, epoch in rows:
        if epoch is None:
            taken = _claim(conn, cp, node_id)
            if taken is not None:
                reclaimed[cp] = taken
            else:
                stale.append(cp)
    return Beat(stale, reclaimed)


# ---- ownership --------------------------------------------------------------------------------------------

def _claim(conn: psycopg.Connection, cp_id: str, node_id: str) -> int | None:
    """Make this node the charger's owner with a new epoch; None when an even newer connection already holds
    it. The node that held it before is told (Revoked): it closes its socket."""
    previous = conn.execute("""SELECT o.node_id, n.channel FROM cluster_owners o
                               LEFT JOIN cluster_nodes n ON n.node_id = o.node_id WHERE o.cp_id = %s FOR UPDATE OF o""",
                            (cp_id,)).fetchone()
    row = conn.execute("""INSERT INTO cluster_owners (cp_id, node_id, epoch) VALUES (%s, %s, nextval('cluster_epoch'))
                          ON CONFLICT (cp_id) DO UPDATE SET node_id = excluded.node_id, epoch = excluded.epoch,
                              since = now()
                          WHERE cluster_owners.epoch < excluded.epoch
                          RETURNING epoch""", (cp_id, node_id)).fetchone()
    if row is None:
        return None
    epoch = row[0]
    # Online in the records too: a node joining meanwhile may have marked it offline as held by no one
    # (_unheld_offline), between its connection's record and this claim.
    conn.execute("UPDATE charge_points SET online = 1 WHERE id = %s AND online = 0", (cp_id,))
    if previous is not None and previous[0] != node_id and previous[1] is not None:
        _notify(conn, previous[1], Revoked(cp_id, epoch))
    _notify(conn, notices.BROADCAST, Owned(cp_id, node_id, epoch))
    return epoch


def _release(conn: psycopg.Connection, cp_id: str, epoch: int) -> bool:
    """The connection `epoch` ended: the charger is no longer connected anywhere unless a newer connection
    holds it (then nothing changes). Whether it still was the charger's connection."""
    gone = conn.execute("DELETE FROM cluster_owners WHERE cp_id = %s AND epoch = %s", (cp_id, epoch)).rowcount
    if gone:  # offline in the records too (its session recorded why; this undoes a claim that came after)
        conn.execute("UPDATE charge_points SET online = 0 WHERE id = %s AND online = 1", (cp_id,))
        _notify(conn, notices.BROADCAST, Gone(cp_id, epoch))
    return bool(gone)


def _is_current(conn: psycopg.Connection, cp_id: str, epoch: int) -> bool:
    """Whether connection `epoch` still holds the charger (checked before a command is sent on it)."""
    return conn.execute("SELECT 1 FROM cluster_owners WHERE cp_id = %s AND epoch = %s",
                        (cp_id, epoch)).fetchone() is not None


def _owners(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(charge point id, node, epoch) of every charger connected to a live node."""
    return [tuple(row) for row in conn.execute(  # type: ignore[misc]
        f"""SELECT o.cp_id, o.node_id, o.epoch FROM cluster_owners o JOIN cluster_nodes n ON n.node_id = o.node_id
            WHERE {_live('n')}""")]


def _nodes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every node: id, alive, its chargers, when it started and last said it is alive."""
    rows = conn.execute(f"""SELECT n.node_id, {_live('n')}, (SELECT count(*) FROM cluster_owners o
                                WHERE o.node_id = n.node_id), n.started_at, n.heartbeat_at
                            FROM cluster_nodes n ORDER BY n.node_id""").fetchall()
    return [{"node_id": r[0], "alive": r[1], "chargers": r[2], "started_at": r[3].isoformat(),
             "heartbeat_at": r[4].isoformat()} for r in rows]


# ---- commands ---------------------------------------------------------------------------------------------

@attrs.frozen
class Queuing:
    id: int
    node_id: str  # the owner it waits for


def _enqueue(conn: psycopg.Connection, request_id: str, cp_id: str, requester: str, action: str,
             payload: dict[str, Any], timeout: float) -> Queuing | None:
    """Queue a command for the node holding the charger and wake it; None when no live node holds it."""
    owner = conn.execute(f"""SELECT o.node_id, o.epoch, n.channel FROM cluster_owners o
                             JOIN cluster_nodes n ON n.node_id = o.node_id WHERE o.cp_id = %s AND {_live('n')}""",
                         (cp_id,)).fetchone()
    if owner is None:
        return None
    node_id, epoch, channel = owner
    (command_id,) = conn.execute(
        """INSERT INTO cluster_commands (request_id, cp_id, node_id, epoch, requester, action, payload, deadline)
           VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING id""",
        (request_id, cp_id, node_id, epoch, requester, action, Jsonb(payload), timeout)).fetchone()
    _notify(conn, channel, Queued(command_id))
    return Queuing(command_id, node_id)


@attrs.frozen
class Claimed:
    id: int
    request_id: str
    cp_id: str
    epoch: int
    action: str
    payload: dict[str, Any]
    remaining: float  # seconds until the requester gives up


def _take(conn: psycopg.Connection, node_id: str, ids: Sequence[int] | None, limit: int = 100) -> list[Claimed]:
    """Claim the commands queued for this node (those of `ids`, or any), each for the connection that still
    holds its charger and before its deadline. A command claimed is this node's to send, once: the claim is
    committed before it is sent, and no one claims it again (SKIP LOCKED: two sweeps never wait on each
    other). One whose connection was replaced stays queued, for the sweep to hand to the new owner."""
    only = "AND c.id = ANY(%s)" if ids is not None else ""
    args: tuple = (node_id, list(ids), limit) if ids is not None else (node_id, limit)
    rows = conn.execute(
        f"""UPDATE cluster_commands c SET state = 'claimed', claimed_at = now()
            FROM (SELECT q.id FROM cluster_commands q
                  JOIN cluster_owners o ON o.cp_id = q.cp_id AND o.epoch = q.epoch AND o.node_id = q.node_id
                  WHERE q.node_id = %s AND q.state = 'queued' AND q.deadline > now() {only.replace('c.', 'q.')}
                  ORDER BY q.id LIMIT %s FOR UPDATE OF q SKIP LOCKED) picked
            WHERE c.id = picked.id
            RETURNING c.id, c.request_id, c.cp_id, c.epoch, c.action, c.payload,
                      extract(epoch FROM c.deadline - now())::float8""", args).fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def _finish(conn: psycopg.Connection, command_id: int, outcome: str, data: dict[str, Any] | None) -> None:
    """Store how a claimed command ended and wake its requester."""
    row = conn.execute("""UPDATE cluster_commands c SET state = 'done', outcome = %s, result = %s, done_at = now()
                          FROM cluster_nodes n WHERE c.id = %s AND c.state = 'claimed' AND n.node_id = c.requester
                          RETURNING n.channel""",
                       (outcome, None if data is None else Jsonb(data), command_id)).fetchone()
    if row is not None:
        _notify(conn, row[0], Done(command_id))


@attrs.frozen
class Ended:
    id: int
    outcome: str
    result: dict[str, Any] | None


def _ended(conn: psycopg.Connection, ids: Sequence[int]) -> list[Ended]:
    """The commands of `ids` that are done."""
    return [Ended(*row) for row in conn.execute(
        "SELECT id, outcome, result FROM cluster_commands WHERE id = ANY(%s) AND state = 'done'", (list(ids),))]


def _give_up(conn: psycopg.Connection, command_id: int) -> tuple[str, Ended | None]:
    """The requester waited long enough: a command still queued is never sent (expired). Returns its state
    ('queued' never is: it is expired now) and, when done, how it ended."""
    conn.execute("""UPDATE cluster_commands SET state = 'done', outcome = 'expired', done_at = now()
                    WHERE id = %s AND state = 'queued'""", (command_id,))
    state, outcome, result = conn.execute("SELECT state, outcome, result FROM cluster_commands WHERE id = %s",
                                          (command_id,)).fetchone()
    return state, Ended(command_id, outcome, result) if state == "done" else None


def _end(conn: psycopg.Connection, where: str, args: tuple, outcome: str) -> int:
    """End the commands `where` says (alias c) with `outcome` and wake their requesters."""
    rows = conn.execute(f"""UPDATE cluster_commands c SET state = 'done', outcome = %s, done_at = now()
                            WHERE {where} RETURNING c.id, c.requester""", (outcome, *args)).fetchall()
    channels = dict(conn.execute("SELECT node_id, channel FROM cluster_nodes WHERE node_id = ANY(%s)",
                                 (list({requester for _, requester in rows}),)).fetchall())
    for command_id, requester in rows:
        if requester in channels:
            _notify(conn, channels[requester], Done(command_id))
    return len(rows)


@attrs.frozen
class Swept:
    offline: list[str]  # chargers of nodes whose lease ran out: no longer connected anywhere
    lost: int  # commands claimed by those nodes, ended lost
    expired: int  # commands queued past their deadline, ended expired
    moved: int  # commands queued for a connection replaced since, handed to the charger's owner now


def _sweep(conn: psycopg.Connection) -> Swept:
    """What any node does every few seconds, in case a node died or a notice was lost. Idempotent, and safe
    for several nodes at once: each row changes once."""
    dead = f"NOT ({_live('n')})"
    offline = conn.execute(f"""DELETE FROM cluster_owners o USING cluster_nodes n
                               WHERE o.node_id = n.node_id AND {dead} RETURNING o.cp_id, o.epoch""").fetchall()
    if len(offline) <= MANY:
        for cp, epoch in offline:
            _notify(conn, notices.BROADCAST, Gone(cp, epoch))
    lost = _end(conn, f"c.state = 'claimed' AND EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node_id = c.node_id "
                      f"AND {dead})", (), "lost")
    expired = _end(conn, "c.state = 'queued' AND c.deadline <= now()", (), "expired")
    moved = conn.execute("""UPDATE cluster_commands c SET node_id = o.node_id, epoch = o.epoch
                            FROM cluster_owners o WHERE c.state = 'queued' AND o.cp_id = c.cp_id AND o.epoch <> c.epoch
                            RETURNING c.id, o.node_id""").fetchall()
    channels = dict(conn.execute("SELECT node_id, channel FROM cluster_nodes").fetchall())
    for command_id, node_id in moved:
        if node_id in channels:
            _notify(conn, channels[node_id], Queued(command_id))
    conn.execute(f"DELETE FROM cluster_commands WHERE state = 'done' AND done_at < now() - interval '{KEEP_DONE}'")
    return Swept([cp for cp, _ in offline], lost, expired, len(moved))


# ---- the face ---------------------------------------------------------------------------------------------

class ClusterStore:
    """The cluster's jobs on a small pool of its own; `listen()` is the node's LISTEN connection."""

    def __init__(self, url: str, size: int = 4):
        self.url = url
        self._pool = ConnectionPool(url, min_size=1, max_size=size, open=False, name="cluster",
                                    kwargs={"application_name": "gateway-cluster"})
        self._limiter = trio.CapacityLimiter(size)

    async def open(self, timeout: float = 30.0) -> None:
        await trio.to_thread.run_sync(lambda: self._pool.open(wait=True, timeout=timeout))
        await self._run(_migrate)

    async def close(self) -> None:
        await trio.to_thread.run_sync(self._pool.close)

    async def _run(self, fn: Callable[..., Any], *args: Any, wait: float = 30.0) -> Any:
        """`fn(conn, *args)` in a transaction; `wait`: seconds to wait for a connection (the server may be down)."""
        def job() -> Any:
            with self._pool.connection(timeout=wait) as conn:  # committed on the way out, rolled back on an error
                return fn(conn, *args)
        try:
            return await trio.to_thread.run_sync(job, limiter=self._limiter)
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown, TimeoutError) as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg_pool"):  # PoolTimeout: no connection to be had
                raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
            raise

    async def join(self, node_id: str, channel: str, lease: float) -> list[str]:
        return await self._run(_join, node_id, channel, lease)

    async def unheld_offline(self, reason: str, at: str) -> int:
        return await self._run(_unheld_offline, reason, at)

    async def leave(self, node_id: str) -> None:
        """A node stopping while the server is down does not wait for it: the others' sweeps find its lease out."""
        await self._run(_leave, node_id, wait=3.0)

    async def beat(self, node_id: str, channel: str, lease: float, held: dict[str, int]) -> Beat:
        return await self._run(_beat, node_id, channel, lease, list(held), list(held.values()))

    async def claim(self, cp_id: str, node_id: str) -> int | None:
        return await self._run(_claim, cp_id, node_id)

    async def release(self, cp_id: str, epoch: int) -> bool:
        return await self._run(_release, cp_id, epoch)

    async def is_current(self, cp_id: str, epoch: int) -> bool:
        return await self._run(_is_current, cp_id, epoch)

    async def owners(self) -> list[tuple[str, str, int]]:
        return await self._run(_owners)

    async def nodes(self) -> list[dict[str, Any]]:
        return await self._run(_nodes)

    async def enqueue(self, request_id: str, cp_id: str, requester: str, action: str, payload: dict[str, Any],
                      timeout: float) -> Queuing | None:
        return await self._run(_enqueue, request_id, cp_id, requester, action, payload, timeout)

    async def take(self, node_id: str, ids: Sequence[int] | None = None, limit: int = 100) -> list[Claimed]:
        return await self._run(_take, node_id, ids, limit)

    async def finish(self, command_id: int, outcome: str, data: dict[str, Any] | None) -> None:
        await self._run(_finish, command_id, outcome, data)

    async def ended(self, ids: Sequence[int]) -> list[Ended]:
        return await self._run(_ended, list(ids))

    async def give_up(self, command_id: int) -> tuple[str, Ended | None]:
        return await self._run(_give_up, command_id)

    async def sweep(self) -> Swept:
        return await self._run(_sweep)

    async def notify(self, channel: str, notice: Notice) -> None:
        await self._run(_notify, channel, notice)

    def listen(self, channels: Sequence[str], deliver: Callable[[str], None], stop: threading.Event,
               connected: Callable[[], None]) -> None:
        """In a thread of its own: LISTEN on `channels` and hand each payload to `deliver`, until `stop` is set.
        A lost connection is opened again (after a second); `connected` is called each time it is (open),
        so that the node sweeps for what it may have missed meanwhile."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, application_name="gateway-listen",
                                     connect_timeout=5) as conn:
                    for channel in channels:
                        conn.execute(f'LISTEN "{channel}"')
                    connected()
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            deliver(note.payload)
            except psycopg.Error as exc:
                if stop.is_set():  # the node is leaving (and the server may be stopping with it)
                    return
                log.warning("cluster listener lost its connection", error=str(exc))
                stop.wait(1.0)
