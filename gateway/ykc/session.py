"""One YKC pile on its TCP connection: the Trio edge around connection.py, on the gateway's records.

A pile's frames reach the records through the very handlers that answer OCPP chargers (login as a
BootNotification, 0x13 as StatusNotification and MeterValues, a started session as StartTransaction,
the transaction record 0x3B as StopTransaction), so its sessions are transactions with orders, priced,
paid and refunded like any other. Commands reach it through the same registry as an OCPP charger's
(`call`): RemoteStartTransaction, RemoteStopTransaction, Reset and TriggerMessage are sent as their
YKC frames; anything else is refused before it is sent (`unsupported`).

A pile that floods, sends garbage, stays silent or logs in wrongly costs only its own connection.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

import attrs
import structlog
import trio

from .. import clock
from ..billing.tariffs import Tariff
from ..chargepoint.context import HandlerContext
from ..chargepoint.errors import CallTimeout, NotConnected, TooManyCommands
from ..chargepoint.handlers import HANDLERS, authorize, dispatch
from ..chargepoint.rate import TokenBucket
from ..live import connection
from ..ocpp.frames import Call, CallError, CallResult
from ..proxies import is_loopback
from ..store.health import StoreUnavailable
from .billing_model import BillingModel, ModelError, billing_model
from .codec import Frame
from .connection import Connection, OutOfTurn, Received, Unreadable
from .messages import LAYOUTS, STATUS_CHARGING, STATUS_FAULT, STATUS_IDLE, stop_reason_text

if TYPE_CHECKING:
    from ..chargepoint.service import ChargerService

log = structlog.get_logger("gateway.ykc")

# what a pile may send before its login is accepted, and unreadable frames in a row, before it is cut off
MAX_BEFORE_LOGIN = 3
MAX_UNREADABLE = 20
TIME_SYNC_EVERY = 12 * 3600.0  # seconds between two time syncs of a pile (at its login, then this often)
NOT_PLUGGED = 0x05  # a 0x33 refusal the pile takes back once the cable is plugged in
BALANCE = Decimal("99999.99")  # the account balance sent with a remote start: the gateway bills afterwards
SUPPORTED = ("RemoteStartTransaction", "RemoteStopTransaction", "Reset", "TriggerMessage")
# 0x3B stop reasons as OCPP's StopTransaction reasons (the YKC code is kept beside, ykc_sessions)
_OCPP_REASONS = {0x40: "Remote", 0x45: "Local", 0x72: "EmergencyStop", 0x83: "PowerLoss", 0x6B: "EVDisconnected"}


@attrs.define
class _Waiting:
    """A command's frame sent, waiting for the pile's reply of type `code` for `gun` (None: any gun)."""

    code: int
    gun: int | None
    done: trio.Event = attrs.field(factory=trio.Event)
    frame: Frame | None = None


class _NoPing:
    can_ping = False  # the watchdog (chargepoint/watchdog.py) pings none: the session watches its own heartbeats

    def __init__(self, remote: str):
        self.remote = remote


def frame_json(frame: Frame, raw: bytes) -> str:
    """A frame as the frame log keeps it: its bytes as hex, and its fields read."""
    return json.dumps({"hex": raw.hex(" ").upper(), "type": f"0x{frame.code:02X}", "name": frame.name,
                       "seq": frame.seq, "fields": frame.fields}, default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def _iso(moment: datetime | None, tz: tzinfo) -> str | None:
    """A pile's local wall-clock time as the gateway's UTC timestamp text."""
    if moment is None:
        return None
    return moment.replace(tzinfo=tz).astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wh(kwh: Decimal) -> int:
    return int((kwh * 1000).to_integral_value())


class YkcSession:
    def __init__(self, service: ChargerService, stream: trio.abc.Stream, remote: str, tz: tzinfo,
                 tariff_of: Callable[[str], Tariff], idle_timeout: float):
        self.service = service
        self.store = service.store
        self.config = service.config
        self.stream = stream
        self.transport = _NoPing(remote)
        self.tz = tz
        self.tariff_of = tariff_of
        self.idle_timeout = idle_timeout
        self.cp_id = ""
        self.subprotocol: str | None = None
        self.log = log.bind(remote=remote)
        self.connected_at = clock.iso()
        self.last_activity = trio.current_time()
        self.closed = False
        self.finished = trio.Event()
        self.guns = 1
        self.context: HandlerContext | None = None
        self._conn = Connection()
        self._status: dict[int, tuple[str, str | None]] = {}  # gun -> (OCPP status, error) last reported
        self._active: dict[str, int | None] = {}  # serial -> transaction id, for the meter values of 0x13
        self._waiting: list[_Waiting] = []
        self._waiting_commands = 0
        self._call_lock = trio.Lock()
        self._send_lock = trio.Lock()
        self._counter = secrets.randbelow(10000)
        rate = self.config.max_calls_per_second
        self._frames = TokenBucket(rate, 2 * rate, trio.current_time())
        self._cancel_scope = trio.CancelScope()
        self._reason: str | None = None
        self._registered = False
        self._raw = b""
        self._synced = 0.0

    # ---- life cycle -------------------------------------------------------------

    async def run(self) -> None:
        """Serve the pile until it goes away, goes silent, is replaced or the gateway stops."""
        try:
            with self._cancel_scope:
                await self._read_loop()
        finally:
            with trio.CancelScope(shield=True):
                await self._teardown()

    def close(self, code: int | None, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
        self._cancel_scope.cancel()

    async def _teardown(self) -> None:
        self.closed = True
        reason = self._reason or "connection closed"
        await trio.aclose_forcefully(self.stream)
        for waiting in self._waiting:
            waiting.done.set()  # frame None: not connected
        if self._registered:
            current = self.service.registry.detach(self)  # type: ignore[arg-type]
            self.log.info("disconnected", reason=reason)
            self.store.frames.record(self.cp_id, "event", reason, action="disconnect")
            if current:
                connection(self.service.events, self.cp_id, False, reason=reason)
                try:
                    await self.store.chargers.disconnected(self.cp_id, reason, clock.iso())
                except Exception as exc:  # the store may be closing with the gateway
                    self.log.warning("could not record the disconnect", error=repr(exc))
        self.finished.set()

    # ---- inbound ----------------------------------------------------------------

    async def _read_loop(self) -> None:
        before_login = unreadable = 0
        while True:
            with trio.move_on_after(self.idle_timeout) as silence:
                try:
                    data = await self.stream.receive_some(4096)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
            if silence.cancelled_caught:
                self._reason = f"no frame for {self.idle_timeout:g} s"
                self.log.warning("silent pile", cp=self.cp_id or None, idle_seconds=self.idle_timeout)
                return
            if not data:
                self._reason = self._reason or "closed by the pile"
                return
            self.last_activity = trio.current_time()
            for event in self._conn.receive(data):
                if isinstance(event, Unreadable):
                    unreadable += 1
                    self._record_in_raw(event.raw, event.reason)
                    self.log.warning("unreadable frame", cp=self.cp_id or None, why=event.reason)
                    if unreadable >= MAX_UNREADABLE:
                        self._reason = f"{unreadable} unreadable frames in a row"
                        return
                    continue
                unreadable = 0
                if isinstance(event, OutOfTurn):
                    self._record_in_raw(event.raw, event.reason)
                    self.log.warning("frame out of turn", cp=self.cp_id or None, why=event.reason)
                    before_login += self._conn.pile is None
                    if before_login >= MAX_BEFORE_LOGIN:
                        self._reason = "frames before a login"
                        return
                    continue
                assert isinstance(event, Received)
                if not self._frames.take(trio.current_time()):
                    self._record_in(event)
                    self.log.warning("over the frame rate: frame dropped", cp=self.cp_id,
                                     limit=self.config.max_calls_per_second)
                    continue
                if not await self._received(event):
                    return
            if self._conn.pile is not None and trio.current_time() - self._synced > TIME_SYNC_EVERY:
                await self._sync_time()  # piles' clocks drift: set again twice a day

    def _record_in(self, event: Received) -> None:
        if self.cp_id:
            self.store.frames.record(self.cp_id, "in", frame_json(event.frame, event.raw), action=event.frame.name)
        self.service.metrics.frame("in", None, None)

    def _record_in_raw(self, raw: bytes, reason: str) -> None:
        if self.cp_id:
            self.store.frames.record(self.cp_id, "in", json.dumps({"hex": raw[:300].hex(" ").upper(),
                                                                   "refused": reason}), action="unreadable")

    async def _received(self, event: Received) -> bool:
        """Act on one frame; False ends the connection."""
        frame = event.frame
        if frame.code == 0x01:
            return await self._login(event)
        self._record_in(event)
        self._raw = event.raw  # the bytes of the frame being handled (the transaction record keeps them)
        handler = _HANDLERS.get(frame.code)
        try:
            if handler is not None:
                await handler(self, frame)
        except (_NotTaken, StoreUnavailable) as exc:  # not acknowledged: the pile sends it again
            self.log.warning("frame not taken", frame=frame.name, reason=str(exc))
            return True
        except Exception:  # a bug costs this frame, never the connection or the listener
            self.log.exception("frame handling failed", frame=frame.name)
            return True
        for waiting in self._waiting:
            if waiting.code == frame.code and waiting.gun in (None, frame.fields.get("gun")) and waiting.frame is None:
                waiting.frame = frame
                waiting.done.set()
                break
        return True

    async def _send(self, frame: Frame, raw: bytes) -> None:
        if self.cp_id:  # a refused login has none
            self.store.frames.record(self.cp_id, "out", frame_json(frame, raw), action=frame.name)
        self.service.metrics.frame("out", None, None)
        async with self._send_lock:
            try:
                await self.stream.send_all(raw)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.close(None, "connection lost while sending")

    async def _reply(self, request: Frame, code: int, fields: dict[str, Any]) -> None:
        await self._send(*self._conn.reply(request, code, fields))

    async def _send_new(self, code: int, fields: dict[str, Any]) -> None:
        await self._send(*self._conn.send(code, fields))

    async def _handle(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run an OCPP handler on what the pile said; raise on its CALLERROR (the frame is not acknowledged)."""
        assert self.context is not None
        answer = await dispatch(HANDLERS, self.context, Call("ykc", action, payload), None)
        if isinstance(answer, CallError):
            raise _NotTaken(f"{action}: {answer.description}")
        assert isinstance(answer, CallResult)
        return answer.payload

    # ---- login ------------------------------------------------------------------

    async def _login(self, event: Received) -> bool:
        frame = event.frame
        fields = frame.fields
        if self._conn.pile is not None:  # a second login on the same connection: answered, nothing else
            self._record_in(event)
            await self._reply(frame, 0x02, {"pile": fields["pile"], "result": 0 if fields["pile"] == self.cp_id else 1})
            return True
        why = await self._not_admitted(fields["pile"])
        if why is not None:  # nothing recorded: as an OCPP handshake refused
            self.log.warning("login refused", pile=fields["pile"], reason=why)
            await self._send(*self._conn.reply(frame, 0x02, {"pile": fields["pile"], "result": 1}))
            self._reason = why
            return False
        self.cp_id = fields["pile"]
        self.guns = max(1, fields["guns"])
        self.subprotocol = f"ykc{fields['protocol'] / 10:g}"
        self.log = log.bind(cp=self.cp_id, remote=self.transport.remote)
        self.context = HandlerContext(self.cp_id, self.store, self.config, self.service.events,
                                      self.service.remote_starts, self.log)
        self._record_in(event)
        self.store.frames.record(self.cp_id, "event", f"connected from {self.transport.remote}", action="connect")
        await self.store.chargers.connected(self.cp_id, self.transport.remote, self.subprotocol, self.connected_at)
        previous = self.service.registry.attach(self)  # type: ignore[arg-type]
        self._registered = True
        connection(self.service.events, self.cp_id, True, remote=self.transport.remote)
        if previous is not None:
            previous.close(1000, "replaced by a new connection with the same id")
        boot = await self._handle("BootNotification", {
            "chargePointVendor": "YKC", "chargePointModel": "AC" if fields["pile_type"] == 1 else "DC",
            "firmwareVersion": fields["firmware"] or None, "iccid": fields["sim"].lstrip("0") or None,
        })
        if boot["status"] != "Accepted":
            await self._reply(frame, 0x02, {"pile": self.cp_id, "result": 1})
            self.log.warning("login refused", status=boot["status"])
            self._reason = f"login refused: {boot['status']}"
            return False
        self._conn.logged_in(self.cp_id)
        await self._reply(frame, 0x02, {"pile": self.cp_id, "result": 0})
        self.log.info("pile logged in", protocol=self.subprotocol, guns=self.guns, firmware=fields["firmware"],
                      crc=event.crc_order.value)
        await self._sync_time()
        for gun in range(1, self.guns + 1):  # each gun's state now, rather than at the pile's next report
            await self._send_new(0x12, {"pile": self.cp_id, "gun": gun})
        return True

    async def _not_admitted(self, pile: str) -> str | None:
        """Why a pile never seen before may not be added now (as the OCPP handshake decides), or None."""
        known = await self.store.chargers.admission(pile)
        if known.exists:
            return None
        if known.lookalike is not None:
            return f"pile {pile} looks like the known charger {known.lookalike!r}"
        host = self.transport.remote.rsplit(":", 1)[0]
        if not is_loopback(host) and not self.service.admission.may_add(host, trio.current_time()):
            return f"more than {self.config.new_chargers_per_minute} new chargers within a minute from {host}"
        return None

    async def _sync_time(self) -> None:
        self._synced = trio.current_time()
        await self._send_new(0x56, {"pile": self.cp_id, "time": self._now()})

    def _now(self) -> datetime:
        return clock.now().astimezone(self.tz).replace(tzinfo=None, microsecond=0)

    def model(self) -> BillingModel:
        """The billing model of the pile's tariff; ModelError when the tariff does not fit one."""
        return billing_model(self.tariff_of(self.cp_id))

    def _model_error(self, error: ModelError, frame: Frame) -> None:
        self.log.error("tariff does not fit a YKC billing model", error=str(error))
        assert self.context is not None
        self.context.record_violation(frame.name, "request", "NotSupported", "tariff", str(error),
                                      {"pile": self.cp_id})

    # ---- the pile's frames ------------------------------------------------------

    async def _heartbeat(self, frame: Frame) -> None:
        await self._reply(frame, 0x04, {"pile": self.cp_id, "gun": frame.fields["gun"], "reply": 0})

    async def _model_verify(self, frame: Frame) -> None:
        try:
            model = self.model()
        except ModelError as error:
            self._model_error(error, frame)
            return  # unanswered: the pile asks again, and charges nothing meanwhile
        same = frame.fields["model"] == model.number
        await self._reply(frame, 0x06, {"pile": self.cp_id, "model": model.number, "result": 0 if same else 1})

    async def _model_request(self, frame: Frame) -> None:
        try:
            model = self.model()
        except ModelError as error:
            self._model_error(error, frame)
            return
        await self._reply(frame, 0x0A, model.fields(self.cp_id))

    async def _realtime(self, frame: Frame) -> None:
        f = frame.fields
        gun, status = f["gun"], f["status"]
        ocpp = ("Charging" if status == STATUS_CHARGING else "Faulted" if status == STATUS_FAULT
                else ("Preparing" if f["plugged"] == 1 else "Available") if status == STATUS_IDLE else "Unavailable")
        error = "OtherError" if status == STATUS_FAULT or f["faults"] else "NoError"
        if self._status.get(gun) != (ocpp, error):
            self._status[gun] = (ocpp, error)
            await self._handle("StatusNotification", {
                "connectorId": gun, "status": ocpp, "errorCode": error, "timestamp": clock.iso(),
                **({"vendorErrorCode": f"{f['faults']:04X}"} if f["faults"] else {}),
            })
        serial = f["serial"]
        if serial.strip("0") == "":
            return
        if serial not in self._active:  # read once per session, not per frame (None: none of ours)
            if len(self._active) > 4 * self.guns + 16:
                self._active.clear()
            known = await self.store.ykc_sessions.get(serial)
            self._active[serial] = known["transaction_id"] if known else None
        transaction_id = self._active[serial]
        if transaction_id is None:
            return
        sampled = [
            {"value": str(_wh(f["energy_kwh"])), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": str(f["voltage_v"]), "measurand": "Voltage", "unit": "V"},
            {"value": str(f["current_a"]), "measurand": "Current.Import", "unit": "A"},
            {"value": str((f["voltage_v"] * f["current_a"]).quantize(Decimal("0.1"))), "measurand": "Power.Active.Import",
             "unit": "W"},
        ]
        if f["soc"]:
            sampled.append({"value": str(f["soc"]), "measurand": "SoC", "unit": "Percent"})
        await self._handle("MeterValues", {"connectorId": gun, "transactionId": transaction_id,
                                           "meterValue": [{"timestamp": clock.iso(), "sampledValue": sampled}]})

    async def _card_start(self, frame: Frame) -> None:
        f = frame.fields
        gun = f["gun"]
        id_tag = f["vin"] if f["mode"] == 3 else f["card"]
        assert self.context is not None
        info = await authorize(self.context, id_tag)
        serial = self._serial(gun)
        answer = {"serial": serial, "pile": self.cp_id, "gun": gun, "logical_card": "0" * 16,
                  "balance_yuan": BALANCE, "result": 0, "reason": 0}
        if info["status"] != "Accepted":
            await self._reply(frame, 0x32, {**answer, "balance_yuan": 0, "reason": 0x01})
            return
        await self._start_transaction(serial, gun, id_tag)
        await self._reply(frame, 0x32, {**answer, "result": 1})

    async def _start_transaction(self, serial: str, gun: int, id_tag: str) -> int:
        started = await self._handle("StartTransaction", {"connectorId": gun, "idTag": id_tag, "meterStart": 0,
                                                          "timestamp": clock.iso()})
        transaction_id = started["transactionId"]
        await self.store.ykc_sessions.started(serial, self.cp_id, gun, transaction_id, clock.iso())
        self._active[serial] = transaction_id
        return transaction_id

    async def _remote_start_reply(self, frame: Frame) -> None:
        f = frame.fields
        if f["result"] != 1:
            self.log.info("remote start refused", gun=f["gun"], reason=f["reason"])
            return
        known = await self.store.ykc_sessions.get(f["serial"])
        if known is None or known["transaction_id"] is not None:  # not ours, or a second success of the same start
            return
        await self._start_transaction(f["serial"], f["gun"], known["id_tag"] or "")

    async def _transaction(self, frame: Frame) -> None:
        f = frame.fields
        serial = f["serial"]
        reason = stop_reason_text(f["stop_reason"])
        known = await self.store.ykc_sessions.get(serial)
        transaction_id = known["transaction_id"] if known else None
        start_failed = 0x4A <= f["stop_reason"] <= 0x69 and not f["energy_kwh"]
        if transaction_id is None and not start_failed:
            # a session the gateway never started (an offline card, a start whose answer was lost): it becomes
            # a transaction all the same, from the record's own times, so that it is billed
            id_tag = f["card"] if f["card"].strip("0") else (f["vin"] or f"YKC-{self.cp_id}")
            self.log.info("transaction record of a session the gateway did not start", serial=serial,
                          trade=f["trade"])
            started = await self._handle("StartTransaction", {
                "connectorId": f["gun"], "idTag": id_tag[:20], "meterStart": 0,
                "timestamp": _iso(f["started"], self.tz) or clock.iso()})
            transaction_id = started["transactionId"]
            await self.store.ykc_sessions.started(serial, self.cp_id, f["gun"], transaction_id, clock.iso())
        if transaction_id is not None:
            await self._handle("StopTransaction", {
                "transactionId": transaction_id, "meterStop": _wh(f["energy_kwh"]),
                "timestamp": _iso(f["ended"], self.tz) or clock.iso(),
                "reason": _OCPP_REASONS.get(f["stop_reason"], "Other"),
            })
        await self.store.ykc_sessions.recorded(serial, self.cp_id, f["gun"], f["stop_reason"], reason,
                                               frame_json(frame, self._raw), clock.iso())
        self._active.pop(serial, None)
        self.log.info("transaction record", serial=serial, transaction_id=transaction_id,
                      energy_kwh=str(f["energy_kwh"]), amount_yuan=str(f["amount_yuan"]),
                      stop_reason=f"0x{f['stop_reason']:02X} {reason}")
        # committed above: only now acknowledged (a pile that hears nothing sends it again)
        await self._reply(frame, 0x40, {"serial": serial, "result": 0})

    def _serial(self, gun: int) -> str:
        """A new session's serial: pile, gun, local time yyMMddHHmmss, a counter (the protocol's rule)."""
        self._counter = (self._counter + 1) % 10000
        return f"{self.cp_id}{gun:02d}{self._now():%y%m%d%H%M%S}{self._counter:04d}"

    # ---- commands (the registry's call) -----------------------------------------

    def unsupported(self, action: str, payload: dict[str, Any]) -> str | None:
        """Why `action` cannot be sent to this pile, or None."""
        if action not in SUPPORTED:
            return (f"{action} has no YKC equivalent: pile {self.cp_id!r} takes "
                    f"{', '.join(SUPPORTED)}")
        if action == "RemoteStartTransaction":
            try:
                self.model()
            except ModelError as error:
                return f"pile {self.cp_id!r} cannot be started: {error}"
        if action == "TriggerMessage" and payload.get("requestedMessage") not in ("MeterValues", "StatusNotification"):
            return "a YKC pile can only be asked for its real-time data (MeterValues, StatusNotification)"
        return None

    async def call(self, action: str, payload: dict[str, Any], timeout: float | None = None,
                   unique_id: str | None = None) -> dict[str, Any]:
        timeout = self.config.call_timeout if timeout is None else timeout
        if self._waiting_commands >= self.config.max_pending_commands:
            raise TooManyCommands(self.cp_id, self.config.max_pending_commands)
        self._waiting_commands += 1
        sent = False
        try:
            with trio.move_on_after(timeout):
                async with self._call_lock:
                    if self.closed:
                        raise NotConnected(self.cp_id)
                    sent = True
                    return await _COMMANDS[action](self, payload)
            raise CallTimeout(action, timeout, sent)
        finally:
            self._waiting_commands -= 1

    async def _exchange(self, code: int | None, fields: dict[str, Any], reply: int, gun: int | None) -> Frame:
        """Send a frame (None: send nothing) and wait for the pile's reply of type `reply` for `gun`."""
        waiting = _Waiting(reply, gun)
        self._waiting.append(waiting)
        try:
            if code is not None:
                await self._send_new(code, fields)
            await waiting.done.wait()
        finally:
            self._waiting.remove(waiting)
        if waiting.frame is None:
            raise NotConnected(self.cp_id)
        return waiting.frame

    def _gun(self, payload: dict[str, Any]) -> int:
        gun = payload.get("connectorId") or next(
            (g for g in range(1, self.guns + 1) if self._status.get(g, ("Available",))[0] in ("Available", "Preparing")),
            1)
        return int(gun)

    async def _remote_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        gun = self._gun(payload)
        serial = self._serial(gun)
        await self.store.ykc_sessions.issue(serial, self.cp_id, gun, payload["idTag"], clock.iso())
        reply = await self._exchange(0x34, {"serial": serial, "pile": self.cp_id, "gun": gun,
                                            "logical_card": "0" * 16, "card": "0" * 16, "balance_yuan": BALANCE},
                                     0x33, gun)
        while reply.fields["result"] != 1 and reply.fields["reason"] == NOT_PLUGGED:
            # the pile says yes once the cable is plugged in (within 60 s): wait for that, within the command's time
            self.log.info("remote start waits for the cable", gun=gun, serial=serial)
            reply = await self._exchange(None, {}, 0x33, gun)
        return {"status": "Accepted" if reply.fields["result"] == 1 else "Rejected"}

    async def _remote_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        known = await self.store.ykc_sessions.by_transaction(payload["transactionId"])
        if known is None or known["charge_point_id"] != self.cp_id:
            return {"status": "Rejected"}
        gun = known["gun"]
        reply = await self._exchange(0x36, {"pile": self.cp_id, "gun": gun}, 0x35, gun)
        return {"status": "Accepted" if reply.fields["result"] == 1 else "Rejected"}

    async def _reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        control = 1 if payload.get("type") == "Hard" else 2
        reply = await self._exchange(0x92, {"pile": self.cp_id, "control": control}, 0x91, None)
        return {"status": "Accepted" if reply.fields["result"] == 1 else "Rejected"}

    async def _trigger(self, payload: dict[str, Any]) -> dict[str, Any]:
        guns = [payload["connectorId"]] if payload.get("connectorId") else range(1, self.guns + 1)
        for gun in guns:
            await self._send_new(0x12, {"pile": self.cp_id, "gun": gun})
        return {"status": "Accepted"}


class _NotTaken(Exception):
    """What the pile said could not be kept (the store): its frame is not acknowledged."""


_HANDLERS = {
    0x03: YkcSession._heartbeat,
    0x05: YkcSession._model_verify,
    0x09: YkcSession._model_request,
    0x13: YkcSession._realtime,
    0x31: YkcSession._card_start,
    0x33: YkcSession._remote_start_reply,
    0x3B: YkcSession._transaction,
}
_COMMANDS = {
    "RemoteStartTransaction": YkcSession._remote_start,
    "RemoteStopTransaction": YkcSession._remote_stop,
    "Reset": YkcSession._reset,
    "TriggerMessage": YkcSession._trigger,
}
assert set(_HANDLERS) <= set(LAYOUTS)
