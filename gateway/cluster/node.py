"""One gateway node of several on one PostgreSQL: the Trio side of the cluster.

- Ownership: when a charger's connection is attached to the registry, the node claims the charger with a new
  epoch (the newest connection wins); the node whose connection was replaced is told (Revoked) and closes
  its socket. A heartbeat every `heartbeat_seconds` renews the node's lease and checks each connection it
  holds (one lost notice closes the stale socket a heartbeat later); a node silent longer than its lease has
  lost its chargers, and any node's sweep says so.
- Commands: a command for a charger another node holds is queued in cluster_commands and its owner woken
  with the id; the owner claims it (once, committed before it is sent), sends it on its session, stores the
  answer and wakes the requester, which answers its caller as if the charger were its own. Every node
  sweeps every `sweep_seconds` for what a lost notice did not bring.
- Who is connected where: every node keeps a map of the chargers of the other live nodes (notices, and the
  sweep), so `cp_id in registry` says online whichever node holds the charger.
- Failed logins are told to every node, which counts them as its own: one throttle for the cluster.

The notices arrive on a thread that holds the LISTEN connection (gateway/store/cluster.py) and reach the
node's Trio task through a memory channel. Nothing here runs on a charger's message loop: the registry's
hooks only queue work.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, Protocol

import attrs
import structlog
import trio

from .. import clock
from ..chargepoint.errors import CommandError, NotConnected, CallTimeout
from ..store.cluster import ClusterStore, Claimed, Ended
from ..store.health import StoreUnavailable
from . import notices
from ..events import TransactionStarted
from .notices import Done, Gone, LoginFailed, Owned, Queued, Revoked, Started
from .outcomes import answer, stored

if TYPE_CHECKING:
    from ..chargepoint.commands import CommandService
    from ..chargepoint.service import ChargerService
    from ..config import ClusterConfig
    from ..http.accounts import Auth

log = structlog.get_logger("gateway.cluster")

GRACE = 2.0  # seconds a requester waits beyond the command's time-out for the owner's answer to reach it
CARRIED_STARTS_TTL = 300.0  # seconds a remote start carried for another node may take to start its transaction


@attrs.frozen
class StartedElsewhere:
    """Published on this node's event hub: a remote start this node asked of another node started a transaction
    there (the route that waits for the transaction listens for it beside TransactionStarted)."""

    remote_start_request_id: str
    transaction_id: int
REPLACED = "connected again through another node"


class Held(Protocol):
    """What the node uses of a charger's session (OCPP's Session, or a YKC pile's)."""

    cp_id: str

    def close(self, code: int | None, reason: str) -> None: ...

    async def call(self, action: str, payload: dict[str, Any], timeout: float | None = None,
                   unique_id: str | None = None) -> dict[str, Any]: ...


@attrs.define
class _Holding:
    session: Held
    epoch: int | None = None  # None until the claim is committed
    stale: bool = False  # a newer connection of the charger holds it
    claiming: bool = False  # a claim is on its way (the worker's, or the heartbeat's retry): one at a time


@attrs.define
class _Waiter:
    done: trio.Event = attrs.field(factory=trio.Event)
    ended: Ended | None = None


# What the owner runs to send a command another node checked and recorded (CommandService.carry).
Carrier = Callable[[Held, str, str, dict, float], Any]


class ClusterNode:
    def __init__(self, db: ClusterStore, chargers: ChargerService, node_id: str, *, lease: float = 10.0,
                 heartbeat: float = 2.0, sweep: float = 3.0):
        self.db = db
        self.chargers = chargers
        self.node_id = node_id
        self.channel = notices.channel_of(node_id)
        self.lease, self.heartbeat, self.sweep_every = lease, heartbeat, sweep
        self.carry: Carrier | None = None  # set by the command service (commands.py)
        self.login_failed: Callable[[str], None] | None = None  # counts a failed login told by another node
        self.elsewhere: dict[str, tuple[str, int]] = {}  # cp_id -> (node, epoch) of the other live nodes
        self._held: dict[str, _Holding] = {}
        self._releases: dict[str, int] = {}  # ended connections whose ownership is still to be given up
        self._waiting: dict[int, _Waiter] = {}
        self._early: dict[int, float] = {}  # commands whose Done arrived before their requester waited for it
        self._carried_starts: dict[str, float] = {}  # remote starts sent for other nodes -> when
        self._work_in, self._work = trio.open_memory_channel[Any](float("inf"))
        self._nursery: trio.Nursery | None = None
        self.sent_here = 0  # commands of other nodes this node sent to its chargers (for tests and figures)

    # ---- the registry's hooks (sync: they only queue work) -----------------------------------------------

    def attached(self, session: Held) -> None:
        self._held[session.cp_id] = holding = _Holding(session)
        self._work_in.send_nowait(("claim", holding))

    def detached(self, session: Held) -> bool:
        """The session's socket is closed; whether the charger is offline now (False: a newer connection,
        here or on another node, holds it)."""
        holding = self._held.get(session.cp_id)
        if holding is None or holding.session is not session:
            return True
        del self._held[session.cp_id]
        if holding.epoch is not None:
            self._releases[session.cp_id] = holding.epoch
            self._work_in.send_nowait(("release", session.cp_id, holding.epoch))
        newer_elsewhere = self.elsewhere.get(session.cp_id, ("", -1))[1] > (holding.epoch or -1)
        return not holding.stale and not newer_elsewhere

    def holds_elsewhere(self, cp_id: str) -> bool:
        return cp_id in self.elsewhere

    def tell_login_failed(self, address: str) -> None:
        self._work_in.send_nowait(("notice", notices.BROADCAST, LoginFailed(address, self.node_id)))

    # ---- commands --------------------------------------------------------------------------------------

    async def still_holds(self, session: Held) -> bool:
        """Checked before a command is sent on a session: its connection still holds the charger (a newer
        one on another node would have made it stale). A session whose claim is not committed yet counts as
        holding, as does any while the database cannot answer (the socket is the one the charger uses)."""
        holding = self._held.get(session.cp_id)
        if holding is None or holding.session is not session or holding.stale:
            return False
        if holding.epoch is None:
            return True
        try:
            current = await self.db.is_current(session.cp_id, holding.epoch)
        except StoreUnavailable:
            return True
        if not current:
            self._stale(holding)
        return current

    async def call(self, cp_id: str, action: str, payload: dict[str, Any], timeout: float | None,
                   request_id: str) -> dict[str, Any]:
        """Send a command through the node that holds the charger and return its answer, as Session.call
        would (raises CallErrorReceived, CallTimeout, NotConnected, ...)."""
        timeout = self.chargers.config.call_timeout if timeout is None else timeout
        queued = await self.db.enqueue(request_id, cp_id, self.node_id, action, payload, timeout)
        if queued is None:
            raise NotConnected(cp_id)
        waiter = self._waiting[queued.id] = _Waiter()
        if self._early.pop(queued.id, None) is not None:  # its answer's notice came before this line
            for ended in await self.db.ended([queued.id]):
                waiter.ended = ended
        try:
            if waiter.ended is None:
                with trio.move_on_after(timeout + GRACE):
                    await waiter.done.wait()
            ended = waiter.ended
            if ended is None:
                with trio.CancelScope(shield=True):
                    _state, ended = await self.db.give_up(queued.id)  # never sent after this if still queued
                if ended is None:  # claimed: on its way to the charger, or the owner is dying
                    raise CallTimeout(action, timeout, True)
        except trio.Cancelled:  # the caller went away: a command not claimed yet is not sent, as on one node
            with trio.CancelScope(shield=True):
                try:
                    await self.db.give_up(queued.id)
                except StoreUnavailable:
                    pass
            raise
        finally:
            del self._waiting[queued.id]
        return answer(cp_id, action, timeout, ended.outcome, ended.result)

    async def _serve(self, claimed: Claimed) -> None:
        """Send a claimed command to the charger and store how it ended; whatever happens, it is not sent
        again (a failure to store the answer leaves it claimed, and the requester reads a time-out)."""
        holding = self._held.get(claimed.cp_id)
        result, error = None, None
        if holding is None or holding.epoch != claimed.epoch or holding.stale or self.carry is None:
            error = NotConnected(claimed.cp_id)
        else:
            self.sent_here += 1
            if claimed.action == "RemoteStartTransaction":  # its transaction is told to every node (Started)
                now = trio.current_time()
                self._carried_starts = {r: t for r, t in self._carried_starts.items() if t > now - CARRIED_STARTS_TTL}
                self._carried_starts[claimed.request_id] = now
            try:
                result = await self.carry(holding.session, claimed.request_id, claimed.action, claimed.payload,
                                          max(claimed.remaining, 0.001))
            except CommandError as exc:
                error = exc
            except Exception:  # a bug: the requester is told the charger could not be reached
                log.exception("sending a command of another node failed", request_id=claimed.request_id)
                error = NotConnected(claimed.cp_id)
        outcome, data = stored(result, error)
        for attempt in range(5):
            try:
                await self.db.finish(claimed.id, outcome, data)
                return
            except StoreUnavailable as exc:
                log.warning("could not store a command's answer", request_id=claimed.request_id, error=str(exc))
                await trio.sleep(0.5 * (attempt + 1))

    # ---- running ---------------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[ClusterNode] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the cluster, listen and keep the lease until cancelled; then leave it."""
        held_before = await self.db.join(self.node_id, self.channel, self.lease)
        at = clock.iso()
        for cp_id in held_before:  # connected to this node when it stopped without leaving (killed)
            await self._offline(cp_id, "the gateway node restarted", at)
        await self.db.unheld_offline("gateway restarted", at)  # what no live node holds is not connected
        stop = threading.Event()
        token = trio.lowlevel.current_trio_token()

        def deliver(payload: str) -> None:  # on the listener's thread
            notice = notices.decode(payload)
            if notice is not None:
                try:
                    trio.from_thread.run_sync(self._work_in.send_nowait, ("heard", notice), trio_token=token)
                except trio.RunFinishedError:
                    stop.set()

        def connected() -> None:  # (again): sweep for what was missed meanwhile
            try:
                trio.from_thread.run_sync(self._work_in.send_nowait, ("sweep",), trio_token=token)
            except trio.RunFinishedError:
                stop.set()

        listening = trio.Event()

        def listen() -> None:
            first = [True]

            def opened() -> None:
                connected()
                if first[0]:
                    first[0] = False
                    trio.from_thread.run_sync(listening.set, trio_token=token)
            self.db.listen([self.channel, notices.BROADCAST], deliver, stop, opened)

        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(functools.partial(trio.to_thread.run_sync, listen, abandon_on_cancel=True))
                with trio.move_on_after(30):
                    await listening.wait()
                await self._refresh()
                nursery.start_soon(self._worker)
                nursery.start_soon(self._keep_lease)
                nursery.start_soon(self._keep_sweeping)
                nursery.start_soon(self._tell_starts)
                log.info("joined the cluster", node=self.node_id, lease=self.lease)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            stop.set()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await self.db.leave(self.node_id)
                except StoreUnavailable as exc:
                    log.warning("could not leave the cluster", error=str(exc))

    async def _worker(self) -> None:
        assert self._nursery is not None
        async for item in self._work:
            kind = item[0]
            try:
                if kind == "claim":
                    await self._claim(item[1])
                elif kind == "release":
                    await self._release(item[1], item[2])
                elif kind == "notice":
                    await self.db.notify(item[1], item[2])
                elif kind == "sweep":
                    self._nursery.start_soon(self._sweep_once)
                else:
                    await self._heard(item[1])
            except StoreUnavailable as exc:  # retried by the heartbeat and the sweep
                log.warning("cluster database unavailable", work=kind, error=str(exc))
            except Exception:  # a bug: logged, and the node goes on with the next piece of work
                log.exception("cluster work failed", work=kind)

    async def _claim(self, holding: _Holding) -> None:
        if self._held.get(holding.session.cp_id) is not holding or holding.epoch is not None or holding.claiming:
            return  # gone already, claimed, or being claimed
        holding.claiming = True
        try:
            epoch = await self.db.claim(holding.session.cp_id, self.node_id)
        finally:
            holding.claiming = False
        if epoch is None:  # a newer connection on another node got there first
            self._stale(holding)
            return
        holding.epoch = epoch
        self.elsewhere.pop(holding.session.cp_id, None)
        if self._held.get(holding.session.cp_id) is not holding:  # it ended while the claim was on its way
            self._releases[holding.session.cp_id] = epoch
            await self._release(holding.session.cp_id, epoch)

    async def _release(self, cp_id: str, epoch: int) -> None:
        await self.db.release(cp_id, epoch)
        if self._releases.get(cp_id) == epoch:
            del self._releases[cp_id]

    def _stale(self, holding: _Holding) -> None:
        if not holding.stale:
            holding.stale = True
            log.info("charger connected through another node: closing this connection", cp=holding.session.cp_id)
            holding.session.close(1000, REPLACED)

    async def _heard(self, notice: notices.Notice) -> None:
        assert self._nursery is not None
        if isinstance(notice, Queued):
            for claimed in await self.db.take(self.node_id, [notice.id]):
                self._nursery.start_soon(self._serve, claimed)
        elif isinstance(notice, Done):
            waiter = self._waiting.get(notice.id)
            if waiter is None:  # the asking task may not have registered yet: it looks here first
                self._early[notice.id] = trio.current_time()
                if len(self._early) > 1000:
                    self._early = {i: t for i, t in self._early.items() if t > trio.current_time() - 60}
            elif waiter.ended is None:
                for ended in await self.db.ended([notice.id]):
                    waiter.ended = ended
                    waiter.done.set()
        elif isinstance(notice, Revoked):
            holding = self._held.get(notice.cp_id)
            if holding is not None and (holding.epoch is None or holding.epoch < notice.epoch):
                self._stale(holding)
        elif isinstance(notice, Owned):
            holding = self._held.get(notice.cp_id)
            mine = holding.epoch if holding is not None and holding.epoch is not None else -1
            if notice.node_id != self.node_id and notice.epoch > mine:  # (an older claim's notice, late: ignored)
                if self.elsewhere.get(notice.cp_id, ("", -1))[1] < notice.epoch:
                    self.elsewhere[notice.cp_id] = (notice.node_id, notice.epoch)
                if holding is not None and holding.epoch is not None:
                    self._stale(holding)
        elif isinstance(notice, Gone):
            if self.elsewhere.get(notice.cp_id, ("", None))[1] == notice.epoch:
                del self.elsewhere[notice.cp_id]
        elif isinstance(notice, Started):
            self.chargers.events.publish(StartedElsewhere(notice.request_id, notice.transaction_id))
        elif isinstance(notice, LoginFailed):
            if notice.node_id != self.node_id and self.login_failed is not None:
                self.login_failed(notice.address)

    async def _tell_starts(self) -> None:
        """Tell the other nodes of the transactions started by remote starts carried for them."""
        with self.chargers.events.subscribe() as events:
            async for event in events:
                if (isinstance(event, TransactionStarted) and event.remote_start_request_id is not None
                        and self._carried_starts.pop(event.remote_start_request_id, None) is not None):
                    self._work_in.send_nowait(("notice", notices.BROADCAST,
                                               Started(event.remote_start_request_id, event.transaction_id)))

    async def _keep_lease(self) -> None:
        while True:
            await trio.sleep(self.heartbeat)
            try:
                await self._beat()
            except StoreUnavailable as exc:
                log.warning("cluster heartbeat failed", error=str(exc))

    async def _beat(self) -> None:
        for holding in list(self._held.values()):  # claims that could not be made (the database was away)
            if holding.epoch is None and not holding.stale:
                await self._claim(holding)
        for cp_id, epoch in list(self._releases.items()):
            await self._release(cp_id, epoch)
        held = {cp: h.epoch for cp, h in self._held.items() if h.epoch is not None and not h.stale}
        beat = await self.db.beat(self.node_id, self.channel, self.lease, held)
        for cp_id in beat.stale:
            holding = self._held.get(cp_id)
            if holding is not None and holding.epoch == held.get(cp_id):
                self._stale(holding)
        for cp_id, epoch in beat.reclaimed.items():
            holding = self._held.get(cp_id)
            if holding is not None and holding.epoch == held.get(cp_id):
                holding.epoch = epoch

    async def _keep_sweeping(self) -> None:
        while True:
            await trio.sleep(self.sweep_every)
            await self._sweep_once()

    async def _sweep_once(self) -> None:
        assert self._nursery is not None
        try:
            swept = await self.db.sweep()
            at = clock.iso()
            for cp_id in swept.offline:
                if cp_id not in self._held:
                    await self._offline(cp_id, "its gateway node stopped answering", at)
            for claimed in await self.db.take(self.node_id):  # queued for this node, its notice lost
                self._nursery.start_soon(self._serve, claimed)
            if self._waiting:  # answers whose notice was lost
                for ended in await self.db.ended(list(self._waiting)):
                    waiter = self._waiting.get(ended.id)
                    if waiter is not None and waiter.ended is None:
                        waiter.ended = ended
                        waiter.done.set()
            await self._refresh()
        except StoreUnavailable as exc:
            log.warning("cluster sweep failed", error=str(exc))

    async def _refresh(self) -> None:
        """Read who holds which charger on the other live nodes (the notices keep it current in between)."""
        self.elsewhere = {cp: (node, epoch) for cp, node, epoch in await self.db.owners() if node != self.node_id}

    async def _offline(self, cp_id: str, reason: str, at: str) -> None:
        self.elsewhere.pop(cp_id, None)
        try:
            await self.chargers.store.chargers.disconnected(cp_id, reason, at)
        except Exception as exc:  # the store may be unavailable: the next connection records it again
            log.warning("could not record a charger offline", cp=cp_id, error=repr(exc))


def node_id_of(config: ClusterConfig, ocpp: str) -> str:
    """This node's name among the nodes: `cluster.node_id`, or the host's name and the OCPP port."""
    return config.node_id or notices.default_node_id(ocpp)


async def run_node(url: str, config: ClusterConfig, ocpp: str, chargers: ChargerService, commands: CommandService,
                   auth: Auth, task_status: trio.TaskStatus[ClusterNode] = trio.TASK_STATUS_IGNORED) -> None:
    """This gateway as a node of the cluster that meets at `url`, until cancelled (app.py starts it before the
    listeners, so that every connection is claimed)."""
    db = ClusterStore(url, config.pool_size)
    await db.open()
    try:
        node = ClusterNode(db, chargers, node_id_of(config, ocpp), lease=config.lease_seconds,
                           heartbeat=config.heartbeat_seconds, sweep=config.sweep_seconds)
        node.carry = commands.carry
        node.login_failed = auth.count_failure
        auth.tell_failure = node.tell_login_failed
        chargers.registry.cluster = node
        await node.run(task_status=task_status)
    finally:
        with trio.CancelScope(shield=True):
            await db.close()
