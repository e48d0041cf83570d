"""Which RemoteStartTransaction caused a StartTransaction (pure bookkeeping, Trio clock)."""

from __future__ import annotations

import attrs
import trio

# A charger waits at most its ConnectionTimeOut (typically 30-120 s) for a cable; give it room.
DEFAULT_TTL = 300.0


@attrs.define
class _Expected:
    cp_id: str
    connector_id: int | None
    id_tag: str
    request_id: str
    deadline: float


class RemoteStarts:
    def __init__(self, ttl: float = DEFAULT_TTL):
        self._ttl = ttl
        self._expected: list[_Expected] = []

    def expect(self, cp_id: str, connector_id: int | None, id_tag: str, request_id: str) -> None:
        self._expected.append(_Expected(cp_id, connector_id, id_tag, request_id, trio.current_time() + self._ttl))

    def forget(self, request_id: str) -> None:
        self._expected = [e for e in self._expected if e.request_id != request_id]

    def match(self, cp_id: str, connector_id: int | None, id_tag: str) -> str | None:
        """The oldest remote start this transaction answers, taken off the list."""
        now = trio.current_time()
        self._expected = [e for e in self._expected if e.deadline > now]
        for expected in self._expected:
            if (expected.cp_id == cp_id and expected.id_tag == id_tag
                    and expected.connector_id in (None, connector_id)):
                self._expected.remove(expected)
                return expected.request_id
        return None
