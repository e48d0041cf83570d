"""What every charger connection shares: settings, store, validator, registry.

Both listeners (the OCPP port and the HTTP port) go through `handshake()` and
`serve()`, so one session code stands behind both.
"""

from __future__ import annotations

import structlog

from ..config import ChargerConfig
from ..events import Hub
from ..metrics import Metrics
from ..ocpp.validation import Validator
from ..store import Store
from .handshake import charger_id, choose_subprotocol
from .registry import Registry
from .remote_starts import RemoteStarts
from .session import Session
from .transport import Transport
from .watchdog import watch

log = structlog.get_logger("gateway.charger")


class ChargerService:
    def __init__(self, store: Store, config: ChargerConfig, metrics: Metrics | None = None,
                 events: Hub | None = None):
        self.store = store
        self.config = config
        self.metrics = metrics or Metrics()
        self.events = events or Hub()
        self.validator = Validator()
        self.registry = Registry()
        self.remote_starts = RemoteStarts()
        self.strict = config.validation == "strict"

    def handshake(self, target: str, offered: list[str] | tuple[str, ...]) -> tuple[str, str | None]:
        """(charge point id, subprotocol) for a request, or HandshakeRefused."""
        cp_id = charger_id(target)
        return cp_id, choose_subprotocol(list(offered), self.config.require_subprotocol)

    async def watchdog(self) -> None:
        await watch(self.registry, self.config.ping_interval, self.config.idle_limit)

    async def serve(self, transport: Transport, cp_id: str, subprotocol: str | None) -> None:
        try:
            await Session(self, cp_id, transport, subprotocol).run()
        except Exception:  # a failure of one session (a bug, the database) must not stop the listener
            log.exception("session failed", cp=cp_id)
