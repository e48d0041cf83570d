"""The live sessions, by charge point id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import trio

from ..ocpp.frames import new_unique_id
from .errors import NotConnected
from .session import Session

if TYPE_CHECKING:
    from ..cluster.node import ClusterNode


class Registry:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        # One node of several on one PostgreSQL (gateway/cluster/): told of every connection attached and
        # detached; it knows the chargers of the other nodes and carries commands to them. None: one node.
        self.cluster: ClusterNode | None = None

    def attach(self, session: Session) -> Session | None:
        """Make `session` the charger's connection; return the one it replaces."""
        previous = self._sessions.get(session.cp_id)
        self._sessions[session.cp_id] = session
        if self.cluster is not None:
            self.cluster.attached(session)
        return previous

    def detach(self, session: Session) -> bool:
        """Forget `session`; False when a newer connection had already replaced it (here, or on another node
        of a cluster)."""
        if self._sessions.get(session.cp_id) is session:
            del self._sessions[session.cp_id]
            return self.cluster.detached(session) if self.cluster is not None else True
        return False

    def get(self, cp_id: str) -> Session | None:
        return self._sessions.get(cp_id)

    def __contains__(self, cp_id: str) -> bool:
        """Whether the charger is connected: to this node, or to another node of the cluster."""
        return cp_id in self._sessions or (self.cluster is not None and self.cluster.holds_elsewhere(cp_id))

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    async def call(self, cp_id: str, action: str, payload: dict[str, Any],
                   timeout: float | None = None, unique_id: str | None = None) -> dict[str, Any]:
        session = self._sessions.get(cp_id)
        if self.cluster is not None:
            if session is None:  # through the node that holds it (a unique id is given by the command service)
                return await self.cluster.call(cp_id, action, payload, timeout, unique_id or new_unique_id())
            if not await self.cluster.still_holds(session):  # a newer connection on another node
                raise NotConnected(cp_id)
        if session is None:
            raise NotConnected(cp_id)
        return await session.call(action, payload, timeout, unique_id)

    async def close_all(self, code: int, reason: str, wait: float = 10.0) -> None:
        """Close every charger socket with `code` and wait (bounded) until they are gone."""
        sessions = list(self._sessions.values())
        for session in sessions:
            session.close(code, reason)
        with trio.move_on_after(wait):
            for session in sessions:
                await session.finished.wait()
