"""One handler per charger-initiated action: store what the charger says, answer it.

A handler gets a HandlerContext (context.py: the charger id, the store, the settings it reads) and
the payload, and returns the response payload. It never awaits an outbound CALL. `dispatch` runs
one CALL through a handler table and turns what the handler raised into the CALLERROR to answer.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Mapping

from .. import clock
from ..certificates import csr
from ..certificates.events import CertificateRequested
from ..events import OutOfService, TransactionStarted, TransactionStopped
from ..live import Booted, MeterRead, StatusReported
from ..ocpp.errors import ErrorCode, OcppError
from ..ocpp.frames import INT64, Call, CallError, CallResult, Frame
from ..ocpp.validation import Violation
from ..store.transactions import MeterValue, StopOutcome
from ..store.health import StoreUnavailable
from ..store.chargers import DEVICE_FIELDS, Registration
from .authorization import id_tag_info
from .context import HandlerContext

Handler = Callable[[HandlerContext, dict[str, Any]], Awaitable[dict[str, Any]]]
HANDLERS: dict[str, Handler] = {}  # the default table (ChargerService.handlers); filled by @handles

REGISTRATION = {"accept": "Accepted", "pending": "Pending", "reject": "Rejected"}


def boot_answer(known: Registration, unknown_chargers: str) -> str:
    """How a BootNotification is answered: as the operator decided (PUT /api/chargers/{cpId}/registration);
    else Accepted for a charger the operator registered (POST /api/charger); else as it was answered
    before; else as `unknown_chargers` says."""
    if known.decided and known.status is not None:
        return known.status
    if known.registered:
        return "Accepted"
    return known.status or REGISTRATION[unknown_chargers]


class Unusable(Exception):
    """A payload field the handler cannot use (missing, null, of another type, out of range).

    Only lenient mode lets such a payload reach a handler, and it has found the schema violation
    already: that violation is the answer (see dispatch)."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def handles(action: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[action] = fn
        return fn

    return register


async def dispatch(handlers: Mapping[str, Handler], ctx: HandlerContext, call: Call,
                   violation: Violation | None) -> Frame:
    """The answer to a charger's CALL: the handler's CALLRESULT, or the CALLERROR for what it raised.

    `violation` is what lenient mode let through in this payload (None: it meets the schema)."""
    try:
        handler = handlers.get(call.action)
        if handler is None:
            raise OcppError(ErrorCode.NOT_IMPLEMENTED, f"{call.action} is not implemented by this central system")
        return CallResult(call.unique_id, await handler(ctx, call.payload))
    except OcppError as exc:
        return CallError(call.unique_id, exc.code.value, exc.description, exc.details)
    except StoreUnavailable as exc:
        # What the store cannot keep now is not acknowledged: an InternalError, which a charger may send
        # again (OCPP-J 1.6 section 4.2.3; transaction messages are retried by the charger, section 4.7),
        # rather than a CallResult followed by silent loss.
        ctx.log.warning("not acknowledged: the store cannot keep it", action=call.action, reason=str(exc))
        return CallError(call.unique_id, ErrorCode.INTERNAL_ERROR.value,
                         f"{call.action} not stored: {exc}. Send it again later; it will be accepted "
                         "once the database can be written")
    except Unusable as exc:
        if violation is not None:  # lenient mode let through a payload the handler cannot use
            return CallError(call.unique_id, violation.code.value, violation.message,
                             {"path": violation.path} if violation.path else {})
        # The schema allows what the handler cannot use: a gap on this side, answered as a failure.
        ctx.log.error("handler failed on a valid payload", action=call.action, field=exc.field, why=exc.why)
    except Exception:  # a bug: logged with its traceback, never shown to the charger
        ctx.log.exception("handler failed", action=call.action)
    return CallError(call.unique_id, ErrorCode.INTERNAL_ERROR.value, f"{call.action} could not be handled")


# ---- reading the payload ----------------------------------------------------------------------
# Lenient mode lets through payloads that break the schema; these readers turn what a handler
# cannot use into Unusable, naming the field.


def _required(p: dict[str, Any], field: str) -> Any:
    """A field the schema requires (lenient mode may have let the payload through without it)."""
    try:
        return p[field]
    except KeyError:
        raise Unusable(field, "a required field is missing") from None


def _text(value: Any) -> str | None:
    """Scalars as text; lenient mode lets odd types through, the database keeps them readable."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _required_text(p: dict[str, Any], field: str) -> str:
    """A text field the schema requires (kept in a NOT NULL column): lenient mode let it through null."""
    text = _text(_required(p, field))
    if text is None:
        raise Unusable(field, "a required field is null")
    return text


def _integer(field: str, value: Any) -> int | None:
    """Integers, also when lenient mode let '12' or 12.0 through."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise Unusable(field, "a boolean is not an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # '1.5', [], {}, NaN and infinity as text
        raise Unusable(field, f"{str(value)[:40]!r} is not an integer") from None
    if not INT64[0] <= number <= INT64[1]:  # '18446744073709551616' passed lenient mode as text
        raise Unusable(field, f"{str(value)[:40]} is beyond a 64-bit integer")
    return number


def _int(p: dict[str, Any], field: str) -> int | None:
    """An optional integer field."""
    return _integer(field, p.get(field))


def _required_int(p: dict[str, Any], field: str) -> int:
    """A field the schema requires: lenient mode let it through missing or null, the database cannot keep that."""
    number = _integer(field, _required(p, field))
    if number is None:
        raise Unusable(field, "a required integer is null")
    return number


def meter_value(entries: Any, field: str = "meterValue") -> MeterValue:
    """A meterValue (or transactionData) list as the charger sent it, once its shape is one the store can read.

    Lenient mode lets other types through where a string belongs (they are kept, and read back as JSON
    text), and an empty value of any type where a list belongs (nothing to keep); it must not let
    through what has no timestamp or no value (Unusable: the schema violation is the answer).
    A NUL character in a text field is refused in both modes: SQLite's JSON reader would cut the text
    there, and a meter reading would be read back as another number.
    """
    if not entries:
        return []
    if type(entries) is not list:
        raise Unusable(field, "not a list")
    for entry in entries:
        if type(entry) is not dict or entry.get("timestamp") is None:
            raise Unusable(field, "an entry without a timestamp")
        _no_nul(entry["timestamp"])
        sampled = entry.get("sampledValue")
        if not sampled:
            continue
        if type(sampled) is not list:
            raise Unusable(field, "sampledValue is not a list")
        for sv in sampled:
            if type(sv) is not dict or sv.get("value") is None:
                raise Unusable(field, "a sampledValue without a value")
            for value in sv.values():
                _no_nul(value)
    return entries


def _no_nul(value: Any) -> None:
    if type(value) is str and "\x00" in value:
        raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        "a meter value holds a NUL character (\\u0000), which cannot be stored as text")


# ---- the handlers -----------------------------------------------------------------------------


async def authorize(ctx: HandlerContext, id_tag: Any) -> dict[str, Any]:
    if not isinstance(id_tag, str):  # lenient mode let a number or an object through: no tag is that
        return {"status": "Invalid"}
    row, known = await ctx.store.id_tags.for_charger(id_tag, ctx.cp_id)
    return id_tag_info(row, ctx.config.unknown_id_tags == "accept", clock.now(), elsewhere=known)


@handles("BootNotification")
async def boot_notification(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    device = {k: _text(p.get(k)) for k in DEVICE_FIELDS}
    extra = {k: v for k, v in p.items() if k not in DEVICE_FIELDS} or None
    status = boot_answer(await ctx.store.chargers.registration(ctx.cp_id), ctx.config.unknown_chargers)
    out_of_service = await ctx.store.chargers.boot(ctx.cp_id, device, extra, status, clock.iso())
    ctx.log.info("boot", status=status, vendor=device["chargePointVendor"],
                 model=device["chargePointModel"], firmware=device["firmwareVersion"])
    if status == "Accepted" and out_of_service is not None:  # made Inoperative again, in the background
        ctx.events.publish(OutOfService(ctx.cp_id, out_of_service))
    if ctx.events.watched:
        ctx.events.show(Booted(ctx.cp_id, p, status, clock.iso()))
    return {"status": status, "currentTime": clock.iso(), "interval": ctx.config.heartbeat_interval}


@handles("Heartbeat")
async def heartbeat(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": clock.iso()}


@handles("StatusNotification")
async def status_notification(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.store.chargers.status(
        ctx.cp_id, _required_int(p, "connectorId"), _required_text(p, "status"), _text(p.get("errorCode")),
        _text(p.get("info")), _text(p.get("vendorId")), _text(p.get("vendorErrorCode")),
        _text(p.get("timestamp")), clock.iso(),
    )
    if ctx.events.watched:
        ctx.events.show(StatusReported(ctx.cp_id, p, clock.iso()))
    return {}


@handles("Authorize")
async def authorize_request(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": await authorize(ctx, _required(p, "idTag"))}


@handles("StartTransaction")
async def start_transaction(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    id_tag, connector_id = _text(_required(p, "idTag")), _required_int(p, "connectorId")
    info = await authorize(ctx, id_tag)
    remote_start = ctx.remote_starts.match(ctx.cp_id, connector_id, id_tag)
    # Committed before the answer: the charger will quote this id in every later message.
    transaction_id = await ctx.store.transactions.start(
        ctx.cp_id, connector_id, id_tag, info["status"], _int(p, "meterStart"),
        _text(p.get("timestamp")), _int(p, "reservationId"), clock.iso(), remote_start,
    )
    ctx.log.info("transaction started", transaction_id=transaction_id, connector=connector_id,
                 id_tag_status=info["status"], remote_start=remote_start)
    ctx.events.publish(TransactionStarted(ctx.cp_id, connector_id, id_tag, transaction_id, remote_start,
                                          _int(p, "meterStart"), _text(p.get("timestamp")), clock.iso()))
    return {"transactionId": transaction_id, "idTagInfo": info}


@handles("StopTransaction")
async def stop_transaction(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    transaction_id = _required_int(p, "transactionId")
    try:
        transaction_data = meter_value(p.get("transactionData"), "transactionData")
    except (Unusable, OcppError) as exc:  # the stop is recorded without it: refused, it would come back forever
        code = exc.code.value if isinstance(exc, OcppError) else "TypeConstraintViolation"
        ctx.record_violation("StopTransaction", "request", code, "transactionData",
                             f"StopTransaction: transactionData not kept: {exc}", p)
        transaction_data = []
    outcome = await ctx.store.transactions.stop(
        ctx.cp_id, transaction_id, _int(p, "meterStop"), _text(p.get("timestamp")),
        _text(p.get("reason")), _text(p.get("idTag")), transaction_data, clock.iso(),
    )
    ctx.log.info("transaction stopped", transaction_id=transaction_id, outcome=outcome.value,
                 reason=p.get("reason"))
    if outcome is StopOutcome.OTHER_CHARGER:
        ctx.record_violation(
            "StopTransaction", "request", "PropertyConstraintViolation", "transactionId",
            f"StopTransaction: transaction {transaction_id} belongs to another charge point", p,
        )
    elif outcome is StopOutcome.NOT_RECORDED:
        ctx.record_violation(
            "StopTransaction", "request", "PropertyConstraintViolation", "transactionId",
            f"StopTransaction: transaction {transaction_id} was never started here and is beyond the ids "
            "this gateway hands out; the stop is answered but not recorded as a transaction", p,
        )
    elif outcome is not StopOutcome.ALREADY_STOPPED:
        ctx.events.publish(TransactionStopped(ctx.cp_id, transaction_id, _int(p, "meterStop"),
                                              _text(p.get("reason")), _text(p.get("idTag")),
                                              _text(p.get("timestamp")), clock.iso()))
    _show_meter(ctx, None, transaction_id, transaction_data)
    answer: dict[str, Any] = {}
    if p.get("idTag"):
        answer["idTagInfo"] = await authorize(ctx, p["idTag"])
    return answer


@handles("MeterValues")
async def meter_values(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    connector_id, transaction_id = _int(p, "connectorId"), _int(p, "transactionId")
    entries = meter_value(_required(p, "meterValue"))
    ctx.store.transactions.add_meter_values(ctx.cp_id, connector_id, transaction_id, entries, clock.iso())
    _show_meter(ctx, connector_id, transaction_id, entries)
    return {}


def _show_meter(ctx: HandlerContext, connector_id: int | None, transaction_id: int | None,
                entries: MeterValue) -> None:
    """The readings, to the live stream while anyone watches (nothing is built otherwise)."""
    if ctx.events.watched:
        at = clock.iso()
        for entry in entries:
            ctx.events.show(MeterRead(ctx.cp_id, connector_id, transaction_id, entry, at))


@handles("DataTransfer")
async def data_transfer(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    # No vendor extensions are installed: every vendor is unknown, and the request is kept.
    status = "UnknownVendorId"
    await ctx.store.notifications.add(ctx.cp_id, "DataTransfer", status, p, at=clock.iso())
    return {"status": status}


def _notification(action: str, status_field: str, time_field: str | None = None) -> Handler:
    async def handler(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
        await ctx.store.notifications.add(
            ctx.cp_id, action, _text(p.get(status_field)), p, at=clock.iso(),
            request_id=_int(p, "requestId"), timestamp=_text(p.get(time_field)) if time_field else None,
        )
        ctx.log.info(action, status=p.get(status_field))
        return {}

    handler.__name__ = action
    return handler


handles("DiagnosticsStatusNotification")(_notification("DiagnosticsStatusNotification", "status"))
handles("FirmwareStatusNotification")(_notification("FirmwareStatusNotification", "status"))
handles("LogStatusNotification")(_notification("LogStatusNotification", "status"))
handles("SignedFirmwareStatusNotification")(_notification("SignedFirmwareStatusNotification", "status"))
handles("SecurityEventNotification")(_notification("SecurityEventNotification", "type", "timestamp"))


@handles("SignCertificate")
async def sign_certificate(ctx: HandlerContext, p: dict[str, Any]) -> dict[str, Any]:
    """Accepted when the CSR passes the checks (gateway/certificates/csr.py) and a certificate authority exists:
    the certificate is then issued and sent (CertificateSigned) in the background. A refused CSR is kept as a
    security event with the reason."""
    outcome, event = csr.check(p.get("csr"), ctx.cp_id, await _cpo_name(ctx)), "InvalidCsr"
    if isinstance(outcome, csr.Accepted) and await ctx.store.certificates.authority("issuing") is None:
        outcome = csr.Refused("no certificate authority: create one with `gateway ca init`")
        event = "NoCertificateAuthority"
    status = "Accepted" if isinstance(outcome, csr.Accepted) else "Rejected"
    await ctx.store.notifications.add(ctx.cp_id, "SignCertificate", status, p, at=clock.iso())
    if isinstance(outcome, csr.Refused):
        ctx.log.warning("certificate signing request refused", reason=outcome.reason)
        await ctx.store.notifications.add(ctx.cp_id, SECURITY_EVENT, event, {"reason": outcome.reason},
                                          at=clock.iso(), timestamp=clock.iso())
    else:
        ctx.events.publish(CertificateRequested(ctx.cp_id, p["csr"]))
    return {"status": status}


SECURITY_EVENT = "CentralSystemSecurityEvent"  # the gateway's own security events, kept with the charger's reports


async def _cpo_name(ctx: HandlerContext) -> str | None:
    """The charger's CpoName configuration key as the gateway knows it (GetConfiguration, ChangeConfiguration)."""
    for key in await ctx.store.configuration.get(ctx.cp_id):
        if key["key"].casefold() == "cponame" and key["value"]:
            return key["value"]
    return None
