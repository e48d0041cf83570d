"""Commands to chargers, as operators send them: checked, sent, recorded, remembered.

`CommandService.send()` checks the payload against the 1.6 schema, sends it
through the charger's session, records the command with its answer or error and
latency, and applies what the answer means to the gateway's records (the
configuration snapshot, local list versions, reservations, charging profiles,
the remote start a transaction answers).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import attrs
import structlog
import trio

from .. import clock
from ..events import OutOfService
from ..live import COMMAND_STATES, CommandChanged
from ..ocpp.actions import CENTRAL_ACTIONS
from ..ocpp.frames import new_unique_id
from ..ocpp.secrets import redact
from ..ocpp.validation import Violation
from .charger_auth import hash_key, key_problem
from ..store import scope
from ..store.db import StoreClosed
from .errors import (CallErrorReceived, CallTimeout, ChargerUnavailable, ChargerUnderTest, CommandError, NotConnected,
                     NotSupported)
from .service import ChargerService

log = structlog.get_logger("gateway.commands")


class UnknownAction(CommandError):
    def __init__(self, action: str):
        super().__init__(f"unknown action {action!r}: expected one of {', '.join(sorted(CENTRAL_ACTIONS))}")
        self.action = action


class InvalidPayload(CommandError):
    def __init__(self, violation: Violation):
        super().__init__(violation.message)
        self.violation = violation


class SecurityChangeRefused(CommandError):
    """A change of who may connect as a charger that the caller may not make (HTTP 403)."""


class InvalidSecuritySetting(CommandError):
    """A security setting no charger should be given (HTTP 400)."""


# Configuration keys that decide who may connect as the charger (OCPP 1.6 security whitepaper).
SECURITY_KEYS = ("AuthorizationKey", "SecurityProfile")


def security_key(payload: dict[str, Any]) -> str | None:
    """The security key a ChangeConfiguration payload sets, by its OCPP name, or None. Configuration
    keys are CiString (compared without case), and a charger may well trim them too."""
    key = payload.get("key")
    folded = key.strip().casefold() if isinstance(key, str) else None
    return next((name for name in SECURITY_KEYS if name.casefold() == folded), None)


# Actions that change which certificates a charger trusts or presents: as much the admin's.
CERTIFICATE_ACTIONS = ("CertificateSigned", "DeleteCertificate", "InstallCertificate")


# What the gateway still sends to a charger under test: the certificate the certificate authority issues for the
# charger's SignCertificate (the security test cases wait for it).
DURING_TESTS = ("CertificateSigned",)
# The charger whose test run the current task belongs to (gateway/chargertest/runner.py sets it for the run's
# tasks): its commands are the test's own, not refused.
TEST_RUN: ContextVar[str | None] = ContextVar("charger_test_run", default=None)


@attrs.frozen
class Sent:
    """A command's identity and, once answered, the charger's payload."""

    request_id: str
    cp_id: str
    action: str
    payload: dict[str, Any]
    result: dict[str, Any] | None = None


# (commands, cp_id, payload, result or None, outcome) -> None; runs after every command of its action
AfterHook = Callable[["CommandService", str, dict, "dict | None", str, str], Awaitable[None]]
_AFTER: dict[str, AfterHook] = {}


def after(action: str) -> Callable[[AfterHook], AfterHook]:
    def register(fn: AfterHook) -> AfterHook:
        _AFTER[action] = fn
        return fn

    return register


class CommandService:
    def __init__(self, chargers: ChargerService, nursery: trio.Nursery | None = None):
        self.chargers = chargers
        self.store = chargers.store
        self._nursery = nursery  # for commands whose caller does not wait (wait=false)

    def check_action(self, action: str) -> None:
        if action not in CENTRAL_ACTIONS:
            raise UnknownAction(action)

    def check(self, action: str, payload: dict[str, Any]) -> None:
        """Raise UnknownAction or InvalidPayload; nothing is sent."""
        self.check_action(action)
        violation = self.chargers.validator.check(action, "request", payload)
        if violation is not None:
            raise InvalidPayload(violation)

    async def prepare(self, action: str, cp_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Check the payload, after filling what the gateway provides when it is left out:
        a ReserveNow id and a SendLocalList version (allocated when sent), an UpdateFirmware
        retrieveDate (now)."""
        if action == "UpdateFirmware" and "retrieveDate" not in payload:
            payload = {**payload, "retrieveDate": clock.iso()}
        placeholder = {"ReserveNow": "reservationId", "SendLocalList": "listVersion"}.get(action)
        if placeholder and placeholder not in payload:
            self.check(action, {**payload, placeholder: 1})
        else:
            self.check(action, payload)
        return payload

    async def send(self, cp_id: str, action: str, payload: dict[str, Any], timeout: float | None = None,
                   *, admin: bool = False) -> Sent:
        """Send and wait for the answer; raise CallErrorReceived, CallTimeout or NotConnected.
        `admin`: the caller has the admin role (security keys may be changed, see `check_security`)."""
        sent = await self.sendable(cp_id, action, payload, admin=admin)
        return await self.deliver(sent, timeout)

    async def start(self, cp_id: str, action: str, payload: dict[str, Any], timeout: float | None = None,
                    *, admin: bool = False) -> Sent:
        """Send without waiting (wait=false): checked and recorded now, answered in the background."""
        assert self._nursery is not None, "start() needs the gateway's nursery"
        sent = await self.sendable(cp_id, action, payload, admin=admin)

        async def background() -> None:
            try:
                await self.deliver(sent, timeout)
            except CommandError as exc:
                log.info("background command failed", cp=cp_id, action=action, error=str(exc))

        self._nursery.start_soon(background)
        return sent

    async def sendable(self, cp_id: str, action: str, payload: dict[str, Any], *, admin: bool = False) -> Sent:
        """Checked, completed and recorded as sent; raises before anything is sent. A charger outside the
        caller's tenant scope is answered as one never seen (NotConnected, whose answer reads it scoped)."""
        session = self.chargers.registry.get(cp_id)
        if session is None and cp_id not in self.chargers.registry:  # nothing is sent, so nothing is recorded
            raise NotConnected(cp_id)  # (in a cluster, `in` also asks whether another node holds it)
        await self.check_visible(cp_id)
        testing = self.chargers.busy.get(cp_id)
        if testing is not None and action not in DURING_TESTS and TEST_RUN.get() != cp_id:
            raise ChargerUnderTest(cp_id, testing)
        # What the charger's protocol cannot carry (held by another node: that node asks, see `carry`).
        why = session.unsupported(action, payload) if session is not None else None
        if why is not None:
            raise NotSupported(cp_id, action, why)
        if action == "RemoteStartTransaction":
            await self.check_startable(cp_id)
        payload = await self.prepare(action, cp_id, payload)
        await self.check_security(cp_id, action, payload, admin)
        request_id = new_unique_id()
        payload = await self._before(cp_id, action, payload, request_id)
        at = clock.iso()
        self.store.commands.begin(request_id, cp_id, action, redact(action, "request", payload), at)
        if self.chargers.events.watched:
            self.chargers.events.show(CommandChanged(cp_id, request_id, action, "sent", at,
                                                     payload=redact(action, "request", payload)))
        return Sent(request_id, cp_id, action, payload)

    async def check_visible(self, cp_id: str) -> None:
        """NotConnected for a charger of a tenant outside the caller's scope: a command to it is refused exactly
        like one to a charger that never connected. Free outside requests and for the platform (no query)."""
        if scope.current().tenants is not None and not await self.store.registry.visible(cp_id):
            raise NotConnected(cp_id)

    async def check_startable(self, cp_id: str) -> None:
        """ChargerUnavailable while the operator keeps the charger out of service (disabled, maintenance,
        retired): no remote start is sent to it. Also NotConnected for a charger outside the caller's scope
        (check_visible), asked first: nothing of another tenant's charger, even its service, is told."""
        await self.check_visible(cp_id)
        why = await self.store.chargers.availability(cp_id)
        if why is not None:
            raise ChargerUnavailable(cp_id, why)

    async def check_security(self, cp_id: str, action: str, payload: dict[str, Any], admin: bool) -> None:
        """The one gate for security changes sent to a charger, whatever route carries them.

        Only an admin may change AuthorizationKey or SecurityProfile, as only an admin may change
        them in the gateway's record (PUT /api/chargers/{cpId}/security). The key must be strong
        (`key_problem`). The profile may only be raised: the whitepaper has a charger reject a
        lower SecurityProfile, and the gateway would otherwise stop asking for credentials; an
        admin who must lower it (a charger replaced) sets the record with the PUT route."""
        if action in CERTIFICATE_ACTIONS and not admin:
            raise SecurityChangeRefused(f"{action} changes which certificates charger {cp_id!r} trusts or presents: "
                                        "it needs the admin role")
        key = security_key(payload) if action == "ChangeConfiguration" else None
        if key is None:
            return
        value = payload.get("value")
        if not admin:
            raise SecurityChangeRefused(f"changing {key} decides who may connect as charger {cp_id!r}: "
                                        "it needs the admin role")
        if key == "AuthorizationKey":
            problem = key_problem(value)
            if problem:
                raise InvalidSecuritySetting(problem)
            return
        profile, key_hash = await self.store.chargers.security(cp_id)
        if value not in ("0", "1", "2", "3"):
            raise InvalidSecuritySetting("SecurityProfile must be 0, 1, 2 or 3")
        if int(value) < profile and TEST_RUN.get() != cp_id:  # a test run checks that the charger refuses it
            raise InvalidSecuritySetting(
                f"SecurityProfile can only be raised through ChangeConfiguration (charger {cp_id!r} has profile "
                f"{profile}; OCPP 1.6 security has a charger reject a lower one): to lower the gateway's record, "
                f"an admin uses PUT /api/chargers/{cp_id}/security")
        if int(value) >= 2 and int(value) not in self.chargers.tls_profiles:
            raise InvalidSecuritySetting(f"security profile {value} needs the wss:// listener: configure "
                                         + ("ocpp_tls with tls_client_ca" if value == "3" else "ocpp_tls"))
        if int(value) in (1, 2) and key_hash is None:
            raise InvalidSecuritySetting(f"security profile {value} needs an AuthorizationKey: none is known for "
                                         f"charger {cp_id!r}; set one first")

    async def deliver(self, sent: Sent, timeout: float | None) -> Sent:
        started = time.perf_counter()
        result, error, outcome = None, None, "abandoned"  # stays so if the caller is cancelled
        try:
            result = await self.chargers.registry.call(sent.cp_id, sent.action, sent.payload, timeout,
                                                       sent.request_id)
            outcome = "answered"
        except CallErrorReceived as exc:
            outcome, error = "call_error", exc
        except CallTimeout as exc:
            outcome, error = "timeout", exc
        except NotConnected as exc:
            outcome, error = "not_connected", exc
        finally:
            with trio.CancelScope(shield=True):  # the record is kept whatever happens to the caller
                await self._finish(sent.cp_id, sent.action, sent.payload, sent.request_id, result, error,
                                   outcome, time.perf_counter() - started)
        if error is not None:
            error.request_id = sent.request_id
            raise error
        return attrs.evolve(sent, result=redact(sent.action, "response", result))

    async def carry(self, session: Any, request_id: str, action: str, payload: dict[str, Any],
                    timeout: float) -> dict[str, Any]:
        """Send, through a session of this node, a command another node of the cluster checked and recorded
        (gateway/cluster/node.py); that node records its answer. What only the node holding the charger can
        do is done here: ask whether its protocol carries the command, and expect the transaction a remote
        start announces."""
        why = session.unsupported(action, payload)
        if why is not None:
            raise NotSupported(session.cp_id, action, why)
        testing = self.chargers.busy.get(session.cp_id)  # a test run is this node's: the requester cannot know
        if testing is not None and action not in DURING_TESTS:
            raise ChargerUnderTest(session.cp_id, testing)
        starts = self.chargers.remote_starts
        if action == "RemoteStartTransaction":
            starts.expect(session.cp_id, payload.get("connectorId"), payload["idTag"], request_id)
        try:
            result = await session.call(action, payload, timeout, request_id)
        except CallErrorReceived:
            if action == "RemoteStartTransaction":
                starts.forget(request_id)
            raise
        if action == "RemoteStartTransaction" and _status(result, "answered") != "Accepted":
            starts.forget(request_id)
        return result

    async def _finish(self, cp_id: str, action: str, payload: dict[str, Any], request_id: str,
                      result: dict | None, error: CommandError | None, outcome: str, latency: float) -> None:
        metrics = self.chargers.metrics
        metrics.commands.labels(action, outcome).inc()
        if outcome == "answered":
            metrics.command_latency.labels(action).observe(latency)
        details = (error.code, error.description, error.details) if isinstance(error, CallErrorReceived) else None
        # Nothing secret is recorded: not the key sent, not one a charger reports back.
        result = redact(action, "response", result)
        self.store.commands.finish(request_id, outcome, result, details, clock.iso(), latency * 1000)
        if self.chargers.events.watched:
            self.chargers.events.show(_ended(cp_id, request_id, action, outcome, result, error))
        if action == "ChangeConfiguration" and _status(result, outcome) in ("Accepted", "RebootRequired"):
            # The charger uses a new key or a higher security profile from its next connection
            # (OCTT TC_073, TC_083): from then on the gateway asks for them.
            if security_key(payload) == "AuthorizationKey":
                await self.store.chargers.set_security(cp_id, None, hash_key(payload["value"]), clock.iso())
            elif security_key(payload) == "SecurityProfile" and payload["value"] in ("0", "1", "2", "3"):
                # Raised only, whatever the charger accepted (check_security refused a lower one).
                if int(payload["value"]) > (await self.store.chargers.security(cp_id))[0]:
                    await self.store.chargers.set_security(cp_id, int(payload["value"]), None, clock.iso())
        hook = _AFTER.get(action)
        if hook is not None:
            await hook(self, cp_id, redact(action, "request", payload), result, outcome, request_id)

    async def _before(self, cp_id: str, action: str, payload: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Record what the gateway must remember before the charger can act on it."""
        at = clock.iso()
        if action == "ReserveNow":
            reservation_id = await self.store.reservations.create(
                payload.get("reservationId"), cp_id, payload["connectorId"], payload["idTag"],
                payload.get("parentIdTag"), payload["expiryDate"], request_id, at)
            payload = {**payload, "reservationId": reservation_id}
        elif action == "SendLocalList":
            version = await self.store.local_lists.record_sent(
                cp_id, payload.get("listVersion"), payload["updateType"],
                payload.get("localAuthorizationList") or [], request_id, at)
            payload = {**payload, "listVersion": version}
        elif action == "RemoteStartTransaction":
            # Before sending: some chargers send StartTransaction before answering the command.
            self.chargers.remote_starts.expect(cp_id, payload.get("connectorId"), payload["idTag"], request_id)
        return payload


def _ended(cp_id: str, request_id: str, action: str, outcome: str, result: dict | None,
           error: CommandError | None) -> CommandChanged:
    """How a command ended, for the live stream."""
    state = COMMAND_STATES.get(outcome, outcome)
    if isinstance(error, CallErrorReceived):
        failure: dict[str, Any] | None = {"code": error.code, "description": error.description,
                                          "details": error.details}
    elif outcome == "abandoned":
        failure = {"message": "ended before an answer came (the command was abandoned)"}
    else:
        failure = {"message": str(error)} if error is not None else None
    return CommandChanged(cp_id, request_id, action, state, clock.iso(), answer=result, error=failure)


INOPERATIVE = {"connectorId": 0, "type": "Inoperative"}  # the whole charger


async def keep_out_of_service(commands: CommandService,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Make Inoperative again each charger the operator keeps out of service, once it has connected or
    booted (OutOfService events): ChangeAvailability sent and recorded like any command, its answer
    awaited in the background. Handlers publish the events: they never await a CALL themselves."""
    with commands.chargers.events.subscribe(buffer=1000) as events:
        task_status.started()  # subscribed before any charger connects
        async for event in events:
            if not isinstance(event, OutOfService):
                continue
            try:
                # Read again: the operator may have put it back in service since the event.
                why = await commands.store.chargers.availability(event.cp_id)
                if why is not None:
                    await commands.start(event.cp_id, "ChangeAvailability", INOPERATIVE)
                    log.info("kept out of service", cp=event.cp_id, why=why)
            except StoreClosed:  # the gateway is stopping
                return
            except CommandError as exc:  # gone again, or too many commands waiting: its next connection retries
                log.info("not kept out of service", cp=event.cp_id, error=str(exc))
            except Exception:  # one charger's failure must not stop the others' (nor the gateway)
                log.exception("keeping a charger out of service failed", cp=event.cp_id)


def _status(result: dict | None, outcome: str) -> str:
    """The charger's answer status, or how the command ended when it gave none."""
    return str(result.get("status")) if result and "status" in result else outcome


@after("GetConfiguration")
async def _configuration(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                         request_id: str) -> None:
    if result is not None:
        await cmds.store.configuration.replace(cp_id, result.get("configurationKey") or [],
                                               result.get("unknownKey") or [], complete=not payload.get("key"),
                                               at=clock.iso())


@after("ChangeConfiguration")
async def _change(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                  request_id: str) -> None:
    if _status(result, outcome) in ("Accepted", "RebootRequired"):
        await cmds.store.configuration.set(cp_id, payload["key"], payload["value"], clock.iso())


@after("SendLocalList")
async def _local_list(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                      request_id: str) -> None:
    await cmds.store.local_lists.set_status(request_id, _status(result, outcome))


@after("ReserveNow")
async def _reserved(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                    request_id: str) -> None:
    await cmds.store.reservations.set_status(payload["reservationId"], _status(result, outcome), clock.iso())


@after("CancelReservation")
async def _cancelled(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                     request_id: str) -> None:
    if _status(result, outcome) == "Accepted":
        await cmds.store.reservations.set_status(payload["reservationId"], "Cancelled", clock.iso())


@after("SetChargingProfile")
async def _profile(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                   request_id: str) -> None:
    await cmds.store.charging_profiles.record(cp_id, payload["connectorId"], payload["csChargingProfiles"],
                                              _status(result, outcome), request_id, clock.iso())


@after("ClearChargingProfile")
async def _cleared(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                   request_id: str) -> None:
    if _status(result, outcome) == "Accepted":
        await cmds.store.charging_profiles.clear(cp_id, payload.get("id"), payload.get("connectorId"),
                                                 payload.get("chargingProfilePurpose"), payload.get("stackLevel"),
                                                 clock.iso())


@after("RemoteStartTransaction")
async def _remote_start(cmds: CommandService, cp_id: str, payload: dict, result: dict | None, outcome: str,
                        request_id: str) -> None:
    # Forgotten only when the charger said no: one that did not answer in time may still start
    # the transaction (its expectation then lapses after remote_starts' time to live).
    if outcome in ("answered", "call_error") and _status(result, outcome) != "Accepted":
        cmds.chargers.remote_starts.forget(request_id)
    if "chargingProfile" in payload:  # a TxProfile sent along with the start
        await cmds.store.charging_profiles.record(cp_id, payload.get("connectorId") or 0, payload["chargingProfile"],
                                                  _status(result, outcome), request_id, clock.iso())
