"""A simulated OCPP 1.6J charge point that behaves like real ones.

It boots, reports every connector, heartbeats, runs charging sessions with
monotonic meter values, answers every central-system command as a charger would
(over a real configuration key store, local list, authorization cache, reservations
and charging profiles, downloading firmware and uploading diagnostics for real), and
can be told to misbehave: reject, CALLERROR, stay silent, send a malformed frame,
drop the connection, or go offline and queue its transactions.

On the test bench (`Settings.bench`) it is a charger under test: a session needs a
cable plugged in and a card presented, which the bench's manual actions do (`manual()`,
reached through the lab webhook of gateway/simulator/lab.py), and planted bugs
(`Settings.bugs`, see BUGS) make it break specific rules of the protocol.
"""

from __future__ import annotations

import base64
import json
from functools import partial
from typing import Any
from urllib.parse import quote

import attrs
import structlog
import trio
import trio_websocket

from .. import clock
from . import schedule, transfer
from .link import CallFailed, Link, Reply
from .security import ChargerCertificates

log = structlog.get_logger("gateway.simulator")

FAULTS = ("reject", "callerror", "silence", "malformed", "drop")
NOT_SUPPORTED_STATUS = {  # the status a charger that rejects an action answers with
    "UnlockConnector": "UnlockFailed",
    "GetLocalListVersion": None,
    "SendLocalList": "Failed",
    "ClearChargingProfile": "Unknown",
    "GetDiagnostics": None,
    "UpdateFirmware": None,
}
INT_KEYS = {"HeartbeatInterval", "MeterValueSampleInterval", "ConnectionTimeOut", "ClockAlignedDataInterval",
            "ResetRetries", "TransactionMessageAttempts", "TransactionMessageRetryInterval",
            "WebSocketPingInterval"}
PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation", "SmartCharging", "RemoteTrigger")
# The planted bugs a charger on the bench can be given: each breaks one rule a test case checks.
BUGS = {
    "heartbeat_doubled": "heartbeats at twice the interval the central system gave",
    "no_connector_zero_status": "reports no StatusNotification for connector 0 (the charger itself) at boot",
    "ignores_configuration": "answers ChangeConfiguration Accepted but keeps the old value",
    "starts_without_authorize": "starts a session for a presented card without asking the central system",
    "no_finishing": "goes from Charging straight to Available, without Finishing",
    "stop_with_start_tag": "names the starting tag in StopTransaction, whichever tag ended the session",
    "meter_value_numbers": "sends meter values as JSON numbers, not strings (a schema violation)",
    "rejects_reservations": "answers every ReserveNow Rejected",
    "composite_ignores_stack": "builds its composite schedule from the lowest stack level, not the highest",
    "silent_bad_signature": "sends no SecurityEventNotification when a firmware signature does not verify",
}
BOOL_KEYS = {"AllowOfflineTxForUnknownId", "AuthorizationCacheEnabled", "AuthorizeRemoteTxRequests",
             "LocalAuthorizeOffline", "LocalPreAuthorize", "StopTransactionOnEVSideDisconnect",
             "StopTransactionOnInvalidId", "UnlockConnectorOnEVSideDisconnect", "LocalAuthListEnabled"}


def default_configuration(connectors: int, meter_interval: float, measurands: tuple[str, ...]) -> dict[str, list]:
    """key -> [value, readonly]: the core profile keys a real charger has."""
    return {
        "AllowOfflineTxForUnknownId": ["false", False],
        "AuthorizationCacheEnabled": ["true", False],
        "AuthorizeRemoteTxRequests": ["false", False],
        "ClockAlignedDataInterval": ["0", False],
        "ConnectionTimeOut": ["60", False],
        "GetConfigurationMaxKeys": ["50", True],
        "HeartbeatInterval": ["60", False],
        "LocalAuthorizeOffline": ["true", False],
        "LocalPreAuthorize": ["false", False],
        "MeterValuesAlignedData": ["Energy.Active.Import.Register", False],
        "MeterValuesSampledData": [",".join(measurands), False],
        "MeterValueSampleInterval": [f"{meter_interval:g}", False],  # sub-second intervals for tests
        "NumberOfConnectors": [str(connectors), True],
        "ResetRetries": ["3", False],
        "ConnectorPhaseRotation": ["NotApplicable", False],
        "StopTransactionOnEVSideDisconnect": ["true", False],
        "StopTransactionOnInvalidId": ["true", False],
        "StopTxnAlignedData": ["", False],
        "StopTxnSampledData": ["Energy.Active.Import.Register", False],
        "SupportedFeatureProfiles": [
            "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger", True],
        "TransactionMessageAttempts": ["3", False],
        "TransactionMessageRetryInterval": ["10", False],
        "UnlockConnectorOnEVSideDisconnect": ["true", False],
        "LocalAuthListEnabled": ["true", False],
        "LocalAuthListMaxLength": ["100", True],
        "SendLocalListMaxLength": ["100", True],
        "ReserveConnectorZeroSupported": ["true", True],
        "ChargeProfileMaxStackLevel": ["10", True],
        "ChargingScheduleAllowedChargingRateUnit": ["Current,Power", True],
        "ChargingScheduleMaxPeriods": ["24", True],
        "MaxChargingProfilesInstalled": ["10", True],
        "MinimumStatusDuration": ["0", False],
        "SecurityProfile": ["0", False],
    }


PROFILE_KEYS = {  # the keys only a charger with the profile has
    "LocalAuthListManagement": ("LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength"),
    "Reservation": ("ReserveConnectorZeroSupported",),
    "SmartCharging": ("ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
                      "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled"),
}
PROFILE_OF = {  # the commands of the optional profiles
    "GetLocalListVersion": "LocalAuthListManagement", "SendLocalList": "LocalAuthListManagement",
    "ReserveNow": "Reservation", "CancelReservation": "Reservation",
    "SetChargingProfile": "SmartCharging", "ClearChargingProfile": "SmartCharging",
    "GetCompositeSchedule": "SmartCharging", "TriggerMessage": "RemoteTrigger",
    "UpdateFirmware": "FirmwareManagement", "GetDiagnostics": "FirmwareManagement",
}


@attrs.define
class Settings:
    url: str  # the central system's base URL; the charge point id is appended: ws://host:9000/ocpp
    cp_id: str
    connectors: int = 1
    vendor: str = "Simulator"
    model: str = "SimCharger"
    firmware: str = "1.0.0"
    heartbeat_interval: float | None = None  # None: what the central system says
    meter_interval: float = 10.0
    measurands: tuple[str, ...] = ("Energy.Active.Import.Register", "Power.Active.Import")
    power_w: float = 7400.0
    subprotocols: tuple[str, ...] = ("ocpp1.6",)
    reconnect_delay: float = 1.0
    call_timeout: float = 30.0
    status_delay: float = 0.0  # pause between the steps of a session (Preparing, Charging, ...)
    cpo_name: str = "Simulator CPO"  # the CpoName configuration key: the organisation of its CSRs
    csr_key: str = "ec"  # the key of its CSRs: "ec" (P-256) or "rsa" (2048 bits)
    server_ca: str | None = None  # wss://: the PEM file of the CA that signed the central system's certificate
    bench: bool = False  # a charger under test: sessions need a cable and a card (manual actions)
    fixed_cable: bool = False
    backup_power: bool = False  # a power cut lets it end its sessions before it goes down
    profiles: tuple[str, ...] = PROFILES  # the feature profiles it supports
    authorization_key: str | None = None  # the basic-authentication password (security profiles 1 and 2)
    security_profile: int = 0
    tls_url: str | None = None  # where it connects from security profile 2 on (wss://...)
    bugs: frozenset[str] = frozenset()  # planted bugs, names of BUGS


@attrs.define
class Faults:
    """Misbehaviour on request: per action, or for every command ("*")."""

    commands: dict[str, str] = attrs.field(factory=dict)  # action or "*" -> one of FAULTS

    def for_action(self, action: str) -> str | None:
        return self.commands.get(action, self.commands.get("*"))


@attrs.define
class Connector:
    id: int
    status: str = "Available"
    error_code: str = "NoError"
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_wh: float = 0.0
    meter_start: int = 0

    @property
    def register(self) -> int:
        """The energy register as the meter shows it: whole Wh, never rounded up, so that a meter value and the
        meterStop read at the same moment agree (rounding one and truncating the other put a sample 1 Wh above
        the stop)."""
        return int(self.meter_wh)
    started: Any = None  # datetime of the session start
    stop: trio.Event | None = None
    ended: trio.Event | None = None  # set once the session's StopTransaction (and status) went out or was queued
    stop_reason: str = "Local"
    stop_tag: str | None = None  # the tag that ended the session, when not the starting one
    reserved: dict[str, Any] | None = None
    available: bool = True
    # on the bench
    plugged: bool = False  # a cable in the connector (both ends)
    pending_tag: str | None = None  # authorized, waiting for a cable
    parent_tag: str | None = None  # the group of the tag that started the session
    faulted: bool = False
    lock_stuck: bool = False
    suspended: bool = False  # the EV unplugged at its side, the session kept


@attrs.define
class Stats:
    boots: int = 0
    connects: int = 0
    transactions_started: int = 0
    transactions_stopped: int = 0
    meter_values: int = 0
    commands: int = 0
    errors: int = 0


class SimCharger:
    def __init__(self, settings: Settings, faults: Faults | None = None):
        self.settings = settings
        self.faults = faults or Faults()
        self.connectors = {i: Connector(i) for i in range(0, settings.connectors + 1)}
        self.configuration = default_configuration(settings.connectors, settings.meter_interval,
                                                   settings.measurands)
        self.local_list: dict[str, dict] = {}
        self.local_list_version = 0
        self.profiles: list[tuple[int, dict[str, Any]]] = []  # (connector id, csChargingProfiles)
        self.stats = Stats()
        self.link: Link | None = None
        self.registration: str | None = None
        self.online = trio.Event()  # set while connected and booted
        self.offline = False  # fault: stay away and queue transaction messages
        self._back_online = trio.Event()
        self._queue: list[tuple[str, dict[str, Any], int | None]] = []
        self._temp_ids = -1  # transaction ids used while offline, until the central system assigns real ones
        self._id_map: dict[int, int] = {}
        self._reconnect = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.log = log.bind(cp=settings.cp_id)
        self.configuration["CpoName"] = [settings.cpo_name, False]
        self.configuration["SupportedFeatureProfiles"][0] = ",".join(settings.profiles)
        self.configuration["SecurityProfile"][0] = str(settings.security_profile)
        for profile, keys in PROFILE_KEYS.items():
            if profile not in settings.profiles:
                for key in keys:
                    self.configuration.pop(key, None)
        unknown = set(settings.bugs) - set(BUGS)
        if unknown:
            raise ValueError(f"unknown planted bugs: {', '.join(sorted(unknown))}")
        self.cache: dict[str, dict[str, Any]] = {}  # the authorization cache: tag -> idTagInfo
        self.list_storage_fails = False  # fault: the local list cannot be stored
        self.certificates = ChargerCertificates(settings.csr_key)
        self.firmware_statuses: list[str] = []  # SignedFirmwareStatusNotification statuses sent

    # ---- connection ---------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        return float(self.configuration["HeartbeatInterval"][0])

    async def run(self) -> None:
        """Stay connected (reconnecting after drops and resets) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                if self.offline:
                    await self._back_online.wait()
                try:
                    await self._connection()
                except* (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError,
                         CallFailed) as group:  # nurseries wrap them in groups
                    self.log.debug("connection ended", error=repr(group.exceptions[0]))
                finally:
                    self.online = trio.Event()
                    self.link = None
                await trio.sleep(self.settings.reconnect_delay)

    async def _connection(self) -> None:
        base = self.settings.tls_url if self.settings.security_profile >= 2 and self.settings.tls_url \
            else self.settings.url
        url = f"{base.rstrip('/')}/{quote(self.settings.cp_id, safe='')}"  # any id: percent-encoded
        tls = self.certificates.tls_context(self.settings.server_ca) if url.startswith("wss:") else None
        headers = []
        if self.settings.authorization_key is not None and self.settings.security_profile in (1, 2):
            secret = base64.b64encode(f"{self.settings.cp_id}:{self.settings.authorization_key}".encode()).decode()
            headers.append((b"Authorization", f"Basic {secret}".encode()))
        async with trio_websocket.open_websocket_url(url, subprotocols=list(self.settings.subprotocols),
                                                     ssl_context=tls, extra_headers=headers) as ws:
            self.stats.connects += 1
            self.link = Link(ws, self._on_call)
            self._reconnect = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, nursery)
                await self._boot()
                nursery.start_soon(self._heartbeats)
                await self._send_statuses()
                await self._flush_queue()
                self.online.set()
                await self._reconnect.wait()
                nursery.cancel_scope.cancel()
            await ws.aclose()

    async def _read(self, nursery: trio.Nursery) -> None:
        try:
            assert self.link is not None
            await self.link.run()
        finally:
            self._reconnect.set()

    async def _boot(self) -> None:
        payload = {"chargePointVendor": self.settings.vendor, "chargePointModel": self.settings.model,
                   "chargePointSerialNumber": f"SN-{self.settings.cp_id}"[:25],
                   "firmwareVersion": self.settings.firmware}
        while True:
            answer = await self.call("BootNotification", payload)
            self.registration = answer.get("status")
            interval = answer.get("interval") or 60
            self.stats.boots += 1
            if self.settings.heartbeat_interval is not None:
                interval = self.settings.heartbeat_interval
            if self.registration == "Accepted":
                self.configuration["HeartbeatInterval"][0] = str(int(interval) or 1)
                return
            await trio.sleep(max(float(interval), 1.0))  # Pending / Rejected: try again later

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep(self.heartbeat_interval * (2 if "heartbeat_doubled" in self.settings.bugs else 1))
            await self.call("Heartbeat", {})

    async def _send_statuses(self) -> None:
        for connector in self.connectors.values():
            if connector.id == 0 and "no_connector_zero_status" in self.settings.bugs:
                continue
            await self.status(connector)

    def reconnect(self) -> None:
        """Drop the connection; run() connects and boots again."""
        self._reconnect.set()

    def go_offline(self) -> None:
        self.offline = True
        self._back_online = trio.Event()
        self.reconnect()

    def go_online(self) -> None:
        self.offline = False
        self._back_online.set()

    # ---- sending --------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.link is None:
            raise CallFailed(action, "NotConnected")
        try:
            return await self.link.call(action, payload, self.settings.call_timeout)
        except CallFailed:
            self.stats.errors += 1
            raise

    async def _transaction_message(self, action: str, payload: dict[str, Any],
                                   temp_id: int | None = None) -> dict[str, Any] | None:
        """Send now, or queue while offline (with the timestamps of now) to send on reconnect.

        `temp_id` marks a StartTransaction sent offline: its real id replaces the temporary one later.
        """
        if self.offline or not self.online.is_set():
            self._queue.append((action, payload, temp_id))
            return None
        try:
            return await self.call(action, self._real_ids(payload))
        except (CallFailed, trio_websocket.ConnectionClosed):
            self._queue.append((action, payload, temp_id))
            return None

    def _real_ids(self, payload: dict[str, Any]) -> dict[str, Any]:
        tx = payload.get("transactionId")
        if isinstance(tx, int) and tx in self._id_map:
            return {**payload, "transactionId": self._id_map[tx]}
        return payload

    async def _flush_queue(self) -> None:
        while self._queue:
            action, payload, temp_id = self._queue[0]
            answer = await self.call(action, self._real_ids(payload))
            self._queue.pop(0)
            if temp_id is not None:  # the central system's id for a transaction begun offline
                real = answer["transactionId"]
                self._id_map[temp_id] = real
                for connector in self.connectors.values():
                    if connector.transaction_id == temp_id:
                        connector.transaction_id = real
                        self._remember(connector.id_tag, answer.get("idTagInfo") or {})
                        if (answer.get("idTagInfo") or {}).get("status") != "Accepted":
                            self._after_answer(self._refused_after_start, connector)

    async def _refused_after_start(self, connector: Connector) -> None:
        """The central system refused the tag of a session already started (offline): end it, or keep it
        without energy, as StopTransactionOnInvalidId says (OCPP 1.6, 5.x StartTransaction)."""
        if connector.stop is None:
            return
        if self.configuration["StopTransactionOnInvalidId"][0] == "true":
            await self.stop_session(connector.id, "DeAuthorized")
        else:
            await self.status(connector, "SuspendedEVSE")

    async def status(self, connector: Connector, status: str | None = None, error_code: str = "NoError") -> None:
        if status is not None:
            connector.status, connector.error_code = status, error_code
        if self.link is None or self.offline:
            return
        try:
            await self.call("StatusNotification", {"connectorId": connector.id, "status": connector.status,
                                                   "errorCode": connector.error_code, "timestamp": clock.iso()})
        except (CallFailed, trio_websocket.ConnectionClosed):
            pass

    # ---- charging sessions ----------------------------------------------------------

    def free_connector(self) -> Connector | None:
        for connector in list(self.connectors.values())[1:]:
            if connector.transaction_id is None and connector.status == "Available" and connector.available:
                return connector
        return None

    def _enabled(self, key: str) -> bool:
        return self.configuration.get(key, ["false"])[0] == "true"

    def _local_info(self, id_tag: str) -> dict[str, Any] | None:
        """What the local list (first) or the authorization cache knows of a tag, where enabled."""
        if self._enabled("LocalAuthListEnabled") and id_tag in self.local_list:
            return self.local_list[id_tag] or {"status": "Accepted"}
        if self._enabled("AuthorizationCacheEnabled") and id_tag in self.cache:
            return self.cache[id_tag]
        return None

    def _remember(self, id_tag: str | None, info: dict[str, Any]) -> None:
        if id_tag is not None and self._enabled("AuthorizationCacheEnabled") and info.get("status"):
            self.cache[id_tag] = info

    async def authorize_info(self, id_tag: str) -> dict[str, Any]:
        """The idTagInfo of a tag: from the local list or cache when LocalPreAuthorize allows (or when offline
        and LocalAuthorizeOffline allows), else from the central system's Authorize."""
        known = self._local_info(id_tag)
        online = not self.offline and self.link is not None
        if online and known is not None and known.get("status") == "Accepted" and self._enabled("LocalPreAuthorize"):
            return known
        if not online:
            if known is not None and self._enabled("LocalAuthorizeOffline"):
                return known
            if self._enabled("AllowOfflineTxForUnknownId") or not self.settings.bench:
                return {"status": "Accepted"}  # the central system decides later
            return {"status": "Invalid"}
        answer = await self.call("Authorize", {"idTag": id_tag})
        self._remember(id_tag, answer["idTagInfo"])
        return answer["idTagInfo"]

    async def authorize(self, id_tag: str) -> str:
        return (await self.authorize_info(id_tag)).get("status", "Invalid")

    async def start_session(self, connector_id: int, id_tag: str, *, authorize: bool = True,
                            duration: float | None = None, reservation_id: int | None = None) -> int | None:
        """Plug in, authorize, start; returns the transaction id (negative while offline), or None if refused."""
        connector = self.connectors[connector_id]
        if authorize:
            info = await self.authorize_info(id_tag)
            if info.get("status") != "Accepted":
                return None
            connector.parent_tag = info.get("parentIdTag")
        if connector.status != "Preparing":
            await self.status(connector, "Preparing")
        await trio.sleep(self.settings.status_delay)
        connector.meter_start = connector.register
        connector.started = clock.now()
        connector.id_tag = id_tag
        connector.pending_tag = None
        payload: dict[str, Any] = {"connectorId": connector_id, "idTag": id_tag,
                                   "meterStart": connector.meter_start, "timestamp": clock.iso()}
        for holder in (connector, self.connectors[0]):  # a reservation of this connector, else of the charger
            if reservation_id is None and holder.reserved is not None:
                reservation_id = holder.reserved["reservationId"]
                holder.reserved = None
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        temp_id = self._temp_ids
        answer = await self._transaction_message("StartTransaction", payload, temp_id)
        if answer is None:  # offline: a temporary id until the central system assigns one
            connector.transaction_id = temp_id
            self._temp_ids -= 1
        else:
            connector.transaction_id = answer["transactionId"]
            info = answer["idTagInfo"]
            self._remember(id_tag, info)
            connector.parent_tag = info.get("parentIdTag", connector.parent_tag)
            if info["status"] != "Accepted" and self.configuration["StopTransactionOnInvalidId"][0] == "true":
                await self._finish(connector, "DeAuthorized")
                return answer["transactionId"]
        self.stats.transactions_started += 1
        connector.stop, connector.ended = trio.Event(), trio.Event()
        connector.stop_reason = "Local"
        connector.stop_tag = None
        refused = answer is not None and answer["idTagInfo"]["status"] != "Accepted"
        await self.status(connector, "SuspendedEVSE" if refused else "Charging")
        assert self._nursery is not None
        self._nursery.start_soon(self._charge, connector, duration)
        return connector.transaction_id

    async def stop_session(self, connector_id: int, reason: str = "Local", id_tag: str | None = None) -> bool:
        """End the session on a connector; `id_tag`: the tag that ended it (when not the starting one)."""
        connector = self.connectors[connector_id]
        if connector.stop is None:
            return False
        connector.stop_reason = reason
        connector.stop_tag = id_tag
        connector.stop.set()
        return True

    async def end_sessions(self, reason: str) -> None:
        """End every session and wait (a call's time-out at most) until each StopTransaction has gone out,
        answered or queued, and the status after it: a charger that resets, or loses power with a backup, ends
        its sessions before it goes down."""
        ended = [c.ended for c in self.connectors.values() if c.stop is not None and c.ended is not None]
        for c in self.connectors.values():
            await self.stop_session(c.id, reason)
        with trio.move_on_after(self.settings.call_timeout):
            for event in ended:
                await event.wait()

    def _power(self, connector: Connector) -> float:
        limit = schedule.limit_at(self.profiles, connector.id, clock.now(), clock.now(), connector.started, "W")
        return self.settings.power_w if limit is None else min(self.settings.power_w, limit)

    def _sampled(self, connector: Connector, context: str) -> list[dict[str, Any]]:
        power = self._power(connector) if connector.transaction_id is not None else 0.0
        values = {
            "Energy.Active.Import.Register": (str(connector.register), "Wh"),
            "Power.Active.Import": (f"{power:.0f}", "W"),
            "Current.Import": (f"{power / schedule.VOLTS:.1f}", "A"),
            "Current.Offered": (f"{self.settings.power_w / schedule.VOLTS:.1f}", "A"),
            "Voltage": ("230", "V"),
            "Temperature": ("31", "Celsius"),
            "SoC": (f"{min(100, 20 + connector.meter_wh / 500):.0f}", "Percent"),
        }
        key = "MeterValuesAlignedData" if context == "Sample.Clock" else "MeterValuesSampledData"
        measurands = [m for m in self.configuration[key][0].split(",") if m in values]
        number = "meter_value_numbers" in self.settings.bugs
        return [{"value": float(values[m][0]) if number else values[m][0], "context": context, "measurand": m,
                 "unit": values[m][1]} for m in measurands or ["Energy.Active.Import.Register"]]

    async def _charge(self, connector: Connector, duration: float | None) -> None:
        """Meter values every MeterValueSampleInterval until stopped (or the duration runs out)."""
        assert connector.stop is not None
        began = trio.current_time()
        last = began
        assert self._nursery is not None
        aligned = trio.CancelScope()
        self._nursery.start_soon(self._aligned, connector, aligned)
        while not connector.stop.is_set():
            configured = float(self.configuration["MeterValueSampleInterval"][0])
            interval = max(configured, 0.05) if configured > 0 else 1.0  # 0: no sampled values
            if duration is not None:
                interval = min(interval, max(duration - (trio.current_time() - began), 0))
            with trio.move_on_after(interval):
                await connector.stop.wait()
            now = trio.current_time()
            connector.meter_wh += self._power(connector) * (now - last) / 3600
            last = now
            if connector.stop.is_set() or (duration is not None and now - began >= duration):
                break
            if configured > 0:
                await self._meter_values(connector, "Sample.Periodic")
        aligned.cancel()
        await self._finish(connector, connector.stop_reason if connector.stop.is_set() else "Local")

    async def _meter_values(self, connector: Connector, context: str) -> None:
        await self._transaction_message("MeterValues", {
            "connectorId": connector.id, "transactionId": connector.transaction_id,
            "meterValue": [{"timestamp": clock.iso(), "sampledValue": self._sampled(connector, context)}]})
        self.stats.meter_values += 1

    async def _aligned(self, connector: Connector, scope: trio.CancelScope) -> None:
        """Clock-aligned meter values: at every whole multiple of ClockAlignedDataInterval past midnight UTC."""
        with scope:
            while True:
                interval = float(self.configuration["ClockAlignedDataInterval"][0])
                if interval <= 0:
                    await trio.sleep(1.0)
                    continue
                moment = clock.now()
                midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
                past = (moment - midnight).total_seconds()
                await trio.sleep(interval - past % interval)
                await self._meter_values(connector, "Sample.Clock")

    async def _finish(self, connector: Connector, reason: str) -> None:
        if "no_finishing" not in self.settings.bugs:
            await self.status(connector, "Finishing")
        ended_by = connector.id_tag if "stop_with_start_tag" in self.settings.bugs \
            else (connector.stop_tag or connector.id_tag)
        connector.suspended = False
        payload = {"transactionId": connector.transaction_id, "idTag": ended_by,
                   "meterStop": connector.register, "timestamp": clock.iso(), "reason": reason,
                   "transactionData": [
                       {"timestamp": clock.iso(connector.started),
                        "sampledValue": [{"value": str(connector.meter_start), "context": "Transaction.Begin",
                                          "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]},
                       {"timestamp": clock.iso(),
                        "sampledValue": [{"value": str(connector.register), "context": "Transaction.End",
                                          "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}
        connector.transaction_id, connector.stop, connector.id_tag = None, None, None
        ended, connector.ended = connector.ended, None
        self.profiles = [(c, p) for c, p in self.profiles
                         if not (c == connector.id and p["chargingProfilePurpose"] == "TxProfile")]
        await self._transaction_message("StopTransaction", payload)
        self.stats.transactions_stopped += 1
        if not (self.settings.bench and connector.plugged):  # on the bench: Finishing until the cable is out
            await self.status(connector, self._idle_status(connector))
        if ended is not None:
            ended.set()

    def _idle_status(self, connector: Connector) -> str:
        """The status of a connector with no session: Faulted, Unavailable, Reserved, Preparing or Available."""
        if connector.faulted:
            return "Faulted"
        if not connector.available:
            return "Unavailable"
        if connector.plugged or connector.pending_tag is not None:
            return "Preparing"
        if connector.reserved is not None and connector.id != 0:  # the charger itself reports no reservation
            return "Reserved"
        return "Available"


    # ---- on the test bench: the cable, the card, the power, faults ----------------------------

    async def manual(self, action: str, args: dict[str, Any]) -> str | None:
        """Do what a person (or a lab's relay box, RFID emulator, PDU) does to a charger under test: None when
        done, else why it cannot be done. Actions and arguments as the charger test runner's webhook sends them."""
        handler = getattr(self, f"_bench_{action}", None)
        if handler is None:
            return f"the simulator cannot {action}"
        number = args.get("connector", 1)
        if action not in ("power_cycle", "network_down", "network_up") and (
                not isinstance(number, int) or number not in self.connectors):
            return f"there is no connector {number!r}"
        targets = [self.connectors[number]] if action in ("power_cycle", "network_down", "network_up") \
            or number != 0 or action in ("set_fault", "clear_fault") else list(self.connectors.values())[1:]
        for connector in targets:
            why = await handler(connector, args)
            if why is not None:
                return why
        return None

    async def _await_cable(self, connector: Connector, tag: str) -> None:
        """An authorization with no cable ends after ConnectionTimeOut (OCPP 1.6, 9.1.7)."""
        await trio.sleep(float(self.configuration["ConnectionTimeOut"][0]))
        if connector.pending_tag == tag and not connector.plugged:
            connector.pending_tag = None
            await self.status(connector, self._idle_status(connector))

    async def _authorized(self, connector: Connector, tag: str, info: dict[str, Any]) -> None:
        """A tag accepted for an idle connector: start when the cable is in, else wait for it."""
        connector.parent_tag = info.get("parentIdTag")
        if connector.plugged:
            await self.start_session(connector.id, tag, authorize=False)
            return
        connector.pending_tag = tag
        await self.status(connector, "Preparing")
        assert self._nursery is not None
        self._nursery.start_soon(self._await_cable, connector, tag)

    async def _bench_remote_start(self, connector: Connector, tag: str, authorize: bool) -> None:
        info = await self.authorize_info(tag) if authorize else {"status": "Accepted"}
        if info.get("status") == "Accepted":
            await self._authorized(connector, tag, info)

    def _reservation_allows(self, connector: Connector, tag: str, info: dict[str, Any] | None) -> bool:
        reservation = connector.reserved or self.connectors[0].reserved
        if reservation is None or reservation["idTag"] == tag:
            return True
        parent = reservation.get("parentIdTag")
        return bool(parent) and info is not None and info.get("parentIdTag") == parent

    async def _bench_present_id(self, connector: Connector, args: dict[str, Any]) -> str | None:
        tag = args.get("tag")
        if not isinstance(tag, str) or not tag:
            return "present_id needs a tag"
        if connector.faulted or not connector.available:
            return None  # presented, and nothing happens
        if connector.stop is not None:  # a session runs: its own tag, or one of its group, ends it
            if tag == connector.id_tag:
                await self.stop_session(connector.id, "Local")
            elif connector.parent_tag:
                info = await self.authorize_info(tag)
                if info.get("status") == "Accepted" and info.get("parentIdTag") == connector.parent_tag:
                    await self.stop_session(connector.id, "Local", tag)
            return None
        if connector.transaction_id is not None or connector.pending_tag is not None:
            return None
        if "starts_without_authorize" in self.settings.bugs:
            info: dict[str, Any] = {"status": "Accepted"}
        else:
            info = await self.authorize_info(tag)
        if info.get("status") == "Accepted" and self._reservation_allows(connector, tag, info):
            await self._authorized(connector, tag, info)
        return None

    async def _bench_plug_in(self, connector: Connector, args: dict[str, Any]) -> str | None:
        connector.plugged = True
        if connector.pending_tag is not None and connector.transaction_id is None:
            await self.start_session(connector.id, connector.pending_tag, authorize=False)
        elif connector.transaction_id is None and not connector.faulted and connector.available:
            await self.status(connector, "Preparing")  # a reserved one too: the reservation waits for its tag
        return None

    async def _bench_plug_out(self, connector: Connector, args: dict[str, Any]) -> str | None:
        connector.plugged = False
        connector.lock_stuck = False
        if connector.error_code == "ConnectorLockFailure":
            connector.faulted = False
        connector.pending_tag = None
        if connector.stop is not None:
            await self.stop_session(connector.id, "EVDisconnected")
        elif connector.transaction_id is None:
            await self.status(connector, self._idle_status(connector))
        return None

    async def _bench_ev_side_unplug(self, connector: Connector, args: dict[str, Any]) -> str | None:
        if connector.stop is None:
            return None
        if self._enabled("StopTransactionOnEVSideDisconnect"):
            await self.stop_session(connector.id, "EVDisconnected")
        else:
            connector.suspended = True
            await self.status(connector, "SuspendedEV")
        return None

    async def _bench_ev_suspend(self, connector: Connector, args: dict[str, Any]) -> str | None:
        if connector.stop is not None:
            connector.suspended = True
            await self.status(connector, "SuspendedEV")
        return None

    async def _bench_ev_resume(self, connector: Connector, args: dict[str, Any]) -> str | None:
        if connector.stop is not None and connector.suspended:
            connector.suspended = False
            await self.status(connector, "Charging")
        return None

    async def _bench_set_fault(self, connector: Connector, args: dict[str, Any]) -> str | None:
        if args.get("what") == "local_list_storage":
            self.list_storage_fails = True
            return None
        connector.faulted = True
        await self.status(connector, "Faulted", "OtherError")
        return None

    async def _bench_clear_fault(self, connector: Connector, args: dict[str, Any]) -> str | None:
        if args.get("what") == "local_list_storage":
            self.list_storage_fails = False
            return None
        connector.faulted, connector.lock_stuck = False, False
        await self.status(connector, self._idle_status(connector))
        return None

    async def _bench_lock_failure(self, connector: Connector, args: dict[str, Any]) -> str | None:
        """A cable pushed in half way while a session waits for it (the lock cannot close), or, with no session
        waiting, a lock that is stuck closed."""
        if connector.pending_tag is not None:
            connector.pending_tag, connector.faulted, connector.plugged = None, True, True
            await self.status(connector, "Faulted", "ConnectorLockFailure")
        else:
            connector.lock_stuck = True
        return None

    async def _bench_power_cycle(self, connector: Connector, args: dict[str, Any]) -> str | None:
        """Power cut and restored. With backup power the sessions end (PowerLoss) before the charger goes down;
        without, they end when it is back (their StopTransaction queued with the time of the cut)."""
        running = [c for c in self.connectors.values() if c.stop is not None]
        if self.settings.backup_power:
            await self.end_sessions("PowerLoss")
        self.go_offline()
        for c in running:
            if c.stop is not None:
                await self.stop_session(c.id, "PowerLoss")
            c.pending_tag = None
        await trio.sleep(1.0)
        self.go_online()
        return None

    async def _bench_network_down(self, connector: Connector, args: dict[str, Any]) -> str | None:
        self.go_offline()
        return None

    async def _bench_network_up(self, connector: Connector, args: dict[str, Any]) -> str | None:
        self.go_online()
        return None

    # ---- commands from the central system -----------------------------------------

    async def _on_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | Reply:
        self.stats.commands += 1
        fault = self.faults.for_action(action)
        if fault == "callerror":
            return Reply(error=("InternalError", "simulated failure"))
        if fault == "silence":
            return Reply(silent=True)
        if fault == "malformed":
            return Reply(raw='[3,"broken"')
        if fault == "drop":
            self.reconnect()
            return Reply(silent=True)
        if fault == "reject":
            return self._rejection(action)
        profile = PROFILE_OF.get(action)
        if profile is not None and profile not in self.settings.profiles:
            if profile == "Reservation":  # OCPP 1.6, 5.13: a charger without reservations answers Rejected
                return {"status": "Rejected"}
            return Reply(error=("NotSupported", f"this charger does not support {profile}"))
        handler = getattr(self, f"_cmd_{action}", None)
        if handler is None:
            return Reply(error=("NotImplemented", f"{action} is not implemented by this charger"))
        return await handler(payload)

    def _rejection(self, action: str) -> dict[str, Any] | Reply:
        status = NOT_SUPPORTED_STATUS.get(action, "Rejected")
        if status is None:
            return Reply(error=("NotSupported", f"{action} is not supported"))
        return {"status": status}

    def _after_answer(self, fn: Any, *args: Any) -> None:
        """Run fn once the answer has gone out (a charger answers first, then acts)."""
        async def later() -> None:
            await trio.sleep(0.01)
            try:
                await fn(*args)
            except (CallFailed, trio_websocket.ConnectionClosed) as exc:  # the connection went away meanwhile
                self.log.debug("follow-up failed", error=repr(exc))

        assert self._nursery is not None
        self._nursery.start_soon(later)

    async def _cmd_RemoteStartTransaction(self, p: dict[str, Any]) -> dict[str, Any]:
        connector = self.connectors.get(p["connectorId"]) if "connectorId" in p else self.free_connector()
        if connector is None or connector.id == 0 or connector.transaction_id is not None \
                or not connector.available or connector.faulted or connector.pending_tag is not None:
            return {"status": "Rejected"}
        if connector.reserved is not None and connector.reserved["idTag"] != p["idTag"]:
            return {"status": "Rejected"}
        profile = p.get("chargingProfile")
        if profile is not None:
            if profile.get("chargingProfilePurpose") != "TxProfile" or "SmartCharging" not in self.settings.profiles:
                return {"status": "Rejected"}  # only a TxProfile may come with a remote start (OCPP 1.6, 5.11)
            self.profiles.append((connector.id, profile))
        authorize = self.configuration["AuthorizeRemoteTxRequests"][0] == "true"
        if self.settings.bench:
            self._after_answer(self._bench_remote_start, connector, p["idTag"], authorize)
        else:
            self._after_answer(partial(self.start_session, connector.id, p["idTag"], authorize=authorize))
        return {"status": "Accepted"}

    async def _cmd_RemoteStopTransaction(self, p: dict[str, Any]) -> dict[str, Any]:
        for connector in self.connectors.values():
            if connector.transaction_id is not None and connector.transaction_id == p["transactionId"]:
                self._after_answer(self.stop_session, connector.id, "Remote")
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    async def _cmd_Reset(self, p: dict[str, Any]) -> dict[str, Any]:
        async def reboot() -> None:
            await self.end_sessions("HardReset" if p["type"] == "Hard" else "SoftReset")
            await trio.sleep(0.05)
            self.reconnect()

        self._after_answer(reboot)
        return {"status": "Accepted"}

    async def _cmd_UnlockConnector(self, p: dict[str, Any]) -> dict[str, Any]:
        connector = self.connectors.get(p["connectorId"])
        if connector is None or connector.id == 0 or self.settings.fixed_cable:
            return {"status": "NotSupported"}
        if connector.lock_stuck:
            return {"status": "UnlockFailed"}
        if connector.stop is not None:
            await self.stop_session(connector.id, "UnlockCommand")
        return {"status": "Unlocked"}

    async def _cmd_ChangeAvailability(self, p: dict[str, Any]) -> dict[str, Any]:
        targets = list(self.connectors.values()) if p["connectorId"] == 0 else \
            [self.connectors[p["connectorId"]]] if p["connectorId"] in self.connectors else []
        if not targets:
            return {"status": "Rejected"}
        available = p["type"] == "Operative"
        busy = any(c.transaction_id is not None for c in targets)
        for connector in targets:
            connector.available = available
            if connector.transaction_id is None:
                # the state changes now, its notification follows the answer and tells the state of then
                connector.status = self._idle_status(connector) if available else "Unavailable"
                self._after_answer(self.status, connector)
        return {"status": "Scheduled" if busy and not available else "Accepted"}

    async def _cmd_GetConfiguration(self, p: dict[str, Any]) -> dict[str, Any]:
        keys = p.get("key") or list(self.configuration)
        known = [k for k in keys if k in self.configuration]
        answer: dict[str, Any] = {"configurationKey": [
            {"key": k, "readonly": self.configuration[k][1], "value": self.configuration[k][0]} for k in known]}
        unknown = [k for k in keys if k not in self.configuration]
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    async def _cmd_ChangeConfiguration(self, p: dict[str, Any]) -> dict[str, Any]:
        key, value = p["key"], p["value"]
        if key == "AuthorizationKey":  # write-only (security whitepaper 1.6): never read back
            if not 16 <= len(value) <= 40:
                return {"status": "Rejected"}
            self.settings.authorization_key = value
            self._after_answer(self._reconnect_soon)  # connect again with the new password
            return {"status": "Accepted"}
        if key == "SecurityProfile":
            if not value.isdigit() or int(value) > 3 or int(value) <= self.settings.security_profile:
                return {"status": "Rejected"}  # never lowered (security whitepaper 1.6, 2.4)
            self.settings.security_profile = int(value)
            self.configuration[key][0] = value
            self._after_answer(self._reconnect_soon)
            return {"status": "Accepted"}
        if "ignores_configuration" in self.settings.bugs and key in self.configuration:
            return {"status": "Accepted"}
        if key not in self.configuration:
            return {"status": "NotSupported"}
        if self.configuration[key][1]:
            return {"status": "Rejected"}
        if key in INT_KEYS and not (value.isdigit()):
            return {"status": "Rejected"}
        if key in BOOL_KEYS and value.lower() not in ("true", "false"):
            return {"status": "Rejected"}
        self.configuration[key][0] = value.lower() if key in BOOL_KEYS else value
        return {"status": "Accepted"}

    async def _reconnect_soon(self) -> None:
        await trio.sleep(0.2)
        self.reconnect()

    async def _cmd_ClearCache(self, p: dict[str, Any]) -> dict[str, Any]:
        self.cache.clear()
        return {"status": "Accepted"}

    async def _cmd_GetLocalListVersion(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"listVersion": self.local_list_version if self.local_list else 0}  # an empty list is version 0

    async def _cmd_SendLocalList(self, p: dict[str, Any]) -> dict[str, Any]:
        if self.list_storage_fails:
            return {"status": "Failed"}
        entries = p.get("localAuthorizationList") or []
        if p["updateType"] == "Full":
            self.local_list = {e["idTag"]: e.get("idTagInfo", {}) for e in entries}
        else:
            if p["listVersion"] <= self.local_list_version:
                return {"status": "VersionMismatch"}
            for entry in entries:
                if "idTagInfo" in entry:
                    self.local_list[entry["idTag"]] = entry["idTagInfo"]
                else:
                    self.local_list.pop(entry["idTag"], None)
        self.local_list_version = p["listVersion"]
        return {"status": "Accepted"}

    async def _cmd_TriggerMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        requested = p["requestedMessage"]
        connector = self.connectors.get(p.get("connectorId", 0))
        if connector is None:
            return {"status": "Rejected"}
        messages = {
            "BootNotification": lambda: self.call("BootNotification", {
                "chargePointVendor": self.settings.vendor, "chargePointModel": self.settings.model}),
            "Heartbeat": lambda: self.call("Heartbeat", {}),
            "StatusNotification": lambda: self.status(connector),
            "MeterValues": lambda: self.call("MeterValues", {
                "connectorId": connector.id,
                "meterValue": [{"timestamp": clock.iso(), "sampledValue": self._sampled(connector, "Trigger")}]}),
            "DiagnosticsStatusNotification": lambda: self.call("DiagnosticsStatusNotification", {"status": "Idle"}),
            "FirmwareStatusNotification": lambda: self.call("FirmwareStatusNotification", {"status": "Idle"}),
        }
        if requested not in messages:
            return {"status": "NotImplemented"}
        self._after_answer(messages[requested])
        return {"status": "Accepted"}

    async def _cmd_ReserveNow(self, p: dict[str, Any]) -> dict[str, Any]:
        connector = self.connectors.get(p["connectorId"])
        if connector is None or "rejects_reservations" in self.settings.bugs:
            return {"status": "Rejected"}
        if connector.id == 0 and self.configuration.get("ReserveConnectorZeroSupported", ["false"])[0] != "true":
            return {"status": "Rejected"}
        if connector.status == "Faulted":
            return {"status": "Faulted"}
        if not connector.available or connector.status == "Unavailable":
            return {"status": "Unavailable"}
        if connector.id == 0:  # the whole charger: occupied when no connector is free
            if not any(c.status == "Available" and c.transaction_id is None
                       for c in list(self.connectors.values())[1:]):
                return {"status": "Occupied"}
        elif connector.transaction_id is not None or connector.status not in ("Available", "Reserved"):
            return {"status": "Occupied"}
        connector.reserved = dict(p)
        if connector.id != 0:
            connector.status = self._idle_status(connector)
            self._after_answer(self.status, connector)
        self._after_answer(self._expire, connector, p["reservationId"], p["expiryDate"])
        return {"status": "Accepted"}

    async def _expire(self, connector: Connector, reservation_id: int, expiry_date: str) -> None:
        """A reservation not used by its expiry date ends (OCPP 1.6, 5.13)."""
        expiry = clock.parse(expiry_date)
        if expiry is not None:
            await trio.sleep(max((expiry - clock.now()).total_seconds(), 0))
        if connector.reserved and connector.reserved["reservationId"] == reservation_id:
            connector.reserved = None
            if connector.id != 0:
                await self.status(connector, "Available")

    async def _cmd_CancelReservation(self, p: dict[str, Any]) -> dict[str, Any]:
        for connector in self.connectors.values():
            if connector.reserved and connector.reserved["reservationId"] == p["reservationId"]:
                connector.reserved = None
                if connector.id != 0:
                    connector.status = self._idle_status(connector)
                    self._after_answer(self.status, connector)
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    async def _cmd_SetChargingProfile(self, p: dict[str, Any]) -> dict[str, Any]:
        profile, connector_id = p["csChargingProfiles"], p["connectorId"]
        if connector_id not in self.connectors:
            return {"status": "Rejected"}
        if profile["chargingProfilePurpose"] == "TxProfile":
            running = self.connectors[connector_id].transaction_id
            if running is None or profile.get("transactionId", running) != running:
                return {"status": "Rejected"}  # a TxProfile needs its transaction (OCPP 1.6, 5.16.2)
        self.profiles = [(c, q) for c, q in self.profiles
                         if not (c == connector_id and q["chargingProfileId"] == profile["chargingProfileId"])]
        self.profiles.append((connector_id, profile))
        return {"status": "Accepted"}

    async def _cmd_ClearChargingProfile(self, p: dict[str, Any]) -> dict[str, Any]:
        def matches(connector_id: int, profile: dict[str, Any]) -> bool:
            if "id" in p:
                return profile["chargingProfileId"] == p["id"]
            return all(want is None or want == have for want, have in (
                (p.get("connectorId"), connector_id),
                (p.get("chargingProfilePurpose"), profile["chargingProfilePurpose"]),
                (p.get("stackLevel"), profile["stackLevel"])))

        kept = [(c, q) for c, q in self.profiles if not matches(c, q)]
        cleared = len(kept) != len(self.profiles)
        self.profiles = kept
        return {"status": "Accepted" if cleared else "Unknown"}

    async def _cmd_GetCompositeSchedule(self, p: dict[str, Any]) -> dict[str, Any]:
        connector = self.connectors.get(p["connectorId"])
        if connector is None:
            return {"status": "Rejected"}
        unit = "W" if p.get("chargingRateUnit") == "W" else "A"
        result = schedule.composite(self.profiles, connector.id, p["duration"], clock.now(), connector.started, unit,
                                    lowest_stack="composite_ignores_stack" in self.settings.bugs)
        answer: dict[str, Any] = {"status": "Accepted", "connectorId": connector.id,
                                  "scheduleStart": clock.iso()}
        if result is not None:
            answer["chargingSchedule"] = result
        return answer

    def _log_text(self, kind: str) -> bytes:
        lines = [f"{kind} of {self.settings.cp_id} ({self.settings.vendor} {self.settings.model} "
                 f"{self.settings.firmware}) at {clock.iso()}",
                 *(f"connector {c.id}: {c.status} {c.error_code}" for c in self.connectors.values()),
                 *(f"refused: {why}" for why in self.certificates.refused)]
        return ("\n".join(lines) + "\n").encode()

    async def _upload(self, location: str, name: str, kind: str) -> bool:
        """Upload a log for real; False when it cannot be done."""
        if self.faults.for_action("DiagnosticsUpload") == "reject":
            return False
        if not self.settings.bench:  # off the bench nobody looks at the file
            await trio.sleep(0.05)
            return True
        try:
            await trio.to_thread.run_sync(transfer.upload, location, name, self._log_text(kind))
        except OSError as exc:
            self.log.info("upload failed", error=str(exc))
            return False
        return True

    async def _cmd_GetDiagnostics(self, p: dict[str, Any]) -> dict[str, Any]:
        name = f"diagnostics-{self.settings.cp_id}.log"

        async def upload() -> None:
            await self.call("DiagnosticsStatusNotification", {"status": "Uploading"})
            done = await self._upload(p["location"], name, "Diagnostics")
            await self.call("DiagnosticsStatusNotification", {"status": "Uploaded" if done else "UploadFailed"})

        self._after_answer(upload)
        return {"fileName": name}

    async def _cmd_UpdateFirmware(self, p: dict[str, Any]) -> dict[str, Any]:
        outcome = self.faults.for_action("FirmwareInstall")  # "reject" download, "callerror" install
        retrieve = clock.parse(p["retrieveDate"])

        async def update() -> None:
            if retrieve is not None:  # not before retrieveDate
                await trio.sleep(max((retrieve - clock.now()).total_seconds(), 0))
            await self.call("FirmwareStatusNotification", {"status": "Downloading"})
            image = b""
            if outcome != "reject" and self.settings.bench:  # on the bench the image is fetched for real
                try:
                    image = await trio.to_thread.run_sync(transfer.download, p["location"])
                except OSError as exc:
                    self.log.info("firmware download failed", error=str(exc))
                    outcome_now = "reject"
                else:
                    outcome_now = None if transfer.installable(image) else "callerror"
            else:
                await trio.sleep(0.05)
                outcome_now = outcome
            if outcome_now == "reject":
                await self.call("FirmwareStatusNotification", {"status": "DownloadFailed"})
                return
            await self.call("FirmwareStatusNotification", {"status": "Downloaded"})
            await self.call("FirmwareStatusNotification", {"status": "Installing"})
            await trio.sleep(0.05)
            if outcome_now == "callerror" or outcome == "callerror":
                await self.call("FirmwareStatusNotification", {"status": "InstallationFailed"})
                return
            await self.call("FirmwareStatusNotification", {"status": "Installed"})
            self.settings.firmware = f"{self.settings.firmware}+1"
            self.reconnect()  # reboot into the new firmware: connect and boot again

        self._after_answer(update)
        return {}

    async def _cmd_DataTransfer(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["vendorId"] != self.settings.vendor:
            return {"status": "UnknownVendorId"}
        return {"status": "Accepted", "data": json.dumps({"echo": p.get("data")})}

    async def _cmd_ExtendedTriggerMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        legacy = {"requestedMessage": p["requestedMessage"], **({"connectorId": p["connectorId"]}
                                                               if "connectorId" in p else {})}
        if p["requestedMessage"] == "SignChargePointCertificate":
            self._after_answer(self.sign_certificate)
            return {"status": "Accepted"}
        if p["requestedMessage"] in ("LogStatusNotification",
                                     "FirmwareStatusNotification"):
            return {"status": "Accepted"}
        return await self._cmd_TriggerMessage(legacy)

    async def _cmd_GetLog(self, p: dict[str, Any]) -> dict[str, Any]:
        name = f"{p['logType'].lower()}-{self.settings.cp_id}.log"

        async def upload() -> None:
            await self.call("LogStatusNotification", {"status": "Uploading", "requestId": p["requestId"]})
            done = await self._upload(p["log"]["remoteLocation"], name, p["logType"])
            await self.call("LogStatusNotification", {"status": "Uploaded" if done else "UploadFailure",
                                                      "requestId": p["requestId"]})

        self._after_answer(upload)
        return {"status": "Accepted", "filename": name}

    async def sign_certificate(self) -> dict[str, Any]:
        """A new key and a CSR for it (SignCertificate); the certificate comes with CertificateSigned."""
        csr = self.certificates.csr(self.settings.cp_id, self.configuration["CpoName"][0])
        return await self.call("SignCertificate", {"csr": csr})

    async def _security_event(self, kind: str, info: str) -> None:
        await self.call("SecurityEventNotification", {"type": kind, "timestamp": clock.iso(), "techInfo": info[:255]})

    async def _cmd_GetInstalledCertificateIds(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self.certificates.hash_ids(p["certificateType"])
        return {"status": "Accepted", "certificateHashData": found} if found else {"status": "NotFound"}

    async def _cmd_DeleteCertificate(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.certificates.delete(p["certificateHashData"])}

    async def _cmd_InstallCertificate(self, p: dict[str, Any]) -> dict[str, Any]:
        status = self.certificates.install(p["certificateType"], p["certificate"], clock.now())
        if status != "Accepted" and p["certificateType"] == "CentralSystemRootCertificate":
            self._after_answer(self._security_event, "InvalidCentralSystemCertificate", self.certificates.refused[-1])
        return {"status": status}

    async def _cmd_CertificateSigned(self, p: dict[str, Any]) -> dict[str, Any]:
        status = self.certificates.signed(p["certificateChain"], self.settings.cp_id, clock.now())
        if status != "Accepted":
            self._after_answer(self._security_event, "InvalidChargePointCertificate", self.certificates.refused[-1])
        return {"status": status}

    async def _cmd_SignedUpdateFirmware(self, p: dict[str, Any]) -> dict[str, Any]:
        """Download, check the signature, install, reboot (OCPP 1.6 security extension, section 3.5.2)."""
        request_id, firmware = p["requestId"], p["firmware"]
        problem = self.certificates.signing_certificate_problem(firmware["signingCertificate"], clock.now())
        if problem is not None:
            self.certificates.refused.append(f"SignedUpdateFirmware: {problem}")
            self._after_answer(self._security_event, "InvalidFirmwareSigningCertificate", problem)
            return {"status": "InvalidCertificate"}
        retrieve = clock.parse(firmware["retrieveDateTime"])

        async def report(status: str) -> None:
            self.firmware_statuses.append(status)
            await self.call("SignedFirmwareStatusNotification", {"status": status, "requestId": request_id})

        async def update() -> None:
            if retrieve is not None:
                await trio.sleep(max((retrieve - clock.now()).total_seconds(), 0))
            await report("Downloading")
            try:
                content = await trio.to_thread.run_sync(transfer.download, firmware["location"])
            except OSError as exc:
                self.certificates.refused.append(f"SignedUpdateFirmware: download failed: {exc}")
                await report("DownloadFailed")
                return
            await report("Downloaded")
            if not self.certificates.firmware_valid(firmware["signingCertificate"], content, firmware["signature"]):
                self.certificates.refused.append("SignedUpdateFirmware: the signature does not verify")
                await report("InvalidSignature")
                if "silent_bad_signature" not in self.settings.bugs:
                    await self._security_event("InvalidFirmwareSignature", "the firmware's signature does not verify")
                return
            await report("SignatureVerified")
            await report("Installing")
            await trio.sleep(0.05)
            await report("Installed")
            self.settings.firmware = f"{self.settings.firmware}+1"
            self.reconnect()  # reboot into the new firmware

        self._after_answer(update)
        return {"status": "Accepted"}

