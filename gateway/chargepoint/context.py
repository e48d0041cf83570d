"""What a handler sees of the gateway while it answers one charger: no session, no socket.

A handler can be run against a store and a context built by hand (tests/unit/test_handlers.py);
the session builds one per connection.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from .. import clock
from .remote_starts import RemoteStarts

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from ..config import ChargerConfig
    from ..events import Hub
    from ..store.store import Store


@attrs.frozen
class HandlerContext:
    cp_id: str
    store: Store
    config: ChargerConfig  # read for unknown_chargers, unknown_id_tags, heartbeat_interval
    events: Hub  # transactions started and stopped are published here (billing listens)
    remote_starts: RemoteStarts  # which RemoteStartTransaction a StartTransaction answers
    log: FilteringBoundLogger  # bound to the charger

    def record_violation(self, action: str, kind: str, code: str, path: str, message: str,
                         payload: dict[str, Any]) -> None:
        """Keep a protocol violation of this charger, with the payload that broke the rule."""
        self.store.chargers.violation(self.cp_id, action, kind, code, path, message,
                                      json.dumps(payload, ensure_ascii=False), clock.iso())
