"""What every charger connection shares: settings, store, validator, registry, handler table.

Both listeners (the OCPP port and the HTTP port) go through `admit()` and
`serve()`, so one session code stands behind both.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Mapping, Sequence

import structlog
import trio

from ..config import ChargerConfig
from ..events import Hub
from ..live import FrameSeen
from ..metrics import Metrics
from ..ocpp.validation import Validator
from ..proxies import is_loopback
from ..store.store import Store
from .charger_auth import basic_credentials, key_matches
from .admission import Admission, address_key
from .handlers import HANDLERS, Handler
from .handshake import HandshakeRefused, accounting_id, charger_id, choose_subprotocol
from .registry import Registry
from .remote_starts import RemoteStarts
from .session import NORMAL, Session
from .transport import Transport
from .watchdog import watch

log = structlog.get_logger("gateway.charger")


class ChargerService:
    def __init__(self, store: Store, config: ChargerConfig, metrics: Metrics | None = None,
                 events: Hub | None = None, *, tls_profiles: Sequence[int] = (),
                 trusted_proxies: Sequence[str] = (), handlers: Mapping[str, Handler] = HANDLERS):
        self.store = store
        self.config = config
        self.metrics = metrics or Metrics()
        self.events = events or Hub()
        self.validator = Validator()
        self.registry = Registry()
        self.remote_starts = RemoteStarts()
        self.strict = config.validation == "strict"
        self.admission = Admission(config.failed_handshakes, config.failed_handshake_ids,
                                   config.new_chargers_per_minute)
        self.tls_profiles = tuple(tls_profiles)  # security profiles a charger can use here (2, 3: over TLS)
        self.trusted_proxies = tuple(trusted_proxies)  # believed about X-Forwarded-For/-Proto
        self.handlers = handlers  # the table that answers every charger ...
        # ... but those named here, per charger id: what replaces some of its handlers (a charger test
        # run scripts answers this way, e.g. a BootNotification answered Pending). Read when it connects.
        self.handler_overrides: dict[str, Mapping[str, Handler]] = {}
        store.frames.listener = self._frame_recorded  # every frame recorded, shown live while anyone watches

    def _frame_recorded(self, row: tuple, violations: tuple) -> None:
        if self.events.watched:
            self.events.show(FrameSeen(row, violations))

    def handlers_for(self, cp_id: str) -> Mapping[str, Handler]:
        """The handler table that answers charger `cp_id`."""
        overrides = self.handler_overrides.get(cp_id)
        return {**self.handlers, **overrides} if overrides else self.handlers

    async def admit(self, target: str, offered: list[str] | tuple[str, ...], authorization: str | None,
                    remote: str = "", tls: bool = False, client_cn: str | None = None,
                    client_serial: str | None = None) -> tuple[str, str | None]:
        """(charge point id, subprotocol) for a handshake from address `remote`, or HandshakeRefused (answered
        before the upgrade). A charger id, or an address, whose handshakes keep failing is refused at once
        for a while (429; admission.py says how they are counted)."""
        now = trio.current_time()
        who = accounting_id(target)
        why = self.admission.held_off(remote, who, now)
        if why is not None:
            raise HandshakeRefused(429, why)
        try:
            return await self._admit(target, offered, authorization, tls, client_cn, remote, now, client_serial)
        except HandshakeRefused as refused:
            if refused.status != 429:  # too many new chargers is no failure of this one
                self.admission.failed(remote, who, now)
            raise

    async def _admit(self, target: str, offered: list[str] | tuple[str, ...], authorization: str | None,
                     tls: bool, client_cn: str | None, remote: str, now: float,
                     client_serial: str | None = None) -> tuple[str, str | None]:
        cp_id = charger_id(target)
        subprotocol = choose_subprotocol(list(offered), self.config.require_subprotocol)
        known = await self.store.chargers.admission(cp_id)
        profile, key_hash = known.security_profile, known.key_hash
        if not known.exists:  # its record is added when the session starts
            if known.lookalike is not None:
                raise HandshakeRefused(409, f"charge point id {cp_id!r} looks like the known charger "
                                            f"{known.lookalike!r}: give it an id that cannot be taken for another")
            # This machine (a simulator, the benchmark, the operator's tools) adds as many as it likes.
            if not is_loopback(remote) and not self.admission.may_add(remote, now):
                raise HandshakeRefused(429, f"more than {self.config.new_chargers_per_minute} new charge points "
                                            f"within a minute from {address_key(remote)}: wait a minute")
        if profile >= 2 and not tls:
            raise HandshakeRefused(400, f"charge point {cp_id!r} uses security profile {profile}: it must connect "
                                        "over TLS (wss://)")
        if profile in (1, 2):
            credentials = basic_credentials(authorization)
            if credentials is None:
                raise HandshakeRefused(401, f"charge point {cp_id!r} uses security profile {profile}: "
                                            "HTTP Basic credentials are required")
            user, password = credentials
            if unicodedata.normalize("NFC", user) != cp_id or key_hash is None or not key_matches(key_hash, password):
                raise HandshakeRefused(401, f"wrong credentials for charge point {cp_id!r}")
        if profile == 3 and client_cn != cp_id:
            why = "no client certificate" if client_cn is None else f"a certificate for {client_cn!r}"
            raise HandshakeRefused(401, f"charge point {cp_id!r} uses security profile 3 and presented {why}")
        if profile == 3 and client_serial is not None and await self.store.certificates.is_revoked(client_serial):
            raise HandshakeRefused(401, f"charge point {cp_id!r} presented a certificate that was revoked "
                                        f"(serial {client_serial})")
        return cp_id, subprotocol

    async def watchdog(self) -> None:
        await watch(self.registry, self.config.ping_interval, self.config.idle_limit)

    async def serve(self, transport: Transport, cp_id: str, subprotocol: str | None) -> None:
        """Serve one charger's connection until it ends; it replaces the charger's previous one."""
        session: Session | None = None
        try:
            session = Session(self, cp_id, transport, subprotocol, self.handlers_for(cp_id))
            previous = self.registry.attach(session)
            if previous is not None:  # its own task closes its socket; this one does not wait
                previous.close(NORMAL, "replaced by a new connection with the same id")
            # Detached once its socket is closed, before the disconnect is recorded (or not: replaced).
            await session.run(release=functools.partial(self.registry.detach, session))
        except Exception:  # a failure of one session (a bug, the database) must not stop the listener
            log.exception("session failed", cp=cp_id)
        finally:
            if session is not None:  # also when it failed before its teardown (else a no-op)
                self.registry.detach(session)
