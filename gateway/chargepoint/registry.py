"""The live sessions, by charge point id."""

from __future__ import annotations

from typing import Any, Iterator

import trio

from .errors import NotConnected
from .session import Session


class Registry:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def attach(self, session: Session) -> Session | None:
        """Make `session` the charger's connection; return the one it replaces."""
        previous = self._sessions.get(session.cp_id)
        self._sessions[session.cp_id] = session
        return previous

    def detach(self, session: Session) -> bool:
        """Forget `session`; False when a newer connection had already replaced it."""
        if self._sessions.get(session.cp_id) is session:
            del self._sessions[session.cp_id]
            return True
        return False

    def get(self, cp_id: str) -> Session | None:
        return self._sessions.get(cp_id)

    def __contains__(self, cp_id: str) -> bool:
        return cp_id in self._sessions

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    async def call(self, cp_id: str, action: str, payload: dict[str, Any],
                   timeout: float | None = None, unique_id: str | None = None) -> dict[str, Any]:
        session = self._sessions.get(cp_id)
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
