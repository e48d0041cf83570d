"""One handler per charger-initiated action: store what the charger says, answer it.

A handler gets the session (its charger id, store and settings) and the payload,
and returns the response payload. It never awaits an outbound CALL.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .. import clock
from ..events import TransactionStarted, TransactionStopped
from ..ocpp.errors import ErrorCode, OcppError
from ..ocpp.frames import INT64
from ..store import MeterValue, StopOutcome, StoreUnavailable
from ..store.chargers import DEVICE_FIELDS
from .authorization import id_tag_info

if TYPE_CHECKING:
    from .session import Session

Handler = Callable[["Session", dict[str, Any]], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}

REGISTRATION = {"accept": "Accepted", "pending": "Pending", "reject": "Rejected"}


def handles(action: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[action] = _unless_unstorable(action, fn)
        return fn

    return register


def _unless_unstorable(action: str, fn: Handler) -> Handler:
    """What the store cannot keep now is not acknowledged: an InternalError, which a charger may send
    again (OCPP-J 1.6 section 4.2.3; transaction messages are retried by the charger, section 4.7),
    rather than a CallResult followed by silent loss."""
    @functools.wraps(fn)
    async def handler(session: Session, p: dict[str, Any]) -> dict[str, Any]:
        try:
            return await fn(session, p)
        except StoreUnavailable as exc:
            session.log.warning("not acknowledged: the store cannot keep it", action=action, reason=str(exc))
            raise OcppError(ErrorCode.INTERNAL_ERROR,
                            f"{action} not stored: {exc}. Send it again later; it will be accepted "
                            "once the database can be written") from None

    return handler


def _text(value: Any) -> str | None:
    """Scalars as text; lenient mode lets odd types through, the database keeps them readable."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _int(value: Any) -> int | None:
    """Integers, also when lenient mode let '12' or 12.0 through."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    number = int(value)
    if not INT64[0] <= number <= INT64[1]:  # '18446744073709551616' passed lenient mode as text
        raise ValueError(f"{value!r} is beyond a 64-bit integer")
    return number


def _required_int(value: Any) -> int:
    """A field the schema requires: lenient mode let null through, the database cannot keep it."""
    number = _int(value)
    if number is None:
        raise TypeError("a required integer is null")
    return number


def meter_value(entries: Any) -> MeterValue:
    """A meterValue (or transactionData) list as the charger sent it, once its shape is one the store can read.

    Lenient mode lets other types through where a string belongs (they are kept, and read back as JSON
    text), and an empty value of any type where a list belongs (nothing to keep); it must not let
    through what has no timestamp or no value (TypeError: the schema violation is the answer).
    A NUL character in a text field is refused in both modes: SQLite's JSON reader would cut the text
    there, and a meter reading would be read back as another number.
    """
    if not entries:
        return []
    if type(entries) is not list:
        raise TypeError("meterValue is not a list")
    for entry in entries:
        if type(entry) is not dict or entry.get("timestamp") is None:
            raise TypeError("a meterValue entry without a timestamp")
        _no_nul(entry["timestamp"])
        sampled = entry.get("sampledValue")
        if not sampled:
            continue
        if type(sampled) is not list:
            raise TypeError("sampledValue is not a list")
        for sv in sampled:
            if type(sv) is not dict or sv.get("value") is None:
                raise TypeError("a sampledValue without a value")
            for field in sv.values():
                _no_nul(field)
    return entries


def _no_nul(value: Any) -> None:
    if type(value) is str and "\x00" in value:
        raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        "a meter value holds a NUL character (\\u0000), which cannot be stored as text")


async def authorize(session: Session, id_tag: Any) -> dict[str, Any]:
    if not isinstance(id_tag, str):  # lenient mode let a number or an object through: no tag is that
        return {"status": "Invalid"}
    row = await session.store.id_tags.get(id_tag)
    return id_tag_info(row, session.config.unknown_id_tags == "accept", clock.now())


@handles("BootNotification")
async def boot_notification(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    device = {k: _text(p.get(k)) for k in DEVICE_FIELDS}
    extra = {k: v for k, v in p.items() if k not in DEVICE_FIELDS} or None
    status = await session.store.chargers.registration(session.cp_id)
    if status is None:
        status = REGISTRATION[session.config.unknown_chargers]
    await session.store.chargers.boot(session.cp_id, device, extra, status, clock.iso())
    session.log.info("boot", status=status, vendor=device["chargePointVendor"],
                     model=device["chargePointModel"], firmware=device["firmwareVersion"])
    return {"status": status, "currentTime": clock.iso(), "interval": session.config.heartbeat_interval}


@handles("Heartbeat")
async def heartbeat(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": clock.iso()}


@handles("StatusNotification")
async def status_notification(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    await session.store.chargers.status(
        session.cp_id, _required_int(p["connectorId"]), _text(p["status"]), _text(p.get("errorCode")),
        _text(p.get("info")), _text(p.get("vendorId")), _text(p.get("vendorErrorCode")),
        _text(p.get("timestamp")), clock.iso(),
    )
    return {}


@handles("Authorize")
async def authorize_request(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": await authorize(session, p["idTag"])}


@handles("StartTransaction")
async def start_transaction(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    id_tag, connector_id = _text(p["idTag"]), _required_int(p["connectorId"])
    info = await authorize(session, id_tag)
    remote_start = session.service.remote_starts.match(session.cp_id, connector_id, id_tag)
    # Committed before the answer: the charger will quote this id in every later message.
    transaction_id = await session.store.transactions.start(
        session.cp_id, connector_id, id_tag, info["status"], _int(p.get("meterStart")),
        _text(p.get("timestamp")), _int(p.get("reservationId")), clock.iso(), remote_start,
    )
    session.log.info("transaction started", transaction_id=transaction_id, connector=connector_id,
                     id_tag_status=info["status"], remote_start=remote_start)
    session.service.events.publish(
        TransactionStarted(session.cp_id, connector_id, id_tag, transaction_id, remote_start))
    return {"transactionId": transaction_id, "idTagInfo": info}


@handles("StopTransaction")
async def stop_transaction(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    transaction_id = _required_int(p["transactionId"])
    try:
        transaction_data = meter_value(p.get("transactionData"))
    except (TypeError, OcppError) as exc:  # the stop is recorded without it: refused, it would come back forever
        code = exc.code.value if isinstance(exc, OcppError) else "TypeConstraintViolation"
        session.record_violation("StopTransaction", "request", code, "transactionData",
                                 f"StopTransaction: transactionData not kept: {exc}", p)
        transaction_data = []
    outcome = await session.store.transactions.stop(
        session.cp_id, transaction_id, _int(p.get("meterStop")), _text(p.get("timestamp")),
        _text(p.get("reason")), _text(p.get("idTag")), transaction_data, clock.iso(),
    )
    session.log.info("transaction stopped", transaction_id=transaction_id, outcome=outcome.value,
                     reason=p.get("reason"))
    if outcome is StopOutcome.OTHER_CHARGER:
        session.record_violation(
            "StopTransaction", "request", "PropertyConstraintViolation", "transactionId",
            f"StopTransaction: transaction {transaction_id} belongs to another charge point", p,
        )
    elif outcome is StopOutcome.NOT_RECORDED:
        session.record_violation(
            "StopTransaction", "request", "PropertyConstraintViolation", "transactionId",
            f"StopTransaction: transaction {transaction_id} was never started here and is beyond the ids "
            "this gateway hands out; the stop is answered but not recorded as a transaction", p,
        )
    elif outcome is not StopOutcome.ALREADY_STOPPED:
        session.service.events.publish(TransactionStopped(session.cp_id, transaction_id))
    answer: dict[str, Any] = {}
    if p.get("idTag"):
        answer["idTagInfo"] = await authorize(session, p["idTag"])
    return answer


@handles("MeterValues")
async def meter_values(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    session.store.transactions.add_meter_values(
        session.cp_id, _int(p["connectorId"]), _int(p.get("transactionId")), meter_value(p["meterValue"]),
        clock.iso(),
    )
    return {}


@handles("DataTransfer")
async def data_transfer(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    # No vendor extensions are installed: every vendor is unknown, and the request is kept.
    status = "UnknownVendorId"
    await session.store.notifications.add(session.cp_id, "DataTransfer", status, p, at=clock.iso())
    return {"status": status}


def _notification(action: str, status_field: str, time_field: str | None = None) -> Handler:
    async def handler(session: Session, p: dict[str, Any]) -> dict[str, Any]:
        await session.store.notifications.add(
            session.cp_id, action, _text(p.get(status_field)), p, at=clock.iso(),
            request_id=_int(p.get("requestId")), timestamp=_text(p.get(time_field)) if time_field else None,
        )
        session.log.info(action, status=p.get(status_field))
        return {}

    handler.__name__ = action
    return handler


handles("DiagnosticsStatusNotification")(_notification("DiagnosticsStatusNotification", "status"))
handles("FirmwareStatusNotification")(_notification("FirmwareStatusNotification", "status"))
handles("LogStatusNotification")(_notification("LogStatusNotification", "status"))
handles("SignedFirmwareStatusNotification")(_notification("SignedFirmwareStatusNotification", "status"))
handles("SecurityEventNotification")(_notification("SecurityEventNotification", "type", "timestamp"))


@handles("SignCertificate")
async def sign_certificate(session: Session, p: dict[str, Any]) -> dict[str, Any]:
    # No certificate authority is configured, so no CSR can be signed: say so, keep the request.
    status = "Rejected"
    await session.store.notifications.add(session.cp_id, "SignCertificate", status, p, at=clock.iso())
    return {"status": status}
