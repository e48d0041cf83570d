"""What every charger connection shares: settings, store, validator, registry.

Both listeners (the OCPP port and the HTTP port) go through `handshake()` and
`serve()`, so one session code stands behind both.
"""

from __future__ import annotations

from ..config import ChargerConfig
from ..ocpp.validation import Validator
from ..store import Store
from .handshake import charger_id, choose_subprotocol
from .registry import Registry
from .session import Session
from .transport import Transport


class ChargerService:
    def __init__(self, store: Store, config: ChargerConfig):
        self.store = store
        self.config = config
        self.validator = Validator()
        self.registry = Registry()
        self.strict = config.validation == "strict"

    def handshake(self, target: str, offered: list[str] | tuple[str, ...]) -> tuple[str, str | None]:
        """(charge point id, subprotocol) for a request, or HandshakeRefused."""
        cp_id = charger_id(target)
        return cp_id, choose_subprotocol(list(offered), self.config.require_subprotocol)

    async def serve(self, transport: Transport, cp_id: str, subprotocol: str | None) -> None:
        await Session(self, cp_id, transport, subprotocol).run()
